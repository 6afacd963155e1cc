"""The poll loop: one poll of a workspace (exporter/sharedpoll.py shares it among scrapes).

A poll asks for the catalogue (List Workflows) while the watched runs' statuses are asked for,
then, per selected workflow, what the planner (exporter/planner.py) says it needs; the worker
pool (exporter/jobs.py) runs the requests (exporter/fetch.py), each workflow's answers are
merged into its run ledger as soon as they are all in (exporter/workflowstate.py), and the
result is a snapshot of plain data (exporter/publish.py). It knows nothing of Prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from exporter.apierrors import ApiError, BudgetDeferred, DeadlineExceeded
from exporter.client import OnePinClient
from exporter.config import CollectionSettings, Workspace
from exporter.deadline import BACKLOG_SHARE, FIRST_BACKLOG_SHARE, STEPS_SHARE, Clock, Deadline
from exporter.fetch import Fetcher
from exporter.jobs import LISTS, STATUSES, SUMMARIES, Jobs, WorkerPool
from exporter.models import Workflow
from exporter.planner import (
    awaiting_details,
    not_reached,
    plan_workflow,
    planning_order,
    wants_summary,
    watched_statuses,
)
from exporter.pollbudget import PollBudget
from exporter.problems import ErrorLog, note_problems
from exporter.publish import frozen_stats, workflow_snapshot
from exporter.scheduled import configured_schedules, schedule_times
from exporter.selection import Selection
from exporter.snapshot import WorkspaceSnapshot
from exporter.stepsfetch import StepsFetcher
from exporter.triggers import TriggerWatch
from exporter.workflowstate import Refresh, WorkflowState, merge
from exporter.workspacehealth import WorkspaceHealth

log = logging.getLogger("exporter.poller")


def _cut() -> ApiError:
    """What a workflow whose requests did not all run in the poll (its deadline, or the cold
    start's share of it) is told."""
    return DeadlineExceeded("poll", "not done within the scrape deadline")


class WorkspacePoller:
    """Polls one workspace and keeps its state between polls."""

    def __init__(
        self,
        workspace: Workspace,
        client: OnePinClient,
        settings: CollectionSettings,
        selects: Callable[[str], bool] = lambda _id: True,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.workspace = workspace
        self.client = client
        self.settings = settings
        self._clock, self._wall_clock = clock, wall_clock
        self._schedules = configured_schedules(workspace)
        self._triggers = TriggerWatch(workspace.name, settings.schedule_triggers)
        self._fetch = Fetcher(client, settings, workspace.name)
        # Where active runs are is shown only with their run series: not asked for without.
        self._steps = StepsFetcher(client, workspace, settings.run_nodes and settings.run_series)
        self._health = WorkspaceHealth(workspace, clock)
        self._errors = ErrorLog(workspace.name)
        self._selection = Selection(workspace, selects, settings.stale_after, self._errors, clock)
        self._last_duration: float | None = None
        self._last_deadline: float | None = None
        self._polled_at: float | None = None
        self._budget = PollBudget(client.budget, client.stats, workspace.name)
        self._held: set[str] = set()
        # What a scrape that cannot wait for the first poll shows (exporter/sharedpoll.py):
        # every selected workflow as the catalogue describes it, once the catalogue is read.
        self.interim: WorkspaceSnapshot | None = None

    @property
    def _states(self) -> dict[str, WorkflowState]:
        return self._selection.states

    def adopt(self, old: WorkspacePoller) -> None:
        """Take over what `old`, the same workspace before a config reload, knew: the state of
        every workflow (its counters carry on) and the workspace's last result. Workflows the
        new config no longer selects are dropped by the next poll, as any unselected one."""
        self._selection.adopt(old._selection)
        self._health.adopt(old._health)
        self._triggers.adopt(old._triggers)
        self._last_duration, self._last_deadline = old._last_duration, old._last_deadline
        self._polled_at = old._polled_at

    # --- one poll -----------------------------------------------------------------------------

    async def poll(self, deadline: Deadline) -> WorkspaceSnapshot:
        started = self._clock()
        self._last_deadline = max(0.0, deadline.remaining())
        if self.workspace.token.refresh():
            log.info("token re-read", extra={"workspace": self.workspace.name})
            self._health.token_changed()
        self._held = set()  # workflows the budget deferred: up while their data is fresh
        if self._health.backing_off(started) or not (watched := self._within_budget()):
            return self._snapshot(refreshed=set())
        self.client.start_poll()
        # Active runs are polled while the catalogue is fetched: neither needs the other.
        pool = WorkerPool(self.workspace.name, deadline)
        statuses = pool.queue(STATUSES)
        outs = self._ask_watched(statuses, *watched, deadline)
        pool.start(self.client.max_concurrency)
        try:
            catalogue = await self.client.list_workflows(deadline)
        except ApiError as exc:
            pool.cancel()
            if isinstance(exc, BudgetDeferred):  # kept, as when the budget left no room
                self._held = set(self._states)
            else:
                self._health.failed(exc)
            return self._snapshot(refreshed=set())
        self._budget.catalogue_read(len(catalogue.workflows) + len(catalogue.bad))
        self._health.ok()
        self._health.note_paging(catalogue.paging)
        selection = self._selection
        selected = selection.select(catalogue.workflows)
        unreadable = selection.mark_unreadable(catalogue.bad)
        self._errors.flush()
        selection.forget(catalogue.workflows, selected, unreadable)
        for wid in outs.keys() - selected.keys():
            outs.pop(wid).dropped = True
        if self._polled_at is None:  # a first poll: shown as the catalogue says while it runs
            self.interim = self._view(self._catalogue_view(selected))
        refreshed, _ = await asyncio.gather(
            self._refresh_all(selected, deadline, statuses, outs),
            self._triggers.learn(self.client, selected, self._schedules, deadline),
        )
        self._last_duration = self._clock() - started
        self._polled_at = self._wall_clock()
        return self._snapshot(refreshed)

    def _within_budget(self) -> tuple[dict[str, list[str]], int] | None:
        """The watched runs, and how many the request budget allots; None: no room this poll."""
        access = self._fetch.access
        watched = {wid: watched_statuses(s.ledger, access) for wid, s in self._states.items()}
        share = self._budget.start(sum(map(len, watched.values())))
        self._held = set() if share.catalogue else set(self._states)  # they keep their data
        return (watched, share.statuses) if share.catalogue else None

    def _ask_watched(
        self, statuses: Jobs, watched: Mapping[str, list[str]], limit: int, deadline: Deadline
    ) -> dict[str, Refresh]:
        """Get Run Status of `limit` watched runs (the budget's), before the catalogue."""
        outs: dict[str, Refresh] = {}
        for wid, asks in ((wid, asks) for wid, asks in watched.items() if asks):
            out = outs[wid] = Refresh(workflow_id=wid)
            for run_id in asks[:limit]:
                self._fetch.ask_status(statuses, self._states[wid], run_id, out, deadline)
            if len(asks) > limit:  # deferred: kept as it is, not asked again in this poll
                out.asked.update(asks)
                out.error = BudgetDeferred("get_run_status", "deferred by the request budget")
            limit = max(0, limit - len(asks))
        return outs

    async def _refresh_all(
        self,
        selected: Mapping[str, Workflow],
        deadline: Deadline,
        statuses: Jobs,
        outs: dict[str, Refresh],
    ) -> set[str]:
        """Ask each workflow for what it needs, and apply the answers as they complete.

        Three queues of one worker pool: Get Run Status of active runs (already running), List
        Runs (with the status of the runs that finished since), and Runs Summary, asked for a
        workflow once its statuses tell whether runs finished. A workflow's answers are applied
        as soon as they are all in, so that a cold poll holds a few dozen run lists at a time,
        not thousands, and a cold start's backlog gets workflows done within each poll."""
        pool = statuses.pool
        lists, summaries = pool.queue(LISTS), pool.queue(SUMMARIES)
        refreshed: set[str] = set()
        asked: list[Refresh] = []
        # When the cold start's backlog stops starting requests (exporter/deadline.py).
        first = self._polled_at is None
        backlog = deadline.sooner(FIRST_BACKLOG_SHARE if first else BACKLOG_SHARE)
        self._plan(selected, (deadline, backlog), statuses, lists, outs, refreshed)

        def done(out: Refresh) -> None:
            out.on_done = None
            entry, state = selected[out.workflow_id], self._states[out.workflow_id]
            self._apply_refresh(out, entry, refreshed, deadline)
            # The backlog's summaries wait behind every steady request (exporter/jobs.py).
            start_by = backlog if awaiting_details(state, self._fetch.access) else None
            if out.error is None and state.ledger.started and not (start_by or deadline).expired():
                self._ask_summary(summaries, out, entry, (deadline, start_by), asked)

        for out in outs.values():
            if out.pending:
                out.on_done = done
            else:
                done(out)  # its active runs' statuses are all in already
        pool.start(self.client.max_concurrency)
        await pool.finish(deadline)
        for out in outs.values():
            if out.on_done is not None:
                # What did arrive is kept (a cold start then makes progress poll by poll).
                out.error = out.error or _cut()
                done(out)
        await self._summaries(selected, deadline, summaries, asked, refreshed)
        return refreshed

    async def _summaries(
        self,
        selected: Mapping[str, Workflow],
        deadline: Deadline,
        summaries: Jobs,
        asked: list[Refresh],
        refreshed: set[str],
    ) -> None:
        """The Runs Summaries asked for, and Get Run Steps of the runs counted (now or in a poll
        whose read failed) beside them (exporter/stepsfetch.py), started only in the first part
        of what is left of the poll (exporter/deadline.py)."""
        steps_by = deadline.sooner(STEPS_SHARE)
        self._steps.ask(summaries, (self._states[wid] for wid in selected), deadline, steps_by)
        summaries.start(self.client.max_concurrency)
        await summaries.pool.finish(deadline)
        for ask in asked:
            if ask.pending:
                ask.error = ask.error or _cut()
            self._apply_refresh(ask, selected[ask.workflow_id], refreshed, deadline)
        self._errors.flush()

    def _plan(
        self,
        selected: Mapping[str, Workflow],
        deadlines: tuple[Deadline, Deadline],
        statuses: Jobs,
        lists: Jobs,
        outs: dict[str, Refresh],
        refreshed: set[str],
    ) -> None:
        """Queue each selected workflow's requests, as the planner says."""
        fetch = self._fetch
        deadline, backlog = deadlines  # the poll's; when never-listed workflows stop starting
        for wid in planning_order(selected, self._states):
            state, entry = self._states[wid], selected[wid]
            out = outs.get(wid)
            plan = plan_workflow(state, entry, out.asked if out else None, fetch.access)
            if plan.idle:
                # Idle and unchanged: no request, and no job either (thousands per poll).
                self._refreshed(state, entry)
                refreshed.add(wid)
                continue
            out = outs.setdefault(wid, Refresh(workflow_id=wid))
            if plan.list_runs:
                start_by = None if state.ledger.started else backlog
                fetch.ask_list(lists, state, out, deadline, statuses, start_by)
            for rid in plan.statuses:
                fetch.ask_status(statuses, state, rid, out, deadline)

    def _ask_summary(
        self,
        summaries: Jobs,
        out: Refresh,
        entry: Workflow,
        deadlines: tuple[Deadline, Deadline | None],
        asked: list[Refresh],
    ) -> None:
        """Runs Summary of a workflow just refreshed, if its finished-run counts changed; the
        second deadline: when a cold start's backlog may start it at the latest."""
        state = self._states[out.workflow_id]
        if wants_summary(state, entry, out.statuses_seen, self._fetch.access):
            ask = Refresh(workflow_id=state.id, statuses_seen=out.statuses_seen)
            self._fetch.ask_summary(summaries, state, entry, ask, *deadlines)
            asked.append(ask)
            summaries.start(self.client.max_concurrency)

    def _apply_refresh(
        self, out: Refresh, entry: Workflow, refreshed: set[str], deadline: Deadline
    ) -> None:
        wid = out.workflow_id
        state = self._states[wid]
        if not_reached(out.error, deadline.expired()) and awaiting_details(
            state, self._fetch.access
        ):
            # Not reached in this poll (a cold start's backlog): what did arrive is kept, the
            # rest is asked for at the next polls; meanwhile the catalogue's data is current.
            out.error = None
        self._apply(state, entry, out)
        if out.error is None:
            refreshed.add(wid)
        else:
            refreshed.discard(wid)
            if isinstance(out.error, BudgetDeferred):
                self._held.add(wid)
        # The run list and statuses are in the state now; a cold poll lists thousands.
        out.statuses_seen = max(out.statuses_seen, len(out.statuses))
        out.listed, out.statuses = None, {}

    def _apply(self, state: WorkflowState, entry: Workflow, out: Refresh) -> None:
        """Merge a refresh into the state; the ledger counts each newly finished run once."""
        self._log_problems(state, out)
        merge(state, entry, out, self._fetch.access.status)
        if out.error is not None:
            if not isinstance(out.error, BudgetDeferred):  # deferred: asked at the next polls
                self._errors.set(state, str(out.error))
            return
        if out.summary is not None:
            state.summary, state.summary_key = out.summary, out.summary_key
        self._refreshed(state, entry)

    def _log_problems(self, state: WorkflowState, out: Refresh) -> None:
        """Bad values in runs, run lists and summaries (told once: exporter/problems.py)."""
        found: list[tuple[str | None, str]] = [
            (rid, problem) for rid, problem in out.unusable.items() if problem
        ]
        found += out.bad_items
        for run in (*(out.listed or ()), *out.statuses.values()):
            found += [(run.id, problem) for problem in run.problems]
        if out.summary is not None:
            found += [(None, problem) for problem in out.summary.problems]
        note_problems(state, found, self.workspace.name)

    def _refreshed(self, state: WorkflowState, entry: Workflow) -> None:
        """The workflow's data is current (all of it, for an idle workflow)."""
        if entry.problems:  # values of its catalogue entry left out
            found = [(None, problem) for problem in entry.problems]
            note_problems(state, found, self.workspace.name)
        if (entry.run_status_counts, entry.last_run_status) != (
            state.status_counts,
            state.catalogue_last_status,
        ):
            state.status_counts = entry.run_status_counts
            state.catalogue_last_status = entry.last_run_status
            state.published = None
        state.last_success = self._clock()
        if state.error is not None:
            log.info(
                "workflow recovered",
                extra={"workspace": self.workspace.name, "workflow_id": state.id},
            )
            state.error = None

    # --- snapshot -----------------------------------------------------------------------------

    def _catalogue_view(self, selected: Mapping[str, Workflow]) -> set[str]:
        """Every selected workflow never shown yet as the catalogue describes it (up), beside
        what is known of the others: the workflows to show up."""
        up = set()
        for wid, entry in selected.items():
            state = self._states[wid]
            if state.last_success is None and not state.ledger.started:
                self._refreshed(state, entry)
                up.add(wid)
        return up

    def _snapshot(self, refreshed: set[str]) -> WorkspaceSnapshot:
        self._budget.finish()
        self.interim = None
        return self._view(refreshed)

    def _view(self, refreshed: set[str]) -> WorkspaceSnapshot:
        now, wall = self._clock(), self._wall_clock()
        error, run_series = self._health.error, self.settings.run_series
        workflows = []
        for state in self._states.values():
            fresh = self._selection.fresh(state, now)
            up = state.id in refreshed or (state.id in self._held and fresh)
            has_data = up or fresh
            times = schedule_times(self._schedules, self._triggers.schedules, state.id, wall)
            workflows.append(workflow_snapshot(state, up, has_data, error, run_series, times))
        access = self._fetch.access
        return WorkspaceSnapshot(
            name=self.workspace.name,
            up=self._health.up,
            workflows=tuple(workflows),
            api=frozen_stats(self.client.stats),
            collect_duration=self._last_duration,
            deadline=self._last_deadline,
            error=error,
            polled_at=self._polled_at,
            backlog=sum(awaiting_details(s, access) for s in self._states.values()),
        )
