"""The worker pool: a queue of requests and a bounded number of workers taking from it.

A fixed number of workers instead of a task (and a semaphore wait) per request: at thousands of
requests per poll, tasks and semaphore queues were most of the poller's own CPU.
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


class Jobs:
    """Requests for workflows, each job counted in its workflow's `Refresh.pending`."""

    def __init__(self, workspace: str, deadline: Deadline) -> None:
        self._queue: deque[tuple[Refresh, Callable[[], Awaitable[None]], Deadline | None]] = deque()
        self._workers: list[asyncio.Future[None]] = []
        self._workspace = workspace
        self._deadline = deadline

    def add(
        self, out: Refresh, job: Callable[[], Awaitable[None]], start_by: Deadline | None = None
    ) -> None:
        """Queue a job; one with `start_by` is not started once that has passed."""
        out.pending += 1
        self._queue.append((out, job, start_by))

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
            _done, hung = await asyncio.wait(workers, timeout=deadline.hang_timeout())
            for worker in hung:
                worker.cancel()
            if hung:
                return

    def cancel(self) -> None:
        for worker in self._workers:
            worker.cancel()

    async def _work(self) -> None:
        # Past the deadline, what is left stays queued (its workflows' `pending` above zero): a
        # cold start leaves thousands, each of which would only fail at once.
        while self._queue and not self._deadline.expired():
            out, job, start_by = self._queue.popleft()
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
