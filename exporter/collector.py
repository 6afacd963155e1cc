"""Turn a snapshot into the exposition text. Every metric name lives in this module.

Rules (design §4.4): base units; a value the API did not send is absent, never 0; state sets emit
every known value (run statuses, pause reasons) as 0/1 and pass unknown values through; run-level
series exist only for active runs; run ids and user names never label series that outlive a run;
free API text (errors, `pause_error`) is never a label.

Speed: a big installation has hundreds of thousands of series, most of them unchanged from one
scrape to the next (idle workflows). The poller hands over the same `WorkflowSnapshot` object while
a workflow is unchanged (and the same `WorkflowTotals` while none of its runs finished). Settled
workflows (no active run) are kept in groups, each family's lines of a group compressed once, as a
segment that a gzipped response sends as it is (`exporter.gzipcache`); a group is made again when
one of its workflows changes. A workflow with an active run has its lines cached once its
snapshot object outlived a poll; one that changed since the last poll (its run progressed) keeps
only its up/info and totals lines, and its other lines are made family by family as the chunks
are made, then dropped. The sample lines are the same in the Prometheus text format and in
OpenMetrics; only the family headers and the `# EOF` trailer differ.
"""

from __future__ import annotations

import platform
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from exporter import __version__
from exporter.gzipcache import CHUNK_BYTES, Piece, Segment, plain_stream
from exporter.models import KNOWN_PAUSE_REASONS, KNOWN_STATUSES, TERMINAL_STATUSES, Run
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot
from exporter.stats import Histogram

MIB = 1048576.0
INF = float("inf")


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    type: str  # gauge, counter or histogram
    help: str

    def header(self, openmetrics: bool) -> str:
        # In the text format a counter's family is named with its _total suffix.
        name = self.name + "_total" if self.type == "counter" and not openmetrics else self.name
        return f"# HELP {name} {self.help}\n# TYPE {name} {self.type}\n"

    @property
    def sample(self) -> str:
        return self.name + "_total" if self.type == "counter" else self.name


@dataclass(frozen=True, slots=True)
class RunGauge:
    """A per-run value exported for the latest run (`last_run`) and for each active run
    (`run_level`)."""

    suffix: str
    help: str
    value: Callable[[Run], float | None]
    run_level: bool = True
    last_run: bool = True


def _usage(key: str, scale: float = 1.0) -> Callable[[Run], float | None]:
    def read(run: Run) -> float | None:
        value = run.usage_value(key)
        return None if value is None else value * scale

    return read


def _int(value: int | None) -> float | None:
    return None if value is None else float(value)


def _ms(value: int | None) -> float | None:
    return None if value is None else value / 1000.0


RUN_GAUGES: tuple[RunGauge, ...] = (
    RunGauge("number", "Run number (per-workflow sequence).", lambda r: float(r.run_number), False),
    RunGauge("finished_steps", "Steps finished.", lambda r: _int(r.finished_steps)),
    RunGauge("total_steps", "Steps in the run.", lambda r: _int(r.total_steps)),
    RunGauge("total_nodes", "Nodes in the run's graph.", lambda r: _int(r.total_nodes)),
    RunGauge(
        "finished_nodes",
        "Nodes in a terminal state (a retried node counts once).",
        lambda r: _int(r.finished_nodes),
    ),
    RunGauge("token_cost", "Token cost, as the API reports it.", lambda r: r.token_cost),
    RunGauge("credits", "Credits used, as the API reports them.", lambda r: r.credits),
    RunGauge(
        "delivered_audio_seconds",
        "Audio delivered (delivered_audio_ms).",
        lambda r: _ms(r.delivered_audio_ms),
        run_level=False,
    ),
    RunGauge("cpu_seconds", "CPU seconds used (usage_summary.cpu_seconds).", _usage("cpu_seconds")),
    RunGauge("memory_bytes", "Memory used (usage_summary.memory_mb).", _usage("memory_mb", MIB)),
    RunGauge("api_calls", "API calls made (usage_summary.api_calls).", _usage("api_calls")),
    RunGauge("tokens_used", "Tokens used (usage_summary.tokens_used).", _usage("tokens_used")),
    RunGauge("errors", "Errors reported in usage_summary.errors.", _usage("errors")),
    RunGauge(
        "duration_seconds",
        "Running time (started to completed, or to the API's now).",
        lambda r: r.duration(),
    ),
    # Of active runs only: a finished run's pause is already left out of its duration, and one
    # more series per workflow would cost more than it tells.
    RunGauge(
        "paused_seconds",
        "Time spent paused (paused_ms).",
        lambda r: _ms(r.paused_ms),
        last_run=False,
    ),
    RunGauge("created_timestamp_seconds", "When the run was created.", lambda r: r.created_at),
    RunGauge("started_timestamp_seconds", "When the run started.", lambda r: r.started_at),
    RunGauge(
        "completed_timestamp_seconds",
        "When the run reached a terminal status.",
        lambda r: r.completed_at,
        False,
    ),
    RunGauge("updated_timestamp_seconds", "When the run was last updated.", lambda r: r.updated_at),
)

# --- the families, in exposition order -----------------------------------------------------------

BUILD_INFO = Family("onepin_exporter_build_info", "gauge", "Build information; always 1.")
UP = Family("onepin_up", "gauge", "1 if the last poll reached the API and authenticated.")
COLLECT_DURATION = Family(
    "onepin_exporter_collect_duration_seconds", "gauge", "Wall time of the last poll of the API."
)
POLL_DEADLINE = Family(
    "onepin_exporter_poll_deadline_seconds",
    "gauge",
    "Time the last poll was allowed (from the scrape timeout, capped by config).",
)
API_REQUESTS = Family(
    "onepin_api_requests",
    "counter",
    "Requests sent to the OnePin API, by endpoint and HTTP status (or 'error').",
)
API_LATENCY = Family(
    "onepin_api_request_duration_seconds", "histogram", "Latency of requests to the OnePin API."
)
HEALTH_FAMILIES = (BUILD_INFO, UP, COLLECT_DURATION, POLL_DEADLINE, API_REQUESTS, API_LATENCY)

WORKFLOW_UP = Family(
    "onepin_workflow_up", "gauge", "1 if this workflow's data is from the last poll."
)
WORKFLOW_INFO = Family("onepin_workflow_info", "gauge", "A workflow being monitored; always 1.")
WORKFLOW_RUNS = Family("onepin_workflow_runs", "gauge", "Runs per status, as the API counts them.")
PASS_RATIO = Family(
    "onepin_workflow_pass_ratio",
    "gauge",
    "completed / (completed + failed) runs (cancelled left out), the API's rule.",
)
AVERAGE_DURATION = Family(
    "onepin_workflow_average_run_duration_seconds",
    "gauge",
    "Mean duration of completed runs, as the API computes it.",
)
LAST_STATUS = Family(
    "onepin_workflow_last_run_status",
    "gauge",
    "Status of the latest run (highest run_number): 1 for its status, 0 for others.",
)
LAST_RUN = {
    g.suffix: Family(f"onepin_workflow_last_run_{g.suffix}", "gauge", f"Latest run: {g.help}")
    for g in RUN_GAUGES
    if g.last_run
}
LAST_SUCCESS = Family(
    "onepin_workflow_last_success_timestamp_seconds",
    "gauge",
    "When the newest completed run seen (List Runs, Get Run Status) completed.",
)
LAST_FAILURE = Family(
    "onepin_workflow_last_failure_timestamp_seconds",
    "gauge",
    "When the newest failed run seen (List Runs, Get Run Status) failed.",
)
FINISHED = Family(
    "onepin_workflow_runs_finished",
    "counter",
    "Runs seen reaching a terminal status by this exporter process.",
)
RUN_DURATION = Family(
    "onepin_workflow_run_duration_seconds",
    "histogram",
    "Duration of each run seen finishing by this exporter process.",
)
TOKEN_TOTAL = Family(
    "onepin_workflow_run_token_cost",
    "counter",
    "Token cost summed over runs seen finishing by this exporter process.",
)
CPU_TOTAL = Family(
    "onepin_workflow_run_cpu_seconds",
    "counter",
    "CPU seconds summed over runs seen finishing by this exporter process.",
)
AUDIO_TOTAL = Family(
    "onepin_workflow_run_delivered_audio_seconds",
    "counter",
    "Audio delivered (delivered_audio_ms) summed over runs seen finishing by this exporter "
    "process.",
)
RUN_STATUS = Family(
    "onepin_run_status", "gauge", "Status of an active run: 1 for its status, 0 for others."
)
PAUSE_REASON = Family(
    "onepin_run_pause_reason",
    "gauge",
    "Why an active run is paused (pause_reason): 1 for its reason, 0 for others.",
)
RUN = {
    g.suffix: Family(f"onepin_run_{g.suffix}", "gauge", f"Active run: {g.help}")
    for g in RUN_GAUGES
    if g.run_level
}
WORKFLOW_FAMILIES = (
    WORKFLOW_UP,
    WORKFLOW_INFO,
    WORKFLOW_RUNS,
    PASS_RATIO,
    AVERAGE_DURATION,
    LAST_STATUS,
    *LAST_RUN.values(),
    LAST_SUCCESS,
    LAST_FAILURE,
    FINISHED,
    RUN_DURATION,
    TOKEN_TOTAL,
    CPU_TOTAL,
    AUDIO_TOTAL,
    RUN_STATUS,
    PAUSE_REASON,
    *RUN.values(),
)


# --- lines ---------------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """A sample value as both exposition formats write it."""
    if value != value:
        return "NaN"
    if value == INF:  # a constant: float("inf") per call was half the cost of a sample line
        return "+Inf"
    if value == -INF:
        return "-Inf"
    return repr(float(value))


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(sample: str, labels: str, value: float) -> str:
    return f"{sample}{{{labels}}} {format_value(value)}\n"


def _state_set(sample: str, labels: str, status: str, extra: str = "") -> str:
    """Every known status as 0/1, plus an unknown status as its own value."""
    return _one_of(sample, labels, "status", KNOWN_STATUSES, status, extra)


def _one_of(
    sample: str, labels: str, label: str, known: tuple[str, ...], value: str, extra: str = ""
) -> str:
    """A state set: every `known` value of `label` as 0/1, plus an unknown `value` as its own."""
    lines = [
        f'{sample}{{{labels},{label}="{k}"{extra}}} {"1.0" if k == value else "0.0"}\n'
        for k in known
    ]
    if value not in known:
        lines.append(f'{sample}{{{labels},{label}="{escape(value)}"{extra}}} 1.0\n')
    return "".join(lines)


def _histogram(name: str, labels: str, hist: Histogram) -> str:
    sep = "," if labels else ""
    lines = [
        f'{name}_bucket{{{labels}{sep}le="{format_value(b)}"}} {format_value(n)}\n'
        for b, n in hist.cumulative()
    ]
    lines.append(f"{name}_count{{{labels}}} {format_value(hist.count)}\n")
    lines.append(f"{name}_sum{{{labels}}} {format_value(hist.sum)}\n")
    return "".join(lines)


class _Lines:
    """One workflow's snapshot, with the label strings that its lines share."""

    __slots__ = ("base", "last_run", "runs", "wf")

    def __init__(self, workspace: str, wf: WorkflowSnapshot, triggered_by: bool) -> None:
        self.wf = wf
        self.base = (
            f'workspace="{escape(workspace)}",workflow_id="{escape(wf.id)}",'
            f'workflow_name="{escape(wf.name)}"'
        )
        self.last_run = wf.last_run if wf.has_data else None
        # Each active run with its labels, and its triggered_by label (or "") for run_status.
        self.runs = tuple(
            (
                run,
                f'{self.base},run_id="{escape(run.id)}",run_number="{run.run_number}"',
                f',triggered_by="{escape(run.triggered_by or "")}"' if triggered_by else "",
            )
            for run in (wf.active_runs if wf.has_data else ())
        )


# The lines of one family for one workflow ("" for none): each family is made on its own, so
# that a workflow's lines need not all be in memory at once (see Renderer).
LineMaker = Callable[[_Lines], str]


def _up(x: _Lines) -> str:
    return f"{WORKFLOW_UP.name}{{{x.base}}} {'1.0' if x.wf.up else '0.0'}\n"


def _info(x: _Lines) -> str:
    return f"{WORKFLOW_INFO.name}{{{x.base}}} 1.0\n"


def _runs(x: _Lines) -> str:
    counts = (x.wf.status_counts if x.wf.has_data else None) or {}
    return "".join(
        _line(WORKFLOW_RUNS.name, f'{x.base},status="{escape(status)}"', float(count))
        for status, count in sorted(counts.items())
    )


def _workflow_value(family: Family, read: Callable[[WorkflowSnapshot], float | None]) -> LineMaker:
    def lines(x: _Lines) -> str:
        value = read(x.wf) if x.wf.has_data else None
        return "" if value is None else _line(family.sample, x.base, value)

    return lines


def _last_status(x: _Lines) -> str:
    run = x.last_run
    return "" if run is None else _state_set(LAST_STATUS.name, x.base, run.status)


def _last_run(gauge: RunGauge) -> LineMaker:
    sample = LAST_RUN[gauge.suffix].sample
    read = gauge.value

    def lines(x: _Lines) -> str:
        run = x.last_run
        value = None if run is None else read(run)
        return "" if value is None else f"{sample}{{{x.base}}} {format_value(value)}\n"

    return lines


def _finished(x: _Lines) -> str:
    finished = x.wf.totals.finished
    return "".join(
        _line(
            FINISHED.sample, f'{x.base},status="{escape(status)}"', float(finished.get(status, 0))
        )
        for status in sorted({*TERMINAL_STATUSES, *finished})
    )


def _run_duration(x: _Lines) -> str:
    return _histogram(RUN_DURATION.name, x.base, x.wf.totals.duration)


def _token_total(x: _Lines) -> str:
    return _line(TOKEN_TOTAL.sample, x.base, x.wf.totals.token_cost)


def _cpu_total(x: _Lines) -> str:
    return _line(CPU_TOTAL.sample, x.base, x.wf.totals.cpu_seconds)


def _audio_total(x: _Lines) -> str:
    return _line(AUDIO_TOTAL.sample, x.base, x.wf.totals.delivered_audio_seconds)


def _run_status(x: _Lines) -> str:
    return "".join(
        _state_set(RUN_STATUS.name, labels, run.status, user) for run, labels, user in x.runs
    )


def _pause_reason(x: _Lines) -> str:
    """Only for a run with a pause reason: one without (not paused, or an API that does not
    send it) has none to show."""
    return "".join(
        _one_of(PAUSE_REASON.name, labels, "reason", KNOWN_PAUSE_REASONS, run.pause_reason)
        for run, labels, _user in x.runs
        if run.pause_reason is not None
    )


def _run(gauge: RunGauge) -> LineMaker:
    sample = RUN[gauge.suffix].sample
    read = gauge.value

    def lines(x: _Lines) -> str:
        parts = []
        for run, labels, _user in x.runs:
            value = read(run)
            if value is not None:
                parts.append(f"{sample}{{{labels}}} {format_value(value)}\n")
        return "".join(parts)

    return lines


_MAKERS: dict[str, LineMaker] = {
    WORKFLOW_UP.name: _up,
    WORKFLOW_INFO.name: _info,
    WORKFLOW_RUNS.name: _runs,
    PASS_RATIO.name: _workflow_value(PASS_RATIO, lambda wf: wf.pass_ratio),
    AVERAGE_DURATION.name: _workflow_value(AVERAGE_DURATION, lambda wf: wf.average_duration),
    LAST_STATUS.name: _last_status,
    **{LAST_RUN[g.suffix].name: _last_run(g) for g in RUN_GAUGES if g.last_run},
    LAST_SUCCESS.name: _workflow_value(LAST_SUCCESS, lambda wf: wf.last_success),
    LAST_FAILURE.name: _workflow_value(LAST_FAILURE, lambda wf: wf.last_failure),
    FINISHED.name: _finished,
    RUN_DURATION.name: _run_duration,
    TOKEN_TOTAL.name: _token_total,
    CPU_TOTAL.name: _cpu_total,
    AUDIO_TOTAL.name: _audio_total,
    RUN_STATUS.name: _run_status,
    PAUSE_REASON.name: _pause_reason,
    **{RUN[g.suffix].name: _run(g) for g in RUN_GAUGES if g.run_level},
}
LINE_MAKERS = tuple(_MAKERS[family.name] for family in WORKFLOW_FAMILIES)
# Families whose lines depend on little of a workflow's snapshot, rendered once for as long as
# that little stays the same: the labels and `up`; the totals (the same object while no run
# finished).
_UP_INFO = tuple(WORKFLOW_FAMILIES.index(f) for f in (WORKFLOW_UP, WORKFLOW_INFO))
_TOTALS = tuple(
    WORKFLOW_FAMILIES.index(f)
    for f in (FINISHED, RUN_DURATION, TOKEN_TOTAL, CPU_TOTAL, AUDIO_TOTAL)
)


def _health_lines(workspaces: Iterable[WorkspaceSnapshot]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {f.name: [] for f in HEALTH_FAMILIES}
    out[BUILD_INFO.name].append(
        f'{BUILD_INFO.name}{{version="{escape(__version__)}",'
        f'python_version="{platform.python_version()}"}} 1.0\n'
    )
    for ws in workspaces:
        label = f'workspace="{escape(ws.name)}"'
        out[UP.name].append(f"{UP.name}{{{label}}} {1.0 if ws.up else 0.0}\n")
        if ws.collect_duration is not None:
            out[COLLECT_DURATION.name].append(
                f"{COLLECT_DURATION.name}{{{label}}} {format_value(ws.collect_duration)}\n"
            )
        if ws.deadline is not None:
            out[POLL_DEADLINE.name].append(
                f"{POLL_DEADLINE.name}{{{label}}} {format_value(ws.deadline)}\n"
            )
        for (endpoint, code), count in sorted(ws.api.requests.items()):
            out[API_REQUESTS.name].append(
                f'{API_REQUESTS.sample}{{{label},endpoint="{escape(endpoint)}",'
                f'code="{escape(code)}"}} {format_value(count)}\n'
            )
        for endpoint, hist in sorted(ws.api.latency.items()):
            labels = f'{label},endpoint="{escape(endpoint)}"'
            out[API_LATENCY.name].append(_histogram(API_LATENCY.name, labels, hist))
    return out


# Per workflow family: its lines, or None where they are made while the chunks are made.
Parts = tuple[bytes | None, ...]


@dataclass(slots=True)
class _Cached:
    wf: WorkflowSnapshot
    # The Renderer's poll count when wf was first handed over.
    poll: int
    parts: Parts
    # Whether parts has every family (else only the _UP_INFO and _TOTALS ones).
    complete: bool


# Settled workflows are kept in groups of about this many.
GROUP_SIZE = 64

# A workflow's workspace name and snapshot.
Member = tuple[str, WorkflowSnapshot]


def settled(wf: WorkflowSnapshot) -> bool:
    """Whether a workflow shows no active run: its lines then rarely change."""
    return not (wf.has_data and wf.active_runs)


def group_count(workflows: int) -> int:
    """About GROUP_SIZE workflows a group, a power of two: it changes only when the number of
    workflows crosses one, so that a workflow coming or going changes one group, not all."""
    count = 1
    while count * 2 * GROUP_SIZE <= workflows:
        count *= 2
    return count


def group_of(workspace: str, workflow_id: str, groups: int) -> int:
    """A settled workflow's group, the same for as long as the number of groups stays."""
    key = f"{workspace}\0{workflow_id}".encode("utf-8", "surrogatepass")
    return zlib.crc32(key) & (groups - 1)


@dataclass(frozen=True, slots=True)
class _Group:
    """Settled workflows of one group (in snapshot order), each family's lines as a segment."""

    members: tuple[Member, ...]
    segments: tuple[Segment | None, ...]  # per WORKFLOW_FAMILIES entry; None: no lines

    def holds(self, members: list[Member]) -> bool:
        """Whether members are this group's, with the same snapshot objects."""
        return len(members) == len(self.members) and all(
            ws == old_ws and wf is old_wf
            for (ws, wf), (old_ws, old_wf) in zip(members, self.members, strict=True)
        )


class Renderer:
    """Renders snapshots, keeping lines while the snapshot objects they come from are the same.

    Settled workflows (no active run) are rendered in groups: within a family, the groups' lines
    come first, group by group, then those of the workflows with an active run, each part in
    snapshot order (the order in a family does not matter to a scraper, but it is a function of
    the snapshot, so a scrape shows what a renderer that never saw an earlier one shows). A group
    keeps each family's lines only compressed (a `Segment`), for as long as it has the same
    members with the same snapshot objects; a change makes the group again.

    Of a workflow with an active run, only one whose snapshot object outlived a poll keeps all
    its lines: one that changed since the last poll (a run progressed) will likely change again,
    so its lines are made family by family as the chunks are made and then dropped, except those
    that depend on little (_UP_INFO, _TOTALS), which are kept for as long as that little stays
    the same.
    """

    def __init__(self, triggered_by_label: bool = False) -> None:
        self.triggered_by_label = triggered_by_label
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._groups: dict[int, _Group] = {}
        self._group_count = 0
        self._snapshot: Snapshot | None = None  # the last one rendered
        self._polls = 0

    def _update(self, lines: _Lines, old: _Cached | None) -> _Cached:
        """The cache entry of a workflow that has no complete one for its snapshot object."""
        wf = lines.wf
        if old is not None and old.wf is wf:
            if old.poll == self._polls:  # scraped again before the next poll
                return old
            # It outlived a poll: keep all its lines.
            parts = tuple(
                part if part is not None else make(lines).encode("utf-8", "replace")
                for part, make in zip(old.parts, LINE_MAKERS, strict=True)
            )
            return _Cached(wf, old.poll, parts, True)
        kept: list[bytes | None] = [None] * len(LINE_MAKERS)
        if old is not None and old.wf.name == wf.name:
            same_up, same_totals = old.wf.up == wf.up, old.wf.totals is wf.totals
            if same_up and same_totals and not old.complete:  # an active run progressed
                return _Cached(wf, self._polls, old.parts, False)
            if same_up:
                for i in _UP_INFO:
                    kept[i] = old.parts[i]
            if same_totals:
                for i in _TOTALS:
                    kept[i] = old.parts[i]
        for i in (*_UP_INFO, *_TOTALS):
            if kept[i] is None:
                kept[i] = LINE_MAKERS[i](lines).encode("utf-8", "replace")
        return _Cached(wf, self._polls, tuple(kept), False)

    def _group(self, members: list[Member]) -> _Group:
        lines = [_Lines(ws, wf, self.triggered_by_label) for ws, wf in members]
        segments = []
        for make in LINE_MAKERS:
            data = "".join([make(x) for x in lines]).encode("utf-8", "replace")
            segments.append(Segment.of(data) if data else None)
        return _Group(tuple(members), tuple(segments))

    def pieces(self, snapshot: Snapshot, openmetrics: bool = False) -> Iterator[Piece]:
        """The snapshot's families, without `# EOF` (more may follow): byte chunks of about
        CHUNK_BYTES, and kept segments (see `exporter.gzipcache`).

        Pieces are made as they are asked for, so that a big exposition is never in memory
        twice: the server writes (and compresses) each piece before the next one is made. The
        cache is brought up to date before the first piece; after that only the snapshot and
        the groups (which are immutable) are read, so interleaved scrapes do not disturb each
        other.
        """
        health = _health_lines(snapshot.workspaces)
        if snapshot is not self._snapshot:
            self._snapshot = snapshot
            self._polls += 1
        count = group_count(sum(len(ws.workflows) for ws in snapshot.workspaces))
        if count != self._group_count:
            self._group_count, self._groups = count, {}
        members: list[list[Member]] = [[] for _ in range(count)]
        cache: dict[tuple[str, str], _Cached] = {}
        # Each unsettled workflow's parts, with what makes the missing ones (None when none are).
        per_workflow: list[tuple[Parts, _Lines | None]] = []
        for ws in snapshot.workspaces:
            for wf in ws.workflows:
                if settled(wf):
                    members[group_of(ws.name, wf.id, count)].append((ws.name, wf))
                    continue
                key = (ws.name, wf.id)
                cached = self._cache.get(key)
                lines = None
                if cached is None or cached.wf is not wf or not cached.complete:
                    lines = _Lines(ws.name, wf, self.triggered_by_label)
                    cached = self._update(lines, cached)
                cache[key] = cached
                per_workflow.append((cached.parts, None if cached.complete else lines))
        self._cache = cache  # workflows gone from the snapshot (or settled) leave the cache
        groups: dict[int, _Group] = {}
        for i, group_members in enumerate(members):
            if group_members:
                old = self._groups.get(i)
                holds = old is not None and old.holds(group_members)
                groups[i] = old if old is not None and holds else self._group(group_members)
        self._groups = groups
        for family in HEALTH_FAMILIES:
            if health[family.name]:
                yield (family.header(openmetrics) + "".join(health[family.name])).encode(
                    "utf-8", "replace"
                )
        for i, family in enumerate(WORKFLOW_FAMILIES):
            make = LINE_MAKERS[i]
            # The header goes out before the family's first line, if it has any.
            batch: list[bytes] = [family.header(openmetrics).encode("utf-8", "replace")]
            for group in groups.values():
                segment = group.segments[i]
                if segment is not None:
                    if batch:
                        yield batch.pop()
                    yield segment
            size = 0
            for parts, lines in per_workflow:
                part = parts[i]
                if part is None:
                    assert lines is not None
                    part = make(lines).encode("utf-8", "replace")
                if not part:
                    continue
                batch.append(part)
                size += len(part)
                if size >= CHUNK_BYTES:  # bounded pieces: the exposition is never copied whole
                    yield b"".join(batch)
                    batch, size = [], 0
            if size:
                yield b"".join(batch)

    def chunks(self, snapshot: Snapshot, openmetrics: bool = False) -> Iterator[bytes]:
        """The pieces as plain bytes, in chunks of at most about CHUNK_BYTES."""
        return plain_stream(self.pieces(snapshot, openmetrics))

    def render(self, snapshot: Snapshot, openmetrics: bool = False) -> str:
        return b"".join(self.chunks(snapshot, openmetrics)).decode()
