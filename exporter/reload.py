"""Reload: re-read the config and the web config of a running exporter (SIGHUP, POST /-/reload).

A file that does not load changes nothing: the running configuration keeps serving, the reason
is logged, and the reload metric (`exporter.metrics.RELOAD_SUCCESSFUL`) turns 0 until a reload
succeeds.
Workspaces that stay (same name and API) keep their state, so their workflows' counters carry on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.registry import Collector

from exporter.config import Config, ConfigError, load_config
from exporter.metrics import RELOAD_SUCCESS_TIME, RELOAD_SUCCESSFUL
from exporter.poller import WorkspacePoller
from exporter.rendering import MetricsRenderer, RenderOptions
from exporter.server import ServerState
from exporter.sharedpoll import Poller
from exporter.webconfig import WebConfig, basic_auth_middleware, load_web_config

log = logging.getLogger("exporter")

# Builds the pollers of a config, each adopting the state of its predecessor (by workspace).
BuildPollers = Callable[[Config, Mapping[str, WorkspacePoller]], list[WorkspacePoller]]


@dataclass(slots=True)
class ReloadStatus:
    successful: bool = True
    success_time: float = field(default_factory=time.time)


class ReloadCollector(Collector):
    """The two gauges of the last reload, as Prometheus names its own."""

    def __init__(self, status: ReloadStatus) -> None:
        self._status = status

    def collect(self) -> Iterable[Any]:
        yield RELOAD_SUCCESSFUL.metric(1.0 if self._status.successful else 0.0)
        yield RELOAD_SUCCESS_TIME.metric(self._status.success_time)


class SwappableAuth:
    """The basic auth middleware, replaced when a reload brings other users (or none)."""

    def __init__(self, web_config: WebConfig) -> None:
        self._inner = self._make(web_config)

    @staticmethod
    def _make(web_config: WebConfig) -> Callable[..., Any] | None:
        return basic_auth_middleware(web_config.users) if web_config.users else None

    def set(self, web_config: WebConfig) -> None:
        self._inner = self._make(web_config)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        inner = self._inner
        if inner is None:
            return await handler(request)
        response: web.StreamResponse = await inner(request, handler)
        return response


class SwappableTLS:
    """Serves the certificate of the last loaded web config on new connections, though the
    listening sockets keep the context they started with: each handshake's SNI callback (called
    with or without SNI) moves it to the current context."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self._current = context
        if context is not None:
            context.sni_callback = self._pick

    def set(self, web_config: WebConfig) -> None:
        self._current = web_config.ssl_context

    def _pick(self, conn: ssl.SSLObject, _name: str | None, context: ssl.SSLContext) -> None:
        if self._current is not None and self._current is not context:
            conn.context = self._current


def tls_change(before: WebConfig, after: WebConfig) -> str | None:
    """Why `after` cannot be applied to a server started with `before` (None: it can)."""
    if (before.ssl_context is None) != (after.ssl_context is None):
        return "turning TLS on or off takes a restart"
    return None


class Reloader:
    """Re-reads the files and applies them to the running poller, server state and auth."""

    def __init__(
        self,
        *,
        config_file: str | None,
        web_config_file: str | None,
        config: Config,
        web_config: WebConfig,
        poller: Poller,
        state: ServerState,
        auth: SwappableAuth,
        tls: SwappableTLS,
        build: BuildPollers,
        on_config: Callable[[Config], None] | None = None,
        status: ReloadStatus | None = None,
    ) -> None:
        self._config_file = config_file
        self._web_config_file = web_config_file
        self.config = config
        self._web_config = web_config
        self._poller = poller
        self._state = state
        self._auth = auth
        self._tls = tls
        self._build = build
        self._on_config = on_config
        self.status = status or ReloadStatus()
        self._lock = asyncio.Lock()

    async def reload(self, trigger: str) -> list[str]:
        """Reload now; the problems that kept it from applying (empty: it did)."""
        async with self._lock:
            problems = self._load()
            if isinstance(problems, list):
                self.status.successful = False
                log.error(
                    "configuration reload failed; the running configuration stays",
                    extra={"trigger": trigger, "problems": "; ".join(problems)},
                )
                return problems
            config, web_config = problems
            if self._on_config is not None:
                self._on_config(config)  # its secrets are known to the logs before any use
            previous = {ws.workspace.name: ws for ws in self._poller.workspaces}
            pollers = self._build(config, previous)
            old = await self._poller.replace(pollers, config.collection.min_interval)
            self.config = config
            self._state.config = config
            if RenderOptions.of(config.collection) != self._state.renderer.options:
                self._state.renderer = MetricsRenderer.of(config.collection)
            self._web_config = web_config
            self._auth.set(web_config)
            self._tls.set(web_config)
            for ws in old:
                await ws.client.aclose()
            self.status.successful = True
            self.status.success_time = time.time()
            log.info(
                "configuration reloaded",
                extra={"trigger": trigger, "workspaces": len(config.workspaces)},
            )
            return []

    def _load(self) -> list[str] | tuple[Config, WebConfig]:
        if self._config_file is None:
            return ["no --config.file to reload (the demo's configuration is built in)"]
        problems: list[str] = []
        config = self.config
        web_config = self._web_config
        try:
            config = load_config(self._config_file)
        except ConfigError as exc:
            problems += exc.problems
        if self._web_config_file is not None:
            try:
                web_config = load_web_config(self._web_config_file)
            except ConfigError as exc:
                problems += exc.problems
        change = tls_change(self._web_config, web_config)
        if change:
            problems.append(f"{self._web_config_file}: {change}")
        return problems or (config, web_config)


def lifecycle_routes(
    app: web.Application, reloader: Reloader | None, enabled: bool
) -> Sequence[web.AbstractRouteDef]:
    """POST (or PUT) /-/reload: reload, when --web.enable-lifecycle is given; 403 otherwise."""

    async def reload(_request: web.Request) -> web.Response:
        if not enabled or reloader is None:
            return web.Response(status=403, text="Lifecycle API is not enabled.\n")
        problems = await reloader.reload("POST /-/reload")
        if problems:
            text = "failed to reload config:\n" + "".join(f"  {p}\n" for p in problems)
            return web.Response(status=500, text=text)
        return web.Response(text="OK\n")

    routes = [web.post("/-/reload", reload), web.put("/-/reload", reload)]
    app.router.add_routes(routes)
    return routes
