"""A workflow's configured schedule, polled from the simulator: the schedule gauges an operator
(and OnePinScheduledRunMissed) reads, at the poll's wall-clock time, for that workflow only;
a fire the simulator skips shows as an expected time newer than the latest run's creation."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

from exporter.client import OnePinClient
from exporter.config import Config
from exporter.poller import WorkspacePoller
from exporter.rendering import MetricsRenderer
from exporter.sharedpoll import Poller
from exporter.simulator import ManualClock, RunningSimulator, SimulatorConfig
from tests.helpers import make_config

START = 1_767_225_630  # 2026-01-01T00:00:30Z
SCHEDULED, OTHER = "invoice-ocr", "nightly-etl"
EVERY_5 = "*/5 * * * *"
MINUTE = 60.0


def workflow_ids(url: str) -> dict[str, str]:
    with urllib.request.urlopen(f"{url}/_sim/workflows", timeout=10) as response:
        return {w["name"]: w["id"] for w in json.load(response)}


def config_for(url: str, token: str, ids: dict[str, str]) -> Config:
    workflows = (
        f"    workflows:\n      - {{id: {ids[SCHEDULED]}, schedule: '{EVERY_5}', "
        f"schedule_grace: 90s}}\n      - {ids[OTHER]}\n"
    )
    return make_config(api_url=url, token=token, extra_workspace_yaml=workflows)


def gauges(text: str, workflow_id: str) -> dict[str, float]:
    """The workflow's schedule gauges and its latest run's creation time, by family."""
    found = {}
    for match in re.finditer(r"^(onepin_workflow_\w+)\{([^}]*)\} (\S+)$", text, re.M):
        family, labels, value = match.groups()
        wanted = family.startswith("onepin_workflow_schedule_") or family.endswith(
            "last_run_created_timestamp_seconds"
        )
        if wanted and f'workflow_id="{workflow_id}"' in labels:
            found[family.removeprefix("onepin_workflow_")] = float(value)
    return found


def test_schedule_gauges_follow_the_poll_time_and_show_a_skipped_fire() -> None:
    clock = ManualClock(START)
    sim_config = SimulatorConfig(
        workflows=6, seed=4, clock=clock, schedules=((SCHEDULED, EVERY_5),),
        missed=((SCHEDULED, 2),),
    )  # fmt: skip
    with RunningSimulator(sim_config) as sim:
        ids = workflow_ids(sim.url)
        config = config_for(sim.url, sim.token, ids)
        ws = config.workspaces[0]
        client = OnePinClient(ws.api_url, ws.token, config.http)
        # The exporter's wall clock is the simulator's: fire times and run times agree.
        poller = Poller([WorkspacePoller(ws, client, config.collection, wall_clock=clock.now)], 0)
        renderer = MetricsRenderer()

        async def scrape_at(advance: float) -> str:
            clock.advance(advance)
            return renderer.render(await poller.snapshot(30))

        async def run() -> list[str]:
            texts = [await scrape_at(0)]
            # 00:05:30, 00:10:30 (the 2nd fire, at 00:10, is skipped) and 00:11:45.
            for advance in (5 * MINUTE, 5 * MINUTE, 75.0):
                texts.append(await scrape_at(advance))
            await poller.aclose()
            return texts

        first, fifth, tenth, late = asyncio.run(run())
    fire_0, fire_5, fire_10 = START - 30, START - 30 + 300, START - 30 + 600
    assert gauges(first, ids[SCHEDULED]) == {
        "last_run_created_timestamp_seconds": fire_0,
        "schedule_last_expected_timestamp_seconds": fire_0,
        "schedule_next_expected_timestamp_seconds": fire_5,
        "schedule_grace_seconds": 90.0,
    }
    met = gauges(fifth, ids[SCHEDULED])
    assert (
        met["last_run_created_timestamp_seconds"]
        >= met["schedule_last_expected_timestamp_seconds"]
        == fire_5
    )
    for text in (tenth, late):  # the skipped fire: no run created since it
        missed = gauges(text, ids[SCHEDULED])
        assert missed["schedule_last_expected_timestamp_seconds"] == fire_10
        assert missed["last_run_created_timestamp_seconds"] == fire_5
    # The workflow without a schedule has no schedule gauges.
    assert set(gauges(late, ids[OTHER])) == {"last_run_created_timestamp_seconds"}
