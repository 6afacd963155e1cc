"""Throughput of the simulator's Get Run Status endpoint under concurrent keep-alive load.

Starts ``onepin-simulator`` as a subprocess (by default ``--latency-ms=20 --workflows=1000
--active-runs=200``), finds its active runs through the API, then drives Get Run Status from
64 concurrent keep-alive connections for a fixed time, with ``wrk`` when it is on PATH (Debian:
``apt-get install -y wrk``), else with an aiohttp client in a separate process. Prints the
requests per second.

    python bench/simulator_throughput.py [--duration 10] [--connections 64] [--tool auto]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "op_live_BenchBenchBenchBenchBenchBench12"
TARGET_RPS = 2000.0
START_TIMEOUT = 60.0


def start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable,
        "-m",
        "exporter.simulator",
        "--listen=127.0.0.1:0",
        f"--token={TOKEN}",
        f"--latency-ms={args.latency_ms}",
        f"--workflows={args.workflows}",
        f"--active-runs={args.active_runs}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    match = re.search(r"listening on (http://\S+)", line)
    if match is None:
        process.kill()
        raise SystemExit(f"simulator did not start within {START_TIMEOUT:.0f} s (got {line!r})")
    return process, match.group(1)


def stop_simulator(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def active_run_paths(url: str) -> list[str]:
    """Get Run Status paths of every running run, found the way a client would."""
    paths: list[str] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        offset, total = 0, 1
        while offset < total:
            page = client.get("/api/v1/workflows", params={"offset": offset, "limit": 100})
            page.raise_for_status()
            body = page.json()
            total = body["pagination"]["total"]
            offset += len(body["data"]) or total
            for workflow in body["data"]:
                if workflow["run_status_counts"]["running"] == 0:
                    continue
                runs = client.get(
                    f"/api/v1/workflows/{workflow['id']}/runs",
                    params={"status": "running", "limit": 100},
                )
                runs.raise_for_status()
                for run in runs.json()["data"]:
                    paths.append(f"/api/v1/workflows/{workflow['id']}/runs/{run['id']}/status")
    return paths


WRK_SCRIPT = """
local paths = {%s}
local i = 0
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def drive_with_wrk(url: str, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(WRK_SCRIPT % (",".join(json.dumps(p) for p in paths), TOKEN))
        # One wrk thread: the machine has two cores and the simulator needs one of them.
        command = [
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=args.duration + 60
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    p50 = re.search(r"50%\s+(\S+)", output)
    p99 = re.search(r"99%\s+(\S+)", output)
    return {
        "tool": "wrk",
        "requests_per_second": rps,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(0) if errors else None,
        "latency_p50": p50.group(1) if p50 else None,
        "latency_p99": p99.group(1) if p99 else None,
    }


async def _client_load(url: str, paths: list[str], connections: int, duration: float) -> None:
    import aiohttp

    counts: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=connections)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:
        deadline = time.monotonic() + duration

        async def worker(offset: int) -> None:
            i = offset
            while time.monotonic() < deadline:
                async with session.get(paths[i % len(paths)]) as response:
                    await response.read()
                    key = str(response.status)
                    counts[key] = counts.get(key, 0) + 1
                i += connections

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        elapsed = time.monotonic() - started
    total = sum(counts.values())
    print(json.dumps({"requests": total, "elapsed": elapsed, "statuses": counts}))


def drive_with_python(url: str, paths: list[str], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(paths, handle)
    try:
        code = (
            "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]);"
            "from simulator_throughput import _client_load;"
            "paths = json.load(open(sys.argv[3]));"
            "asyncio.run(_client_load(sys.argv[2], paths, int(sys.argv[4]), float(sys.argv[5])))"
        )
        output = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                str(Path(__file__).parent),
                url,
                handle.name,
                str(args.connections),
                str(args.duration),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=args.duration + 60,
        ).stdout
    finally:
        os.unlink(handle.name)
    result = json.loads(output.strip().splitlines()[-1])
    ok = result["statuses"].get("200", 0)
    return {
        "tool": "python-aiohttp",
        "requests_per_second": result["requests"] / result["elapsed"],
        "non_2xx": result["requests"] - ok,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (default 10)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--active-runs", type=int, default=200)
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    use_wrk = args.tool == "wrk" or (args.tool == "auto" and shutil.which("wrk") is not None)

    process, url = start_simulator(args)
    try:
        paths = active_run_paths(url)
        if len(paths) != args.active_runs:
            print(f"warning: found {len(paths)} running runs, expected {args.active_runs}")
        if not paths:
            raise SystemExit("no active runs to poll")
        result = (
            drive_with_wrk(url, paths, args) if use_wrk else drive_with_python(url, paths, args)
        )
        result["simulator_rss_mb"] = rss_mb(process.pid)
    finally:
        stop_simulator(process)
    result.update(
        connections=args.connections,
        duration_s=args.duration,
        latency_ms=args.latency_ms,
        workflows=args.workflows,
        active_runs=len(paths),
    )
    print(json.dumps(result, indent=2))
    verdict = "meets" if result["requests_per_second"] >= TARGET_RPS else "BELOW"
    print(
        f"Get Run Status: {result['requests_per_second']:.0f} requests/s "
        f"({verdict} the {TARGET_RPS:.0f}/s target; {result['non_2xx']} non-2xx)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
