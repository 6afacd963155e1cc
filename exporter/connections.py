"""Limits on the exporter's own HTTP server: how long a connection may wait, how many may be open.

aiohttp closes a connection that has no whole request within its `keepalive_timeout` of opening or
of its last answer; it has no cap on connections. The cap is here: each new connection is
admitted by `ConnectionLimiter` before aiohttp's protocol takes it. Past the cap, the oldest
connections that are not serving a request (idle keep-alive, or a request whose headers are still
coming) are closed to make room, so that idle or slow clients cannot keep a scrape out; when
every open connection is serving a request, the new one gets a 503 and is closed.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from aiohttp.web import RequestHandler

T = TypeVar("T")
# The kernel's queue of connections not yet accepted: asyncio's default. Smaller, a burst of
# connections fills it and a scrape's connection waits for the SYN to be sent again (a second
# or more).
LISTEN_BACKLOG = 100
# How many connections asyncio accepts in one turn of the loop (it takes its `backlog` argument
# for both). Each takes a descriptor before it is admitted, and the connections closed to make
# room for them give theirs back only a turn or two later: a burst of 100 past a cap made for
# the open-file limit ran out of descriptors (EMFILE, and no connection accepted for a second).
ACCEPT_BURST = 16
# Descriptors the rest of the process needs: the API client, logs, the event loops, Python.
OTHER_DESCRIPTORS = 50
# A connection in its TLS handshake is not yet the protocol's: past the cap it can only be marked
# to close once the handshake is done. So that handshakes that never end hold few descriptors,
# they get less time than a request's headers do (a real one takes milliseconds).
TLS_HANDSHAKE_TIMEOUT = 10.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REFUSAL_BODY = b"too many connections, all of them busy\n"
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)


def max_connections_for(open_file_limit: int) -> int:
    """The open-file limit less room for the rest of the process and for three bursts of
    accepted connections (one not yet admitted, two whose room is still being given back),
    16 to 512."""
    return max(16, min(512, open_file_limit - 3 * ACCEPT_BURST - OTHER_DESCRIPTORS))


def _default_max_connections() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 512 if soft == resource.RLIM_INFINITY else max_connections_for(soft)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    # A connection must bring a whole request header within this long of opening (or of finishing
    # the TLS handshake, or of its last answer), else it is closed: idle keep-alive connections
    # and requests whose headers never end alike. Prometheus reconnects when it finds one closed.
    idle_timeout: float = 30.0
    max_connections: int = field(default_factory=_default_max_connections)


def make_room(open_: Sequence[T], busy: Collection[T], limit: int) -> tuple[list[T], bool]:
    """For one more connection: which open ones to close, and whether the new one may stay.

    `open_` oldest first; only connections not in `busy` (serving a request) are ever closed."""
    excess = len(open_) + 1 - limit
    if excess <= 0:
        return [], True
    idle = [conn for conn in open_ if conn not in busy][:excess]
    return idle, len(idle) == excess


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_REFUSAL)
        transport.close()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, passed every event, counted while it is open.

    Counted from the moment it is accepted, not from `connection_made`: a burst of connections is
    accepted before any of them is made, and with TLS `connection_made` comes only after the
    handshake (one that fails never reaches the protocol at all)."""

    def __init__(self, limiter: ConnectionLimiter, handler: RequestHandler) -> None:
        self._limiter = limiter
        self.handler = handler
        self._transport: asyncio.BaseTransport | None = None
        self._evicted = False
        self._started = False  # the handler was given the connection

    def evict(self) -> None:
        """Close now, or as soon as it is made: aiohttp's handler would never close it then."""
        self._evicted = True
        if self._transport is not None:
            self.handler.force_close()  # what aiohttp's own keep-alive timer does

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._evicted:
            transport.close()
            return
        self._started = True
        self.handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._limiter.gone(self.handler)
        if self._started:
            self.handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received()  # type: ignore[func-returns-value]

    def pause_writing(self) -> None:
        self.handler.pause_writing()

    def resume_writing(self) -> None:
        self.handler.resume_writing()


class ConnectionLimiter:
    """The open connections, oldest first, and those serving a request; admits new ones."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self._open: dict[RequestHandler, _Counted] = {}  # in the order they were accepted
        self._busy: set[RequestHandler] = set()

    @property
    def open(self) -> int:
        return len(self._open)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the request's connection busy while it is served (the outermost middleware)."""
        connection = request.protocol
        self._busy.add(connection)
        try:
            return await handler(request)
        finally:
            self._busy.discard(connection)

    def gone(self, handler: RequestHandler) -> None:
        self._open.pop(handler, None)
        self._busy.discard(handler)

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.BaseProtocol]:
        def admit() -> asyncio.BaseProtocol:
            evict, admitted = make_room(list(self._open), self._busy, self.limits.max_connections)
            for handler in evict:
                self._open.pop(handler).evict()
            if not admitted:
                return _Refused()
            handler = server()
            counted = self._open[handler] = _Counted(self, handler)
            return counted

        return admit


async def listen(
    runner: web.AppRunner,
    limiter: ConnectionLimiter,
    host: str | None,
    port: int,
    ssl_context: ssl.SSLContext | None,
) -> asyncio.Server:
    """Serve `runner`'s app on host:port with the limiter admitting each connection.

    In place of aiohttp's TCPSite, whose protocol factory cannot be wrapped; close the returned
    server before `runner.cleanup()`."""
    assert runner.server is not None, "runner.setup() first"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        limiter.protocol_factory(runner.server),
        host,
        port,
        ssl=ssl_context,
        reuse_address=True,
        backlog=ACCEPT_BURST,  # what asyncio accepts per turn; the kernel's queue is set below
        ssl_handshake_timeout=min(TLS_HANDSHAKE_TIMEOUT, limiter.limits.idle_timeout)
        if ssl_context
        else None,
    )
    for listening in server.sockets:
        raw = socket.socket(fileno=listening.fileno())  # asyncio's wrapper has no listen()
        try:
            raw.listen(LISTEN_BACKLOG)
        finally:
            raw.detach()  # the descriptor stays asyncio's
    return server
