"""What to ask the API for: pure decisions from the catalogue and the run ledger, no I/O.

Per poll and workspace (design §5):
- one paged List Workflows call: the catalogue tells which workflows have new runs;
- List Runs only for a workflow whose catalogue entry changed (or that was never listed), paged
  back when more runs finished than one page holds (`PageBack`);
- Get Run Status for every watched run, and once for a run seen terminal for the first time; a
  new run a listing shows active is watched from its list item, and asked about from the next
  poll on;
- Runs Summary only when what it adds can have changed (the completed-run count, where the
  catalogue gives run counts), and never again for a workspace whose key may not use it (401/403);
- after a rejected key (or a client refused as too old), nothing until a backoff ends.
The poller (exporter/poller.py) carries the plans out and the ledger (exporter/ledger.py)
decides what the answers count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exporter.apierrors import ApiError, BudgetDeferred, DeadlineExceeded
from exporter.ledger import RunLedger
from exporter.models import TERMINAL_STATUSES, Fingerprint, Run, Workflow

AUTH_BACKOFF_MIN = 30.0
AUTH_BACKOFF_MAX = 600.0


@dataclass(frozen=True, slots=True)
class Access:
    """What the workspace's key may use: a 401/403 switches an endpoint off for good."""

    status: bool = True  # Get Run Status
    summary: bool = True  # Runs Summary


class Known(Protocol):
    """What the poller knows of one workflow, as far as planning needs it."""

    @property
    def ledger(self) -> RunLedger: ...
    @property
    def listed_fingerprint(self) -> Fingerprint | None:  # of the last listing, if any
        ...
    @property
    def undetailed(self) -> str | None:  # the latest run, if its status record is unusable
        ...
    @property
    def summary(self) -> object: ...  # the last Runs Summary, None before the first
    @property
    def summary_key(self) -> object: ...  # `summary_key` when it was asked for


@dataclass(frozen=True, slots=True)
class WorkflowPlan:
    """The requests one workflow needs in this poll, beyond its watched runs' statuses."""

    list_runs: bool = False
    # Runs whose status to ask for (when the runs are not listed first).
    statuses: frozenset[str] = frozenset()
    # Nothing at all to ask: the workflow is refreshed from the catalogue as it is.
    idle: bool = False


def auth_backoff(failures: int) -> float:
    """Seconds without requests after the `failures`-th rejection in a row (from 1)."""
    return min(AUTH_BACKOFF_MAX, AUTH_BACKOFF_MIN * 2.0 ** (failures - 1))


def watched_statuses(ledger: RunLedger, access: Access) -> list[str]:
    """The runs whose status is asked for at the start of a poll: every watched one."""
    return list(ledger.watching) if access.status else []


def must_list(known: Known, entry: Workflow, access: Access) -> bool:
    """List runs when the catalogue says a run was created (or cannot tell), or when the
    ledger still wants runs (or their delivered audio) only List Runs can give."""
    ledger = known.ledger
    if not ledger.started or ledger.gaps or ledger.list_only or ledger.audio_due:
        return True
    if ledger.watching and not access.status:
        return True
    fingerprint = entry.fingerprint()
    return fingerprint is None or fingerprint != known.listed_fingerprint


def statuses_to_fetch(
    known: Known, runs: Iterable[Run], asked: set[str], access: Access
) -> set[str]:
    """Runs of `runs` that need Get Run Status, beyond those already `asked` about."""
    if not access.status:
        return set()
    ledger = known.ledger
    runs = list(runs)
    latest = ledger.latest
    newest = max(runs, key=lambda r: r.run_number, default=None)
    want: set[str] = set()
    for run in runs:
        if run.id in asked or run.id == known.undetailed:
            continue
        if not ledger.started:
            if not run.terminal or run is newest:  # active, or the latest at start-up
                want.add(run.id)
        elif run.id in ledger.watching:
            want.add(run.id)  # watched: finished since the last poll (counted once), or active
        elif ledger.is_open(run):
            if run.terminal:
                want.add(run.id)  # new and finished already: counted once, from its status
            # A new active run: its list item is its record this poll; it is watched, so asked
            # about from the next poll on (a call per new run saved; its cost shows a poll later).
        elif latest is not None and run.id == latest.id and not latest.detailed:
            want.add(run.id)  # the latest run's cost needs its full status, once
    return want


def summary_key(entry: Workflow, statuses_seen: int) -> object:
    """What changes when the summary's figures that are used can change. With the catalogue's
    run counts (which give the pass ratio), the summary only adds the average duration of
    completed runs: the completed count. Without them, the entry's fingerprint and last status,
    and the statuses read."""
    counts = entry.run_status_counts
    if counts is not None:
        return counts.get("completed", 0)
    return (entry.fingerprint(), entry.last_run_status, statuses_seen)


def wants_summary(known: Known, entry: Workflow, statuses_seen: int, access: Access) -> bool:
    """Runs Summary for a workflow that has none yet, or whose finished-run counts changed."""
    if not access.summary:
        return False
    return known.summary is None or summary_key(entry, statuses_seen) != known.summary_key


# The two plans of nearly every workflow, made once (a poll plans for thousands).
LIST_RUNS = WorkflowPlan(list_runs=True)
IDLE = WorkflowPlan(idle=True)
_NOTHING_MORE = WorkflowPlan()


def plan_workflow(
    known: Known, entry: Workflow, asked: set[str] | None, access: Access
) -> WorkflowPlan:
    """One selected workflow's requests; `asked`: the watched runs whose status is asked for
    already (None when there are none)."""
    if must_list(known, entry, access):
        return LIST_RUNS
    latest = [known.ledger.latest] if known.ledger.latest is not None else []
    extra = statuses_to_fetch(known, latest, asked or set(), access)
    if extra:
        return WorkflowPlan(statuses=frozenset(extra))
    if asked is None and not wants_summary(known, entry, 0, access):
        return IDLE
    return _NOTHING_MORE


def awaiting_details(known: Known, access: Access) -> bool:
    """Whether a workflow still waits for the details a cold start fills in over polls (its
    run list, its latest run's full status, its Runs Summary); meanwhile it is shown as the
    catalogue describes it."""
    ledger = known.ledger
    if not ledger.started:
        return True
    latest = ledger.latest
    # An active latest run is watched: asked about in every poll (its list item may stand in).
    if (
        access.status
        and latest is not None
        and not latest.detailed
        and latest.id not in ledger.watching
    ):
        return latest.id != known.undetailed
    return access.summary and known.summary is None


def not_reached(error: ApiError | None, deadline_passed: bool) -> bool:
    """Whether a refresh that ended in `error` was only not reached: not asked (the deadline,
    a cold start's share of it, or the request budget) or cut off by the deadline, as opposed
    to failed. A workflow waiting for its details is then shown from the catalogue, not down."""
    if error is None:
        return False
    return deadline_passed or isinstance(error, DeadlineExceeded | BudgetDeferred)


def planning_order(entries: Mapping[str, Workflow], known: Mapping[str, Known]) -> list[str]:
    """The order in which workflows' requests are queued: those already listed first, then
    those never listed whose latest run is active, then the others. What decides is the order
    among the never listed (the cold start's backlog, which a deadline cuts at its end): the
    listed ones' requests are the steady poll's, which the worker pool takes before any of the
    backlog's whatever the order (exporter/jobs.py)."""

    def rank(wid: str) -> int:
        if known[wid].ledger.started:
            return 0
        status = entries[wid].last_run_status
        return 1 if status is not None and status not in TERMINAL_STATUSES else 2

    return sorted(entries, key=rank)


def wants_page_back(count: int, limit: int, ledger: RunLedger) -> bool:
    """Page back after a full first page (more runs may have finished than it holds), once
    the ledger has started (the first listing only sets the mark)."""
    return count >= limit and ledger.started


def first_page_covered(numbers: Sequence[int], limit: int) -> tuple[int, int] | None:
    """The run numbers a first List Runs page (of at most `limit`) shows every run of: from 1
    when it is short (it reaches the oldest run)."""
    if not numbers:
        return None
    return (1 if len(numbers) < limit else min(numbers), max(numbers))


@dataclass(slots=True)
class PageBack:
    """Paging back through List Runs for older runs the ledger still wants.

    Pages are asked newest first, at offsets estimated from run numbers (runs are numbered one
    by one, so the run numbered n sits near offset top - n), corrected by how far the estimate
    missed. Every page shows all runs between its lowest and highest number; a page adjacent to
    the ones before (at offset `end`) also shows that none lie between."""

    top: int  # the highest run number of the first page
    low: int  # the lowest run number shown without a gap so far
    end: int  # the offset just past the pages read without a gap
    page_size: int
    shift: int = 0  # how far the estimate overshot (runs deleted, numbers skipped, lag)
    covered: list[tuple[int, int]] = field(default_factory=list)

    def offset(self, need: int) -> int:
        """Where to ask for a page holding run number `need`."""
        return max(self.end, self.top - need - self.shift)

    def took(self, at: int, numbers: Sequence[int], need: int) -> bool:
        """A page asked at offset `at` for `need` showed runs `numbers`; True when paging is
        done (the oldest run was reached). Adds what the page covers to `covered`."""
        count = len(numbers)
        lowest, highest = (min(numbers), max(numbers)) if numbers else (self.low, self.low)
        self.covered.append((lowest, highest))
        adjacent = at == self.end
        if adjacent or lowest <= need <= highest:
            bottom = 1 if count < self.page_size else lowest  # short: the oldest is in
            self.covered.append((bottom, self.low - 1 if adjacent else highest))
            self.low = min(self.low, bottom)
            self.end += count if adjacent else 0
            return count < self.page_size
        if count and lowest > need:
            self.shift -= lowest - need  # not deep enough (more runs than numbers tell)
        else:
            self.shift += need - highest if count else self.page_size  # too deep
        return False
