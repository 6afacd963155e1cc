"""What the client tells an operator: a debug line per request, and failures with their cause.

The servers here are hand-written (httpx.MockTransport answers, a bare aiohttp app), apart from
the simulator and tests/fakeapi.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx
import pytest
from aiohttp import web

from exporter.client import ApiError, Deadline, OnePinClient
from exporter.config import HttpSettings, Token
from exporter.logs import RedactingFormatter
from exporter.requestlog import loggable_path

TOKEN = "op_live_Diagnostics0Diagnostics0Diagnos"
SETTINGS = HttpSettings(timeout=2.0, max_concurrency=2, max_retries=2)
PAGE = {"data": [], "pagination": {"total": 0, "limit": 100, "offset": 0}}


def client_answering(*answers: httpx.Response) -> OnePinClient:
    replies = iter(answers)

    def handler(_request: httpx.Request) -> httpx.Response:
        return next(replies)

    return OnePinClient("https://api.example.test/base", Token(TOKEN), SETTINGS,
                        transport=httpx.MockTransport(handler))  # fmt: skip


async def _list(client: OnePinClient) -> Any:
    try:
        return await client.list_workflows(Deadline(10))
    finally:
        await client.aclose()


def test_debug_logs_one_line_per_request_with_its_attempt(caplog: pytest.LogCaptureFixture) -> None:
    client = client_answering(
        httpx.Response(503, headers={"Retry-After": "0"}), httpx.Response(200, json=PAGE)
    )
    with caplog.at_level(logging.DEBUG, logger="exporter.client"):
        asyncio.run(_list(client))
    records = [r for r in caplog.records if r.getMessage() == "api request"]
    assert [(r.status, r.attempt) for r in records] == [("503", 1), ("200", 2)]  # type: ignore[attr-defined]
    line = RedactingFormatter("logfmt", lambda: [TOKEN]).format(records[1])
    assert re.search(
        r'level=debug logger=exporter.client msg="api request" method=GET '
        r'endpoint=list_workflows path="/base/api/v1/workflows\?sort=name&order=asc&offset=0'
        r'&limit=100" '
        r"status=200 "
        r"duration=\d+\.\d{3}s attempt=2$",
        line,
    ), line


def test_no_request_lines_and_no_work_for_them_above_debug(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: object) -> None:
        raise AssertionError("log_request called above debug level")

    monkeypatch.setattr("exporter.client.log_request", fail)
    with caplog.at_level(logging.INFO, logger="exporter.client"):
        asyncio.run(_list(client_answering(httpx.Response(200, json=PAGE))))
    assert not [r for r in caplog.records if r.getMessage() == "api request"]


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({}, "/api/v1/workflows"),
        ({"offset": "0", "limit": "100"}, "/api/v1/workflows?offset=0&limit=100"),
        ({"api_key": "s3cr3t", "limit": "1"}, "/api/v1/workflows?api_key=<redacted>&limit=1"),
        ({"access_token": "s3cr3t"}, "/api/v1/workflows?access_token=<redacted>"),
        ({"X-Amz-Signature": "abc"}, "/api/v1/workflows?X-Amz-Signature=<redacted>"),
    ],
)
def test_loggable_path_hides_secret_looking_parameters(params: dict[str, str], shown: str) -> None:
    assert loggable_path("https://h.test/api/v1", "/workflows", params) == shown


def _error_from_plain_http_server(scheme: str) -> str:
    async def run() -> str:
        runner = web.AppRunner(web.Application())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        settings = HttpSettings(timeout=2.0, max_concurrency=1, max_retries=0)
        client = OnePinClient(f"{scheme}://127.0.0.1:{port}", Token(TOKEN), settings)
        try:
            await client.list_workflows(Deadline(5))
            return "no error"
        except ApiError as exc:
            return str(exc)
        finally:
            await client.aclose()
            await runner.cleanup()

    return asyncio.run(run())


def test_https_against_a_plain_http_port_says_so() -> None:
    message = _error_from_plain_http_server("https")
    assert message.startswith("list_workflows: connection failed: TLS handshake failed"), message
    assert "WRONG_VERSION_NUMBER" in message
    assert "plain HTTP" in message and "http://" in message
    assert TOKEN not in message
