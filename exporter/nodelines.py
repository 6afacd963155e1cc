"""The samples of the node-level families (declared in exporter/metrics.py, which passes each
function its sample name): node durations and executions of the runs seen finishing, the failed
node(s) of the latest failed run, and the node(s) each active run is running now."""

from __future__ import annotations

from exporter.exposition import escape, histogram, line
from exporter.family import WorkflowLines
from exporter.nodes import NodeRef


def durations(name: str, x: WorkflowLines) -> str:
    return "".join(
        histogram(name, f'{x.base},node_type="{escape(node_type)}"', hist)
        for node_type, hist in sorted(x.wf.totals.nodes.durations.items())
    )


def executions(sample: str, x: WorkflowLines) -> str:
    return "".join(
        line(
            sample,
            f'{x.base},node_type="{escape(node_type)}",status="{escape(status)}"',
            float(count),
        )
        for (node_type, status), count in sorted(x.wf.totals.nodes.executions.items())
    )


def node_labels(node: NodeRef) -> str:
    return (
        f'node_id="{escape(node.node_id)}",node_type="{escape(node.node_type)}",'
        f'node_name="{escape(node.node_name)}"'
    )


def failed_nodes(name: str, x: WorkflowLines) -> str:
    if not x.wf.has_data:
        return ""
    return "".join(
        f"{name}{{{x.base},{node_labels(failed.node)}}} 1.0\n" for failed in x.wf.last_failure_nodes
    )


def current_nodes(name: str, x: WorkflowLines) -> str:
    current = x.wf.current_nodes
    if not current:  # most workflows, most of the time
        return ""
    return "".join(
        f"{name}{{{labels},{node_labels(node)}}} 1.0\n"
        for run, labels, _user in x.runs
        for node in current.get(run.id, ())
    )
