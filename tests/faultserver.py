"""The in-test fake API (tests/fakeapi.py) on a real loopback socket, with socket-level faults.

`FakeOnePin` answers through `httpx.MockTransport`, which cannot hang, drip bytes, cut a body
short or refuse a connection. This serves the same fake over plain HTTP/1.1 on 127.0.0.1 (port
picked by the kernel) from a thread with its own event loop, so the exporter talks to it with its
real transport. A test scripts faults with `script`: callables that look at each request and may
return an `Action` instead of the fake's answer. `down()` makes the port refuse connections (a
bound socket that does not listen) and `up()` serves on the same port again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from tests.fakeapi import FakeOnePin

MAX_HEAD_BYTES = 64 * 1024
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Hang:
    """Accept the request and never answer (until the server stops)."""


@dataclass(frozen=True)
class Drip:
    """Answer 200 with `body`, one byte every `interval` seconds."""

    body: bytes = b'{"data": []}'
    interval: float = 0.2


@dataclass(frozen=True)
class Raw:
    """Write these bytes as the whole answer, then close the connection."""

    data: bytes


@dataclass(frozen=True)
class Stream:
    """A 200 answer of `size` bytes of JSON-ish filler, written in chunks.

    `declare` sends a Content-Length; without it the body is chunk-encoded, so a client only
    learns the size by reading.
    """

    size: int
    declare: bool = False
    chunk: int = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """An answer built by the test: status, headers and body."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Action = Hang | Drip | Raw | Stream | Reply
Script = Callable[[httpx.Request], Action | None]


def http_response(status: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _HOP_HEADERS]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def raw_reply(status: int, headers: list[tuple[str, str]], body: bytes) -> Raw:
    """An answer whose header lines are sent as given, `Content-Encoding` too (which `Reply`
    drops: the fake's bodies are never encoded), then Content-Length and `Connection: close`."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return Raw("\r\n".join(lines).encode("latin-1") + body)


_HOP_HEADERS = {"content-length", "connection", "transfer-encoding", "content-encoding"}
_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable"}  # fmt: skip


class FaultServer:
    """Serves `fake` on 127.0.0.1; every answer closes its connection (no keep-alive)."""

    def __init__(self, fake: FakeOnePin) -> None:
        self.fake = fake
        self.script: list[Script] = []
        self.connections = 0
        self._sock = self._bind(0)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-server")
        self._server: asyncio.Server | None = None
        self._release: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    @staticmethod
    def _bind(port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        return sock

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(STOP_TIMEOUT)

    def start(self, listening: bool = True) -> FaultServer:
        """Run the server's loop; with `listening=False` the port refuses until `up()`."""
        self._thread.start()
        if listening:
            self.up()
        return self

    def up(self) -> None:
        """Listen (again) on the same port."""

        async def listen() -> None:
            self._release = asyncio.Event()
            self._sock.listen(128)
            self._server = await asyncio.start_server(self._serve, sock=self._sock)

        self._call(listen())

    def down(self) -> None:
        """Close every connection and refuse new ones: the port stays bound, not listening."""

        async def close() -> None:
            await self._shutdown()
            self._sock.close()
            self._sock = self._bind(self.port)

        self._call(close())

    async def _shutdown(self) -> None:
        if self._release is not None:
            self._release.set()
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._tasks:  # released, they end by themselves; cancel only what is still stuck
            _done, stuck = await asyncio.wait(list(self._tasks), timeout=STOP_TIMEOUT)
            for task in stuck:
                task.cancel()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_TIMEOUT)
        self._sock.close()
        self._loop.close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- serving ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request = self._request(head)
            action = self._action(request)
            await self._act(action, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client went away: that is what many of these faults are about
        except asyncio.CancelledError:
            pass  # stopped while stuck: nothing to report
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _request(self, head: bytes) -> httpx.Request:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
        clean = [(k.strip(), v.strip()) for k, v in headers]
        return httpx.Request(method, f"{self.url}{target}", headers=clean)

    def _action(self, request: httpx.Request) -> Action:
        for script in list(self.script):
            action = script(request)
            if action is not None:
                return action
        response = self.fake.handle(request)
        return Reply(response.status_code, response.content, dict(response.headers))

    async def _act(self, action: Action, writer: asyncio.StreamWriter) -> None:
        release = self._release
        assert release is not None
        if isinstance(action, Hang):
            await release.wait()
        elif isinstance(action, Reply):
            writer.write(http_response(action.status, action.headers, action.body))
            await writer.drain()
        elif isinstance(action, Raw):
            writer.write(action.data)
            await writer.drain()
        elif isinstance(action, Drip):
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(action.body)}\r\nConnection: close\r\n\r\n".encode()
            )
            for i in range(len(action.body)):
                writer.write(action.body[i : i + 1])
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(release.wait(), action.interval)
                if release.is_set():
                    return
        else:
            await self._stream(action, writer)

    @staticmethod
    async def _stream(action: Stream, writer: asyncio.StreamWriter) -> None:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        head += (
            f"Content-Length: {action.size}\r\n\r\n"
            if action.declare
            else "Transfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(head.encode())
        filler = b"[" + b" " * (action.chunk - 1)  # one buffer, reused: the server stays small
        sent = 0
        while sent < action.size:
            piece = filler[: min(action.chunk, action.size - sent)]
            if action.declare:
                writer.write(piece)
            else:
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            sent += len(piece)
            await writer.drain()
        if not action.declare:
            writer.write(b"0\r\n\r\n")
            await writer.drain()


def on_path(suffix: str, action: Action | Callable[[], Action | None]) -> Script:
    """A script answering `action` to every request whose path ends with `suffix`."""

    def script(request: httpx.Request) -> Action | None:
        if not request.url.path.endswith(suffix):
            return None
        return action() if callable(action) else action

    return script
