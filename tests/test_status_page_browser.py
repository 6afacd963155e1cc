"""The status page as a person sees it: rendered by real headless Chromium (Debian's `chromium`),
no JavaScript involved, asserted on the DOM Chromium built, and photographed.

    ONEPIN_STATUS_SCREENSHOT=docs/status-page.png python -m pytest tests/test_status_page_browser.py

regenerates the screenshot README.md shows (the test otherwise writes it to a temporary path).
Skipped without chromium, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from exporter.config import parse_config
from exporter.demo import DEMO_SPEED, DEMO_TOKEN, DEMO_WORKFLOWS
from exporter.simulator import RunningSimulator, SimulatorConfig
from exporter.simulator.clock import ManualClock
from tests.background import BackgroundExporter
from tests.dom import Element, parse
from tests.fakeapi import TOKEN, FakeOnePin, standard_workspace
from tests.faultserver import FaultServer, Reply, on_path
from tests.helpers import require_binary
from tests.procs import Process, wait_for

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_TIMEOUT = 120.0
SCREENSHOT_ENV = "ONEPIN_STATUS_SCREENSHOT"
# The run status of nightly-etl's active run answers 500, with the token echoed in the message.
BROKEN = "nightly-etl"
BROKEN_PATH = "/r-run-2/status"
BROKEN_MESSAGE = f"run store unavailable for key {TOKEN}"


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_binary("chromium")


def browse(chromium: str, url: str, workdir: Path, *flags: str) -> str:
    """Chromium's stdout for `url`, headless, with a profile of its own under `workdir`."""
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={workdir / 'chromium-profile'}", *flags, url],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def dom(chromium: str, url: str, workdir: Path) -> Element:
    return parse(browse(chromium, url, workdir, "--dump-dom"))


def workspace_rows(page: Element) -> dict[str, list[str]]:
    """Each workspace row's cell texts, by workspace name."""
    table = page.find("table", id="workspaces")
    rows = [[td.text() for td in tr.find_all("td")] for tr in table.find_all("tr", "workspace")]
    return {cells[0]: cells for cells in rows}


def workflow_rows(page: Element, kind: str) -> list[list[str]]:
    tables = page.find_all("table", f"{kind}")
    return [[td.text() for td in tr.find_all("td")] for t in tables for tr in t.find_all("tr")[1:]]


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
        return body


# --- the demo, as `onepin-exporter --demo` serves it ------------------------------------------


def test_the_demo_status_page_in_chromium(chromium: str, tmp_path: Path) -> None:
    demo = Process(
        "demo", [sys.executable, "-m", "exporter", "--demo", "--web.listen-address=127.0.0.1:0"],
        tmp_path,
    )  # fmt: skip
    try:
        url = demo.wait_output(r"exporter: +(http://\S+?)/?\n").group(1)
        wait_for("the first poll", lambda: http_get(f"{url}/-/ready") == b"OK\n", timeout=60)
        page = dom(chromium, f"{url}/", tmp_path)
    finally:
        demo.stop()
    rows = workspace_rows(page)
    assert set(rows) == {"demo"}
    assert rows["demo"][2] == "up" and rows["demo"][3] == f"{DEMO_WORKFLOWS} of 12 refreshed"
    assert "UTC" in rows["demo"][4] and "ago)" in rows["demo"][4]  # when, and how long ago
    assert rows["demo"][6].startswith("200: ")  # API calls by status code
    healthy = workflow_rows(page, "healthy")
    assert len(healthy) == DEMO_WORKFLOWS
    bars = page.find_all("progress")
    assert bars, "the demo has active runs: each with a progress bar of its steps"
    for bar in bars:
        assert 0 <= int(bar.attrs["value"]) <= int(bar.attrs["max"])
    assert DEMO_TOKEN not in json.dumps(page.text())
    scrape = page.find("pre", id="scrape-config").text()
    assert "job_name: onepin" in scrape and "127.0.0.1:" in scrape


# --- a broken workflow beside the demo simulator: what an operator needs to see ---------------


@contextmanager
def demo_and_broken() -> Iterator[str]:
    """The exporter on two workspaces: the demo's simulator (its data standing still, from
    now), and a fake API where one workflow's run status fails from the second poll on
    (so it is stale, with the data of the first); polled twice."""
    clock = ManualClock(time.time())
    sim = RunningSimulator(
        SimulatorConfig(token=DEMO_TOKEN, workflows=DEMO_WORKFLOWS, speed=DEMO_SPEED, clock=clock)
    )
    error = json.dumps({"error": {"code": "SERVER_ERROR", "message": BROKEN_MESSAGE}})
    fault = FaultServer(FakeOnePin(standard_workspace()))
    with sim, fault:
        config = parse_config(
            f"workspaces:\n"
            f"  - {{name: demo, api_url: '{sim.url}', token: {DEMO_TOKEN}}}\n"
            f"  - {{name: staging, api_url: '{fault.url}', token: {TOKEN}}}\n"
            "http: {max_retries: 0}\ncollection: {min_interval: 0s}\n"
        )
        with BackgroundExporter(config) as running:
            http_get(f"{running.url}/metrics")
            fault.script.append(on_path(BROKEN_PATH, Reply(500, error.encode())))
            http_get(f"{running.url}/metrics")  # the poll the page shows
            yield running.url


def test_a_broken_workflow_is_named_first_with_its_error(chromium: str, tmp_path: Path) -> None:
    shot = tmp_path / "status-page.png"
    with demo_and_broken() as url:
        page = dom(chromium, f"{url}/", tmp_path)
        browse(chromium, f"{url}/", tmp_path, f"--screenshot={shot}", "--window-size=1400,1250")
    rows = workspace_rows(page)
    assert set(rows) == {"demo", "staging"}
    assert rows["demo"][2] == "up" and rows["staging"][2] == "up"
    assert rows["staging"][3] == "8 of 9 refreshed"
    assert "200: " in rows["staging"][6] and "500: 1" in rows["staging"][6]
    failing = workflow_rows(page, "failing")
    assert failing[0][:4] == ["staging", BROKEN, "wf-running", "stale"]
    assert "HTTP 500" in failing[0][4] and "run store unavailable for key" in failing[0][4]
    assert "<redacted>" in failing[0][4]
    assert TOKEN not in page.text() and TOKEN.removeprefix("op_live_") not in page.text()
    assert page.find("p", id="summary").text().endswith(f"{len(failing)} need attention.")
    bars = page.find_all("progress")
    assert len(bars) >= 3  # the simulator's active runs and the fake's
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        shutil.copyfile(shot, REPO / target)
