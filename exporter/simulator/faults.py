"""Fault knobs: added latency, injected 5xx answers, a per-token rate limit, a required client
version (``X-OnePin-Required-Version``, 426 for older SDKs) and the 422 body shape.

All of them can be changed while the simulator runs (``/_sim/faults``).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

from .clock import Clock
from .errors import ApiError, rate_limited, server_error, upgrade_required
from .rng import Rng

RATE_WINDOW_SECONDS = 60
# The 5xx statuses injected, with their weights.
_SERVER_ERRORS = ((500, 0.6), (502, 0.2), (503, 0.2))
_ERRORS_KEY = 0x45525253
VALIDATION_BODIES = ("envelope", "framework")
_VERSION = re.compile(r"\d+(\.\d+){0,3}")
# The official SDK's User-Agent: ``onepin/<version>``.
_SDK_AGENT = re.compile(r"onepin/(\d+(?:\.\d+)*)")


def version_tuple(text: str) -> tuple[int, ...]:
    """``0.16.1`` -> (0, 16, 1). Dotted integers only (all the simulator accepts), so a tuple
    compare is exact and no version library is needed."""
    return tuple(int(part) for part in text.split("."))


def sdk_version(user_agent: str) -> tuple[int, ...] | None:
    """The SDK version a ``User-Agent`` names, if it is the official SDK's or CLI's."""
    match = _SDK_AGENT.match(user_agent)
    return None if match is None else version_tuple(match.group(1))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(slots=True)
class FaultSettings:
    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_per_min: int | None = None
    # Sent as X-OnePin-Required-Version on every API answer; older SDK clients get 426.
    required_version: str | None = None
    # 422 bodies: the OnePin envelope, or the web framework's {"detail": [...]}.
    validation_body: str = "envelope"

    def validate(self) -> None:
        if not (_is_number(self.latency_ms) and 0 <= self.latency_ms <= 600_000):
            raise ValueError("latency_ms must be a number between 0 and 600000")
        if not (_is_number(self.error_rate) and 0 <= self.error_rate <= 1):
            raise ValueError("error_rate must be a number between 0 and 1")
        limit = self.rate_limit_per_min
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError("rate_limit_per_min must be an integer >= 1, or null")
        required = self.required_version
        if required is not None and (
            not isinstance(required, str) or _VERSION.fullmatch(required) is None
        ):
            raise ValueError("required_version must be a version such as '0.17.0', or null")
        if self.validation_body not in VALIDATION_BODIES:
            raise ValueError(f"validation_body must be one of {', '.join(VALIDATION_BODIES)}")

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """Applies the fault settings to API requests; deterministic for a seed."""

    def __init__(self, settings: FaultSettings, clock: Clock, seed: int) -> None:
        settings.validate()
        self.settings = settings
        self._clock = clock
        self._rng = Rng(seed, _ERRORS_KEY)
        self._lock = threading.Lock()
        # token -> (window start, requests admitted in the window)
        self._windows: dict[str, tuple[float, int]] = {}

    @property
    def latency_seconds(self) -> float:
        return self.settings.latency_ms / 1000.0

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        """Apply a partial update (unknown keys and bad values raise ValueError)."""
        unknown = set(changes) - set(self.settings.as_json())
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        merged = FaultSettings(**{**self.settings.as_json(), **changes})
        merged.validate()
        with self._lock:
            self.settings = merged
            self._windows.clear()
        return merged

    def admit(self, token: str) -> None:
        """Count a request against the token's window; raise 429 once it is full."""
        limit = self.settings.rate_limit_per_min
        if limit is None:
            return
        now = self._clock.elapsed()
        with self._lock:
            start, used = self._windows.get(token, (now, 0))
            if now >= start + RATE_WINDOW_SECONDS:
                start, used = now, 0
            if used >= limit:
                retry_after = max(1, math.ceil(start + RATE_WINDOW_SECONDS - now))
                raise rate_limited(retry_after)
            self._windows[token] = (start, used + 1)

    def version_headers(self) -> dict[str, str] | None:
        required = self.settings.required_version
        return None if required is None else {"X-OnePin-Required-Version": required}

    def check_version(self, user_agent: str) -> None:
        """426 for an official SDK client older than the required version."""
        required = self.settings.required_version
        if required is None:
            return
        version = sdk_version(user_agent)
        if version is not None and version < version_tuple(required):
            raise upgrade_required(required, {"X-OnePin-Required-Version": required})

    def injected_error(self) -> ApiError | None:
        """A 5xx to answer instead, drawn with probability ``error_rate``."""
        rate = self.settings.error_rate
        if rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= rate:
                return None
            pick = self._rng.random()
        for status, weight in _SERVER_ERRORS:
            if pick < weight:
                return server_error(status)
            pick -= weight
        return server_error(500)
