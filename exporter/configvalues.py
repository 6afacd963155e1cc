"""Converters of single configuration values: durations, bounded integers, booleans, URLs, regexes.

Each takes the YAML value and returns the typed one, or raises ValueError with what is wrong
(an empty message when "expected <what>, got <value>" says it all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`15s`, `5m`, `1h`, `250ms` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError("")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def duration_text(seconds: float) -> str:
    """A duration as it is best written in a config: in the largest unit that divides it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class IntBetween:
    """Reads an integer from `low` to `high`; a string of digits is read as one.

    A class, not a closure: a key's reader is made when its declaration is, and its method is
    then the code that runs at each load (which mutation testing needs to reach)."""

    low: int
    high: int

    def __call__(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            else:
                raise ValueError("")
        if not self.low <= value <= self.high:
            raise ValueError(f"must be between {self.low} and {self.high}")
        return int(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("")


def _string(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("")
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _url(value: Any) -> str:
    text = _string(value).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use token or token_file")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    if parts.path.lower().endswith("/api/v1"):
        # The client adds /api/v1 to every path: kept, it would make every request a 404.
        origin = text[: -len("/api/v1")]
        raise ValueError(f"must be the API's address without /api/v1, which the exporter adds "
                         f"to every request: api_url: {origin}")  # fmt: skip
    return text


def _regex(value: Any) -> re.Pattern[str]:
    try:
        return re.compile(_string(value))
    except re.error as exc:
        raise ValueError(f"invalid regular expression ({exc})") from None


def _regex_text(value: Any) -> str:
    """A regular expression kept as its text (for a consumer that matches it itself)."""
    return _regex(value).pattern


# --- rules on a read value: what is wrong with it, or None --------------------------------------


def _above_zero(value: float) -> str | None:
    return "must be greater than 0" if value <= 0 else None


def _readable_file(value: str | None) -> str | None:
    return f"{value} is not a readable file" if value and not Path(value).is_file() else None
