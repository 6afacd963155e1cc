"""Cron schedules of workflows (exporter/schedule.py), by tables: the expected fire times an
operator reads on the schedule panel, whether a fire counts as missed (what the alert says), and
what Get Workflow's triggers give, whatever their shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from exporter.models import MAX_PROBLEMS
from exporter.schedule import (
    API,
    CONFIG,
    Schedule,
    ScheduleError,
    _expected_times,
    choose,
    expected_times,
    make_schedule,
    schedule_from_definition,
)


def at(text: str) -> float:
    """Unix seconds of an ISO time (UTC unless it says otherwise)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.timestamp()


def in_2026(text: str) -> float:
    """``12-02T12:00:30`` is in 2026 (UTC); ``+01-01T08:00:00`` is in 2027."""
    return at(f"2027-{text[1:]}Z" if text.startswith("+") else f"2026-{text}Z")


# --- expected times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "now", "last", "following"),
    [
        # Every minute: the fire at now is not in the future; fractions of a second do not count.
        ("* * * * *", "UTC", "12-02T12:00:30", "12-02T12:00:00", "12-02T12:01:00"),
        ("* * * * *", "UTC", "12-02T12:00:00", "12-02T12:00:00", "12-02T12:01:00"),
        ("* * * * *", "UTC", "12-02T12:00:59.9", "12-02T12:00:00", "12-02T12:01:00"),
        # The API docs' sample: 08:00 on the first of each month.
        ("0 8 1 * *", "UTC", "03-15T00:00:00", "03-01T08:00:00", "04-01T08:00:00"),
        ("0 8 1 * *", "UTC", "12-31T23:59:59", "12-01T08:00:00", "+01-01T08:00:00"),
        # Week days by name, and a macro.
        ("0 6 * * MON-FRI", "UTC", "12-05T12:00:00", "12-04T06:00:00", "12-07T06:00:00"),
        ("@daily", "UTC", "12-02T12:00:00", "12-02T00:00:00", "12-03T00:00:00"),
        # 02:00 in Berlin is midnight UTC in summer (CEST) ...
        ("0 2 * * *", "Europe/Berlin", "06-10T12:00:00", "06-10T00:00:00", "06-11T00:00:00"),
        # ... and 01:00 UTC in winter (CET).
        ("0 2 * * *", "Europe/Berlin", "12-02T12:00:00", "12-02T01:00:00", "12-03T01:00:00"),
        # Spring forward: 02:30 does not exist on 29 March; like Debian cron, it runs at 03:00 CEST.
        ("30 2 * * *", "Europe/Berlin", "03-29T12:00:00", "03-29T01:00:00", "03-30T00:30:00"),
        # The hour of the fall back (01:00-02:00 UTC is 02:00-03:00 twice in Berlin): fire times
        # around it are counted in Unix time, not in wall-clock time.
        ("* * * * *", "Europe/Berlin", "10-25T00:59:59", "10-25T00:59:00", "10-25T01:00:00"),
        ("0 * * * *", "Europe/Berlin", "10-25T01:30:00", "10-25T01:00:00", "10-25T02:00:00"),
        # Fall back: 02:30 happens twice on 25 October; it runs once, the first time.
        ("30 2 * * *", "Europe/Berlin", "10-25T12:00:00", "10-25T00:30:00", "10-26T01:30:00"),
    ],
)  # fmt: skip
def test_expected_times(cron: str, zone: str, now: str, last: str, following: str) -> None:
    expected = expected_times(make_schedule(cron, zone), in_2026(now))
    assert (expected.last, expected.next) == (in_2026(last), in_2026(following))


def test_remembered_fire_times_are_the_ones_cronsim_gives() -> None:
    """Fire times are remembered per gap between two fires: whatever order polls come in,
    and on the very second of a fire, the answer is the one computed afresh."""
    schedule = make_schedule("*/7 9-17 * * MON-FRI", "America/New_York")
    times = [at("2026-11-27T13:00:00Z") + k * 397.3 for k in range(60)]
    for now in [*times, *times[::-1], *times[::7]]:
        assert expected_times(schedule, now) == _expected_times(schedule, now)
    every_minute = make_schedule("* * * * *")
    assert expected_times(every_minute, at("2026-12-02T12:00:30Z")).last == at(
        "2026-12-02T12:00:00Z"
    )
    assert expected_times(every_minute, at("2026-12-02T12:01:00Z")).last == at(
        "2026-12-02T12:01:00Z"
    )


# --- checking a schedule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "zone", "grace", "message"),
    [
        ("61 * * * *", "UTC", 600, "schedule '61 * * * *': Bad minute (five fields"),
        ("* * * *", "UTC", 600, "schedule '* * * *': 4 fields where cron has 5"),
        ("0 * * * * *", "UTC", 600, "6 fields where cron has 5"),
        ("", "UTC", 600, "schedule: expected a cron expression"),
        ("@fortnightly", "UTC", 600, "1 fields where cron has 5"),
        ("0 0 30 2 *", "UTC", 600, "Bad day-of-month"),
        ("0 2 * * *", "Mars/Olympus_Mons", 600, "'Mars/Olympus_Mons': not a known IANA time zone"),
        ("0 2 * * *", "../etc/passwd", 600, "not a known IANA time zone"),
        ("0 2 * * *", "UTC", -1, "schedule grace: expected seconds >= 0, got -1"),
        ("0 2 * * *", "UTC", float("nan"), "expected seconds >= 0, got nan"),
        ("0 2 * * *", "UTC", True, "expected seconds, got bool"),
    ],
)
def test_a_bad_schedule_is_refused_with_what_is_wrong(
    cron: str, zone: str, grace: Any, message: str
) -> None:
    with pytest.raises(ScheduleError) as raised:
        make_schedule(cron, zone, grace)
    assert message in str(raised.value)


def test_a_good_schedule_keeps_what_was_given() -> None:
    assert make_schedule(" 0 2 * * * ", "Europe/Berlin", 30) == Schedule(
        "0 2 * * *", "Europe/Berlin", 30.0, CONFIG
    )
    assert make_schedule("@hourly") == Schedule("@hourly", "UTC", 600.0, CONFIG)


# --- the API's triggers -------------------------------------------------------------------


def api(cron: str, zone: str = "UTC", grace: float = 600.0) -> Schedule:
    return Schedule(cron, zone, grace, API)


def cron(text: Any, **more: Any) -> dict[str, Any]:
    """A schedule trigger as the API docs' sample shows it."""
    return {"type": "schedule", "cron": text, **more}


def triggers(*items: Any) -> dict[str, Any]:
    return {"triggers": list(items)}


T0 = "definition.triggers[0]"


@pytest.mark.parametrize(
    ("definition", "schedule", "problems"),
    [
        # The docs' sample, and the same with a time zone.
        ({"steps": [], **triggers(cron("0 8 1 * *"))}, api("0 8 1 * *"), ()),
        (triggers(cron("0 8 * * *", timezone="Europe/Berlin")),
         api("0 8 * * *", "Europe/Berlin"), ()),
        (triggers(cron("0 8 * * *", timezone=None)), api("0 8 * * *"), ()),
        # No triggers, or none that is a schedule: nothing to watch, nothing wrong.
        ({}, None, ()),
        ({"nodes": [], "edges": []}, None, ()),
        ({"triggers": None}, None, ()),
        (triggers(), None, ()),
        (triggers({"type": "webhook", "url": "https://example.com"}, {"type": "manual"}), None, ()),
        # Shapes nobody documented.
        (None, None, ("definition: expected an object, got None",)),
        ([], None, ("definition: expected an object, got a list of 0",)),
        ({"triggers": "0 8 * * *"},
         None, ("definition.triggers: expected a list, got '0 8 * * *'",)),
        ({"triggers": cron("0 8 * * *")},
         None, ("definition.triggers: expected a list, got an object",)),
        (triggers(42, cron("0 8 * * *")), api("0 8 * * *"), (f"{T0}: expected an object, got 42",)),
        (triggers({"type": "schedule"}),
         None, (f"{T0}.cron: expected a cron expression, got None",)),
        (triggers(cron({"minute": 0})),
         None, (f"{T0}.cron: expected a cron expression, got an object",)),
        (triggers({"type": "schedule", "every_seconds": 300}),
         None, (f"{T0}.cron: expected a cron expression, got None",)),
        (triggers(cron("61 * * * *")),
         None, (f"{T0}.cron: not a usable cron expression ('61 * * * *')",)),
        (triggers(cron("0 8 * * * 2026")),
         None, (f"{T0}.cron: not a usable cron expression ('0 8 * * * 2026')",)),
        (triggers(cron("0 8 * * *", timezone="Moon/Base")),
         None, (f"{T0}.timezone: not a known time zone ('Moon/Base')",)),
        (triggers(cron("0 8 * * *", timezone=2)),
         None, (f"{T0}.timezone: expected a time zone name, got 2",)),
        # A bad trigger does not hide a good one; of two good ones, the first is watched.
        (triggers(cron("bad"), cron("0 9 * * *"), cron("0 21 * * *")),
         api("0 9 * * *"), (f"{T0}.cron: not a usable cron expression ('bad')",
                            "definition.triggers[2]: another schedule trigger; "
                            "only the first is watched")),
    ],
)  # fmt: skip
def test_a_schedule_is_read_from_the_triggers_whatever_their_shape(
    definition: Any, schedule: Schedule | None, problems: tuple[str, ...]
) -> None:
    assert schedule_from_definition(definition) == (schedule, problems)


def test_the_api_schedule_takes_the_grace_it_is_given() -> None:
    definition = {"triggers": [{"type": "schedule", "cron": "* * * * *"}]}
    assert schedule_from_definition(definition, grace=30) == (api("* * * * *", grace=30), ())


def test_hostile_triggers_give_bounded_problems_that_never_quote_long_text() -> None:
    secret = "op_live_" + "k" * 32
    triggers = [{"type": "schedule", "cron": secret}] + [{"type": "schedule"}] * 50
    schedule, problems = schedule_from_definition({"triggers": triggers})
    assert schedule is None
    assert len(problems) == MAX_PROBLEMS and problems[-1].startswith("more:")
    assert problems[0] == "definition.triggers[0].cron: not a usable cron expression " + (
        "(a string of 40 characters)"
    )
    assert all(secret not in problem and len(problem) <= 200 for problem in problems)


def test_the_config_schedule_wins_over_the_apis() -> None:
    configured, from_api = make_schedule("0 2 * * *"), api("0 8 * * *")
    assert choose(configured, from_api) is configured
    assert choose(None, from_api) is from_api
    assert choose(configured, None) is configured
    assert choose(None, None) is None
