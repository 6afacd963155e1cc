"""Every PromQL query of README.md and docs/*.md returns data from a real Prometheus.

The queries are found by the convention of tests/doc_queries.py (```promql blocks, the *Example*
column of tables, and code spans that look like PromQL; tests/test_doc_queries.py fails on
PromQL written anywhere else). The chain is real: the simulator → the exporter → Prometheus
(scrape interval 1s), plus a scrape target that refuses connections (a target that is down).

The simulator runs on a manual clock, so the scenario, not the speed of the machine, decides
what happens: runs that fail and complete, a long run paused by a provider outage for more than
an hour and later running for more than 3 hours, a pending run, a stalled run, an API outage
(5xx) and a reload with a broken config file. Each step is waited for until Prometheus has it.
Then each query runs as a range query over the test's lifetime (step 0.5 s, shorter than the
scrape interval, so that no sample is stepped over) and must return at least one value that is
not NaN: a query for a condition (`onepin_up == 0`) returns data while the condition held.
A placeholder `"…"` (a value the reader fills in) gets a value that exists: the stalled run's
id for `run_id="…"` (Scenario.placeholders).
"""

from __future__ import annotations

import json
import math
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.doc_queries import PLACEHOLDER, DocQuery, queries
from tests.helpers import listed_workspace, require_binary
from tests.procs import (
    Prometheus,
    http_get,
    http_post_json,
    scrape_every_second,
    start_exporter,
    start_simulator,
    wait_for,
)

pytestmark = pytest.mark.e2e

TOKEN = "op_live_DocsDocsDocsDocsDocsDocsDocsDocs"
WORKSPACE = "production"  # the runbook's queries name it
WORKFLOWS = 12
SEED = 7  # a world with a `nightly-etl` workflow, the runbook's example
EXAMPLE_WORKFLOW = "nightly-etl"
STEP = 0.5  # seconds between the points of the range queries


def exporter_config(api_url: str, workflows: dict[str, str]) -> str:
    """Every scrape polls: what Prometheus sees follows the simulated clock at once. Every
    workflow is listed, the example one with a schedule (for the schedule series); run_nodes
    on, so that the docs' onepin_run_current_node_info has data."""
    return (
        listed_workspace(
            WORKSPACE, api_url, TOKEN, workflows, {EXAMPLE_WORKFLOW: "schedule: '@daily'"}
        )
        + "collection: {min_interval: 0s, run_nodes: true}\n"
    )


# Queries that cannot return data in this test: query -> why. Keep it minimal. Every query of
# the docs returns data in the scenario below, so it is empty; a query listed here is still
# run, and must then return nothing (so that a stale entry is noticed).
NO_DATA_IN_TEST: dict[str, str] = {}

QUERIES = queries()


@dataclass(frozen=True)
class Scenario:
    prometheus: Prometheus
    started: float  # unix time just before Prometheus started: range queries begin here
    placeholders: dict[str, str]  # label -> a value of it that exists


def wait_prometheus(prometheus: Prometheus, what: str, expr: str) -> None:
    wait_for(f"{what} (PromQL {expr})", lambda: prometheus.query(expr) or None, 30.0)


def sim_post(api_url: str, path: str, body: Any = None) -> Any:
    status, answer = http_post_json(f"{api_url}{path}", body)
    assert status in (200, 201), f"POST {path} {body}: {status} {answer}"
    return answer


def advance(api_url: str, seconds: float) -> None:
    sim_post(api_url, f"/_sim/advance?seconds={seconds:g}")


def start_run(api_url: str, workflow_id: str, outcome: str, **extra: Any) -> str:
    body = {"workflow_id": workflow_id, "outcome": outcome, **extra}
    run_id: str = sim_post(api_url, "/_sim/runs", body)["data"]["id"]
    return run_id


def refusing_address() -> socket.socket:
    """A socket bound to a port and never listening: connections to it are refused, and no
    other process can take the port while the test holds it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("e2e-docs")
    with ExitStack() as stack:
        simulator, api_url = start_simulator(
            workdir, TOKEN, f"--workflows={WORKFLOWS}", f"--seed={SEED}", "--clock=manual"
        )
        stack.callback(simulator.stop)
        status, body = http_get(f"{api_url}/_sim/workflows")
        assert status == 200, body
        ids = {w["name"]: w["id"] for w in json.loads(body)}
        listed = {wid: name for name, wid in ids.items()}
        exporter, exporter_url = start_exporter(workdir, exporter_config(api_url, listed))
        stack.callback(exporter.stop)
        host, port = stack.enter_context(refusing_address()).getsockname()
        config = scrape_every_second(exporter_url)
        config["scrape_configs"].append(
            {"job_name": "down", "static_configs": [{"targets": [f"{host}:{port}"]}]}
        )
        started = time.time() - 1
        prometheus = Prometheus(binary, workdir, config)
        stack.callback(prometheus.stop)

        example = ids.pop(EXAMPLE_WORKFLOW)
        waiting, stalling = sorted(ids.values())[:2]
        wait_prometheus(prometheus, "a target that is down", 'up{job="down"} == 0')
        wait_prometheus(
            prometheus,
            "the exporter to have refreshed every workflow",
            f'count(onepin_workflow_up{{workspace="{WORKSPACE}"}} == 1) == {WORKFLOWS}',
        )

        # The example workflow: a failed, then a completed run, each seen finishing.
        for outcome in ("failed", "completed"):
            start_run(api_url, example, outcome, duration_seconds=600, pending_seconds=0)
            advance(api_url, 700)
            wait_prometheus(
                prometheus,
                f"a {outcome} run of {EXAMPLE_WORKFLOW} to be counted",
                f'onepin_workflow_runs_finished_total{{workflow_id="{example}", '
                f'status="{outcome}"}} > 0',
            )

        # A 6-hour run paused by a provider outage for 2 hours after its first 2 hours of work;
        # a run pending for 3 hours; a run that stalls.
        long_run = start_run(
            api_url, example, "completed", duration_seconds=6 * 3600, pending_seconds=0,
            pause_reason="provider_outage", pause_seconds=2 * 3600,
        )  # fmt: skip
        pending_run = start_run(
            api_url, waiting, "completed", duration_seconds=600, pending_seconds=3 * 3600
        )
        stalled_run = start_run(api_url, stalling, "stall", total_steps=10)
        advance(api_url, 60)
        wait_prometheus(
            prometheus,
            "a pending run",
            f'onepin_run_status{{run_id="{pending_run}", status="pending"}} == 1',
        )
        advance(api_url, 2 * 3600 + 3700)  # paused for a little more than an hour
        wait_prometheus(
            prometheus,
            "the long run to be paused by a provider outage for more than an hour",
            f'onepin_run_paused_seconds{{run_id="{long_run}"}} > 3600'
            f' and on (run_id) onepin_run_pause_reason{{reason="provider_outage"}} == 1',
        )
        advance(api_url, 2 * 3600)  # resumed, more than 3 hours of work done
        wait_prometheus(
            prometheus,
            "the long run to run for more than 3 hours",
            f'onepin_run_duration_seconds{{run_id="{long_run}"}} > 3 * 3600',
        )

        # An API outage: every request answered 5xx, then the API back.
        sim_post(api_url, "/_sim/faults", {"error_rate": 1.0})
        wait_prometheus(
            prometheus,
            "the API and every workflow to be down",
            f'onepin_up{{workspace="{WORKSPACE}"}} == 0 and on ()'
            f' count(onepin_workflow_up{{workspace="{WORKSPACE}"}} == 0) == {WORKFLOWS}',
        )
        sim_post(api_url, "/_sim/faults", {"error_rate": 0.0})
        wait_prometheus(
            prometheus, "the API to be back", f'onepin_up{{workspace="{WORKSPACE}"}} == 1'
        )

        # A reload with a broken config file (the running config stays), then a good one.
        config_file = workdir / "exporter.yaml"
        config_file.write_text("workspaces: [\n")
        exporter.proc.send_signal(signal.SIGHUP)
        wait_prometheus(
            prometheus, "a failed reload", "onepin_exporter_config_last_reload_successful == 0"
        )
        config_file.write_text(exporter_config(api_url, listed))
        exporter.proc.send_signal(signal.SIGHUP)
        wait_prometheus(
            prometheus, "a good reload", "onepin_exporter_config_last_reload_successful == 1"
        )

        yield Scenario(prometheus, started, {"run_id": stalled_run})
    for process in (exporter, simulator):
        assert "Traceback" not in process.output(), process.output()[-3000:]


def filled(expr: str, placeholders: dict[str, str]) -> str:
    """The query with each `label="…"` placeholder given the scenario's value of the label."""
    for label, value in placeholders.items():
        expr = expr.replace(f'{label}="{PLACEHOLDER}"', f'{label}="{value}"')
    assert f'"{PLACEHOLDER}"' not in expr, (
        f"no value for a placeholder of {expr}: add one to Scenario.placeholders"
    )
    return expr


def has_data(result: list[dict[str, Any]]) -> bool:
    return any(not math.isnan(float(value)) for series in result for _, value in series["values"])


def query_id(query: DocQuery) -> str:
    return f"{query.where} {query.expr}"


def test_the_docs_have_queries() -> None:
    """The extraction finds the queries of every kind (a broken extraction finds none)."""
    assert len(QUERIES) >= 60, QUERIES
    assert {q.path for q in QUERIES} >= {"README.md", "docs/runbook.md"}
    assert set(NO_DATA_IN_TEST) <= {q.expr for q in QUERIES}, "NO_DATA_IN_TEST: no such query"


@pytest.mark.parametrize("query", QUERIES, ids=query_id)
def test_every_doc_query_returns_data(scenario: Scenario, query: DocQuery) -> None:
    expr = filled(query.expr, scenario.placeholders)
    result = scenario.prometheus.query_range(expr, scenario.started, time.time(), STEP)
    reason = NO_DATA_IN_TEST.get(query.expr)
    if reason is not None:
        assert not has_data(result), (
            f"{query.where}: {query.expr} is listed as having no data ({reason}), but it has:"
            " remove it from NO_DATA_IN_TEST"
        )
        return
    assert has_data(result), (
        f"{query.where}: {expr} returned no data over the whole scenario: {str(result)[:500]}"
    )
