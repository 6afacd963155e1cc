"""Assemble config → clients → pollers → HTTP app, and run it until told to stop."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client.registry import Collector

from exporter import connections
from exporter.client import OnePinClient
from exporter.config import Config
from exporter.connections import ConnectionLimiter
from exporter.poller import Poller, WorkspacePoller
from exporter.reload import (
    ReloadCollector,
    Reloader,
    ReloadStatus,
    SwappableAuth,
    SwappableTLS,
    lifecycle_routes,
)
from exporter.server import STATE_KEY, create_app
from exporter.sharding import NO_SHARDING, Shard
from exporter.webconfig import WebConfig

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


class CannotListen(Exception):
    """A listen address could not be bound; the message names it, why, and a likely cause."""

    def __init__(self, address: ListenAddress, exc: OSError) -> None:
        self.address = address
        self.errno = exc.errno
        # aiohttp's strerror repeats the address; the system's words for the errno do not.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = listen_hint(exc.errno, address)
        super().__init__(
            f"cannot listen on {address.url()}: {reason}" + (f" ({hint})" if hint else "")
        )


def listen_hint(code: int | None, address: ListenAddress) -> str:
    """The likely cause of a failed bind, in an operator's words ("" when there is no guess)."""
    if code == errno.EADDRINUSE:
        return (
            f"another program, perhaps another exporter, has port {address.port}: "
            f"`ss -ltnp 'sport = :{address.port}'` shows which; "
            "stop it or pick another port with --web.listen-address"
        )
    if code == errno.EADDRNOTAVAIL:
        return (
            f"{address.host} is not an address of this machine; "
            f"try :{address.port} for every interface"
        )
    if code == errno.EACCES:
        return "ports below 1024 need root or CAP_NET_BIND_SERVICE; pick a higher port"
    return ""


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
    return Poller(build_workspace_pollers(config, transport, shard), config.collection.min_interval)


def build_workspace_pollers(
    config: Config,
    transport: httpx.AsyncBaseTransport | None = None,
    shard: Shard = NO_SHARDING,
    previous: Mapping[str, WorkspacePoller] | None = None,
) -> list[WorkspacePoller]:
    """A poller per workspace; one that was there before a reload, with the same API and
    workspace id, takes over its predecessor's state and request counts."""
    pollers = []
    for ws in config.workspaces:
        old = (previous or {}).get(ws.name)
        if old is not None and (old.workspace.api_url, old.workspace.workspace_id) != (
            ws.api_url,
            ws.workspace_id,
        ):
            old = None  # another API or workspace: nothing of the old one applies
        client = OnePinClient(
            ws.api_url,
            ws.token,
            config.http,
            stats=old.client.stats if old is not None else None,
            workspace_id=ws.workspace_id,
            transport=transport,
        )
        poller = WorkspacePoller(ws, client, config.collection, shard.selects)
        if old is not None:
            poller.adopt(old)
        pollers.append(poller)
    return pollers


async def serve(
    config: Config,
    listen: ListenAddress | Sequence[ListenAddress],
    stop: asyncio.Event,
    on_listening: Callable[[list[str]], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    shard: Shard = NO_SHARDING,
    web_config: WebConfig = NO_WEB_CONFIG,
    telemetry_path: str = "/metrics",
    exporter_metrics: bool = True,
    *,
    config_file: str | None = None,
    web_config_file: str | None = None,
    lifecycle: bool = False,
    on_config: Callable[[Config], None] | None = None,
) -> None:
    """Serve on every address until `stop` is set; poll once at start so that /-/ready turns
    true. Raises CannotListen, having logged nothing, when an address cannot be bound. SIGHUP
    (in the main thread) and, with `lifecycle`, POST /-/reload re-read `config_file` and
    `web_config_file` (exporter.reload)."""
    listens = [listen] if isinstance(listen, ListenAddress) else list(listen)
    poller = build_poller(config, transport, shard)
    auth = SwappableAuth(web_config)
    status = ReloadStatus()
    extra: list[Collector] = [ReloadCollector(status)]
    if shard.total > 1:
        extra.append(shard)
    limiter = ConnectionLimiter(web_config.limits)
    middlewares: list[Middleware] = [limiter.middleware, auth.middleware]
    app = create_app(
        config,
        poller,
        extra,
        middlewares,
        telemetry_path=telemetry_path,
        exporter_metrics=exporter_metrics,
    )
    reloader = Reloader(
        config_file=config_file,
        web_config_file=web_config_file,
        config=config,
        web_config=web_config,
        poller=poller,
        state=app[STATE_KEY],
        auth=auth,
        tls=SwappableTLS(web_config.ssl_context),
        build=lambda new, previous: build_workspace_pollers(new, transport, shard, previous),
        on_config=on_config,
        status=status,
    )
    lifecycle_routes(app, reloader, lifecycle)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=web_config.limits.idle_timeout,
    )
    await runner.setup()
    servers: list[asyncio.Server] = []
    try:
        urls = await _start_sites(runner, limiter, listens, web_config, servers)
    except BaseException:
        _close(servers)
        await runner.cleanup()
        await poller.aclose()
        raise
    hangup = _on_sighup(lambda: reloader.reload("SIGHUP"))
    try:
        for url in urls:
            log.info("listening", extra={"address": url})
        if on_listening is not None:
            on_listening(urls)
        first = asyncio.ensure_future(poller.snapshot(config.collection.max_duration))
        await stop.wait()
        first.cancel()
    finally:
        hangup()
        _close(servers)
        await runner.cleanup()
        await poller.aclose()
        log.info("stopped")


def _on_sighup(reload: Callable[[], Awaitable[object]]) -> Callable[[], None]:
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


async def _start_sites(
    runner: web.AppRunner,
    limiter: ConnectionLimiter,
    listens: Sequence[ListenAddress],
    web_config: WebConfig,
    servers: list[asyncio.Server],
) -> list[str]:
    """Serve on each address (adding each server to `servers`); the URL of each, with the port
    the kernel gave."""
    tls = web_config.ssl_context
    urls = []
    for listen in listens:
        try:
            server = await connections.listen(runner, limiter, listen.host, listen.port, tls)
        except OSError as exc:
            raise CannotListen(listen, exc) from None
        servers.append(server)
        urls.append(listen.url(_bound_port(server, listen.port), "https" if tls else "http"))
    return urls


def _close(servers: Sequence[asyncio.Server]) -> None:
    for server in servers:
        server.close()


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
        listen: str | Sequence[str] = "127.0.0.1:0",
        transport: httpx.AsyncBaseTransport | None = None,
        shard: Shard = NO_SHARDING,
        web_config: WebConfig = NO_WEB_CONFIG,
        telemetry_path: str = "/metrics",
        exporter_metrics: bool = True,
    ) -> None:
        self._shard = shard
        self._web_config = web_config
        self._config = config
        addresses = [listen] if isinstance(listen, str) else listen
        self._listen = [parse_listen_address(address) for address in addresses]
        self._telemetry_path = telemetry_path
        self._exporter_metrics = exporter_metrics
        self._transport = transport
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="onepin-exporter", daemon=True)
        self.url = ""  # the first address's
        self.urls: list[str] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        def listening(urls: list[str]) -> None:
            self.url, self.urls = urls[0], urls
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
                telemetry_path=self._telemetry_path,
                exporter_metrics=self._exporter_metrics,
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
