"""The Dockerfile and what it is built from, checked without building it (test_container.py
builds and runs it): hadolint, the promises the image makes, the hashed lock files, the build
context."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import require_binary
from tests.procs import REPO

DOCKERFILE = REPO / "Dockerfile"
LOCK = REPO / "requirements.lock"
BUILD_LOCK = REPO / "requirements-build.lock"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), " ".join(rest.split())))
    return result


def _args(name: str) -> list[str]:
    return [rest for word, rest in _instructions() if word == name]


def test_hadolint_passes() -> None:
    hadolint = require_binary("hadolint")
    proc = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold=style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"hadolint found problems:\n{proc.stdout}{proc.stderr}"


def test_base_image_is_an_argument_with_the_slim_python_default() -> None:
    assert _args("ARG")[0] == "BASE=python:3.11-slim-bookworm"
    stages = _args("FROM")
    assert stages == ["${BASE} AS builder", "${BASE}"], "builder stage, then the final stage"


def test_runtime_contract() -> None:
    (user,) = _args("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root UID (runAsNonRoot can check it)"
    assert gid.isdigit() and int(gid) != 0
    assert _args("EXPOSE") == ["9879"]
    assert _args("ENTRYPOINT") == ['["onepin-exporter"]']
    assert _args("CMD") == ['["--config.file=/etc/onepin-exporter/config.yaml"]']
    (healthcheck,) = _args("HEALTHCHECK")
    assert "python3" in healthcheck and "urllib" in healthcheck, "no curl in the image"
    env = " ".join(_args("ENV"))
    assert "ONEPIN_HEALTHCHECK_URL=http://127.0.0.1:9879/-/healthy" in env


def test_dependencies_are_installed_from_the_hashed_locks_only() -> None:
    runs = " ".join(_args("RUN"))
    for lock in (LOCK, BUILD_LOCK):
        assert f"--require-hashes --only-binary=:all: --no-deps -r {lock.name}" in runs
    # The project's own wheel is built and installed without reaching any index.
    assert "--no-build-isolation --no-deps --no-index" in runs
    assert "pip install --no-deps --no-index" in runs
    # The final stage is the base plus the virtualenv: no compiler, no pip cache, no sources.
    final = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    assert "RUN " not in final


def _locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile --generate-hashes file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *options = line.split()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", spec)
        assert match, f"{path.name}: not pinned with ==: {line!r}"
        hashes = [o.removeprefix("--hash=") for o in options if o.startswith("--hash=")]
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), line
        entries[canonicalize_name(match.group(1))] = (match.group(2), hashes)
    return entries


def test_lock_pins_every_runtime_dependency_within_pyproject_ranges() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locked = _locked(LOCK)
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in requirements.lock: run deploy/lock.sh"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside {requirement.specifier}: "
            "run deploy/lock.sh"
        )


def test_build_lock_pins_the_build_backend() -> None:
    build_system = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
    locked = _locked(BUILD_LOCK)
    for dependency in build_system["requires"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is not in {BUILD_LOCK.name}: run deploy/lock.sh"
        assert requirement.specifier.contains(locked[name][0], prereleases=True)


def test_lock_files_name_no_index_or_local_path() -> None:
    for lock in (LOCK, BUILD_LOCK):
        text = lock.read_text()
        assert not re.search(
            r"^\s*--(index-url|extra-index-url|find-links|trusted-host)", text, re.M
        )
        assert "file://" not in text and "/opt/" not in text


def _dockerignore_allows(path: str, patterns: list[str]) -> bool:
    """Whether the build context includes `path` (Docker's rule: the last matching line wins)."""
    import fnmatch

    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        # A pattern matches the path itself or one of its parent directories.
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        candidates = [glob, glob.removeprefix("**/")]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            included = negated
    return included


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: everything is excluded unless named"
    copied = []
    for rest in _args("COPY"):
        if rest.startswith("--from"):
            continue
        copied += rest.split()[:-1]
    assert copied, "no COPY from the build context?"
    for source in copied:
        assert (REPO / source).exists(), source
        assert _dockerignore_allows(source, patterns), f"{source} is excluded by .dockerignore"
    for left_out in ("tests/test_scrape.py", ".git/HEAD", ".venv/bin/python", "grafana/generate.py",
                     "exporter/__pycache__/cli.cpython-311.pyc"):  # fmt: skip
        assert not _dockerignore_allows(left_out, patterns), f"{left_out} enters the context"
    assert _dockerignore_allows("exporter/simulator/cli.py", patterns)


def test_oci_labels_come_from_build_arguments() -> None:
    final = DOCKERFILE.read_text().rsplit("\nFROM ", 1)[1]
    labels = dict(re.findall(r'org\.opencontainers\.image\.(\w+)="([^"]*)"', final))
    assert labels["licenses"] == "Apache-2.0" and (REPO / "LICENSE").is_file()
    for key in ("source", "version", "revision", "created"):
        assert labels[key] == "${" + key.upper() + "}", (key, labels)
        assert f"ARG {key.upper()}\n" in final, f"the final stage must declare ARG {key.upper()}"
    # Defaults before the first stage, so that a plain `docker build .` still works.
    head = DOCKERFILE.read_text().split("\nFROM ", 1)[0]
    for key in ("SOURCE", "VERSION", "REVISION", "CREATED"):
        assert re.search(rf"^ARG {key}=\S+$", head, re.M), key
    # The revision also goes into the wheel, for `onepin-exporter --version`.
    runs = " ".join(_args("RUN"))
    assert 'ONEPIN_EXPORTER_REVISION="${REVISION}"' in runs
