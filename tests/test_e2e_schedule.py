"""OnePinScheduledRunMissed end to end, with real parts only (issue 13, acceptance 4).

Two workflows run every minute in the simulator (`--schedule`, real clock at real speed, so that
the simulated clock, the exporter's and Prometheus's agree), and the exporter's config gives both
that schedule with a grace of 30 s. The simulator skips the first fire after its start for one of
them (`--miss-schedule`): Prometheus, with prometheus/alerts.yml loaded (evaluation interval
1s), fires OnePinScheduledRunMissed 30 s after that fire, and Alertmanager (group_wait 0s) sends
it to a webhook receiver in this test. The other scheduled workflow, whose run came at the same
fire, and the workflows without a schedule raise nothing. The test takes 35 to 95 s: the fire
comes at the next minute of the clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime

import pytest

from exporter.simulator import ManualClock, SimModel
from tests.helpers import listed_workspace, require_binary
from tests.procs import (
    Prometheus,
    http_get,
    start_exporter,
    start_simulator,
    wait_for,
)
from tests.test_e2e_alerting import Webhook, last_evaluation, start_alerting

pytestmark = pytest.mark.e2e

TOKEN = "op_live_ScheduleScheduleScheduleSched12"
WORKSPACE = "e2e"
WORKFLOWS, SEED = 6, 4
MISSED, ON_TIME = "invoice-ocr", "nightly-etl"
EVERY_MINUTE = "* * * * *"
GRACE = 30.0
ALERT = "OnePinScheduledRunMissed"
# The missed fire is at most a minute away, its grace 30 s more; the rest takes a few seconds.
FIRE_TIMEOUT = 60.0 + GRACE + 30.0


@dataclass(frozen=True)
class Chain:
    prometheus: Prometheus
    webhook: Webhook
    ids: dict[str, str]  # workflow name -> id


def exporter_config(api_url: str, ids: dict[str, str]) -> str:
    schedule = f"schedule: '{EVERY_MINUTE}', schedule_grace: {GRACE:g}s"
    workflows = {wid: name for name, wid in ids.items()}
    return (
        listed_workspace(
            WORKSPACE, api_url, TOKEN, workflows, {MISSED: schedule, ON_TIME: schedule}
        )
        + "collection: {min_interval: 1s}\n"
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    require_binary("prometheus")  # skip before starting anything
    require_binary("prometheus-alertmanager")
    names = {p.name for p in SimModel(ManualClock(), workflows=WORKFLOWS, seed=SEED).profiles}
    assert {MISSED, ON_TIME} <= names, f"seed {SEED} has no {MISSED} or {ON_TIME}: {names}"
    workdir = tmp_path_factory.mktemp("e2e-schedule")
    with ExitStack() as stack:
        simulator, api_url = start_simulator(
            workdir, TOKEN, f"--workflows={WORKFLOWS}", f"--seed={SEED}", "--speed=1",
            f"--schedule={MISSED}={EVERY_MINUTE}", f"--schedule={ON_TIME}={EVERY_MINUTE}",
            f"--miss-schedule={MISSED}@1",
        )  # fmt: skip
        stack.callback(simulator.stop)
        status, body = http_get(f"{api_url}/_sim/workflows")
        assert status == 200, body
        ids = {w["name"]: w["id"] for w in json.loads(body)}
        exporter, exporter_url = start_exporter(workdir, exporter_config(api_url, ids))
        stack.callback(exporter.stop)
        prometheus, _alertmanager, webhook = start_alerting(stack, workdir, exporter_url)
        yield Chain(prometheus, webhook, ids)
    for process in (exporter, simulator):
        assert "Traceback" not in process.output(), process.output()[-3000:]


def test_a_skipped_fire_is_notified_for_that_workflow_only(chain: Chain) -> None:
    missed = chain.ids[MISSED]
    alerts = wait_for(
        f"the webhook to receive {ALERT} for {MISSED}",
        lambda: (
            [
                a
                for post in chain.webhook.posts()
                for a in post.get("alerts", [])
                if a["labels"].get("alertname") == ALERT and a["status"] == "firing"
            ]
            or None
        ),
        FIRE_TIMEOUT,
    )
    fired_at = time.time()
    assert {a["labels"]["workflow_id"] for a in alerts} == {missed}, alerts
    labels, annotations = alerts[0]["labels"], alerts[0]["annotations"]
    assert (labels["workflow_name"], labels["workspace"]) == (MISSED, WORKSPACE), labels
    assert labels["severity"] == "warning" and labels["job"] == "onepin", labels
    for part in (MISSED, missed, WORKSPACE):
        assert part in annotations["description"], annotations
    assert annotations["runbook_url"].endswith("docs/runbook.md#onepinscheduledrunmissed")
    # Fired after the grace of a fire on the minute, before the next fire.
    starts = datetime.fromisoformat(alerts[0]["startsAt"]).timestamp()
    assert GRACE <= starts % 60 < 60, alerts[0]["startsAt"]

    # The rules evaluated again after that: the workflow whose run came at the same fire, and
    # the workflows without a schedule, were never pending nor firing.
    wait_for(
        "a rule evaluation after the alert fired",
        lambda: last_evaluation(chain.prometheus, "onepin-runs") > fired_at + 1,
        30.0,
    )
    others = chain.prometheus.query(
        f'max_over_time(ALERTS{{alertname="{ALERT}", workflow_id!="{missed}"}}[1h])'
    )
    assert not others, others
    on_time = chain.prometheus.query(
        "onepin_workflow_last_run_created_timestamp_seconds"
        f'{{workflow_id="{chain.ids[ON_TIME]}"}}'
        " >= on (workflow_id) onepin_workflow_schedule_last_expected_timestamp_seconds"
    )
    assert on_time, f"precondition: {ON_TIME} should have had a run at each fire"
    notified = {a["labels"].get("workflow_id") for p in chain.webhook.posts() for a in p["alerts"]}
    assert notified == {missed}, notified
