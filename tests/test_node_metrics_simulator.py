"""Issue 13, acceptance 1 (node metrics): against the simulator, every node family appears with
its documented labels, and its values agree, node by node, with the Get Run Steps answers the
simulator serves for the runs the exporter saw finish (fetched here, apart from the exporter)."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from exporter.apistats import Histogram
from exporter.metrics import CURRENT_NODE, LAST_FAILURE_NODE, NODE_DURATION, NODE_EXECUTIONS
from exporter.nodes import finished_run_nodes, parse_run_steps, running_nodes
from exporter.nodetotals import NODE_DURATION_BUCKETS
from exporter.redact import Redactor
from exporter.simulator.clock import ManualClock
from exporter.simulator.config import SimulatorConfig
from exporter.simulator.server import RunningSimulator
from exporter.snapshot import Snapshot
from exporter.wiring import build_poller
from tests.helpers import exposition, make_config, samples

TERMINAL = {"completed", "failed", "cancelled"}
REDACTOR = Redactor([])
ADVANCES = (45.0, 300.0, 1800.0, 1800.0)


def get(client: httpx.Client, path: str) -> Any:
    response = client.get(path)
    response.raise_for_status()
    return response.json()["data"]


def runs_by_workflow(client: httpx.Client) -> dict[str, list[dict[str, Any]]]:
    workflows = get(client, "/api/v1/workflows?limit=100&sort=name&order=asc")
    return {
        wf["id"]: get(client, f"/api/v1/workflows/{wf['id']}/runs?limit=100&order=desc")
        for wf in workflows
    }


def polled() -> tuple[str, dict[str, list[dict[str, Any]]], dict[str, set[str]], Any]:
    """The exposition after polls across simulated hours, every workflow's runs then, the runs
    finished before the first poll (history, not counted), and the steps of each run."""
    config = SimulatorConfig(workflows=12, seed=7, clock="manual")
    with RunningSimulator(config) as sim:
        clock = sim.clock
        assert isinstance(clock, ManualClock)
        collection = "{min_interval: 0s, run_nodes: true}"
        poller = build_poller(make_config(api_url=sim.url, token=sim.token, collection=collection))
        headers = {"Authorization": f"Bearer {sim.token}"}
        with httpx.Client(base_url=sim.url, headers=headers, timeout=30) as client:

            async def run() -> Snapshot:
                snapshot = await poller.snapshot(30)
                history.update(
                    {
                        wid: {r["id"] for r in runs if r["status"] in TERMINAL}
                        for wid, runs in (await asyncio.to_thread(runs_by_workflow, client)).items()
                    }
                )
                for seconds in ADVANCES:
                    clock.advance(seconds)
                    snapshot = await poller.snapshot(30)
                await poller.aclose()
                return snapshot

            history: dict[str, set[str]] = {}
            snapshot = asyncio.run(run())
            assert all(wf.up for wf in snapshot.workspaces[0].workflows)
            runs = runs_by_workflow(client)
            steps = {
                run["id"]: get(client, f"/api/v1/workflows/{wid}/runs/{run['id']}/steps")
                for wid, listed in runs.items()
                for run in listed
                if run["id"] not in history[wid]  # counted, or active now
            }
    return exposition(snapshot), runs, history, steps


@dataclass(frozen=True)
class Seen:
    samples: list[Any]  # of the exposition, parsed once: a few thousand
    runs: dict[str, list[dict[str, Any]]]
    history: dict[str, set[str]]
    steps: dict[str, Any]

    def series(self, name: str, **labels: str) -> list[Any]:
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def read(self, run: dict[str, Any]) -> Any:
        return parse_run_steps({"data": self.steps[run["id"]], "meta": {}})

    def counted(self, wid: str) -> list[dict[str, Any]]:
        """The runs the exporter saw finish: finished now, not before its first poll."""
        return [
            r
            for r in self.runs[wid]
            if r["status"] in TERMINAL and r["id"] not in self.history[wid]
        ]


@pytest.fixture(scope="module")
def seen() -> Seen:
    text, runs, history, steps = polled()
    return Seen(samples(text), runs, history, steps)


def test_node_durations_and_executions_agree_with_the_steps_the_simulator_served(
    seen: Seen,
) -> None:
    checked = 0
    for wid in seen.runs:
        durations: dict[str, Histogram] = defaultdict(lambda: Histogram(NODE_DURATION_BUCKETS))
        executions: Counter[tuple[str, str]] = Counter()
        for run in seen.counted(wid):
            found = finished_run_nodes(seen.read(run), run["status"], REDACTOR)
            for duration in found.durations:
                durations[duration.node_type].observe(duration.seconds)
            executions.update(found.executions)
        exported = {
            (s.labels["node_type"], s.labels["status"]): s.value
            for s in seen.series(NODE_EXECUTIONS.sample, workflow_id=wid)
        }
        assert exported == {key: float(n) for key, n in executions.items()}, wid
        for node_type, hist in durations.items():
            labels = {"workflow_id": wid, "node_type": node_type}
            buckets = seen.series(NODE_DURATION.name + "_bucket", **labels)
            assert [s.value for s in buckets] == [float(n) for _, n in hist.cumulative()]
            (total,) = seen.series(NODE_DURATION.name + "_sum", **labels)
            assert abs(total.value - hist.sum) < 1e-6
            checked += hist.count
        exported_types = {
            s.labels["node_type"]
            for s in seen.series(NODE_DURATION.name + "_count", workflow_id=wid)
        }
        assert exported_types == set(durations), wid
    assert checked > 20, "too few node executions seen to compare"


def test_the_failed_node_of_each_workflows_latest_failed_run_is_named(seen: Seen) -> None:
    named = 0
    for wid, runs in seen.runs.items():
        failed = [r for r in runs if r["status"] == "failed"]
        exported = [s.labels for s in seen.series(LAST_FAILURE_NODE.name, workflow_id=wid)]
        latest = max(failed, key=lambda r: r["run_number"], default=None)
        if latest is None or latest["id"] in seen.history[wid]:
            assert exported == [], wid  # its steps were never read: no node is made up
            continue
        nodes = finished_run_nodes(seen.read(latest), "failed", REDACTOR).failed
        want = [
            {
                "node_id": f.node.node_id,
                "node_type": f.node.node_type,
                "node_name": f.node.node_name,
            }
            for f in nodes
        ]
        assert [
            {k: v for k, v in labels.items() if k.startswith("node_")} for labels in exported
        ] == want
        named += len(want)
    assert named >= 1, "no workflow's latest failed run was seen failing"


def test_each_active_runs_current_node_is_the_one_the_simulator_shows_running(seen: Seen) -> None:
    shown = 0
    for wid, runs in seen.runs.items():
        exported = {
            (s.labels["run_id"], s.labels["node_id"], s.labels["node_type"], s.labels["node_name"])
            for s in seen.series(CURRENT_NODE.name, workflow_id=wid)
        }
        want = {
            (run["id"], n.node_id, n.node_type, n.node_name)
            for run in runs
            if run["status"] not in TERMINAL
            for n in running_nodes(seen.read(run))
        }
        assert exported == want, wid
        shown += len(want)
    assert shown >= 1
