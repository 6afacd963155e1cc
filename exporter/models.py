"""Typed models of the OnePin API responses, parsed tolerantly.

The API's docs contradict themselves (see onepin-api.md §7): fields come and go between versions,
`usage_summary` has no fixed schema, statuses are open strings. Parsing therefore accepts missing
and null optional fields, keeps unknown statuses as they are, and keeps only numeric
`usage_summary` entries. A documented field of the wrong type is an error (`DecodeError`) naming
the field, because silently dropping it would show wrong data as if it were right.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
KNOWN_STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")


class DecodeError(ValueError):
    """A response body that is not JSON, or a field of the wrong type."""


# --- field readers -----------------------------------------------------------------------------


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


def _opt_str(d: Mapping[str, Any], key: str, where: str) -> str | None:
    value = d.get(key)
    if value is None or isinstance(value, str):
        return value
    raise DecodeError(f"{where}.{key}: expected a string or null, got {_show(value)}")


def _finite(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (bools, NaN, too big)."""
    if type(value) is float:  # the common case first, without isinstance's generality
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _opt_num(d: Mapping[str, Any], key: str, where: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    number = _finite(value)
    if number is None:
        raise DecodeError(f"{where}.{key}: expected a finite number or null, got {_show(value)}")
    return number


def _opt_int(d: Mapping[str, Any], key: str, where: str) -> int | None:
    value = _opt_num(d, key, where)
    return None if value is None else int(value)


def _req_int(d: Mapping[str, Any], key: str, where: str) -> int:
    value = _opt_int(d, key, where)
    if value is None:
        raise DecodeError(f"{where}.{key}: expected an integer, got null")
    return value


def _opt_time(d: Mapping[str, Any], key: str, where: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DecodeError(f"{where}.{key}: expected an ISO-8601 time, got {_show(value)}")
    return parse_time(value, f"{where}.{key}")


# Big enough for the created/started times of a few thousand active runs; updated_at values
# are new on every poll, so a bigger memo would mostly hold dead entries.
TIME_MEMO_SIZE = 16_384
_TIMES: dict[str, float] = {}


def parse_time(value: str, where: str = "time") -> float:
    """ISO-8601 to Unix seconds; a time without an offset is taken as UTC.

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
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise DecodeError(f"{where}: expected an ISO-8601 time, got {_show(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _usage(value: Any, where: str) -> Mapping[str, float]:
    """Keep the numeric entries of the free-form usage_summary; it has no stable schema."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DecodeError(f"{where}.usage_summary: expected an object or null, got {_show(value)}")
    usage = {}
    for k, v in value.items():
        number = _finite(v)
        if number is not None:
            usage[str(k)] = number
    return usage


# --- models ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Meta:
    request_id: str | None
    timestamp: float | None


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int | None
    total: int | None


@dataclass(frozen=True, slots=True)
class Workflow:
    """An item of List Workflows (or Get Workflow)."""

    id: str
    name: str
    runs_count: int | None
    last_run_at: float | None
    last_run_status: str | None
    run_status_counts: Mapping[str, int] | None

    def fingerprint(self) -> tuple[int | None, float | None] | None:
        """What changes when a run is created; None when the API gives no way to tell."""
        if self.runs_count is None and self.last_run_at is None:
            return None
        return (self.runs_count, self.last_run_at)


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
    # Fields left out because their values were unusable: "field: what was wrong".
    problems: tuple[str, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def usage_value(self, key: str) -> float | None:
        return None if self.usage is None else self.usage.get(key)

    def duration(self) -> float | None:
        """Running time: completed minus started, or the API's now minus started."""
        if self.started_at is None:
            return None
        end = self.completed_at if self.completed_at is not None else None
        if end is None and not self.terminal:
            end = self.observed_at
        if end is None:
            return None
        return max(0.0, end - self.started_at)


@dataclass(frozen=True, slots=True)
class RunsSummary:
    counts: Mapping[str, int]
    total_runs: int | None
    pass_rate: float | None
    average_duration_seconds: float | None


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


# --- parsers -----------------------------------------------------------------------------------


def parse_meta(body: Any) -> Meta:
    meta = body.get("meta") if isinstance(body, Mapping) else None
    if not isinstance(meta, Mapping):
        return Meta(None, None)
    request_id = meta.get("request_id")
    timestamp = meta.get("timestamp")
    ts: float | None = None
    if isinstance(timestamp, str):
        try:
            ts = parse_time(timestamp, "meta.timestamp")
        except DecodeError:
            ts = None
    return Meta(request_id if isinstance(request_id, str) else None, ts)


def parse_pagination(body: Mapping[str, Any]) -> Pagination:
    p = body.get("pagination")
    if not isinstance(p, Mapping):
        return Pagination(None, None)
    limit = p.get("limit")
    total = p.get("total")
    return Pagination(
        limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _data(body: Any, where: str) -> Any:
    if not isinstance(body, Mapping) or "data" not in body:
        raise DecodeError(f"{where}: response has no 'data' field")
    return body["data"]


def parse_workflow(raw: Any, where: str = "workflow") -> Workflow:
    d = _obj(raw, where)
    counts_raw = d.get("run_status_counts")
    counts: dict[str, int] | None = None
    if counts_raw is not None:
        counts_obj = _obj(counts_raw, f"{where}.run_status_counts")
        counts = {}
        for status in counts_obj:
            value = _opt_int(counts_obj, status, f"{where}.run_status_counts")
            if value is not None:
                counts[str(status)] = value
    return Workflow(
        id=_req_str(d, "id", where),
        name=_req_str(d, "name", where),
        runs_count=_opt_int(d, "runs_count", where),
        last_run_at=_opt_time(d, "last_run_at", where),
        last_run_status=_opt_str(d, "last_run_status", where),
        run_status_counts=counts,
    )


def parse_run(
    raw: Any, where: str = "run", observed_at: float | None = None, detailed: bool = False
) -> Run:
    d = _obj(raw, where)
    triggered = d.get("triggered_by")
    user_name: str | None = None
    if isinstance(triggered, Mapping):
        name = triggered.get("user_name")
        user_name = name if isinstance(name, str) and name else None
    return Run(
        id=_req_str(d, "id", where),
        run_number=_req_int(d, "run_number", where),
        status=_req_str(d, "status", where),
        created_at=_opt_time(d, "created_at", where),
        started_at=_opt_time(d, "started_at", where),
        completed_at=_opt_time(d, "completed_at", where),
        updated_at=_opt_time(d, "updated_at", where),
        total_nodes=_opt_int(d, "total_nodes", where),
        total_steps=_opt_int(d, "total_steps", where),
        finished_steps=_opt_int(d, "finished_steps", where),
        token_cost=_opt_num(d, "token_cost", where),
        credits=_opt_num(d, "credits", where),
        usage=_usage(d.get("usage_summary"), where) if d.get("usage_summary") is not None else None,
        error=_opt_str(d, "error", where),
        triggered_by=user_name,
        observed_at=observed_at,
        detailed=detailed,
    )


def parse_workflow_page(
    body: Any, memo: dict[str, tuple[object, Workflow]] | None = None
) -> Page[Workflow]:
    """A page of List Workflows. With `memo`, an item whose telling fields are the same as last
    time for the same id is not parsed again (most of a big catalogue does not change)."""
    data = _data(body, "list workflows")
    if not isinstance(data, list):
        raise DecodeError("list workflows: 'data' is not a list")
    items = []
    bad = []
    for i, item in enumerate(data):
        key = _workflow_key(item) if memo is not None else None
        seen = memo.get(key[0]) if memo is not None and key is not None else None
        if seen is not None and seen[0] == key:
            items.append(seen[1])
            continue
        try:
            workflow = parse_workflow(item, f"data[{i}]")
        except DecodeError as exc:
            wid = item.get("id") if isinstance(item, Mapping) else None
            bad.append((wid if isinstance(wid, str) and wid else f"data[{i}]", str(exc)))
            continue
        if memo is not None and key is not None:
            memo[workflow.id] = (key, workflow)
        items.append(workflow)
    meta, pagination = parse_meta(body), parse_pagination(body)
    return Page(tuple(items), meta, pagination, tuple(bad), len(data))


def _workflow_key(item: Any) -> tuple[Any, ...] | None:
    """The fields a Workflow is made of, unparsed: small and cheap to compare."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        return None
    counts = item.get("run_status_counts")
    return (
        item["id"],
        item.get("name"),
        item.get("runs_count"),
        item.get("last_run_at"),
        item.get("last_run_status"),
        tuple(counts.items()) if isinstance(counts, Mapping) else counts,
    )


def parse_run_page(body: Any) -> Page[Run]:
    data = _data(body, "list runs")
    if not isinstance(data, list):
        raise DecodeError("list runs: 'data' is not a list")
    meta = parse_meta(body)
    items = tuple(
        parse_run(item, f"data[{i}]", observed_at=meta.timestamp) for i, item in enumerate(data)
    )
    return Page(items, meta, parse_pagination(body))


def parse_run_status(body: Any) -> Run:
    meta = parse_meta(body)
    return parse_run(_data(body, "run status"), "data", observed_at=meta.timestamp, detailed=True)


def parse_runs_summary(body: Any) -> RunsSummary:
    d = _obj(_data(body, "runs summary"), "data")
    counts: dict[str, int] = {}
    for key in d:
        if key in ("total_runs", "pass_rate", "average_duration_seconds"):
            continue
        value = d[key]
        if isinstance(value, int) and not isinstance(value, bool):
            if _finite(value) is None:
                raise DecodeError(f"data.{key}: count too large: {_show(value)}")
            counts[str(key)] = value
    return RunsSummary(
        counts=counts,
        total_runs=_opt_int(d, "total_runs", "data"),
        pass_rate=_opt_num(d, "pass_rate", "data"),
        average_duration_seconds=_opt_num(d, "average_duration_seconds", "data"),
    )


def parse_error_message(body: Any) -> tuple[str | None, str | None, str | None]:
    """(code, message, request_id) from either documented error shape, or a flat one."""
    if not isinstance(body, Mapping):
        return None, None, None
    request_id = parse_meta(body).request_id
    err = body.get("error")
    if isinstance(err, Mapping):
        code, message = err.get("code"), err.get("message")
        return _text(code), _text(message), request_id
    if "code" in body or "message" in body:
        return _text(body.get("code")), _text(body.get("message")), request_id
    detail = body.get("detail")
    if isinstance(detail, list) and detail:
        parts = []
        for item in detail[:3]:
            if isinstance(item, Mapping):
                loc = item.get("loc")
                where = ".".join(str(x) for x in loc) if isinstance(loc, list) else ""
                parts.append(f"{where}: {item.get('msg')}" if where else str(item.get("msg")))
        return "VALIDATION_ERROR", "; ".join(parts) or None, request_id
    if isinstance(detail, str):
        return None, _text(detail), request_id
    return None, None, request_id


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= 200 else text[:197] + "..."
