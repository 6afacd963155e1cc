"""Label values with a backslash, a double quote or a newline, written as the exposition formats
require and read back unchanged (issue 17: only Hypothesis, when it happened to generate a `\\`,
caught an unescaped backslash)."""

from __future__ import annotations

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter.apistats import RUN_DURATION_BUCKETS, ApiStats, Histogram
from exporter.models import Run
from exporter.rendering import MetricsRenderer
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkflowTotals, WorkspaceSnapshot
from tests.fakeapi import FakeOnePin, FakeRun, FakeWorkflow
from tests.helpers import exposition, make_config, poll, poller_for, series

# Each value with its escaped form: backslash first, so that \n in a name stays two characters.
WORKSPACE = ('prod\\eu "b"', 'prod\\\\eu \\"b\\"')
WORKFLOW_ID = ('wf\\1\n"x"', 'wf\\\\1\\n\\"x\\"')
NAME = ('C:\\temp\\new "etl"\nline 2', 'C:\\\\temp\\\\new \\"etl\\"\\nline 2')
RUN_ID = ('r\\n-1"', 'r\\\\n-1\\"')  # a backslash then n: not a newline
STATUS = ('held\\"on\nhold', 'held\\\\\\"on\\nhold')  # an unknown status passes through
USER = ('Jane "JD" Doe\\admin', 'Jane \\"JD\\" Doe\\\\admin')


def snapshot() -> Snapshot:
    run = Run(
        RUN_ID[0], 3, STATUS[0], 100.0, started_at=110.0, observed_at=170.0,
        triggered_by=USER[0], detailed=True,
    )  # fmt: skip
    totals = WorkflowTotals({"completed": 1}, Histogram(RUN_DURATION_BUCKETS), 0.0, 0.0)
    wf = WorkflowSnapshot(
        WORKFLOW_ID[0], NAME[0], True, True, totals, {"completed": 1, STATUS[0]: 1}, 1.0, 60.0,
        run, (run,),
    )  # fmt: skip
    return Snapshot((WorkspaceSnapshot(WORKSPACE[0], True, (wf,), ApiStats()),), 0.0)


BASE = {"workspace": WORKSPACE[0], "workflow_id": WORKFLOW_ID[0], "workflow_name": NAME[0]}


def test_label_values_are_escaped_in_the_text() -> None:
    text = MetricsRenderer(triggered_by_label=True).render(snapshot())
    base = f'workspace="{WORKSPACE[1]}",workflow_id="{WORKFLOW_ID[1]}",workflow_name="{NAME[1]}"'
    assert f"onepin_workflow_info{{{base}}} 1.0\n" in text
    assert f'onepin_workflow_runs{{{base},status="{STATUS[1]}"}} 1.0\n' in text
    run = f'{base},run_id="{RUN_ID[1]}",run_number="3"'
    assert f'onepin_run_status{{{run},status="{STATUS[1]}",triggered_by="{USER[1]}"}} 1.0\n' in text
    assert f"onepin_run_duration_seconds{{{run}}} 60.0\n" in text
    assert f'onepin_up{{workspace="{WORKSPACE[1]}"}} 1.0\n' in text
    # Every line is one sample: no raw newline or unescaped quote broke one in two.
    for line in text.splitlines():
        assert line.startswith(("# ", "onepin_")), line


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_label_values_read_back_unchanged(openmetrics: bool) -> None:
    text = MetricsRenderer(triggered_by_label=True).render(snapshot(), openmetrics)
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    samples = [
        s for family in parse(text + ("# EOF\n" if openmetrics else "")) for s in family.samples
    ]
    workflow_samples = [s for s in samples if "workflow_id" in s.labels]
    assert len(workflow_samples) > 40
    for s in workflow_samples:
        assert {k: s.labels[k] for k in BASE} == BASE, s
    run_status = {s.labels["status"]: s.value for s in samples if s.name == "onepin_run_status"}
    assert run_status[STATUS[0]] == 1.0 and run_status["running"] == 0.0
    runs = [s for s in samples if s.labels.get("run_id") is not None]
    assert runs and all(s.labels["run_id"] == RUN_ID[0] for s in runs)
    assert {s.labels.get("triggered_by") for s in samples if s.name == "onepin_run_status"} == {
        USER[0]
    }
    assert [s.labels["workspace"] for s in samples if s.name == "onepin_up"] == [WORKSPACE[0]]


def test_names_from_the_api_are_escaped_on_the_way_through_the_poller() -> None:
    # Ids go into request paths, so here only what never does: the name, a status, a user.
    run = FakeRun("r-1", 1, STATUS[0], user_name=USER[0])
    fake = FakeOnePin([FakeWorkflow("wf-1", NAME[0], [run])])
    config = make_config(collection="{min_interval: 0s, triggered_by_label: true}")
    text = exposition(poll(poller_for(fake, config)), triggered_by=True)
    assert f'workflow_name="{NAME[1]}"' in text
    assert f'status="{STATUS[1]}",triggered_by="{USER[1]}"}} 1.0\n' in text
    (info,) = series(text, "onepin_workflow_info")
    assert info.labels["workflow_name"] == NAME[0]
    (unknown,) = series(text, "onepin_run_status", run_id="r-1", status=STATUS[0])
    assert unknown.value == 1.0 and unknown.labels["triggered_by"] == USER[0]


@pytest.mark.parametrize(
    "value", [v for pair in (WORKSPACE, WORKFLOW_ID, NAME, RUN_ID) for v in pair]
)
def test_label_values_are_escaped_as_prometheus_client_escapes_them(value: str) -> None:
    """exporter/exposition.py writes its own escaping (for speed); it must agree with the
    library's, which is private API (prometheus_client.openmetrics.exposition._escape)."""
    from prometheus_client.openmetrics import exposition as om

    from exporter.exposition import escape

    assert escape(value) == om._escape(value, om.ALLOWUTF8, om._is_legacy_labelname_rune)
