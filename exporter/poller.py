"""Decide what to ask the API for, within the API budget and the scrape's deadline.

Per poll and workspace (design §5):
- one paged List Workflows call: the catalogue tells which workflows have new runs;
- List Runs only for a workflow whose catalogue entry changed (or that was never listed);
- Get Run Status for every active run, and once for a run seen terminal for the first time
  (terminal runs never change: they are cached and counted once);
- Runs Summary only when a workflow's terminal run counts changed, and never again for a
  workspace whose key may not use it (401/403).
It produces a `Snapshot` of plain data and knows nothing of Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial

from exporter.client import ApiError, Deadline, OnePinClient
from exporter.config import CollectionSettings, Workspace
from exporter.models import TERMINAL_STATUSES, Fingerprint, Run, RunsSummary, Workflow
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkflowTotals, WorkspaceSnapshot
from exporter.stats import RUN_DURATION_BUCKETS, Histogram

log = logging.getLogger("exporter.poller")
_TERMINAL_ORDER = tuple(sorted(TERMINAL_STATUSES))

AUTH_BACKOFF_MIN = 30.0
AUTH_BACKOFF_MAX = 600.0
MAX_ERROR_LINES = 5
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
class _Totals:
    finished: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TERMINAL_STATUSES, 0))
    duration: Histogram = field(default_factory=lambda: Histogram(RUN_DURATION_BUCKETS))
    token_cost: float = 0.0
    cpu_seconds: float = 0.0
    frozen: WorkflowTotals | None = None

    def count(self, run: Run) -> None:
        self.frozen = None
        self.finished[run.status] = self.finished.get(run.status, 0) + 1
        duration = run.duration()
        if duration is not None:
            self.duration.observe(duration)
        self.token_cost += run.token_cost or 0.0
        self.cpu_seconds += run.usage_value("cpu_seconds") or 0.0

    def freeze(self) -> WorkflowTotals:
        """An immutable copy, the same object while nothing was counted."""
        if self.frozen is None:
            self.frozen = WorkflowTotals(
                dict(self.finished), self.duration.copy(), self.token_cost, self.cpu_seconds
            )
        return self.frozen


@dataclass(slots=True)
class _WorkflowState:
    """What is known of one workflow between polls."""

    id: str
    name: str
    listed_fingerprint: Fingerprint | None = None
    listed: bool = False
    # Active runs and the latest run; of older finished runs (the window of the last run
    # list) only what counting each finish once needs: their ids, as 64-bit hashes (8 bytes
    # each instead of ~150 for a string in a set; a mistake needs two of one workflow's
    # recent run ids to collide).
    runs: dict[str, Run] = field(default_factory=dict)
    done: array[int] = field(default_factory=lambda: array("q"))
    summary: RunsSummary | None = None
    summary_key: object = None
    status_counts: Mapping[str, int] | None = None
    totals: _Totals = field(default_factory=_Totals)
    last_success: float | None = None
    error: str | None = None
    # The last snapshot handed out, reused while nothing changed (the collector caches its
    # rendered lines by object): (up, has_data, error) it was made for, and the snapshot.
    published: tuple[tuple[bool, bool, str | None], WorkflowSnapshot] | None = None
    _active: list[Run] | None = None

    def latest(self) -> Run | None:
        return max(self.runs.values(), key=lambda r: r.run_number, default=None)

    def active(self) -> list[Run]:
        """The runs not yet terminal (cached: asked for several times per poll)."""
        if self._active is None:
            self._active = [r for r in self.runs.values() if not r.terminal]
        return self._active

    def known_terminal(self, run_id: str) -> bool:
        run = self.runs.get(run_id)
        return run.terminal if run is not None else hash(run_id) in self.done

    def prune(self) -> None:
        """Keep whole Run objects only for active runs and the latest one."""
        latest = self.latest()
        for rid, run in list(self.runs.items()):
            if run.terminal and run is not latest:
                del self.runs[rid]
                self.done.append(hash(rid))
        self._active = None


@dataclass(slots=True)
class _Refresh:
    """The outcome of refreshing one workflow, applied to its state in one step."""

    listed: tuple[Run, ...] | None = None
    statuses: dict[str, Run] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
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
        self._auth_failures = 0
        self._auth_retry_at = 0.0
        self._error: str | None = None
        self._up = False
        self._last_duration: float | None = None
        self._last_deadline: float | None = None
        self._polled_at: float | None = None
        self._new_errors: list[tuple[str, str]] = []
        self._unlabelled: set[str] = set()

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
            if state.active():
                out = outs[wid] = _Refresh(workflow_id=wid)
                for run in state.active():
                    self._ask_status(statuses, state, run.id, out, deadline)
        statuses.start(self.client.max_concurrency)
        try:
            catalogue = await self.client.list_workflows(deadline)
        except ApiError as exc:
            statuses.cancel()
            self._set_workspace_error(exc)
            return self._snapshot(refreshed=set())
        self._set_workspace_ok()
        selected = self._select(catalogue.workflows)
        unreadable = self._mark_unreadable(catalogue.bad)
        self._log_new_errors()
        configured = {ref.id for ref in self.workspace.workflows or ()}
        for wid in list(self._states):
            if wid not in selected and wid not in configured and wid not in unreadable:
                del self._states[wid]  # gone from the API, or no longer selected
        for wid in outs.keys() - selected.keys():
            outs.pop(wid).dropped = True
        refreshed = await self._refresh_all(selected, deadline, statuses, outs)
        self._last_duration = self._clock() - started
        self._polled_at = time.time()
        return self._snapshot(refreshed)

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
            extra = self._to_fetch(state, state.runs.values(), out.asked if out else set())
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
        except ApiError as exc:
            if exc.not_found:
                out.gone.add(run_id)
            raise

    async def _list(
        self, state: _WorkflowState, out: _Refresh, deadline: Deadline, statuses: _Jobs
    ) -> None:
        page = await self.client.list_runs(state.id, self.settings.recent_runs, deadline)
        out.listed = page.items
        for rid in self._to_fetch(state, page.items, out.asked):  # usually none, or one
            self._ask_status(statuses, state, rid, out, deadline)
        statuses.start(self.client.max_concurrency)

    def _to_fetch(self, state: _WorkflowState, runs: Iterable[Run], polled: set[str]) -> set[str]:
        """Runs that need Get Run Status, beyond the active ones already being polled."""
        runs = list(runs)
        latest = max(runs, key=lambda r: r.run_number, default=None)
        want: set[str] = set()
        for run in runs:
            if run.id in polled:
                continue
            if state.known_terminal(run.id):
                known = state.runs.get(run.id)
                if known is not None and not known.detailed and run is latest:
                    want.add(run.id)  # the latest run's cost needs its full status, once
                continue
            if not run.terminal:
                want.add(run.id)
            elif state.listed or run is latest:
                # Finished since the last poll (counted once), or the latest at start-up.
                want.add(run.id)
        return want

    @staticmethod
    def _must_list(state: _WorkflowState, entry: Workflow) -> bool:
        """List runs when the catalogue says a run was created (or cannot tell)."""
        fingerprint = entry.fingerprint()
        return not state.listed or fingerprint is None or fingerprint != state.listed_fingerprint

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
        """Merge a refresh into the state, counting each newly finished run exactly once."""
        if out.listed is not None or out.statuses or out.gone or out.summary is not None:
            state.published = None
        previous = dict(state.runs)
        previous_done = state.done
        unfinished_list = False
        if out.listed is not None:
            window: dict[str, Run] = {}
            done = array("q")
            for run in out.listed:
                known = previous.get(run.id)
                if hash(run.id) in previous_done:
                    done.append(hash(run.id))  # finished and already counted
                elif known is not None and (known.terminal or known.detailed):
                    # Cached detail (terminal runs never change), with the list-only fields.
                    window[run.id] = known.with_list_fields(run)
                elif run.terminal and state.listed and run.id not in out.statuses:
                    # Finished since the last poll, but its status did not arrive: it is left
                    # out, and the list asked for again, so that it is counted next time.
                    unfinished_list = True
                else:
                    window[run.id] = run
            # Active runs older than the window stay watched until they end.
            for run in state.active():
                window.setdefault(run.id, run)
            state.runs, state.done = window, done
        for rid in out.gone:
            state.runs.pop(rid, None)
        listed = {run.id: run for run in out.listed or ()}
        for rid, run in out.statuses.items():
            known = previous.get(rid)
            run = run.with_list_fields(listed.get(rid) or known)  # a status lacks list fields
            if hash(rid) in previous_done or (known is not None and known.terminal):
                if not run.terminal:
                    log.warning(
                        "run went back from terminal to active; keeping its final state",
                        extra={
                            "workspace": self.workspace.name,
                            "workflow_id": state.id,
                            "run_id": rid,
                            "status": run.status,
                        },
                    )
                elif known is not None and not known.detailed and rid in state.runs:
                    state.runs[rid] = run  # same final state, now with every field
                continue
            # Counted when seen finishing: it was active before, or is new since start-up.
            if run.terminal and (state.listed or known is not None):
                state.totals.count(run)
            state.runs[rid] = run
        if state.published is None:
            state.prune()
        if out.listed is not None and not unfinished_list:
            # The list itself arrived: active runs missing a status are asked for next time.
            state.listed = True
            state.listed_fingerprint = entry.fingerprint()
        if out.error is not None:
            self._set_error(state, str(out.error))
            return
        if out.summary is not None:
            state.summary, state.summary_key = out.summary, out.summary_key
        self._refreshed(state, entry)

    def _refreshed(self, state: _WorkflowState, entry: Workflow) -> None:
        """The workflow's data is current (all of it, for an idle workflow)."""
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
            fresh = state.last_success is not None and (
                now - state.last_success <= self.settings.stale_after
            )
            up = state.id in refreshed
            workflows.append(self._workflow_snapshot(state, up, up or fresh))
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
        snapshot = self._build_workflow_snapshot(state, up, has_data)
        state.published = (key, snapshot)
        return snapshot

    def _build_workflow_snapshot(
        self, state: _WorkflowState, up: bool, has_data: bool
    ) -> WorkflowSnapshot:
        totals = state.totals.freeze()
        if not has_data:
            error = state.error or self._error or "not refreshed yet"
            return WorkflowSnapshot(state.id, state.name, False, False, totals, error=error)
        summary = state.summary
        counts = state.status_counts or (summary.counts if summary else None)
        pass_ratio = summary.pass_rate if summary else None
        if summary is None and state.status_counts is not None:
            pass_ratio = derived_pass_ratio(state.status_counts)
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
            last_run=state.latest(),
            active_runs=active if self.settings.run_series else (),
            error=None if up else (state.error or self._error or "not refreshed"),
        )


def derived_pass_ratio(counts: Mapping[str, int]) -> float | None:
    """The API's own formula: completed / (completed + failed + cancelled)."""
    done = sum(counts.get(s, 0) for s in TERMINAL_STATUSES)
    return counts.get("completed", 0) / done if done else None


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

    async def snapshot(self, timeout: float) -> Snapshot:
        """The current snapshot, polling if the last one is older than min_interval."""
        if self._last is not None and self._clock() - self._last_finished < self._min_interval:
            return self._last
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._poll(timeout))
            self._inflight.add_done_callback(self._done)
        try:
            # shield: a scrape that gives up must not cancel the poll others wait for.
            return await asyncio.wait_for(asyncio.shield(self._inflight), timeout + 0.25)
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
