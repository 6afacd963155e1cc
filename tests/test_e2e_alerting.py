"""OnePinRunFailed end to end, with real parts only.

A run fails in the simulator → the exporter counts it → Prometheus, with prometheus/alerts.yml
loaded (evaluation interval 1s), fires OnePinRunFailed → Alertmanager (group_wait 0s) → a webhook
receiver in this test, which records every notification. A run that completes on another
workflow, at the same time, must not raise the alert.

The simulator runs at real speed: the two runs last a second, and the two workflows are picked
with no run of their own in progress; the simulator starts their next own run at least 45 s after
ours ends (a quarter of a workflow's interval, which is 3 minutes or more), so no run but ours
ends on them during the test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import require_binary
from tests.procs import (
    REPO,
    Alertmanager,
    Prometheus,
    http_get,
    http_post_json,
    scrape_every_second,
    start_exporter,
    start_simulator,
    wait_for,
)

pytestmark = pytest.mark.e2e

TOKEN = "op_live_AlertAlertAlertAlertAlertAlert12"
WORKSPACE = "e2e"
WORKFLOWS = 6
SEED = 3
ALERT = "OnePinRunFailed"
RULE_FILE = REPO / "prometheus" / "alerts.yml"
TIMEOUT = 30.0  # for each step; a healthy chain takes a few seconds


class Webhook:
    """An HTTP server on a free loopback port that records the JSON body of every POST."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: list[dict[str, Any]] = []
        posts, lock = self._posts, self._lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with lock:
                    posts.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    def posts(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._posts)

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Every alert of every notification received whose labels include `labels`."""
        return [
            alert
            for post in self.posts()
            for alert in post.get("alerts", [])
            if _has(alert["labels"], labels)
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@dataclass(frozen=True)
class Workflow:
    id: str
    name: str


@dataclass(frozen=True)
class Chain:
    prometheus: Prometheus
    alertmanager: Alertmanager
    webhook: Webhook
    failing: Workflow  # a run of it fails
    completing: Workflow  # a run of it completes, at the same time
    started_runs_at: float  # unix time


def wait_prometheus(prometheus: Prometheus, what: str, expr: str) -> list[dict[str, Any]]:
    return wait_for(f"{what} (PromQL {expr})", lambda: prometheus.query(expr) or None, TIMEOUT)


def start_run(api_url: str, workflow: Workflow, outcome: str) -> None:
    status, body = http_post_json(
        f"{api_url}/_sim/runs",
        {
            "workflow_id": workflow.id,
            "outcome": outcome,
            "duration_seconds": 1,
            "pending_seconds": 0,
        },
    )
    assert status == 201, f"POST /_sim/runs {outcome} on {workflow.name}: {status} {body}"


def start_alerting(
    stack: ExitStack, workdir: Path, exporter_url: str
) -> tuple[Prometheus, Alertmanager, Webhook]:
    """Prometheus scraping the exporter every second with prometheus/alerts.yml loaded, sending
    to an Alertmanager (group_wait 0s) that notifies a webhook of this test; all closed by
    `stack`."""
    prometheus_binary = require_binary("prometheus")
    alertmanager_binary = require_binary("prometheus-alertmanager")
    webhook = Webhook()
    stack.callback(webhook.close)
    alertmanager = Alertmanager(
        alertmanager_binary,
        workdir,
        {
            "route": {
                "receiver": "webhook",
                "group_by": ["alertname", "workspace", "workflow_name"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [{"url": webhook.url, "send_resolved": False}],
                }
            ],
        },
    )
    stack.callback(alertmanager.stop)
    prometheus = Prometheus(
        prometheus_binary,
        workdir,
        scrape_every_second(
            exporter_url,
            rule_files=[str(RULE_FILE)],
            alerting={"alertmanagers": [{"static_configs": [{"targets": [alertmanager.address]}]}]},
        ),
    )
    stack.callback(prometheus.stop)
    return prometheus, alertmanager, webhook


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    workdir = tmp_path_factory.mktemp("e2e-alerting")
    with ExitStack() as stack:
        simulator, api_url = start_simulator(
            workdir, TOKEN, f"--workflows={WORKFLOWS}", "--speed=1", f"--seed={SEED}"
        )
        stack.callback(simulator.stop)
        exporter, exporter_url = start_exporter(
            workdir,
            f"workspaces:\n  - {{name: {WORKSPACE}, api_url: '{api_url}', token: {TOKEN}}}\n"
            "collection: {min_interval: 1s}\n",
        )
        stack.callback(exporter.stop)
        prometheus, alertmanager, webhook = start_alerting(stack, workdir, exporter_url)

        # Every workflow listed once: runs started from now on are counted when they finish.
        wait_prometheus(
            prometheus,
            "the exporter to have refreshed every workflow",
            f'count(onepin_workflow_up{{workspace="{WORKSPACE}"}} == 1) == {WORKFLOWS}',
        )
        # Two workflows whose latest run has ended (or that have none): no run of their own can
        # end during the test.
        status, body = http_get(f"{api_url}/_sim/workflows")
        assert status == 200, body
        names = {w["id"]: w["name"] for w in json.loads(body)}
        busy = {
            series["metric"]["workflow_id"]
            for series in prometheus.query(
                'onepin_workflow_last_run_status{status=~"pending|running|paused"} == 1'
            )
        }
        idle = [Workflow(wid, name) for wid, name in names.items() if wid not in busy]
        assert len(idle) >= 2, f"seed {SEED}: fewer than 2 idle workflows ({busy=}); pick another"
        failing, completing = idle[:2]

        started_runs_at = time.time()
        start_run(api_url, failing, "failed")
        start_run(api_url, completing, "completed")

        yield Chain(prometheus, alertmanager, webhook, failing, completing, started_runs_at)
    for process in (exporter, simulator):
        assert "Traceback" not in process.output(), process.output()[-3000:]


def test_the_rules_are_loaded(chain: Chain) -> None:
    status, body = http_get(f"{chain.prometheus.url}/api/v1/rules?type=alert")
    assert status == 200, body
    groups = {group["name"]: group for group in json.loads(body)["data"]["groups"]}
    assert {"onepin-exporter", "onepin-runs", "onepin-cost"} <= set(groups), sorted(groups)
    rules = {rule["name"]: rule for rule in groups["onepin-runs"]["rules"]}
    assert rules[ALERT]["health"] != "err", rules[ALERT]


def test_a_failed_run_is_notified_through_alertmanager(chain: Chain) -> None:
    wanted = {"alertname": ALERT, "workflow_id": chain.failing.id}
    alerts = wait_for(
        f"the webhook to receive {ALERT} for workflow {chain.failing.name}",
        lambda: chain.webhook.alerts(**wanted) or None,
        TIMEOUT,
    )
    alert = alerts[0]
    labels, annotations = alert["labels"], alert["annotations"]
    assert alert["status"] == "firing", alert
    assert labels["workspace"] == WORKSPACE, labels
    assert labels["workflow_name"] == chain.failing.name, labels
    assert labels["severity"] == "warning", labels
    assert labels["status"] == "failed", labels
    assert labels["job"] == "onepin", labels
    assert chain.failing.name in annotations["summary"], annotations
    for part in (chain.failing.name, chain.failing.id, WORKSPACE):
        assert part in annotations["description"], annotations
    assert annotations["runbook_url"].startswith("https://"), annotations
    assert annotations["runbook_url"].endswith("docs/runbook.md#onepinrunfailed"), annotations
    starts = datetime.fromisoformat(alert["startsAt"]).timestamp()
    assert starts >= chain.started_runs_at - 1, (alert["startsAt"], chain.started_runs_at)

    post = next(p for p in chain.webhook.posts() if alert in p["alerts"])
    assert post["receiver"] == "webhook", post
    assert post["groupLabels"] == {
        "alertname": ALERT,
        "workspace": WORKSPACE,
        "workflow_name": chain.failing.name,
    }, post
    held = [a for a in chain.alertmanager.alerts() if _has(a["labels"], wanted)]
    assert held, "Alertmanager does not hold the alert it notified"


def test_a_completed_run_raises_no_alert(chain: Chain) -> None:
    completing = chain.completing
    counted = wait_prometheus(
        chain.prometheus,
        f"the completed run of {completing.name} to be counted",
        "timestamp(onepin_workflow_runs_finished_total"
        f'{{workflow_id="{completing.id}", status="completed"}} > 0)',
    )
    seen_at = float(counted[0]["value"][1])
    # The alert rules evaluated with that sample in: a group evaluation a little later.
    wait_for(
        "a rule evaluation after the completed run was scraped",
        lambda: last_evaluation(chain.prometheus, "onepin-runs") > seen_at + 2,
        TIMEOUT,
    )
    failed = chain.prometheus.query(
        "max_over_time(onepin_workflow_runs_finished_total"
        f'{{workflow_id="{completing.id}", status="failed"}}[1h])'
    )
    assert [float(s["value"][1]) for s in failed] == [0.0], (
        f"precondition: {completing.name} should have had no failed run in the test: {failed}"
    )
    fired = chain.prometheus.query(
        f'max_over_time(ALERTS{{alertname="{ALERT}", workflow_id="{completing.id}"}}[1h])'
    )
    assert not fired, f"{ALERT} was pending or firing for {completing.name}: {fired}"
    notified = chain.webhook.alerts(alertname=ALERT, workflow_id=completing.id)
    assert not notified, f"the webhook got {ALERT} for {completing.name}: {notified}"
    held = [
        a for a in chain.alertmanager.alerts() if _has(a["labels"], {"workflow_id": completing.id})
    ]
    assert not held, f"Alertmanager holds an alert for {completing.name}: {held}"


def last_evaluation(prometheus: Prometheus, group: str) -> float:
    """Unix time of the last evaluation of a rule group (0 before the first)."""
    status, body = http_get(f"{prometheus.url}/api/v1/rules?type=alert")
    assert status == 200, body
    for found in json.loads(body)["data"]["groups"]:
        if found["name"] == group:
            return datetime.fromisoformat(found["lastEvaluation"]).timestamp()
    raise AssertionError(f"no rule group {group}")


def _has(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())
