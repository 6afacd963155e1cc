"""The run ledger: which runs of one workflow are newly finished, so what each counter adds.

Pure bookkeeping: no I/O, no clock, no logging. The poller hands it what each poll saw (List Runs
pages, Get Run Status records) and it decides, so that a run is counted exactly once whatever the
API shows. It remembers, per workflow:

- `high_water`: the highest run number any listing showed. A run at or below it is decided
  (counted, or history from before the exporter first listed the workflow) unless it is watched
  or its number lies in a gap. Lagging replicas that hide the newest runs, runs re-appearing and
  `run_number` going backwards therefore count nothing twice.
- `gaps`: ranges of run numbers below `high_water` that no listing has shown yet (a burst larger
  than one page). The poller pages back through List Runs to fill them, and may take several
  polls; an outage of any length leaves the mark and the gaps where they were.
- `watching`: runs seen not finished (or finished while their status record is still to come):
  each is counted once, when a final record of it arrives.
- `recent`: hashes of the ids of the last runs counted, a guard against a counted run coming back
  under another number. 8 bytes each (the poller holds thousands of workflows).
- `audio_due`: runs counted from a status record, which lacks `delivered_audio_ms` (List Runs
  sends it, onepin-api.md §8), while no run list showed them finished (a run that is not the
  latest finishing, or a list read just before it finished). Their delivered audio is added when a
  run list shows them finished; the poller lists (and pages back) until it does, or until a
  listing covering their number no longer shows them (deleted).
- `steps_due`: runs counted whose node executions (Get Run Steps) are still to be read, with
  how many reads failed: each counted run is read once, the node counters add it once; a read
  that fails is tried again at the next polls, up to STEPS_ATTEMPTS times.
- `failed_nodes`: the node(s) the newest failed run whose steps were read failed at.
- `last_success`, `last_failure`: the newest completed and failed run (by number, only moving
  forward) of any record seen, history included, with when it ended (`ended_at`).

The first listing of a workflow only sets the mark: what is finished then is history, as after a
restart, and is not counted. Each counted run is offered as the exemplar of its status's finished
counter and of its duration's bucket (`Totals.exemplars`): each keeps the run that ended last,
not the one counted last, so that paging back to older runs, or runs counted in one poll in any
order, never replace a recent run with an older one (an operator clicking from a slow bucket
wants a recent run of that bucket). Counted values are taken defensively: a negative, NaN or
infinite token cost, CPU time or duration adds nothing, so a counter never goes down.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from exporter.apistats import RUN_DURATION_BUCKETS, Exemplar, Histogram
from exporter.models import TERMINAL_STATUSES, Run
from exporter.nodes import FailedNode, FinishedRunNodes
from exporter.nodetotals import NodeTotals
from exporter.snapshot import WorkflowTotals

RECENT_IDS = 32  # counted run ids remembered per workflow (and runs whose audio is due)
MAX_GAPS = 16  # unseen ranges kept per workflow; beyond, the oldest is given up
STEPS_ATTEMPTS = 3  # reads of a finished run's steps before they are given up
MAX_STEPS_DUE = 1000  # finished runs whose steps are still to read; beyond, the oldest go


def addable(value: float | None) -> float | None:
    """A value a counter may add: finite and not negative; None otherwise."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    return value


# A run that ended: its number, and when it ended.
Ended = tuple[int, float]


def ended_at(run: Run) -> float | None:
    """When a finished run ended: `completed_at`; where the API left it out, `updated_at` (a
    finished run's last change is its end), else `created_at` (no later than the end)."""
    for at in (run.completed_at, run.updated_at, run.created_at):
        if at is not None:
            return at
    return None


def newer_end(known: Ended | None, run: Run) -> Ended | None:
    """What `known` becomes when `run`, finished with the same status, is seen: a higher run
    number moves it forward; the same number gets a better time (completed_at once the API sends
    it); a lower one, or a run with no time at all, leaves it."""
    at = ended_at(run)
    if at is None or (known is not None and run.run_number < known[0]):
        return known
    if known is None or run.run_number > known[0] or run.completed_at is not None:
        return (run.run_number, at)
    return known


@dataclass(slots=True)
class Totals:
    """What the counters of one workflow show: the runs this process saw finish."""

    finished: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TERMINAL_STATUSES, 0))
    duration: Histogram = field(default_factory=lambda: Histogram(RUN_DURATION_BUCKETS))
    token_cost: float = 0.0
    cpu_seconds: float = 0.0
    delivered_audio_seconds: float = 0.0
    # The run each status's counter and each duration bucket (+Inf last) shows as exemplar.
    finished_exemplars: dict[str, Exemplar] = field(default_factory=dict)
    duration_exemplars: list[Exemplar | None] = field(
        default_factory=lambda: [None] * (len(RUN_DURATION_BUCKETS) + 1)
    )
    nodes: NodeTotals = field(default_factory=NodeTotals)
    frozen: WorkflowTotals | None = None

    def count(self, run: Run) -> None:
        self.frozen = None
        self.finished[run.status] = self.finished.get(run.status, 0) + 1
        at = ended_at(run)
        exemplar = Exemplar(run.id, run.run_number, 1.0, at)
        if exemplar.newer_than(self.finished_exemplars.get(run.status)):
            self.finished_exemplars[run.status] = exemplar
        duration = addable(run.duration())
        if duration is not None:
            i = self.duration.observe(duration)
            exemplar = Exemplar(run.id, run.run_number, duration, at)
            if exemplar.newer_than(self.duration_exemplars[i]):
                self.duration_exemplars[i] = exemplar
        self.token_cost += addable(run.token_cost) or 0.0
        self.cpu_seconds += addable(run.usage_value("cpu_seconds")) or 0.0
        self.add_audio(run)

    def add_audio(self, run: Run) -> None:
        """The run's delivered audio (a List Runs field: see RunLedger.audio_due)."""
        self.frozen = None
        self.delivered_audio_seconds += (addable(run.delivered_audio_ms) or 0) / 1000

    def add_nodes(self, found: FinishedRunNodes) -> None:
        """The node executions of a counted run (read once: RunLedger.steps_due)."""
        self.frozen = None
        self.nodes.add(found)

    def freeze(self) -> WorkflowTotals:
        """An immutable copy, the same object while nothing was counted."""
        if self.frozen is None:
            self.frozen = WorkflowTotals(
                dict(self.finished),
                self.duration.copy(),
                self.token_cost,
                self.cpu_seconds,
                self.delivered_audio_seconds,
                dict(self.finished_exemplars),
                tuple(self.duration_exemplars),
                self.nodes.freeze(),
            )
        return self.frozen


# What a workflow that has counted nothing yet shows: one object for all of them (most of a big
# workspace after a start), as RunLedger makes its Totals only when it first counts a run.
NOTHING_YET = Totals().freeze()


@dataclass(slots=True)
class RunLedger:
    """One workflow's runs: what is counted, what is watched, and the latest run."""

    high_water: int | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)
    watching: dict[str, Run] = field(default_factory=dict)
    # Watched runs whose last status record was unusable: their List Runs items stand in.
    list_only: set[str] = field(default_factory=set)
    recent: array[int] = field(default_factory=lambda: array("q"))
    # Counted runs whose delivered audio only a run list can give: id -> run number.
    audio_due: dict[str, int] = field(default_factory=dict)
    latest: Run | None = None
    last_success: Ended | None = None
    last_failure: Ended | None = None
    # Made when the first run is counted: about 1 KB a workflow that most of a big workspace,
    # just started, does not need yet.
    _totals: Totals | None = None
    # Counted runs whose steps are still to read: id -> (the run, failed reads).
    steps_due: dict[str, tuple[Run, int]] = field(default_factory=dict)
    failed_nodes: tuple[int, tuple[FailedNode, ...]] | None = None  # (run number, nodes)

    @property
    def totals(self) -> Totals:
        if self._totals is None:
            self._totals = Totals()
        return self._totals

    def frozen_totals(self) -> WorkflowTotals:
        """What the counters show (exporter/ledger.py `Totals.freeze`)."""
        return NOTHING_YET if self._totals is None else self._totals.freeze()

    @property
    def started(self) -> bool:
        """A first listing arrived: from now on, runs that finish are counted."""
        return self.high_water is not None

    def listed(
        self, records: Iterable[tuple[Run, bool]], covered: Sequence[tuple[int, int]]
    ) -> list[Run]:
        """What one poll's List Runs pages showed, newest first: each run's best record, and
        whether that record is final (a status record, or a list item when no status record can
        be had); `covered` are the ranges of run numbers the pages showed every run of.
        Returns the runs counted now."""
        records = list({run.id: (run, final) for run, final in records}.values())
        top = max((run.run_number for run, _final in records), default=None)
        if self.high_water is None:
            for run, _final in records:
                self._offer_latest(run)
                if not run.terminal:
                    self.watching[run.id] = run
            self.high_water = top or 0
            return []
        if self.audio_due:
            self._settle_audio(records, covered)
        counted = [run for run, final in records if self.seen(run, final)]
        if top is not None and top > self.high_water:
            self.gaps.insert(0, (self.high_water + 1, top))
            self.high_water = top
        for low, high in covered:
            self.gaps = _without(self.gaps, low, high)
        del self.gaps[MAX_GAPS:]
        return counted

    def seen(self, run: Run, final: bool) -> bool:
        """One record of a run; True when it was counted now."""
        self._offer_latest(run)
        known = self.watching.get(run.id)
        if known is None and not self.is_open(run):
            return False  # counted already, or history
        if run.terminal and final:
            self.watching.pop(run.id, None)
            self.list_only.discard(run.id)
            self._remember(run.id)
            self.totals.count(run)
            self.steps_due[run.id] = (run, 0)
            if len(self.steps_due) > MAX_STEPS_DUE:
                del self.steps_due[next(iter(self.steps_due))]
            if run.detailed and run.delivered_audio_ms is None:
                self.audio_due[run.id] = run.run_number
                if len(self.audio_due) > RECENT_IDS:
                    del self.audio_due[next(iter(self.audio_due))]
            return True
        if run.detailed:
            self.list_only.discard(run.id)  # its status record is readable again
        better = known is None or run.detailed or not known.detailed or run.status != known.status
        if better or run.id in self.list_only:
            self.watching[run.id] = run
        return False

    def is_open(self, run: Run) -> bool:
        """Not decided yet: above the mark or in a gap, and not counted lately."""
        if self.high_water is None or hash(run.id) in self.recent:
            return False
        number = run.run_number
        return number > self.high_water or any(lo <= number <= hi for lo, hi in self.gaps)

    def open_below(self, number: int, listed_only: bool = False) -> int | None:
        """The highest run number below `number` still wanted from List Runs: not yet shown, or
        a watched run whose record only List Runs gives (all watched, with `listed_only`)."""
        if self.high_water is None:
            return None
        wanted = [number - 1] if self.high_water + 1 < number else []
        wanted += [min(high, number - 1) for low, high in self.gaps if low < number]
        wanted += [
            run.run_number
            for run in self.watching.values()
            if run.run_number < number and (listed_only or run.id in self.list_only)
        ]
        wanted += [n for n in self.audio_due.values() if n < number]
        return max(wanted, default=None)

    def _settle_audio(
        self, records: Sequence[tuple[Run, bool]], covered: Sequence[tuple[int, int]]
    ) -> None:
        """Add the delivered audio of counted runs that a run list now shows finished (a record
        that only a status record made cannot tell); let go of those the listing should show
        and does not (deleted)."""
        shown = set()
        for run, _final in records:
            shown.add(run.id)
            if run.id not in self.audio_due or not run.terminal:
                continue
            if run.detailed and run.delivered_audio_ms is None:
                continue  # the list item beside this status record was not finished yet
            del self.audio_due[run.id]
            self.totals.add_audio(run)
        for rid, number in list(self.audio_due.items()):
            if rid not in shown and any(lo <= number <= hi for lo, hi in covered):
                del self.audio_due[rid]

    def steps_read(self, run: Run, found: FinishedRunNodes) -> None:
        """A counted run's node executions were read: the node counters add them, once."""
        if self.steps_due.pop(run.id, None) is None:
            return
        self.totals.add_nodes(found)
        if run.status == "failed" and (
            self.failed_nodes is None or run.run_number >= self.failed_nodes[0]
        ):
            self.failed_nodes = (run.run_number, found.failed)

    def steps_failed(self, run_id: str) -> bool:
        """Reading a counted run's steps failed; True when they are given up now."""
        due = self.steps_due.get(run_id)
        if due is None:
            return False
        if due[1] + 1 >= STEPS_ATTEMPTS:
            del self.steps_due[run_id]
            return True
        self.steps_due[run_id] = (due[0], due[1] + 1)
        return False

    def last_failure_nodes(self) -> tuple[FailedNode, ...]:
        """The failed node(s) of the newest failed run seen, when its steps were read."""
        failed, last = self.failed_nodes, self.last_failure
        if failed is None or last is None or failed[0] != last[0]:
            return ()
        return failed[1]

    def forget(self, run_id: str) -> None:
        """A watched run the API no longer knows (404): stop watching it."""
        self.watching.pop(run_id, None)
        self.list_only.discard(run_id)

    def _remember(self, run_id: str) -> None:
        self.recent.append(hash(run_id))
        if len(self.recent) > RECENT_IDS:
            del self.recent[: len(self.recent) - RECENT_IDS]

    def _offer_latest(self, run: Run) -> None:
        """The latest run (highest number) only moves forward; its record only gets better.
        So do the newest completed and failed runs."""
        if run.status == "completed":
            self.last_success = newer_end(self.last_success, run)
        elif run.status == "failed":
            self.last_failure = newer_end(self.last_failure, run)
        latest = self.latest
        if latest is None or run.run_number > latest.run_number:
            self.latest = run
            return
        if run.id != latest.id or (latest.terminal and not run.terminal):
            return  # an older run, or the latest seen again as it was before it ended
        if run.detailed or not latest.detailed or run.status != latest.status:
            self.latest = run.with_list_fields(latest)
        else:  # the finished latest run listed again: its list-only fields (credits, ...)
            self.latest = latest.with_list_fields(run)


def _without(gaps: list[tuple[int, int]], low: int, high: int) -> list[tuple[int, int]]:
    """The ranges less [low, high]."""
    out = []
    for lo, hi in gaps:
        if hi < low or lo > high:
            out.append((lo, hi))
            continue
        if lo < low:
            out.append((lo, low - 1))
        if hi > high:
            out.append((high + 1, hi))
    return out
