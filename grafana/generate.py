"""Generate the OnePin Grafana dashboards (Grafana 11 JSON model) from plain Python.

    python grafana/generate.py          # write grafana/dashboards/*.json
    python grafana/generate.py --check  # exit 1 if the committed JSON differs from this script

The JSON files are committed so that Grafana can provision them as they are; edit this script,
not the JSON, then run it. tests/test_dashboards.py checks that both agree. No dependency beyond
the standard library.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24

# Colours of run statuses, shared by every panel that shows one.
STATUS_COLOURS = {
    "pending": "yellow",
    "running": "blue",
    "paused": "orange",
    "completed": "green",
    "failed": "red",
    "cancelled": "text",
}


# --- building blocks ---------------------------------------------------------------------------


def target(
    expr: str,
    ref: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    fmt: str = "time_series",
) -> Json:
    """A Prometheus query of a panel."""
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }


def thresholds(*steps: tuple[str, float | None]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": colour, "value": value} for colour, value in steps],
    }


def value_mappings(values: dict[str, tuple[str, str]]) -> list[Json]:
    """One value mapping: raw value -> (display text, colour)."""
    options = {
        raw: {"color": colour, "index": index, "text": text}
        for index, (raw, (text, colour)) in enumerate(values.items())
    }
    return [{"type": "value", "options": options}]


STATUS_MAPPINGS = value_mappings({s: (s, c) for s, c in STATUS_COLOURS.items()})
UP_MAPPINGS = value_mappings({"1": ("UP", "green"), "0": ("DOWN", "red")})


def override(matcher: Json, **properties: Any) -> Json:
    return {
        "matcher": matcher,
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def by_name(name: str, **properties: Any) -> Json:
    return override({"id": "byName", "options": name}, **properties)


def by_regexp(pattern: str, **properties: Any) -> Json:
    return override({"id": "byRegexp", "options": pattern}, **properties)


def field_config(
    unit: str = "short",
    *,
    decimals: int | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    steps: Json | None = None,
    mappings: list[Json] | None = None,
    colour_mode: str = "thresholds",
    custom: Json | None = None,
    overrides: list[Json] | None = None,
    no_value: str | None = None,
) -> Json:
    defaults: Json = {
        "color": {"mode": colour_mode},
        "mappings": mappings or [],
        "thresholds": steps or thresholds(("green", None)),
        "unit": unit,
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if custom is not None:
        defaults["custom"] = custom
    if no_value is not None:
        defaults["noValue"] = no_value
    return {"defaults": defaults, "overrides": overrides or []}


def timeseries_custom(
    *,
    bars: bool = False,
    stacked: bool = False,
    axis_label: str = "",
    fill: int = 10,
) -> Json:
    return {
        "axisBorderShow": False,
        "axisCenteredZero": False,
        "axisColorMode": "text",
        "axisLabel": axis_label,
        "axisPlacement": "auto",
        "axisSoftMin": 0,
        "barAlignment": 0,
        "drawStyle": "bars" if bars else "line",
        "fillOpacity": 80 if bars else fill,
        "gradientMode": "none",
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "insertNulls": False,
        "lineInterpolation": "linear",
        "lineWidth": 1,
        "pointSize": 4,
        "scaleDistribution": {"type": "linear"},
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"group": "A", "mode": "normal" if stacked else "none"},
        "thresholdsStyle": {"mode": "off"},
    }


def stat(
    title: str,
    description: str,
    targets: list[Json],
    fields: Json,
    *,
    text_mode: str = "auto",
    graph: bool = True,
    colour_mode: str = "value",
) -> Json:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": fields,
        "options": {
            "colorMode": colour_mode,
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "percentChangeColorMode": "standard",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showPercentChange": False,
            "textMode": text_mode,
            "wideLayout": True,
        },
        "targets": targets,
    }


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    fields: Json,
    *,
    legend_calcs: tuple[str, ...] = ("lastNotNull", "max"),
) -> Json:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": fields,
        "options": {
            "legend": {
                "calcs": list(legend_calcs),
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets,
    }


def bargauge(title: str, description: str, targets: list[Json], fields: Json) -> Json:
    """Horizontal bars, one per series, named on the left (for lists sorted by value)."""
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": fields,
        "options": {
            "displayMode": "basic",
            "legend": {
                "calcs": [],
                "displayMode": "list",
                "placement": "bottom",
                "showLegend": False,
            },
            "maxVizHeight": 300,
            "minVizHeight": 16,
            "minVizWidth": 8,
            "namePlacement": "left",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
            "sizing": "auto",
            "valueMode": "color",
        },
        "targets": targets,
    }


def table(
    title: str,
    description: str,
    targets: list[Json],
    fields: Json,
    *,
    hidden: tuple[str, ...],
    renames: dict[str, str],
    order: tuple[str, ...],
    sort_by: str,
    descending: bool = False,
) -> Json:
    """A table joining instant queries on their common labels (merge), then tidied (organize)."""
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": fields,
        "options": {
            "cellHeight": "sm",
            "footer": {"countRows": False, "reducer": ["sum"], "show": False},
            "frameIndex": 0,
            "showHeader": True,
            "sortBy": [{"desc": descending, "displayName": sort_by}],
        },
        "targets": targets,
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": dict.fromkeys(hidden, True),
                    "includeByName": {},
                    "indexByName": {name: index for index, name in enumerate(order)},
                    "renameByName": renames,
                },
            },
        ],
    }


def table_targets(key: tuple[str, ...], status: str, *values: str) -> list[Json]:
    """Instant queries of a merged table: query A gives the `status` column (its value is
    hidden), the others one value column each. Each is aggregated `by` the same key labels, so
    that no `__name__`, `job` or `instance` column keeps the merge from joining rows."""
    labels = ", ".join(key)
    exprs = [f"max by ({labels}, status) ({status})"]
    exprs += [f"max by ({labels}) ({value})" for value in values]
    return [
        target(expr, chr(ord("A") + index), instant=True, fmt="table")
        for index, expr in enumerate(exprs)
    ]


TABLE_CUSTOM: Json = {
    "align": "auto",
    "cellOptions": {"type": "auto"},
    "filterable": True,
    "inspect": False,
}


def progress_override(name: str) -> Json:
    return by_name(
        name,
        unit="percentunit",
        min=0,
        max=1,
        decimals=0,
        **{
            "custom.cellOptions": {"mode": "basic", "type": "gauge", "valueDisplayMode": "text"},
            "color": {"mode": "continuous-BlPu"},
        },
    )


def status_override(name: str, cell: str) -> Json:
    return by_name(
        name,
        mappings=STATUS_MAPPINGS,
        **{"custom.cellOptions": {"type": cell}},
    )


def label_values_variable(name: str, label: str, query: str, *, multi: bool = True) -> Json:
    definition = f"label_values({query}, {label})"
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DATASOURCE,
        "definition": definition,
        "hide": 0,
        "includeAll": multi,
        "label": name.capitalize(),
        "multi": multi,
        "name": name,
        "options": [],
        "query": {"query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


DATASOURCE_VARIABLE: Json = {
    "hide": 0,
    "includeAll": False,
    "label": "Data source",
    "multi": False,
    "name": "datasource",
    "options": [],
    "query": "prometheus",
    "refresh": 1,
    "regex": "",
    "skipUrlSync": False,
    "type": "datasource",
}


@dataclass
class Layout:
    """Places panels left to right, wrapping at the grid's width, and numbers them."""

    panels: list[Json] = field(default_factory=list)
    x: int = 0
    y: int = 0
    line_height: int = 0

    def _newline(self) -> None:
        self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self.y},
                "id": len(self.panels) + 1,
                "panels": [],
                "title": title,
                "type": "row",
            }
        )
        self.y += 1

    def add(self, panel: Json, width: int, height: int) -> None:
        if self.x + width > GRID_WIDTH:
            self._newline()
        panel = {"id": len(self.panels) + 1, **panel}
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += width
        self.line_height = max(self.line_height, height)


def dashboard(
    uid: str, title: str, description: str, variables: list[Json], layout: Layout
) -> Json:
    return {
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [
            {
                "asDropdown": False,
                "icon": "external link",
                "includeVars": False,
                "keepTime": True,
                "tags": ["onepin"],
                "targetBlank": False,
                "title": "OnePin dashboards",
                "tooltip": "",
                "type": "dashboards",
                "url": "",
            }
        ],
        "panels": layout.panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["onepin"],
        "templating": {"list": variables},
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


# --- dashboard 1: workflows -------------------------------------------------------------------

WF = 'workspace=~"$workspace", workflow_name=~"$workflow"'
RUN_LEGEND = "{{workflow_name}} #{{run_number}}"
# The labels that identify a row of the run and workflow tables.
RUN_KEY = ("workspace", "workflow_name", "run_number", "run_id")
WORKFLOW_KEY = ("workspace", "workflow_id", "workflow_name")
WF_LEGEND = "{{workspace}}/{{workflow_name}}"


def per_hour_by_workflow(
    title: str, description: str, counter: str, unit: str, axis_label: str
) -> Json:
    """A counter summed over runs seen finishing, as an hourly rate stacked by workflow."""
    return timeseries(
        title,
        description,
        [
            target(
                f"sum by (workspace, workflow_name) (rate({counter}{{{WF}}}[$__rate_interval]))"
                " * 3600",
                "A",
                WF_LEGEND,
            )
        ],
        field_config(
            unit,
            colour_mode="palette-classic",
            custom=timeseries_custom(stacked=True, axis_label=axis_label),
        ),
        legend_calcs=("mean", "max"),
    )


def workflows_dashboard() -> Json:
    lay = Layout()
    finished = f"onepin_workflow_runs_finished_total{{{WF}}}"

    lay.row("Overview")
    count_fields = field_config(decimals=0)
    lay.add(
        stat(
            "Active runs",
            "Runs pending, running or paused now, as the OnePin API counts them "
            "(onepin_workflow_runs).",
            [target(f'sum(onepin_workflow_runs{{{WF}, status=~"pending|running|paused"}})', "A")],
            count_fields,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Runs finished",
            "Runs that reached completed, failed or cancelled in the dashboard's time range, as "
            "seen by the exporter (increase of onepin_workflow_runs_finished_total).",
            [target(f"round(sum(increase({finished}[$__range])))", "A", instant=True)],
            count_fields,
            graph=False,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Runs failed",
            "Runs that failed in the dashboard's time range (status failed; cancelled runs are "
            "not counted here).",
            [
                target(
                    "round(sum(increase("
                    f'onepin_workflow_runs_finished_total{{{WF}, status="failed"}}[$__range])))',
                    "A",
                    instant=True,
                )
            ],
            field_config(decimals=0, steps=thresholds(("green", None), ("red", 1))),
            graph=False,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Pass ratio",
            "Completed runs out of the runs that completed or failed in the dashboard's time "
            "range (cancelled runs are left out, as in the API's pass rate).",
            [
                target(
                    f'sum(increase(onepin_workflow_runs_finished_total{{{WF}, status="completed"}}'
                    "[$__range])) / (sum(increase(onepin_workflow_runs_finished_total"
                    f'{{{WF}, status=~"completed|failed"}}[$__range])) > 0)',
                    "A",
                    instant=True,
                )
            ],
            field_config(
                "percentunit",
                decimals=1,
                minimum=0,
                maximum=1,
                steps=thresholds(("red", None), ("orange", 0.8), ("green", 0.95)),
                no_value="no completed or failed runs",
            ),
            graph=False,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Tokens spent",
            "Token cost of the runs that finished in the dashboard's time range "
            "(increase of onepin_workflow_run_token_cost_total). Active runs are not included.",
            [
                target(
                    f"sum(increase(onepin_workflow_run_token_cost_total{{{WF}}}[$__range]))",
                    "A",
                    instant=True,
                )
            ],
            field_config(decimals=0, colour_mode="fixed"),
            graph=False,
            colour_mode="none",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "CPU time",
            "CPU time of the runs that finished in the dashboard's time range "
            "(increase of onepin_workflow_run_cpu_seconds_total).",
            [
                target(
                    f"sum(increase(onepin_workflow_run_cpu_seconds_total{{{WF}}}[$__range]))",
                    "A",
                    instant=True,
                )
            ],
            field_config("s", colour_mode="fixed"),
            graph=False,
            colour_mode="none",
        ),
        4,
        4,
    )

    lay.row("In progress")
    lay.add(
        table(
            "Runs in progress",
            "Every pending, running or paused run: progress (finished / total steps), status, "
            "running time against the API's clock (empty while pending), token cost and CPU "
            "time so far. Runs leave this table when they end.",
            table_targets(
                RUN_KEY,
                f"onepin_run_status{{{WF}}} == 1",
                f"onepin_run_finished_steps{{{WF}}} / onepin_run_total_steps{{{WF}}}",
                f"onepin_run_finished_steps{{{WF}}}",
                f"onepin_run_total_steps{{{WF}}}",
                f"onepin_run_duration_seconds{{{WF}}}",
                f"onepin_run_token_cost{{{WF}}}",
                f"onepin_run_cpu_seconds{{{WF}}}",
            ),
            field_config(
                custom=TABLE_CUSTOM,
                overrides=[
                    status_override("Status", "color-text"),
                    progress_override("Progress"),
                    by_name("Running for", unit="s"),
                    by_name("CPU time", unit="s"),
                    by_name("Token cost", decimals=0),
                ],
            ),
            hidden=("Time", "workflow_id", "Value #A"),
            renames={
                "workspace": "Workspace",
                "workflow_name": "Workflow",
                "run_number": "Run",
                "run_id": "Run ID",
                "status": "Status",
                "Value #B": "Progress",
                "Value #C": "Finished steps",
                "Value #D": "Total steps",
                "Value #E": "Running for",
                "Value #F": "Token cost",
                "Value #G": "CPU time",
            },
            order=(
                "workspace",
                "workflow_name",
                "run_number",
                "status",
                "Value #B",
                "Value #C",
                "Value #D",
                "Value #E",
                "Value #F",
                "Value #G",
                "run_id",
            ),
            sort_by="Running for",
            descending=True,
        ),
        24,
        9,
    )
    lay.add(
        timeseries(
            "Progress of active runs",
            "Finished steps out of total steps for each active run. A flat line is a run that "
            "makes no progress (alert OnePinRunStalled).",
            [
                target(
                    f"onepin_run_finished_steps{{{WF}}} / onepin_run_total_steps{{{WF}}}",
                    "A",
                    RUN_LEGEND,
                )
            ],
            field_config(
                "percentunit",
                minimum=0,
                maximum=1,
                colour_mode="palette-classic",
                custom=timeseries_custom(),
            ),
            legend_calcs=("lastNotNull",),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Token cost of active runs",
            "Tokens each active run has cost so far, as the API reports them. A steep line is a "
            "run that spends fast.",
            [target(f"onepin_run_token_cost{{{WF}}}", "A", RUN_LEGEND)],
            field_config(colour_mode="palette-classic", custom=timeseries_custom()),
            legend_calcs=("lastNotNull",),
        ),
        12,
        8,
    )

    lay.row("Latest runs")
    lay.add(
        table(
            "Latest run of each workflow",
            "The run with the highest run number of each workflow, whatever its status, with "
            "the workflow's pass ratio as the API computes it. 'Data' says whether the exporter "
            "refreshed the workflow in its last poll.",
            table_targets(
                WORKFLOW_KEY,
                f"onepin_workflow_last_run_status{{{WF}}} == 1",
                f"onepin_workflow_last_run_number{{{WF}}}",
                f"onepin_workflow_last_run_finished_steps{{{WF}}}"
                f" / onepin_workflow_last_run_total_steps{{{WF}}}",
                f"onepin_workflow_last_run_duration_seconds{{{WF}}}",
                f"onepin_workflow_last_run_token_cost{{{WF}}}",
                f"onepin_workflow_last_run_completed_timestamp_seconds{{{WF}}} * 1000",
                f"onepin_workflow_pass_ratio{{{WF}}}",
                f"onepin_workflow_up{{{WF}}}",
            ),
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
                        thresholds=thresholds(("red", None), ("orange", 0.8), ("green", 0.95)),
                        **{"custom.cellOptions": {"type": "color-text"}},
                    ),
                    by_name(
                        "Data",
                        mappings=value_mappings(
                            {"1": ("fresh", "green"), "0": ("stale", "orange")}
                        ),
                        **{"custom.cellOptions": {"type": "color-text"}},
                    ),
                ],
            ),
            hidden=("Time", "workflow_id", "Value #A"),
            renames={
                "workspace": "Workspace",
                "workflow_name": "Workflow",
                "status": "Status",
                "Value #B": "Run",
                "Value #C": "Progress",
                "Value #D": "Duration",
                "Value #E": "Token cost",
                "Value #F": "Finished",
                "Value #G": "Pass ratio",
                "Value #H": "Data",
            },
            order=(
                "workspace",
                "workflow_name",
                "Value #B",
                "status",
                "Value #C",
                "Value #D",
                "Value #E",
                "Value #F",
                "Value #G",
                "Value #H",
            ),
            sort_by="Workflow",
        ),
        24,
        9,
    )
    # The state set as one number per workflow, so that a state timeline can colour it.
    codes = {"completed": 1, "failed": 2, "cancelled": 3, "running": 4, "pending": 5, "paused": 6}
    coded = "\n  or ".join(
        f'onepin_workflow_last_run_status{{{WF}, status="{status}"}} * {code}'
        for status, code in codes.items()
    )
    lay.add(
        {
            "type": "state-timeline",
            "title": "Latest run status over time",
            "description": "Status of each workflow's latest run over time: when runs started, "
            "how long they ran and how they ended. Grey means a status the dashboard does not "
            "know.",
            "datasource": DATASOURCE,
            "fieldConfig": field_config(
                mappings=value_mappings(
                    {str(code): (status, STATUS_COLOURS[status]) for status, code in codes.items()}
                    | {"0": ("other", "text")}
                ),
                custom={
                    "fillOpacity": 80,
                    "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                    "insertNulls": False,
                    "lineWidth": 0,
                    "spanNulls": False,
                },
            ),
            "options": {
                "alignValue": "left",
                "legend": {
                    "calcs": [],
                    "displayMode": "list",
                    "placement": "bottom",
                    "showLegend": True,
                },
                "mergeValues": True,
                "rowHeight": 0.9,
                "showValue": "never",
                "tooltip": {"mode": "single", "sort": "none"},
            },
            "targets": [
                target(
                    f"max by (workspace, workflow_name) (\n  {coded}\n)",
                    "A",
                    WF_LEGEND,
                )
            ],
        },
        24,
        8,
    )

    lay.row("History")
    lay.add(
        timeseries(
            "Runs finished by status",
            "Runs reaching completed, failed or cancelled, per $__rate_interval window.",
            [
                target(
                    f"sum by (status) (increase({finished}[$__rate_interval]))",
                    "A",
                    "{{status}}",
                )
            ],
            field_config(
                decimals=0,
                colour_mode="palette-classic",
                custom=timeseries_custom(bars=True, stacked=True, axis_label="runs"),
                overrides=[
                    by_name(s, color={"fixedColor": STATUS_COLOURS[s], "mode": "fixed"})
                    for s in ("completed", "failed", "cancelled")
                ],
            ),
            legend_calcs=("sum",),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Failures by workflow",
            "Failed runs per workflow, per $__rate_interval window (alert OnePinRunFailed).",
            [
                target(
                    f"sum by (workspace, workflow_name) (increase("
                    f'onepin_workflow_runs_finished_total{{{WF}, status="failed"}}'
                    f"[$__rate_interval])) > 0",
                    "A",
                    WF_LEGEND,
                )
            ],
            field_config(
                decimals=0,
                colour_mode="palette-classic",
                custom=timeseries_custom(bars=True, stacked=True, axis_label="failed runs"),
                no_value="no failed runs",
            ),
            legend_calcs=("sum",),
        ),
        12,
        8,
    )
    buckets = f"onepin_workflow_run_duration_seconds_bucket{{{WF}}}"
    lay.add(
        {
            "type": "heatmap",
            "title": "Run duration distribution",
            "description": "How long runs took, from the onepin_workflow_run_duration_seconds "
            "histogram: each column counts the runs that finished in that window, by duration "
            "bucket.",
            "datasource": DATASOURCE,
            "fieldConfig": {
                "defaults": {
                    "custom": {
                        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
                        "scaleDistribution": {"type": "linear"},
                    }
                },
                "overrides": [],
            },
            "options": {
                "calculate": False,
                "cellGap": 1,
                "color": {
                    "exponent": 0.5,
                    "fill": "dark-orange",
                    "mode": "scheme",
                    "reverse": False,
                    "scale": "exponential",
                    "scheme": "Oranges",
                    "steps": 64,
                },
                "exemplars": {"color": "rgba(255,0,255,0.7)"},
                "filterValues": {"le": 1e-09},
                "legend": {"show": True},
                "rowsFrame": {"layout": "auto", "value": "runs"},
                "showValue": "never",
                "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
                "yAxis": {"axisPlacement": "left", "reverse": False, "unit": "s"},
            },
            "targets": [
                target(
                    f"sum by (le) (increase({buckets}[$__rate_interval]))",
                    "A",
                    "{{le}}",
                    fmt="heatmap",
                )
            ],
        },
        12,
        8,
    )
    quantile_targets = [
        target(
            f"histogram_quantile({q}, sum by (workspace, workflow_name, le) "
            f"(increase({buckets}[$__range]))) >= 0",  # drops NaN: no run finished
            ref,
            instant=True,
            fmt="table",
        )
        for q, ref in (("0.5", "A"), ("0.9", "B"), ("0.99", "C"))
    ]
    quantile_targets.append(
        target(
            "max by (workspace, workflow_name) "
            f"(onepin_workflow_average_run_duration_seconds{{{WF}}})",
            "D",
            instant=True,
            fmt="table",
        )
    )
    lay.add(
        table(
            "Run duration by workflow",
            "Median, 90th and 99th percentile of the duration of runs that finished in the "
            "dashboard's time range (estimated from the histogram's buckets; empty when no run "
            "of the workflow finished), and the API's average over all completed runs.",
            quantile_targets,
            field_config("s", custom=TABLE_CUSTOM),
            hidden=("Time",),
            renames={
                "workspace": "Workspace",
                "workflow_name": "Workflow",
                "Value #A": "p50",
                "Value #B": "p90",
                "Value #C": "p99",
                "Value #D": "Average (API, all runs)",
            },
            order=("workspace", "workflow_name", "Value #A", "Value #B", "Value #C", "Value #D"),
            sort_by="p90",
            descending=True,
        ),
        12,
        8,
    )
    lay.add(
        per_hour_by_workflow(
            "Token spend by workflow",
            "Tokens charged per hour by each workflow's runs, counted when a run finishes "
            "(rate of onepin_workflow_run_token_cost_total). Alert OnePinTokenSpendHigh compares "
            "the last hour with the busiest hour of the week before.",
            "onepin_workflow_run_token_cost_total",
            "short",
            "tokens / hour",
        ),
        12,
        8,
    )
    lay.add(
        per_hour_by_workflow(
            "CPU time by workflow",
            "CPU seconds per hour used by each workflow's runs, counted when a run finishes "
            "(rate of onepin_workflow_run_cpu_seconds_total).",
            "onepin_workflow_run_cpu_seconds_total",
            "s",
            "CPU time / hour",
        ),
        12,
        8,
    )

    lay.row("Pauses, delivered audio and successes")
    paused = f"onepin_run_pause_reason{{{WF}}} == 1"
    reason_colours = {
        "provider_outage": "red",
        "provider_billing": "purple",
        "provider_rate_limited": "orange",
        "node_timeout": "yellow",
        "manual": "blue",
    }
    lay.add(
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
                overrides=[
                    by_name(reason, color={"fixedColor": colour, "mode": "fixed"})
                    for reason, colour in reason_colours.items()
                ],
                no_value="no paused runs",
            ),
            legend_calcs=("lastNotNull", "max"),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Paused time of paused runs",
            "Time each run that is paused now has spent paused, as OnePin counts it "
            "(onepin_run_paused_seconds, all of the run's pauses), with the current reason. "
            "The alert OnePinRunPausedByProvider uses the same number.",
            [
                target(
                    f"onepin_run_paused_seconds{{{WF}}}"
                    f" * ignoring (reason) group_left (reason) ({paused})",
                    "A",
                    RUN_LEGEND + " {{reason}}",
                )
            ],
            field_config(
                "s",
                colour_mode="palette-classic",
                custom=timeseries_custom(),
                no_value="no paused runs",
            ),
            legend_calcs=("lastNotNull",),
        ),
        12,
        8,
    )
    lay.add(
        per_hour_by_workflow(
            "Delivered audio by workflow",
            "Seconds of audio delivered per hour by each workflow's runs, counted when a run "
            "finishes (rate of onepin_workflow_run_delivered_audio_seconds_total).",
            "onepin_workflow_run_delivered_audio_seconds_total",
            "s",
            "audio / hour",
        ),
        12,
        8,
    )
    lay.add(
        bargauge(
            "Time since last success",
            "How long ago each workflow's newest completed run that the API lists completed "
            "(onepin_workflow_last_success_timestamp_seconds), longest first; orange after a "
            "day. A workflow that never completed a run is not listed. Alert "
            "OnePinWorkflowNoRecentSuccess fires after a day when runs failed since.",
            [
                target(
                    "sort_desc(max by (workspace, workflow_name) (time() - "
                    f"onepin_workflow_last_success_timestamp_seconds{{{WF}}}))",
                    "A",
                    WF_LEGEND,
                    instant=True,
                )
            ],
            field_config("s", minimum=0, steps=thresholds(("green", None), ("orange", 86400))),
        ),
        12,
        8,
    )

    variables = [
        DATASOURCE_VARIABLE,
        label_values_variable("workspace", "workspace", "onepin_up"),
        label_values_variable(
            "workflow", "workflow_name", 'onepin_workflow_info{workspace=~"$workspace"}'
        ),
    ]
    return dashboard(
        "onepin-workflows",
        "OnePin workflows",
        "OnePin workflow runs from onepin-exporter: active runs, latest runs, failures, "
        "durations and cost.",
        variables,
        lay,
    )


# --- dashboard 2: the exporter ----------------------------------------------------------------

J = 'job=~"$job", instance=~"$instance"'
JW = f'{J}, workspace=~"$workspace"'


def exporter_dashboard() -> Json:
    lay = Layout()
    requests = f"onepin_api_requests_total{{{JW}}}"
    latency = f"onepin_api_request_duration_seconds_bucket{{{JW}}}"

    lay.row("Health")
    lay.add(
        stat(
            "Exporter scraped",
            "Whether Prometheus could scrape each exporter instance (up). Alert "
            "OnePinExporterDown.",
            [target(f"up{{{J}}}", "A", "{{instance}}")],
            field_config(mappings=UP_MAPPINGS, steps=thresholds(("red", None), ("green", 1))),
            graph=False,
            colour_mode="background",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "API reachable",
            "Whether the last poll reached the OnePin API and authenticated, per workspace "
            "(onepin_up). Alert OnePinAPIDown.",
            [target(f"onepin_up{{{JW}}}", "A", "{{workspace}}")],
            field_config(mappings=UP_MAPPINGS, steps=thresholds(("red", None), ("green", 1))),
            graph=False,
            colour_mode="background",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Workflows monitored",
            "Workflows the exporter reports on (onepin_workflow_info).",
            [target(f"count(onepin_workflow_info{{{JW}}})", "A")],
            field_config(decimals=0),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Workflows not refreshed",
            "Workflows whose data did not come from the last poll (onepin_workflow_up == 0). "
            "Alert OnePinWorkflowDataStale.",
            [target(f"count(onepin_workflow_up{{{JW}}} == 0) or vector(0)", "A")],
            field_config(decimals=0, steps=thresholds(("green", None), ("orange", 1))),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Version",
            "Exporter version and Python version of each instance (onepin_exporter_build_info).",
            [
                target(
                    f"onepin_exporter_build_info{{{J}}}",
                    "A",
                    "{{version}} (Python {{python_version}})",
                    instant=True,
                )
            ],
            field_config(colour_mode="fixed"),
            text_mode="name",
            graph=False,
            colour_mode="none",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Uptime",
            "Time since each exporter process started (process_start_time_seconds).",
            [target(f"time() - process_start_time_seconds{{{J}}}", "A", "{{instance}}")],
            field_config("s", colour_mode="fixed"),
            graph=False,
            colour_mode="none",
        ),
        4,
        4,
    )

    lay.row("Polling")
    lay.add(
        timeseries(
            "Poll duration against the deadline",
            "Wall time of the last poll of each workspace (solid) and the deadline it had "
            "(dashed), derived from Prometheus's scrape timeout. A poll that reaches its "
            "deadline returns partial data.",
            [
                target(
                    f"onepin_exporter_collect_duration_seconds{{{JW}}}", "A", "poll {{workspace}}"
                ),
                target(
                    f"onepin_exporter_poll_deadline_seconds{{{JW}}}", "B", "deadline {{workspace}}"
                ),
            ],
            field_config(
                "s",
                colour_mode="palette-classic",
                custom=timeseries_custom(),
                overrides=[
                    by_regexp(
                        "^deadline .*",
                        **{
                            "custom.lineStyle": {"dash": [10, 10], "fill": "dash"},
                            "custom.fillOpacity": 0,
                        },
                    )
                ],
            ),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "API requests per minute by workspace",
            "Requests the exporter sends to the OnePin API, per minute, to compare with the API "
            "key's rate_limit_per_min. Steady state is about one List Workflows page per 100 "
            "workflows plus one request per active run, per poll.",
            [
                target(
                    f"sum by (workspace) (rate({requests}[$__rate_interval])) * 60",
                    "A",
                    "{{workspace}}",
                )
            ],
            field_config(
                colour_mode="palette-classic",
                custom=timeseries_custom(axis_label="requests / minute"),
            ),
        ),
        12,
        8,
    )

    lay.row("OnePin API")
    lay.add(
        timeseries(
            "API requests by endpoint and code",
            "Requests per second to the OnePin API by endpoint and HTTP status ('error' when no "
            "HTTP answer came back).",
            [
                target(
                    f"sum by (endpoint, code) (rate({requests}[$__rate_interval]))",
                    "A",
                    "{{endpoint}} {{code}}",
                )
            ],
            field_config(
                "reqps",
                colour_mode="palette-classic",
                custom=timeseries_custom(stacked=True),
                overrides=[
                    by_regexp(".* (5..|error)$", color={"fixedColor": "red", "mode": "fixed"}),
                    by_regexp(".* 429$", color={"fixedColor": "orange", "mode": "fixed"}),
                ],
            ),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Rate-limited requests (429)",
            "Requests the API answered with 429 Too Many Requests, per second, by workspace and "
            "endpoint. The exporter honours Retry-After. Alert OnePinAPIRateLimited.",
            [
                target(
                    "sum by (workspace, endpoint) (rate("
                    f'onepin_api_requests_total{{{JW}, code="429"}}[$__rate_interval]))',
                    "A",
                    "{{workspace}} {{endpoint}}",
                )
            ],
            field_config(
                "reqps",
                colour_mode="palette-classic",
                custom=timeseries_custom(bars=True),
                no_value="no 429 answers",
            ),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "API error ratio",
            "Share of requests per workspace that got a 5xx status or no HTTP answer. Alert "
            "OnePinAPIErrors fires above 10% for 15 minutes.",
            [
                target(
                    "(sum by (workspace) (rate("
                    f'onepin_api_requests_total{{{JW}, code=~"5..|error"}}[$__rate_interval]))'
                    f" or 0 * sum by (workspace) (rate({requests}[$__rate_interval])))"
                    f" / sum by (workspace) (rate({requests}[$__rate_interval]))",
                    "A",
                    "{{workspace}}",
                )
            ],
            field_config(
                "percentunit",
                minimum=0,
                colour_mode="palette-classic",
                custom=timeseries_custom() | {"thresholdsStyle": {"mode": "line+area"}},
                steps=thresholds(("transparent", None), ("red", 0.1)),
            ),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "API latency quantiles",
            "Median, 90th and 99th percentile latency of all requests to the OnePin API "
            "(from the onepin_api_request_duration_seconds histogram).",
            [
                target(
                    f"histogram_quantile({q}, sum by (le) (rate({latency}[$__rate_interval])))",
                    ref,
                    f"p{q[2:].ljust(2, '0')}",
                )
                for q, ref in (("0.5", "A"), ("0.9", "B"), ("0.99", "C"))
            ],
            field_config("s", colour_mode="palette-classic", custom=timeseries_custom()),
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "API latency p90 by endpoint",
            "90th percentile latency of requests to the OnePin API, by endpoint.",
            [
                target(
                    "histogram_quantile(0.9, sum by (endpoint, le) "
                    f"(rate({latency}[$__rate_interval])))",
                    "A",
                    "{{endpoint}}",
                )
            ],
            field_config("s", colour_mode="palette-classic", custom=timeseries_custom()),
        ),
        12,
        8,
    )

    lay.row("Exporter process")
    onepin_series = f'{{__name__=~"onepin_.*", {J}}}'
    lay.add(
        bargauge(
            "Series exported by metric",
            "Number of series of each onepin_ metric in the last scrape. Run-level metrics grow "
            "with active runs, workflow-level ones with workflows.",
            [
                target(
                    f"sort_desc(count by (__name__) ({onepin_series}))",
                    "A",
                    "{{__name__}}",
                    instant=True,
                )
            ],
            field_config(decimals=0, colour_mode="continuous-BlPu"),
        ),
        12,
        10,
    )
    lay.add(
        timeseries(
            "Series exported over time",
            "Total onepin_ series per exporter instance. Sudden growth means many new runs or "
            "workflows; see the panel on the left for which metrics.",
            [target(f"count by (instance) ({onepin_series})", "A", "{{instance}}")],
            field_config(decimals=0, colour_mode="palette-classic", custom=timeseries_custom()),
        ),
        12,
        10,
    )
    lay.add(
        timeseries(
            "Resident memory",
            "Resident set size of each exporter process (process_resident_memory_bytes).",
            [target(f"process_resident_memory_bytes{{{J}}}", "A", "{{instance}}")],
            field_config("bytes", colour_mode="palette-classic", custom=timeseries_custom()),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "CPU usage",
            "CPU used by each exporter process; 100% is one core (process_cpu_seconds_total).",
            [
                target(
                    f"rate(process_cpu_seconds_total{{{J}}}[$__rate_interval])",
                    "A",
                    "{{instance}}",
                )
            ],
            field_config("percentunit", colour_mode="palette-classic", custom=timeseries_custom()),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Open file descriptors",
            "Open file descriptors of each exporter process against its limit "
            "(process_open_fds, process_max_fds). Connections to the API use some.",
            [
                target(f"process_open_fds{{{J}}}", "A", "open {{instance}}"),
                target(f"process_max_fds{{{J}}}", "B", "limit {{instance}}"),
            ],
            field_config(decimals=0, colour_mode="palette-classic", custom=timeseries_custom()),
        ),
        8,
        8,
    )

    variables = [
        DATASOURCE_VARIABLE,
        label_values_variable("job", "job", "onepin_exporter_build_info"),
        label_values_variable("instance", "instance", 'onepin_exporter_build_info{job=~"$job"}'),
        label_values_variable(
            "workspace", "workspace", 'onepin_up{job=~"$job", instance=~"$instance"}'
        ),
    ]
    return dashboard(
        "onepin-exporter",
        "OnePin exporter",
        "Health of onepin-exporter: scrapes, polls against their deadline, use of the OnePin "
        "API (rate, errors, 429s, latency), series counts and the process.",
        variables,
        lay,
    )


# --- output ------------------------------------------------------------------------------------

DASHBOARDS = {
    "onepin-workflows.json": workflows_dashboard,
    "onepin-exporter.json": exporter_dashboard,
}


def render(model: Json) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> JSON text, as committed under grafana/dashboards/."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="only compare with the files; exit 1 if they differ"
    )
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="output directory")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path: Path = args.out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print("out of date (run python grafana/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
