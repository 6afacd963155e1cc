"""Hostile bodies and paging: what the API sends never costs memory, a 500 or a request storm.

Every hostile answer here is written by hand in the test (an httpx.MockTransport handler, or
tests/faultserver.py `raw_reply` on a real socket), not produced by the simulator or the fake
API, so the cases do not share their assumptions. What an operator would notice is asserted:
the exporter's memory, `/metrics` answering 200, which workflows and workspaces are up, the
log (one clear line, no traceback), and how many requests a poll costs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
import tracemalloc
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.bodies import codings, decode
from exporter.client import MAX_BODY_BYTES, ApiError, Deadline, OnePinClient
from exporter.config import HttpSettings, Token
from exporter.server import TIMEOUT_HEADER
from exporter.transport import BodyTooLarge
from exporter.wiring import build_poller
from tests.background import BackgroundExporter
from tests.fakeapi import API, TOKEN, FakeOnePin, standard_workspace
from tests.faultserver import FaultServer, on_path, raw_reply
from tests.helpers import make_config, series, value
from tests.procs import start_exporter

HIT = "wf-running"  # the workflow whose active run is asked about on every scrape
HIT_STATUS = "/r-run-2/status"
JSON_HEADERS = [("Content-Type", "application/json")]
NOW = "2026-11-29T12:00:00Z"
MiB = 1024 * 1024


# --- hand-written bodies ---------------------------------------------------------------------


@functools.cache
def gzip_bomb(size: int, layers: int = 2) -> bytes:
    """`size` zero bytes gzipped `layers` times, built 1 MiB at a time (the test stays small).
    512 MiB twice gzipped is 980 bytes."""
    zeros = bytes(MiB)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = b"".join(comp.compress(zeros) for _ in range(size // MiB)) + comp.flush()
    for _ in range(layers - 1):
        comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        body = comp.compress(body) + comp.flush()
    return body


def gzipped(data: bytes) -> bytes:
    comp = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return comp.compress(data) + comp.flush()


def nested(depth: int) -> bytes:
    """A 2-byte-per-level JSON value nested `depth` lists deep."""
    return b"[" * depth + b"]" * depth


def deep_catalogue(depth: int = 1000) -> bytes:
    return b'{"data":' + nested(depth) + b"}"


RUN = {
    "id": "r-1", "run_number": 3, "status": "running", "created_at": "2026-11-29T11:00:00Z",
    "started_at": "2026-11-29T11:01:00Z", "completed_at": None, "total_nodes": 5,
    "total_steps": 10, "finished_steps": 4, "token_cost": 100,
    "usage_summary": {"cpu_seconds": 12.5},
}  # fmt: skip
RUN_BODY = json.dumps({"data": RUN, "meta": {"request_id": "req_h", "timestamp": NOW}}).encode()


# --- the decoder alone ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, chain",
    [("", ()), ("identity", ()), ("GZIP", ("gzip",)), (" x-gzip ,deflate", ("gzip", "deflate")),
     ("gzip, identity", ("gzip",)), ("deflate, gzip", ("deflate", "gzip"))],
)  # fmt: skip
def test_codings_in_the_order_applied(header: str, chain: tuple[str, ...]) -> None:
    assert codings(header) == chain


@pytest.mark.parametrize("size, fits", [(MiB, True), (MiB + 1, False)])
def test_the_decoder_stops_at_the_limit(size: int, fits: bool) -> None:
    body = gzipped(gzipped(bytes(size)))
    if fits:
        assert asyncio.run(decode(body, ("gzip", "gzip"), MiB)) == bytes(size)
    else:
        with pytest.raises(BodyTooLarge):
            asyncio.run(decode(body, ("gzip", "gzip"), MiB))


def test_the_decoder_holds_no_more_than_the_limit_of_a_bomb() -> None:
    bomb = gzip_bomb(64 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            asyncio.run(decode(bomb, ("gzip", "gzip"), MiB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MiB, f"peak {peak / MiB:.1f} MiB for a 1 MiB limit"


# --- the client alone, over httpx.MockTransport -------------------------------------------------


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> OnePinClient:
    http = HttpSettings(timeout=5.0, max_concurrency=4, max_retries=0)
    return OnePinClient(API, Token(TOKEN), http, transport=httpx.MockTransport(handler))


def status_with(headers: dict[str, str], body: bytes) -> Callable[[], Any]:
    """Get Run Status answered 200 with these headers and body: the run, or the ApiError."""

    def handler(request: httpx.Request) -> httpx.Response:
        # A stream, as the exporter's transport gives it: with `content=`, httpx would
        # inflate the body here, in the handler.
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))

    async def call() -> Any:
        client = client_for(handler)
        try:
            return await client.get_run_status("wf-1", "r-1", Deadline(10))
        except ApiError as exc:
            return exc
        finally:
            await client.aclose()

    return lambda: asyncio.run(call())


def test_a_body_gzipped_twice_is_decoded_only_up_to_the_cap_in_bounded_memory() -> None:
    bomb = gzip_bomb(128 * MiB)
    tracemalloc.start()
    try:
        result = status_with({"Content-Encoding": "gzip, gzip"}, bomb)()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The cap, plus what is being decoded: never the 128 MiB the body inflates to.
    assert peak < MAX_BODY_BYTES + 8 * MiB, f"peak {peak / MiB:.0f} MiB"
    assert isinstance(result, ApiError), result
    assert result.endpoint == "get_run_status"
    assert "larger than 16 MiB once decoded" in str(result), str(result)


def test_decoding_a_bomb_lets_the_event_loop_run() -> None:
    """Inflating is done in bounded steps: other requests and scrapes are served meanwhile."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": "gzip"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(bomb))

    async def call() -> None:
        client = client_for(handler)
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        before = ticks
        with pytest.raises(ApiError, match="larger than 16 MiB"):
            await client.get_run_status("wf-1", "r-1", Deadline(10))
        task.cancel()
        await client.aclose()
        # 16 MiB decoded in steps of at most 1 MiB between two turns of the loop.
        assert ticks - before >= 8, f"the loop ran {ticks - before} times while inflating"

    bomb = gzip_bomb(64 * MiB, layers=1)
    asyncio.run(call())


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("gzip", gzipped(RUN_BODY)),
        ("GZIP", gzipped(RUN_BODY)),
        ("x-gzip", gzipped(RUN_BODY)),
        ("deflate", zlib.compress(RUN_BODY)),
        ("deflate", zlib.compress(RUN_BODY)[2:-4]),  # raw deflate, as some servers send it
        ("identity", RUN_BODY),
        ("gzip, identity", gzipped(RUN_BODY)),
        ("deflate, gzip", gzipped(zlib.compress(RUN_BODY))),
        # Two gzip members back to back are one gzip body (RFC 1952).
        ("gzip", gzipped(RUN_BODY[:40]) + gzipped(RUN_BODY[40:])),
    ],
)
def test_gzip_and_deflate_bodies_are_read(encoding: str, body: bytes) -> None:
    run = status_with({"Content-Encoding": encoding}, body)()
    assert not isinstance(run, ApiError), str(run)
    assert (run.id, run.token_cost, run.usage) == ("r-1", 100, {"cpu_seconds": 12.5})


@pytest.mark.parametrize(
    "encoding, reason",
    [
        ("br", "Content-Encoding br, which was not asked for"),
        ("zstd", "Content-Encoding zstd, which was not asked for"),
        ("gzip, br", "Content-Encoding br, which was not asked for"),
        (TOKEN, "an unknown Content-Encoding, which was not asked for"),
        ("gzip, gzip, gzip", "3 content codings, more than the 2 decoded"),
    ],
)
def test_encodings_not_asked_for_are_refused_with_a_clear_error(encoding: str, reason: str) -> None:
    error = status_with({"Content-Encoding": encoding}, gzipped(gzipped(gzipped(RUN_BODY))))()
    assert isinstance(error, ApiError), error
    assert error.endpoint == "get_run_status"
    assert reason in str(error), str(error)
    assert TOKEN not in str(error)


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"\x1f\x8b\x08\x00garbage-not-deflate", "not valid gzip data"),
        (gzipped(RUN_BODY)[:-12], "gzip data cut short"),
        (gzipped(RUN_BODY) + b"trailing junk", "not valid gzip data"),
    ],
)
def test_broken_gzip_is_an_error_of_that_endpoint(body: bytes, reason: str) -> None:
    error = status_with({"Content-Encoding": "gzip"}, body)()
    assert isinstance(error, ApiError), error
    assert reason in str(error), str(error)


def test_the_client_asks_for_identity_bodies() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        return httpx.Response(200, content=RUN_BODY)

    async def call() -> None:
        client = client_for(handler)
        await client.get_run_status("wf-1", "r-1", Deadline(5))
        await client.aclose()

    asyncio.run(call())
    assert seen == ["identity"]


# --- JSON nested deeper than any API answer ----------------------------------------------------


@pytest.mark.parametrize("status", [200, 500])
def test_a_deeply_nested_catalogue_is_an_error_not_a_crash(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=dict(JSON_HEADERS), content=deep_catalogue())

    async def call() -> None:
        client = client_for(handler)
        try:
            with pytest.raises(ApiError) as caught:
                await client.list_workflows(Deadline(5))
        finally:
            await client.aclose()
        assert caught.value.endpoint == "list_workflows"
        if status == 200:
            assert "nested more than 64 levels deep" in str(caught.value), str(caught.value)
        else:
            assert caught.value.status == 500

    asyncio.run(call())


@pytest.mark.parametrize("where", ["data", "token_cost", "usage_summary", "error"])
def test_deep_nesting_in_a_run_status_is_an_error_of_that_endpoint(where: str) -> None:
    run = dict(RUN)
    if where == "data":
        body = b'{"data":' + nested(1000) + b"}"
    else:
        marker = "NESTED"
        run[where] = marker
        body = json.dumps({"data": run}).encode().replace(b'"NESTED"', nested(990))
    error = status_with({}, body)()
    assert isinstance(error, ApiError), error
    assert "nested more than 64 levels deep" in str(error), str(error)


def test_nesting_up_to_the_bound_is_read() -> None:
    run = dict(RUN, usage_summary={"cpu_seconds": 12.5, "deep": json.loads(nested(60))})
    result = status_with({}, json.dumps({"data": run}).encode())()
    assert not isinstance(result, ApiError), str(result)
    assert result.usage == {"cpu_seconds": 12.5}


# --- through a real exporter -------------------------------------------------------------------


def scrape(url: str, timeout: float = 5.0) -> str:
    request = urllib.request.Request(f"{url}/metrics", headers={TIMEOUT_HEADER: f"{timeout:g}"})
    with urllib.request.urlopen(request, timeout=timeout + 10) as response:
        assert response.status == 200
        text: str = response.read().decode()
        return text


def ups(text: str) -> dict[str, float]:
    return {s.labels["workflow_id"]: s.value for s in series(text, "onepin_workflow_up")}


def hwm_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1)) * 1024


def test_a_1kb_body_that_inflates_to_512mib_costs_under_32mb_and_one_workflow(
    tmp_path: Path,
) -> None:
    """Issue 11, acceptance 4: the exporter's peak RSS, measured by the kernel."""
    bomb = gzip_bomb(512 * MiB)
    assert len(bomb) < 1100
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    headers = [*JSON_HEADERS, ("Content-Encoding", "gzip, gzip")]
    config = f"""
workspaces:
  - name: prod
    token: {TOKEN}
    api_url: URL
http: {{timeout: 10s, max_concurrency: 4, max_retries: 0}}
collection: {{min_interval: 0s}}
"""
    with FaultServer(fake) as api:
        proc, url = start_exporter(tmp_path, config.replace("URL", api.url))
        try:
            for _ in range(3):  # warm: every path a scrape takes has run
                assert set(ups(scrape(url)).values()) == {1.0}
            before = hwm_bytes(proc.proc.pid)
            api.script.append(on_path(HIT_STATUS, raw_reply(200, headers, bomb)))
            text = scrape(url)
            grown = hwm_bytes(proc.proc.pid) - before
            assert value(text, "onepin_up") == 1
            assert ups(text) == {**{w: 1.0 for w in wids if w != HIT}, HIT: 0.0}
            assert grown < 32 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB"
            assert re.search(r"not refreshed.*larger than 16 MiB once decoded", proc.output())
        finally:
            proc.stop()


@contextmanager
def two_workspaces(caplog: pytest.LogCaptureFixture) -> Iterator[tuple[FaultServer, str]]:
    """An exporter over two workspaces, each its own API: `prod` (scripted) and `other`."""
    caplog.set_level(logging.INFO, logger="exporter")
    with (
        FaultServer(FakeOnePin(standard_workspace())) as api,
        FaultServer(FakeOnePin(standard_workspace())) as other,
    ):
        config = make_config(
            api_url=api.url,
            extra_workspace_yaml=f"  - name: other\n    api_url: {other.url}\n    token: {TOKEN}",
            http="{timeout: 5s, max_concurrency: 4, max_retries: 1}",
        )
        with BackgroundExporter(config) as running:
            yield api, running.url


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("status", [200, 500])
def test_a_deeply_nested_catalogue_marks_its_workspace_down_and_keeps_the_other(
    caplog: pytest.LogCaptureFixture, status: int
) -> None:
    with two_workspaces(caplog) as (api, url):
        text = scrape(url)
        assert len(series(text, "onepin_workflow_up", workspace="other")) == 9
        api.script.append(on_path("/workflows", raw_reply(status, JSON_HEADERS, deep_catalogue())))
        for _ in range(2):
            text = scrape(url)
            assert value(text, "onepin_up", workspace="prod") == 0
            assert value(text, "onepin_up", workspace="other") == 1
            others = series(text, "onepin_workflow_up", workspace="other")
            assert [s.value for s in others] == [1.0] * 9
    assert tracebacks(caplog) == []
    down = [r.getMessage() for r in caplog.records if "API unreachable" in r.getMessage()]
    assert len(down) == 1, down


def test_a_deeply_nested_run_status_marks_only_its_workflow_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = b'{"data":' + nested(1000) + b"}"
    with two_workspaces(caplog) as (api, url):
        scrape(url)
        api.script.append(on_path(HIT_STATUS, raw_reply(200, JSON_HEADERS, body)))
        for _ in range(3):
            text = scrape(url)
            prod = {s.labels["workflow_id"]: s.value
                    for s in series(text, "onepin_workflow_up", workspace="prod")}  # fmt: skip
            assert prod == {**dict.fromkeys(prod, 1.0), HIT: 0.0}, prod
    assert tracebacks(caplog) == []
    lines = [r.getMessage() for r in caplog.records if "not refreshed" in r.getMessage()]
    assert len(lines) == 1 and "nested more than 64 levels deep" in lines[0], lines


# --- paging ------------------------------------------------------------------------------------


def workflow_item(i: int, updated: int = 0) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-0000-0000-{i:012d}", "name": f"flow-{i:04d}",
        "runs_count": 0, "last_run_at": None, "last_run_status": None,
        "updated_at": f"2026-11-29T{10 + updated // 3600:02d}:{updated // 60 % 60:02d}:"
                      f"{updated % 60:02d}Z",
    }  # fmt: skip


class Catalogue:
    """List Workflows over `items`, ordered as the API documents (`sort`/`order`, default
    `updated_at` desc, ties by id); `ignore_offset` answers the first page to every offset."""

    def __init__(
        self, items: list[dict[str, Any]], total: int | str | None = "count",
        ignore_offset: bool = False,
    ) -> None:  # fmt: skip
        self.items = items
        self.total = total
        self.ignore_offset = ignore_offset
        self.requests: list[httpx.URL] = []
        self.after_first_page: Callable[[], None] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/workflows"):
            return self.page(request)
        # Every workflow has no runs yet.
        return httpx.Response(200, json={"data": [], "pagination": {"limit": 20, "total": 0}})

    def page(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        params = request.url.params
        offset = 0 if self.ignore_offset else int(params.get("offset", "0"))
        limit = min(int(params.get("limit", "20")), 100)
        by = params.get("sort", "updated_at")
        desc = params.get("order", "desc" if by == "updated_at" else "asc") == "desc"
        ordered = sorted(self.items, key=lambda w: w["id"])
        ordered.sort(key=lambda w: w[by], reverse=desc)
        data = ordered[offset : offset + limit]
        pagination: dict[str, Any] = {"limit": limit, "next": None, "prev": None}
        if self.total == "count":
            pagination["total"] = len(self.items)
        elif self.total is not None:
            pagination["total"] = self.total
        if offset == 0 and self.after_first_page is not None:
            self.after_first_page()
        meta = {"request_id": "req_p", "timestamp": NOW}
        return httpx.Response(200, json={"data": data, "meta": meta, "pagination": pagination})


def catalogue_ids(handler: Catalogue) -> list[str]:
    async def call() -> list[str]:
        client = client_for(handler)
        try:
            catalogue = await client.list_workflows(Deadline(5))
        finally:
            await client.aclose()
        return [wf.id for wf in catalogue.workflows]

    return asyncio.run(call())


def test_a_workflow_updated_between_two_pages_is_not_lost() -> None:
    """Default order `updated_at desc`: an update moves a page-2 workflow to the front, off
    both pages. The exporter asks for `sort=name`, which updates do not reorder."""
    items = [workflow_item(i, updated=i) for i in range(150)]
    handler = Catalogue(items)
    moved = items[20]  # on page 2 by updated_at desc (the 130th newest)

    def update() -> None:
        moved["updated_at"] = "2026-11-29T23:00:00Z"

    handler.after_first_page = update
    ids = catalogue_ids(handler)
    assert sorted(ids) == sorted(w["id"] for w in items), f"lost: {moved['id'] not in ids}"
    assert all(url.params.get("sort") == "name" for url in handler.requests)


@pytest.mark.parametrize("total", [None, 10**9], ids=["no-total", "total-1e9"])
def test_a_server_that_ignores_offset_costs_two_requests_per_poll(
    caplog: pytest.LogCaptureFixture, total: int | None
) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    handler = Catalogue([workflow_item(i) for i in range(300)], total, ignore_offset=True)
    config = make_config(collection="{min_interval: 0s, runs_summary: false}")
    poller = build_poller(config, transport=httpx.MockTransport(handler))

    async def polls() -> list[tuple[int, bool, int]]:
        seen = []
        for _ in range(3):
            handler.requests.clear()
            snapshot = await poller.snapshot(5)
            ws = snapshot.workspaces[0]
            seen.append((len(handler.requests), ws.up, len(ws.workflows)))
        handler.ignore_offset = False  # the proxy is fixed
        snapshot = await poller.snapshot(5)
        assert len(snapshot.workspaces[0].workflows) == 300
        await poller.aclose()
        return seen

    started = time.monotonic()
    seen = asyncio.run(polls())
    assert time.monotonic() - started < 5, "paging ran until the deadline"
    # The first page, and the second, which repeats it: then paging stops.
    assert seen == [(2, True, 100)] * 3, seen
    lines = [r.getMessage() for r in caplog.records if "List Workflows" in r.getMessage()]
    assert len(lines) == 2, lines  # when it starts, and when it ends
    assert "repeats workflows already seen" in lines[0], lines[0]
    assert "ignore" in lines[0] and "offset" in lines[0], lines[0]
    assert "paging works again" in lines[1], lines
