"""Serving the simulator: in a background thread (for tests) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web

from .app import SIMULATOR, create_app
from .clock import Clock
from .config import SimulatorConfig
from .faults import Faults
from .model import SimModel
from .stats import RequestStats

STARTUP_TIMEOUT_SECONDS = 30.0


def format_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving ``app``; returns the runner and the bound port (useful with port 0)."""
    # Requests still waiting (e.g. on added latency) get two seconds when the server stops.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1]
    return runner, int(bound)


class RunningSimulator:
    """A simulator served on 127.0.0.1 (port 0 by default) by a thread with its own loop.

    Use it as a context manager; ``url``, ``model``, ``clock``, ``faults`` and ``stats`` are
    available inside.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SimulatorConfig()
        self._host, self._port = host, port
        self._app = create_app(self.config)
        sim = self._app[SIMULATOR]
        self.model: SimModel = sim.model
        self.clock: Clock = sim.clock
        self.faults: Faults = sim.faults
        self.stats: RequestStats = sim.stats
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def token(self) -> str:
        return self.config.token

    def start(self) -> RunningSimulator:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._thread = threading.Thread(target=self._serve, name="onepin-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT_SECONDS):
            raise RuntimeError(f"simulator did not start within {STARTUP_TIMEOUT_SECONDS} s")
        if self._error is not None:
            raise RuntimeError(f"simulator failed to start: {self._error!r}") from self._error
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._runner, port = loop.run_until_complete(
                start_site(self._app, self._host, self._port)
            )
            self.url = format_url(self._host, port)
        except BaseException as error:  # reported to the starting thread
            self._error = error
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STARTUP_TIMEOUT_SECONDS)
        if thread.is_alive():
            raise RuntimeError(f"simulator thread did not stop within {STARTUP_TIMEOUT_SECONDS} s")

    def __enter__(self) -> RunningSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
