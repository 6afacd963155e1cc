"""Decide what to ask the API for, within the API budget and the scrape's deadline.

Per poll and workspace (design §5):
- one paged List Workflows call: the catalogue tells which workflows have new runs;
- List Runs only for a workflow whose catalogue entry changed (or that was never listed), paged
  back when more runs finished than one page holds;
- Get Run Status for every active run, and once for a run seen terminal for the first time;
  the run ledger (exporter/ledger.py) decides which runs are newly finished, each counted once;
- Runs Summary only when a workflow's terminal run counts changed, and never again for a
  workspace whose key may not use it (401/403).
It produces a `Snapshot` of plain data and knows nothing of Prometheus.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial

from exporter.client import PAGE_LIMIT, ApiError, Deadline, OnePinClient, UnusableResponse
from exporter.config import CollectionSettings, Workspace
from exporter.ledger import Ended, RunLedger
from exporter.models import TERMINAL_STATUSES, Fingerprint, Run, RunsSummary, Workflow
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot

log = logging.getLogger("exporter.poller")
_TERMINAL_ORDER = tuple(sorted(TERMINAL_STATUSES))
# WorkflowSnapshot.version: each new snapshot object takes the next (exporter/rendering.py).
_VERSIONS = itertools.count(1)

AUTH_BACKOFF_MIN = 30.0
AUTH_BACKOFF_MAX = 600.0
MAX_ERROR_LINES = 5
# List Runs pages (of PAGE_LIMIT runs) asked per workflow and poll to catch up with a burst
# larger than collection.recent_runs; what does not fit is asked for at the next polls.
MAX_PAGES_BACK = 3
_FIELD_PREFIX = re.compile(r"^(unexpected response: )?(data(\[\d+\])?\.)?")
_REQUEST_ID = re.compile(r" \(request_id [^)]*\)")
# A 5xx storm alternates 500, 502, 503...: one problem, not three.
_SERVER_ERROR = re.compile(r"HTTP 5\d\d( [A-Z_]+)?( .*)?$")


def same_problem(a: str | None, b: str | None) -> bool:
    """Two error texts tell of the same problem (request ids differ on every request)."""
    if a is None or b is None:
        return a is b
    return _problem(a) == _problem(b)


def _problem(text: str) -> str:
    return _SERVER_ERROR.sub("HTTP 5xx", _REQUEST_ID.sub("", text))


@dataclass(slots=True)
class _WorkflowState:
    """What is known of one workflow between polls."""

    id: str
    name: str
    listed_fingerprint: Fingerprint | None = None
    # Which runs are counted, which are watched (active), and the latest one.
    ledger: RunLedger = field(default_factory=RunLedger)
    summary: RunsSummary | None = None
    summary_key: object = None
    status_counts: Mapping[str, int] | None = None
    last_success: float | None = None
    error: str | None = None
    # The latest run's id when its status record is unusable: not asked for again.
    undetailed: str | None = None
    # Fields of this workflow's runs whose bad values were logged (once each).
    problems: set[str] = field(default_factory=set)
    # The last snapshot handed out, reused while nothing changed (the collector caches its
    # rendered lines by object): (up, has_data, error) it was made for, and the snapshot.
    published: tuple[tuple[bool, bool, str | None], WorkflowSnapshot] | None = None
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
class _Refresh:
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
    on_done: Callable[[_Refresh], None] | None = None  # called when `pending` falls to zero
    statuses_seen: int = 0  # len(statuses) when it was applied (statuses are then let go)


class _Jobs:
    """A queue of requests and a bounded number of workers taking from it.

    A fixed number of workers instead of a task (and a semaphore wait) per request: at thousands
    of requests per poll, tasks and semaphore queues were most of the poller's own CPU."""

    def __init__(self, workspace: str) -> None:
        self._queue: deque[tuple[_Refresh, Callable[[], Awaitable[None]]]] = deque()
        self._workers: list[asyncio.Future[None]] = []
        self._workspace = workspace

    def add(self, out: _Refresh, job: Callable[[], Awaitable[None]]) -> None:
        out.pending += 1
        self._queue.append((out, job))

    def start(self, workers: int) -> None:
        """Up to `workers` running workers (again, when jobs were added after they ended)."""
        self._workers = [w for w in self._workers if not w.done()]
        for _ in range(min(workers - len(self._workers), len(self._queue))):
            self._workers.append(asyncio.ensure_future(self._work()))

    async def finish(self, deadline: Deadline) -> None:
        """Wait for the jobs; requests stop themselves at the deadline, the margin only guards
        against a hang. Jobs not done leave their workflow's `pending` above zero."""
        while self._workers:  # jobs of another queue may add jobs (and workers) to this one
            workers, self._workers = self._workers, []
            _done, hung = await asyncio.wait(workers, timeout=max(0.0, deadline.remaining()) + 1)
            for worker in hung:
                worker.cancel()
            if hung:
                return

    def cancel(self) -> None:
        for worker in self._workers:
            worker.cancel()

    async def _work(self) -> None:
        while self._queue:
            out, job = self._queue.popleft()
            try:
                if not out.dropped:
                    await job()
            except ApiError as exc:
                # Without its traceback: the frames it holds hold `out`, a cycle that only the
                # cyclic GC would free (a cold poll cut by its deadline makes thousands).
                out.error = out.error or exc.with_traceback(None)
            except Exception as crash:  # a bug, not an API problem: the workflow is marked down
                where = {"workspace": self._workspace, "workflow_id": out.workflow_id}
                log.error("refreshing a workflow failed", exc_info=crash, extra=where)
                out.error = ApiError("poll", f"internal error: {type(crash).__name__}")
            out.pending -= 1
            if not out.pending and out.on_done is not None:
                out.on_done(out)


class WorkspacePoller:
    """Polls one workspace and keeps its state between polls."""

    def __init__(
        self,
        workspace: Workspace,
        client: OnePinClient,
        settings: CollectionSettings,
        selects: Callable[[str], bool] = lambda _id: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workspace = workspace
        self.client = client
        self.settings = settings
        self._shard_selects = selects
        self._clock = clock
        self._states: dict[str, _WorkflowState] = {}
        self._summary_enabled = settings.runs_summary
        self._status_enabled = True
        self._auth_failures = 0
        self._auth_retry_at = 0.0
        self._error: str | None = None
        self._up = False
        self._last_duration: float | None = None
        self._last_deadline: float | None = None
        self._polled_at: float | None = None
        self._new_errors: list[tuple[str, str]] = []
        self._unlabelled: set[str] = set()
        self._paging: str | None = None  # why the last catalogue was cut short, if it was

    def adopt(self, old: WorkspacePoller) -> None:
        """Take over what `old`, the same workspace before a config reload, knew: the state of
        every workflow (its counters carry on) and the workspace's last result. Workflows the
        new config no longer selects are dropped by the next poll, as any unselected one."""
        self._states = old._states
        for state in self._states.values():
            state.published = None  # built under the old settings (run_series, stale_after)
        self._unlabelled = old._unlabelled
        self._error, self._up = old._error, old._up
        self._last_duration, self._last_deadline = old._last_duration, old._last_deadline
        self._polled_at = old._polled_at
        if self.workspace.token.reveal() == old.workspace.token.reveal():
            self._auth_failures, self._auth_retry_at = old._auth_failures, old._auth_retry_at

    # --- one poll -----------------------------------------------------------------------------

    async def poll(self, deadline: Deadline) -> WorkspaceSnapshot:
        started = self._clock()
        self._last_deadline = max(0.0, deadline.remaining())
        if self.workspace.token.refresh():
            log.info("token re-read", extra={"workspace": self.workspace.name})
            self._auth_failures, self._auth_retry_at = 0, 0.0
        if started < self._auth_retry_at:
            # The key was rejected: do not burn requests until the backoff ends.
            return self._snapshot(refreshed=set())
        self.client.start_poll()
        # Active runs are polled while the catalogue is fetched: neither needs the other.
        statuses = _Jobs(self.workspace.name)
        outs: dict[str, _Refresh] = {}
        for wid, state in self._states.items():
            asks = [r.id for r in state.watched()]
            if asks and self._status_enabled:
                out = outs[wid] = _Refresh(workflow_id=wid)
                for run_id in asks:
                    self._ask_status(statuses, state, run_id, out, deadline)
        statuses.start(self.client.max_concurrency)
        try:
            catalogue = await self.client.list_workflows(deadline)
        except ApiError as exc:
            statuses.cancel()
            self._set_workspace_error(exc)
            return self._snapshot(refreshed=set())
        self._set_workspace_ok()
        self._note_paging(catalogue.paging)
        selected = self._select(catalogue.workflows)
        unreadable = self._mark_unreadable(catalogue.bad)
        self._log_new_errors()
        self._forget(catalogue.workflows, selected, unreadable)
        for wid in outs.keys() - selected.keys():
            outs.pop(wid).dropped = True
        refreshed = await self._refresh_all(selected, deadline, statuses, outs)
        self._last_duration = self._clock() - started
        self._polled_at = time.time()
        return self._snapshot(refreshed)

    def _forget(
        self, listed: Iterable[Workflow], selected: Mapping[str, Workflow], unreadable: set[str]
    ) -> None:
        """Drop the workflows no longer selected. One missing from the catalogue (a page shift,
        a lagging replica) is kept, with its counters, until collection.stale_after."""
        configured = {ref.id for ref in self.workspace.workflows or ()}
        present = {wf.id for wf in listed}
        now = self._clock()
        for wid, state in list(self._states.items()):
            if wid in selected or wid in configured or wid in unreadable:
                continue
            if wid in present or not self._fresh(state, now):
                del self._states[wid]  # no longer selected, or gone for stale_after
            else:
                self._set_error(state, "missing from the workflow list; kept until stale_after")

    def _fresh(self, state: _WorkflowState, now: float) -> bool:
        last = state.last_success
        return last is not None and now - last <= self.settings.stale_after

    def _select(self, workflows: Iterable[Workflow]) -> dict[str, Workflow]:
        ws = self.workspace
        by_id = {wf.id: wf for wf in workflows}
        selected: dict[str, Workflow] = {}
        if ws.workflows is not None:
            for ref in ws.workflows:
                if not self._shard_selects(ref.id):
                    continue
                entry = by_id.get(ref.id)
                state = self._state(ref.id, ref.name or (entry.name if entry else ref.id))
                if entry is None:
                    self._set_error(state, "not in the workspace's workflow list (deleted?)")
                else:
                    selected[ref.id] = entry
            return selected
        for wf in by_id.values():
            if self._shard_selects(wf.id) and ws.discovery.selects(wf.name):
                selected[wf.id] = wf
                state = self._state(wf.id, wf.name)
                if state.name != wf.name:  # renamed: new label values
                    state.name, state.published = wf.name, None
        return selected

    def _mark_unreadable(self, bad: Mapping[str, str]) -> set[str]:
        """Catalogue entries that could not be read: only those workflows are marked down."""
        configured = {ref.id: ref.name for ref in self.workspace.workflows or ()}
        marked = set()
        unlabelled = {p for w, p in bad.items() if w.startswith("data[")}
        seen_before, self._unlabelled = self._unlabelled, unlabelled
        for wid, problem in bad.items():
            if wid.startswith("data["):  # no usable id: nothing to label it with
                if problem not in seen_before:
                    log.warning("catalogue entry skipped: %s", problem,
                                extra={"workspace": self.workspace.name})  # fmt: skip
                continue
            if not self._shard_selects(wid):
                continue
            if self.workspace.workflows is not None and wid not in configured:
                continue
            known = self._states.get(wid)
            state = self._state(wid, configured.get(wid) or (known.name if known else wid))
            self._set_error(state, f"list_workflows: unexpected entry: {problem}")
            marked.add(wid)
        return marked

    def _state(self, wid: str, name: str) -> _WorkflowState:
        state = self._states.get(wid)
        if state is None:
            state = self._states[wid] = _WorkflowState(wid, name)
        return state

    async def _refresh_all(
        self,
        selected: Mapping[str, Workflow],
        deadline: Deadline,
        statuses: _Jobs,
        outs: dict[str, _Refresh],
    ) -> set[str]:
        """Ask each workflow for what it needs, and apply the answers as they complete.

        Three queues: Get Run Status of active runs (already running), List Runs (with the
        status of the runs that finished since), and Runs Summary last, once the statuses tell
        whether runs finished. A workflow's answers are applied as soon as they are all in, so
        that a cold poll holds a few dozen run lists at a time, not thousands."""
        lists = _Jobs(self.workspace.name)
        refreshed: set[str] = set()
        for wid, entry in selected.items():
            state = self._states[wid]
            out = outs.get(wid)
            if self._must_list(state, entry):
                out = outs.setdefault(wid, _Refresh(workflow_id=wid))
                lists.add(out, partial(self._list, state, out, deadline, statuses))
                continue
            latest = [state.ledger.latest] if state.ledger.latest is not None else []
            extra = self._to_fetch(state, latest, out.asked if out else set())
            if out is None and not extra and not self._wants_summary(state, entry, 0):
                # Idle and unchanged: no request, and no job either (thousands per poll).
                self._refreshed(state, entry)
                refreshed.add(wid)
                continue
            out = outs.setdefault(wid, _Refresh(workflow_id=wid))
            for rid in extra:
                self._ask_status(statuses, state, rid, out, deadline)

        def done(out: _Refresh) -> None:
            out.on_done = None
            self._apply_refresh(out, selected[out.workflow_id], refreshed)

        for out in outs.values():
            if out.pending:
                out.on_done = done
            else:
                done(out)  # its active runs' statuses are all in already
        # As many list workers as status workers: each list usually asks for one status, and
        # a list waiting for its statuses holds its runs.
        lists.start(self.client.max_concurrency)
        statuses.start(self.client.max_concurrency)
        await lists.finish(deadline)
        await statuses.finish(deadline)
        for out in outs.values():
            if out.on_done is not None:
                # What did arrive is kept (a cold start then makes progress poll by poll).
                out.error = out.error or ApiError("poll", "not done within the scrape deadline")
                done(out)
        summaries = _Jobs(self.workspace.name)
        asked: list[_Refresh] = []
        for wid, out in outs.items():
            state, entry = self._states[wid], selected[wid]
            if out.error is None and self._wants_summary(state, entry, out.statuses_seen):
                ask = _Refresh(workflow_id=wid, statuses_seen=out.statuses_seen)
                summaries.add(ask, partial(self._summary, state, entry, ask, deadline))
                asked.append(ask)
        summaries.start(self.client.max_concurrency)
        await summaries.finish(deadline)
        for ask in asked:
            if ask.pending:
                ask.error = ask.error or ApiError("poll", "not done within the scrape deadline")
            self._apply_refresh(ask, selected[ask.workflow_id], refreshed)
        self._log_new_errors()
        return refreshed

    def _apply_refresh(self, out: _Refresh, entry: Workflow, refreshed: set[str]) -> None:
        wid = out.workflow_id
        self._apply(self._states[wid], entry, out)
        if out.error is None:
            refreshed.add(wid)
        else:
            refreshed.discard(wid)
        # The run list and statuses are in the state now; a cold poll lists thousands.
        out.statuses_seen = max(out.statuses_seen, len(out.statuses))
        out.listed, out.statuses = None, {}

    def _ask_status(
        self, jobs: _Jobs, state: _WorkflowState, run_id: str, out: _Refresh, deadline: Deadline
    ) -> None:
        out.asked.add(run_id)
        jobs.add(out, partial(self._status, state.id, run_id, out, deadline))

    async def _status(
        self, workflow_id: str, run_id: str, out: _Refresh, deadline: Deadline
    ) -> None:
        try:
            out.statuses[run_id] = await self.client.get_run_status(workflow_id, run_id, deadline)
        except UnusableResponse as exc:
            out.unusable[run_id] = exc.message  # its List Runs item stands in for it
        except ApiError as exc:
            if exc.not_found:
                out.gone.add(run_id)
            if not exc.unauthorized:
                raise
            out.unusable[run_id] = ""  # refused: told once per workspace, below
            if self._status_enabled:
                self._status_enabled = False
                log.warning(
                    "Get Run Status is not allowed for this key; runs are read from List Runs "
                    "(status, steps, usage; no token cost)",
                    extra={"workspace": self.workspace.name, "error": str(exc)},
                )

    async def _list(
        self, state: _WorkflowState, out: _Refresh, deadline: Deadline, statuses: _Jobs
    ) -> None:
        limit = self.settings.recent_runs
        first = await self.client.list_runs(state.id, limit, deadline)
        runs = list(first.items)
        out.bad_items += first.bad
        if runs:
            numbers = [run.run_number for run in runs]
            top, low = max(numbers), min(numbers)
            out.covered.append((1 if len(runs) < limit else low, top))
            if len(runs) >= limit and state.ledger.started:
                runs += await self._page_back(state, (top, low, len(runs)), deadline, out)
        out.listed = tuple(runs)
        for rid in self._to_fetch(state, runs, out.asked):  # usually none, or one
            self._ask_status(statuses, state, rid, out, deadline)
        statuses.start(self.client.max_concurrency)

    async def _page_back(
        self,
        state: _WorkflowState,
        first: tuple[int, int, int],
        deadline: Deadline,
        out: _Refresh,
    ) -> list[Run]:
        """Older runs the ledger still wants (a burst larger than recent_runs): pages of List
        Runs, newest first, at offsets estimated from run numbers (numbered one by one, so the
        run numbered n sits near offset top - n), up to MAX_PAGES_BACK within the deadline.
        Every page shows all runs between its lowest and highest number; a page adjacent to the
        ones before also shows that none lie between. The rest waits for the next poll."""
        top, low, end = first  # the first page: highest and lowest number, length
        covered = out.covered
        got: list[Run] = []
        shift = 0  # how far the estimate overshot (runs deleted, numbers skipped, lag)
        for _ in range(MAX_PAGES_BACK):
            need = state.ledger.open_below(low, listed_only=not self._status_enabled)
            if need is None or deadline.expired():
                break
            at = max(end, top - need - shift)
            try:
                older = await self.client.list_runs(state.id, PAGE_LIMIT, deadline, at)
            except ApiError:
                break  # what arrived is kept; the rest next poll
            items = older.items
            out.bad_items += older.bad
            got += items
            numbers = [run.run_number for run in items] or [low]
            lowest, highest = min(numbers), max(numbers)
            covered.append((lowest, highest))
            if at == end or lowest <= need <= highest:
                bottom = 1 if len(items) < PAGE_LIMIT else lowest  # short: the oldest is in
                covered.append((bottom, low - 1 if at == end else highest))
                low = min(low, bottom)
                end += len(items) if at == end else 0
                if len(items) < PAGE_LIMIT:
                    break
            elif items and lowest > need:
                shift -= lowest - need  # not deep enough (more runs than numbers tell)
            else:
                shift += need - highest if items else PAGE_LIMIT  # too deep
        return got

    def _to_fetch(self, state: _WorkflowState, runs: Iterable[Run], polled: set[str]) -> set[str]:
        """Runs that need Get Run Status, beyond the watched ones already being asked about."""
        if not self._status_enabled:
            return set()
        ledger = state.ledger
        runs = list(runs)
        latest = ledger.latest
        newest = max(runs, key=lambda r: r.run_number, default=None)
        want: set[str] = set()
        for run in runs:
            if run.id in polled or run.id == state.undetailed:
                continue
            if not ledger.started:
                if not run.terminal or run is newest:  # active, or the latest at start-up
                    want.add(run.id)
            elif run.id in ledger.watching or ledger.is_open(run):
                want.add(run.id)  # active, or finished since the last poll (counted once)
            elif latest is not None and run.id == latest.id and not latest.detailed:
                want.add(run.id)  # the latest run's cost needs its full status, once
        return want

    def _must_list(self, state: _WorkflowState, entry: Workflow) -> bool:
        """List runs when the catalogue says a run was created (or cannot tell), or when the
        ledger still wants runs (or their delivered audio) only List Runs can give."""
        ledger = state.ledger
        if not ledger.started or ledger.gaps or ledger.list_only or ledger.audio_due:
            return True
        if ledger.watching and not self._status_enabled:
            return True
        fingerprint = entry.fingerprint()
        return fingerprint is None or fingerprint != state.listed_fingerprint

    @staticmethod
    def _summary_key(entry: Workflow, statuses_seen: int) -> object:
        """What changes when the summary's figures can change: the finished-run counts."""
        counts = entry.run_status_counts
        if counts is not None:
            return tuple([counts.get(s, 0) for s in _TERMINAL_ORDER])
        return (entry.fingerprint(), entry.last_run_status, statuses_seen)

    def _wants_summary(self, state: _WorkflowState, entry: Workflow, statuses_seen: int) -> bool:
        if not self._summary_enabled:
            return False
        return state.summary is None or self._summary_key(entry, statuses_seen) != state.summary_key

    async def _summary(
        self, state: _WorkflowState, entry: Workflow, out: _Refresh, deadline: Deadline
    ) -> None:
        if not self._summary_enabled:  # switched off by another workflow's answer meanwhile
            return
        try:
            out.summary = await self.client.runs_summary(state.id, deadline)
            out.summary_key = self._summary_key(entry, out.statuses_seen)
        except ApiError as exc:
            if not exc.unauthorized:
                raise
            if self._summary_enabled:
                self._summary_enabled = False
                log.warning(
                    "Runs Summary is not allowed for this key; pass ratio is derived from run "
                    "counts and average run duration is left out",
                    extra={"workspace": self.workspace.name, "error": str(exc)},
                )

    def _apply(self, state: _WorkflowState, entry: Workflow, out: _Refresh) -> None:
        """Merge a refresh into the state; the ledger counts each newly finished run once."""
        ledger = state.ledger
        if out.listed is not None or out.statuses or out.gone or out.unusable:
            state.changed()
        if out.summary is not None:
            state.published = None
        self._log_problems(state, out)
        for rid in out.gone:
            ledger.forget(rid)
        listed: set[str] = set()
        if out.listed is not None:
            # A list item is final (counted as it is) when no status record can be had for it.
            no_status = not self._status_enabled
            records = []
            for run in out.listed:
                listed.add(run.id)
                status = out.statuses.get(run.id)
                if status is not None:  # a status record lacks the list-only fields
                    records.append((status.with_list_fields(run), True))
                else:
                    final = no_status or run.id in out.unusable or run.id in ledger.list_only
                    records.append((run, final))
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
        if out.error is not None:
            self._set_error(state, str(out.error))
            return
        if out.summary is not None:
            state.summary, state.summary_key = out.summary, out.summary_key
        self._refreshed(state, entry)

    def _log_problems(self, state: _WorkflowState, out: _Refresh) -> None:
        """Bad values in runs, run lists and summaries (told once: see _note_problems)."""
        found: list[tuple[str | None, str]] = [
            (rid, problem) for rid, problem in out.unusable.items() if problem
        ]
        found += out.bad_items
        for run in (*(out.listed or ()), *out.statuses.values()):
            found += [(run.id, problem) for problem in run.problems]
        if out.summary is not None:
            found += [(None, problem) for problem in out.summary.problems]
        self._note_problems(state, found)

    def _note_problems(
        self, state: _WorkflowState, found: Iterable[tuple[str | None, str]]
    ) -> None:
        """Values left out, once per workflow and field (they come back every poll)."""
        for rid, problem in found:
            text = _FIELD_PREFIX.sub("", problem)
            where = text.split(":", 1)[0]
            if where in state.problems or len(state.problems) >= MAX_ERROR_LINES * 4:
                continue
            state.problems.add(where)
            extra = {"workspace": self.workspace.name, "workflow_id": state.id}
            if rid is not None:
                extra["run_id"] = rid
            log.warning("data left out: %s", text, extra=extra)

    def _refreshed(self, state: _WorkflowState, entry: Workflow) -> None:
        """The workflow's data is current (all of it, for an idle workflow)."""
        if entry.problems:  # values of its catalogue entry left out
            self._note_problems(state, [(None, problem) for problem in entry.problems])
        if entry.run_status_counts != state.status_counts:
            state.status_counts = entry.run_status_counts
            state.published = None
        state.last_success = self._clock()
        if state.error is not None:
            log.info(
                "workflow recovered",
                extra={"workspace": self.workspace.name, "workflow_id": state.id},
            )
            state.error = None

    # --- errors, logged once per change -------------------------------------------------------

    def _set_error(self, state: _WorkflowState, message: str) -> None:
        if not same_problem(message, state.error):
            self._new_errors.append((state.id, message))
        state.error = message

    def _log_new_errors(self) -> None:
        """One line per workflow whose problem changed; one line in all when there are many."""
        new, self._new_errors = self._new_errors, []
        ws = self.workspace.name
        if len(new) > MAX_ERROR_LINES:
            log.warning(
                "%d workflows not refreshed, e.g. %s: %s",
                len(new),
                new[0][0],
                new[0][1],
                extra={"workspace": ws},
            )
            return
        for wid, message in new:
            log.warning(
                "workflow not refreshed: %s", message, extra={"workspace": ws, "workflow_id": wid}
            )

    def _set_workspace_error(self, exc: ApiError) -> None:
        message = str(exc)
        # A client refused as too old (426) is retried as rarely as a rejected key.
        if exc.unauthorized or exc.upgrade_required:
            self._auth_failures += 1
            backoff = min(AUTH_BACKOFF_MAX, AUTH_BACKOFF_MIN * 2 ** (self._auth_failures - 1))
            self._auth_retry_at = self._clock() + backoff
            if exc.upgrade_required:
                message += (
                    "; the API refuses this client as outdated (version asked for: "
                    f"{exc.required_version or 'not named'}); a newer exporter release may be "
                    f"needed; next try in {backoff:.0f}s"
                )
            else:
                message += (
                    f"; check the token ({self.workspace.token.source}); next try in {backoff:.0f}s"
                )
        if not same_problem(message, self._error):
            log.error(
                "API refuses this client: %s"
                if exc.upgrade_required
                else "API unreachable or key rejected: %s",
                message,
                extra={"workspace": self.workspace.name},
            )
        self._error = message
        self._up = False

    def _note_paging(self, problem: str | None) -> None:
        """A catalogue cut short (the client says why): logged when it starts and ends."""
        ws = self.workspace.name
        if problem is not None and not same_problem(problem, self._paging):
            log.warning("List Workflows: %s", problem, extra={"workspace": ws})
        elif problem is None and self._paging is not None:
            log.info("List Workflows: paging works again", extra={"workspace": ws})
        self._paging = problem

    def _set_workspace_ok(self) -> None:
        if self._error is not None:
            log.info("API reachable again", extra={"workspace": self.workspace.name})
        self._error = None
        self._up = True
        self._auth_failures, self._auth_retry_at = 0, 0.0

    # --- snapshot -----------------------------------------------------------------------------

    def _snapshot(self, refreshed: set[str]) -> WorkspaceSnapshot:
        now = self._clock()
        workflows = []
        for state in self._states.values():
            up = state.id in refreshed
            workflows.append(self._workflow_snapshot(state, up, up or self._fresh(state, now)))
        return WorkspaceSnapshot(
            name=self.workspace.name,
            up=self._up,
            workflows=tuple(workflows),
            api=self.client.stats,
            collect_duration=self._last_duration,
            deadline=self._last_deadline,
            error=self._error,
            polled_at=self._polled_at,
        )

    def _workflow_snapshot(
        self, state: _WorkflowState, up: bool, has_data: bool
    ) -> WorkflowSnapshot:
        key = (up, has_data, None if up else state.error or self._error)
        if state.published is not None and state.published[0] == key:
            return state.published[1]
        # A new snapshot object gets a new version, unique in the process (exporter/rendering.py).
        snapshot = replace(
            self._build_workflow_snapshot(state, up, has_data), version=next(_VERSIONS)
        )
        state.published = (key, snapshot)
        return snapshot

    def _build_workflow_snapshot(
        self, state: _WorkflowState, up: bool, has_data: bool
    ) -> WorkflowSnapshot:
        totals = state.ledger.totals.freeze()
        if not has_data:
            error = state.error or self._error or "not refreshed yet"
            return WorkflowSnapshot(state.id, state.name, False, False, totals, error=error)
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
            last_success=_end_time(state.ledger.last_success),
            last_failure=_end_time(state.ledger.last_failure),
            active_runs=active if self.settings.run_series else (),
            error=None if up else (state.error or self._error or "not refreshed"),
        )


def _end_time(ended: Ended | None) -> float | None:
    return None if ended is None else ended[1]


def derived_pass_ratio(counts: Mapping[str, int]) -> float | None:
    """The API's rule (SDK 0.16.1 Runs Summary): completed / (completed + failed).

    Cancelled runs are left out (user-aborted, not a quality failure); None while no run
    completed or failed."""
    completed = counts.get("completed", 0)
    judged = completed + counts.get("failed", 0)
    return completed / judged if judged else None


class Poller:
    """Polls every workspace; concurrent scrapes share one poll; close polls reuse the last."""

    def __init__(
        self,
        workspaces: Iterable[WorkspacePoller],
        min_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workspaces = tuple(workspaces)
        self._min_interval = min_interval
        self._clock = clock
        self._last: Snapshot | None = None
        self._last_finished = float("-inf")
        self._inflight: asyncio.Future[Snapshot] | None = None
        self.polls = 0

    @property
    def last(self) -> Snapshot | None:
        return self._last

    @property
    def attempted(self) -> bool:
        return self._last is not None

    async def snapshot(self, timeout: float, wait: float | None = None) -> Snapshot:
        """The current snapshot, polling (`timeout` s) if the last one is older than min_interval.

        Waits at most `wait` s (default: `timeout` + 0.25), also for a poll already running."""
        if self._last is not None and self._clock() - self._last_finished < self._min_interval:
            return self._last
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._poll(timeout))
            self._inflight.add_done_callback(self._done)
        try:
            # shield: a scrape that gives up must not cancel the poll others wait for.
            wait = timeout + 0.25 if wait is None else wait
            return await asyncio.wait_for(asyncio.shield(self._inflight), wait)
        except TimeoutError:
            return self._last or self._not_polled_yet()

    def _not_polled_yet(self) -> Snapshot:
        """Before any poll finished: every workspace down, its own request counts served."""
        return Snapshot(
            tuple(
                WorkspaceSnapshot(
                    ws.workspace.name, False, (), ws.client.stats, error="first poll not done"
                )
                for ws in self.workspaces
            ),
            time.time(),
        )

    def _done(self, future: asyncio.Future[Snapshot]) -> None:
        if self._inflight is not future:
            return  # already recorded by replace()
        self._inflight = None
        if not future.cancelled() and future.exception() is None:
            self._last = future.result()
            self._last_finished = self._clock()

    async def _poll(self, timeout: float) -> Snapshot:
        self.polls += 1
        deadline = Deadline(timeout, self._clock)
        results = await asyncio.gather(*(ws.poll(deadline) for ws in self.workspaces))
        return Snapshot(tuple(results), time.time())

    async def replace(
        self, workspaces: Iterable[WorkspacePoller], min_interval: float
    ) -> tuple[WorkspacePoller, ...]:
        """Poll `workspaces` from now on (a config reload), once the running poll, if any, is
        done; the next snapshot polls anew. Returns the workspaces polled until now."""
        while (inflight := self._inflight) is not None:
            await asyncio.wait([inflight])
            self._done(inflight)  # now, not when its callback runs: no poll may start between
        old, self.workspaces = self.workspaces, tuple(workspaces)
        self._min_interval = min_interval
        self._last_finished = float("-inf")
        return old

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        for ws in self.workspaces:
            await ws.client.aclose()
