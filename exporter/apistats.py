"""Plain-data counters and histograms, filled by the client and poller, read by exporter/metrics.py.

They are deliberately not prometheus_client types: only the metrics modules know about Prometheus.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

# API latency, in seconds.
API_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Workflow run durations: from seconds to a day.
RUN_DURATION_BUCKETS = (
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
)


@dataclass(frozen=True, slots=True)
class Exemplar:
    """A run behind a sample (OpenMetrics exemplar): its id and number, the value it added, and
    when it ended (None: not known)."""

    run_id: str
    run_number: int
    value: float
    timestamp: float | None = None

    def newer_than(self, other: Exemplar | None) -> bool:
        """Whether this run ended after `other` (ties: the higher run number; a run with no end
        time is older than one with): an exemplar shows the most recently ended run counted."""
        if other is None:
            return True
        mine, theirs = self.timestamp, other.timestamp
        if mine != theirs:
            return theirs is None or (mine is not None and mine > theirs)
        return self.run_number >= other.run_number


@dataclass(slots=True)
class Histogram:
    """Cumulative-on-read histogram: `counts[i]` is the number of observations in bucket i."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> int:
        """Counts `value`; returns its bucket's index (len(bounds): the +Inf bucket)."""
        i = bisect.bisect_left(self.bounds, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.sum += value
        self.count += 1
        return i

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, cumulative count) pairs, ending with +Inf."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            out.append((bound, running))
        out.append((float("inf"), self.count))
        return out

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.sum, self.count)


@dataclass(slots=True)
class ApiStats:
    """What one workspace's client sent to the API: counts by (endpoint, code), latency."""

    requests: defaultdict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    latency: dict[str, Histogram] = field(default_factory=dict)
    # With http.max_requests_per_minute: what the budget leaves now, and requests it deferred.
    budget_remaining: int | None = None
    deferred: int = 0

    def record(self, endpoint: str, code: str, seconds: float) -> None:
        self.requests[(endpoint, code)] += 1
        hist = self.latency.get(endpoint)
        if hist is None:
            hist = self.latency[endpoint] = Histogram(API_LATENCY_BUCKETS)
        hist.observe(seconds)

    def total(self) -> int:
        return sum(self.requests.values())
