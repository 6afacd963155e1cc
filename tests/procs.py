"""Real processes for end-to-end tests: the simulator, the exporter, Prometheus, Alertmanager.

Every process listens on a port the kernel picked (port 0, read back from /proc, or printed by
the process itself); every wait is bounded and says what it waited for when it gives up.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


class ProcessExited(AssertionError):
    """A process a test waits on has died: waiting longer cannot help."""


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2
) -> T:
    """Call `probe` until it returns something other than None/False; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = probe()
            if result is not None and result is not False:
                return result
        except ProcessExited:
            raise
        except Exception as exc:  # the probed thing may not be up yet
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


class Process:
    """A child process whose output goes to a log file (no pipe can fill up and block it)."""

    def __init__(
        self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            # The package from this checkout, whether or not it is installed.
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_output(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        def probe() -> re.Match[str] | None:
            if self.proc.poll() is not None:
                raise ProcessExited(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-3000:]}"
                )
            return re.search(pattern, self.output())

        return wait_for(f"{self.name} to print {pattern!r}", probe, timeout)

    def listening_port(self, timeout: float = 60.0) -> int:
        """The TCP port this process listens on, read from /proc (it was started on port 0)."""
        return wait_for(f"{self.name} to listen", lambda: _listening_port(self.proc.pid), timeout)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._log.close()
        return self.proc.returncode


def _listening_port(pid: int) -> int | None:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                return int(fields[1].rsplit(":", 1)[1], 16)
    return None


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def start_simulator(workdir: Path, token: str, *args: str) -> tuple[Process, str]:
    proc = Process(
        "simulator",
        [sys.executable, "-m", "exporter.simulator", "--listen=127.0.0.1:0", f"--token={token}",
         *args],
        workdir,
    )  # fmt: skip
    url = proc.wait_output(r"listening on (http://\S+)").group(1)
    return proc, url


def start_exporter(workdir: Path, config_text: str, *args: str) -> tuple[Process, str]:
    config = workdir / "exporter.yaml"
    config.write_text(config_text)
    proc = Process(
        "exporter",
        [sys.executable, "-m", "exporter", f"--config.file={config}",
         "--web.listen-address=127.0.0.1:0", *args],
        workdir,
    )  # fmt: skip
    # logfmt or JSON (--log.format=json)
    found = proc.wait_output(
        r'msg=listening address=(http://\S+)|"msg": "listening", "address": "(http://[^"]+)"'
    )
    return proc, found.group(1) or found.group(2)


def scrape_every_second(exporter_url: str, **extra: Any) -> dict[str, Any]:
    """A Prometheus config that scrapes the exporter (job "onepin") and evaluates rules every
    second; `extra` adds top-level keys (rule_files, alerting)."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        **extra,
        "scrape_configs": [
            {
                "job_name": "onepin",
                "static_configs": [{"targets": [exporter_url.removeprefix("http://")]}],
            }
        ],
    }


class Prometheus:
    """A real Prometheus server with its own data dir, scraping what the test says."""

    def __init__(self, binary: str, workdir: Path, config: dict[str, Any], *flags: str) -> None:
        """`flags` are more command line flags (--enable-feature=...)."""
        self.workdir = workdir / "prometheus"
        self.workdir.mkdir()
        (self.workdir / "prometheus.yml").write_text(json.dumps(config, indent=1))
        self.process = Process(
            "prometheus",
            [
                binary,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--web.listen-address=127.0.0.1:0",
                "--rules.alert.resend-delay=1s",
                "--rules.alert.for-grace-period=1s",
                "--log.level=warn",
                *flags,
            ],
            self.workdir,
        )
        self.url = f"http://127.0.0.1:{self.process.listening_port()}"
        wait_for("prometheus to be ready", lambda: http_get(f"{self.url}/-/ready")[0] == 200)

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, body = http_get(
            f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        )
        data = json.loads(body)
        if status != 200 or data.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {status} {body[:500]}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def wait_query(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until `expr` returns at least one series."""
        return wait_for(
            f"PromQL {expr!r} to return data", lambda: self.query(expr) or None, timeout
        )

    def query_range(
        self, expr: str, start: float, end: float, step: float = 1.0
    ) -> list[dict[str, Any]]:
        """A range query, as Grafana runs a time series panel: series with their values."""
        status, body = http_get(
            f"{self.url}/api/v1/query_range?"
            + urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        )
        data = json.loads(body)
        if status != 200 or data.get("status") != "success":
            raise AssertionError(f"range query {expr!r} failed: {status} {body[:500]}")
        result: list[dict[str, Any]] = data["data"]["result"]
        return result

    def stop(self) -> None:
        self.process.stop()


# --- additions for the dashboard and alerting end-to-end tests ---------------------------------


def http_post_json(url: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
    """POST a JSON body; the status and the decoded JSON answer (None if the body is empty)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    return status, json.loads(text) if text.strip() else None


class Alertmanager:
    """A real Alertmanager with its own data dir, gossip off, on a port the kernel picked."""

    def __init__(self, binary: str, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir / "alertmanager"
        self.workdir.mkdir()
        (self.workdir / "alertmanager.yml").write_text(json.dumps(config, indent=1))
        self.process = Process(
            "alertmanager",
            [
                binary,
                f"--config.file={self.workdir / 'alertmanager.yml'}",
                f"--storage.path={self.workdir / 'data'}",
                "--web.listen-address=127.0.0.1:0",
                # Empty: no cluster, so the web port is the only one it listens on.
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            self.workdir,
        )
        self.address = f"127.0.0.1:{self._port()}"
        self.url = f"http://{self.address}"
        wait_for("alertmanager to be ready", lambda: http_get(f"{self.url}/-/ready")[0] == 200)

    def _port(self, timeout: float = 60.0) -> int:
        """Like Process.listening_port, but a bad flag or config fails at once, with the log."""
        proc = self.process

        def probe() -> int | None:
            if proc.proc.poll() is not None:
                raise ProcessExited(
                    f"alertmanager exited with {proc.proc.returncode}:\n{proc.output()[-3000:]}"
                )
            return _listening_port(proc.proc.pid)

        return wait_for("alertmanager to listen", probe, timeout)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds now (API v2)."""
        status, body = http_get(f"{self.url}/api/v2/alerts")
        if status != 200:
            raise AssertionError(f"alertmanager /api/v2/alerts: {status} {body[:500]}")
        result: list[dict[str, Any]] = json.loads(body)
        return result

    def stop(self) -> None:
        self.process.stop()
