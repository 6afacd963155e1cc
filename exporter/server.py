"""HTTP endpoints: /metrics, the landing page and the health checks."""

from __future__ import annotations

import gzip
import html
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.collector import SnapshotCollector
from exporter.config import Config
from exporter.poller import Poller
from exporter.snapshot import Snapshot

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
# Without the header (a person with curl), allow the poll this long, capped by config.
DEFAULT_SCRAPE_TIMEOUT = 10.0
POLLER_KEY = web.AppKey("poller", Poller)


@dataclass(slots=True)
class ServerState:
    config: Config
    started_at: float
    process_registry: CollectorRegistry
    extra_collectors: tuple[Collector, ...] = ()


STATE_KEY = web.AppKey("state", ServerState)


def poll_timeout(header: str | None, cap: float) -> float:
    """The time a poll may take: the scrape timeout minus a margin for rendering, capped."""
    try:
        scrape_timeout = float(header) if header else DEFAULT_SCRAPE_TIMEOUT
    except ValueError:
        scrape_timeout = DEFAULT_SCRAPE_TIMEOUT
    if not scrape_timeout > 0:
        scrape_timeout = DEFAULT_SCRAPE_TIMEOUT
    margin = min(0.5, scrape_timeout * 0.2)
    return max(0.1, min(cap, scrape_timeout - margin))


class _Combined:
    """One scrape's collectors: process metrics plus the snapshot's families."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = tuple(collectors)

    def collect(self) -> Iterable[object]:
        for collector in self._collectors:
            yield from collector.collect()


def render(snapshot: Snapshot, state: ServerState, accept: str | None) -> tuple[bytes, str]:
    collector = SnapshotCollector(snapshot, state.config.collection.triggered_by_label)
    encoder, content_type = choose_encoder(accept or "")
    combined = _Combined((state.process_registry, *state.extra_collectors, collector))
    return encoder(combined), content_type  # type: ignore[arg-type]


async def metrics(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    poller = request.app[POLLER_KEY]
    timeout = poll_timeout(
        request.headers.get(TIMEOUT_HEADER), state.config.collection.max_duration
    )
    snapshot = await poller.snapshot(timeout)
    body, content_type = render(snapshot, state, request.headers.get("Accept"))
    headers = {"Content-Type": content_type, "Vary": "Accept-Encoding, Accept"}
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def healthy(_request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[POLLER_KEY].attempted:
        return web.Response(text="OK\n")
    return web.Response(status=503, text="first poll of the API not done yet\n")


async def landing(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    snapshot = request.app[POLLER_KEY].last
    return web.Response(text=landing_page(state, snapshot), content_type="text/html")


def landing_page(state: ServerState, snapshot: Snapshot | None) -> str:
    """Version, workspaces, workflows, last poll result, links. No secrets."""
    e = html.escape
    rows = []
    by_name = {ws.name: ws for ws in (snapshot.workspaces if snapshot else ())}
    for ws_config in state.config.workspaces:
        ws = by_name.get(ws_config.name)
        if ws is None:
            status, detail, workflows = "not polled yet", "", "-"
        else:
            status = "up" if ws.up else "down"
            detail = ws.error or ""
            up = sum(1 for wf in ws.workflows if wf.up)
            workflows = f"{up} of {len(ws.workflows)} refreshed"
            if ws.polled_at:
                detail = (
                    f"last poll {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(ws.polled_at))}"
                    f", took {ws.collect_duration or 0:.2f}s. {detail}"
                )
        rows.append(
            f"<tr><td>{e(ws_config.name)}</td><td>{e(ws_config.api_url)}</td>"
            f"<td>{e(status)}</td><td>{e(workflows)}</td><td>{e(detail)}</td></tr>"
        )
    uptime = time.time() - state.started_at
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OnePin exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;text-align:left;
border-bottom:1px solid #ddd}}</style></head>
<body><h1>OnePin exporter</h1>
<p>Version {e(__version__)}, up for {uptime:.0f}s.</p>
<p><a href="/metrics">Metrics</a> · <a href="/-/healthy">Health</a> ·
<a href="/-/ready">Ready</a></p>
<h2>Workspaces</h2>
<table><tr><th>Workspace</th><th>API</th><th>Status</th><th>Workflows</th><th>Last poll</th></tr>
{"".join(rows)}
</table></body></html>
"""


def create_app(
    config: Config,
    poller: Poller,
    extra: Iterable[Collector] = (),
    middlewares: Iterable[Middleware] = (),
) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    app = web.Application(middlewares=list(middlewares))
    app[POLLER_KEY] = poller
    app[STATE_KEY] = ServerState(config, time.time(), registry, tuple(extra))
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/", landing)
    return app
