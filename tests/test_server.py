"""The HTTP server end to end in-process: /metrics formats, deadline header, health, landing."""

from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator

import pytest

from exporter.deadline import ScrapeDeadline, answer_time, scrape_deadline
from exporter.logs import setup_logging
from tests.background import BackgroundExporter
from tests.fakeapi import TOKEN, FakeOnePin, standard_workspace
from tests.helpers import make_config, series, value


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def exporter() -> Iterator[tuple[BackgroundExporter, FakeOnePin]]:
    fake = FakeOnePin(standard_workspace())
    with BackgroundExporter(make_config(), transport=fake.transport()) as running:
        yield running, fake


def wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get(f"{url}/-/ready")[0] == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"{url}/-/ready did not turn 200 within {timeout}s")


def test_metrics_in_text_format(exporter: tuple[BackgroundExporter, FakeOnePin]) -> None:
    running, _ = exporter
    status, headers, body = get(f"{running.url}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert value(text, "onepin_up", workspace="prod") == 1
    assert series(text, "process_resident_memory_bytes")


def test_metrics_in_openmetrics_and_gzip(exporter: tuple[BackgroundExporter, FakeOnePin]) -> None:
    running, _ = exporter
    status, headers, body = get(
        f"{running.url}/metrics",
        {"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"},
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(body).decode()
    assert text.endswith("# EOF\n")
    assert "onepin_workflow_runs_finished_total{" in text


def test_gzip_only_when_asked_and_the_same_series_either_way(
    exporter: tuple[BackgroundExporter, FakeOnePin],
) -> None:
    """A gzipped body is one gzip member (zlib-based clients read no further) of the same text."""
    running, _ = exporter
    wait_ready(running.url)
    _, plain_headers, plain = get(f"{running.url}/metrics")
    _, gzip_headers, body = get(f"{running.url}/metrics", {"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in plain_headers
    assert gzip_headers["Content-Encoding"] == "gzip"
    assert plain_headers["Vary"] == gzip_headers["Vary"] == "Accept, Accept-Encoding"
    inflater = zlib.decompressobj(31)
    text = inflater.decompress(body)
    assert inflater.eof and not inflater.unused_data

    def keys(exposition: bytes) -> list[bytes]:  # each sample line without its value
        lines = exposition.splitlines()
        return [line.rsplit(b" ", 1)[0] for line in lines if line.startswith(b"onepin_workflow")]

    assert keys(text) == keys(plain) and keys(plain)


def test_scrape_timeout_header_sets_the_poll_deadline(
    exporter: tuple[BackgroundExporter, FakeOnePin],
) -> None:
    running, _ = exporter
    wait_ready(running.url)
    _, _, body = get(f"{running.url}/metrics", {"X-Prometheus-Scrape-Timeout-Seconds": "3"})
    assert value(body.decode(), "onepin_exporter_poll_deadline_seconds") == pytest.approx(2.5, 0.05)


@pytest.mark.parametrize(
    ("header", "cap", "poll", "wait"),
    [
        ("10", 30, 9.5, 9.5 + 0.5 / 3),
        ("1", 30, 0.75, 0.75 + 0.25 / 3),
        ("0.5", 30, 0.375, 0.375 + 0.125 / 3),
        (None, 30, 9.5, 9.5 + 0.5 / 3),
        ("garbage", 30, 9.5, 9.5 + 0.5 / 3),
        ("nan", 30, 9.5, 9.5 + 0.5 / 3),
        ("-1", 30, 9.5, 9.5 + 0.5 / 3),
        ("60", 30, 30, 30 + 0.5 / 3),
    ],
)
def test_scrape_deadline_leaves_a_margin_and_respects_the_cap(
    header: str | None, cap: float, poll: float, wait: float
) -> None:
    """The poll ends a margin before the scrape timeout; the wait for it ends within the margin."""
    assert scrape_deadline(header, cap) == ScrapeDeadline(pytest.approx(poll), pytest.approx(wait))


@pytest.mark.parametrize(
    ("header", "last_answer", "poll"),
    [
        ("10", None, 8.0),  # nothing measured yet: a fifth of the timeout
        ("10", 0.0, 9.5),
        ("10", 0.3, 9.5),  # an answer that fits in the margin takes nothing more
        ("10", 1.6, 10 - 1.6 * 1.5),  # 20,000 workflows: 1.5 x the answer instead of the margin
        ("10", 30.0, 5.0),  # the poll keeps half the timeout
        ("1", 0.5, 0.5),
        ("2", 0.5, 2 - 0.5 * 1.5),
    ],
)
def test_the_poll_leaves_time_for_an_answer_that_took_longer_than_the_margin(
    header: str, last_answer: float | None, poll: float
) -> None:
    """A big exposition takes longer to render and send than the margin: the poll then ends
    earlier, so that the answer still arrives within the scrape timeout."""
    deadline = scrape_deadline(header, 30.0, last_answer)
    assert deadline.poll == pytest.approx(poll)
    assert deadline.wait - deadline.poll == pytest.approx(min(0.5, float(header) / 4) / 3)


@pytest.mark.parametrize(
    ("previous", "took", "remembered"),
    [(None, 1.2, 1.2), (1.0, 1.2, 1.2), (2.0, 1.0, 1.6), (1.6, 1.0, 1.28), (0.1, 0.0, 0.08)],
)
def test_a_slow_answer_is_reserved_for_over_the_next_scrapes(
    previous: float | None, took: float, remembered: float
) -> None:
    """One answer slower than the others (a collector pause, a cold start's new details) is
    not forgotten at the next, quicker one: it fades over a few scrapes."""
    assert answer_time(previous, took) == pytest.approx(remembered)


def test_health_ready_and_landing_page(exporter: tuple[BackgroundExporter, FakeOnePin]) -> None:
    running, _ = exporter
    assert get(f"{running.url}/-/healthy")[0] == 200
    wait_ready(running.url)
    status, headers, body = get(f"{running.url}/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "OnePin exporter" in page and "prod" in page and 'href="/metrics"' in page
    assert "9 of 9 refreshed" in page
    assert headers["Cache-Control"] == "no-store"  # its ages are true when rendered, not later
    assert TOKEN not in page


def test_token_never_appears_in_debug_logs_metrics_or_pages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("debug", "logfmt", lambda: [])  # no redaction: prove nothing logs the token
    try:
        fake = FakeOnePin(standard_workspace())
        bad = "op_live_BADtoken0123456789abcdefghijk"
        config = make_config(
            extra_workspace_yaml=f"  - {{name: other, api_url: 'https://api.onepin.test', "
            f"token: {bad}}}\n"
        )
        with BackgroundExporter(config, transport=fake.transport()) as running:
            wait_ready(running.url)
            pages = [get(f"{running.url}{p}")[2].decode() for p in ("/metrics", "/", "/-/ready")]
        logged = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert "API unreachable or key rejected" in logged  # the bad key was logged, without itself
    for text in [logged, *pages]:
        assert TOKEN not in text and bad not in text


def test_help_works_as_module_and_console_script() -> None:
    result = subprocess.run([sys.executable, "-m", "exporter", "--help"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0 and "--config.file" in result.stdout
    script = shutil.which("onepin-exporter")
    if script is None:
        pytest.skip("onepin-exporter is not installed (pip install .)")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--web.listen-address" in result.stdout


def test_bad_flags_are_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--web.listen-address=nonsense", "--config.file=x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "invalid listen address" in result.stderr and "Traceback" not in result.stderr
