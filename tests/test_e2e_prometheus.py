"""The whole chain with real parts: simulator → exporter → a real Prometheus server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract import HEALTH_METRICS, RUN_METRICS, WORKFLOW_METRICS
from tests.helpers import require_binary
from tests.procs import Prometheus, scrape_every_second, start_exporter, start_simulator

pytestmark = pytest.mark.e2e
TOKEN = "op_live_E2eE2eE2eE2eE2eE2eE2eE2eE2eE2eE2"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("e2e")
    simulator, api_url = start_simulator(workdir, TOKEN, "--workflows=12", "--speed=60", "--seed=7")
    exporter, exporter_url = start_exporter(
        workdir,
        f"workspaces:\n  - {{name: e2e, api_url: '{api_url}', token: {TOKEN}}}\n"
        "collection: {min_interval: 1s}\n",
    )
    prometheus = Prometheus(binary, workdir, scrape_every_second(exporter_url))
    try:
        yield prometheus
    finally:
        prometheus.stop()
        exporter.stop()
        simulator.stop()
        assert "Traceback" not in exporter.output(), exporter.output()[-3000:]


def test_prometheus_scrapes_the_exporter_and_the_api_is_up(chain: Prometheus) -> None:
    up = chain.wait_query('up{job="onepin"} == 1')
    assert len(up) == 1
    onepin_up = chain.wait_query('onepin_up{workspace="e2e"} == 1')
    assert onepin_up[0]["metric"]["job"] == "onepin"
    assert chain.wait_query("count(onepin_workflow_info) == 12")


@pytest.mark.parametrize("name", HEALTH_METRICS + WORKFLOW_METRICS + RUN_METRICS)
def test_every_metric_family_returns_series(chain: Prometheus, name: str) -> None:
    result = chain.wait_query(name)
    assert all(r["metric"].get("job") == "onepin" for r in result)


def test_promql_over_the_exporter_answers_operator_questions(chain: Prometheus) -> None:
    # Progress of every active run, as the dashboards compute it.
    progress = chain.wait_query("onepin_run_finished_steps / onepin_run_total_steps")
    assert all(0 <= float(r["value"][1]) <= 1 for r in progress)
    # The API cost of a poll, by endpoint.
    assert chain.wait_query('sum by (endpoint) (onepin_api_requests_total{code="200"}) > 0')
