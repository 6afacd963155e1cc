"""Node-level metrics wired end to end against the in-test fake API: Get Run Steps is read once
per run seen finishing (retried a bounded number of times, never marking the workflow down), the
failed node of the latest failed run is named by a gauge and its error text shown, redacted and
bounded, on the status page; with collection.run_nodes, the node an active run is at."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest

from exporter.ledger import STEPS_ATTEMPTS
from exporter.models import Run
from exporter.sharedpoll import Poller
from exporter.status_page import StatusInput, render_status
from exporter.stepsfetch import STEPS_IN_FLIGHT, runs_to_locate
from exporter.workflowstate import Located
from tests.fakeapi import TOKEN, FakeOnePin, FakeRun, FakeWorkflow, error, ok
from tests.helpers import exposition, make_config, poll, poller_for, series, value

ERROR = f"voice model refused key {TOKEN}\r\nFAKE LOG LINE " + "x" * 400


def step(node: int, status: str, start: str, end: str | None, **more: Any) -> dict[str, Any]:
    node_type = ("source_script", "operator_generator")[node % 2]
    return {
        "id": f"step-{node}-{status}",
        "node_id": f"node-{node}",
        "node_type": node_type,
        "node_display_name": f"Node {node}",
        "status": status,
        "iteration": 1,
        "started_at": f"2026-11-29T11:{start}Z",
        "completed_at": None if end is None else f"2026-11-29T11:{end}Z",
        "result": None,
        "error": None,
        **more,
    }


FAILED_STEPS = [
    step(0, "completed", "01:00", "01:30"),
    step(1, "failed", "01:30", "03:30", error=ERROR),
]
RUNNING_STEPS = [step(0, "completed", "01:00", "01:30"), step(1, "running", "01:30", None)]


class StepsApi:
    """The fake API, answering Get Run Steps with `steps` (or `failing` errors first)."""

    def __init__(self, steps: list[dict[str, Any]], runs: list[FakeRun]) -> None:
        self.steps = steps
        self.failing = 0
        self.workflow = FakeWorkflow("wf-1", "voices", runs)
        self.fake = FakeOnePin([self.workflow])
        self.fake.overrides.append(self._steps)
        self.asked: list[str] = []

    def _steps(self, request: httpx.Request) -> httpx.Response | None:
        parts = request.url.path.split("/")
        if parts[-1] != "steps":
            return None
        assert "include_result" not in request.url.params  # the light answer
        self.asked.append(parts[-2])
        if self.failing:
            self.failing -= 1
            return error(404, "NOT_FOUND", "run not found")
        return ok(self.steps)


def finish(run: FakeRun, status: str = "failed") -> None:
    run.status, run.completed_at, run.finished_steps = status, "2026-11-29T11:03:30Z", 2


def test_a_run_that_failed_at_a_node_names_it_and_the_page_shows_its_error_redacted() -> None:
    run = FakeRun("r-1", 1, "running", error=None)
    api = StepsApi(FAILED_STEPS, [run])
    poller = poller_for(api.fake)
    first = exposition(poll(poller))
    assert series(first, "onepin_workflow_last_failure_node_info") == []
    assert api.asked == []  # history and active runs cost no Get Run Steps
    finish(run)
    snapshot = poll(poller)
    text = exposition(snapshot)
    (failed,) = series(text, "onepin_workflow_last_failure_node_info")
    assert failed.value == 1 and failed.labels == {
        "workspace": "prod", "workflow_id": "wf-1", "workflow_name": "voices",
        "node_id": "node-1", "node_type": "operator_generator", "node_name": "Node 1",
    }  # fmt: skip
    assert TOKEN not in text and "voice model" not in text  # the error is never a label
    labels = {"workflow_id": "wf-1", "node_type": "operator_generator"}
    assert value(text, "onepin_workflow_node_executions_total", status="failed", **labels) == 1
    assert value(text, "onepin_workflow_node_duration_seconds_sum", **labels) == 120
    assert value(text, "onepin_workflow_node_duration_seconds_bucket", le="60.0", **labels) == 0
    assert value(text, "onepin_workflow_node_duration_seconds_bucket", le="300.0", **labels) == 1
    page = render_status(StatusInput(make_config(), snapshot, time.time(), time.time()))
    assert "latest failure at node Node 1 (operator_generator)" in page
    assert TOKEN not in page and "voice model refused key &lt;redacted&gt;\\r\\nFAKE LOG" in page
    assert "x" * 200 not in page  # bounded
    for _ in range(3):  # never asked again, whatever the later polls list
        run.finished_steps = 2
        poll(poller)
    assert api.asked == ["r-1"]
    again = exposition(poll(poller))
    assert value(again, "onepin_workflow_node_executions_total", status="failed", **labels) == 1


def test_a_failed_read_is_retried_then_given_up_with_one_line_and_the_workflow_stays_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = FakeRun("r-1", 1, "running")
    api = StepsApi(FAILED_STEPS, [run])
    poller = poller_for(api.fake)
    poll(poller)
    finish(run)
    api.failing = STEPS_ATTEMPTS + 5
    with caplog.at_level(logging.WARNING):
        for _ in range(STEPS_ATTEMPTS + 2):
            text = exposition(poll(poller))
            assert value(text, "onepin_workflow_up", workflow_id="wf-1") == 1
    assert api.asked == ["r-1"] * STEPS_ATTEMPTS
    given_up = [r for r in caplog.records if "given up" in r.getMessage()]
    assert len(given_up) == 1 and TOKEN not in caplog.text
    assert series(text, "onepin_workflow_node_executions_total") == []


def test_a_read_cut_by_the_deadline_is_no_failed_attempt_and_the_run_is_counted_later() -> None:
    """A finished run's steps read past the poll's deadline poll after poll (a big run on a
    slow API) were not read, not failed: given up after STEPS_ATTEMPTS such polls, the run's
    node executions were never counted."""
    run = FakeRun("r-1", 1, "running")
    api = StepsApi(FAILED_STEPS, [run])
    poller = poller_for(api.fake)
    poll(poller)
    finish(run)
    api.fake.delay = lambda r: 5.0 if r.url.path.endswith("/steps") else 0.0
    for _ in range(STEPS_ATTEMPTS + 2):
        text = exposition(poll(poller, timeout=0.5))
        assert value(text, "onepin_workflow_up", workflow_id="wf-1") == 1
    assert series(text, "onepin_workflow_node_executions_total") == []
    api.fake.delay = None
    text = exposition(poll(poller))
    labels = {"workflow_id": "wf-1", "node_type": "operator_generator"}
    assert value(text, "onepin_workflow_node_executions_total", status="failed", **labels) == 1


def test_steps_are_read_when_the_rest_of_the_poll_took_more_than_half_of_it() -> None:
    """At 20,000 workflows and 16 in flight the steady requests take 5 s of a 9.5 s poll: steps
    allowed only in the poll's first half were never read, poll after poll."""
    run = FakeRun("r-1", 1, "running")
    api = StepsApi(FAILED_STEPS, [run])
    poller = poller_for(api.fake)
    poll(poller)
    finish(run)
    api.fake.delay = lambda r: 1.8 if r.url.path.endswith("/workflows") else 0.0  # 60 % of 3 s
    text = exposition(poll(poller, timeout=3.0))
    assert api.asked == ["r-1"]
    labels = {"workflow_id": "wf-1", "node_type": "operator_generator"}
    assert value(text, "onepin_workflow_node_executions_total", status="failed", **labels) == 1


def finishing(count: int) -> tuple[StepsApi, Poller, list[FakeRun]]:
    """`count` runs of one workflow seen running by a first poll on 32 connections, then
    finished: the next poll reads their steps."""
    runs = [FakeRun(f"r-{i}", i, "running") for i in range(1, count + 1)]
    api = StepsApi(FAILED_STEPS, runs)
    poller = poller_for(api.fake, make_config(http="{timeout: 5s, max_concurrency: 32}"))
    poll(poller)
    for run in runs:
        finish(run)
    return api, poller, runs


def test_no_steps_read_starts_in_the_second_half_of_what_the_poll_has_left() -> None:
    """Get Run Steps bodies grow with a run's steps (megabytes): read to the deadline, under
    churn every poll ran to it and every scrape came close to its timeout. Here the rest of the
    poll takes 60 % of its 4 s, a read 1 s: the first 8 (STEPS_IN_FLIGHT) start at once, the
    ninth would start past the first half of what was left, and waits for the next poll."""
    api, poller, runs = finishing(9)
    slow = {"workflows": 2.4, "steps": 1.0}
    api.fake.delay = lambda r: slow.get(r.url.path.rsplit("/", 1)[-1], 0.0)
    snapshot = poll(poller, timeout=4.0)
    assert len(api.asked) == STEPS_IN_FLIGHT
    (workspace,) = snapshot.workspaces
    assert workspace.collect_duration is not None and workspace.collect_duration < 3.9
    api.fake.delay = None
    text = exposition(poll(poller))
    assert sorted(api.asked) == sorted(run.id for run in runs)
    labels = {"workflow_id": "wf-1", "node_type": "operator_generator"}
    assert value(text, "onepin_workflow_node_executions_total", status="failed", **labels) == 9


def test_steps_are_read_a_few_at_a_time() -> None:
    """Bodies of megabytes: read by the dozen, they all ended late together (and all held)."""
    api, poller, runs = finishing(20)
    started, peak = [0], [0]

    def delay(request: httpx.Request) -> float:
        if not request.url.path.endswith("/steps"):
            return 0.0
        started[0] += 1
        peak[0] = max(peak[0], started[0] - len(api.asked))  # answered ones are in `asked`
        return 0.05

    api.fake.delay = delay
    text = exposition(poll(poller))
    assert sorted(api.asked) == sorted(run.id for run in runs)
    assert peak[0] == STEPS_IN_FLIGHT < poller.workspaces[0].client.max_concurrency
    labels = {"workflow_id": "wf-1", "node_type": "operator_generator"}
    assert value(text, "onepin_workflow_node_executions_total", status="failed", **labels) == 20


def test_a_read_that_fails_once_counts_the_run_at_the_next_poll() -> None:
    run = FakeRun("r-1", 1, "running")
    api = StepsApi(FAILED_STEPS, [run])
    poller = poller_for(api.fake)
    poll(poller)
    finish(run)
    api.failing = 1
    assert series(exposition(poll(poller)), "onepin_workflow_last_failure_node_info") == []
    text = exposition(poll(poller))
    assert len(series(text, "onepin_workflow_last_failure_node_info")) == 1
    assert sum(s.value for s in series(text, "onepin_workflow_node_executions_total")) == 2
    assert api.asked == ["r-1", "r-1"]


def test_a_newer_run_that_completed_does_not_hide_the_failed_node_but_a_newer_failure_does() -> (
    None
):
    first, second = FakeRun("r-1", 1, "running"), FakeRun("r-2", 2, "running")
    api = StepsApi(FAILED_STEPS, [first, second])
    poller = poller_for(api.fake)
    poll(poller)
    finish(first)
    poll(poller)
    api.steps = [step(0, "completed", "01:00", "01:30"), step(1, "completed", "01:30", "02:00")]
    finish(second, "completed")
    text = exposition(poll(poller))
    assert [
        s.labels["node_id"] for s in series(text, "onepin_workflow_last_failure_node_info")
    ] == ["node-1"]
    third = FakeRun("r-3", 3, "running")
    api.workflow.runs.append(third)
    poll(poller)
    api.steps = [step(0, "failed", "01:00", "01:30", error="script missing")]
    finish(third)
    text = exposition(poll(poller))
    assert [
        s.labels["node_id"] for s in series(text, "onepin_workflow_last_failure_node_info")
    ] == ["node-0"]


@pytest.mark.parametrize("run_nodes", [False, True])
def test_run_nodes_names_the_node_an_active_run_is_at_asking_only_when_it_moved_on(
    run_nodes: bool,
) -> None:
    run = FakeRun("r-1", 1, "running", finished_steps=1)
    api = StepsApi(RUNNING_STEPS, [run])
    collection = f"{{min_interval: 0s, run_nodes: {str(run_nodes).lower()}}}"
    poller = poller_for(api.fake, make_config(collection=collection))
    text = exposition(poll(poller))
    current = series(text, "onepin_run_current_node_info")
    if not run_nodes:
        poll(poller)
        assert current == [] and api.asked == []
        return
    assert [(s.labels["run_id"], s.labels["node_id"], s.labels["node_name"]) for s in current] == [
        ("r-1", "node-1", "Node 1")
    ]
    poll(poller)
    assert api.asked == ["r-1"]  # finished_steps unchanged: not asked again
    run.finished_steps = 2
    api.steps = [*RUNNING_STEPS[:1], step(1, "completed", "01:30", "02:00"),
                 step(2, "running", "02:00", None)]  # fmt: skip
    text = exposition(poll(poller))
    assert [s.labels["node_id"] for s in series(text, "onepin_run_current_node_info")] == ["node-2"]
    assert api.asked == ["r-1", "r-1"]
    finish(run, "completed")
    text = exposition(poll(poller))
    assert series(text, "onepin_run_current_node_info") == []  # the run ended


def active(rid: str, finished_steps: int | None) -> Run:
    return Run(rid, 1, "running", 0.0, finished_steps=finished_steps)


@pytest.mark.parametrize(
    ("finished_steps", "located", "asked"),
    [
        (3, {}, True),  # never asked about
        (3, {"r": (3, ())}, False),  # unchanged since
        (4, {"r": (3, ())}, True),  # moved on
        (None, {"r": (None, ())}, True),  # cannot tell: asked every poll
        (3, {"other": (3, ())}, True),
    ],
)
def test_an_active_run_is_asked_about_when_its_finished_steps_changed(
    finished_steps: int | None, located: dict[str, Located], asked: bool
) -> None:
    run = active("r", finished_steps)
    assert runs_to_locate([run], located) == ([run] if asked else [])
