"""Contract: every simulator response has the shape documented in shared/onepin-api.md.

The documented schema is written down below as data (field -> type and nullability), so the
simulator cannot drift from the documentation without this test saying where. Where the docs'
section 8 (the official SDK 0.16) adds fields, they are here too; tests/test_sdk_contract.py
holds the simulator to the SDK itself.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.simulator import ManualClock, RunningSimulator, SimulatorConfig

TOKEN = "op_live_ContractContractContract1234"

# --- the documented schema, as data -----------------------------------------------------
# A spec is a type name, a (type name, nullable) pair, a dict (an object with exactly those
# fields) or ("list", item spec). Type names are checked by CHECKS below.

RUN_STATUSES = ("pending", "running", "completed", "failed", "cancelled", "paused")
ERROR_CODES = (
    "BAD_REQUEST",
    "INVALID_API_KEY",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "VALIDATION_ERROR",
    "UPGRADE_REQUIRED",
    "RATE_LIMITED",
    "SERVER_ERROR",
)

META = {"request_id": "string", "timestamp": "datetime"}
PAGINATION = {"limit": "int", "total": "int", "next": ("url", True), "prev": ("url", True)}

RUN_STATUS_COUNTS = dict.fromkeys(RUN_STATUSES, "int")
PAUSE_REASONS = (
    "user",
    "provider_outage",
    "provider_rate_limited",
    "provider_billing",
    "node_timeout",
)

# 3.1 List Workflows item
WORKFLOW_ITEM: dict[str, Any] = {
    "id": "uuid",
    "user_id": "uuid",
    "name": "string",
    "name_source": "name_source",
    "description": ("string", True),
    "created_at": "datetime",
    "updated_at": "datetime",
    "runs_count": ("int", True),
    "last_run_at": ("datetime", True),
    "last_run_status": ("run_status", True),
    "run_status_counts": (RUN_STATUS_COUNTS, True),
}
# 3.2 Get Workflow
WORKFLOW_DETAIL = {**WORKFLOW_ITEM, "definition": "object"}

USAGE = ("usage", True)  # free-form: numeric values (section 7)
TRIGGERED_BY = ({"user_id": "string", "user_name": "nonempty"}, True)

PAUSE = {
    "paused_ms": ("int", True),
    "pause_reason": ("pause_reason", True),
    "pause_error": ("string", True),
}
HELD_NODES = (("list", {"node_id": "string", "locales": ("list", "string")}), True)

# 3.3 List Runs item: no workflow_id, updated_at, error, has_export, token_cost
RUN_LIST_ITEM: dict[str, Any] = {
    "id": "uuid",
    "status": "run_status",
    "run_number": "int",
    "created_at": "datetime",
    "started_at": ("datetime", True),
    "completed_at": ("datetime", True),
    "pause_requested_at": ("datetime", True),
    "paused_at": ("datetime", True),
    **PAUSE,
    "total_nodes": ("int", True),
    "total_steps": ("int", True),
    "finished_steps": ("int", True),
    "finished_nodes": ("int", True),
    "usage_summary": USAGE,
    "credits": ("int", True),
    "triggered_by": TRIGGERED_BY,
    "output_line_count": ("int", True),
    "delivered_audio_ms": ("int", True),
}
# 3.5 Get Run Status
RUN_STATUS: dict[str, Any] = {
    "id": "uuid",
    "workflow_id": "uuid",
    "status": "run_status",
    "run_number": "int",
    "token_cost": "int",
    "created_at": "datetime",
    "updated_at": "datetime",
    "started_at": ("datetime", True),
    "completed_at": ("datetime", True),
    "pause_requested_at": ("datetime", True),
    "paused_at": ("datetime", True),
    **PAUSE,
    "total_nodes": ("int", True),
    "total_steps": ("int", True),
    "finished_steps": ("int", True),
    "finished_nodes": ("int", True),
    "held_nodes": HELD_NODES,
    "usage_summary": USAGE,
    "error": ("string", True),
    "has_export": ("bool", True),
    "triggered_by": TRIGGERED_BY,
}
# 3.4 Get Run: every status field plus the snapshot and credits
RUN_DETAIL = {
    **RUN_STATUS,
    "definition_snapshot": ("object", True),
    "credits": ("int", True),
    "credits_absorbed": ("number", True),
    "public_share_id": ("string", True),
    "shared_at": ("datetime", True),
}
# 3.6 Runs Summary
RUNS_SUMMARY = {
    "total_runs": "int",
    "completed": "int",
    "failed": "int",
    "cancelled": "int",
    "pending": "int",
    "running": "int",
    "paused": "int",
    "pass_rate": ("number", True),
    "delivered_audio_ms": "int",
    "average_duration_seconds": ("number", True),
}
WHOAMI = {
    "auth_kind": "auth_kind",
    "user_id": "string",
    "workspace_id": "string",
    "api_key_id": ("string", True),
    "scopes": "scopes",
}
ERROR_DETAIL = {"field": "string", "message": "string"}
ERROR_BODY = {
    "error": {"code": "error_code", "message": "string", "details": (("list", ERROR_DETAIL), True)},
    "meta": META,
}


def single(data: Any) -> dict[str, Any]:
    return {"data": data, "meta": META}


def listing(item: Any) -> dict[str, Any]:
    return {"data": ("list", item), "meta": META, "pagination": PAGINATION}


DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def _is_uuid(value: Any) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


CHECKS: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "nonempty": lambda v: isinstance(v, str) and v != "",
    "int": _is_int,
    "number": _is_number,
    "bool": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "uuid": _is_uuid,
    "datetime": lambda v: isinstance(v, str) and DATETIME.fullmatch(v) is not None,
    "url": lambda v: isinstance(v, str) and re.match(r"https?://[^/]+/api/v1/", v) is not None,
    "run_status": lambda v: v in RUN_STATUSES,
    "name_source": lambda v: v in ("placeholder", "generated", "user"),
    "pause_reason": lambda v: v in PAUSE_REASONS,
    "auth_kind": lambda v: v in ("clerk", "api_key"),
    "error_code": lambda v: v in ERROR_CODES,
    "scopes": lambda v: isinstance(v, list) and v == sorted(set(v)) and "workflows:read" in v,
    "usage": lambda v: isinstance(v, dict) and all(_is_number(x) for x in v.values()),
}


def problems(value: Any, spec: Any, where: str = "$") -> list[str]:
    """Where ``value`` departs from ``spec``."""
    nullable = False
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], bool):
        spec, nullable = spec
    if value is None:
        return [] if nullable else [f"{where}: null but not nullable"]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {value!r}"]
        found: list[str] = []
        missing, extra = set(spec) - set(value), set(value) - set(spec)
        if missing:
            found.append(f"{where}: missing {sorted(missing)}")
        if extra:
            found.append(f"{where}: undocumented {sorted(extra)}")
        for key in spec.keys() & value.keys():
            found += problems(value[key], spec[key], f"{where}.{key}")
        return found
    if isinstance(spec, tuple) and spec[0] == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {value!r}"]
        return [p for i, item in enumerate(value) for p in problems(item, spec[1], f"{where}[{i}]")]
    return [] if CHECKS[spec](value) else [f"{where}: {value!r} is not a {spec}"]


def conforms(response: httpx.Response, spec: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert problems(body, spec) == [], (response.request.url, body)
    return body


def test_the_schema_checker_catches_drift() -> None:
    assert problems({"id": "x"}, {"id": "uuid"}) == ["$.id: 'x' is not a uuid"]
    assert problems({"a": 1, "b": 2}, {"a": "int"}) == ["$: undocumented ['b']"]
    assert problems({}, {"a": ("int", True)}) == ["$: missing ['a']"]
    assert problems({"a": None}, {"a": "int"}) == ["$.a: null but not nullable"]
    assert problems({"t": "2024-01-01T00:00:00+00:00"}, {"t": "datetime"})


# --- the simulator under contract ---------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    config = SimulatorConfig(token=TOKEN, clock="manual", workflows=40, seed=11)
    with RunningSimulator(config) as running:
        yield running


@pytest.fixture(scope="module")
def api(sim: RunningSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{sim.url}/api/v1", headers=headers, timeout=10) as client:
        yield client


def catalogue(api: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = {"offset": offset, "limit": 7}
        body = conforms(api.get("/workflows", params=page), listing(WORKFLOW_ITEM))
        items += body["data"]
        offset += 7
        if offset >= body["pagination"]["total"]:
            assert body["pagination"]["next"] is None
            return items


def check_run(api: httpx.Client, workflow_id: str, run_id: str) -> dict[str, Any]:
    base = f"/workflows/{workflow_id}/runs/{run_id}"
    conforms(api.get(base), single(RUN_DETAIL))
    status: dict[str, Any] = conforms(api.get(f"{base}/status"), single(RUN_STATUS))["data"]
    assert (status["error"] is not None) == (status["status"] == "failed")
    return status


def test_whoami(api: httpx.Client) -> None:
    body = conforms(api.get("/auth/whoami"), single(WHOAMI))
    assert body["data"]["auth_kind"] == "api_key" and body["data"]["api_key_id"] is not None


def test_catalogue_workflows_runs_and_summaries(api: httpx.Client) -> None:
    workflows = catalogue(api)
    assert len(workflows) == 40
    for workflow in workflows[:10]:
        conforms(api.get(f"/workflows/{workflow['id']}"), single(WORKFLOW_DETAIL))
        runs = conforms(
            api.get(f"/workflows/{workflow['id']}/runs", params={"limit": 100}),
            listing(RUN_LIST_ITEM),
        )["data"]
        for run in runs[:3]:
            check_run(api, workflow["id"], run["id"])
        summary = f"/workflows/{workflow['id']}/runs/summary"
        conforms(api.get(summary), single(RUNS_SUMMARY))
        window = {"from": "2025-12-31T12:00:00Z", "to": "2026-01-01T00:00:00+01:00"}
        conforms(api.get(summary, params=window), single(RUNS_SUMMARY))


def test_every_run_status_has_the_documented_shape(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    clock, model = sim.clock, sim.model
    assert isinstance(clock, ManualClock)
    workflow_ids = [p.id for p in model.profiles]
    started = [
        model.start_run(workflow_ids[i], outcome=outcome, duration_seconds=40, pending_seconds=10)
        for i, outcome in enumerate(("completed", "failed", "cancelled", "stall"))
    ]
    seen: set[str] = set()

    def check_all() -> None:
        for plan in started:
            seen.add(check_run(api, workflow_ids[plan.workflow], plan.id)["status"])

    check_all()  # pending
    clock.advance(20)
    check_all()  # running
    clock.advance(60)
    check_all()  # completed, failed, cancelled; the stalled one still running
    # Move on until some natural run is paused, to see "paused" too.
    paused = []
    for _ in range(720):
        clock.advance(120)
        with model.session() as now:
            paused = [p for p in model.active_runs() if p.status_at(now) == "paused"]
        if paused:
            break
    if paused:
        plan = paused[0]
        status = check_run(api, workflow_ids[plan.workflow], plan.id)
        assert status["status"] == "paused" and status["paused_at"] is not None
        seen.add("paused")
        items = conforms(
            api.get(f"/workflows/{workflow_ids[plan.workflow]}/runs", params={"status": "paused"}),
            listing(RUN_LIST_ITEM),
        )["data"]
        assert [item["id"] for item in items] == [plan.id]
    assert seen >= {"pending", "running", "completed", "failed", "cancelled"}
    assert "paused" in seen, "seed 11 has a pause within a day; the contract should see one"


# --- error bodies -------------------------------------------------------------------------


def test_error_bodies(api: httpx.Client, sim: RunningSimulator) -> None:
    workflow_id = sim.model.profiles[0].id
    cases = [
        (api.get("/workflows", headers={"Authorization": "Bearer nope"}), 401),
        (api.get("/workflows", headers={"X-Workspace-Id": "elsewhere"}), 403),
        (api.get(f"/workflows/{uuid.uuid4()}"), 404),
        (api.get(f"/workflows/{workflow_id}/runs", params={"status": "a,,b"}), 422),
        (api.get(f"/workflows/{workflow_id}/runs/summary", params={"from": "2026-01-01"}), 422),
    ]
    for response, status in cases:
        body = conforms(response, ERROR_BODY, status)
        details = body["error"]["details"]
        assert (details is not None and len(details) > 0) == (status == 422)


def test_rate_limited_and_server_error_bodies(sim: RunningSimulator) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sim.url, headers=headers, timeout=10) as client:
        try:
            client.post("/_sim/faults", json={"rate_limit_per_min": 1})
            client.get("/api/v1/auth/whoami")
            limited = client.get("/api/v1/auth/whoami")
            conforms(limited, ERROR_BODY, 429)
            assert int(limited.headers["Retry-After"]) >= 1
            client.post("/_sim/faults", json={"rate_limit_per_min": None, "error_rate": 1.0})
            failed = client.get("/api/v1/auth/whoami")
            assert failed.status_code >= 500
            conforms(failed, ERROR_BODY, failed.status_code)
        finally:
            client.post("/_sim/faults", json={"rate_limit_per_min": None, "error_rate": 0})


# --- whatever the query, a documented answer ------------------------------------------------

PARAM_VALUES = st.one_of(
    st.sampled_from(["0", "1", "20", "100", "101", "-1", "", "abc", "name", "desc", "asc"]),
    st.sampled_from(["running,pending", "a,,b", "paused", "completed,failed", "draft"]),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "runs_count", "true"]),
    st.text(max_size=12),
)
PARAM_NAMES = st.sampled_from(
    ["offset", "limit", "status", "search", "sort", "order", "has_failed_run", "last_run_after"]
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(params=st.lists(st.tuples(PARAM_NAMES, PARAM_VALUES), max_size=4))
def test_any_query_gets_a_page_or_a_validation_error(
    api: httpx.Client,
    sim: RunningSimulator,
    params: list[tuple[str, str | int | float | bool | None]],
) -> None:
    workflow_id = sim.model.profiles[1].id
    for path, item in (("/workflows", WORKFLOW_ITEM), (f"/workflows/{workflow_id}/runs", None)):
        response = api.get(path, params=tuple(params))
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            conforms(response, ERROR_BODY, 422)
        else:
            conforms(response, listing(item or RUN_LIST_ITEM))
