"""Soak: the exporter scraped for minutes while the API's faults come and go.

Real processes (tests/procs.py): the simulator at 60x speed, so runs start and finish during the
soak, and the exporter against it. Two scrapers, each on its own thread with its own
`X-Prometheus-Scrape-Timeout-Seconds`, scrape `/metrics` every second while `/_sim/faults` turns
5xx answers, latency and a rate limit on and off. At the end:
- every scrape answered 200, in time;
- resident memory, open file descriptors and threads stayed flat after the warm-up;
- every run that reached a terminal status after the exporter's first poll is in
  `onepin_workflow_runs_finished_total` exactly once (ground truth: the simulator's List Runs).

About two minutes; `ONEPIN_SOAK_SECONDS` changes that. Run with `-s` to see the figures.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import samples, series, value
from tests.procs import Process, start_exporter, start_simulator, wait_for

pytestmark = pytest.mark.soak

TOKEN = "op_live_SoakSoakSoakSoakSoakSoakSoakSo"
SOAK_SECONDS = float(os.environ.get("ONEPIN_SOAK_SECONDS", "120"))
# Simulated seconds per second: runs take 45 s to 8 min of simulated time, the busiest workflows
# start one every 3 to 15 min. At 30x an outage of a minute (a rate limit's Retry-After) is 30
# minutes of runs, still within the 20 newest runs the exporter lists.
SPEED = 30
WORKFLOWS = 12
SCRAPE_TIMEOUTS = (3.0, 5.0)  # seconds, one per scraper
TERMINAL = ("completed", "failed", "cancelled")
# After the warm-up, what the process may gain by the end of the soak.
RSS_GROWTH_MAX = 25 * 1024 * 1024
FD_GROWTH_MAX = 8
THREAD_GROWTH_MAX = 0
# The faults, in turn, each for an equal slice of the soak; "clean" slices let it recover.
PHASES: list[tuple[str, dict[str, Any]]] = [
    ("warm-up", {}),
    ("5xx 30%", {"error_rate": 0.3}),
    ("clean", {}),
    ("latency 1.5s", {"latency_ms": 1500}),
    ("clean", {}),
    ("rate limit 20/min", {"rate_limit_per_min": 20}),
    ("clean", {}),
    ("5xx 50% + latency 0.3s", {"error_rate": 0.5, "latency_ms": 300}),
    ("clean", {}),
]
NO_FAULTS = {"latency_ms": 0, "error_rate": 0.0, "rate_limit_per_min": None}


# --- talking to the simulator ---------------------------------------------------------------


def http(url: str, body: Any = None, token: str | None = None, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def set_faults(api: str, faults: dict[str, Any]) -> None:
    applied = http(f"{api}/_sim/faults", {**NO_FAULTS, **faults})
    for key, wanted in {**NO_FAULTS, **faults}.items():
        assert applied[key] == wanted, f"simulator did not take {key}={wanted}: {applied}"


def unix(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def sim_now(api: str) -> int:
    """The simulator's clock, from a response's meta.timestamp (faults must be off)."""
    return unix(http(f"{api}/api/v1/workflows?limit=1", token=TOKEN)["meta"]["timestamp"])


def finished_runs(api: str) -> dict[str, list[tuple[str, int]]]:
    """(terminal status, completed_at) of every run of every workflow, by workflow id."""
    listed = http(f"{api}/api/v1/workflows?limit=100", token=TOKEN)["data"]
    out: dict[str, list[tuple[str, int]]] = {}
    for wf in listed:
        runs: list[tuple[str, int]] = []
        offset = 0
        while True:
            page = http(
                f"{api}/api/v1/workflows/{wf['id']}/runs?limit=100&offset={offset}", token=TOKEN
            )["data"]
            if not page:
                break
            offset += len(page)
            runs += [
                (r["status"], unix(r["completed_at"])) for r in page if r["status"] in TERMINAL
            ]
        out[wf["id"]] = runs
    return out


# --- the exporter process, from outside -------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    rss: int
    fds: int
    threads: int


def usage(pid: int) -> Usage:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return Usage(rss_kb * 1024, fds, threads)


def scrape(url: str, timeout: float) -> tuple[int, float, str]:
    request = urllib.request.Request(
        f"{url}/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": f"{timeout:g}"}
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout + 5) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, ""
    except (OSError, ValueError) as exc:  # refused, reset, timed out, cut short
        status, text = 0, repr(exc)
    return status, time.monotonic() - started, text


@dataclass
class Scraper:
    """Scrapes every second until stopped, counting what a Prometheus would count as failures."""

    url: str
    timeout: float
    stop: threading.Event
    scrapes: int = 0
    errors: list[str] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    slowest: float = 0.0

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            status, elapsed, text = scrape(self.url, self.timeout)
            self.scrapes += 1
            self.slowest = max(self.slowest, elapsed)
            if status != 200:
                self.errors.append(f"{status}: {text[:200]}")
            elif elapsed >= self.timeout:
                self.late.append(round(elapsed, 2))
            next_at += 1.0
            self.stop.wait(max(0.0, next_at - time.monotonic()))  # pacing, not synchronisation


def list_requests(text: str) -> float:
    return sum(
        s.value for s in series(text, "onepin_api_requests_total", endpoint="list_workflows")
    )


def all_up(text: str) -> bool:
    ups = [s.value for s in series(text, "onepin_workflow_up")]
    return value(text, "onepin_up") == 1 and len(ups) == WORKFLOWS and all(u == 1 for u in ups)


# --- the soak ------------------------------------------------------------------------------------


def test_soak_under_faults(tmp_path: Path) -> None:
    sim, api = start_simulator(tmp_path, TOKEN, f"--workflows={WORKFLOWS}", f"--speed={SPEED}",
                               "--seed=11")  # fmt: skip
    exporter: Process | None = None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        before_first_poll = sim_now(api)
        exporter, url = start_exporter(
            tmp_path,
            f"workspaces:\n  - {{name: soak, api_url: '{api}', token: {TOKEN}}}\n"
            "http: {timeout: 5s, max_retries: 2, max_concurrency: 8}\n"
            "collection: {min_interval: 1s, stale_after: 5m, max_duration: 10s}\n",
        )
        pid = exporter.proc.pid
        wait_for("every workflow up", lambda: all_up(scrape(url, 5.0)[2]), timeout=60)
        after_first_poll = sim_now(api)

        scrapers = [Scraper(url, t, stop) for t in SCRAPE_TIMEOUTS]
        threads = [threading.Thread(target=s.run, name=f"scraper-{s.timeout:g}s") for s in scrapers]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        slice_ = SOAK_SECONDS / len(PHASES)
        warm: Usage | None = None
        for i, (name, faults) in enumerate(PHASES):
            set_faults(api, faults)
            print(f"[{time.monotonic() - started:6.1f}s] {name}")
            end = started + (i + 1) * slice_
            while time.monotonic() < end:
                assert exporter.proc.poll() is None, f"exporter died:\n{exporter.output()[-3000:]}"
                stop.wait(min(1.0, max(0.0, end - time.monotonic())))
            if warm is None:
                warm = usage(pid)
        stop.set()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive(), f"{thread.name} is stuck"
        set_faults(api, {})
        end_usage = usage(pid)
        assert warm is not None

        # A final poll that starts after `settled`, with every workflow refreshed.
        settled = sim_now(api)
        seen = list_requests(scrape(url, 5.0)[2])

        def final() -> str | None:
            status, _, text = scrape(url, 5.0)
            return text if status == 200 and list_requests(text) > seen and all_up(text) else None

        # Up to a minute when the rate limit's Retry-After is still running.
        text = wait_for("a complete poll after the faults", final, timeout=90)
        after_final_poll = sim_now(api)
        truth = finished_runs(api)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        if exporter is not None:
            exporter.stop()
        sim.stop()

    # --- figures ---
    counted: Counter[tuple[str, str]] = Counter()
    for sample in samples(text):
        if sample.name == "onepin_workflow_runs_finished_total":
            counted[(sample.labels["workflow_id"], sample.labels["status"])] += int(sample.value)
    must: Counter[tuple[str, str]] = Counter()
    either: Counter[tuple[str, str]] = Counter()  # finished while the exporter's poll was running
    for wid, runs in truth.items():
        for status, completed in runs:
            if after_first_poll < completed <= settled:
                must[(wid, status)] += 1
            elif before_first_poll < completed <= after_first_poll or (
                settled < completed <= after_final_poll
            ):
                either[(wid, status)] += 1
    print(f"soak {SOAK_SECONDS:.0f}s at {SPEED}x, {WORKFLOWS} workflows")
    for s in scrapers:
        print(
            f"scraper {s.timeout:g}s: {s.scrapes} scrapes, {len(s.errors)} errors, "
            f"{len(s.late)} late {s.late[:10]}, slowest {s.slowest:.2f}s"
        )
    print(f"RSS {warm.rss / 2**20:.1f} MiB after warm-up -> {end_usage.rss / 2**20:.1f} MiB")
    print(f"fds {warm.fds} -> {end_usage.fds}, threads {warm.threads} -> {end_usage.threads}")
    print(
        f"runs finished after the first poll: {sum(must.values())} certain + "
        f"{sum(either.values())} at the edges; exporter counted {sum(counted.values())}"
    )

    # --- verdict: every problem at once ---
    problems = []
    for s in scrapers:
        if s.errors:
            problems.append(f"scraper {s.timeout:g}s: {len(s.errors)} failed: {s.errors[:3]}")
        if s.late:
            problems.append(f"scraper {s.timeout:g}s: {len(s.late)} past the timeout: {s.late}")
        if s.scrapes < SOAK_SECONDS * 0.5:
            problems.append(f"scraper {s.timeout:g}s: only {s.scrapes} scrapes")
    if end_usage.rss - warm.rss > RSS_GROWTH_MAX:
        problems.append(f"RSS grew {(end_usage.rss - warm.rss) / 2**20:.1f} MiB after warm-up")
    if end_usage.fds - warm.fds > FD_GROWTH_MAX:
        problems.append(f"open fds grew from {warm.fds} to {end_usage.fds}")
    if end_usage.threads - warm.threads > THREAD_GROWTH_MAX:
        problems.append(f"threads grew from {warm.threads} to {end_usage.threads}")
    if sum(must.values()) < WORKFLOWS:
        problems.append(f"only {sum(must.values())} runs finished: speed up the simulator")
    for key in sorted(set(must) | set(either) | set(counted)):
        got = counted[key]
        if not must[key] <= got <= must[key] + either[key]:
            problems.append(
                f"workflow {key[0]} {key[1]}: exporter counted {got}, simulator says "
                f"{must[key]} (+{either[key]} at the edges)"
            )
    assert "Traceback" not in exporter.output(), exporter.output()[-3000:]
    assert not problems, "\n".join(problems)
