"""The simulator's cron schedules: runs created at the fire times, in simulated time, one fire
skipped on demand, and the schedule shown in Get Workflow's definition.triggers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from cronsim import CronSim

from exporter.schedule import schedule_from_definition
from exporter.simulator import ManualClock, RunningSimulator, SimModel, SimulatorConfig
from exporter.simulator.cli import parse_config
from exporter.simulator.model import CRON_HISTORY
from exporter.simulator.plan import TERMINAL_STATUSES

START = 1_767_225_630  # 2026-01-01T00:00:30Z
EVERY_5 = "*/5 * * * *"
SCHEDULED = {"nightly-etl", "podcast-tts-en"}


def fires(cron: str, low: int, high: int) -> list[int]:
    """The fire times of ``cron`` (UTC) with low < t <= high, straight from cronsim."""
    found = []
    for fire in CronSim(cron, datetime.fromtimestamp(low, UTC)):
        if fire.timestamp() > high:
            return found
        found.append(int(fire.timestamp()))
    return found


def model(**kwargs: object) -> tuple[SimModel, ManualClock]:
    clock = ManualClock(START)
    return SimModel(clock, workflows=6, seed=4, **kwargs), clock  # type: ignore[arg-type]


def created_times(sim: SimModel, index: int, now: int) -> list[int]:
    return [sim.plan(index, n).created for n in range(1, sim.run_count(index, now) + 1)]


# --- runs at fire times -------------------------------------------------------------------


def test_a_scheduled_workflow_runs_at_each_fire_time_and_ends_before_the_next() -> None:
    sim, clock = model(schedules=[("invoice-ocr", EVERY_5)])
    index = sim.profiles[1].index
    assert sim.profiles[1].name == "invoice-ocr" and sim.profiles[1].cron == EVERY_5
    history = fires(EVERY_5, START - 3600, START)[-CRON_HISTORY:]
    for _ in range(12):
        now = int(clock.advance(613))
        expected = history + fires(EVERY_5, START, now)
        assert created_times(sim, index, now) == expected
        plans = [sim.plan(index, n) for n in range(1, len(expected) + 1)]
        for plan, following in zip(plans, expected[1:], strict=False):
            assert plan.end is not None and plan.end < following  # one active run at a time
        active = [p for p in plans if p.status_at(now) not in TERMINAL_STATUSES]
        assert len(active) <= 1
    outcomes = {sim.plan(index, n).outcome for n in range(1, sim.run_count(index, now) + 1)}
    assert "completed" in outcomes


def test_other_workflows_keep_their_natural_schedule() -> None:
    plain, _ = model()
    scheduled, _ = model(schedules=[(plain.profiles[1].id, EVERY_5)])
    now = START + 7200
    for index in (0, 2, 3, 4, 5):
        assert created_times(plain, index, now) == created_times(scheduled, index, now)
        assert scheduled.profiles[index].cron is None


def test_a_missed_fire_and_only_it_creates_no_run() -> None:
    sim, clock = model(schedules=[("invoice-ocr", EVERY_5)], missed=[("invoice-ocr", 2)])
    now = int(clock.advance(1800))
    first, second, third = fires(EVERY_5, START, now)[:3]  # 00:05, 00:10, 00:15
    created = created_times(sim, 1, now)
    assert first in created and second not in created and third in created
    # Every other fire has its run (the alert judges the fires by these creation times).
    assert [fire for fire in fires(EVERY_5, START, now) if fire not in created] == [second]


def test_runs_started_by_hand_do_not_stop_the_schedule() -> None:
    sim, clock = model(schedules=[("invoice-ocr", EVERY_5)])
    clock.advance(100)
    started = sim.start_run(sim.profiles[1].id, outcome="completed", duration_seconds=30)
    now = int(clock.advance(1200))
    created = created_times(sim, 1, now)
    assert started.created in created
    after = [t for t in created if t > started.created]
    assert after == fires(EVERY_5, started.created, now)


# --- Get Workflow ------------------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    config = SimulatorConfig(
        clock="manual",
        workflows=6,
        schedules=(("nightly-etl", "0 2 * * *"), ("podcast-tts-en", "* * * * *")),
    )
    with RunningSimulator(config) as running:
        yield running


def test_get_workflow_shows_the_cron_of_scheduled_workflows_only(sim: RunningSimulator) -> None:
    headers = {"Authorization": f"Bearer {sim.token}"}
    with httpx.Client(base_url=f"{sim.url}/api/v1", headers=headers, timeout=10) as api:
        definitions = {
            profile.name: api.get(f"/workflows/{profile.id}").json()["data"]["definition"]
            for profile in sim.model.profiles
        }
        listed = api.get("/workflows", params={"include_definition": "true"}).json()["data"]
    assert definitions["nightly-etl"]["triggers"] == [{"type": "schedule", "cron": "0 2 * * *"}]
    assert definitions["podcast-tts-en"]["triggers"] == [{"type": "schedule", "cron": "* * * * *"}]
    assert all(d["triggers"] == [] for n, d in definitions.items() if n not in SCHEDULED)
    assert {item["name"]: item["definition"] for item in listed} == definitions
    # The exporter's reader takes the schedule from it.
    schedule, problems = schedule_from_definition(definitions["nightly-etl"])
    assert schedule is not None and schedule.cron == "0 2 * * *" and problems == ()


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"schedules": (("nightly-etl", "61 * * * *"),)}, "cron '61 * * * *': Bad minute"),
        ({"schedules": (("nightly-etl", "0 2 * *"),)}, "expected 5 fields"),
        ({"schedules": (("no-such-flow", "* * * * *"),)}, "no workflow 'no-such-flow'"),
        ({"missed": (("nightly-etl", 1),)}, "'nightly-etl' has no cron schedule"),
        (
            {"schedules": (("nightly-etl", "* * * * *"),), "missed": (("nightly-etl", 0),)},
            "counted from 1, not 0",
        ),
        (
            {"schedules": (("nightly-etl", "* * * * *"),), "active_runs": 1},
            "do not mix",
        ),
    ],
)
def test_bad_schedule_settings_are_refused_with_what_is_wrong(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        SimulatorConfig(workflows=4, **settings)  # type: ignore[arg-type]


def test_the_command_line_takes_schedules_and_missed_fires() -> None:
    config, _, _ = parse_config(
        [
            "--token=t0k3n",
            "--schedule=nightly-etl=0 2 * * *",
            "--schedule",
            "catalog-sync=* * * * *",
            "--miss-schedule=catalog-sync@3",
            "--miss-schedule=nightly-etl",
        ]
    )
    assert config.schedules == (("nightly-etl", "0 2 * * *"), ("catalog-sync", "* * * * *"))
    assert config.missed == (("catalog-sync", 3), ("nightly-etl", 1))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule=nightly-etl"], "expected WORKFLOW=CRON"),
        (["--schedule=nightly-etl=61 * * * *"], "Bad minute"),
        (["--miss-schedule=nightly-etl@0"], "expected WORKFLOW or WORKFLOW@N"),
        (["--miss-schedule=nightly-etl"], "has no cron schedule"),
        (["--schedule=nowhere=* * * * *"], "no workflow 'nowhere'"),
    ],
)
def test_bad_schedule_flags_are_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_config(["--token=t0k3n", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
