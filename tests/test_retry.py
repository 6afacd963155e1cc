"""The retry policy and the deadline's margins, as tables: no network, no real clock."""

from __future__ import annotations

import pytest

from exporter.deadline import HANG_MARGIN, SLEEP_MARGIN, Deadline, snapshot_wait
from exporter.retry import (
    BACKOFF_CAP,
    RETRY_AFTER_CAP,
    asked_wait,
    backoff,
    blocks_key,
    next_wait,
    retry_after,
)

NOW = 1_767_225_600.0  # Thu, 01 Jan 2026 00:00:00 GMT


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("Thu, 01 Jan 2026 00:00:30 GMT", 30.0),
        ("Wed, 31 Dec 2025 23:59:00 GMT", 0.0),  # in the past: at once
        ("soon", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header: str | None, expected: float) -> None:
    headers = {} if header is None else {"retry-after": header}
    assert retry_after(headers, NOW) == expected


@pytest.mark.parametrize(("status", "expected"), [(429, 5.0), (503, 5.0), (500, None), (502, None)])
def test_only_429_and_503_say_how_long_to_wait(status: int, expected: float | None) -> None:
    assert asked_wait(status, {"retry-after": "5"}, NOW) == expected


@pytest.mark.parametrize(
    ("attempt", "draw", "expected"),
    [(0, 0.0, 0.125), (0, 0.999, 0.249875), (1, 0.0, 0.25), (2, 0.5, 0.75), (10, 0.0, 2.5),
     (10, 1.0, BACKOFF_CAP)],
)  # fmt: skip
def test_backoff_doubles_with_jitter_in_its_upper_half(
    attempt: int, draw: float, expected: float
) -> None:
    assert backoff(attempt, draw) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("attempt", "max_retries", "asked", "expected"),
    [(0, 2, None, 0.125), (1, 2, None, 0.25), (2, 2, None, None), (0, 0, None, None),
     (0, 2, 7.0, 7.0), (0, 2, 0.0, 0.0), (2, 2, 7.0, None)],
)  # fmt: skip
def test_next_wait(attempt: int, max_retries: int, asked: float | None, expected: float) -> None:
    assert next_wait(attempt, max_retries, asked, lambda: 0.0) == expected


def test_the_jitter_is_drawn_only_when_used() -> None:
    def draw() -> float:
        raise AssertionError("drawn")

    assert next_wait(0, 2, 3.0, draw) == 3.0
    assert next_wait(2, 2, None, draw) is None


@pytest.mark.parametrize(
    ("status", "asked", "expected"),
    [(429, 10.0, 10.0), (429, 1e6, RETRY_AFTER_CAP), (429, None, None), (429, 0.0, None),
     (503, 10.0, None), (None, 10.0, None)],
)  # fmt: skip
def test_a_429_with_retry_after_blocks_the_key(
    status: int | None, asked: float | None, expected: float | None
) -> None:
    assert blocks_key(status, asked) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_a_deadline_on_an_injected_clock() -> None:
    clock = Clock()
    deadline = Deadline(2.0, clock)
    assert deadline.remaining() == 2.0 and not deadline.expired()
    assert deadline.allows_wait(2.0 - SLEEP_MARGIN - 0.01)
    assert not deadline.allows_wait(2.0 - SLEEP_MARGIN)
    assert deadline.hang_timeout() == 2.0 + HANG_MARGIN
    clock.now += 2.0
    assert deadline.expired()
    clock.now += 5.0
    assert deadline.hang_timeout() == HANG_MARGIN  # never negative


def test_a_scrape_waits_for_a_poll_a_little_past_its_timeout_unless_told() -> None:
    assert snapshot_wait(4.0, None) == 4.25
    assert snapshot_wait(4.0, 4.1) == 4.1
