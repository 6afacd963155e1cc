"""The aiohttp application that serves the simulated API and the admin API."""

from __future__ import annotations

from aiohttp import web

from .admin import AdminRoutes
from .api import ApiRoutes
from .config import SimulatorConfig
from .state import Simulator

SIMULATOR = web.AppKey("simulator", Simulator)


def create_app(config: SimulatorConfig | None = None) -> web.Application:
    """A ready application; its parts are at ``app[SIMULATOR]`` (model, clock, faults, stats)."""
    sim = Simulator.from_config(config or SimulatorConfig())
    app = web.Application()
    app[SIMULATOR] = sim
    ApiRoutes(sim).register(app.router)
    AdminRoutes(sim).register(app.router)
    return app
