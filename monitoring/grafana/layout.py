"""Dashboards: where panels go on the grid, the template variables and the dashboard itself."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitoring.grafana.fields import Json
from monitoring.grafana.panels import DATASOURCE

SCHEMA_VERSION = 39
GRID_WIDTH = 24
TAG = "onepin"


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

    def add(self, panel: Json, *, width: int, height: int) -> None:
        if self.x + width > GRID_WIDTH:
            self._newline()
        panel = {"id": len(self.panels) + 1, **panel}
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += width
        self.line_height = max(self.line_height, height)


# --- template variables ------------------------------------------------------------------------

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


def query_variable(name: str, definition: str, *, label: str = "", regex: str = "") -> Json:
    """A multi-value variable (with All, as `.*`) from a Prometheus variable query, refreshed
    when the time range changes."""
    return {
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DATASOURCE,
        "definition": definition,
        "hide": 0,
        "includeAll": True,
        "label": label or name.capitalize(),
        "multi": True,
        "name": name,
        "options": [],
        "query": {"query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "regex": regex,
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def label_values_variable(name: str, label: str, selector: str) -> Json:
    """The values of one label of the series a selector finds."""
    return query_variable(name, f"label_values({selector}, {label})")


def constant_variable(name: str, value: str, label: str) -> Json:
    """A hidden constant: set it once when provisioning, every panel link can use it. It stays
    out of URLs, so the cross-dashboard links do not carry it."""
    return {
        "hide": 2,
        "label": label,
        "name": name,
        "query": value,
        "skipUrlSync": True,
        "type": "constant",
    }


# --- the dashboard -----------------------------------------------------------------------------

BUILT_IN_ANNOTATIONS: Json = {
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
}


def dashboards_link(*, include_vars: bool) -> Json:
    """A drop-down of the other OnePin dashboards, keeping the time range (and the variables)."""
    return {
        "asDropdown": False,
        "icon": "external link",
        "includeVars": include_vars,
        "keepTime": True,
        "tags": [TAG],
        "targetBlank": False,
        "title": "OnePin dashboards",
        "tooltip": "",
        "type": "dashboards",
        "url": "",
    }


def url_link(title: str, url: str, *, icon: str = "external link", tooltip: str = "") -> Json:
    """A link in the dashboard's header, opened in a new tab."""
    return {
        "asDropdown": False,
        "icon": icon,
        "includeVars": False,
        "keepTime": False,
        "tags": [],
        "targetBlank": True,
        "title": title,
        "tooltip": tooltip,
        "type": "link",
        "url": url,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[Json],
    layout: Layout,
    links: list[Json],
) -> Json:
    return {
        "annotations": BUILT_IN_ANNOTATIONS,
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": links,
        "panels": layout.panels,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": [TAG],
        "templating": {"list": variables},
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }
