"""The requests of one workflow's refresh, as jobs for the worker pool (exporter/jobs.py).

Each job asks the client and puts the answer in the workflow's `Refresh`; what to ask is the
planner's to say (exporter/planner.py). A 401/403 on Get Run Status or Runs Summary switches
that endpoint off for the workspace (`access`), told once.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial

from exporter.apierrors import ApiError, UnusableResponse
from exporter.client import PAGE_LIMIT, OnePinClient
from exporter.config import CollectionSettings
from exporter.deadline import Deadline
from exporter.jobs import Jobs
from exporter.models import Run, Workflow
from exporter.planner import (
    Access,
    PageBack,
    first_page_covered,
    statuses_to_fetch,
    summary_key,
    wants_page_back,
)
from exporter.workflowstate import Refresh, WorkflowState

log = logging.getLogger("exporter.poller")
# List Runs pages (of PAGE_LIMIT runs) asked per workflow and poll to catch up with a burst
# larger than collection.recent_runs; what does not fit is asked for at the next polls.
MAX_PAGES_BACK = 3


class Fetcher:
    def __init__(self, client: OnePinClient, settings: CollectionSettings, workspace: str) -> None:
        self.client = client
        self._settings = settings
        self._workspace = workspace
        self.access = Access(status=True, summary=settings.runs_summary)

    def ask_status(
        self,
        jobs: Jobs,
        state: WorkflowState,
        run_id: str,
        out: Refresh,
        deadline: Deadline,
        start_by: Deadline | None = None,
    ) -> None:
        out.asked.add(run_id)
        jobs.add(out, partial(self._status, state.id, run_id, out, deadline), start_by)

    async def _status(
        self, workflow_id: str, run_id: str, out: Refresh, deadline: Deadline
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
            if self.access.status:
                self.access = dataclasses.replace(self.access, status=False)
                log.warning(
                    "Get Run Status is not allowed for this key; runs are read from List Runs "
                    "(status, steps, usage; no token cost)",
                    extra={"workspace": self._workspace, "error": str(exc)},
                )

    def ask_list(
        self,
        jobs: Jobs,
        state: WorkflowState,
        out: Refresh,
        deadline: Deadline,
        statuses: Jobs,
        start_by: Deadline | None = None,
    ) -> None:
        """List Runs (and page back), then the statuses the listing shows are needed."""
        jobs.add(out, partial(self._list, state, out, deadline, statuses, start_by), start_by)

    async def _list(
        self,
        state: WorkflowState,
        out: Refresh,
        deadline: Deadline,
        statuses: Jobs,
        start_by: Deadline | None,
    ) -> None:
        limit = self._settings.recent_runs
        first = await self.client.list_runs(state.id, limit, deadline)
        runs = list(first.items)
        out.bad_items += first.bad
        numbers = [run.run_number for run in runs]
        covered = first_page_covered(numbers, limit)
        if covered is not None:
            out.covered.append(covered)
            if wants_page_back(len(runs), limit, state.ledger):
                pager = PageBack(max(numbers), min(numbers), len(runs), PAGE_LIMIT)
                runs += await self._page_back(state, pager, deadline, out)
        out.listed = tuple(runs)
        for rid in statuses_to_fetch(state, runs, out.asked, self.access):  # usually 0 or 1
            self.ask_status(statuses, state, rid, out, deadline, start_by)
        statuses.start(self.client.max_concurrency)

    async def _page_back(
        self, state: WorkflowState, pager: PageBack, deadline: Deadline, out: Refresh
    ) -> list[Run]:
        """Older runs the ledger still wants (a burst larger than recent_runs), up to
        MAX_PAGES_BACK pages within the deadline; what arrived is kept, the rest waits for the
        next poll."""
        got: list[Run] = []
        for _ in range(MAX_PAGES_BACK):
            need = state.ledger.open_below(pager.low, listed_only=not self.access.status)
            if need is None or deadline.expired():
                break
            at = pager.offset(need)
            try:
                older = await self.client.list_runs(state.id, PAGE_LIMIT, deadline, at)
            except ApiError:
                break
            out.bad_items += older.bad
            got += older.items
            if pager.took(at, [run.run_number for run in older.items], need):
                break
        out.covered += pager.covered
        return got

    def ask_summary(
        self,
        jobs: Jobs,
        state: WorkflowState,
        entry: Workflow,
        out: Refresh,
        deadline: Deadline,
        start_by: Deadline | None = None,
    ) -> None:
        jobs.add(out, partial(self._summary, state, entry, out, deadline), start_by)

    async def _summary(
        self, state: WorkflowState, entry: Workflow, out: Refresh, deadline: Deadline
    ) -> None:
        if not self.access.summary:  # switched off by another workflow's answer meanwhile
            return
        try:
            out.summary = await self.client.runs_summary(state.id, deadline)
            out.summary_key = summary_key(entry, out.statuses_seen)
        except ApiError as exc:
            if not exc.unauthorized:
                raise
            if self.access.summary:
                self.access = dataclasses.replace(self.access, summary=False)
                log.warning(
                    "Runs Summary is not allowed for this key; pass ratio is derived from run "
                    "counts and average run duration is left out",
                    extra={"workspace": self._workspace, "error": str(exc)},
                )
