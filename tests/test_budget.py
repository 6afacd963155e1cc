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
from exporter.snapshot import Snapshot
from exporter.wiring import build_poller
from tests.helpers import make_config

W, A = 250, 20
# Churn: more active runs, so that 10 % of them is more than a rounding error.
CHURN_A, CHURN_SHARE, CHURN_POLLS = 50, 0.1, 4


STEPS = "get_run_steps"


def without_steps(calls: dict[str, int]) -> int:
    """The calls of a poll but Get Run Steps (node metrics), which are counted apart."""
    return sum(n for endpoint, n in calls.items() if endpoint != STEPS)


def finished_runs(snapshot: Snapshot) -> int:
    return sum(sum(wf.totals.finished.values()) for wf in snapshot.workspaces[0].workflows)


def calls_per_poll(polls: int) -> list[tuple[dict[str, int], int]]:
    """Per poll, the calls by endpoint and the runs the exporter saw finish in it."""
    with RunningSimulator(SimulatorConfig(workflows=W, active_runs=A, seed=5)) as sim:
        poller = build_poller(make_config(api_url=sim.url, token=sim.token))

        async def run() -> list[tuple[dict[str, int], int]]:
            counts = []
            before = 0
            for _ in range(polls):
                sim.stats.reset()
                snapshot = await poller.snapshot(30)
                assert snapshot.workspaces[0].up
                calls = {k: v for k, v in sim.stats.snapshot()["requests"].items() if v}
                counts.append((calls, finished_runs(snapshot) - before))
                before = finished_runs(snapshot)
            await poller.aclose()
            return counts

        return asyncio.run(run())


def test_steady_state_polls_cost_one_catalogue_pass_plus_one_call_per_active_run() -> None:
    (cold, _), *steady = calls_per_poll(4)
    minimum = math.ceil(W / 100) + A
    # Cold: the catalogue, every workflow's runs once, the latest run's status, summaries.
    assert cold["list_workflows"] == math.ceil(W / 100)
    assert cold["list_runs"] == W
    assert STEPS not in cold  # history: no run was seen finishing
    for counts, finished in steady:
        # Node metrics: one Get Run Steps per run seen finishing in the poll, no more.
        assert counts.get(STEPS, 0) == finished, counts
        total = without_steps(counts)
        assert total <= 1.1 * minimum + 2, counts
        # Every active run is asked about in every poll (not fewer: that would be stale data).
        assert counts.get("get_run_status", 0) >= A, counts
        assert counts.get("list_workflows") == math.ceil(W / 100), counts
        assert counts.get("list_runs", 0) <= 2, counts  # only workflows with a new run


def test_a_cold_start_cut_by_the_deadline_shows_every_workflow_and_costs_3_calls_per_workflow() -> (
    None
):
    """Issue "Scale", acceptance 4: with polls too short for the cold load (3 s, at 100 ms a
    request: 750 requests take 4.7 s at 16 at a time), every poll shows all W workflows up,
    the backlog falls to 0 poll by poll, and the calls beyond each poll's steady cost total at
    most 3W (List Runs, the latest run's status, Runs Summary per workflow), plus the requests
    in flight when a poll's deadline cut them."""
    config = SimulatorConfig(workflows=W, active_runs=A, seed=5, latency_ms=100)
    with RunningSimulator(config) as sim:
        settings = make_config(api_url=sim.url, token=sim.token)
        poller = build_poller(settings)
        steady = math.ceil(W / 100) + A

        async def run() -> tuple[list[int], int]:
            backlogs, extra = [], 0
            while not backlogs or backlogs[-1]:
                assert len(backlogs) < 40, backlogs
                sim.stats.reset()
                ws = (await poller.snapshot(3.0)).workspaces[0]
                assert ws.up and len(ws.workflows) == W
                down = {wf.id: wf.error for wf in ws.workflows if not wf.up}
                assert not down, (len(backlogs), len(down), list(down.items())[:3])
                backlogs.append(ws.backlog)
                extra += max(0, sum(sim.stats.snapshot()["requests"].values()) - steady)
            await poller.aclose()
            return backlogs, extra

        backlogs, extra = asyncio.run(run())
    assert backlogs == sorted(backlogs, reverse=True), backlogs
    cut = len(backlogs) - 1
    assert cut >= 1, backlogs  # the deadline did spread the cold load over polls
    in_flight = settings.http.max_concurrency
    assert extra <= 3 * W + cut * in_flight, (extra, backlogs)


def post_json(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


Poll = tuple[dict[str, int], int, int, int, int]


def churn(run_nodes: bool, polls: int) -> list[Poll]:
    """Two quiet polls, then `polls` polls each after POST /_sim/churn of CHURN_SHARE: per
    poll, the calls by endpoint, the runs that finished, the workflows with a new run, the runs
    active as the poll started, and the active runs whose finished_steps changed since the last
    poll (or that are new to it). A manual clock: each poll is one second later."""
    config = SimulatorConfig(workflows=W, active_runs=CHURN_A, seed=5, clock="manual")
    collection = f"{{min_interval: 0s, run_nodes: {str(run_nodes).lower()}}}"
    with RunningSimulator(config) as sim:
        # The benchmark shape's runs are days long: Get Run Steps of one is ~13,000 node
        # executions (5 MB, seconds to serve on a loaded machine), longer than the usual 5 s.
        http = "{timeout: 30s, max_concurrency: 8, max_retries: 2}"
        config_ = make_config(api_url=sim.url, token=sim.token, http=http, collection=collection)
        poller = build_poller(config_)
        clock = sim.clock
        assert isinstance(clock, ManualClock)

        async def run() -> list[Poll]:
            out = []
            steps: dict[str, int | None] = {}
            for number in range(2 + polls):
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
                now = {
                    r.id: r.finished_steps
                    for wf in snapshot.workspaces[0].workflows
                    for r in wf.active_runs
                }
                moved = sum(1 for rid, n in now.items() if rid not in steps or steps[rid] != n)
                steps = now
                out.append((calls, finished, started, len(active), moved))
            await poller.aclose()
            return out

        return asyncio.run(run())


@pytest.fixture(scope="module")
def churn_polls() -> list[Poll]:
    return churn(run_nodes=False, polls=CHURN_POLLS)


def churn_minimum(finished: int, started: int, active: int) -> int:
    """The catalogue, each active run's status, one call per run that finished, and one per
    workflow with a new run (issue 15)."""
    return math.ceil(W / 100) + active + finished + started


def test_churn_ends_and_starts_as_many_runs_and_keeps_the_active_count(
    churn_polls: list[Poll],
) -> None:
    for _calls, finished, started, active, _moved in churn_polls[2:]:
        assert finished == started == round(CHURN_SHARE * CHURN_A)
        assert active == CHURN_A


def test_a_poll_with_churn_costs_at_most_two_calls_per_change_beyond_the_steady_minimum(
    churn_polls: list[Poll],
) -> None:
    """Today's cost (see the next test): churn never makes later polls dearer (a finished run
    that stayed watched would), and every change costs at most two calls."""
    for calls, finished, started, active, _moved in churn_polls[2:]:
        steady = math.ceil(W / 100) + active
        assert without_steps(calls) <= steady + 2 * (finished + started), calls
        assert calls["list_workflows"] == math.ceil(W / 100), calls
        assert calls.get("list_runs", 0) <= finished + started, calls


def test_a_poll_with_10_percent_churn_costs_at_most_its_churn_minimum(
    churn_polls: list[Poll],
) -> None:
    for calls, finished, started, active, _moved in churn_polls[2:]:
        assert without_steps(calls) <= 1.1 * churn_minimum(finished, started, active) + 2, calls


# --- node metrics (issue 13): Get Run Steps, counted apart ---------------------------------


def test_with_run_nodes_off_a_poll_adds_one_get_run_steps_per_run_that_finished_in_it(
    churn_polls: list[Poll],
) -> None:
    """At W=250: ⌈W/100⌉ + A as before (the tests above), plus one Get Run Steps per run that
    finished in the poll, and none for the active runs."""
    for calls, finished, _started, _active, _moved in churn_polls:
        assert calls.get(STEPS, 0) == finished, calls
    assert sum(calls.get(STEPS, 0) for calls, *_ in churn_polls) == CHURN_POLLS * round(
        CHURN_SHARE * CHURN_A
    )


def test_with_run_nodes_on_a_poll_adds_one_call_per_active_run_that_moved_on() -> None:
    polls = churn(run_nodes=True, polls=2)
    (cold, _f, _s, active, moved), *rest = polls
    assert cold.get(STEPS, 0) == moved == active  # every active run, once, at the start
    for calls, finished, _started, _active, moved in rest:
        steady = math.ceil(W / 100) + _active
        assert without_steps(calls) <= steady + 2 * (finished + _started), calls
        assert calls.get(STEPS, 0) == finished + moved, calls
