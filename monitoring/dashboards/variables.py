"""The template variables and links both dashboards share, so that the cross-dashboard link
(which carries the variables) lands on the same job, instance and workspace."""

from __future__ import annotations

from monitoring import links, promql
from monitoring.grafana.fields import Json, link
from monitoring.grafana.layout import (
    DATASOURCE_VARIABLE,
    constant_variable,
    dashboards_link,
    label_values_variable,
    query_variable,
    url_link,
)

BUILD_INFO = "onepin_exporter_build_info"  # one series per exporter instance, whatever its job

JOB = label_values_variable("job", "job", BUILD_INFO)
INSTANCE = label_values_variable(
    "instance", "instance", promql.Scope((promql.variable("job", "job"),))(BUILD_INFO)
)
WORKSPACE = label_values_variable("workspace", "workspace", promql.TARGET("onepin_up"))

# The workflow by its id, showing its name. Grafana's query_result() lists each series as
# `{workflow_id="…",workflow_name="…"} 1 <ms>` (labels sorted by name); the regex's named groups
# pick the value and the text out of it.
WORKFLOW_IDS = (
    "query_result(max by (workflow_id, workflow_name) ("
    + promql.WORKSPACE("onepin_workflow_info")
    + "))"
)
WORKFLOW_REGEX = '/workflow_id="(?<value>[^"]*)",workflow_name="(?<text>.*)"}/'
WORKFLOW = query_variable("workflow", WORKFLOW_IDS, regex=WORKFLOW_REGEX)

APP_URL = "app_url"
APP = constant_variable(APP_URL, links.APP_URL, "OnePin app URL")


def common_variables() -> list[Json]:
    return [DATASOURCE_VARIABLE, JOB, INSTANCE, WORKSPACE]


def dashboard_links() -> list[Json]:
    """The other OnePin dashboards (with this one's variables and time range), the runbook."""
    runbook = url_link("Runbook", links.runbook(), icon="doc", tooltip="What to do per alert")
    return [dashboards_link(include_vars=True), runbook]


def runbook(*alerts: str) -> list[Json]:
    """Panel links to the runbook section of each alert a panel shows the cause of."""
    return [link(f"Runbook: {alert}", links.runbook_section(alert)) for alert in alerts]
