"""The API token goes to the configured API origin and nowhere else, and is never written out.

A second loopback server records every request it gets; the API (the fake, on a real socket)
points pagination links and a redirect at it. The exporter runs as a process at debug level.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakeapi import TOKEN, FakeOnePin, ok, standard_workspace
from tests.faultserver import FaultServer, Reply, on_path
from tests.procs import http_get, start_exporter, wait_for


class Loopback:
    """A plain HTTP server on loopback: `answer(path, headers)` gives each request's status and
    body (hand-written, independent of the fake API). Header names are lower case."""

    def __init__(self, answer: Callable[[str, dict[str, str]], tuple[int, bytes]]) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body = answer(self.path, headers)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Trap(Loopback):
    """Another origin on loopback that records the headers of every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        super().__init__(self._record)

    def _record(self, _path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append(headers)
        return 200, json.dumps({"data": [], "meta": {}}).encode()


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.close()


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_the_token_reaches_only_the_api_origin_and_no_log(
    trap: Trap, tmp_path: Path, log_format: str
) -> None:
    fake = FakeOnePin(standard_workspace(), page_size=4)

    def next_to_trap(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/workflows"):
            offset = int(request.url.params.get("offset", "0"))
            items = [wf.item() for wf in fake.workflows.values()][offset : offset + 4]
            nxt = f"{trap.url}/api/v1/workflows?offset={offset + 4}&limit=4"
            return ok(items, {"limit": 4, "total": len(fake.workflows), "next": nxt,
                              "prev": f"{trap.url}/prev"})  # fmt: skip
        return None

    fake.overrides.append(next_to_trap)
    with FaultServer(fake) as api:
        api.script.append(
            on_path("/r-run-2/status", Reply(302, headers={"Location": f"{trap.url}/steal"}))
        )
        exporter, url = start_exporter(
            tmp_path,
            f"workspaces:\n  - {{name: prod, api_url: '{api.url}', token: {TOKEN}}}\n"
            "collection: {min_interval: 0s}\n",
            "--log.level=debug",
            f"--log.format={log_format}",
        )
        try:
            for _ in range(3):
                status, metrics = http_get(f"{url}/metrics")
                assert status == 200
            _, landing = http_get(f"{url}/")
            wait_for("the exporter to log the redirect it refused", lambda: "redirect" in
                     exporter.output())  # fmt: skip
        finally:
            exporter.stop()
    assert len({r.url.path for r in fake.requests if r.url.path.endswith("/workflows")}) == 1
    assert fake.count("list_workflows") >= 3 * 3  # every page, every scrape, from our offsets
    assert trap.requests == [], f"the other origin was contacted: {trap.requests}"
    log = exporter.output()
    # The debug level really was on, in the format asked for.
    assert ("level=debug" if log_format == "logfmt" else '"level": "debug"') in log
    for text in (log, metrics, landing):
        assert TOKEN not in text
        assert TOKEN[8:] not in text  # not even without its prefix
    check = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check",
         f"--config.file={tmp_path / 'exporter.yaml'}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0 and TOKEN not in check.stdout + check.stderr


# --- the token echoed back by the API -----------------------------------------------------------

ECHO_TOKEN = "op_live_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4"
ECHO_SUFFIX = ECHO_TOKEN.removeprefix("op_live_")


def _escaped(text: str) -> str:
    """`text` as a JSON string literal with every character \\u-escaped."""
    return '"' + "".join(f"\\u{ord(c):04x}" for c in text) + '"'


def _error_bodies(auth: str) -> dict[str, bytes]:
    """Hand-written error bodies that echo the request's Authorization header back, one shape
    each: the token whole, behind `Bearer`, and without its prefix."""
    tok, sfx = json.dumps(ECHO_TOKEN), json.dumps(ECHO_SUFFIX)
    said = json.dumps(f"invalid key in header {auth!r} ({ECHO_SUFFIX})")
    return {
        "error.message": b'{"error": {"code": "UNAUTHORIZED", "message": %s}}' % said.encode(),
        "error.code": b'{"error": {"code": %s, "message": "no"}}' % tok.encode(),
        "meta.request_id": b'{"error": {"code": "E", "message": "no"}, "meta": {"request_id": %s}}'
        % json.dumps(auth).encode(),
        "detail.msg": b'{"detail": [{"loc": ["header", %s], "msg": %s}]}'
        % (sfx.encode(), said.encode()),
        "flat": b'{"code": %s, "message": %s}' % (sfx.encode(), json.dumps(auth).encode()),
        "escaped": b'{"error": {"code": "E", "message": %s}, "meta": {"request_id": %s}}'
        % (_escaped(auth).encode(), _escaped(ECHO_SUFFIX).encode()),
    }


SHAPES = list(_error_bodies("Bearer x"))
STATUSES = (401, 500)


def _echo(path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """The API of the test below: a request to `/<shape>-<status>/...` gets that status and a
    hand-written error body echoing its Authorization header; `/ok/...` lists one workflow whose
    name, and runs whose texts, carry the token."""
    prefix = path.split("/")[1]
    if prefix == "ok":
        return 200, _ok_body(path)
    shape, code = prefix.rsplit("-", 1)
    return int(code), _error_bodies(headers.get("authorization", ""))[shape]


def _ok_body(path: str) -> bytes:
    """A 200 answer whose free texts (workflow name, run error, user name) hold the token."""
    meta = (
        b'"meta": {"request_id": "r1", "timestamp": "2026-01-01T00:00:00Z"},'
        b' "pagination": {"offset": 0, "limit": 100, "total": 1}'
    )
    if path.split("?")[0].endswith("/workflows"):
        name = _escaped(f"etl {ECHO_TOKEN}").encode()
        return b'{"data": [{"id": "wf1", "name": %s, "runs_count": 1}], %s}' % (name, meta)
    run = (
        b'{"id": "run1", "run_number": 1, "status": "running",'
        b' "created_at": "2026-01-01T00:00:00Z", "error": %s, "triggered_by": {"user_name": %s}}'
        % (json.dumps(f"died: {ECHO_TOKEN}").encode(), _escaped(ECHO_SUFFIX).encode())
    )
    if path.split("?")[0].endswith("/runs"):
        return b'{"data": [%s], %s}' % (run, meta)
    return b'{"data": %s, %s}' % (run, meta)


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_the_token_echoed_by_the_api_is_written_nowhere(tmp_path: Path, log_format: str) -> None:
    echo = Loopback(_echo)
    workspaces = [f"{shape}-{status}" for shape in SHAPES for status in STATUSES] + ["ok"]
    config = "workspaces:\n" + "".join(
        f"  - {{name: {ws}, api_url: '{echo.url}/{ws}', token: {ECHO_TOKEN}}}\n"
        for ws in workspaces
    )
    config += "collection: {min_interval: 0s, triggered_by_label: true}\nhttp: {max_retries: 0}\n"
    try:
        exporter, url = start_exporter(
            tmp_path, config, "--log.level=debug", f"--log.format={log_format}"
        )
        try:
            status, metrics = http_get(f"{url}/metrics")
            assert status == 200
            status, metrics = http_get(f"{url}/metrics")
            assert status == 200
            _, landing = http_get(f"{url}/")
        finally:
            exporter.stop()
    finally:
        echo.close()
    log = exporter.output()
    assert ("level=debug" if log_format == "logfmt" else '"level": "debug"') in log
    # Every workspace's error reached the sinks (so the test looks where the token would be).
    assert log.count("API unreachable or key rejected") >= len(workspaces) - 1, log
    assert landing.count("HTTP 401") == len(SHAPES) and landing.count("HTTP 500") == len(SHAPES)
    assert "Bearer &lt;redacted&gt;" in landing  # the echoed header was there, and removed
    # The texts of a good answer that held it are shown without it.
    assert 'workflow_name="etl <redacted>"' in metrics, metrics
    assert 'triggered_by="<redacted>"' in metrics, metrics
    check = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check",
         f"--config.file={tmp_path / 'exporter.yaml'}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0
    for where, text in (("log", log), ("/metrics", metrics), ("/", landing),
                        ("--config.check", check.stdout + check.stderr)):  # fmt: skip
        assert ECHO_SUFFIX not in text, f"the token (without its prefix) in {where}:\n{text}"


def test_a_token_file_rewritten_with_a_line_break_keeps_metrics_up(tmp_path: Path) -> None:
    """It made /metrics answer 500: the header could not be sent. Now the last key stays."""
    api = Loopback(lambda _path, _headers: (200, b'{"data": [], "pagination": {"total": 0}}'))
    secret = tmp_path / "token"
    secret.write_text(ECHO_TOKEN + "\n")
    try:
        exporter, url = start_exporter(
            tmp_path,
            f"workspaces:\n  - {{name: a, api_url: '{api.url}', token_file: {secret}}}\n"
            "collection: {min_interval: 0s}\n",
        )
        try:
            assert http_get(f"{url}/metrics")[0] == 200
            secret.write_text(f"{ECHO_TOKEN}\nop_live_second\n")
            os.utime(secret, (1, 1))
            status, metrics = http_get(f"{url}/metrics")
        finally:
            exporter.stop()
    finally:
        api.close()
    assert status == 200 and 'onepin_up{workspace="a"} 1.0' in metrics, metrics
    assert "token file not used: the token holds a line break" in exporter.output()
    assert ECHO_SUFFIX not in exporter.output()
