"""What the bytes of an API response become: decoded within a size limit, then bounded JSON.

The client asks for identity bodies, but a server or proxy may compress anyway, even twice.
httpx's decoders inflate a whole chunk at once, before any size check can run: a 1 KB body
gzipped twice inflates to 512 MiB. Here zlib's `max_length` bounds every step instead, the limit
applies to the bytes each stage of the chain produces (so to the decoded body), and the loop
yields to the event loop between steps. Written here because no library we use decodes a
Content-Encoding chain incrementally under a limit; zlib does the decoding itself.

JSON is nested at most `MAX_JSON_DEPTH` levels: the API's answers are a few levels deep, and a
deeper document (`[[[[...]]]]`, 2 bytes a level) would otherwise raise RecursionError in the
parser, or in whatever later walks or prints it.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from exporter.transport import BodyTooLarge

MAX_CODINGS = 2  # "gzip, gzip" from a proxy that compresses again; more is not HTTP as used
MAX_JSON_DEPTH = 64
STEP = 256 * 1024  # at most this many bytes out of one zlib call
STEPS_PER_TURN = 4  # zlib calls between two turns of the event loop (about 1 MiB)
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
# Codings a server may name that are refused by name; any other text is not echoed (it is the
# server's, and could hold anything, the token too).
_KNOWN = frozenset({"br", "zstd", "compress", "x-compress", "exi", "pack200-gzip", "aes128gcm"})
_CONTAINERS = (dict, list)


class UndecodableBody(ValueError):
    """The body cannot be decoded: its message says why, without quoting the server."""


def codings(header: str) -> tuple[str, ...]:
    """The Content-Encoding codings to undo, in the order they were applied (identity left
    out); UndecodableBody for one not supported or a chain too long."""
    chain = []
    for part in header.split(","):
        coding = part.strip().lower()
        if coding in ("", "identity"):
            continue
        if coding not in _WBITS:
            name = coding if coding in _KNOWN else None
            named = f"Content-Encoding {name}" if name else "an unknown Content-Encoding"
            raise UndecodableBody(
                f"response in {named}, which was not asked for and is not decoded"
            )
        chain.append("gzip" if coding == "x-gzip" else coding)
    if len(chain) > MAX_CODINGS:
        raise UndecodableBody(
            f"response in {len(chain)} content codings, more than the {MAX_CODINGS} decoded"
        )
    return tuple(chain)


async def decode(raw: bytes, chain: tuple[str, ...], limit: int) -> bytes:
    """`raw` with the codings of `chain` undone; BodyTooLarge as soon as a stage has produced
    more than `limit` bytes, UndecodableBody for data that is not what it says it is."""
    if not chain or not raw:
        return raw
    stream: Iterable[bytes] = (raw[i : i + STEP] for i in range(0, len(raw), STEP))
    for coding in reversed(chain):
        stream = _inflate(stream, coding, limit)
    parts = []
    for steps, part in enumerate(stream, 1):
        parts.append(part)
        if steps % STEPS_PER_TURN == 0:
            await asyncio.sleep(0)
    return b"".join(parts)


def _inflate(pieces: Iterable[bytes], coding: str, limit: int) -> Iterator[bytes]:
    """One stage: its output in pieces of at most STEP bytes, at most `limit` bytes in all.

    An empty piece now and then, when input went in but nothing came out, so that the caller
    can yield to the loop whatever the stage before it does."""
    name = "gzip" if coding == "gzip" else "deflate"
    wbits = _WBITS[coding]
    inflater = zlib.decompressobj(wbits)
    produced = 0
    started = False  # whether input went in (until then, deflate's wrapper may be guessed)
    fed = False
    for piece in pieces:
        data = piece
        fed = fed or bool(data)
        while True:
            try:
                out = inflater.decompress(data, STEP)
            except zlib.error:
                if coding == "deflate" and wbits > 0 and not started:
                    # "deflate" should be zlib-wrapped; some servers send it raw (as browsers
                    # and httpx accept).
                    wbits = -zlib.MAX_WBITS
                    inflater = zlib.decompressobj(wbits)
                    continue
                raise UndecodableBody(f"response body is not valid {name} data") from None
            started = started or bool(data)
            data = inflater.unconsumed_tail
            if inflater.eof:
                data = inflater.unused_data + data
                if data:
                    if coding != "gzip":
                        raise UndecodableBody(f"response body is not valid {name} data")
                    inflater = zlib.decompressobj(wbits)  # the next gzip member (RFC 1952)
            produced += len(out)
            if produced > limit:
                raise BodyTooLarge()
            yield out
            if not data and len(out) < STEP:
                break  # all of this piece is out: the next one
    if fed and not inflater.eof:
        raise UndecodableBody(f"{name} data cut short")


def load_json(raw: bytes) -> Any:
    """The JSON value of `raw`; UndecodableBody if it is not JSON, or nested too deep."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError):
        raise UndecodableBody("not JSON") from None
    # Each level opens a bracket: with no more brackets than the bound, nothing to walk (a Get
    # Run Status body has a handful; a catalogue page a few hundred).
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _deeper_than(value, MAX_JSON_DEPTH):
        raise _too_deep()
    return value


def _too_deep() -> UndecodableBody:
    return UndecodableBody(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` nests containers more than `limit` levels: level by level, without
    recursion (that is what it guards against)."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) in _CONTAINERS
        ]
    return False
