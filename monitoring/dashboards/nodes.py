"""The node-level panels of the "OnePin workflows" dashboard (issue 13): how long each node type
takes, from the onepin_workflow_node_duration_seconds histogram (one observation per node
execution of the runs the exporter saw finish), and the node a workflow's latest failed run
failed at, a column of the latest-runs table."""

from __future__ import annotations

from monitoring import promql
from monitoring.grafana.fields import Json, field_config, timeseries_custom
from monitoring.grafana.panels import bucket_heatmap, target, timeseries

S = promql.WORKFLOW
NODE_BUCKETS = "onepin_workflow_node_duration_seconds_bucket"
FAILED_NODE = "onepin_workflow_last_failure_node_info"


def failed_node_target(key: tuple[str, ...], ref: str) -> Json:
    """A merged table's query giving the `node_name` column: the node(s) the latest failed run
    failed at (one row per workflow; several nodes would be several rows)."""
    labels = ", ".join(key)
    return target(
        f"max by ({labels}, node_name) ({S(FAILED_NODE)})", ref, instant=True, fmt="table"
    )


def node_duration_heatmap() -> Json:
    return bucket_heatmap(
        "Node duration distribution",
        "How long node executions took, from the onepin_workflow_node_duration_seconds "
        "histogram (Get Run Steps of each run seen finishing): each column counts the node "
        "executions of the runs that finished in that window, by duration bucket, all node "
        "types together ('Node duration p95 by node type' tells which one is slow).",
        S(NODE_BUCKETS),
        "node executions",
    )


def node_p95() -> Json:
    return timeseries(
        "Node duration p95 by node type",
        "95th percentile of node execution duration per node type, over the node executions "
        "of the runs that finished in each window (estimated from the histogram's buckets; "
        "no point where none finished).",
        [
            target(
                f"histogram_quantile(0.95, sum by (node_type, le) "
                f"(increase({S(NODE_BUCKETS)}[$__rate_interval]))) >= 0",
                "A",
                "{{node_type}}",
            )
        ],
        field_config("s", colour_mode="palette-classic", custom=timeseries_custom()),
        legend_calcs=("max",),
    )
