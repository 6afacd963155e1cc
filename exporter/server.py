"""HTTP endpoints: /metrics, the landing page and the health checks."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.config import Config
from exporter.deadline import scrape_deadline
from exporter.gzipcache import Piece, gzip_stream, plain_stream
from exporter.metrics import PAUSE_REASON
from exporter.models import Run
from exporter.negotiation import wants_gzip, wants_openmetrics
from exporter.poller import Poller
from exporter.redact import MESSAGE_LIMIT, escape
from exporter.rendering import MetricsRenderer, body
from exporter.snapshot import Snapshot

TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"
# The classic text format, which every Prometheus version parses.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Paused runs listed on the landing page (a page, not a report: the metrics have them all).
PAUSED_RUNS_SHOWN = 20
POLLER_KEY = web.AppKey("poller", Poller)


@dataclass(slots=True)
class ServerState:
    config: Config
    started_at: float
    # The process's own metrics, and any extra collectors (shard gauges).
    registry: CollectorRegistry
    renderer: MetricsRenderer
    telemetry_path: str = "/metrics"


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
    deadline = scrape_deadline(
        request.headers.get(TIMEOUT_HEADER), state.config.collection.max_duration
    )
    snapshot = await poller.snapshot(deadline.poll, deadline.wait)
    pieces, kind = render(snapshot, state, request.headers.get("Accept"))
    response = start_response(request, kind)
    if response.headers.get("Content-Encoding") == "gzip":
        # Most of the body is kept compressed already (see exporter.gzipcache).
        chunks = gzip_stream(pieces)
    else:
        chunks = plain_stream(pieces)
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
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
    snapshot = request.app[POLLER_KEY].last
    return web.Response(text=landing_page(state, snapshot), content_type="text/html")


def paused_runs(snapshot: Snapshot | None) -> list[tuple[str, str, Run]]:
    """Active runs with a pause reason: (workspace, workflow name, run), longest paused first."""
    found = [
        (ws.name, wf.name, run)
        for ws in (snapshot.workspaces if snapshot else ())
        for wf in ws.workflows
        if wf.has_data
        for run in wf.active_runs
        if run.pause_reason is not None
    ]
    found.sort(key=lambda item: -(item[2].paused_ms or 0))
    return found


def _paused_section(snapshot: Snapshot | None) -> str:
    """The paused runs, with the automatic pause's explanation (`pause_error`): API text, so
    escaped and bounded, and never a metric label."""
    runs = paused_runs(snapshot)
    if not runs:
        return ""
    e = html.escape
    rows = []
    for ws, workflow, run in runs[:PAUSED_RUNS_SHOWN]:
        reason, why = _bounded(run.pause_reason or ""), _bounded(run.pause_error or "")
        paused = f"{run.paused_ms / 1000:.0f}s" if run.paused_ms is not None else ""
        rows.append(
            f"<tr><td>{e(ws)}</td><td>{e(workflow)}</td><td>{run.run_number}</td>"
            f"<td>{e(reason)}</td><td>{paused}</td>"
            f"<td>{e(why)}</td></tr>"
        )
    more = len(runs) - PAUSED_RUNS_SHOWN
    tail = f"<p>and {more} more (see {PAUSE_REASON.name}).</p>" if more > 0 else ""
    return (
        "<h2>Paused runs</h2>\n<table><tr><th>Workspace</th><th>Workflow</th><th>Run</th>"
        "<th>Reason</th><th>Paused for</th><th>Explanation</th></tr>\n"
        + "".join(rows)
        + "\n</table>"
        + tail
    )


def _bounded(text: str) -> str:
    text = escape(text)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


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
<p><a href="{e(state.telemetry_path)}">Metrics</a> · <a href="/-/healthy">Health</a> ·
<a href="/-/ready">Ready</a></p>
<h2>Workspaces</h2>
<table><tr><th>Workspace</th><th>API</th><th>Status</th><th>Workflows</th><th>Last poll</th></tr>
{"".join(rows)}
</table>
{_paused_section(snapshot)}</body></html>
"""


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
