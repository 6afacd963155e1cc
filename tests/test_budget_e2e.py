"""Acceptance 5 of issue 15, with real processes: `http.max_requests_per_minute: 120` on 300
workflows with 30 active runs, scraped every 5 s for over a minute. A counting proxy between
the exporter and the simulator, written apart from the exporter, notes when each API request
arrives: no 60 s window may hold more than 120, while every scrape answers with all 300
workflows and `onepin_up` 1."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.procs import http_get, start_exporter, start_simulator

TOKEN = "sk-budget-e2e-token-0123456789"
LIMIT, WORKFLOWS, ACTIVE = 120, 300, 30
SCRAPE_EVERY, SCRAPES = 5.0, 15  # 70 s: more than one full window
FORWARDED = ("Authorization", "Accept", "User-Agent", "X-Workspace-Id")


class CountingProxy:
    """Forwards every GET to `upstream` and keeps the monotonic time each one arrived."""

    def __init__(self, upstream: str) -> None:
        self.arrivals: list[float] = []
        lock = threading.Lock()
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    arrivals.append(time.monotonic())
                headers = {h: v for h in FORWARDED if (v := self.headers.get(h)) is not None}
                request = urllib.request.Request(upstream + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        status, body = answer.status, answer.read()
                        kind = answer.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                    kind = exc.headers.get("Content-Type", "application/json")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def budgeted_exporter(tmp_path: Path) -> Iterator[tuple[str, CountingProxy]]:
    sim, sim_url = start_simulator(
        tmp_path, TOKEN, f"--workflows={WORKFLOWS}", f"--active-runs={ACTIVE}", "--seed=3"
    )
    try:
        with CountingProxy(sim_url) as proxy:
            config = f"""
workspaces:
  - name: prod
    api_url: {proxy.url}
    token: {TOKEN}
http: {{max_requests_per_minute: {LIMIT}}}
collection: {{min_interval: 0s}}
"""
            exporter, url = start_exporter(tmp_path, config)
            try:
                yield url, proxy
            finally:
                exporter.stop()
    finally:
        sim.stop()


def samples(page: str, family: str) -> list[tuple[str, float]]:
    """(labels, value) of each sample of `family` in a text exposition."""
    out = []
    for text in page.splitlines():
        if text.startswith(family + "{"):
            labels, value = text[len(family) :].rsplit(" ", 1)
            out.append((labels, float(value)))
    return out


def busiest_window(arrivals: list[float]) -> int:
    """The most requests that arrived within any 60 s."""
    times = sorted(arrivals)
    return max((sum(1 for t in times[i:] if t < start + 60.0) for i, start in enumerate(times)),
               default=0)  # fmt: skip


def test_a_budget_of_120_a_minute_holds_and_every_scrape_shows_all_workflows(
    budgeted_exporter: tuple[str, CountingProxy],
) -> None:
    url, proxy = budgeted_exporter
    start = time.monotonic()
    ups: list[int] = []
    for number in range(SCRAPES):
        # The scrape cadence (as Prometheus's): the one wait in this test.
        time.sleep(max(0.0, start + number * SCRAPE_EVERY - time.monotonic()))
        status, page = http_get(f"{url}/metrics", timeout=15)
        assert status == 200, page[:500]
        assert samples(page, "onepin_up") == [('{workspace="prod"}', 1.0)], number
        workflows = samples(page, "onepin_workflow_up")
        assert len(workflows) == WORKFLOWS, (number, len(workflows))
        ups.append(sum(int(value) for _labels, value in workflows))
        [(_labels, remaining)] = samples(page, "onepin_exporter_api_budget_remaining")
        assert 0 <= remaining <= LIMIT
    elapsed = time.monotonic() - start
    assert elapsed > 60.0
    assert len(proxy.arrivals) > LIMIT  # it did poll past the first minute's budget
    assert busiest_window(proxy.arrivals) <= LIMIT
    [(_labels, deferred)] = samples(page, "onepin_exporter_api_requests_deferred_total")
    assert deferred > 0  # the budget bound (the cold load alone needs ~630 requests)
    # The workflows refreshed are up, and stay up between the polls the budget allows.
    assert ups[-1] >= ups[1] > 0, ups
    print(f"requests {len(proxy.arrivals)} in {elapsed:.0f}s, busiest 60 s window "
          f"{busiest_window(proxy.arrivals)}, workflows up per scrape {ups}")  # fmt: skip
