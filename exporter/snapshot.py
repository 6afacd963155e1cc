"""The poller's output: plain typed data, no Prometheus types. exporter/rendering.py renders it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.apistats import ApiStats, Exemplar, Histogram
from exporter.models import Run
from exporter.nodes import FailedNode, NodeRef
from exporter.nodetotals import FrozenNodeTotals


@dataclass(frozen=True, slots=True)
class WorkflowTotals:
    """What this process saw finish, per workflow: the source of the counters."""

    finished: Mapping[str, int]
    duration: Histogram
    token_cost: float
    cpu_seconds: float
    delivered_audio_seconds: float = 0.0
    # The run behind each status's count and each duration bucket (+Inf last), exemplars in
    # OpenMetrics (exporter/ledger.py `Totals`); empty: none.
    finished_exemplars: Mapping[str, Exemplar] = field(default_factory=dict)
    duration_exemplars: tuple[Exemplar | None, ...] = ()
    nodes: FrozenNodeTotals = field(default_factory=FrozenNodeTotals)


@dataclass(frozen=True, slots=True)
class ScheduleTimes:
    """A scheduled workflow's fire times at the poll (Unix seconds; None: no such fire)."""

    last_expected: float | None  # the latest fire time not in the future
    next_expected: float | None
    grace: float  # how long after a fire its run may be created


@dataclass(frozen=True, slots=True)
class WorkflowSnapshot:
    id: str
    name: str
    # True when this poll refreshed the workflow.
    up: bool
    # False when there is no data to show (never fetched, or older than collection.stale_after).
    has_data: bool
    totals: WorkflowTotals
    status_counts: Mapping[str, int] | None = None
    pass_ratio: float | None = None
    average_duration: float | None = None
    last_run: Run | None = None
    active_runs: tuple[Run, ...] = ()
    error: str | None = None
    # When the newest completed / failed run seen ended (exporter/ledger.py `ended_at`).
    last_success: float | None = None
    last_failure: float | None = None
    # The node(s) the latest failed run failed at, when this process read its steps.
    last_failure_nodes: tuple[FailedNode, ...] = ()
    # The nodes each active run is running now, by run id (collection.run_nodes).
    current_nodes: Mapping[str, tuple[NodeRef, ...]] = field(default_factory=dict)
    # Of a workflow on a schedule (exporter/scheduled.py); None for the others.
    schedule: ScheduleTimes | None = None
    # The latest run's status as the catalogue (List Workflows) gives it: shown while the run
    # itself is not read yet (a cold start fills details in over polls).
    catalogue_last_status: str | None = None
    # Changes whenever any other field of this workflow's snapshot changes; render caches key
    # on (id, version).
    version: int = 0


@dataclass(frozen=True, slots=True)
class WorkspaceSnapshot:
    name: str
    up: bool
    workflows: tuple[WorkflowSnapshot, ...]
    api: ApiStats
    collect_duration: float | None = None
    deadline: float | None = None
    error: str | None = None
    polled_at: float | None = None
    # Selected workflows still waiting for details (exporter/planner.py `awaiting_details`).
    backlog: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    workspaces: tuple[WorkspaceSnapshot, ...] = field(default_factory=tuple)
    taken_at: float | None = None
