"""The release: `python -m build` makes an sdist and a wheel that `twine check` accepts, and the
wheel, installed into a fresh virtualenv, says its version and revision and runs the demo.

Offline: the build uses the build backend installed here (`--no-isolation`; the test extra
installs setuptools, wheel, build and twine), the wheel is installed without its dependencies,
and the fresh virtualenv then sees this environment's site-packages through a .pth file, after
its own (so the exporter it imports is the wheel's, which the test checks).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from exporter import __version__
from exporter.buildinfo import git_revision
from tests.procs import REPO, Process, http_get, wait_for


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed (pip install '.[test]'; required in CI)")
        pytest.skip(f"{module} is not installed (pip install '.[test]')")


def _run(*args: str | Path, timeout: float = 120, **kwargs: object) -> str:
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kwargs
    )  # type: ignore[call-overload]
    output = f"{proc.stdout}{proc.stderr}"
    assert proc.returncode == 0, f"{args} exited with {proc.returncode}:\n{output}"
    return str(proc.stdout)


# The fresh virtualenv's processes must not see this checkout (tests/procs.py adds it).
CLEAN_ENV = {"PYTHONPATH": "", "PYTHONSAFEPATH": "1"}


def test_sdist_and_wheel_pass_twine_and_the_wheel_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    for module in ("build", "twine", "setuptools", "wheel"):
        _require(module)
    dist = tmp_path / "dist"
    egg_info = REPO / "onepin_exporter.egg-info"  # the sdist step writes it into the checkout
    had_egg_info = egg_info.exists()
    try:
        _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, REPO, timeout=180)
    finally:
        if not had_egg_info:
            shutil.rmtree(egg_info, ignore_errors=True)
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    assert sdist.name == f"onepin_exporter-{__version__}.tar.gz"
    _run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)

    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"onepin_exporter-{__version__}.dist-info/METADATA").decode()
        built_revision = archive.read("exporter/_revision.txt").decode().strip()
    assert f"onepin_exporter-{__version__}.dist-info/licenses/LICENSE" in names
    assert "License-Expression: Apache-2.0" in metadata
    assert "Project-URL: Source, https://" in metadata and "Keywords: prometheus" in metadata
    assert "Classifier: Topic :: System :: Monitoring" in metadata
    checkout = git_revision(REPO)
    if checkout is not None:  # built from a checkout: its revision, dirty or not
        assert built_revision == checkout
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?", built_revision), built_revision

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # This environment's pip installs into the new one; nothing else is installed there yet.
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-index", "--disable-pip-version-check", wheel)  # fmt: skip
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
                   .strip())  # fmt: skip
    # Where this process finds the dependencies (its site-packages, and any a .pth file added).
    here = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (purelib / "zz-test-dependencies.pth").write_text("\n".join(here) + "\n")
    env = {**os.environ, **CLEAN_ENV}

    where = "import exporter; print(exporter.__file__)"
    imported = _run(python, "-c", where, env=env, cwd=tmp_path)
    assert imported.strip().startswith(str(purelib)), imported
    version = _run(venv / "bin" / "onepin-exporter", "--version", env=env, cwd=tmp_path)
    assert version.startswith(
        f"onepin-exporter, version {__version__} (revision: {built_revision})\n"
    ), version

    demo = Process(
        "demo",
        [str(venv / "bin" / "onepin-exporter"), "--demo", "--web.listen-address=127.0.0.1:0"],
        tmp_path,
        env=CLEAN_ENV,
    )
    try:
        url = demo.wait_output(r"metrics:\s+(http://\S+/metrics)", timeout=30).group(1)
        wait_for("onepin_up 1 from the installed demo",
                 lambda: re.search(r'^onepin_up\{workspace="demo"\} 1', http_get(url)[1], re.M),
                 timeout=30)  # fmt: skip
        demo.proc.send_signal(signal.SIGINT)
        assert demo.proc.wait(timeout=10) == 0
    finally:
        demo.stop()
    assert "Traceback" not in demo.output()
