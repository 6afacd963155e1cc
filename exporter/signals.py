"""Process signals: SIGTERM and SIGINT stop the exporter, SIGHUP reloads it (and which garbage
collections CPython starts on its own, as the process's main loop starts here)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable

from exporter.fullgc import hold_automatic


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` in a new event loop; SIGTERM and SIGINT set `stop`."""
    # Full collections run as a poll starts, once a minute (exporter/fullgc.py).
    hold_automatic()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(run())


def on_sighup(reload: Callable[[], Awaitable[object]]) -> Callable[[], None]:
    """Reload on SIGHUP (only the main thread may handle signals); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Future[object]] = set()

    def handle() -> None:
        task = asyncio.ensure_future(reload())
        tasks.add(task)  # a reference, until it is done
        task.add_done_callback(tasks.discard)

    def undo() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    loop.add_signal_handler(signal.SIGHUP, handle)
    return undo
