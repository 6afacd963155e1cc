"""The renderer's cache: a scrape shows what a renderer that never saw an earlier one shows.

The poller hands over a workflow snapshot with a new version whenever anything in it changed;
the renderer keeps lines by (workspace, workflow id, version), and compares names, `up` and
totals to keep a part of them. Every step below changes what one of its keys covers (or keeps
it) and compares with a fresh renderer, with versions as the poller gives them and without
(version 0: never kept).
"""

from __future__ import annotations

import dataclasses

import pytest

from exporter.apistats import RUN_DURATION_BUCKETS, ApiStats, Exemplar, Histogram
from exporter.models import Run
from exporter.rendering import MetricsRenderer
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkflowTotals, WorkspaceSnapshot


def totals(finished: int = 0) -> WorkflowTotals:
    """`finished` runs of 42 s, the last one the exemplar (OpenMetrics) of its bucket and count."""
    duration = Histogram(RUN_DURATION_BUCKETS)
    buckets: list[Exemplar | None] = [None] * (len(RUN_DURATION_BUCKETS) + 1)
    for n in range(finished):
        buckets[duration.observe(42.0)] = Exemplar(f"r-{n}", n, 42.0, 1000.0 + n)
    last = {"completed": Exemplar(f"r-{finished - 1}", finished - 1, 1.0)} if finished else {}
    return WorkflowTotals(
        {"completed": finished}, duration, 10.0 * finished, 1.5 * finished, 2.5 * finished,
        last, tuple(buckets),
    )  # fmt: skip


def run(steps: int, status: str = "running") -> Run:
    return Run(
        "r-1", 7, status, 100.0, started_at=110.0, updated_at=120.0 + steps,
        finished_steps=steps, total_steps=10, usage={"cpu_seconds": 2.0 * steps},
        triggered_by="ann", observed_at=130.0 + steps, detailed=True,
        finished_nodes=steps // 2, paused_ms=500 * steps,
        # Paused at step 2 (for a reason the exporter does not know at step 3): the pause
        # reason's lines come and go with the run's snapshot.
        pause_reason={2: "provider_outage", 3: "solar_flare"}.get(steps),
    )  # fmt: skip


def busy(steps: int, t: WorkflowTotals, name: str = "busy", up: bool = True) -> WorkflowSnapshot:
    active = run(steps)
    return WorkflowSnapshot(
        "wf-busy", name, up, True, t, {"running": 1, "completed": 3}, 1.0, 50.0, active, (active,)
    )


def snapshot(*workflows: WorkflowSnapshot) -> Snapshot:
    return Snapshot((WorkspaceSnapshot("prod", True, workflows, ApiStats()),), 0.0)


def versioned(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The snapshots as the poller hands them over: each workflow snapshot object with a version
    of its own (the same object, the same version), each snapshot object kept as one."""
    stamped: dict[int, object] = {}

    def workflow(wf: WorkflowSnapshot) -> WorkflowSnapshot:
        if id(wf) not in stamped:
            stamped[id(wf)] = dataclasses.replace(wf, version=len(stamped) + 1)
        return stamped[id(wf)]  # type: ignore[return-value]

    def whole(s: Snapshot) -> Snapshot:
        if id(s) not in stamped:
            workspaces = tuple(
                dataclasses.replace(ws, workflows=tuple(workflow(wf) for wf in ws.workflows))
                for ws in s.workspaces
            )
            stamped[id(s)] = dataclasses.replace(s, workspaces=workspaces)
        return stamped[id(s)]  # type: ignore[return-value]

    return [whole(s) for s in snapshots]


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("triggered_by", [False, True])
@pytest.mark.parametrize("with_versions", [True, False])
def test_cached_lines_are_the_lines_a_fresh_renderer_makes(
    triggered_by: bool, openmetrics: bool, with_versions: bool
) -> None:
    t0, t1 = totals(), totals(1)
    idle = WorkflowSnapshot("wf-idle", "idle", True, True, t0, {"completed": 2}, 1.0, 9.0)
    first = snapshot(idle, busy(1, t0))
    done = dataclasses.replace(busy(4, t1), last_run=run(5, "completed"), active_runs=())
    steps = [
        first,
        first,  # scraped again before the next poll
        snapshot(idle, busy(2, t0)),  # idle outlived a poll; busy's run progressed
        snapshot(idle, busy(3, t0, name="renamed")),  # same totals, new labels
        snapshot(dataclasses.replace(idle, up=False), busy(3, t0, up=False)),
        snapshot(idle, done),  # the run finished: new totals
        snapshot(done),  # idle gone
        snapshot(done, idle),  # and back
        snapshot(done, idle),
        # A settled workflow's newest completed / failed run moves on (a new snapshot object).
        snapshot(done, dataclasses.replace(idle, last_success=1.8e9)),
        snapshot(done, dataclasses.replace(idle, last_success=1.8e9, last_failure=1.9e9)),
        snapshot(done, dataclasses.replace(idle, last_success=2.0e9, last_failure=1.9e9)),
    ]
    renderer = MetricsRenderer(triggered_by)
    for i, step in enumerate(versioned(steps) if with_versions else steps):
        cached = b"".join(renderer.chunks(step, openmetrics))
        fresh = b"".join(MetricsRenderer(triggered_by).chunks(step, openmetrics))
        assert cached == fresh, f"step {i}"
        if i == 3:
            assert b'workflow_name="busy"' not in cached
    assert b"onepin_workflow_run_duration_seconds_count" in cached
    assert (
        b'onepin_workflow_last_success_timestamp_seconds{workspace="prod",workflow_id="wf-idle"'
        in cached
    )
    assert b"onepin_workflow_run_delivered_audio_seconds_total" in cached


def test_interleaved_scrapes_each_show_their_own_snapshot() -> None:
    """The server writes chunks between awaits: another scrape may render in between."""
    t0 = totals()
    idle = WorkflowSnapshot("wf-idle", "idle", True, True, t0, {"completed": 2}, 1.0, 9.0)
    renderer = MetricsRenderer()
    steps = versioned(
        [
            snapshot(idle, busy(1, t0)),
            snapshot(idle, busy(2, t0)),
            snapshot(idle, busy(3, t0)),
            snapshot(idle, busy(4, t0, name="renamed")),
        ]
    )
    for step in steps[:2]:
        b"".join(renderer.chunks(step))  # idle's lines are all kept, busy's are made per scrape
    older, newer = steps[2:]
    first, second = renderer.chunks(older), renderer.chunks(newer)
    got: dict[int, list[bytes]] = {0: [next(first)], 1: [next(second)]}
    for i, chunks in enumerate((first, second)):
        got[i].extend(chunks)
    assert b"".join(got[0]) == b"".join(MetricsRenderer().chunks(older))
    assert b"".join(got[1]) == b"".join(MetricsRenderer().chunks(newer))
