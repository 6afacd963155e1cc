"""Fault injection: whatever the API does, a scrape answers 200 in time and tells the truth.

Each test runs the real exporter in-process (`BackgroundExporter`, its real aiohttp transport)
against the fake API on a loopback socket (tests/faultserver.py) or the built-in simulator, and
checks what an operator sees:
- `/metrics` answers 200 within the scrape timeout sent in `X-Prometheus-Scrape-Timeout-Seconds`;
- `onepin_up` and `onepin_workflow_up` say what is broken, and nothing else;
- the workflows the fault does not touch keep exactly the values they had;
- one clear log line per problem, however many requests or scrapes it spans;
- everything comes back by itself once the fault clears.
"""

from __future__ import annotations

import contextlib
import email.utils
import gc
import http.client
import json
import logging
import re
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest

from exporter.client import MAX_BODY_BYTES
from exporter.server import TIMEOUT_HEADER
from exporter.simulator import RunningSimulator, SimulatorConfig
from tests.background import BackgroundExporter
from tests.fakeapi import TOKEN, FakeOnePin, FakeRun, standard_workspace
from tests.faultserver import Action, Drip, FaultServer, Hang, Raw, Reply, Script, Stream, on_path
from tests.helpers import make_config, samples, series, value

# What Prometheus sends by default is 10s; a short one keeps the suite fast and the bound tight.
SCRAPE_TIMEOUT = 2.0
HTTP = "{timeout: 5s, max_concurrency: 8, max_retries: 2}"
COLLECTION = "{min_interval: 0s, max_duration: 10s}"
# The workflow whose active run (r-run-2) is polled on every scrape: the one a fault hits.
HIT = "wf-running"
HIT_STATUS = "/r-run-2/status"
JSON_TYPE = {"Content-Type": "application/json"}


# --- the rig: an exporter, scraped as Prometheus does, with its log lines ----------------------


class Rig:
    """A running exporter, scraped as Prometheus does, and the log lines it wrote."""

    def __init__(self, running: BackgroundExporter, caplog: pytest.LogCaptureFixture) -> None:
        self.running = running
        self.caplog = caplog

    def scrape(self, timeout: float = SCRAPE_TIMEOUT) -> str:
        """GET /metrics with the scrape-timeout header; it must be a 200 within the timeout."""
        request = urllib.request.Request(
            f"{self.running.url}/metrics", headers={TIMEOUT_HEADER: f"{timeout:g}"}
        )
        started = time.monotonic()
        status: int
        body: str
        try:
            with urllib.request.urlopen(request, timeout=timeout + 10) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode(errors="replace")
        except http.client.IncompleteRead as exc:
            raise AssertionError(
                f"/metrics started a 200 and then cut the body short after {len(exc.partial)} "
                "bytes: Prometheus drops the whole scrape"
            ) from None
        elapsed = time.monotonic() - started
        assert status == 200, f"/metrics answered {status}: {body[:500]}"
        assert elapsed < timeout, (
            f"/metrics took {elapsed:.2f}s, past the {timeout:g}s scrape timeout: Prometheus "
            "would have given up and marked the target down"
        )
        return body

    def scrape_until(self, done: Callable[[str], bool], within: float) -> str:
        """Scrape (each one checked as above) until `done` says yes; fail after `within` s."""
        give_up = time.monotonic() + within
        while True:
            text = self.scrape()
            if done(text):
                return text
            assert time.monotonic() < give_up, f"not recovered {within:g}s after the fault"
            time.sleep(0.2)  # pacing between scrapes, as Prometheus would

    def mark(self) -> int:
        return len(self.caplog.records)

    def lines(self, since: int = 0, level: int = logging.WARNING) -> list[str]:
        """The exporter's log lines since `since`, at `level` or above, with their fields."""
        out = []
        for record in self.caplog.records[since:]:
            if record.levelno < level or not record.name.startswith(("exporter", "aiohttp")):
                continue
            extra = {k: v for k, v in vars(record).items() if k in ("workflow_id", "workspace")}
            out.append(f"{record.levelname} {record.getMessage()} {extra}")
        for line in out:
            assert TOKEN not in line, f"the token is in a log line: {line}"
        return out

    def matching(self, pattern: str, since: int = 0, level: int = logging.WARNING) -> list[str]:
        return [line for line in self.lines(since, level) if re.search(pattern, line)]


@contextmanager
def exporter(
    url: str,
    caplog: pytest.LogCaptureFixture,
    *,
    token: str = TOKEN,
    wait_ready: bool = True,
    collection: str = COLLECTION,
) -> Iterator[Rig]:
    caplog.set_level(logging.INFO, logger="exporter")
    config = make_config(api_url=url, token=token, http=HTTP, collection=collection)
    with BackgroundExporter(config) as running:
        if wait_ready:
            _wait_ready(running.url)
        yield Rig(running, caplog)


def _wait_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.URLError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the exporter's first poll did not finish within {timeout:.0f}s")


# --- reading the exposition ---------------------------------------------------------------------


def workflow_view(text: str, wid: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    """Every sample of one workflow but `onepin_workflow_up`: what a dashboard shows of it."""
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for s in samples(text)
        if s.labels.get("workflow_id") == wid and s.name != "onepin_workflow_up"
    }


def assert_unchanged(before: str, after: str, wids: list[str]) -> None:
    for wid in wids:
        old, new = workflow_view(before, wid), workflow_view(after, wid)
        assert old, f"{wid} has no samples before the fault"
        assert new == old, (
            f"{wid} changed though the fault does not touch it: "
            f"gone {sorted(old - new)[:3]}, new {sorted(new - old)[:3]}"
        )


def ups(text: str) -> dict[str, float]:
    return {s.labels["workflow_id"]: s.value for s in series(text, "onepin_workflow_up")}


def assert_all_up(text: str, wids: list[str]) -> None:
    assert value(text, "onepin_up") == 1, "onepin_up should be 1"
    assert ups(text) == dict.fromkeys(wids, 1.0), f"workflow_up: {ups(text)}"


def requests_sent(text: str, code: str) -> float:
    return sum(s.value for s in series(text, "onepin_api_requests_total", code=code))


# --- scripted answers ---------------------------------------------------------------------------


def patched(fake: FakeOnePin, suffix: str, mutate: Callable[[dict[str, Any]], None]) -> Script:
    """The fake's own answer to requests ending with `suffix`, with its JSON body changed."""

    def script(request: httpx.Request) -> Action | None:
        if not request.url.path.endswith(suffix):
            return None
        response = fake.handle(request)
        body = json.loads(response.content)
        with contextlib.suppress(KeyError):  # a page without the item passes unchanged
            mutate(body)
        return Reply(response.status_code, json.dumps(body).encode(), JSON_TYPE)

    return script


def item(body: dict[str, Any], wid: str) -> dict[str, Any]:
    """The list item with this id (KeyError when this page does not hold it)."""
    for found in body["data"]:
        if found["id"] == wid:
            return cast(dict[str, Any], found)
    raise KeyError(wid)


def error_body(code: str, message: str) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message}, "meta": {"request_id": "req_fault"}}
    ).encode()


class Burst:
    """Answer `action` to the first `count` requests matching `suffix`, then let them through.
    A callable `action` builds each answer when it is sent (a Retry-After date, as an API would)."""

    def __init__(self, suffix: str, count: int, action: Action | Callable[[], Action]) -> None:
        self.suffix, self.left, self.action = suffix, count, action
        self.hits: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> Action | None:
        if not request.url.path.endswith(self.suffix):
            return None
        with self._lock:
            self.hits.append(time.monotonic())
            if self.left == 0:
                return None
            self.left -= 1
            return self.action() if callable(self.action) else self.action


# --- API down, API hanging ----------------------------------------------------------------------


def test_api_down_then_back(caplog: pytest.LogCaptureFixture) -> None:
    """Connection refused: onepin_up 0, last good data kept, one error line; back by itself."""
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        assert_all_up(before, wids)
        mark = rig.mark()
        api.down()
        for _ in range(3):
            text = rig.scrape()
            assert value(text, "onepin_up") == 0
            assert ups(text) == dict.fromkeys(wids, 0.0), "every workflow is stale while down"
            assert series(text, "onepin_exporter_build_info")
            assert_unchanged(before, text, wids)  # last good data, within stale_after
        assert requests_sent(text, "error") >= 3, "refused connections are counted as 'error'"
        down = rig.matching("API unreachable", mark, logging.ERROR)
        assert len(down) == 1, f"one error line for the outage, got {down}"
        assert "connection failed" in down[0]
        assert rig.lines(mark) == down, "nothing else is logged while the API is down"
        mark = rig.mark()
        api.up()
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        assert rig.matching("API reachable again", mark, logging.INFO)
        assert not rig.lines(mark)


def test_api_down_from_start_then_up(caplog: pytest.LogCaptureFixture) -> None:
    """Started against a port that refuses: ready, onepin_up 0 and no workflow series; then up."""
    fake = FakeOnePin(standard_workspace())
    api = FaultServer(fake).start(listening=False)
    try:
        with exporter(api.url, caplog) as rig:
            for _ in range(2):
                text = rig.scrape()
                assert value(text, "onepin_up") == 0
                assert not series(text, "onepin_workflow_up"), "no data yet: no workflow series"
            assert len(rig.matching("API unreachable", 0, logging.ERROR)) == 1
            api.up()
            assert_all_up(rig.scrape(), list(fake.workflows))
    finally:
        api.stop()


@pytest.mark.parametrize("fault", [Hang(), Drip(interval=0.3)], ids=["hang", "drip"])
def test_api_hanging_past_the_deadline(caplog: pytest.LogCaptureFixture, fault: Action) -> None:
    """List Workflows never finishes: each scrape still answers in time, onepin_up 0.

    Two scrapers with different timeouts (an HA pair, or scrape_timeout changed) see the same
    problem: it is one problem, so one log line.
    """
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        api.script.append(on_path("/workflows", fault))
        for timeout in (2.0, 3.0, 2.0):
            text = rig.scrape(timeout)
            assert value(text, "onepin_up") == 0
            assert ups(text) == dict.fromkeys(wids, 0.0)
            assert_unchanged(before, text, wids)
        assert requests_sent(text, "error") >= 3, "timed-out requests are counted as 'error'"
        api.script.clear()
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        lines = rig.matching("API unreachable", mark)
        assert len(lines) == 1, f"one line for one hanging API, got {len(lines)}: {lines}"
        assert "no answer" in lines[0], lines[0]


@pytest.mark.parametrize("fault", [Hang(), Drip(interval=0.3)], ids=["hang", "drip"])
def test_one_workflow_hanging_leaves_the_others_intact(
    caplog: pytest.LogCaptureFixture, fault: Action
) -> None:
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != HIT]
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        api.script.append(on_path(HIT_STATUS, fault))
        for timeout in (2.0, 3.0, 2.0):
            text = rig.scrape(timeout)
            assert value(text, "onepin_up") == 1
            assert ups(text) == {**dict.fromkeys(others, 1.0), HIT: 0.0}
            assert_unchanged(before, text, wids)  # HIT too: its last good data is served
        api.script.clear()
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        lines = rig.matching("not refreshed", mark)
        assert len(lines) == 1, f"one line for one hanging workflow, got {len(lines)}: {lines}"
        assert HIT in lines[0] and "get_run_status" in lines[0]
        assert rig.matching("workflow recovered", mark, logging.INFO)


def test_start_up_against_a_hanging_api_answers_scrapes_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The exporter starts while the API hangs: its first scrapes must still say onepin_up 0."""
    fake = FakeOnePin(standard_workspace())
    with FaultServer(fake) as api:
        api.script.append(on_path("/workflows", Hang()))
        with exporter(api.url, caplog, wait_ready=False) as rig:
            text = rig.scrape()
            assert value(text, "onepin_up") == 0, "onepin_up must be 0, not absent"


# --- 5xx bursts ---------------------------------------------------------------------------------


def test_a_5xx_burst_shorter_than_the_retries_is_absorbed(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        burst = Burst(HIT_STATUS, 2, Reply(503, error_body("SERVER_ERROR", "busy"), JSON_TYPE))
        api.script.append(burst)
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        assert value(text, "onepin_api_requests_total", endpoint="get_run_status", code="503") == 2
        assert not rig.lines(mark), "a burst that retries absorb is not worth a log line"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_burst_marks_only_its_workflow_and_clears(
    caplog: pytest.LogCaptureFixture, status: int
) -> None:
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != HIT]
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        # Three scrapes' worth of failures (each scrape tries 1 + max_retries times).
        api.script.append(Burst(HIT_STATUS, 9, Reply(status, error_body("SERVER_ERROR", "oops"))))
        for _ in range(3):
            text = rig.scrape()
            assert value(text, "onepin_up") == 1
            assert ups(text) == {**dict.fromkeys(others, 1.0), HIT: 0.0}
            assert_unchanged(before, text, wids)
        sent = value(text, "onepin_api_requests_total", endpoint="get_run_status", code=str(status))
        assert sent == 9
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        lines = rig.matching("not refreshed", mark)
        assert len(lines) == 1, f"one line for the burst, got {lines}"
        assert f"HTTP {status}" in lines[0] and HIT in lines[0]


def test_a_5xx_storm_of_mixed_codes_is_one_problem(caplog: pytest.LogCaptureFixture) -> None:
    """500, 502, 503, 504 in turn, as a load balancer in trouble answers: one problem, one line."""
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    codes = iter([500, 502, 503, 504] * 10)
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        api.script.append(
            on_path(HIT_STATUS, lambda: Reply(next(codes), error_body("SERVER_ERROR", "oops")))
        )
        for _ in range(4):
            text = rig.scrape()
            assert value(text, "onepin_workflow_up", workflow_id=HIT) == 0
            assert_unchanged(before, text, wids)
        api.script.clear()
        assert_all_up(rig.scrape(), wids)
        lines = rig.matching("not refreshed", mark)
        assert len(lines) == 1, f"one 5xx storm, {len(lines)} lines: {lines}"


@contextmanager
def simulator() -> Iterator[RunningSimulator]:
    """The built-in simulator on a manual clock: its data stands still while faults come and go."""
    with RunningSimulator(SimulatorConfig(workflows=6, seed=3, clock="manual")) as sim:
        yield sim


def test_simulator_5xx_storm_gives_onepin_up_0_and_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with simulator() as sim, exporter(sim.url, caplog, token=sim.token) as rig:
        before = rig.scrape()
        wids = sorted(ups(before))
        assert_all_up(before, wids)
        mark = rig.mark()
        sim.faults.update({"error_rate": 1.0})
        for _ in range(3):
            text = rig.scrape()
            assert value(text, "onepin_up") == 0
            assert_unchanged(before, text, wids)
        sim.faults.update({"error_rate": 0.0})
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        lines = rig.matching("API unreachable", mark)
        assert len(lines) == 1, (
            f"a 5xx storm over 3 scrapes is one problem, logged {len(lines)} times: {lines}"
        )


# --- 429 storms ---------------------------------------------------------------------------------


def http_date(seconds_ahead: float) -> str:
    return email.utils.format_datetime(
        datetime.now(UTC) + timedelta(seconds=seconds_ahead), usegmt=True
    )


# Longer than a scrape's deadline, short enough to wait out in a test. The date is made for
# each answer, as an API makes it, and has whole seconds: 4 s ahead is at least 3 s. (A date
# fixed when the storm started had passed by the second scrape on a loaded machine, and the
# exporter rightly retried at once: 4 requests.)
RETRY_AFTER_LONG: dict[str, Callable[[], dict[str, str]]] = {
    "seconds": lambda: {"Retry-After": "3"},
    "http-date": lambda: {"Retry-After": http_date(4)},
    "absent": lambda: {},
}


@pytest.mark.parametrize("form", list(RETRY_AFTER_LONG))
def test_a_429_storm_gives_onepin_up_0_within_the_deadline(
    caplog: pytest.LogCaptureFixture, form: str
) -> None:
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        storm = Burst(
            "/workflows",
            10**6,
            lambda: Reply(429, error_body("RATE_LIMITED", "slow down"), RETRY_AFTER_LONG[form]()),
        )
        api.script.append(storm)
        for _ in range(2):
            text = rig.scrape()
            assert value(text, "onepin_up") == 0
            assert ups(text) == dict.fromkeys(wids, 0.0)
            assert_unchanged(before, text, wids)
        sent = value(text, "onepin_api_requests_total", endpoint="list_workflows", code="429")
        if form == "absent":
            # No Retry-After: exponential backoff, 1 + max_retries tries within each deadline.
            assert sent == 6, f"{sent} requests in 2 scrapes, expected 3 each"
        else:
            # Told to wait past the deadline: give up at once, no retry within a scrape.
            assert sent in (1, 2), f"{sent} requests: a Retry-After past the deadline ignored"
        api.script.clear()
        # Back once the API answers again and its Retry-After has passed.
        text = rig.scrape_until(lambda t: value(t, "onepin_up") == 1, within=10)
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        lines = rig.matching("API unreachable", mark)
        assert len(lines) == 1, lines
        assert "HTTP 429" in lines[0] and "RATE_LIMITED" in lines[0]


@pytest.mark.parametrize(
    ("form", "header", "least"),
    [("seconds", lambda: "1", 0.95), ("http-date", lambda: http_date(2), 0.95)],
)
def test_a_429_whose_retry_after_fits_the_deadline_is_waited_for_then_retried(
    caplog: pytest.LogCaptureFixture, form: str, header: Callable[[], str], least: float
) -> None:
    fake = FakeOnePin(standard_workspace())
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        rig.scrape()
        mark = rig.mark()
        wait = {"Retry-After": header()}
        burst = Burst("/workflows", 1, Reply(429, error_body("RATE_LIMITED", "wait"), wait))
        api.script.append(burst)
        text = rig.scrape(4.0)
        assert_all_up(text, list(fake.workflows))
        assert len(burst.hits) == 2, f"{len(burst.hits)} List Workflows requests"
        waited = burst.hits[1] - burst.hits[0]
        assert waited >= least, f"retried after {waited:.2f}s, before Retry-After ({form})"
        assert not rig.lines(mark)


def test_a_429_retry_after_is_honoured_across_scrapes(caplog: pytest.LogCaptureFixture) -> None:
    """Told to come back in 30s, the exporter must not ask again at the next scrapes."""
    fake = FakeOnePin(standard_workspace())
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        rig.scrape()
        storm = Burst(
            "/workflows",
            10**6,
            Reply(429, error_body("RATE_LIMITED", "quota"), {"Retry-After": "30"}),
        )
        api.script.append(storm)
        for _ in range(3):
            assert value(rig.scrape(), "onepin_up") == 0
        assert len(storm.hits) == 1, (
            f"{len(storm.hits)} requests within 30s of a 429 saying Retry-After: 30; each one "
            "spends the quota the API asked us to leave alone"
        )


# --- bodies that are not what they claim -------------------------------------------------------

HTML_PAGE = b"<!doctype html><html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
BAD_BODIES: dict[str, tuple[Action, str]] = {
    "truncated-json": (Reply(200, b'{"data": {"id": "r-run-2", "run_nu', JSON_TYPE), "not JSON"),
    "cut-connection": (
        Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n"
            b'Connection: close\r\n\r\n{"data": {"id": '),
        "connection failed",
    ),
    "plain-text": (Reply(200, b"OK", {"Content-Type": "text/plain"}), r"not JSON \(text/plain"),
    "empty": (Reply(200, b"", JSON_TYPE), "no 'data' field"),
    "html-200": (Reply(200, HTML_PAGE, {"Content-Type": "text/html"}), r"not JSON \(text/html"),
    "html-502": (Reply(502, HTML_PAGE, {"Content-Type": "text/html"}), r"HTTP 502 .*text/html"),
    "json-list": (Reply(200, b"[1, 2, 3]", JSON_TYPE), "no 'data' field"),
    "json-null": (Reply(200, b"null", JSON_TYPE), "no 'data' field"),
    "data-null": (Reply(200, b'{"data": null}', JSON_TYPE), "expected an object|not a list"),
    "invalid-utf8": (Reply(200, b'{"data": "\xff\xfe"}', JSON_TYPE), "not JSON"),
}  # fmt: skip
# JSON without a readable run record: issue "Trust" asks that the run be read from its List Runs
# item instead, the workflow staying up (it used to be marked down while the fault lasted).
UNUSABLE_RECORDS = {"empty", "json-list", "json-null", "data-null"}


@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_a_bad_body_for_one_workflow_marks_only_it(
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    action, reason = BAD_BODIES[kind]
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != HIT]
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        api.script.append(on_path(HIT_STATUS, action))
        unusable = kind in UNUSABLE_RECORDS
        for _ in range(2):
            text = rig.scrape()
            assert value(text, "onepin_up") == 1
            assert ups(text) == {**dict.fromkeys(others, 1.0), HIT: 1.0 if unusable else 0.0}
            assert_unchanged(before, text, others if unusable else wids)
        api.script.clear()
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        lines = rig.matching("left out" if unusable else "not refreshed", mark)
        assert len(lines) == 1, lines
        assert re.search(reason, lines[0]), f"unclear: {lines[0]!r} (expected /{reason}/)"


@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_a_bad_body_for_list_workflows_gives_onepin_up_0(
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    action, reason = BAD_BODIES[kind]
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        api.script.append(on_path("/workflows", action))
        for _ in range(2):
            text = rig.scrape()
            assert value(text, "onepin_up") == 0
            assert_unchanged(before, text, wids)
        api.script.clear()
        assert_all_up(rig.scrape(), wids)
        lines = rig.matching("API unreachable", mark)
        assert len(lines) == 1, lines
        assert re.search(reason, lines[0]), f"unclear: {lines[0]!r} (expected /{reason}/)"


# --- fields of the wrong type --------------------------------------------------------------------

# What a value that is not what the docs say costs (issues 11 and 16; tests/test_models.py has
# every field): the SDK's lenient reading where it has one ("read": nothing lost, nothing logged),
# else that one field absent ("absent"), or, for a required field, the item: a Get Run Status or
# catalogue entry that cannot be read marks its workflow down ("down"), a List Runs item that
# cannot be read is left out and the rest of the list kept ("skipped").
READ, ABSENT, DOWN, SKIPPED = "read", "absent", "down", "skipped"


def assert_logged_as(outcome: str, lines: list[str], field: str) -> None:
    """A workflow marked down is logged once, naming the field; a value read leniently is not
    logged; an absent field or a skipped item at most once, naming the field (the poller logs
    `problems` and `Page.bad` once per workflow and field), and never as a failure."""
    if outcome == DOWN:
        assert len(lines) == 1, lines
        assert field in lines[0], lines[0]
    elif outcome == READ:
        assert not lines, lines
    else:
        assert len(lines) <= 1, lines
        assert all(field in line and "not refreshed" not in line for line in lines), lines


# The workflow whose catalogue entry goes bad: an idle one, so only its entry is read.
BAD_WF = "wf-failed"
WORKFLOW_FIELDS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "id": (lambda i: i.update(id=12345), DOWN),
    "name": (lambda i: i.update(name=12345), DOWN),
    "runs_count": (lambda i: i.update(runs_count="12"), READ),
    "last_run_at": (lambda i: i.update(last_run_at=1795950000), READ),
    "last_run_at-not-iso": (lambda i: i.update(last_run_at="yesterday"), ABSENT),
    "last_run_status": (lambda i: i.update(last_run_status=3), ABSENT),
    "run_status_counts": (lambda i: i.update(run_status_counts=[1, 2]), ABSENT),
    "run_status_counts.failed": (lambda i: i["run_status_counts"].update(failed="one"), ABSENT),
}


@pytest.mark.parametrize("field", list(WORKFLOW_FIELDS))
def test_a_wrong_type_in_one_catalogue_entry_marks_only_that_workflow(
    caplog: pytest.LogCaptureFixture, field: str
) -> None:
    """Design §6: a field of the wrong type costs at most that workflow; the rest is intact."""
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != BAD_WF]
    mutate, outcome = WORKFLOW_FIELDS[field]
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        api.script.append(patched(fake, "/workflows", lambda b: mutate(item(b, BAD_WF))))
        for _ in range(2):
            text = rig.scrape()
            assert value(text, "onepin_up") == 1, (
                f"one bad catalogue entry ({field}) took the whole workspace down"
            )
            assert {w: u for w, u in ups(text).items() if w != BAD_WF} == dict.fromkeys(others, 1)
            assert_unchanged(before, text, others)
            if field != "id":  # with its id unreadable, the entry cannot be told apart
                assert ups(text)[BAD_WF] == (0 if outcome == DOWN else 1)
                if outcome in (DOWN, READ):
                    assert_unchanged(before, text, [BAD_WF])  # labels and last good data kept
        api.script.clear()
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, wids)
        lines = rig.lines(mark)
        if field == "id":  # its state is kept (not refreshed) until stale_after: told once
            assert any("missing from the workflow list" in line for line in lines), lines
            lines = [line for line in lines if "missing from the workflow list" not in line]
        assert_logged_as(outcome, lines, field.split(".")[0].removesuffix("-not-iso"))


# field: (the wrong value, what it costs in Get Run Status, in List Runs)
RUN_FIELDS: dict[str, tuple[Any, str, str]] = {
    "id": (12345, DOWN, SKIPPED),
    "run_number": ("2", READ, READ),
    "status": (7, DOWN, SKIPPED),
    "created_at": (1795950000, READ, READ),
    "started_at": ({"at": 1}, ABSENT, ABSENT),
    "started_at-not-iso": ("five minutes ago", ABSENT, ABSENT),
    "completed_at": ([2026], ABSENT, ABSENT),
    "updated_at": (True, ABSENT, ABSENT),
    "total_nodes": ("5", READ, READ),
    "total_steps": ([10], ABSENT, ABSENT),
    "finished_steps": ("4", READ, READ),
    "token_cost": ("100", READ, READ),
    "credits": ("12", READ, READ),
    "usage_summary": ("cpu=12.5", ABSENT, ABSENT),
    "error": ({"message": "boom"}, ABSENT, ABSENT),
    # free-form person info, only ever an opt-in label: tolerated
    "triggered_by": ("Jane Doe", READ, READ),
    "usage_summary.cpu_seconds": ("12.5", READ, READ),
}


def _set_field(run: dict[str, Any], field: str, wrong: Any) -> None:
    key = field.removesuffix("-not-iso")
    if "." in key:
        outer, inner = key.split(".")
        run[outer][inner] = wrong
    else:
        run[key] = wrong


@pytest.mark.parametrize("endpoint", ["get_run_status", "list_runs"])
@pytest.mark.parametrize("field", list(RUN_FIELDS))
def test_a_wrong_type_in_a_run_marks_only_its_workflow(
    caplog: pytest.LogCaptureFixture, field: str, endpoint: str
) -> None:
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != HIT]
    wrong, in_status, in_list = RUN_FIELDS[field]
    outcome = in_status if endpoint == "get_run_status" else in_list
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        if endpoint == "get_run_status":
            script = patched(fake, HIT_STATUS, lambda b: _set_field(b["data"], field, wrong))
        else:
            # A new run makes the workflow list its runs again; its list item is the bad one.
            fake.workflows[HIT].runs.append(
                FakeRun("r-run-3", 3, "running", created_at="2026-11-29T11:58:00Z")
            )
            script = patched(
                fake, f"/{HIT}/runs", lambda b: _set_field(item(b, "r-run-3"), field, wrong)
            )
        api.script.append(script)
        for _ in range(2):
            text = rig.scrape()
            assert value(text, "onepin_up") == 1
            # Issue "Trust": an unusable status record is read from the run's List Runs item and
            # a bad List Runs item is left out alone: the workflow stays up either way.
            expected = 1.0
            assert ups(text) == {**dict.fromkeys(others, 1.0), HIT: expected}
            assert_unchanged(before, text, others)
        api.script.clear()
        text = rig.scrape()
        assert_all_up(text, wids)
        assert_unchanged(before, text, others)
        lines = rig.lines(mark)
        assert_logged_as(outcome, lines, field.split(".")[0].removesuffix("-not-iso"))


HUGE = 10**400  # a JSON number no float can hold
Locate = Callable[[dict[str, Any]], dict[str, Any]]
# field: (workflow, request path suffix, where the field sits in the body, its key)
TOO_BIG: dict[str, tuple[str, str, Locate, str]] = {
    "run_number": (HIT, HIT_STATUS, lambda b: b["data"], "run_number"),
    "total_steps": (HIT, HIT_STATUS, lambda b: b["data"], "total_steps"),
    "token_cost": (HIT, HIT_STATUS, lambda b: b["data"], "token_cost"),
    "usage_summary.cpu_seconds": (
        HIT, HIT_STATUS, lambda b: b["data"]["usage_summary"], "cpu_seconds"
    ),
    "runs_count": (BAD_WF, "/workflows", lambda b: item(b, BAD_WF), "runs_count"),
    "run_status_counts.failed": (
        BAD_WF, "/workflows", lambda b: item(b, BAD_WF)["run_status_counts"], "failed"
    ),
    "runs_summary.completed": (BAD_WF, f"/{BAD_WF}/runs/summary", lambda b: b["data"], "completed"),
}  # fmt: skip


@pytest.mark.parametrize("field", list(TOO_BIG))
def test_a_number_too_big_for_a_float_never_breaks_the_scrape(
    caplog: pytest.LogCaptureFixture, field: str
) -> None:
    """`1e400` written out as an integer is valid JSON: it must not turn /metrics into a 500."""
    wid, suffix, locate, key = TOO_BIG[field]
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != wid]
    with FaultServer(fake) as api:
        # From the start: Runs Summary is asked for at the first poll.
        api.script.append(patched(fake, suffix, lambda b: locate(b).update({key: HUGE})))
        with exporter(api.url, caplog, wait_ready=False) as rig:
            faulty = rig.scrape()
            assert value(faulty, "onepin_up") == 1
            assert {w: u for w, u in ups(faulty).items() if w != wid} == dict.fromkeys(others, 1)
            # A required field that cannot be read marks its workflow, unless it is in a status
            # record, which is then read from the run's List Runs item (issue "Trust"); any
            # other such field is absent, and costs only itself.
            required = field == "run_number"
            from_list = suffix == HIT_STATUS
            assert ups(faulty).get(wid) == (0.0 if required and not from_list else 1.0), ups(faulty)
            lines = rig.lines()
            if required:
                assert len(lines) == 1 and key in lines[0], lines
            else:
                assert_logged_as(ABSENT, lines, key)
            api.script.clear()
            fake.workflows[wid].runs.append(FakeRun("r-new", 99, "running"))  # ask again
            text = rig.scrape()
            assert_all_up(text, wids)
            assert_unchanged(faulty, text, others)


def test_a_lone_surrogate_in_a_workflow_name_never_breaks_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """JSON may escape half a UTF-16 pair ("\\ud800"); the exposition must still be UTF-8."""
    fake = FakeOnePin(standard_workspace())
    with FaultServer(fake) as api:
        api.script.append(
            patched(fake, "/workflows", lambda b: item(b, "wf-idle").update(name="idle\ud800"))
        )
        with exporter(api.url, caplog, wait_ready=False) as rig:
            text = rig.scrape()
            assert_all_up(text, list(fake.workflows))
            names = {s.labels["workflow_name"] for s in series(text, "onepin_workflow_info")}
            assert any(n.startswith("idle") for n in names), names


# --- a huge response ------------------------------------------------------------------------------


@pytest.mark.parametrize("declare", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("target", ["workflow", "api"])
def test_a_50mb_body_is_refused_in_bounded_memory(
    caplog: pytest.LogCaptureFixture, declare: bool, target: str
) -> None:
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != HIT]
    suffix = HIT_STATUS if target == "workflow" else "/workflows"
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        mark = rig.mark()
        api.script.append(on_path(suffix, Stream(50 * 1024 * 1024, declare=declare)))
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            text = rig.scrape(5.0)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # A body is read up to the 16 MiB cap at most, never whole.
        assert peak < MAX_BODY_BYTES + 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
        if target == "api":
            assert value(text, "onepin_up") == 0
            assert_unchanged(before, text, wids)
        else:
            assert value(text, "onepin_up") == 1
            assert ups(text) == {**dict.fromkeys(others, 1.0), HIT: 0.0}
            assert_unchanged(before, text, wids)
        api.script.clear()
        assert_all_up(rig.scrape(), wids)
        lines = rig.lines(mark)
        assert len(lines) == 1, lines
        assert "larger than 16 MiB" in lines[0], lines[0]


# --- the API's data changing under the exporter ------------------------------------------------


def test_a_workflow_deleted_between_list_and_status(caplog: pytest.LogCaptureFixture) -> None:
    """Listed, then 404 on its run: marked for that poll; gone from the catalogue: kept (as
    after a page shift, issue "Trust") until collection.stale_after, then its series go."""
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    others = [w for w in wids if w != HIT]
    collection = "{min_interval: 0s, max_duration: 10s, stale_after: 2s}"
    with FaultServer(fake) as api, exporter(api.url, caplog, collection=collection) as rig:
        before = rig.scrape()
        mark = rig.mark()
        gone = Reply(404, error_body("NOT_FOUND", "Workflow not found"), JSON_TYPE)
        api.script.append(lambda r: gone if f"/workflows/{HIT}" in r.url.path else None)
        text = rig.scrape()
        assert value(text, "onepin_up") == 1
        assert ups(text) == {**dict.fromkeys(others, 1.0), HIT: 0.0}
        assert_unchanged(before, text, others)
        del fake.workflows[HIT]  # the catalogue catches up
        api.script.clear()
        text = rig.scrape_until(
            lambda t: not [s for s in samples(t) if s.labels.get("workflow_id") == HIT], 15
        )
        assert_all_up(text, others)
        assert_unchanged(before, text, others)
        lines = rig.lines(mark)
        assert 1 <= len(lines) <= 2, lines
        assert "404" in lines[0] and HIT in lines[0]
        assert all("missing from the workflow list" in line for line in lines[1:]), lines


@pytest.mark.parametrize(
    "fault",
    [Reply(503, error_body("SERVER_ERROR", "busy"), JSON_TYPE), Hang()],
    ids=["5xx", "hang"],
)
def test_a_run_that_finished_while_its_status_failed_is_counted_when_the_api_is_back(
    caplog: pytest.LogCaptureFixture, fault: Action
) -> None:
    """A run finishes between two polls; the poll that lists it cannot read its status (5xx
    past the retries, or no answer before the deadline). It must be counted at the next poll:
    `increase(onepin_workflow_runs_finished_total[...])` is what failure alerts are built on."""
    fake = FakeOnePin(standard_workspace())
    wf = {"workflow_id": "wf-completed"}
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        before = rig.scrape()
        assert value(before, "onepin_workflow_runs_finished_total", status="failed", **wf) == 0
        fake.workflows["wf-completed"].runs.append(
            FakeRun("r-comp-2", 8, "failed", created_at="2026-11-29T11:40:00Z",
                    started_at="2026-11-29T11:41:00Z", completed_at="2026-11-29T11:51:00Z")
        )  # fmt: skip
        api.script.append(Burst("/r-comp-2/status", 3, fault))  # one poll's worth
        text = rig.scrape()
        assert value(text, "onepin_workflow_up", **wf) == 0
        api.script.clear()
        for _ in range(3):
            text = rig.scrape()
            assert value(text, "onepin_workflow_up", **wf) == 1
            finished = value(text, "onepin_workflow_runs_finished_total", status="failed", **wf)
            assert finished == 1, f"the failed run r-comp-2 was counted {finished} times"
        assert value(text, "onepin_workflow_last_run_status", status="failed", **wf) == 1


def test_a_run_going_back_from_terminal_to_running_stays_counted_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeOnePin(standard_workspace())
    run = next(r for r in fake.workflows[HIT].runs if r.id == "r-run-2")
    wf = {"workflow_id": HIT}
    with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
        rig.scrape()
        run.status, run.completed_at, run.finished_steps = "completed", "2026-11-29T11:59:00Z", 10
        text = rig.scrape()
        assert value(text, "onepin_workflow_runs_finished_total", status="completed", **wf) == 1
        mark = rig.mark()
        # The API flaps: the run is running again, then completes a second time. A new run makes
        # the workflow list its runs again, so the exporter does see the flapping run.
        run.status, run.completed_at, run.finished_steps = "running", None, 7
        fake.workflows[HIT].runs.append(FakeRun("r-run-3", 3, "pending", started_at=None))
        for _ in range(2):
            text = rig.scrape()
            assert value(text, "onepin_workflow_runs_finished_total", status="completed", **wf) == 1
            assert not series(text, "onepin_run_status", run_id="r-run-2"), "it is finished"
            assert value(text, "onepin_run_status", run_id="r-run-3", status="pending") == 1
        run.status, run.completed_at = "completed", "2026-11-29T11:59:30Z"
        text = rig.scrape()
        finished = series(text, "onepin_workflow_runs_finished_total", **wf)
        assert sum(s.value for s in finished) == 1, f"counted more than once: {finished}"
        assert value(text, "onepin_workflow_run_duration_seconds_count", **wf) == 1
        assert value(text, "onepin_workflow_up", **wf) == 1
        assert len(rig.lines(mark)) <= 1  # a warning about the flap is fine, once


# --- pagination that lies ------------------------------------------------------------------------


def test_a_pagination_total_far_past_the_catalogue_costs_a_few_requests(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`pagination.total` says 100000, the pages past the 9 workflows are empty (as the API docs
    say to expect: stop at an empty page). One wrong number must not turn a poll into thousands
    of requests (all created at once: 10**9 would exhaust memory), nor hide the workflows."""
    fake = FakeOnePin(standard_workspace())
    wids = list(fake.workflows)
    lie = patched(fake, "/workflows", lambda b: b["pagination"].update(total=100_000))
    try:
        with FaultServer(fake) as api, exporter(api.url, caplog) as rig:
            rig.scrape()
            api.script.append(lie)
            sent_before = fake.count("list_workflows")
            text = rig.scrape()
            sent = fake.count("list_workflows") - sent_before
            assert sent <= 20, f"{sent} List Workflows requests in one poll for 9 workflows"
            assert_all_up(text, wids)
    finally:
        # Thousands of abandoned request tasks would otherwise be collected (and log) at some
        # random later point, even inside the interpreter's parser (a CPython 3.11 SystemError).
        gc.collect()
