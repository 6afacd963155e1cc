"""Schedules read from Get Workflow's `definition.triggers` (`collection.schedule_triggers`):
which definitions a poll asks for, what that costs (design §5: a steady poll costs nothing
more), and the config's schedule winning over the API's."""

from __future__ import annotations

import asyncio
import math

import pytest

from exporter.models import Workflow
from exporter.schedule import make_schedule
from exporter.simulator import ManualClock, RunningSimulator, SimulatorConfig
from exporter.snapshot import WorkspaceSnapshot
from exporter.triggers import MAX_PER_POLL, to_ask
from exporter.wiring import build_poller
from tests.helpers import make_config
from tests.test_schedule_poll import START, workflow_ids

W, A = 250, 20
HOURLY, EVERY_5 = "0 * * * *", "*/5 * * * *"


def entry(wid: str, updated_at: float | None) -> Workflow:
    return Workflow(wid, f"name-{wid}", 1, 1.0, "completed", None, updated_at=updated_at)


@pytest.mark.parametrize(
    ("seen", "configured", "limit", "asked"),
    [
        ({}, set(), 10, ["a", "b", "c"]),  # first sight: every workflow
        ({"a": 1.0, "b": 2.0, "c": None}, set(), 10, []),  # nothing changed: nothing asked
        ({"a": 1.0, "b": 1.5, "c": None}, set(), 10, ["b"]),  # b's definition changed
        ({"a": 1.0}, set(), 10, ["b", "c"]),  # not read yet (or its ask failed)
        ({}, {"b"}, 10, ["a", "c"]),  # the config's schedule wins: never asked
        ({}, set(), 2, ["a", "b"]),  # a cold start is spread over polls
    ],
)  # fmt: skip
def test_definitions_are_asked_for_at_first_sight_and_when_updated_at_changes(
    seen: dict[str, float | None], configured: set[str], limit: int, asked: list[str]
) -> None:
    selected = {"a": entry("a", 1.0), "b": entry("b", 2.0), "c": entry("c", None)}
    schedule = make_schedule("@daily")
    assert to_ask(selected, dict.fromkeys(configured, schedule), seen, limit) == asked


Polls = list[tuple[dict[str, int], WorkspaceSnapshot]]


def snapshots(sim: RunningSimulator, collection: str, polls: int) -> Polls:
    poller = build_poller(make_config(api_url=sim.url, token=sim.token, collection=collection))

    async def run() -> Polls:
        out = []
        for _ in range(polls):
            sim.stats.reset()
            snapshot = await poller.snapshot(30)
            counts = {k: v for k, v in sim.stats.snapshot()["requests"].items() if v}
            out.append((counts, snapshot.workspaces[0]))
        await poller.aclose()
        return out

    return asyncio.run(run())


def test_a_cold_start_reads_each_definition_once_and_a_steady_poll_costs_nothing_more() -> None:
    config = SimulatorConfig(workflows=W, active_runs=A, seed=5)
    polls = math.ceil(W / MAX_PER_POLL) + 2
    with RunningSimulator(config) as sim:
        results = snapshots(sim, "{min_interval: 0s, schedule_triggers: true}", polls)
    asked = [counts.get("get_workflow", 0) for counts, _ in results]
    assert asked[: polls - 2] == [MAX_PER_POLL, MAX_PER_POLL, W - 2 * MAX_PER_POLL]
    for counts, _ in results[-2:]:  # steady: ⌈W/100⌉ + A, as without schedule triggers
        assert "get_workflow" not in counts, counts
        assert sum(counts.values()) <= 1.1 * (math.ceil(W / 100) + A) + 2, counts


def test_the_configs_schedule_wins_and_costs_no_call() -> None:
    clock = ManualClock(START)
    config = SimulatorConfig(
        workflows=6, seed=4, clock=clock,
        schedules=(("invoice-ocr", EVERY_5), ("nightly-etl", EVERY_5)),
    )  # fmt: skip
    with RunningSimulator(config) as sim:
        ids = workflow_ids(sim.url)
        listed = (
            f"    workflows:\n      - {{id: '{ids['invoice-ocr']}', schedule: '{HOURLY}'}}\n"
            f"      - '{ids['nightly-etl']}'"
        )
        poller = build_poller(
            make_config(api_url=sim.url, token=sim.token, extra_workspace_yaml=listed,
                        collection="{min_interval: 0s, schedule_triggers: true}")
        )  # fmt: skip

        async def run() -> WorkspaceSnapshot:
            snapshot = await poller.snapshot(30)
            await poller.aclose()
            return snapshot.workspaces[0]

        sim.stats.reset()
        workspace = asyncio.run(run())
        assert sim.stats.snapshot()["requests"].get("get_workflow") == 1  # nightly-etl's only
    shown = {wf.id: wf.schedule for wf in workspace.workflows}
    for name, period in (("invoice-ocr", 3600.0), ("nightly-etl", 300.0)):
        times = shown[ids[name]]
        assert times is not None and times.last_expected is not None, name
        assert times.next_expected == times.last_expected + period, name
