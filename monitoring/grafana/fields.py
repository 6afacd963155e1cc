"""Field options of Grafana panels: units, thresholds, value mappings, overrides, links."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]

# Colours of run statuses, shared by every panel that shows one.
STATUS_COLOURS = {
    "pending": "yellow",
    "running": "blue",
    "paused": "orange",
    "completed": "green",
    "failed": "red",
    "cancelled": "text",
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


def link(title: str, url: str) -> Json:
    """A data link or panel link, opened in a new tab."""
    return {"targetBlank": True, "title": title, "url": url}


def override(matcher: Json, **properties: Any) -> Json:
    return {
        "matcher": matcher,
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def by_name(name: str, **properties: Any) -> Json:
    return override({"id": "byName", "options": name}, **properties)


def by_regexp(pattern: str, **properties: Any) -> Json:
    return override({"id": "byRegexp", "options": pattern}, **properties)


def fixed_colour(colour: str) -> Json:
    return {"fixedColor": colour, "mode": "fixed"}


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
    links: list[Json] | None = None,
) -> Json:
    defaults: Json = {
        "color": {"mode": colour_mode},
        "mappings": mappings or [],
        "thresholds": steps or thresholds(("green", None)),
        "unit": unit,
    }
    optional = {
        "decimals": decimals,
        "min": minimum,
        "max": maximum,
        "custom": custom,
        "noValue": no_value,
        "links": links,
    }
    defaults |= {key: value for key, value in optional.items() if value is not None}
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
    return by_name(name, mappings=STATUS_MAPPINGS, **{"custom.cellOptions": {"type": cell}})
