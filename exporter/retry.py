"""When a failed request is tried again, and after how long: pure decisions, no I/O.

Connection errors and 408/429/5xx answers are retried up to http.max_retries times, after the
wait the API asks for (Retry-After, on 429 and 503) or else an exponential backoff with jitter;
the client gives up instead when the wait would pass the scrape deadline (exporter/deadline.py).
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Answers whose Retry-After is honoured.
RETRY_AFTER_STATUSES = frozenset({429, 503})
BACKOFF_BASE = 0.25
BACKOFF_CAP = 5.0
# A 429's Retry-After blocks every request of the key, at most this long.
RETRY_AFTER_CAP = 300.0


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from `Retry-After` (seconds, or an HTTP date compared with `now`, wall
    clock seconds); None when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, float(when.timestamp()) - now)


def asked_wait(status: int, headers: Mapping[str, str], now: float) -> float | None:
    """The wait the API asks for before a retry of an answer with this status, if any."""
    return retry_after(headers, now) if status in RETRY_AFTER_STATUSES else None


def backoff(attempt: int, draw: float) -> float:
    """Exponential backoff with full jitter in [base*2^n / 2, base*2^n]; `draw` is in [0, 1)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return ceiling / 2 + draw * ceiling / 2


def next_wait(
    attempt: int, max_retries: int, asked: float | None, draw: Callable[[], float]
) -> float | None:
    """How long to wait before retry `attempt` + 1 (counting from 0), or None: no retry left.
    `asked` is the API's Retry-After; `draw` gives the jitter, called only when it is used."""
    if attempt >= max_retries:
        return None
    return asked if asked is not None else backoff(attempt, draw())


def blocks_key(status: int | None, asked: float | None) -> float | None:
    """How long every request of the key waits after this answer: a 429 with a Retry-After."""
    if status == 429 and asked:
        return min(asked, RETRY_AFTER_CAP)
    return None
