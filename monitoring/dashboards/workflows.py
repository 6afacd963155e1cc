"""Dashboard "OnePin workflows": active runs, latest runs, failures, durations, cost, pauses,
schedules."""

from __future__ import annotations

from collections.abc import Callable

from monitoring import links, promql
from monitoring.dashboards import nodes, variables
from monitoring.grafana.fields import (
    STATUS_COLOURS,
    TABLE_CUSTOM,
    Json,
    by_name,
    field_config,
    fixed_colour,
    link,
    progress_override,
    status_override,
    thresholds,
    timeseries_custom,
    value_mappings,
)
from monitoring.grafana.layout import Layout, dashboard, url_link
from monitoring.grafana.panels import (
    STATE_TIMELINE_CUSTOM,
    bargauge,
    bucket_heatmap,
    refs,
    stat,
    state_timeline,
    table,
    table_targets,
    target,
    timeseries,
)

S = promql.WORKFLOW
RUN_LEGEND = "{{workflow_name}} #{{run_number}}"
WF_LEGEND = "{{workspace}}/{{workflow_name}}"
# The labels that identify a row of the run and workflow tables.
RUN_KEY = ("workspace", "workflow_id", "workflow_name", "run_number", "run_id")
WORKFLOW_KEY = ("workspace", "workflow_id", "workflow_name")
BY_WORKFLOW = ", ".join(WORKFLOW_KEY)
PASS_RATIO_STEPS = thresholds(
    ("red", None), ("orange", promql.PASS_RATIO_LOW), ("green", promql.PASS_RATIO_GOOD)
)


# --- links to the OnePin app: from a series' labels, or from a table row's (hidden) columns ----

APP = "${" + variables.APP_URL + "}"


def series_label(name: str) -> str:
    return "${__field.labels." + name + "}"


def row_field(name: str) -> str:
    return "${__data.fields." + name + "}"


def workflow_link(value: Callable[[str], str]) -> Json:
    return link("Open the workflow in OnePin", links.app_workflow(APP, value("workflow_id")))


def run_link(value: Callable[[str], str]) -> Json:
    url = links.app_run(APP, value("workflow_id"), value("run_id"))
    return link("Open the run in OnePin", url)


WORKFLOW_LINKS = [workflow_link(series_label)]
RUN_LINKS = [run_link(series_label)]
# The workflow_id column: in the frame for the links, not on screen.
HIDDEN_ID = by_name("workflow_id", **{"custom.hidden": True})
WORKFLOW_COLUMN = by_name("Workflow", links=[workflow_link(row_field)])


def finished(*status: str) -> str:
    return S(promql.FINISHED, *status)


# --- Overview ----------------------------------------------------------------------------------


def count_stats() -> list[Json]:
    active = S("onepin_workflow_runs", promql.ACTIVE)
    failed = finished(promql.FAILED)
    return [
        stat(
            "Active runs",
            "Runs pending, running or paused now, as the OnePin API counts them "
            "(onepin_workflow_runs).",
            [target(f"sum({active})", "A")],
            field_config(decimals=0),
        ),
        stat(
            "Runs finished",
            "Runs that reached completed, failed or cancelled in the dashboard's time range, as "
            "seen by the exporter (increase of onepin_workflow_runs_finished_total).",
            [target(f"round(sum(increase({finished()}[$__range])))", "A", instant=True)],
            field_config(decimals=0),
            graph=False,
        ),
        stat(
            "Runs failed",
            "Runs that failed in the dashboard's time range (status failed; cancelled runs are "
            "not counted here).",
            [target(f"round(sum(increase({failed}[$__range])))", "A", instant=True)],
            field_config(decimals=0, steps=thresholds(("green", None), ("red", 1))),
            graph=False,
        ),
    ]


def pass_ratio() -> Json:
    completed = f"sum(increase({finished(promql.COMPLETED)}[$__range]))"
    ended = f"sum(increase({finished(promql.COMPLETED_OR_FAILED)}[$__range]))"
    return stat(
        "Pass ratio",
        "Completed runs out of the runs that completed or failed in the dashboard's time "
        "range (cancelled runs are left out, as in the API's pass rate). Alert "
        "OnePinWorkflowPassRatioLow fires below 80% over 6 hours.",
        [target(f"{completed} / ({ended} > 0)", "A", instant=True)],
        field_config(
            "percentunit",
            decimals=1,
            minimum=0,
            maximum=1,
            steps=PASS_RATIO_STEPS,
            no_value="no completed or failed runs",
        ),
        graph=False,
        links=variables.runbook("OnePinWorkflowPassRatioLow"),
    )


def cost_stats() -> list[Json]:
    tokens = f"sum(increase({S(promql.TOKENS)}[$__range]))"
    cpu = f"sum(increase({S('onepin_workflow_run_cpu_seconds_total')}[$__range]))"
    return [
        stat(
            "Tokens spent",
            "Token cost of the runs that finished in the dashboard's time range "
            "(increase of onepin_workflow_run_token_cost_total). Active runs are not included.",
            [target(tokens, "A", instant=True)],
            field_config(decimals=0, colour_mode="fixed"),
            graph=False,
            colour_mode="none",
        ),
        stat(
            "CPU time",
            "CPU time of the runs that finished in the dashboard's time range "
            "(increase of onepin_workflow_run_cpu_seconds_total).",
            [target(cpu, "A", instant=True)],
            field_config("s", colour_mode="fixed"),
            graph=False,
            colour_mode="none",
        ),
    ]


# --- In progress -------------------------------------------------------------------------------

RUN_COLUMNS = {
    "workspace": "Workspace",
    "workflow_name": "Workflow",
    "run_number": "Run",
    "status": "Status",
    "Value #B": "Progress",
    "Value #C": "Finished steps",
    "Value #D": "Total steps",
    "Value #E": "Running for",
    "Value #F": "Token cost",
    "Value #G": "CPU time",
    "run_id": "Run ID",
}


def progress() -> str:
    return f"{S('onepin_run_finished_steps')} / {S('onepin_run_total_steps')}"


def runs_in_progress() -> Json:
    return table(
        "Runs in progress",
        "Every pending, running or paused run: progress (finished / total steps), status, "
        "running time against the API's clock (empty while pending), token cost and CPU "
        "time so far. Runs leave this table when they end.",
        table_targets(
            RUN_KEY,
            S("onepin_run_status") + " == 1",
            progress(),
            S("onepin_run_finished_steps"),
            S("onepin_run_total_steps"),
            S("onepin_run_duration_seconds"),
            S("onepin_run_token_cost"),
            S("onepin_run_cpu_seconds"),
        ),
        field_config(
            custom=TABLE_CUSTOM,
            overrides=[
                status_override("Status", "color-text"),
                progress_override("Progress"),
                by_name("Running for", unit="s"),
                by_name("CPU time", unit="s"),
                by_name("Token cost", decimals=0),
                HIDDEN_ID,
                WORKFLOW_COLUMN,
                by_name("Run", links=[run_link(row_field)]),
                by_name("Run ID", links=[run_link(row_field)]),
            ],
        ),
        hidden=("Time", "Value #A"),
        renames=RUN_COLUMNS,
        order=tuple(RUN_COLUMNS),
        sort_by="Running for",
        descending=True,
    )


def active_run_graphs() -> list[Json]:
    return [
        timeseries(
            "Progress of active runs",
            "Finished steps out of total steps for each active run. A flat line is a run that "
            "makes no progress (alert OnePinRunStalled).",
            [target(progress(), "A", RUN_LEGEND)],
            field_config(
                "percentunit",
                minimum=0,
                maximum=1,
                colour_mode="palette-classic",
                custom=timeseries_custom(),
                links=RUN_LINKS,
            ),
            legend_calcs=("lastNotNull",),
            links=variables.runbook("OnePinRunStalled"),
        ),
        timeseries(
            "Token cost of active runs",
            "Tokens each active run has cost so far, as the API reports them. A steep line is a "
            "run that spends fast.",
            [target(S("onepin_run_token_cost"), "A", RUN_LEGEND)],
            field_config(
                colour_mode="palette-classic", custom=timeseries_custom(), links=RUN_LINKS
            ),
            legend_calcs=("lastNotNull",),
        ),
    ]


# --- Latest runs -------------------------------------------------------------------------------

LATEST_COLUMNS = {
    "workspace": "Workspace",
    "workflow_name": "Workflow",
    "Value #B": "Run",
    "status": "Status",
    "Value #C": "Progress",
    "Value #D": "Duration",
    "Value #E": "Token cost",
    "Value #F": "Finished",
    "Value #G": "Pass ratio",
    "Value #H": "Data",
    "node_name": "Failed at node",
}


def latest_targets() -> list[Json]:
    last = "onepin_workflow_last_run_"
    values = table_targets(
        WORKFLOW_KEY,
        S(last + "status") + " == 1",
        S(last + "number"),
        f"{S(last + 'finished_steps')} / {S(last + 'total_steps')}",
        S(last + "duration_seconds"),
        S(last + "token_cost"),
        S(last + "completed_timestamp_seconds") + " * 1000",
        S("onepin_workflow_pass_ratio"),
        S("onepin_workflow_up"),
    )
    return [*values, nodes.failed_node_target(WORKFLOW_KEY, "I")]


def latest_runs() -> Json:
    fresh = value_mappings({"1": ("fresh", "green"), "0": ("stale", "orange")})
    colour_text = {"custom.cellOptions": {"type": "color-text"}}
    return table(
        "Latest run of each workflow",
        "The run with the highest run number of each workflow, whatever its status, with "
        "the workflow's pass ratio as the API computes it. 'Data' says whether the exporter "
        "refreshed the workflow in its last poll. 'Failed at node' names the node the "
        "workflow's latest failed run failed at (its error text is on the exporter's status "
        "page).",
        latest_targets(),
        field_config(
            custom=TABLE_CUSTOM,
            overrides=[
                status_override("Status", "color-background"),
                progress_override("Progress"),
                by_name("Duration", unit="s"),
                by_name("Token cost", decimals=0),
                by_name("Finished", unit="dateTimeFromNow"),
                by_name(
                    "Pass ratio",
                    unit="percentunit",
                    decimals=1,
                    thresholds=PASS_RATIO_STEPS,
                    **colour_text,
                ),
                by_name("Data", mappings=fresh, **colour_text),
                HIDDEN_ID,
                WORKFLOW_COLUMN,
            ],
        ),
        hidden=("Time", "Value #A", "Value #I"),
        renames=LATEST_COLUMNS,
        order=tuple(LATEST_COLUMNS),
        sort_by="Workflow",
    )


# The state set as one number per workflow, so that a state timeline can colour it.
STATUS_CODES = {
    "completed": 1,
    "failed": 2,
    "cancelled": 3,
    "running": 4,
    "pending": 5,
    "paused": 6,
}


def latest_status_timeline() -> Json:
    coded = "\n  or ".join(
        f"{S('onepin_workflow_last_run_status', promql.eq('status', status))} * {code}"
        for status, code in STATUS_CODES.items()
    )
    colours = {str(code): (s, STATUS_COLOURS[s]) for s, code in STATUS_CODES.items()}
    return state_timeline(
        "Latest run status over time",
        "Status of each workflow's latest run over time: when runs started, "
        "how long they ran and how they ended. Grey means a status the dashboard does not "
        "know.",
        [target(f"max by ({BY_WORKFLOW}) (\n  {coded}\n)", "A", WF_LEGEND)],
        field_config(
            mappings=value_mappings(colours | {"0": ("other", "text")}),
            custom=STATE_TIMELINE_CUSTOM,
            links=WORKFLOW_LINKS,
        ),
    )


# --- History -----------------------------------------------------------------------------------


def finished_graphs() -> list[Json]:
    ended = f"increase({finished()}[$__rate_interval])"
    failed = f"increase({finished(promql.FAILED)}[$__rate_interval])"
    return [
        timeseries(
            "Runs finished by status",
            "Runs reaching completed, failed or cancelled, per $__rate_interval window.",
            [target(f"sum by (status) ({ended})", "A", "{{status}}")],
            field_config(
                decimals=0,
                colour_mode="palette-classic",
                custom=timeseries_custom(bars=True, stacked=True, axis_label="runs"),
                overrides=[
                    by_name(s, color=fixed_colour(STATUS_COLOURS[s]))
                    for s in ("completed", "failed", "cancelled")
                ],
            ),
            legend_calcs=("sum",),
        ),
        timeseries(
            "Failures by workflow",
            "Failed runs per workflow, per $__rate_interval window (alert OnePinRunFailed).",
            [target(f"sum by ({BY_WORKFLOW}) ({failed}) > 0", "A", WF_LEGEND)],
            field_config(
                decimals=0,
                colour_mode="palette-classic",
                custom=timeseries_custom(bars=True, stacked=True, axis_label="failed runs"),
                no_value="no failed runs",
                links=WORKFLOW_LINKS,
            ),
            legend_calcs=("sum",),
            links=variables.runbook("OnePinRunFailed"),
        ),
    ]


BUCKETS = "onepin_workflow_run_duration_seconds_bucket"


def duration_heatmap() -> Json:
    return bucket_heatmap(
        "Run duration distribution",
        "How long runs took, from the onepin_workflow_run_duration_seconds "
        "histogram: each column counts the runs that finished in that window, by duration "
        "bucket. The dots are exemplars (Prometheus with --enable-feature=exemplar-storage): "
        "the run that ended last in a bucket, linked to the run in the OnePin app.",
        S(BUCKETS),
        "runs",
        exemplar=True,
    )


# Query letter -> column title, in the table's order (as RUN_COLUMNS).
DURATION_COLUMNS = {
    "workspace": "Workspace",
    "workflow_name": "Workflow",
    "Value #A": "p50",
    "Value #B": "p90",
    "Value #C": "p99",
    "Value #D": "Average (API, all runs)",
}


def duration_table() -> Json:
    quantiles = [
        f"histogram_quantile({q}, sum by ({BY_WORKFLOW}, le) "
        f"(increase({S(BUCKETS)}[$__range]))) >= 0"  # drops NaN: no run finished
        for q in ("0.5", "0.9", "0.99")
    ]
    average = f"max by ({BY_WORKFLOW}) ({S('onepin_workflow_average_run_duration_seconds')})"
    return table(
        "Run duration by workflow",
        "Median, 90th and 99th percentile of the duration of runs that finished in the "
        "dashboard's time range (estimated from the histogram's buckets; empty when no run "
        "of the workflow finished), and the API's average over all completed runs.",
        refs(*quantiles, average, instant=True, fmt="table"),
        field_config("s", custom=TABLE_CUSTOM, overrides=[HIDDEN_ID, WORKFLOW_COLUMN]),
        hidden=("Time",),
        renames=DURATION_COLUMNS,
        order=tuple(DURATION_COLUMNS),
        sort_by="p90",
        descending=True,
    )


def per_hour_by_workflow(
    title: str,
    description: str,
    counter: str,
    *,
    unit: str,
    axis_label: str,
    alerts: tuple[str, ...] = (),
) -> Json:
    """A counter summed over runs seen finishing, as an hourly rate stacked by workflow."""
    rate = f"rate({S(counter)}[$__rate_interval])"
    return timeseries(
        title,
        description,
        [target(f"sum by ({BY_WORKFLOW}) ({rate}) * 3600", "A", WF_LEGEND)],
        field_config(
            unit,
            colour_mode="palette-classic",
            custom=timeseries_custom(stacked=True, axis_label=axis_label),
            links=WORKFLOW_LINKS,
        ),
        legend_calcs=("mean", "max"),
        links=variables.runbook(*alerts),
    )


def cost_graphs() -> list[Json]:
    return [
        per_hour_by_workflow(
            "Token spend by workflow",
            "Tokens charged per hour by each workflow's runs, counted when a run finishes "
            "(rate of onepin_workflow_run_token_cost_total). Alert OnePinTokenSpendHigh compares "
            "the last hour with the busiest hour of the week before.",
            promql.TOKENS,
            unit="short",
            axis_label="tokens / hour",
            alerts=("OnePinTokenSpendHigh",),
        ),
        per_hour_by_workflow(
            "CPU time by workflow",
            "CPU seconds per hour used by each workflow's runs, counted when a run finishes "
            "(rate of onepin_workflow_run_cpu_seconds_total).",
            "onepin_workflow_run_cpu_seconds_total",
            unit="s",
            axis_label="CPU time / hour",
        ),
    ]


# --- Pauses, delivered audio and successes -----------------------------------------------------

REASON_COLOURS = {
    "provider_outage": "red",
    "provider_billing": "purple",
    "provider_rate_limited": "orange",
    "node_timeout": "yellow",
    "manual": "blue",
}


def pause_graphs() -> list[Json]:
    paused = S(promql.PAUSE_REASON) + " == 1"
    return [
        timeseries(
            "Paused runs by reason",
            "Active runs paused now, by the reason OnePin gives (onepin_run_pause_reason): "
            "provider_outage, provider_billing, provider_rate_limited, node_timeout, manual, or a "
            "newer reason as it comes. Alert OnePinRunPausedByProvider fires for provider "
            "pauses that last.",
            [target(f"count by (reason) ({paused})", "A", "{{reason}}")],
            field_config(
                decimals=0,
                colour_mode="palette-classic",
                custom=timeseries_custom(stacked=True, axis_label="paused runs"),
                overrides=[by_name(r, color=fixed_colour(c)) for r, c in REASON_COLOURS.items()],
                no_value="no paused runs",
            ),
            legend_calcs=("lastNotNull", "max"),
            links=variables.runbook("OnePinRunPausedByProvider"),
        ),
        timeseries(
            "Paused time of paused runs",
            "Time each run that is paused now has spent paused, as OnePin counts it "
            "(onepin_run_paused_seconds, all of the run's pauses), with the current reason. "
            "The alert OnePinRunPausedByProvider uses the same number.",
            [target(promql.paused_time_with_reason(S), "A", RUN_LEGEND + " {{reason}}")],
            field_config(
                "s",
                colour_mode="palette-classic",
                custom=timeseries_custom(),
                no_value="no paused runs",
                links=RUN_LINKS,
            ),
            legend_calcs=("lastNotNull",),
            links=variables.runbook("OnePinRunPausedByProvider"),
        ),
    ]


def delivered_audio() -> Json:
    return per_hour_by_workflow(
        "Delivered audio by workflow",
        "Seconds of audio delivered per hour by each workflow's runs, counted when a run "
        "finishes (rate of onepin_workflow_run_delivered_audio_seconds_total).",
        "onepin_workflow_run_delivered_audio_seconds_total",
        unit="s",
        axis_label="audio / hour",
    )


def time_since_last_success() -> Json:
    since = f"sort_desc(max by ({BY_WORKFLOW}) ({promql.since_last_success(S)}))"
    return bargauge(
        "Time since last success",
        "How long ago each workflow's newest completed run that the API lists completed "
        "(onepin_workflow_last_success_timestamp_seconds), longest first; orange after a "
        "day. A workflow that never completed a run is not listed. Alert "
        "OnePinWorkflowNoRecentSuccess fires after a day when runs failed since.",
        [target(since, "A", WF_LEGEND, instant=True)],
        field_config(
            "s",
            minimum=0,
            steps=thresholds(("green", None), ("orange", promql.NO_SUCCESS_SECONDS)),
            links=WORKFLOW_LINKS,
        ),
        links=variables.runbook("OnePinWorkflowNoRecentSuccess"),
    )


SCHEDULE_COLUMNS = {
    "workspace": "Workspace",
    "workflow_name": "Workflow",
    "Value #A": "Last expected",
    "Value #B": "Last started",
    "Value #C": "Next expected",
    "Value #D": "Missed",
}


def schedules() -> Json:
    def by_workflow(expr: str) -> str:
        return f"max by ({BY_WORKFLOW}) ({expr})"

    last = S(promql.SCHEDULE_LAST)
    missed = " ".join(promql.scheduled_run_missed(S).split())
    verdict = value_mappings({"1": ("missed", "red"), "0": ("on time", "green")})
    colour_text = {"custom.cellOptions": {"type": "color-text"}}
    return table(
        "Schedules",
        "Each workflow on a schedule (a `schedule` in the exporter's config, or a schedule "
        "trigger read with `collection.schedule_triggers`): the latest fire time of "
        "its schedule, when its latest run was created, the next fire time, and whether the "
        "latest fire started no run within the schedule's grace (what alert "
        "OnePinScheduledRunMissed fires on).",
        refs(
            by_workflow(f"{last} * 1000"),
            by_workflow(f"{S(promql.LAST_CREATED)} * 1000") + f" and on ({BY_WORKFLOW}) {last}",
            by_workflow(f"{S(promql.SCHEDULE_NEXT)} * 1000"),
            by_workflow(f"({missed}) * 0 + 1 or {last} * 0"),
            instant=True,
            fmt="table",
        ),
        field_config(
            "dateTimeFromNow",
            custom=TABLE_CUSTOM,
            overrides=[
                by_name("Missed", unit="none", mappings=verdict, **colour_text),
                HIDDEN_ID,
                WORKFLOW_COLUMN,
            ],
        ),
        hidden=("Time",),
        renames=SCHEDULE_COLUMNS,
        order=tuple(SCHEDULE_COLUMNS),
        sort_by="Missed",
        descending=True,
        links=variables.runbook("OnePinScheduledRunMissed"),
    )


# --- the dashboard -----------------------------------------------------------------------------


def place(lay: Layout) -> None:
    lay.row("Overview")
    for panel in [*count_stats(), pass_ratio(), *cost_stats()]:
        lay.add(panel, width=4, height=4)
    lay.row("In progress")
    lay.add(runs_in_progress(), width=24, height=9)
    for panel in active_run_graphs():
        lay.add(panel, width=12, height=8)
    lay.row("Latest runs")
    lay.add(latest_runs(), width=24, height=9)
    lay.add(latest_status_timeline(), width=24, height=8)
    lay.row("History")
    history = [
        *finished_graphs(),
        duration_heatmap(),
        duration_table(),
        nodes.node_duration_heatmap(),
        nodes.node_p95(),
        *cost_graphs(),
    ]
    for panel in history:
        lay.add(panel, width=12, height=8)
    lay.row("Pauses, delivered audio and successes")
    for panel in [*pause_graphs(), delivered_audio(), time_since_last_success()]:
        lay.add(panel, width=12, height=8)
    lay.add(schedules(), width=24, height=8)


def build() -> Json:
    lay = Layout()
    place(lay)
    app = url_link("OnePin app", APP, tooltip="The workflows in the OnePin web app")
    return dashboard(
        "onepin-workflows",
        "OnePin workflows",
        "OnePin workflow runs from onepin-exporter: active runs, latest runs, failures, "
        "durations and cost.",
        [*variables.common_variables(), variables.WORKFLOW, variables.APP],
        lay,
        [*variables.dashboard_links(), app],
    )
