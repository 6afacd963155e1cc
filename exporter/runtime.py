"""Assemble config → clients → pollers → HTTP app, and run it until told to stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter import connections
from exporter.client import OnePinClient
from exporter.config import Config
from exporter.connections import ConnectionLimiter
from exporter.poller import Poller, WorkspacePoller
from exporter.server import create_app
from exporter.sharding import NO_SHARDING, Shard
from exporter.webconfig import WebConfig, basic_auth_middleware

NO_WEB_CONFIG = WebConfig()

log = logging.getLogger("exporter")


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str | None
    port: int

    def url(self, actual_port: int | None = None, scheme: str = "http") -> str:
        host = self.host or "localhost"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{actual_port if actual_port is not None else self.port}"


def parse_listen_address(value: str) -> ListenAddress:
    """`HOST:PORT`, `:PORT` (every interface) or `[IPv6]:PORT`."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"invalid listen address {value!r}: expected HOST:PORT or :PORT")
    host = host.strip("[]")
    return ListenAddress(host or None, int(port_text))


def build_poller(
    config: Config, transport: httpx.AsyncBaseTransport | None = None, shard: Shard = NO_SHARDING
) -> Poller:
    pollers = []
    for ws in config.workspaces:
        client = OnePinClient(
            ws.api_url, ws.token, config.http, workspace_id=ws.workspace_id, transport=transport
        )
        pollers.append(WorkspacePoller(ws, client, config.collection, shard.selects))
    return Poller(pollers, config.collection.min_interval)


async def serve(
    config: Config,
    listen: ListenAddress,
    stop: asyncio.Event,
    on_listening: Callable[[str], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    shard: Shard = NO_SHARDING,
    web_config: WebConfig = NO_WEB_CONFIG,
) -> None:
    """Serve until `stop` is set; poll once at start so that /-/ready turns true."""
    poller = build_poller(config, transport, shard)
    limiter = ConnectionLimiter(web_config.limits)
    middlewares: list[Middleware] = [limiter.middleware]
    if web_config.users:
        middlewares.append(basic_auth_middleware(web_config.users))
    app = create_app(config, poller, [shard] if shard.total > 1 else [], middlewares)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=web_config.limits.idle_timeout,
    )
    await runner.setup()
    server: asyncio.Server | None = None
    try:
        tls = web_config.ssl_context
        server = await connections.listen(runner, limiter, listen.host, listen.port, tls)
        port = _bound_port(server, listen.port)
        url = listen.url(port, "https" if tls else "http")
        log.info("listening", extra={"address": url})
        if on_listening is not None:
            on_listening(url)
        first = asyncio.ensure_future(poller.snapshot(config.collection.max_duration))
        await stop.wait()
        first.cancel()
    finally:
        if server is not None:
            server.close()
        await runner.cleanup()
        await poller.aclose()
        log.info("stopped")


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


def _bound_port(server: asyncio.Server, default: int) -> int:
    for sock in server.sockets:
        address = sock.getsockname()
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


class BackgroundExporter:
    """The exporter in a thread with its own event loop (for tests, benchmarks and the demo)."""

    def __init__(
        self,
        config: Config,
        listen: str = "127.0.0.1:0",
        transport: httpx.AsyncBaseTransport | None = None,
        shard: Shard = NO_SHARDING,
        web_config: WebConfig = NO_WEB_CONFIG,
    ) -> None:
        self._shard = shard
        self._web_config = web_config
        self._config = config
        self._listen = parse_listen_address(listen)
        self._transport = transport
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="onepin-exporter", daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        def listening(url: str) -> None:
            self.url = url
            self._ready.set()

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(
                self._config,
                self._listen,
                self._stop,
                listening,
                self._transport,
                self._shard,
                self._web_config,
            )

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    def start(self, timeout: float = 10.0) -> BackgroundExporter:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"exporter did not start listening within {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"exporter failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"exporter did not stop within {timeout}s")

    def __enter__(self) -> BackgroundExporter:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
