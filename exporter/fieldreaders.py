"""The lenient readers of single fields of OnePin API responses, as the official SDK reads them.

The API's docs contradict themselves (see onepin-api.md §7 and §8): fields come and go between
versions, `usage_summary` has no fixed schema, statuses and pause reasons are open strings. The SDK
(pydantic, lax mode) reads numbers sent as strings ("12"), whole floats as integers (2.0), Unix
seconds or milliseconds as times, and an empty status; so do these parsers, because refusing what
the real client accepts would show an API that works as broken.

One bad value costs only itself. An optional field that is negative (where the API means a count,
a cost or a duration), NaN, infinite, too large or of the wrong type is read as absent (None) and
recorded in the model's `problems` ("field: what was wrong"), so the caller can say so once and
keep everything else. Only a required field that cannot be read (a run's id, run number or status;
a workflow's id or name) makes the item unreadable: a `DecodeError` naming the field, for that one
item (List Runs and List Workflows keep the page's other items, in `Page.bad`).

Speed: these readers run for every field of every run on every poll, so each checks the types
`json` actually returns (`type(v) is int/float/str`) and the common valid range first, and only a
value outside it takes the slower, general path.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
KNOWN_STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
# `pause_reason` as the SDK knows it (onepin-api.md §8): `user` is a manual pause, the others are
# automatic. An open enum: other values pass through.
KNOWN_PAUSE_REASONS = (
    "user",
    "provider_outage",
    "provider_rate_limited",
    "provider_billing",
    "node_timeout",
)
# What an empty (or blank) status is exported as: the SDK accepts "", and a label value "" would
# read as no label at all. Not terminal, so the run is asked about again until it says more.
UNKNOWN_STATUS = "unknown"

# The API's integers are 64-bit; a bigger "count" is not one.
MAX_INT = 2**63 - 1
_MAX_FLOAT = sys.float_info.max
# Unix times above this are in milliseconds, as the SDK (pydantic) reads them.
MS_ABOVE = 2e10
# 9999-12-31T23:59:59Z: the last time an ISO-8601 string (or the SDK) can give.
_LAST_TIME = 253402300799.0
# A model keeps at most this many problems (a hostile usage_summary could have thousands).
MAX_PROBLEMS = 8
_PROBLEM_LENGTH = 200


class DecodeError(ValueError):
    """A response body that is not JSON, or a required field that cannot be read."""


class _Bad(Exception):
    """Why a value cannot be read; the caller knows which field it was."""


# --- field readers -----------------------------------------------------------------------------
#
# Hand-written rather than the SDK's pydantic models (which cost about the same CPU per run,
# ~9 us): those reject the whole item on the first bad field instead of keeping the rest, and
# accept negative costs and counts and `true` as 1, which would lower or skew counters.


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if type(value) is dict:  # what json gives: no ABC check (the readers run per field)
        return value
    if not isinstance(value, Mapping):
        raise DecodeError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _req_str(d: Mapping[str, Any], key: str, where: str) -> str:
    value = d.get(key)
    if type(value) is str and value:
        return value
    if not isinstance(value, str) or not value:
        raise DecodeError(f"{where}.{key}: expected a non-empty string, got {_show(value)}")
    return value


def _req_count(d: Mapping[str, Any], key: str, where: str) -> int:
    value = d.get(key)
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    if value is None:
        raise DecodeError(f"{where}.{key}: expected an integer, got null")
    try:
        return _to_count(value)
    except _Bad as bad:
        raise DecodeError(f"{where}.{key}: {bad}") from None


def _status(d: Mapping[str, Any], key: str, where: str) -> str:
    """A required status: any string (unknown ones pass through); blank is UNKNOWN_STATUS."""
    value = d.get(key)
    if type(value) is str:
        return value if value and not value.isspace() else UNKNOWN_STATUS
    raise DecodeError(f"{where}.{key}: expected a string, got {_show(value)}")


def _note(problems: list[str], field: str, why: object) -> None:
    problems.append(f"{field}: {why}")


def _problems(problems: list[str]) -> tuple[str, ...]:
    """Bounded: at most MAX_PROBLEMS entries of at most _PROBLEM_LENGTH characters each."""
    if not problems:
        return ()
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS + 1
        problems = [*problems[: MAX_PROBLEMS - 1], f"more: {more} other values could not be read"]
    return tuple(
        p if len(p) <= _PROBLEM_LENGTH else p[: _PROBLEM_LENGTH - 3] + "..." for p in problems
    )


def _field(key: object) -> str:
    """A key the API chose (a usage_summary entry), fit to name a field in a problem."""
    text = str(key)
    if len(text) > SHOW_TEXT_UP_TO:
        return f"<a key of {len(text)} characters>"
    return text if text.isprintable() else repr(text)


def _to_number(value: Any) -> int | float:
    """A JSON number, or a numeric string as the SDK reads it; never a bool, NaN or infinity."""
    if type(value) is str:
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise _Bad(f"expected a number, got {_show(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"expected a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Bad(f"not a finite number ({value!r})")
    return value


def _to_non_negative(value: Any) -> int | float:
    """A count, a cost or a duration: a negative one cannot be true (and would lower a counter)."""
    number = _to_number(value)
    if number < 0:
        raise _Bad(f"negative ({_show(value)})")
    return number


def _to_count(value: Any) -> int:
    """A non-negative whole number (2.0 and "2" too, as the SDK reads them)."""
    number = _to_non_negative(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise _Bad(f"not a whole number ({_show(value)})")
        number = int(number)
    if number > MAX_INT:
        raise _Bad(f"too large ({_show(value)})")
    return number


def _to_amount(value: Any) -> float:
    """A non-negative finite number, as a float."""
    number = _to_non_negative(value)
    try:
        return float(number)
    except OverflowError:
        raise _Bad(f"too large ({_show(value)})") from None


def _count(d: Mapping[str, Any], key: str, problems: list[str]) -> int | None:
    value = d.get(key)
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    if value is None:
        return None
    try:
        return _to_count(value)
    except _Bad as bad:
        _note(problems, key, bad)
        return None


def _amount(d: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    value = d.get(key)
    if type(value) is float and 0.0 <= value <= _MAX_FLOAT:  # NaN and infinity fail this too
        return value
    if type(value) is int and 0 <= value <= MAX_INT:
        return float(value)
    if value is None:
        return None
    try:
        return _to_amount(value)
    except _Bad as bad:
        _note(problems, key, bad)
        return None


def _ratio(d: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    value = _amount(d, key, problems)
    if value is not None and value > 1.0:
        _note(problems, key, f"above 1 ({value!r})")
        return None
    return value


def _opt_text(d: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    value = d.get(key)
    if value is None or type(value) is str:
        return value
    _note(problems, key, f"expected a string, got {_show(value)}")
    return None


def _time(d: Mapping[str, Any], key: str, problems: list[str]) -> float | None:
    value = d.get(key)
    if type(value) is str:
        cached = _TIMES.get(value)
        if cached is not None and cached >= 0.0:
            return cached
    elif value is None:
        return None
    try:
        return _to_time(value)
    except _Bad as bad:
        _note(problems, key, bad)
        return None


def _to_time(value: Any) -> float:
    """ISO-8601, or Unix seconds (milliseconds above MS_ABOVE), as a number or a numeric string;
    not before 1970 (no run is that old) nor past the year 9999."""
    if type(value) is str:
        try:
            t = parse_time(value)
        except DecodeError:
            raise _Bad(f"expected an ISO-8601 or Unix time, got {_show(value)}") from None
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"expected an ISO-8601 or Unix time, got {_show(value)}")
    else:
        t = _unix(_to_number(value))
    if not 0.0 <= t <= _LAST_TIME:
        raise _Bad(f"out of range ({_show(value)})")
    return t


def _unix(number: float) -> float:
    try:
        seconds = float(number)
    except OverflowError:  # an integer no float holds
        raise _Bad(f"out of range ({_show(number)})") from None
    return seconds / 1000 if abs(seconds) > MS_ABOVE else seconds


# Big enough for the created/started times of a few thousand active runs; updated_at values
# are new on every poll, so a bigger memo would mostly hold dead entries.
TIME_MEMO_SIZE = 16_384
_TIMES: dict[str, float] = {}


def parse_time(value: str, where: str = "time") -> float:
    """ISO-8601 (a time without an offset is taken as UTC), or a numeric string of Unix seconds
    or milliseconds as the SDK reads it, to Unix seconds.

    The same timestamps come back poll after poll (a run's created_at, started_at), so parsed
    values are remembered; the memo is emptied when it grows large."""
    cached = _TIMES.get(value)
    if cached is not None:
        return cached
    if len(_TIMES) >= TIME_MEMO_SIZE:
        _TIMES.clear()
    _TIMES[value] = parsed = _parse_time(value, where)
    return parsed


def _parse_time(value: str, where: str) -> float:
    text = value.strip()
    try:
        number = float(text)  # all digits: Unix time, as pydantic reads "1795950000"
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return _unix(number)
        raise DecodeError(f"{where}: expected an ISO-8601 or Unix time, got {_show(value)}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"{where}: expected an ISO-8601 time, got {_show(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# A string the API sent is quoted in an error only up to this length: enough for a number or a
# time, too short for an API key (32 characters after its prefix) that an API echoes back.
SHOW_TEXT_UP_TO = 24


def _show(value: Any) -> str:
    """A value the API sent, as an error quotes it: bounded, and never a long string whole."""
    if type(value) is str:
        return (
            repr(value) if len(value) <= SHOW_TEXT_UP_TO else f"a string of {len(value)} characters"
        )
    if value is None or isinstance(value, bool | int | float):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _usage(value: Any, problems: list[str]) -> Mapping[str, float] | None:
    """The numeric entries of the free-form usage_summary (it has no stable schema): a value
    that is not a number is skipped, one that is a number but cannot be true (negative, NaN,
    infinite: these feed counters) is a problem."""
    if value is None:
        return None
    if type(value) is not dict and not isinstance(value, Mapping):
        _note(problems, "usage_summary", f"expected an object, got {_show(value)}")
        return None
    usage: dict[str, float] = {}
    for k, v in value.items():
        if (type(v) is float and 0.0 <= v <= _MAX_FLOAT) or (type(v) is int and 0 <= v <= MAX_INT):
            usage[str(k)] = float(v)
        elif _is_number(v):
            try:
                usage[str(k)] = _to_amount(v)
            except _Bad as bad:
                _note(problems, f"usage_summary.{_field(k)}", bad)
    return usage


def _is_number(value: Any) -> bool:
    """A JSON number (not a bool), or a string that reads as one ("12.5", "NaN")."""
    if type(value) is str:
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, int | float) and not isinstance(value, bool)


def _held_nodes(value: Any, problems: list[str]) -> tuple[str, ...] | None:
    """The ids of the nodes a paused run waits in front of (`[{node_id, locales}]`)."""
    if value is None:
        return None
    if type(value) is list:
        ids = [item.get("node_id") for item in value if type(item) is dict]
        names = [i for i in ids if type(i) is str]
        if len(names) == len(value):
            return tuple(names)
    _note(problems, "held_nodes", f"expected a list of {{node_id, locales}}, got {_show(value)}")
    return None
