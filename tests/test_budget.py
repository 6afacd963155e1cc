"""The API budget (design §5) against the simulator: a regression in call counts fails CI."""

from __future__ import annotations

import asyncio
import math

from exporter.simulator.config import SimulatorConfig
from exporter.simulator.server import RunningSimulator
from exporter.wiring import build_poller
from tests.helpers import make_config

W, A = 250, 20


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
