"""The worker pool: the poll's queues of requests and a bounded number of workers taking from them.

A fixed number of workers instead of a task (and a semaphore wait) per request: at thousands of
requests per poll, tasks and semaphore queues were most of the poller's own CPU.

One pool serves all of a poll's queues (statuses, run lists, summaries), so that its workers
are as many as the connections they share, and a free worker takes the most urgent job there
is: the steady poll's first (statuses, then run lists, then summaries), then a cold start's
backlog (jobs given a start-by), whose statuses and summaries come before its new run lists. A
workflow whose run list arrived is so finished before another is begun: with a queue each,
run lists taking their share of the connections every poll while the requests they lead to were
cut at the deadline kept a 20,000-workflow cold start from finishing any workflow for a dozen
polls.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from exporter.apierrors import ApiError
from exporter.deadline import Deadline
from exporter.workflowstate import Refresh

log = logging.getLogger("exporter.poller")


# The kinds of request, in the order a free worker takes the steady poll's jobs.
STATUSES, LISTS, SUMMARIES = 0, 1, 2
# Each kind's lane: its steady jobs, then (after every steady one) its backlog's.
_STEADY_LANE = {STATUSES: 0, LISTS: 1, SUMMARIES: 2}
_BACKLOG_LANE = {STATUSES: 3, SUMMARIES: 4, LISTS: 5}

Job = tuple[Refresh, Callable[[], Awaitable[None]], Deadline | None]


class WorkerPool:
    """A poll's requests, each job counted in its workflow's `Refresh.pending`."""

    def __init__(self, workspace: str, deadline: Deadline) -> None:
        self._lanes: list[deque[Job]] = [deque() for _ in range(len(_STEADY_LANE) * 2)]
        self._workers: list[asyncio.Future[None]] = []
        self._workspace = workspace
        self._deadline = deadline

    def queue(self, kind: int) -> Jobs:
        return Jobs(self, kind)

    def add(self, lane: int, job: Job) -> None:
        job[0].pending += 1
        self._lanes[lane].append(job)

    def start(self, workers: int) -> None:
        """Up to `workers` running workers (again, when jobs were added after they ended)."""
        self._workers = [w for w in self._workers if not w.done()]
        queued = sum(map(len, self._lanes))
        for _ in range(min(workers - len(self._workers), queued)):
            self._workers.append(asyncio.ensure_future(self._work()))

    async def finish(self, deadline: Deadline) -> None:
        """Wait for the jobs; requests stop themselves at the deadline, the margin only guards
        against a hang. Jobs not done leave their workflow's `pending` above zero."""
        while self._workers:  # a job may add jobs (and workers)
            workers, self._workers = self._workers, []
            _done, hung = await asyncio.wait(workers, timeout=deadline.hang_timeout())
            for worker in hung:
                worker.cancel()
            if hung:
                return

    def cancel(self) -> None:
        for worker in self._workers:
            worker.cancel()

    def _next(self) -> Job | None:
        for lane in self._lanes:
            if lane:
                return lane.popleft()
        return None

    async def _work(self) -> None:
        # Past the deadline, what is left stays queued (its workflows' `pending` above zero): a
        # cold start leaves thousands, each of which would only fail at once.
        while not self._deadline.expired() and (item := self._next()) is not None:
            out, job, start_by = item
            if start_by is not None and start_by.expired():
                continue  # left undone (`pending` stays above zero): asked at the next poll
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


class Jobs:
    """One kind of request queued in a poll's WorkerPool."""

    def __init__(self, pool: WorkerPool, kind: int) -> None:
        self.pool = pool
        self._kind = kind

    def add(
        self, out: Refresh, job: Callable[[], Awaitable[None]], start_by: Deadline | None = None
    ) -> None:
        """Queue a job; one with `start_by` (a cold start's backlog) waits behind every steady
        job, and is not started once that has passed."""
        lane = (_STEADY_LANE if start_by is None else _BACKLOG_LANE)[self._kind]
        self.pool.add(lane, (out, job, start_by))

    def start(self, workers: int) -> None:
        self.pool.start(workers)
