"""The simulated OnePin API under ``/api/v1``.

One aiohttp route takes every ``/api/...`` request through the same pipeline: route lookup,
authentication, workspace check, rate limit, injected server error, handler, then the added
latency's remainder.
Routing is a few string comparisons (it is on the hot path of the benchmark), and it is where
``/runs/summary`` is told apart from ``/runs/{run_id}``.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .errors import ApiError, forbidden_workspace, invalid_api_key, not_found
from .listing import RunQuery, WorkflowQuery, list_runs, runs_summary
from .plan import RunPlan
from .query import QueryReader
from .state import Simulator, encode_json, error_response, json_response
from .steps import NODE_TYPES

API_PREFIX = "/api/v1/"
JSON_HEADERS = {"Content-Type": "application/json"}
# Get Run Status bodies cached for the current second; beyond this many, start afresh.
_STATUS_CACHE_LIMIT = 20_000

Endpoint = Callable[[web.Request, list[str]], web.Response]
_RUN_SUB_RESOURCES = {
    "status": "get_run_status",
    "steps": "get_run_steps",
    "overview": "get_run_overview",
}


def _pagination(request: web.Request, offset: int, limit: int, total: int) -> dict[str, Any]:
    def link(new_offset: int) -> str:
        query = [(k, v) for k, v in request.query.items() if k not in ("offset", "limit")]
        query += [("offset", str(new_offset)), ("limit", str(limit))]
        return str(request.url.with_query(query))

    return {
        "limit": limit,
        "total": total,
        "next": link(offset + limit) if offset + limit < total else None,
        "prev": link(max(0, min(offset, total) - limit)) if offset > 0 else None,
    }


class ApiRoutes:
    """The documented endpoints; their names are the endpoint names of ``/_sim/stats``."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.model = sim.model
        self.renderer = sim.renderer
        self._expected_authorization = f"Bearer {sim.config.token}"
        self._status_cache: dict[tuple[str, str], bytes] = {}
        self._status_cache_time = -1
        self._endpoints: dict[str, Endpoint] = {
            "whoami": self.whoami,
            "list_workflows": self.list_workflows,
            "get_workflow": self.get_workflow,
            "list_runs": self.list_runs,
            "get_run": self.get_run,
            "get_run_status": self.get_run_status,
            "get_run_steps": self.get_run_steps,
            "get_run_overview": self.get_run_overview,
            "runs_summary": self.runs_summary,
        }

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/api/{path:.*}", self.handle)

    # --- pipeline -----------------------------------------------------------------------

    def resolve(self, path: str) -> tuple[str, Endpoint, list[str]] | None:
        """(endpoint name, handler, path segments), or None when no endpoint has that path."""
        if not path.startswith(API_PREFIX):
            return None
        parts = path[len(API_PREFIX) :].split("/")
        name = self._endpoint_name(parts)
        return None if name is None else (name, self._endpoints[name], parts)

    @staticmethod
    def _endpoint_name(parts: list[str]) -> str | None:
        count = len(parts)
        if parts == ["auth", "whoami"]:
            return "whoami"
        if parts[0] != "workflows":
            return None
        if count == 1:
            return "list_workflows"
        if not parts[1] or (count > 2 and parts[2] != "runs"):
            return None
        if count <= 3:
            return "get_workflow" if count == 2 else "list_runs"
        if count == 4 and parts[3] == "summary":
            return "runs_summary"
        if not parts[3]:
            return None
        if count == 4:
            return "get_run"
        if count == 5:
            return _RUN_SUB_RESOURCES.get(parts[4])
        return None

    async def handle(self, request: web.Request) -> web.Response:
        sim = self.sim
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        route = self.resolve(request.path)
        if route is not None:
            sim.stats.request(route[0])
        try:
            if route is None:
                raise not_found("Resource")
            _, endpoint, parts = route
            if request.method != "GET":
                raise ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")
            sim.faults.check_version(request.headers.get("User-Agent", ""))
            token = self._authenticate(request)
            sim.faults.admit(token)
            injected = sim.faults.injected_error()
            if injected is not None:
                raise injected
            response = endpoint(request, parts)
        except ApiError as error:
            if error.status == 422 and sim.faults.settings.validation_body == "framework":
                response = json_response(error.framework_body(request.query), 422)
            else:
                response = error_response(sim, error)
        # The answer leaves the added latency after the request came in, the time spent making
        # it included, as a real API's round trip does: on a benchmark machine the simulator's
        # own CPU would otherwise add to every request's latency (at 48 requests in flight, a
        # third more), and the exporter be measured against the simulator's speed.
        latency = sim.faults.latency_seconds
        if latency > 0:
            await asyncio.sleep(max(0.0, arrived + latency - loop.time()))
        version = sim.faults.version_headers()
        if version is not None:
            response.headers.update(version)
        sim.stats.response(response.status)
        return response

    def _authenticate(self, request: web.Request) -> str:
        headers = request.headers
        authorization = headers.get("Authorization", "")
        if authorization != self._expected_authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), self.sim.config.token.encode()
            ):
                raise invalid_api_key()
        workspace = headers.get("X-Workspace-Id")
        if workspace and workspace.strip().lower() != self.sim.workspace_id.lower():
            raise forbidden_workspace()
        return self.sim.config.token

    # --- responses ----------------------------------------------------------------------

    def _ok(self, data: bytes, now: int, pagination: dict[str, Any] | None = None) -> web.Response:
        parts = [b'{"data":', data, b',"meta":', self.sim.meta_json(now)]
        if pagination is not None:
            parts += [b',"pagination":', encode_json(pagination)]
        parts.append(b"}")
        return web.Response(body=b"".join(parts), headers=JSON_HEADERS)

    def _workflow(self, workflow_id: str) -> int:
        index = self.model.workflow_index(workflow_id)
        if index is None:
            raise not_found("Workflow")
        return index

    # --- endpoints ----------------------------------------------------------------------

    def whoami(self, request: web.Request, parts: list[str]) -> web.Response:
        with self.model.session() as now:
            return self._ok(encode_json(self.sim.whoami), now)

    def list_workflows(self, request: web.Request, parts: list[str]) -> web.Response:
        query = WorkflowQuery.read(QueryReader(request.query))
        with self.model.session() as now:
            items, total = self.sim.catalogue.page(query, now)
        page = _pagination(request, query.offset, query.limit, total)
        return self._ok(encode_json(items), now, page)

    def get_workflow(self, request: web.Request, parts: list[str]) -> web.Response:
        with self.model.session() as now:
            index = self._workflow(parts[1])
            counts = self.model.counts(index, now)
            data = self.renderer.workflow_detail(self.model.profiles[index], counts)
        return self._ok(encode_json(data), now)

    def list_runs(self, request: web.Request, parts: list[str]) -> web.Response:
        with self.model.session() as now:
            index = self._workflow(parts[1])
            query = RunQuery.read(QueryReader(request.query))
            items, total = list_runs(self.model, self.renderer, index, query, now)
        page = _pagination(request, query.offset, query.limit, total)
        return self._ok(encode_json(items), now, page)

    def runs_summary(self, request: web.Request, parts: list[str]) -> web.Response:
        with self.model.session() as now:
            index = self._workflow(parts[1])
            reader = QueryReader(request.query)
            low, high = reader.time_range("from", "to")
            reader.check()
            data = runs_summary(self.model, index, low, high, now)
        return self._ok(encode_json(data), now)

    def get_run(self, request: web.Request, parts: list[str]) -> web.Response:
        with self.model.session() as now:
            index = self._workflow(parts[1])
            plan = self.model.find_run(index, parts[3], now)
            if plan is None:
                raise not_found("Run")
            data = self.renderer.run_detail(plan, self.model.profiles[index], now)
        return self._ok(encode_json(data), now)

    def _run(self, parts: list[str], now: int) -> tuple[int, RunPlan]:
        index = self._workflow(parts[1])
        plan = self.model.find_run(index, parts[3], now)
        if plan is None:
            raise not_found("Run")
        return index, plan

    def get_run_steps(self, request: web.Request, parts: list[str]) -> web.Response:
        reader = QueryReader(request.query)
        include_result = reader.boolean("include_result") or False
        node_type = reader.choice("node_type", NODE_TYPES)
        node_id = reader.text("node_id", 200)
        reader.check()
        with self.model.session() as now:
            _, plan = self._run(parts, now)
            data = self.renderer.run_steps(
                plan, now, include_result=include_result, node_type=node_type, node_id=node_id
            )
        return self._ok(encode_json(data), now)

    def get_run_overview(self, request: web.Request, parts: list[str]) -> web.Response:
        with self.model.session() as now:
            index, plan = self._run(parts, now)
            data = self.renderer.run_overview(plan, self.model.profiles[index], now)
        return self._ok(encode_json(data), now)

    def get_run_status(self, request: web.Request, parts: list[str]) -> web.Response:
        # The polling endpoint: a run's state only changes from one second to the next, so
        # its body is kept for the rest of the current second.
        with self.model.session() as now:
            if now != self._status_cache_time or len(self._status_cache) > _STATUS_CACHE_LIMIT:
                self._status_cache.clear()
                self._status_cache_time = now
            key = (parts[1], parts[3])
            data = self._status_cache.get(key)
            if data is None:
                index = self._workflow(parts[1])
                plan = self.model.find_run(index, parts[3], now)
                if plan is None:
                    raise not_found("Run")
                profile_id = self.model.profiles[index].id
                data = encode_json(self.renderer.run_status(plan, profile_id, now))
                self._status_cache[key] = data
        return self._ok(data, now)
