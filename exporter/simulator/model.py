"""The simulated workspace: workflows, their runs, and exact counts, all derived lazily.

Nothing runs in the background. A run's state is a function of its plan and the clock; a
workflow's run count is a function of its schedule and the clock. The only state kept per
workflow is its schedule pieces and the counts of runs already known to be terminal (advanced
on demand), so memory stays bounded and every request costs O(1) or O(page).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from .clock import Clock
from .plan import CANCELLED, COMPLETED, RUN_STATUSES, TERMINAL_STATUSES, Pause, RunPlan
from .rng import MAX_WORKFLOWS, Rng, RunIdCodec, derive
from .schedule import (
    DAY,
    CronSegment,
    Segment,
    WorkflowProfile,
    check_cron,
    cron_plan,
    explicit_plan,
    fire_before,
    make_profile,
    natural_plan,
    skipped_fires,
)

Piece = Segment | CronSegment | RunPlan
Scheduled = Segment | CronSegment
# Runs a cron-scheduled workflow has had before the simulator starts.
CRON_HISTORY = 5

_HISTORY = 0x48495354
_ACTIVE = 0x41435456
_GAP = 0x474150
_LONG = 0x4C4F4E47


@dataclass(frozen=True, slots=True)
class RunCounts:
    """A workflow's runs at one moment: exact over its whole history."""

    runs_count: int
    by_status: dict[str, int]
    last: RunPlan | None
    last_status: str | None
    # Summed over completed runs: active seconds (paused time excluded), delivered audio.
    completed_seconds: int
    delivered_audio_ms: int = 0


class _WorkflowState:
    """What changes about a workflow: its schedule pieces and its settled counts."""

    __slots__ = (
        "interval",
        "pieces",
        "profile",
        "settled",
        "settled_audio_ms",
        "settled_seconds",
        "settled_upto",
    )

    def __init__(self, profile: WorkflowProfile, pieces: list[Piece], interval: int) -> None:
        self.profile = profile
        self.pieces = pieces
        self.interval = interval
        # Runs 1..settled_upto are terminal; their counts per status and the summed active
        # duration and delivered audio of the completed ones are kept here.
        self.settled_upto = 0
        self.settled: dict[str, int] = dict.fromkeys(TERMINAL_STATUSES, 0)
        self.settled_seconds = 0
        self.settled_audio_ms = 0


class SimModel:
    """The workflows and runs of one simulated workspace.

    ``clock`` gives the time; ``start`` (default: the clock's time now) anchors the schedule.
    With ``active_runs`` set, exactly that many workflows have one long run in progress and the
    others stay idle for days of simulated time. ``schedules`` puts workflows (by id or name)
    on a cron schedule (UTC) instead of their natural one, with a few runs at its fire times
    before the start; ``missed`` names fires that create no run: ``(workflow, n)`` is the
    ``n``-th fire (1-based) after the start.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        workflows: int = 12,
        seed: int = 1,
        active_runs: int | None = None,
        start: int | None = None,
        plan_cache_size: int = 20_000,
        schedules: Sequence[tuple[str, str]] = (),
        missed: Sequence[tuple[str, int]] = (),
    ) -> None:
        if not 1 <= workflows <= MAX_WORKFLOWS:
            raise ValueError(f"workflows must be between 1 and {MAX_WORKFLOWS}")
        if active_runs is not None and not 0 <= active_runs <= workflows:
            raise ValueError("active_runs must be between 0 and the number of workflows")
        if active_runs is not None and schedules:
            raise ValueError("cron schedules and active_runs (the benchmark shape) do not mix")
        self.clock = clock
        self.seed = seed
        self.start_time = int(clock.now()) if start is None else start
        self.codec = RunIdCodec(seed)
        self._lock = threading.RLock()
        self._horizon = self.start_time
        self._cache: OrderedDict[tuple[int, int], RunPlan] = OrderedDict()
        self._cache_size = plan_cache_size
        self.plans_built = 0
        self.profiles = [make_profile(seed, i, self.start_time) for i in range(workflows)]
        self._index = {p.id: p.index for p in self.profiles}
        skips = self._put_on_cron(schedules, missed)
        active = self._pick_active(workflows, active_runs)
        self._states = [self._initial_state(p, active, skips) for p in self.profiles]

    # --- construction -------------------------------------------------------------------

    def _lookup(self, workflow: str) -> int:
        """A workflow's index from its id or its name; ValueError naming it if none."""
        index = self.workflow_index(workflow)
        if index is None:
            index = next((p.index for p in self.profiles if p.name == workflow), None)
        if index is None:
            names = ", ".join(p.name for p in self.profiles[:3])
            raise ValueError(f"no workflow {workflow!r} (give an id or a name, e.g. {names})")
        return index

    def _put_on_cron(
        self, schedules: Sequence[tuple[str, str]], missed: Sequence[tuple[str, int]]
    ) -> dict[int, frozenset[int]]:
        """Set the cron of the scheduled profiles; the missed fire times of each."""
        for workflow, cron in schedules:
            index = self._lookup(workflow)
            self.profiles[index] = replace(self.profiles[index], cron=check_cron(cron))
        ordinals: dict[int, list[int]] = {}
        for workflow, n in missed:
            index = self._lookup(workflow)
            if self.profiles[index].cron is None:
                raise ValueError(f"workflow {workflow!r} has no cron schedule to miss a fire of")
            if n < 1:
                raise ValueError(f"the fire to miss is counted from 1, not {n}")
            ordinals.setdefault(index, []).append(n)
        return {
            index: skipped_fires(self.profiles[index].cron or "", self.start_time, tuple(ns))
            for index, ns in ordinals.items()
        }

    def _pick_active(self, workflows: int, active_runs: int | None) -> set[int] | None:
        if active_runs is None:
            return None
        order = sorted(range(workflows), key=lambda i: derive(self.seed, _ACTIVE, i))
        return set(order[:active_runs])

    def _initial_state(
        self, profile: WorkflowProfile, active: set[int] | None, skips: dict[int, frozenset[int]]
    ) -> _WorkflowState:
        interval, start = profile.interval, self.start_time
        if profile.cron is not None:
            after = fire_before(profile.cron, start, CRON_HISTORY) - 1
            segment = CronSegment(1, profile.cron, after, skips.get(profile.index, frozenset()))
            return _WorkflowState(profile, [segment], interval)
        rng = Rng(self.seed, _HISTORY, profile.index)
        history = rng.randint(3, 40)
        if active is None:
            if rng.chance(0.06):
                # A draft for now: its first run comes a little after the start.
                origin = start + rng.randint(interval // 3, 2 * interval)
            else:
                origin = start - history * interval - rng.randint(0, interval - 1)
            return _WorkflowState(profile, [Segment(1, origin, interval)], interval)
        # Benchmark shape: terminal history, then either one long run or days of idleness.
        idle_interval = 2 * DAY
        if profile.index not in active:
            pieces: list[Piece] = [
                Segment(1, start - (history + 1) * interval, interval, last=history),
                Segment(history + 1, start + DAY + rng.randint(0, DAY), idle_interval),
            ]
            return _WorkflowState(profile, pieces, idle_interval)
        long_created = start - rng.randint(60, 600)
        long_run = explicit_plan(
            self.seed,
            self.codec,
            profile,
            history + 1,
            created=long_created,
            outcome=COMPLETED,
            duration=2 * DAY,
            pending=5,
            total_steps=Rng(self.seed, _LONG, profile.index).randint(2_000, 20_000),
        )
        assert long_run.end is not None
        pieces = [
            Segment(1, long_created - (history + 1) * interval, interval, last=history),
            long_run,
            Segment(history + 2, long_run.end + DAY, idle_interval),
        ]
        return _WorkflowState(profile, pieces, idle_interval)

    # --- time and locking ---------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[int]:
        """Hold the model for one consistent view; yields the current time (int seconds).

        Times handed out never go backwards, even to callers on other threads.
        """
        with self._lock:
            now = int(self.clock.now())
            if now < self._horizon:
                now = self._horizon
            self._horizon = now
            yield now

    # --- workflows ----------------------------------------------------------------------

    def workflow_index(self, workflow_id: str) -> int | None:
        return self._index.get(workflow_id.lower())

    def profile(self, workflow_id: str) -> WorkflowProfile | None:
        index = self.workflow_index(workflow_id)
        return None if index is None else self.profiles[index]

    # --- runs ---------------------------------------------------------------------------

    def run_count(self, workflow: int, now: int) -> int:
        """Runs created so far (= the latest run number); 0 for a draft workflow."""
        state = self._states[workflow]
        for piece in reversed(state.pieces):
            if isinstance(piece, Scheduled):
                made = piece.count_at(self.seed, workflow, now)
                if made > 0:
                    return piece.first + made - 1
            elif piece.created <= now:
                return piece.number
        return 0

    def plan(self, workflow: int, number: int) -> RunPlan:
        """The plan of an existing run: the caller checks ``number <= run_count(now)``."""
        key = (workflow, number)
        cache = self._cache
        plan = cache.get(key)
        if plan is not None:
            cache.move_to_end(key)
            return plan
        plan = self._build_plan(workflow, number)
        cache[key] = plan
        if len(cache) > self._cache_size:
            cache.popitem(last=False)
        return plan

    def peek_plan(self, workflow: int, number: int) -> RunPlan:
        """A plan, from the cache if there, without adding it (for one-off scans)."""
        cached = self._cache.get((workflow, number))
        return cached if cached is not None else self._build_plan(workflow, number)

    def _piece(self, workflow: int, number: int) -> Piece:
        """The schedule piece that run ``number`` comes from."""
        for piece in reversed(self._states[workflow].pieces):
            if isinstance(piece, Scheduled) and number >= piece.first:
                return piece
            if isinstance(piece, RunPlan) and piece.number == number:
                return piece
        raise LookupError(f"run {number} of workflow {workflow} does not exist")

    def _build_plan(self, workflow: int, number: int) -> RunPlan:
        self.plans_built += 1
        piece = self._piece(workflow, number)
        if isinstance(piece, RunPlan):
            return piece
        if isinstance(piece, CronSegment):
            return cron_plan(self.seed, self.codec, self.profiles[workflow], piece, number)
        return natural_plan(self.seed, self.codec, self.profiles[workflow], piece, number)

    def _created(self, workflow: int, number: int) -> int:
        """A run's creation time, without building its whole plan."""
        cached = self._cache.get((workflow, number))
        if cached is not None:
            return cached.created
        piece = self._piece(workflow, number)
        if isinstance(piece, RunPlan):
            return piece.created
        return piece.slot_created(self.seed, workflow, number)

    def find_run(self, workflow: int, run_id: str, now: int) -> RunPlan | None:
        """The run with this id in this workflow, if it exists at ``now``."""
        decoded = self.codec.decode(run_id)
        if decoded is None or decoded[0] != workflow:
            return None
        number = decoded[1]
        if number > self.run_count(workflow, now):
            return None
        return self.plan(workflow, number)

    # --- counts -------------------------------------------------------------------------

    def _settle(self, workflow: int, now: int) -> int:
        """Fold runs that have become terminal into the settled counts; returns run_count."""
        state = self._states[workflow]
        count = self.run_count(workflow, now)
        while state.settled_upto < count:
            plan = self.peek_plan(workflow, state.settled_upto + 1)
            if plan.end is None or plan.end > now:
                break
            state.settled[plan.outcome] += 1
            if plan.outcome == COMPLETED:
                state.settled_seconds += plan.active_duration() or 0
                state.settled_audio_ms += plan.delivered_audio_ms(plan.stop_step)
            state.settled_upto += 1
        return count

    def unsettled(self, workflow: int, now: int) -> list[RunPlan]:
        """Runs that may still be active (a few at most), oldest first."""
        count = self._settle(workflow, now)
        first = self._states[workflow].settled_upto + 1
        return [self.plan(workflow, number) for number in range(first, count + 1)]

    def counts(self, workflow: int, now: int) -> RunCounts:
        state = self._states[workflow]
        tail = self.unsettled(workflow, now)
        by_status = dict.fromkeys(RUN_STATUSES, 0)
        by_status.update(state.settled)
        seconds, audio_ms = state.settled_seconds, state.settled_audio_ms
        for plan in tail:
            status = plan.status_at(now)
            by_status[status] = by_status.get(status, 0) + 1
            if status == COMPLETED:
                seconds += plan.active_duration() or 0
                audio_ms += plan.delivered_audio_ms(plan.stop_step)
        count = state.settled_upto + len(tail)
        last = None
        if count:
            last = tail[-1] if tail else self.plan(workflow, count)
        return RunCounts(
            runs_count=count,
            by_status=by_status,
            last=last,
            last_status=None if last is None else last.status_at(now),
            completed_seconds=seconds,
            delivered_audio_ms=audio_ms,
        )

    # --- ordered access -----------------------------------------------------------------

    def runs_by_created(
        self, workflow: int, now: int, *, descending: bool = True, skip: int = 0
    ) -> Iterator[RunPlan]:
        """Runs ordered by ``created_at`` (then id ascending), from position ``skip``.

        Creation times never decrease with the run number, so this walks run numbers and only
        reorders groups of runs created in the same second.
        """
        count = self.run_count(workflow, now)
        if skip >= count:
            return
        step = -1 if descending else 1
        number = count - skip if descending else 1 + skip
        head = number
        created = self._created(workflow, number)
        while 1 <= head - step <= count and self._created(workflow, head - step) == created:
            head -= step
        drop = abs(number - head)
        while 1 <= head <= count:
            group = [self.plan(workflow, head)]
            head += step
            while 1 <= head <= count and self._created(workflow, head) == group[0].created:
                group.append(self.plan(workflow, head))
                head += step
            if len(group) > 1:
                group.sort(key=lambda plan: plan.id)
            yield from group[drop:]
            drop = 0

    def runs_created_between(
        self, workflow: int, now: int, low: float | None, high: float | None
    ) -> Iterator[RunPlan]:
        """Runs with ``low <= created_at <= high`` (either bound optional), oldest first."""
        count = self.run_count(workflow, now)
        first = 1 if low is None else self._first_created_at_or_after(workflow, count, low)
        for number in range(first, count + 1):
            plan = self.peek_plan(workflow, number)
            if high is not None and plan.created > high:
                return
            yield plan

    def _first_created_at_or_after(self, workflow: int, count: int, when: float) -> int:
        low, high = 1, count + 1
        while low < high:
            middle = (low + high) // 2
            if self._created(workflow, middle) < when:
                low = middle + 1
            else:
                high = middle
        return low

    # --- driving ------------------------------------------------------------------------

    def start_run(
        self,
        workflow_id: str,
        *,
        outcome: str,
        duration_seconds: int,
        pending_seconds: int = 2,
        total_steps: int | None = None,
        pause_reason: str | None = None,
        pause_seconds: int = 60,
    ) -> RunPlan:
        """Start a run now on a workflow, with a chosen outcome (see ``explicit_plan``), and
        optionally a pause (``pause_reason``: ``user`` or an automatic reason).

        Natural runs of the workflow that would have been created later are rescheduled after
        this one; a cron schedule goes on at its next fire after now (runs may then overlap);
        with ``outcome="stall"`` the workflow starts no more scheduled runs.
        """
        index = self.workflow_index(workflow_id)
        if index is None:
            raise KeyError(workflow_id)
        if duration_seconds < 1 or pending_seconds < 0:
            raise ValueError("duration_seconds must be >= 1 and pending_seconds >= 0")
        if total_steps is not None and total_steps < 1:
            raise ValueError("total_steps must be >= 1")
        if pause_reason is not None and (
            not pause_reason or pause_seconds < 1 or duration_seconds < 6
        ):
            raise ValueError("a pause needs a reason, pause_seconds >= 1 and duration_seconds >= 6")
        with self.session() as now:
            state = self._states[index]
            count = self.run_count(index, now)
            last = state.pieces[-1]
            if isinstance(last, Scheduled) and last.last is None:
                if count < last.first:
                    state.pieces.pop()
                else:
                    last.last = count
            number = count + 1
            # Plans of runs not created yet must not survive: their number is now taken.
            for key in [k for k in self._cache if k[0] == index and k[1] >= number]:
                del self._cache[key]
            plan = explicit_plan(
                self.seed,
                self.codec,
                state.profile,
                number,
                created=now,
                outcome=outcome,
                duration=duration_seconds,
                pending=pending_seconds,
                total_steps=total_steps or state.profile.total_steps,
                pause_reason=pause_reason,
                pause_seconds=pause_seconds,
            )
            state.pieces.append(plan)
            cron = state.profile.cron
            if cron is not None and plan.end is not None:
                skipped = last.skipped if isinstance(last, CronSegment) else frozenset()
                state.pieces.append(CronSegment(number + 1, cron, now, skipped))
            elif plan.end is not None:
                gap = Rng(self.seed, _GAP, index, number).randint(
                    state.interval // 4, state.interval
                )
                state.pieces.append(Segment(number + 1, plan.end + gap, state.interval))
            return plan

    def finish_run(self, workflow_id: str) -> RunPlan | None:
        """End the workflow's active explicit run at the next second (churn, for benchmarks):
        completed if it has started by then, else cancelled while pending; a pause in force
        ends with it. The next second, so that what was served for the current one stays true
        (Get Run Status bodies are kept for the second). Returns the ended plan, or None when
        the workflow has no active run started this way (natural runs keep their schedule)."""
        index = self.workflow_index(workflow_id)
        if index is None:
            raise KeyError(workflow_id)
        with self.session() as now:
            pieces = self._states[index].pieces
            for position, piece in enumerate(pieces):
                if (
                    isinstance(piece, RunPlan)
                    and piece.created <= now
                    and piece.status_at(now) not in TERMINAL_STATUSES
                    and (piece.end is None or piece.end > now + 1)  # not ending already
                ):
                    ended = pieces[position] = _ended(piece, now + 1)
                    if (index, piece.number) in self._cache:
                        self._cache[(index, piece.number)] = ended
                    return ended
            return None

    def active_runs(self) -> list[RunPlan]:
        """Every run not yet terminal now (scans all workflows: for tests and tools)."""
        with self.session() as now:
            return [
                plan
                for index in range(len(self._states))
                for plan in self.unsettled(index, now)
                if plan.status_at(now) not in TERMINAL_STATUSES
            ]


def _ended(plan: RunPlan, end: int) -> RunPlan:
    """``plan`` ending at ``end`` (see ``SimModel.finish_run``)."""
    if plan.start is None or plan.start >= end:
        return replace(plan, start=None, end=end, outcome=CANCELLED, stop_step=0, pause=None)
    pause = plan.pause
    if pause is not None and pause.requested >= end:
        pause = None
    elif pause is not None and pause.resumed > end:
        pause = Pause(pause.requested, min(pause.paused, end), end, pause.reason)
    return replace(plan, end=end, outcome=COMPLETED, stop_step=plan.total_steps, pause=pause)
