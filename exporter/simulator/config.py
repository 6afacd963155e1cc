"""The simulator's settings."""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock, ManualClock, RealClock
from .faults import FaultSettings
from .model import SimModel
from .rng import MAX_WORKFLOWS, uuid_from

# A well-formed but obviously fake live key: ``op_live_`` + 32 base62 characters.
DEFAULT_TOKEN = "op_live_S1mu1at0rK3y00000000000000000000"  # noqa: S105 (a public test key)
_WORKSPACE = 0x57534B


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the simulator is started with.

    ``clock`` is ``"real"`` (simulated time = start + real elapsed x ``speed``), ``"manual"``
    (moves only through ``advance``) or a ready clock object. ``workspace_id`` defaults to an id
    derived from the seed. ``active_runs`` switches to the benchmark shape (see ``SimModel``).
    ``schedules`` puts workflows (id or name) on a cron schedule (UTC); ``missed`` skips fires
    of them: ``(workflow, n)`` is the ``n``-th fire after the start (see ``SimModel``).
    """

    token: str = DEFAULT_TOKEN
    workspace_id: str | None = None
    workflows: int = 12
    seed: int = 1
    speed: float = 1.0
    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_per_min: int | None = None
    active_runs: int | None = None
    clock: str | Clock = "real"
    required_version: str | None = None
    validation_body: str = "envelope"
    schedules: tuple[tuple[str, str], ...] = ()
    missed: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.token or any(c.isspace() for c in self.token):
            raise ValueError("token must be a non-empty string without whitespace")
        if self.workspace_id is not None and not self.workspace_id.strip():
            raise ValueError("workspace_id must not be empty")
        if not 1 <= self.workflows <= MAX_WORKFLOWS:
            raise ValueError(f"workflows must be between 1 and {MAX_WORKFLOWS}")
        if self.active_runs is not None and not 0 <= self.active_runs <= self.workflows:
            raise ValueError("active_runs must be between 0 and the number of workflows")
        if not self.speed > 0:
            raise ValueError("speed must be > 0")
        if isinstance(self.clock, str) and self.clock not in ("real", "manual"):
            raise ValueError("clock must be 'real' or 'manual'")
        self.fault_settings().validate()
        if self.schedules or self.missed:
            # The workflows are named by the seed's world: build its profiles to check them.
            SimModel(
                ManualClock(),
                workflows=self.workflows,
                seed=self.seed,
                active_runs=self.active_runs,
                schedules=self.schedules,
                missed=self.missed,
            )

    def fault_settings(self) -> FaultSettings:
        return FaultSettings(
            self.latency_ms,
            self.error_rate,
            self.rate_limit_per_min,
            self.required_version,
            self.validation_body,
        )

    def make_clock(self) -> Clock:
        if self.clock == "real":
            return RealClock(self.speed)
        if self.clock == "manual":
            return ManualClock()
        assert not isinstance(self.clock, str)
        return self.clock

    @property
    def resolved_workspace_id(self) -> str:
        return self.workspace_id or uuid_from(self.seed, _WORKSPACE)
