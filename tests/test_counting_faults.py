"""Each run is counted once, whatever the API shows: the rows of issue "Trust" about counting.

Every case runs the real poller against `tests/runview.py`, a small API written for these tests
(not tests/fakeapi.py, not the simulator), and reads the counters as Prometheus would.
"""

from __future__ import annotations

import logging

import pytest

from exporter.sharedpoll import Poller
from exporter.wiring import build_poller
from tests.helpers import exposition, make_config, poll, series, value
from tests.runview import API, T0, TOKEN, RunView

WF = "wf-a"
OTHER = "wf-b"


def poller_on(view: RunView, recent_runs: int = 5, stale_after: str = "5m") -> Poller:
    collection = (
        f"{{min_interval: 0s, recent_runs: {recent_runs}, runs_summary: false,"
        f" stale_after: {stale_after}}}"
    )
    config = make_config(api_url=API, token=TOKEN, collection=collection)
    return build_poller(config, transport=view.transport())


def scrape(poller: Poller) -> str:
    return exposition(poll(poller))


def finished(text: str, status: str, wid: str = WF) -> float | None:
    return value(text, "onepin_workflow_runs_finished_total", status=status, workflow_id=wid)


def counter(text: str, name: str, wid: str = WF) -> float | None:
    return value(text, f"onepin_workflow_run_{name}", workflow_id=wid)


def with_history(view: RunView, wid: str = WF, runs: int = 5) -> None:
    for i in range(runs):
        view.workflows[wid].add("completed", at=i * 100)


def test_a_failed_run_hidden_on_alternate_polls_is_counted_once() -> None:
    """A lagging replica hides the newest run (in List Workflows and List Runs) every other
    poll: the failed run must be counted once, and the latest run never goes back."""
    view = RunView(WF)
    with_history(view)
    poller = poller_on(view)
    scrape(poller)
    view.workflows[WF].add("failed", at=1000)
    for i in range(8):
        view.workflows[WF].hidden = i % 2
        text = scrape(poller)
        assert finished(text, "failed") == 1, f"poll {i}: counted {finished(text, 'failed')}"
        assert value(text, "onepin_workflow_last_run_number", workflow_id=WF) == 6, f"poll {i}"
        assert value(text, "onepin_workflow_up", workflow_id=WF) == 1
    assert counter(text, "duration_seconds_count") == 1


def test_a_workflow_missing_from_one_catalogue_poll_keeps_its_counters() -> None:
    """A page shift leaves a workflow out of one List Workflows answer: its series and counters
    stay (marked not refreshed), and a run that failed meanwhile is counted when it is back."""
    view = RunView(WF, OTHER)
    with_history(view)
    poller = poller_on(view)
    scrape(poller)
    view.workflows[WF].add("failed", at=1000)
    text = scrape(poller)
    assert finished(text, "failed") == 1
    view.missing.add(WF)
    view.workflows[WF].add("failed", at=2000)
    text = scrape(poller)
    assert finished(text, "failed") == 1, "the counter vanished or reset"
    assert value(text, "onepin_workflow_up", workflow_id=WF) == 0
    assert value(text, "onepin_workflow_up", workflow_id=OTHER) == 1
    view.missing.clear()
    text = scrape(poller)
    assert finished(text, "failed") == 2, "the run that failed meanwhile was not counted"
    assert value(text, "onepin_workflow_up", workflow_id=WF) == 1


def test_a_workflow_missing_past_stale_after_is_dropped() -> None:
    view = RunView(WF, OTHER)
    poller = poller_on(view, stale_after="0s")
    scrape(poller)
    view.missing.add(WF)
    text = scrape(poller)
    assert not series(text, "onepin_workflow_up", workflow_id=WF)


@pytest.mark.parametrize("burst", [6, 12, 250])
def test_a_burst_larger_than_recent_runs_is_counted_whole(burst: int) -> None:
    """`burst` runs finish between two polls with recent_runs 5: every one is counted, with its
    token cost from Get Run Status, by paging back through List Runs."""
    view = RunView(WF)
    with_history(view, runs=3)
    poller = poller_on(view)
    scrape(poller)
    for i in range(burst):
        view.workflows[WF].add("failed" if i % 3 == 0 else "completed", at=1000 + i)
    text = scrape(poller)
    failed = (burst + 2) // 3
    assert finished(text, "failed") == failed
    assert finished(text, "completed") == burst - failed
    assert counter(text, "token_cost_total") == 100 * burst
    assert counter(text, "cpu_seconds_total") == 1.5 * burst
    assert counter(text, "duration_seconds_count") == burst
    text = scrape(poller)  # and not again
    assert counter(text, "duration_seconds_count") == burst


def test_a_burst_cut_by_the_deadline_is_finished_by_the_next_polls() -> None:
    view = RunView(WF)
    poller = poller_on(view)
    scrape(poller)
    for i in range(400):
        view.workflows[WF].add("completed", at=1000 + i)
    counts = []
    for _ in range(6):
        counts.append(counter(exposition(poll(poller, timeout=0.3)), "duration_seconds_count"))
    assert counts[-1] == 400, counts
    assert counts == sorted(counts), counts


@pytest.mark.parametrize("field", ["token_cost", "cpu"])
def test_a_negative_value_never_lowers_a_counter(field: str) -> None:
    view = RunView(WF)
    poller = poller_on(view)
    scrape(poller)
    view.workflows[WF].add("completed", at=10)
    before = scrape(poller)
    view.workflows[WF].add("completed", at=20, **{field: -1000})
    view.workflows[WF].add("completed", at=30, **{field: float("-inf")})
    text = scrape(poller)
    for name in ("token_cost_total", "cpu_seconds_total"):
        old, new = counter(before, name), counter(text, name)
        assert old is not None and new is not None and new >= old, f"{name}: {old} -> {new}"
    assert counter(text, "duration_seconds_count") == 3


# bad field in one status record: (token_cost_total after both runs, log lines naming it).
# A value the official SDK reads ("12", "2") is read the same way and logs nothing; one it cannot
# read is left out alone and logged once; the other run costs 100.
@pytest.mark.parametrize(
    ("bad", "cost", "lines"),
    [({"token_cost": float("nan")}, 100, 1), ({"token_cost": "12"}, 112, 0),
     ({"completed_at": "yesterday"}, 200, 1), ({"run_number": "2"}, 200, 0)],
    ids=["nan", "string-number", "bad-time", "run-number-string"],
)  # fmt: skip
def test_one_bad_field_in_a_run_status_does_not_wedge_the_workflow(
    bad: dict[str, object], cost: float, lines: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The status record of one run has a bad field: the workflow stays up, the run is counted
    when it finishes (with the fields that could be read), and so are later runs."""
    view = RunView(WF)
    poller = poller_on(view)
    scrape(poller)
    run = view.workflows[WF].add("running", at=10, bad_status=bad)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        for _ in range(2):
            text = scrape(poller)
            assert value(text, "onepin_workflow_up", workflow_id=WF) == 1
        run.finish("failed", 200)
        text = scrape(poller)
        assert finished(text, "failed") == 1
        assert counter(text, "cpu_seconds_total") == 1.5
        view.workflows[WF].add("completed", at=300)
        for _ in range(2):
            text = scrape(poller)
            assert value(text, "onepin_workflow_up", workflow_id=WF) == 1
            assert finished(text, "completed") == 1
            assert finished(text, "failed") == 1
            assert counter(text, "token_cost_total") == cost
    field = next(iter(bad))
    told = [r for r in caplog.records if field in r.getMessage()]
    assert len(told) == lines, [r.getMessage() for r in caplog.records]


def test_get_run_status_refused_falls_back_to_list_runs(caplog: pytest.LogCaptureFixture) -> None:
    """Some docs list Get Run Status as session-only: a 403 there must not leave runs
    uncounted; List Runs items tell the status, steps and usage (not token_cost)."""
    view = RunView(WF, OTHER)
    with_history(view)
    view.status_refused = True
    poller = poller_on(view)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        scrape(poller)
        run = view.workflows[WF].add("running", at=1000)
        view.workflows[OTHER].add("completed", at=1000)
        text = scrape(poller)
        assert value(text, "onepin_run_status", run_id=run.id, status="running") == 1
        run.finish("failed", 1300)
        for _ in range(2):
            text = scrape(poller)
            assert value(text, "onepin_workflow_up", workflow_id=WF) == 1
            assert value(text, "onepin_workflow_up", workflow_id=OTHER) == 1
            assert finished(text, "failed") == 1
            assert finished(text, "completed", OTHER) == 1
            assert counter(text, "cpu_seconds_total") == 1.5
            assert counter(text, "duration_seconds_sum") == 300
            assert counter(text, "delivered_audio_seconds_total") == 1.5  # the list item's
            assert not series(text, "onepin_run_status", run_id=run.id)
    warned = [r.getMessage() for r in caplog.records if "Get Run Status" in r.getMessage()]
    assert len(warned) == 1, warned


# --- delivered audio (a List Runs field) and the newest completed / failed run -----------------

AUDIO = "delivered_audio_seconds_total"
LAST_SUCCESS = "onepin_workflow_last_success_timestamp_seconds"
LAST_FAILURE = "onepin_workflow_last_failure_timestamp_seconds"


def test_a_run_finishing_while_not_the_latest_adds_its_delivered_audio_once() -> None:
    """Get Run Status lacks delivered_audio_ms, and the catalogue does not change when a run
    other than the latest finishes: the run is counted from its status record, and its audio
    comes from one more List Runs, once."""
    view = RunView(WF)
    with_history(view, runs=1)
    poller = poller_on(view)
    scrape(poller)
    older = view.workflows[WF].add("running", at=1000)
    view.workflows[WF].add("running", at=1010)
    scrape(poller)
    older.audio = 5_400_000
    older.finish("completed", 1200)
    lists = view.count("list_runs")
    texts = [scrape(poller) for _ in range(3)]
    assert [finished(t, "completed") for t in texts] == [1, 1, 1]
    assert counter(texts[-1], AUDIO) == 5400
    assert view.count("list_runs") == lists + 1  # one more run list, then none


def test_the_three_values_are_what_the_api_served() -> None:
    """The newest completed and failed runs' completed_at from the first poll on (history, as
    the first List Runs lists it), and delivered audio summed over the runs seen finishing."""
    view = RunView(WF, OTHER)
    wf = view.workflows[WF]
    for status, at in [("completed", 0), ("failed", 100), ("completed", 200), ("cancelled", 300)]:
        wf.add(status, at=at)  # completed_at = at + 30
    view.workflows[OTHER].add("cancelled", at=0)
    poller = poller_on(view)
    text = scrape(poller)
    assert value(text, LAST_SUCCESS, workflow_id=WF) == T0 + 230
    assert value(text, LAST_FAILURE, workflow_id=WF) == T0 + 130
    assert counter(text, AUDIO) == 0  # history
    # None seen yet: absent, not 0.
    assert not series(text, LAST_SUCCESS, workflow_id=OTHER)
    assert not series(text, LAST_FAILURE, workflow_id=OTHER)
    assert counter(text, AUDIO, OTHER) == 0

    failed = wf.add("running", at=1000)
    scrape(poller)
    failed.audio = 2_500
    failed.finish("failed", 1100)
    done = wf.add("completed", at=1200, audio=4_000)
    text = scrape(poller)
    assert value(text, LAST_SUCCESS, workflow_id=WF) == T0 + 1230
    assert value(text, LAST_FAILURE, workflow_id=WF) == T0 + 1100
    assert counter(text, AUDIO) == 6.5
    # A lagging replica shows an older list: nothing goes back, nothing is counted twice.
    wf.hidden = 2
    text = scrape(poller)
    assert value(text, LAST_SUCCESS, workflow_id=WF) == T0 + 1230
    assert value(text, LAST_FAILURE, workflow_id=WF) == T0 + 1100
    assert counter(text, AUDIO) == 6.5
    assert done.completed == 1230
