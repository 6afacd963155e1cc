"""A progressive cold start (issue "Scale"): from the first catalogue pass every workflow is
shown, up, as the catalogue describes it; the details (run lists, the latest run's full status,
summaries) fill in over the next polls, the workflows with an active run first, and
`onepin_exporter_backlog_workflows` says how many still wait.

Against the poller's fake client, on an injected clock on which every request takes a second,
so that a poll's deadline cuts it where the test says.
"""

from __future__ import annotations

import asyncio
import itertools
import math

from exporter.apierrors import ApiError, DeadlineExceeded
from exporter.apimodels import Catalogue
from exporter.deadline import FIRST_BACKLOG_SHARE, Deadline
from exporter.models import Page, Run, RunsSummary
from exporter.sharedpoll import Poller
from exporter.snapshot import WorkspaceSnapshot
from tests.test_poller import Clock, FakeClient, FakeWorkflow, by_id, make

POLL_SECONDS = 10.0  # each poll's deadline: ten requests, one second each


class SlowClient(FakeClient):
    """Each request takes a second of the clock, and none starts past the deadline (as the
    real client: exporter/client.py)."""

    max_concurrency = 1

    def __init__(self, clock: Clock, *workflows: FakeWorkflow) -> None:
        super().__init__(*workflows)
        self.clock = clock
        self.failing: set[str] = set()  # workflows whose List Runs answers HTTP 500
        self.started: list[tuple[str, float]] = []  # (endpoint, when)

    def _take(self, endpoint: str, deadline: Deadline) -> None:
        if deadline.expired():
            raise DeadlineExceeded(endpoint, "scrape deadline reached before the request")
        self.started.append((endpoint, self.clock.now))
        self.clock.now += 1.0

    async def list_workflows(self, deadline: Deadline) -> Catalogue:
        self._take("list_workflows", deadline)
        return await super().list_workflows(deadline)

    async def list_runs(
        self, workflow_id: str, limit: int, deadline: Deadline, offset: int = 0
    ) -> Page[Run]:
        self._take("list_runs", deadline)
        if workflow_id in self.failing:
            self._call("list_runs", workflow_id)
            raise ApiError("list_runs", "internal error", 500)
        return await super().list_runs(workflow_id, limit, deadline, offset)

    async def get_run_status(self, workflow_id: str, run_id: str, deadline: Deadline) -> Run:
        self._take("get_run_status", deadline)
        return await super().get_run_status(workflow_id, run_id, deadline)

    async def runs_summary(self, workflow_id: str, deadline: Deadline) -> RunsSummary:
        self._take("runs_summary", deadline)
        return await super().runs_summary(workflow_id, deadline)


def world(finished: int = 8, active: int = 2) -> tuple[SlowClient, Clock]:
    """`finished` workflows whose runs are all done, then `active` with a running latest run
    (the catalogue lists them last)."""
    workflows = []
    for i in range(finished):
        wf = FakeWorkflow(f"done-{i}")
        wf.add("completed")
        wf.add("failed")
        workflows.append(wf)
    for i in range(active):
        wf = FakeWorkflow(f"busy-{i}")
        wf.add("completed")
        wf.add("running")
        workflows.append(wf)
    clock = Clock()
    return SlowClient(clock, *workflows), clock


def poll_once(poller: object, clock: Clock) -> WorkspaceSnapshot:
    return asyncio.run(poller.poll(Deadline(POLL_SECONDS, clock)))  # type: ignore[attr-defined]


def test_the_first_poll_shows_every_workflow_up_as_the_catalogue_describes_it() -> None:
    client, clock = world()
    snapshot = poll_once(make(client, clock), clock)
    wfs = by_id(snapshot)
    assert len(wfs) == 10 and all(wf.up and wf.has_data for wf in wfs.values())
    # Not reached in this poll: runs per status, pass ratio and the latest status, all from
    # the catalogue; nothing of the runs themselves.
    cold = wfs["done-7"]
    assert cold.status_counts == {"completed": 1, "failed": 1}
    assert cold.pass_ratio == 0.5
    assert cold.catalogue_last_status == "failed" and cold.last_run is None
    assert cold.error is None
    # The two with an active run have all their details (each workflow is finished before
    # the next is listed); the others wait.
    assert snapshot.backlog == 8
    assert wfs["busy-0"].average_duration == 50.0 and wfs["done-7"].average_duration is None


def test_workflows_with_an_active_run_get_their_details_first() -> None:
    client, clock = world()
    poll_once(make(client, clock), clock)
    listed = [call[1] for call in client.calls if call[0] == "list_runs"]
    assert listed[:2] == ["busy-0", "busy-1"], listed
    # The first poll shows the active runs already (from their run list).
    client2, clock2 = world()
    wfs = by_id(poll_once(make(client2, clock2), clock2))
    assert [r.run_number for r in wfs["busy-0"].active_runs] == [2]


def test_the_backlog_falls_to_zero_poll_by_poll_within_three_calls_per_workflow() -> None:
    """The issue's budget: beyond each poll's steady cost (the catalogue and the active runs),
    the cold load costs at most 3 calls per workflow (List Runs, the latest run's status, Runs
    Summary), spread over polls; and every poll shows every workflow up."""
    client, clock = world()
    poller = make(client, clock)
    workflows, active = 10, 2
    steady = math.ceil(workflows / 100) + active
    backlogs, extra = [], 0
    for _ in range(10):
        client.calls.clear()
        snapshot = poll_once(poller, clock)
        assert all(wf.up for wf in snapshot.workflows)
        backlogs.append(snapshot.backlog)
        extra += max(0, len(client.calls) - steady)
        if snapshot.backlog == 0:
            break
    assert backlogs == sorted(backlogs, reverse=True) and backlogs[-1] == 0, backlogs
    assert len(backlogs) > 2  # the deadline did spread it over polls
    assert extra <= 3 * workflows, (extra, backlogs)
    client.calls.clear()
    snapshot = poll_once(poller, clock)  # and then: steady
    assert len(client.calls) == steady and snapshot.backlog == 0
    wfs = by_id(snapshot)
    assert wfs["done-7"].last_run is not None and wfs["done-7"].last_run.token_cost == 1.0
    assert wfs["done-7"].average_duration == 50.0


def test_the_backlog_starts_requests_only_in_its_share_of_the_poll() -> None:
    """What the backlog brings in must still be applied and rendered within the scrape's
    timeout: the requests of workflows still waiting for details (run lists, the statuses and
    summaries they lead to) start only in FIRST_BACKLOG_SHARE of the first poll (later ones
    leave the time the last answer took: exporter/deadline.py)."""
    client, clock = world(finished=20, active=2)
    began = clock.now
    snapshot = poll_once(make(client, clock), clock)
    starts = [(endpoint, at - began) for endpoint, at in client.started]
    catalogue_read = 1.0  # the first request: the catalogue, a second on this clock
    share_ends = catalogue_read + (POLL_SECONDS - catalogue_read) * FIRST_BACKLOG_SHARE
    assert sum(e != "list_workflows" for e, _ in starts) >= 6  # the backlog's, of every kind
    assert max(at for _, at in starts) <= share_ends, starts
    assert all(wf.up for wf in snapshot.workflows)


def test_a_workflow_whose_details_fail_before_the_deadline_is_down() -> None:
    """Only the deadline (or the request budget) keeps a workflow waiting; an API error is
    shown as one."""
    client, clock = world(finished=2, active=0)
    client.failing.add("done-1")
    wfs = by_id(poll_once(make(client, clock), clock))
    assert wfs["done-0"].up
    assert not wfs["done-1"].up and "HTTP 500" in (wfs["done-1"].error or "")


def test_a_scrape_that_cannot_wait_for_the_first_poll_gets_the_catalogue_view() -> None:
    """The first poll may run longer than a scrape waits (at start-up it gets
    collection.max_duration): once its catalogue pass is done, a scrape shows every workflow."""
    client, clock = world(finished=3, active=1)
    hold = asyncio.Event()

    class Held(SlowClient):
        async def list_runs(
            self, workflow_id: str, limit: int, deadline: Deadline, offset: int = 0
        ) -> Page[Run]:
            await hold.wait()
            return await super().list_runs(workflow_id, limit, deadline, offset)

    held = Held(clock, *client.workflows.values())
    poller = Poller([make(held, clock)], min_interval=0.0, clock=clock)

    async def scrape() -> tuple[WorkspaceSnapshot, WorkspaceSnapshot]:
        early = await poller.snapshot(30.0, wait=1.0)  # the poll waits on `hold`
        hold.set()
        later = await poller.snapshot(30.0)
        return early.workspaces[0], later.workspaces[0]

    early, later = asyncio.run(scrape())
    assert early.up and len(early.workflows) == 4 and all(wf.up for wf in early.workflows)
    assert early.backlog == 4
    assert by_id(early)["busy-0"].catalogue_last_status == "running"
    assert later.up and all(wf.up for wf in later.workflows)


def test_the_backlog_falls_in_every_poll_when_the_steady_poll_takes_most_of_it() -> None:
    """A workflow whose run list arrived gets the rest of its details (its latest run's status,
    its summary) before new workflows are listed: run lists that start every poll while the
    requests they lead to are cut at the deadline would spend the poll and never finish one
    (seen at 20,000 workflows: 1,300 run lists a poll, the backlog stuck for a dozen polls)."""
    client, clock = world(finished=24, active=6)
    poller = make(client, clock)
    backlogs = []
    for _ in range(30):
        snapshot = poll_once(poller, clock)
        assert all(wf.up for wf in snapshot.workflows)
        backlogs.append(snapshot.backlog)
        if snapshot.backlog == 0:
            break
    falls = [before - after for before, after in itertools.pairwise(backlogs)]
    assert backlogs[-1] == 0 and all(fall > 0 for fall in falls), backlogs
