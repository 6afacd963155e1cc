"""The request budget (http.max_requests_per_minute) as tables: the sliding window, what a poll
may ask before the details, and the scrape interval that would fit. A manual clock."""

from __future__ import annotations

import pytest

from exporter.ratebudget import (
    WINDOW,
    WINDOW_MARGIN,
    Allotment,
    RequestBudget,
    allot,
    fitting_interval,
)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


SPAN = WINDOW + WINDOW_MARGIN


@pytest.mark.parametrize(
    ("why", "sent_at", "asked_at", "expected"),
    [
        ("empty window", [], 0.0, 3),
        ("two sent just now", [0.0, 0.0], 0.0, 1),
        ("full", [0.0, 1.0, 2.0], 2.0, 0),
        ("still full a minute later: the window has a margin", [0.0, 1.0, 2.0], WINDOW, 0),
        ("the first left at the window's end", [0.0, 1.0, 2.0], SPAN, 1),
        ("all left", [0.0, 1.0, 2.0], SPAN + 2.0, 3),
        ("a moment before the first leaves", [0.0, 1.0, 2.0], SPAN - 0.001, 0),
    ],
)  # fmt: skip
def test_the_window_counts_the_requests_of_the_last_minute(
    why: str, sent_at: list[float], asked_at: float, expected: int
) -> None:
    clock = Clock()
    start = clock.now
    budget = RequestBudget(3, clock)
    for at in sent_at:
        clock.now = start + at
        assert budget.take(), why
    clock.now = start + asked_at
    assert budget.remaining() == expected, why


def test_a_full_window_defers_and_counts_each_deferred_request() -> None:
    clock = Clock()
    budget = RequestBudget(2, clock)
    assert [budget.take() for _ in range(4)] == [True, True, False, False]
    assert budget.deferred == 2
    budget.defer(3)  # left out of a poll's plan
    assert budget.deferred == 5
    clock.now += SPAN
    assert budget.take() and budget.deferred == 5


def test_no_limit_never_defers() -> None:
    budget = RequestBudget(None, Clock())
    assert all(budget.take() for _ in range(10_000))
    assert budget.remaining() is None and budget.deferred == 0


def test_no_sixty_second_window_ever_holds_more_than_the_limit() -> None:
    """Requests tried every 0.1 s for five minutes at a limit of 120: any 60 s holds <= 120."""
    clock = Clock()
    budget = RequestBudget(120, clock)
    sent = []
    for step in range(3000):
        clock.now = 500.0 + step * 0.1
        if budget.take():
            sent.append(clock.now)
    assert max(sum(1 for t in sent if s <= t < s + WINDOW) for s in sent) == 120
    assert len(sent) > 400  # and it does send: 120 per 61 s


@pytest.mark.parametrize(
    ("why", "remaining", "statuses", "pages", "expected"),
    [
        ("no limit: everything", None, 30, 3, Allotment(30, True)),
        ("room for all", 120, 30, 3, Allotment(30, True)),
        ("exactly enough", 33, 30, 3, Allotment(30, True)),
        ("statuses take what the catalogue leaves", 20, 30, 3, Allotment(17, True)),
        ("the catalogue alone", 3, 30, 3, Allotment(0, True)),
        ("not even the catalogue: nothing", 2, 30, 3, Allotment(0, False)),
        ("nothing left", 0, 0, 1, Allotment(0, False)),
        ("nothing watched", 5, 0, 1, Allotment(0, True)),
    ],
)  # fmt: skip
def test_allot(
    why: str, remaining: int | None, statuses: int, pages: int, expected: Allotment
) -> None:
    assert allot(remaining, statuses, pages) == expected, why


@pytest.mark.parametrize(
    ("needed", "limit", "expected"),
    [(33, 120, 17), (210, 120, 105), (120, 120, 60), (1, 1000, 1)],
)
def test_fitting_interval(needed: int, limit: int, expected: int) -> None:
    assert fitting_interval(needed, limit) == expected
