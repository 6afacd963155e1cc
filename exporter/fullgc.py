"""Full garbage collections at most once a minute, as a poll starts, never in its middle.

At 20,000 workflows the exporter's state is about 340,000 objects that the cyclic collector
tracks: a full collection of them takes 0.2 s (up to 1 s after a cold start's polls), and CPython
starts one whenever enough allocations have piled up, which a big poll does: in about every
second poll, where it held up every request in flight. The young generations are still collected
as CPython decides (they are cheap, and catch the short-lived cycles a library makes; a poll makes
none on purpose), but a full collection runs only as a poll starts, once `EVERY` seconds have
passed since the last: inside the poll's deadline, which the time it takes is counted against.
Not after an answer: a second Prometheus scraping then would wait for it, past its deadline.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

# Seconds between two full collections at least.
EVERY = 60.0
# Collections of the middle generation before CPython starts a full one on its own: never, in
# practice (an int the C runtime takes; it counts one a few thousand allocations).
_NEVER = 1 << 30


def hold_automatic() -> None:
    """From now on, CPython starts no full collection on its own (young ones go on)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)


def due(now: float, last: float, every: float = EVERY) -> bool:
    """Whether a full collection is due `now`, the last one having run at `last`."""
    return now - last >= every


class FullCollections:
    """Runs a full collection as a poll starts, when one is due."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        collect: Callable[[], object] = gc.collect,
    ) -> None:
        self._clock = clock
        self._collect = collect
        self._last = clock()

    def before_poll(self) -> None:
        if due(self._clock(), self._last):
            self._collect()
            self._last = self._clock()
