"""The status page at `/`: server-rendered HTML, no JavaScript, fed by the latest snapshot.

Every text the API sent (workflow names and ids, errors, run statuses) passes the redactor of
this config's tokens and HTML escaping here, even though the client cleaned it where it entered:
a page is a sink, and a sink does not trust its source. What to show is decided in
exporter.status_view; this module only writes it down.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from exporter import __version__
from exporter.config import Config, describe
from exporter.metrics import PAUSE_REASON
from exporter.redact import MESSAGE_LIMIT, Redactor, escape, redactor_for
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot
from exporter.status_view import (
    OPEN_LIMIT,
    Entry,
    Page,
    calls_by_code,
    moment,
    next_try,
    ordered,
    page_of,
    paused_runs,
    progress,
    shown_active,
    span,
    without_next_try,
)

# Errors are longer than other API texts: the poller adds what to check to the API's message.
ERROR_LIMIT = 2 * MESSAGE_LIMIT
# Paused runs listed (a page, not a report: the metrics have them all).
PAUSED_RUNS_SHOWN = 20
e = html.escape

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:110em}
h1{margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:2px solid #eee}
table{border-collapse:collapse;width:100%}
td,th{padding:.3em .6em;text-align:left;border-bottom:1px solid #e4e4e4;vertical-align:top}
th{background:#f6f6f6}tr.failing{background:#fff4f4}
.up{color:#17692a;font-weight:600}.down{color:#b00020;font-weight:600}.none{color:#777}
.err{color:#b00020;max-width:40em;overflow-wrap:anywhere}.age{color:#666}
.id{font-family:monospace;font-size:.9em;color:#555}
progress{width:7em;vertical-align:middle}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}
summary{cursor:pointer;font-weight:600;margin:.6em 0}
nav.pager a,nav.pager span{margin-right:1em}
"""


@dataclass(frozen=True, slots=True)
class StatusInput:
    """What the page is made of: the config, the latest snapshot (None before the first
    poll), and what the server knows of itself and of the request."""

    config: Config
    snapshot: Snapshot | None
    now: float  # wall clock at render time
    started_at: float
    telemetry_path: str = "/metrics"
    page: int = 1
    target: str = "localhost:9879"  # host:port as the browser reached the exporter
    scheme: str = "http"


def render_status(page_in: StatusInput) -> str:
    """The whole page."""
    clean = _Cleaner(redactor_for(*(ws.token.reveal() for ws in page_in.config.workspaces)))
    entries = ordered(page_in.snapshot)
    page = page_of(entries, page_in.page)
    failing = sum(1 for entry in entries if entry.failing)
    return "\n".join(
        [
            _head(page_in, len(entries), failing),
            _workspaces(page_in, clean),
            _workflows(page, page_in.now, clean),
            _paused(page_in.snapshot, clean),
            _config(page_in.config, clean),
            _scrape_config(page_in),
            "</body></html>\n",
        ]
    )


class _Cleaner:
    """API text fit for the page: without the tokens, control characters escaped, bounded,
    HTML-escaped."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __call__(self, text: str, limit: int = MESSAGE_LIMIT) -> str:
        return e(self._redactor.clean(text, limit))


def _head(page_in: StatusInput, workflows: int, failing: int) -> str:
    now = moment(page_in.now, page_in.now)
    rendered = now.utc if now else ""
    uptime = span(page_in.now - page_in.started_at)
    metrics = e(page_in.telemetry_path)
    count = len(page_in.config.workspaces)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OnePin exporter</title><style>{STYLE}</style></head>
<body><h1>OnePin exporter</h1>
<p>Version {e(__version__)}, up for {uptime}. Page rendered {rendered}; reload for fresh data.</p>
<p><a href="{metrics}">Metrics</a> · <a href="/-/healthy">Health</a> ·
<a href="/-/ready">Ready</a> · <a href="#config">Configuration</a> ·
<a href="#scrape">Prometheus scrape config</a></p>
<p id="summary">{count} workspace{"s" * (count != 1)}, {workflows} workflows,
<strong>{failing} need{"s" * (failing == 1)} attention</strong>.</p>"""


def _when(at: float | None, now: float, empty: str = "never", past: bool = True) -> str:
    shown = moment(at, now, past)
    if shown is None:
        return f'<span class="none">{empty}</span>'
    return (
        f'<time datetime="{shown.iso}">{shown.utc}</time> '
        f'<span class="age">({shown.relative})</span>'
    )


def _workspaces(page_in: StatusInput, clean: _Cleaner) -> str:
    by_name = {ws.name: ws for ws in (page_in.snapshot.workspaces if page_in.snapshot else ())}
    rows = [
        _workspace_row(ws.name, ws.api_url, by_name.get(ws.name), page_in, clean)
        for ws in page_in.config.workspaces
    ]
    return (
        '<h2>Workspaces</h2>\n<table id="workspaces"><tr><th>Workspace</th><th>API</th>'
        "<th>Status</th><th>Workflows</th><th>Last poll</th><th>Took</th>"
        "<th>API calls by status code</th><th>Next try</th><th>Error</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>"
    )


def _workspace_row(
    name: str, api_url: str, ws: WorkspaceSnapshot | None, page_in: StatusInput, clean: _Cleaner
) -> str:
    head = f'<tr class="workspace"><td>{e(name)}</td><td>{e(api_url)}</td>'
    if ws is None:
        return head + '<td class="none">not polled yet</td>' + "<td></td>" * 6 + "</tr>"
    now = page_in.now
    refreshed = sum(1 for wf in ws.workflows if wf.up)
    calls = ", ".join(f"{e(code)}: {count}" for code, count in calls_by_code(ws.api))
    took = f"{ws.collect_duration:.2f}s" if ws.collect_duration is not None else ""
    due = next_try(ws, page_in.config.collection.min_interval)
    due_html = "on the next scrape"
    if due is not None and due > now:
        due_html = _when(due, now, past=False)
    error = clean(without_next_try(ws.error), ERROR_LIMIT) if ws.error else ""
    return (
        f'{head}<td class="{"up" if ws.up else "down"}">{"up" if ws.up else "down"}</td>'
        f"<td>{refreshed} of {len(ws.workflows)} refreshed"
        + (f", {ws.backlog} waiting for details" if ws.backlog and ws.up else "")
        + "</td>"
        f"<td>{_when(ws.polled_at, now)}</td><td>{took}</td><td>{calls}</td>"
        f'<td>{due_html}</td>\n<td class="err">{error}</td></tr>'
    )


def _workflows(page: Page, now: float, clean: _Cleaner) -> str:
    if not page.total:
        return '<h2>Workflows</h2>\n<p class="none">No workflows seen yet.</p>'
    last = page.first + len(page.entries)
    parts = [
        f'<h2 id="workflows">Workflows</h2>\n<p>Showing {page.first + 1}&ndash;{last} of '
        f"{page.total}, failing first.</p>",
        _pager(page),
    ]
    if page.failing:
        parts.append(_workflow_table("failing", page.failing, now, clean))
    healthy = page.healthy
    if healthy:
        summary = f"{len(healthy)} healthy workflow{'s' * (len(healthy) != 1)} on this page"
        opened = " open" if len(healthy) <= OPEN_LIMIT else ""
        table = _workflow_table("healthy", healthy, now, clean)
        parts.append(f"<details{opened}><summary>{summary}</summary>\n{table}\n</details>")
    parts.append(_pager(page))
    return "\n".join(part for part in parts if part)


def _workflow_table(kind: str, entries: Iterable[Entry], now: float, clean: _Cleaner) -> str:
    rows = "\n".join(_workflow_row(entry, now, clean) for entry in entries)
    return (
        f'<table class="workflows {kind}"><tr><th>Workspace</th><th>Workflow</th><th>ID</th>'
        "<th>Status</th><th>Why stale</th><th>Latest run</th><th>Active runs</th>"
        f"<th>Last success</th></tr>\n{rows}\n</table>"
    )


def _workflow_row(entry: Entry, now: float, clean: _Cleaner) -> str:
    wf, ws = entry.workflow, entry.workspace
    status = "up" if wf.up else ("stale" if wf.has_data else "no data")
    if wf.up or not wf.error:
        error = ""
    elif wf.error == ws.error:
        error = "workspace down (see its error above)"
    else:
        error = clean(without_next_try(wf.error), ERROR_LIMIT)
    latest = _latest(wf, clean)
    css = ' class="failing"' if entry.failing else ""
    return (
        f"<tr{css}><td>{e(ws.name)}</td><td>{clean(wf.name)}</td>"
        f'<td class="id">{clean(wf.id)}</td>'
        f'<td class="{"up" if wf.up else "down"}">{status}</td>'
        f'<td class="err">{error}</td><td>{latest}</td><td>{_active(wf, clean)}</td>'
        f"<td>{_when(wf.last_success, now)}</td></tr>"
    )


def _latest(wf: WorkflowSnapshot, clean: _Cleaner) -> str:
    run = wf.last_run
    if run is None:
        return '<span class="none">none</span>'
    css = "down" if run.status == "failed" else ""
    return f'#{run.run_number} <span class="{css}">{clean(run.status)}</span>' + "".join(
        f'<div class="failed-node">latest failure at node {clean(f.node.node_name)} '
        f'({clean(f.node.node_type)}): <span class="err">{clean(f.error or "no error text")}'
        "</span></div>"
        for f in wf.last_failure_nodes
    )


def _active(wf: WorkflowSnapshot, clean: _Cleaner) -> str:
    runs, more = shown_active(wf)
    items = []
    for run in runs:
        steps = progress(run)
        bar = ""
        if steps is not None:
            done, total = steps
            bar = (
                f' <progress value="{done}" max="{total}">{done}/{total}</progress>'
                f" {done}/{total} steps"
            )
        items.append(f'<div class="run">#{run.run_number} {clean(run.status)}{bar}</div>')
    if more:
        items.append(f'<div class="none">and {more} more</div>')
    return "".join(items) or '<span class="none">none</span>'


def _pager(page: Page) -> str:
    if page.pages == 1:
        return ""
    links = []
    if page.number > 1:
        links.append(f'<a href="?page={page.number - 1}#workflows">&lsaquo; previous</a>')
    links.append(f"<span>page {page.number} of {page.pages}</span>")
    if page.number < page.pages:
        links.append(f'<a href="?page={page.number + 1}#workflows">next &rsaquo;</a>')
    return '<nav class="pager">' + "".join(links) + "</nav>"


def _paused(snapshot: Snapshot | None, clean: _Cleaner) -> str:
    """The paused runs, with the automatic pause's explanation (`pause_error`)."""
    runs = paused_runs(snapshot)
    if not runs:
        return ""
    rows = []
    for ws, workflow, run in runs[:PAUSED_RUNS_SHOWN]:
        paused = f"{run.paused_ms / 1000:.0f}s" if run.paused_ms is not None else ""
        rows.append(
            f"<tr><td>{e(ws)}</td><td>{clean(workflow)}</td><td>{run.run_number}</td>"
            f"<td>{clean(run.pause_reason or '')}</td><td>{paused}</td>"
            f"<td>{clean(run.pause_error or '')}</td></tr>"
        )
    more = len(runs) - PAUSED_RUNS_SHOWN
    tail = f"<p>and {more} more (see {PAUSE_REASON.name}).</p>" if more > 0 else ""
    return (
        "<h2>Paused runs</h2>\n<table><tr><th>Workspace</th><th>Workflow</th><th>Run</th>"
        "<th>Reason</th><th>Paused for</th><th>Explanation</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>"
        + tail
    )


def _config(config: Config, clean: _Cleaner) -> str:
    """`--config.check`'s redacted summary (never a token)."""
    text = "\n".join(clean(line, limit=len(line) + 1) for line in describe(config).splitlines())
    return f'<h2 id="config">Configuration (redacted)</h2>\n<pre>{text}</pre>'


def _scrape_config(page_in: StatusInput) -> str:
    """A scrape job for prometheus.yml, for this exporter as the browser reached it."""
    lines = [
        "scrape_configs:",
        "  - job_name: onepin",
        "    scrape_interval: 30s",
        "    scrape_timeout: 25s",
        f"    metrics_path: {page_in.telemetry_path}",
    ]
    if page_in.scheme == "https":
        lines.append("    scheme: https")
    lines += ["    static_configs:", f'      - targets: ["{escape(page_in.target)}"]']
    text = e("\n".join(lines))
    return (
        '<h2 id="scrape">Prometheus scrape config</h2>\n'
        "<p>Paste into <code>prometheus.yml</code> (keep <code>onepin</code> in the job name: "
        "the OnePinExporterDown alert selects it).</p>\n"
        f'<pre id="scrape-config">{text}</pre>'
    )
