"""Node executions of a run (Get Run Steps) and what the node-level metrics take from them.

Get Run Steps answers one entry per node execution attempt, in execution order, with no
pagination (onepin-api.md §3.7, §8). Entries are read as leniently as `exporter.models` reads
runs, with its field readers: an entry without a usable `node_id`, `node_type` or `status` is
skipped and noted in `RunSteps.bad`; an optional field that cannot be read is absent and noted
in the execution's `problems`. `node_type` and `status` are open strings: unknown values pass
through as they are (a blank status is `unknown`).

From the executions, pure functions give:
- `finished_run_nodes`: for a run seen finishing, one duration per execution with both times
  (by `node_type`), executions counted by (`node_type`, `status`), and, for a failed run, the
  node(s) that failed with their error text redacted, escaped and bounded;
- `running_nodes`: for an active run, the node(s) running now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.apimodels import Meta
from exporter.fieldreaders import (
    DecodeError,
    _count,
    _obj,
    _opt_text,
    _problems,
    _req_str,
    _status,
    _time,
)
from exporter.redact import MESSAGE_LIMIT, Redactor
from exporter.responsereaders import _data, parse_meta

FAILED = "failed"
RUNNING = "running"


@dataclass(frozen=True, slots=True)
class NodeExecution:
    """One entry of Get Run Steps."""

    node_id: str
    node_type: str
    status: str
    node_name: str  # `node_display_name`, or the node id when the API gives no name
    iteration: int | None = None
    started_at: float | None = None
    completed_at: float | None = None
    error: str | None = None
    # Fields that were sent but could not be read (so are None): "field: what was wrong".
    problems: tuple[str, ...] = ()

    @property
    def duration(self) -> float | None:
        """Completed minus started, when both are known and in that order."""
        if self.started_at is None or self.completed_at is None:
            return None
        if self.completed_at < self.started_at:
            return None
        return self.completed_at - self.started_at


@dataclass(frozen=True, slots=True)
class RunSteps:
    """A Get Run Steps answer: the readable executions, in the API's order."""

    executions: tuple[NodeExecution, ...]
    meta: Meta
    # Entries that could not be read, as (id or position, problem); they cost only themselves.
    bad: tuple[tuple[str, str], ...] = ()
    # How many entries the answer had, readable or not.
    size: int = 0


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node as the node-level info gauges label it."""

    node_id: str
    node_type: str
    node_name: str


@dataclass(frozen=True, slots=True)
class FailedNode:
    """A node a failed run failed at; `error` is fit to show (never a label)."""

    node: NodeRef
    error: str | None


@dataclass(frozen=True, slots=True)
class NodeDuration:
    node_type: str
    seconds: float


@dataclass(frozen=True, slots=True)
class FinishedRunNodes:
    """What one finished run adds to the node-level metrics."""

    # One per execution with both times, in execution order.
    durations: tuple[NodeDuration, ...]
    # Executions per (node_type, status).
    executions: Mapping[tuple[str, str], int]
    # The failed node(s) of a failed run; empty for any other run.
    failed: tuple[FailedNode, ...]
    # Executions whose times were both sent but out of order (completed before started).
    bad_durations: int = 0


def parse_execution(raw: Any, where: str = "step") -> NodeExecution:
    """One entry; DecodeError when its node id, node type or status cannot be read."""
    d = _obj(raw, where)
    problems: list[str] = []
    node_id = _req_str(d, "node_id", where)
    name = _opt_text(d, "node_display_name", problems)
    return NodeExecution(
        node_id=node_id,
        node_type=_req_str(d, "node_type", where),
        status=_status(d, "status", where),
        node_name=name if name and not name.isspace() else node_id,
        iteration=_count(d, "iteration", problems),
        started_at=_time(d, "started_at", problems),
        completed_at=_time(d, "completed_at", problems),
        error=_opt_text(d, "error", problems),
        problems=_problems(problems),
    )


def parse_run_steps(body: Any) -> RunSteps:
    """A Get Run Steps answer; DecodeError only when it has no list of entries at all."""
    data = _data(body, "run steps")
    if not isinstance(data, list):
        raise DecodeError("run steps: 'data' is not a list")
    executions = []
    bad = []
    for index, item in enumerate(data):
        try:
            executions.append(parse_execution(item, f"data[{index}]"))
        except DecodeError as error:
            step_id = item.get("id") if isinstance(item, Mapping) else None
            key = step_id if isinstance(step_id, str) and step_id else f"data[{index}]"
            bad.append((key, str(error)))
    return RunSteps(tuple(executions), parse_meta(body), tuple(bad), len(data))


def _ref(execution: NodeExecution) -> NodeRef:
    return NodeRef(execution.node_id, execution.node_type, execution.node_name)


def _latest(executions: tuple[NodeExecution, ...]) -> dict[str, NodeExecution]:
    """Each node's latest execution: the highest iteration, the later entry on a tie or
    where the iteration is unknown (entries come in execution order)."""
    latest: dict[str, NodeExecution] = {}
    for execution in executions:
        seen = latest.get(execution.node_id)
        if (
            seen is None
            or execution.iteration is None
            or seen.iteration is None
            or execution.iteration >= seen.iteration
        ):
            latest[execution.node_id] = execution
    return latest


def finished_run_nodes(
    steps: RunSteps, run_status: str, redactor: Redactor, error_limit: int = MESSAGE_LIMIT
) -> FinishedRunNodes:
    """The node-level observations of a run seen finishing with `run_status`.

    The failed nodes of a failed run are those whose latest execution failed (a node that
    failed once and then succeeded on a retry is not one), in the order the nodes first ran."""
    durations = []
    bad_durations = 0
    counts: Counter[tuple[str, str]] = Counter()
    for execution in steps.executions:
        counts[(execution.node_type, execution.status)] += 1
        seconds = execution.duration
        if seconds is not None:
            durations.append(NodeDuration(execution.node_type, seconds))
        elif execution.started_at is not None and execution.completed_at is not None:
            bad_durations += 1
    failed: tuple[FailedNode, ...] = ()
    if run_status == FAILED:
        failed = tuple(
            FailedNode(
                _ref(execution),
                None if execution.error is None else redactor.clean(execution.error, error_limit),
            )
            for execution in _latest(steps.executions).values()
            if execution.status == FAILED
        )
    return FinishedRunNodes(tuple(durations), dict(counts), failed, bad_durations)


def running_nodes(steps: RunSteps) -> tuple[NodeRef, ...]:
    """The nodes of an active run whose latest execution is running, in the order the nodes
    first ran."""
    return tuple(
        _ref(execution)
        for execution in _latest(steps.executions).values()
        if execution.status == RUNNING
    )
