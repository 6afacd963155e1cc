"""Reload without restart: SIGHUP and POST /-/reload re-read the config and the web config; a
broken file keeps the running configuration and says so in a metric and the log.

The exporter runs as a real process (the signal goes to its PID) against the fake API served on
a loopback socket (tests/faultserver.py).
"""

from __future__ import annotations

import signal
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest

from tests.fakeapi import TOKEN, FakeOnePin, standard_workspace
from tests.faultserver import FaultServer
from tests.helpers import require_binary, value
from tests.procs import Process, http_get, start_exporter, wait_for

RELOAD_OK = "onepin_exporter_config_last_reload_successful"
RELOAD_TIME = "onepin_exporter_config_last_reload_success_timestamp_seconds"


def config_text(api_url: str, exclude: str = "[]", workspace: str = "prod") -> str:
    return f"""
workspaces:
  - name: {workspace}
    api_url: {api_url}
    token: {TOKEN}
    discovery: {{exclude: {exclude}}}
http: {{timeout: 5s, max_retries: 0}}
collection: {{min_interval: 0s}}
"""


@pytest.fixture
def api() -> Iterator[FaultServer]:
    with FaultServer(FakeOnePin(standard_workspace())) as server:
        yield server


def scrape(url: str) -> str:
    status, text = http_get(f"{url}/metrics")
    assert status == 200, text[:300]
    return text


def exported(url: str, workflow_id: str) -> bool:
    return f'workflow_id="{workflow_id}"' in scrape(url)


def post(url: str, data: bytes = b"") -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def completed_of(url: str, workflow_id: str) -> float | None:
    return value(scrape(url), "onepin_workflow_runs_finished_total", workflow_id=workflow_id,
                 status="completed")  # fmt: skip


def test_sighup_applies_a_changed_config_in_the_same_process_and_counters_carry_on(
    tmp_path: Path, api: FaultServer
) -> None:
    proc, url = start_exporter(tmp_path, config_text(api.url))
    try:
        wait_for("wf-running's run 2 active", lambda: "r-run-2" in scrape(url), timeout=30)
        # A run finishes while the exporter watches: counted once (a finish seen at start-up,
        # or by a fresh exporter, is history and not counted).
        run = api.fake.workflows["wf-running"].runs[1]
        run.status, run.completed_at = "completed", "2026-11-29T12:00:00Z"
        wait_for("the finish counted", lambda: completed_of(url, "wf-running") == 1, timeout=30)
        before = value(scrape(url), RELOAD_TIME)
        assert value(scrape(url), RELOAD_OK) == 1 and before

        (tmp_path / "exporter.yaml").write_text(config_text(api.url, "['^translate$']"))
        pid = proc.proc.pid
        proc.proc.send_signal(signal.SIGHUP)
        wait_for("wf-cancelled (translate) no longer exported",
                 lambda: not exported(url, "wf-cancelled"), timeout=30)  # fmt: skip
        text = scrape(url)
        assert proc.proc.poll() is None and proc.proc.pid == pid
        assert value(text, RELOAD_OK) == 1
        assert (value(text, RELOAD_TIME) or 0) > before
        assert exported(url, "wf-failed")
        assert completed_of(url, "wf-running") == 1, "the counter did not carry on"
        assert 'msg="configuration reloaded" trigger=SIGHUP' in proc.output()
    finally:
        proc.stop()
    assert "Traceback" not in proc.output() and TOKEN not in proc.output()


def test_a_broken_config_keeps_the_running_one_and_sets_the_metric_to_0(
    tmp_path: Path, api: FaultServer
) -> None:
    proc, url = start_exporter(tmp_path, config_text(api.url))
    config = tmp_path / "exporter.yaml"
    try:
        wait_for("the first poll", lambda: exported(url, "wf-cancelled"), timeout=30)
        config.write_text(config_text(api.url).replace("min_interval: 0s", "min_interval: soon"))
        proc.proc.send_signal(signal.SIGHUP)
        wait_for("the reload metric 0", lambda: value(scrape(url), RELOAD_OK) == 0, timeout=30)
        assert exported(url, "wf-cancelled") and value(scrape(url), "onepin_up") == 1
        line = proc.wait_output(r'msg="configuration reload failed.*', timeout=5).group(0)
        assert "collection.min_interval: expected a duration" in line, line
        assert proc.proc.poll() is None

        config.write_text(config_text(api.url, workspace="renamed"))
        proc.proc.send_signal(signal.SIGHUP)
        wait_for("the reload metric 1", lambda: value(scrape(url), RELOAD_OK) == 1, timeout=30)
        renamed_up = lambda: value(scrape(url), "onepin_up", workspace="renamed") == 1  # noqa: E731
        wait_for("the renamed workspace", renamed_up, timeout=30)
        assert value(scrape(url), "onepin_up", workspace="prod") is None
    finally:
        proc.stop()
    assert "Traceback" not in proc.output()


def test_post_reload_only_with_the_lifecycle_flag(tmp_path: Path, api: FaultServer) -> None:
    proc, url = start_exporter(tmp_path, config_text(api.url))
    try:
        (tmp_path / "exporter.yaml").write_text(config_text(api.url, "['.*']"))
        status, text = post(f"{url}/-/reload")
        assert (status, text) == (403, "Lifecycle API is not enabled.\n")
        assert exported(url, "wf-failed"), "reloaded without --web.enable-lifecycle"
    finally:
        proc.stop()

    workdir = tmp_path / "lifecycle"
    workdir.mkdir()
    proc, url = start_exporter(workdir, config_text(api.url), "--web.enable-lifecycle")
    try:
        wait_for("the first poll", lambda: exported(url, "wf-failed"), timeout=30)
        (workdir / "exporter.yaml").write_text(config_text(api.url, "['^tts-batch$']"))
        assert post(f"{url}/-/reload") == (200, "OK\n")
        assert not exported(url, "wf-failed") and exported(url, "wf-cancelled")
        (workdir / "exporter.yaml").write_text("workspaces: [\n")
        status, text = post(f"{url}/-/reload")
        assert status == 500 and "invalid YAML" in text, text
        assert value(scrape(url), RELOAD_OK) == 0 and exported(url, "wf-cancelled")
    finally:
        proc.stop()


def test_reload_applies_the_web_config_users(tmp_path: Path, api: FaultServer) -> None:
    web = tmp_path / "web.yml"
    web.write_text("{}\n")
    proc, url = start_exporter(tmp_path, config_text(api.url), f"--web.config.file={web}")
    try:
        assert http_get(f"{url}/metrics")[0] == 200
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
        web.write_text(f"basic_auth_users: {{prometheus: '{hashed}'}}\n")
        proc.proc.send_signal(signal.SIGHUP)
        wait_for("/metrics to ask for credentials",
                 lambda: http_get(f"{url}/metrics")[0] == 401, timeout=30)  # fmt: skip
        assert http_get(f"{url}/-/healthy")[0] == 200
    finally:
        proc.stop()


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def served_certificate(port: int) -> bytes:
    """The certificate the exporter presents to a client that sends no SNI (as Prometheus
    scraping an IP address)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
        context.wrap_socket(sock) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_reload_serves_a_new_certificate_and_refuses_to_turn_tls_off(
    tmp_path: Path, api: FaultServer
) -> None:
    require_binary("openssl")
    first, second = _self_signed(tmp_path, "first"), _self_signed(tmp_path, "second")
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config: {{cert_file: {first[0]}, key_file: {first[1]}}}\n")
    config = tmp_path / "exporter.yaml"
    config.write_text(config_text(api.url))
    proc = Process("exporter", [sys.executable, "-m", "exporter", f"--config.file={config}",
                                "--web.listen-address=127.0.0.1:0", f"--web.config.file={web}"],
                   tmp_path)  # fmt: skip
    try:
        port = int(proc.wait_output(r"msg=listening address=https://127\.0\.0\.1:(\d+)").group(1))
        pem = ssl.DER_cert_to_PEM_cert
        assert pem(served_certificate(port)) == ssl.get_server_certificate(("127.0.0.1", port))
        assert pem(served_certificate(port)).strip() == first[0].read_text().strip()

        web.write_text(f"tls_server_config: {{cert_file: {second[0]}, key_file: {second[1]}}}\n")
        proc.proc.send_signal(signal.SIGHUP)
        wait_for("the second certificate served",
                 lambda: pem(served_certificate(port)).strip() == second[0].read_text().strip(),
                 timeout=30)  # fmt: skip

        web.write_text("{}\n")
        proc.proc.send_signal(signal.SIGHUP)
        line = proc.wait_output(r'msg="configuration reload failed.*', timeout=30).group(0)
        assert "turning TLS on or off takes a restart" in line, line
        assert pem(served_certificate(port)).strip() == second[0].read_text().strip()
    finally:
        proc.stop()
    assert "Traceback" not in proc.output()
