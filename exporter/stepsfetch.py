"""Get Run Steps, as jobs for the worker pool (exporter/jobs.py): the node executions of each
run the ledger counted (once per run: `RunLedger.steps_due`), and, with
`collection.run_nodes`, the nodes each active run is running now.

A failed read never marks the workflow down: a finished run's steps are tried again at the next
polls (up to `STEPS_ATTEMPTS` failed reads, then given up with one log line; a read cut by the
deadline or deferred by the request budget is no failure); an active run's at the next poll.
The failed nodes' error text goes to the debug log and the status page, never to a label
(exporter/nodes.py redacts and bounds it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from functools import partial

from exporter.apierrors import ApiError
from exporter.client import OnePinClient
from exporter.config import Workspace
from exporter.deadline import Deadline
from exporter.jobs import Jobs
from exporter.models import Run
from exporter.nodes import NodeRef, RunSteps, finished_run_nodes, running_nodes
from exporter.planner import not_reached
from exporter.redact import redactor_for
from exporter.workflowstate import Located, Refresh, WorkflowState

log = logging.getLogger("exporter.poller")


def runs_to_locate(active: Iterable[Run], located: Mapping[str, Located]) -> list[Run]:
    """The active runs whose running nodes to ask for: those never asked about, and those whose
    finished_steps changed since they were (an unknown count is asked about every poll)."""
    return [
        run
        for run in active
        if run.id not in located
        or run.finished_steps is None
        or located[run.id][0] != run.finished_steps
    ]


# Get Run Steps in flight at a time in a poll. Their bodies grow with a run's steps (5 MB, and
# about 20 MB once parsed, for one of the benchmark's 13,000-step runs): 48 read at once all
# ended together, seconds later, past the share of the poll they may start in (a churn poll at
# 20,000 workflows ran to its deadline), holding a gigabyte meanwhile.
STEPS_IN_FLIGHT = 8


class _Reads:
    """A poll's Get Run Steps: at most STEPS_IN_FLIGHT at a time, none started past `start_by`."""

    def __init__(self, client: OnePinClient, deadline: Deadline, start_by: Deadline):
        self.deadline = deadline
        self._client = client
        self._start_by = start_by
        self._slots = asyncio.Semaphore(STEPS_IN_FLIGHT)

    async def read(self, workflow_id: str, run_id: str) -> RunSteps | None:
        """The run's steps; None when not started (due again at the next poll)."""
        async with self._slots:
            if self._start_by.expired():
                return None
            return await self._client.get_run_steps(workflow_id, run_id, self.deadline)


class StepsFetcher:
    def __init__(self, client: OnePinClient, workspace: Workspace, run_nodes: bool) -> None:
        self.client = client
        self._workspace = workspace
        self._run_nodes = run_nodes

    def ask(
        self,
        jobs: Jobs,
        states: Iterable[WorkflowState],
        deadline: Deadline,
        start_by: Deadline,
    ) -> None:
        """Queue the Get Run Steps calls of these workflows, none started past `start_by`."""
        reads = _Reads(self.client, deadline, start_by)
        for state in states:
            for run, _failures in list(state.ledger.steps_due.values()):
                job = partial(self._finished, state, run, reads)
                jobs.add(Refresh(workflow_id=state.id), job, start_by)
            if not self._run_nodes:
                continue
            active = state.active()
            ids = {run.id for run in active}
            if state.located.keys() - ids:  # runs no longer active: nothing runs in them
                state.located = {rid: v for rid, v in state.located.items() if rid in ids}
                state.changed()
            for run in runs_to_locate(active, state.located):
                job = partial(self._active, state, run, reads)
                jobs.add(Refresh(workflow_id=state.id), job, start_by)

    async def _finished(self, state: WorkflowState, run: Run, reads: _Reads) -> None:
        where = {"workspace": self._workspace.name, "workflow_id": state.id, "run_id": run.id}
        try:
            steps = await reads.read(state.id, run.id)
        except ApiError as exc:
            # Cut by the deadline or deferred by the request budget: not read, not failed (a
            # big run on a slow API would otherwise be given up after a few busy polls).
            cut = not_reached(exc, reads.deadline.expired())
            if not cut and state.ledger.steps_failed(run.id):
                log.warning("node executions of a finished run given up: %s", exc, extra=where)
            return
        if steps is None:
            return
        redactor = redactor_for(self._workspace.token.reveal())
        found = finished_run_nodes(steps, run.status, redactor)
        state.ledger.steps_read(run, found)
        state.changed()
        for failed in found.failed:
            log.debug(
                "run #%d failed at node %s (%s): %s",
                run.run_number, failed.node.node_id, failed.node.node_type, failed.error,
                extra=where,
            )  # fmt: skip

    async def _active(self, state: WorkflowState, run: Run, reads: _Reads) -> None:
        try:
            steps = await reads.read(state.id, run.id)
        except ApiError:
            return  # asked again at the next poll (its finished_steps is not recorded)
        if steps is None:
            return
        nodes: tuple[NodeRef, ...] = running_nodes(steps)
        if run.id in {r.id for r in state.active()}:
            state.located[run.id] = (run.finished_steps, nodes)
            state.changed()
