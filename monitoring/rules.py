"""The alerting rules, from the selectors and thresholds of monitoring/promql.py.

Every selector carries the scrape-job matcher of promql.ALERTS. A threshold is a number in an
expression, marked with a `# threshold:` comment that stays in the PromQL (Prometheus reads it as a
comment), or a constant of promql.py where a dashboard shows the same threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitoring import promql
from monitoring.promql import FINISHED, REQUESTS, TOKENS

A = promql.ALERTS


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str  # PromQL, one line or several, each ending in a newline
    severity: str  # critical pages; warning and info go to chat (prometheus/alertmanager.yml)
    summary: str
    description: str  # one paragraph; the YAML file folds it
    wait: str = ""  # the rule's `for:`
    wait_note: str = ""  # a comment after `for:`
    note: str = ""  # a comment above the expression: why it is written this way


@dataclass(frozen=True)
class Group:
    name: str
    alerts: tuple[Alert, ...]
    interval: str = ""
    note: str = ""


def lines(*parts: str) -> str:
    """A multi-line expression: one part per line."""
    return "".join(part + "\n" for part in parts)


def rate_without(selector: str, indent: str = "") -> str:
    """A per-second rate over 5m summed over endpoints and codes, keeping the target's labels,
    on three lines (the last two indented by indent)."""
    return f"sum without (endpoint, code) (\n{indent}  rate({selector}[5m])\n{indent})"


# --- the exporter and the API ------------------------------------------------------------------


def exporter_down() -> Alert:
    return Alert(
        "OnePinExporterDown",
        lines(f"{A('up')} == 0", "or", f"absent({A('up')})"),
        "critical",
        "OnePin exporter is down or not scraped.",
        "{{ if $labels.instance }}Prometheus has failed to scrape the OnePin exporter at "
        "{{ $labels.instance }} (job {{ $labels.job }}) for 5 minutes.{{ else }}No scrape "
        'target whose job matches "' + promql.ALERT_JOB + '" has existed for 5 minutes.{{ end }} '
        "No other OnePin alert can fire while the exporter is not scraped.",
        wait="5m",
        wait_note="threshold: how long the scrape must fail",
        note="The target is down, or no target of the job exists at all (absent()). absent() of a\n"
        "regex selector carries no labels, so the second case fires without instance/job.",
    )


def api_down() -> Alert:
    return Alert(
        "OnePinAPIDown",
        lines(f"{A('onepin_up')} == 0"),
        "critical",
        "OnePin exporter cannot reach or authenticate to the OnePin API.",
        "The exporter {{ $labels.instance }} has not been able to reach the OnePin API for "
        "workspace {{ $labels.workspace }}, or the API has rejected its token, for 5 minutes. "
        "Workflow and run metrics of this workspace are stale or missing.",
        wait="5m",
        wait_note="threshold",
    )


def api_rate_limited() -> Alert:
    limited = rate_without(A(REQUESTS, promql.RATE_LIMITED))
    return Alert(
        "OnePinAPIRateLimited",
        lines(f"{limited} * 60 > 0 # threshold: 429 responses per minute"),
        "warning",
        "The OnePin API is rate-limiting the exporter.",
        "The OnePin API has answered {{ $value | humanize }} requests per minute from the "
        "exporter {{ $labels.instance }} for workspace {{ $labels.workspace }} with 429 Too Many "
        "Requests for 15 minutes. Polls may miss their deadline and the data may lag.",
        wait="15m",
        wait_note="threshold",
        note="Requests per minute answered 429, summed over endpoints (target labels are kept).",
    )


def api_errors() -> Alert:
    return Alert(
        "OnePinAPIErrors",
        lines(
            "(",
            "  " + rate_without(A(REQUESTS, promql.FAILED_REQUEST), "  "),
            "/",
            "  " + rate_without(A(REQUESTS), "  "),
            f") > {promql.API_ERROR_RATIO} # threshold: share of failed requests",
        ),
        "warning",
        "Many requests to the OnePin API fail.",
        "{{ $value | humanizePercentage }} of the requests from the exporter "
        "{{ $labels.instance }} to the OnePin API for workspace {{ $labels.workspace }} have "
        "failed with a 5xx status or a transport error for 15 minutes (threshold 10%).",
        wait="15m",
        wait_note="threshold",
        note='Share of requests that got a 5xx status or no HTTP answer at all (code="error").',
    )


def workflow_data_stale() -> Alert:
    return Alert(
        "OnePinWorkflowDataStale",
        lines(
            f"{A('onepin_workflow_up')} == 0",
            "unless ignoring (workflow_id, workflow_name)",
            f"{A('onepin_up')} == 0",
        ),
        "warning",
        "OnePin workflow {{ $labels.workflow_name }} is not refreshed.",
        "The exporter {{ $labels.instance }} has not refreshed the data of workflow "
        "{{ $labels.workflow_name }} ({{ $labels.workflow_id }}) in workspace "
        "{{ $labels.workspace }} for 15 minutes, although the API is reachable. Its metrics "
        "are served from cache or missing, and its run alerts may not fire.",
        wait="15m",
        wait_note="threshold",
        note="Only while the API as a whole is reachable: OnePinAPIDown covers the rest.",
    )


EXPORTER = Group(
    "onepin-exporter",
    (exporter_down(), api_down(), api_rate_limited(), api_errors(), workflow_data_stale()),
)


# --- runs --------------------------------------------------------------------------------------

RUN = "Run {{ $labels.run_number }} of OnePin workflow {{ $labels.workflow_name }}"
WHICH_RUN = (
    "Run {{ $labels.run_number }} ({{ $labels.run_id }}) of workflow "
    "{{ $labels.workflow_name }} in workspace {{ $labels.workspace }}"
)


def run_failed() -> Alert:
    return Alert(
        "OnePinRunFailed",
        lines(f"increase({A(FINISHED, promql.FAILED)}[10m]) > 0"),
        "warning",
        "A run of OnePin workflow {{ $labels.workflow_name }} failed.",
        "At least one run of workflow {{ $labels.workflow_name }} ({{ $labels.workflow_id }}) "
        "in workspace {{ $labels.workspace }} failed in the last 10 minutes.",
        note="The counter exists at 0 from the exporter's first poll, so the first failure counts.",
    )


def run_stalled() -> Alert:
    steps = A("onepin_run_finished_steps")
    running = A("onepin_run_status", promql.eq("status", "running"))
    return Alert(
        "OnePinRunStalled",
        lines(
            "(",
            f"  {steps}",
            "  and",
            f"  changes({steps}[30m]) == 0 # threshold: 30m, in all three places",
            "  and",
            f"  {steps} offset 30m",
            ")",
            "and ignoring (status, triggered_by)",
            f"(min_over_time({running}[30m]) == 1)",
            "unless ignoring (run_id, run_number)",
            f"({A('onepin_workflow_up')} == 0)",
        ),
        "warning",
        RUN + " makes no progress.",
        WHICH_RUN + " has been running for the last 30 minutes without finishing a step; it is "
        "stuck at {{ $value }} finished steps.",
        note="A running run whose finished_steps did not change for 30 minutes. The `offset` "
        "clause\nrequires the series to be at least 30 minutes old, so a run that has just "
        "appeared\n(or an exporter that has just restarted) does not look stalled; "
        "min_over_time()\nrequires the run to have been running (not pending or paused) the "
        "whole time.",
    )


def run_too_long() -> Alert:
    duration = A("onepin_run_duration_seconds")
    average = A("onepin_workflow_average_run_duration_seconds")
    return Alert(
        "OnePinRunTooLong",
        lines(
            "(",
            "  (",
            f"    {duration}",
            "    > ignoring (run_id, run_number) group_left ()",
            f"    clamp_min(3 * {average}, 3600) # threshold",
            "  )",
            "  or",
            "  (",
            f"    {duration} > 21600 # threshold: without an average",
            "    unless ignoring (run_id, run_number)",
            f"    {average}",
            "  )",
            ")",
            "unless ignoring (status, triggered_by)",
            f"({A('onepin_run_status', promql.eq('status', 'paused'))} == 1)",
        ),
        "warning",
        RUN + " takes too long.",
        WHICH_RUN + " has been running for {{ $value | humanizeDuration }}, more than 3 times "
        "the workflow's average run duration (at least 1h, or 6h when the workflow has no "
        "average yet).",
        note="Running for longer than 3x the workflow's average run duration (the API's mean "
        "over\ncompleted runs), but never less than 1h; 6h for a workflow with no average yet.\n"
        "Paused runs are left out.",
    )


def run_pending_too_long() -> Alert:
    created = A("onepin_run_created_timestamp_seconds")
    pending = A("onepin_run_status", promql.eq("status", "pending"))
    return Alert(
        "OnePinRunPendingTooLong",
        lines(
            f"(time() - {created}) > 900 # threshold: seconds pending",
            "and ignoring (status, triggered_by)",
            f"({pending} == 1)",
        ),
        "warning",
        RUN + " does not start.",
        WHICH_RUN + " was created {{ $value | humanizeDuration }} ago and is still pending "
        "(threshold 15 minutes).",
        note="Age from the API's created_at. Prometheus's clock and the API's may differ a little.",
    )


def run_paused_by_provider() -> Alert:
    outage = promql.matches("reason", "provider_outage|provider_billing")
    rate_limit = promql.eq("reason", "provider_rate_limited")
    sep = "\n  "
    return Alert(
        "OnePinRunPausedByProvider",
        lines(
            "(",
            "  " + promql.paused_time_with_reason(A, outage, sep=sep),
            ") > 900 # threshold: seconds paused by an outage or billing",
            "or",
            "(",
            "  " + promql.paused_time_with_reason(A, rate_limit, sep=sep),
            ") > 3600 # threshold: seconds paused by a rate limit",
        ),
        "warning",
        RUN + " is paused by its provider ({{ $labels.reason }}).",
        WHICH_RUN + " has been paused for {{ $value | humanizeDuration }} with reason "
        '{{ $labels.reason }} (threshold {{ if eq $labels.reason "provider_rate_limited" }}1 '
        "hour{{ else }}15 minutes{{ end }}). The run's pause_error in OnePin says why; the run "
        "can be resumed once the provider works again.",
        wait="5m",
        note="An active run paused by its provider (outage or billing: 15 minutes; rate limit: 1 "
        "hour) whose paused time, as the API counts it, passed the threshold. "
        "onepin_run_paused_seconds is the run's total paused time, so `for: 5m` keeps a run "
        "whose earlier pauses already add up to the threshold from firing the moment a provider "
        'pause begins. Manual pauses (reason "user") and node timeouts are left out. The alert '
        "keeps the `reason` label.",
    )


def workflow_pass_ratio_low() -> Alert:
    def finished_in_window(status: str, note: str = "") -> str:
        return f"sum without (status) (increase({A(FINISHED, status)}[6h])){note}"

    window_note = " # threshold: window, in all three places"
    return Alert(
        "OnePinWorkflowPassRatioLow",
        lines(
            "(",
            "  " + finished_in_window(promql.COMPLETED, window_note),
            "/",
            "  " + finished_in_window(promql.COMPLETED_OR_FAILED),
            f") < {promql.PASS_RATIO_LOW} # threshold: pass ratio",
            "and",
            finished_in_window(promql.COMPLETED_OR_FAILED)
            + " >= 10 # threshold: minimum finished runs in the window",
        ),
        "info",
        "OnePin workflow {{ $labels.workflow_name }} fails often.",
        "Only {{ $value | humanizePercentage }} of the runs of workflow "
        "{{ $labels.workflow_name }} ({{ $labels.workflow_id }}) in workspace "
        "{{ $labels.workspace }} that completed or failed in the last 6 hours completed "
        "(threshold 80%, at least 10 runs); cancelled runs are not counted.",
        wait="30m",
        note="completed / (completed + failed) over the runs the exporter saw finishing in the "
        "last 6 hours (cancelled runs are left out, as in the API's pass rate), from the "
        "counters, so that a recent drop fires and a recovery resolves. Silent with fewer than "
        "10 such runs.",
    )


def workflow_no_recent_success() -> Alert:
    failure = A("onepin_workflow_last_failure_timestamp_seconds")
    success = A(promql.LAST_SUCCESS)
    return Alert(
        "OnePinWorkflowNoRecentSuccess",
        lines(
            "(",
            "  (",
            f"    {promql.since_last_success(A)} > {promql.NO_SUCCESS_SECONDS} # threshold: a day",
            "    and",
            f"    {failure}",
            f"    > {success}",
            "  )",
            "  or",
            "  (",
            "    (",
            f"      {failure} * 0 + inf",
            "      unless",
            f"      {success}",
            "    )",
            "    and",
            f"    ({A('onepin_workflow_info')} offset 1d) # threshold: a day known to the exporter",
            "  )",
            ")",
            "and",
            f"time() - {failure} < 604800 # threshold: retired",
        ),
        "warning",
        "OnePin workflow {{ $labels.workflow_name }} has not succeeded for a day.",
        "Workflow {{ $labels.workflow_name }} ({{ $labels.workflow_id }}) in workspace "
        "{{ $labels.workspace }} {{ if lt $value 1e300 }}last completed a run "
        "{{ $value | humanizeDuration }} ago, and runs have failed since{{ else }}has never "
        "completed a run (none that the API lists), and runs have failed{{ end }} (threshold 1 "
        "day).",
        note="No successful run for a day, although a run failed since the last success (or the "
        "workflow never succeeded, a run failed, and the exporter has watched it for a day). A "
        "workflow that simply did not run (weekly, or retired) does not fire, and one whose last "
        "failure is more than 7 days old counts as retired. The value is the age of the last "
        "success; +Inf when the API lists none.",
    )


def scheduled_run_missed() -> Alert:
    return Alert(
        "OnePinScheduledRunMissed",
        lines(*promql.scheduled_run_missed(A).splitlines()),
        "warning",
        "A scheduled run of OnePin workflow {{ $labels.workflow_name }} did not start.",
        "Workflow {{ $labels.workflow_name }} ({{ $labels.workflow_id }}) in workspace "
        "{{ $labels.workspace }} was due to start a run by its schedule "
        "{{ $value | humanizeDuration }} ago, and no run has been created since, past the "
        "schedule's grace.",
        note="The grace after the latest expected fire time is over, and the latest run was "
        "created before that\nfire (or the workflow has no run). It lasts until the next fire "
        "time (the series then moves on)\nor a run, so no `for:`: a missed fire of a frequent "
        "schedule fires only briefly.",
    )


RUNS = Group(
    "onepin-runs",
    (
        run_failed(),
        run_stalled(),
        run_too_long(),
        run_pending_too_long(),
        run_paused_by_provider(),
        workflow_pass_ratio_low(),
        workflow_no_recent_success(),
        scheduled_run_missed(),
    ),
)


# --- cost --------------------------------------------------------------------------------------


def token_spend_high() -> Alert:
    tokens = A(TOKENS)
    return Alert(
        "OnePinTokenSpendHigh",
        lines(
            f"increase({tokens}[1h])",
            "> 2 * ( # threshold: factor over the baseline",
            "  max_over_time(",
            f"    increase({tokens}[1h])[7d:1h] offset 1h",
            "  ) > 0",
            ")",
            "and",
            f"{tokens} offset 1d",
        ),
        "warning",
        "OnePin workflow {{ $labels.workflow_name }} spends unusually many tokens.",
        "Runs of workflow {{ $labels.workflow_name }} ({{ $labels.workflow_id }}) in workspace "
        "{{ $labels.workspace }} that finished in the last hour cost {{ $value | humanize }} "
        "tokens, more than twice the workflow's busiest hour of the 7 days before.",
        note="Tokens charged in the last hour (by runs that finished in it) against twice the "
        "busiest clock hour of the 7 days before. Needs a non-zero baseline and a day of history.",
    )


COST = Group(
    "onepin-cost",
    (token_spend_high(),),
    interval="5m",
    note="The 7-day subquery is the heaviest expression here; evaluating it every 5 minutes is "
    "enough.",
)

GROUPS = (EXPORTER, RUNS, COST)
