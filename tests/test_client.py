"""The HTTP client against respx: pagination, retries within the deadline, errors, origins."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from exporter.client import ApiError, Deadline, OnePinClient
from exporter.config import HttpSettings, Token
from tests.fakeapi import API, TOKEN, meta

BASE = f"{API}/api/v1"


def workflow(i: int) -> dict[str, Any]:
    return {"id": f"wf-{i:03d}", "name": f"workflow-{i}", "runs_count": i,
            "last_run_at": None, "last_run_status": None}  # fmt: skip


def page(items: list[dict[str, Any]], total: int | None, nxt: str | None = None) -> httpx.Response:
    pagination: dict[str, Any] = {"limit": 100, "next": nxt, "prev": None}
    if total is not None:
        pagination["total"] = total
    return httpx.Response(200, json={"data": items, "meta": meta(), "pagination": pagination})


@pytest.fixture
def router() -> Iterator[respx.Router]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


class FakeTime:
    """A monotonic clock that only the client's sleeps move forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client(router: respx.Router, fake: FakeTime | None = None, **settings: Any) -> OnePinClient:
    http = HttpSettings(**{"timeout": 2.0, "max_concurrency": 4, "max_retries": 2, **settings})
    transport = httpx.MockTransport(router.async_handler)
    if fake is None:
        return OnePinClient(API, Token(TOKEN), http, transport=transport)
    return OnePinClient(
        API, Token(TOKEN), http, transport=transport, clock=fake.clock, sleep=fake.sleep
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_pagination_across_pages_fetches_every_workflow_once(router: respx.Router) -> None:
    items = [workflow(i) for i in range(250)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        assert request.url.params["limit"] == "100"
        return page(items[offset : offset + 100], total=250)

    route = router.get("/workflows").mock(side_effect=handler)
    catalogue = run(client(router).list_workflows(Deadline(5)))
    assert [wf.id for wf in catalogue.workflows] == [w["id"] for w in items]
    assert sorted(int(c.request.url.params["offset"]) for c in route.calls) == [0, 100, 200]


def test_pagination_without_total_stops_on_a_short_page(router: respx.Router) -> None:
    items = [workflow(i) for i in range(130)]
    route = router.get("/workflows").mock(
        side_effect=lambda r: page(items[int(r.url.params["offset"]) :][:100], total=None)
    )
    catalogue = run(client(router).list_workflows(Deadline(5)))
    assert len(catalogue.workflows) == 130
    assert route.call_count == 2


def test_a_next_link_to_another_host_is_never_followed(router: respx.Router) -> None:
    evil = respx.get("https://evil.example/steal").mock(return_value=httpx.Response(200))
    router.get("/workflows").mock(
        return_value=page([workflow(1)], total=1, nxt="https://evil.example/steal?offset=1")
    )
    catalogue = run(client(router).list_workflows(Deadline(5)))
    assert len(catalogue.workflows) == 1
    assert not evil.called
    assert all(c.request.url.host == "api.onepin.test" for c in router.calls)


def test_a_429_with_retry_after_is_retried_and_counted(router: respx.Router) -> None:
    router.get("/workflows").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"},
                           json={"error": {"code": "RATE_LIMITED", "message": "slow down"}}),
            page([workflow(1)], total=1),
        ]
    )  # fmt: skip
    c = client(router)
    catalogue = run(c.list_workflows(Deadline(5)))
    assert len(catalogue.workflows) == 1
    assert c.stats.requests[("list_workflows", "429")] == 1
    assert c.stats.requests[("list_workflows", "200")] == 1


def test_a_429_whose_retry_after_passes_the_deadline_gives_up_at_once(router: respx.Router) -> None:
    router.get("/workflows").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "60"}, json={})
    )
    t = FakeTime()
    c = client(router, t)
    with pytest.raises(ApiError) as err:
        run(c.list_workflows(Deadline(3, t.clock)))
    assert t.now < 3
    assert t.slept == []  # at once: no wait for a Retry-After past the deadline
    assert err.value.status == 429
    assert c.stats.requests[("list_workflows", "429")] == 1


def test_5xx_is_retried_then_given_up_within_the_deadline(router: respx.Router) -> None:
    route = router.get("/workflows/wf-1/runs/summary").mock(
        return_value=httpx.Response(503, text="<html>Bad gateway</html>",
                                    headers={"Content-Type": "text/html"})
    )  # fmt: skip
    t = FakeTime()
    c = client(router, t, max_retries=2)
    with pytest.raises(ApiError) as err:
        run(c.runs_summary("wf-1", Deadline(4, t.clock)))
    assert t.now < 4
    assert route.call_count == 3  # the first try and two retries
    # Backoff with jitter: 0.125-0.25 s, then 0.25-0.5 s.
    assert len(t.slept) == 2
    assert 0.125 <= t.slept[0] <= 0.25 and 0.25 <= t.slept[1] <= 0.5
    assert err.value.status == 503
    assert "runs_summary: HTTP 503" in str(err.value)
    assert c.stats.requests[("runs_summary", "503")] == 3


def test_retries_stop_at_the_deadline_even_with_retries_left(router: respx.Router) -> None:
    route = router.get("/workflows").mock(return_value=httpx.Response(500, json={}))
    t = FakeTime()
    c = client(router, t, max_retries=10)
    with pytest.raises(ApiError):
        run(c.list_workflows(Deadline(0.6, t.clock)))
    assert 1 <= route.call_count < 11
    assert t.now < 0.6 - 0.05  # no sleep into the deadline's last 50 ms


def test_connection_errors_are_retried_and_counted_as_error(router: respx.Router) -> None:
    router.get("/workflows").mock(
        side_effect=[httpx.ConnectError("refused"), page([workflow(1)], total=1)]
    )
    c = client(router)
    assert len(run(c.list_workflows(Deadline(5))).workflows) == 1
    assert c.stats.requests[("list_workflows", "error")] == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"code": "NOT_FOUND", "message": "workflow not found", "details": None},
          "meta": {"request_id": "req_1"}},
         "HTTP 404 NOT_FOUND workflow not found (request_id req_1)"),
        ({"detail": [{"loc": ["query", "status"], "msg": "bad value", "type": "enum"}]},
         "HTTP 404 VALIDATION_ERROR query.status: bad value"),
        ({"code": "NOT_FOUND", "message": "flat shape"}, "HTTP 404 NOT_FOUND flat shape"),
    ],
)  # fmt: skip
def test_both_documented_error_shapes_are_parsed(
    router: respx.Router, body: dict[str, Any], expected: str
) -> None:
    router.get("/workflows/x/runs").mock(return_value=httpx.Response(404, json=body))
    with pytest.raises(ApiError) as err:
        run(client(router).list_runs("x", 20, Deadline(5)))
    assert str(err.value) == f"list_runs: {expected}"
    assert err.value.not_found


def test_malformed_json_is_a_clear_error(router: respx.Router) -> None:
    router.get("/workflows").mock(
        return_value=httpx.Response(
            200, text='{"data": [', headers={"Content-Type": "application/json"}
        )
    )
    with pytest.raises(ApiError, match=r"list_workflows: HTTP 200 response is not JSON"):
        run(client(router).list_workflows(Deadline(5)))


def test_wrong_field_type_names_the_field(router: respx.Router) -> None:
    bad = {"data": {"id": "r1", "run_number": "forty-two", "status": "running"}, "meta": meta()}
    router.get("/workflows/w/runs/r1/status").mock(return_value=httpx.Response(200, json=bad))
    with pytest.raises(ApiError, match=r"data\.run_number: expected a number, got .forty-two."):
        run(client(router).get_run_status("w", "r1", Deadline(5)))


def test_redirects_are_not_followed(router: respx.Router) -> None:
    router.get("/workflows").mock(
        return_value=httpx.Response(302, headers={"Location": "https://evil.example/"})
    )
    evil = respx.get("https://evil.example/").mock(return_value=httpx.Response(200))
    with pytest.raises(ApiError, match="redirect"):
        run(client(router).list_workflows(Deadline(5)))
    assert not evil.called


def test_oversized_bodies_are_refused_without_reading_them_whole(router: respx.Router) -> None:
    huge = b'{"data": [' + b" " * (17 * 1024 * 1024) + b"]}"
    router.get("/workflows").mock(return_value=httpx.Response(200, content=huge))
    with pytest.raises(ApiError, match="larger than 16 MiB"):
        run(client(router).list_workflows(Deadline(5)))


def test_requests_carry_the_token_and_workspace_id_and_ids_are_escaped(
    router: respx.Router,
) -> None:
    route = router.get(url__regex=r".*/runs/.*").mock(
        return_value=httpx.Response(
            200, json={"data": {"id": "r", "run_number": 1, "status": "running"}, "meta": meta()}
        )
    )
    http = HttpSettings(timeout=2.0, max_concurrency=2, max_retries=0)
    c = OnePinClient(API, Token(TOKEN), http, workspace_id="ws-9",
                     transport=httpx.MockTransport(router.async_handler))  # fmt: skip
    run(c.get_run_status("../../admin", "r?x=1", Deadline(5)))
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Workspace-Id"] == "ws-9"
    assert request.url.raw_path.startswith(b"/api/v1/workflows/..%2F..%2Fadmin/runs/r%3Fx%3D1/")
    assert TOKEN not in repr(Token(TOKEN)) and TOKEN not in str(Token(TOKEN))


def test_error_code_series_start_at_zero_so_rate_sees_the_first_one(router: respx.Router) -> None:
    c = client(router)
    for endpoint in ("list_workflows", "list_runs", "get_run_status", "runs_summary"):
        for code in ("429", "503", "error"):
            assert c.stats.requests[(endpoint, code)] == 0


def test_only_requests_asked_poll_after_poll_are_kept_built(router: respx.Router) -> None:
    """The status of an active run is asked every poll: its request is built once and kept
    (building one costs more CPU than the rest of the exchange). A cold start asks once for the
    status of each workflow's latest run: those are not kept (about 30 MB at 20,000
    workflows)."""
    route = router.get(url__regex=r".*/runs/.*").mock(
        return_value=httpx.Response(
            200, json={"data": {"id": "r", "run_number": 1, "status": "running"}, "meta": meta()}
        )
    )
    c = client(router)

    def poll(*runs: str) -> dict[str, httpx.Request]:
        c.start_poll()
        for rid in runs:
            run(c.get_run_status("wf", rid, Deadline(5)))
        return {rid: route.calls[-len(runs) + i].request for i, rid in enumerate(runs)}

    first = poll("active", "once")
    second = poll("active")
    third = poll("active", "once")
    fourth = poll("active")
    assert second["active"] is not first["active"]  # asked in one poll so far: not kept
    assert third["active"] is second["active"] and fourth["active"] is second["active"]
    assert third["once"] is not first["once"]  # a poll between: built again
    assert fourth["active"].headers["Authorization"] == f"Bearer {TOKEN}"
