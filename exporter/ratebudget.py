"""The request budget of a workspace (`http.max_requests_per_minute`): at most that many requests
in any 60 s window, retries included, and how a poll shares what is left.

`RequestBudget` is a sliding window of the times requests were sent (a deque: the limit is a few
hundred or thousand a minute, so the window holds at most that many floats); the client takes a
place before every attempt and defers a request that finds none. The window is kept a little
longer than a minute (`WINDOW_MARGIN`): the API counts requests when they arrive, which may be a
little later than when they left, so a count at the API side stays within the limit too.

`allot` is the poll's plan, pure: active runs' statuses and the catalogue first, then details
(every other request, whatever its kind: run lists, summaries, and any kind added later), which
take what is left as they are sent.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from exporter.deadline import Clock

WINDOW = 60.0
WINDOW_MARGIN = 1.0  # seconds added to the window: the latency between us and the API's counter


class RequestBudget:
    """Sliding-window request limiter of one workspace; `limit` None: no limit."""

    def __init__(self, limit: int | None, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._sent: deque[float] = deque()
        self.deferred = 0  # requests deferred so far (a counter)

    def remaining(self) -> int | None:
        """Requests that may be sent now; None without a limit."""
        if self.limit is None:
            return None
        horizon = self._clock() - (WINDOW + WINDOW_MARGIN)
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        return max(0, self.limit - len(self._sent))

    def take(self) -> bool:
        """A place for one request now (True), or the request is deferred (False)."""
        remaining = self.remaining()
        if remaining is None:
            return True
        if remaining == 0:
            self.deferred += 1
            return False
        self._sent.append(self._clock())
        return True

    def defer(self, count: int) -> None:
        """Requests a poll left out of its plan: deferred without being tried."""
        self.deferred += count


@dataclass(frozen=True, slots=True)
class Allotment:
    """What a poll may ask: how many active runs' statuses, and whether the catalogue."""

    statuses: int
    catalogue: bool


def allot(remaining: int | None, statuses: int, catalogue_pages: int) -> Allotment:
    """Active runs' statuses and the catalogue's pages (as many as the last poll read) before
    any detail. They go together: without the catalogue no answer can be applied, so a poll
    the catalogue does not fit in asks nothing, and statuses take what the catalogue leaves."""
    if remaining is None:
        return Allotment(statuses, True)
    if remaining < catalogue_pages:
        return Allotment(0, False)
    return Allotment(min(statuses, remaining - catalogue_pages), True)


def fitting_interval(needed: int, limit: int) -> int:
    """The scrape interval (whole seconds) at which polls of `needed` requests fit the limit."""
    return math.ceil(WINDOW * needed / limit)
