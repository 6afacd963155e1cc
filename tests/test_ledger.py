"""The run ledger's decisions, as tables: what each sequence of observations counts."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from exporter.apimodels import Meta
from exporter.ledger import (
    MAX_GAPS,
    MAX_STEPS_DUE,
    RECENT_IDS,
    STEPS_ATTEMPTS,
    RunLedger,
    Totals,
    _without,
    addable,
    ended_at,
    newer_end,
)
from exporter.models import Run
from exporter.nodes import (
    FailedNode,
    FinishedRunNodes,
    NodeDuration,
    NodeRef,
    RunSteps,
    finished_run_nodes,
)
from exporter.redact import Redactor

META = Meta(None, None)
REDACTOR = Redactor([])


def run(number: int, status: str = "completed", *, detailed: bool = True, **fields: object) -> Run:
    """Run number n, id r<n>, 100 s long, 10 tokens and 2 CPU seconds unless told; finished, it
    delivered 1.5 s of audio (as a status record merged with its List Runs item tells)."""
    base = Run(
        id=f"r{number}",
        run_number=number,
        status=status,
        created_at=0.0,
        started_at=1000.0 * number,
        completed_at=1000.0 * number + 100 if status in ("completed", "failed") else None,
        token_cost=10.0,
        usage={"cpu_seconds": 2.0},
        detailed=detailed,
        delivered_audio_ms=1500 if status in ("completed", "failed", "cancelled") else None,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def listing(*runs: Run, final: bool = True) -> list[tuple[Run, bool]]:
    return [(r, final) for r in runs]


def span(runs: list[tuple[Run, bool]], short: bool = False) -> list[tuple[int, int]]:
    """The numbers a page of these runs shows every run of (down to 1 when `short`)."""
    numbers = [r.run_number for r, _ in runs]
    return [(1 if short else min(numbers), max(numbers))] if numbers else []


def page(*runs: Run, final: bool = True, short: bool = False) -> tuple[str, object]:
    items = listing(*runs, final=final)
    return ("list", (items, span(items, short)))


def status(r: Run, final: bool = True) -> tuple[str, object]:
    return ("seen", (r, final))


def counted_numbers(ledger: RunLedger, steps: list[tuple[str, object]]) -> list[list[int]]:
    out = []
    for kind, arg in steps:
        if kind == "list":
            items, covered = arg  # type: ignore[misc]
            out.append([r.run_number for r in ledger.listed(items, covered)])
        elif kind == "seen":
            r, final = arg  # type: ignore[misc]
            out.append([r.run_number] if ledger.seen(r, final) else [])
        else:
            ledger.forget(str(arg))
            out.append([])
    return out


CASES: dict[str, tuple[list[tuple[str, object]], list[list[int]]]] = {
    "first listing is history": (
        [page(run(1), run(2, "failed"), short=True), page(run(1), run(2, "failed"), short=True)],
        [[], []],
    ),
    "a new run is counted when it finishes, once": (
        [page(run(1), short=True), page(run(2, "running"), run(1)), status(run(2, "failed")),
         status(run(2, "failed")), page(run(2, "failed"), run(1))],
        [[], [], [2], [], []],
    ),
    "a run that was active at the first listing is counted when it ends": (
        [page(run(2, "running"), run(1), short=True), page(run(2, "completed"), run(1))],
        [[], [2]],
    ),
    "a lagging replica hides the newest run on alternate polls": (
        [page(run(5), run(4), short=True), page(run(6, "failed"), run(5)), page(run(5), run(4)),
         page(run(6, "failed"), run(5)), page(run(5), run(4)), page(run(6, "failed"), run(5))],
        [[], [6], [], [], [], []],
    ),
    "a finished run shown active again by a lagging replica is not watched again": (
        [page(run(1), short=True), page(run(2)), page(run(2, "running")), status(run(2))],
        [[], [2], [], []],
    ),
    "a counted run coming back under a higher number is not counted again": (
        [page(run(1), short=True), page(run(2, "failed")), page(run(9, "failed", id="r2"))],
        [[], [2], []],
    ),
    "a finished run without its status record waits for it": (
        [page(run(1), short=True), page(run(2, "failed", detailed=False), final=False),
         page(run(2, "failed", detailed=False), final=False), status(run(2, "failed"))],
        [[], [], [], [2]],
    ),
    "an empty listing changes nothing": (
        [page(run(1), short=True), ("list", ([], [])), page(run(2), run(1))],
        [[], [], [2]],
    ),
    "an empty first listing: every later run is new": (
        [("list", ([], [])), page(run(2), run(1))],
        [[], [2, 1]],
    ),
    "a burst past one page is counted as its pages come, over several polls": (
        [page(run(3), short=True), page(run(9), run(8)), page(run(5), run(4)),
         page(run(10), run(9)), page(run(7), run(6)), page(run(7), run(6))],
        [[], [9, 8], [5, 4], [10], [7, 6], []],
    ),
    "a run the API lost (404) is no longer watched": (
        [page(run(1), short=True), page(run(2, "running")), ("forget", "r2"),
         status(run(2, "completed"))],
        [[], [], [], []],
    ),
    "an outage between polls changes nothing: the next listing catches up": (
        [page(run(1), short=True), page(run(2, "running")), page(run(4), run(3), run(2))],
        [[], [], [4, 3, 2]],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_each_run_is_counted_once(case: str) -> None:
    steps, expected = CASES[case]
    ledger = RunLedger()
    assert counted_numbers(ledger, steps) == expected
    counted = sum(len(c) for c in expected)
    assert sum(ledger.totals.finished.values()) == counted
    # Each counted run adds its 10 tokens, 2 CPU seconds and 1.5 s of audio: the counters are sums.
    totals = ledger.totals
    assert (totals.token_cost, totals.cpu_seconds, totals.delivered_audio_seconds) == (
        10.0 * counted,
        2.0 * counted,
        1.5 * counted,
    )


LATEST: dict[str, tuple[list[Run], tuple[int, str, bool]]] = {
    "moves to a higher number": ([run(1), run(2, "running")], (2, "running", True)),
    "never goes back to a lower number": ([run(6), run(3)], (6, "completed", True)),
    "a status record is not replaced by the same run's list item": (
        [run(2, "running"), run(2, "running", detailed=False)], (2, "running", True)),
    "a list item with news replaces the status record": (
        [run(2, "running"), run(2, "failed", detailed=False)], (2, "failed", False)),
    "a finished run does not go back to active": (
        [run(2, "failed"), run(2, "running")], (2, "failed", True)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LATEST))
def test_the_latest_run(case: str) -> None:
    records, (number, state, detailed) = LATEST[case]
    ledger = RunLedger()
    ledger.listed(listing(records[0]), [])
    for r in records[1:]:
        ledger.seen(r, final=False)
    assert ledger.latest is not None
    assert (ledger.latest.run_number, ledger.latest.status) == (number, state)
    assert ledger.latest.detailed is detailed


NAN, INF = float("nan"), float("inf")
VALUES: dict[str, tuple[dict[str, object], tuple[float, float, int]]] = {
    "good": ({}, (10.0, 2.0, 1)),
    "negative token cost": ({"token_cost": -1000.0}, (0.0, 2.0, 1)),
    "NaN token cost": ({"token_cost": NAN}, (0.0, 2.0, 1)),
    "no token cost": ({"token_cost": None}, (0.0, 2.0, 1)),
    "negative cpu": ({"usage": {"cpu_seconds": -5.0}}, (10.0, 0.0, 1)),
    "infinite cpu": ({"usage": {"cpu_seconds": INF}}, (10.0, 0.0, 1)),
    "completed before it started": ({"completed_at": 10.0}, (10.0, 2.0, 1)),
    "no start": ({"started_at": None}, (10.0, 2.0, 0)),
}


@pytest.mark.parametrize("case", list(VALUES))
def test_counters_never_go_down(case: str) -> None:
    fields, (tokens, cpu, durations) = VALUES[case]
    totals = Totals()
    totals.count(run(1, "failed", **fields))
    assert (totals.token_cost, totals.cpu_seconds, totals.duration.count) == (
        tokens,
        cpu,
        durations,
    )
    assert totals.finished["failed"] == 1
    assert math.isfinite(totals.duration.sum) and totals.duration.sum >= 0


@pytest.mark.parametrize(
    ("value", "added"),
    [(1.5, 1.5), (0.0, 0.0), (-0.1, None), (NAN, None), (INF, None), (-INF, None), (None, None)],
)
def test_addable(value: float | None, added: float | None) -> None:
    assert addable(value) == added


OPEN_BELOW: dict[str, tuple[list[tuple[str, object]], int, bool, int | None]] = {
    "nothing before the first listing": ([], 10, False, None),
    "numbers above the mark": ([page(run(3), short=True)], 9, False, 8),
    "nothing wanted below the mark": ([page(run(3), short=True)], 3, False, None),
    "the top of a gap": ([page(run(3), short=True), page(run(9), run(8))], 8, False, 7),
    "a gap below": ([page(run(3), short=True), page(run(9), run(8))], 5, False, 4),
    "a watched run when only List Runs tells": (
        [page(run(3), short=True), page(run(9, "running"), run(8), short=True)], 10, True, 9),
    "the run just above the mark": ([page(run(3), short=True)], 5, False, 4),
    "nothing below the bottom of a gap": (
        [page(run(3), short=True), page(run(9), run(8))], 4, False, None),
    "a watched run is not wanted while its status can be asked for": (
        [page(run(3), short=True), page(run(9, "running"), run(8), short=True)], 10, False, None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(OPEN_BELOW))
def test_open_below(case: str) -> None:
    steps, number, listed_only, expected = OPEN_BELOW[case]
    ledger = RunLedger()
    counted_numbers(ledger, steps)
    assert ledger.open_below(number, listed_only) == expected


def test_a_watched_run_read_from_list_runs_only_is_wanted_below_the_first_page() -> None:
    ledger = RunLedger()
    ledger.listed(listing(run(5), run(4, "running"), run(3)), [(1, 5)])
    ledger.list_only.add("r4")
    assert ledger.open_below(5) == 4
    assert ledger.open_below(4) is None
    assert ledger.open_below(5, listed_only=False) == 4


def test_memory_stays_bounded() -> None:
    """Thousands of runs through one workflow: a few dozen ids and ranges remembered."""
    ledger = RunLedger()
    ledger.listed([], [])
    shown = [n for n in range(1, 5001, 2) if n % 6 != 5]  # pages of two; every third missed
    for n in shown:
        ledger.listed(listing(run(n + 1), run(n)), [(n, n + 1)])
    assert len(ledger.recent) == RECENT_IDS
    assert len(ledger.gaps) == MAX_GAPS
    assert not ledger.watching
    assert sum(ledger.totals.finished.values()) == 2 * len(shown)


def item(number: int, status: str = "completed", **fields: object) -> Run:
    """A List Runs item: no token cost; the delivered audio as told."""
    return run(number, status, detailed=False, token_cost=None, **fields)


def record(number: int, status: str = "completed", **fields: object) -> Run:
    """A Get Run Status record: no delivered audio (List Runs sends it)."""
    return run(number, status, delivered_audio_ms=None, **fields)


AUDIO: dict[str, tuple[list[tuple[str, object]], list[float], list[list[int]]]] = {
    "a run counted with its list item's audio adds it at once": (
        [page(run(1), short=True), page(run(2, delivered_audio_ms=5_400_000), run(1))],
        [0.0, 5400.0], [[], [2]]),
    "a run counted from its status record alone adds its audio when a list shows it finished": (
        [page(run(1), short=True), page(run(3, "running"), run(2, "running"), run(1)),
         status(record(2)), page(item(3, "running"), item(2, delivered_audio_ms=2500), item(1))],
        [0.0, 0.0, 0.0, 2.5], [[], [], [2], []]),
    "a list showing it still running (a lagging replica) makes it wait": (
        [page(run(1), short=True), page(run(2, "running"), run(1)), status(record(2)),
         page(item(2, "running"), item(1)), page(item(2, delivered_audio_ms=2500), item(1))],
        [0.0, 0.0, 0.0, 0.0, 2.5], [[], [], [2], [], []]),
    "a status record beside a running list item is not its final audio": (
        [page(run(1), short=True), page(run(2, "running"), run(1)), page(record(2), item(1)),
         page(item(2, delivered_audio_ms=2500), item(1)),
         page(item(2, delivered_audio_ms=9), item(1))],
        [0.0, 0.0, 0.0, 2.5, 2.5], [[], [], [2], [], []]),
    "a list item without the field settles it with nothing (an API that does not send it)": (
        [page(run(1), short=True), page(run(2, "running"), run(1)), status(record(2)),
         page(item(2, delivered_audio_ms=None), item(1)), page(item(2), item(1))],
        [0.0, 0.0, 0.0, 0.0, 0.0], [[], [], [2], [], []]),
    "negative audio adds nothing": (
        [page(run(1), short=True), page(run(2, delivered_audio_ms=-5), run(1))],
        [0.0, 0.0], [[], [2]]),
    "history adds nothing": ([page(run(2), run(1), short=True)], [0.0], [[]]),
    "a status record in a listing waits; the list item after it settles its own run": (
        [page(run(1), short=True), page(run(3, "running"), run(2, "running"), run(1)),
         status(record(2)), status(record(3)),
         page(record(3), item(2, delivered_audio_ms=2500), item(1)),
         page(item(3, delivered_audio_ms=1000), item(2), item(1))],
        [0.0, 0.0, 0.0, 0.0, 2.5, 3.5], [[], [], [2], [3], [], []]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(AUDIO))
def test_delivered_audio_is_counted_once_from_list_runs(case: str) -> None:
    steps, audio, expected = AUDIO[case]
    ledger = RunLedger()
    shown = []
    for step in steps:
        counted_numbers(ledger, [step])
        shown.append(ledger.totals.freeze().delivered_audio_seconds)
    assert shown == audio
    ledger2 = RunLedger()
    assert counted_numbers(ledger2, steps) == expected


# (the runs a listing shows, the numbers it shows every run of; whether run 2 is still awaited)
DELETED: dict[str, tuple[list[Run], tuple[int, int], bool]] = {
    "a listing showing all": ([item(9), item(8)], (1, 9), False),
    "one whose lowest number is run 2's": ([item(9), item(8)], (2, 9), False),
    "a page back whose highest number is run 2's": ([item(1)], (1, 2), False),
    "a listing not down to run 2": ([item(9), item(8)], (3, 9), True),
}


@pytest.mark.parametrize("case", list(DELETED))
def test_audio_due_is_wanted_below_the_first_page_and_let_go_when_deleted(case: str) -> None:
    shown, covered, awaited = DELETED[case]
    ledger = RunLedger()
    ledger.listed(listing(run(2, "running"), run(1)), [(1, 2)])
    ledger.listed(listing(run(9), run(8)), [(3, 9)])
    assert ledger.seen(record(2), final=True)
    assert ledger.open_below(8) == 2  # paged back for, beyond the first page
    assert ledger.open_below(3) == 2
    assert ledger.open_below(2) is None  # a page down to run 2 asks for no page below it
    assert ledger.audio_due == {"r2": 2}
    ledger.listed(listing(*shown), [covered])  # r2 not shown: gone, where the listing covers it
    assert ledger.audio_due == ({"r2": 2} if awaited else {})
    assert ledger.open_below(8) == (2 if awaited else None)


def test_audio_due_stays_bounded() -> None:
    ledger = RunLedger()
    ledger.listed([], [])
    for n in range(1, 200):
        ledger.listed(listing(run(n, "running")), [(n, n)])
        ledger.seen(record(n), final=True)
    assert len(ledger.audio_due) == RECENT_IDS


END = 5000.0
LAST: dict[str, tuple[list[list[Run]], tuple[float | None, float | None]]] = {
    "none seen: absent": ([[run(2, "running"), run(1, "cancelled")]], (None, None)),
    "the first listing gives both (history counts here)": (
        [[run(3, "running"), run(2, "failed"), run(1)]], (1100.0, 2100.0)),
    "the newest by number, whatever the order": (
        [[run(1), run(4), run(2)]], (4100.0, None)),
    "never goes back to a lower number (a lagging replica)": (
        [[run(5)], [run(4)]], (5100.0, None)),
    "moves forward to a newer run": ([[run(4)], [run(5, "failed")], [run(6)]], (6100.0, 5100.0)),
    "without completed_at: updated_at": (
        [[run(3, completed_at=None, updated_at=END)]], (END, None)),
    "without completed_at nor updated_at: created_at": (
        [[run(3, completed_at=None)]], (0.0, None)),
    "the same run's completed_at, once sent, replaces the fallback": (
        [[run(3, completed_at=None, updated_at=END)], [run(3)]], (3100.0, None)),
    "a run with no time at all is passed over": (
        [[run(2)], [run(3, completed_at=None, created_at=None)]], (2100.0, None)),
    "cancelled runs are neither": ([[run(2), run(3, "cancelled")]], (2100.0, None)),
    "a failed run never goes back to a lower number": (
        [[run(5, "failed")], [run(4, "failed")]], (None, 5100.0)),
    "the same run listed again without completed_at keeps it": (
        [[run(3)], [run(3, completed_at=None, updated_at=END)]], (3100.0, None)),
    "a newer run without completed_at moves it forward": (
        [[run(3)], [run(4, completed_at=None, updated_at=END)]], (END, None)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LAST))
def test_last_success_and_failure(case: str) -> None:
    polls, (success, failure) = LAST[case]
    ledger = RunLedger()
    for i, runs in enumerate(polls):
        if i == 0:
            ledger.listed(listing(*runs), [])
        else:
            for r in runs:
                ledger.seen(r, final=True)
    got = tuple(None if e is None else e[1] for e in (ledger.last_success, ledger.last_failure))
    assert got == (success, failure)


def test_ended_at_and_newer_end() -> None:
    assert ended_at(run(1, completed_at=None, updated_at=None, created_at=None)) is None
    assert newer_end(None, run(2)) == (2, 2100.0)
    assert newer_end((5, 1.0), run(2)) == (5, 1.0)


def test_a_watched_run_is_not_wanted_from_list_runs_by_default() -> None:
    ledger = RunLedger()
    counted_numbers(ledger, [page(run(3), short=True), page(run(9, "running"), run(8), short=True)])
    assert ledger.open_below(10) is None
    assert ledger.open_below(10, listed_only=True) == 9


GAPS_LESS: list[tuple[tuple[int, int], list[tuple[int, int]]]] = [
    ((1, 3), [(5, 10), (20, 30)]),  # below every gap: nothing changes
    ((11, 19), [(5, 10), (20, 30)]),  # between them
    ((7, 8), [(5, 6), (9, 10), (20, 30)]),  # inside one: it splits
    ((5, 10), [(20, 30)]),  # exactly one: it goes
    ((4, 25), [(26, 30)]),  # across both
    ((10, 20), [(5, 9), (21, 30)]),  # the ends of both
]


@pytest.mark.parametrize(("shown", "left"), GAPS_LESS)
def test_the_gaps_less_what_a_page_showed(
    shown: tuple[int, int], left: list[tuple[int, int]]
) -> None:
    assert _without([(5, 10), (20, 30)], *shown) == left


def test_a_forgotten_or_counted_run_leaves_nothing_behind() -> None:
    ledger = RunLedger()
    ledger.listed(listing(run(3)), [(1, 3)])
    ledger.seen(run(4, "running", detailed=False), final=False)
    ledger.seen(run(5, "running", detailed=False), final=False)
    ledger.list_only.update({"r4", "r5"})  # their status records were unreadable
    ledger.forget("r4")
    ledger.forget("r404")  # not watched: nothing happens
    assert ledger.seen(run(5, "failed", detailed=False), final=True)
    assert (ledger.watching, ledger.list_only) == ({}, set())


def test_a_readable_status_record_ends_the_wait_for_list_runs() -> None:
    ledger = RunLedger()
    ledger.listed(listing(run(5, "running", detailed=False), run(4)), [(1, 5)])
    ledger.list_only.add("r5")  # its status record was unreadable
    assert ledger.open_below(6) == 5
    ledger.seen(run(5, "running"), final=False)
    assert ledger.open_below(6) is None


# (the watched record, the next one, whether it replaces it)
WATCHED: dict[str, tuple[Run, Run, bool]] = {
    "a status record over a list item": (
        run(5, "running", detailed=False), run(5, "running"), True),
    "a list item does not replace a status record": (
        run(5, "running"), run(5, "running", detailed=False, finished_steps=3), False),
    "a list item with a new status does": (
        run(5, "running"), run(5, "paused", detailed=False), True),
    "a newer list item replaces a list item": (
        run(5, "running", detailed=False), run(5, "running", detailed=False, finished_steps=3),
        True),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WATCHED))
def test_the_watched_record_only_gets_better(case: str) -> None:
    first, then, replaced = WATCHED[case]
    ledger = RunLedger()
    ledger.listed(listing(run(3)), [(1, 3)])
    ledger.seen(first, final=False)
    ledger.seen(then, final=False)
    assert ledger.watching["r5"] is (then if replaced else first)


def test_a_poll_without_new_runs_adds_no_gap() -> None:
    ledger = RunLedger()
    counted_numbers(ledger, [page(run(3), short=True), page(run(9), run(8))])
    for _ in range(MAX_GAPS + 4):
        ledger.listed(listing(run(9), run(8)), [(8, 9)])
    assert ledger.gaps == [(4, 7)]  # still wanted: no later page may push it out


def test_beyond_max_gaps_the_oldest_gap_is_given_up() -> None:
    ledger = RunLedger()
    ledger.listed(listing(run(1)), [(1, 1)])
    for n in range(1, MAX_GAPS + 3):  # each page shows one run, leaving a gap of two below it
        ledger.listed(listing(run(3 * n + 1)), [(3 * n + 1, 3 * n + 1)])
    newest = [(3 * n - 1, 3 * n) for n in range(MAX_GAPS + 2, 2, -1)]
    assert ledger.gaps == newest


# (records of run 2 in order: the first from List Runs, the others as seen; what latest shows)
LATEST_RECORDS: dict[str, tuple[list[Run], tuple[str, bool, int | None, float | None]]] = {
    "a status record replaces the list item": (
        [run(2, "running", detailed=False), run(2, "running")], ("running", True, None, None)),
    "a newer list item replaces a list item": (
        [run(2, "running", detailed=False), run(2, "running", detailed=False, finished_steps=3)],
        ("running", False, 3, None)),
    "the status record keeps the credits List Runs sent": (
        [run(2, detailed=False, credits=12.0), run(2)], ("completed", True, None, 12.0)),
    "the finished run listed again gives its credits": (
        [run(2), run(2, detailed=False, credits=12.0)], ("completed", True, None, 12.0)),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LATEST_RECORDS))
def test_the_latest_run_record_gets_better(case: str) -> None:
    records, expected = LATEST_RECORDS[case]
    ledger = RunLedger()
    ledger.listed(listing(records[0]), [])
    for r in records[1:]:
        ledger.seen(r, final=r.detailed)
    latest = ledger.latest
    assert latest is not None
    assert (latest.status, latest.detailed, latest.finished_steps, latest.credits) == expected


# --- node executions (Get Run Steps) of the runs counted ------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_each_counted_run_and_only_it_has_its_steps_read_once(case: str) -> None:
    steps, expected = CASES[case]
    ledger = RunLedger()
    due: list[int] = []
    for kind, arg in steps:
        counted_numbers(ledger, [(kind, arg)])
        for rid, (r, _failures) in list(ledger.steps_due.items()):
            due.append(r.run_number)
            ledger.steps_read(r, finished_run_nodes(RunSteps((), META), r.status, REDACTOR))
            assert rid not in ledger.steps_due
    assert due == [n for poll in expected for n in poll]


def failed_at(node: str) -> FinishedRunNodes:
    return FinishedRunNodes((NodeDuration("operator_generator", 5.0),), {("x", "failed"): 1},
                            (FailedNode(NodeRef(node, "x", node), "boom"),))  # fmt: skip


def test_the_steps_of_the_newest_counted_runs_are_kept_to_read_up_to_the_bound() -> None:
    ledger = RunLedger()
    ledger.listed([], [])
    ledger.listed(listing(*(run(n) for n in range(1, MAX_STEPS_DUE + 1))), [(1, MAX_STEPS_DUE)])
    assert len(ledger.steps_due) == MAX_STEPS_DUE  # all of them, at the bound
    ledger.listed(listing(run(MAX_STEPS_DUE + 1)), [(MAX_STEPS_DUE + 1, MAX_STEPS_DUE + 1)])
    numbers = sorted(r.run_number for r, _failures in ledger.steps_due.values())
    assert numbers == list(range(2, MAX_STEPS_DUE + 2))  # beyond it, the oldest is given up


def test_a_read_failing_is_kept_for_the_next_polls_then_given_up() -> None:
    ledger = RunLedger()
    ledger.listed(listing(run(1, "running")), [(1, 1)])
    assert ledger.seen(run(1, "failed"), True)
    assert [ledger.steps_failed("r1") for _ in range(STEPS_ATTEMPTS)] == [False] * (
        STEPS_ATTEMPTS - 1
    ) + [True]
    assert ledger.steps_due == {} and not ledger.steps_failed("r1")
    ledger.steps_read(run(1, "failed"), failed_at("node-1"))  # too late: not counted
    assert ledger.totals.nodes.executions == {} and ledger.last_failure_nodes() == ()


def test_the_failed_nodes_are_those_of_the_newest_failed_run_and_counted_once() -> None:
    ledger = RunLedger()
    ledger.listed(listing(run(1, "running"), run(2, "running")), [(1, 2)])
    assert ledger.seen(run(2, "failed"), True) and ledger.seen(run(1, "failed"), True)
    ledger.steps_read(run(2, "failed"), failed_at("node-2"))
    ledger.steps_read(run(1, "failed"), failed_at("node-1"))  # older: counted, not named
    ledger.steps_read(run(1, "failed"), failed_at("node-1"))  # read twice: counted once
    assert [f.node.node_id for f in ledger.last_failure_nodes()] == ["node-2"]
    assert ledger.totals.freeze().nodes.executions == {("x", "failed"): 2}
    assert ledger.totals.nodes.durations["operator_generator"].count == 2
    # A newer failed run whose steps were not read yet: no node is named for it.
    ledger.listed(listing(run(3, "failed")), [(3, 3)])
    assert ledger.last_failure_nodes() == ()
