"""The simulator's clock: every timestamp the simulated API shows comes from here.

Two readings are offered:

- ``now()`` is the simulated wall time (unix seconds) that runs and ``meta.timestamp`` use;
- ``elapsed()`` is a monotonic reading in seconds used for per-minute rate-limit windows.
  A real clock measures it in *real* seconds, so a quota stays a real-world quota whatever
  ``--speed`` is; a manual clock measures it in simulated seconds, so tests reset a window by
  advancing the clock instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

# 2026-01-01T00:00:00Z: the default start of a manual clock, so that tests see fixed timestamps.
DEFAULT_MANUAL_START = 1_767_225_600.0


class Clock(Protocol):
    """What the simulator needs from a clock."""

    def now(self) -> float:
        """Simulated wall time in unix seconds."""
        ...

    def elapsed(self) -> float:
        """Monotonic seconds for rate-limit windows (see the module docstring)."""
        ...


class RealClock:
    """Simulated time = start + real elapsed time x speed."""

    def __init__(
        self,
        speed: float = 1.0,
        start: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self.start = time.time() if start is None else start
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> float:
        return self.start + (self._monotonic() - self._origin) * self.speed

    def elapsed(self) -> float:
        return self._monotonic() - self._origin


class ManualClock:
    """A clock that moves only when ``advance`` is called; for tests."""

    def __init__(self, start: float = DEFAULT_MANUAL_START) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def elapsed(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (>= 0) and return the new time."""
        if not seconds >= 0:
            raise ValueError("a clock only moves forward: seconds must be >= 0")
        with self._lock:
            self._now += seconds
            return self._now
