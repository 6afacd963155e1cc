"""What the poller hands over: snapshots of plain data built from each workflow's state.

A workflow's snapshot is rebuilt only when something it shows changed (`WorkflowState.changed`,
or up, has_data or the error), else the one handed out before is handed out again. Each built
snapshot gets a new `version`, drawn from one sequence for the whole process, so that a render
cache keyed on (workflow id, version) never mistakes one for another, even for a workflow that
left the selection and came back or after a config reload.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from collections.abc import Mapping

from exporter.apistats import ApiStats
from exporter.ledger import Ended
from exporter.snapshot import ScheduleTimes, WorkflowSnapshot
from exporter.workflowstate import PublishKey, WorkflowState

_versions = itertools.count(1)  # 0 is left for snapshots made elsewhere (tests)


def derived_pass_ratio(counts: Mapping[str, int]) -> float | None:
    """The API's rule (SDK 0.16.1 Runs Summary): completed / (completed + failed).

    Cancelled runs are left out (user-aborted, not a quality failure); None while no run
    completed or failed."""
    completed = counts.get("completed", 0)
    judged = completed + counts.get("failed", 0)
    return completed / judged if judged else None


def frozen_stats(stats: ApiStats) -> ApiStats:
    """A copy of a client's request counts and latencies as they are now: the client keeps
    counting into its own."""
    latency = {endpoint: hist.copy() for endpoint, hist in stats.latency.items()}
    return ApiStats(
        defaultdict(int, stats.requests), latency, stats.budget_remaining, stats.deferred
    )


def workflow_snapshot(
    state: WorkflowState,
    up: bool,
    has_data: bool,
    workspace_error: str | None,
    run_series: bool,
    schedule: ScheduleTimes | None = None,
) -> WorkflowSnapshot:
    """The workflow's snapshot: the one handed out last while nothing it shows changed (its
    schedule's expected times move on with the clock, so a new fire time is a change)."""
    key: PublishKey = (up, has_data, None if up else state.error or workspace_error, schedule)
    if state.published is not None and state.published[0] == key:
        return state.published[1]
    snapshot = _build(state, up, has_data, workspace_error, run_series, next(_versions))
    if schedule is not None:
        snapshot = dataclasses.replace(snapshot, schedule=schedule)
    state.published = (key, snapshot)
    return snapshot


def _build(
    state: WorkflowState,
    up: bool,
    has_data: bool,
    workspace_error: str | None,
    run_series: bool,
    version: int,
) -> WorkflowSnapshot:
    totals = state.ledger.frozen_totals()
    if not has_data:
        error = state.error or workspace_error or "not refreshed yet"
        return WorkflowSnapshot(
            state.id, state.name, False, False, totals, error=error, version=version
        )
    summary = state.summary
    counts = state.status_counts or (summary.counts if summary else None)
    # One rule whether Runs Summary is allowed or not: from the counts, never the
    # summary's `pass_rate` as is (older API versions counted cancelled runs in it).
    pass_ratio = derived_pass_ratio(counts) if counts is not None else None
    active = tuple(sorted(state.active(), key=lambda r: r.run_number))
    return WorkflowSnapshot(
        id=state.id,
        name=state.name,
        up=up,
        has_data=True,
        totals=totals,
        status_counts=counts,
        pass_ratio=pass_ratio,
        average_duration=summary.average_duration_seconds if summary else None,
        last_run=state.ledger.latest,
        catalogue_last_status=state.catalogue_last_status,
        last_success=_end_time(state.ledger.last_success),
        last_failure=_end_time(state.ledger.last_failure),
        active_runs=active if run_series else (),
        last_failure_nodes=state.ledger.last_failure_nodes(),
        current_nodes={rid: nodes for rid, (_, nodes) in state.located.items()}
        if run_series
        else {},
        error=None if up else (state.error or workspace_error or "not refreshed"),
        version=version,
    )


def _end_time(ended: Ended | None) -> float | None:
    return None if ended is None else ended[1]
