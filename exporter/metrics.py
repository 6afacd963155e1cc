"""Every metric family, declared once: name, help, type, labels and the function that makes its
samples from the snapshot. The only module that names an `onepin_` family.

Rules (design §4.4): base units; a value the API did not send is absent, never 0; state sets emit
every known value (run statuses, pause reasons) as 0/1 and pass unknown values through; run-level
series exist only for active runs; run ids and user names never label series that outlive a run;
free API text (errors, `pause_error`) is never a label.

Families are exposed in the order they are declared here. To add a gauge of a run (latest run and
each active run), add one `RunGauge` to RUN_GAUGES; to add a workflow-level family, one
`_workflow(...)` call where it should appear. exporter/rendering.py renders them and keeps lines.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Generic, TypeVar

from exporter import __version__, nodelines
from exporter.exposition import escape, format_value, histogram, line, one_of
from exporter.family import (
    COUNTER,
    GAUGE,
    HISTOGRAM,
    Family,
    ProcessGauge,
    RunGauge,
    WorkflowLines,
)
from exporter.models import KNOWN_PAUSE_REASONS, KNOWN_STATUSES, TERMINAL_STATUSES
from exporter.snapshot import ScheduleTimes, WorkspaceSnapshot

MIB = 1048576.0

WORKSPACE = ("workspace",)
WORKFLOW = ("workspace", "workflow_id", "workflow_name")
RUN_LABELS = (*WORKFLOW, "run_id", "run_number")

RUN_GAUGES: tuple[RunGauge, ...] = (
    RunGauge("number", "Run number (per-workflow sequence).", "run_number", run_level=False),
    RunGauge("finished_steps", "Steps finished.", "finished_steps"),
    RunGauge("total_steps", "Steps in the run.", "total_steps"),
    RunGauge("total_nodes", "Nodes in the run's graph.", "total_nodes"),
    RunGauge("finished_nodes", "Nodes in a terminal state (a retried node counts once).",
             "finished_nodes"),
    RunGauge("token_cost", "Token cost, as the API reports it.", "token_cost"),
    RunGauge("credits", "Credits used, as the API reports them.", "credits"),
    RunGauge("delivered_audio_seconds", "Audio delivered (delivered_audio_ms).",
             "delivered_audio_ms", run_level=False, divisor=1000.0),
    RunGauge("cpu_seconds", "CPU seconds used (usage_summary.cpu_seconds).", "cpu_seconds",
             usage=True),
    RunGauge("memory_bytes", "Memory used (usage_summary.memory_mb).", "memory_mb", usage=True,
             scale=MIB),
    RunGauge("api_calls", "API calls made (usage_summary.api_calls).", "api_calls", usage=True),
    RunGauge("tokens_used", "Tokens used (usage_summary.tokens_used).", "tokens_used",
             usage=True),
    RunGauge("errors", "Errors reported in usage_summary.errors.", "errors", usage=True),
    RunGauge("duration_seconds", "Running time (started to completed, or to the API's now).",
             "duration"),
    # Of active runs only: a finished run's pause is already left out of its duration, and one
    # more series per workflow would cost more than it tells.
    RunGauge("paused_seconds", "Time spent paused (paused_ms).", "paused_ms", last_run=False,
             divisor=1000.0),
    RunGauge("created_timestamp_seconds", "When the run was created.", "created_at"),
    RunGauge("started_timestamp_seconds", "When the run started.", "started_at"),
    RunGauge("completed_timestamp_seconds", "When the run reached a terminal status.",
             "completed_at", run_level=False),
    RunGauge("updated_timestamp_seconds", "When the run was last updated.", "updated_at"),
)  # fmt: skip


Workspaces = Sequence[WorkspaceSnapshot]
HealthFamily = Family[Workspaces]
WorkflowFamily = Family[WorkflowLines]
# In exposition order: the exporter's own health, then the workflows' families.
T = TypeVar("T")
HEALTH_FAMILIES: list[HealthFamily] = []
WORKFLOW_FAMILIES: list[WorkflowFamily] = []


class _Declare(Generic[T]):
    """Declares a family of one kind of source, in exposition order."""

    # Not mutated: it runs only while the module is imported, before mutmut turns a mutant on.
    def __init__(self, families: list[Family[T]]) -> None:
        self.families = families  # pragma: no mutate

    def __call__(
        self, name: str, kind: str, labels: tuple[str, ...], samples: Callable[[T], str], help: str
    ) -> Family[T]:
        family = Family(name, kind, help, labels, samples)  # pragma: no mutate
        self.families.append(family)  # pragma: no mutate
        return family  # pragma: no mutate


_health = _Declare(HEALTH_FAMILIES)
_workflow = _Declare(WORKFLOW_FAMILIES)


# --- the exporter's health -----------------------------------------------------------------------


def _ws_label(ws: WorkspaceSnapshot) -> str:
    return f'workspace="{escape(ws.name)}"'


def _build_info(_workspaces: Workspaces) -> str:
    return (
        f'{BUILD_INFO.name}{{version="{escape(__version__)}",'
        f'python_version="{platform.python_version()}"}} 1.0\n'
    )


def _up(workspaces: Workspaces) -> str:
    return "".join(f"{UP.name}{{{_ws_label(ws)}}} {1.0 if ws.up else 0.0}\n" for ws in workspaces)


def _ws_value(
    sample: str, read: Callable[[WorkspaceSnapshot], float | None], workspaces: Workspaces
) -> str:
    """One value per workspace, where there is one."""
    values = ((ws, read(ws)) for ws in workspaces)
    return "".join(line(sample, _ws_label(ws), v) for ws, v in values if v is not None)


def _api_requests(workspaces: Workspaces) -> str:
    return "".join(
        line(
            API_REQUESTS.sample,
            f'{_ws_label(ws)},endpoint="{escape(endpoint)}",code="{escape(code)}"',
            count,
        )
        for ws in workspaces
        for (endpoint, code), count in sorted(ws.api.requests.items())
    )


def _api_latency(workspaces: Workspaces) -> str:
    return "".join(
        histogram(API_LATENCY.name, f'{_ws_label(ws)},endpoint="{escape(endpoint)}"', hist)
        for ws in workspaces
        for endpoint, hist in sorted(ws.api.latency.items())
    )


def _deferred(workspaces: Workspaces) -> str:
    return "".join(
        line(DEFERRED.sample, _ws_label(ws), ws.api.deferred)
        for ws in workspaces
        if ws.api.budget_remaining is not None
    )


BUILD_INFO = _health("onepin_exporter_build_info", GAUGE, ("version", "python_version"),
    _build_info, "Build information; always 1.")  # fmt: skip
UP = _health("onepin_up", GAUGE, WORKSPACE,
    _up, "1 if the last poll reached the API and authenticated.")  # fmt: skip
COLLECT_DURATION = _health(name := "onepin_exporter_collect_duration_seconds", GAUGE, WORKSPACE,
    partial(_ws_value, name, lambda ws: ws.collect_duration),
    "Wall time of the last poll of the API.")  # fmt: skip
POLL_DEADLINE = _health(name := "onepin_exporter_poll_deadline_seconds", GAUGE, WORKSPACE,
    partial(_ws_value, name, lambda ws: ws.deadline),
    "Time the last poll was allowed (from the scrape timeout, capped by config).")  # fmt: skip
BACKLOG = _health(name := "onepin_exporter_backlog_workflows", GAUGE, WORKSPACE,
    partial(_ws_value, name, lambda ws: ws.backlog if ws.up else None),
    "Workflows shown as the catalogue describes them, still waiting for their runs' details "
    "(a cold start fills them in over polls).")  # fmt: skip
API_REQUESTS = _health("onepin_api_requests", COUNTER, (*WORKSPACE, "endpoint", "code"),
    _api_requests,
    "Requests sent to the OnePin API, by endpoint and HTTP status (or 'error').")  # fmt: skip
API_LATENCY = _health("onepin_api_request_duration_seconds", HISTOGRAM,
    (*WORKSPACE, "endpoint", "le"), _api_latency,
    "Latency of requests to the OnePin API.")  # fmt: skip
BUDGET_REMAINING = _health(name := "onepin_exporter_api_budget_remaining", GAUGE, WORKSPACE,
    partial(_ws_value, name, lambda ws: ws.api.budget_remaining),
    "Requests http.max_requests_per_minute leaves in the last 60 s, after "
    "the last poll (only with a budget).")  # fmt: skip
DEFERRED = _health("onepin_exporter_api_requests_deferred", COUNTER, WORKSPACE, _deferred,
    "Requests deferred to a later poll by http.max_requests_per_minute (only with a "
    "budget).")  # fmt: skip


# --- the workflows -------------------------------------------------------------------------------


def _workflow_up(x: WorkflowLines) -> str:
    return f"{WORKFLOW_UP.name}{{{x.base}}} {'1.0' if x.wf.up else '0.0'}\n"


def _workflow_info(x: WorkflowLines) -> str:
    return f"{WORKFLOW_INFO.name}{{{x.base}}} 1.0\n"


def _workflow_runs(x: WorkflowLines) -> str:
    counts = (x.wf.status_counts if x.wf.has_data else None) or {}
    return "".join(
        line(WORKFLOW_RUNS.name, f'{x.base},status="{escape(status)}"', float(count))
        for status, count in sorted(counts.items())
    )


def _value(sample: str, x: WorkflowLines, value: float | None) -> str:
    """A workflow's value, of a workflow with data, where the API sent it."""
    return "" if value is None or not x.wf.has_data else line(sample, x.base, value)


def _pass_ratio(x: WorkflowLines) -> str:
    return _value(PASS_RATIO.name, x, x.wf.pass_ratio)


def _average_duration(x: WorkflowLines) -> str:
    return _value(AVERAGE_DURATION.name, x, x.wf.average_duration)


def _last_status(x: WorkflowLines) -> str:
    """The latest run's status; the catalogue's while the run itself is not read yet."""
    run = x.last_run
    status = run.status if run is not None else x.wf.has_data and x.wf.catalogue_last_status
    return one_of(LAST_STATUS.name, x.base, "status", KNOWN_STATUSES, status) if status else ""


def _last_run(sample: str, gauge: RunGauge, x: WorkflowLines) -> str:
    run = x.last_run
    value = None if run is None else gauge.read(run)
    return "" if value is None else f"{sample}{{{x.base}}} {format_value(value)}\n"


def _last_success(x: WorkflowLines) -> str:
    return _value(LAST_SUCCESS.name, x, x.wf.last_success)


def _last_failure(x: WorkflowLines) -> str:
    return _value(LAST_FAILURE.name, x, x.wf.last_failure)


def _schedule(sample: str, read: Callable[[ScheduleTimes], float | None], x: WorkflowLines) -> str:
    """A value of the workflow's schedule, of a scheduled workflow with data (without its runs'
    data, the alert would take a fire for missed)."""
    schedule = x.wf.schedule
    return "" if schedule is None else _value(sample, x, read(schedule))


def _finished(x: WorkflowLines) -> str:
    finished = x.wf.totals.finished
    exemplars = x.wf.totals.finished_exemplars if x.exemplars else {}
    return "".join(
        line(
            FINISHED.sample,
            f'{x.base},status="{escape(status)}"',
            float(finished.get(status, 0)),
            exemplars.get(status),
        )
        for status in sorted({*TERMINAL_STATUSES, *finished})
    )


def _run_duration(x: WorkflowLines) -> str:
    totals = x.wf.totals
    exemplars = totals.duration_exemplars if x.exemplars else ()
    return histogram(RUN_DURATION.name, x.base, totals.duration, exemplars)


def _token_total(x: WorkflowLines) -> str:
    return line(TOKEN_TOTAL.sample, x.base, x.wf.totals.token_cost)


def _cpu_total(x: WorkflowLines) -> str:
    return line(CPU_TOTAL.sample, x.base, x.wf.totals.cpu_seconds)


def _audio_total(x: WorkflowLines) -> str:
    return line(AUDIO_TOTAL.sample, x.base, x.wf.totals.delivered_audio_seconds)


def _run_status(x: WorkflowLines) -> str:
    return "".join(
        one_of(RUN_STATUS.name, labels, "status", KNOWN_STATUSES, run.status, user)
        for run, labels, user in x.runs
    )


def _pause_reason(x: WorkflowLines) -> str:
    """Only for a run with a pause reason: one without (not paused, or an API that does not
    send it) has none to show."""
    return "".join(
        one_of(PAUSE_REASON.name, labels, "reason", KNOWN_PAUSE_REASONS, run.pause_reason)
        for run, labels, _user in x.runs
        if run.pause_reason is not None
    )


def _run(sample: str, gauge: RunGauge, x: WorkflowLines) -> str:
    if not x.runs:  # most workflows, most of the time
        return ""
    values = ((labels, gauge.read(run)) for run, labels, _user in x.runs)
    return "".join(line(sample, labels, value) for labels, value in values if value is not None)


WORKFLOW_UP = _workflow("onepin_workflow_up", GAUGE, WORKFLOW,
    _workflow_up, "1 if this workflow's data is from the last poll.")  # fmt: skip
WORKFLOW_INFO = _workflow("onepin_workflow_info", GAUGE, WORKFLOW,
    _workflow_info, "A workflow being monitored; always 1.")  # fmt: skip
WORKFLOW_RUNS = _workflow("onepin_workflow_runs", GAUGE, (*WORKFLOW, "status"),
    _workflow_runs, "Runs per status, as the API counts them.")  # fmt: skip
PASS_RATIO = _workflow("onepin_workflow_pass_ratio", GAUGE, WORKFLOW, _pass_ratio,
    "completed / (completed + failed) runs (cancelled left out), the API's rule.")  # fmt: skip
AVERAGE_DURATION = _workflow("onepin_workflow_average_run_duration_seconds", GAUGE, WORKFLOW,
    _average_duration, "Mean duration of completed runs, as the API computes it.")  # fmt: skip
LAST_STATUS = _workflow("onepin_workflow_last_run_status", GAUGE, (*WORKFLOW, "status"),
    _last_status,
    "Status of the latest run (highest run_number): 1 for its status, 0 for others.")  # fmt: skip
LAST_RUN = {
    g.suffix: _workflow(name := f"onepin_workflow_last_run_{g.suffix}", GAUGE, WORKFLOW,
                        partial(_last_run, name, g), f"Latest run: {g.help}")
    for g in RUN_GAUGES
    if g.last_run
}  # fmt: skip
LAST_SUCCESS = _workflow("onepin_workflow_last_success_timestamp_seconds", GAUGE, WORKFLOW,
    _last_success,
    "When the newest completed run seen (List Runs, Get Run Status) completed.")  # fmt: skip
LAST_FAILURE = _workflow("onepin_workflow_last_failure_timestamp_seconds", GAUGE, WORKFLOW,
    _last_failure,
    "When the newest failed run seen (List Runs, Get Run Status) failed.")  # fmt: skip
SCHEDULE_LAST = _workflow(name := "onepin_workflow_schedule_last_expected_timestamp_seconds",
    GAUGE, WORKFLOW, partial(_schedule, name, lambda s: s.last_expected),
    "Of a workflow on a schedule: its latest fire time not after the poll.")  # fmt: skip
SCHEDULE_NEXT = _workflow(name := "onepin_workflow_schedule_next_expected_timestamp_seconds",
    GAUGE, WORKFLOW, partial(_schedule, name, lambda s: s.next_expected),
    "Of a workflow on a schedule: its first fire time after the poll.")  # fmt: skip
SCHEDULE_GRACE = _workflow(name := "onepin_workflow_schedule_grace_seconds", GAUGE, WORKFLOW,
    partial(_schedule, name, lambda s: s.grace),
    "Of a workflow on a schedule: how long after a fire time its run may be created.")  # fmt: skip
FINISHED = _workflow("onepin_workflow_runs_finished", COUNTER, (*WORKFLOW, "status"), _finished,
    "Runs seen reaching a terminal status by this exporter process.")  # fmt: skip
RUN_DURATION = _workflow("onepin_workflow_run_duration_seconds", HISTOGRAM, (*WORKFLOW, "le"),
    _run_duration, "Duration of each run seen finishing by this exporter process.")  # fmt: skip
TOKEN_TOTAL = _workflow("onepin_workflow_run_token_cost", COUNTER, WORKFLOW, _token_total,
    "Token cost summed over runs seen finishing by this exporter process.")  # fmt: skip
CPU_TOTAL = _workflow("onepin_workflow_run_cpu_seconds", COUNTER, WORKFLOW, _cpu_total,
    "CPU seconds summed over runs seen finishing by this exporter process.")  # fmt: skip
AUDIO_TOTAL = _workflow("onepin_workflow_run_delivered_audio_seconds", COUNTER, WORKFLOW,
    _audio_total, "Audio delivered (delivered_audio_ms) summed over runs seen finishing by "
    "this exporter process.")  # fmt: skip
NODE_LABELS = ("node_id", "node_type", "node_name")
NODE_DURATION = _workflow(name := "onepin_workflow_node_duration_seconds", HISTOGRAM,
    (*WORKFLOW, "node_type", "le"), partial(nodelines.durations, name),
    "Duration of each node execution (Get Run Steps) of the runs seen finishing by this "
    "exporter process, by node type.")  # fmt: skip
NODE_EXECUTIONS = _workflow(name := "onepin_workflow_node_executions", COUNTER,
    (*WORKFLOW, "node_type", "status"), partial(nodelines.executions, name + "_total"),
    "Node executions (Get Run Steps) of the runs seen finishing by this exporter process, by "
    "node type and status.")  # fmt: skip
LAST_FAILURE_NODE = _workflow(name := "onepin_workflow_last_failure_node_info", GAUGE,
    (*WORKFLOW, *NODE_LABELS), partial(nodelines.failed_nodes, name),
    "The node(s) the latest failed run failed at (its error text: the status page); "
    "always 1.")  # fmt: skip
RUN_STATUS = _workflow("onepin_run_status", GAUGE, (*RUN_LABELS, "status", "triggered_by"),
    _run_status, "Status of an active run: 1 for its status, 0 for others.")  # fmt: skip
PAUSE_REASON = _workflow("onepin_run_pause_reason", GAUGE, (*RUN_LABELS, "reason"),
    _pause_reason,
    "Why an active run is paused (pause_reason): 1 for its reason, 0 for others.")  # fmt: skip
CURRENT_NODE = _workflow(name := "onepin_run_current_node_info", GAUGE,
    (*RUN_LABELS, *NODE_LABELS), partial(nodelines.current_nodes, name),
    "A node an active run is running now (collection.run_nodes); always 1.")  # fmt: skip
RUN = {
    g.suffix: _workflow(name := f"onepin_run_{g.suffix}", GAUGE, RUN_LABELS,
                        partial(_run, name, g), f"Active run: {g.help}")
    for g in RUN_GAUGES
    if g.run_level
}  # fmt: skip

# --- the process's own, exported through prometheus_client ---------------------------------------

SHARD_ORDINAL = ProcessGauge("onepin_exporter_shard_ordinal",
    "Which shard of the workflows this process exports.")  # fmt: skip
TOTAL_SHARDS = ProcessGauge("onepin_exporter_total_shards",
    "How many shards the workflows are split into.")  # fmt: skip
RELOAD_SUCCESSFUL = ProcessGauge("onepin_exporter_config_last_reload_successful",
    "Whether the last configuration reload succeeded (1) or failed (0).")  # fmt: skip
RELOAD_SUCCESS_TIME = ProcessGauge(
    "onepin_exporter_config_last_reload_success_timestamp_seconds",
    "When the configuration was last loaded successfully (start or reload), Unix time.",
)
PROCESS_GAUGES = (SHARD_ORDINAL, TOTAL_SHARDS, RELOAD_SUCCESSFUL, RELOAD_SUCCESS_TIME)


def family_names() -> Iterator[str]:
    """Every `onepin_` family this exporter can export."""
    yield from (f.name for f in HEALTH_FAMILIES)
    yield from (f.name for f in WORKFLOW_FAMILIES)
    yield from (g.name for g in PROCESS_GAUGES)
