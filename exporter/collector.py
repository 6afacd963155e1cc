"""Turn a snapshot into the exposition text. Every metric name lives in this module.

Rules (design §4.4): base units; a value the API did not send is absent, never 0; state sets emit
every known status as 0/1 and pass unknown statuses through; run-level series exist only for
active runs; run ids and user names never label series that outlive a run.

Speed: a big installation has hundreds of thousands of series, most of them unchanged from one
scrape to the next (idle workflows). The poller hands over the same `WorkflowSnapshot` object while
a workflow is unchanged, and the lines of each workflow are rendered once per object and cached
here; a scrape then mostly joins strings. The sample lines are the same in the Prometheus text
format and in OpenMetrics; only the family headers and the `# EOF` trailer differ.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from exporter import __version__
from exporter.models import KNOWN_STATUSES, TERMINAL_STATUSES, Run
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot
from exporter.stats import Histogram

MIB = 1048576.0
CHUNK_BYTES = 256 * 1024
INF = float("inf")


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    type: str  # gauge, counter or histogram
    help: str

    def header(self, openmetrics: bool) -> str:
        # In the text format a counter's family is named with its _total suffix.
        name = self.name + "_total" if self.type == "counter" and not openmetrics else self.name
        return f"# HELP {name} {self.help}\n# TYPE {name} {self.type}\n"

    @property
    def sample(self) -> str:
        return self.name + "_total" if self.type == "counter" else self.name


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

# --- the families, in exposition order -----------------------------------------------------------

BUILD_INFO = Family("onepin_exporter_build_info", "gauge", "Build information; always 1.")
UP = Family("onepin_up", "gauge", "1 if the last poll reached the API and authenticated.")
COLLECT_DURATION = Family(
    "onepin_exporter_collect_duration_seconds", "gauge", "Wall time of the last poll of the API."
)
POLL_DEADLINE = Family(
    "onepin_exporter_poll_deadline_seconds",
    "gauge",
    "Time the last poll was allowed (from the scrape timeout, capped by config).",
)
API_REQUESTS = Family(
    "onepin_api_requests",
    "counter",
    "Requests sent to the OnePin API, by endpoint and HTTP status (or 'error').",
)
API_LATENCY = Family(
    "onepin_api_request_duration_seconds", "histogram", "Latency of requests to the OnePin API."
)
HEALTH_FAMILIES = (BUILD_INFO, UP, COLLECT_DURATION, POLL_DEADLINE, API_REQUESTS, API_LATENCY)

WORKFLOW_UP = Family(
    "onepin_workflow_up", "gauge", "1 if this workflow's data is from the last poll."
)
WORKFLOW_INFO = Family("onepin_workflow_info", "gauge", "A workflow being monitored; always 1.")
WORKFLOW_RUNS = Family("onepin_workflow_runs", "gauge", "Runs per status, as the API counts them.")
PASS_RATIO = Family(
    "onepin_workflow_pass_ratio",
    "gauge",
    "completed / (completed + failed + cancelled) runs, as the API computes it.",
)
AVERAGE_DURATION = Family(
    "onepin_workflow_average_run_duration_seconds",
    "gauge",
    "Mean duration of completed runs, as the API computes it.",
)
LAST_STATUS = Family(
    "onepin_workflow_last_run_status",
    "gauge",
    "Status of the latest run (highest run_number): 1 for its status, 0 for others.",
)
LAST_RUN = {
    g.suffix: Family(f"onepin_workflow_last_run_{g.suffix}", "gauge", f"Latest run: {g.help}")
    for g in RUN_GAUGES
}
FINISHED = Family(
    "onepin_workflow_runs_finished",
    "counter",
    "Runs seen reaching a terminal status by this exporter process.",
)
RUN_DURATION = Family(
    "onepin_workflow_run_duration_seconds",
    "histogram",
    "Duration of each run seen finishing by this exporter process.",
)
TOKEN_TOTAL = Family(
    "onepin_workflow_run_token_cost",
    "counter",
    "Token cost summed over runs seen finishing by this exporter process.",
)
CPU_TOTAL = Family(
    "onepin_workflow_run_cpu_seconds",
    "counter",
    "CPU seconds summed over runs seen finishing by this exporter process.",
)
RUN_STATUS = Family(
    "onepin_run_status", "gauge", "Status of an active run: 1 for its status, 0 for others."
)
RUN = {
    g.suffix: Family(f"onepin_run_{g.suffix}", "gauge", f"Active run: {g.help}")
    for g in RUN_GAUGES
    if g.run_level
}
WORKFLOW_FAMILIES = (
    WORKFLOW_UP,
    WORKFLOW_INFO,
    WORKFLOW_RUNS,
    PASS_RATIO,
    AVERAGE_DURATION,
    LAST_STATUS,
    *LAST_RUN.values(),
    FINISHED,
    RUN_DURATION,
    TOKEN_TOTAL,
    CPU_TOTAL,
    RUN_STATUS,
    *RUN.values(),
)


# --- lines ---------------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """A sample value as both exposition formats write it."""
    if value != value:
        return "NaN"
    if value == INF:  # a constant: float("inf") per call was half the cost of a sample line
        return "+Inf"
    if value == -INF:
        return "-Inf"
    return repr(float(value))


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _status_values(status: str) -> Iterator[tuple[str, float]]:
    """A state set: every known status as 0/1, plus an unknown status as its own value."""
    for known in KNOWN_STATUSES:
        yield known, 1.0 if status == known else 0.0
    if status not in KNOWN_STATUSES:
        yield status, 1.0


def _histogram(name: str, labels: str, hist: Histogram) -> str:
    sep = "," if labels else ""
    lines = [
        f'{name}_bucket{{{labels}{sep}le="{format_value(b)}"}} {format_value(n)}\n'
        for b, n in hist.cumulative()
    ]
    lines.append(f"{name}_count{{{labels}}} {format_value(hist.count)}\n")
    lines.append(f"{name}_sum{{{labels}}} {format_value(hist.sum)}\n")
    return "".join(lines)


def workflow_lines(workspace: str, wf: WorkflowSnapshot, triggered_by: bool) -> dict[str, bytes]:
    """Every workflow- and run-level line of one workflow, by family name."""
    lines: dict[str, list[str]] = {}

    def add(family: Family, labels: str, value: float) -> None:
        lines.setdefault(family.name, []).append(
            f"{family.sample}{{{labels}}} {format_value(value)}\n"
        )

    base = f'workspace="{escape(workspace)}",workflow_id="{escape(wf.id)}",' + (
        f'workflow_name="{escape(wf.name)}"'
    )
    add(WORKFLOW_UP, base, 1.0 if wf.up else 0.0)
    add(WORKFLOW_INFO, base, 1.0)
    totals = wf.totals
    for status in sorted({*TERMINAL_STATUSES, *totals.finished}):
        add(FINISHED, f'{base},status="{escape(status)}"', float(totals.finished.get(status, 0)))
    lines[RUN_DURATION.name] = [_histogram(RUN_DURATION.name, base, totals.duration)]
    add(TOKEN_TOTAL, base, totals.token_cost)
    add(CPU_TOTAL, base, totals.cpu_seconds)
    if wf.has_data:
        for status, count in sorted((wf.status_counts or {}).items()):
            add(WORKFLOW_RUNS, f'{base},status="{escape(status)}"', float(count))
        if wf.pass_ratio is not None:
            add(PASS_RATIO, base, wf.pass_ratio)
        if wf.average_duration is not None:
            add(AVERAGE_DURATION, base, wf.average_duration)
        run = wf.last_run
        if run is not None:
            for status, value in _status_values(run.status):
                add(LAST_STATUS, f'{base},status="{escape(status)}"', value)
            for g in RUN_GAUGES:
                reading = g.value(run)
                if reading is not None:
                    add(LAST_RUN[g.suffix], base, reading)
        for run in wf.active_runs:
            run_labels = f'{base},run_id="{escape(run.id)}",run_number="{run.run_number}"'
            user = f',triggered_by="{escape(run.triggered_by or "")}"' if triggered_by else ""
            for status, value in _status_values(run.status):
                add(RUN_STATUS, f'{run_labels},status="{escape(status)}"{user}', value)
            for g in RUN_GAUGES:
                if g.run_level:
                    reading = g.value(run)
                    if reading is not None:
                        add(RUN[g.suffix], run_labels, reading)
    return {name: "".join(parts).encode("utf-8", "replace") for name, parts in lines.items()}


def _health_lines(workspaces: Iterable[WorkspaceSnapshot]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {f.name: [] for f in HEALTH_FAMILIES}
    out[BUILD_INFO.name].append(
        f'{BUILD_INFO.name}{{version="{escape(__version__)}",'
        f'python_version="{platform.python_version()}"}} 1.0\n'
    )
    for ws in workspaces:
        label = f'workspace="{escape(ws.name)}"'
        out[UP.name].append(f"{UP.name}{{{label}}} {1.0 if ws.up else 0.0}\n")
        if ws.collect_duration is not None:
            out[COLLECT_DURATION.name].append(
                f"{COLLECT_DURATION.name}{{{label}}} {format_value(ws.collect_duration)}\n"
            )
        if ws.deadline is not None:
            out[POLL_DEADLINE.name].append(
                f"{POLL_DEADLINE.name}{{{label}}} {format_value(ws.deadline)}\n"
            )
        for (endpoint, code), count in sorted(ws.api.requests.items()):
            out[API_REQUESTS.name].append(
                f'{API_REQUESTS.sample}{{{label},endpoint="{escape(endpoint)}",'
                f'code="{escape(code)}"}} {format_value(count)}\n'
            )
        for endpoint, hist in sorted(ws.api.latency.items()):
            labels = f'{label},endpoint="{escape(endpoint)}"'
            out[API_LATENCY.name].append(_histogram(API_LATENCY.name, labels, hist))
    return out


class Renderer:
    """Renders snapshots, caching each workflow's lines while its snapshot object is the same."""

    def __init__(self, triggered_by_label: bool = False) -> None:
        self.triggered_by_label = triggered_by_label
        self._cache: dict[tuple[str, str], tuple[WorkflowSnapshot, dict[str, bytes]]] = {}

    def chunks(self, snapshot: Snapshot, openmetrics: bool = False) -> Iterator[bytes]:
        """The snapshot's families, one chunk each, without `# EOF` (more may follow).

        Chunks are made as they are asked for, so that a big exposition is never in memory
        twice: the server writes (and compresses) each chunk before the next one is made.
        """
        health = _health_lines(snapshot.workspaces)
        cache: dict[tuple[str, str], tuple[WorkflowSnapshot, dict[str, bytes]]] = {}
        per_workflow: list[dict[str, bytes]] = []
        for ws in snapshot.workspaces:
            for wf in ws.workflows:
                key = (ws.name, wf.id)
                cached = self._cache.get(key)
                if cached is None or cached[0] is not wf:
                    cached = (wf, workflow_lines(ws.name, wf, self.triggered_by_label))
                cache[key] = cached
                per_workflow.append(cached[1])
        self._cache = cache  # workflows gone from the snapshot leave the cache
        for family in HEALTH_FAMILIES:
            if health[family.name]:
                yield (family.header(openmetrics) + "".join(health[family.name])).encode(
                    "utf-8", "replace"
                )
        for family in WORKFLOW_FAMILIES:
            name = family.name
            batch: list[bytes] = [family.header(openmetrics).encode("utf-8", "replace")]
            size = 0
            for lines in per_workflow:
                part = lines.get(name)
                if part is None:
                    continue
                batch.append(part)
                size += len(part)
                if size >= CHUNK_BYTES:  # bounded pieces: the exposition is never copied whole
                    yield b"".join(batch)
                    batch, size = [], 0
            if size:
                yield b"".join(batch)

    def render(self, snapshot: Snapshot, openmetrics: bool = False) -> str:
        return b"".join(self.chunks(snapshot, openmetrics)).decode()
