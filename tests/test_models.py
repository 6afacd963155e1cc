"""Field by field: the parsers read what the SDK reads, and one bad value costs only itself.

The bodies here are written by hand (not by the simulator or tests/fakeapi.py), so they do not
share its assumptions. Per field: a lenient reading where the SDK has one and it is harmless
(numbers sent as strings, Unix timestamps, an empty status), and for a value that cannot be true
(negative, NaN, infinite, of the wrong type) that one field absent with a problem that names it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from exporter import fieldreaders, models
from exporter.models import (
    MAX_INT,
    DecodeError,
    Run,
    parse_run_page,
    parse_run_status,
    parse_runs_summary,
    parse_workflow,
    parse_workflow_page,
)
from tests.fakeapi import NOW, TOKEN, FakeOnePin, FakeRun, FakeWorkflow, meta
from tests.helpers import exposition, poll, poller_for, series, value

T0 = 1795950000.0  # 2026-11-29T11:00:00Z
NAN, INF = math.nan, math.inf
JSON_TYPE = {"Content-Type": "application/json"}


def run_item(**changes: Any) -> dict[str, Any]:
    """A List Runs item as the SDK (0.16.1) defines it, every field sent."""
    item: dict[str, Any] = {
        "id": "r-1", "status": "completed", "run_number": 3,
        "created_at": "2026-11-29T11:00:00Z", "started_at": "2026-11-29T11:01:00Z",
        "completed_at": "2026-11-29T11:21:00Z", "total_nodes": 5, "total_steps": 10,
        "finished_steps": 10, "finished_nodes": 5, "credits": 12,
        "usage_summary": {"cpu_seconds": 12.5, "memory_mb": 256, "model": "tts-2"},
        "pause_requested_at": None, "paused_at": None, "paused_ms": 60000, "pause_reason": None,
        "pause_error": None, "output_line_count": 40, "delivered_audio_ms": 5400000,
        "triggered_by": {"user_id": "u1", "user_name": "Jane Doe"},
    }  # fmt: skip
    item.update(changes)
    return item


def status_data(**changes: Any) -> dict[str, Any]:
    """Get Run Status's `data`: the List Runs fields plus the detailed ones."""
    data = run_item(workflow_id="wf-1", token_cost=100, updated_at="2026-11-29T11:21:00Z")
    data.update(error=None, has_export=False, held_nodes=None)
    data.update(changes)
    return data


def page(*items: Any) -> dict[str, Any]:
    return {"data": list(items), "meta": meta(), "pagination": {"limit": 100, "total": len(items)}}


def via_status(**changes: Any) -> Run:
    return parse_run_status({"data": status_data(**changes), "meta": meta()})


def via_list(**changes: Any) -> Run:
    got = parse_run_page(page(run_item(**changes)))
    assert not got.bad, got.bad
    (run,) = got.items
    return run


@pytest.fixture(autouse=True)
def _no_remembered_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test parses its times itself: a time remembered from another test would not run
    the parsing (nor any planted bug in it)."""
    monkeypatch.setattr(fieldreaders, "_TIMES", {})


PARSE: dict[str, Callable[..., Run]] = {"get_run_status": via_status, "list_runs": via_list}

# --- optional run fields -----------------------------------------------------------------------

# (key sent, value sent, attribute, value read, field a problem names or None)
RUN_VALUES: list[tuple[str, Any, str, Any, str | None]] = [
    # numbers: the SDK takes numeric strings and integral floats
    ("credits", "12", "credits", 12.0, None),
    ("credits", 12.0, "credits", 12.0, None),
    ("credits", NAN, "credits", None, "credits"),
    ("credits", INF, "credits", None, "credits"),
    ("credits", -1, "credits", None, "credits"),
    ("credits", True, "credits", None, "credits"),
    ("credits", "twelve", "credits", None, "credits"),
    ("credits", 10**400, "credits", None, "credits"),
    ("total_steps", "10", "total_steps", 10, None),
    ("total_steps", -3, "total_steps", None, "total_steps"),
    ("total_steps", 2.5, "total_steps", None, "total_steps"),
    ("total_steps", [10], "total_steps", None, "total_steps"),
    ("finished_steps", True, "finished_steps", None, "finished_steps"),
    ("total_nodes", "-5", "total_nodes", None, "total_nodes"),
    # new SDK fields
    ("finished_nodes", 4, "finished_nodes", 4, None),
    ("finished_nodes", "4", "finished_nodes", 4, None),
    ("finished_nodes", -1, "finished_nodes", None, "finished_nodes"),
    ("paused_ms", "1500", "paused_ms", 1500, None),
    ("paused_ms", -1500, "paused_ms", None, "paused_ms"),
    ("paused_ms", NAN, "paused_ms", None, "paused_ms"),
    ("delivered_audio_ms", 5400000, "delivered_audio_ms", 5400000, None),
    ("delivered_audio_ms", -1, "delivered_audio_ms", None, "delivered_audio_ms"),
    ("output_line_count", "40", "output_line_count", 40, None),
    ("output_line_count", False, "output_line_count", None, "output_line_count"),
    ("pause_reason", "provider_outage", "pause_reason", "provider_outage", None),
    ("pause_reason", "a_new_reason", "pause_reason", "a_new_reason", None),  # open enum
    ("pause_reason", 5, "pause_reason", None, "pause_reason"),
    ("pause_error", "ElevenLabs is down", "pause_error", "ElevenLabs is down", None),
    ("pause_error", {"m": 1}, "pause_error", None, "pause_error"),
    # times: ISO-8601, or Unix seconds / milliseconds as the SDK (pydantic) reads them
    ("completed_at", T0, "completed_at", T0, None),
    ("completed_at", int(T0), "completed_at", T0, None),
    ("completed_at", int(T0 * 1000) + 250, "completed_at", T0 + 0.25, None),
    ("completed_at", str(int(T0)), "completed_at", T0, None),
    ("completed_at", "2026-11-29T11:00:00Z", "completed_at", T0, None),
    ("completed_at", "yesterday", "completed_at", None, "completed_at"),
    ("completed_at", True, "completed_at", None, "completed_at"),
    ("completed_at", NAN, "completed_at", None, "completed_at"),
    ("completed_at", -5, "completed_at", None, "completed_at"),
    ("completed_at", [2026], "completed_at", None, "completed_at"),
    ("created_at", {"at": 1}, "created_at", None, "created_at"),
    ("started_at", "five minutes ago", "started_at", None, "started_at"),
    # the run number and the status: lenient where the SDK is
    ("run_number", "2", "run_number", 2, None),
    ("run_number", 2.0, "run_number", 2, None),
    ("status", "", "status", "unknown", None),
    ("status", "  ", "status", "unknown", None),
    ("status", "quarantined", "status", "quarantined", None),  # unknown statuses pass through
    # free text
    ("triggered_by", "Jane Doe", "triggered_by", None, None),  # free-form person info
]
STATUS_ONLY: list[tuple[str, Any, str, Any, str | None]] = [
    ("token_cost", "100", "token_cost", 100.0, None),
    ("token_cost", NAN, "token_cost", None, "token_cost"),
    ("token_cost", -1000, "token_cost", None, "token_cost"),
    ("token_cost", -INF, "token_cost", None, "token_cost"),
    ("token_cost", True, "token_cost", None, "token_cost"),
    ("updated_at", True, "updated_at", None, "updated_at"),
    ("updated_at", int(T0), "updated_at", T0, None),
    ("error", {"message": "boom"}, "error", None, "error"),
    ("held_nodes", [{"node_id": "n4", "locales": ["de"]}], "held_nodes", ("n4",), None),
    ("held_nodes", [], "held_nodes", (), None),
    ("held_nodes", "n4", "held_nodes", None, "held_nodes"),
    ("held_nodes", [{"node_id": 4}], "held_nodes", None, "held_nodes"),
]


def _case_id(case: tuple[str, Any, str, Any, str | None]) -> str:
    return f"{case[0]}={case[1]!r}"[:40]


@pytest.mark.parametrize("endpoint", list(PARSE))
@pytest.mark.parametrize("case", RUN_VALUES, ids=_case_id)
def test_each_run_field_is_read_leniently_or_made_absent_alone(
    endpoint: str, case: tuple[str, Any, str, Any, str | None]
) -> None:
    key, sent, attribute, expected, problem = case
    run = PARSE[endpoint](**{key: sent})
    _assert_read(run, attribute, expected, problem)
    # Everything else is still read.
    assert run.id == "r-1" and run.finished_steps in (10, None) and run.total_nodes in (5, None)
    if key != "credits":
        assert run.credits == 12.0
    if key != "started_at":
        assert run.started_at is not None


@pytest.mark.parametrize("case", STATUS_ONLY, ids=_case_id)
def test_each_run_status_field_is_read_leniently_or_made_absent_alone(
    case: tuple[str, Any, str, Any, str | None],
) -> None:
    key, sent, attribute, expected, problem = case
    run = via_status(**{key: sent})
    _assert_read(run, attribute, expected, problem)
    assert run.credits == 12.0 and run.run_number == 3


def _assert_read(model: Any, attribute: str, expected: Any, problem: str | None) -> None:
    assert getattr(model, attribute) == expected
    if problem is None:
        assert model.problems == ()
    else:
        assert len(model.problems) == 1, model.problems
        assert model.problems[0].startswith(f"{problem}: "), model.problems


USAGE_VALUES: list[tuple[Any, float | None, bool]] = [
    # (cpu_seconds sent, read, a problem)
    (12.5, 12.5, False),
    ("12.5", 12.5, False),
    (-5, None, True),
    (-0.5, None, True),
    (NAN, None, True),
    (INF, None, True),
    ("NaN", None, True),
    ("lots", None, False),  # usage_summary is free-form: a non-number is not an error
    (True, None, False),
    ([1], None, False),
]


@pytest.mark.parametrize("endpoint", list(PARSE))
@pytest.mark.parametrize(("sent", "read", "problem"), USAGE_VALUES)
def test_usage_values_that_feed_counters_are_never_negative_or_nan(
    endpoint: str, sent: Any, read: float | None, problem: bool
) -> None:
    usage = {"cpu_seconds": sent, "memory_mb": 256, "model": "tts-2"}
    run = PARSE[endpoint](usage_summary=usage)
    assert run.usage_value("cpu_seconds") == read
    assert run.usage_value("memory_mb") == 256
    assert run.usage_value("model") is None
    if problem:
        assert len(run.problems) == 1 and run.problems[0].startswith(
            "usage_summary.cpu_seconds: "
        ), run.problems
    else:
        assert run.problems == ()


def test_problems_are_bounded_and_name_the_field_first() -> None:
    long_key = "k" * 5000
    run = via_status(
        token_cost="x" * 5000,
        usage_summary={long_key: -1, **{f"u{i}": -1 for i in range(100)}},
    )
    assert run.problems[0].startswith("token_cost: ")
    assert all(len(p) <= 200 for p in run.problems), max(map(len, run.problems))
    assert 2 <= len(run.problems) <= 10  # a flood of bad values is summed up, not listed


def test_a_key_echoed_back_in_a_value_is_never_quoted_in_a_problem_or_an_error() -> None:
    secret = TOKEN.removeprefix("op_live_")
    run = via_status(
        token_cost=TOKEN, completed_at=f"Bearer {TOKEN}", error=[TOKEN], usage_summary={TOKEN: -1}
    )
    assert len(run.problems) == 4, run.problems
    with pytest.raises(DecodeError) as caught:
        via_status(run_number=secret)
    for text in (*run.problems, str(caught.value)):
        assert secret not in text, text


# --- required run fields: the item is bad, and only it -----------------------------------------

BAD_REQUIRED: list[tuple[str, Any]] = [
    ("id", 12345),
    ("id", ""),
    ("id", None),
    ("run_number", "two"),
    ("run_number", -2),
    ("run_number", True),
    ("run_number", 2.5),
    ("run_number", None),
    ("run_number", NAN),
    ("status", 7),
    ("status", None),
]


@pytest.mark.parametrize(("key", "sent"), BAD_REQUIRED, ids=lambda v: repr(v)[:20])
def test_an_unusable_required_field_is_a_decode_error_for_that_run(key: str, sent: Any) -> None:
    with pytest.raises(DecodeError, match=key):
        via_status(**{key: sent})


@pytest.mark.parametrize(("key", "sent"), BAD_REQUIRED, ids=lambda v: repr(v)[:20])
def test_one_bad_list_runs_item_costs_only_itself(key: str, sent: Any) -> None:
    body = page(
        run_item(id="r-3", run_number=3, status="running", completed_at=None),
        run_item(**{"id": "r-2", "run_number": 2, key: sent}),
        run_item(id="r-1", run_number=1),
    )
    got = parse_run_page(body)
    assert [r.id for r in got.items] == ["r-3", "r-1"]
    assert got.size == 3
    (bad,) = got.bad
    assert bad[0] == ("r-2" if key != "id" else "data[1]")
    assert key in bad[1]


# --- workflows --------------------------------------------------------------------------------


def workflow_item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "wf-1", "user_id": "u1", "name": "nightly", "name_source": "user",
        "description": None, "created_at": "2026-01-01T00:00:00Z", "updated_at": NOW,
        "runs_count": 9, "last_run_at": "2026-11-29T11:00:00Z", "last_run_status": "failed",
        "run_status_counts": {"pending": 0, "running": 1, "completed": 6, "failed": 2,
                              "cancelled": 0, "paused": 0},
    }  # fmt: skip
    item.update(changes)
    return item


def _counts(**changes: Any) -> dict[str, Any]:
    counts: dict[str, Any] = {"pending": 0, "running": 1, "completed": 6, "failed": 2}
    counts.update(changes)
    return counts


WORKFLOW_VALUES: list[tuple[str, Any, str, Any, str | None]] = [
    ("runs_count", "12", "runs_count", 12, None),
    ("runs_count", -3, "runs_count", None, "runs_count"),
    ("runs_count", True, "runs_count", None, "runs_count"),
    ("runs_count", NAN, "runs_count", None, "runs_count"),
    ("runs_count", 10**400, "runs_count", None, "runs_count"),
    ("last_run_at", int(T0), "last_run_at", T0, None),
    ("last_run_at", "yesterday", "last_run_at", None, "last_run_at"),
    ("last_run_status", 3, "last_run_status", None, "last_run_status"),
    ("last_run_status", "", "last_run_status", "unknown", None),
    ("run_status_counts", [1, 2], "run_status_counts", None, "run_status_counts"),
    (
        "run_status_counts", _counts(failed="one"), "run_status_counts",
        {"pending": 0, "running": 1, "completed": 6}, "run_status_counts.failed",
    ),
    (
        "run_status_counts", _counts(failed="4"), "run_status_counts",
        {"pending": 0, "running": 1, "completed": 6, "failed": 4}, None,
    ),
    (
        "run_status_counts", _counts(failed=-2), "run_status_counts",
        {"pending": 0, "running": 1, "completed": 6}, "run_status_counts.failed",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", WORKFLOW_VALUES, ids=_case_id)
def test_each_workflow_field_is_read_leniently_or_made_absent_alone(
    case: tuple[str, Any, str, Any, str | None],
) -> None:
    key, sent, attribute, expected, problem = case
    workflow = parse_workflow(workflow_item(**{key: sent}))
    _assert_read(workflow, attribute, expected, problem)
    assert workflow.id == "wf-1" and workflow.name == "nightly"
    # Through the page (and its memo of unchanged items) too.
    memo: dict[str, Any] = {}
    for _ in range(2):
        got = parse_workflow_page(page(workflow_item(**{key: sent})), memo)
        assert not got.bad and got.items == (workflow,)


# --- Runs Summary -----------------------------------------------------------------------------


def summary_data(**changes: Any) -> dict[str, Any]:
    """Runs Summary as the SDK defines it: `delivered_audio_ms` is a required integer."""
    data: dict[str, Any] = {
        "total_runs": 9, "completed": 6, "failed": 2, "cancelled": 0, "pending": 0,
        "running": 1, "paused": 0, "pass_rate": 0.75, "delivered_audio_ms": 5400000,
        "average_duration_seconds": 600.0,
    }  # fmt: skip
    data.update(changes)
    return data


SUMMARY_COUNTS = {"completed": 6, "failed": 2, "cancelled": 0, "pending": 0, "running": 1,
                  "paused": 0}  # fmt: skip
SUMMARY_VALUES: list[tuple[str, Any, str, Any, str | None]] = [
    ("delivered_audio_ms", 5400000, "counts", SUMMARY_COUNTS, None),
    ("some_new_integer", 7, "counts", SUMMARY_COUNTS, None),
    ("completed", "6", "counts", SUMMARY_COUNTS, None),
    ("completed", -6, "counts", {**SUMMARY_COUNTS, "completed": None}, "completed"),
    ("completed", 10**400, "counts", {**SUMMARY_COUNTS, "completed": None}, "completed"),
    ("failed", True, "counts", {**SUMMARY_COUNTS, "failed": None}, "failed"),
    ("total_runs", "9", "total_runs", 9, None),
    ("total_runs", -1, "total_runs", None, "total_runs"),
    ("pass_rate", "0.75", "pass_rate", 0.75, None),
    ("pass_rate", NAN, "pass_rate", None, "pass_rate"),
    ("pass_rate", 1.5, "pass_rate", None, "pass_rate"),
    ("pass_rate", -0.1, "pass_rate", None, "pass_rate"),
    ("average_duration_seconds", -3.0, "average_duration_seconds", None,
     "average_duration_seconds"),
    ("average_duration_seconds", INF, "average_duration_seconds", None,
     "average_duration_seconds"),
]  # fmt: skip


@pytest.mark.parametrize("case", SUMMARY_VALUES, ids=_case_id)
def test_runs_summary_reads_known_keys_only_and_one_bad_value_alone(
    case: tuple[str, Any, str, Any, str | None],
) -> None:
    key, sent, attribute, expected, problem = case
    got = parse_runs_summary({"data": summary_data(**{key: sent}), "meta": meta()})
    if attribute == "counts":
        expected = {k: v for k, v in expected.items() if v is not None}
    _assert_read(got, attribute, expected, problem)
    if key != "pass_rate":
        assert got.pass_rate == 0.75


# --- duration: active time --------------------------------------------------------------------

DURATIONS: list[tuple[dict[str, Any], float | None]] = [
    ({}, 1200.0),  # 11:01 to 11:21, no paused_ms sent
    ({"paused_ms": 60000}, 1140.0),
    ({"paused_ms": 0}, 1200.0),
    ({"paused_ms": None}, 1200.0),
    ({"paused_ms": 5_000_000}, 0.0),  # never negative
    ({"paused_ms": -60000}, 1200.0),  # a negative pause is no pause
    ({"status": "running", "completed_at": None, "paused_ms": 30000}, 3510.0),  # to 12:00
    ({"started_at": None}, None),
]


@pytest.mark.parametrize("endpoint", list(PARSE))
@pytest.mark.parametrize(("changes", "seconds"), DURATIONS)
def test_duration_is_active_time_without_paused_time(
    endpoint: str, changes: dict[str, Any], seconds: float | None
) -> None:
    changes = {"paused_ms": None, **changes}
    assert PARSE[endpoint](**changes).duration() == seconds


# --- end to end: through the poller and the rendered exposition --------------------------------


def _answer(path_suffix: str, body: Callable[[], dict[str, Any]]) -> Callable[..., Any]:
    def override(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith(path_suffix):
            # Written out by hand: httpx's `json=` refuses NaN, which json.loads reads.
            content = json.dumps(body()).encode()
            return httpx.Response(200, content=content, headers=JSON_TYPE)
        return None

    return override


def test_runs_summary_delivered_audio_is_no_status_series() -> None:
    """Issue 16, acceptance 2: no `run_status_counts` in the catalogue, so the counts come from
    Runs Summary, whose `delivered_audio_ms` is an integer but not a status."""
    wf = FakeWorkflow(
        "wf-old", "old-api", [FakeRun("o1", 1, "completed", completed_at="2026-11-29T11:10:00Z")],
        with_counts=False,
    )  # fmt: skip
    fake = FakeOnePin([wf])
    summary = summary_data(total_runs=1, completed=1, failed=0, running=0, pass_rate=1.0)
    fake.overrides.append(_answer("/runs/summary", lambda: {"data": summary, "meta": meta()}))
    text = exposition(poll(poller_for(fake)))
    assert value(text, "onepin_workflow_runs", workflow_id="wf-old", status="completed") == 1
    statuses = {s.labels["status"] for s in series(text, "onepin_workflow_runs")}
    assert statuses == {"completed", "failed", "cancelled", "pending", "running", "paused"}


def test_one_bad_list_runs_item_leaves_the_workflow_up_with_its_other_runs() -> None:
    """Issue 11: a List Runs item with an unreadable run number must not take the workflow
    down, nor hide the runs listed after it."""
    wf = FakeWorkflow("wf-1", "nightly", [FakeRun("r-1", 1, "completed"), FakeRun("r-2", 2, "x")])
    fake = FakeOnePin([wf])
    items = [
        run_item(id="r-3", run_number=3, status="running", completed_at=None),
        run_item(id="r-2", run_number="two", status="running", completed_at=None),
        run_item(id="r-1", run_number=1, status="running", completed_at=None),
    ]
    fake.overrides.append(_answer("/runs", lambda: page(*items)))
    fake.overrides.append(
        _answer("/r-3/status", lambda: {"data": status_data(**items[0]), "meta": meta()})
    )
    fake.overrides.append(
        _answer("/r-1/status", lambda: {"data": status_data(**items[2]), "meta": meta()})
    )
    text = exposition(poll(poller_for(fake)))
    assert value(text, "onepin_workflow_up", workflow_id="wf-1") == 1
    assert value(text, "onepin_run_status", run_id="r-3", status="running") == 1
    assert value(text, "onepin_run_status", run_id="r-1", status="running") == 1


@pytest.mark.parametrize(
    ("token_cost", "cpu_seconds"),
    [(NAN, 2.0), (-1000, 2.0), (100, -5), ("100", NAN)],
    ids=["nan-cost", "negative-cost", "negative-cpu", "string-cost-nan-cpu"],
)
def test_a_bad_cost_in_a_finished_run_never_lowers_a_counter_nor_downs_the_workflow(
    token_cost: Any, cpu_seconds: Any
) -> None:
    """Issue 11: the run is counted, with the fields that parsed; the bad one adds nothing."""
    wf = FakeWorkflow("wf-1", "nightly", [FakeRun("r-1", 1, "running", completed_at=None)])
    fake = FakeOnePin([wf])
    state = {"status": "running", "completed_at": None}
    usage = {"cpu_seconds": cpu_seconds, "memory_mb": 256}

    def status_body() -> dict[str, Any]:
        data = status_data(id="r-1", run_number=1, token_cost=token_cost, usage_summary=usage)
        return {"data": {**data, **state}, "meta": meta()}

    fake.overrides.append(_answer("/r-1/status", status_body))
    poller = poller_for(fake)
    poll(poller)
    wf.runs[0].status = "completed"  # the catalogue and List Runs see it finish
    wf.runs[0].completed_at = "2026-11-29T11:21:00Z"
    state.update(status="completed", completed_at="2026-11-29T11:21:00Z")
    text = exposition(poll(poller))
    wid = {"workflow_id": "wf-1"}
    assert value(text, "onepin_workflow_up", **wid) == 1
    assert value(text, "onepin_workflow_runs_finished_total", status="completed", **wid) == 1
    cost = value(text, "onepin_workflow_run_token_cost_total", **wid)
    cpu = value(text, "onepin_workflow_run_cpu_seconds_total", **wid)
    good_cost = 100.0 if token_cost in (100, "100") else 0.0
    good_cpu = 2.0 if cpu_seconds == 2.0 else 0.0
    assert (cost, cpu) == (good_cost, good_cpu)


# --- what a problem or an error says, word for word -------------------------------------------

BIG = 10**400  # an integer no float holds
PROBLEM_TEXTS: list[tuple[str, Any, str]] = [
    ("token_cost", "abc", "token_cost: expected a number, got 'abc'"),
    ("token_cost", {"a": 1}, "token_cost: expected a number, got an object"),
    ("token_cost", [1, 2], "token_cost: expected a number, got a list of 2"),
    ("token_cost", "NaN", "token_cost: not a finite number (nan)"),
    ("token_cost", -1, "token_cost: negative (-1)"),
    ("token_cost", -(10**58), f"token_cost: negative (-1{'0' * 58})"),  # 60 characters: whole
    ("token_cost", -(10**59), f"token_cost: negative (-1{'0' * 55}...)"),  # 61: cut
    ("token_cost", BIG, f"token_cost: too large (1{'0' * 56}...)"),
    ("token_cost", "x" * 24, f"token_cost: expected a number, got '{'x' * 24}'"),
    ("token_cost", "x" * 25, "token_cost: expected a number, got a string of 25 characters"),
    ("total_steps", 2.5, "total_steps: not a whole number (2.5)"),
    ("total_steps", "1e30", "total_steps: too large ('1e30')"),
    ("created_at", BIG, f"created_at: out of range (1{'0' * 56}...)"),
    ("created_at", "inf", "created_at: expected an ISO-8601 or Unix time, got 'inf'"),
    ("held_nodes", "n4", "held_nodes: expected a list of {node_id, locales}, got 'n4'"),
    ("usage_summary", [1], "usage_summary: expected an object, got a list of 1"),
    ("usage_summary", {"cpu": -1}, "usage_summary.cpu: negative (-1)"),
    ("usage_summary", {"k" * 24: -1}, f"usage_summary.{'k' * 24}: negative (-1)"),
    ("usage_summary", {"k" * 25: -1}, "usage_summary.<a key of 25 characters>: negative (-1)"),
    ("usage_summary", {"a\nb": -1}, "usage_summary.'a\\nb': negative (-1)"),
    ("error", {"message": "boom"}, "error: expected a string, got an object"),
    ("created_at", [2026], "created_at: expected an ISO-8601 or Unix time, got a list of 1"),
    ("created_at", -5, "created_at: out of range (-5)"),
]


def _plain_id(value: Any) -> str:
    """A test id of letters, digits and _.=-: pytest escapes a backslash or a line break in an
    id again on each collection in one process, and mutmut runs the tests twice in one."""
    return "".join(c if c.isalnum() or c in "_.=-" else "_" for c in repr(value))[:30]


@pytest.mark.parametrize(("key", "sent", "problem"), PROBLEM_TEXTS, ids=_plain_id)
def test_a_problem_names_the_field_and_shows_the_value_bounded(
    key: str, sent: Any, problem: str
) -> None:
    assert via_status(**{key: sent}).problems == (problem,)


EDGE_VALUES: list[tuple[str, Any, Any]] = [
    ("total_nodes", "0", 0),  # zero is no negative count
    ("token_cost", "0", 0.0),
    ("run_number", str(MAX_INT), MAX_INT),  # the largest 64-bit integer is still one
    ("created_at", 0, 0.0),  # 1970 and 9999 are still times
    ("created_at", 0.5, 0.5),
    ("created_at", "9999-12-31T23:59:59Z", 253402300799.0),
    ("created_at", 2e10, 2e10),  # Unix seconds up to 2e10 (year 2603); milliseconds above
    ("created_at", 2e10 + 1000, 2e7 + 1),
]


@pytest.mark.parametrize(("key", "sent", "read"), EDGE_VALUES, ids=_plain_id)
def test_values_at_the_edges_are_read(key: str, sent: Any, read: Any) -> None:
    run = via_status(**{key: sent})
    assert (getattr(run, key), run.problems) == (read, ())


def test_workflow_and_summary_problems_word_for_word() -> None:
    assert parse_workflow(workflow_item(run_status_counts="x")).problems == (
        "run_status_counts: expected an object, got 'x'",
    )
    assert parse_workflow(workflow_item(run_status_counts={"failed": -1})).problems == (
        "run_status_counts.failed: negative (-1)",
    )
    got = parse_runs_summary({"data": summary_data(pass_rate=1.5), "meta": meta()})
    assert got.problems == ("pass_rate: above 1 (1.5)",)


DECODE_ERRORS: list[tuple[Callable[[Any], Any], Any, str]] = [
    (parse_run_page, {}, "list runs: response has no 'data' field"),
    (parse_run_page, {"data": {}}, "list runs: 'data' is not a list"),
    (parse_runs_summary, {}, "runs summary: response has no 'data' field"),
    (parse_runs_summary, {"data": []}, "data: expected an object, got list"),
    (models.parse_run, {"id": "r", "run_number": 1, "status": 5},
     "run.status: expected a string, got 5"),
    (models.parse_run, {"id": "r", "run_number": "x", "status": "failed"},
     "run.run_number: expected a number, got 'x'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("parse", "body", "error"), DECODE_ERRORS, ids=lambda v: getattr(v, "__name__", repr(v)[:30])
)  # ids without a memory address: the same in every process (mutmut selects tests by id)
def test_a_decode_error_says_where_and_what(
    parse: Callable[[Any], Any], body: Any, error: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        parse(body)
    assert str(caught.value) == error


def test_bad_list_items_are_named_by_id_or_place_and_the_rest_is_kept() -> None:
    got = parse_run_page(page(5, run_item(id="r-2", run_number="x"), run_item(id="r-1")))
    assert [r.id for r in got.items] == ["r-1"]
    assert got.bad == (
        ("data[0]", "data[0]: expected an object, got int"),
        ("r-2", "data[1].run_number: expected a number, got 'x'"),
    )
    workflows = parse_workflow_page(page(workflow_item(id="wf-2", name=7), workflow_item()))
    assert [w.id for w in workflows.items] == ["wf-1"]
    assert [b[0] for b in workflows.bad] == ["wf-2"]


# --- credits and delivered audio: sent in List Runs only, kept once the run finished ----------

DONE = Run("r-1", 3, "completed", T0, detailed=True)
LISTED = Run("r-1", 3, "completed", T0, credits=12.0, delivered_audio_ms=5400, output_line_count=40)
TAKEN = (12.0, 5400, 40)
WITH_LIST_FIELDS: dict[str, tuple[Run, Run | None, tuple[Any, ...]]] = {
    "both finished: taken from the list item": (DONE, LISTED, TAKEN),
    "no list item": (DONE, None, (None, None, None)),
    "another run's list item": (DONE, Run("r-9", 9, "completed", T0, credits=1.0),
                                (None, None, None)),
    "the status record still running": (Run("r-1", 3, "running", T0, detailed=True), LISTED,
                                         (None, None, None)),
    "the list item still running": (DONE, Run("r-1", 3, "running", T0, credits=1.0),
                                    (None, None, None)),
    "a value of its own is kept": (Run("r-1", 3, "failed", T0, credits=3.0), LISTED,
                                   (3.0, 5400, 40)),
    "an absent list value leaves it absent": (
        DONE, Run("r-1", 3, "completed", T0, credits=12.0), (12.0, None, None)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WITH_LIST_FIELDS))
def test_with_list_fields(case: str) -> None:
    run, listed, expected = WITH_LIST_FIELDS[case]
    got = run.with_list_fields(listed)
    assert (got.credits, got.delivered_audio_ms, got.output_line_count) == expected
    assert (got.id, got.status, got.detailed) == (run.id, run.status, run.detailed)


TAG = "\U000e0001"  # not printable: a problem quotes it as 10 characters


@pytest.mark.parametrize(
    ("usage", "problems"),
    [
        ({f"u{i}": -1 for i in range(8)}, tuple(f"usage_summary.u{i}: negative (-1)"
                                                for i in range(8))),
        ({f"u{i}": -1 for i in range(10)}, (*(f"usage_summary.u{i}: negative (-1)"
                                              for i in range(7)),
                                            "more: 3 other values could not be read")),
        # 200 characters are kept whole; a longer problem is cut to 200, ending in "..."
        ({TAG * 16 + "a" * 8: -10}, (f"usage_summary.{TAG * 16 + 'a' * 8!r}: negative (-10)",)),
        ({TAG * 24: -10}, (f"usage_summary.{TAG * 24!r}: negative (-10)"[:197] + "...",)),
    ],
)  # fmt: skip
def test_problems_are_bounded_word_for_word(
    usage: dict[str, Any], problems: tuple[str, ...]
) -> None:
    assert via_status(usage_summary=usage).problems == problems
    assert all(len(p) <= 200 for p in problems) and len(problems[0]) >= 30


def test_meta_without_a_timestamp() -> None:
    assert models.parse_meta({"meta": {"request_id": "req-9"}}) == models.Meta("req-9", None)
    assert models.parse_meta({"meta": {"timestamp": "later"}}) == models.Meta(None, None)


def test_a_remembered_workflow_page_is_read_whole_again() -> None:
    memo: dict[str, tuple[object, Any]] = {}
    body = page(workflow_item(id="wf-1"), workflow_item(id="wf-2", name="second"))
    first = parse_workflow_page(body, memo)
    again = parse_workflow_page(body, memo)  # every item as it was: each from the memo
    assert [w.id for w in again.items] == [w.id for w in first.items] == ["wf-1", "wf-2"]
    assert again.items[1] is first.items[1]


@pytest.mark.parametrize(
    ("suffix", "body", "field"),
    [
        ("/workflows", lambda: page(workflow_item(last_run_status=3)), "last_run_status"),
        (
            "/runs",
            lambda: page(
                run_item(id="r-2", run_number="two", status="running", completed_at=None),
                run_item(id="r-1", run_number=1),
            ),
            "run_number",
        ),
        (
            "/runs/summary",
            lambda: {"data": summary_data(average_duration_seconds=-5), "meta": meta()},
            "average_duration_seconds",
        ),
    ],
    ids=["catalogue-entry", "list-runs-item", "runs-summary"],
)
def test_a_value_left_out_is_logged_once_per_workflow_and_field(
    suffix: str, body: Callable[[], dict[str, Any]], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: whatever answer a bad value is in, it is told once (naming the field), not on
    every poll, and not never: README and SECURITY.md promise the log line."""
    wf = FakeWorkflow("wf-1", "nightly", [FakeRun("r-1", 1, "completed")], with_counts=False)
    fake = FakeOnePin([wf])
    fake.overrides.append(_answer(suffix, body))
    poller = poller_for(fake)
    with caplog.at_level(logging.WARNING, logger="exporter"):
        for _ in range(3):
            wf.runs.append(FakeRun(f"r-{len(wf.runs) + 1}", len(wf.runs) + 1, "completed"))
            text = exposition(poll(poller))
            assert value(text, "onepin_workflow_up", workflow_id="wf-1") == 1
    told = [r.getMessage() for r in caplog.records if field in r.getMessage()]
    assert len(told) == 1, [r.getMessage() for r in caplog.records]
