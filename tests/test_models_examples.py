"""Parsing API bodies into models: fixed examples, fast (the tests mutation testing runs).

test_properties.py checks that any body gives a model or a DecodeError; these check which
model, and what the error says (it is what an operator reads in a log line).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from exporter import fieldreaders
from exporter.models import (
    DecodeError,
    Meta,
    Pagination,
    Run,
    Workflow,
    parse_error_message,
    parse_meta,
    parse_pagination,
    parse_run,
    parse_run_page,
    parse_run_status,
    parse_runs_summary,
    parse_time,
    parse_workflow,
    parse_workflow_page,
)

NOW = "2026-11-29T12:00:00Z"
NOW_TS = 1795953600.0
META = {"request_id": "req-1", "timestamp": NOW}


@pytest.fixture(autouse=True)
def fresh_time_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test parses its times itself, not from what an earlier test left in the memo."""
    monkeypatch.setattr(fieldreaders, "_TIMES", {})


def error_of(parse: Any, *args: Any) -> str:
    with pytest.raises(DecodeError) as err:
        parse(*args)
    return str(err.value)


# --- times --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (NOW, NOW_TS),
        ("2026-11-29T12:00:00+00:00", NOW_TS),
        ("2026-11-29T13:30:00+01:30", NOW_TS),
        ("2026-11-29T12:00:00", NOW_TS),  # no offset: UTC
        ("2026-11-29T12:00:00.250Z", NOW_TS + 0.25),
        (" 2026-11-29T12:00:00Z\n", NOW_TS),
    ],
)
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds
    assert parse_time(text) == seconds  # and from the memo


def test_parse_time_rejects_what_is_not_iso_8601_naming_where() -> None:
    assert error_of(parse_time, "yesterday", "data.created_at") == (
        "data.created_at: expected an ISO-8601 time, got 'yesterday'"
    )
    assert error_of(parse_time, "yesterday") == "time: expected an ISO-8601 time, got 'yesterday'"


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
def test_a_time_without_offset_is_utc_whatever_the_machine_zone() -> None:
    assert parse_time("2026-11-29T12:00:00") == NOW_TS
    assert parse_time("2026-11-29T13:30:00+01:30") == NOW_TS


def test_the_time_memo_is_emptied_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fieldreaders, "TIME_MEMO_SIZE", 3)
    monkeypatch.setattr(fieldreaders, "_TIMES", {})
    for second in range(3):
        parse_time(f"2026-11-29T12:00:0{second}Z")
    assert len(fieldreaders._TIMES) == 3
    assert parse_time("2026-11-29T12:00:09Z") == NOW_TS + 9
    assert fieldreaders._TIMES == {"2026-11-29T12:00:09Z": NOW_TS + 9}


# --- workflows ----------------------------------------------------------------------------------

WORKFLOW = {
    "id": "wf-1",
    "name": "nightly-etl",
    "runs_count": 12,
    "last_run_at": NOW,
    "last_run_status": "completed",
    "run_status_counts": {"completed": 10, "failed": 1, "cancelled": 1, "paused": None},
}


def test_parse_workflow() -> None:
    assert parse_workflow(WORKFLOW) == Workflow(
        "wf-1", "nightly-etl", 12, NOW_TS, "completed", {"completed": 10, "failed": 1,
                                                        "cancelled": 1}
    )  # fmt: skip


def test_a_workflow_without_optional_fields() -> None:
    wf = parse_workflow({"id": "wf-1", "name": "n", "runs_count": None})
    assert wf == Workflow("wf-1", "n", None, None, None, None)
    assert wf.fingerprint() is None


@pytest.mark.parametrize(
    ("runs_count", "last_run_at", "status", "fingerprint"),
    [
        (3, None, None, (3, None, False)),
        (None, NOW, "running", (None, NOW_TS, False)),
        (3, NOW, "completed", (3, NOW_TS, True)),
        (3, NOW, "cancelled", (3, NOW_TS, True)),
    ],
)
def test_the_fingerprint_is_what_changes_when_a_run_is_created_or_finishes(
    runs_count: int | None, last_run_at: str | None, status: str | None, fingerprint: Any
) -> None:
    raw = {"id": "w", "name": "n", "runs_count": runs_count, "last_run_at": last_run_at,
           "last_run_status": status}  # fmt: skip
    assert parse_workflow(raw).fingerprint() == fingerprint


def test_the_default_place_named_in_a_workflow_error() -> None:
    assert error_of(parse_workflow, {"name": "n"}) == (
        "workflow.id: expected a non-empty string, got None"
    )


def test_a_workflow_that_is_not_an_object() -> None:
    assert error_of(parse_workflow, ["wf-1"], "data[0]") == (
        "data[0]: expected an object, got list"
    )


class _Mapping(dict[str, Any]):
    """A Mapping that is not exactly a dict (the readers accept any Mapping)."""


def test_any_mapping_is_an_object() -> None:
    assert parse_workflow(_Mapping(id="w", name="n")).id == "w"


def test_a_workflow_page_keeps_the_good_items_and_names_the_bad() -> None:
    body = {
        "data": [
            WORKFLOW,
            {"id": "wf-2", "name": 5},
            {"name": "no id"},
            "junk",
            {"id": "", "name": "n"},
            {"id": 5, "name": "n"},
        ],
        "meta": META,
        "pagination": {"limit": 100, "total": 4},
    }
    page = parse_workflow_page(body)
    assert [w.id for w in page.items] == ["wf-1"]
    assert page.bad == (
        ("wf-2", "data[1].name: expected a non-empty string, got 5"),
        ("data[2]", "data[2].id: expected a non-empty string, got None"),
        ("data[3]", "data[3]: expected an object, got str"),
        ("data[4]", "data[4].id: expected a non-empty string, got ''"),
        ("data[5]", "data[5].id: expected a non-empty string, got 5"),
    )
    assert page.size == 6
    assert page.meta == Meta("req-1", NOW_TS)
    assert page.pagination == Pagination(100, 4)


def test_the_workflow_memo_reuses_unchanged_items_only() -> None:
    memo: dict[str, tuple[object, Workflow]] = {}
    first = parse_workflow_page({"data": [WORKFLOW]}, memo)
    again = parse_workflow_page({"data": [dict(WORKFLOW)]}, memo)
    assert again.items[0] is first.items[0]
    changed = parse_workflow_page({"data": [{**WORKFLOW, "runs_count": 13}]}, memo)
    assert changed.items[0].runs_count == 13
    counts = {**WORKFLOW, "runs_count": 13, "run_status_counts": {"completed": 11}}
    assert parse_workflow_page({"data": [counts]}, memo).items[0].run_status_counts == {
        "completed": 11
    }
    renamed = parse_workflow_page({"data": [{**counts, "name": "new"}]}, memo)
    assert renamed.items[0].name == "new"
    status = parse_workflow_page(
        {"data": [{**counts, "name": "new", "last_run_status": "x"}]}, memo
    )
    assert status.items[0].last_run_status == "x"
    later = parse_workflow_page(
        {"data": [{**counts, "name": "new", "last_run_status": "x", "last_run_at": None}]}, memo
    )
    assert later.items[0].last_run_at is None
    # An item whose id is not a string is parsed (and reported), never memoised.
    bad = parse_workflow_page({"data": [{"id": 5, "name": "n"}, {"id": 5, "name": "n"}]}, memo)
    assert len(bad.bad) == 2 and not bad.items
    junk = parse_workflow_page({"data": ["junk", None, WORKFLOW]}, memo)
    assert [b[0] for b in junk.bad] == ["data[0]", "data[1]"] and len(junk.items) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"meta": META}, "list workflows: response has no 'data' field"),
        ([], "list workflows: response has no 'data' field"),
        ({"data": {"id": "w"}}, "list workflows: 'data' is not a list"),
    ],
)
def test_a_workflow_page_without_a_list(body: Any, message: str) -> None:
    assert error_of(parse_workflow_page, body) == message


# --- runs ---------------------------------------------------------------------------------------

RUN = {
    "id": "r-1",
    "run_number": 7,
    "status": "running",
    "created_at": "2026-11-29T11:00:00Z",
    "started_at": "2026-11-29T11:01:00Z",
    "completed_at": None,
    "updated_at": "2026-11-29T11:59:00Z",
    "total_nodes": 5,
    "total_steps": 10,
    "finished_steps": 4,
    "token_cost": 12.5,
    "credits": 3,
    "usage_summary": {"cpu_seconds": 1.5, "memory_mb": 256, "note": "text", "flag": True},
    "error": None,
    "triggered_by": {"user_id": "u1", "user_name": "Jane Doe"},
}


def test_parse_run() -> None:
    assert parse_run(RUN, observed_at=NOW_TS) == Run(
        "r-1", 7, "running", NOW_TS - 3600, started_at=NOW_TS - 3540, completed_at=None,
        updated_at=NOW_TS - 60, total_nodes=5, total_steps=10, finished_steps=4,
        token_cost=12.5, credits=3.0, usage={"cpu_seconds": 1.5, "memory_mb": 256.0},
        error=None, triggered_by="Jane Doe", observed_at=NOW_TS, detailed=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("triggered_by", "user"),
    [(None, None), ({"user_name": ""}, None), ({"user_name": 5}, None), ("Jane", None)],
)
def test_triggered_by_only_from_a_user_name(triggered_by: Any, user: str | None) -> None:
    assert parse_run({**RUN, "triggered_by": triggered_by}).triggered_by == user


@pytest.mark.parametrize(
    ("usage", "parsed"),
    [
        (None, None),
        ({}, {}),
        ({"a": 1, "b": float("nan"), "c": 10**400, "d": [1]}, {"a": 1.0}),
    ],
)
def test_usage_keeps_finite_numbers_only(usage: Any, parsed: dict[str, float] | None) -> None:
    assert parse_run({**RUN, "usage_summary": usage}).usage == parsed


def test_a_finished_run() -> None:
    run = parse_run(
        {**RUN, "status": "failed", "completed_at": "2026-11-29T11:31:00Z", "error": "boom"}
    )
    assert run.completed_at == NOW_TS - 1740 and run.error == "boom" and run.terminal
    assert run.duration() == 1800.0


def test_run_numbers_are_integers() -> None:
    assert parse_run({**RUN, "run_number": 7.0}).run_number == 7
    assert isinstance(parse_run({**RUN, "total_steps": 10.0}).total_steps, int)


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("completed", True), ("failed", True), ("cancelled", True), ("running", False),
     ("paused", False), ("pending", False), ("quarantined", False)],
)  # fmt: skip
def test_terminal_statuses(status: str, terminal: bool) -> None:
    assert Run("r", 1, status, None).terminal is terminal


@pytest.mark.parametrize(
    ("run", "duration"),
    [
        (Run("r", 1, "completed", 0.0, started_at=100.0, completed_at=160.0), 60.0),
        (Run("r", 1, "running", 0.0, started_at=100.0, observed_at=130.0), 30.0),
        (Run("r", 1, "running", 0.0, started_at=100.0, observed_at=90.0), 0.0),  # clock skew
        (Run("r", 1, "running", 0.0, started_at=100.0), None),  # no API clock
        (Run("r", 1, "pending", 0.0, observed_at=130.0), None),  # not started
        (Run("r", 1, "failed", 0.0, started_at=100.0, observed_at=130.0), None),  # no end
        (Run("r", 1, "failed", 0.0, started_at=100.0, completed_at=100.0), 0.0),
    ],
)
def test_run_duration(run: Run, duration: float | None) -> None:
    assert run.duration() == duration


def test_usage_value() -> None:
    assert Run("r", 1, "running", None).usage_value("cpu_seconds") is None
    run = Run("r", 1, "running", None, usage={"cpu_seconds": 2.0})
    assert run.usage_value("cpu_seconds") == 2.0 and run.usage_value("x") is None


def test_a_run_page_reads_the_api_clock_into_every_run() -> None:
    page = parse_run_page(
        {"data": [RUN, {**RUN, "id": "r-2"}], "meta": META, "pagination": {"total": 2}}
    )
    assert [r.id for r in page.items] == ["r-1", "r-2"]
    assert all(r.observed_at == NOW_TS and not r.detailed for r in page.items)
    assert page.pagination == Pagination(None, 2)
    assert page.meta == Meta("req-1", NOW_TS)


def test_run_status_is_detailed() -> None:
    run = parse_run_status({"data": RUN, "meta": META})
    assert run.detailed and run.observed_at == NOW_TS and run.id == "r-1"
    assert error_of(parse_run_status, {"data": None}) == ("data: expected an object, got NoneType")
    assert error_of(parse_run_status, {}) == "run status: response has no 'data' field"


# --- meta and pagination ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "meta"),
    [
        ({"meta": META}, Meta("req-1", NOW_TS)),
        ({"meta": {"request_id": 5, "timestamp": "noon"}}, Meta(None, None)),
        ({"meta": {"timestamp": 1795953600}}, Meta(None, 1795953600.0)),  # Unix time, as the SDK
        ({"meta": "x"}, Meta(None, None)),
        ({}, Meta(None, None)),
        ([1], Meta(None, None)),
    ],
)
def test_parse_meta(body: Any, meta: Meta) -> None:
    assert parse_meta(body) == meta


@pytest.mark.parametrize(
    ("pagination", "parsed"),
    [
        ({"limit": 20, "total": 41}, Pagination(20, 41)),
        ({"limit": True, "total": False}, Pagination(None, None)),
        ({"limit": 2.0, "total": "41"}, Pagination(None, None)),
        (None, Pagination(None, None)),
        ([20], Pagination(None, None)),
    ],
)
def test_parse_pagination(pagination: Any, parsed: Pagination) -> None:
    assert parse_pagination({"pagination": pagination}) == parsed


# --- runs summary -------------------------------------------------------------------------------


def test_summary_figures_sent_as_integers_are_not_run_statuses() -> None:
    summary = parse_runs_summary(
        {"data": {"total_runs": 3, "completed": 3, "pass_rate": 1, "average_duration_seconds": 600}}
    )
    assert summary.counts == {"completed": 3}
    assert (summary.pass_rate, summary.average_duration_seconds) == (1.0, 600.0)


# --- error bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (
            {"error": {"code": "NOT_FOUND", "message": "no run"}, "meta": META},
            ("NOT_FOUND", "no run", "req-1"),
        ),
        ({"error": {"code": 404}}, ("404", None, None)),
        ({"code": "RATE_LIMITED", "message": "slow down"}, ("RATE_LIMITED", "slow down", None)),
        ({"message": "oops"}, (None, "oops", None)),
        ({"code": "BUSY"}, ("BUSY", None, None)),
        (
            {"detail": [{"loc": ["query", "limit"], "msg": "too big"}, {"msg": "bad"}, "x"]},
            ("VALIDATION_ERROR", "query.limit: too big; bad", None),
        ),
        ({"detail": [{"loc": "limit", "msg": "m"}]}, ("VALIDATION_ERROR", "m", None)),
        (
            {"detail": [{"msg": str(i)} for i in range(5)]},
            ("VALIDATION_ERROR", "0; 1; 2", None),
        ),
        ({"detail": ["x"]}, ("VALIDATION_ERROR", None, None)),
        ({"detail": []}, (None, None, None)),
        ({"detail": "Not authenticated"}, (None, "Not authenticated", None)),
        ({"meta": META}, (None, None, "req-1")),
        ("text", (None, None, None)),
    ],
)
def test_parse_error_message(body: Any, parsed: tuple[str | None, ...]) -> None:
    assert parse_error_message(body) == parsed


def test_a_long_error_message_is_shortened_to_200_characters() -> None:
    _, message, _ = parse_error_message({"message": "x" * 500})
    assert message == "x" * 197 + "..."
    _, exact, _ = parse_error_message({"message": "y" * 200})
    assert exact == "y" * 200
    _, longer, _ = parse_error_message({"message": "z" * 201})
    assert longer == "z" * 197 + "..."
