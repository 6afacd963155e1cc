"""Every query of both Grafana dashboards returns data from a real Prometheus.

The whole chain runs for real, once for the module: simulator → exporter → Prometheus (scrape and
evaluation interval 1s). Before any panel is looked at, a scenario gives the panels that show
trouble something to show: a failed, a cancelled, a stalled and a completed run, started through
the simulator's admin API (/_sim/runs), then 5xx answers and 429s (/_sim/faults), each waited for
until Prometheus has it.

Each panel target runs the way Grafana runs it: an instant query for an instant target, a range
query over the test's lifetime (step 1s) for the others. It has data when at least one value is
not NaN. Grafana's variables are substituted by tests/dashboard_queries.py: dashboard variables
select everything, $__rate_interval is 1m and $__range 1h. No window needs shortening for the test:
rate() and increase() need only two samples inside their window, which 1s scrapes give at once.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.dashboard_queries import (
    PanelQuery,
    iter_panels,
    load_dashboards,
    panel_queries,
    variable_selectors,
)
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

TOKEN = "op_live_DashDashDashDashDashDashDashDash"
WORKSPACE = "e2e"
WORKFLOWS = 6
SPEED = 60  # simulated seconds per real second
SEED = 7
# How long one panel may take to show data, counted from the end of the scenario (when every
# event is already in Prometheus, so a healthy panel answers on its first query).
PANEL_TIMEOUT = 20.0

# Panels that cannot have data in this test: (dashboard, panel title) -> why. Keep it minimal.
# Every panel of both dashboards has data in the scenario below, so it is empty; a panel listed
# here is still checked, and must then have no data (so that a stale entry is noticed).
NO_DATA_IN_TEST: dict[tuple[str, str], str] = {}

QUERIES = panel_queries()


def query_id(query: PanelQuery) -> str:
    return f"{query.dashboard}/{query.panel}/{query.ref_id}"


@dataclass(frozen=True)
class Workflow:
    id: str
    name: str


@dataclass(frozen=True)
class Scenario:
    prometheus: Prometheus
    started: float  # unix time just before Prometheus started: range queries begin here
    failed: Workflow  # has a run that failed
    cancelled: Workflow  # has a run that was cancelled
    stalled: Workflow  # has a run that runs forever without progress
    stalled_run_id: str
    completed: Workflow  # has a run that completed
    paused: Workflow  # has a run paused by a provider outage until the test ends


def wait_prometheus(
    prometheus: Prometheus, what: str, expr: str, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Wait for a step of the scenario to show in Prometheus."""
    return wait_for(f"{what} (PromQL {expr})", lambda: prometheus.query(expr) or None, timeout)


def start_run(api_url: str, workflow: Workflow, outcome: str, **extra: int) -> dict[str, Any]:
    status, body = http_post_json(
        f"{api_url}/_sim/runs", {"workflow_id": workflow.id, "outcome": outcome, **extra}
    )
    assert status == 201, f"POST /_sim/runs {outcome} on {workflow.name}: {status} {body}"
    data: dict[str, Any] = body["data"]
    return data


def set_faults(api_url: str, **settings: Any) -> None:
    status, body = http_post_json(f"{api_url}/_sim/faults", settings)
    assert status == 200, f"POST /_sim/faults {settings}: {status} {body}"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    binary = require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("e2e-dashboards")
    with ExitStack() as stack:
        simulator, api_url = start_simulator(
            workdir, TOKEN, f"--workflows={WORKFLOWS}", f"--speed={SPEED}", f"--seed={SEED}"
        )
        stack.callback(simulator.stop)
        # Every workflow listed, the first with a schedule (for the Schedules panel).
        listed = {w["id"]: w["name"] for w in http_get_json(f"{api_url}/_sim/workflows")}
        scheduled = {next(iter(listed.values())): "schedule: '@hourly'"}
        exporter, exporter_url = start_exporter(
            workdir,
            listed_workspace(WORKSPACE, api_url, TOKEN, listed, scheduled)
            + "collection: {min_interval: 1s}\n",
        )
        stack.callback(exporter.stop)
        started = time.time() - 1
        prometheus = Prometheus(binary, workdir, scrape_every_second(exporter_url))
        stack.callback(prometheus.stop)

        failed, cancelled, stalled, completed, paused = (
            Workflow(w["id"], w["name"]) for w in http_get_json(f"{api_url}/_sim/workflows")[:5]
        )
        # Every workflow listed once: runs started from now on are counted when they finish.
        wait_prometheus(
            prometheus,
            "the exporter to have refreshed every workflow",
            f'count(onepin_workflow_up{{workspace="{WORKSPACE}"}} == 1) == {WORKFLOWS}',
        )

        # Runs with a chosen outcome; each runs 2 real seconds, so that the exporter sees it
        # active before it ends. The stalled one makes 3 steps in its first second, then none.
        start_run(api_url, failed, "failed", duration_seconds=2 * SPEED, pending_seconds=0)
        start_run(api_url, cancelled, "cancelled", duration_seconds=2 * SPEED, pending_seconds=0)
        start_run(api_url, completed, "completed", duration_seconds=2 * SPEED, pending_seconds=0)
        stalled_run = start_run(
            api_url, stalled, "stall", duration_seconds=SPEED, pending_seconds=0, total_steps=10
        )
        # Paused by a provider outage a third of the way in, for a simulated day: to the end.
        paused_run = start_run(
            api_url,
            paused,
            "completed",
            duration_seconds=2 * SPEED,
            pending_seconds=0,
            pause_reason="provider_outage",
            pause_seconds=86400,
        )
        for workflow, status_label in (
            (failed, "failed"),
            (cancelled, "cancelled"),
            (completed, "completed"),
        ):
            wait_prometheus(
                prometheus,
                f"the {status_label} run of {workflow.name} to be counted",
                "onepin_workflow_runs_finished_total"
                f'{{workflow_id="{workflow.id}", status="{status_label}"}} > 0',
            )
        wait_prometheus(
            prometheus,
            f"the run of {paused.name} to be paused by a provider outage",
            f'onepin_run_pause_reason{{run_id="{paused_run["id"]}", reason="provider_outage"}}'
            " == 1",
        )
        wait_prometheus(
            prometheus,
            f"the stalled run of {stalled.name} to be running",
            f'onepin_run_status{{run_id="{stalled_run["id"]}", status="running"}} == 1',
        )

        # Every API request answered 5xx, then every request beyond the first of the minute 429,
        # each until Prometheus sees its counter grow. A (endpoint, code) series is born at 1 at
        # the first such answer, which increase() cannot see: it takes a second one.
        set_faults(api_url, error_rate=1.0)
        wait_prometheus(
            prometheus,
            "5xx answers to be counted",
            'sum(increase(onepin_api_requests_total{code=~"5.."}[1m])) > 0',
        )
        set_faults(api_url, error_rate=0.0, rate_limit_per_min=1)
        wait_prometheus(
            prometheus,
            "429 answers to be counted",
            'sum(increase(onepin_api_requests_total{code="429"}[1m])) > 0',
        )
        set_faults(api_url, rate_limit_per_min=None)
        healed = time.time()
        wait_prometheus(
            prometheus,
            "the exporter to reach the API and refresh every workflow again",
            f'timestamp(onepin_up{{workspace="{WORKSPACE}"}} == 1) > {healed + 1:.3f}'
            " and on ()"
            f' count(onepin_workflow_up{{workspace="{WORKSPACE}"}} == 1) == {WORKFLOWS}',
            # The exporter honours the 429's Retry-After (up to the end of the simulator's
            # one-minute window) before it asks again.
            timeout=90.0,
        )

        yield Scenario(
            prometheus=prometheus,
            started=started,
            failed=failed,
            cancelled=cancelled,
            stalled=stalled,
            stalled_run_id=stalled_run["id"],
            completed=completed,
            paused=paused,
        )
    assert "Traceback" not in exporter.output(), exporter.output()[-3000:]
    assert "Traceback" not in simulator.output(), simulator.output()[-3000:]


def http_get_json(url: str) -> Any:
    status, body = http_get(url)
    assert status == 200, f"GET {url}: {status} {body[:500]}"
    return json.loads(body)


# --- running a panel's query the way Grafana does ---------------------------------------------


def run_query(scenario: Scenario, query: PanelQuery) -> list[dict[str, Any]]:
    """The series of a panel target: instant, or over the test's lifetime with a 1s step."""
    if query.instant:
        return scenario.prometheus.query(query.expr)
    return scenario.prometheus.query_range(query.expr, scenario.started, time.time(), 1.0)


def values(series: dict[str, Any]) -> list[float]:
    """The values of one series of an instant or range result, NaN left out."""
    pairs = series["values"] if "values" in series else [series["value"]]
    return [v for v in (float(value) for _, value in pairs) if not math.isnan(v)]


def has_data(result: list[dict[str, Any]]) -> bool:
    return any(values(series) for series in result)


def panel_data(scenario: Scenario, query: PanelQuery, timeout: float = PANEL_TIMEOUT) -> Any:
    """Wait until a panel target has data; fail naming the panel, its query and what it got."""
    last: list[list[dict[str, Any]]] = [[]]

    def probe() -> list[dict[str, Any]] | None:
        last[0] = run_query(scenario, query)
        return last[0] if has_data(last[0]) else None

    try:
        return wait_for(
            f'panel "{query.dashboard} / {query.panel}" (query {query.ref_id}) to show data',
            probe,
            timeout,
            interval=0.5,
        )
    except AssertionError as exc:
        kind = "instant" if query.instant else "range"
        raise AssertionError(
            f"{exc}\n{kind} query: {query.expr}\nlast result: {str(last[0])[:1000]}"
        ) from None


def find_panel(dashboard: str, panel: str, ref_id: str = "A") -> PanelQuery:
    for query in QUERIES:
        if (query.dashboard, query.panel, query.ref_id) == (dashboard, panel, ref_id):
            return query
    raise AssertionError(f'no query {ref_id} in panel "{panel}" of dashboard "{dashboard}"')


def max_by(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    """The largest value of each value of `label` over a result."""
    out: dict[str, float] = {}
    for series in result:
        key = series["metric"].get(label, "")
        for value in values(series):
            out[key] = max(out.get(key, value), value)
    return out


# --- every panel ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", QUERIES, ids=query_id)
def test_every_panel_query_returns_data(scenario: Scenario, query: PanelQuery) -> None:
    reason = NO_DATA_IN_TEST.get((query.dashboard, query.panel))
    if reason is not None:
        result = run_query(scenario, query)
        assert not has_data(result), (
            f'"{query.dashboard} / {query.panel}" is listed as having no data in this test '
            f"({reason}), but it has: remove it from NO_DATA_IN_TEST"
        )
        return
    panel_data(scenario, query)


def test_every_panel_is_checked() -> None:
    """No panel escapes the check above: each one (rows aside) has at least one query."""
    without = [
        f"{model['title']} / {panel.get('title')}"
        for model in load_dashboards().values()
        for panel in iter_panels(model["panels"])
        if panel["type"] != "row" and not panel.get("targets")
    ]
    assert not without, f"panels without a query: {without}"
    titles = {(q.dashboard, q.panel) for q in QUERIES}
    assert not set(NO_DATA_IN_TEST) - titles, "NO_DATA_IN_TEST names panels that do not exist"


@pytest.mark.parametrize(
    ("dashboard", "variable", "selector"),
    variable_selectors(),
    ids=[f"{d}/{v}" for d, v, _ in variable_selectors()],
)
def test_every_variable_has_values(
    scenario: Scenario, dashboard: str, variable: str, selector: str
) -> None:
    """label_values(selector, label) and query_result(expression) offer something: the selector
    or the expression finds series."""
    series = scenario.prometheus.query(selector)
    assert series, f"{dashboard}: ${variable} offers no value: {selector} finds no series"


def test_the_workflow_variable_offers_each_workflow_by_id_with_its_name(
    scenario: Scenario,
) -> None:
    """The variable's regex, applied as Grafana applies it to query_result()'s lines, gives
    every workflow's id as the value and its name as the text."""
    model = load_dashboards()["onepin-workflows.json"]
    variable = {v["name"]: v for v in model["templating"]["list"]}["workflow"]
    expr = dict((v, s) for _, v, s in variable_selectors())["workflow"]
    pattern = re.compile(variable["regex"].strip("/").replace("(?<", "(?P<"))
    offered = {}
    for series in scenario.prometheus.query(expr):
        labels = ",".join(f'{k}="{v}"' for k, v in series["metric"].items())
        line = f"{{{labels}}} {series['value'][1]} {int(series['value'][0] * 1000)}"
        match = pattern.search(line)
        assert match is not None, line
        offered[match.group("value")] = match.group("text")
    for workflow in (scenario.failed, scenario.stalled, scenario.completed):
        assert offered.get(workflow.id) == workflow.name, offered
    assert len(offered) == WORKFLOWS


LINKED_LABEL = re.compile(r"\$\{__(?:field\.labels|data\.fields)\.(\w+)\}")


def test_the_series_of_linked_panels_carry_the_labels_their_links_use(
    scenario: Scenario,
) -> None:
    """A run or workflow link to the OnePin app is built from the series' labels: each series
    of such a panel has them, so that no link comes out with an empty id."""
    checked = 0
    for model in load_dashboards().values():
        for panel in iter_panels(model["panels"]):
            config = panel.get("fieldConfig", {})
            urls = [item["url"] for item in config.get("defaults", {}).get("links", [])]
            urls += [
                item["url"]
                for override in config.get("overrides", [])
                for prop in override["properties"]
                if prop["id"] == "links"
                for item in prop["value"]
            ]
            used = {label for url in urls for label in LINKED_LABEL.findall(url)}
            if not used:
                continue
            query = find_panel(model["title"], panel["title"])
            for series in panel_data(scenario, query):
                assert used <= set(series["metric"]), f"{panel['title']}: {series['metric']}"
            checked += 1
    assert checked >= 10


# --- panels that show the scenario's events ---------------------------------------------------


def test_failure_panels_show_the_failed_and_cancelled_runs(scenario: Scenario) -> None:
    runs_failed = panel_data(scenario, find_panel("OnePin workflows", "Runs failed"))
    assert float(runs_failed[0]["value"][1]) >= 1, runs_failed

    failures = panel_data(scenario, find_panel("OnePin workflows", "Failures by workflow"))
    assert scenario.failed.name in max_by(failures, "workflow_name"), failures

    by_status = max_by(
        panel_data(scenario, find_panel("OnePin workflows", "Runs finished by status")), "status"
    )
    for status in ("completed", "failed", "cancelled"):
        assert by_status.get(status, 0) > 0, f"no {status} run in Runs finished by status"

    pass_ratio = panel_data(scenario, find_panel("OnePin workflows", "Pass ratio"))
    assert 0 < float(pass_ratio[0]["value"][1]) < 1, pass_ratio


def test_api_panels_show_the_5xx_and_429_answers(scenario: Scenario) -> None:
    limited = panel_data(scenario, find_panel("OnePin exporter", "Rate-limited requests (429)"))
    assert max(max_by(limited, "endpoint").values()) > 0, limited

    errors = panel_data(scenario, find_panel("OnePin exporter", "API error ratio"))
    assert max_by(errors, "workspace").get(WORKSPACE, 0) > 0, errors

    codes = max_by(
        panel_data(scenario, find_panel("OnePin exporter", "API requests by endpoint and code")),
        "code",
    )
    assert {"200", "429"} <= set(codes), codes
    assert any(code.startswith("5") for code in codes), codes


def test_run_panels_show_the_stalled_run(scenario: Scenario) -> None:
    in_progress = panel_data(scenario, find_panel("OnePin workflows", "Runs in progress"))
    statuses = {s["metric"]["run_id"]: s["metric"]["status"] for s in in_progress}
    assert statuses.get(scenario.stalled_run_id) == "running", in_progress

    progress = panel_data(scenario, find_panel("OnePin workflows", "Progress of active runs"))
    stalled = max_by(progress, "run_id").get(scenario.stalled_run_id)
    assert stalled is not None and 0 < stalled < 1, progress
