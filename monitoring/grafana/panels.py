"""Grafana panels and their Prometheus queries. Each function returns one panel as a dict; its
size and place come from grafana/layout.py."""

from __future__ import annotations

from typing import Any

from monitoring.grafana.fields import Json

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}


def target(
    expr: str,
    ref: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    fmt: str = "time_series",
    exemplar: bool = False,
) -> Json:
    """A Prometheus query of a panel; with `exemplar`, it also asks for the exemplars of the
    series it reads (Prometheus with exemplar storage)."""
    query = {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }
    return query | {"exemplar": True} if exemplar else query


def refs(*exprs: str, instant: bool = False, fmt: str = "time_series") -> list[Json]:
    """Queries A, B, C... of a panel, one per expression, with Grafana's automatic legend."""
    return [
        target(expr, chr(ord("A") + index), instant=instant, fmt=fmt)
        for index, expr in enumerate(exprs)
    ]


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    fields: Json,
    options: Json,
    *,
    links: list[Json] | None = None,
    **extra: Any,
) -> Json:
    """Any panel: the keys every panel has, then panel links (shown in its header), then extra."""
    body: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": fields,
    }
    if links:
        body["links"] = links
    return body | {"options": options, "targets": targets} | extra


def stat_options(*, text_mode: str, graph: bool, colour_mode: str) -> Json:
    return {
        "colorMode": colour_mode,
        "graphMode": "area" if graph else "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "percentChangeColorMode": "standard",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showPercentChange": False,
        "textMode": text_mode,
        "wideLayout": True,
    }


def timeseries_options(legend_calcs: tuple[str, ...]) -> Json:
    return {
        "legend": {
            "calcs": list(legend_calcs),
            "displayMode": "table",
            "placement": "bottom",
            "showLegend": True,
        },
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


BARGAUGE_OPTIONS: Json = {
    "displayMode": "basic",
    "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": False},
    "maxVizHeight": 300,
    "minVizHeight": 16,
    "minVizWidth": 8,
    "namePlacement": "left",
    "orientation": "horizontal",
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    "showUnfilled": True,
    "sizing": "auto",
    "valueMode": "color",
}


def table_options(sort_by: str, descending: bool) -> Json:
    return {
        "cellHeight": "sm",
        "footer": {"countRows": False, "reducer": ["sum"], "show": False},
        "frameIndex": 0,
        "showHeader": True,
        "sortBy": [{"desc": descending, "displayName": sort_by}],
    }


def merge_and_organize(
    hidden: tuple[str, ...], renames: dict[str, str], order: tuple[str, ...]
) -> list[Json]:
    """A table joining instant queries on their common labels (merge), then tidied (organize)."""
    return [
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
    ]


def table_targets(key: tuple[str, ...], status: str, *values: str) -> list[Json]:
    """Instant queries of a merged table: query A gives the `status` column (its value is
    hidden), the others one value column each. Each is aggregated `by` the same key labels, so
    that no `__name__`, `job` or `instance` column keeps the merge from joining rows."""
    labels = ", ".join(key)
    exprs = [f"max by ({labels}, status) ({status})"]
    exprs += [f"max by ({labels}) ({value})" for value in values]
    return refs(*exprs, instant=True, fmt="table")


# --- the kinds of panel the dashboards use ---------------------------------------------------


def stat(
    title: str,
    description: str,
    targets: list[Json],
    fields: Json,
    *,
    text_mode: str = "auto",
    graph: bool = True,
    colour_mode: str = "value",
    links: list[Json] | None = None,
) -> Json:
    options = stat_options(text_mode=text_mode, graph=graph, colour_mode=colour_mode)
    return panel("stat", title, description, targets, fields, options, links=links)


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    fields: Json,
    *,
    legend_calcs: tuple[str, ...] = ("lastNotNull", "max"),
    links: list[Json] | None = None,
) -> Json:
    options = timeseries_options(legend_calcs)
    return panel("timeseries", title, description, targets, fields, options, links=links)


def bargauge(
    title: str,
    description: str,
    targets: list[Json],
    fields: Json,
    *,
    links: list[Json] | None = None,
) -> Json:
    """Horizontal bars, one per series, named on the left (for lists sorted by value)."""
    return panel("bargauge", title, description, targets, fields, BARGAUGE_OPTIONS, links=links)


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
    links: list[Json] | None = None,
) -> Json:
    """A table joining instant queries on their common labels, tidied and sorted."""
    options = table_options(sort_by, descending)
    transformations = merge_and_organize(hidden, renames, order)
    return panel(
        "table",
        title,
        description,
        targets,
        fields,
        options,
        links=links,
        transformations=transformations,
    )


def state_timeline(
    title: str, description: str, targets: list[Json], fields: Json, *, row_height: float = 0.9
) -> Json:
    options = {
        "alignValue": "left",
        "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
        "mergeValues": True,
        "rowHeight": row_height,
        "showValue": "never",
        "tooltip": {"mode": "single", "sort": "none"},
    }
    return panel("state-timeline", title, description, targets, fields, options)


STATE_TIMELINE_CUSTOM: Json = {
    "fillOpacity": 80,
    "hideFrom": {"legend": False, "tooltip": False, "viz": False},
    "insertNulls": False,
    "lineWidth": 0,
    "spanNulls": False,
}

HEATMAP_FIELDS: Json = {
    "defaults": {
        "custom": {
            "hideFrom": {"legend": False, "tooltip": False, "viz": False},
            "scaleDistribution": {"type": "linear"},
        }
    },
    "overrides": [],
}


def heatmap(title: str, description: str, targets: list[Json], *, unit: str, value: str) -> Json:
    """Buckets of a Prometheus histogram (format heatmap), in orange shades."""
    options = {
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
        "rowsFrame": {"layout": "auto", "value": value},
        "showValue": "never",
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": True},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": unit},
    }
    return panel("heatmap", title, description, targets, HEATMAP_FIELDS, options)


def bucket_heatmap(
    title: str, description: str, buckets: str, value: str, *, exemplar: bool = False
) -> Json:
    """A heatmap of a duration histogram's `buckets` selector: per window, how many
    observations fell in each bucket (with `exemplar`, and the exemplars of its buckets)."""
    expr = f"sum by (le) (increase({buckets}[$__rate_interval]))"
    query = target(expr, "A", "{{le}}", fmt="heatmap", exemplar=exemplar)
    return heatmap(title, description, [query], unit="s", value=value)
