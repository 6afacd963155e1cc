"""Which workflows of a workspace are polled, and the state kept for each between polls.

A workflow is selected by the config (listed, or discovered by name), and by this process's
shard. One missing from the catalogue (a page shift, a lagging replica) is kept, with its
counters, until collection.stale_after; a catalogue entry that cannot be read marks only its
workflow down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from exporter.config import Workspace
from exporter.deadline import Clock
from exporter.models import Workflow
from exporter.problems import ErrorLog
from exporter.workflowstate import WorkflowState

log = logging.getLogger("exporter.poller")


class Selection:
    def __init__(
        self,
        workspace: Workspace,
        selects: Callable[[str], bool],
        stale_after: float,
        errors: ErrorLog,
        clock: Clock,
    ) -> None:
        self.workspace = workspace
        self._shard_selects = selects
        self._stale_after = stale_after
        self._errors = errors
        self._clock = clock
        self.states: dict[str, WorkflowState] = {}
        self._unlabelled: set[str] = set()  # problems of entries without an id, logged

    def adopt(self, old: Selection) -> None:
        """Every workflow's state of the same workspace before a config reload."""
        self.states = old.states
        for state in self.states.values():
            state.published = None  # built under the old settings (run_series, stale_after)
        self._unlabelled = old._unlabelled

    def forget(
        self, listed: Iterable[Workflow], selected: Mapping[str, Workflow], unreadable: set[str]
    ) -> None:
        """Drop the workflows no longer selected. One missing from the catalogue (a page shift,
        a lagging replica) is kept, with its counters, until collection.stale_after."""
        configured = {ref.id for ref in self.workspace.workflows or ()}
        present = {wf.id for wf in listed}
        now = self._clock()
        for wid, state in list(self.states.items()):
            if wid in selected or wid in configured or wid in unreadable:
                continue
            if wid in present or not self.fresh(state, now):
                del self.states[wid]  # no longer selected, or gone for stale_after
            else:
                self._errors.set(state, "missing from the workflow list; kept until stale_after")

    def fresh(self, state: WorkflowState, now: float) -> bool:
        last = state.last_success
        return last is not None and now - last <= self._stale_after

    def select(self, workflows: Iterable[Workflow]) -> dict[str, Workflow]:
        ws = self.workspace
        by_id = {wf.id: wf for wf in workflows}
        selected: dict[str, Workflow] = {}
        if ws.workflows is not None:
            for ref in ws.workflows:
                if not self._shard_selects(ref.id):
                    continue
                entry = by_id.get(ref.id)
                state = self.state(ref.id, ref.name or (entry.name if entry else ref.id))
                if entry is None:
                    self._errors.set(state, "not in the workspace's workflow list (deleted?)")
                else:
                    selected[ref.id] = entry
            return selected
        for wf in by_id.values():
            if self._shard_selects(wf.id) and ws.discovery.selects(wf.name):
                selected[wf.id] = wf
                state = self.state(wf.id, wf.name)
                if state.name != wf.name:  # renamed: new label values
                    state.name, state.published = wf.name, None
        return selected

    def mark_unreadable(self, bad: Mapping[str, str]) -> set[str]:
        """Catalogue entries that could not be read: only those workflows are marked down."""
        configured = {ref.id: ref.name for ref in self.workspace.workflows or ()}
        marked = set()
        unlabelled = {p for w, p in bad.items() if w.startswith("data[")}
        seen_before, self._unlabelled = self._unlabelled, unlabelled
        for wid, problem in bad.items():
            if wid.startswith("data["):  # no usable id: nothing to label it with
                if problem not in seen_before:
                    log.warning("catalogue entry skipped: %s", problem,
                                extra={"workspace": self.workspace.name})  # fmt: skip
                continue
            if not self._shard_selects(wid):
                continue
            if self.workspace.workflows is not None and wid not in configured:
                continue
            known = self.states.get(wid)
            state = self.state(wid, configured.get(wid) or (known.name if known else wid))
            self._errors.set(state, f"list_workflows: unexpected entry: {problem}")
            marked.add(wid)
        return marked

    def state(self, wid: str, name: str) -> WorkflowState:
        state = self.states.get(wid)
        if state is None:
            state = self.states[wid] = WorkflowState(wid, name)
        return state
