"""The metric declarations, as a scrape shows them: every family of a full snapshot written out
exactly (tests/golden/), the series each family costs (checked against README.md's figures),
which families `collection.metrics` leaves out, and that no other module names a family."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter import metrics
from exporter.apistats import RUN_DURATION_BUCKETS, ApiStats, Exemplar, Histogram
from exporter.config import ConfigError, MetricSelection
from exporter.exposition import format_value, histogram
from exporter.gzipbody import plain_stream
from exporter.metrics import HEALTH_FAMILIES, PROCESS_GAUGES, WORKFLOW_FAMILIES, family_names
from exporter.models import Run
from exporter.nodes import FailedNode, NodeRef
from exporter.nodetotals import NODE_DURATION_BUCKETS, FrozenNodeTotals
from exporter.reload import ReloadCollector, ReloadStatus
from exporter.rendering import MetricsRenderer, body, selected
from exporter.sharding import Shard
from exporter.snapshot import (
    ScheduleTimes,
    Snapshot,
    WorkflowSnapshot,
    WorkflowTotals,
    WorkspaceSnapshot,
)
from tests.helpers import make_config

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
USAGE = {"cpu_seconds": 3.5, "memory_mb": 1.5, "api_calls": 7, "tokens_used": 900, "errors": 1}


def full_run(run_id: str, number: int, status: str, **fields: object) -> Run:
    """A run with every field the metrics read."""
    values: dict[str, object] = {
        "started_at": 1.7e9 + 10, "completed_at": 1.7e9 + 130, "updated_at": 1.7e9 + 131,
        "total_nodes": 9, "total_steps": 12, "finished_steps": 11, "finished_nodes": 8,
        "token_cost": 0.25, "credits": 4.5, "usage": USAGE, "observed_at": 1.7e9 + 200,
        "paused_ms": 1500, "delivered_audio_ms": 1234, "triggered_by": "ann", "detailed": True,
    }  # fmt: skip
    values.update(fields)
    return Run(run_id, number, status, 1.7e9, **values)  # type: ignore[arg-type]


def totals(*durations: float, **finished: int) -> WorkflowTotals:
    hist = Histogram(RUN_DURATION_BUCKETS)
    for d in durations:
        hist.observe(d)
    return WorkflowTotals(finished, hist, 12.5, 3.25, 1.5)


GENERATOR = NodeRef("node-2", "operator_generator", 'Generate "en"')


def node_totals(*durations: float) -> FrozenNodeTotals:
    """One node type's executions: the node families' series per node type (and status)."""
    hist = Histogram(NODE_DURATION_BUCKETS)
    for d in durations:
        hist.observe(d)
    return FrozenNodeTotals({"operator_generator": hist}, {("operator_generator", "failed"): 1})


def idle(wf_id: str = "wf-idle", version: int = 0) -> WorkflowSnapshot:
    """A workflow without an active run, with every value the API can send, on a schedule."""
    counts = {s: i + 1 for i, s in enumerate(("pending", "running", "paused", "completed"))}
    counts |= {"failed": 5, "cancelled": 6}
    return WorkflowSnapshot(
        wf_id, "nightly etl", True, True,
        dataclasses.replace(totals(42.0, 4000.0, completed=2, failed=1), nodes=node_totals(3.5)),
        counts, 0.8, 95.5, full_run("r-9", 9, "completed"),
        last_success=1.7e9 + 130, last_failure=1.7e9 - 50, version=version,
        last_failure_nodes=(FailedNode(GENERATOR, "voice model returned 503"),),
        schedule=ScheduleTimes(1.7e9 - 10, 1.7e9 + 86390, 600.0),
    )  # fmt: skip


def busy() -> WorkflowSnapshot:
    """Two active runs (one paused for a reason the exporter does not know), a latest run of an
    unknown status, and a terminal status the exporter does not know among the finished."""
    paused = full_run("r-4", 4, "paused", completed_at=None, pause_reason="solar_flare")
    running = full_run(
        "r-5", 5, "running", completed_at=None, pause_reason="user", triggered_by=None
    )
    return WorkflowSnapshot(
        "wf-busy", 'ops "live"', False, True, totals(5.0, expired=1),
        {"running": 1}, None, None, full_run("r-6", 6, "held"), (paused, running),
        current_nodes={"r-5": (GENERATOR,), "r-gone": (GENERATOR,)},
        schedule=ScheduleTimes(1.7e9 - 60, 1.7e9 + 3540, 600.0),
    )  # fmt: skip


def full_snapshot() -> Snapshot:
    api = ApiStats()
    api.record("list_workflows", "200", 0.02)
    api.record("list_runs", "429", 0.3)
    api.budget_remaining, api.deferred = 7, 3  # http.max_requests_per_minute is set
    # No data to show (stale): whatever it holds, only up, info and the counters are shown.
    gone = dataclasses.replace(busy(), id="wf-gone", has_data=False, error="stale")
    workspaces = (
        WorkspaceSnapshot("prod", True, (idle(), busy(), gone), api, 0.75, 9.5, backlog=2),
        WorkspaceSnapshot("dev", False, (), ApiStats(), 1.25, 2.0),
    )
    return Snapshot(workspaces, 1.7e9)


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("triggered_by", [False, True])
def test_a_full_snapshot_is_written_exactly_as_before(
    openmetrics: bool, triggered_by: bool
) -> None:
    """Every family's lines, byte for byte (regenerate with GOLDEN_UPDATE=1 only after checking
    the difference is wanted: dashboards and alerts read these names and labels)."""
    text = MetricsRenderer(triggered_by).render(full_snapshot(), openmetrics)
    text = re.sub(r'python_version="[^"]*"', 'python_version="X"', text)
    text = re.sub(r'(onepin_exporter_build_info\{version=)"[^"]*"', r'\1"X"', text)
    path = (
        GOLDEN
        / f"full{'-openmetrics' if openmetrics else ''}{'-user' if triggered_by else ''}.prom"
    )
    if os.environ.get("GOLDEN_UPDATE"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_each_workspace_with_a_budget_has_its_own_budget_lines() -> None:
    def stats(remaining: int | None, deferred: int) -> ApiStats:
        api = ApiStats()
        api.budget_remaining, api.deferred = remaining, deferred
        return api

    workspaces = (
        WorkspaceSnapshot("prod", True, (), stats(7, 3)),
        WorkspaceSnapshot("dev", True, (), stats(None, 0)),  # no budget: no lines
        WorkspaceSnapshot("qa", True, (), stats(0, 12)),
    )
    text = MetricsRenderer().render(Snapshot(workspaces, 1.7e9))
    remaining, deferred = metrics.BUDGET_REMAINING.name, metrics.DEFERRED.sample
    assert [ln for ln in text.splitlines() if ln.startswith((remaining, deferred))] == [
        f'{remaining}{{workspace="prod"}} 7.0',
        f'{remaining}{{workspace="qa"}} 0.0',
        f'{deferred}{{workspace="prod"}} 3.0',
        f'{deferred}{{workspace="qa"}} 12.0',
    ]


def test_families_come_out_in_their_declared_order_with_their_declared_labels() -> None:
    text = MetricsRenderer(True).render(full_snapshot())
    families = list(text_string_to_metric_families(text))
    declared = [*HEALTH_FAMILIES, *WORKFLOW_FAMILIES]
    assert [f.name for f in families] == [f.name for f in declared]
    for family, declaration in zip(families, declared, strict=True):
        assert family.type == declaration.type and family.documentation == declaration.help
        for sample in family.samples:
            assert set(sample.labels) <= set(declaration.labels), sample


# --- what a workflow costs (README.md, "Cardinality") --------------------------------------------


def series_of(snapshot: Snapshot) -> Counter[str]:
    """Series per family name of a render."""
    text = MetricsRenderer().render(snapshot)
    return Counter(f.name for f in text_string_to_metric_families(text) for _ in f.samples)


def per_workflow(wf: WorkflowSnapshot) -> Counter[str]:
    one = Snapshot((WorkspaceSnapshot("prod", True, (wf,), ApiStats()),))
    none = Snapshot((WorkspaceSnapshot("prod", True, (), ApiStats()),))
    return series_of(one) - series_of(none)


def readme_figure(pattern: str) -> int:
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    found = re.search(pattern, text)
    assert found, f"README.md has no {pattern!r}"
    return int(found.group(1))


def test_the_readme_says_what_an_idle_workflow_and_an_active_run_cost() -> None:
    idle_cost = per_workflow(idle())
    active = full_run("r-10", 10, "running", completed_at=None, pause_reason=None)
    with_run = per_workflow(dataclasses.replace(idle(), active_runs=(active,)))
    paused = dataclasses.replace(active, status="paused", pause_reason="user")
    with_paused = per_workflow(dataclasses.replace(idle(), active_runs=(paused,)))
    node_cost = sum(n for name, n in idle_cost.items() if "_node_" in name)
    assert node_cost == 16 + 1 + 1  # one node type, one (type, status), one failed node
    assert sum(idle_cost.values()) - node_cost == readme_figure(
        r"idle workflow[^*]*\*\*(\d+) series\*\*"
    )
    assert sum(idle_cost.values()) == readme_figure(r"so \*\*(\d+)\*\* for a workflow of one")
    per_type = idle_cost["onepin_workflow_node_duration_seconds"] + 1  # and one (type, status)
    assert per_type == readme_figure(r"\*\*(\d+)\*\* per node type its runs executed")
    assert idle_cost["onepin_workflow_run_duration_seconds"] == readme_figure(
        r"\*\*(\d+)\*\* of them the `onepin_workflow_run_duration_seconds` histogram"
    )
    run_cost = sum(with_run.values()) - sum(idle_cost.values())
    assert run_cost == readme_figure(r"each active run adds at most \*\*(\d+)\*\*")
    paused_cost = sum(with_paused.values()) - sum(idle_cost.values())
    assert paused_cost == readme_figure(r"\*\*(\d+)\*\* while paused with a reason")
    last_run = sum(
        n for name, n in idle_cost.items() if name.startswith("onepin_workflow_last_run_")
    )
    assert last_run == readme_figure(r"the regex `onepin_workflow_last_run_\.\*` (\d+)")


def readme_rows() -> dict[str, str]:
    """Metric name -> its Series cell, of the README rows that name one metric."""
    rows = {}
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"`onepin_\w+`", cells[0]):
            rows[cells[0].strip("`")] = cells[3]
    return rows


def test_each_readme_row_says_what_its_family_costs_a_workflow() -> None:
    rows = readme_rows()
    cost = per_workflow(idle()) + (per_workflow(busy()) - per_workflow(idle()))
    checked = 0
    for family in WORKFLOW_FAMILIES:
        name = family.sample if family.type == "counter" else family.name
        cell = rows.get(name, "")
        figure = re.match(r"(\d+)( each)?( \(| per workflow|$)", cell)
        if figure and not family.name.startswith("onepin_run_"):
            assert per_workflow(idle())[family.name] == int(figure.group(1)), (name, cell)
            checked += 1
    assert checked >= 15, "the README's Series column was not found"
    assert cost  # the busy workflow renders


# --- collection.metrics ----------------------------------------------------------------------


def scrape(collection: str) -> set[str]:
    """The family names of a whole /metrics body under a config's `collection`."""
    config = make_config(collection=collection)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Shard(0, 2))
    registry.register(ReloadCollector(ReloadStatus()))
    pieces = body(full_snapshot(), registry, MetricsRenderer.of(config.collection), False)
    text = b"".join(plain_stream(pieces)).decode()
    return {f.name for f in text_string_to_metric_families(text)}


EVERY = scrape("{}")


def test_every_family_is_in_a_scrape_of_a_full_snapshot() -> None:
    assert set(family_names()) <= EVERY


def test_excluding_the_run_duration_histogram_removes_it_and_nothing_else() -> None:
    got = scrape('{metrics: {exclude: ["onepin_workflow_run_duration_seconds"]}}')
    assert got == EVERY - {"onepin_workflow_run_duration_seconds"}


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        # A regex matches a whole name: a prefix alone matches nothing.
        ('{exclude: ["onepin_run"]}', EVERY),
        ('{exclude: ["onepin_run_.*"]}', {n for n in EVERY if not n.startswith("onepin_run_")}),
        ('{include: ["onepin_up", "onepin_exporter_.*"]}',
         {n for n in EVERY if n == "onepin_up" or n.startswith("onepin_exporter_")}),
        # Exclude wins over include.
        ('{include: ["onepin_.*"], exclude: ["onepin_workflow_.*"]}',
         {n for n in EVERY if n.startswith("onepin_") and not n.startswith("onepin_workflow_")}),
        # prometheus_client's families are filtered as well (a counter by its family name).
        ('{exclude: ["process_.*", "python_.*", "onepin_api_requests"]}',
         {n for n in EVERY if not n.startswith(("process_", "python_", "onepin_api_requests"))}),
        ("{include: [], exclude: []}", EVERY),
    ],
)  # fmt: skip
def test_include_and_exclude_select_whole_families(metrics: str, expected: set[str]) -> None:
    assert scrape(f"{{metrics: {metrics}}}") == expected


def test_a_family_filter_matches_whole_names_and_exclude_wins() -> None:
    only = MetricSelection(include=("onepin_up|onepin_x",), exclude=("onepin_x",))
    assert only.selects("onepin_up")
    assert not only.selects("onepin_x")
    assert not only.selects("onepin_upx")
    assert not only.selects("xonepin_up")
    assert MetricSelection().selects("anything")
    assert [f.name for f in selected(only, HEALTH_FAMILIES)] == ["onepin_up"]


def test_an_excluded_family_costs_no_render_time(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def counting(
        name: str, labels: str, hist: Histogram, exemplars: Sequence[Exemplar | None] = ()
    ) -> str:
        made.append(name)
        return histogram(name, labels, hist, exemplars)

    monkeypatch.setattr(metrics, "histogram", counting)
    snapshot = full_snapshot()
    MetricsRenderer().render(snapshot)
    assert "onepin_workflow_run_duration_seconds" in made
    made.clear()
    excluding = MetricSelection(exclude=("onepin_workflow_run_duration_seconds",))
    text = MetricsRenderer(families=excluding).render(snapshot)
    assert made == ["onepin_api_request_duration_seconds"] * 2
    assert "onepin_workflow_run_duration_seconds" not in text


def test_a_bad_regex_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        make_config(collection='{metrics: {exclude: ["onepin_(run"]}}')
    assert any("collection.metrics.exclude[0]" in p and "regular expression" in p
               for p in err.value.problems), err.value.problems  # fmt: skip
    with pytest.raises(ConfigError) as err:
        make_config(collection="{metrics: {deny: []}}")
    assert any("collection.metrics.deny" in p and "unknown key" in p for p in err.value.problems)


# --- one module names the families ---------------------------------------------------------


def family_literals(path: Path) -> set[str]:
    """The exported family names in a module's string literals (f-string parts included; a
    counter's name with or without `_total`). A name prefix in help text (`onepin_run_*`)
    names no family."""
    families = set(family_names())
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words = re.findall(r"\bonepin_[a-z_]+", node.value)
            found.update(w.removesuffix("_total") for w in words)
    return found & families


def test_only_the_metrics_module_names_a_family() -> None:
    """Issue 14, acceptance 2: a family renamed or added is one edit in one module."""
    modules = [p for p in (REPO / "exporter").rglob("*.py") if "simulator" not in p.parts]
    naming = {p.relative_to(REPO).as_posix() for p in modules if family_literals(p)}
    assert naming == {"exporter/metrics.py"}
    assert {g.name for g in PROCESS_GAUGES} <= family_literals(REPO / "exporter/metrics.py")


@pytest.mark.parametrize(
    ("value", "text"),
    [(1, "1.0"), (0.1, "0.1"), (1.8e9, "1800000000.0"), (1e22, "1e+22"), (-2.5, "-2.5"),
     (float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf")],
)  # fmt: skip
def test_sample_values_are_written_as_both_formats_read_them(value: float, text: str) -> None:
    assert format_value(value) == text
    assert float(text.replace("Inf", "inf")) == value or value != value


def test_the_process_gauges_carry_their_values() -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Shard(1, 3))
    registry.register(ReloadCollector(ReloadStatus(False, 5.0)))
    got = {
        s.name: s.value
        for f in text_string_to_metric_families(generate_latest(registry).decode())
        for s in f.samples
    }
    assert got == {
        "onepin_exporter_shard_ordinal": 1.0,
        "onepin_exporter_total_shards": 3.0,
        "onepin_exporter_config_last_reload_successful": 0.0,
        "onepin_exporter_config_last_reload_success_timestamp_seconds": 5.0,
    }
