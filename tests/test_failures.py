"""One failing workflow or endpoint never empties the scrape; a bad key gives onepin_up 0."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from exporter.config import parse_config
from tests.fakeapi import API, TOKEN, FakeOnePin, error, standard_workspace
from tests.helpers import exposition, make_config, poll, poller_for, series, value


def fail_path(suffix: str, response: httpx.Response) -> object:
    def override(request: httpx.Request) -> httpx.Response | None:
        return response if request.url.path.endswith(suffix) else None

    return override


def test_404_and_malformed_json_on_one_workflow_each_leave_the_others_intact() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake)
    before = exposition(poll(poller))
    # A new run makes both workflows list their runs again; those calls now fail.
    fake.workflows["wf-failed"].runs[0].run_number = 4
    fake.workflows["wf-failed"].runs[0].created_at = "2026-11-29T11:59:00Z"
    fake.workflows["wf-cancelled"].runs[0].created_at = "2026-11-29T11:59:00Z"
    fake.overrides += [
        fail_path("/wf-failed/runs", error(404, "NOT_FOUND", "workflow not found")),
        fail_path("/wf-cancelled/runs", httpx.Response(200, text="{not json")),
    ]
    after = exposition(poll(poller))
    assert value(after, "onepin_up") == 1
    assert value(after, "onepin_workflow_up", workflow_id="wf-failed") == 0
    assert value(after, "onepin_workflow_up", workflow_id="wf-cancelled") == 0
    for wid in ("wf-running", "wf-completed", "wf-pending", "wf-tokens"):
        assert value(after, "onepin_workflow_up", workflow_id=wid) == 1, wid
        for name in ("onepin_workflow_last_run_number", "onepin_workflow_last_run_token_cost"):
            assert value(after, name, workflow_id=wid) == value(before, name, workflow_id=wid)
    # The failed workflow's last good data is still served (within stale_after).
    assert value(after, "onepin_workflow_last_run_number", workflow_id="wf-failed") == 3


def test_stale_data_is_dropped_after_stale_after() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake, make_config(collection="{min_interval: 0s, stale_after: 0s}"))
    poll(poller)
    fake.workflows["wf-failed"].runs[0].created_at = "2026-11-29T11:59:00Z"
    fake.overrides.append(fail_path("/wf-failed/runs", httpx.Response(500, json={})))
    text = exposition(poll(poller))
    assert value(text, "onepin_workflow_up", workflow_id="wf-failed") == 0
    assert value(text, "onepin_workflow_last_run_number", workflow_id="wf-failed") is None
    assert value(text, "onepin_workflow_last_run_number", workflow_id="wf-completed") == 7


def test_a_rejected_key_gives_onepin_up_0_and_health_metrics_still_served() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake, make_config(token="op_live_wrongwrongwrongwrongwrongwrong"))
    text = exposition(poll(poller))
    assert value(text, "onepin_up", workspace="prod") == 0
    assert series(text, "onepin_exporter_build_info")
    assert value(text, "onepin_api_requests_total", endpoint="list_workflows", code="401") == 1
    assert not series(text, "onepin_workflow_up")


def test_a_rejected_key_backs_off_instead_of_burning_quota() -> None:
    fake = FakeOnePin(standard_workspace())
    poller = poller_for(fake, make_config(token="op_live_wrongwrongwrongwrongwrongwrong"))
    for _ in range(20):
        poll(poller)
    assert len(fake.requests) == 1


def test_a_run_whose_status_fails_to_decode_is_shown_from_its_list_item() -> None:
    """Issue "Trust": an unusable status record no longer takes the workflow down (it wedged
    it for good); the run is shown, and counted when it ends, from its List Runs item."""
    fake = FakeOnePin(standard_workspace())

    def bad_status(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/r-run-2/status"):
            return httpx.Response(200, json={"data": {"id": "r-run-2", "status": 7}})
        return None

    fake.overrides.append(bad_status)
    text = exposition(poll(poller_for(fake)))
    assert value(text, "onepin_workflow_up", workflow_id="wf-running") == 1
    assert value(text, "onepin_run_status", run_id="r-run-2", status="running") == 1
    assert value(text, "onepin_workflow_up", workflow_id="wf-pending") == 1
    assert value(text, "onepin_run_status", run_id="r-pend-1", status="pending") == 1


def test_explicit_workflows_missing_from_the_catalogue_are_marked_down() -> None:
    fake = FakeOnePin(standard_workspace())
    config = make_config(
        extra_workspace_yaml="    workflows:\n      - {id: wf-running, name: etl}\n"
        "      - id: wf-gone\n"
    )
    text = exposition(poll(poller_for(fake, config)))
    assert value(text, "onepin_workflow_up", workflow_id="wf-running", workflow_name="etl") == 1
    assert value(text, "onepin_workflow_up", workflow_id="wf-gone") == 0
    assert not series(text, "onepin_workflow_up", workflow_id="wf-completed")


def test_discovery_include_and_exclude_select_workflows_by_name() -> None:
    fake = FakeOnePin(standard_workspace())
    config = make_config(
        extra_workspace_yaml="    discovery:\n"
        "      {include: ['^(nightly|daily|tts)'], exclude: ['^tts']}\n"
    )
    text = exposition(poll(poller_for(fake, config)))
    names = {s.labels["workflow_name"] for s in series(text, "onepin_workflow_up")}
    assert names == {"nightly-etl", "daily-report"}


def test_a_lasting_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeOnePin(standard_workspace())
    calls = iter(range(1000))

    def outage(request: httpx.Request) -> httpx.Response | None:
        body = {"error": {"code": "SERVER_ERROR", "message": "backend down"},
                "meta": {"request_id": f"req_{next(calls)}"}}  # fmt: skip
        return httpx.Response(503, json=body)

    fake.overrides.append(outage)
    poller = poller_for(fake, make_config(http="{timeout: 5s, max_retries: 0}"))
    with caplog.at_level(logging.INFO, logger="exporter"):
        for _ in range(4):
            poll(poller)
        fake.overrides.clear()
        poll(poller)
        poll(poller)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("API unreachable" in m for m in messages) == 1, messages
    assert sum("API reachable again" in m for m in messages) == 1, messages


def test_a_poll_cut_by_the_deadline_keeps_what_arrived_and_the_next_one_goes_on() -> None:
    fake = FakeOnePin(standard_workspace())
    fake.delay = lambda r: 5.0 if r.url.path.endswith("/status") else 0.0
    poller = poller_for(fake)
    text = exposition(poll(poller, timeout=1.0))
    assert value(text, "onepin_up") == 1
    # A cold start: shown as the catalogue describes it (up), its run's details still to come.
    assert value(text, "onepin_workflow_up", workflow_id="wf-running") == 1
    assert value(text, "onepin_workflow_last_run_status", workflow_id="wf-running",
                 status="running") == 1  # fmt: skip
    # Its run list arrived and is shown; the latest run's cost (Get Run Status) is still to come.
    assert value(text, "onepin_run_status", run_id="r-run-2", status="running") == 1
    assert value(text, "onepin_workflow_last_run_token_cost", workflow_id="wf-completed") is None
    assert value(text, "onepin_exporter_backlog_workflows") >= 1
    assert 0 < fake.count("list_runs") <= len(fake.workflows)
    fake.delay = None
    text = exposition(poll(poller))
    # Each workflow listed once over both polls: the run lists that arrived were kept.
    assert fake.count("list_runs") == len(fake.workflows)
    for wid in fake.workflows:
        assert value(text, "onepin_workflow_up", workflow_id=wid) == 1, wid
    assert value(text, "onepin_exporter_backlog_workflows") == 0
    assert value(text, "onepin_run_status", run_id="r-run-2", status="running") == 1
    assert value(text, "onepin_workflow_last_run_token_cost", workflow_id="wf-completed") == 350


def test_a_fixed_token_file_is_picked_up_at_once_despite_the_backoff(tmp_path: Path) -> None:
    import os

    secret = tmp_path / "token"
    secret.write_text("op_live_revokedrevokedrevokedrevoked00\n")
    fake = FakeOnePin(standard_workspace())
    config = parse_config(
        f"workspaces:\n  - {{name: prod, api_url: '{API}', token_file: {secret}}}\n"
        "collection: {min_interval: 0s}\n"
    )
    poller = poller_for(fake, config)
    assert value(exposition(poll(poller)), "onepin_up") == 0
    for _ in range(5):
        poll(poller)
    assert len(fake.requests) == 1  # backing off: the rejected key is not tried again
    secret.write_text(TOKEN + "\n")
    os.utime(secret, (1, 1))  # a new mtime even within the file system's time resolution
    text = exposition(poll(poller))
    assert value(text, "onepin_up") == 1
    assert value(text, "onepin_workflow_up", workflow_id="wf-running") == 1
