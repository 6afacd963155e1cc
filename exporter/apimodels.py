"""The typed models of OnePin API responses (exporter/responsereaders.py makes them).

Frozen values: what the API said, as far as it could be read; a field that could not be read is
None, with why in `problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from exporter.fieldreaders import TERMINAL_STATUSES

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Meta:
    request_id: str | None
    timestamp: float | None


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int | None
    total: int | None


Fingerprint = tuple[int | None, float | None, bool]
# What List Runs items carry and Get Run Status answers do not (onepin-api.md §8).
LIST_ONLY_FIELDS = ("credits", "delivered_audio_ms", "output_line_count")


@dataclass(frozen=True, slots=True)
class Workflow:
    """An item of List Workflows (or Get Workflow)."""

    id: str
    name: str
    runs_count: int | None
    last_run_at: float | None
    last_run_status: str | None
    run_status_counts: Mapping[str, int] | None
    # Fields that were sent but could not be read (so are None): "field: what was wrong".
    problems: tuple[str, ...] = ()
    # When the workflow (its definition) last changed: Get Workflow is asked again then.
    updated_at: float | None = None

    def fingerprint(self) -> Fingerprint | None:
        """What changes when a run is created, or when the latest run finishes (its credits and
        delivered audio are sent only in List Runs); None when the API gives no way to tell."""
        if self.runs_count is None and self.last_run_at is None:
            return None
        return (self.runs_count, self.last_run_at, self.last_run_status in TERMINAL_STATUSES)


@dataclass(frozen=True, slots=True)
class Run:
    """A run as seen in List Runs or Get Run Status (the latter has more fields)."""

    id: str
    run_number: int
    status: str
    created_at: float | None
    started_at: float | None = None
    completed_at: float | None = None
    updated_at: float | None = None
    total_nodes: int | None = None
    total_steps: int | None = None
    finished_steps: int | None = None
    token_cost: float | None = None
    credits: float | None = None
    usage: Mapping[str, float] | None = None
    error: str | None = None
    triggered_by: str | None = None
    # The API's clock (meta.timestamp) when this was read: durations of running runs use it.
    observed_at: float | None = None
    # True when it came from Get Run Status (all fields), False from a List Runs item.
    detailed: bool = False
    # Added by the SDK (onepin-api.md §8); held_nodes only in Get Run Status, as node ids.
    finished_nodes: int | None = None
    held_nodes: tuple[str, ...] | None = None
    paused_ms: int | None = None
    pause_reason: str | None = None
    pause_error: str | None = None
    delivered_audio_ms: int | None = None
    output_line_count: int | None = None
    # Fields that were sent but could not be read (so are None): "field: what was wrong", the
    # field first; at most MAX_PROBLEMS entries of at most 200 characters.
    problems: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def with_list_fields(self, listed: Run | None) -> Run:
        """This run with the fields only List Runs sends (LIST_ONLY_FIELDS) taken from `listed`,
        the same run as a run list showed it, where this one lacks them. Only when both show the
        run finished: its values are then final, while an active run's would be stale by the
        next poll (so they are left absent)."""
        if listed is None or listed.id != self.id or not (self.terminal and listed.terminal):
            return self
        changes = {
            name: getattr(listed, name)
            for name in LIST_ONLY_FIELDS
            if getattr(self, name) is None and getattr(listed, name) is not None
        }
        return replace(self, **changes) if changes else self

    def usage_value(self, key: str) -> float | None:
        return None if self.usage is None else self.usage.get(key)

    def duration(self) -> float | None:
        """Active time: completed (or, while the run is not finished, the API's now) minus
        started, minus `paused_ms` where the API gives it, as the API's own average duration
        counts it. Never negative."""
        if self.started_at is None:
            return None
        end = self.completed_at
        if end is None and not self.terminal:
            end = self.observed_at
        if end is None:
            return None
        active = end - self.started_at
        if self.paused_ms:
            active -= self.paused_ms / 1000
        return max(0.0, active)


@dataclass(frozen=True, slots=True)
class RunsSummary:
    counts: Mapping[str, int]
    total_runs: int | None
    pass_rate: float | None
    average_duration_seconds: float | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    meta: Meta
    pagination: Pagination
    # Items that could not be read, as (id or position, problem): one bad workflow must not
    # take its page, and so the whole workspace, down with it.
    bad: tuple[tuple[str, str], ...] = ()
    # How many items the page had, readable or not.
    size: int = 0


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The workspace's workflows, as List Workflows' pages gave them."""

    workflows: tuple[Workflow, ...]
    # Entries that could not be read: workflow id (or position) -> the problem.
    bad: Mapping[str, str]
    # Why paging stopped before the end the API gave, if it did: worth a warning.
    paging: str | None = None
