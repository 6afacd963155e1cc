"""Node executions (exporter/nodes.py): what the node-level metrics will show of a run.

The bodies are written by hand from the API docs and the SDK's WorkflowRunStepOut (§3.7, §8),
not taken from the simulator, so they do not share its assumptions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.models import DecodeError
from exporter.nodes import (
    FailedNode,
    NodeDuration,
    NodeExecution,
    NodeRef,
    RunSteps,
    finished_run_nodes,
    parse_run_steps,
    running_nodes,
)
from exporter.redact import Redactor

TOKEN = "op_live_N0desN0desN0desN0desN0des0123"
REDACTOR = Redactor([TOKEN])
T0 = 1795950000.0  # 2026-11-29T11:00:00Z


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).isoformat().replace("+00:00", "Z")


def step(
    node: int,
    status: str = "completed",
    start: float | None = 0,
    end: float | None = 60,
    iteration: Any = 1,
    **more: Any,
) -> dict[str, Any]:
    """An entry of Get Run Steps as the SDK (0.16.1) defines it; times in seconds after T0."""
    node_type = ("source_script", "operator_generator", "validator_noise")[node % 3]
    attempt = iteration if isinstance(iteration, int) else 0
    return {
        "id": f"00000000-0000-4000-8000-{node:06d}{attempt:06d}",
        "node_id": f"node-{node}",
        "node_type": node_type,
        "node_display_name": f"{node_type} #{node}",
        "status": status,
        "iteration": iteration,
        "started_at": None if start is None else iso(start),
        "completed_at": None if end is None else iso(end),
        "result": None,
        "has_result": status == "completed",
        "active_ports": [],
        "error": None,
        **more,
    }


def body(*entries: Any) -> dict[str, Any]:
    return {"data": list(entries), "meta": {"request_id": "req_1", "timestamp": iso(600)}}


def steps(*entries: Any) -> RunSteps:
    return parse_run_steps(body(*entries))


# --- reading ------------------------------------------------------------------------------


def test_an_entry_is_read_field_by_field() -> None:
    (execution,) = steps(
        step(2, "failed", 10, 25.5, 3, error="voice model returned 503")
    ).executions
    assert execution == NodeExecution(
        node_id="node-2",
        node_type="validator_noise",
        status="failed",
        node_name="validator_noise #2",
        iteration=3,
        started_at=T0 + 10,
        completed_at=T0 + 25.5,
        error="voice model returned 503",
    )
    assert execution.duration == 15.5


@pytest.mark.parametrize(
    ("changes", "field", "value", "problem"),
    [
        # As the SDK reads them: numbers as strings, Unix times, no display name.
        ({"iteration": "2"}, "iteration", 2, None),
        ({"iteration": 2.0}, "iteration", 2, None),
        ({"started_at": T0 + 5}, "started_at", T0 + 5, None),
        ({"node_display_name": None}, "node_name", "node-1", None),
        ({"node_display_name": "  "}, "node_name", "node-1", None),
        ({"status": ""}, "status", "unknown", None),
        ({"status": "skipped"}, "status", "skipped", None),  # an open set: passed through
        ({"node_type": "operator_future"}, "node_type", "operator_future", None),
        # What cannot be true costs only that field.
        ({"iteration": -1}, "iteration", None, "iteration: negative (-1)"),
        ({"iteration": True}, "iteration", None, "iteration: expected a number, got True"),
        ({"started_at": "yesterday"}, "started_at", None, "started_at: expected an ISO-8601"),
        ({"error": {"code": 1}}, "error", None, "error: expected a string, got an object"),
        ({"node_display_name": 7}, "node_name", "node-1", "node_display_name: expected a string"),
    ],
)
def test_a_field_is_read_leniently_and_a_bad_one_costs_only_itself(
    changes: dict[str, Any], field: str, value: Any, problem: str | None
) -> None:
    (execution,) = steps(step(1, **changes)).executions
    assert getattr(execution, field) == value
    if problem is None:
        assert execution.problems == ()
    else:
        assert len(execution.problems) == 1 and execution.problems[0].startswith(problem)


@pytest.mark.parametrize(
    ("entry", "key", "problem"),
    [
        ({**step(1), "node_id": None}, "00000000-0000-4000-8000-000001000001", "data[1].node_id"),
        ({**step(1), "node_type": ""}, "00000000-0000-4000-8000-000001000001", "data[1].node_type"),
        ({**step(1), "status": 3, "id": None}, "data[1]", "data[1].status: expected a string"),
        ("node-1", "data[1]", "data[1]: expected an object, got str"),
    ],
)
def test_an_entry_that_cannot_be_read_is_skipped_and_noted(
    entry: Any, key: str, problem: str
) -> None:
    read = steps(step(0), entry, step(2))
    assert [e.node_id for e in read.executions] == ["node-0", "node-2"]
    assert read.size == 3
    ((bad_key, bad_problem),) = read.bad
    assert bad_key == key and bad_problem.startswith(problem)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"meta": {}}, "run steps: response has no 'data' field"),
        ({"data": {"node_id": "node-1"}}, "run steps: 'data' is not a list"),
        ([], "run steps: response has no 'data' field"),
    ],
)
def test_an_answer_without_a_list_of_entries_is_a_decode_error(answer: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_run_steps(answer)


def test_an_empty_answer_is_a_run_with_no_executions() -> None:
    read = parse_run_steps({"data": [], "meta": {"timestamp": iso(0)}})
    assert read.executions == () and read.size == 0 and read.meta.timestamp == T0


# --- a finished run -----------------------------------------------------------------------


def test_every_execution_with_both_times_is_one_duration_by_node_type() -> None:
    read = steps(
        step(0, start=0, end=12),
        step(1, start=12, end=100, iteration=1),
        step(1, start=100, end=160, iteration=2),
        step(2, "cancelled", start=160, end=None),  # no end: no duration, still counted
        step(2, start=None, end=None, iteration=2),  # never started
    )
    found = finished_run_nodes(read, "cancelled", REDACTOR)
    assert found.durations == (
        NodeDuration("source_script", 12.0),
        NodeDuration("operator_generator", 88.0),
        NodeDuration("operator_generator", 60.0),
    )
    assert found.executions == {
        ("source_script", "completed"): 1,
        ("operator_generator", "completed"): 2,
        ("validator_noise", "cancelled"): 1,
        ("validator_noise", "completed"): 1,
    }
    assert found.failed == () and found.bad_durations == 0


def test_an_execution_that_ends_before_it_starts_gives_no_duration_and_is_counted_as_bad() -> None:
    found = finished_run_nodes(steps(step(0, start=50, end=10), step(1)), "completed", REDACTOR)
    assert found.durations == (NodeDuration("operator_generator", 60.0),)
    assert found.bad_durations == 1
    assert sum(found.executions.values()) == 2


REF_1 = NodeRef("node-1", "operator_generator", "operator_generator #1")
REF_2 = NodeRef("node-2", "validator_noise", "validator_noise #2")


@pytest.mark.parametrize(
    ("entries", "run_status", "failed"),
    [
        # The node a failed run stopped at, with its error.
        ([step(0), step(1, "failed", error="upstream timed out after 30s")],
         "failed", (FailedNode(REF_1, "upstream timed out after 30s"),)),
        # Retried and then succeeded: not the node the run failed at.
        ([step(1, "failed", iteration=1, error="x"), step(1, "completed", iteration=2),
          step(2, "failed", iteration=1, error="score 0.41 below 0.60")],
         "failed", (FailedNode(REF_2, "score 0.41 below 0.60"),)),
        # Two branches failed.
        ([step(1, "failed", error="a"), step(2, "failed", error=None)],
         "failed", (FailedNode(REF_1, "a"), FailedNode(REF_2, None))),
        # A failed run whose steps name no failed node: none is made up.
        ([step(0), step(1, "cancelled")], "failed", ()),
        # A run that did not fail has no failed node, whatever its steps say.
        ([step(1, "failed", iteration=1, error="x"), step(1, iteration=2)], "completed", ()),
        ([step(1, "failed", error="x")], "cancelled", ()),
    ],
)  # fmt: skip
def test_the_failed_nodes_of_a_failed_run(
    entries: list[dict[str, Any]], run_status: str, failed: tuple[FailedNode, ...]
) -> None:
    assert finished_run_nodes(steps(*entries), run_status, REDACTOR).failed == failed


def test_a_failed_nodes_error_is_redacted_escaped_and_bounded() -> None:
    error = f"auth with {TOKEN} refused\r\nFAKE LOG LINE " + "x" * 500
    found = finished_run_nodes(steps(step(1, "failed", error=error)), "failed", REDACTOR)
    (failed,) = found.failed
    assert failed.error is not None
    assert TOKEN not in failed.error and "N0desN0des" not in failed.error
    assert failed.error.startswith("auth with <redacted> refused\\r\\nFAKE LOG LINE xxx")
    assert len(failed.error) == 200 and failed.error.endswith("...")
    short = finished_run_nodes(
        steps(step(1, "failed", error=error)), "failed", REDACTOR, error_limit=40
    )
    assert short.failed[0].error is not None and len(short.failed[0].error) == 40


# --- an active run ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "running"),
    [
        ([step(0), step(1, "running", start=60, end=None)], (REF_1,)),
        # Two nodes at once (parallel branches).
        ([step(0), step(1, "running", end=None), step(2, "running", end=None)], (REF_1, REF_2)),
        # A retry running after a failed iteration.
        ([step(1, "failed", iteration=1), step(1, "running", iteration=2, end=None)], (REF_1,)),
        # An iteration that finished after one that showed running: not running any more.
        ([step(1, "running", iteration=1, end=None), step(1, iteration=2)], ()),
        # Parked by an automatic pause, or held: nothing runs.
        ([step(0), step(1, "cancelled", pause_reason="provider_outage")], ()),
        ([], ()),
    ],
)
def test_the_nodes_an_active_run_is_running_now(
    entries: list[dict[str, Any]], running: tuple[NodeRef, ...]
) -> None:
    assert running_nodes(steps(*entries)) == running
