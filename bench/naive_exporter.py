"""The baseline: a OnePin exporter as an operator would write it in an afternoon.

prometheus_client's HTTP server and a custom collector that, on every scrape, reads the whole
catalogue, then each workflow's newest runs and the status of each active one, from a pool of
``--threads`` threads (1: sequential), with nothing kept between scrapes. bench/budget.py runs
it as a process of its own, so that its CPU is measured apart from the bench's.

    python bench/naive_exporter.py --api-url http://127.0.0.1:8000 --threads 16
    (the token from $ONEPIN_TOKEN; prints "listening on http://127.0.0.1:PORT")
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

ACTIVE = ("pending", "running", "paused")


def seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class OnePinCollector(Collector):
    def __init__(self, api_url: str, token: str, threads: int) -> None:
        self.client = httpx.Client(
            base_url=f"{api_url.rstrip('/')}/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads),
        )
        self.pool = ThreadPoolExecutor(threads)

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # else register() runs a whole collect() (thousands of calls) to learn names

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def workflow(self, wf: dict[str, Any]) -> tuple[dict[str, Any], list[Any], list[Any]]:
        runs = self.get(f"/workflows/{wf['id']}/runs", limit=20)["data"]
        active = [
            self.get(f"/workflows/{wf['id']}/runs/{run['id']}/status")["data"]
            for run in runs
            if run["status"] in ACTIVE
        ]
        return wf, runs, active

    def collect(self) -> Iterator[GaugeMetricFamily]:
        workflows: list[dict[str, Any]] = []
        offset, total = 0, 1
        while offset < total:
            page = self.get("/workflows", offset=offset, limit=100)
            workflows += page["data"]
            total = page["pagination"]["total"]
            offset += len(page["data"]) or total
        labels = ["workflow_id", "workflow"]
        runs_total = GaugeMetricFamily(
            "onepin_workflow_runs", "Runs per status", labels=[*labels, "status"]
        )
        last = GaugeMetricFamily(
            "onepin_workflow_last_run_status", "Latest run", labels=[*labels, "status"]
        )
        duration = GaugeMetricFamily(
            "onepin_workflow_last_run_duration_seconds", "Latest run", labels=labels
        )
        active_runs = GaugeMetricFamily("onepin_workflow_active_runs", "Active runs", labels=labels)
        steps = GaugeMetricFamily(
            "onepin_run_finished_steps", "Active run", labels=[*labels, "run_id"]
        )
        total_steps = GaugeMetricFamily(
            "onepin_run_total_steps", "Active run", labels=[*labels, "run_id"]
        )
        for wf, runs, active in self.pool.map(self.workflow, workflows):
            ids = [wf["id"], wf["name"]]
            for status, count in (wf.get("run_status_counts") or {}).items():
                runs_total.add_metric([*ids, status], count)
            if runs:
                last.add_metric([*ids, runs[0]["status"]], 1)
                if runs[0].get("started_at") and runs[0].get("completed_at"):
                    started = seconds(runs[0]["started_at"])
                    duration.add_metric(ids, seconds(runs[0]["completed_at"]) - started)
            active_runs.add_metric(ids, len(active))
            for run in active:
                steps.add_metric([*ids, run["id"]], run["finished_steps"] or 0)
                total_steps.add_metric([*ids, run["id"]], run["total_steps"] or 0)
        yield from (runs_total, last, duration, active_runs, steps, total_steps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    REGISTRY.register(OnePinCollector(args.api_url, os.environ["ONEPIN_TOKEN"], args.threads))
    server, _thread = start_http_server(0, addr="127.0.0.1")
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
