"""A small in-memory OnePin API for the counting tests, written apart from tests/fakeapi.py and
the simulator so that they do not share those fakes' assumptions.

It serves List Workflows, List Runs (offset, limit, newest first) and Get Run Status from plain
lists of runs, and can misbehave the ways the counting guarantee is about: a lagging replica that
hides the newest runs (`VWorkflow.hidden`), a workflow missing from the catalogue (`missing`),
the whole API down (`down`), Get Run Status refused (`status_refused`), and any field of a run
replaced by a bad value (`VRun.bad`). List Runs items carry no `token_cost`, as documented, and
Get Run Status answers no `delivered_audio_ms` (a List Runs field, onepin-api.md §8); an active
run's item shows the audio delivered so far (0 here), a finished run's the final figure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

API = "https://runs.onepin.test"
TOKEN = "op_live_RUNVIEWtoken0123456789abcdefgh"
T0 = 1_800_000_000  # run times are offsets from this, in seconds
TERMINAL = ("completed", "failed", "cancelled")


def iso(offset: int | None) -> str | None:
    if offset is None:
        return None
    return datetime.fromtimestamp(T0 + offset, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class VRun:
    id: str
    number: int
    status: str = "running"
    created: int = 0
    started: int | None = 0
    completed: int | None = None
    token_cost: Any = 100
    cpu: Any = 1.5
    audio: Any = 1500  # delivered_audio_ms once finished
    # Fields replaced in both answers (e.g. {"token_cost": float("nan")}), as a broken API would.
    bad: dict[str, Any] = field(default_factory=dict)
    # Fields replaced in Get Run Status only.
    bad_status: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def finish(self, status: str, at: int) -> None:
        self.status, self.completed = status, at

    def item(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "status": self.status,
            "run_number": self.number,
            "created_at": iso(self.created),
            "started_at": iso(self.started),
            "completed_at": iso(self.completed),
            "total_nodes": 3,
            "total_steps": 6,
            "finished_steps": 6 if self.terminal else 2,
            "usage_summary": {"cpu_seconds": self.cpu, "memory_mb": 64},
            "delivered_audio_ms": self.audio if self.terminal else 0,
        }
        out.update(self.bad)
        return out

    def record(self) -> dict[str, Any]:
        out = {**self.item(), "token_cost": self.token_cost}
        del out["delivered_audio_ms"]  # List Runs only
        out.update(self.bad)
        out.update(self.bad_status)
        return out


@dataclass
class VWorkflow:
    id: str
    runs: list[VRun] = field(default_factory=list)  # oldest first
    hidden: int = 0  # the newest runs a lagging replica does not show yet

    def visible(self) -> list[VRun]:
        return self.runs[: len(self.runs) - self.hidden] if self.hidden else list(self.runs)

    def add(self, status: str = "running", at: int = 0, **fields: Any) -> VRun:
        number = self.runs[-1].number + 1 if self.runs else 1
        run = VRun(f"{self.id}-r{number}", number, status, created=at, started=at, **fields)
        if run.terminal:
            run.completed = at + 30
        self.runs.append(run)
        return run


class RunView:
    """The API as the exporter sees it through `transport()`; every request is recorded."""

    def __init__(self, *workflow_ids: str) -> None:
        self.workflows = {wid: VWorkflow(wid) for wid in workflow_ids}
        self.missing: set[str] = set()  # left out of List Workflows (a page shift)
        self.down = False
        self.status_refused = False
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests if _kind(r) == kind)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            return _answer(503, {"error": {"code": "SERVER_ERROR", "message": "down"}})
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _answer(401, {"error": {"code": "INVALID_API_KEY", "message": "bad key"}})
        parts = [unquote(p) for p in urlsplit(str(request.url)).path.split("/")[3:]]
        query = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        offset, limit = int(query.get("offset", "0")), int(query.get("limit", "20"))
        if parts == ["workflows"]:
            return self._catalogue(offset, limit)
        wf = self.workflows.get(parts[1])
        if wf is None:
            return _answer(404, {"error": {"code": "NOT_FOUND", "message": "no workflow"}})
        if parts[2:] == ["runs"]:
            newest_first = wf.visible()[::-1]
            page = [r.item() for r in newest_first[offset : offset + limit]]
            pagination = {"limit": limit, "total": len(newest_first)}
            return _answer(200, {"data": page, "pagination": pagination})
        run = next((r for r in wf.runs if r.id == parts[3]), None)
        if parts[4:] != ["status"] or run is None:
            return _answer(404, {"error": {"code": "NOT_FOUND", "message": "no run"}})
        if self.status_refused:
            return _answer(403, {"error": {"code": "FORBIDDEN", "message": "session only"}})
        return _answer(200, {"data": run.record()})

    def _catalogue(self, offset: int, limit: int) -> httpx.Response:
        items = []
        for wf in self.workflows.values():
            if wf.id in self.missing:
                continue
            runs = wf.visible()
            items.append({
                "id": wf.id,
                "name": f"name-{wf.id}",
                "runs_count": len(runs),
                "last_run_at": iso(runs[-1].created) if runs else None,
                "last_run_status": runs[-1].status if runs else None,
            })  # fmt: skip
        page = items[offset : offset + limit]
        return _answer(200, {"data": page, "pagination": {"limit": limit, "total": len(items)}})


def _answer(status: int, body: dict[str, Any]) -> httpx.Response:
    body["meta"] = {"request_id": "req_view", "timestamp": iso(10**6)}
    # allow_nan: a broken API may well send NaN, which Python's json reads back.
    text = json.dumps(body, allow_nan=True)
    return httpx.Response(
        status, content=text.encode(), headers={"Content-Type": "application/json"}
    )


def _kind(request: httpx.Request) -> str:
    path = request.url.path
    if path.endswith("/status"):
        return "get_run_status"
    if path.endswith("/runs"):
        return "list_runs"
    return "list_workflows" if path.endswith("/workflows") else "other"
