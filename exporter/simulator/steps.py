"""A run's node executions (Get Run Steps) and the node counts derived from them.

Step ``k`` (0-based) of a run is one execution of node ``k * total_nodes // total_steps``; the
steps of one node are its iterations. Step ``k`` starts when ``k`` steps' worth of active time
is done and ends when ``k + 1`` are, so the completed steps follow each other without gaps from
``started_at`` to ``completed_at`` of the run (a step spanning a pause includes it), and their
count is the run's ``finished_steps``. At most one more step shows: the one in progress
(``running``), the one the run failed or was cancelled in, or the one an automatic pause
interrupted (``cancelled`` while the run is parked, reopened in place on resume and keeping its
``pause_reason``/``pause_error`` from then on). A manual pause lets the work drain instead: the
next node waits in ``held_nodes`` and has no step until the run resumes.

``finished_nodes`` follows the SDK's definition over these same steps: the nodes whose latest
iteration is in a terminal state, a step parked by an automatic pause not counting.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .names import NODE_TYPES, PAUSE_ERRORS, USER_PAUSE
from .plan import CANCELLED, COMPLETED, FAILED, PAUSED, RUNNING, Observation, RunPlan
from .timefmt import iso, iso_or_none

STEP_TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
__all__ = ["NODE_TYPES", "finished_nodes", "held_nodes", "open_step", "step_rows"]


@dataclass(frozen=True, slots=True)
class OpenStep:
    """The step after the completed ones, when it shows."""

    status: str
    completed_at: int | None
    parked: bool


def node_of(plan: RunPlan, step: int) -> int:
    return step * plan.total_nodes // plan.total_steps


def node_id(position: int) -> str:
    return f"node-{position + 1}"


def node_type(position: int) -> str:
    return NODE_TYPES[position % len(NODE_TYPES)]


def display_name(position: int) -> str:
    return f"{node_type(position)} #{position + 1}"


def _first_step(plan: RunPlan, position: int) -> int:
    return -(-position * plan.total_steps // plan.total_nodes)


def _step_start(plan: RunPlan, step: int) -> int:
    """Wall time at which step ``step`` starts (the run must have started)."""
    return plan.wall_time(-(-step * plan.full // plan.total_steps))


def is_automatic(reason: str | None) -> bool:
    return reason is not None and reason != USER_PAUSE


def open_step(plan: RunPlan, seen: Observation) -> OpenStep | None:
    """The step in progress, failed, cancelled or parked at this observation, if any."""
    if seen.started_at is None or seen.finished_steps >= plan.total_steps:
        return None
    status = seen.status
    if status in (FAILED, CANCELLED):
        return OpenStep(status, seen.completed_at, parked=False)
    if status == PAUSED:
        if is_automatic(seen.pause_reason):
            return OpenStep(CANCELLED, seen.paused_at, parked=True)
        return None  # a manual pause drained the work; the next node is held
    if status == RUNNING:
        return OpenStep(RUNNING, None, parked=False)
    return None


def finished_nodes(plan: RunPlan, seen: Observation) -> int:
    """Nodes whose latest iteration is terminal (0 before the run starts)."""
    done = seen.finished_steps
    count = node_of(plan, done - 1) + 1 if done else 0
    current = open_step(plan, seen)
    if current is not None:
        shares_node = done > 0 and node_of(plan, done) == node_of(plan, done - 1)
        terminal = current.status in STEP_TERMINAL and not current.parked
        if terminal and not shares_node:
            count += 1
        elif not terminal and shares_node:
            count -= 1
    return count


def held_nodes(plan: RunPlan, seen: Observation) -> list[dict[str, Any]] | None:
    """The nodes a paused run waits in front of; None unless it is paused."""
    if seen.status != PAUSED:
        return None
    if is_automatic(seen.pause_reason):
        return []  # the interrupted node shows as its own parked step
    position = node_of(plan, min(seen.finished_steps, plan.total_steps - 1))
    return [{"node_id": node_id(position), "locales": list(plan.locales)}]


def _interrupted_step(plan: RunPlan, now: int) -> int | None:
    """The step an automatic pause has interrupted by ``now``, if any."""
    pause = plan.pause
    if pause is None or now < pause.paused or not is_automatic(pause.reason):
        return None
    return plan.finished_steps(pause.paused)


def step_rows(
    plan: RunPlan,
    now: int,
    *,
    include_result: bool = False,
    node_type_filter: str | None = None,
    node_id_filter: str | None = None,
) -> list[dict[str, Any]]:
    """Get Run Steps ``data``: the run's node executions in execution order."""
    seen = plan.observe(now)
    if seen.started_at is None:
        return []
    done = seen.finished_steps
    current = open_step(plan, seen)
    last = done + 1 if current is not None else done
    interrupted = _interrupted_step(plan, now)
    pause_reason = None if plan.pause is None else plan.pause.reason
    run_id = uuid.UUID(plan.id)
    rows: list[dict[str, Any]] = []
    for step in range(last):
        position = node_of(plan, step)
        if node_type_filter is not None and node_type(position) != node_type_filter:
            continue
        if node_id_filter is not None and node_id(position) != node_id_filter:
            continue
        completed_at: int | None
        if step < done:
            status, completed_at = COMPLETED, _step_start(plan, step + 1)
        else:
            assert current is not None
            status, completed_at = current.status, current.completed_at
        # The interrupted step keeps the pause's reason from the moment it was parked.
        paused_here = step == interrupted
        has_result = status == COMPLETED
        has_input = position > 0
        rows.append(
            {
                "id": str(uuid.uuid5(run_id, str(step))),
                "node_id": node_id(position),
                "node_type": node_type(position),
                "node_display_name": display_name(position),
                "status": status,
                "iteration": step - _first_step(plan, position) + 1,
                "started_at": iso(_step_start(plan, step)),
                "completed_at": iso_or_none(completed_at),
                "result": _result(plan, position) if include_result and has_result else None,
                "has_result": has_result,
                "active_ports": ["output"] if has_result else [],
                "locales": list(plan.locales) if has_input else None,
                "pause_reason": pause_reason if paused_here else None,
                "pause_error": PAUSE_ERRORS.get(pause_reason or "") if paused_here else None,
                "error": plan.error if status == FAILED else None,
            }
        )
    return rows


def _result(plan: RunPlan, position: int) -> dict[str, Any]:
    lines = max(1, plan.lines // plan.total_steps)
    return {
        "node_id": node_id(position),
        "line_count": lines,
        "duration_ms": lines * plan.audio_ms_per_line,
        "locales": list(plan.locales),
    }
