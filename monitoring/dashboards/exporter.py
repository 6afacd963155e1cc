"""Dashboard "OnePin exporter": scrapes, polls against their deadline, use of the OnePin API,
series counts and the process."""

from __future__ import annotations

from monitoring import promql
from monitoring.dashboards import variables
from monitoring.grafana.fields import (
    UP_MAPPINGS,
    Json,
    by_regexp,
    field_config,
    fixed_colour,
    thresholds,
    timeseries_custom,
)
from monitoring.grafana.layout import Layout, dashboard
from monitoring.grafana.panels import bargauge, stat, target, timeseries

T = promql.TARGET  # the exporter's own series
W = promql.WORKSPACE  # series of one workspace
UP_STEPS = thresholds(("red", None), ("green", 1))
RATE_WINDOW = "[$__rate_interval]"


def rate(selector: str) -> str:
    return f"rate({selector}{RATE_WINDOW})"


def graph_fields(
    unit: str = "short", *, decimals: int | None = None, overrides: list[Json] | None = None
) -> Json:
    """A line graph with a colour per series."""
    return field_config(
        unit,
        decimals=decimals,
        colour_mode="palette-classic",
        custom=timeseries_custom(),
        overrides=overrides,
    )


# --- Health ------------------------------------------------------------------------------------


def up_stats() -> list[Json]:
    up_fields = field_config(mappings=UP_MAPPINGS, steps=UP_STEPS)
    return [
        stat(
            "Exporter scraped",
            "Whether Prometheus could scrape each exporter instance (up). Alert "
            "OnePinExporterDown.",
            [target(T("up"), "A", "{{instance}}")],
            up_fields,
            graph=False,
            colour_mode="background",
            links=variables.runbook("OnePinExporterDown"),
        ),
        stat(
            "API reachable",
            "Whether the last poll reached the OnePin API and authenticated, per workspace "
            "(onepin_up). Alert OnePinAPIDown.",
            [target(W("onepin_up"), "A", "{{workspace}}")],
            up_fields,
            graph=False,
            colour_mode="background",
            links=variables.runbook("OnePinAPIDown"),
        ),
    ]


def workflow_stats() -> list[Json]:
    stale = f"count({W('onepin_workflow_up')} == 0) or vector(0)"
    return [
        stat(
            "Workflows monitored",
            "Workflows the exporter reports on (onepin_workflow_info).",
            [target(f"count({W('onepin_workflow_info')})", "A")],
            field_config(decimals=0),
        ),
        stat(
            "Workflows not refreshed",
            "Workflows whose data did not come from the last poll (onepin_workflow_up == 0). "
            "Alert OnePinWorkflowDataStale.",
            [target(stale, "A")],
            field_config(decimals=0, steps=thresholds(("green", None), ("orange", 1))),
            links=variables.runbook("OnePinWorkflowDataStale"),
        ),
    ]


def process_stats() -> list[Json]:
    version = "{{version}} (Python {{python_version}})"
    return [
        stat(
            "Version",
            "Exporter version and Python version of each instance (onepin_exporter_build_info).",
            [target(T("onepin_exporter_build_info"), "A", version, instant=True)],
            field_config(colour_mode="fixed"),
            text_mode="name",
            graph=False,
            colour_mode="none",
        ),
        stat(
            "Uptime",
            "Time since each exporter process started (process_start_time_seconds).",
            [target(f"time() - {T('process_start_time_seconds')}", "A", "{{instance}}")],
            field_config("s", colour_mode="fixed"),
            graph=False,
            colour_mode="none",
        ),
    ]


# --- Polling -----------------------------------------------------------------------------------

DASHED = {"custom.lineStyle": {"dash": [10, 10], "fill": "dash"}, "custom.fillOpacity": 0}


def polling_graphs() -> list[Json]:
    per_minute = f"sum by (workspace) ({rate(W(promql.REQUESTS))}) * 60"
    return [
        timeseries(
            "Poll duration against the deadline",
            "Wall time of the last poll of each workspace (solid) and the deadline it had "
            "(dashed), derived from Prometheus's scrape timeout. A poll that reaches its "
            "deadline returns partial data.",
            [
                target(W("onepin_exporter_collect_duration_seconds"), "A", "poll {{workspace}}"),
                target(W("onepin_exporter_poll_deadline_seconds"), "B", "deadline {{workspace}}"),
            ],
            graph_fields("s", overrides=[by_regexp("^deadline .*", **DASHED)]),
        ),
        timeseries(
            "API requests per minute by workspace",
            "Requests the exporter sends to the OnePin API, per minute, to compare with the API "
            "key's rate_limit_per_min. Steady state is about one List Workflows page per 100 "
            "workflows plus one request per active run, per poll.",
            [target(per_minute, "A", "{{workspace}}")],
            field_config(
                colour_mode="palette-classic",
                custom=timeseries_custom(axis_label="requests / minute"),
            ),
        ),
    ]


# --- OnePin API --------------------------------------------------------------------------------


def request_graphs() -> list[Json]:
    by_code = f"sum by (endpoint, code) ({rate(W(promql.REQUESTS))})"
    limited = f"sum by (workspace, endpoint) ({rate(W(promql.REQUESTS, promql.RATE_LIMITED))})"
    return [
        timeseries(
            "API requests by endpoint and code",
            "Requests per second to the OnePin API by endpoint and HTTP status ('error' when no "
            "HTTP answer came back).",
            [target(by_code, "A", "{{endpoint}} {{code}}")],
            field_config(
                "reqps",
                colour_mode="palette-classic",
                custom=timeseries_custom(stacked=True),
                overrides=[
                    by_regexp(".* (5..|error)$", color=fixed_colour("red")),
                    by_regexp(".* 429$", color=fixed_colour("orange")),
                ],
            ),
        ),
        timeseries(
            "Rate-limited requests (429)",
            "Requests the API answered with 429 Too Many Requests, per second, by workspace and "
            "endpoint. The exporter honours Retry-After. Alert OnePinAPIRateLimited.",
            [target(limited, "A", "{{workspace}} {{endpoint}}")],
            field_config(
                "reqps",
                colour_mode="palette-classic",
                custom=timeseries_custom(bars=True),
                no_value="no 429 answers",
            ),
            links=variables.runbook("OnePinAPIRateLimited"),
        ),
    ]


def error_ratio() -> Json:
    failed = f"sum by (workspace) ({rate(W(promql.REQUESTS, promql.FAILED_REQUEST))})"
    total = f"sum by (workspace) ({rate(W(promql.REQUESTS))})"
    return timeseries(
        "API error ratio",
        "Share of requests per workspace that got a 5xx status or no HTTP answer. Alert "
        "OnePinAPIErrors fires above 10% for 15 minutes.",
        [target(f"({failed} or 0 * {total}) / {total}", "A", "{{workspace}}")],
        field_config(
            "percentunit",
            minimum=0,
            colour_mode="palette-classic",
            custom=timeseries_custom() | {"thresholdsStyle": {"mode": "line+area"}},
            steps=thresholds(("transparent", None), ("red", promql.API_ERROR_RATIO)),
        ),
        links=variables.runbook("OnePinAPIErrors"),
    )


def latency_graphs() -> list[Json]:
    buckets = rate(W("onepin_api_request_duration_seconds_bucket"))
    quantiles = [
        target(f"histogram_quantile({q}, sum by (le) ({buckets}))", ref, legend)
        for q, ref, legend in (("0.5", "A", "p50"), ("0.9", "B", "p90"), ("0.99", "C", "p99"))
    ]
    by_endpoint = f"histogram_quantile(0.9, sum by (endpoint, le) ({buckets}))"
    return [
        timeseries(
            "API latency quantiles",
            "Median, 90th and 99th percentile latency of all requests to the OnePin API "
            "(from the onepin_api_request_duration_seconds histogram).",
            quantiles,
            graph_fields("s"),
        ),
        timeseries(
            "API latency p90 by endpoint",
            "90th percentile latency of requests to the OnePin API, by endpoint.",
            [target(by_endpoint, "A", "{{endpoint}}")],
            graph_fields("s"),
        ),
    ]


# --- Exporter process --------------------------------------------------------------------------


def series_panels() -> list[Json]:
    any_onepin = promql.Scope((promql.matches("__name__", "onepin_.*"), *T.matchers))
    onepin_series = any_onepin("")
    return [
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
        timeseries(
            "Series exported over time",
            "Total onepin_ series per exporter instance. Sudden growth means many new runs or "
            "workflows; see the panel on the left for which metrics.",
            [target(f"count by (instance) ({onepin_series})", "A", "{{instance}}")],
            graph_fields(decimals=0),
        ),
    ]


def process_graphs() -> list[Json]:
    return [
        timeseries(
            "Resident memory",
            "Resident set size of each exporter process (process_resident_memory_bytes).",
            [target(T("process_resident_memory_bytes"), "A", "{{instance}}")],
            graph_fields("bytes"),
        ),
        timeseries(
            "CPU usage",
            "CPU used by each exporter process; 100% is one core (process_cpu_seconds_total).",
            [target(rate(T("process_cpu_seconds_total")), "A", "{{instance}}")],
            graph_fields("percentunit"),
        ),
        timeseries(
            "Open file descriptors",
            "Open file descriptors of each exporter process against its limit "
            "(process_open_fds, process_max_fds). Connections to the API use some.",
            [
                target(T("process_open_fds"), "A", "open {{instance}}"),
                target(T("process_max_fds"), "B", "limit {{instance}}"),
            ],
            graph_fields(decimals=0),
        ),
    ]


# --- the dashboard -----------------------------------------------------------------------------


def place(lay: Layout) -> None:
    lay.row("Health")
    for panel in [*up_stats(), *workflow_stats(), *process_stats()]:
        lay.add(panel, width=4, height=4)
    lay.row("Polling")
    for panel in polling_graphs():
        lay.add(panel, width=12, height=8)
    lay.row("OnePin API")
    for panel in [*request_graphs(), error_ratio(), *latency_graphs()]:
        lay.add(panel, width=12, height=8)
    lay.row("Exporter process")
    for panel in series_panels():
        lay.add(panel, width=12, height=10)
    for panel in process_graphs():
        lay.add(panel, width=8, height=8)


def build() -> Json:
    lay = Layout()
    place(lay)
    return dashboard(
        "onepin-exporter",
        "OnePin exporter",
        "Health of onepin-exporter: scrapes, polls against their deadline, use of the OnePin "
        "API (rate, errors, 429s, latency), series counts and the process.",
        variables.common_variables(),
        lay,
        variables.dashboard_links(),
    )
