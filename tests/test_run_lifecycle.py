"""A run's whole life, driven by the simulator's clock, as the exporter shows it."""

from __future__ import annotations

import asyncio

from exporter.simulator.clock import ManualClock
from exporter.simulator.config import SimulatorConfig
from exporter.simulator.server import RunningSimulator
from exporter.wiring import build_poller
from tests.helpers import exposition, make_config, series, value


def test_pending_then_running_with_growing_steps_then_failed_and_counted_once() -> None:
    clock = ManualClock()
    with RunningSimulator(SimulatorConfig(workflows=4, seed=11, clock=clock)) as sim:
        busy = {plan.workflow for plan in sim.model.active_runs()}
        index = next(i for i in range(4) if i not in busy)  # a workflow with no active run
        workflow_id = sim.model.profiles[index].id
        poller = build_poller(make_config(api_url=sim.url, token=sim.token))
        wf = {"workflow_id": workflow_id}

        async def scrape() -> str:
            return exposition(await poller.snapshot(30))

        async def life() -> None:
            before = await scrape()
            failed_before = value(
                before, "onepin_workflow_runs_finished_total", status="failed", **wf
            )
            plan = sim.model.start_run(
                workflow_id, outcome="failed", duration_seconds=600, pending_seconds=60,
                total_steps=20,
            )  # fmt: skip
            run = {"run_id": plan.id}

            text = await scrape()
            assert value(text, "onepin_run_status", status="pending", **run) == 1
            assert value(text, "onepin_run_duration_seconds", **run) is None
            assert value(text, "onepin_workflow_last_run_status", status="pending", **wf) == 1

            clock.advance(120)
            text = await scrape()
            assert value(text, "onepin_run_status", status="running", **run) == 1
            first_steps = value(text, "onepin_run_finished_steps", **run)
            assert first_steps is not None and first_steps < 20
            assert value(text, "onepin_run_duration_seconds", **run) == 60

            clock.advance(240)
            text = await scrape()
            later_steps = value(text, "onepin_run_finished_steps", **run)
            assert later_steps is not None and later_steps > first_steps
            assert value(text, "onepin_run_duration_seconds", **run) == 300

            clock.advance(600)
            for _ in range(3):  # finished, then seen again: counted once
                text = await scrape()
                assert not series(text, "onepin_run_status", **run)
                assert value(text, "onepin_workflow_last_run_status", status="failed", **wf) == 1
                failed = value(text, "onepin_workflow_runs_finished_total", status="failed", **wf)
                assert failed == (failed_before or 0) + 1
            await poller.aclose()

        asyncio.run(life())
