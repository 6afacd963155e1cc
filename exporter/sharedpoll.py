"""One poll at a time for concurrent scrapes: they share the running poll, and a scrape close
after the last poll reuses it (`collection.min_interval`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from exporter.deadline import Clock, Deadline, snapshot_wait
from exporter.fullgc import FullCollections
from exporter.poller import WorkspacePoller
from exporter.publish import frozen_stats
from exporter.snapshot import Snapshot, WorkspaceSnapshot


class Poller:
    """Polls every workspace; concurrent scrapes share one poll; close polls reuse the last."""

    def __init__(
        self,
        workspaces: Iterable[WorkspacePoller],
        min_interval: float,
        clock: Clock = time.monotonic,
        full_collections: FullCollections | None = None,
    ) -> None:
        self.workspaces = tuple(workspaces)
        self._full_collections = full_collections or FullCollections(clock)
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

        Waits at most `wait` s (default: exporter/deadline.py), also for a poll already running."""
        if self._last is not None and self._clock() - self._last_finished < self._min_interval:
            return self._last
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._poll(timeout))
            self._inflight.add_done_callback(self._done)
        try:
            # shield: a scrape that gives up must not cancel the poll others wait for.
            return await asyncio.wait_for(
                asyncio.shield(self._inflight), snapshot_wait(timeout, wait)
            )
        except TimeoutError:
            return self._last or self._not_polled_yet()

    def _not_polled_yet(self) -> Snapshot:
        """Before any poll finished: each workspace as its first poll's catalogue pass shows
        it, or down (with its own request counts) before that pass is done."""
        return Snapshot(
            tuple(
                ws.interim
                or WorkspaceSnapshot(
                    ws.workspace.name,
                    False,
                    (),
                    frozen_stats(ws.client.stats),
                    error="first poll not done",
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
        self._full_collections.before_poll()  # counted against the deadline, once a minute
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
