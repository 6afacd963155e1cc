"""Fault knobs on a simulator serving 1,000 workflows and 200 active runs."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from exporter.simulator import ManualClock, RunningSimulator, SimulatorConfig

TOKEN = "op_live_FaultsFaultsFaultsFaults123456"
WORKFLOWS, ACTIVE = 1000, 200


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    config = SimulatorConfig(
        token=TOKEN, clock="manual", workflows=WORKFLOWS, active_runs=ACTIVE, seed=21
    )
    with RunningSimulator(config) as running:
        yield running


@pytest.fixture
def admin(sim: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{sim.url}/_sim", timeout=10) as client:
        yield client
        client.post("/faults", json={"latency_ms": 0, "error_rate": 0, "rate_limit_per_min": None})


@pytest.fixture
def api(sim: RunningSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"{sim.url}/api/v1", headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def status_paths(sim: RunningSimulator) -> list[str]:
    """The Get Run Status path of every active run, found through the API as a client would."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    paths: list[str] = []
    with httpx.Client(base_url=f"{sim.url}/api/v1", headers=headers, timeout=30) as client:
        offset = 0
        while offset < WORKFLOWS:
            page = client.get("/workflows", params={"offset": offset, "limit": 100}).json()
            offset += 100
            for workflow in page["data"]:
                if workflow["run_status_counts"]["running"]:
                    runs = client.get(
                        f"/workflows/{workflow['id']}/runs", params={"status": "running"}
                    ).json()
                    paths += [
                        f"/workflows/{workflow['id']}/runs/{run['id']}/status"
                        for run in runs["data"]
                    ]
    return paths


def test_it_serves_1000_workflows_and_200_active_runs(
    api: httpx.Client, status_paths: list[str]
) -> None:
    assert api.get("/workflows").json()["pagination"]["total"] == WORKFLOWS
    assert len(status_paths) == ACTIVE

    def poll(path: str) -> tuple[int, str]:
        response = api.get(path)
        return response.status_code, response.json()["data"]["status"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(poll, status_paths * 3))
    assert set(answers) == {(200, "running")}


def test_rate_limit_answers_429_with_retry_after_until_the_window_ends(
    sim: RunningSimulator, admin: httpx.Client, api: httpx.Client
) -> None:
    admin.post("/faults", json={"rate_limit_per_min": 30}).raise_for_status()
    codes = [api.get("/auth/whoami").status_code for _ in range(30)]
    assert codes == [200] * 30
    limited = api.get("/auth/whoami")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # A rejected key does not use up the quota: authentication comes first.
    rejected = api.get("/auth/whoami", headers={"Authorization": "Bearer wrong"})
    assert rejected.status_code == 401

    assert isinstance(sim.clock, ManualClock)
    sim.clock.advance(int(limited.headers["Retry-After"]))
    assert api.get("/auth/whoami").status_code == 200


def test_server_errors_come_at_the_configured_rate(
    admin: httpx.Client, api: httpx.Client, status_paths: list[str]
) -> None:
    admin.post("/faults", json={"error_rate": 0.2}).raise_for_status()
    admin.post("/stats/reset")
    statuses: Counter[int] = Counter()
    for i in range(1000):
        response = api.get(status_paths[i % len(status_paths)])
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            assert response.json()["error"]["code"] == "SERVER_ERROR"
    errors = sum(n for code, n in statuses.items() if code >= 500)
    assert set(statuses) <= {200, 500, 502, 503}
    assert 0.16 <= errors / 1000 <= 0.24, statuses
    stats = admin.get("/stats").json()
    assert stats["requests"] == {"get_run_status": 1000}
    assert sum(stats["responses"].values()) == 1000


def test_no_errors_when_the_rate_is_zero(
    admin: httpx.Client, api: httpx.Client, status_paths: list[str]
) -> None:
    admin.post("/faults", json={"error_rate": 0.0}).raise_for_status()
    assert {api.get(path).status_code for path in status_paths} == {200}


def test_added_latency_delays_every_api_answer(
    admin: httpx.Client, api: httpx.Client, status_paths: list[str]
) -> None:
    admin.post("/faults", json={"latency_ms": 120}).raise_for_status()
    requests: list[tuple[str, dict[str, str]]] = [
        (status_paths[0], {}),
        ("/workflows", {}),
        ("/auth/whoami", {"Authorization": "Bearer wrong"}),
    ]
    for path, headers in requests:
        started = time.monotonic()
        response = api.get(path, headers=headers)
        elapsed = time.monotonic() - started
        assert response.status_code in (200, 401)
        assert elapsed >= 0.12, f"{path} answered after {elapsed:.3f} s"
    assert admin.get("/faults").json()["latency_ms"] == 120


def test_the_time_spent_making_an_answer_is_part_of_the_added_latency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A benchmark's simulator shares the exporter's CPU: its own time per request must not add
    to the latency the benchmark sets, or the exporter is measured against the simulator."""
    config = SimulatorConfig(token=TOKEN, clock="manual", latency_ms=1200)
    with RunningSimulator(config) as running, httpx.Client(base_url=running.url) as client:
        admit = running.faults.admit

        def slow_admit(token: str) -> None:
            time.sleep(1.0)  # a request that takes the simulator a second to answer
            admit(token)

        monkeypatch.setattr(running.faults, "admit", slow_admit)
        started = time.monotonic()
        response = client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {TOKEN}"})
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    # 1.2 s, not 1.2 + 1.0 s (the slack is for a busy machine).
    assert 1.2 <= elapsed < 1.9, f"answered after {elapsed:.3f} s"


def test_a_request_waiting_on_latency_holds_up_nothing_else() -> None:
    config = SimulatorConfig(token=TOKEN, clock="manual", latency_ms=600_000)
    with RunningSimulator(config) as running, httpx.Client(base_url=running.url) as admin:
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as waiting:
            waiting.sendall(
                b"GET /api/v1/auth/whoami HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
            )
            # The admin API (no latency) answers while that request waits its ten minutes.
            deadline = time.monotonic() + 20
            stats = admin.get("/_sim/stats").json()
            while not stats["requests"]:
                assert time.monotonic() < deadline, "the simulator never saw the request"
                stats = admin.get("/_sim/stats").json()
            assert stats == {"requests": {"whoami": 1}, "responses": {}}


def test_faults_can_be_read_and_changed_at_runtime(admin: httpx.Client) -> None:
    defaults = {
        "latency_ms": 0.0,
        "error_rate": 0.0,
        "rate_limit_per_min": None,
        "required_version": None,
        "validation_body": "envelope",
    }
    assert admin.get("/faults").json() == defaults
    changed = admin.post("/faults", json={"error_rate": 0.5}).json()
    assert changed == {**defaults, "error_rate": 0.5}
    bad: list[dict[str, Any]] = [
        {"error_rate": 1.5},
        {"latency_ms": -1},
        {"rate_limit_per_min": 0},
        {"rate_limit_per_min": 2.5},
        {"required_version": "1.0' --extra"},
        {"required_version": 1},
        {"validation_body": "html"},
        {"nonsense": 1},
    ]
    for body in bad:
        response = admin.post("/faults", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert admin.get("/faults").json()["error_rate"] == 0.5


def test_faults_configured_at_start_apply_from_the_first_request() -> None:
    config = SimulatorConfig(token=TOKEN, clock="manual", error_rate=1.0, rate_limit_per_min=2)
    with RunningSimulator(config) as running:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=running.url, headers=headers, timeout=10) as client:
            codes = [client.get("/api/v1/auth/whoami").status_code for _ in range(3)]
            assert codes[0] >= 500 and codes[1] >= 500 and codes[2] == 429
            assert client.get("/_sim/faults").json()["rate_limit_per_min"] == 2
