"""The API token goes to the configured API origin and nowhere else, and is never written out.

A second loopback server records every request it gets; the API (the fake, on a real socket)
points pagination links and a redirect at it. The exporter runs as a process at debug level.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakeapi import TOKEN, FakeOnePin, ok, standard_workspace
from tests.faultserver import FaultServer, Reply, on_path
from tests.procs import http_get, start_exporter, wait_for


class Trap:
    """Another origin on loopback that records the headers of every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        trap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.requests.append(dict(self.headers))
                body = json.dumps({"data": [], "meta": {}}).encode()
                self.send_response(200)
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


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.close()


def test_the_token_reaches_only_the_api_origin_and_no_log(trap: Trap, tmp_path: Path) -> None:
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
    assert "level=debug" in log  # the debug level really was on
    for text in (log, metrics, landing):
        assert TOKEN not in text
        assert TOKEN[8:] not in text  # not even without its prefix
    check = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.check",
         f"--config.file={tmp_path / 'exporter.yaml'}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0 and TOKEN not in check.stdout + check.stderr
