"""The simulator's node executions (Get Run Steps) agree with its runs, as the exporter's node
reader (exporter/nodes.py) sees them: their count and times add up to the run's steps and
duration, a failed run failed at one node with the run's error, an active run is at one node,
iterations count up per node, and every node is one of the workflow's definition."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from exporter.models import parse_time
from exporter.nodes import finished_run_nodes, parse_run_steps, running_nodes
from exporter.redact import Redactor
from exporter.simulator.clock import ManualClock
from exporter.simulator.model import SimModel
from exporter.simulator.plan import COMPLETED, FAILED, PAUSED, RUNNING, RunPlan
from exporter.simulator.render import Renderer
from exporter.simulator.steps import step_rows
from exporter.simulator.timefmt import iso

REDACTOR = Redactor(["op_live_NodesNodesNodesNodes00000000"])


def observe(plan: RunPlan, now: int) -> tuple[Any, list[dict[str, Any]]]:
    rows = step_rows(plan, now)
    return parse_run_steps({"data": rows, "meta": {"timestamp": iso(now)}}), rows


def check_run(plan: RunPlan, now: int, definition: dict[str, Any]) -> str:
    """Everything the node metrics will rely on, for one run at one moment; its status."""
    seen = plan.observe(now)
    steps, rows = observe(plan, now)
    where = f"run {plan.number} of workflow {plan.workflow} at {now}"
    assert steps.bad == () and all(e.problems == () for e in steps.executions), where
    executions = steps.executions
    completed = [e for e in executions if e.status == COMPLETED]
    # Count: one execution per finished step, plus the one in progress or stopped in.
    assert len(completed) == seen.finished_steps, where
    assert len(executions) - len(completed) <= 1 and len(executions) <= plan.total_steps, where
    if seen.status == COMPLETED:
        assert len(executions) == plan.total_steps, where
    # Times: back to back from the run's start, so the durations add up to its duration.
    if executions:
        assert executions[0].started_at == seen.started_at, where
        finished = finished_run_nodes(steps, seen.status, REDACTOR)
        total = sum(d.seconds for d in finished.durations)
        ends = [e.completed_at for e in executions if e.completed_at is not None]
        assert total == (max(ends) if ends else seen.started_at) - seen.started_at, where
        if seen.completed_at is not None:
            assert max(ends) == seen.completed_at, where
        assert sum(finished.executions.values()) == len(executions), where
    # A failed run failed at one node, the last one, with the run's error.
    if seen.status == FAILED and executions:
        failed = finished_run_nodes(steps, FAILED, REDACTOR).failed
        assert len(failed) == 1 and failed[0].node.node_id == executions[-1].node_id, where
        assert failed[0].error == plan.error and f"'{failed[0].node.node_id}'" in str(plan.error)
    # An active run is at one node while running, at none while paused.
    current = running_nodes(steps)
    if seen.status == RUNNING and seen.started_at is not None:
        assert [n.node_id for n in current] == [executions[-1].node_id], where
    else:
        assert current == (), where
    # Iterations count up from 1 per node, and a node's executions come together.
    iterations: dict[str, list[int]] = defaultdict(list)
    order: list[str] = []
    for execution in executions:
        iterations[execution.node_id].append(execution.iteration or 0)
        if not order or order[-1] != execution.node_id:
            order.append(execution.node_id)
    assert all(its == list(range(1, len(its) + 1)) for its in iterations.values()), where
    assert len(order) == len(set(order)), where
    # Every node is one of the workflow's definition, with its type and name.
    nodes = {n["id"]: (n["type"], n["display_name"]) for n in definition["nodes"]}
    for execution in executions:
        assert nodes[execution.node_id] == (execution.node_type, execution.node_name), where
    assert [parse_time(r["started_at"]) for r in rows] == [e.started_at for e in executions]
    return seen.status


def test_node_executions_add_up_to_their_runs_at_every_moment() -> None:
    clock = ManualClock()
    sim = SimModel(clock, workflows=24, seed=7)
    renderer = Renderer(7)
    statuses: dict[str, int] = defaultdict(int)
    for _ in range(5):
        clock.advance(1_477)
        with sim.session() as now:
            for profile in sim.profiles:
                definition = renderer.definition(profile)
                count = sim.run_count(profile.index, now)
                for number in range(max(1, count - 3), count + 1):
                    status = check_run(sim.plan(profile.index, number), now, definition)
                    statuses[status] += 1
    assert statuses[COMPLETED] > 300 and statuses[FAILED] > 10 and statuses[RUNNING] > 10, statuses


def test_explicit_runs_of_every_fate_and_pause_add_up_too() -> None:
    clock = ManualClock()
    sim = SimModel(clock, workflows=12, seed=2)
    renderer = Renderer(2)
    fates = [
        ("completed", None),
        ("failed", None),
        ("cancelled", None),
        ("stall", None),
        ("completed", "user"),
        ("failed", "provider_outage"),
        ("completed", "node_timeout"),
    ]
    plans = [
        sim.start_run(
            sim.profiles[i].id,
            outcome=outcome,
            duration_seconds=90,
            total_steps=40,
            pause_reason=pause,
        )
        for i, (outcome, pause) in enumerate(fates)
    ]
    seen: set[str] = set()
    for _ in range(40):
        with sim.session() as now:
            for plan in plans:
                seen.add(check_run(plan, now, renderer.definition(sim.profiles[plan.workflow])))
        clock.advance(7)
    assert seen >= {"pending", RUNNING, PAUSED, COMPLETED, FAILED, "cancelled"}
