"""Typed models of the OnePin API responses, parsed as leniently as the official SDK reads them.

The API's docs contradict themselves (see onepin-api.md §7 and §8): fields come and go between
versions, `usage_summary` has no fixed schema, statuses and pause reasons are open strings. The SDK
(pydantic, lax mode) reads numbers sent as strings ("12"), whole floats as integers (2.0), Unix
seconds or milliseconds as times, and an empty status; so do these parsers, because refusing what
the real client accepts would show an API that works as broken.

One bad value costs only itself. An optional field that is negative (where the API means a count,
a cost or a duration), NaN, infinite, too large or of the wrong type is read as absent (None) and
recorded in the model's `problems` ("field: what was wrong"), so the caller can say so once and
keep everything else. Only a required field that cannot be read (a run's id, run number or status;
a workflow's id or name) makes the item unreadable: a `DecodeError` naming the field, for that one
item (List Runs and List Workflows keep the page's other items, in `Page.bad`).

Speed: these readers run for every field of every run on every poll, so each checks the types
`json` actually returns (`type(v) is int/float/str`) and the common valid range first, and only a
value outside it takes the slower, general path.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
KNOWN_STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
# `pause_reason` as the SDK knows it (onepin-api.md §8): `user` is a manual pause, the others are
# automatic. An open enum: other values pass through.
KNOWN_PAUSE_REASONS = (
    "user",
    "provider_outage",
    "provider_rate_limited",
    "provider_billing",
    "node_timeout",
)
# What an empty (or blank) status is exported as: the SDK accepts "", and a label value "" would
# read as no label at all. Not terminal, so the run is asked about again until it says more.
UNKNOWN_STATUS = "unknown"

# The API's integers are 64-bit; a bigger "count" is not one.
MAX_INT = 2**63 - 1
_MAX_FLOAT = sys.float_info.max
# Unix times above this are in milliseconds, as the SDK (pydantic) reads them.
MS_ABOVE = 2e10
# 9999-12-31T23:59:59Z: the last time an ISO-8601 string (or the SDK) can give.
_LAST_TIME = 253402300799.0
# A model keeps at most this many problems (a hostile usage_summary could have thousands).
MAX_PROBLEMS = 8
_PROBLEM_LENGTH = 200


class DecodeError(ValueError):
    """A response body that is not JSON, or a required field that cannot be read."""


class _Bad(Exception):
    """Why a value cannot be read; the caller knows which field it was."""


# --- field readers -----------------------------------------------------------------------------
#
# Hand-written rather than the SDK's pydantic models (which cost about the same CPU per run,
# ~9 us): those reject the whole item on the first bad field instead of keeping the rest, and
# accept negative costs and counts and `true` as 1, which would lower or skew counters.


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if type(value) is dict:  # what json gives: no ABC check (the readers run per field)
        return value
    if not isinstance(value, Mapping):
        raise DecodeError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _req_str(d: Mapping[str, Any], key: str, where: str) -> str:
    value = d.get(key)
    if type(value) is str and value:
        return value
    if not isinstance(value, str) or not value:
        raise DecodeError(f"{where}.{key}: expected a non-empty string, got {_show(value)}")
    return value


def _req_count(d: Mapping[str, Any], key: str, where: str) -> int:
    value = d.get(key)
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    if value is None:
        raise DecodeError(f"{where}.{key}: expected an integer, got null")
    try:
        return _to_count(value)
    except _Bad as bad:
        raise DecodeError(f"{where}.{key}: {bad}") from None


def _status(d: Mapping[str, Any], key: str, where: str) -> str:
    """A required status: any string (unknown ones pass through); blank is UNKNOWN_STATUS."""
    value = d.get(key)
    if type(value) is str:
        return value if value and not value.isspace() else UNKNOWN_STATUS
    raise DecodeError(f"{where}.{key}: expected a string, got {_show(value)}")


def _note(problems: list[str], field: str, why: object) -> None:
    problems.append(f"{field}: {why}")


def _problems(problems: list[str]) -> tuple[str, ...]:
    """Bounded: at most MAX_PROBLEMS entries of at most _PROBLEM_LENGTH characters each."""
    if not problems:
        return ()
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS + 1
        problems = [*problems[: MAX_PROBLEMS - 1], f"more: {more} other values could not be read"]
    return tuple(
        p if len(p) <= _PROBLEM_LENGTH else p[: _PROBLEM_LENGTH - 3] + "..." for p in problems
    )


def _field(key: object) -> str:
    """A key the API chose (a usage_summary entry), fit to name a field in a problem."""
    text = str(key)
    if len(text) > SHOW_TEXT_UP_TO:
        return f"<a key of {len(text)} characters>"
    return text if text.isprintable() else repr(text)


def _to_number(value: Any) -> int | float:
    """A JSON number, or a numeric string as the SDK reads it; never a bool, NaN or infinity."""
    if type(value) is str:
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise _Bad(f"expected a number, got {_show(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"expected a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad(f"not a finite number ({value!r})")
    return value


def _to_non_negative(value: Any) -> int | float:
    """A count, a cost or a duration: a negative one cannot be true (and would lower a counter)."""
    number = _to_number(value)
    if number < 0:
        raise _Bad(f"negative ({_show(value)})")
    return number


def _to_count(value: Any) -> int:
    """A non-negative whole number (2.0 and "2" too, as the SDK reads them)."""
    number = _to_non_negative(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise _Bad(f"not a whole number ({_show(value)})")
        number = int(number)
    if number > MAX_INT:
        raise _Bad(f"too large ({_show(value)})")
    return number


def _to_amount(value: Any) -> float:
    """A non-negative finite number, as a float."""
    number = _to_non_negative(value)
    try:
        return float(number)
    except OverflowError:
        raise _Bad(f"too large ({_show(value)})") from None


def _count(d: Mapping[str, Any], key: str, problems: list[str]) -> int | None:
    value = d.get(key)
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    if value is None:
        return None
    try:
        return _to_count(value)
    except _Bad as bad:
        _note(problems, key, bad)
        return None


def _amount(d: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    value = d.get(key)
    if type(value) is float and 0.0 <= value <= _MAX_FLOAT:  # NaN and infinity fail this too
        return value
    if type(value) is int and 0 <= value <= MAX_INT:
        return float(value)
    if value is None:
        return None
    try:
        return _to_amount(value)
    except _Bad as bad:
        _note(problems, key, bad)
        return None


def _ratio(d: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    value = _amount(d, key, problems)
    if value is not None and value > 1.0:
        _note(problems, key, f"above 1 ({value!r})")
        return None
    return value


def _opt_text(d: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    value = d.get(key)
    if value is None or type(value) is str:
        return value
    _note(problems, key, f"expected a string, got {_show(value)}")
    return None


def _time(d: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    value = d.get(key)
    if type(value) is str:
        cached = _TIMES.get(value)
        if cached is not None and cached >= 0.0:
            return cached
    elif value is None:
        return None
    try:
        return _to_time(value)
    except _Bad as bad:
        _note(problems, key, bad)
        return None


def _to_time(value: Any) -> float:
    """ISO-8601, or Unix seconds (milliseconds above MS_ABOVE), as a number or a numeric string;
    not before 1970 (no run is that old) nor past the year 9999."""
    if type(value) is str:
        try:
            t = parse_time(value)
        except DecodeError:
            raise _Bad(f"expected an ISO-8601 or Unix time, got {_show(value)}") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"expected an ISO-8601 or Unix time, got {_show(value)}")
    else:
        t = _unix(_to_number(value))
    if not 0.0 <= t <= _LAST_TIME:
        raise _Bad(f"out of range ({_show(value)})")
    return t


def _unix(number: float) -> float:
    try:
        seconds = float(number)
    except OverflowError:  # an integer no float holds
        raise _Bad(f"out of range ({_show(number)})") from None
    return seconds / 1000 if abs(seconds) > MS_ABOVE else seconds


# Big enough for the created/started times of a few thousand active runs; updated_at values
# are new on every poll, so a bigger memo would mostly hold dead entries.
TIME_MEMO_SIZE = 16_384
_TIMES: dict[str, float] = {}


def parse_time(value: str, where: str = "time") -> float:
    """ISO-8601 (a time without an offset is taken as UTC), or a numeric string of Unix seconds
    or milliseconds as the SDK reads it, to Unix seconds.

    The same timestamps come back poll after poll (a run's created_at, started_at), so parsed
    values are remembered; the memo is emptied when it grows large."""
    cached = _TIMES.get(value)
    if cached is not None:
        return cached
    if len(_TIMES) >= TIME_MEMO_SIZE:
        _TIMES.clear()
    _TIMES[value] = parsed = _parse_time(value, where)
    return parsed


def _parse_time(value: str, where: str) -> float:
    text = value.strip()
    try:
        number = float(text)  # all digits: Unix time, as pydantic reads "1795950000"
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return _unix(number)
        raise DecodeError(f"{where}: expected an ISO-8601 or Unix time, got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"{where}: expected an ISO-8601 time, got {_show(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# A string the API sent is quoted in an error only up to this length: enough for a number or a
# time, too short for an API key (32 characters after its prefix) that an API echoes back.
SHOW_TEXT_UP_TO = 24


def _show(value: Any) -> str:
    """A value the API sent, as an error quotes it: bounded, and never a long string whole."""
    if type(value) is str:
        return (
            repr(value) if len(value) <= SHOW_TEXT_UP_TO else f"a string of {len(value)} characters"
        )
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _usage(value: Any, problems: list[str]) -> Mapping[str, float] | None:
    """The numeric entries of the free-form usage_summary (it has no stable schema): a value
    that is not a number is skipped, one that is a number but cannot be true (negative, NaN,
    infinite: these feed counters) is a problem."""
    if value is None:
        return None
    if type(value) is not dict and not isinstance(value, Mapping):
        _note(problems, "usage_summary", f"expected an object, got {_show(value)}")
        return None
    usage: dict[str, float] = {}
    for k, v in value.items():
        if (type(v) is float and 0.0 <= v <= _MAX_FLOAT) or (type(v) is int and 0 <= v <= MAX_INT):
            usage[str(k)] = float(v)
        elif _is_number(v):
            try:
                usage[str(k)] = _to_amount(v)
            except _Bad as bad:
                _note(problems, f"usage_summary.{_field(k)}", bad)
    return usage


def _is_number(value: Any) -> bool:
    """A JSON number (not a bool), or a string that reads as one ("12.5", "NaN")."""
    if type(value) is str:
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, int | float) and not isinstance(value, bool)


def _held_nodes(value: Any, problems: list[str]) -> tuple[str, ...] | None:
    """The ids of the nodes a paused run waits in front of (`[{node_id, locales}]`)."""
    if value is None:
        return None
    if type(value) is list:
        ids = [item.get("node_id") for item in value if type(item) is dict]
        names = [i for i in ids if type(i) is str]
        if len(names) == len(value):
            return tuple(names)
    _note(problems, "held_nodes", f"expected a list of {{node_id, locales}}, got {_show(value)}")
    return None


# --- models ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Meta:
    request_id: str | None
    timestamp: float | None


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int | None
    total: int | None


Fingerprint = tuple[int | None, float | None, bool]
# What List Runs items carry and Get Run Status answers do not (onepin-api.md §8).
LIST_ONLY_FIELDS = ("credits", "delivered_audio_ms", "output_line_count")


@dataclass(frozen=True, slots=True)
class Workflow:
    """An item of List Workflows (or Get Workflow)."""

    id: str
    name: str
    runs_count: int | None
    last_run_at: float | None
    last_run_status: str | None
    run_status_counts: Mapping[str, int] | None
    # Fields that were sent but could not be read (so are None): "field: what was wrong".
    problems: tuple[str, ...] = ()

    def fingerprint(self) -> Fingerprint | None:
        """What changes when a run is created, or when the latest run finishes (its credits and
        delivered audio are sent only in List Runs); None when the API gives no way to tell."""
        if self.runs_count is None and self.last_run_at is None:
            return None
        return (self.runs_count, self.last_run_at, self.last_run_status in TERMINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class Run:
    """A run as seen in List Runs or Get Run Status (the latter has more fields)."""

    id: str
    run_number: int
    status: str
    created_at: float | None
    started_at: float | None = None
    completed_at: float | None = None
    updated_at: float | None = None
    total_nodes: int | None = None
    total_steps: int | None = None
    finished_steps: int | None = None
    token_cost: float | None = None
    credits: float | None = None
    usage: Mapping[str, float] | None = None
    error: str | None = None
    triggered_by: str | None = None
    # The API's clock (meta.timestamp) when this was read: durations of running runs use it.
    observed_at: float | None = None
    # True when it came from Get Run Status (all fields), False from a List Runs item.
    detailed: bool = False
    # Added by the SDK (onepin-api.md §8); held_nodes only in Get Run Status, as node ids.
    finished_nodes: int | None = None
    held_nodes: tuple[str, ...] | None = None
    paused_ms: int | None = None
    pause_reason: str | None = None
    pause_error: str | None = None
    delivered_audio_ms: int | None = None
    output_line_count: int | None = None
    # Fields that were sent but could not be read (so are None): "field: what was wrong", the
    # field first; at most MAX_PROBLEMS entries of at most 200 characters.
    problems: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def with_list_fields(self, listed: Run | None) -> Run:
        """This run with the fields only List Runs sends (LIST_ONLY_FIELDS) taken from `listed`,
        the same run as a run list showed it, where this one lacks them. Only when both show the
        run finished: its values are then final, while an active run's would be stale by the
        next poll (so they are left absent)."""
        if listed is None or listed.id != self.id or not (self.terminal and listed.terminal):
            return self
        changes = {
            name: getattr(listed, name)
            for name in LIST_ONLY_FIELDS
            if getattr(self, name) is None and getattr(listed, name) is not None
        }
        return replace(self, **changes) if changes else self

    def usage_value(self, key: str) -> float | None:
        return None if self.usage is None else self.usage.get(key)

    def duration(self) -> float | None:
        """Active time: completed (or, while the run is not finished, the API's now) minus
        started, minus `paused_ms` where the API gives it, as the API's own average duration
        counts it. Never negative."""
        if self.started_at is None:
            return None
        end = self.completed_at
        if end is None and not self.terminal:
            end = self.observed_at
        if end is None:
            return None
        active = end - self.started_at
        if self.paused_ms:
            active -= self.paused_ms / 1000
        return max(0.0, active)


@dataclass(frozen=True, slots=True)
class RunsSummary:
    counts: Mapping[str, int]
    total_runs: int | None
    pass_rate: float | None
    average_duration_seconds: float | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    meta: Meta
    pagination: Pagination
    # Items that could not be read, as (id or position, problem): one bad workflow must not
    # take its page, and so the whole workspace, down with it.
    bad: tuple[tuple[str, str], ...] = ()
    # How many items the page had, readable or not.
    size: int = 0


# --- parsers -----------------------------------------------------------------------------------


def parse_meta(body: Any) -> Meta:
    meta = body.get("meta") if isinstance(body, Mapping) else None
    if not isinstance(meta, Mapping):
        return Meta(None, None)
    request_id = meta.get("request_id")
    timestamp = meta.get("timestamp")
    ts: float | None = None
    if timestamp is not None:
        try:
            ts = _to_time(timestamp)
        except _Bad:
            ts = None
    return Meta(request_id if isinstance(request_id, str) else None, ts)


def parse_pagination(body: Mapping[str, Any]) -> Pagination:
    p = body.get("pagination")
    if not isinstance(p, Mapping):
        return Pagination(None, None)
    limit = p.get("limit")
    total = p.get("total")
    return Pagination(
        limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _data(body: Any, where: str) -> Any:
    if not isinstance(body, Mapping) or "data" not in body:
        raise DecodeError(f"{where}: response has no 'data' field")
    return body["data"]


def parse_workflow(raw: Any, where: str = "workflow") -> Workflow:
    d = _obj(raw, where)
    problems: list[str] = []
    status = _opt_text(d, "last_run_status", problems)
    return Workflow(
        id=_req_str(d, "id", where),
        name=_req_str(d, "name", where),
        runs_count=_count(d, "runs_count", problems),
        last_run_at=_time(d, "last_run_at", problems),
        last_run_status=UNKNOWN_STATUS if status is not None and not status.strip() else status,
        run_status_counts=_status_counts(d.get("run_status_counts"), problems),
        problems=_problems(problems),
    )


def _status_counts(value: Any, problems: list[str]) -> Mapping[str, int] | None:
    """Runs per status; every key is a status (open: new ones pass through)."""
    if value is None:
        return None
    if type(value) is not dict and not isinstance(value, Mapping):
        _note(problems, "run_status_counts", f"expected an object, got {_show(value)}")
        return None
    counts = {}
    for status, v in value.items():
        if type(v) is int and 0 <= v <= MAX_INT:
            counts[str(status)] = v
        elif v is not None:
            try:
                counts[str(status)] = _to_count(v)
            except _Bad as bad:
                _note(problems, f"run_status_counts.{_field(status)}", bad)
    return counts


def parse_run(
    raw: Any, where: str = "run", observed_at: float | None = None, detailed: bool = False
) -> Run:
    d = _obj(raw, where)
    problems: list[str] = []
    triggered = d.get("triggered_by")
    user_name: str | None = None
    if type(triggered) is dict or isinstance(triggered, Mapping):
        name = triggered.get("user_name")
        user_name = name if type(name) is str and name else None
    usage = d.get("usage_summary")
    pause_reason = _opt_text(d, "pause_reason", problems)
    return Run(
        id=_req_str(d, "id", where),
        run_number=_req_count(d, "run_number", where),
        status=_status(d, "status", where),
        created_at=_time(d, "created_at", problems),
        started_at=_time(d, "started_at", problems),
        completed_at=_time(d, "completed_at", problems),
        updated_at=_time(d, "updated_at", problems),
        total_nodes=_count(d, "total_nodes", problems),
        total_steps=_count(d, "total_steps", problems),
        finished_steps=_count(d, "finished_steps", problems),
        token_cost=_amount(d, "token_cost", problems),
        credits=_amount(d, "credits", problems),
        usage=None if usage is None else _usage(usage, problems),
        error=_opt_text(d, "error", problems),
        triggered_by=user_name,
        observed_at=observed_at,
        detailed=detailed,
        finished_nodes=_count(d, "finished_nodes", problems),
        held_nodes=_held_nodes(d.get("held_nodes"), problems),
        paused_ms=_count(d, "paused_ms", problems),
        pause_reason=pause_reason or None,  # "" is no reason: it would be an empty label
        pause_error=_opt_text(d, "pause_error", problems),
        delivered_audio_ms=_count(d, "delivered_audio_ms", problems),
        output_line_count=_count(d, "output_line_count", problems),
        problems=_problems(problems),
    )


def parse_workflow_page(
    body: Any, memo: dict[str, tuple[object, Workflow]] | None = None
) -> Page[Workflow]:
    """A page of List Workflows. With `memo`, an item whose telling fields are the same as last
    time for the same id is not parsed again (most of a big catalogue does not change)."""
    data = _data(body, "list workflows")
    if not isinstance(data, list):
        raise DecodeError("list workflows: 'data' is not a list")
    items = []
    bad = []
    for i, item in enumerate(data):
        key = _workflow_key(item) if memo is not None else None
        seen = memo.get(key[0]) if memo is not None and key is not None else None
        if seen is not None and seen[0] == key:
            items.append(seen[1])
            continue
        try:
            workflow = parse_workflow(item, f"data[{i}]")
        except DecodeError as exc:
            wid = item.get("id") if isinstance(item, Mapping) else None
            bad.append((wid if isinstance(wid, str) and wid else f"data[{i}]", str(exc)))
            continue
        if memo is not None and key is not None:
            memo[workflow.id] = (key, workflow)
        items.append(workflow)
    meta, pagination = parse_meta(body), parse_pagination(body)
    return Page(tuple(items), meta, pagination, tuple(bad), len(data))


def _workflow_key(item: Any) -> tuple[Any, ...] | None:
    """The fields a Workflow is made of, unparsed: small and cheap to compare."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        return None
    counts = item.get("run_status_counts")
    return (
        item["id"],
        item.get("name"),
        item.get("runs_count"),
        item.get("last_run_at"),
        item.get("last_run_status"),
        tuple(counts.items()) if isinstance(counts, Mapping) else counts,
    )


def parse_run_page(body: Any) -> Page[Run]:
    """A page of List Runs; an item that cannot be read (no usable id, run number or status) is
    kept out, in `Page.bad`, and costs only itself."""
    data = _data(body, "list runs")
    if not isinstance(data, list):
        raise DecodeError("list runs: 'data' is not a list")
    meta = parse_meta(body)
    items = []
    bad = []
    for i, item in enumerate(data):
        try:
            items.append(parse_run(item, f"data[{i}]", observed_at=meta.timestamp))
        except DecodeError as exc:
            rid = item.get("id") if isinstance(item, Mapping) else None
            bad.append((rid if isinstance(rid, str) and rid else f"data[{i}]", str(exc)))
    return Page(tuple(items), meta, parse_pagination(body), tuple(bad), len(data))


def parse_run_status(body: Any) -> Run:
    meta = parse_meta(body)
    return parse_run(_data(body, "run status"), "data", observed_at=meta.timestamp, detailed=True)


# Runs Summary has a fixed schema (the SDK's RunsSummaryOut): its run counts are these keys and
# nothing else; `delivered_audio_ms` is an integer beside them, not a status.
SUMMARY_STATUSES = ("pending", "running", "completed", "failed", "cancelled", "paused")


def parse_runs_summary(body: Any) -> RunsSummary:
    d = _obj(_data(body, "runs summary"), "data")
    problems: list[str] = []
    counts: dict[str, int] = {}
    for status in SUMMARY_STATUSES:
        value = _count(d, status, problems)
        if value is not None:
            counts[status] = value
    return RunsSummary(
        counts=counts,
        total_runs=_count(d, "total_runs", problems),
        pass_rate=_ratio(d, "pass_rate", problems),
        average_duration_seconds=_amount(d, "average_duration_seconds", problems),
        problems=_problems(problems),
    )


def parse_error_message(body: Any) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from either documented error shape, or a flat one."""
    if not isinstance(body, Mapping):
        return None, None, None
    request_id = parse_meta(body).request_id
    err = body.get("error")
    if isinstance(err, Mapping):
        code, message = err.get("code"), err.get("message")
        return _text(code), _text(message), request_id
    if "code" in body or "message" in body:
        return _text(body.get("code")), _text(body.get("message")), request_id
    detail = body.get("detail")
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail[:3]:
            if isinstance(item, Mapping):
                loc = item.get("loc")
                where = ".".join(str(x) for x in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "VALIDATION_ERROR", "; ".join(parts) or None, request_id
    if isinstance(detail, str):
        return None, _text(detail), request_id
    return None, None, request_id


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
