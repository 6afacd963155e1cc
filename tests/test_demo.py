"""`onepin-exporter --demo`: a newcomer sees runs progress, with no account and no config."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from tests.helpers import samples
from tests.procs import Process, http_get, wait_for


def finished_steps(metrics_url: str) -> dict[str, float]:
    _, text = http_get(metrics_url)
    return {s.labels["run_id"]: s.value for s in samples(text)
            if s.name == "onepin_run_finished_steps"}  # fmt: skip


def test_demo_shows_runs_progressing_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    demo = Process(
        "demo",
        [sys.executable, "-m", "exporter", "--demo", "--web.listen-address=127.0.0.1:0"],
        tmp_path,
    )
    try:
        metrics_url = demo.wait_output(r"metrics:\s+(http://\S+/metrics)", timeout=30).group(1)
        api_url = demo.wait_output(r"simulated OnePin API:\s+(http://\S+)").group(1)
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
