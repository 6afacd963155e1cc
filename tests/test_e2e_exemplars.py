"""Exemplars end to end: a real Prometheus with exemplar storage scrapes the exporter, with no
scrape setting for it (Prometheus asks for OpenMetrics first, the only text format with
exemplars: exemplars arriving show that it was negotiated), and its exemplar API names runs the
simulator finished."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import require_binary
from tests.procs import (
    Prometheus,
    http_get,
    scrape_every_second,
    start_exporter,
    start_simulator,
    wait_for,
)

pytestmark = pytest.mark.e2e
TOKEN = "op_live_ExemplarsExemplarsExemplars0123"
TIMEOUT = 40.0  # the simulator at 120x finishes runs within seconds


@dataclass(frozen=True)
class Chain:
    prometheus: Prometheus
    api_url: str


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("exemplars")
    simulator, api_url = start_simulator(
        workdir, TOKEN, "--workflows=12", "--speed=120", "--seed=3"
    )
    exporter, exporter_url = start_exporter(
        workdir,
        f"workspaces:\n  - {{name: e2e, api_url: '{api_url}', token: {TOKEN}}}\n"
        "collection: {min_interval: 1s}\n",
    )
    prometheus = Prometheus(
        binary, workdir, scrape_every_second(exporter_url), "--enable-feature=exemplar-storage"
    )
    try:
        yield Chain(prometheus, api_url)
    finally:
        prometheus.stop()
        exporter.stop()
        simulator.stop()
        assert "Traceback" not in exporter.output(), exporter.output()[-3000:]


def query_exemplars(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    """/api/v1/query_exemplars over all time: each series with its exemplars."""
    query = urllib.parse.urlencode(
        {"query": expr, "start": 0, "end": time.time() + 10 * 365 * 86400}
    )
    status, body = http_get(f"{prometheus.url}/api/v1/query_exemplars?{query}")
    data = json.loads(body)
    assert status == 200 and data["status"] == "success", body[:500]
    return [series for series in data["data"] if series["exemplars"]]


def api_run(api_url: str, workflow_id: str, run_id: str) -> dict[str, Any]:
    """The run as the simulator's API serves it (Get Run Status)."""
    request = urllib.request.Request(
        f"{api_url}/api/v1/workflows/{workflow_id}/runs/{run_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())["data"]
    return data


@pytest.mark.parametrize(
    "family", ["onepin_workflow_run_duration_seconds_bucket", "onepin_workflow_runs_finished_total"]
)
def test_prometheus_stores_exemplars_naming_runs_the_simulator_finished(
    chain: Chain, family: str
) -> None:
    found = wait_for(
        f"an exemplar of {family}",
        lambda: query_exemplars(chain.prometheus, family) or None,
        TIMEOUT,
    )
    series = found[0]
    labels = series["seriesLabels"]
    assert labels["job"] == "onepin"
    exemplar = series["exemplars"][-1]
    run = api_run(chain.api_url, labels["workflow_id"], exemplar["labels"]["run_id"])
    assert run["status"] in ("completed", "failed", "cancelled")
    assert str(run["run_number"]) == exemplar["labels"]["run_number"]
    if family.endswith("_total"):
        assert run["status"] == labels["status"]
    elif labels["le"] != "+Inf":  # the run's duration, in the bucket the exemplar is on
        assert float(exemplar["value"]) <= float(labels["le"])
