"""What the node-level counters of one workflow show: the node executions of the runs this
process saw finish (exporter/nodes.py reads them from Get Run Steps), kept in the workflow's
ledger Totals so that they survive as the other workflow counters do."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.apistats import Histogram
from exporter.nodes import FinishedRunNodes

# Node execution durations: from a second to a day.
NODE_DURATION_BUCKETS = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    43200.0,
    86400.0,
)


@dataclass(frozen=True, slots=True)
class FrozenNodeTotals:
    """An immutable copy, for a snapshot."""

    durations: Mapping[str, Histogram] = field(default_factory=dict)  # by node_type
    executions: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (type, status)


@dataclass(slots=True)
class NodeTotals:
    durations: dict[str, Histogram] = field(default_factory=dict)
    executions: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, found: FinishedRunNodes) -> None:
        for duration in found.durations:
            seconds = duration.seconds
            if not math.isfinite(seconds):
                continue
            hist = self.durations.get(duration.node_type)
            if hist is None:
                hist = self.durations[duration.node_type] = Histogram(NODE_DURATION_BUCKETS)
            hist.observe(seconds)
        for key, count in found.executions.items():
            self.executions[key] = self.executions.get(key, 0) + count

    def freeze(self) -> FrozenNodeTotals:
        return FrozenNodeTotals(
            {t: h.copy() for t, h in self.durations.items()}, dict(self.executions)
        )
