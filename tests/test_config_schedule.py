"""A workflow's `schedule`, `schedule_timezone` and `schedule_grace` in the config: read into
its entry, and a bad one refused with an error naming the key and what is wrong."""

from __future__ import annotations

import pytest

from exporter.config import parse_config
from exporter.yamltree import ConfigError

HEAD = """
workspaces:
  - name: prod
    api_url: https://api.onepin.ai
    token: op_live_schedule0123456789
    workflows:
"""


def workflows(*entries: str) -> str:
    return HEAD + "".join(f"      - {entry}\n" for entry in entries)


def test_a_schedule_is_read_with_its_defaults() -> None:
    config = parse_config(
        workflows("wf-plain", "{id: wf-1, schedule: '@daily'}",
                  "{id: wf-2, schedule: '0 2 * * *', schedule_timezone: Europe/Berlin, "
                  "schedule_grace: 90s}")
    )  # fmt: skip
    plain, daily, nightly = config.workspaces[0].workflows or ()
    assert plain.schedule is None
    assert (daily.schedule, daily.schedule_timezone, daily.schedule_grace) == ("@daily", "UTC", 600)
    assert (nightly.schedule, nightly.schedule_timezone, nightly.schedule_grace) == (
        "0 2 * * *", "Europe/Berlin", 90.0,
    )  # fmt: skip


def test_an_empty_schedule_is_no_schedule() -> None:
    # A templated config may leave the key empty: the workflow is watched without a schedule.
    config = parse_config(workflows("{id: wf-1, schedule: null}", "{id: wf-2, schedule:}"))
    assert [w.schedule for w in config.workspaces[0].workflows or ()] == [None, None]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{id: wf-1, schedule: '61 * * * *'}",
         "workflows[0].schedule: schedule '61 * * * *': Bad minute (five fields: minute hour"),
        ("{id: wf-1, schedule: '* * *'}",
         "workflows[0].schedule: schedule '* * *': 3 fields where cron has 5"),
        ("{id: wf-1, schedule: '@daily', schedule_timezone: Mars/Olympus}",
         "workflows[0].schedule_timezone: schedule timezone 'Mars/Olympus': not a known IANA "
         "time zone"),
        ("{id: wf-1, schedule: '@daily', schedule_grace: soon}",
         "workflows[0].schedule_grace: expected a duration"),
        ("{id: wf-1, schedule_grace: 5m}",
         "workflows[0].schedule_grace: applies to a `schedule`: set one, or remove it"),
    ],
)  # fmt: skip
def test_a_bad_schedule_is_refused_naming_the_key(entry: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(workflows(entry), "cfg.yaml")
    assert any(problem in p and p.startswith("cfg.yaml:") for p in err.value.problems), (
        err.value.problems
    )
