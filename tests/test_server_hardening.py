"""The exporter's own HTTP server against hostile or odd clients (issue 11, "Server").

The real exporter in-process (`BackgroundExporter`) on 127.0.0.1, port 0, spoken to over real
sockets:
- basic auth: bcrypt off the event loop, no user enumeration by timing, long passwords refused;
- connections: idle ones and half-sent requests are closed; past the cap, idle ones make room;
- the scrape-timeout header is honoured down to 0.5 s while the API never answers;
- content negotiation (Accept, Accept-Encoding) by their q-values, and HEAD without a poll.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest

from exporter.connections import ACCEPT_BURST, ServerLimits, make_room, max_connections_for
from exporter.negotiation import parse
from exporter.server import TIMEOUT_HEADER
from exporter.webconfig import WebConfig
from tests.background import BackgroundExporter
from tests.fakeapi import FakeOnePin, standard_workspace
from tests.faultserver import FaultServer, Hang, on_path
from tests.helpers import make_config, value

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret scrape password"
LONG_PASSWORD = "p" * 72  # the longest a bcrypt hash can hold
USER, LONG_USER = "prometheus", "long"
OPENMETRICS = "application/openmetrics-text"
# What Prometheus 2.x sends.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


# --- helpers ------------------------------------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def request(
    url: str, headers: dict[str, str] | None = None, method: str = "GET", path: str = "/metrics"
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; headers exactly as given (plus Host)."""
    conn = http.client.HTTPConnection(*address(url), timeout=20)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def timed(url: str, headers: dict[str, str]) -> tuple[float, int, bytes]:
    started = time.monotonic()
    status, _, body = request(url, headers)
    return time.monotonic() - started, status, body


def wait_until(done: Callable[[], bool], within: float, what: str) -> None:
    give_up = time.monotonic() + within
    while not done():
        assert time.monotonic() < give_up, f"not within {within:g}s: {what}"
        time.sleep(0.01)  # polling a condition, bounded above


def closed_within(socks: list[socket.socket], within: float, expected: int) -> set[int]:
    """Indexes of the sockets the server closed, waiting up to `within` s for `expected` of them."""
    closed: set[int] = set()
    give_up = time.monotonic() + within
    while len(closed) < expected and (left := give_up - time.monotonic()) > 0:
        open_ = [s for i, s in enumerate(socks) if i not in closed]
        readable, _, _ = select.select(open_, [], [], left)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                closed.add(socks.index(sock))
    return closed


@pytest.fixture(scope="module")
def users() -> dict[str, bytes]:
    # Cost 10, as exporter-toolkit's docs suggest: ~60 ms a check, the cost the issue measured.
    return {
        USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)),
        LONG_USER: bcrypt.hashpw(LONG_PASSWORD.encode(), bcrypt.gensalt(rounds=10)),
    }


@contextmanager
def exporter(
    web_config: WebConfig | None = None, collection: str = "{min_interval: 60s}"
) -> Iterator[tuple[BackgroundExporter, FakeOnePin]]:
    fake = FakeOnePin(standard_workspace())
    config = make_config(collection=collection)
    with BackgroundExporter(
        config, transport=fake.transport(), web_config=web_config or WebConfig()
    ) as running:
        yield running, fake


# --- basic auth -----------------------------------------------------------------------------------


def test_a_flood_of_wrong_passwords_does_not_delay_an_authenticated_scrape(
    users: dict[str, bytes],
) -> None:
    """16 clients sending wrong passwords: bcrypt must not stall everyone else's scrapes."""
    with exporter(WebConfig(users=users)) as (running, fake):
        good = basic(USER, PASSWORD)
        assert request(running.url, good)[0] == 200  # the poll, then cached for 60 s
        api_requests = len(fake.requests)
        stop = threading.Event()
        answered = [0] * 16
        statuses: set[int] = set()

        def attack(i: int) -> None:
            conn = http.client.HTTPConnection(*address(running.url), timeout=30)
            try:
                while not stop.is_set():
                    conn.request("GET", "/metrics", headers=basic(USER, f"wrong {i}"))
                    response = conn.getresponse()
                    response.read()
                    statuses.add(response.status)
                    answered[i] += 1
            finally:
                conn.close()

        attackers = [threading.Thread(target=attack, args=(i,)) for i in range(16)]
        for thread in attackers:
            thread.start()
        try:
            # By then all 16 have sent a request (each sends at once): bcrypt has a queue.
            wait_until(lambda: sum(answered) >= 8, 60, "the attackers' first answers")
            times = []
            for _ in range(5):
                elapsed, status, body = timed(running.url, good)
                assert status == 200 and value(body.decode(), "onepin_up") == 1
                times.append(elapsed)
        finally:
            stop.set()
            for thread in attackers:
                thread.join(30)
        assert statuses == {401}
        assert len(fake.requests) == api_requests, "the scrapes were to be served from the cache"
        assert statistics.median(times) < 0.5, (
            f"authenticated scrapes took {[f'{t:.3f}' for t in times]} s under 16 clients "
            "sending wrong passwords"
        )


def test_unknown_user_and_wrong_password_take_comparable_time(users: dict[str, bytes]) -> None:
    """Else the time of a 401 tells which user names exist."""
    with exporter(WebConfig(users=users)) as (running, _):
        unknown, wrong = [], []
        for i in range(7):  # interleaved, so that a busy moment hits both alike
            elapsed, status, _ = timed(running.url, basic(f"intruder{i}", "guess"))
            assert status == 401
            unknown.append(elapsed)
            elapsed, status, _ = timed(running.url, basic(USER, f"guess{i}"))
            assert status == 401
            wrong.append(elapsed)
        a, b = statistics.median(unknown), statistics.median(wrong)
        assert max(a, b) / min(a, b) < 2, (
            f"median 401 for an unknown user {a * 1000:.1f} ms, for a known user with a wrong "
            f"password {b * 1000:.1f} ms: user names can be told apart"
        )


def test_a_password_over_72_bytes_gets_401_and_72_bytes_still_work(
    users: dict[str, bytes],
) -> None:
    with exporter(WebConfig(users=users)) as (running, _):
        assert request(running.url, basic(LONG_USER, LONG_PASSWORD))[0] == 200
        # bcrypt reads only 72 bytes: the longer one must not pass as the 72-byte one.
        for user, password in [
            (LONG_USER, LONG_PASSWORD + "x"),
            (USER, PASSWORD + "x" * 72),
            ("intruder", "x" * 100),
        ]:
            status, _, body = request(running.url, basic(user, password))
            assert status == 401, f"{user} with {len(password)} bytes: {status} {body[:200]!r}"


# --- connections ----------------------------------------------------------------------------------


def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> None:
    with exporter(WebConfig(limits=ServerLimits(idle_timeout=0.5))) as (running, _):
        with socket.create_connection(address(running.url), timeout=10) as sock:
            sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: exporter\r\n\r\n")
            started = time.monotonic()
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            closed = closed_within([sock], 5, 1)
            elapsed = time.monotonic() - started
        assert closed == {0}, "an idle keep-alive connection was still open after 5 s"
        assert elapsed > 0.3, f"closed after {elapsed:.2f}s: keep-alive does not work at all"


def test_a_request_whose_headers_never_end_is_closed_after_the_timeout() -> None:
    """Slowloris: a header line now and then, never the blank line that ends them."""
    with exporter(WebConfig(limits=ServerLimits(idle_timeout=0.5))) as (running, _):
        with socket.create_connection(address(running.url), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n")
            closed = False
            while not closed and time.monotonic() - started < 5:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    break  # reset: closed by the server
                readable, _, _ = select.select([sock], [], [], 0.1)  # pacing the drip
                if readable:
                    try:
                        closed = sock.recv(65536) == b""
                    except OSError:
                        closed = True
            elapsed = time.monotonic() - started
        assert elapsed < 5, "a request whose headers never end was kept open for 5 s"


def test_connections_past_the_cap_make_idle_ones_close_and_a_scrape_still_answers(
    users: dict[str, bytes],
) -> None:
    limits = ServerLimits(idle_timeout=60, max_connections=4)
    with exporter(WebConfig(users=users, limits=limits)) as (running, _):
        good = basic(USER, PASSWORD)
        assert request(running.url, good)[0] == 200
        idle = [socket.create_connection(address(running.url), timeout=10) for _ in range(12)]
        try:
            for sock in idle[::2]:  # half of them start a request and never finish it
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n")
            elapsed, status, _ = timed(running.url, good)
            assert status == 200 and elapsed < 5
            # The scrape came last: it found the cap full, and the oldest idle ones made room.
            closed = closed_within(idle, 5, len(idle) - limits.max_connections)
        finally:
            for sock in idle:
                sock.close()
        assert len(closed) >= len(idle) - limits.max_connections, (
            f"{len(idle) - len(closed)} idle connections still open, cap {limits.max_connections}"
        )
        assert 0 in closed, "the oldest idle connection should make room first"


# --- answers before the scrape timeout ------------------------------------------------------------


@pytest.mark.parametrize("scrape_timeout", [0.5, 1.0])
@pytest.mark.parametrize("since_start", [False, True], ids=["after-a-good-poll", "from-the-start"])
def test_a_hanging_api_is_answered_before_the_scrape_timeout(
    scrape_timeout: float, since_start: bool
) -> None:
    """From the start, the scrape finds the start-up poll (its deadline collection.max_duration)
    still waiting for the API: it must not wait for it past its own timeout either."""
    fake = FakeOnePin(standard_workspace())
    with FaultServer(fake) as api:
        config = make_config(api_url=api.url, collection="{min_interval: 0s, max_duration: 10s}")
        if since_start:
            api.script.append(on_path("/workflows", Hang()))
        with BackgroundExporter(config) as running:
            if not since_start:
                wait_until(
                    lambda: request(running.url, path="/-/ready")[0] == 200, 30, "first poll done"
                )
                api.script.append(on_path("/workflows", Hang()))
            for _ in range(3):
                elapsed, status, body = timed(running.url, {TIMEOUT_HEADER: f"{scrape_timeout:g}"})
                assert status == 200
                assert value(body.decode(), "onepin_up") == 0, "the hanging API must show as down"
                assert elapsed < scrape_timeout, (
                    f"answered in {elapsed:.3f}s, past the {scrape_timeout:g}s scrape timeout: "
                    "Prometheus has given up by then"
                )


# --- content negotiation ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def negotiating() -> Iterator[tuple[BackgroundExporter, FakeOnePin]]:
    with exporter() as pair:
        yield pair


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip;q=0.5", True),
        ("gzip ; q=0.001", True),
        ("br;q=1, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("GZIP;Q=0", False),
        ("gzip;q=0, *", False),
        ("gzip;q=0.5, identity", False),
        ("identity", False),
        ("*;q=0", False),
        ("deflate, br", False),
        ("", False),
    ],
)
def test_accept_encoding_q_values_and_case(
    negotiating: tuple[BackgroundExporter, FakeOnePin], accept_encoding: str, gzipped: bool
) -> None:
    running, _ = negotiating
    status, headers, body = request(running.url, {"Accept-Encoding": accept_encoding})
    assert status == 200
    assert (headers.get("content-encoding") == "gzip") is gzipped, headers
    text = (gzip.decompress(body) if gzipped else body).decode()
    assert value(text, "onepin_up") == 1


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        (None, False),
        ("application/openmetrics-text; version=1.0.0", True),
        ("Application/OpenMetrics-Text", True),
        (PROMETHEUS_ACCEPT, True),
        ("application/openmetrics-text;q=0", False),
        ("application/openmetrics-text;version=1.0.0;q=0,text/plain;version=0.0.4", False),
        ("text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5", False),
        ("*/*", False),
        ("text/*;q=0.2, application/*;q=0.8", True),
        ('text/plain; note="a,application/openmetrics-text"', False),
    ],
)
def test_accept_picks_the_format_by_q_values(
    negotiating: tuple[BackgroundExporter, FakeOnePin], accept: str | None, openmetrics: bool
) -> None:
    running, _ = negotiating
    status, headers, body = request(running.url, {"Accept": accept} if accept else {})
    assert status == 200
    assert headers["content-type"].startswith(OPENMETRICS if openmetrics else "text/plain;")
    assert body.decode().endswith("# EOF\n") is openmetrics


def test_head_answers_from_the_last_poll_without_polling() -> None:
    with exporter(collection="{min_interval: 0s}") as (running, fake):
        assert request(running.url)[0] == 200
        before = len(fake.requests)
        status, headers, body = request(
            running.url, {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}, method="HEAD"
        )
        assert status == 200 and body == b""
        assert headers["content-type"].startswith(OPENMETRICS)
        assert headers.get("content-encoding") == "gzip"
        assert len(fake.requests) == before, "HEAD made the exporter poll the API"
        assert request(running.url)[0] == 200 and len(fake.requests) > before  # GET still polls


def test_when_every_connection_is_serving_a_request_a_new_one_gets_503() -> None:
    """Cap 1, and that one waits on an API that never answers: nothing idle to close."""
    fake = FakeOnePin(standard_workspace())
    with FaultServer(fake) as api:
        config = make_config(api_url=api.url, collection="{min_interval: 0s, max_duration: 10s}")
        limits = ServerLimits(max_connections=1)
        with BackgroundExporter(config, web_config=WebConfig(limits=limits)) as running:
            wait_until(lambda: request(running.url, path="/-/ready")[0] == 200, 30, "first poll")
            api.script.append(on_path("/workflows", Hang()))
            seen = api.connections  # from here on, only the scrape below asks the API
            busy = socket.create_connection(address(running.url), timeout=10)
            try:
                busy.sendall(
                    f"GET /metrics HTTP/1.1\r\nHost: x\r\n{TIMEOUT_HEADER}: 2\r\n\r\n".encode()
                )
                wait_until(lambda: api.connections > seen, 10, "the scrape's poll asked the API")
                status, _, body = request(running.url, path="/-/healthy")
                assert (status, body) == (503, b"too many connections, all of them busy\n")
                assert busy.recv(65536).startswith(b"HTTP/1.1 200"), "the busy scrape is served"
            finally:
                busy.close()


@pytest.mark.parametrize(
    ("open_", "busy", "limit", "evict", "admitted"),
    [
        ("abc", "", 4, "", True),
        ("abcd", "", 4, "a", True),
        ("abcd", "ab", 4, "c", True),
        ("abcd", "abcd", 4, "", False),
        ("abcdef", "b", 4, "acd", True),
        ("abcdef", "abcde", 4, "f", False),
        ("", "", 1, "", True),
    ],
)
def test_make_room_closes_the_oldest_idle_connections(
    open_: str, busy: str, limit: int, evict: str, admitted: bool
) -> None:
    assert make_room(list(open_), set(busy), limit) == (list(evict), admitted)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", [("gzip", 1.0)]),
        (" GZip ;Q=0.5 , br", [("gzip", 0.5), ("br", 1.0)]),
        ("gzip;q=2, br;q=-1, deflate;q=0.1234, zstd;q=abc", []),  # bad q: left out
        ('text/plain; a="x,y;q=0"; q=0.3, */*', [("text/plain", 0.3), ("*/*", 1.0)]),
        ("text/plain; q=0.2; ext=1", [("text/plain", 0.2)]),
        (",, ;q=1,", []),
        ("", []),
    ],
)
def test_parse_accept_elements(header: str, expected: list[tuple[str, float]]) -> None:
    assert [(p.name, p.q) for p in parse(header)] == expected


# The exporter in a process of its own, whose open-file limit the test sets. Its API is the
# in-process fake (no sockets), so every descriptor it has is the server's or the runtime's.
_LIMITED_EXPORTER = """
import sys
from tests.background import BackgroundExporter
from tests.fakeapi import FakeOnePin, standard_workspace
from tests.helpers import make_config
fake = FakeOnePin(standard_workspace())
config = make_config(collection="{min_interval: 60s}")
with BackgroundExporter(config, transport=fake.transport()) as running:
    print(running.url, flush=True)
    sys.stdin.read()
"""


@pytest.mark.parametrize(
    ("open_file_limit", "cap"),
    [(64, 16), (256, 158), (1024, 512), (100_000, 512)],
)
def test_the_connection_cap_leaves_room_for_bursts_below_the_open_file_limit(
    open_file_limit: int, cap: int
) -> None:
    """Three bursts of accepted connections (not yet admitted, or closed to make room but not
    yet given back) and the process's own descriptors fit under the limit beside the cap."""
    assert max_connections_for(open_file_limit) == cap
    if cap > 16:
        assert cap + 3 * ACCEPT_BURST + 50 <= open_file_limit


def test_idle_sockets_past_the_open_file_limit_do_not_keep_scrapes_out(tmp_path: Path) -> None:
    """The issue's case: `ulimit -n 256` and 300 idle sockets; a scrape must still answer."""
    limit = 256
    stderr = tmp_path / "stderr"
    idle: list[socket.socket] = []
    with stderr.open("w") as log:  # a file: a full pipe would stall the exporter
        process = subprocess.Popen(
            [sys.executable, "-c", _LIMITED_EXPORTER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)),
        )
    try:
        assert process.stdout is not None and process.stdin is not None
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the exporter did not print its address within 60 s"
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), f"exporter failed: {stderr.read_text()}"
        for _ in range(300):
            idle.append(socket.create_connection(address(url), timeout=10))
        for _ in range(3):
            elapsed, status, _ = timed(url, {})
            assert status == 200 and elapsed < 2, f"scrape: {status} after {elapsed:.2f}s"
        process.stdin.close()
        assert process.wait(30) == 0
        assert "Too many open files" not in stderr.read_text(), stderr.read_text()[-2000:]
    finally:
        for sock in idle:
            sock.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
