"""Turn a snapshot into Prometheus metric families. Every metric name lives in this module.

Rules (design §4.4): base units; a value the API did not send is absent, never 0; state sets emit
every known status as 0/1 and pass unknown statuses through; run-level series exist only for
active runs; run ids and user names never label series that outlive a run.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from exporter import __version__
from exporter.models import KNOWN_STATUSES, TERMINAL_STATUSES, Run
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot
from exporter.stats import Histogram

MIB = 1048576.0
WF_LABELS = ("workspace", "workflow_id", "workflow_name")
RUN_LABELS = (*WF_LABELS, "run_id", "run_number")


@dataclass(frozen=True, slots=True)
class RunGauge:
    """A per-run value exported both for the latest run and for each active run."""

    suffix: str
    help: str
    value: Callable[[Run], float | None]
    run_level: bool = True


def _usage(key: str, scale: float = 1.0) -> Callable[[Run], float | None]:
    def read(run: Run) -> float | None:
        value = run.usage_value(key)
        return None if value is None else value * scale

    return read


def _int(value: int | None) -> float | None:
    return None if value is None else float(value)


RUN_GAUGES: tuple[RunGauge, ...] = (
    RunGauge("number", "Run number (per-workflow sequence).", lambda r: float(r.run_number), False),
    RunGauge("finished_steps", "Steps finished.", lambda r: _int(r.finished_steps)),
    RunGauge("total_steps", "Steps in the run.", lambda r: _int(r.total_steps)),
    RunGauge("total_nodes", "Nodes in the run's graph.", lambda r: _int(r.total_nodes)),
    RunGauge("token_cost", "Token cost, as the API reports it.", lambda r: r.token_cost),
    RunGauge("credits", "Credits used, as the API reports them.", lambda r: r.credits),
    RunGauge("cpu_seconds", "CPU seconds used (usage_summary.cpu_seconds).", _usage("cpu_seconds")),
    RunGauge("memory_bytes", "Memory used (usage_summary.memory_mb).", _usage("memory_mb", MIB)),
    RunGauge("api_calls", "API calls made (usage_summary.api_calls).", _usage("api_calls")),
    RunGauge("tokens_used", "Tokens used (usage_summary.tokens_used).", _usage("tokens_used")),
    RunGauge("errors", "Errors reported in usage_summary.errors.", _usage("errors")),
    RunGauge(
        "duration_seconds",
        "Running time (started to completed, or to the API's now).",
        lambda r: r.duration(),
    ),
    RunGauge("created_timestamp_seconds", "When the run was created.", lambda r: r.created_at),
    RunGauge("started_timestamp_seconds", "When the run started.", lambda r: r.started_at),
    RunGauge(
        "completed_timestamp_seconds",
        "When the run reached a terminal status.",
        lambda r: r.completed_at,
        False,
    ),
    RunGauge("updated_timestamp_seconds", "When the run was last updated.", lambda r: r.updated_at),
)


def _status_values(status: str) -> Iterator[tuple[str, float]]:
    """A state set: every known status as 0/1, plus an unknown status as its own value."""
    for known in KNOWN_STATUSES:
        yield known, 1.0 if status == known else 0.0
    if status not in KNOWN_STATUSES:
        yield status, 1.0


def _histogram_buckets(hist: Histogram) -> list[tuple[str, float]]:
    return [("+Inf" if b == float("inf") else repr(b), float(n)) for b, n in hist.cumulative()]


class SnapshotCollector:
    """A prometheus_client collector over one snapshot (build a new one per scrape)."""

    def __init__(self, snapshot: Snapshot, triggered_by_label: bool = False) -> None:
        self.snapshot = snapshot
        self.triggered_by_label = triggered_by_label

    def collect(self) -> Iterable[Metric]:
        yield from self._health()
        yield from self._workflows()
        yield from self._runs()

    # --- exporter health ----------------------------------------------------------------------

    def _health(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "onepin_exporter_build_info",
            "Build information of the exporter; always 1.",
            labels=("version", "python_version"),
        )
        info.add_metric((__version__, platform.python_version()), 1.0)
        yield info
        up = GaugeMetricFamily(
            "onepin_up",
            "1 if the last poll reached the API and authenticated.",
            labels=["workspace"],
        )
        duration = GaugeMetricFamily(
            "onepin_exporter_collect_duration_seconds",
            "Wall time of the last poll of the API.",
            labels=["workspace"],
        )
        deadline = GaugeMetricFamily(
            "onepin_exporter_poll_deadline_seconds",
            "Time the last poll was allowed (from the scrape timeout, capped by config).",
            labels=["workspace"],
        )
        requests = CounterMetricFamily(
            "onepin_api_requests",
            "Requests sent to the OnePin API, by endpoint and HTTP status (or 'error').",
            labels=["workspace", "endpoint", "code"],
        )
        latency = HistogramMetricFamily(
            "onepin_api_request_duration_seconds",
            "Latency of requests to the OnePin API.",
            labels=["workspace", "endpoint"],
        )
        for ws in self.snapshot.workspaces:
            up.add_metric([ws.name], 1.0 if ws.up else 0.0)
            if ws.collect_duration is not None:
                duration.add_metric([ws.name], ws.collect_duration)
            if ws.deadline is not None:
                deadline.add_metric([ws.name], ws.deadline)
            for (endpoint, code), count in sorted(ws.api.requests.items()):
                requests.add_metric([ws.name, endpoint, code], float(count))
            for endpoint, hist in sorted(ws.api.latency.items()):
                latency.add_metric([ws.name, endpoint], _histogram_buckets(hist), hist.sum)
        yield from (up, duration, deadline, requests, latency)

    # --- workflow level -----------------------------------------------------------------------

    def _workflows(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*WF_LABELS, *extra])

        wf_up = gauge("onepin_workflow_up", "1 if this workflow's data is from the last poll.")
        info = gauge("onepin_workflow_info", "A workflow being monitored; always 1.")
        runs = gauge("onepin_workflow_runs", "Runs per status, as the API counts them.", ["status"])
        pass_ratio = gauge(
            "onepin_workflow_pass_ratio",
            "completed / (completed + failed + cancelled) runs, as the API computes it.",
        )
        avg = gauge(
            "onepin_workflow_average_run_duration_seconds",
            "Mean duration of completed runs, as the API computes it.",
        )
        last_status = gauge(
            "onepin_workflow_last_run_status",
            "Status of the latest run (highest run_number): 1 for its status, 0 for others.",
            ["status"],
        )
        last = {
            g.suffix: gauge(f"onepin_workflow_last_run_{g.suffix}", f"Latest run: {g.help}")
            for g in RUN_GAUGES
        }
        finished = CounterMetricFamily(
            "onepin_workflow_runs_finished",
            "Runs seen reaching a terminal status by this exporter process.",
            labels=[*WF_LABELS, "status"],
        )
        hist = HistogramMetricFamily(
            "onepin_workflow_run_duration_seconds",
            "Duration of each run seen finishing by this exporter process.",
            labels=list(WF_LABELS),
        )
        tokens = CounterMetricFamily(
            "onepin_workflow_run_token_cost",
            "Token cost summed over runs seen finishing by this exporter process.",
            labels=list(WF_LABELS),
        )
        cpu = CounterMetricFamily(
            "onepin_workflow_run_cpu_seconds",
            "CPU seconds summed over runs seen finishing by this exporter process.",
            labels=list(WF_LABELS),
        )
        for ws, wf in self._each_workflow():
            labels = [ws.name, wf.id, wf.name]
            wf_up.add_metric(labels, 1.0 if wf.up else 0.0)
            info.add_metric(labels, 1.0)
            totals = wf.totals
            for status in sorted({*TERMINAL_STATUSES, *totals.finished}):
                finished.add_metric([*labels, status], float(totals.finished.get(status, 0)))
            hist.add_metric(labels, _histogram_buckets(totals.duration), totals.duration.sum)
            tokens.add_metric(labels, totals.token_cost)
            cpu.add_metric(labels, totals.cpu_seconds)
            if not wf.has_data:
                continue
            for status, count in sorted((wf.status_counts or {}).items()):
                runs.add_metric([*labels, status], float(count))
            if wf.pass_ratio is not None:
                pass_ratio.add_metric(labels, wf.pass_ratio)
            if wf.average_duration is not None:
                avg.add_metric(labels, wf.average_duration)
            run = wf.last_run
            if run is None:
                continue
            for status, value in _status_values(run.status):
                last_status.add_metric([*labels, status], value)
            for g in RUN_GAUGES:
                reading = g.value(run)
                if reading is not None:
                    last[g.suffix].add_metric(labels, reading)
        yield from (wf_up, info, runs, pass_ratio, avg, last_status, *last.values())
        yield from (finished, hist, tokens, cpu)

    # --- run level ----------------------------------------------------------------------------

    def _runs(self) -> Iterator[Metric]:
        status_labels = [*RUN_LABELS, "status"]
        if self.triggered_by_label:
            status_labels.append("triggered_by")
        status = GaugeMetricFamily(
            "onepin_run_status",
            "Status of an active run: 1 for its status, 0 for others.",
            labels=status_labels,
        )
        gauges = {
            g.suffix: GaugeMetricFamily(
                f"onepin_run_{g.suffix}", f"Active run: {g.help}", labels=list(RUN_LABELS)
            )
            for g in RUN_GAUGES
            if g.run_level
        }
        for ws, wf in self._each_workflow():
            for run in wf.active_runs:
                labels = [ws.name, wf.id, wf.name, run.id, str(run.run_number)]
                extra = [run.triggered_by or ""] if self.triggered_by_label else []
                for value_status, value in _status_values(run.status):
                    status.add_metric([*labels, value_status, *extra], value)
                for g in RUN_GAUGES:
                    if not g.run_level:
                        continue
                    reading = g.value(run)
                    if reading is not None:
                        gauges[g.suffix].add_metric(labels, reading)
        yield status
        yield from gauges.values()

    def _each_workflow(self) -> Iterator[tuple[WorkspaceSnapshot, WorkflowSnapshot]]:
        for ws in self.snapshot.workspaces:
            for wf in ws.workflows:
                yield ws, wf
