"""List Workflows, List Runs and Runs Summary: parameters, filtering, ordering, paging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .model import RunCounts, SimModel
from .plan import ACTIVE_STATUSES, COMPLETED, RUN_STATUSES, RunPlan
from .query import QueryReader
from .render import Json, Renderer

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

WORKFLOW_STATUSES = ("draft", "running", "completed", "failed", "paused")
WORKFLOW_SORT_DEFAULT_ORDER = {"name": "asc", "updated_at": "desc", "runs_count": "desc"}
RUN_SORTS = ("created_at", "started_at", "completed_at", "status")
ORDERS = ("asc", "desc")


def read_page(reader: QueryReader) -> tuple[int, int]:
    offset = reader.integer("offset", 0, 0)
    limit = reader.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return offset, limit


def _sorted(items: list[Any], keys: Iterable[tuple[Callable[[Any], Any], bool]]) -> list[Any]:
    """Sort by several (key, descending) pairs, most significant first, keeping input order
    (which the callers make ``id`` ascending) among ties."""
    for key, descending in reversed(list(keys)):
        items.sort(key=key, reverse=descending)
    return items


def _nulls_last(value: Any) -> tuple[int, Any]:
    """Postgres orders NULL as the largest value: last ascending, first descending."""
    return (1, 0) if value is None else (0, value)


# --- List Workflows ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkflowQuery:
    offset: int
    limit: int
    status: str | None
    search: str | None
    sort: tuple[tuple[str, bool], ...]
    last_run_after: float | None
    last_run_before: float | None
    has_failed_run: bool | None
    include_definition: bool = False

    @classmethod
    def read(cls, reader: QueryReader) -> WorkflowQuery:
        offset, limit = read_page(reader)
        status = reader.choice("status", WORKFLOW_STATUSES)
        search = reader.text("search", 100)
        sorts = reader.choices("sort", tuple(WORKFLOW_SORT_DEFAULT_ORDER))
        orders = reader.choices("order", ORDERS)
        if len(orders) > max(len(sorts), 1):
            reader.fail("order", "more 'order' values than 'sort' values")
        if not sorts:
            sorts = ["updated_at"]
        sort = tuple(
            (
                field,
                (orders[i] if i < len(orders) else WORKFLOW_SORT_DEFAULT_ORDER[field]) == "desc",
            )
            for i, field in enumerate(sorts)
        )
        after, before = reader.time_range("last_run_after", "last_run_before")
        has_failed_run = reader.boolean("has_failed_run")
        include_definition = reader.boolean("include_definition") or False
        reader.check()
        return cls(
            offset, limit, status, search, sort, after, before, has_failed_run, include_definition
        )

    @property
    def filters_on_runs(self) -> bool:
        """Whether a filter depends on the workflows' runs (they change with time)."""
        filters = (self.status, self.last_run_after, self.last_run_before, self.has_failed_run)
        return any(value is not None for value in filters)

    @property
    def filtered(self) -> bool:
        return self.search is not None or self.filters_on_runs


def derived_status(counts: RunCounts) -> str | None:
    """The workflow status derived from its latest run (docs section 4).

    A pending latest run counts as active (``running``); a cancelled one matches no status.
    """
    status = counts.last_status
    if status is None:
        return "draft"
    if status in ACTIVE_STATUSES:
        return "running"
    if status in ("completed", "failed"):
        return status
    return None


class Catalogue:
    """Pages of the workflow catalogue; orders by static keys are computed once."""

    _STATIC_KEYS = frozenset({"name", "updated_at"})

    def __init__(self, model: SimModel, renderer: Renderer) -> None:
        self._model = model
        self._renderer = renderer
        self._orders: dict[tuple[tuple[str, bool], ...], list[int]] = {}

    def _order(self, sort: tuple[tuple[str, bool], ...], now: int) -> list[int]:
        cached = self._orders.get(sort)
        if cached is not None:
            return cached
        profiles = self._model.profiles
        keys: dict[str, Callable[[int], Any]] = {
            "name": lambda i: profiles[i].name,
            "updated_at": lambda i: profiles[i].updated_at,
            "runs_count": lambda i: self._model.counts(i, now).runs_count,
        }
        order = sorted(range(len(profiles)), key=lambda i: profiles[i].id)
        _sorted(order, [(keys[field], descending) for field, descending in sort])
        if all(field in self._STATIC_KEYS for field, _ in sort):
            self._orders[sort] = order
        return order

    def _matches(self, query: WorkflowQuery, index: int, now: int) -> bool:
        profile = self._model.profiles[index]
        if query.search is not None:
            needle = query.search.lower()
            haystack = profile.name.lower() + "\n" + (profile.description or "").lower()
            if needle not in haystack:
                return False
        if not query.filters_on_runs:
            return True
        counts = self._model.counts(index, now)
        if query.status is not None and derived_status(counts) != query.status:
            return False
        last_at = None if counts.last is None else counts.last.created
        if query.last_run_after is not None and (last_at is None or last_at < query.last_run_after):
            return False
        if query.last_run_before is not None and (
            last_at is None or last_at > query.last_run_before
        ):
            return False
        failed = counts.by_status["failed"] > 0
        return query.has_failed_run is None or failed == query.has_failed_run

    def page(self, query: WorkflowQuery, now: int) -> tuple[list[Json], int]:
        order = self._order(query.sort, now)
        if query.filtered:
            order = [index for index in order if self._matches(query, index, now)]
        chosen = order[query.offset : query.offset + query.limit]
        render = (
            self._renderer.workflow_detail if query.include_definition else self._renderer.workflow
        )
        items = [render(self._model.profiles[i], self._model.counts(i, now)) for i in chosen]
        return items, len(order)


# --- List Runs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunQuery:
    offset: int
    limit: int
    statuses: frozenset[str] | None
    search: str | None
    sort: str
    descending: bool

    @classmethod
    def read(cls, reader: QueryReader) -> RunQuery:
        offset, limit = read_page(reader)
        statuses = reader.comma_list("status", RUN_STATUSES)
        search = reader.text("search", 100)
        sort = reader.choice("sort", RUN_SORTS) or "created_at"
        order = reader.choice("order", ORDERS) or "desc"
        reader.check()
        return cls(offset, limit, statuses, search, sort, order == "desc")


def list_runs(
    model: SimModel, renderer: Renderer, workflow: int, query: RunQuery, now: int
) -> tuple[list[Json], int]:
    statuses = query.statuses
    if statuses is not None and statuses <= ACTIVE_STATUSES:
        # Only runs not yet settled can be active: a handful at most.
        runs: Iterable[RunPlan] = model.unsettled(workflow, now)
        plans, total = _filter_and_sort(runs, renderer, query, now)
    elif query.sort == "created_at" and query.search is None:
        if statuses is None:
            total = model.run_count(workflow, now)
            ordered = model.runs_by_created(
                workflow, now, descending=query.descending, skip=query.offset
            )
            plans = list(islice(ordered, query.limit))
        else:
            counts = model.counts(workflow, now).by_status
            total = sum(counts.get(status, 0) for status in statuses)
            ordered = model.runs_by_created(workflow, now, descending=query.descending)
            matching = (plan for plan in ordered if plan.status_at(now) in statuses)
            plans = list(islice(matching, query.offset, query.offset + query.limit))
    else:
        count = model.run_count(workflow, now)
        runs = (model.peek_plan(workflow, number) for number in range(1, count + 1))
        plans, total = _filter_and_sort(runs, renderer, query, now)
    return [renderer.run_list_item(plan, now) for plan in plans], total


def _filter_and_sort(
    runs: Iterable[RunPlan], renderer: Renderer, query: RunQuery, now: int
) -> tuple[list[RunPlan], int]:
    statuses = query.statuses
    needle = None if query.search is None else query.search.lower()
    seen = [
        (plan, plan.observe(now))
        for plan in runs
        if (statuses is None or plan.status_at(now) in statuses)
        and (needle is None or needle in renderer.user_name(plan.user).lower())
    ]
    seen.sort(key=lambda pair: pair[0].id)
    key: Callable[[Any], Any] = {
        "created_at": lambda pair: pair[0].created,
        "started_at": lambda pair: _nulls_last(pair[1].started_at),
        "completed_at": lambda pair: _nulls_last(pair[1].completed_at),
        "status": lambda pair: pair[1].status,
    }[query.sort]
    _sorted(seen, [(key, query.descending)])
    page = seen[query.offset : query.offset + query.limit]
    return [plan for plan, _ in page], len(seen)


# --- Runs Summary -----------------------------------------------------------------------


def runs_summary(
    model: SimModel, workflow: int, low: float | None, high: float | None, now: int
) -> Json:
    if low is None and high is None:
        counts = model.counts(workflow, now)
        return Renderer.summary(
            counts.by_status, counts.completed_seconds, counts.delivered_audio_ms
        )
    by_status = dict.fromkeys(RUN_STATUSES, 0)
    seconds = audio_ms = 0
    for plan in model.runs_created_between(workflow, now, low, high):
        status = plan.status_at(now)
        by_status[status] += 1
        if status == COMPLETED:
            seconds += plan.active_duration() or 0
            audio_ms += plan.delivered_audio_ms(plan.stop_step)
    return Renderer.summary(by_status, seconds, audio_ms)
