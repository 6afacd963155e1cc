"""The Grafana dashboards: generated, valid Grafana 11 models, and queries that parse and only use
metrics the exporter emits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.family import Family
from exporter.metrics import HEALTH_FAMILIES, WORKFLOW_FAMILIES
from exporter.reload import ReloadCollector, ReloadStatus
from monitoring import outputs
from monitoring.__main__ import main as generate
from tests.contract import CONTRACT_METRICS
from tests.dashboard_queries import (
    DASHBOARD_DIR,
    REPO,
    PromQLScanError,
    dashboard_queries,
    iter_panels,
    load_dashboards,
    panel_queries,
    require_binary,
    scan,
    substitute,
    unknown_metrics,
    variable_selectors,
)

PROVISIONING = REPO / "grafana" / "provisioning"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPECTED = {
    "onepin-workflows.json": ("onepin-workflows", "OnePin workflows"),
    "onepin-exporter.json": ("onepin-exporter", "OnePin exporter"),
}

DASHBOARDS = load_dashboards()


def non_row_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in iter_panels(model["panels"]) if p["type"] != "row"]


# --- generated and committed -------------------------------------------------------------------


def test_committed_files_are_the_generator_output() -> None:
    """The dashboards, alerts.yml and the PrometheusRule are what `python -m monitoring` writes."""
    rendered = outputs.rendered()
    assert sorted(p.name for p in rendered if p.parent == outputs.DASHBOARD_DIR) == sorted(EXPECTED)
    assert {outputs.ALERTS, outputs.PROMETHEUS_RULE} <= set(rendered)
    for path, text in rendered.items():
        committed = (REPO / path).read_text(encoding="utf-8")
        assert committed == text, f"{path} is stale: run `python -m monitoring`"


def test_generator_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    assert generate(["--out", str(tmp_path)]) == 0
    assert generate(["--check", "--out", str(tmp_path)]) == 0
    for path in (outputs.DASHBOARD_DIR / "onepin-exporter.json", outputs.ALERTS):
        original = (tmp_path / path).read_text(encoding="utf-8")
        (tmp_path / path).write_text(original.replace("onepin", "other"), encoding="utf-8")
        assert generate(["--check", "--out", str(tmp_path)]) == 1, path
        (tmp_path / path).write_text(original, encoding="utf-8")
    (tmp_path / outputs.PROMETHEUS_RULE).unlink()
    assert generate(["--check", "--out", str(tmp_path)]) == 1


def test_generator_check_mode_passes_on_the_repository() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitoring", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""


# --- the JSON model ----------------------------------------------------------------------------


def test_dashboard_files_titles_and_uids() -> None:
    assert sorted(DASHBOARDS) == sorted(EXPECTED)
    for name, (uid, title) in EXPECTED.items():
        model = DASHBOARDS[name]
        assert model["uid"] == uid
        assert model["title"] == title
        assert len(uid) <= 40, "Grafana limits uids to 40 characters"
        assert model["id"] is None, "provisioned dashboards must not carry a database id"
    assert len({m["uid"] for m in DASHBOARDS.values()}) == len(DASHBOARDS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_grafana_11_model(name: str) -> None:
    model = DASHBOARDS[name]
    assert model["schemaVersion"] >= 39
    assert "onepin" in model["tags"]
    assert model["description"]
    panels = list(iter_panels(model["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), f"duplicate panel titles in {name}"
    for row in (p for p in panels if p["type"] == "row"):
        assert row["collapsed"] is False and row["panels"] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_panels_fit_the_grid_without_overlapping(name: str) -> None:
    occupied: dict[tuple[int, int], str] = {}
    for panel in iter_panels(DASHBOARDS[name]["panels"]):
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in occupied, f"{panel['title']} overlaps {occupied[(x, y)]}"
                occupied[(x, y)] = panel["title"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_panel_has_a_description_and_uses_the_datasource_variable(name: str) -> None:
    model = DASHBOARDS[name]
    for panel in non_row_panels(model):
        title = panel["title"]
        assert title, "panel without title"
        assert len(panel.get("description", "")) > 20, f"{title}: no description"
        assert panel["datasource"] == DATASOURCE, title
        assert panel["targets"], f"{title}: no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), f"{title}: duplicate refIds"
        for tgt in panel["targets"]:
            assert tgt["datasource"] == DATASOURCE, f"{title} {tgt['refId']}"
    for variable in model["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variables(name: str) -> None:
    variables = {v["name"]: v for v in DASHBOARDS[name]["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource" and datasource["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["multi"] and variable["includeAll"]
            assert variable["allValue"] == ".*"
            assert variable["definition"].startswith(("label_values(", "query_result("))
    expected = {"datasource", "job", "instance", "workspace"}
    if name == "onepin-workflows.json":
        expected |= {"workflow", "app_url"}
    assert set(variables) == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_panel_has_a_unit(name: str) -> None:
    for panel in non_row_panels(DASHBOARDS[name]):
        if panel["type"] == "heatmap":
            assert panel["options"]["yAxis"]["unit"] == "s"
        else:
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


def test_merged_tables_join_their_queries_into_rows() -> None:
    """Grafana's merge joins rows only where shared columns agree: every query of a merged table
    must yield the same label columns (no __name__, job or instance), plus `status` at most."""
    tables = [
        p
        for model in DASHBOARDS.values()
        for p in non_row_panels(model)
        if any(t["id"] == "merge" for t in p.get("transformations", []))
    ]
    assert len(tables) >= 3
    for panel in tables:
        keys = set()
        for tgt in panel["targets"]:
            assert tgt["instant"] and tgt["format"] == "table", panel["title"]
            match = re.match(
                r"^(?:histogram_quantile\([0-9.]+, )?(?:max|sum) by \(([^)]*)\)", tgt["expr"]
            )
            assert match, f"{panel['title']} {tgt['refId']}: not aggregated by its row labels"
            keys.add(
                # status and node_name: label columns of a state set and an info gauge.
                frozenset(label.strip() for label in match.group(1).split(","))
                - {"status", "le", "node_name"}
            )
        assert len(keys) == 1, f"{panel['title']}: queries disagree on row labels: {keys}"


def test_range_vectors_use_grafana_intervals() -> None:
    """Rates follow the zoom level: [$__rate_interval] in graphs, [$__range] in range totals."""
    for query in panel_queries():
        for window in re.findall(r"\[([^\]]*)\]", query.raw_expr):
            allowed = ("$__range",) if query.instant else ("$__rate_interval",)
            assert window in allowed, f"{query.panel}: [{window}] in {query.raw_expr}"


def test_workflows_dashboard_shows_what_the_issue_asks_for() -> None:
    panels = {p["title"]: p for p in non_row_panels(DASHBOARDS["onepin-workflows.json"])}
    for title in ("Active runs", "Runs finished", "Runs failed", "Pass ratio", "Tokens spent"):
        assert title in panels
    assert panels["Pass ratio"]["fieldConfig"]["defaults"]["unit"] == "percentunit"

    active = panels["Runs in progress"]
    assert active["type"] == "table"
    overrides = {o["matcher"]["options"]: o for o in active["fieldConfig"]["overrides"]}
    progress = {p["id"]: p["value"] for p in overrides["Progress"]["properties"]}
    assert progress["custom.cellOptions"]["type"] == "gauge"
    assert progress["unit"] == "percentunit" and progress["max"] == 1
    renames = active["transformations"][1]["options"]["renameByName"]
    assert {"Status", "Progress", "Running for", "Token cost"} <= set(renames.values())

    latest = panels["Latest run of each workflow"]
    status = {o["matcher"]["options"]: o for o in latest["fieldConfig"]["overrides"]}["Status"]
    props = {p["id"]: p["value"] for p in status["properties"]}
    assert props["custom.cellOptions"]["type"] == "color-background"
    colours = props["mappings"][0]["options"]
    assert colours["failed"]["color"] == "red" and colours["completed"]["color"] == "green"

    kinds = {p["type"] for p in panels.values()}
    assert {"heatmap", "state-timeline", "table", "stat", "timeseries"} <= kinds
    exprs = " ".join(t["expr"] for p in panels.values() for t in p["targets"])
    for metric in (
        "onepin_workflow_run_duration_seconds_bucket",
        "onepin_workflow_run_token_cost_total",
        "onepin_workflow_run_cpu_seconds_total",
        'status="failed"',
    ):
        assert metric in exprs


def test_workflows_dashboard_shows_node_durations_and_the_failed_node() -> None:
    panels = {p["title"]: p for p in non_row_panels(DASHBOARDS["onepin-workflows.json"])}
    heat = panels["Node duration distribution"]
    assert heat["type"] == "heatmap"
    assert "onepin_workflow_node_duration_seconds_bucket" in heat["targets"][0]["expr"]
    p95 = panels["Node duration p95 by node type"]["targets"][0]
    assert p95["expr"].startswith("histogram_quantile(0.95, sum by (node_type, le)")
    assert p95["legendFormat"] == "{{node_type}}"
    latest = panels["Latest run of each workflow"]
    failed = [t for t in latest["targets"] if "last_failure_node_info" in t["expr"]]
    assert len(failed) == 1 and "node_name" in failed[0]["expr"]
    organize = latest["transformations"][1]["options"]
    assert organize["renameByName"]["node_name"] == "Failed at node"
    assert organize["excludeByName"]["Value #" + failed[0]["refId"]]


def test_workflows_dashboard_shows_pauses_audio_and_the_last_success() -> None:
    """Issue 16: paused runs by reason, delivered audio per workflow; issue 12: time since the
    last success."""
    panels = {p["title"]: p for p in non_row_panels(DASHBOARDS["onepin-workflows.json"])}
    by_reason = panels["Paused runs by reason"]["targets"][0]
    assert by_reason["expr"].startswith("count by (reason) (onepin_run_pause_reason{")
    assert by_reason["expr"].endswith("} == 1)") and by_reason["legendFormat"] == "{{reason}}"
    paused = panels["Paused time of paused runs"]
    assert "onepin_run_paused_seconds{" in paused["targets"][0]["expr"]
    assert paused["fieldConfig"]["defaults"]["unit"] == "s"
    audio = panels["Delivered audio by workflow"]["targets"][0]["expr"]
    assert audio.startswith("sum by (workspace, workflow_id, workflow_name) (rate(")
    assert "onepin_workflow_run_delivered_audio_seconds_total{" in audio
    since = panels["Time since last success"]
    assert since["targets"][0]["instant"]
    assert "time() - onepin_workflow_last_success_timestamp_seconds{" in since["targets"][0]["expr"]
    defaults = since["fieldConfig"]["defaults"]
    assert defaults["unit"] == "s"
    # Orange at a day: the threshold of OnePinWorkflowNoRecentSuccess.
    assert defaults["thresholds"]["steps"][1] == {"color": "orange", "value": 86400}


def test_exporter_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(e for d, _, e in dashboard_queries() if d == "OnePin exporter")
    for needle in (
        "onepin_up",
        "onepin_exporter_collect_duration_seconds",
        "onepin_exporter_poll_deadline_seconds",
        "onepin_api_requests_total",
        'code="429"',
        "histogram_quantile(0.99, sum by (le) (rate(onepin_api_request_duration_seconds_bucket",
        'count by (__name__) ({__name__=~"onepin_.*"',
        "process_resident_memory_bytes",
    ):
        assert needle in exprs


# --- the queries -------------------------------------------------------------------------------


def test_substitution() -> None:
    variables = {"workspace", "workflow"}
    assert (
        substitute(
            'rate(x{workspace=~"$workspace", w=~"${workflow}"}[$__rate_interval])', variables
        )
        == 'rate(x{workspace=~".*", w=~".*"}[1m])'
    )
    assert substitute("increase(x[$__range]) / $__interval", variables) == "increase(x[1h]) / 1m"
    with pytest.raises(KeyError):
        substitute('x{a=~"$nope"}', variables)


def test_every_query_is_listed_with_its_panel() -> None:
    queries = dashboard_queries()
    assert len(queries) >= 40
    for dashboard, panel, expr in queries:
        assert dashboard in {"OnePin workflows", "OnePin exporter"}
        assert panel
        assert "$" not in expr, f"{panel}: unsubstituted variable in {expr}"


def test_queries_parse_with_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    queries = dashboard_queries()
    selectors = variable_selectors()
    exprs = [expr for _, _, expr in queries] + [selector for _, _, selector in selectors]
    where = [f"{d} / {p}" for d, p, _ in queries] + [f"{d} / ${v}" for d, v, _ in selectors]
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard_query_{i}", "expr": expr} for i, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    index = "\n".join(f"  dashboard_query_{i}: {w}" for i, w in enumerate(where))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\nrules:\n{index}"
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_queries_use_only_metrics_the_exporter_emits() -> None:
    problems = [
        f"{dashboard} / {panel}: {bad}"
        for dashboard, panel, expr in dashboard_queries()
        if (bad := unknown_metrics(expr))
    ]
    problems += [
        f"{dashboard} / ${variable}: {bad}"
        for dashboard, variable, selector in variable_selectors()
        if (bad := unknown_metrics(selector))
    ]
    assert problems == []


def samples_of(family: Family) -> set[str]:
    if family.type == "histogram":
        return {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
    return {family.sample}


def test_every_onepin_metric_an_alert_or_panel_uses_is_one_the_exporter_defines() -> None:
    """The contract list (tests/contract.py) is written by hand: a name in it that the exporter
    does not define (planned, renamed, a typo in both) would let an alert or a panel that uses
    it pass the checks above and stay silent forever. Checked against the collector's families
    and the reload gauges themselves."""
    defined = {name for f in (*HEALTH_FAMILIES, *WORKFLOW_FAMILIES) for name in samples_of(f)}
    defined |= {m.name for m in ReloadCollector(ReloadStatus()).collect()}
    alerts = yaml.safe_load((REPO / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in alerts["groups"] for r in g["rules"]]
    exprs += [expr for _, _, expr in dashboard_queries()]
    used = frozenset().union(*(scan(expr).names for expr in exprs))
    onepin = {name for name in used if name.startswith("onepin_")}
    assert "onepin_workflow_last_success_timestamp_seconds" in onepin  # the scan found them
    assert sorted(onepin - defined) == [], "used, but the exporter does not define them"
    assert sorted(onepin - CONTRACT_METRICS) == [], "used, but not in the contract"


def test_every_query_selects_some_onepin_or_process_metric() -> None:
    for _, panel, expr in dashboard_queries():
        found = scan(expr)
        assert found.names or found.name_matchers, f"{panel}: selects nothing: {expr}"


# --- the scanner the checks above rely on ------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.9, sum by (le, endpoint) (rate(a_bucket{code=~"5.."}[5m])))',
            {"a_bucket"},
        ),
        ("sum(rate(x[1m])) by (job) / on (job) group_left (v) y offset 1h", {"x", "y"}),
        ("max_over_time(increase(x[1h])[7d:1h] offset 1h) > 0 and x @ start()", {"x"}),
        ("time() - created # a comment mentioning not_a_metric\n > 900", {"created"}),
        ('count by (__name__) ({__name__=~"onepin_.*", job="j"})', set()),
        ('label_replace(up, "a", "$1", "b", "(.*)") == bool 1 unless nan', {"up"}),
    ],
)
def test_scanner_finds_metric_names(expr: str, names: set[str]) -> None:
    assert scan(expr).names == names


def test_scanner_lists_each_selector_with_its_matchers() -> None:
    expr = (
        'sum by (le) (rate(a_bucket{job=~"$job", code=~"5.."}[5m])) / b offset 1h'
        ' and on (job) {__name__=~"onepin_.*", instance="x"}'
    )
    assert scan(expr).selectors == (
        ("a_bucket", frozenset({'job=~"$job"', 'code=~"5.."'})),
        ("b", frozenset()),
        ("", frozenset({'__name__=~"onepin_.*"', 'instance="x"'})),
    )


def test_scanner_flags_unknown_names_and_functions() -> None:
    assert unknown_metrics("rate(onepin_api_requests_total[1m]) / onepin_api_request") == [
        "onepin_api_request"
    ]
    assert unknown_metrics('{__name__=~"node_.*"}') == ["__name__=~'node_.*'"]
    assert unknown_metrics('{__name__=~"onepin_.*"} + process_open_fds + up') == []
    with pytest.raises(PromQLScanError):
        scan("rates(onepin_up[1m])")


# --- provisioning ------------------------------------------------------------------------------


def test_provisioning_files() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    (prometheus,) = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    # $__rate_interval is only right if Grafana knows the scrape interval.
    assert prometheus["jsonData"]["timeInterval"] == "30s"

    providers = yaml.safe_load((PROVISIONING / "dashboards" / "onepin.yml").read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]


def test_dashboards_are_plain_json_objects() -> None:
    for path in DASHBOARD_DIR.glob("*.json"):
        model = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(model, dict)
        # Provisioned as files: the Grafana export wrapper must not be there.
        assert "__inputs" not in model and "dashboard" not in model
