"""deploy/systemd/onepin-exporter.service: systemd accepts it, it is hardened, and the command
it runs is one the exporter accepts.

`systemd-analyze verify` checks that ExecStart's program exists, so the test verifies a copy
whose program is a stub in a temporary directory; the real path is checked against the docs.
scripts/test.sh installs Debian's systemd package (for systemd-analyze) when it is missing.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from exporter.cli import build_parser
from tests.helpers import require_binary
from tests.procs import REPO

UNIT = REPO / "deploy" / "systemd" / "onepin-exporter.service"
PROGRAM = "/opt/onepin-exporter/bin/onepin-exporter"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 (locked down) .. 10 (unprotected)


def _directives() -> dict[str, list[str]]:
    text = re.sub(r"\\\n\s*", " ", UNIT.read_text())
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value.strip())
    return found


def _stubbed_copy(tmp_path: Path) -> Path:
    stub = tmp_path / "onepin-exporter"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    unit = tmp_path / "onepin-exporter.service"
    unit.write_text(UNIT.read_text().replace(PROGRAM, str(stub)))
    return unit


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    proc = subprocess.run([analyze, "verify", str(_stubbed_copy(tmp_path))],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stdout + proc.stderr


def test_systemd_rates_the_unit_well_protected(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    proc = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(_stubbed_copy(tmp_path))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout[-4000:]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("MemoryDenyWriteExecute", "yes"),
    ],
)
def test_the_unit_is_hardened(key: str, value: str) -> None:
    assert value in _directives().get(key, []), f"{key}={value} missing from {UNIT.name}"


def test_the_unit_runs_a_command_the_exporter_accepts() -> None:
    directives = _directives()
    (exec_start,) = directives["ExecStart"]
    program, *args = shlex.split(exec_start)
    assert program == PROGRAM
    parsed = build_parser().parse_args(args)
    assert parsed.config_file == "/etc/onepin-exporter/config.yaml"
    # The token reaches the service as a credential, not a file its user could read.
    assert directives["LoadCredential"] == ["onepin-token:/etc/onepin-exporter/token"]
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert "token_file: ${CREDENTIALS_DIRECTORY}/onepin-token" in deploy
    # The docs make the virtualenv that ExecStart runs from.
    venv = PROGRAM.removesuffix("/bin/onepin-exporter")
    assert f"python3 -m venv {venv}\n" in deploy
    assert "deploy/systemd/onepin-exporter.service" in deploy
