"""Query-string validation with the API's 422 ``details`` (``[{field, message}]``)."""

from __future__ import annotations

from collections.abc import Collection

from multidict import MultiMapping

from .errors import validation_error
from .timefmt import NaiveDatetimeError, parse_aware


class QueryReader:
    """Reads typed query parameters, collecting every problem before failing once."""

    def __init__(self, query: MultiMapping[str]) -> None:
        self._query = query
        self.details: list[dict[str, str]] = []

    def fail(self, field: str, message: str) -> None:
        self.details.append({"field": field, "message": message})

    def check(self) -> None:
        """Raise a 422 VALIDATION_ERROR if any parameter was invalid."""
        if self.details:
            raise validation_error(self.details)

    def _last(self, name: str) -> str | None:
        values = self._query.getall(name, [])
        return values[-1] if values else None

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        raw = self._last(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            self.fail(name, "must be an integer")
            return default
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"between {low} and {high}"
            self.fail(name, f"must be {bound}")
            return default
        return value

    def choice(self, name: str, choices: Collection[str]) -> str | None:
        raw = self._last(name)
        if raw is None or raw == "":
            return None
        if raw not in choices:
            self.fail(name, f"must be one of {', '.join(sorted(choices))}")
            return None
        return raw

    def choices(self, name: str, choices: Collection[str]) -> list[str]:
        """A repeatable parameter (``?sort=a&sort=b``)."""
        values: list[str] = []
        for raw in self._query.getall(name, []):
            if raw not in choices:
                self.fail(name, f"must be one of {', '.join(sorted(choices))}")
            else:
                values.append(raw)
        return values

    def comma_list(self, name: str, choices: Collection[str]) -> frozenset[str] | None:
        """A comma-separated list (``status=running,pending``); empty tokens are errors."""
        raw = self._last(name)
        if raw is None:
            return None
        tokens = raw.split(",")
        bad = [token for token in tokens if token not in choices]
        if "" in tokens:
            self.fail(name, "empty value in comma-separated list")
        elif bad:
            allowed = ", ".join(sorted(choices))
            self.fail(name, f"unknown value(s) {', '.join(bad)}; allowed: {allowed}")
        return frozenset(tokens)

    def text(self, name: str, max_length: int) -> str | None:
        raw = self._last(name)
        if raw is None or raw == "":
            return None
        if len(raw) > max_length:
            self.fail(name, f"must be at most {max_length} characters")
            return None
        return raw

    def boolean(self, name: str) -> bool | None:
        raw = self._last(name)
        if raw is None or raw == "":
            return None
        lowered = raw.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        self.fail(name, "must be a boolean")
        return None

    def datetime(self, name: str) -> float | None:
        """An ISO-8601 datetime that must carry a UTC offset; unix seconds."""
        raw = self._last(name)
        if raw is None or raw == "":
            return None
        try:
            return parse_aware(raw)
        except NaiveDatetimeError:
            self.fail(name, "datetime must include a UTC offset (e.g. 'Z' or '+00:00')")
        except ValueError:
            self.fail(name, "must be an ISO-8601 datetime")
        return None

    def time_range(self, low_name: str, high_name: str) -> tuple[float | None, float | None]:
        low, high = self.datetime(low_name), self.datetime(high_name)
        if low is not None and high is not None and low > high:
            self.fail(low_name, f"must not be after '{high_name}'")
        return low, high
