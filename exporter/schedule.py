"""A workflow's cron schedule: when a run was last expected, when the next one is, and whether
an expected run never came.

Pure functions of a schedule, a time (`now`, Unix seconds) and the workflow's run creation
times; no clock, no I/O. Cron expressions are read by `cronsim` (the evaluator the Healthchecks
cron monitor is built on): Debian cron's five fields and rules, names of months and days, `L`
and `#`, and Debian's behaviour on DST changes in a time zone. A schedule comes from the config
(`schedule`, `schedule_timezone`, `schedule_grace`) or from Get Workflow's
`definition.triggers[]`, which the API docs show only as a sample (`{"type": "schedule",
"cron": "0 8 1 * *"}`): `schedule_from_definition` reads it defensively, and the config wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from exporter.fieldreaders import _problems, _show

DEFAULT_TIMEZONE = "UTC"
# How long after an expected time a run may be created before the fire counts as missed.
DEFAULT_GRACE = 600.0
CONFIG = "config"
API = "api"
# The macros cron implementations agree on, as the five fields they stand for.
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_HINT = "five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"


class ScheduleError(ValueError):
    """A cron expression, time zone or grace that cannot be used; the message says which."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A checked schedule: `cron` has five fields (a macro is kept as written)."""

    cron: str
    timezone: str = DEFAULT_TIMEZONE
    grace: float = DEFAULT_GRACE
    # Where it came from: CONFIG or API.
    source: str = CONFIG


@dataclass(frozen=True, slots=True)
class Expected:
    """Fire times around `now`; None where the expression has none within 50 years."""

    last: float | None  # the latest fire time not in the future
    next: float | None  # the first fire time after now


def make_schedule(
    cron: str,
    timezone: str = DEFAULT_TIMEZONE,
    grace: float = DEFAULT_GRACE,
    source: str = CONFIG,
) -> Schedule:
    """A checked Schedule; ScheduleError names what is wrong and how it should look."""
    _fields(cron)
    _zone(timezone)
    if isinstance(grace, bool) or not isinstance(grace, int | float):
        raise ScheduleError(f"schedule grace: expected seconds, got {type(grace).__name__}")
    if not (math.isfinite(grace) and grace >= 0):
        raise ScheduleError(f"schedule grace: expected seconds >= 0, got {grace!r}")
    return Schedule(cron.strip(), timezone, float(grace), source)


def _fields(cron: str) -> str:
    """The five fields of `cron` (a macro expanded), checked by cronsim."""
    if not isinstance(cron, str) or not cron.strip():
        raise ScheduleError(f"schedule: expected a cron expression ({_HINT})")
    text = cron.strip()
    fields = MACROS.get(text.lower(), text)
    if len(fields.split()) != 5:
        raise ScheduleError(
            f"schedule {text!r}: {len(fields.split())} fields where cron has 5 ({_HINT})"
        )
    try:
        CronSim(fields, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        raise ScheduleError(f"schedule {text!r}: {error} ({_HINT})") from None
    return fields


def _zone(name: str) -> tzinfo:
    if name == DEFAULT_TIMEZONE:
        return UTC  # needs no time zone database
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(
            f"schedule timezone {name!r}: not a known IANA time zone (e.g. 'Europe/Berlin'; "
            "the system needs a time zone database, or the tzdata package)"
        ) from None


# Fire times depend only on the expression, the zone and which gap between two fires `now` is
# in, and cronsim takes about 0.3 ms to build and 0.3-1 ms per fire time found (measured on this
# 2-core machine under load: 1.7 ms for both times of a nightly schedule in Europe/Berlin). So
# the gaps found are kept, a few per schedule (a poll asks about now and now - grace), and a
# poll of many scheduled workflows costs cronsim's work only once an expected time has passed.
_GAPS: dict[tuple[str, str], list[Expected]] = {}
GAPS_PER_SCHEDULE = 4
GAPS_MEMO_SIZE = 4096


def expected_times(schedule: Schedule, now: float) -> Expected:
    """The latest fire time at or before `now`, and the first one after it."""
    key = (schedule.cron, schedule.timezone)
    gaps = _GAPS.get(key)
    if gaps is not None:
        for gap in gaps:
            if gap.last is not None and gap.next is not None and gap.last <= now < gap.next:
                return gap
    expected = _expected_times(schedule, now)
    if gaps is None:
        if len(_GAPS) >= GAPS_MEMO_SIZE:
            _GAPS.clear()
        gaps = _GAPS[key] = []
    gaps.insert(0, expected)
    del gaps[GAPS_PER_SCHEDULE:]
    return expected


def _expected_times(schedule: Schedule, now: float) -> Expected:
    fields, zone = _fields(schedule.cron), _zone(schedule.timezone)
    second = math.floor(now)
    # Iterating backwards starts one tick before its start: start a second after now (in Unix
    # time: adding to an aware datetime would add to its wall-clock time, wrong across DST).
    return Expected(
        _fire(CronSim(fields, datetime.fromtimestamp(second + 1, zone), reverse=True)),
        _fire(CronSim(fields, datetime.fromtimestamp(second, zone))),
    )


def _fire(times: CronSim) -> float | None:
    try:
        return next(times).timestamp()
    except StopIteration:  # no fire within 50 years (e.g. "0 0 31 2 *" is refused earlier)
        return None


def choose(configured: Schedule | None, from_api: Schedule | None) -> Schedule | None:
    """The schedule to watch: the config's wins over the API's."""
    return configured if configured is not None else from_api


def schedule_from_definition(
    definition: Any, grace: float = DEFAULT_GRACE
) -> tuple[Schedule | None, tuple[str, ...]]:
    """The first usable `{"type": "schedule", "cron": ...}` of Get Workflow's
    `definition.triggers[]` (an optional `timezone` string is honoured), and problems with
    what was there ("field: what was wrong", bounded). Triggers of other types are not
    schedules; anything unexpected gives no schedule and a problem, never an exception."""
    problems: list[str] = []
    if not isinstance(definition, Mapping):
        problems.append(f"definition: expected an object, got {_show(definition)}")
        return None, _problems(problems)
    triggers = definition.get("triggers")
    if triggers is None:
        return None, ()
    if not isinstance(triggers, list):
        problems.append(f"definition.triggers: expected a list, got {_show(triggers)}")
        return None, _problems(problems)
    found: Schedule | None = None
    for index, trigger in enumerate(triggers):
        where = f"definition.triggers[{index}]"
        if not isinstance(trigger, Mapping):
            problems.append(f"{where}: expected an object, got {_show(trigger)}")
            continue
        if trigger.get("type") != "schedule":
            continue
        schedule = _trigger_schedule(trigger, where, grace, problems)
        if schedule is None:
            continue
        if found is None:
            found = schedule
        else:
            problems.append(f"{where}: another schedule trigger; only the first is watched")
    return found, _problems(problems)


def _trigger_schedule(
    trigger: Mapping[str, Any], where: str, grace: float, problems: list[str]
) -> Schedule | None:
    cron = trigger.get("cron")
    if not isinstance(cron, str):
        problems.append(f"{where}.cron: expected a cron expression, got {_show(cron)}")
        return None
    timezone = trigger.get("timezone", DEFAULT_TIMEZONE)
    if timezone is None:
        timezone = DEFAULT_TIMEZONE
    if not isinstance(timezone, str):
        problems.append(f"{where}.timezone: expected a time zone name, got {_show(timezone)}")
        return None
    if not _valid_cron(cron):
        problems.append(f"{where}.cron: not a usable cron expression ({_show(cron)})")
        return None
    try:
        _zone(timezone)
    except ScheduleError:
        problems.append(f"{where}.timezone: not a known time zone ({_show(timezone)})")
        return None
    return Schedule(cron.strip(), timezone, float(grace), API)


def _valid_cron(cron: str) -> bool:
    try:
        _fields(cron)
    except ScheduleError:
        return False
    return True
