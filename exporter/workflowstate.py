"""What the poller knows of one workflow between polls, and what one poll brings back for it.

`Refresh` collects one workflow's answers as the requests complete; `merge` hands them to the
workflow's run ledger (exporter/ledger.py) in one step, which counts each newly finished run once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from exporter.apierrors import ApiError
from exporter.ledger import RunLedger
from exporter.models import Fingerprint, Run, RunsSummary, Workflow
from exporter.nodes import NodeRef
from exporter.snapshot import ScheduleTimes, WorkflowSnapshot

# What a published snapshot was made for: (up, has_data, error, schedule times).
PublishKey = tuple[bool, bool, str | None, ScheduleTimes | None]
# Where an active run was when last asked (collection.run_nodes): its finished_steps then,
# and the nodes it was running.
Located = tuple[int | None, tuple[NodeRef, ...]]


@dataclass(slots=True)
class WorkflowState:
    """What is known of one workflow between polls."""

    id: str
    name: str
    listed_fingerprint: Fingerprint | None = None
    # Which runs are counted, which are watched (active), and the latest one.
    ledger: RunLedger = field(default_factory=RunLedger)
    summary: RunsSummary | None = None
    summary_key: object = None
    status_counts: Mapping[str, int] | None = None
    catalogue_last_status: str | None = None  # the catalogue's `last_run_status`
    last_success: float | None = None
    error: str | None = None
    # The latest run's id when its status record is unusable: not asked for again.
    undetailed: str | None = None
    # Fields of this workflow's runs whose bad values were logged (once each); a frozenset,
    # shared while empty (an empty set is 216 bytes, times every workflow).
    problems: frozenset[str] = frozenset()
    # Active runs' running nodes, by run id (collection.run_nodes; exporter/stepsfetch.py).
    located: dict[str, Located] = field(default_factory=dict)
    # The last snapshot handed out, reused while nothing changed (exporter/publish.py): the
    # key it was made for, and the snapshot. None once anything it shows changed.
    published: tuple[PublishKey, WorkflowSnapshot] | None = None
    _watched: list[Run] | None = None

    def watched(self) -> list[Run]:
        """The runs whose finish is still to be counted (cached: asked for several times)."""
        if self._watched is None:
            self._watched = list(self.ledger.watching.values())
        return self._watched

    def active(self) -> list[Run]:
        return [r for r in self.watched() if not r.terminal]

    def changed(self) -> None:
        self.published, self._watched = None, None


@dataclass(slots=True)
class Refresh:
    """The outcome of refreshing one workflow, applied to its state in one step."""

    listed: tuple[Run, ...] | None = None
    statuses: dict[str, Run] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    # Ranges of run numbers `listed` shows every run of (see RunLedger.listed).
    covered: list[tuple[int, int]] = field(default_factory=list)
    # Runs whose status record was unusable (id -> the problem), or refused (401/403).
    unusable: dict[str, str] = field(default_factory=dict)
    # List Runs items left out: (run id, or position when it has none; the problem).
    bad_items: list[tuple[str, str]] = field(default_factory=list)
    summary: RunsSummary | None = None
    summary_key: object = None
    error: ApiError | None = None
    workflow_id: str = ""
    asked: set[str] = field(default_factory=set)  # run ids whose status is being asked for
    pending: int = 0  # jobs not finished: above zero after the poll means cut by the deadline
    dropped: bool = False  # the workflow left the selection: its queued jobs are skipped
    on_done: Callable[[Refresh], None] | None = None  # called when `pending` falls to zero
    statuses_seen: int = 0  # len(statuses) when it was applied (statuses are then let go)


def merge(state: WorkflowState, entry: Workflow, out: Refresh, status_allowed: bool) -> None:
    """Hand a refresh's runs to the ledger (errors and the summary are the poller's to apply).

    A list item is final (counted as it is) when no status record can be had for it: Get Run
    Status is not allowed, its record was unusable, or it stands in for one (`list_only`)."""
    ledger = state.ledger
    if out.listed is not None or out.statuses or out.gone or out.unusable:
        state.changed()
    if out.summary is not None:
        state.published = None
    for rid in out.gone:
        ledger.forget(rid)
    listed: set[str] = set()
    if out.listed is not None:
        records = []
        for run in out.listed:
            listed.add(run.id)
            status = out.statuses.get(run.id)
            if status is not None:  # a status record lacks the list-only fields
                records.append((status.with_list_fields(run), True))
            else:
                final = not status_allowed or run.id in out.unusable or run.id in ledger.list_only
                records.append((run if final or run.terminal else standing_in(run), final))
        ledger.listed(records, out.covered)
        state.listed_fingerprint = entry.fingerprint()
    for rid, run in out.statuses.items():
        if rid not in listed:
            ledger.seen(run, final=True)
    for rid in out.unusable:
        if rid in ledger.watching:
            ledger.list_only.add(rid)  # listed on every poll until it reads again
        elif ledger.latest is not None and rid == ledger.latest.id:
            state.undetailed = rid


def standing_in(run: Run) -> Run:
    """An active run's list item standing in for its status record for one poll (a new run:
    exporter/planner.py), without the fields only List Runs sends (LIST_ONLY_FIELDS): the
    status records that follow lack them, and its series would come and go."""
    return replace(run, credits=None, delivered_audio_ms=None, output_line_count=None)
