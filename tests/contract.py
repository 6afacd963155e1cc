"""The metric contract of design §4.4, as sample names: what dashboards, alerts and users rely on.

Written out here, independently of exporter/metrics.py, so that a renamed or dropped metric
fails the tests instead of silently changing the contract.
"""

from __future__ import annotations


def _histogram(name: str) -> list[str]:
    return [f"{name}_bucket", f"{name}_count", f"{name}_sum"]


HEALTH_METRICS = [
    "onepin_up",
    "onepin_exporter_build_info",
    "onepin_exporter_collect_duration_seconds",
    "onepin_api_requests_total",
    *_histogram("onepin_api_request_duration_seconds"),
]
WORKFLOW_METRICS = [
    "onepin_workflow_up",
    "onepin_workflow_info",
    "onepin_workflow_runs",
    "onepin_workflow_pass_ratio",
    "onepin_workflow_average_run_duration_seconds",
    "onepin_workflow_last_run_status",
    *(
        f"onepin_workflow_last_run_{suffix}"
        for suffix in [
            "number",
            "finished_steps",
            "total_steps",
            "total_nodes",
            "token_cost",
            "cpu_seconds",
            "memory_bytes",
            "api_calls",
            "duration_seconds",
            "created_timestamp_seconds",
            "started_timestamp_seconds",
            "completed_timestamp_seconds",
        ]
    ),
    "onepin_workflow_runs_finished_total",
    *_histogram("onepin_workflow_run_duration_seconds"),
    "onepin_workflow_run_token_cost_total",
    "onepin_workflow_run_cpu_seconds_total",
    # Issue 12 (design §9): when the newest completed / failed run seen ended.
    "onepin_workflow_last_success_timestamp_seconds",
    "onepin_workflow_last_failure_timestamp_seconds",
]
RUN_METRICS = [
    "onepin_run_status",
    *(
        f"onepin_run_{suffix}"
        for suffix in [
            "finished_steps",
            "total_steps",
            "total_nodes",
            "token_cost",
            "cpu_seconds",
            "memory_bytes",
            "api_calls",
            "duration_seconds",
            "created_timestamp_seconds",
            "started_timestamp_seconds",
            "updated_timestamp_seconds",
        ]
    ),
]
# Added to the design's list: the poll's deadline, shown against its duration on dashboards; the
# outcome of the last configuration reload (issue 12).
ADDED_METRICS = [
    "onepin_exporter_poll_deadline_seconds",
    "onepin_exporter_config_last_reload_successful",
    "onepin_exporter_config_last_reload_success_timestamp_seconds",
]
# Issue 13: of a workflow with a `schedule` in the config only (the exporter's, not the API's).
SCHEDULE_METRICS = [
    "onepin_workflow_schedule_last_expected_timestamp_seconds",
    "onepin_workflow_schedule_next_expected_timestamp_seconds",
    "onepin_workflow_schedule_grace_seconds",
]
# What the official SDK's models add (issue 16, onepin-api.md §8). Each exists only where the
# API sends its field (a pause reason only for a paused run; credits and delivered audio only from
# a run list that showed the latest run finished), so the scrape of the fake API and the e2e chain
# do not require them; tests/test_demo.py requires every one on `--demo`, with these labels.
SDK_WORKFLOW_METRICS = [
    "onepin_workflow_last_run_finished_nodes",
    "onepin_workflow_last_run_credits",
    "onepin_workflow_last_run_delivered_audio_seconds",
    "onepin_workflow_run_delivered_audio_seconds_total",
]
SDK_RUN_METRICS = [
    "onepin_run_finished_nodes",
    "onepin_run_paused_seconds",
    "onepin_run_pause_reason",
]
# Labels beyond workspace, workflow_id, workflow_name (and run_id, run_number for run metrics).
SDK_EXTRA_LABELS = {"onepin_run_pause_reason": {"reason"}}
# Issue 13: node-level metrics, from Get Run Steps of the runs seen finishing (and, with
# collection.run_nodes, of active runs). Each exists only once such a run was seen, so the
# scrape of the fake API does not require them; tests/test_node_metrics_simulator.py checks
# them, with their labels, against the simulator.
NODE_METRICS = [
    *_histogram("onepin_workflow_node_duration_seconds"),
    "onepin_workflow_node_executions_total",
    "onepin_workflow_last_failure_node_info",
    "onepin_run_current_node_info",
]
CONTRACT_METRICS = frozenset(
    NODE_METRICS
    + HEALTH_METRICS
    + WORKFLOW_METRICS
    + RUN_METRICS
    + ADDED_METRICS
    + SCHEDULE_METRICS
    + SDK_WORKFLOW_METRICS
    + SDK_RUN_METRICS
)
