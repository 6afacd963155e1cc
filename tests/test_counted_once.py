"""A finished run is counted once, also after the poller let go of its details (issue 17).

Of older finished runs the poller keeps only that they were counted; when such a run shows up
again in a later List Runs (every new run makes the workflow list its runs again), it must not
be counted a second time. `increase(onepin_workflow_runs_finished_total[...])` is what failure
alerts are built on: a run counted twice is a failure alerted twice.
"""

from __future__ import annotations

from tests.fakeapi import FakeOnePin, FakeRun, FakeWorkflow
from tests.helpers import exposition, poll, poller_for, series, value

WF = {"workflow_id": "wf-1"}


def finished(text: str) -> dict[str, float]:
    found = series(text, "onepin_workflow_runs_finished_total", **WF)
    return {s.labels["status"]: s.value for s in found}


def start(run_id: str, number: int) -> FakeRun:
    return FakeRun(run_id, number, "running", created_at=f"2026-11-29T11:{number:02d}:00Z")


def end(run: FakeRun, status: str) -> None:
    run.status, run.completed_at = status, "2026-11-29T11:59:00Z"


def test_a_finished_run_listed_again_after_it_was_let_go_is_not_counted_again() -> None:
    first, second = start("r-1", 1), start("r-2", 2)
    fake = FakeOnePin([FakeWorkflow("wf-1", "etl", [first, second])])
    poller = poller_for(fake)
    text = exposition(poll(poller))
    assert finished(text) == {"completed": 0, "failed": 0, "cancelled": 0}

    end(first, "failed")  # not the latest run: its details are let go once it is counted
    text = exposition(poll(poller))
    assert finished(text) == {"completed": 0, "failed": 1, "cancelled": 0}

    runs = fake.workflows["wf-1"].runs
    for number in range(3, 7):  # each new run makes the workflow list its runs again
        end(runs[-1], "completed")
        runs.append(start(f"r-{number}", number))
        text = exposition(poll(poller))
        listed = [r.id for r in runs]
        assert "r-1" in listed  # r-1 is in every list (recent_runs is 20)
        assert finished(text) == {"completed": number - 2, "failed": 1, "cancelled": 0}, number
        assert value(text, "onepin_workflow_run_duration_seconds_count", **WF) == number - 1
    # and polled again with nothing new
    text = exposition(poll(poller))
    assert finished(text) == {"completed": 4, "failed": 1, "cancelled": 0}
    assert value(text, "onepin_workflow_last_run_status", status="running", **WF) == 1


def test_the_latest_run_finished_then_superseded_is_counted_once() -> None:
    """The latest run keeps its details; once a newer run exists it is let go like the rest."""
    only = start("r-1", 1)
    fake = FakeOnePin([FakeWorkflow("wf-1", "etl", [only])])
    poller = poller_for(fake)
    poll(poller)
    end(only, "cancelled")
    text = exposition(poll(poller))
    assert finished(text)["cancelled"] == 1
    runs = fake.workflows["wf-1"].runs
    runs.append(start("r-2", 2))
    for _ in range(3):
        text = exposition(poll(poller))
        assert finished(text) == {"completed": 0, "failed": 0, "cancelled": 1}
    runs.append(start("r-3", 3))  # listed once more, r-1 long let go
    text = exposition(poll(poller))
    assert finished(text) == {"completed": 0, "failed": 0, "cancelled": 1}
