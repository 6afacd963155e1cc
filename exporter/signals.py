"""Process signals: SIGTERM and SIGINT stop the exporter, SIGHUP reloads it (and gc tuning, as
the process's main loop starts here)."""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from collections.abc import Awaitable, Callable


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `main(stop)` in a new event loop; SIGTERM and SIGINT set `stop`."""
    # Most objects here are the long-lived state of every workflow, and a poll makes no
    # reference cycles on purpose: full collections (0.1 s of CPU at 5,000 workflows) came
    # every second poll and found next to nothing. A tenth as often.
    gc.set_threshold(*gc.get_threshold()[:2], 100)

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
