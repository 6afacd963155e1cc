"""The metrics of the fields the official SDK adds (issue 16; onepin-api.md §8), as rendered."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.apistats import RUN_DURATION_BUCKETS, ApiStats, Histogram
from exporter.models import KNOWN_PAUSE_REASONS, Run
from exporter.rendering import MetricsRenderer
from exporter.server import ServerState, landing_page
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkflowTotals, WorkspaceSnapshot
from tests.fakeapi import FakeOnePin, FakeRun, FakeWorkflow
from tests.helpers import exposition, make_config, poll, poller_for, samples, series, value

PAUSE_ERROR = "TTS provider unavailable: upstream 503 (retrying)"


def active(pause_reason: str | None, status: str = "paused") -> Run:
    return Run(
        "r-9", 9, status, 100.0, started_at=110.0, observed_at=400.0, detailed=True,
        total_nodes=11, finished_nodes=4, paused_ms=90_500, pause_reason=pause_reason,
        pause_error=PAUSE_ERROR if pause_reason not in (None, "user") else None,
    )  # fmt: skip


def latest_finished() -> Run:
    return Run(
        "r-8", 8, "completed", 10.0, started_at=11.0, completed_at=80.0, detailed=True,
        total_nodes=11, finished_nodes=11, paused_ms=30_000, credits=7.0,
        delivered_audio_ms=5_400_000, output_line_count=120,
    )  # fmt: skip


def render(*runs: Run, last: Run | None = None) -> str:
    totals = WorkflowTotals({}, Histogram(RUN_DURATION_BUCKETS), 0.0, 0.0)
    wf = WorkflowSnapshot(
        "wf-1", "voices", True, True, totals, last_run=last or (runs[-1] if runs else None),
        active_runs=runs,
    )  # fmt: skip
    snapshot = Snapshot((WorkspaceSnapshot("prod", True, (wf,), ApiStats()),), 0.0)
    return MetricsRenderer().render(snapshot)


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        *((known, list(KNOWN_PAUSE_REASONS)) for known in KNOWN_PAUSE_REASONS),
        # An open enum: a reason the exporter does not know passes through as its own value.
        ("provider_quota", [*KNOWN_PAUSE_REASONS, "provider_quota"]),
    ],
)
def test_pause_reason_is_a_state_set_over_the_known_reasons(reason: str, shown: list[str]) -> None:
    text = render(active(reason))
    lines = series(text, "onepin_run_pause_reason", run_id="r-9", run_number="9")
    assert {s.labels["reason"]: s.value for s in lines} == {
        r: (1.0 if r == reason else 0.0) for r in shown
    }
    assert all(s.labels["workflow_name"] == "voices" for s in lines)


@pytest.mark.parametrize("status", ["running", "paused", "pending"])
def test_a_run_without_a_pause_reason_has_no_pause_reason_series(status: str) -> None:
    # Not paused, or an API that does not send pause_reason: there is no reason to show.
    assert not series(render(active(None, status)), "onepin_run_pause_reason")


def test_the_automatic_pause_text_is_never_a_label_nor_a_value() -> None:
    text = render(active("provider_outage"))
    assert "TTS provider" not in text
    assert "pause_error" not in text


def test_active_run_nodes_and_paused_time() -> None:
    text = render(active("provider_outage"))
    assert value(text, "onepin_run_finished_nodes", run_id="r-9") == 4
    assert value(text, "onepin_run_total_nodes", run_id="r-9") == 11
    assert value(text, "onepin_run_paused_seconds", run_id="r-9") == 90.5
    # Active time: 400 - 110 - 90.5 paused.
    assert value(text, "onepin_run_duration_seconds", run_id="r-9") == 199.5


def test_latest_run_nodes_credits_and_delivered_audio() -> None:
    text = render(active(None, "running"), last=latest_finished())
    wf = {"workflow_id": "wf-1", "workflow_name": "voices"}
    assert value(text, "onepin_workflow_last_run_finished_nodes", **wf) == 11
    assert value(text, "onepin_workflow_last_run_credits", **wf) == 7
    assert value(text, "onepin_workflow_last_run_delivered_audio_seconds", **wf) == 5400
    # Paused time is a concern of active runs only (a finished run's duration leaves it out).
    names = {s.name for s in samples(text)}
    assert "onepin_workflow_last_run_paused_seconds" not in names
    # Delivered audio is a List Runs field: not a per-active-run series.
    assert "onepin_run_delivered_audio_seconds" not in names


def test_values_the_api_did_not_send_are_absent() -> None:
    bare = Run("r-1", 1, "running", 100.0, detailed=True)
    names = {s.name for s in samples(render(bare))}
    for name in (
        "onepin_run_finished_nodes",
        "onepin_run_paused_seconds",
        "onepin_run_pause_reason",
        "onepin_workflow_last_run_finished_nodes",
        "onepin_workflow_last_run_credits",
        "onepin_workflow_last_run_delivered_audio_seconds",
    ):
        assert name not in names, name


# --- credits and delivered audio: sent only in List Runs, not by Get Run Status ----------------


@dataclass
class ListedRun(FakeRun):
    """A run whose List Runs item carries what the SDK's list model adds (its status does not)."""

    credits: int | None = None
    delivered_audio_ms: int | None = None

    def list_item(self) -> dict[str, Any]:
        return {
            **super().list_item(),
            "credits": self.credits,
            "delivered_audio_ms": self.delivered_audio_ms,
        }


def costed_workspace() -> FakeOnePin:
    return FakeOnePin([
        FakeWorkflow("wf-done", "daily-report", [
            ListedRun("r-d-1", 7, "completed", completed_at="2026-11-29T11:20:00Z",
                      credits=4, delivered_audio_ms=5_400_000),
        ]),
        FakeWorkflow("wf-busy", "nightly-tts", [
            ListedRun("r-b-1", 1, "completed", completed_at="2026-11-29T11:10:00Z", credits=2,
                      delivered_audio_ms=1_000),
            ListedRun("r-b-2", 2, "running", created_at="2026-11-29T11:50:00Z",
                      started_at="2026-11-29T11:55:00Z"),
        ]),
    ])  # fmt: skip


def test_the_latest_runs_credits_survive_its_status_answer() -> None:
    """At start-up the latest finished run is listed, then asked for its status (which lacks
    credits and delivered audio): the listed values stay."""
    text = exposition(poll(poller_for(costed_workspace())))
    assert value(text, "onepin_workflow_last_run_credits", workflow_id="wf-done") == 4
    assert (
        value(text, "onepin_workflow_last_run_delivered_audio_seconds", workflow_id="wf-done")
        == 5400
    )
    # An active run's list values would be stale by the next poll: not shown.
    assert value(text, "onepin_workflow_last_run_credits", workflow_id="wf-busy") is None
    assert not series(text, "onepin_run_credits")


def test_a_run_that_finishes_while_watched_gets_its_credits_from_one_more_run_list() -> None:
    fake = costed_workspace()
    poller = poller_for(fake)
    poll(poller)
    busy = fake.workflows["wf-busy"].runs[1]
    assert isinstance(busy, ListedRun)
    busy.status, busy.completed_at = "completed", "2026-11-29T11:58:00Z"
    busy.credits, busy.delivered_audio_ms = 9, 2_500
    lists = fake.count("list_runs")
    text = exposition(poll(poller))
    assert fake.count("list_runs") == lists + 1  # the catalogue says the latest run finished
    wf = {"workflow_id": "wf-busy"}
    assert value(text, "onepin_workflow_last_run_number", **wf) == 2
    assert value(text, "onepin_workflow_last_run_credits", **wf) == 9
    assert value(text, "onepin_workflow_last_run_delivered_audio_seconds", **wf) == 2.5
    assert value(text, "onepin_workflow_runs_finished_total", status="completed", **wf) == 1
    # Settled: no more run lists.
    text = exposition(poll(poller))
    assert fake.count("list_runs") == lists + 1
    assert value(text, "onepin_workflow_last_run_credits", **wf) == 9
    assert value(text, "onepin_workflow_runs_finished_total", status="completed", **wf) == 1


# --- the landing page shows the automatic pause's explanation -----------------------------------


def page_for(*runs: Run) -> str:
    totals = WorkflowTotals({}, Histogram(RUN_DURATION_BUCKETS), 0.0, 0.0)
    wf = WorkflowSnapshot("wf-1", "voices", True, True, totals, last_run=runs[-1], active_runs=runs)
    snapshot = Snapshot((WorkspaceSnapshot("prod", True, (wf,), ApiStats()),), 0.0)
    state = ServerState(make_config(), 0.0, CollectorRegistry(), MetricsRenderer())
    return landing_page(state, snapshot)


def test_the_landing_page_lists_paused_runs_with_the_pause_explanation() -> None:
    page = page_for(active("provider_outage"), Run("r-2", 10, "running", 1.0, detailed=True))
    row = next(line for line in page.splitlines() if "provider_outage" in line)
    assert "voices" in row and ">9<" in row and "90s" in row and PAUSE_ERROR in row
    assert "r-2" not in page and ">10<" not in page  # not paused: not listed


def test_the_pause_explanation_on_the_page_is_escaped_and_bounded() -> None:
    hostile = "<script>alert(1)</script>\r\nforged\x1b[31m" + "x" * 5000
    run = dataclasses.replace(active("solar_flare"), pause_error=hostile)
    page = page_for(run)
    row = next(line for line in page.splitlines() if "solar_flare" in line)
    assert "<script>" not in page and "\x1b" not in page and "\r" not in row
    assert "&lt;script&gt;" in row and "x" * 500 not in row


def test_the_page_lists_at_most_twenty_paused_runs() -> None:
    runs = [dataclasses.replace(active("user"), id=f"r-{i}", run_number=i) for i in range(25)]
    page = page_for(*runs)
    assert page.count("<td>user</td>") == 20
    assert "and 5 more" in page
