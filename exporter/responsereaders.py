"""Whole OnePin API responses (pages, run status, runs summary, errors) read into the models.

Each field is read by exporter/fieldreaders.py; an item whose required field cannot be read is
kept out of its page (`Page.bad`) and costs only itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.apimodels import Meta, Page, Pagination, Run, RunsSummary, Workflow

# The readers are private to the parsing of responses (this module and fieldreaders.py).
from exporter.fieldreaders import (
    MAX_INT,
    UNKNOWN_STATUS,
    DecodeError,
    _amount,
    _Bad,
    _count,
    _field,
    _held_nodes,
    _note,
    _obj,
    _opt_text,
    _problems,
    _ratio,
    _req_count,
    _req_str,
    _show,
    _status,
    _time,
    _to_count,
    _to_time,
    _usage,
)


def parse_meta(body: Any) -> Meta:
    meta = body.get("meta") if isinstance(body, Mapping) else None
    if not isinstance(meta, Mapping):
        return Meta(None, None)
    request_id = meta.get("request_id")
    timestamp = meta.get("timestamp")
    ts: float | None = None
    if timestamp is not None:
        try:
            ts = _to_time(timestamp)
        except _Bad:
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
    problems: list[str] = []
    status = _opt_text(d, "last_run_status", problems)
    return Workflow(
        id=_req_str(d, "id", where),
        name=_req_str(d, "name", where),
        runs_count=_count(d, "runs_count", problems),
        last_run_at=_time(d, "last_run_at", problems),
        last_run_status=UNKNOWN_STATUS if status is not None and not status.strip() else status,
        run_status_counts=_status_counts(d.get("run_status_counts"), problems),
        updated_at=_time(d, "updated_at", problems),
        problems=_problems(problems),
    )


def parse_workflow_definition(body: Any) -> Any:
    """Get Workflow's `definition`, as sent (exporter/schedule.py reads it defensively)."""
    data = _obj(_data(body, "workflow"), "data")
    return data.get("definition")


def _status_counts(value: Any, problems: list[str]) -> Mapping[str, int] | None:
    """Runs per status; every key is a status (open: new ones pass through)."""
    if value is None:
        return None
    if type(value) is not dict and not isinstance(value, Mapping):
        _note(problems, "run_status_counts", f"expected an object, got {_show(value)}")
        return None
    counts = {}
    for status, v in value.items():
        if type(v) is int and 0 <= v <= MAX_INT:
            counts[str(status)] = v
        elif v is not None:
            try:
                counts[str(status)] = _to_count(v)
            except _Bad as bad:
                _note(problems, f"run_status_counts.{_field(status)}", bad)
    return counts


def parse_run(
    raw: Any, where: str = "run", observed_at: float | None = None, detailed: bool = False
) -> Run:
    d = _obj(raw, where)
    problems: list[str] = []
    triggered = d.get("triggered_by")
    user_name: str | None = None
    if type(triggered) is dict or isinstance(triggered, Mapping):
        name = triggered.get("user_name")
        user_name = name if type(name) is str and name else None
    usage = d.get("usage_summary")
    pause_reason = _opt_text(d, "pause_reason", problems)
    return Run(
        id=_req_str(d, "id", where),
        run_number=_req_count(d, "run_number", where),
        status=_status(d, "status", where),
        created_at=_time(d, "created_at", problems),
        started_at=_time(d, "started_at", problems),
        completed_at=_time(d, "completed_at", problems),
        updated_at=_time(d, "updated_at", problems),
        total_nodes=_count(d, "total_nodes", problems),
        total_steps=_count(d, "total_steps", problems),
        finished_steps=_count(d, "finished_steps", problems),
        token_cost=_amount(d, "token_cost", problems),
        credits=_amount(d, "credits", problems),
        usage=None if usage is None else _usage(usage, problems),
        error=_opt_text(d, "error", problems),
        triggered_by=user_name,
        observed_at=observed_at,
        detailed=detailed,
        finished_nodes=_count(d, "finished_nodes", problems),
        held_nodes=_held_nodes(d.get("held_nodes"), problems),
        paused_ms=_count(d, "paused_ms", problems),
        pause_reason=pause_reason or None,  # "" is no reason: it would be an empty label
        pause_error=_opt_text(d, "pause_error", problems),
        delivered_audio_ms=_count(d, "delivered_audio_ms", problems),
        output_line_count=_count(d, "output_line_count", problems),
        problems=_problems(problems),
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
    """The fields a Workflow is made of, unparsed: small and cheap to compare (the counts as a
    tuple of their keys and one of their values: a tuple of pairs was 280 bytes more a
    workflow, kept for each one)."""
    if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
        return None
    counts = item.get("run_status_counts")
    if isinstance(counts, Mapping):
        counts = (tuple(counts), tuple(counts.values()))
    return (
        item["id"],
        item.get("name"),
        item.get("runs_count"),
        item.get("last_run_at"),
        item.get("last_run_status"),
        counts,
    )


def parse_run_page(body: Any) -> Page[Run]:
    """A page of List Runs; an item that cannot be read (no usable id, run number or status) is
    kept out, in `Page.bad`, and costs only itself."""
    data = _data(body, "list runs")
    if not isinstance(data, list):
        raise DecodeError("list runs: 'data' is not a list")
    meta = parse_meta(body)
    items = []
    bad = []
    for i, item in enumerate(data):
        try:
            items.append(parse_run(item, f"data[{i}]", observed_at=meta.timestamp))
        except DecodeError as exc:
            rid = item.get("id") if isinstance(item, Mapping) else None
            bad.append((rid if isinstance(rid, str) and rid else f"data[{i}]", str(exc)))
    return Page(tuple(items), meta, parse_pagination(body), tuple(bad), len(data))


def parse_run_status(body: Any) -> Run:
    meta = parse_meta(body)
    return parse_run(_data(body, "run status"), "data", observed_at=meta.timestamp, detailed=True)


# Runs Summary has a fixed schema (the SDK's RunsSummaryOut): its run counts are these keys and
# nothing else; `delivered_audio_ms` is an integer beside them, not a status.
SUMMARY_STATUSES = ("pending", "running", "completed", "failed", "cancelled", "paused")


def parse_runs_summary(body: Any) -> RunsSummary:
    d = _obj(_data(body, "runs summary"), "data")
    problems: list[str] = []
    counts: dict[str, int] = {}
    for status in SUMMARY_STATUSES:
        value = _count(d, status, problems)
        if value is not None:
            counts[status] = value
    return RunsSummary(
        counts=counts,
        total_runs=_count(d, "total_runs", problems),
        pass_rate=_ratio(d, "pass_rate", problems),
        average_duration_seconds=_amount(d, "average_duration_seconds", problems),
        problems=_problems(problems),
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
