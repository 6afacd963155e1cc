"""The status page at `/` rendered from hand-made snapshots (no server, no browser): what an
operator reads there, escaped, redacted, failing workflows first, paged."""

from __future__ import annotations

import html
import re
import time
from collections import defaultdict

import pytest
import yaml

from exporter.apistats import RUN_DURATION_BUCKETS, ApiStats, Histogram
from exporter.models import Run
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkflowTotals, WorkspaceSnapshot
from exporter.status_page import StatusInput, render_status
from exporter.status_view import (
    PAGE_SIZE,
    calls_by_code,
    moment,
    next_try,
    page_number,
    span,
)
from tests.helpers import make_config

TOKEN = "op_live_Sec7etSec7etSec7etSec7et0123"
NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
CONFIG = make_config(token=TOKEN, collection="{min_interval: 10s}")
ROW = re.compile(r"<tr[^>]*>.*?</tr>", re.S)


def totals() -> WorkflowTotals:
    return WorkflowTotals({}, Histogram(RUN_DURATION_BUCKETS), 0.0, 0.0)


def workflow(
    wid: str, name: str = "", *, up: bool = True, error: str | None = None, **fields: object
) -> WorkflowSnapshot:
    return WorkflowSnapshot(
        wid, name or f"name-{wid}", up, up or error is not None, totals(), error=error,
        **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def workspace(
    *workflows: WorkflowSnapshot,
    up: bool = True,
    error: str | None = None,
    api: ApiStats | None = None,
    backlog: int = 0,
) -> WorkspaceSnapshot:
    return WorkspaceSnapshot(
        "prod", up, workflows, api or ApiStats(), 0.25, 10.0, error, NOW - 5, backlog
    )


def page(*workflows: WorkflowSnapshot, number: int = 1, **ws: object) -> str:
    snapshot = Snapshot((workspace(*workflows, **ws),), NOW - 5)  # type: ignore[arg-type]
    return render_status(StatusInput(CONFIG, snapshot, NOW, NOW - 3600, page=number))


def rows(text: str) -> list[str]:
    """The workflow rows, in page order."""
    return [row for row in ROW.findall(text) if 'class="id"' in row]


def run(number: int, status: str, **fields: object) -> Run:
    return Run(f"r-{number}", number, status, NOW - 100, **fields)  # type: ignore[arg-type]


# --- escaping and redaction: API text never reaches the page raw ------------------------------

HOSTILE = [
    ("<script>alert(1)</script>", "<script>", "&lt;script&gt;"),
    ('x" onmouseover="alert(1)', '" onmouseover=', "&quot; onmouseover=&quot;"),
    ("red\x1b[31mtext", "\x1b", "\\x1b[31m"),
    ("right-to-left \u202eevil", "\u202e", "\\u202e"),
    ("line\r\nbreak", "\r\n", "line\\r\\nbreak"),
]


@pytest.mark.parametrize(("text", "raw", "shown"), HOSTILE)
@pytest.mark.parametrize("where", ["name", "id", "error", "run status", "workspace error"])
def test_api_text_is_escaped_wherever_it_is_shown(
    text: str, raw: str, shown: str, where: str
) -> None:
    if where == "workspace error":
        body = page(workflow("wf-1"), up=False, error=text)
    elif where == "run status":
        body = page(workflow("wf-1", last_run=run(3, text), active_runs=(run(4, text),)))
    else:
        fields = {"name": text} if where == "name" else {"wid": text} if where == "id" else {}
        fields.setdefault("wid", "wf-1")
        body = page(workflow(up=where != "error", error=text if where == "error" else None,
                             **fields))  # type: ignore[arg-type]  # fmt: skip
    assert raw not in body
    assert shown in body


@pytest.mark.parametrize(
    "secret", [TOKEN, TOKEN.removeprefix("op_live_"), "Bearer abc.def-ghi", "op_test_OtherKey99"]
)
@pytest.mark.parametrize("where", ["workflow error", "workspace error", "name", "run status"])
def test_a_token_in_api_text_is_redacted_on_the_page(secret: str, where: str) -> None:
    text = f"denied for {secret} (try again)"
    if where == "workflow error":
        body = page(workflow("wf-1", up=False, error=text))
    elif where == "workspace error":
        body = page(up=False, error=text)
    elif where == "name":
        body = page(workflow("wf-1", text))
    else:
        body = page(workflow("wf-1", last_run=run(3, text)))
    assert secret.split()[-1] not in body
    assert "&lt;redacted&gt;" in body
    assert TOKEN.removeprefix("op_live_") not in body  # nor in the config section


def test_the_config_section_is_the_redacted_summary_and_the_token_is_nowhere() -> None:
    body = page(workflow("wf-1"))
    config = body[body.index('id="config"') :]
    assert "workspace prod: api_url=https://api.onepin.test" in html.unescape(config)
    assert "credentials=" in config
    assert TOKEN not in body and TOKEN.removeprefix("op_live_") not in body


# --- failing first ----------------------------------------------------------------------------

ORDER_CASES = [
    # (workflows as (id, up, latest run status), expected order of ids)
    ([("a", True, "completed"), ("b", False, None), ("c", True, "failed")], ["b", "c", "a"]),
    ([("z", True, "failed"), ("y", True, "completed"), ("x", False, "completed")], ["x", "z", "y"]),
    ([("m", True, "running"), ("k", True, None), ("l", True, "cancelled")], ["k", "l", "m"]),
]


@pytest.mark.parametrize(("cases", "expected"), ORDER_CASES)
def test_failing_workflows_come_first(
    cases: list[tuple[str, bool, str | None]], expected: list[str]
) -> None:
    flows = [
        workflow(wid, wid, up=up, error=None if up else "HTTP 500 oops",
                 last_run=run(1, status) if status else None)
        for wid, up, status in cases
    ]  # fmt: skip
    shown = [re.search(r'class="id">([^<]*)<', row).group(1) for row in rows(page(*flows))]  # type: ignore[union-attr]
    assert shown == expected
    failing = [wid for wid, up, status in cases if not up or status == "failed"]
    body = page(*flows)
    assert f"<strong>{len(failing)} need" in body


def test_a_stale_workflow_shows_its_own_error_and_the_workspace_error_once() -> None:
    down = "HTTP 401 key rejected; check the token (inline); next try in 30s"
    body = page(
        workflow("wf-1", error=down, up=False),
        workflow("wf-2", error="HTTP 500 oops", up=False),
        up=False,
        error=down,
    )
    assert body.count("HTTP 401 key rejected") == 1
    assert "workspace down (see its error above)" in body
    assert "HTTP 500 oops" in rows(body)[1] or "HTTP 500 oops" in rows(body)[0]
    assert "next try in 30s" not in body  # stale once read: the Next try column says when


# --- paging -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "asked", "shown", "first", "pages"),
    [
        (250, 1, 100, "w0000", 3),
        (250, 3, 50, "w0200", 3),
        (250, 99, 50, "w0200", 3),  # past the end: the last page
        (250, 0, 100, "w0000", 3),
        (40, 1, 40, "w0000", 1),
    ],
)
def test_workflows_are_paged(count: int, asked: int, shown: int, first: str, pages: int) -> None:
    body = page(*(workflow(f"w{i:04}", f"w{i:04}") for i in range(count)), number=asked)
    found = rows(body)
    assert len(found) == shown <= PAGE_SIZE
    assert f'class="id">{first}<' in found[0]
    if pages > 1:
        assert f"of {pages}</span>" in body and 'href="?page=' in body
    else:
        assert "?page=" not in body


@pytest.mark.parametrize(
    ("text", "number"),
    [(None, 1), ("2", 2), ("0", 1), ("-1", 1), ("abc", 1), ("9" * 40, 1_000_000)],
)
def test_the_page_parameter(text: str | None, number: int) -> None:
    assert page_number(text) == number


def test_many_healthy_workflows_are_collapsed_and_a_few_are_open() -> None:
    many = page(*(workflow(f"w{i}") for i in range(80)))
    few = page(*(workflow(f"w{i}") for i in range(5)))
    assert "<details><summary>80 healthy" in many
    assert "<details open><summary>5 healthy" in few


def test_five_thousand_workflows_make_a_small_page() -> None:
    """The size the issue cares about: 5,000 workflows, 500 of them failing, all with a run."""
    flows = [
        workflow(f"wf-{i:05}", f"workflow-{i}", up=i % 10 != 0,
                 error=None if i % 10 else f"HTTP 500 run status of wf-{i} failed",
                 last_run=run(i, "running", total_steps=10, finished_steps=i % 10),
                 active_runs=(run(i, "running", total_steps=10, finished_steps=i % 10),),
                 last_success=NOW - i)
        for i in range(5000)
    ]  # fmt: skip
    snapshot = Snapshot((workspace(*flows),), NOW)
    started = time.perf_counter()
    body = render_status(StatusInput(CONFIG, snapshot, NOW, NOW - 60))
    took = time.perf_counter() - started
    size = len(body.encode())
    print(f"status page at 5,000 workflows: {size} bytes, rendered in {took * 1000:.0f} ms")
    assert size < 150_000
    assert len(rows(body)) == PAGE_SIZE and all('class="failing"' in r for r in rows(body))
    assert "<strong>500 need attention</strong>" in body and "of 50</span>" in body


# --- the workspace row: times with their age, calls, next try ---------------------------------


def test_the_workspace_row_tells_when_and_how_the_last_poll_went() -> None:
    calls = {("list_workflows", "200"): 3, ("list_runs", "200"): 4, ("get_run_status", "500"): 2,
             ("list_runs", "429"): 0}  # fmt: skip
    api = ApiStats(defaultdict(int, calls))
    body = page(workflow("wf-1"), api=api)
    row = next(r for r in ROW.findall(body) if 'class="workspace"' in r)
    assert "2027-01-15 07:59:55 UTC" in row and "(5s ago)" in row
    assert "0.25s" in row and "200: 7, 500: 2" in row and "429" not in row
    assert "1 of 1 refreshed" in row
    assert "2027-01-15 08:00:05 UTC" in row and "(in 5s)" in row  # min_interval 10s after it


def test_the_workspace_row_tells_how_many_workflows_wait_for_details_in_a_cold_start() -> None:
    row = next(r for r in ROW.findall(page(workflow("wf-1"), backlog=1)) if "workspace" in r)
    assert "1 of 1 refreshed, 1 waiting for details" in row
    row = next(r for r in ROW.findall(page(workflow("wf-1"))) if "workspace" in r)
    assert "waiting" not in row


def test_a_workspace_due_for_a_poll_says_the_next_scrape_polls_it() -> None:
    ws = WorkspaceSnapshot("prod", True, (), ApiStats(), 0.1, 10.0, None, NOW - 60)
    body = render_status(StatusInput(CONFIG, Snapshot((ws,), NOW - 60), NOW, NOW - 3600))
    assert "on the next scrape" in body


@pytest.mark.parametrize(
    ("error", "polled_ago", "expected"),
    [
        (None, 5, NOW + 5),  # min_interval 10s after the poll
        ("HTTP 401; check the token (inline); next try in 30s", 5, NOW + 25),
        ("HTTP 401; check the token (inline); next try in 300s", 100, NOW + 200),
        ("HTTP 500 next try in the morning", 5, NOW + 5),
    ],
)
def test_next_try(error: str | None, polled_ago: float, expected: float) -> None:
    ws = WorkspaceSnapshot(
        "prod", error is None, (), ApiStats(), error=error, polled_at=NOW - polled_ago
    )
    assert next_try(ws, 10.0) == expected


def test_a_backoff_shows_when_the_next_try_is_not_how_long_it_was() -> None:
    body = page(up=False, error="HTTP 401 unauthorized; check the token (inline); next try in 60s")
    assert "next try in 60s" not in body
    assert "2027-01-15 08:00:55 UTC" in body and "(in 55s)" in body


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (42.4, "42s"), (60, "1m"), (302, "5m 2s"), (3600, "1h"), (11_220, "3h 7m"),
     (187_200, "2d 4h"), (86_401, "1d")],
)  # fmt: skip
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text


@pytest.mark.parametrize(
    ("at", "past", "relative"),
    [(NOW - 90, True, "1m 30s ago"), (NOW + 30, False, "in 30s"),
     (NOW + 30, True, "the API's clock is 30s ahead")],
)  # fmt: skip
def test_times_carry_their_age_at_render_time(at: float, past: bool, relative: str) -> None:
    shown = moment(at, NOW, past)
    assert shown is not None and shown.relative == relative


def test_calls_by_code_leave_out_codes_never_seen() -> None:
    api = ApiStats(defaultdict(int, {("a", "503"): 1, ("b", "200"): 5, ("a", "error"): 2,
                                     ("b", "429"): 0}))  # fmt: skip
    assert calls_by_code(api) == [("200", 5), ("503", 1), ("error", 2)]


# --- workflows: latest run, active runs with progress, last success ---------------------------


def test_active_runs_have_a_progress_bar_of_their_steps() -> None:
    active = (run(7, "running", total_steps=12, finished_steps=5), run(8, "pending"),
              run(6, "running", total_steps=4, finished_steps=9), run(5, "running"))  # fmt: skip
    body = page(workflow("wf-1", last_run=run(8, "pending"), active_runs=active,
                         last_success=NOW - 7200))  # fmt: skip
    row = rows(body)[0]
    assert '<progress value="5" max="12">5/12</progress> 5/12 steps' in row
    assert '<progress value="4" max="4">' in row  # more finished than total: a full bar
    assert "#8 pending" in row and "and 1 more" in row  # three shown, newest first
    assert "(2h ago)" in row


def test_the_scrape_config_is_valid_yaml_for_this_exporter() -> None:
    snapshot = Snapshot((workspace(workflow("wf-1")),), NOW)
    body = render_status(
        StatusInput(
            CONFIG, snapshot, NOW, NOW, "/m", target="exporter.example:9879", scheme="https"
        )
    )
    pre = re.search(r'<pre id="scrape-config">(.*?)</pre>', body, re.S)
    assert pre is not None
    job = yaml.safe_load(html.unescape(pre.group(1)))["scrape_configs"][0]
    assert job["metrics_path"] == "/m" and job["scheme"] == "https"
    assert job["static_configs"] == [{"targets": ["exporter.example:9879"]}]
    assert "onepin" in job["job_name"]  # what the OnePinExporterDown alert selects
