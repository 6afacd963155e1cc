"""One pass-ratio rule everywhere: the API's, completed / (completed + failed) (issue 16).

Cancelled runs are user-aborted, not a quality failure: the official SDK's Runs Summary leaves
them out (onepin-api.md §8). `onepin_workflow_pass_ratio` must mean the same whether Runs Summary
is allowed for the key or refused (then the exporter derives it from the catalogue's counts).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import pytest

from exporter.publish import derived_pass_ratio
from tests.fakeapi import FakeOnePin, FakeRun, FakeWorkflow, error, ok
from tests.helpers import exposition, make_config, poll, poller_for, value


@pytest.mark.parametrize(
    ("counts", "ratio"),
    [
        ({"completed": 3, "failed": 1, "cancelled": 2, "running": 5}, 0.75),
        ({"completed": 3, "cancelled": 9}, 1.0),
        ({"completed": 0, "failed": 2, "cancelled": 2}, 0.0),
        ({"cancelled": 4, "running": 1, "paused": 1}, None),  # nothing passed or failed yet
        ({"pending": 2}, None),
        ({}, None),
        ({"completed": 1, "failed": 3, "quarantined": 7}, 0.25),  # unknown statuses: not counted
    ],
)
def test_derived_pass_ratio_is_completed_over_completed_and_failed(
    counts: Mapping[str, int], ratio: float | None
) -> None:
    assert derived_pass_ratio(counts) == ratio


def runs(completed: int, failed: int, cancelled: int) -> list[FakeRun]:
    statuses = ["completed"] * completed + ["failed"] * failed + ["cancelled"] * cancelled
    return [
        FakeRun(f"r-{i}", i, status, completed_at="2026-11-29T11:30:00Z")
        for i, status in enumerate(statuses, 1)
    ]


def workspace() -> list[FakeWorkflow]:
    return [
        FakeWorkflow("wf-mixed", "mixed", runs(3, 1, 2)),  # 3 / (3 + 1)
        FakeWorkflow("wf-cancelled", "only-cancelled", runs(0, 0, 2)),  # no ratio
        FakeWorkflow("wf-failing", "failing", runs(1, 3, 4)),  # 1 / (1 + 3)
    ]


def summary_as_the_sdk_defines_it(request: httpx.Request) -> httpx.Response | None:
    """Runs Summary written by hand as the SDK 0.16.1 models it: `pass_rate` excludes
    cancelled runs, and `delivered_audio_ms` sits beside the counts."""
    if not request.url.path.endswith("/runs/summary"):
        return None
    bodies = {
        "wf-mixed": (3, 1, 2, 0.75),
        "wf-cancelled": (0, 0, 2, None),
        "wf-failing": (1, 3, 4, 0.25),
    }
    completed, failed, cancelled, rate = bodies[request.url.path.split("/")[4]]
    return ok({
        "total_runs": completed + failed + cancelled, "completed": completed, "failed": failed,
        "cancelled": cancelled, "pending": 0, "running": 0, "paused": 0, "pass_rate": rate,
        "average_duration_seconds": 600.0 if completed else None, "delivered_audio_ms": 5400000,
    })  # fmt: skip


def refused(request: httpx.Request) -> httpx.Response | None:
    if request.url.path.endswith("/runs/summary"):
        return error(403, "FORBIDDEN", "this endpoint needs a session token")
    return None


def ratios(fake: FakeOnePin, runs_summary: bool = True) -> dict[str, float | None]:
    flag = "true" if runs_summary else "false"
    config = make_config(collection=f"{{min_interval: 0s, runs_summary: {flag}}}")
    poller = poller_for(fake, config)
    poll(poller)
    text = exposition(poll(poller))  # the second poll: Runs Summary off for good if refused
    return {
        wid: value(text, "onepin_workflow_pass_ratio", workflow_id=wid) for wid in fake.workflows
    }


EXPECTED = {"wf-mixed": 0.75, "wf-cancelled": None, "wf-failing": 0.25}


def test_runs_summary_refused_the_ratio_leaves_cancelled_runs_out() -> None:
    fake = FakeOnePin(workspace())
    fake.overrides.append(refused)
    assert ratios(fake) == EXPECTED
    assert fake.count("runs_summary") >= 1  # it was asked, refused, and the fallback used


def test_runs_summary_switched_off_the_ratio_leaves_cancelled_runs_out() -> None:
    fake = FakeOnePin(workspace())
    assert ratios(fake, runs_summary=False) == EXPECTED
    assert fake.count("runs_summary") == 0


def test_the_ratio_is_the_same_with_runs_summary_allowed_and_refused() -> None:
    allowed = FakeOnePin(workspace())
    allowed.overrides.append(summary_as_the_sdk_defines_it)
    denied = FakeOnePin(workspace())
    denied.overrides.append(refused)
    assert ratios(allowed) == ratios(denied) == EXPECTED
    assert allowed.count("runs_summary") >= 3  # the allowed side did use Runs Summary


def test_a_summary_pass_rate_by_the_older_rule_does_not_change_the_meaning() -> None:
    """The older doc pages (and tests/fakeapi.py) count cancelled runs in pass_rate: the
    exporter computes the ratio from the summary's counts, so it keeps one meaning."""
    fake = FakeOnePin(workspace())  # its summary's pass_rate counts cancelled runs
    assert ratios(fake) == EXPECTED


def test_without_catalogue_counts_the_ratio_comes_from_the_summary_counts() -> None:
    fake = FakeOnePin([FakeWorkflow("wf-old", "old-api", runs(3, 1, 2), with_counts=False)])
    assert ratios(fake) == {"wf-old": 0.75}
