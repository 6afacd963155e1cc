"""Render a snapshot as the exposition text, keeping the lines of workflows whose snapshot did not
change, and put the process's own metrics (prometheus_client's) in front.

Speed: a big installation has hundreds of thousands of series, most of them unchanged from one
scrape to the next (idle workflows). The poller gives every workflow snapshot a `version` that
changes whenever anything in it changes; lines are kept by (workspace, workflow id, version).
Version 0 means "not versioned" (a snapshot made by hand): its lines are made again every time.
Settled workflows (no active run) are kept in groups, each family's lines of a group compressed
once, as a segment that a gzipped response sends as it is (`exporter.gzipbody`); a group is made
again when one of its workflows changes. A workflow with an active run has its lines kept once its
version outlived a poll; one that changed since the last poll (its run progressed) keeps only its
up/info and totals lines while those stay the same, and its other lines are made family by family
as the chunks are made, then dropped. OpenMetrics adds exemplars to the lines of the totals (and
has its own family headers and `# EOF` trailer), so each format has its own cache (`_Store`): a
scraper uses one format, so only one fills, and the text format's bytes and cost stay what they
were without exemplars. A renderer serves one set of options (`RenderOptions`: which families,
the triggered_by label); other options need another renderer.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.registry import Collector

from exporter.config import CollectionSettings, MetricSelection
from exporter.family import Family, WorkflowLines
from exporter.gzipbody import CHUNK_BYTES, Piece, Segment, plain_stream
from exporter.metrics import (
    AUDIO_TOTAL,
    CPU_TOTAL,
    FINISHED,
    HEALTH_FAMILIES,
    RUN_DURATION,
    TOKEN_TOTAL,
    WORKFLOW_FAMILIES,
    WORKFLOW_INFO,
    WORKFLOW_UP,
    WorkflowFamily,
)
from exporter.snapshot import Snapshot, WorkflowSnapshot

T = TypeVar("T")
EOF = b"# EOF\n"


def selected(selection: MetricSelection, families: Sequence[Family[T]]) -> tuple[Family[T], ...]:
    """The families `collection.metrics` lets through, in their order."""
    return tuple(f for f in families if selection.selects(f.name))


@dataclass(frozen=True, slots=True)
class RenderOptions:
    triggered_by_label: bool = False
    families: MetricSelection = field(default_factory=MetricSelection)

    @classmethod
    def of(cls, collection: CollectionSettings) -> RenderOptions:
        return cls(collection.triggered_by_label, collection.metrics)


# Families whose lines depend on little of a workflow's snapshot, kept while an active run
# progresses for as long as that little stays the same: the labels and `up`; the totals.
UP_INFO = (WORKFLOW_UP, WORKFLOW_INFO)
TOTALS = (FINISHED, RUN_DURATION, TOKEN_TOTAL, CPU_TOTAL, AUDIO_TOTAL)
# Per workflow family: its lines, or None where they are made while the chunks are made.
Parts = tuple[bytes | None, ...]
# A workflow's workspace name and snapshot.
Member = tuple[str, WorkflowSnapshot]
# Settled workflows are kept in groups of about this many.
GROUP_SIZE = 64


def same_version(old: WorkflowSnapshot, new: WorkflowSnapshot) -> bool:
    """Whether a workflow's snapshot is the one rendered before (never for version 0)."""
    return new.version != 0 and old.version == new.version


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


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "replace")


@dataclass(slots=True)
class _Cached:
    wf: WorkflowSnapshot
    # The MetricsRenderer's poll count when this version was first handed over.
    poll: int
    parts: Parts
    # Whether parts has every family (else only the UP_INFO and TOTALS ones).
    complete: bool


@dataclass(frozen=True, slots=True)
class _Group:
    """Settled workflows of one group (in snapshot order), each family's lines as a segment."""

    members: tuple[Member, ...]
    segments: tuple[Segment | None, ...]  # per rendered family; None: no lines

    def holds(self, members: list[Member]) -> bool:
        """Whether members are this group's, with the same versions."""
        return len(members) == len(self.members) and all(
            ws == old_ws and wf.id == old.id and same_version(old, wf)
            for (ws, wf), (old_ws, old) in zip(members, self.members, strict=True)
        )


@dataclass(slots=True)
class _Store:
    """What a renderer keeps for one exposition format."""

    exemplars: bool
    cache: dict[tuple[str, str], _Cached] = field(default_factory=dict)
    groups: dict[int, _Group] = field(default_factory=dict)
    group_count: int = 0
    # The last snapshot rendered: a scrape of another one counts as a poll (only to decide
    # what to keep, never what to show).
    snapshot: Snapshot | None = None
    polls: int = 0


@dataclass(slots=True)
class _Plan:
    """What a scrape sends, once the cache is up to date: the groups, and each unsettled
    workflow's parts with what makes the missing ones (None when none are missing)."""

    groups: list[_Group] = field(default_factory=list)
    workflows: list[tuple[Parts, WorkflowLines | None]] = field(default_factory=list)


class MetricsRenderer:
    """Renders snapshots, keeping lines while the workflow versions they come from are the same.

    Settled workflows (no active run) are rendered in groups: within a family, the groups' lines
    come first, group by group, then those of the workflows with an active run, each part in
    snapshot order (the order in a family does not matter to a scraper, but it is a function of
    the snapshot, so a scrape shows what a renderer that never saw an earlier one shows). A group
    keeps each family's lines only compressed (a `Segment`), for as long as it has the same
    members with the same versions; a change makes the group again.
    """

    def __init__(self, triggered_by_label: bool = False, families: MetricSelection | None = None):
        self.options = RenderOptions(triggered_by_label, families or MetricSelection())
        # An excluded family costs nothing: it is never made.
        self.health = selected(self.options.families, HEALTH_FAMILIES)
        self.families: tuple[WorkflowFamily, ...] = selected(
            self.options.families, WORKFLOW_FAMILIES
        )
        self._up_info = tuple(i for i, f in enumerate(self.families) if f in UP_INFO)
        self._totals = tuple(i for i, f in enumerate(self.families) if f in TOTALS)
        # Per format: the text format's, OpenMetrics' (with exemplars).
        self._stores = (_Store(exemplars=False), _Store(exemplars=True))

    @classmethod
    def of(cls, collection: CollectionSettings) -> MetricsRenderer:
        options = RenderOptions.of(collection)
        return cls(options.triggered_by_label, options.families)

    @property
    def triggered_by_label(self) -> bool:
        return self.options.triggered_by_label

    def _lines(self, store: _Store, workspace: str, wf: WorkflowSnapshot) -> WorkflowLines:
        return WorkflowLines(workspace, wf, self.options.triggered_by_label, store.exemplars)

    def _make(self, lines: WorkflowLines, indices: Iterable[int]) -> dict[int, bytes]:
        return {i: _encode(self.families[i].samples(lines)) for i in indices}

    def _update(self, polls: int, lines: WorkflowLines, old: _Cached | None) -> _Cached:
        """The cache entry of a workflow that has no complete one for its version, at the
        store's poll count `polls`."""
        wf = lines.wf
        if old is not None and same_version(old.wf, wf):
            if old.poll == polls:  # scraped again before the next poll
                return old
            # It outlived a poll: keep all its lines.
            missing = (i for i, part in enumerate(old.parts) if part is None)
            made = self._make(lines, missing)
            parts = tuple(made.get(i, part) for i, part in enumerate(old.parts))
            return _Cached(wf, old.poll, parts, True)
        kept: dict[int, bytes | None] = {}
        if old is not None and old.wf.name == wf.name:
            same_up, same_totals = old.wf.up == wf.up, old.wf.totals == wf.totals
            if same_up and same_totals and not old.complete:  # an active run progressed
                return _Cached(wf, polls, old.parts, False)
            kept.update((i, old.parts[i]) for i in (self._up_info if same_up else ()))
            kept.update((i, old.parts[i]) for i in (self._totals if same_totals else ()))
        missing = (i for i in (*self._up_info, *self._totals) if kept.get(i) is None)
        kept.update(self._make(lines, missing))
        parts = tuple(kept.get(i) for i in range(len(self.families)))
        return _Cached(wf, polls, parts, False)

    def _group(self, store: _Store, members: list[Member]) -> _Group:
        lines = [self._lines(store, ws, wf) for ws, wf in members]
        segments = []
        for family in self.families:
            data = _encode("".join([family.samples(x) for x in lines]))
            segments.append(Segment.of(data) if data else None)
        return _Group(tuple(members), tuple(segments))

    def _plan(self, store: _Store, snapshot: Snapshot) -> _Plan:
        """Brings the store's cache up to date with the snapshot; what its scrape sends."""
        if snapshot is not store.snapshot:
            store.snapshot = snapshot
            store.polls += 1
        count = group_count(sum(len(ws.workflows) for ws in snapshot.workspaces))
        if count != store.group_count:
            store.group_count, store.groups = count, {}
        members: list[list[Member]] = [[] for _ in range(count)]
        cache: dict[tuple[str, str], _Cached] = {}
        plan = _Plan()
        for ws in snapshot.workspaces:
            for wf in ws.workflows:
                if settled(wf):
                    members[group_of(ws.name, wf.id, count)].append((ws.name, wf))
                    continue
                key = (ws.name, wf.id)
                cached = store.cache.get(key)
                lines = None
                if cached is None or not same_version(cached.wf, wf) or not cached.complete:
                    lines = self._lines(store, ws.name, wf)
                    cached = self._update(store.polls, lines, cached)
                cache[key] = cached
                plan.workflows.append((cached.parts, None if cached.complete else lines))
        store.cache = cache  # workflows gone from the snapshot (or settled) leave the cache
        groups: dict[int, _Group] = {}
        for i, group_members in enumerate(members):
            if group_members:
                old = store.groups.get(i)
                holds = old is not None and old.holds(group_members)
                groups[i] = old if old is not None and holds else self._group(store, group_members)
        store.groups = groups
        plan.groups = list(groups.values())
        return plan

    def pieces(self, snapshot: Snapshot, openmetrics: bool = False) -> Iterator[Piece]:
        """The snapshot's families, without `# EOF` (more may follow): byte chunks of about
        CHUNK_BYTES, and kept segments (see `exporter.gzipbody`).

        Pieces are made as they are asked for, so that a big exposition is never in memory
        twice: the server writes (and compresses) each piece before the next one is made. The
        cache is brought up to date before the first piece; after that only the snapshot and
        the plan (whose groups are immutable) are read, so interleaved scrapes do not disturb
        each other.
        """
        health = [(f, f.samples(snapshot.workspaces)) for f in self.health]
        plan = self._plan(self._stores[openmetrics], snapshot)
        for health_family, text in health:
            if text:
                yield _encode(health_family.header(openmetrics) + text)
        for i, family in enumerate(self.families):
            yield from self._family(i, family.header(openmetrics), plan)

    def _family(self, i: int, header: str, plan: _Plan) -> Iterator[Piece]:
        """One family's pieces; the header goes out before its first line, if it has any."""
        batch: list[bytes] = [_encode(header)]
        for group in plan.groups:
            segment = group.segments[i]
            if segment is not None:
                if batch:
                    yield batch.pop()
                yield segment
        size = 0
        for parts, lines in plan.workflows:
            part = parts[i]
            if part is None:
                assert lines is not None
                part = _encode(self.families[i].samples(lines))
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


# --- the whole body: the process's own metrics, then the snapshot's ------------------------------


class _Selected(Collector):
    """The families of a registry that `collection.metrics` lets through."""

    def __init__(self, registry: Collector, families: MetricSelection) -> None:
        self._registry, self._families = registry, families

    def collect(self) -> Iterable[Metric]:
        return (m for m in self._registry.collect() if self._families.selects(m.name))


def _own(registry: Collector, openmetrics: bool) -> bytes:
    """The process's own metrics (prometheus_client's collectors), without a trailer.

    prometheus_client's OpenMetrics writer always ends its output with `# EOF`, and has no
    writer for families alone; the snapshot's families go after them, then the one `# EOF`."""
    if not openmetrics:
        return generate_latest(registry)
    own = openmetrics_exposition.generate_latest(registry)  # type: ignore[no-untyped-call]
    assert own.endswith(EOF)
    return bytes(own[: -len(EOF)])


def body(
    snapshot: Snapshot, registry: Collector, renderer: MetricsRenderer, openmetrics: bool
) -> Iterator[Piece]:
    """The whole exposition: the registry's families, the snapshot's, and OpenMetrics' `# EOF`."""
    families = renderer.options.families
    selected = _Selected(registry, families) if families != MetricSelection() else registry
    yield _own(selected, openmetrics)
    yield from renderer.pieces(snapshot, openmetrics)
    if openmetrics:
        yield EOF
