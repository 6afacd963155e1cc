"""Contract with the official OnePin SDK and CLI (PyPI ``onepin``): the simulator speaks what
they parse.

The simulator is pointed at by the real client, exactly as a user would
(``OnepinClient(api_key=..., base_url=...)``), over every read endpoint the SDK offers for
workflows and runs, for runs of all six statuses and for runs paused by each automatic reason,
and for workflows on a cron schedule (Get Workflow's ``definition.triggers``).
Any response the SDK cannot parse fails the test with the field the SDK complained about; any
field the simulator sends that the SDK's model does not declare fails it too, so a later SDK
release that renames or drops a field is named here. The CLI is run as a subprocess on the same
simulator for ``workflows list``, ``workflows runs list``, ``runs status`` and ``runs steps``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

# The SDK is in the test extra: without it this test fails rather than skips.
import onepin
import pydantic
import pytest
from onepin import OnepinClient
from onepin.core.api_error import ApiError
from onepin.core.parse_error import ParsingError

from exporter.simulator import ManualClock, RunningSimulator, SimulatorConfig

TOKEN = "op_live_SdkContractSdkContract0123456"
AUTOMATIC_PAUSES = ("provider_outage", "provider_rate_limited", "provider_billing", "node_timeout")
RUN_STATUSES = {"pending", "running", "completed", "failed", "cancelled", "paused"}
NODE_TYPES = (
    "source_script",
    "operator_translator",
    "operator_normalizer",
    "operator_generator",
    "operator_phoneme_injector",
    "sink_preview",
    "validator_error_rate",
    "validator_naturalness",
    "validator_noise",
    "validator_pronunciation",
    "operator_pronunciation_corrector",
)
# The CLI installed with the SDK, beside this interpreter (a venv) or on PATH.
CLI = Path(sys.executable).with_name("onepin")
CLI_PATH = str(CLI) if CLI.exists() else shutil.which("onepin")
T = TypeVar("T")


# --- what the SDK said, by field ----------------------------------------------------------


def parse_problems(error: ParsingError) -> list[str]:
    """``data.3.name_source: missing``, one line per field the SDK's model rejected."""
    cause = error.cause
    if isinstance(cause, pydantic.ValidationError):
        return [
            f"{'.'.join(str(part) for part in item['loc'])}: {item['type']} ({item['msg']})"
            for item in cause.errors()
        ]
    return [repr(cause)]


def undeclared(value: Any, where: str = "data") -> list[str]:
    """Fields the simulator sent that the SDK's models do not declare (pydantic extras)."""
    found: list[str] = []
    if isinstance(value, pydantic.BaseModel):
        for key in sorted(value.model_extra or {}):
            found.append(f"{where}.{key}")
        for name in type(value).model_fields:
            found += undeclared(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += undeclared(item, f"{where}.{index}")
    return found


class Calls:
    """Every SDK call of the test goes through ``call``, which keeps what went wrong."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.count = 0

    def call(self, what: str, request: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        """``request(*args, **kwargs)``; its ``data``, or None if the SDK could not take it."""
        self.count += 1
        try:
            response = request(*args, **kwargs)
        except ParsingError as error:
            self.problems += [f"{what}: {problem}" for problem in parse_problems(error)]
            return None
        except ApiError as error:
            self.problems.append(f"{what}: HTTP {error.status_code} {error.body!r}")
            return None
        data = getattr(response, "data", response)
        self.problems += [f"{what}: not in the SDK's model: {field}" for field in undeclared(data)]
        return data

    def check(self) -> None:
        unique = list(dict.fromkeys(self.problems))
        assert not unique, f"{len(unique)} SDK contract problem(s):\n" + "\n".join(unique[:40])


# --- the world ----------------------------------------------------------------------------


# Two workflows on a cron schedule (not among those start_runs uses), one of them missing a fire.
SCHEDULES = (("onboarding-voiceover", "*/10 * * * *"), ("price-scraper", "0 * * * *"))


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    config = SimulatorConfig(
        token=TOKEN,
        clock="manual",
        workflows=16,
        seed=5,
        schedules=SCHEDULES,
        missed=(("onboarding-voiceover", 1),),
    )
    with RunningSimulator(config) as running:
        yield running


@pytest.fixture(scope="module")
def client(sim: RunningSimulator) -> OnepinClient:
    return OnepinClient(api_key=TOKEN, base_url=sim.url, max_retries=0)


def start_runs(sim: RunningSimulator) -> dict[str, tuple[str, str]]:
    """One explicit run per fate on its own workflow: name -> (workflow id, run id)."""
    model = sim.model
    ids = [profile.id for profile in model.profiles]
    fates: list[tuple[str, str, str | None]] = [
        ("completed", "completed", None),
        ("failed", "failed", None),
        ("cancelled", "cancelled", None),
        ("stall", "stall", None),
        ("user", "completed", "user"),
        *[(reason, "completed", reason) for reason in AUTOMATIC_PAUSES],
    ]
    runs = {}
    for index, (name, outcome, pause) in enumerate(fates):
        plan = model.start_run(
            ids[index],
            outcome=outcome,
            duration_seconds=40,
            pending_seconds=10,
            total_steps=30,
            pause_reason=pause,
        )
        runs[name] = (ids[index], plan.id)
    return runs


def read_run(client: OnepinClient, calls: Calls, workflow_id: str, run_id: str) -> Any:
    """Every run endpoint of the SDK on one run; returns what Get Run Status said."""
    runs, where = client.workflows.runs, f"run {run_id}"
    calls.call(f"{where} get", lambda: runs.get(workflow_id, run_id))
    status = calls.call(f"{where} status", lambda: runs.status(workflow_id, run_id))
    steps = calls.call(f"{where} steps", lambda: runs.steps(workflow_id, run_id))
    calls.call(
        f"{where} steps include_result",
        lambda: runs.steps(workflow_id, run_id, include_result=True),
    )
    calls.call(f"{where} overview", lambda: client.workflows.get_run_overview(workflow_id, run_id))
    if status is not None and steps is not None:
        check_steps_match_status(where, status, steps)
    return status


def check_steps_match_status(where: str, status: Any, steps: list[Any]) -> None:
    """Steps and status tell the same story (judged by the SDK's own field definitions)."""
    completed = [step for step in steps if step.status == "completed"]
    assert len(completed) == status.finished_steps, where
    assert len(steps) <= (status.total_steps or 0), where
    assert {step.node_type for step in steps} <= set(NODE_TYPES), where
    latest: dict[str, Any] = {}
    for step in steps:
        if step.node_id not in latest or step.iteration > latest[step.node_id].iteration:
            latest[step.node_id] = step
    parked = {"cancelled"} if status.status == "paused" and status.pause_reason else set()
    finished = [
        step
        for step in latest.values()
        if step.status in ("completed", "failed", "cancelled")
        and not (step.status in parked and step.pause_reason is not None)
    ]
    assert status.finished_nodes == len(finished), where
    if status.status == "failed":
        assert [step.status for step in steps].count("failed") == 1, where
        assert status.error is not None
        (failed,) = [step for step in steps if step.status == "failed"]
        assert failed.error == status.error, where
    if status.completed_at is not None and status.started_at is not None and steps:
        # Node executions run back to back: their durations add up to the run's.
        spent = sum(
            (step.completed_at - step.started_at).total_seconds()
            for step in steps
            if step.started_at is not None and step.completed_at is not None
        )
        assert spent == (status.completed_at - status.started_at).total_seconds(), where
    if status.status != "pending" and status.started_at is not None and steps:
        assert steps[0].started_at == status.started_at, where
    if status.completed_at is not None and status.status == "completed":
        assert steps[-1].completed_at == status.completed_at, where


def read_workflows(client: OnepinClient, calls: Calls) -> list[str]:
    """The ids of every workflow, paged through List Workflows."""
    workflows: list[str] = []
    offset = 0
    while True:
        page = calls.call(
            f"workflows list offset={offset}", client.workflows.list, offset=offset, limit=7
        )
        if not page:
            break
        workflows += [workflow.id for workflow in page]
        offset += 7
    calls.call(
        "workflows list include_definition",
        client.workflows.list,
        include_definition=True,
        limit=100,
    )
    return workflows


# --- the SDK ------------------------------------------------------------------------------


def test_every_sdk_read_endpoint_parses_over_all_statuses_and_pauses(
    sim: RunningSimulator, client: OnepinClient
) -> None:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    calls = Calls()
    listed = read_workflows(client, calls)
    workflows = [profile.id for profile in sim.model.profiles]
    assert sorted(listed) == sorted(workflows) or calls.problems
    for workflow in workflows:
        calls.call(f"workflow {workflow} get", client.workflows.get, workflow)
        calls.call(f"workflow {workflow} runs_summary", client.workflows.runs_summary, workflow)
        page = calls.call(
            f"workflow {workflow} runs list", client.workflows.runs.list, workflow, limit=100
        )
        for run in (page or [])[:1]:
            read_run(client, calls, workflow, run.id)
    calls.check()

    started = start_runs(sim)
    statuses: set[str] = set()
    reasons: set[str] = set()
    # pending, running, draining to a pause, paused, resumed, then every run terminal.
    for step in (0, 20, 24, 30, 100, 200):
        if step:
            clock.advance(step - clock_offset(sim, started))
        for name, (workflow_id, run_id) in started.items():
            status = read_run(client, calls, workflow_id, run_id)
            calls.call(f"{name} runs list", client.workflows.runs.list, workflow_id)
            calls.call(f"{name} runs_summary", client.workflows.runs_summary, workflow_id)
            if status is not None:
                statuses.add(status.status)
                if status.status == "paused" and status.pause_reason is not None:
                    reasons.add(status.pause_reason)
    calls.check()
    assert statuses == RUN_STATUSES
    assert reasons == {"user", *AUTOMATIC_PAUSES}
    assert calls.count > 200


def test_get_workflow_shows_cron_triggers_and_scheduled_runs_come_at_fire_times(
    sim: RunningSimulator, client: OnepinClient
) -> None:
    calls = Calls()
    by_name = {profile.name: profile.id for profile in sim.model.profiles}
    for name, cron in SCHEDULES:
        workflow = calls.call(f"{name} get", client.workflows.get, by_name[name])
        runs = calls.call(f"{name} runs", client.workflows.runs.list, by_name[name], limit=100)
        calls.check()
        assert workflow.definition["triggers"] == [{"type": "schedule", "cron": cron}]
        minutes = 10 if cron.startswith("*/10") else 60
        created = [run.created_at for run in runs]
        assert created and all(
            t.second == 0 and (t.hour * 60 + t.minute) % minutes == 0 for t in created
        )
        for run in runs[:3]:
            read_run(client, calls, by_name[name], run.id)
        calls.check()
    others = [p.id for p in sim.model.profiles if p.name not in dict(SCHEDULES)]
    assert client.workflows.get(others[0]).data.definition["triggers"] == []


def clock_offset(sim: RunningSimulator, started: dict[str, tuple[str, str]]) -> int:
    """Seconds since the explicit runs were created."""
    workflow_id, run_id = started["completed"]
    index = sim.model.workflow_index(workflow_id)
    assert index is not None
    with sim.model.session() as now:
        plan = sim.model.find_run(index, run_id, now)
        assert plan is not None
        return now - plan.created


def test_runs_summary_follows_the_sdk_rules(sim: RunningSimulator, client: OnepinClient) -> None:
    """pass_rate = completed / (completed + failed), delivered audio over completed runs."""
    for profile in sim.model.profiles:
        summary = client.workflows.runs_summary(profile.id).data
        decided = summary.completed + summary.failed
        if decided:
            assert summary.pass_rate == pytest.approx(summary.completed / decided)
        else:
            assert summary.pass_rate is None
        assert summary.delivered_audio_ms >= 0
        assert (summary.average_duration_seconds is None) == (summary.completed == 0)


def test_a_required_version_above_the_sdk_stops_it_with_an_upgrade_error(
    sim: RunningSimulator, client: OnepinClient
) -> None:
    try:
        sim.faults.update({"required_version": "0.16.0"})
        assert client.workflows.list(limit=1).data  # at or below the SDK: served
        sim.faults.update({"required_version": "99.0"})
        with pytest.raises(onepin.OnePinUpgradeRequiredError) as raised:
            client.workflows.list(limit=1)
        assert raised.value.required == "99.0"
    finally:
        sim.faults.update({"required_version": None})


def test_the_sdk_reads_both_validation_error_shapes(
    sim: RunningSimulator, client: OnepinClient
) -> None:
    workflow_id = sim.model.profiles[0].id
    with pytest.raises(onepin.UnprocessableEntityError) as envelope:
        client.workflows.runs.list(workflow_id, status="a,,b")
    assert envelope.value.body["error"]["details"][0]["field"] == "status"
    try:
        sim.faults.update({"validation_body": "framework"})
        with pytest.raises(onepin.UnprocessableEntityError) as framework:
            client.workflows.runs.list(workflow_id, limit=1000)
    finally:
        sim.faults.update({"validation_body": "envelope"})
    detail = framework.value.body["detail"]
    assert detail[0]["loc"] == ["query", "limit"] and detail[0]["input"] == "1000"


# --- the CLI ------------------------------------------------------------------------------


def run_cli(sim: RunningSimulator, commands: list[list[str]]) -> list[Any]:
    """Run the CLI once per command, all at once; the JSON each printed."""
    assert CLI_PATH is not None, "the onepin CLI comes with the SDK; install the test extra"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("TMPDIR", "/tmp"),
        "ONEPIN_NO_UPDATE_CHECK": "1",
    }
    root = [CLI_PATH, "--base-url", sim.url, "--api-key", TOKEN, "--json"]
    running = [
        subprocess.Popen(
            [*root, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for command in commands
    ]
    results = []
    for command, process in zip(commands, running, strict=True):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"onepin {' '.join(command)}: {err or out}"
        results.append(json.loads(out))
    return results


def test_the_cli_lists_workflows_and_runs_and_inspects_a_paused_and_a_failed_run(
    sim: RunningSimulator,
) -> None:
    model = sim.model
    paused = model.start_run(
        model.profiles[1].id, outcome="failed", duration_seconds=30, pause_reason="node_timeout"
    )
    failed = model.start_run(model.profiles[2].id, outcome="failed", duration_seconds=30)
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    clock.advance(40)  # the first parked by its node timeout, the second failed
    paused_ids = [model.profiles[1].id, paused.id]
    failed_ids = [model.profiles[2].id, failed.id]
    commands = [
        ["workflows", "list"],
        ["workflows", "runs", "list", model.profiles[2].id],
        ["workflows", "runs", "status", *paused_ids],
        ["workflows", "runs", "steps", *failed_ids],
    ]
    workflows, runs, paused_status, failed_steps = run_cli(sim, commands)
    assert {item["id"] for item in workflows} <= {p.id for p in model.profiles}
    assert runs[0]["id"] == failed.id and runs[0]["status"] == "failed"
    assert all(item["status"] in RUN_STATUSES for item in runs)
    assert paused_status["status"] == "paused"
    assert paused_status["pause_reason"] == "node_timeout" and paused_status["pause_error"]
    assert [step["status"] for step in failed_steps].count("failed") == 1
