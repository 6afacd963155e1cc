"""The API budget (design §5) against the simulator: a regression in call counts fails CI."""

from __future__ import annotations

import asyncio
import json
import math
import urllib.request
from typing import Any

import pytest

from exporter.simulator.clock import ManualClock
from exporter.simulator.config import SimulatorConfig
from exporter.simulator.server import RunningSimulator
from exporter.wiring import build_poller
from tests.helpers import make_config

W, A = 250, 20
# Churn: more active runs, so that 10 % of them is more than a rounding error.
CHURN_A, CHURN_SHARE, CHURN_POLLS = 50, 0.1, 4


def calls_per_poll(polls: int) -> list[dict[str, int]]:
    with RunningSimulator(SimulatorConfig(workflows=W, active_runs=A, seed=5)) as sim:
        poller = build_poller(make_config(api_url=sim.url, token=sim.token))

        async def run() -> list[dict[str, int]]:
            counts = []
            for _ in range(polls):
                sim.stats.reset()
                snapshot = await poller.snapshot(30)
                assert snapshot.workspaces[0].up
                counts.append({k: v for k, v in sim.stats.snapshot()["requests"].items() if v})
            await poller.aclose()
            return counts

        return asyncio.run(run())


def test_steady_state_polls_cost_one_catalogue_pass_plus_one_call_per_active_run() -> None:
    cold, *steady = calls_per_poll(4)
    minimum = math.ceil(W / 100) + A
    # Cold: the catalogue, every workflow's runs once, the latest run's status, summaries.
    assert cold["list_workflows"] == math.ceil(W / 100)
    assert cold["list_runs"] == W
    for counts in steady:
        total = sum(counts.values())
        assert total <= 1.1 * minimum + 2, counts
        # Every active run is asked about in every poll (not fewer: that would be stale data).
        assert counts.get("get_run_status", 0) >= A, counts
        assert counts.get("list_workflows") == math.ceil(W / 100), counts
        assert counts.get("list_runs", 0) <= 2, counts  # only workflows with a new run


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def churn_polls() -> list[tuple[dict[str, int], int, int, int]]:
    """Two quiet polls, then CHURN_POLLS polls each after POST /_sim/churn of CHURN_SHARE:
    per poll, the calls by endpoint, the runs that finished, the workflows with a new run, and
    the runs active as the poll started. A manual clock: each poll is one second later."""
    config = SimulatorConfig(workflows=W, active_runs=CHURN_A, seed=5, clock="manual")
    with RunningSimulator(config) as sim:
        poller = build_poller(make_config(api_url=sim.url, token=sim.token))
        clock = sim.clock
        assert isinstance(clock, ManualClock)

        async def run() -> list[tuple[dict[str, int], int, int, int]]:
            polls = []
            for number in range(2 + CHURN_POLLS):
                finished = started = 0
                if number >= 2:
                    churn = await asyncio.to_thread(
                        post_json, f"{sim.url}/_sim/churn", {"share": CHURN_SHARE}
                    )
                    finished, started = len(churn["finished"]), len(churn["started"])
                    ended = {run["run_id"] for run in churn["finished"]}
                    new = {run["workflow_id"] for run in churn["started"]}
                    assert not new & {run["workflow_id"] for run in churn["finished"]}
                clock.advance(1)  # the churned runs end at the next second
                active = sim.model.active_runs()
                if number >= 2:
                    assert not ended & {plan.id for plan in active}, "an ended run still active"
                    assert new <= {sim.model.profiles[p.workflow].id for p in active}
                sim.stats.reset()
                snapshot = await poller.snapshot(30)
                assert snapshot.workspaces[0].up
                calls = {k: v for k, v in sim.stats.snapshot()["requests"].items() if v}
                polls.append((calls, finished, started, len(active)))
            await poller.aclose()
            return polls

        return asyncio.run(run())


def churn_minimum(finished: int, started: int, active: int) -> int:
    """The catalogue, each active run's status, one call per run that finished, and one per
    workflow with a new run (issue 15)."""
    return math.ceil(W / 100) + active + finished + started


def test_churn_ends_and_starts_as_many_runs_and_keeps_the_active_count(
    churn_polls: list[tuple[dict[str, int], int, int, int]],
) -> None:
    for _calls, finished, started, active in churn_polls[2:]:
        assert finished == started == round(CHURN_SHARE * CHURN_A)
        assert active == CHURN_A


def test_a_poll_with_churn_costs_at_most_two_calls_per_change_beyond_the_steady_minimum(
    churn_polls: list[tuple[dict[str, int], int, int, int]],
) -> None:
    """Today's cost (see the next test): churn never makes later polls dearer (a finished run
    that stayed watched would), and every change costs at most two calls."""
    for calls, finished, started, active in churn_polls[2:]:
        steady = math.ceil(W / 100) + active
        assert sum(calls.values()) <= steady + 2 * (finished + started), calls
        assert calls["list_workflows"] == math.ceil(W / 100), calls
        assert calls.get("list_runs", 0) <= finished + started, calls


def test_a_poll_with_10_percent_churn_costs_at_most_its_churn_minimum(
    churn_polls: list[tuple[dict[str, int], int, int, int]],
) -> None:
    for calls, finished, started, active in churn_polls[2:]:
        assert sum(calls.values()) <= 1.1 * churn_minimum(finished, started, active) + 2, calls
