"""The Prometheus alert rules: promtool accepts and unit-tests them, every alert has a runbook
section and firing and non-firing test cases, and the example configs are valid."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import rules, rules_file
from tests.dashboard_queries import REPO, require_binary, scan, unknown_metrics

PROMETHEUS_DIR = REPO / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
RECORDING = PROMETHEUS_DIR / "recording.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"
OVERVIEW = REPO / "docs" / "dashboards-and-alerts.md"
RUNBOOK_URL = "https://github.com/onepin/onepin-exporter/blob/main/docs/runbook.md#"
JOB_MATCHER = 'job=~".*onepin.*"'
SEVERITIES = {"critical", "warning", "info"}
EXPECTED_ALERTS = {
    "OnePinExporterDown",
    "OnePinAPIDown",
    "OnePinAPIRateLimited",
    "OnePinAPIErrors",
    "OnePinWorkflowDataStale",
    "OnePinRunFailed",
    "OnePinRunStalled",
    "OnePinRunTooLong",
    "OnePinRunPendingTooLong",
    "OnePinRunPausedByProvider",
    "OnePinWorkflowPassRatioLow",
    "OnePinWorkflowNoRecentSuccess",
    "OnePinScheduledRunMissed",
    "OnePinTokenSpendHigh",
}


def rule_files() -> list[Path]:
    return [ALERTS, *([RECORDING] if RECORDING.exists() else [])]


def load_alerts() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    alerts: dict[str, dict[str, Any]] = {}
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["alert"] not in alerts, f"duplicate alert {rule['alert']}"
                alerts[rule["alert"]] = rule
    return alerts


ALERT_RULES = load_alerts()


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    anchor = heading.strip().lower()
    anchor = re.sub(r"[^\w\- ]", "", anchor)
    return anchor.replace(" ", "-")


def runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return {github_anchor(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, cwd=REPO)


# --- promtool ----------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run(promtool, "check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERT_RULES)} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    promtool = require_binary("promtool", "prometheus")
    assert RULE_TESTS, "no rule unit tests in prometheus/tests/"
    # The files side by side, one promtool each: two of them take ~13 s of promtool's time.
    with ThreadPoolExecutor() as pool:
        results = pool.map(lambda path: run(promtool, "test", "rules", str(path)), RULE_TESTS)
        for path, result in zip(RULE_TESTS, results, strict=True):
            assert result.returncode == 0, f"{path.name}:\n{result.stdout}{result.stderr}"
            assert result.stdout.count("SUCCESS") == 1, f"{path.name}:\n{result.stdout}"


def test_example_prometheus_config_is_valid_and_loads_the_rules() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    assert "alerts.yml" in config["rule_files"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "onepin"]
    assert job["static_configs"][0]["targets"] == ["localhost:9879"]
    assert (job["scrape_interval"], job["scrape_timeout"]) == ("30s", "25s")
    assert config["alerting"]["alertmanagers"]


def test_example_alertmanager_config_routes_by_severity() -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    config = str(PROMETHEUS_DIR / "alertmanager.yml")
    result = run(amtool, "check-config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    for labels, receiver in (
        (("alertname=OnePinAPIDown", "severity=critical"), "onepin-pager"),
        (("alertname=OnePinExporterDown", "severity=critical"), "onepin-pager"),
        (("alertname=OnePinRunFailed", "severity=warning"), "onepin-chat"),
        (("alertname=OnePinWorkflowPassRatioLow", "severity=info"), "onepin-chat"),
        (("alertname=OnePinRunPausedByProvider", "severity=warning"), "onepin-chat"),
    ):
        routed = run(
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={config}",
            f"--verify.receivers={receiver}",
            *labels,
        )
        assert routed.returncode == 0, f"{labels} -> {routed.stdout.strip()}, not {receiver}"
    # One provider incident pauses runs of many workflows: grouped by reason, not by workflow.
    routes = yaml.safe_load(Path(config).read_text(encoding="utf-8"))["route"]["routes"]
    (paused,) = [r for r in routes if 'alertname = "OnePinRunPausedByProvider"' in r["matchers"]]
    assert paused["group_by"] == ["alertname", "workspace", "reason"]


# --- the rules themselves ----------------------------------------------------------------------


def test_the_alerts_the_issue_asks_for() -> None:
    assert set(ALERT_RULES) == EXPECTED_ALERTS


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_alert_conventions(name: str) -> None:
    rule = ALERT_RULES[name]
    assert re.fullmatch(r"OnePin(?:[A-Z][a-z]*|API)+", name), "CamelCase with the OnePin prefix"
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "{{" in annotations["description"], "description says which workspace/workflow/run"
    assert not annotations["summary"].endswith(" ")
    assert annotations["runbook_url"] == RUNBOOK_URL + name.lower()


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_alert_expressions_use_only_metrics_the_exporter_emits(name: str) -> None:
    expr = ALERT_RULES[name]["expr"]
    assert unknown_metrics(expr) == []
    names = scan(expr).names
    assert names, f"{name} selects no metric"
    # Only the scrape-target alert looks at the scrape itself.
    if name == "OnePinExporterDown":
        assert names == {"up"}
    else:
        assert "up" not in names


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_every_selector_of_an_alert_selects_the_exporter_job(name: str) -> None:
    """As in monitoring mixins, the rules select the exporter's series by their scrape job, so
    that another exporter's series of the same name cannot fire them."""
    selectors = scan(ALERT_RULES[name]["expr"]).selectors
    assert selectors
    for metric, matchers in selectors:
        assert JOB_MATCHER in matchers, f"{name}: {metric} without {JOB_MATCHER}"


def test_alerts_yml_reads_back_as_the_rules_written_in_python() -> None:
    """alerts.yml is written by hand-rolled YAML (comments, folded descriptions): PyYAML reads
    back exactly the rules of monitoring/rules.py, group by group."""
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    assert [g["name"] for g in groups] == [g.name for g in rules.GROUPS]
    for group, data in zip(rules.GROUPS, groups, strict=True):
        assert data.get("interval", "") == group.interval
        assert data["rules"] == [rules_file.as_data(alert) for alert in group.alerts]


def test_plain_scalars_that_yaml_would_misread_are_quoted() -> None:
    for text in ("a: b", "ends with #x", "{{ $labels.x }} first", "Run 1 of x"):
        assert yaml.safe_load(f"key: {rules_file.scalar(text)}") == {"key": text}


def test_every_alert_has_a_runbook_section() -> None:
    anchors = runbook_anchors()
    missing = [
        n
        for n, r in ALERT_RULES.items()
        if r["annotations"]["runbook_url"].split("#")[1] not in anchors
    ]
    assert missing == [], f"no section in docs/runbook.md for {missing}"


def test_every_alert_is_in_the_overview_table() -> None:
    text = OVERVIEW.read_text(encoding="utf-8")
    rows = {m for m in re.findall(r"^\|\s*\[?`?(OnePin\w+)", text, re.M)}
    assert rows == set(ALERT_RULES)


# --- the unit tests cover every alert ----------------------------------------------------------


def rule_test_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in RULE_TESTS:
        suite = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert suite["rule_files"] == ["../alerts.yml"], path.name
        for test in suite["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.append({"file": path.name, "test": test["name"], **case})
    return cases


def test_every_alert_has_a_firing_and_a_non_firing_case() -> None:
    cases = rule_test_cases()
    tested = {c["alertname"] for c in cases}
    assert tested <= set(ALERT_RULES), f"tests for unknown alerts: {tested - set(ALERT_RULES)}"
    for name in ALERT_RULES:
        firing = [c for c in cases if c["alertname"] == name and c.get("exp_alerts")]
        quiet = [c for c in cases if c["alertname"] == name and not c.get("exp_alerts")]
        assert firing, f"{name}: no test case where it fires"
        assert quiet, f"{name}: no test case where it stays quiet"


def test_firing_cases_check_labels_and_every_annotation() -> None:
    for case in rule_test_cases():
        rule = ALERT_RULES[case["alertname"]]
        for alert in case.get("exp_alerts") or []:
            where = f"{case['file']}: {case['test']}: {case['alertname']}"
            assert alert["exp_labels"]["severity"] == rule["labels"]["severity"], where
            assert set(alert["exp_annotations"]) == set(rule["annotations"]), where
