"""A response body made of plain byte chunks and kept deflate segments, sent gzipped or plain.

Most of a big exposition is the same scrape after scrape (idle workflows), so the renderer keeps
those lines compressed, as `Segment`s, and only the lines that changed are compressed per scrape.
A segment is raw deflate from its own compressor, ended by a sync flush: it refers to nothing
before it, ends on a byte boundary and is not final, so segments and freshly compressed bytes can
follow one another in one deflate stream. `gzip_stream` wraps that stream as one gzip member (some
clients read only the first member of a multi-member body), combining the segments' CRC-32s
without their uncompressed bytes; `plain_stream` inflates the segments for a scraper that does not
accept gzip. Both yield bounded chunks: the body is never in memory whole.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# Level 1: a third of level 5's CPU for 10 % more bytes (45 MB of text at 5,000 workflows gzips
# to 6.2 MB in 0.16 s instead of 5.6 MB in 0.35 s).
LEVEL = 1
# Output is handed on in pieces of about this size.
CHUNK_BYTES = 256 * 1024
# ID1 ID2, CM deflate, no flags, no mtime, no extra flags, OS unknown (RFC 1952).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"

_ZEROS = memoryview(bytes(CHUNK_BYTES))


def _crc32_of_zeros(size: int, crc: int) -> int:
    while size > 0:
        step = min(size, len(_ZEROS))
        crc = zlib.crc32(_ZEROS[:step], crc)
        size -= step
    return crc


@dataclass(frozen=True, slots=True)
class Segment:
    """Some bytes of the body as a self-contained, byte-aligned, non-final deflate segment."""

    deflated: bytes
    size: int  # of the bytes uncompressed
    # crc32(bytes) ^ crc32(size zero bytes): with it, crc32(bytes, crc) for any crc is
    # crc32(size zero bytes, crc) ^ shift, because CRC-32 is affine in its start value and data.
    shift: int

    @classmethod
    def of(cls, data: bytes) -> Segment:
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)  # -15: raw deflate
        deflated = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return cls(deflated, len(data), zlib.crc32(data) ^ _crc32_of_zeros(len(data), 0))

    def crc32(self, crc: int) -> int:
        """zlib.crc32(the bytes, crc), without the bytes."""
        return _crc32_of_zeros(self.size, crc) ^ self.shift


Piece = bytes | Segment


def gzip_stream(pieces: Iterable[Piece]) -> Iterator[bytes]:
    """The pieces' bytes as one gzip member, in chunks of about CHUNK_BYTES."""
    out = [GZIP_HEADER]
    pending = len(GZIP_HEADER)
    crc = size = 0
    compressor = None  # for the bytes since the last segment
    for piece in pieces:
        if isinstance(piece, Segment):
            if compressor is not None:
                # A segment's back-references cannot reach past its start, but the bytes after
                # it must not refer to bytes before it either: they get a fresh compressor.
                out.append(compressor.flush(zlib.Z_SYNC_FLUSH))
                compressor = None
            out.append(piece.deflated)
            crc = piece.crc32(crc)
            size += piece.size
            pending += len(piece.deflated)
        elif piece:
            if compressor is None:
                compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
            deflated = compressor.compress(piece)
            out.append(deflated)
            crc = zlib.crc32(piece, crc)
            size += len(piece)
            pending += len(deflated)
        if pending >= CHUNK_BYTES:
            yield b"".join(out)
            out, pending = [], 0
    # The final block (an empty one after a segment), then the trailer: CRC-32 and ISIZE.
    out.append((compressor or zlib.compressobj(LEVEL, zlib.DEFLATED, -15)).flush())
    out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    yield b"".join(out)


def plain_stream(pieces: Iterable[Piece]) -> Iterator[bytes]:
    """The pieces' bytes, segments inflated, no chunk much over CHUNK_BYTES."""
    for piece in pieces:
        if not isinstance(piece, Segment):
            if piece:
                yield piece
            continue
        inflater = zlib.decompressobj(-15)
        deflated = piece.deflated
        while deflated:
            data = inflater.decompress(deflated, CHUNK_BYTES)
            deflated = inflater.unconsumed_tail
            if data:
                yield data
        rest = inflater.flush()  # what a capped call left inside the inflater, if anything
        if rest:
            yield rest
