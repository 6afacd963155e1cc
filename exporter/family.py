"""What a metric family declaration is (exporter/metrics.py declares them all): `Family`, with the
function that makes its samples; `RunGauge`, a value of a run; `WorkflowLines`, the context a
workflow's samples are made from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.exposition import escape, header
from exporter.models import Run
from exporter.snapshot import WorkflowSnapshot

GAUGE, COUNTER, HISTOGRAM = "gauge", "counter", "histogram"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Family(Generic[T]):
    """A metric family and how its samples are made from a `T` (see exporter/metrics.py)."""

    name: str
    type: str  # gauge, counter or histogram
    help: str
    labels: tuple[str, ...]
    samples: Callable[[T], str] = field(compare=False, repr=False)

    def header(self, openmetrics: bool) -> str:
        return header(self.name, self.type, self.help, openmetrics)

    @property
    def sample(self) -> str:
        return self.name + "_total" if self.type == COUNTER else self.name


@dataclass(frozen=True, slots=True)
class RunGauge:
    """A value of a run exported for the latest run (`last_run`) and for each active run
    (`run_level`): the Run attribute `key` (a method is called; with `usage`, the
    usage_summary entry `key`), times `scale`, divided by `divisor`."""

    suffix: str
    help: str
    key: str
    run_level: bool = True
    last_run: bool = True
    usage: bool = False
    scale: float = 1.0
    divisor: float = 1.0

    def read(self, run: Run) -> float | None:
        if self.usage:
            value = run.usage_value(self.key)
        else:
            value = getattr(run, self.key)
            if callable(value):
                value = value()
        return None if value is None else value * self.scale / self.divisor


class WorkflowLines:
    """One workflow's snapshot, with the label strings that its samples share, and whether its
    samples carry exemplars (OpenMetrics)."""

    __slots__ = ("base", "exemplars", "last_run", "runs", "wf")

    def __init__(
        self, workspace: str, wf: WorkflowSnapshot, triggered_by: bool, exemplars: bool = False
    ) -> None:
        self.wf = wf
        self.exemplars = exemplars
        self.base = (
            f'workspace="{escape(workspace)}",workflow_id="{escape(wf.id)}",'
            f'workflow_name="{escape(wf.name)}"'
        )
        self.last_run = wf.last_run if wf.has_data else None
        # Each active run with its labels, and its triggered_by label (or "") for run_status.
        self.runs = tuple(
            (
                run,
                f'{self.base},run_id="{escape(run.id)}",run_number="{run.run_number}"',
                f',triggered_by="{escape(run.triggered_by or "")}"' if triggered_by else "",
            )
            for run in (wf.active_runs if wf.has_data else ())
        )


@dataclass(frozen=True, slots=True)
class ProcessGauge:
    """A gauge of this process (not of the API), collected by a prometheus_client Collector."""

    name: str
    help: str

    def metric(self, value: float) -> Metric:
        return GaugeMetricFamily(self.name, self.help, value=value)
