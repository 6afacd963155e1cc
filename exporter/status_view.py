"""What the status page shows, decided from the latest snapshot: pure functions, no HTML.

Times are Unix times; `now` is the wall clock when the page is rendered, so every age on the
page ("3s ago", "in 25s") is true when it is read, not when the poll ran.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from exporter.apistats import ApiStats
from exporter.models import Run
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot

# Workflows per page: 5,000 workflows would make a page of a few megabytes.
PAGE_SIZE = 100
# A page with at most this many healthy workflows shows them open; more are collapsed.
OPEN_LIMIT = 50
# Active runs shown per workflow (the metrics have them all).
ACTIVE_RUNS_SHOWN = 3
# The poller ends a backoff error with "next try in 30s", true only when it was written: the
# page shows the next try as a time instead.
_NEXT_TRY = re.compile(r";?\s*next try in (\d+)s")


@dataclass(frozen=True, slots=True)
class Moment:
    """A time as the page shows it: absolute UTC, and how long ago (or from now) it is."""

    iso: str  # for <time datetime=...>
    utc: str
    relative: str


def moment(at: float | None, now: float, past: bool = True) -> Moment | None:
    """`at` as the page shows it at `now`. A `past` event (a run's end, by the API's clock)
    that lies ahead of `now` says so, rather than "in 2m": the two clocks disagree."""
    if at is None:
        return None
    stamp = time.gmtime(at)
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp)
    utc = time.strftime("%Y-%m-%d %H:%M:%S UTC", stamp)
    delta = now - at
    if delta >= 0:
        relative = f"{span(delta)} ago"
    elif past:
        relative = f"the API's clock is {span(-delta)} ahead"
    else:
        relative = f"in {span(-delta)}"
    return Moment(iso, utc, relative)


def span(seconds: float) -> str:
    """A duration in its two largest units: 42s, 5m 2s, 3h 7m, 2d 4h."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        count, total = divmod(total, size)
        if count or parts:
            parts.append(f"{count}{name}")
        if len(parts) == 2:
            break
    return " ".join(part for part in parts if not part.startswith("0"))


def next_try(ws: WorkspaceSnapshot, min_interval: float) -> float | None:
    """When the workspace is polled next, at the earliest: the scrape after `min_interval`
    from the last poll, or after the backoff the poller set for a rejected key."""
    if ws.polled_at is None:
        return None
    wait = min_interval
    found = _NEXT_TRY.search(ws.error or "")
    if found is not None:
        wait = max(wait, float(found.group(1)))
    return ws.polled_at + wait


def without_next_try(error: str) -> str:
    """The error without its "next try in Ns", which is stale once read (see `next_try`)."""
    return _NEXT_TRY.sub("", error)


def calls_by_code(api: ApiStats) -> list[tuple[str, int]]:
    """Requests sent to the API, summed over endpoints, by status code ("error" and the like
    last), e.g. [("200", 61), ("401", 2)]; codes never seen are left out."""
    counts: Counter[str] = Counter()
    for (_endpoint, code), count in api.requests.items():
        counts[code] += count
    found = [(code, count) for code, count in counts.items() if count]
    return sorted(found, key=lambda item: (not item[0].isdigit(), item[0]))


def attention(wf: WorkflowSnapshot) -> int:
    """0: not refreshed (stale or no data); 1: its latest run failed; 2: fine."""
    if not wf.up:
        return 0
    if wf.last_run is not None and wf.last_run.status == "failed":
        return 1
    return 2


class Entry(NamedTuple):
    """A workflow row: its `attention` rank, the workspace it belongs to, and the workflow.

    A tuple, not a frozen dataclass: 5,000 of them are made per page view, and a tuple is made
    three times as fast."""

    rank: int
    workspace: WorkspaceSnapshot
    workflow: WorkflowSnapshot

    @property
    def failing(self) -> bool:
        return self.rank < 2


def ordered(snapshot: Snapshot | None) -> list[Entry]:
    """Every workflow, the failing ones first (stale, then latest run failed), then by
    workspace, name and id."""
    workspaces = snapshot.workspaces if snapshot else ()
    entries = [Entry(attention(wf), ws, wf) for ws in workspaces for wf in ws.workflows]
    entries.sort(key=lambda e: (e.rank, e.workspace.name, e.workflow.name, e.workflow.id))
    return entries


@dataclass(frozen=True, slots=True)
class Page:
    """One page of workflow rows: its number (1-based), how many pages, and the rows."""

    number: int
    pages: int
    first: int  # index of the first row in the whole list
    total: int
    entries: list[Entry]

    @property
    def failing(self) -> list[Entry]:
        return [e for e in self.entries if e.failing]

    @property
    def healthy(self) -> list[Entry]:
        return [e for e in self.entries if not e.failing]


def page_of(entries: list[Entry], number: int, size: int = PAGE_SIZE) -> Page:
    """Page `number` of `entries`, moved into range (page 0 or 99 of 3 shows page 1 or 3)."""
    pages = max(1, -(-len(entries) // size))
    number = min(max(1, number), pages)
    first = (number - 1) * size
    return Page(number, pages, first, len(entries), entries[first : first + size])


def page_number(text: str | None) -> int:
    """The ?page= parameter; anything but a positive number is page 1."""
    if text is None or not text.isdigit():
        return 1
    return max(1, min(int(text), 1_000_000))


def shown_active(wf: WorkflowSnapshot) -> tuple[tuple[Run, ...], int]:
    """The active runs shown for a workflow (newest first), and how many more there are."""
    runs = tuple(sorted(wf.active_runs, key=lambda r: -r.run_number))
    return runs[:ACTIVE_RUNS_SHOWN], max(0, len(runs) - ACTIVE_RUNS_SHOWN)


def progress(run: Run) -> tuple[int, int] | None:
    """(finished, total) steps of a run, when the API said both (total above 0)."""
    if run.total_steps is None or run.total_steps <= 0 or run.finished_steps is None:
        return None
    return min(max(0, run.finished_steps), run.total_steps), run.total_steps


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
