"""A reproducible demo scrape: the same bytes on every run of the same code.

Starts the simulator on a manual clock with a fixed seed and the exporter of this checkout
against it, scrapes /metrics a few times with the simulated clock advanced in between, and
prints the last exposition without the lines that depend on real time or on the process.
Two checkouts that render metrics the same way print the same bytes, so

    python scripts/demo_scrape.py > after.prom && diff before.prom after.prom

shows every change a refactoring made to what Prometheus sees.

Usage: python scripts/demo_scrape.py [--openmetrics]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
TOKEN = "op_live_GoldenGoldenGoldenGoldenGolden12"  # noqa: S105 (the simulator's, not a secret)
SEED = 7
WORKFLOWS = 12
# Simulated seconds to move the clock before each scrape after the first: a few seconds (runs
# step on), minutes (runs finish, new ones start), then an hour (many runs come and go between
# two polls, which the run ledger must count).
ADVANCES = (0.0, 45.0, 300.0, 3600.0)
WAIT_SECONDS = 60.0
OPENMETRICS = "application/openmetrics-text; version=1.0.0"

# Sample names left out, each with why: they measure the real machine, not the simulated world.
# HELP/TYPE lines stay, so a family that disappears or changes type still shows in a diff.
VOLATILE: tuple[tuple[str, str], ...] = (
    (r"process_\w+", "the exporter process's CPU, memory, file descriptors and start time"),
    (r"python_\w+", "garbage collector counts and the interpreter of whoever runs this"),
    (r"onepin_exporter_collect_duration_seconds", "real time a poll took"),
    (r"onepin_exporter_poll_deadline_seconds", "real time left of the deadline at poll start"),
    (
        r"onepin_exporter_config_last_reload_success_timestamp_seconds",
        "wall clock when the exporter started",
    ),
    (
        r"onepin_api_request_duration_seconds_(?:bucket|sum)",
        "real latency of API requests (their _count, the number of requests, stays)",
    ),
)
_VOLATILE = re.compile("(?:" + "|".join(pattern for pattern, _ in VOLATILE) + ")(?=[{ ])")


def stable_lines(exposition: str) -> str:
    """The exposition without the samples of VOLATILE (comments and other samples unchanged)."""
    kept = [line for line in exposition.splitlines() if not _VOLATILE.match(line)]
    return "".join(f"{line}\n" for line in kept)


def wait_for_line(proc: subprocess.Popen[bytes], log: Path, pattern: str) -> str:
    """The first group of `pattern` in the process's log, waiting at most WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)  # polling a log file for a line; the wait is bounded above
    sys.exit(f"demo_scrape: no {pattern!r} in {log}:\n{log.read_text(errors='replace')[-2000:]}")


def wait_until_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    """Wait (at most WAIT_SECONDS) until `url` answers 200."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            request(url)
            return
        except OSError:  # refused, or 503 (an HTTPError is an OSError) until the poll is done
            time.sleep(0.05)  # bounded above
    sys.exit(f"demo_scrape: {url} did not answer 200 within {WAIT_SECONDS:g}s")


def start(
    name: str, args: list[str], workdir: Path, started: list[subprocess.Popen[bytes]]
) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"{name}.log"
    out: IO[bytes] = log.open("wb")
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        # This checkout's package, whatever the interpreter has installed.
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    started.append(proc)
    return proc, log


def request(url: str, method: str = "GET", accept: str | None = None) -> str:
    headers = {"Accept": accept} if accept else {}
    req = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 (local http)
    with urllib.request.urlopen(req, timeout=WAIT_SECONDS) as response:  # noqa: S310
        body: bytes = response.read()
    return body.decode()


def scrape(workdir: Path, accept: str | None) -> str:
    started: list[subprocess.Popen[bytes]] = []
    try:
        simulator, log = start(
            "simulator",
            ["exporter.simulator", "--clock=manual", f"--seed={SEED}",
             f"--workflows={WORKFLOWS}", "--listen=127.0.0.1:0", f"--token={TOKEN}"],
            workdir,
            started,
        )  # fmt: skip
        api_url = wait_for_line(simulator, log, r"listening on (http://\S+)")
        config = workdir / "exporter.yaml"
        config.write_text(
            f"workspaces:\n  - {{name: golden, api_url: '{api_url}', token: {TOKEN}}}\n"
            # Every scrape polls: what is exported follows the simulated clock only.
            "collection: {min_interval: 0s}\n"
        )
        exporter, log = start(
            "exporter",
            ["exporter", f"--config.file={config}", "--web.listen-address=127.0.0.1:0"],
            workdir,
            started,
        )
        metrics_url = wait_for_line(exporter, log, r"msg=listening address=(http://\S+)")
        # The exporter polls once as it starts. Until that poll is done, a scrape would share it
        # instead of polling anew, and the API's request counts would depend on the timing.
        wait_until_ready(exporter, f"{metrics_url}/-/ready")
        exposition = ""
        for seconds in ADVANCES:
            request(f"{api_url}/_sim/advance?seconds={seconds:g}", method="POST")
            exposition = request(f"{metrics_url}/metrics", accept=accept)
        return exposition
    finally:
        stop_all(started)


def stop_all(started: list[subprocess.Popen[bytes]]) -> None:
    for proc in reversed(started):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--openmetrics", action="store_true", help="ask for OpenMetrics instead of text 0.0.4"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="demo-scrape-") as tmp:
        exposition = scrape(Path(tmp), OPENMETRICS if args.openmetrics else None)
    sys.stdout.write(stable_lines(exposition))
    return 0


if __name__ == "__main__":
    sys.exit(main())
