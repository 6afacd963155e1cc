"""Counts of API requests per endpoint and of responses per status code (``/_sim/stats``).

Endpoint names: whoami, list_workflows, get_workflow, list_runs, get_run, get_run_status,
get_run_steps, get_run_overview, runs_summary.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: Counter[str] = Counter()

    def request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] += 1

    def response(self, status: int) -> None:
        with self._lock:
            self._responses[str(status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": dict(self._requests), "responses": dict(self._responses)}

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._responses.clear()
