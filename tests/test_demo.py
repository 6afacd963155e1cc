"""`onepin-exporter --demo`: a newcomer sees runs progress, with no account and no config."""

from __future__ import annotations

import html
import json
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.samples import Sample

from exporter.models import KNOWN_PAUSE_REASONS
from exporter.simulator.names import PAUSE_ERRORS
from tests.contract import SDK_EXTRA_LABELS, SDK_RUN_METRICS, SDK_WORKFLOW_METRICS
from tests.helpers import samples, value
from tests.procs import Process, http_get, wait_for


def finished_steps(metrics_url: str) -> dict[str, float]:
    _, text = http_get(metrics_url)
    return {s.labels["run_id"]: s.value for s in samples(text)
            if s.name == "onepin_run_finished_steps"}  # fmt: skip


def start_demo(workdir: Path) -> Process:
    return Process(
        "demo",
        [sys.executable, "-m", "exporter", "--demo", "--web.listen-address=127.0.0.1:0"],
        workdir,
    )


def urls(demo: Process) -> tuple[str, str]:
    """The exporter's metrics URL and the simulated API's, as the demo announces them."""
    metrics_url = demo.wait_output(r"metrics:\s+(http://\S+/metrics)", timeout=30).group(1)
    return metrics_url, demo.wait_output(r"simulated OnePin API:\s+(http://\S+)").group(1)


def test_demo_shows_runs_progressing_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    demo = start_demo(tmp_path)
    try:
        metrics_url, api_url = urls(demo)
        assert api_url.startswith("http://127.0.0.1:")
        first = wait_for("active runs in the demo", lambda: finished_steps(metrics_url), 30)

        def progressed() -> bool:
            now = finished_steps(metrics_url)
            return any(now.get(run, steps) != steps for run, steps in first.items())

        wait_for("a run's onepin_run_finished_steps to change", progressed, timeout=30)
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(timeout=10) == 0
    finally:
        demo.stop()
    assert "Traceback" not in demo.output()


def sdk_metrics_shown(metrics_url: str, run_id: str) -> dict[str, list[Sample]] | None:
    """Every metric of the SDK's fields (tests/contract.py) in one scrape, or None."""
    _, text = http_get(metrics_url)
    found: dict[str, list[Sample]] = {}
    for name in SDK_WORKFLOW_METRICS + SDK_RUN_METRICS:
        found[name] = [s for s in samples(text) if s.name == name]
        if not found[name]:
            return None
    paused = value(text, "onepin_run_pause_reason", run_id=run_id, reason="provider_outage")
    return found if paused == 1 else None


def post_json(url: str, body: dict[str, object]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.load(response)
        return result


def test_demo_shows_every_sdk_metric_with_its_labels_and_the_pause_explanation(
    tmp_path: Path,
) -> None:
    demo = start_demo(tmp_path)
    try:
        metrics_url, api = urls(demo)
        admin = api.split("/api/v1")[0] + "/_sim"
        _, listed = http_get(admin + "/workflows")
        workflow_id = json.loads(listed)[0]["id"]
        # A run paused by a provider outage for a long while (the demo runs 30x real time):
        # the simulator's own automatic pauses are random.
        run = post_json(admin + "/runs", {
            "workflow_id": workflow_id, "outcome": "completed", "duration_seconds": 60,
            "pause_reason": "provider_outage", "pause_seconds": 100_000,
        })["data"]  # fmt: skip
        shown = wait_for(
            "every SDK metric on --demo",
            lambda: sdk_metrics_shown(metrics_url, run["id"]),
            timeout=60,
        )
        base = {"workspace", "workflow_id", "workflow_name"}
        for name in SDK_WORKFLOW_METRICS:
            assert all(s.labels.keys() == base for s in shown[name]), name
        for name in SDK_RUN_METRICS:
            want = base | {"run_id", "run_number"} | SDK_EXTRA_LABELS.get(name, set())
            assert all(s.labels.keys() == want for s in shown[name]), name
        reasons = {s.labels["reason"] for s in shown["onepin_run_pause_reason"]}
        assert set(KNOWN_PAUSE_REASONS) <= reasons
        _, page = http_get(metrics_url.rsplit("/", 1)[0] + "/")
        row = next(line for line in page.splitlines() if "provider_outage" in line)
        assert html.escape(PAUSE_ERRORS["provider_outage"]) in row
    finally:
        demo.stop()
    assert "Traceback" not in demo.output()
