"""Workflow profiles and the plans of their runs, all derived from the seed.

A workflow's runs come from *segments* of a natural schedule (one slot every ``interval``
seconds, each slot jittered), from *cron segments* (one run at each fire time of a cron
expression, in UTC, except the fires chosen to be missed) and from *explicit* runs (started
through the admin API, or the long runs of ``--active-runs``). A scheduled run always ends
before the next slot or fire, so a workflow has at most one active scheduled run.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cronsim import CronSim, CronSimError

from .names import (
    DESCRIPTIONS,
    FAILURE_REASONS,
    LOCALES,
    NAME_SOURCES,
    NODE_TYPES,
    PAUSE_REASONS,
    USER_PAUSE,
    USERS,
    workflow_name,
)
from .plan import CANCELLED, COMPLETED, FAILED, STALL, Pause, RunPlan, Usage, wall_time
from .rng import Rng, RunIdCodec, uuid_from

DAY = 86_400
_PROFILE = 0x50524F46
_RUN = 0x52554E
_WORKFLOW_ID = 0x574649
_USER_ID = 0x55534552
# Traits added later (name source, locales, output lines, pause reasons, automatic pauses) come
# from streams of their own, so that every earlier trait of a seed's world stays the same.
_TRAITS = 0x54524954
_EXTRA = 0x45585452
_CRON = 0x43524F4E
# Share of runs that an automatic pause hits on top of the pauses drawn with ``pause_rate``.
AUTOMATIC_PAUSE_RATE = 0.04
_AUTOMATIC = tuple((reason, weight) for reason, weight in PAUSE_REASONS if reason != USER_PAUSE)
_AUTOMATIC_WEIGHTS = sum(weight for _, weight in _AUTOMATIC)
AUTOMATIC_PAUSES = tuple((reason, weight / _AUTOMATIC_WEIGHTS) for reason, weight in _AUTOMATIC)


@dataclass(frozen=True, slots=True)
class WorkflowProfile:
    """A workflow's fixed traits: identity, schedule and typical run."""

    index: int
    id: str
    name: str
    description: str | None
    owner: int
    created_at: int
    updated_at: int
    interval: int
    duration: int
    pending: int
    total_steps: int
    total_nodes: int
    failure_rate: float
    cancel_rate: float
    pause_rate: float
    usage: Usage
    name_source: str = "user"
    locales: tuple[str, ...] = ("en-US",)
    # Set when the workflow runs on a cron schedule (UTC) instead of its natural one.
    cron: str | None = None

    def node(self, step: int) -> tuple[str, str]:
        """The (node id, node type) that runs step ``step`` (0-based)."""
        position = step * self.total_nodes // self.total_steps
        return f"node-{position + 1}", NODE_TYPES[position % len(NODE_TYPES)]


@dataclass(slots=True)
class Segment:
    """Natural runs ``first``..``last`` (``last`` None: open-ended), one per ``interval``."""

    first: int
    origin: int
    interval: int
    last: int | None = None

    def slot_created(self, seed: int, workflow: int, number: int) -> int:
        jitter = Rng(seed, _RUN, workflow, number).randint(0, self.interval // 5)
        return self.origin + (number - self.first) * self.interval + jitter

    def count_at(self, seed: int, workflow: int, now: int) -> int:
        """How many of this segment's runs exist (are created) at ``now``."""
        if now < self.origin:
            return 0
        slot = (now - self.origin) // self.interval
        if self.slot_created(seed, workflow, self.first + slot) > now:
            slot -= 1
        count = slot + 1
        if self.last is not None:
            count = min(count, self.last - self.first + 1)
        return count


class CronError(ValueError):
    """A cron expression the simulator cannot run; the message says why."""


def check_cron(cron: str) -> str:
    """``cron`` stripped, if cronsim reads it as five fields; else CronError."""
    text = cron.strip()
    if len(text.split()) != 5:
        raise CronError(f"cron {cron!r}: expected 5 fields (minute hour day month weekday)")
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        raise CronError(f"cron {cron!r}: {error}") from None
    return text


def fires_after(cron: str, moment: int) -> CronSim:
    """The fire times of ``cron`` (UTC) strictly after ``moment``, as aware datetimes."""
    return CronSim(cron, datetime.fromtimestamp(moment, UTC))


class CronSegment:
    """Runs ``first``.. created at the fire times of ``cron`` after ``after`` (``last`` None:
    open-ended), except the fire times in ``skipped``.

    Fire times are found with cronsim as time goes on and kept (one int per run), so a run's
    creation time is a list lookup and the runs created by ``now`` a bisection.
    """

    __slots__ = ("_fires", "_times", "cron", "first", "last", "skipped")

    def __init__(
        self,
        first: int,
        cron: str,
        after: int,
        skipped: frozenset[int] = frozenset(),
        last: int | None = None,
    ) -> None:
        self.first = first
        self.cron = cron
        self.skipped = skipped
        self.last = last
        self._times: list[int] = []
        self._fires: CronSim | None = fires_after(cron, after)

    def _extend(self, now: int | None = None, runs: int | None = None) -> None:
        """Find fire times until one is after ``now`` or ``runs`` runs are known."""
        times = self._times
        while self._fires is not None and (
            (now is not None and (not times or times[-1] <= now))
            or (runs is not None and len(times) < runs)
        ):
            try:
                fire = int(next(self._fires).timestamp())
            except StopIteration:  # no fire in 50 years
                self._fires = None
                return
            if fire not in self.skipped:
                times.append(fire)

    def slot_created(self, seed: int, workflow: int, number: int) -> int:
        self._extend(runs=number - self.first + 1)
        return self._times[number - self.first]

    def count_at(self, seed: int, workflow: int, now: int) -> int:
        """How many of this segment's runs exist (are created) at ``now``."""
        self._extend(now=now)
        count = bisect.bisect_right(self._times, now)
        if self.last is not None:
            count = min(count, self.last - self.first + 1)
        return count

    def next_fire(self, moment: int) -> int | None:
        """The first fire time after ``moment``, missed or not."""
        try:
            return int(next(fires_after(self.cron, moment)).timestamp())
        except StopIteration:
            return None


def skipped_fires(cron: str, start: int, ordinals: tuple[int, ...]) -> frozenset[int]:
    """The fire times that are the ``n``-th (1-based) after ``start``, for each ``n``."""
    if not ordinals:
        return frozenset()
    fires = fires_after(cron, start)
    times = [int(next(fires).timestamp()) for _ in range(max(ordinals))]
    return frozenset(times[n - 1] for n in ordinals)


def fire_before(cron: str, start: int, count: int) -> int:
    """The ``count``-th fire time at or before ``start`` (for a history of ``count`` runs)."""
    fires = CronSim(cron, datetime.fromtimestamp(start + 1, UTC), reverse=True)
    moment = start
    for _ in range(count):
        try:
            moment = int(next(fires).timestamp())
        except StopIteration:
            break
    return moment


def user_id(seed: int, user: int) -> str:
    return uuid_from(seed, _USER_ID, user)


def make_profile(seed: int, index: int, start: int) -> WorkflowProfile:
    rng = Rng(seed, _PROFILE, index)
    bucket = rng.random()
    if bucket < 0.6:
        interval = rng.randint(180, 900)
    elif bucket < 0.9:
        interval = rng.randint(900, 3600)
    else:
        interval = rng.randint(3600, 6 * 3600)
    total_steps = rng.randint(5, 120)
    age = rng.randint(30 * DAY, 400 * DAY)
    created_at = start - age
    flaky = rng.chance(0.15)
    traits = Rng(seed, _TRAITS, index)
    name_source = traits.weighted(NAME_SOURCES)
    first_locale = traits.randint(0, len(LOCALES) - 1)
    locales = tuple(
        sorted(LOCALES[(first_locale + i) % len(LOCALES)] for i in range(traits.randint(1, 3)))
    )
    return WorkflowProfile(
        index=index,
        id=uuid_from(seed, _WORKFLOW_ID, index),
        name=workflow_name(index),
        description=rng.choice(DESCRIPTIONS),
        owner=rng.randint(0, len(USERS) - 1),
        created_at=created_at,
        updated_at=created_at + rng.randint(0, age - 3600),
        interval=interval,
        duration=max(10, int(interval * rng.uniform(0.25, 0.55))),
        pending=rng.randint(2, 30),
        total_steps=total_steps,
        total_nodes=rng.randint(min(3, total_steps), min(15, total_steps)),
        failure_rate=rng.uniform(0.25, 0.4) if flaky else rng.uniform(0.01, 0.12),
        cancel_rate=rng.uniform(0.0, 0.05),
        pause_rate=0.03,
        usage=Usage(
            cpu_seconds_per_step=round(rng.uniform(0.2, 5.0), 2),
            memory_base_mb=rng.randint(128, 1024),
            memory_peak_mb=rng.randint(1024, 4096),
            api_calls_per_step=rng.randint(0, 4),
            tokens_per_step=rng.randint(5, 80),
        ),
        name_source=name_source,
        locales=locales,
    )


def _run_usage(rng: Rng, typical: Usage) -> Usage:
    return Usage(
        cpu_seconds_per_step=typical.cpu_seconds_per_step * rng.uniform(0.8, 1.2),
        memory_base_mb=typical.memory_base_mb,
        memory_peak_mb=int(typical.memory_peak_mb * rng.uniform(0.8, 1.0)),
        api_calls_per_step=typical.api_calls_per_step,
        tokens_per_step=typical.tokens_per_step,
    )


def _error_text(rng: Rng, step: int, total_steps: int, total_nodes: int) -> str:
    """The error of a run failed in step ``step``, naming that step's node (see steps.py)."""
    position = min(step, total_steps - 1) * total_nodes // total_steps
    node = f"node-{position + 1}"
    return f"Node '{node}' ({NODE_TYPES[position % len(NODE_TYPES)]}) failed: " + rng.choice(
        FAILURE_REASONS
    )


def _user(rng: Rng, profile: WorkflowProfile) -> int:
    return profile.owner if rng.chance(0.7) else rng.randint(0, len(USERS) - 1)


def natural_plan(
    seed: int, codec: RunIdCodec, profile: WorkflowProfile, segment: Segment, number: int
) -> RunPlan:
    """The plan of natural run ``number``; it ends before the next slot may be created."""
    interval = segment.interval
    rng = Rng(seed, _RUN, profile.index, number)
    # The first draw must stay the jitter: Segment.slot_created recomputes it alone.
    created = segment.origin + (number - segment.first) * interval + rng.randint(0, interval // 5)
    # Jitter <= interval/5 and lifespan <= budget: the next slot is always created later.
    return _scheduled_plan(seed, codec, profile, number, rng, created, interval * 3 // 4)


def cron_plan(
    seed: int, codec: RunIdCodec, profile: WorkflowProfile, segment: CronSegment, number: int
) -> RunPlan:
    """The plan of the run created at a fire time; it ends before the next fire."""
    created = segment.slot_created(seed, profile.index, number)
    following = segment.next_fire(created)
    gap = DAY if following is None else following - created
    rng = Rng(seed, _CRON, profile.index, number)
    return _scheduled_plan(seed, codec, profile, number, rng, created, max(1, gap * 3 // 4))


def _scheduled_plan(
    seed: int,
    codec: RunIdCodec,
    profile: WorkflowProfile,
    number: int,
    rng: Rng,
    created: int,
    budget: int,
) -> RunPlan:
    """A scheduled run created at ``created`` whose whole lifespan fits in ``budget`` seconds."""
    pending = min(max(1, int(profile.pending * rng.uniform(0.5, 1.5))), budget // 8)
    full = min(max(1, int(profile.duration * rng.uniform(0.7, 1.3))), budget - budget // 4)
    draw = rng.random()
    usage = _run_usage(rng, profile.usage)
    user = _user(rng, profile)
    total = profile.total_steps
    start: int | None = created + pending
    error = None
    pause = None
    if draw < profile.failure_rate + profile.cancel_rate:
        outcome = FAILED if draw < profile.failure_rate else CANCELLED
        stop = rng.randint(0, total - 1)
        active_end = max(1, -(-full * (10 * stop + rng.randint(1, 9)) // (10 * total)))
        if outcome == FAILED:
            error = _error_text(rng, stop, total, profile.total_nodes)
        elif rng.chance(0.3):
            start = None  # cancelled while still pending
    else:
        outcome, stop, active_end = COMPLETED, total, full
    extra = Rng(seed, _EXTRA, profile.index, number)
    if start is None:
        end = created + rng.randint(1, pending)
        stop = 0
    else:
        if rng.chance(profile.pause_rate) and active_end >= 10:
            reason = extra.weighted(PAUSE_REASONS)
            pause = _pause(rng, start, active_end, budget - pending - active_end, reason)
        if pause is None and extra.chance(AUTOMATIC_PAUSE_RATE) and active_end >= 10:
            reason = extra.weighted(AUTOMATIC_PAUSES)
            pause = _pause(extra, start, active_end, budget - pending - active_end, reason)
        end = wall_time(start, pause, active_end)
    return RunPlan(
        workflow=profile.index,
        number=number,
        id=codec.encode(profile.index, number),
        created=created,
        start=start,
        end=end,
        outcome=outcome,
        total_steps=total,
        total_nodes=profile.total_nodes,
        stop_step=stop,
        full=full,
        pause=pause,
        usage=usage,
        user=user,
        error=error,
        **_output(extra, profile),
    )


def _pause(rng: Rng, start: int, active_end: int, room: int, reason: str) -> Pause | None:
    """A pause within the first half of a run's work, if ``room`` seconds allow one."""
    requested = rng.randint(1, active_end // 2)
    paused = requested + rng.randint(0, min(20, active_end - requested - 1))
    length = min(rng.randint(30, 600), room)
    if length < 5:
        return None
    return Pause(start + requested, start + paused, start + paused + length, reason)


def _output(rng: Rng, profile: WorkflowProfile) -> dict[str, Any]:
    """A run's output: its lines, their delivered audio each, their locales."""
    return {
        "lines": rng.randint(4, 60) * len(profile.locales),
        "audio_ms_per_line": rng.randint(1_500, 9_000),
        "locales": profile.locales,
    }


def explicit_plan(
    seed: int,
    codec: RunIdCodec,
    profile: WorkflowProfile,
    number: int,
    *,
    created: int,
    outcome: str,
    duration: int,
    pending: int,
    total_steps: int,
    pause_reason: str | None = None,
    pause_seconds: int = 60,
) -> RunPlan:
    """A run with a chosen outcome: it runs ``duration`` seconds after ``pending`` seconds.

    A failed run stops two thirds of the way, a cancelled one half way; a stalled run makes a
    few steps at the pace of a ``duration``-long run, then never progresses nor ends. With
    ``pause_reason``, a pause is requested a third of the way into the work, takes effect two
    seconds later and lasts ``pause_seconds``; the run ends that much later.
    """
    if outcome == COMPLETED:
        stop = total_steps
    elif outcome == FAILED:
        stop = total_steps * 2 // 3
    elif outcome == CANCELLED:
        stop = total_steps // 2
    elif outcome == STALL:
        stop = min(3, total_steps - 1)
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    duration = max(1, duration)
    if outcome in (FAILED, CANCELLED):
        # Pace the steps so that ``stop`` steps are done by the time the run ends.
        full = max(1, 2 * duration * total_steps // (2 * stop + 1))
    else:
        full = duration
    rng = Rng(seed, _RUN, profile.index, number, 1)
    start = created + pending
    total_nodes = min(profile.total_nodes, total_steps)
    pause = None
    if pause_reason is not None:
        if not pause_reason or pause_seconds < 1 or duration < 6:
            raise ValueError("a pause needs a reason, pause_seconds >= 1 and duration >= 6")
        requested = start + duration // 3
        paused = requested + 2
        pause = Pause(requested, paused, paused + pause_seconds, pause_reason)
    return RunPlan(
        workflow=profile.index,
        number=number,
        id=codec.encode(profile.index, number),
        created=created,
        start=start,
        end=None if outcome == STALL else wall_time(start, pause, duration),
        outcome=outcome,
        total_steps=total_steps,
        total_nodes=total_nodes,
        stop_step=stop,
        full=full,
        pause=pause,
        usage=_run_usage(rng, profile.usage),
        user=_user(rng, profile),
        error=_error_text(rng, stop, total_steps, total_nodes) if outcome == FAILED else None,
        **_output(Rng(seed, _EXTRA, profile.index, number, 1), profile),
    )
