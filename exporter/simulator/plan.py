"""A run's plan, and its observable state at any moment.

A plan fixes everything about a run when it is created: when it starts, how fast it progresses,
whether and when it pauses, how it ends. Its state at time ``now`` is then a pure function of
the plan and ``now``, so serving a request never re-simulates anything. All times are integer
unix seconds of the simulator clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PENDING: Final = "pending"
RUNNING: Final = "running"
PAUSED: Final = "paused"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
# The planned outcome of a run that never finishes and stops making progress.
STALL: Final = "stall"

RUN_STATUSES: Final = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, PAUSED)
TERMINAL_STATUSES: Final = frozenset({COMPLETED, FAILED, CANCELLED})
ACTIVE_STATUSES: Final = frozenset({PENDING, RUNNING, PAUSED})
OUTCOMES: Final = (COMPLETED, FAILED, CANCELLED, STALL)


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause: requested, then effective once work drains, then resumed (wall times).

    ``reason`` is the API's ``pause_reason``: ``user`` for a manual pause, else automatic.
    """

    requested: int
    paused: int
    resumed: int
    reason: str = "user"

    @property
    def length(self) -> int:
        return self.resumed - self.paused


def wall_time(start: int, pause: Pause | None, active: int) -> int:
    """The wall time at which a run started at ``start`` has done ``active`` seconds of work."""
    if pause is not None and active > pause.paused - start:
        return start + active + pause.length
    return start + active


@dataclass(frozen=True, slots=True)
class Usage:
    """Resource use per finished step; usage only moves when a step finishes."""

    cpu_seconds_per_step: float
    memory_base_mb: int
    memory_peak_mb: int
    api_calls_per_step: int
    tokens_per_step: int


@dataclass(frozen=True, slots=True)
class Observation:
    """What the API shows of a run at one moment."""

    status: str
    finished_steps: int
    started_at: int | None
    completed_at: int | None
    updated_at: int
    pause_requested_at: int | None
    paused_at: int | None
    # Seconds spent paused so far; the reason of the pause being drained to or in force.
    paused_seconds: int
    pause_reason: str | None


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything about one run, fixed when it is created.

    ``start`` is None for a run cancelled while still pending; ``end`` is None for a run that
    never ends (a stalled run). ``full`` is the active (unpaused) seconds the run needs for all
    ``total_steps``; it stops at ``stop_step`` steps (``total_steps`` when it completes).
    ``lines`` output lines come out of all the steps, each with ``audio_ms_per_line`` of
    delivered audio, in ``locales``.
    """

    workflow: int
    number: int
    id: str
    created: int
    start: int | None
    end: int | None
    outcome: str
    total_steps: int
    total_nodes: int
    stop_step: int
    full: int
    pause: Pause | None
    usage: Usage
    user: int
    error: str | None
    lines: int = 0
    audio_ms_per_line: int = 0
    locales: tuple[str, ...] = ()

    def status_at(self, now: int) -> str:
        end = self.end
        if end is not None and now >= end:
            return self.outcome
        start = self.start
        if start is None or now < start:
            return PENDING
        pause = self.pause
        if pause is not None and pause.paused <= now < pause.resumed:
            return PAUSED
        return RUNNING

    def active_seconds(self, now: int) -> int:
        """Seconds of unpaused work done by ``now`` (0 before the start)."""
        start = self.start
        if start is None or now <= start:
            return 0
        pause = self.pause
        if pause is None or now < pause.paused:
            return now - start
        if now < pause.resumed:
            return pause.paused - start
        return now - start - pause.length

    def wall_time(self, active: int) -> int:
        """The wall time at which ``active`` seconds of work are done (requires a start)."""
        assert self.start is not None
        return wall_time(self.start, self.pause, active)

    def finished_steps(self, now: int) -> int:
        if self.end is not None and now >= self.end:
            return self.stop_step
        done = self.total_steps * self.active_seconds(now) // self.full
        return min(done, self.stop_step)

    def observe(self, now: int) -> Observation:
        status = self.status_at(now)
        finished = self.finished_steps(now)
        start = self.start
        started_at = start if start is not None and now >= start else None
        completed_at = self.end if status in TERMINAL_STATUSES else None
        updated = self.created
        if started_at is not None:
            updated = started_at
            if finished > 0:
                # The moment the current step count was reached.
                reached = -(-finished * self.full // self.total_steps)
                updated = max(updated, min(self.wall_time(reached), now))
        pause_requested_at = paused_at = pause_reason = None
        paused_seconds = 0
        pause = self.pause
        if pause is not None and started_at is not None:
            if pause.requested <= now < pause.resumed:
                pause_requested_at = pause.requested
                pause_reason = pause.reason
                updated = max(updated, pause.requested)
                if now >= pause.paused:
                    paused_at = pause.paused
                    paused_seconds = now - pause.paused
                    updated = max(updated, pause.paused)
            elif now >= pause.resumed:
                paused_seconds = pause.length
                updated = max(updated, pause.resumed)
        if completed_at is not None:
            updated = completed_at
        return Observation(
            status=status,
            finished_steps=finished,
            started_at=started_at,
            completed_at=completed_at,
            updated_at=updated,
            pause_requested_at=pause_requested_at,
            paused_at=paused_at,
            paused_seconds=paused_seconds,
            pause_reason=pause_reason,
        )

    def output_lines(self, finished_steps: int) -> int:
        """Output lines written once ``finished_steps`` steps are done."""
        return self.lines * finished_steps // self.total_steps

    def duration(self) -> int | None:
        """``completed_at - started_at`` of a completed run; None for any other outcome."""
        if self.outcome != COMPLETED or self.start is None or self.end is None:
            return None
        return self.end - self.start

    def active_duration(self) -> int | None:
        """The API's duration of a completed run: ``duration()`` minus the time paused."""
        duration = self.duration()
        if duration is None or self.pause is None:
            return duration
        return duration - self.pause.length

    def delivered_audio_ms(self, finished_steps: int) -> int:
        """Audio delivered once ``finished_steps`` steps are done."""
        return self.output_lines(finished_steps) * self.audio_ms_per_line
