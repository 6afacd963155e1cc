"""The fetch planner's decisions, as tables: what each poll asks the API for, from the catalogue
entry and what the run ledger knows. No network, no clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pytest

from exporter.apierrors import ApiError, BudgetDeferred, DeadlineExceeded
from exporter.ledger import RunLedger
from exporter.models import Fingerprint, Run, Workflow
from exporter.planner import (
    AUTH_BACKOFF_MAX,
    AUTH_BACKOFF_MIN,
    Access,
    PageBack,
    WorkflowPlan,
    auth_backoff,
    awaiting_details,
    first_page_covered,
    must_list,
    not_reached,
    plan_workflow,
    planning_order,
    statuses_to_fetch,
    summary_key,
    wants_page_back,
    wants_summary,
    watched_statuses,
)

ALL = Access()
NO_STATUS = Access(status=False)
NO_SUMMARY = Access(summary=False)


def run(number: int, status: str = "completed", *, detailed: bool = False) -> Run:
    return Run(id=f"r{number}", run_number=number, status=status, created_at=0.0,
               detailed=detailed)  # fmt: skip


def entry(
    runs: int | None = 3,
    last_at: float | None = 100.0,
    last_status: str | None = "completed",
    counts: Mapping[str, int] | None = None,
) -> Workflow:
    return Workflow("wf", "name", runs, last_at, last_status, counts)


@dataclass
class K:
    """What the poller knows of a workflow (the planner's `Known`)."""

    ledger: RunLedger = field(default_factory=RunLedger)
    listed_fingerprint: Fingerprint | None = None
    undetailed: str | None = None
    summary: object = None
    summary_key: object = None


def ledger(
    high_water: int | None = 3,
    watching: tuple[Run, ...] = (),
    latest: Run | None = None,
    gaps: tuple[tuple[int, int], ...] = (),
    list_only: tuple[str, ...] = (),
    audio_due: Mapping[str, int] | None = None,
) -> RunLedger:
    return RunLedger(
        high_water=high_water,
        gaps=list(gaps),
        watching={r.id: r for r in watching},
        list_only=set(list_only),
        audio_due=dict(audio_due or {}),
        latest=latest,
    )


LISTED = entry().fingerprint()


@pytest.mark.parametrize(
    ("why", "known", "wf", "access", "expected"),
    [
        ("never listed", K(ledger(high_water=None), LISTED), entry(), ALL, True),
        ("catalogue entry unchanged", K(ledger(), LISTED), entry(), ALL, False),
        ("a run was created", K(ledger(), LISTED), entry(runs=4), ALL, True),
        ("the latest run ran again", K(ledger(), LISTED), entry(last_at=200.0), ALL, True),
        ("the latest run finished", K(ledger(), LISTED), entry(last_status="running"), ALL, True),
        ("no fingerprint in the catalogue", K(ledger(), None), entry(None, None), ALL, True),
        ("runs still to page back for", K(ledger(gaps=((1, 2),)), LISTED), entry(), ALL, True),
        ("a run only its list item reads", K(ledger(list_only=("r3",)), LISTED), entry(), ALL,
         True),
        ("delivered audio still due", K(ledger(audio_due={"r2": 2}), LISTED), entry(), ALL, True),
        ("watched, statuses allowed", K(ledger(watching=(run(3, "running"),)), LISTED), entry(),
         ALL, False),
        ("watched, statuses refused", K(ledger(watching=(run(3, "running"),)), LISTED), entry(),
         NO_STATUS, True),
        ("statuses refused, nothing watched", K(ledger(), LISTED), entry(), NO_STATUS, False),
    ],
)  # fmt: skip
def test_must_list(why: str, known: K, wf: Workflow, access: Access, expected: bool) -> None:
    assert must_list(known, wf, access) is expected, why


R1, R2, R3 = run(1), run(2), run(3)
ACTIVE4 = run(4, "running")


@pytest.mark.parametrize(
    ("why", "known", "runs", "asked", "access", "expected"),
    [
        ("start-up: the active runs and the newest", K(ledger(None)), [ACTIVE4, R3, R2], set(),
         ALL, {"r4"}),
        ("start-up, all finished: the newest only", K(ledger(None)), [R1, R3, R2], set(), ALL,
         {"r3"}),
        ("start-up, already asked", K(ledger(None)), [R3], {"r3"}, ALL, set()),
        ("start-up, one asked, one not", K(ledger(None)), [ACTIVE4, run(5, "running")], {"r4"},
         ALL, {"r5"}),
        ("the unusable latest, then an open one", K(ledger(2, latest=R3), undetailed="r3"),
         [R3, run(4)], set(), ALL, {"r4"}),
        ("start-up, no runs", K(ledger(None)), [], set(), ALL, set()),
        ("statuses refused", K(ledger(None)), [ACTIVE4, R3], set(), NO_STATUS, set()),
        ("finished since the last poll", K(ledger(2)), [R3, R2], set(), ALL, {"r3"}),
        ("new and active: its list item serves this poll", K(ledger(3)), [ACTIVE4, R3],
         set(), ALL, set()),
        ("new and active, in a gap", K(ledger(3, gaps=((2, 2),))), [run(2, "running")], set(),
         ALL, set()),
        ("in a gap", K(ledger(3, gaps=((2, 2),))), [R3, R2, R1], set(), ALL, {"r2"}),
        ("watched", K(ledger(3, watching=(run(2, "running"),))), [R3, R2], set(), ALL, {"r2"}),
        ("watched, asked already", K(ledger(3, watching=(run(2, "running"),))), [R2], {"r2"},
         ALL, set()),
        ("the latest, not yet detailed", K(ledger(3, latest=R3)), [R3, R2], set(), ALL, {"r3"}),
        ("the latest, detailed", K(ledger(3, latest=run(3, detailed=True))), [R3], set(), ALL,
         set()),
        ("the latest, unusable status", K(ledger(3, latest=R3), undetailed="r3"), [R3], set(),
         ALL, set()),
        ("an unusable one that is open", K(ledger(2), undetailed="r3"), [R3], set(), ALL, set()),
        ("decided, not the latest", K(ledger(3, latest=R3)), [R2], set(), ALL, set()),
    ],
)  # fmt: skip
def test_statuses_to_fetch(
    why: str, known: K, runs: list[Run], asked: set[str], access: Access, expected: set[str]
) -> None:
    assert statuses_to_fetch(known, runs, asked, access) == expected, why


def test_the_start_up_newest_is_the_highest_number_not_the_first_listed() -> None:
    listed = [run(2), run(5), run(3)]
    assert statuses_to_fetch(K(ledger(None)), listed, set(), ALL) == {"r5"}


def test_a_run_finished_since_and_counted_lately_is_not_asked_again() -> None:
    known = K(ledger(2))
    known.ledger.recent.append(hash("r3"))
    assert statuses_to_fetch(known, [R3], set(), ALL) == set()


COUNTS = {"completed": 3, "failed": 1, "cancelled": 2, "running": 1}


@pytest.mark.parametrize(
    ("wf", "seen", "expected"),
    [
        (entry(counts=COUNTS), 0, 3),  # the completed count (the average is over those)
        (entry(counts=COUNTS), 5, 3),  # the counts alone, whatever was read
        (entry(counts={"running": 2}), 0, 0),
        (entry(), 2, ((3, 100.0, True), "completed", 2)),
        (entry(None, None, None), 0, (None, None, 0)),
    ],
)
def test_summary_key(wf: Workflow, seen: int, expected: object) -> None:
    assert summary_key(wf, seen) == expected


WITH_COUNTS = entry(counts=COUNTS)
KEY = summary_key(WITH_COUNTS, 0)


@pytest.mark.parametrize(
    ("why", "known", "wf", "seen", "access", "expected"),
    [
        ("none yet", K(), WITH_COUNTS, 0, ALL, True),
        ("unchanged", K(summary="s", summary_key=KEY), WITH_COUNTS, 0, ALL, False),
        ("a run completed", K(summary="s", summary_key=KEY),
         entry(counts={**COUNTS, "completed": 4}), 0, ALL, True),
        ("a run failed: the counts give the pass ratio, the average is unchanged",
         K(summary="s", summary_key=KEY), entry(counts={**COUNTS, "failed": 2}), 0, ALL, False),
        ("a run started (not a finished count)", K(summary="s", summary_key=KEY),
         entry(counts={**COUNTS, "running": 2}), 0, ALL, False),
        ("refused", K(), WITH_COUNTS, 0, NO_SUMMARY, False),
        ("no counts, statuses were read", K(summary="s", summary_key=summary_key(entry(), 0)),
         entry(), 1, ALL, True),
    ],
)  # fmt: skip
def test_wants_summary(
    why: str, known: K, wf: Workflow, seen: int, access: Access, expected: bool
) -> None:
    assert wants_summary(known, wf, seen, access) is expected, why


IDLE = K(
    ledger(latest=run(3, detailed=True)), LISTED, summary="s", summary_key=summary_key(entry(), 0)
)


@pytest.mark.parametrize(
    ("why", "known", "wf", "asked", "expected"),
    [
        ("idle and unchanged", IDLE, entry(), None, WorkflowPlan(idle=True)),
        ("idle, no runs at all", replace(IDLE, ledger=ledger()), entry(), None,
         WorkflowPlan(idle=True)),
        ("a run was created", IDLE, entry(runs=4), None, WorkflowPlan(list_runs=True)),
        ("watched runs asked for already", IDLE, entry(), {"r4"}, WorkflowPlan()),
        ("the latest run needs its details", replace(IDLE, ledger=ledger(latest=R3)), entry(),
         None, WorkflowPlan(statuses=frozenset({"r3"}))),
        ("the latest is asked for already", replace(IDLE, ledger=ledger(latest=R3)), entry(),
         {"r3"}, WorkflowPlan()),
        ("a summary is wanted", replace(IDLE, summary=None), entry(), None, WorkflowPlan()),
    ],
)  # fmt: skip
def test_plan_workflow(
    why: str, known: K, wf: Workflow, asked: set[str] | None, expected: WorkflowPlan
) -> None:
    assert plan_workflow(known, wf, asked, ALL) == expected, why


def test_a_plan_without_statuses_allowed_lists_what_is_watched() -> None:
    known = replace(IDLE, ledger=ledger(watching=(run(4, "running"),), latest=R3))
    assert plan_workflow(known, entry(), None, NO_STATUS) == WorkflowPlan(list_runs=True)
    assert plan_workflow(known, entry(), {"r4"}, ALL) == WorkflowPlan(statuses=frozenset({"r3"}))


@pytest.mark.parametrize(
    ("watching", "access", "expected"),
    [
        ((), ALL, []),
        ((run(4, "running"), run(5, "queued")), ALL, ["r4", "r5"]),
        ((run(4, "running"),), NO_STATUS, []),
    ],
)
def test_watched_statuses(watching: tuple[Run, ...], access: Access, expected: list[str]) -> None:
    assert watched_statuses(ledger(watching=watching), access) == expected


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, AUTH_BACKOFF_MIN), (2, 60.0), (3, 120.0), (5, 480.0), (6, AUTH_BACKOFF_MAX),
     (20, AUTH_BACKOFF_MAX)],
)  # fmt: skip
def test_auth_backoff_doubles_up_to_its_cap(failures: int, expected: float) -> None:
    assert auth_backoff(failures) == expected


@pytest.mark.parametrize(
    ("count", "limit", "started", "expected"),
    [(20, 20, True, True), (25, 20, True, True), (19, 20, True, False), (20, 20, False, False)],
)
def test_wants_page_back(count: int, limit: int, started: bool, expected: bool) -> None:
    assert wants_page_back(count, limit, ledger(3 if started else None)) is expected


@pytest.mark.parametrize(
    ("numbers", "limit", "expected"),
    [([], 20, None), ([9, 8, 7], 3, (7, 9)), ([9, 8, 7], 4, (1, 9)), ([5, 9, 7], 3, (5, 9))],
)
def test_first_page_covered(numbers: list[int], limit: int, expected: object) -> None:
    assert first_page_covered(numbers, limit) == expected


def page_numbers(top: int, offset: int, size: int, bottom: int = 1) -> list[int]:
    """Run numbers of a List Runs page of a workflow whose runs are numbered bottom..top."""
    return [n for n in range(top - offset, top - offset - size, -1) if n >= bottom]


def test_page_back_adjacent_pages_cover_down_to_what_they_show() -> None:
    pager = PageBack(top=100, low=81, end=20, page_size=10)
    assert pager.offset(80) == 20  # right after the first page
    assert pager.took(20, page_numbers(100, 20, 10), 80) is False
    assert (pager.low, pager.end, pager.covered) == (71, 30, [(71, 80), (71, 80)])


def test_page_back_a_short_page_reaches_the_oldest_run() -> None:
    pager = PageBack(top=25, low=6, end=20, page_size=10)
    assert pager.took(20, page_numbers(25, 20, 10), 5) is True
    assert pager.covered == [(1, 5), (1, 5)]
    assert pager.low == 1


def test_page_back_an_empty_page_shows_nothing_below() -> None:
    pager = PageBack(top=25, low=6, end=20, page_size=10)
    assert pager.took(20, [], 5) is True
    assert pager.covered == [(6, 6), (1, 5)]


def test_page_back_jumps_to_the_estimated_offset_of_a_gap() -> None:
    pager = PageBack(top=100, low=81, end=20, page_size=10)
    assert pager.offset(50) == 50  # run 50 sits at offset top - 50
    assert pager.took(50, page_numbers(100, 50, 10), 50) is False
    assert pager.covered == [(41, 50), (41, 50)]
    assert (pager.low, pager.end, pager.shift) == (41, 20, 0)


def test_page_back_corrects_an_estimate_that_was_not_deep_enough() -> None:
    # More runs than numbers tell (a lagging count): the page at offset 50 shows 70..61, so
    # the next estimate goes 11 deeper, to where run 50 should be.
    pager = PageBack(top=100, low=81, end=20, page_size=10)
    assert pager.took(50, list(range(70, 60, -1)), 50) is False
    assert pager.shift == -11
    assert pager.offset(50) == 61
    assert pager.covered == [(61, 70)]
    assert (pager.low, pager.end) == (81, 20)


def test_page_back_corrects_an_estimate_that_went_too_deep() -> None:
    # Runs deleted: the page at offset 50 shows 45..36, so the next estimate goes 5 less deep.
    pager = PageBack(top=100, low=81, end=20, page_size=10)
    assert pager.took(50, list(range(45, 35, -1)), 50) is False
    assert pager.shift == 5
    assert pager.offset(50) == 45
    assert pager.covered == [(36, 45)]


def test_page_back_an_empty_page_far_off_goes_a_page_less_deep() -> None:
    pager = PageBack(top=100, low=81, end=20, page_size=10)
    assert pager.took(50, [], 50) is False
    assert pager.shift == 10
    assert pager.offset(50) == 40
    assert pager.covered == [(81, 81)]


def test_page_back_offset_never_goes_above_the_pages_read() -> None:
    pager = PageBack(top=100, low=81, end=20, page_size=10, shift=40)
    assert pager.offset(70) == 20


def test_page_back_a_page_whose_lowest_is_the_run_needed_covers_it() -> None:
    pager = PageBack(top=100, low=81, end=20, page_size=10)
    assert pager.took(41, list(range(59, 49, -1)), 50) is False
    assert pager.covered == [(50, 59), (50, 59)]
    assert (pager.low, pager.end, pager.shift) == (50, 20, 0)


def test_page_back_corrections_add_up() -> None:
    pager = PageBack(top=100, low=81, end=20, page_size=10)
    assert pager.took(50, list(range(70, 60, -1)), 50) is False  # 11 too shallow
    assert pager.took(61, list(range(45, 35, -1)), 50) is False  # then 5 too deep
    assert pager.shift == -11 + 5
    assert pager.offset(50) == 56


SUMMARY = object()  # a Runs Summary read


@pytest.mark.parametrize(
    ("why", "known", "access", "expected"),
    [
        ("never listed", K(ledger(high_water=None)), ALL, True),
        ("never listed, nothing else allowed", K(ledger(high_water=None)),
         Access(status=False, summary=False), True),
        ("listed, latest not read in full", K(ledger(latest=run(3)), summary=SUMMARY), ALL, True),
        ("... but statuses refused", K(ledger(latest=run(3)), summary=SUMMARY), NO_STATUS, False),
        ("... but its record was unusable", K(ledger(latest=run(3)), undetailed="r3",
         summary=SUMMARY), ALL, False),
        ("latest active, watched: asked every poll",
         K(ledger(latest=run(3, "running"), watching=(run(3, "running"),)), summary=SUMMARY),
         ALL, False),
        ("latest read, no summary yet", K(ledger(latest=run(3, detailed=True))), ALL, True),
        ("... summaries refused", K(ledger(latest=run(3, detailed=True))), NO_SUMMARY, False),
        ("everything read", K(ledger(latest=run(3, detailed=True)), summary=SUMMARY), ALL, False),
        ("listed, no run at all, summary read", K(ledger(), summary=SUMMARY), ALL, False),
    ],
)  # fmt: skip
def test_awaiting_details(why: str, known: K, access: Access, expected: bool) -> None:
    assert awaiting_details(known, access) is expected, why


def test_planning_order_puts_listed_workflows_first_then_never_listed_ones_with_an_active_run() -> (
    None
):
    entries = {
        "cold-done": replace(entry(last_status="completed"), id="cold-done"),
        "cold-new": replace(entry(runs=0, last_at=None, last_status=None), id="cold-new"),
        "cold-running": replace(entry(last_status="running"), id="cold-running"),
        "warm": replace(entry(last_status="completed"), id="warm"),
        "cold-paused": replace(entry(last_status="paused"), id="cold-paused"),
        "cold-odd": replace(entry(last_status="queued_for_review"), id="cold-odd"),
    }
    known = {wid: K(ledger(high_water=None)) for wid in entries}
    known["warm"] = K(ledger())
    # A status the exporter does not know may still change: taken as active. Ties keep the
    # catalogue's order.
    assert planning_order(entries, known) == [
        "warm", "cold-running", "cold-paused", "cold-odd", "cold-done", "cold-new",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("why", "error", "deadline_passed", "expected"),
    [
        ("no error", None, False, False),
        ("no error, late", None, True, False),
        ("not started: deadline or the backlog's share", DeadlineExceeded("poll", "x"), False,
         True),
        ("deferred by the request budget", BudgetDeferred("list_runs", "x"), False, True),
        ("an answer that came too late", ApiError("list_runs", "no answer"), True, True),
        ("a 500 within the deadline", ApiError("list_runs", "boom", 500), False, False),
    ],
)  # fmt: skip
def test_not_reached(
    why: str, error: ApiError | None, deadline_passed: bool, expected: bool
) -> None:
    assert not_reached(error, deadline_passed) is expected, why
