"""An in-test fake of the OnePin API, served through httpx.MockTransport.

Each test states exactly the workflows and runs it needs; the fake answers List Workflows,
List Runs, Get Run Status and Runs Summary in the documented shapes and records every request.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

API = "https://api.onepin.test"
TOKEN = "op_live_FAKEtoken0123456789abcdefghijkl"
NOW = "2026-11-29T12:00:00Z"
NOW_TS = 1795953600.0  # NOW as Unix seconds
TERMINAL = {"completed", "failed", "cancelled"}


def meta() -> dict[str, str]:
    return {"request_id": "req_test", "timestamp": NOW}


@dataclass
class FakeRun:
    id: str
    run_number: int
    status: str
    created_at: str = "2026-11-29T11:00:00Z"
    started_at: str | None = "2026-11-29T11:01:00Z"
    completed_at: str | None = None
    total_nodes: int | None = 5
    total_steps: int | None = 10
    finished_steps: int | None = 4
    token_cost: int = 100
    usage_summary: dict[str, Any] | None = field(
        default_factory=lambda: {"cpu_seconds": 12.5, "memory_mb": 256, "api_calls": 8}
    )
    error: str | None = None
    user_name: str = "Jane Doe"

    def list_item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "run_number": self.run_number,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "total_nodes": self.total_nodes,
            "total_steps": self.total_steps,
            "finished_steps": self.finished_steps,
            "usage_summary": self.usage_summary,
            "credits": None,
            "triggered_by": {"user_id": "u1", "user_name": self.user_name},
        }

    def status_body(self, workflow_id: str) -> dict[str, Any]:
        body = self.list_item()
        body.pop("credits")
        body.update(
            workflow_id=workflow_id,
            token_cost=self.token_cost,
            updated_at=NOW,
            error=self.error,
            has_export=False,
            pause_requested_at=None,
            paused_at=None,
        )
        return body


@dataclass
class FakeWorkflow:
    id: str
    name: str
    runs: list[FakeRun] = field(default_factory=list)
    with_counts: bool = True

    def item(self) -> dict[str, Any]:
        latest = max(self.runs, key=lambda r: r.run_number, default=None)
        item: dict[str, Any] = {
            "id": self.id,
            "user_id": "u1",
            "name": self.name,
            "description": None,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": NOW,
            "runs_count": len(self.runs),
            "last_run_at": latest.created_at if latest else None,
            "last_run_status": latest.status if latest else None,
        }
        if self.with_counts:
            counts = dict.fromkeys(
                ("pending", "running", "completed", "failed", "cancelled", "paused"), 0
            )
            for run in self.runs:
                counts[run.status] = counts.get(run.status, 0) + 1
            item["run_status_counts"] = counts
        return item


Override = Callable[[httpx.Request], httpx.Response | None]


class FakeOnePin:
    """The fake API. `overrides` can answer any request first (errors, odd bodies)."""

    def __init__(self, workflows: list[FakeWorkflow], page_size: int = 100) -> None:
        self.workflows = {wf.id: wf for wf in workflows}
        self.page_size = page_size
        self.requests: list[httpx.Request] = []
        self.overrides: list[Override] = []
        # Seconds to wait before answering a request (None: answer at once).
        self.delay: Callable[[httpx.Request], float] | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_async)

    async def handle_async(self, request: httpx.Request) -> httpx.Response:
        delay = self.delay(request) if self.delay else 0.0
        if delay:
            await asyncio.sleep(delay)  # a slow API, without holding the event loop
        return self.handle(request)

    def count(self, endpoint: str) -> int:
        return Counter(endpoint_of(r) for r in self.requests)[endpoint]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for override in self.overrides:
            response = override(request)
            if response is not None:
                return response
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "INVALID_API_KEY", "invalid API key")
        parts = urlsplit(str(request.url)).path.removeprefix("/api/v1").strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        if parts == ["workflows"]:
            return self._list_workflows(query)
        wf = self.workflows.get(parts[1]) if len(parts) > 1 else None
        if wf is None:
            return error(404, "NOT_FOUND", "workflow not found")
        if parts[2:] == ["runs"]:
            limit = int(query.get("limit", "20"))
            runs = sorted(wf.runs, key=lambda r: r.run_number, reverse=True)[:limit]
            return ok([r.list_item() for r in runs], {"limit": limit, "total": len(wf.runs)})
        if parts[2:] == ["runs", "summary"]:
            return ok(summary(wf))
        if len(parts) == 5 and parts[2] == "runs" and parts[4] == "status":
            run = next((r for r in wf.runs if r.id == parts[3]), None)
            if run is None:
                return error(404, "NOT_FOUND", "run not found")
            return ok(run.status_body(wf.id))
        return error(404, "NOT_FOUND", "no such endpoint")

    def _list_workflows(self, query: dict[str, str]) -> httpx.Response:
        offset = int(query.get("offset", "0"))
        limit = min(int(query.get("limit", "20")), self.page_size)
        items = [wf.item() for wf in self.workflows.values()]
        page = items[offset : offset + limit]
        nxt = f"{API}/api/v1/workflows?offset={offset + limit}&limit={limit}"
        return ok(
            page,
            {"limit": limit, "total": len(items), "next": nxt if page else None, "prev": None},
        )


def summary(wf: FakeWorkflow) -> dict[str, Any]:
    counts = Counter(r.status for r in wf.runs)
    done = counts["completed"] + counts["failed"] + counts["cancelled"]
    return {
        "total_runs": len(wf.runs),
        **{s: counts[s] for s in ("completed", "failed", "cancelled", "pending", "running")},
        "paused": counts["paused"],
        "pass_rate": counts["completed"] / done if done else None,
        "average_duration_seconds": 600.0 if counts["completed"] else None,
    }


def endpoint_of(request: httpx.Request) -> str:
    parts = request.url.path.removeprefix("/api/v1").strip("/").split("/")
    if parts == ["workflows"]:
        return "list_workflows"
    if parts[2:] == ["runs"]:
        return "list_runs"
    if parts[2:] == ["runs", "summary"]:
        return "runs_summary"
    if parts[-1] == "status":
        return "get_run_status"
    return "other"


def ok(data: Any, pagination: dict[str, Any] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"data": data, "meta": meta()}
    if pagination is not None:
        body["pagination"] = {"next": None, "prev": None, **pagination}
    return httpx.Response(200, json=body)


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": None}, "meta": meta()}
    return httpx.Response(status, content=json.dumps(body), headers=headers or {})


def standard_workspace() -> list[FakeWorkflow]:
    """One workflow per case issue #2 lists, plus an idle one."""
    return [
        FakeWorkflow("wf-running", "nightly-etl", [
            FakeRun("r-run-1", 1, "completed", completed_at="2026-11-29T11:10:00Z",
                    finished_steps=10),
            FakeRun("r-run-2", 2, "running", created_at="2026-11-29T11:50:00Z",
                    started_at="2026-11-29T11:55:00Z"),
        ]),
        FakeWorkflow("wf-pending", "invoice-ocr", [
            FakeRun("r-pend-1", 1, "pending", started_at=None, finished_steps=0),
        ]),
        FakeWorkflow("wf-completed", "daily-report", [
            FakeRun("r-comp-1", 7, "completed", started_at="2026-11-29T11:00:00Z",
                    completed_at="2026-11-29T11:20:00Z", finished_steps=10, token_cost=350),
        ]),
        FakeWorkflow("wf-failed", "tts-batch", [
            FakeRun("r-fail-1", 3, "failed", completed_at="2026-11-29T11:05:00Z",
                    error="node 3 crashed", finished_steps=3),
        ]),
        FakeWorkflow("wf-cancelled", "translate", [
            FakeRun("r-canc-1", 2, "cancelled", completed_at="2026-11-29T11:02:00Z",
                    finished_steps=1),
        ]),
        FakeWorkflow("wf-unknown", "experimental", [
            FakeRun("r-unk-1", 1, "quarantined"),
        ]),
        FakeWorkflow("wf-nousage", "no-usage", [
            FakeRun("r-nous-1", 1, "running", usage_summary=None, total_nodes=None),
        ]),
        FakeWorkflow("wf-tokens", "token-keys", [
            FakeRun("r-tok-1", 1, "completed", completed_at="2026-11-29T11:30:00Z",
                    usage_summary={"tokens_used": 350, "api_calls": 12, "errors": 0}),
        ]),
        FakeWorkflow("wf-idle", "never-ran", []),
    ]  # fmt: skip
