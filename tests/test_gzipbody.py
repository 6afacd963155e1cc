"""Kept deflate segments: one valid gzip member, or plain bytes, with the same content.

The renderer keeps settled workflows' lines only compressed, so every scrape's body (gzipped or
not) is stitched from kept segments and fresh bytes. These tests check the stitching, then the
renderer across polls in which workflows change, come, go and settle or start a run.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import random
import zlib

import pytest

from exporter.apistats import ApiStats
from exporter.gzipbody import CHUNK_BYTES, Piece, Segment, gzip_stream, plain_stream
from exporter.rendering import MetricsRenderer
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot
from tests.test_rendering import busy, run, totals, versioned


@pytest.mark.parametrize("size", [0, 1, 7, 4096, CHUNK_BYTES, 3 * CHUNK_BYTES + 5])
def test_a_segment_continues_any_crc_as_its_bytes_would(size: int) -> None:
    data = os.urandom(size)
    segment = Segment.of(data)
    for start in (0, 1, 0xFFFFFFFF, zlib.crc32(os.urandom(33))):
        assert segment.crc32(start) == zlib.crc32(data, start)
    assert zlib.decompressobj(-15).decompress(segment.deflated) == data


def one_member(body: bytes) -> bytes:
    """The first gzip member, checking that nothing follows it (zlib-based clients stop there)."""
    inflater = zlib.decompressobj(31)
    data = inflater.decompress(body)
    assert inflater.eof and inflater.unused_data == b""
    return data


def test_segments_and_bytes_make_one_gzip_member() -> None:
    rng = random.Random(1)
    words = [b"alpha ", b"beta\n", b"gamma", b"\x00\xff"]
    for _ in range(50):
        pieces: list[Piece] = []
        whole = b""
        for _ in range(rng.randrange(0, 12)):
            data = b"".join(rng.choices(words, k=rng.randrange(0, 3000)))
            pieces.append(Segment.of(data) if rng.random() < 0.5 else data)
            whole += data
        body = b"".join(gzip_stream(pieces))
        assert one_member(body) == whole
        assert gzip.decompress(body) == whole
        assert b"".join(plain_stream(pieces)) == whole


def test_a_big_segment_is_inflated_in_bounded_chunks() -> None:
    data = os.urandom(CHUNK_BYTES) * 4  # repeats: deflates to about a quarter
    chunks = list(plain_stream([b"head", Segment.of(data), b"tail"]))
    assert b"".join(chunks) == b"head" + data + b"tail"
    assert max(len(c) for c in chunks) <= CHUNK_BYTES


def idle(i: int, finished: int = 0, name: str = "") -> WorkflowSnapshot:
    return WorkflowSnapshot(
        f"wf-{i}", name or f"idle {i}", True, True, totals(finished), {"completed": 2}, 1.0, 9.0
    )


def active(i: int, steps: int) -> WorkflowSnapshot:
    return dataclasses.replace(busy(steps, totals()), id=f"wf-{i}", name=f"busy {i}")


def polls() -> list[Snapshot]:
    """Polls of 300 workflows (several groups) in two workspaces, each changing some of them."""
    rng = random.Random(7)
    current: dict[int, WorkflowSnapshot] = {i: idle(i) for i in range(300)}
    out = []
    for poll in range(8):
        steps = poll + 1
        for i in list(current):
            wf = current[i]
            if wf.active_runs:
                current[i] = active(i, steps)  # its run progresses
        for i in rng.sample(sorted(current), 20):
            choice = rng.randrange(5)
            if choice == 0:
                del current[i]  # gone
            elif choice == 1:
                current[i] = active(i, steps)  # starts a run, or its run progresses
            elif choice == 2:  # its run finished: settled again, with new totals and times
                last = run(steps, "completed")
                current[i] = dataclasses.replace(
                    idle(i, 1), last_run=last, last_success=1.8e9 + poll, last_failure=1.7e9
                )
            elif choice == 3:
                current[i] = idle(i, name=f"renamed {poll}")
            else:
                current[i] = dataclasses.replace(current[i], up=False)
        for i in range(300 + poll * 5, 305 + poll * 5):
            current[i] = idle(i)  # new ones
        if poll == 6:  # fewer groups
            current = {i: wf for i, wf in current.items() if i < 100}
        workflows = sorted(current.items())
        out.append(
            Snapshot(
                tuple(
                    WorkspaceSnapshot(
                        name, True, tuple(wf for i, wf in workflows if i % 2 == half), ApiStats()
                    )
                    for half, name in ((0, "prod"), (1, "dev"))
                ),
                float(poll),
            )
        )
        if poll in (2, 5):
            out.append(out[-1])  # scraped again before the next poll
    return versioned(out)


@pytest.mark.parametrize("openmetrics", [False, True])
def test_gzipped_plain_and_fresh_renders_agree_across_polls(openmetrics: bool) -> None:
    renderer = MetricsRenderer()
    for i, snapshot in enumerate(polls()):
        pieces = list(renderer.pieces(snapshot, openmetrics))
        assert any(isinstance(p, Segment) for p in pieces)
        plain = b"".join(plain_stream(pieces))
        assert one_member(b"".join(gzip_stream(pieces))) == plain, f"poll {i}"
        assert b"".join(renderer.chunks(snapshot, openmetrics)) == plain, f"poll {i}"
        assert b"".join(MetricsRenderer().chunks(snapshot, openmetrics)) == plain, f"poll {i}"
        assert max(len(c) for c in plain_stream(pieces)) <= 2 * CHUNK_BYTES


def test_interleaved_gzip_scrapes_each_show_their_own_snapshot() -> None:
    older, newer = polls()[3:5]
    renderer = MetricsRenderer()
    b"".join(renderer.chunks(older))
    first, second = gzip_stream(renderer.pieces(older)), gzip_stream(renderer.pieces(newer))
    got: dict[int, list[bytes]] = {0: [next(first)], 1: [next(second)]}
    for i, chunks in enumerate((first, second)):
        got[i].extend(chunks)
    assert one_member(b"".join(got[0])) == b"".join(MetricsRenderer().chunks(older))
    assert one_member(b"".join(got[1])) == b"".join(MetricsRenderer().chunks(newer))
