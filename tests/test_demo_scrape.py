"""scripts/demo_scrape.py prints the same bytes on every run, so that a diff of two checkouts'
scrapes shows only what a change did to the exposition."""

from __future__ import annotations

import subprocess
import sys

from tests.procs import REPO

SCRIPT = REPO / "scripts" / "demo_scrape.py"


def demo_scrape(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_two_runs_print_the_same_scrape() -> None:
    first, second = demo_scrape(), demo_scrape()
    assert first == second
    samples = [line for line in first.splitlines() if not line.startswith("#")]
    # The simulated world is there, with runs counted between scrapes ...
    assert sum(line.startswith("onepin_workflow_info{") for line in samples) == 12
    assert any(
        line.startswith("onepin_workflow_runs_finished_total{") and not line.endswith(" 0.0")
        for line in samples
    )
    # ... and nothing that measures the machine, though its families stay declared.
    assert not [line for line in samples if line.startswith(("process_", "python_"))]
    assert "# TYPE process_cpu_seconds_total counter" in first


def test_openmetrics_on_request() -> None:
    scrape = demo_scrape("--openmetrics")
    assert scrape.endswith("# EOF\n")
    assert "# TYPE onepin_workflow_runs_finished counter" in scrape  # no _total in OpenMetrics
    assert "\nprocess_" not in scrape
