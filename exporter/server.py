"""HTTP endpoints: /metrics, the status page and the health checks."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from exporter.config import Config
from exporter.deadline import answer_time, scrape_deadline
from exporter.gzipbody import Piece, gzip_stream, plain_stream
from exporter.negotiation import wants_gzip, wants_openmetrics
from exporter.rendering import MetricsRenderer, body
from exporter.sharedpoll import Poller
from exporter.snapshot import Snapshot
from exporter.status_page import StatusInput, render_status
from exporter.status_view import page_number

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
# The classic text format, which every Prometheus version parses.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
POLLER_KEY = web.AppKey("poller", Poller)


@dataclass(slots=True)
class ServerState:
    config: Config
    started_at: float
    # The process's own metrics, and any extra collectors (shard gauges).
    registry: CollectorRegistry
    renderer: MetricsRenderer
    telemetry_path: str = "/metrics"
    # How long the last /metrics answers took past their polls (exporter/deadline.py's
    # answer_time; None before the first): the next poll leaves that time.
    last_answer: float | None = None


STATE_KEY = web.AppKey("state", ServerState)


def content_type(accept: str | None) -> str:
    """OpenMetrics when the scraper prefers it (Prometheus does), else the classic text format."""
    if wants_openmetrics(accept):
        return str(openmetrics_exposition.CONTENT_TYPE_LATEST)
    return TEXT_CONTENT_TYPE


def render(
    snapshot: Snapshot, state: ServerState, accept: str | None
) -> tuple[Iterator[Piece], str]:
    """The body's pieces in the format `accept` asks for, and its Content-Type."""
    kind = content_type(accept)
    return body(snapshot, state.registry, state.renderer, kind != TEXT_CONTENT_TYPE), kind


def start_response(request: web.Request, kind: str) -> web.StreamResponse:
    """A response of Content-Type `kind`, gzipped when the client prefers that."""
    response = web.StreamResponse(headers={"Content-Type": kind, "Vary": "Accept, Accept-Encoding"})
    if wants_gzip(request.headers.get("Accept-Encoding")):
        response.headers["Content-Encoding"] = "gzip"
    return response


async def metrics(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    poller = request.app[POLLER_KEY]
    started = time.monotonic()
    deadline = scrape_deadline(
        request.headers.get(TIMEOUT_HEADER), state.config.collection.max_duration, state.last_answer
    )
    snapshot = await poller.snapshot(deadline.poll, deadline.wait)
    # From the poll's end, or its deadline if the snapshot came later (put together past it).
    answering = min(time.monotonic(), started + deadline.poll)
    pieces, kind = render(snapshot, state, request.headers.get("Accept"))
    response = start_response(request, kind)
    if response.headers.get("Content-Encoding") == "gzip":
        # Most of the body is kept compressed already (see exporter.gzipbody).
        chunks = gzip_stream(pieces)
    else:
        chunks = plain_stream(pieces)
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    state.last_answer = answer_time(state.last_answer, time.monotonic() - answering)
    return response


async def metrics_head(request: web.Request) -> web.StreamResponse:
    """The headers a GET would get, without a body and without a poll (a probe's HEAD)."""
    response = start_response(request, content_type(request.headers.get("Accept")))
    await response.prepare(request)
    await response.write_eof()
    return response


async def healthy(_request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def ready(request: web.Request) -> web.Response:
    if request.app[POLLER_KEY].attempted:
        return web.Response(text="OK\n")
    return web.Response(status=503, text="first poll of the API not done yet\n")


async def landing(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    page = page_number(request.query.get("page"))
    text = landing_page(
        state, request.app[POLLER_KEY].last, page=page, target=request.host, scheme=request.scheme
    )
    # Its ages are computed when it is rendered: a cached copy would show them wrong.
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


def landing_page(
    state: ServerState,
    snapshot: Snapshot | None,
    *,
    page: int = 1,
    target: str = "localhost:9879",
    scheme: str = "http",
) -> str:
    """The status page (exporter.status_page) of this server's state and `snapshot`."""
    return render_status(
        StatusInput(
            config=state.config,
            snapshot=snapshot,
            now=time.time(),
            started_at=state.started_at,
            telemetry_path=state.telemetry_path,
            page=page,
            target=target,
            scheme=scheme,
        )
    )


def create_app(
    config: Config,
    poller: Poller,
    extra: Iterable[Collector] = (),
    middlewares: Iterable[Middleware] = (),
    telemetry_path: str = "/metrics",
    exporter_metrics: bool = True,
) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    if exporter_metrics:  # off with --web.disable-exporter-metrics: no process_*, python_*
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    for collector in extra:
        registry.register(collector)
    app = web.Application(middlewares=list(middlewares))
    app[POLLER_KEY] = poller
    renderer = MetricsRenderer.of(config.collection)
    app[STATE_KEY] = ServerState(config, time.time(), registry, renderer, telemetry_path)
    app.router.add_get(telemetry_path, metrics, allow_head=False)
    app.router.add_head(telemetry_path, metrics_head)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/", landing)
    return app
