"""A scrape against the fake API exposes every metric of design §4.4, with the right values."""

from __future__ import annotations

import subprocess

import pytest

from tests.contract import HEALTH_METRICS, RUN_METRICS, WORKFLOW_METRICS
from tests.fakeapi import NOW_TS, FakeOnePin, FakeRun, FakeWorkflow, standard_workspace
from tests.helpers import (
    exposition,
    make_config,
    poll,
    poller_for,
    render_text,
    require_binary,
    samples,
    series,
    value,
)

MIB = 1048576


@pytest.fixture
def scraped() -> tuple[FakeOnePin, str]:
    fake = FakeOnePin(standard_workspace())
    text = exposition(poll(poller_for(fake)))
    return fake, text


def test_every_contract_metric_is_exposed_with_its_labels(scraped: tuple[FakeOnePin, str]) -> None:
    _, text = scraped
    for name in HEALTH_METRICS + WORKFLOW_METRICS + RUN_METRICS:
        assert series(text, name), f"{name} missing from the scrape"
    for name in WORKFLOW_METRICS:
        for s in series(text, name):
            assert {"workspace", "workflow_id", "workflow_name"} <= s.labels.keys(), (name, s)
    for name in RUN_METRICS:
        for s in series(text, name):
            assert {"run_id", "run_number"} <= s.labels.keys(), (name, s)
            assert s.labels["workflow_name"], (name, s)


def test_health_metrics_tell_the_poll_succeeded(scraped: tuple[FakeOnePin, str]) -> None:
    fake, text = scraped
    assert value(text, "onepin_up", workspace="prod") == 1
    for wf in fake.workflows.values():
        assert value(text, "onepin_workflow_up", workflow_id=wf.id) == 1, wf.id
        assert value(text, "onepin_workflow_info", workflow_id=wf.id, workflow_name=wf.name) == 1
    sent = value(
        text, "onepin_api_requests_total", endpoint="list_workflows", code="200", workspace="prod"
    )
    assert sent == fake.count("list_workflows") == 1


def test_latest_run_values(scraped: tuple[FakeOnePin, str]) -> None:
    _, text = scraped
    wf = {"workflow_id": "wf-completed"}
    assert value(text, "onepin_workflow_last_run_number", **wf) == 7
    assert value(text, "onepin_workflow_last_run_token_cost", **wf) == 350
    assert value(text, "onepin_workflow_last_run_duration_seconds", **wf) == 20 * 60
    assert value(text, "onepin_workflow_last_run_memory_bytes", **wf) == 256 * MIB
    assert value(text, "onepin_workflow_last_run_cpu_seconds", **wf) == 12.5
    assert value(text, "onepin_workflow_last_run_completed_timestamp_seconds", **wf) == (
        NOW_TS - 40 * 60
    )
    states = {
        s.labels["status"]: s.value for s in series(text, "onepin_workflow_last_run_status", **wf)
    }
    assert states == {
        "pending": 0, "running": 0, "paused": 0, "completed": 1, "failed": 0, "cancelled": 0
    }  # fmt: skip
    failed = {"workflow_id": "wf-failed"}
    assert value(text, "onepin_workflow_last_run_status", status="failed", **failed) == 1
    cancelled = {"workflow_id": "wf-cancelled"}
    assert value(text, "onepin_workflow_last_run_status", status="cancelled", **cancelled) == 1


def test_unknown_status_passes_through_as_its_own_value(scraped: tuple[FakeOnePin, str]) -> None:
    _, text = scraped
    wf = {"workflow_id": "wf-unknown"}
    assert value(text, "onepin_workflow_last_run_status", status="quarantined", **wf) == 1
    assert value(text, "onepin_workflow_last_run_status", status="running", **wf) == 0
    # Not terminal, so it is watched as an active run.
    assert value(text, "onepin_run_status", status="quarantined", run_id="r-unk-1") == 1


def test_active_runs_have_run_series_with_durations_from_the_api_clock(
    scraped: tuple[FakeOnePin, str],
) -> None:
    _, text = scraped
    run = {"run_id": "r-run-2", "run_number": "2", "workflow_name": "nightly-etl"}
    assert value(text, "onepin_run_status", status="running", **run) == 1
    assert value(text, "onepin_run_status", status="pending", **run) == 0
    # meta.timestamp (12:00) minus started_at (11:55), not the exporter's clock.
    assert value(text, "onepin_run_duration_seconds", **run) == 300
    assert value(text, "onepin_run_finished_steps", **run) == 4
    assert value(text, "onepin_run_total_steps", **run) == 10
    assert value(text, "onepin_run_memory_bytes", **run) == 256 * MIB
    assert value(text, "onepin_run_token_cost", **run) == 100
    pending = {"run_id": "r-pend-1"}
    assert value(text, "onepin_run_status", status="pending", **pending) == 1
    assert value(text, "onepin_run_duration_seconds", **pending) is None
    assert value(text, "onepin_run_started_timestamp_seconds", **pending) is None
    assert value(text, "onepin_run_created_timestamp_seconds", **pending) == NOW_TS - 3600
    # Terminal runs have no run-level series.
    for rid in ("r-comp-1", "r-fail-1", "r-canc-1", "r-run-1"):
        assert not series(text, "onepin_run_status", run_id=rid), rid


def test_absent_api_values_are_absent_metrics_not_zeros(scraped: tuple[FakeOnePin, str]) -> None:
    _, text = scraped
    nousage = {"run_id": "r-nous-1"}
    assert value(text, "onepin_run_status", status="running", **nousage) == 1
    for name in ("cpu_seconds", "memory_bytes", "api_calls", "total_nodes"):
        assert value(text, f"onepin_run_{name}", **nousage) is None, name
    tokens = {"workflow_id": "wf-tokens"}
    assert value(text, "onepin_workflow_last_run_tokens_used", **tokens) == 350
    assert value(text, "onepin_workflow_last_run_errors", **tokens) == 0
    assert value(text, "onepin_workflow_last_run_api_calls", **tokens) == 12
    assert value(text, "onepin_workflow_last_run_cpu_seconds", **tokens) is None
    assert value(text, "onepin_workflow_last_run_memory_bytes", **tokens) is None
    idle = {"workflow_id": "wf-idle"}
    assert value(text, "onepin_workflow_up", **idle) == 1
    assert value(text, "onepin_workflow_pass_ratio", **idle) is None
    assert value(text, "onepin_workflow_average_run_duration_seconds", **idle) is None
    assert not series(text, "onepin_workflow_last_run_status", **idle)


def test_per_status_counts_and_summary_values(scraped: tuple[FakeOnePin, str]) -> None:
    _, text = scraped
    wf = {"workflow_id": "wf-running"}
    assert value(text, "onepin_workflow_runs", status="completed", **wf) == 1
    assert value(text, "onepin_workflow_runs", status="running", **wf) == 1
    assert value(text, "onepin_workflow_runs", status="failed", **wf) == 0
    assert value(text, "onepin_workflow_pass_ratio", **wf) == 1.0
    assert value(text, "onepin_workflow_average_run_duration_seconds", **wf) == 600.0
    assert value(text, "onepin_workflow_pass_ratio", workflow_id="wf-failed") == 0.0


def test_finished_counters_start_at_zero_so_the_first_failure_shows(
    scraped: tuple[FakeOnePin, str],
) -> None:
    _, text = scraped
    # History that finished before the exporter started is not counted...
    for status in ("completed", "failed", "cancelled"):
        assert (
            value(
                text, "onepin_workflow_runs_finished_total", workflow_id="wf-failed", status=status
            )
            == 0
        )
    # ...but the series exist, so increase() sees the first run that fails from now on.
    assert value(text, "onepin_workflow_run_duration_seconds_count", workflow_id="wf-failed") == 0


def test_a_run_finishing_is_counted_once_and_its_status_fetched_once() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake)
    poll(poller)
    run = next(r for r in fake.workflows["wf-running"].runs if r.id == "r-run-2")
    run.status, run.finished_steps, run.completed_at = "failed", 6, "2026-11-29T11:58:00Z"
    run.token_cost, run.error = 420, "step 6 timed out"
    for _ in range(5):
        text = exposition(poll(poller))
    wf = {"workflow_id": "wf-running"}
    assert value(text, "onepin_workflow_runs_finished_total", status="failed", **wf) == 1
    assert value(text, "onepin_workflow_runs_finished_total", status="completed", **wf) == 0
    assert value(text, "onepin_workflow_run_duration_seconds_count", **wf) == 1
    assert value(text, "onepin_workflow_run_duration_seconds_sum", **wf) == 180
    assert value(text, "onepin_workflow_run_token_cost_total", **wf) == 420
    assert value(text, "onepin_workflow_last_run_status", status="failed", **wf) == 1
    assert not series(text, "onepin_run_status", run_id="r-run-2")
    status_calls = [r for r in fake.requests if r.url.path.endswith("/r-run-2/status")]
    assert len(status_calls) == 2  # once while running, once when it was seen failed


def test_terminal_runs_are_fetched_at_most_once_over_many_scrapes() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake)
    for _ in range(6):
        poll(poller)
    for rid in ("r-comp-1", "r-fail-1", "r-canc-1", "r-tok-1"):
        calls = [r for r in fake.requests if r.url.path.endswith(f"/{rid}/status")]
        assert len(calls) <= 1, rid
    # Older history is never fetched one by one.
    assert not [r for r in fake.requests if r.url.path.endswith("/r-run-1/status")]
    # Unchanged workflows are not listed again: one list per workflow in six polls.
    assert fake.count("list_runs") == len(fake.workflows)
    assert fake.count("list_workflows") == 6


def test_a_new_run_after_start_up_is_counted_when_it_finishes_between_polls() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake)
    poll(poller)
    fake.workflows["wf-completed"].runs.append(
        FakeRun("r-comp-2", 8, "completed", created_at="2026-11-29T11:40:00Z",
                started_at="2026-11-29T11:41:00Z", completed_at="2026-11-29T11:51:00Z")
    )  # fmt: skip
    text = exposition(poll(poller))
    wf = {"workflow_id": "wf-completed"}
    assert value(text, "onepin_workflow_runs_finished_total", status="completed", **wf) == 1
    assert value(text, "onepin_workflow_last_run_number", **wf) == 8
    assert value(text, "onepin_workflow_run_duration_seconds_sum", **wf) == 600


def test_two_concurrent_scrapes_cause_one_poll() -> None:
    import asyncio

    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake)

    async def two() -> None:
        first, second = await asyncio.gather(poller.snapshot(5), poller.snapshot(5))
        assert first is second

    asyncio.run(two())
    assert poller.polls == 1
    assert fake.count("list_workflows") == 1


def test_scrapes_closer_than_min_interval_reuse_the_last_poll() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake, make_config(collection="{min_interval: 1h}"))
    first = poll(poller)
    assert poll(poller) is first
    assert fake.count("list_workflows") == 1


def test_run_series_can_be_switched_off_and_triggered_by_is_opt_in() -> None:
    fake = FakeOnePin(standard_workspace())
    text = exposition(poll(poller_for(fake)))
    assert "Jane Doe" not in text
    with_user = exposition(poll(poller_for(fake)), triggered_by=True)
    assert value(with_user, "onepin_run_status", run_id="r-run-2", status="running",
                 triggered_by="Jane Doe") == 1  # fmt: skip
    off = make_config(collection="{min_interval: 0s, run_series: false}")
    text = exposition(poll(poller_for(fake, off)))
    assert not series(text, "onepin_run_status")
    assert value(text, "onepin_workflow_last_run_status", workflow_id="wf-running",
                 status="running") == 1  # fmt: skip


def test_promtool_check_metrics_reports_nothing() -> None:
    promtool = require_binary("promtool")
    fake = FakeOnePin(standard_workspace())
    config = make_config()
    text = render_text(poll(poller_for(fake, config)), config)
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", (
        result.stdout + result.stderr
    )


def test_workflow_without_run_status_counts_falls_back_to_runs_summary() -> None:
    wf = FakeWorkflow(
        "wf-old", "old-api", [FakeRun("o1", 1, "completed", completed_at="2026-11-29T11:10:00Z")],
        with_counts=False,
    )  # fmt: skip
    fake = FakeOnePin([wf])
    text = exposition(poll(poller_for(fake)))
    assert value(text, "onepin_workflow_runs", workflow_id="wf-old", status="completed") == 1
    assert value(text, "onepin_workflow_pass_ratio", workflow_id="wf-old") == 1.0


def test_unchanged_workflows_are_handed_over_as_the_same_snapshot_object() -> None:
    # The renderer keeps rendered lines per snapshot version: an idle workflow must keep its
    # object and version, and a changed one must get a new one (or the scrape would show stale
    # values).
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake)
    first = {wf.id: wf for wf in poll(poller).workspaces[0].workflows}
    fake.workflows["wf-completed"].runs[0].finished_steps = 10  # no catalogue change: not seen
    fake.workflows["wf-failed"].runs.append(FakeRun("r-fail-2", 4, "running"))
    second = {wf.id: wf for wf in poll(poller).workspaces[0].workflows}
    assert second["wf-idle"] is first["wf-idle"]
    assert second["wf-completed"] is first["wf-completed"]
    assert second["wf-failed"] is not first["wf-failed"]
    assert second["wf-running"] is not first["wf-running"]  # its active run was polled
    assert second["wf-idle"].version == first["wf-idle"].version != 0
    for changed in ("wf-failed", "wf-running"):
        assert second[changed].version not in {wf.version for wf in first.values()}
    text = exposition(poll(poller))
    assert value(text, "onepin_run_status", run_id="r-fail-2", status="running") == 1


def test_renamed_workflow_gets_new_labels() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake)
    poll(poller)
    fake.workflows["wf-idle"].name = "renamed"
    text = exposition(poll(poller))
    assert value(text, "onepin_workflow_info", workflow_id="wf-idle", workflow_name="renamed") == 1
    assert not series(text, "onepin_workflow_info", workflow_name="never-ran")


def test_openmetrics_output_parses_and_matches_the_text_format() -> None:
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as parse_openmetrics,
    )

    fake = FakeOnePin(standard_workspace())
    config = make_config()
    snapshot = poll(poller_for(fake, config))
    om = render_text(snapshot, config, "application/openmetrics-text; version=1.0.0")
    assert om.endswith("# EOF\n") and om.count("# EOF") == 1
    om_samples = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for f in parse_openmetrics(om)
        for s in f.samples
        if s.name.startswith("onepin_")
    }
    text_samples = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for s in samples(render_text(snapshot, config))
        if s.name.startswith("onepin_")
    }
    assert om_samples == text_samples
