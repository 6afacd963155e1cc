"""ISO-8601 timestamps as the OnePin API writes and reads them."""

from __future__ import annotations

import time
from datetime import datetime
from functools import lru_cache


@lru_cache(maxsize=65_536)
def iso(seconds: int) -> str:
    """``2024-04-10T15:00:00Z`` for unix seconds (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def iso_or_none(seconds: int | None) -> str | None:
    return None if seconds is None else iso(seconds)


class NaiveDatetimeError(ValueError):
    """A datetime without a UTC offset."""


def parse_aware(text: str) -> float:
    """Unix seconds of an ISO-8601 datetime that must carry an offset (``Z`` or ``+hh:mm``)."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(text)
    return value.timestamp()
