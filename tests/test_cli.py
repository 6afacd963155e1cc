"""The command line as an operator meets it: flags, --version, and the errors of a bad start."""

from __future__ import annotations

import asyncio
import errno
import io
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.demo import demo_main
from exporter.listen import ListenAddress, listen_hint
from tests.fakeapi import TOKEN
from tests.procs import REPO, Process, http_get, start_exporter

# A config whose API is a closed port: the exporter still serves its own endpoints.
CONFIG = f"""
workspaces:
  - name: prod
    api_url: http://127.0.0.1:9
    token: {TOKEN}
http: {{timeout: 1s, max_retries: 0}}
"""


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )  # fmt: skip


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another socket listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


# --- errors of a bad start ----------------------------------------------------------------------


def test_one_problem_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("workspaces:\n  - {name: a, api_url: 'https://x.test', token: t}\nhttp: 1\n")
    result = run_cli("--config.check", f"--config.file={path}")
    assert result.returncode == 1
    assert "invalid configuration (1 problem):" in result.stderr, result.stderr


def test_config_check_into_a_closed_pipe_prints_no_traceback(tmp_path: Path) -> None:
    """`--config.check | head -1`: the reader is gone before the summary is written."""
    path = tmp_path / "c.yaml"
    path.write_text(f"workspaces:\n  - {{name: a, api_url: 'https://x.test', token: {TOKEN}}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--config.check", f"--config.file={path}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `head` does once it has its line (here: before any)
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert stderr == ""


def test_a_taken_port_is_named_with_a_hint_and_no_stopped_line(
    tmp_path: Path, taken_port: int
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    result = run_cli(f"--config.file={config}", f"--web.listen-address=127.0.0.1:{taken_port}")
    assert result.returncode == 1
    assert "msg=stopped" not in result.stderr, result.stderr
    assert f"cannot listen on http://127.0.0.1:{taken_port}" in result.stderr
    assert "already in use" in result.stderr and "--web.listen-address" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.EADDRINUSE, "another program, perhaps another exporter, has port 80"),
        (errno.EADDRNOTAVAIL, "not an address of this machine"),
        (errno.EACCES, "below 1024"),
        (errno.ENOMEM, ""),
    ],
)
def test_listen_hints(code: int, words: str) -> None:
    hint = listen_hint(code, ListenAddress("192.0.2.1", 80))
    assert (words in hint) if words else hint == ""


def test_the_demo_says_when_it_takes_another_port(taken_port: int) -> None:
    """Its usual port taken (here: another one, as the demo's own is fixed), the demo says so."""
    out = io.StringIO()

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(
            demo_main([ListenAddress("127.0.0.1", taken_port)], stop, fallback=True, out=out)
        )
        for _ in range(300):  # bounded: 30 s
            if "metrics:" in out.getvalue() or task.done():
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(scenario())
    text = out.getvalue()
    url = re.search(r"metrics:\s+(http://\S+/metrics)", text)
    assert url and f":{taken_port}/" not in url.group(1), text
    assert re.search(rf"port {taken_port} is in use, so the demo took port \d+", text), text


def test_the_demo_on_an_address_given_and_taken_fails_instead(taken_port: int) -> None:
    result = run_cli("--demo", f"--web.listen-address=127.0.0.1:{taken_port}")
    assert result.returncode == 1
    assert "already in use" in result.stderr and "Traceback" not in result.stderr


# --- flags --------------------------------------------------------------------------------------


def test_version_prints_version_python_and_revision() -> None:
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    from exporter import __version__

    head = result.stdout.splitlines()[0]
    match = re.fullmatch(rf"onepin-exporter, version {re.escape(__version__)} \(revision: (.+)\)",
                         head)  # fmt: skip
    assert match, result.stdout
    revision = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    if revision:  # a checkout: the revision is the checkout's
        assert match.group(1).removesuffix("-dirty") == revision
    assert f"python: {sys.version.split()[0]}" in " ".join(result.stdout.split())


def test_log_flags_have_help() -> None:
    out = " ".join(run_cli("--help").stdout.split())
    assert re.search(r"--log\.level \{debug,info,warn,error\}\s+\S+", out)
    assert "one line per API request" in out
    assert re.search(r"--log\.format \{logfmt,json\}\s+\S+", out)


@pytest.mark.parametrize("path", ["metrics", "/", "/-/healthy", "/a b"])
def test_a_bad_telemetry_path_is_a_usage_error(path: str) -> None:
    result = run_cli(f"--web.telemetry-path={path}", "--config.file=x")
    assert result.returncode == 2
    assert "--web.telemetry-path" in result.stderr and "Traceback" not in result.stderr


def test_telemetry_path_moves_the_metrics(tmp_path: Path) -> None:
    proc, url = start_exporter(tmp_path, CONFIG, "--web.telemetry-path=/m")
    try:
        status, body = http_get(f"{url}/m")
        assert status == 200 and "onepin_up{" in body
        assert http_get(f"{url}/metrics")[0] == 404
        _, landing = http_get(f"{url}/")
        assert 'href="/m"' in landing and 'href="/metrics"' not in landing
    finally:
        proc.stop()


def test_disable_exporter_metrics_drops_process_and_python_series(tmp_path: Path) -> None:
    proc, url = start_exporter(tmp_path, CONFIG, "--web.disable-exporter-metrics")
    try:
        _, body = http_get(f"{url}/metrics")
    finally:
        proc.stop()
    names = {line.split("{")[0].split()[0] for line in body.splitlines() if line[:1].isalpha()}
    assert "onepin_up" in names and "onepin_exporter_build_info" in names
    assert not [n for n in names if n.startswith(("process_", "python_"))], sorted(names)
    assert "# HELP process_" not in body and "# HELP python_" not in body


def test_exporter_metrics_are_there_by_default(tmp_path: Path) -> None:
    proc, url = start_exporter(tmp_path, CONFIG)
    try:
        _, body = http_get(f"{url}/metrics")
    finally:
        proc.stop()
    assert "\nprocess_resident_memory_bytes " in body and "\npython_info{" in body


def test_two_listen_addresses_serve_on_both(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(CONFIG)
    exporter = Process(
        "exporter",
        [sys.executable, "-m", "exporter", f"--config.file={config}",
         "--web.listen-address=127.0.0.1:0", "--web.listen-address=127.0.0.1:0"],
        tmp_path,
    )  # fmt: skip
    try:
        pattern = r"msg=listening address=(http://\S+)"
        exporter.wait_output(pattern + r"[\s\S]*" + pattern, timeout=30)
        urls = re.findall(pattern, exporter.output())
        assert len(urls) == 2 and urls[0].startswith("http://127.0.0.1:"), urls
        assert urls[1].startswith("http://127.0.0.1:") and urls[1] != urls[0], urls
        for url in urls:
            status, body = http_get(f"{url}/metrics")
            assert status == 200 and "onepin_up{" in body
    finally:
        exporter.stop()


def test_debug_level_logs_every_api_request(tmp_path: Path) -> None:
    """The runbook's advice: --log.level=debug shows each request (here: refused ones)."""
    proc, _ = start_exporter(tmp_path, CONFIG, "--log.level=debug")
    try:
        line = proc.wait_output(r'msg="api request" method=GET endpoint=list_workflows .*', 30)
    finally:
        proc.stop()
    assert "status=error" in line.group(0) and "attempt=1" in line.group(0), line.group(0)
    assert TOKEN not in proc.output()


def test_the_demo_honours_the_telemetry_path_and_exporter_metrics_flags(tmp_path: Path) -> None:
    demo = Process(
        "demo",
        [sys.executable, "-m", "exporter", "--demo", "--web.listen-address=127.0.0.1:0",
         "--web.telemetry-path=/m", "--web.disable-exporter-metrics"],
        tmp_path,
    )  # fmt: skip
    try:
        url = demo.wait_output(r"metrics:\s+(http://\S+)\n", timeout=30).group(1)
        assert url.endswith("/m"), url
        status, body = http_get(url)
        assert status == 200 and "onepin_exporter_build_info" in body
        assert "process_resident_memory_bytes" not in body
    finally:
        demo.stop()
