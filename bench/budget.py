"""API budget, speed and cost of the exporter against the simulator, side by side with naive
exporters, at several sizes in one run.

    python bench/budget.py                                  # 1000:200, 1000:600, 5000:1000
    python bench/budget.py --size 1000:200 --size 5000:1000 --size 20000:4000 --churn 0.1

For each size W:A (W workflows, A of them with one long active run; each API answer leaves L ms
after its request came in, the simulator's own time included) it starts the simulator, then
measures, every figure in the same run:

- the cold scrape: a fresh exporter whose first poll has the deadline a 10 s scrape gives it
  (its start-up poll is that poll), scraped at once; its calls are counted until the poll ends;
  then scraped until `onepin_exporter_backlog_workflows` is 0: the polls that took, the calls
  beyond each poll's steady ⌈W/100⌉ + A (the issue's budget: 3 per workflow), peak RSS;
- the start-up poll of an exporter configured as usual (max_duration 60 s), apart;
- warm-up: scrapes until every workflow is up with its details (backlog 0) and the poll
  finished inside its deadline;
- steady polls: wall time against L x ⌈calls/concurrency⌉, calls against ⌈W/100⌉ + A, the
  exporter process's CPU per poll (and per API call), a scrape that reuses the last poll;
- steady polls of a second exporter with `collection.run_nodes: true`: the same minimum plus
  one Get Run Steps per run that finished and per active run whose finished_steps changed (Get
  Run Steps is reported apart in both, node metrics on and off);
- churn polls (--churn SHARE): before each, that share of the active runs finishes and as many
  start (POST /_sim/churn); calls against ⌈W/100⌉ + A + runs finished + workflows with new runs;
- the naive exporters (bench/naive_exporter.py, prometheus_client), each its own process with
  its own CPU: 16 threads, and sequential up to --sequential-max-workflows;
- series and bytes per workflow of each exposition.

Then a per-poll CPU model a·W + b·A fitted over the sizes (least squares; the sizes must not all
have the same W/A), and ratios against the naive exporters: both sides ran on the same machine
at about the same time, so the ratios carry over to other machines far better than the absolute
figures do. The machine, and its load before and after each size, are printed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from exporter.deadline import scrape_deadline
from tests.procs import Process, start_exporter, start_simulator

TOKEN = "op_live_BenchBenchBenchBenchBenchBenchBe"
SCRAPE_TIMEOUT = 10.0
BENCH = Path(__file__).resolve().parent


@dataclass
class Scrape:
    wall: float
    calls: dict[str, int]
    body: bytes  # as sent (gzip)
    cpu: float = 0.0  # the scraped process's CPU seconds during the scrape

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def steps(self) -> int:
        """Get Run Steps calls (node metrics), counted apart from the steady minimum."""
        return self.calls.get("get_run_steps", 0)

    @cached_property
    def text(self) -> str:
        body = gzip.decompress(self.body) if self.body[:2] == b"\x1f\x8b" else self.body
        return body.decode()

    def gauge(self, name: str) -> list[float]:
        return [float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", self.text, re.M)]

    @property
    def workflows_up(self) -> int:
        return sum(1 for v in self.gauge("onepin_workflow_up") if v == 1)

    @property
    def inside_deadline(self) -> bool:
        took, allowed = (
            self.gauge("onepin_exporter_collect_duration_seconds"),
            self.gauge("onepin_exporter_poll_deadline_seconds"),
        )
        return bool(took) and bool(allowed) and took[0] < allowed[0]

    @property
    def series(self) -> int:
        return sum(1 for line in self.text.splitlines() if line and not line.startswith("#"))


@dataclass
class Size:
    w: int
    a: int
    figures: dict[str, Any] = field(default_factory=dict)


def post(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def sim_stats(api: str, reset: bool = False) -> dict[str, int]:
    if reset:
        return dict(post(f"{api}/_sim/stats/reset")["requests"])
    with urllib.request.urlopen(f"{api}/_sim/stats", timeout=60) as response:
        return dict(json.load(response)["requests"])


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory now (VmRSS) or at its peak (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scrape(
    url: str, api: str, pid: int, timeout: float = SCRAPE_TIMEOUT, reset: bool = True
) -> Scrape:
    """One scrape as Prometheus sends it (timeout header, gzip), with the API calls it cost
    (since the last reset of the simulator's counts, when `reset` is False)."""
    if reset:
        sim_stats(api, reset=True)
    request = urllib.request.Request(
        f"{url}/metrics",
        headers={"X-Prometheus-Scrape-Timeout-Seconds": str(timeout), "Accept-Encoding": "gzip"},
    )
    cpu = proc_cpu_seconds(pid)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout + 600) as response:
        body = response.read()
    wall = time.perf_counter() - started
    cpu = proc_cpu_seconds(pid) - cpu
    return Scrape(wall, {k: v for k, v in sim_stats(api).items() if v}, body, cpu)


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=10):
                return
        except OSError:
            time.sleep(0.05)  # polling a process's readiness, not synchronising a test
    raise SystemExit(f"exporter not ready within {timeout:.0f} s")


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    usable = len(os.sched_getaffinity(0))
    return (
        f"{model}, {os.cpu_count()} cores ({usable} usable), {platform.machine()}, "
        f"Python {platform.python_version()}"
    )


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def exporter_config(
    api: str, concurrency: int, max_duration: float, run_nodes: bool = False
) -> str:
    return (
        f"workspaces:\n  - {{name: bench, api_url: '{api}', token: {TOKEN}}}\n"
        f"http: {{max_concurrency: {concurrency}}}\n"
        f"collection: {{min_interval: 1s, max_duration: {max_duration:g}s, "
        f"run_nodes: {str(run_nodes).lower()}}}\n"
    )


def fmt_calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(calls.items()))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def prime(api: str, workflows: int) -> None:
    """Read the simulator's whole catalogue once before any exporter does: the simulator makes
    each workflow's run history on its first read (about 1 ms of its CPU per workflow), which a
    real API has long done; without this, the cold scrape would time that instead."""
    started = time.perf_counter()
    for offset in range(0, workflows, 100):
        request = urllib.request.Request(
            f"{api}/api/v1/workflows?limit=100&offset={offset}&sort=name&order=asc",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=600) as response:
            response.read()
    print(f"simulator primed: its catalogue read once in {time.perf_counter() - started:.1f} s")


def cold_scrape(workdir: Path, api: str, args: argparse.Namespace, size: Size) -> None:
    """A fresh exporter whose first poll gets what a 10 s scrape would give it, scraped at once
    (the scrape joins that poll), then scraped until its backlog is 0: the cold load's calls
    beyond each poll's steady ⌈W/100⌉ + A, and its peak memory."""
    poll = scrape_deadline(str(SCRAPE_TIMEOUT), float("inf")).poll
    steady_calls = math.ceil(size.w / 100) + size.a
    sim_stats(api, reset=True)
    proc, url = start_exporter(workdir, exporter_config(api, args.concurrency, poll))
    # Per scrape: (wall, calls, workflows up, backlog); not the scrapes (an exposition of
    # 20,000 workflows is about 200 MB of text).
    seen: list[tuple[float, int, int, float]] = []
    try:
        first = scrape(url, api, proc.proc.pid, reset=False)
        wait_ready(url, 120)
        first.calls = {k: v for k, v in sim_stats(api).items() if v}  # the whole poll's
        seen.append((first.wall, first.total, first.workflows_up, backlog(first)))
        while seen[-1][3] != 0 and len(seen) <= args.max_warmups:
            time.sleep(1.1)  # past min_interval: the scrape polls
            s = scrape(url, api, proc.proc.pid)
            seen.append((s.wall, s.total, s.workflows_up, backlog(s)))
        peak = proc_rss_mb(proc.proc.pid, "VmHWM")
    finally:
        proc.stop()
    extra = sum(max(0, calls - steady_calls) for _, calls, _, _ in seen)
    polls = len(seen) if seen[-1][3] == 0 else None
    size.figures["cold"] = {
        "wall": first.wall, "calls": first.total, "up": first.workflows_up, "polls": polls,
        "extra_calls": extra, "extra_per_workflow": extra / size.w, "peak_rss_mb": peak,
        "scrapes": seen,
    }  # fmt: skip
    print(
        f"cold scrape ({SCRAPE_TIMEOUT:g} s timeout, its poll {poll:g} s): {first.wall:.2f} s, "
        f"{first.workflows_up}/{size.w} workflows up; its poll made {first.total} calls "
        f"({fmt_calls(first.calls)})"
    )
    print(
        f"cold start: backlog 0 after {polls or 'NOT within'} {len(seen)} poll(s) "
        f"(wall s/calls/up/backlog: {', '.join(f'{w:.1f}/{c}/{u}/{b:g}' for w, c, u, b in seen)}"
        f"); calls beyond the steady {steady_calls} per poll: {extra} "
        f"({extra / size.w:.2f} per workflow; budget 3); peak RSS {peak:.0f} MB"
    )


def backlog(scrape: Scrape) -> float:
    values = scrape.gauge("onepin_exporter_backlog_workflows")
    return values[0] if values else float("nan")


def startup_and_warmup(
    url: str, api: str, pid: int, started: float, size: Size, max_warmups: int
) -> None:
    wait_ready(url, 600)
    took = time.perf_counter() - started
    calls = sim_stats(api)
    print(
        f"start-up poll (max_duration 60 s): {took:.1f} s, {sum(calls.values())} calls "
        f"({fmt_calls({k: v for k, v in calls.items() if v})})"
    )
    warmups: list[Scrape] = []
    while len(warmups) < max_warmups:
        time.sleep(1.1)  # past min_interval: the scrape polls
        warmups.append(scrape(url, api, pid))
        if warmed_up(warmups[-1], size):
            break
    done = warmed_up(warmups[-1], size)
    size.figures["startup"] = {"wall": took, "calls": sum(calls.values())}
    size.figures["warmup"] = {
        "scrapes": len(warmups) if done else None,
        "seconds": took + sum(w.wall + 1.1 for w in warmups),
        "calls": sum(calls.values()) + sum(w.total for w in warmups),
    }
    print(
        f"warm-up: {len(warmups)} scrape(s) until every workflow was up with its details and the "
        f"poll ended inside its deadline{'' if done else ' (NOT reached)'}: "
        + ", ".join(f"{w.wall:.1f}s/{w.total} calls/{w.workflows_up} up" for w in warmups)
    )


def warmed_up(scrape: Scrape, size: Size) -> bool:
    """Every workflow up with all its details (backlog 0), the poll inside its deadline."""
    return scrape.workflows_up == size.w and backlog(scrape) == 0 and scrape.inside_deadline


def steady(url: str, api: str, pid: int, args: argparse.Namespace, size: Size) -> Scrape:
    w, a, lat = size.w, size.a, args.latency_ms / 1000
    minimum = math.ceil(w / 100) + a
    bound = lat * math.ceil(minimum / args.concurrency)
    polls: list[Scrape] = []
    renders: list[Scrape] = []
    for _ in range(args.scrapes):
        time.sleep(1.1)  # past min_interval, so that the next scrape polls
        polls.append(scrape(url, api, pid))
        renders.append(scrape(url, api, pid))  # within min_interval: render only
    # Figures of the complete polls (every workflow up, inside the deadline), when there are:
    # a poll that finishes a warm-up or is cut at its deadline is no steady poll.
    complete = [s for s in polls if s.workflows_up == w and s.inside_deadline]
    polls = complete or polls
    wall = median([s.wall for s in polls])
    cpu = median([s.cpu for s in polls])
    calls = max(s.total for s in polls)
    last = polls[-1]
    size.figures["ours"] = {
        "wall": wall,
        "bound": bound,
        "calls": calls,
        "minimum": minimum,
        "cpu": cpu,
        "cpu_per_call_ms": 1000 * sum(s.cpu for s in polls) / max(1, sum(s.total for s in polls)),
        "render_cpu": median([r.cpu for r in renders]),
        "render_wall": median([r.wall for r in renders]),
        "series": last.series,
        "bytes": len(last.text),
        "gzip_bytes": len(last.body),
        "peak_rss_mb": proc_rss_mb(pid, "VmHWM"),
        "complete": len(complete),
        "steps": max(s.steps for s in polls),
    }
    f = size.figures["ours"]
    print(
        f"steady polls: wall median {wall:.3f} s (bound L x ⌈min/conc⌉ "
        f"{bound:.3f} s, ratio {wall / bound:.2f}); calls {min(s.total for s in polls)}..{calls} "
        f"against ⌈W/100⌉+A = {minimum} (ratio {calls / minimum:.3f}; {fmt_calls(last.calls)}); "
        f"{f['complete']}/{args.scrapes} complete (every workflow up, inside the deadline; "
        f"the figures are theirs); Get Run Steps (node metrics, run_nodes off: one per run "
        f"that finished in the poll) at most {f['steps']} of them"
    )
    print(
        f"  CPU per poll {cpu:.3f} s = {f['cpu_per_call_ms']:.3f} ms per API call; a scrape "
        f"reusing the last poll {f['render_cpu']:.3f} s CPU, {f['render_wall']:.3f} s; peak "
        f"RSS {f['peak_rss_mb']:.0f} MB; {f['series']} series ({f['series'] / w:.1f} per "
        f"workflow), {f['bytes'] / w:.0f} B per workflow ({f['gzip_bytes'] / w:.0f} gzipped)"
    )
    return last


def node_steady(workdir: Path, api: str, args: argparse.Namespace, size: Size) -> None:
    """Calls per steady poll of an exporter with collection.run_nodes on: the steady minimum,
    plus one Get Run Steps per run that finished in the poll and per active run whose
    finished_steps changed since the last poll (every active run at its first poll)."""
    proc, url = start_exporter(workdir, exporter_config(api, args.concurrency, 60, run_nodes=True))
    try:
        wait_ready(url, 600)
        polls = []
        for _ in range(args.scrapes):
            time.sleep(1.1)  # past min_interval, so that the next scrape polls
            polls.append(scrape(url, api, proc.proc.pid))
    finally:
        proc.stop()
    minimum = math.ceil(size.w / 100) + size.a
    rest = [s.total - s.steps for s in polls]
    steps = [s.steps for s in polls]
    size.figures["run_nodes"] = {"calls": max(rest), "steps": max(steps), "minimum": minimum}
    print(
        f"steady polls with run_nodes on: {min(rest)}..{max(rest)} calls against ⌈W/100⌉+A = "
        f"{minimum}, plus Get Run Steps {min(steps)}..{max(steps)} per poll (one per run that "
        f"finished and per active run that moved on; off: see the steady polls above)"
    )


def churn(url: str, api: str, pid: int, args: argparse.Namespace, size: Size) -> None:
    rows = []
    for _ in range(args.churn_polls):
        changed = post(f"{api}/_sim/churn", {"share": args.churn})
        time.sleep(1.1)  # the runs end at the next second; past min_interval
        poll = scrape(url, api, pid)
        finished, started = len(changed["finished"]), len(changed["started"])
        minimum = math.ceil(size.w / 100) + size.a + finished + started
        rows.append((poll, finished, started, minimum))
    # Get Run Steps apart: one per run finished, on top of the churn minimum (node metrics).
    # The worst of the complete polls when there are: a poll cut before its work was done may
    # have made fewer calls than it would have.
    complete = [r for r in rows if r[0].workflows_up == size.w and r[0].inside_deadline]
    worst = max(complete or rows, key=lambda r: (r[0].total - r[0].steps) / r[3])
    size.figures["churn"] = {
        "share": args.churn,
        "finished": worst[1],
        "started": worst[2],
        "calls": worst[0].total - worst[0].steps,
        "steps": worst[0].steps,
        "minimum": worst[3],
        "cpu": median([r[0].cpu for r in rows]),
        "wall": median([r[0].wall for r in rows]),
        "complete": len(complete),
    }
    c = size.figures["churn"]
    limit = 1.1 * c["minimum"] + 2
    if c["calls"] > limit:
        verdict = "MISSED"
    elif complete:
        verdict = "met"
    else:  # fewer calls than the minimum, or about: the poll was cut before its work was done
        verdict = "not judged, the poll was incomplete"
    print(
        f"churn {args.churn:.0%} ({args.churn_polls} poll(s); {c['finished']} runs finished, "
        f"{c['started']} workflows with a new run per poll): worst {c['calls']} calls against "
        f"the churn minimum {c['minimum']} (ratio {c['calls'] / c['minimum']:.3f}; limit "
        f"1.1 x min + 2 = {limit:.0f}: {verdict}; plus {c['steps']} Get Run Steps; "
        f"{fmt_calls(worst[0].calls)}); CPU per poll {c['cpu']:.3f} s, wall {c['wall']:.3f} s; "
        f"{c['complete']}/{len(rows)} complete"
    )


def naive(workdir: Path, api: str, threads: int, scrapes: int, size: Size) -> None:
    name = "naive16" if threads > 1 else "sequential"
    proc = Process(
        f"naive-{threads}",
        [sys.executable, str(BENCH / "naive_exporter.py"), f"--api-url={api}",
         f"--threads={threads}"],
        workdir,
        env={"ONEPIN_TOKEN": TOKEN},
    )  # fmt: skip
    try:
        url = proc.wait_output(r"listening on (http://\S+)").group(1)
        runs = [scrape(url, api, proc.proc.pid, timeout=600) for _ in range(scrapes)]
        rss = proc_rss_mb(proc.proc.pid, "VmHWM")
    finally:
        proc.stop()
    last = runs[-1]
    size.figures[name] = {
        "wall": median([s.wall for s in runs]),
        "calls": max(s.total for s in runs),
        "cpu": median([s.cpu for s in runs]),
        "series": last.series,
        "bytes": len(last.text),
        "peak_rss_mb": rss,
    }
    f = size.figures[name]
    print(
        f"naive exporter, {threads} thread{'s' if threads > 1 else ''} (own process, "
        f"{scrapes} scrape{'s' if scrapes > 1 else ''}): wall {f['wall']:.2f} s, "
        f"{f['calls']} calls, CPU {f['cpu']:.3f} s per scrape, peak RSS {rss:.0f} MB, "
        f"{f['series'] / size.w:.1f} series and "
        f"{f['bytes'] / size.w:.0f} B per workflow"
    )


def measure(size: Size, args: argparse.Namespace) -> None:
    print(f"\n== W={size.w} A={size.a} L={args.latency_ms:g} ms ({load()})")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim, api = start_simulator(
            workdir, TOKEN, f"--workflows={size.w}", f"--active-runs={size.a}",
            f"--latency-ms={args.latency_ms}", "--seed=1",
        )  # fmt: skip
        exporter: Process | None = None
        try:
            prime(api, size.w)
            if not args.no_cold:
                cold_scrape(workdir, api, args, size)
            if args.cold_only:
                return
            sim_stats(api, reset=True)
            exporter, url = start_exporter(workdir, exporter_config(api, args.concurrency, 60))
            started = time.perf_counter()  # the start-up poll starts as the exporter listens
            pid = exporter.proc.pid
            startup_and_warmup(url, api, pid, started, size, args.max_warmups)
            steady(url, api, pid, args, size)
            if args.churn > 0:
                churn(url, api, pid, args, size)
            exporter.stop()
            exporter = None
            node_steady(workdir, api, args, size)
            if not args.no_baseline:
                naive(workdir, api, 16, args.naive_scrapes, size)
                if size.w <= args.sequential_max_workflows:
                    naive(workdir, api, 1, 1, size)
        finally:
            if exporter is not None:
                exporter.stop()
            sim.stop()
    print(f"   ({load()})")


def fit(points: Sequence[tuple[int, int, float]]) -> tuple[float, float] | None:
    """Least squares c ≈ a·W + b·A (closed form of the 2x2 normal equations: no numpy here).
    None when the sizes cannot tell a from b (all the same W/A)."""
    sww = sum(w * w for w, _, _ in points)
    saa = sum(a * a for _, a, _ in points)
    swa = sum(w * a for w, a, _ in points)
    swc = sum(w * c for w, _, c in points)
    sac = sum(a * c for _, a, c in points)
    det = sww * saa - swa * swa
    if len(points) < 2 or abs(det) <= 1e-9 * sww * saa:
        return None
    return (swc * saa - sac * swa) / det, (sac * sww - swc * swa) / det


def report_model(sizes: Sequence[Size], who: str, label: str) -> None:
    points = [(s.w, s.a, s.figures[who]["cpu"]) for s in sizes if who in s.figures]
    model = fit(points) if len(points) >= 3 else None
    if model is None:
        print(f"CPU model ({label}): needs 3 sizes or more, not all with the same W/A")
        return
    a, b = model
    residuals = ", ".join(f"{w}:{act} {c:.2f}s/{a * w + b * act:.2f}s" for w, act, c in points)
    print(
        f"CPU per poll ({label}) ≈ {1000 * a:.3f} ms x W + {1000 * b:.3f} ms x A "
        f"(measured/model: {residuals})"
    )


def report_ratios(sizes: Sequence[Size]) -> None:
    print("\nours / naive, measured side by side (below 1: ours costs less)")
    print("W:A         vs          wall     calls    CPU/scrape  series/wf  bytes/wf")
    for s in sizes:
        ours = s.figures["ours"]
        for name in ("naive16", "sequential"):
            peer = s.figures.get(name)
            if peer is None:
                continue
            print(
                f"{s.w}:{s.a:<8} {name:<11} {ours['wall'] / peer['wall']:7.3f} "
                f"{ours['calls'] / peer['calls']:8.3f} {ours['cpu'] / peer['cpu']:10.3f} "
                f"{ours['series'] / peer['series']:10.2f} {ours['bytes'] / peer['bytes']:9.2f}"
            )


def size_arg(text: str) -> Size:
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if match is None or int(match[2]) > int(match[1]) or int(match[1]) < 1:
        raise argparse.ArgumentTypeError(f"expected W:A with A <= W, got {text!r}")
    return Size(int(match[1]), int(match[2]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add: Callable[..., Any] = parser.add_argument
    add(
        "--size",
        type=size_arg,
        action="append",
        metavar="W:A",
        help="workflows:active runs, repeatable (default 1000:200 1000:600 5000:1000)",
    )
    add("--workflows", type=int, metavar="W", help="with --active-runs: one more size W:A")
    add("--active-runs", type=int, metavar="A")
    add("--latency-ms", type=float, default=20.0)
    add("--concurrency", type=int, default=16, help="the exporter's http.max_concurrency")
    add("--scrapes", type=int, default=5, help="steady polls per size")
    add("--max-warmups", type=int, default=40, help="scrapes to wait for a complete poll")
    add(
        "--churn",
        type=float,
        default=0.1,
        metavar="SHARE",
        help="share of active runs that finish (and as many start) before each churn poll; 0: off",
    )
    add("--churn-polls", type=int, default=3)
    add("--naive-scrapes", type=int, default=2)
    add(
        "--sequential-max-workflows",
        type=int,
        default=1000,
        help="run the sequential naive exporter only up to this size (≈ 28 s per 1000)",
    )
    add("--no-baseline", action="store_true", help="no naive exporters")
    add("--cold-only", action="store_true", help="only the cold start (first scrape, backlog)")
    add("--no-cold", action="store_true", help="no cold start (it can take many polls)")
    add("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)  # fmt: skip
    if not 0 <= args.churn <= 1:
        parser.error("--churn must be a share from 0 to 1")
    if (args.workflows is None) != (args.active_runs is None):
        parser.error("--workflows and --active-runs go together")
    if args.workflows is not None:
        try:
            args.size = [*(args.size or []), size_arg(f"{args.workflows}:{args.active_runs}")]
        except argparse.ArgumentTypeError as exc:
            parser.error(f"--workflows/--active-runs: {exc}")
    sizes: list[Size] = args.size or [Size(1000, 200), Size(1000, 600), Size(5000, 1000)]
    print(
        f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"L={args.latency_ms:g} ms, http.max_concurrency={args.concurrency}, scrape timeout "
        f"{SCRAPE_TIMEOUT:g} s"
    )
    for size in sizes:
        measure(size, args)
        if args.json:  # after each size: a long run that fails later keeps what it measured
            args.json.write_text(
                json.dumps({"machine": machine(), "sizes": [vars(s) for s in sizes]}, indent=1)
            )
    print()
    report_model(sizes, "ours", "ours, poll + render + gzip")
    report_model(sizes, "naive16", "naive, 16 threads")
    if not args.no_baseline:
        report_ratios(sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
