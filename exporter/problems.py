"""Problems told once: a workflow's error when it changes, a bad value once per field.

Error texts differ on every request (request ids) and a 5xx storm alternates 500, 502, 503...:
`same_problem` tells when two texts are the same problem, so that a problem that lasts is logged
when it starts, not on every poll.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from exporter.workflowstate import WorkflowState

log = logging.getLogger("exporter.poller")
MAX_ERROR_LINES = 5
_FIELD_PREFIX = re.compile(r"^(unexpected response: )?(data(\[\d+\])?\.)?")
_REQUEST_ID = re.compile(r" \(request_id [^)]*\)")
# A 5xx storm alternates 500, 502, 503...: one problem, not three.
_SERVER_ERROR = re.compile(r"HTTP 5\d\d( [A-Z_]+)?( .*)?$")


def same_problem(a: str | None, b: str | None) -> bool:
    """Two error texts tell of the same problem (request ids differ on every request)."""
    if a is None or b is None:
        return a is b
    return _problem(a) == _problem(b)


def _problem(text: str) -> str:
    return _SERVER_ERROR.sub("HTTP 5xx", _REQUEST_ID.sub("", text))


def note_problems(
    state: WorkflowState, found: Iterable[tuple[str | None, str]], workspace: str
) -> None:
    """Values left out (run id or None, the problem), once per workflow and field (they come
    back every poll), at most MAX_ERROR_LINES * 4 fields per workflow."""
    for rid, problem in found:
        text = _FIELD_PREFIX.sub("", problem)
        where = text.split(":", 1)[0]
        if where in state.problems or len(state.problems) >= MAX_ERROR_LINES * 4:
            continue
        state.problems |= {where}
        extra = {"workspace": workspace, "workflow_id": state.id}
        if rid is not None:
            extra["run_id"] = rid
        log.warning("data left out: %s", text, extra=extra)


class ErrorLog:
    """Workflows' errors, logged once per change: one line per workflow whose problem changed,
    one line in all when there are many."""

    def __init__(self, workspace: str) -> None:
        self._workspace = workspace
        self._new: list[tuple[str, str]] = []

    def set(self, state: WorkflowState, message: str) -> None:
        if not same_problem(message, state.error):
            self._new.append((state.id, message))
        state.error = message

    def flush(self) -> None:
        new, self._new = self._new, []
        ws = self._workspace
        if len(new) > MAX_ERROR_LINES:
            log.warning(
                "%d workflows not refreshed, e.g. %s: %s",
                len(new),
                new[0][0],
                new[0][1],
                extra={"workspace": ws},
            )
            return
        for wid, message in new:
            log.warning(
                "workflow not refreshed: %s", message, extra={"workspace": ws, "workflow_id": wid}
            )
