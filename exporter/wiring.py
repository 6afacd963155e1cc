"""Assemble the exporter: config → clients → pollers → HTTP app, with reload and its collectors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client.registry import Collector

from exporter.client import OnePinClient
from exporter.config import Config
from exporter.connections import ConnectionLimiter
from exporter.poller import WorkspacePoller
from exporter.ratebudget import RequestBudget
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
from exporter.sharedpoll import Poller
from exporter.webconfig import WebConfig

NO_WEB_CONFIG = WebConfig()


def build_poller(
    config: Config, transport: httpx.AsyncBaseTransport | None = None, shard: Shard = NO_SHARDING
) -> Poller:
    return Poller(build_workspace_pollers(config, transport, shard), config.collection.min_interval)


def _kept_budget(old: WorkspacePoller | None, limit: int | None) -> RequestBudget | None:
    """The request budget of the workspace before a reload, when its limit is unchanged: the
    requests of the last minute still count."""
    if old is None or old.client.budget.limit != limit:
        return None
    return old.client.budget


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
            budget=_kept_budget(old, config.http.max_requests_per_minute),
        )
        poller = WorkspacePoller(ws, client, config.collection, shard.selects)
        if old is not None:
            poller.adopt(old)
        pollers.append(poller)
    return pollers


@dataclass(frozen=True, slots=True)
class Setup:
    """Everything the exporter is built from: the config, the flags, and (in tests) a transport."""

    config: Config
    transport: httpx.AsyncBaseTransport | None = None
    shard: Shard = NO_SHARDING
    web_config: WebConfig = NO_WEB_CONFIG
    telemetry_path: str = "/metrics"
    exporter_metrics: bool = True
    config_file: str | None = None
    web_config_file: str | None = None
    lifecycle: bool = False
    on_config: Callable[[Config], None] | None = None


@dataclass(frozen=True, slots=True)
class Wired:
    """The assembled exporter, ready to serve: the app, and what serving must start and close."""

    app: web.Application
    poller: Poller
    reloader: Reloader
    limiter: ConnectionLimiter


def wire(setup: Setup) -> Wired:
    """The pollers, the HTTP app with its middlewares and collectors, and the reloader."""
    config, web_config = setup.config, setup.web_config
    poller = build_poller(config, setup.transport, setup.shard)
    auth = SwappableAuth(web_config)
    status = ReloadStatus()
    extra: list[Collector] = [ReloadCollector(status)]
    if setup.shard.total > 1:
        extra.append(setup.shard)
    limiter = ConnectionLimiter(web_config.limits)
    middlewares: list[Middleware] = [limiter.middleware, auth.middleware]
    app = create_app(
        config,
        poller,
        extra,
        middlewares,
        telemetry_path=setup.telemetry_path,
        exporter_metrics=setup.exporter_metrics,
    )
    reloader = Reloader(
        config_file=setup.config_file,
        web_config_file=setup.web_config_file,
        config=config,
        web_config=web_config,
        poller=poller,
        state=app[STATE_KEY],
        auth=auth,
        tls=SwappableTLS(web_config.ssl_context),
        build=lambda new, previous: build_workspace_pollers(
            new, setup.transport, setup.shard, previous
        ),
        on_config=setup.on_config,
        status=status,
    )
    lifecycle_routes(app, reloader, setup.lifecycle)
    return Wired(app, poller, reloader, limiter)
