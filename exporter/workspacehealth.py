"""Whether the API answers a workspace: up, the error that says why not, and the backoff after
a rejected key (or a client refused as too old), each change logged once."""

from __future__ import annotations

import logging

from exporter.apierrors import ApiError
from exporter.config import Workspace
from exporter.deadline import Clock
from exporter.planner import auth_backoff
from exporter.problems import same_problem

log = logging.getLogger("exporter.poller")


class WorkspaceHealth:
    def __init__(self, workspace: Workspace, clock: Clock) -> None:
        self._workspace = workspace
        self._clock = clock
        self.up = False
        self.error: str | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._paging: str | None = None  # why the last catalogue was cut short, if it was

    def adopt(self, old: WorkspaceHealth) -> None:
        """The same workspace before a config reload: its state, and its backoff if the token
        is the same."""
        self.error, self.up = old.error, old.up
        if self._workspace.token.reveal() == old._workspace.token.reveal():
            self._failures, self._retry_at = old._failures, old._retry_at

    def backing_off(self, now: float) -> bool:
        """The key was rejected: do not burn requests until the backoff ends."""
        return now < self._retry_at

    def token_changed(self) -> None:
        """A token re-read: try it at once."""
        self._failures, self._retry_at = 0, 0.0

    def failed(self, exc: ApiError) -> None:
        message = str(exc)
        # A client refused as too old (426) is retried as rarely as a rejected key.
        if exc.unauthorized or exc.upgrade_required:
            self._failures += 1
            backoff = auth_backoff(self._failures)
            self._retry_at = self._clock() + backoff
            if exc.upgrade_required:
                message += (
                    "; the API refuses this client as outdated (version asked for: "
                    f"{exc.required_version or 'not named'}); a newer exporter release may be "
                    f"needed; next try in {backoff:.0f}s"
                )
            else:
                source = self._workspace.token.source
                message += f"; check the token ({source}); next try in {backoff:.0f}s"
        if not same_problem(message, self.error):
            log.error(
                "API refuses this client: %s"
                if exc.upgrade_required
                else "API unreachable or key rejected: %s",
                message,
                extra={"workspace": self._workspace.name},
            )
        self.error = message
        self.up = False

    def ok(self) -> None:
        if self.error is not None:
            log.info("API reachable again", extra={"workspace": self._workspace.name})
        self.error = None
        self.up = True
        self._failures, self._retry_at = 0, 0.0

    def note_paging(self, problem: str | None) -> None:
        """A catalogue cut short (the client says why): logged when it starts and ends."""
        ws = self._workspace.name
        if problem is not None and not same_problem(problem, self._paging):
            log.warning("List Workflows: %s", problem, extra={"workspace": ws})
        elif problem is None and self._paging is not None:
            log.info("List Workflows: paging works again", extra={"workspace": ws})
        self._paging = problem
