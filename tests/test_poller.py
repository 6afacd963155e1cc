"""The poll loop's decisions against a fake client object: no network, no real clock.

What each poll asks for, what a workflow's snapshot shows and when its version changes, the
backoff after a rejected key, stale workflows, and one poll shared by concurrent scrapes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from exporter.apierrors import ApiError, BudgetDeferred
from exporter.apimodels import Catalogue
from exporter.apistats import ApiStats
from exporter.config import CollectionSettings, Workspace
from exporter.deadline import Deadline
from exporter.fullgc import FullCollections
from exporter.models import Meta, Page, Pagination, Run, RunsSummary, Workflow
from exporter.poller import WorkspacePoller
from exporter.ratebudget import RequestBudget
from exporter.sharedpoll import Poller
from exporter.snapshot import WorkflowSnapshot, WorkspaceSnapshot
from tests.helpers import make_config

META = Meta(None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeWorkflow:
    id: str
    runs: list[Run] = field(default_factory=list)  # oldest first

    def add(self, status: str) -> Run:
        number = len(self.runs) + 1
        created = 100.0 * number
        done = created + 50 if status in ("completed", "failed") else None
        run = Run(f"{self.id}-r{number}", number, status, created, created, done)
        self.runs.append(run)
        return run

    def finish(self, number: int, status: str = "completed") -> None:
        run = self.runs[number - 1]
        self.runs[number - 1] = replace(run, status=status, completed_at=(run.created_at or 0) + 50)

    def entry(self) -> Workflow:
        last = self.runs[-1] if self.runs else None
        counts: dict[str, int] = {}
        for run in self.runs:
            counts[run.status] = counts.get(run.status, 0) + 1
        return Workflow(self.id, f"name-{self.id}", len(self.runs),
                        last.created_at if last else None, last.status if last else None,
                        counts)  # fmt: skip


class FakeClient:
    """The client's interface, answered from memory; every call is recorded."""

    max_concurrency = 4

    def __init__(self, *workflows: FakeWorkflow) -> None:
        self.workflows = {wf.id: wf for wf in workflows}
        self.calls: list[tuple[str, ...]] = []
        self.stats = ApiStats()
        self.refuse: dict[str, ApiError] = {}  # endpoint -> the error it answers
        self.budget = RequestBudget(None)  # the client's http.max_requests_per_minute

    def start_poll(self) -> None:
        pass

    def _call(self, endpoint: str, *args: str) -> None:
        if not self.budget.take():
            raise BudgetDeferred(endpoint, "deferred")
        self.calls.append((endpoint, *args))
        self.stats.record(endpoint, "200", 0.01)
        if endpoint in self.refuse:
            raise self.refuse[endpoint]

    async def list_workflows(self, deadline: Deadline) -> Catalogue:
        self._call("list_workflows")
        return Catalogue(tuple(wf.entry() for wf in self.workflows.values()), {})

    async def list_runs(
        self, workflow_id: str, limit: int, deadline: Deadline, offset: int = 0
    ) -> Page[Run]:
        self._call("list_runs", workflow_id)
        runs = list(reversed(self.workflows[workflow_id].runs))[offset : offset + limit]
        return Page(tuple(runs), META, Pagination(limit, None), size=len(runs))

    async def get_run_status(self, workflow_id: str, run_id: str, deadline: Deadline) -> Run:
        self._call("get_run_status", workflow_id, run_id)
        run = next(r for r in self.workflows[workflow_id].runs if r.id == run_id)
        return replace(run, detailed=True, token_cost=1.0)

    async def runs_summary(self, workflow_id: str, deadline: Deadline) -> RunsSummary:
        self._call("runs_summary", workflow_id)
        counts = self.workflows[workflow_id].entry().run_status_counts or {}
        return RunsSummary(counts, sum(counts.values()), None, 50.0)

    async def aclose(self) -> None:
        pass


def workspace() -> Workspace:
    return make_config().workspaces[0]


def make(client: FakeClient, clock: Clock, **settings: Any) -> WorkspacePoller:
    collection = CollectionSettings(**{"min_interval": 0.0, **settings})
    return WorkspacePoller(workspace(), client, collection, clock=clock)  # type: ignore[arg-type]


def poll(poller: WorkspacePoller, clock: Clock) -> WorkspaceSnapshot:
    return asyncio.run(poller.poll(Deadline(10.0, clock)))


def by_id(snapshot: WorkspaceSnapshot) -> dict[str, WorkflowSnapshot]:
    return {wf.id: wf for wf in snapshot.workflows}


def endpoints(calls: list[tuple[str, ...]]) -> list[str]:
    return sorted(call[0] for call in calls)


@pytest.fixture
def world() -> tuple[FakeClient, Clock, FakeWorkflow, FakeWorkflow]:
    busy, idle = FakeWorkflow("busy"), FakeWorkflow("idle")
    busy.add("completed")
    busy.add("running")
    idle.add("failed")
    return FakeClient(busy, idle), Clock(), busy, idle


World = tuple[FakeClient, Clock, FakeWorkflow, FakeWorkflow]


def test_a_cold_poll_lists_every_workflow_and_reads_the_latest_and_active_runs(
    world: World,
) -> None:
    client, clock, _busy, _idle = world
    snapshot = poll(make(client, clock), clock)
    assert endpoints(client.calls) == [
        "get_run_status",  # busy's active run 2
        "get_run_status",  # idle's latest run 1
        "list_runs",
        "list_runs",
        "list_workflows",
        "runs_summary",
        "runs_summary",
    ]
    wfs = by_id(snapshot)
    assert snapshot.up and wfs["busy"].up and wfs["idle"].up
    assert [r.run_number for r in wfs["busy"].active_runs] == [2]
    assert wfs["idle"].last_run is not None and wfs["idle"].last_run.status == "failed"
    assert wfs["idle"].pass_ratio == 0.0
    assert wfs["busy"].average_duration == 50.0


def test_a_steady_poll_asks_only_the_catalogue_and_the_active_runs(world: World) -> None:
    client, clock, _busy, _idle = world
    poller = make(client, clock)
    poll(poller, clock)
    client.calls.clear()
    poll(poller, clock)
    assert sorted(client.calls) == [("get_run_status", "busy", "busy-r2"), ("list_workflows",)]


def test_a_run_that_finishes_is_counted_once_and_changes_only_its_workflows_version(
    world: World,
) -> None:
    client, clock, busy, _idle = world
    poller = make(client, clock)
    first = by_id(poll(poller, clock))
    busy.finish(2)
    client.calls.clear()
    second = by_id(poll(poller, clock))
    assert ("list_runs", "busy") in client.calls  # the catalogue entry changed
    assert ("runs_summary", "busy") in client.calls  # so did its finished counts
    assert second["busy"].totals.finished["completed"] == 1
    assert second["busy"].active_runs == ()
    assert second["busy"].version > first["busy"].version
    # The idle workflow: the same snapshot, the same version.
    assert second["idle"] is first["idle"]
    # Listed once more (its delivered audio is a List Runs field), then settled.
    third = by_id(poll(poller, clock))
    assert third["busy"].totals.finished["completed"] == 1  # not counted again
    client.calls.clear()
    fourth = by_id(poll(poller, clock))
    assert client.calls == [("list_workflows",)]
    assert fourth["busy"] is third["busy"]
    assert fourth["busy"].version == third["busy"].version


def test_versions_differ_whenever_a_workflows_snapshot_differs(world: World) -> None:
    client, clock, busy, _idle = world
    poller = make(client, clock)
    seen: dict[tuple[str, int], WorkflowSnapshot] = {}
    for step in range(4):
        if step == 2:
            busy.finish(2, "failed")
        for wf in poll(poller, clock).workflows:
            assert seen.setdefault((wf.id, wf.version), wf) == wf
            assert wf.version > 0


def test_a_workflow_down_and_back_gets_new_versions(world: World) -> None:
    client, clock, _busy, _idle = world
    poller = make(client, clock)
    up = by_id(poll(poller, clock))["idle"]
    client.refuse["list_workflows"] = ApiError("list_workflows", "connection failed: refused")
    down = by_id(poll(poller, clock))["idle"]
    assert not down.up and down.has_data  # within stale_after
    assert down.error == "list_workflows: connection failed: refused"
    del client.refuse["list_workflows"]
    back = by_id(poll(poller, clock))["idle"]
    assert back.up
    assert len({up.version, down.version, back.version}) == 3


def test_the_api_stats_of_a_snapshot_are_those_at_the_end_of_its_poll(world: World) -> None:
    client, clock, _busy, _idle = world
    snapshot = poll(make(client, clock), clock)
    sent = snapshot.api.total()
    assert sent == len(client.calls)
    client.stats.record("list_workflows", "200", 0.01)  # the next poll's requests
    assert snapshot.api.total() == sent
    assert snapshot.api is not client.stats


def test_a_rejected_key_backs_off_without_requests_until_the_backoff_ends(world: World) -> None:
    client, clock, _busy, _idle = world
    poller = make(client, clock)
    client.refuse["list_workflows"] = ApiError("list_workflows", "invalid token", 401)
    snapshot = poll(poller, clock)
    assert not snapshot.up
    assert snapshot.error is not None and "next try in 30s" in snapshot.error
    client.calls.clear()
    clock.now += 29
    assert not poll(poller, clock).up
    assert client.calls == []  # still backing off
    clock.now += 1
    snapshot = poll(poller, clock)
    assert client.calls == [("list_workflows",)]
    assert snapshot.error is not None and "next try in 60s" in snapshot.error  # doubled


def test_a_refused_runs_summary_is_not_asked_again(world: World) -> None:
    client, clock, busy, _idle = world
    client.refuse["runs_summary"] = ApiError("runs_summary", "forbidden", 403)
    poller = make(client, clock)
    wfs = by_id(poll(poller, clock))
    assert wfs["busy"].up and wfs["busy"].average_duration is None
    assert wfs["busy"].pass_ratio == 1.0  # from the catalogue's counts
    busy.finish(2, "failed")
    client.calls.clear()
    poll(poller, clock)
    assert "runs_summary" not in endpoints(client.calls)


def test_a_workflow_missing_from_the_catalogue_is_kept_until_stale_after(world: World) -> None:
    client, clock, _busy, idle = world
    poller = make(client, clock, stale_after=60.0)
    poll(poller, clock)
    del client.workflows["idle"]
    clock.now += 30
    kept = by_id(poll(poller, clock))["idle"]
    assert not kept.up and kept.has_data
    assert kept.error == "missing from the workflow list; kept until stale_after"
    clock.now += 31
    assert "idle" not in by_id(poll(poller, clock))
    client.workflows["idle"] = idle
    assert by_id(poll(poller, clock))["idle"].totals.finished["failed"] == 0  # history, anew


def test_concurrent_scrapes_share_one_poll_and_close_ones_reuse_it(world: World) -> None:
    client, clock, _busy, _idle = world
    poller = Poller([make(client, clock)], min_interval=10.0, clock=clock)

    async def scrapes() -> None:
        first, second = await asyncio.gather(poller.snapshot(5.0), poller.snapshot(5.0))
        assert first is second
        clock.now += 9
        assert await poller.snapshot(5.0) is first  # within min_interval
        clock.now += 1
        assert await poller.snapshot(5.0) is not first

    asyncio.run(scrapes())
    assert poller.polls == 2


def test_a_poll_starts_with_a_full_garbage_collection_once_a_minute(world: World) -> None:
    """Not in a poll's middle, where it held up every request in flight (exporter/fullgc.py)."""
    client, clock, _busy, _idle = world
    collected: list[float] = []
    full = FullCollections(clock, collect=lambda: collected.append(clock.now))
    poller = Poller([make(client, clock)], min_interval=5.0, clock=clock, full_collections=full)
    start = clock.now

    async def scrapes() -> None:
        for _ in range(8):  # a scrape every 15 s: polls at 0, 15, ..., 105 s
            await poller.snapshot(5.0)
            clock.now += 15

    asyncio.run(scrapes())
    assert poller.polls == 8
    assert [at - start for at in collected] == [60.0]


def budgeted(world: World, limit: int) -> WorkspacePoller:
    """A warm poller (a cold poll, then a steady one) whose client then gets a budget of `limit`
    requests a minute, on the world's clock."""
    client, clock, _busy, _idle = world
    poller = make(client, clock)
    poll(poller, clock)
    poll(poller, clock)
    client.budget = poller._budget.budget = RequestBudget(limit, clock)
    client.calls.clear()
    return poller


def test_under_a_budget_active_runs_and_the_catalogue_come_before_details(world: World) -> None:
    """Room for 2 of 3: the busy workflow's active run and the catalogue; its new run's List
    Runs waits for the next minute, and the busy workflow stays up meanwhile."""
    client, clock, busy, _idle = world
    poller = budgeted(world, 3)
    client.budget.take()
    busy.add("running")  # a new run: its List Runs is a detail
    snapshot = poll(poller, clock)
    assert endpoints(client.calls) == ["get_run_status", "list_workflows"]
    assert all(wf.up for wf in snapshot.workflows)
    assert snapshot.api.deferred == 1 and snapshot.api.budget_remaining == 0
    client.calls.clear()
    clock.now += 30  # the window is still full: nothing is sent, all is kept
    snapshot = poll(poller, clock)
    assert client.calls == []
    assert all(wf.up for wf in snapshot.workflows) and snapshot.up
    clock.now += 32  # the window is empty again: the List Runs goes
    poll(poller, clock)
    assert ("list_runs", "busy") in client.calls


def test_a_budget_that_leaves_no_room_keeps_the_data_until_stale_after(world: World) -> None:
    client, clock, _busy, _idle = world
    poller = budgeted(world, 2)
    client.budget.take()
    client.budget.take()
    snapshot = poll(poller, clock)
    assert client.calls == []
    assert [wf.up for wf in snapshot.workflows] == [True, True] and snapshot.up
    clock.now += 700  # past stale_after (10 min) since the last refresh
    client.budget.take()
    client.budget.take()
    snapshot = poll(poller, clock)
    assert client.calls == [] and not any(wf.has_data for wf in snapshot.workflows)


def test_the_budget_binding_is_logged_once_with_the_interval_that_would_fit(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    client, clock, _busy, _idle = world
    poller = budgeted(world, 2)
    client.budget.take()  # one place used: the catalogue fits, the active run does not
    with caplog.at_level("WARNING", logger="exporter.poller"):
        poll(poller, clock)
        clock.now += 5
        poll(poller, clock)
    binds = [r.getMessage() for r in caplog.records if "binds" in r.getMessage()]
    # Needed: the catalogue (sent) and the active run's status (deferred): 2 requests a poll,
    # at 2 a minute: one poll a minute.
    assert binds == [
        "the budget of 2/min binds: this poll needed at least 2 requests; a scrape interval "
        "of 60 s would fit; what did not fit keeps its last data and is asked at the next polls"
    ]


def test_a_new_active_run_is_shown_from_its_list_item_then_asked_about(world: World) -> None:
    """The poll that lists a new run does not ask its status (its list item stands in, without
    the fields only List Runs sends: they would vanish at the next poll); the next poll does."""
    client, clock, busy, _idle = world
    poller = make(client, clock)
    poll(poller, clock)
    poll(poller, clock)
    client.calls.clear()
    new = busy.add("running")
    busy.runs[-1] = replace(new, credits=5.0)
    snapshot = poll(poller, clock)
    assert ("get_run_status", "busy", new.id) not in client.calls
    [shown] = [r for r in by_id(snapshot)["busy"].active_runs if r.id == new.id]
    assert shown.credits is None and not shown.detailed
    client.calls.clear()
    snapshot = poll(poller, clock)
    assert ("get_run_status", "busy", new.id) in client.calls
    [shown] = [r for r in by_id(snapshot)["busy"].active_runs if r.id == new.id]
    assert shown.detailed and shown.token_cost == 1.0
