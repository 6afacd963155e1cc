"""What the dashboards link to and filter by (issue 12): every query follows the job, instance
(and workspace, workflow) variables, the workflow variable picks an id and shows a name, runs and
workflows link to the OnePin app, panels about an alert link to its runbook section, and the
cross-dashboard links carry the variables and the time range."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import links
from tests.dashboard_queries import (
    BUILTIN_VARIABLES,
    iter_panels,
    load_dashboards,
    panel_queries,
    scan,
)
from tests.test_rules import ALERT_RULES, runbook_anchors

DASHBOARDS = load_dashboards()
WORKFLOWS = DASHBOARDS["onepin-workflows.json"]
APP_URL = "${app_url}"
TARGET = frozenset({'job=~"$job"', 'instance=~"$instance"'})
WORKFLOW = TARGET | {'workspace=~"$workspace"', 'workflow_id=~"$workflow"'}
PROCESS = ("up", "process_")  # the exporter's own series: no workspace, no workflow


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(model["panels"]) if p["type"] != "row"]


def with_intervals(expr: str) -> str:
    """The query with Grafana's interval variables filled in, dashboard variables left as they
    are (inside the label matchers' strings, where the scanner keeps them)."""
    return re.sub(r"\$(__\w+)", lambda m: BUILTIN_VARIABLES[m.group(1)], expr)


# --- every query follows the variables ---------------------------------------------------------


@pytest.mark.parametrize("query", panel_queries(), ids=lambda q: f"{q.panel}/{q.ref_id}")
def test_every_selector_of_a_panel_follows_the_job_and_instance_variables(query: Any) -> None:
    selectors = scan(with_intervals(query.raw_expr)).selectors
    assert selectors, query.raw_expr
    for metric, matchers in selectors:
        assert matchers >= TARGET, f"{query.panel}: {metric} ignores $job or $instance"
        if query.dashboard == "OnePin workflows":
            assert matchers >= WORKFLOW, f"{query.panel}: {metric} ignores a variable"
        elif not metric.startswith(PROCESS) and metric not in ("", "onepin_exporter_build_info"):
            assert 'workspace=~"$workspace"' in matchers, f"{query.panel}: {metric}"


def test_the_variables_of_both_dashboards_are_the_same() -> None:
    """The cross-dashboard link carries job, instance and workspace: both define them alike."""
    common = ("datasource", "job", "instance", "workspace")
    defined = [
        {v["name"]: v for v in model["templating"]["list"] if v["name"] in common}
        for model in DASHBOARDS.values()
    ]
    assert all(set(d) == set(common) for d in defined)
    assert defined[0] == defined[1]


def test_the_workflow_variable_picks_the_id_and_shows_the_name() -> None:
    variable = {v["name"]: v for v in WORKFLOWS["templating"]["list"]}["workflow"]
    assert variable["definition"].startswith("query_result(max by (workflow_id, workflow_name) (")
    assert "onepin_workflow_info{" in variable["definition"]
    # Grafana's query_result() text of one series (labels sorted by name), and the JavaScript
    # regex's named groups in Python's spelling.
    line = '{workflow_id="3fa85f64-5717",workflow_name="nightly "etl", v2"} 1 1700000000000'
    pattern = variable["regex"].strip("/").replace("(?<", "(?P<")
    match = re.search(pattern, line)
    assert match is not None
    assert match.group("value") == "3fa85f64-5717"
    assert match.group("text") == 'nightly "etl", v2'


# --- links -------------------------------------------------------------------------------------


def data_links(panel: dict[str, Any]) -> list[dict[str, Any]]:
    """The panel's data links: on its fields, and on its columns (overrides)."""
    config = panel["fieldConfig"]
    found = list(config["defaults"].get("links", []))
    for override in config["overrides"]:
        for prop in override["properties"]:
            if prop["id"] == "links":
                found += prop["value"]
    return found


APP_LINK = re.compile(
    r"^\$\{app_url\}/workflows/\$\{__(?P<kind>field\.labels|data\.fields)\.workflow_id\}"
    r"(?:/runs/\$\{__(?P=kind)\.run_id\})?$"
)


def test_runs_and_workflows_link_to_the_onepin_app() -> None:
    linked = {p["title"]: data_links(p) for p in panels(WORKFLOWS) if data_links(p)}
    for title in (
        "Runs in progress",
        "Progress of active runs",
        "Latest run of each workflow",
        "Failures by workflow",
        "Time since last success",
        "Paused time of paused runs",
    ):
        assert title in linked, f"{title}: no link to the OnePin app"
    assert len(linked) >= 10
    for title, found in linked.items():
        for item in found:
            assert APP_LINK.match(item["url"]), f"{title}: {item['url']}"
            assert item["targetBlank"] and item["title"].startswith("Open the ")
    constant = {v["name"]: v for v in WORKFLOWS["templating"]["list"]}["app_url"]
    assert constant["type"] == "constant" and constant["query"] == links.APP_URL
    assert re.fullmatch(r"https://[a-z0-9.-]+", constant["query"])


def test_each_linked_label_is_kept_by_the_queries() -> None:
    """A link reads a series' label (or a row's column): every query of the panel keeps it."""
    for panel in panels(WORKFLOWS):
        used = {
            label
            for item in data_links(panel)
            for label in re.findall(r"\$\{__(?:field\.labels|data\.fields)\.(\w+)\}", item["url"])
        }
        for tgt in panel["targets"] if used else ():
            aggregated = re.findall(r"\b(?:by|without) \(([^)]*)\)", tgt["expr"])
            for labels in aggregated:
                kept = {label.strip() for label in labels.split(",")}
                assert used <= kept or labels == "le", f"{panel['title']}: {used} - {kept}"


def test_hidden_id_columns_stay_in_the_tables_for_their_links() -> None:
    for panel in panels(WORKFLOWS):
        if panel["type"] != "table" or not data_links(panel):
            continue
        organize = panel["transformations"][1]["options"]
        assert "workflow_id" not in organize["excludeByName"], panel["title"]
        hidden = [
            o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "workflow_id"
        ]
        assert hidden and hidden[0]["properties"] == [{"id": "custom.hidden", "value": True}]


def test_panels_about_an_alert_link_to_its_runbook_section() -> None:
    anchors = runbook_anchors()
    named = 0
    for model in DASHBOARDS.values():
        for panel in panels(model):
            mentioned = set(re.findall(r"\bOnePin[A-Z]\w+", panel["description"]))
            runbooks = {
                item["title"].removeprefix("Runbook: "): item["url"]
                for item in panel.get("links", [])
            }
            assert set(runbooks) == mentioned, panel["title"]
            for alert, url in runbooks.items():
                assert alert in ALERT_RULES
                assert url == ALERT_RULES[alert]["annotations"]["runbook_url"]
                assert url.split("#")[1] in anchors
            named += len(mentioned)
    assert named >= 10


def test_dashboard_links_carry_variables_and_time_and_reach_the_runbook() -> None:
    for model in DASHBOARDS.values():
        (others,) = [link for link in model["links"] if link["type"] == "dashboards"]
        assert others["includeVars"] and others["keepTime"] and others["tags"] == ["onepin"]
        runbook = {link["title"]: link for link in model["links"]}["Runbook"]
        assert runbook["url"] == links.repository() + "/blob/main/docs/runbook.md"
    assert {link["url"] for link in WORKFLOWS["links"]} >= {APP_URL, links.runbook()}


@pytest.mark.parametrize(
    "path",
    ["grafana/provisioning/datasources/prometheus.yml", "deploy/compose/grafana-datasources.yml"],
)
def test_a_duration_exemplar_links_to_its_run_in_the_onepin_app(path: str) -> None:
    (heatmap,) = (p for p in panels(WORKFLOWS) if p["title"] == "Run duration distribution")
    assert all(t.get("exemplar") is True for t in heatmap["targets"])
    (source,) = yaml.safe_load((links.REPO / Path(path)).read_text())["datasources"]
    (destination,) = source["jsonData"]["exemplarTraceIdDestinations"]
    assert destination["name"] == "run_id"  # the exemplar label the exporter writes
    run = links.app_run(links.APP_URL, "${__data.fields.workflow_id}", "${__value.raw}")
    assert destination["url"] == run
