"""A simulator of the OnePin REST API, for demos, tests and benchmarks.

It serves the documented endpoints from a deterministic model of workflows and runs whose state
is derived from a clock (real, sped up, or manual), with fault knobs (latency, 5xx, rate limit)
and an admin API under ``/_sim``. It shares only the API's JSON shapes with the exporter.

In-process use::

    with RunningSimulator(SimulatorConfig(clock="manual")) as sim:
        ...  # sim.url, sim.token, sim.model, sim.clock.advance(60)
"""

from .app import SIMULATOR, create_app
from .clock import Clock, ManualClock, RealClock
from .config import DEFAULT_TOKEN, SimulatorConfig
from .model import SimModel
from .plan import RUN_STATUSES, TERMINAL_STATUSES, RunPlan
from .server import RunningSimulator

__all__ = [
    "DEFAULT_TOKEN",
    "RUN_STATUSES",
    "SIMULATOR",
    "TERMINAL_STATUSES",
    "Clock",
    "ManualClock",
    "RealClock",
    "RunPlan",
    "RunningSimulator",
    "SimModel",
    "SimulatorConfig",
    "create_app",
]
