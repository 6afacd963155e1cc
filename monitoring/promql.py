"""PromQL shared by the dashboards and the alert rules: label selectors, metric names, the
expressions and thresholds that a panel and an alert both use.

A `Scope` is the set of label matchers every selector of one consumer carries: the dashboards
select `job`, `instance`, `workspace` and `workflow_id` from their variables, the alert rules the
scrape job by a pattern (ALERTS). Selectors are built by calling a scope, never written by hand:

    WORKFLOW("onepin_run_status", eq("status", "running"))
    # onepin_run_status{job=~"$job", instance=~"$instance", ..., status="running"}
"""

from __future__ import annotations

from dataclasses import dataclass


def eq(label: str, value: str) -> str:
    """The matcher label="value"."""
    return f'{label}="{value}"'


def matches(label: str, pattern: str) -> str:
    """The matcher label=~"pattern"."""
    return f'{label}=~"{pattern}"'


def variable(label: str, name: str) -> str:
    """A matcher on a Grafana variable: label=~"$name" (multi-value variables need =~)."""
    return matches(label, "$" + name)


@dataclass(frozen=True)
class Scope:
    """Label matchers that every selector built from this scope carries, before its own."""

    matchers: tuple[str, ...] = ()

    def narrow(self, *matchers: str) -> Scope:
        return Scope(self.matchers + matchers)

    def __call__(self, metric: str, *matchers: str) -> str:
        """The selector metric{scope's matchers, matchers}; a bare name without any."""
        inner = ", ".join(self.matchers + matchers)
        return metric + "{" + inner + "}" if inner else metric


# --- the scopes --------------------------------------------------------------------------------

# The alert rules select the exporter's series by their scrape job, as monitoring mixins do. A job
# whose name does not match selects nothing, and then OnePinExporterDown fires through absent():
# a wrong selector does not go unnoticed. Change it here and run `python -m monitoring`.
ALERT_JOB = ".*onepin.*"
ALERTS = Scope((matches("job", ALERT_JOB),))

# The dashboards: every query carries the job and instance variables, then the ones below.
TARGET = Scope((variable("job", "job"), variable("instance", "instance")))
WORKSPACE = TARGET.narrow(variable("workspace", "workspace"))
WORKFLOW = WORKSPACE.narrow(variable("workflow_id", "workflow"))

# --- metric names and label values both sides use ----------------------------------------------

REQUESTS = "onepin_api_requests_total"
FINISHED = "onepin_workflow_runs_finished_total"
TOKENS = "onepin_workflow_run_token_cost_total"
LAST_SUCCESS = "onepin_workflow_last_success_timestamp_seconds"
PAUSED_SECONDS = "onepin_run_paused_seconds"
PAUSE_REASON = "onepin_run_pause_reason"
LAST_CREATED = "onepin_workflow_last_run_created_timestamp_seconds"
SCHEDULE_LAST = "onepin_workflow_schedule_last_expected_timestamp_seconds"
SCHEDULE_NEXT = "onepin_workflow_schedule_next_expected_timestamp_seconds"
SCHEDULE_GRACE = "onepin_workflow_schedule_grace_seconds"

RATE_LIMITED = eq("code", "429")
FAILED_REQUEST = matches("code", "5..|error")  # a 5xx, or no HTTP answer at all
FAILED = eq("status", "failed")
COMPLETED = eq("status", "completed")
COMPLETED_OR_FAILED = matches("status", "completed|failed")  # the API's pass rate leaves out
ACTIVE = matches("status", "pending|running|paused")  # cancelled runs, and so do we

# --- thresholds a panel colours by and an alert fires at -------------------------------------

API_ERROR_RATIO = 0.1  # OnePinAPIErrors; the error-ratio panel's red line
PASS_RATIO_LOW = 0.8  # OnePinWorkflowPassRatioLow; orange in the pass-ratio cells
PASS_RATIO_GOOD = 0.95  # green in the pass-ratio cells
NO_SUCCESS_SECONDS = 86400  # OnePinWorkflowNoRecentSuccess; orange in "Time since last success"

# --- expressions ---------------------------------------------------------------------------------


def since_last_success(scope: Scope) -> str:
    """Seconds since each workflow's newest completed run that the API lists."""
    return "time() - " + scope(LAST_SUCCESS)


def paused_time_with_reason(scope: Scope, *reason: str, sep: str = " ") -> str:
    """The paused time of each run paused now, labelled with the reason it is paused for (sep
    goes between the three parts: a new line where the alert rules want it)."""
    paused = scope(PAUSE_REASON, *reason) + " == 1"
    return f"{scope(PAUSED_SECONDS)}{sep}* ignoring (reason) group_left (reason){sep}({paused})"


def scheduled_run_missed(scope: Scope) -> str:
    """Of each workflow on a schedule whose latest fire time is more than its grace ago and
    that has no run created since (or none at all): the seconds since that fire. One part per
    line (OnePinScheduledRunMissed; the schedule panel's "Missed" column)."""
    last, created = scope(SCHEDULE_LAST), scope(LAST_CREATED)
    parts = (
        f"time() - {last}", f"> {scope(SCHEDULE_GRACE)}", "and", "(",
        f"  {created}", f"  < {last}", "  or", "  (", f"    {last}", "    unless",
        f"    {created}", "  )", ")",
    )  # fmt: skip
    return "\n".join(parts)
