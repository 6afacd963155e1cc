"""The simulated OnePin API over HTTP: endpoints, paging, filters, errors, admin API and CLI."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.simulator import ManualClock, RunningSimulator, SimulatorConfig

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "op_live_TestTestTestTestTestTestTestTest"
STATUSES = {"pending", "running", "completed", "failed", "cancelled", "paused"}


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with RunningSimulator(SimulatorConfig(token=TOKEN, clock="manual", seed=4)) as running:
        yield running


@pytest.fixture
def api(sim: RunningSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{sim.url}/api/v1", headers=headers, timeout=10) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


def advance(sim: RunningSimulator, seconds: float) -> None:
    assert isinstance(sim.clock, ManualClock)
    sim.clock.advance(seconds)


def all_workflows(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        body = ok(api.get("/workflows", params={**params, "offset": offset, "limit": 100}))
        items += body["data"]
        offset += len(body["data"])
        if not body["data"] or offset >= body["pagination"]["total"]:
            return items


def all_runs(api: httpx.Client, workflow_id: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = {**params, "offset": offset, "limit": 100}
        body = ok(api.get(f"/workflows/{workflow_id}/runs", params=page))
        items += body["data"]
        offset += len(body["data"])
        if not body["data"] or offset >= body["pagination"]["total"]:
            return items


def busiest_workflow(api: httpx.Client) -> dict[str, Any]:
    return max(all_workflows(api), key=lambda w: w["runs_count"])


# --- authentication ----------------------------------------------------------------------


def test_whoami_describes_the_api_key(api: httpx.Client, sim: RunningSimulator) -> None:
    body = ok(api.get("/auth/whoami"))
    data = body["data"]
    assert data["auth_kind"] == "api_key"
    assert data["workspace_id"] == sim.config.resolved_workspace_id
    assert "workflows:read" in data["scopes"] and data["scopes"] == sorted(set(data["scopes"]))
    uuid.UUID(data["user_id"]), uuid.UUID(data["api_key_id"])
    assert body["meta"]["timestamp"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
)
def test_a_missing_or_wrong_key_gets_401(sim: RunningSimulator, headers: dict[str, str]) -> None:
    response = httpx.get(f"{sim.url}/api/v1/workflows", headers=headers)
    error = error_of(response, 401, "INVALID_API_KEY")
    assert error["details"] is None


def test_the_bearer_scheme_is_case_insensitive(sim: RunningSimulator) -> None:
    response = httpx.get(
        f"{sim.url}/api/v1/auth/whoami", headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert response.status_code == 200


def test_a_foreign_workspace_header_gets_403(api: httpx.Client, sim: RunningSimulator) -> None:
    other = {"X-Workspace-Id": str(uuid.uuid4())}
    error_of(api.get("/workflows", headers=other), 403, "FORBIDDEN")
    same = {"X-Workspace-Id": sim.config.resolved_workspace_id}
    assert api.get("/workflows", headers=same).status_code == 200


def test_a_configured_workspace_id_is_the_one_served() -> None:
    config = SimulatorConfig(token=TOKEN, clock="manual", workspace_id="ws-42")
    with RunningSimulator(config) as running:
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Workspace-Id": "ws-42"}
        body = httpx.get(f"{running.url}/api/v1/auth/whoami", headers=headers).json()
        assert body["data"]["workspace_id"] == "ws-42"


# --- unknown things ----------------------------------------------------------------------


def test_unknown_workflows_runs_and_paths_get_404(api: httpx.Client) -> None:
    workflows = all_workflows(api)
    first, second = workflows[0]["id"], workflows[1]["id"]
    run_of_second = all_runs(api, second)[0]["id"]
    missing = str(uuid.uuid4())
    for path in [
        f"/workflows/{missing}",
        f"/workflows/{missing}/runs",
        f"/workflows/{missing}/runs/summary",
        f"/workflows/{first}/runs/{missing}",
        f"/workflows/{first}/runs/{missing}/status",
        f"/workflows/{first}/runs/not-a-uuid/status",
        f"/workflows/{first}/runs/{run_of_second}",
        "/nothing-here",
        f"/workflows/{first}/runs/{run_of_second}/steps/extra",
    ]:
        error_of(api.get(path), 404, "NOT_FOUND")


def test_a_run_that_does_not_exist_yet_is_not_found(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    model = sim.model
    with model.session() as now:
        count = model.run_count(0, now)
    future_id = model.codec.encode(0, count + 1)
    workflow_id = model.profiles[0].id
    error_of(api.get(f"/workflows/{workflow_id}/runs/{future_id}/status"), 404, "NOT_FOUND")


def test_only_get_is_allowed(api: httpx.Client) -> None:
    error_of(api.post("/workflows"), 405, "METHOD_NOT_ALLOWED")


# --- List Workflows ----------------------------------------------------------------------


def test_pages_link_to_each_other_with_absolute_urls_of_the_request_host(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    first = ok(api.get("/workflows", params={"limit": 5}, headers={"Host": "onepin.test:8443"}))
    page = first["pagination"]
    assert (page["limit"], page["total"], page["prev"]) == (5, 12, None)
    assert page["next"] == "http://onepin.test:8443/api/v1/workflows?offset=5&limit=5"

    seen: list[str] = []
    url: str | None = f"{sim.url}/api/v1/workflows?limit=5&sort=name"
    pages = 0
    while url is not None:
        body = ok(api.get(url))
        seen += [w["id"] for w in body["data"]]
        assert "sort=name" in (body["pagination"]["next"] or "sort=name")
        url = body["pagination"]["next"]
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 12
    last = ok(api.get("/workflows", params={"limit": 5, "offset": 10, "sort": "name"}))
    assert last["pagination"]["next"] is None
    assert last["pagination"]["prev"].endswith("/api/v1/workflows?sort=name&offset=5&limit=5")


def test_the_default_order_is_updated_at_descending_then_id(api: httpx.Client) -> None:
    items = all_workflows(api)
    keys = [(w["updated_at"], w["id"]) for w in items]
    expected = sorted(keys, key=lambda k: k[1])
    expected.sort(key=lambda k: k[0], reverse=True)
    assert keys == expected
    assert ok(api.get("/workflows"))["pagination"]["limit"] == 20


def test_sorting_by_name_and_by_several_keys(api: httpx.Client) -> None:
    names = [w["name"] for w in all_workflows(api, sort="name")]
    assert names == sorted(names)
    assert [w["name"] for w in all_workflows(api, sort="name", order="desc")] == names[::-1]
    items = all_workflows(api, sort=["runs_count", "name"])
    assert [(w["runs_count"], w["name"]) for w in items] == sorted(
        ((w["runs_count"], w["name"]) for w in items), key=lambda k: (-k[0], k[1])
    )


def test_search_matches_names_case_insensitively(api: httpx.Client) -> None:
    items = all_workflows(api, search="ETL")
    assert [w["name"] for w in items] == ["nightly-etl"]
    assert all_workflows(api, search="no-such-thing") == []


def test_the_status_filter_uses_the_latest_run(api: httpx.Client, sim: RunningSimulator) -> None:
    everything = all_workflows(api)
    failed_id = everything[0]["id"]
    sim.model.start_run(failed_id, outcome="failed", duration_seconds=10, pending_seconds=0)
    advance(sim, 11)
    failed = all_workflows(api, status="failed")
    assert failed_id in {w["id"] for w in failed}
    assert all(w["last_run_status"] == "failed" for w in failed)
    running = all_workflows(api, status="running")
    assert all(w["last_run_status"] in {"running", "pending", "paused"} for w in running)
    assert all_workflows(api, status="paused") == []
    drafts = all_workflows(api, status="draft")
    assert all(w["runs_count"] == 0 and w["last_run_at"] is None for w in drafts)
    with_failures = all_workflows(api, has_failed_run="true")
    assert {w["id"] for w in with_failures} == {
        w["id"] for w in all_workflows(api) if w["run_status_counts"]["failed"] > 0
    }
    assert ok(api.get("/workflows", params={"status": "failed"}))["pagination"]["total"] == len(
        failed
    )


def test_run_status_counts_add_up_to_runs_count(api: httpx.Client) -> None:
    for workflow in all_workflows(api):
        counts = workflow["run_status_counts"]
        assert set(counts) == STATUSES
        assert sum(counts.values()) == workflow["runs_count"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"limit": "ten"},
        {"status": "active"},
        {"sort": "created_at"},
        {"order": "sideways"},
        {"search": "x" * 101},
        {"last_run_after": "2026-01-01T00:00:00"},
        {"last_run_after": "2026-01-02T00:00:00Z", "last_run_before": "2026-01-01T00:00:00Z"},
    ],
)
def test_bad_workflow_list_parameters_get_422(api: httpx.Client, params: dict[str, Any]) -> None:
    error = error_of(api.get("/workflows", params=params), 422, "VALIDATION_ERROR")
    assert error["details"] and error["details"][0]["field"] in params


def test_get_workflow_adds_the_definition(api: httpx.Client) -> None:
    listed = all_workflows(api)[0]
    detail = ok(api.get(f"/workflows/{listed['id']}"))["data"]
    assert {k: v for k, v in detail.items() if k != "definition"} == listed
    assert detail["definition"]["nodes"]


# --- List Runs ---------------------------------------------------------------------------


def test_runs_are_listed_newest_first_and_page_without_gaps(api: httpx.Client) -> None:
    workflow = busiest_workflow(api)
    runs = all_runs(api, workflow["id"])
    assert len(runs) == workflow["runs_count"]
    assert [r["run_number"] for r in runs] == list(range(workflow["runs_count"], 0, -1))
    assert runs[0]["id"] == ok(api.get(f"/workflows/{workflow['id']}/runs"))["data"][0]["id"]
    oldest_first = all_runs(api, workflow["id"], order="asc")
    assert [r["id"] for r in oldest_first] == [r["id"] for r in reversed(runs)]


def test_the_status_filter_counts_exactly(api: httpx.Client) -> None:
    workflow = busiest_workflow(api)
    runs = all_runs(api, workflow["id"])
    for statuses in (["failed"], ["completed", "cancelled"], ["running", "pending"], ["paused"]):
        path = f"/workflows/{workflow['id']}/runs"
        body = ok(api.get(path, params={"status": ",".join(statuses), "limit": 1}))
        expected = [r for r in runs if r["status"] in statuses]
        assert body["pagination"]["total"] == len(expected)
        assert [r["id"] for r in body["data"]] == [r["id"] for r in expected[:1]]
        filtered = all_runs(api, workflow["id"], status=",".join(statuses))
        assert [r["id"] for r in filtered] == [r["id"] for r in expected]


@pytest.mark.parametrize("sort", ["started_at", "completed_at", "status"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_runs_sort_by_other_fields_with_nulls_last_ascending(
    api: httpx.Client, sim: RunningSimulator, sort: str, order: str
) -> None:
    workflow = busiest_workflow(api)
    sim.model.start_run(workflow["id"], outcome="completed", duration_seconds=60)
    runs = all_runs(api, workflow["id"], sort=sort, order=order)
    assert len(runs) == workflow["runs_count"] + 1
    values = [(r[sort] is None, r[sort] or "") for r in runs]
    assert values == sorted(values, reverse=order == "desc")


def test_runs_search_matches_who_triggered_them(api: httpx.Client) -> None:
    workflow = busiest_workflow(api)
    runs = all_runs(api, workflow["id"])
    name = runs[0]["triggered_by"]["user_name"]
    found = all_runs(api, workflow["id"], search=name.upper()[:5])
    assert found and all(name[:5].lower() in r["triggered_by"]["user_name"].lower() for r in found)


@pytest.mark.parametrize(
    "params",
    [
        {"status": "running,,pending"},
        {"status": ""},
        {"status": "running,done"},
        {"status": "Running"},
        {"limit": 101},
        {"limit": 0},
        {"offset": -5},
        {"sort": "name"},
        {"order": "up"},
    ],
)
def test_bad_run_list_parameters_get_422(api: httpx.Client, params: dict[str, Any]) -> None:
    workflow = all_workflows(api)[0]
    response = api.get(f"/workflows/{workflow['id']}/runs", params=params)
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert [d["field"] for d in error["details"]] == list(params)
    assert all(isinstance(d["message"], str) and d["message"] for d in error["details"])


# --- runs, status, summary ---------------------------------------------------------------


def test_a_run_seen_through_status_polling(api: httpx.Client, sim: RunningSimulator) -> None:
    workflow_id = all_workflows(api)[0]["id"]
    started = sim.model.start_run(
        workflow_id, outcome="completed", duration_seconds=100, pending_seconds=10
    )
    path = f"/workflows/{workflow_id}/runs/{started.id}/status"
    seen = [ok(api.get(path))["data"]]
    for _ in range(12):
        advance(sim, 10)
        seen.append(ok(api.get(path))["data"])
    assert [s["status"] for s in seen[:3]] == ["pending", "running", "running"]
    assert seen[-1]["status"] == "completed" and seen[-1]["has_export"] is True
    assert seen[0]["started_at"] is None and seen[0]["usage_summary"] is None
    steps = [s["finished_steps"] for s in seen]
    assert steps == sorted(steps) and steps[-1] == seen[-1]["total_steps"]
    tokens = [s["token_cost"] for s in seen]
    assert tokens == sorted(tokens) and tokens[-1] > 0
    cpu = [s["usage_summary"]["cpu_seconds"] for s in seen[1:]]
    assert cpu == sorted(cpu) and cpu[-1] > cpu[0]
    latest = ok(api.get(f"/workflows/{workflow_id}/runs", params={"limit": 1}))["data"][0]
    assert latest["id"] == started.id and latest["run_number"] == seen[0]["run_number"]


def test_get_run_adds_the_snapshot_and_credits(api: httpx.Client, sim: RunningSimulator) -> None:
    workflow_id = all_workflows(api)[0]["id"]
    run = all_runs(api, workflow_id)[0]
    detail = ok(api.get(f"/workflows/{workflow_id}/runs/{run['id']}"))["data"]
    status = ok(api.get(f"/workflows/{workflow_id}/runs/{run['id']}/status"))["data"]
    only_detail = ("definition_snapshot", "credits", "credits_absorbed", "public_share_id")
    assert {k: v for k, v in detail.items() if k not in (*only_detail, "shared_at")} == status
    assert detail["definition_snapshot"]["nodes"] and detail["credits"] == run["credits"]
    assert detail["public_share_id"] is None and detail["shared_at"] is None


def test_a_failed_run_reports_its_error(api: httpx.Client, sim: RunningSimulator) -> None:
    workflow_id = all_workflows(api)[0]["id"]
    run = sim.model.start_run(workflow_id, outcome="failed", duration_seconds=30)
    path = f"/workflows/{workflow_id}/runs/{run.id}/status"
    assert ok(api.get(path))["data"]["error"] is None
    advance(sim, 60)
    data = ok(api.get(path))["data"]
    assert data["status"] == "failed" and data["error"] and data["has_export"] is False
    assert data["finished_steps"] < data["total_steps"]


def test_the_summary_route_is_not_taken_for_a_run(api: httpx.Client) -> None:
    workflow = busiest_workflow(api)
    data = ok(api.get(f"/workflows/{workflow['id']}/runs/summary"))["data"]
    assert data["total_runs"] == workflow["runs_count"]


def test_the_summary_adds_up(api: httpx.Client, sim: RunningSimulator) -> None:
    workflow = busiest_workflow(api)
    sim.model.start_run(workflow["id"], outcome="cancelled", duration_seconds=5)
    advance(sim, 3600)
    runs = all_runs(api, workflow["id"])
    summary = ok(api.get(f"/workflows/{workflow['id']}/runs/summary"))["data"]
    for status in STATUSES:
        assert summary[status] == sum(1 for r in runs if r["status"] == status)
    assert summary["total_runs"] == len(runs)
    done = [r for r in runs if r["status"] == "completed"]
    # The SDK's rules: cancelled runs are not failures; durations are active (unpaused) time.
    assert summary["cancelled"] > 0
    decided = summary["completed"] + summary["failed"]
    assert summary["pass_rate"] == pytest.approx(summary["completed"] / decided)
    assert summary["delivered_audio_ms"] == sum(r["delivered_audio_ms"] for r in done) > 0

    def seconds(run: dict[str, Any]) -> float:
        started = datetime.fromisoformat(run["started_at"])
        wall = (datetime.fromisoformat(run["completed_at"]) - started).total_seconds()
        return wall - run["paused_ms"] / 1000

    average = sum(seconds(r) for r in done) / len(done)
    assert summary["average_duration_seconds"] == pytest.approx(average)


def test_the_summary_window_filters_on_created_at(api: httpx.Client) -> None:
    workflow = busiest_workflow(api)
    runs = all_runs(api, workflow["id"])
    middle = datetime.fromisoformat(runs[len(runs) // 2]["created_at"])
    low, high = middle - timedelta(hours=2), middle + timedelta(hours=1)
    inside = [
        r for r in runs if low <= datetime.fromisoformat(r["created_at"]).astimezone(UTC) <= high
    ]
    params = {"from": low.isoformat(), "to": high.isoformat()}
    data = ok(api.get(f"/workflows/{workflow['id']}/runs/summary", params=params))["data"]
    assert data["total_runs"] == len(inside) > 0
    empty = {"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00+02:00"}
    nothing = ok(api.get(f"/workflows/{workflow['id']}/runs/summary", params=empty))["data"]
    assert nothing["total_runs"] == 0
    assert nothing["pass_rate"] is None and nothing["average_duration_seconds"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-01-01T00:00:00"},
        {"to": "yesterday"},
        {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    ],
)
def test_bad_summary_windows_get_422(api: httpx.Client, params: dict[str, str]) -> None:
    workflow_id = all_workflows(api)[0]["id"]
    response = api.get(f"/workflows/{workflow_id}/runs/summary", params=params)
    error_of(response, 422, "VALIDATION_ERROR")


# --- steps, overview, pauses ----------------------------------------------------------------


def start(sim: RunningSimulator, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{sim.url}/_sim/runs", json=body)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()["data"]
    return run


def test_an_automatic_pause_parks_the_interrupted_step_and_is_timed(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    workflow_id = sim.model.profiles[0].id
    run = start(
        sim,
        workflow_id=workflow_id,
        outcome="completed",
        duration_seconds=30,
        pending_seconds=0,
        total_steps=12,
        pause_reason="provider_outage",
        pause_seconds=90,
    )
    base = f"/workflows/{workflow_id}/runs/{run['id']}"
    advance(sim, 10)  # requested at 10, in force from 12
    draining = ok(api.get(f"{base}/status"))["data"]
    assert draining["status"] == "running" and draining["pause_reason"] == "provider_outage"
    assert draining["paused_ms"] == 0 and draining["held_nodes"] is None
    advance(sim, 20)
    paused = ok(api.get(f"{base}/status"))["data"]
    assert paused["status"] == "paused" and paused["paused_ms"] == 18_000
    assert "provider" in paused["pause_error"] and paused["held_nodes"] == []
    steps = ok(api.get(f"{base}/steps"))["data"]
    parked = steps[-1]
    assert parked["status"] == "cancelled" and parked["pause_reason"] == "provider_outage"
    assert parked["completed_at"] == paused["paused_at"]
    assert [s["status"] for s in steps[:-1]] == ["completed"] * paused["finished_steps"]
    advance(sim, 200)
    done = ok(api.get(f"{base}/status"))["data"]
    assert done["status"] == "completed" and done["paused_ms"] == 90_000
    assert done["pause_reason"] is None and done["pause_error"] is None
    assert done["finished_nodes"] == done["total_nodes"]
    steps = ok(api.get(f"{base}/steps"))["data"]
    assert len(steps) == done["finished_steps"] == 12
    assert {s["status"] for s in steps} == {"completed"}
    assert [s["pause_reason"] for s in steps].count("provider_outage") == 1
    assert steps[0]["started_at"] == done["started_at"]
    assert steps[-1]["completed_at"] == done["completed_at"]
    assert all(a["completed_at"] == b["started_at"] for a, b in pairwise(steps))
    listed = ok(api.get(f"/workflows/{workflow_id}/runs", params={"limit": 1}))["data"][0]
    assert listed["id"] == run["id"] and listed["paused_ms"] == 90_000
    assert listed["output_line_count"] > 0 and listed["delivered_audio_ms"] > 0


def test_a_manual_pause_holds_the_next_node_instead(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    workflow_id = sim.model.profiles[1].id
    run = start(
        sim,
        workflow_id=workflow_id,
        outcome="completed",
        duration_seconds=30,
        pending_seconds=0,
        total_steps=12,
        pause_reason="user",
    )
    advance(sim, 20)
    status = ok(api.get(f"/workflows/{workflow_id}/runs/{run['id']}/status"))["data"]
    assert status["status"] == "paused" and status["pause_reason"] == "user"
    assert status["pause_error"] is None and len(status["held_nodes"]) == 1
    steps = ok(api.get(f"/workflows/{workflow_id}/runs/{run['id']}/steps"))["data"]
    assert [s["status"] for s in steps] == ["completed"] * status["finished_steps"]


def test_steps_filter_by_node_and_refuse_unknown_types(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    workflow_id = sim.model.profiles[2].id
    run = start(sim, workflow_id=workflow_id, outcome="failed", duration_seconds=30)
    advance(sim, 100)
    base = f"/workflows/{workflow_id}/runs/{run['id']}"
    steps = ok(api.get(f"{base}/steps"))["data"]
    assert steps[-1]["status"] == "failed" and steps[-1]["error"]
    assert steps[-1]["node_id"] in steps[-1]["error"]
    assert all(s["result"] is None for s in steps)
    full = ok(api.get(f"{base}/steps", params={"include_result": "true"}))["data"]
    assert all((s["result"] is not None) == (s["status"] == "completed") for s in full)
    first = steps[0]
    by_type = ok(api.get(f"{base}/steps", params={"node_type": first["node_type"]}))["data"]
    assert by_type and {s["node_type"] for s in by_type} == {first["node_type"]}
    by_id = ok(api.get(f"{base}/steps", params={"node_id": first["node_id"]}))["data"]
    assert {s["node_id"] for s in by_id} == {first["node_id"]}
    error = error_of(api.get(f"{base}/steps", params={"node_type": "x"}), 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "node_type"
    error_of(api.get(f"/workflows/{workflow_id}/runs/{uuid.uuid4()}/steps"), 404, "NOT_FOUND")
    overview = ok(api.get(f"{base}/overview"))["data"]
    assert overview["run"]["status"] == "failed" and overview["run"]["error"]
    states = overview["workflow_snapshot"]["node_states"]
    assert [s["status"] for s in states].count("failed") == 1


def test_a_required_version_is_announced_and_older_sdks_get_426(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    assert "X-OnePin-Required-Version" not in api.get("/auth/whoami").headers
    sim.faults.update({"required_version": "0.17.0"})
    served = api.get("/auth/whoami")
    assert served.status_code == 200 and served.headers["X-OnePin-Required-Version"] == "0.17.0"
    missing = api.get(f"/workflows/{uuid.uuid4()}")
    assert missing.headers["X-OnePin-Required-Version"] == "0.17.0"
    old = api.get("/auth/whoami", headers={"User-Agent": "onepin/0.16.1"})
    error_of(old, 426, "UPGRADE_REQUIRED")
    assert old.headers["X-OnePin-Required-Version"] == "0.17.0"
    assert api.get("/auth/whoami", headers={"User-Agent": "onepin/0.17.0"}).status_code == 200
    sim.faults.update({"required_version": None})
    assert api.get("/auth/whoami", headers={"User-Agent": "onepin/0.1"}).status_code == 200


def test_the_framework_validation_body_names_the_parameter(
    api: httpx.Client, sim: RunningSimulator
) -> None:
    sim.faults.update({"validation_body": "framework"})
    response = api.get("/workflows", params={"limit": "ten", "order": "up"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"loc": ["query", "limit"], "msg": "must be an integer", "type": "value_error",
             "input": "ten"},
            {"loc": ["query", "order"], "msg": "must be one of asc, desc", "type": "value_error",
             "input": "up"},
        ]
    }  # fmt: skip


# --- admin API ---------------------------------------------------------------------------


def test_admin_advance_moves_the_manual_clock(sim: RunningSimulator) -> None:
    body = httpx.post(f"{sim.url}/_sim/advance", params={"seconds": 90}).json()
    assert body["now"] == "2026-01-01T00:01:30Z"
    assert sim.clock.now() == body["now_unix"]
    bad = httpx.post(f"{sim.url}/_sim/advance", params={"seconds": -1})
    error_of(bad, 422, "VALIDATION_ERROR")


def test_admin_advance_refuses_a_real_clock() -> None:
    with RunningSimulator(SimulatorConfig(token=TOKEN)) as running:
        response = httpx.post(f"{running.url}/_sim/advance", params={"seconds": 1})
        error_of(response, 409, "CONFLICT")


def test_admin_starts_runs_with_a_chosen_fate(api: httpx.Client, sim: RunningSimulator) -> None:
    workflows = httpx.get(f"{sim.url}/_sim/workflows").json()
    assert len(workflows) == 12 and set(workflows[0]) == {"id", "name"}
    workflow_id = workflows[0]["id"]
    response = httpx.post(
        f"{sim.url}/_sim/runs",
        json={
            "workflow_id": workflow_id,
            "outcome": "stall",
            "pending_seconds": 0,
            "total_steps": 40,
        },
    )
    assert response.status_code == 201, response.text
    run = response.json()["data"]
    assert run["status"] == "running" and run["total_steps"] == 40
    httpx.post(f"{sim.url}/_sim/advance", params={"seconds": 86400})
    status = ok(api.get(f"/workflows/{workflow_id}/runs/{run['id']}/status"))["data"]
    assert status["status"] == "running" and 0 < status["finished_steps"] <= 3

    for body, status_code in [
        ({"workflow_id": workflow_id, "outcome": "exploded", "duration_seconds": 5}, 422),
        ({"workflow_id": workflow_id, "outcome": "completed"}, 422),
        ({"workflow_id": workflow_id, "outcome": "failed", "duration_seconds": 0}, 422),
        ({"workflow_id": workflow_id, "outcome": "failed", "pause_reason": "nap"}, 422),
        (
            {
                "workflow_id": workflow_id,
                "outcome": "failed",
                "pause_reason": "user",
                "duration_seconds": 5,
            },
            422,
        ),
        ({"workflow_id": str(uuid.uuid4()), "outcome": "failed", "duration_seconds": 5}, 404),
    ]:
        assert httpx.post(f"{sim.url}/_sim/runs", json=body).status_code == status_code
    assert httpx.post(f"{sim.url}/_sim/runs", content=b"not json").status_code == 422


def test_admin_stats_count_requests_per_endpoint(api: httpx.Client, sim: RunningSimulator) -> None:
    httpx.post(f"{sim.url}/_sim/stats/reset")
    workflow_id = all_workflows(api)[0]["id"]
    run_id = all_runs(api, workflow_id)[0]["id"]
    api.get(f"/workflows/{workflow_id}")
    api.get(f"/workflows/{workflow_id}/runs/{run_id}")
    api.get(f"/workflows/{workflow_id}/runs/{run_id}/status")
    api.get(f"/workflows/{workflow_id}/runs/summary")
    api.get("/auth/whoami")
    api.get("/auth/whoami", headers={"Authorization": "Bearer nope"})
    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    assert stats["requests"] == {
        "list_workflows": 1,
        "list_runs": 1,
        "get_workflow": 1,
        "get_run": 1,
        "get_run_status": 1,
        "runs_summary": 1,
        "whoami": 2,
    }
    assert stats["responses"] == {"200": 7, "401": 1}
    reset = httpx.post(f"{sim.url}/_sim/stats/reset").json()
    assert reset == {"requests": {}, "responses": {}}


# --- command line ------------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter.simulator", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def wait_for_line(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"the simulator printed nothing within {timeout} s"
    return process.stdout.readline()


def test_the_cli_serves_until_sigterm_and_prints_its_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter.simulator", "--listen=127.0.0.1:0", "--workflows=3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "ONEPIN_SIMULATOR_TOKEN": TOKEN},
    )
    try:
        line = wait_for_line(process)
        match = re.fullmatch(r"onepin-simulator listening on (http://127\.0\.0\.1:(\d+))\n", line)
        assert match and int(match.group(2)) > 0, line
        headers = {"Authorization": f"Bearer {TOKEN}"}
        body = httpx.get(f"{match.group(1)}/api/v1/workflows", headers=headers).json()
        assert body["pagination"]["total"] == 3
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


@pytest.mark.parametrize(
    "args",
    [
        ["--listen=127.0.0.1:0"],
        ["--token=t", "--listen=nowhere"],
        ["--token=t", "--workflows=0"],
        ["--token=t", "--speed=0"],
        ["--token=t", "--error-rate=2"],
        ["--token=t", "--clock=sundial"],
        ["--token=t", "--workflows=3", "--active-runs=4"],
        ["--token=t", "--latency-ms=-1"],
        ["--token=t", "--required-version=latest"],
        ["--token=t", "--validation-body=xml"],
        ["--token=t", "--no-such-flag"],
    ],
)
def test_bad_flags_are_usage_errors(args: list[str]) -> None:
    result = run_cli(*args, env={"ONEPIN_SIMULATOR_TOKEN": ""})
    assert result.returncode == 2, result
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
