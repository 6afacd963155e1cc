"""Serve the assembled exporter on its listen addresses until told to stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import httpx
from aiohttp import web

from exporter import connections
from exporter.config import Config
from exporter.connections import ConnectionLimiter
from exporter.listen import CannotListen, ListenAddress
from exporter.sharding import NO_SHARDING, Shard
from exporter.signals import on_sighup
from exporter.webconfig import WebConfig
from exporter.wiring import NO_WEB_CONFIG, Setup, Wired, wire

log = logging.getLogger("exporter")


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
    wired = wire(
        Setup(config, transport, shard, web_config, telemetry_path, exporter_metrics,
              config_file, web_config_file, lifecycle, on_config)
    )  # fmt: skip
    runner = web.AppRunner(wired.app, access_log=None, handle_signals=False,
                           keepalive_timeout=web_config.limits.idle_timeout)  # fmt: skip
    await runner.setup()
    servers: list[asyncio.Server] = []
    try:
        urls = await _start_sites(runner, wired.limiter, listens, web_config, servers)
    except BaseException:
        await _shut(wired, runner, servers)
        raise
    hangup = on_sighup(lambda: wired.reloader.reload("SIGHUP"))
    try:
        for url in urls:
            log.info("listening", extra={"address": url})
        if on_listening is not None:
            on_listening(urls)
        first = asyncio.ensure_future(wired.poller.snapshot(config.collection.max_duration))
        await stop.wait()
        first.cancel()
    finally:
        hangup()
        await _shut(wired, runner, servers)
        log.info("stopped")


async def _shut(wired: Wired, runner: web.AppRunner, servers: Sequence[asyncio.Server]) -> None:
    for server in servers:
        server.close()
    await runner.cleanup()
    await wired.poller.aclose()


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


def _bound_port(server: asyncio.Server, default: int) -> int:
    for sock in server.sockets:
        address = sock.getsockname()
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default
