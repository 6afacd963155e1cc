"""The container image, really built and run: podman builds the Dockerfile and runs the exporter.

No registry is needed: the base image is a minimal Debian bookworm with Python 3.11, made with
debootstrap from the Debian mirror that apt uses here and imported into podman; it is cached (as
a tarball under /var/tmp and as a podman image) so that only the first run pays for it. The
build then installs the locked dependencies from the package index, as any build of the image
does (`--network=host`, with the host's CA bundle mounted for pip when there is one).

The simulator runs from the same image (`--entrypoint onepin-simulator`) in a private network
namespace that the exporter shares, so no host port is used at all; the test reads the
exporter's endpoints with `podman exec` and Python's urllib inside the container. The exporter
runs as Kubernetes runs it (read-only root filesystem, no capabilities, no new privileges).

Without podman (a laptop) these tests skip; with CI=true they must run: scripts/test.sh installs
podman, runc and debootstrap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import require_binary
from tests.procs import REPO, wait_for

pytestmark = pytest.mark.container

# Where the base image's tarball is kept between runs (and the lock that serialises making it).
CACHE_DIR = Path(
    os.environ.get("ONEPIN_CONTAINER_CACHE", "/var/tmp/onepin-exporter-container-test")
)
SUITE = "bookworm"  # Python 3.11, as in the default base python:3.11-slim-bookworm
PACKAGES = ("python3", "python3-venv")
BASE_RECIPE = 1  # bump when the recipe above changes, so that a stale cached base is not used
BASE_IMAGE = f"localhost/onepin-exporter-test-base:{SUITE}-{BASE_RECIPE}"
IMAGE = "localhost/onepin-exporter:container-test"
# Containers are labelled with the pid of the test process that made them, so that a later run
# can remove those of a run that died without cleaning up (and only those).
PID_LABEL = "onepin-exporter.container-test.pid"
TOKEN = "op_live_Container0Container0Container0Cont"
UID = "65532"
WORKFLOWS = 6

BUILD_TIMEOUT = 900.0
DEBOOTSTRAP_TIMEOUT = 900.0
STOP_BUDGET = 2.0  # seconds from SIGTERM to the container having exited

# Run inside the container: print the HTTP status, a newline, then the body.
FETCH = """\
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
sys.stdout.write(f"{code}\\n{body.decode()}")
"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@dataclass
class Podman:
    binary: str
    env: dict[str, str]
    logdir: Path

    def run(
        self, *args: str, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(
                [self.binary, *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"podman {' '.join(args)} did not finish within {timeout:.0f}s"
            ) from None
        if check and proc.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited with {proc.returncode}:\n"
                f"{proc.stdout[-2000:]}\n{_without_systemd_noise(proc.stderr)[-3000:]}"
            )
        return proc

    def run_logged(self, name: str, *args: str, timeout: float) -> float:
        """Run a long podman command with its output in a log file; return its duration."""
        log_path = self.logdir / f"{name}.log"
        started = time.monotonic()
        with log_path.open("wb") as log:
            try:
                proc = subprocess.run(
                    [self.binary, *args],
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"podman {name} did not finish within {timeout:.0f}s; log {log_path}:\n"
                    f"{_tail(log_path)}"
                ) from None
        if proc.returncode != 0:
            raise AssertionError(
                f"podman {name} exited with {proc.returncode}; log {log_path}:\n{_tail(log_path)}"
            )
        return time.monotonic() - started

    def logs(self, container: str) -> str:
        proc = self.run("logs", container, check=False)
        return proc.stdout + proc.stderr

    def running(self, container: str) -> bool:
        proc = self.run("inspect", "--format", "{{.State.Running}}", container, check=False)
        return proc.stdout.strip() == "true"

    def wait_log(self, container: str, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        def probe() -> re.Match[str] | None:
            output = self.logs(container)
            match = re.search(pattern, output)
            if match is None and not self.running(container):
                raise AssertionError(f"container {container} exited:\n{output[-3000:]}")
            return match

        return wait_for(f"container {container} to log {pattern!r}", probe, timeout)

    def fetch(self, container: str, path: str) -> tuple[int, str]:
        """GET the exporter's `path` from inside the container."""
        out = self.run(
            "exec", container, "python3", "-c", FETCH, f"http://127.0.0.1:9879{path}"
        ).stdout
        code, _, body = out.partition("\n")
        return int(code), body

    def remove(self, *containers: str) -> None:
        """Remove containers (and those sharing their network), whatever their state."""
        for container in containers:
            self.run("rm", "--force", "--depend", "--time=0", container, check=False)


def _without_systemd_noise(text: str) -> str:
    # Without systemd, podman logs that it cannot schedule health-check timers; irrelevant here.
    return "\n".join(line for line in text.splitlines() if "systemd" not in line)


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:]


def _rlimit(resource: int, wanted: int) -> int:
    import resource as res

    hard = res.getrlimit(resource)[1]
    return wanted if hard == res.RLIM_INFINITY else min(wanted, hard)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    import resource

    binary = shutil.which("podman")
    if binary is None:
        _skip_or_fail("podman not installed")
    assert binary is not None
    require_binary("runc")
    workdir = tmp_path_factory.mktemp("podman")
    # Podman's default ulimits (nofile 1048576) exceed this machine's hard limits, which runc
    # cannot raise: ask for what the host allows, at most what the brief of the image needs.
    nofile = _rlimit(resource.RLIMIT_NOFILE, 20000)
    nproc = _rlimit(resource.RLIMIT_NPROC, 32768)
    conf = workdir / "containers.conf"
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    tool = Podman(binary, {**os.environ, "CONTAINERS_CONF": str(conf)}, workdir)
    _remove_orphans(tool)
    return tool


def _remove_orphans(podman: Podman) -> None:
    """Remove the containers of earlier test runs whose process is gone."""
    proc = podman.run(
        "ps", "--all", "--filter", f"label={PID_LABEL}",
        "--format", f'{{{{.ID}}}} {{{{index .Labels "{PID_LABEL}"}}}}',
        check=False,
    )  # fmt: skip
    stale = []
    for line in proc.stdout.splitlines():
        cid, _, pid = line.partition(" ")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            stale.append(cid)
    podman.remove(*stale)
    images = podman.run(
        "images", "--all", "--filter", f"label={PID_LABEL}",
        "--format", f'{{{{index .Labels "{PID_LABEL}"}}}}', check=False,
    ).stdout.split()  # fmt: skip
    for pid in sorted(set(images)):
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            _remove_images(podman, pid)


# --- the base image: minimal Debian with Python 3.11 -------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apt_debian_mirror(root: Path = Path("/")) -> str | None:
    """The Debian archive URL that apt uses on this machine (None: debootstrap's default).

    ONEPIN_DEBOOTSTRAP_MIRROR overrides it. Security and third-party repositories are skipped:
    the archive is the `deb` source with component `main`, a non-security suite and a URL whose
    last path element is `debian`.
    """
    override = os.environ.get("ONEPIN_DEBOOTSTRAP_MIRROR")
    if override:
        return override
    for uri, suites, components in _apt_sources(root / "etc/apt"):
        if "main" not in components or any("security" in s for s in suites):
            continue
        if uri.rstrip("/").rsplit("/", 1)[-1] == "debian":
            return uri
    return None


def _apt_sources(apt_dir: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """(uri, suites, components) of every enabled `deb` source, in apt's order."""
    files = [apt_dir / "sources.list"]
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        files += sorted(parts.iterdir())
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            yield from _deb822_sources(text)
        elif path.name == "sources.list" or path.suffix == ".list":
            yield from _one_line_sources(text)


def _one_line_sources(text: str) -> Iterator[tuple[str, list[str], list[str]]]:
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0])  # drop [options] and comments
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "deb":
            yield fields[1], [fields[2]], fields[3:]


def _deb822_sources(text: str) -> Iterator[tuple[str, list[str], list[str]]]:
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in paragraph.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = fields.get("suites", "").split()
        components = fields.get("components", "").split()
        for uri in fields.get("uris", "").split():
            yield uri, suites, components


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target.startswith(prefix):
            mounts.append(target)
    return mounts


def _remove_rootfs(rootfs: Path) -> None:
    """Remove a debootstrap tree, never following a mount that a failed run left behind."""
    if not rootfs.exists():
        return
    for target in sorted(_mounts_under(rootfs), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", target], check=False, timeout=30)
    left = _mounts_under(rootfs)
    if left:
        raise AssertionError(f"cannot remove {rootfs}: still mounted: {left}")
    shutil.rmtree(rootfs)


def _debootstrap_tarball(tarball: Path) -> None:
    if os.geteuid() != 0:
        _skip_or_fail("making the base image with debootstrap needs root")
    debootstrap = require_binary("debootstrap")
    rootfs = CACHE_DIR / f"rootfs-{SUITE}"
    _remove_rootfs(rootfs)
    mirror = apt_debian_mirror()
    args = [debootstrap, "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE]
    args += [str(rootfs), *([mirror] if mirror else [])]
    log_path = CACHE_DIR / "debootstrap.log"
    with log_path.open("wb") as log:
        try:
            proc = subprocess.run(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                timeout=DEBOOTSTRAP_TIMEOUT,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"debootstrap did not finish within {DEBOOTSTRAP_TIMEOUT:.0f}s:\n{_tail(log_path)}"
            ) from None
    if proc.returncode != 0:
        inner = rootfs / "debootstrap" / "debootstrap.log"
        detail = _tail(inner) if inner.exists() else ""
        raise AssertionError(
            f"debootstrap {SUITE} from {mirror or 'its default mirror'} failed "
            f"({proc.returncode}):\n{_tail(log_path)}\n{detail}"
        )
    # What an image needs of none: package lists and caches, documentation, translations.
    for rel in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                "usr/share/info", "usr/share/locale"):  # fmt: skip
        shutil.rmtree(rootfs / rel, ignore_errors=True)
        (rootfs / rel).mkdir(parents=True, exist_ok=True)
    partial = tarball.with_suffix(".partial")
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
        check=True, timeout=300,
    )  # fmt: skip
    partial.replace(tarball)
    _remove_rootfs(rootfs)


@pytest.fixture(scope="module")
def base_image(podman: Podman) -> Iterator[str]:
    """A local Debian bookworm + Python 3.11 image, imported from a tarball that is made once
    and kept in CACHE_DIR (debootstrap takes minutes); the image is removed after the tests,
    unless it was there before."""
    with _locked(CACHE_DIR / "base.lock"):
        if podman.run("image", "exists", BASE_IMAGE, check=False).returncode == 0:
            yield BASE_IMAGE
            return
        tarball = CACHE_DIR / f"base-{SUITE}-{BASE_RECIPE}.tar"
        if not tarball.exists():
            _debootstrap_tarball(tarball)
        podman.run(
            "import", "--message", f"debootstrap --variant=minbase {SUITE} + {' '.join(PACKAGES)}",
            str(tarball), BASE_IMAGE, timeout=600,
        )  # fmt: skip
    try:
        yield BASE_IMAGE
    finally:
        podman.run("rmi", BASE_IMAGE, check=False, timeout=120)


# --- the image ---------------------------------------------------------------------------------


def host_ca_bundle() -> str | None:
    """The CA bundle this machine's TLS clients use (pip inside the build needs it behind a
    TLS-intercepting proxy); None when there is none to find."""
    candidates = [
        os.environ.get(name) for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    ]
    candidates += [ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def build_args(created: str | None = None) -> list[str]:
    """The OCI label arguments, as a release build passes them (see the Dockerfile)."""
    from exporter import __version__
    from exporter.buildinfo import git_revision

    when = created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return [
        f"--build-arg=VERSION={__version__}",
        f"--build-arg=REVISION={git_revision(REPO) or 'unknown'}",
        f"--build-arg=CREATED={when}",
    ]


@pytest.fixture(scope="module")
def image(podman: Podman, base_image: str) -> Iterator[str]:
    args = [
        "build",
        "--format=docker",  # keeps HEALTHCHECK (the OCI format has none)
        "--network=host",
        "--pull=never",
        # No layer cache, and every image the build commits (the builder stage's too) labelled
        # with this process: the teardown removes them all.
        "--layers=false",
        f"--label={PID_LABEL}={os.getpid()}",
        f"--build-arg=BASE={base_image}",
        *build_args(),
        f"--tag={IMAGE}",
    ]
    ca = host_ca_bundle()
    if ca is not None:
        args += [f"--volume={ca}:/run/host-ca.crt:ro", "--build-arg=PIP_CERT=/run/host-ca.crt"]
    try:
        podman.run_logged("build", *args, str(REPO), timeout=BUILD_TIMEOUT)
        yield IMAGE
    finally:
        _remove_images(podman, str(os.getpid()))


def _remove_images(podman: Podman, pid: str) -> None:
    """Remove the images that the build of test process `pid` made (and their containers)."""
    listed = podman.run(
        "images", "--all", "--quiet", "--filter", f"label={PID_LABEL}={pid}", check=False
    ).stdout.split()
    if listed:
        podman.run("rmi", "--force", *dict.fromkeys(listed), check=False, timeout=120)


def _run_args(*, name: str) -> list[str]:
    return ["run", "--detach", f"--name={name}", f"--label={PID_LABEL}={os.getpid()}"]


# The exporter as the Kubernetes manifests run it.
HARDENED = ["--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]


@dataclass
class Stack:
    simulator: str
    exporter: str


@pytest.fixture(scope="module")
def stack(podman: Podman, image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    names = Stack(f"onepin-ct-{os.getpid()}-simulator", f"onepin-ct-{os.getpid()}-exporter")
    config = tmp_path_factory.mktemp("container") / "config.yaml"
    config.write_text(
        "workspaces:\n"
        f"  - {{name: container, api_url: 'http://127.0.0.1:8000', token: {TOKEN}}}\n"
        "collection: {min_interval: 1s}\n"
    )
    config.chmod(0o644)  # read by the container's user 65532
    try:
        # The simulator in a network namespace of its own (loopback only)...
        podman.run(
            *_run_args(name=names.simulator), "--network=none", "--no-healthcheck", *HARDENED,
            "--entrypoint=onepin-simulator", image,
            "--listen=127.0.0.1:8000", f"--token={TOKEN}", f"--workflows={WORKFLOWS}",
            "--speed=60", "--seed=3",
        )  # fmt: skip
        podman.wait_log(names.simulator, r"listening on http://127\.0\.0\.1:8000")
        # ...and the exporter in the same one, with the image's default command: the config
        # mounted where that command reads it.
        podman.run(
            *_run_args(name=names.exporter), f"--network=container:{names.simulator}", *HARDENED,
            f"--volume={config}:/etc/onepin-exporter/config.yaml:ro", image,
        )  # fmt: skip
        podman.wait_log(names.exporter, r"msg=listening address=http://\S+:9879")
        yield names
        output = podman.logs(names.exporter)
        assert "Traceback" not in output, output[-3000:]
    finally:
        podman.remove(names.exporter, names.simulator)


# --- the tests ---------------------------------------------------------------------------------


def test_image_metadata(podman: Podman, image: str) -> None:
    info = json.loads(podman.run("image", "inspect", image).stdout)[0]
    config = info["Config"]
    labels = config["Labels"]
    from exporter import __version__

    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    created = labels["org.opencontainers.image.created"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created), created
    revision = labels["org.opencontainers.image.revision"]
    # The same revision inside, for `--version`.
    version = podman.run("run", "--rm", "--network=none", image, "--version").stdout
    assert f"(revision: {revision})" in version, version
    assert config["User"] == f"{UID}:{UID}"
    assert set(config["ExposedPorts"]) == {"9879/tcp"}
    assert config["Entrypoint"] == ["onepin-exporter"]
    assert config["Cmd"] == ["--config.file=/etc/onepin-exporter/config.yaml"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["ONEPIN_HEALTHCHECK_URL"] == "http://127.0.0.1:9879/-/healthy"
    healthcheck = info.get("Healthcheck") or config.get("Healthcheck")  # podman / docker
    assert healthcheck is not None, "no HEALTHCHECK: was the image built with --format=docker?"
    assert healthcheck["Test"][:2] == ["CMD", "python3"]


def test_image_holds_no_pip_and_the_default_config_is_valid(podman: Podman, image: str) -> None:
    # The virtualenv ships without pip: nothing is installed into it after the build.
    check = "import importlib.util as u, sys; sys.exit(bool(u.find_spec('pip')))"
    podman.run(
        "run", "--rm", "--network=none", "--entrypoint=/opt/venv/bin/python", image, "-c", check
    )
    # The image's own config (config.example.yaml) needs only the token in the environment.
    result = podman.run(
        "run", "--rm", "--network=none", "--env=ONEPIN_API_TOKEN=op_live_x", image,
        "--config.check", "--config.file=/etc/onepin-exporter/config.yaml",
    )  # fmt: skip
    assert "is valid" in result.stdout
    assert "op_live_x" not in result.stdout + result.stderr


def test_exporter_in_the_container_scrapes_the_simulator(podman: Podman, stack: Stack) -> None:
    def api_up() -> str | None:
        code, body = podman.fetch(stack.exporter, "/metrics")
        assert code == 200, body[:500]
        up = re.search(r'^onepin_up\{workspace="container"\} 1(\.0)?$', body, re.M)
        return body if up else None

    body = wait_for("onepin_up 1 from the exporter in the container", api_up, timeout=60)
    assert len(re.findall(r"^onepin_workflow_info\{", body, re.M)) == WORKFLOWS
    assert re.search(r"^onepin_exporter_build_info\{", body, re.M)


def test_ready_healthy_and_the_image_health_check(podman: Podman, stack: Stack) -> None:
    wait_for("/-/ready to answer 200", lambda: podman.fetch(stack.exporter, "/-/ready")[0] == 200)
    assert podman.fetch(stack.exporter, "/-/healthy")[0] == 200
    # The image's HEALTHCHECK command, run by podman as the engine would.
    podman.run("healthcheck", "run", stack.exporter)


def test_the_process_runs_as_non_root(podman: Podman, stack: Stack) -> None:
    # PID 1 of the container, as the host sees it (podman top reads /proc).
    top = podman.run("top", stack.exporter, "user", "group", "args").stdout.splitlines()
    assert len(top) >= 2, top
    user, group, *args = top[1].split()
    assert (user, group) == (UID, UID), top
    assert "onepin-exporter" in " ".join(args), top
    assert podman.run("exec", stack.exporter, "id", "-u").stdout.strip() == UID


def test_sigterm_stops_the_container_at_once(podman: Podman, image: str) -> None:
    name = f"onepin-ct-{os.getpid()}-stop"
    try:
        # No API to reach: the exporter still serves, and must still stop at once.
        podman.run(
            *_run_args(name=name), "--network=none", *HARDENED, "--env=ONEPIN_API_TOKEN=op_live_x",
            image,
        )  # fmt: skip
        podman.wait_log(name, r"msg=listening")
        started = time.monotonic()
        # SIGTERM, and SIGKILL only after 10 s: stopping sooner means the exporter (PID 1)
        # handled SIGTERM itself.
        podman.run("stop", "--time=10", name, timeout=30)
        elapsed = time.monotonic() - started
        state = json.loads(podman.run("inspect", name).stdout)[0]["State"]
        assert elapsed < STOP_BUDGET, f"took {elapsed:.2f}s to stop on SIGTERM"
        assert state["ExitCode"] == 0, (state, podman.logs(name)[-2000:])
        assert "msg=stopped" in podman.logs(name)
    finally:
        podman.remove(name)


def test_debian_mirror_is_read_from_apt_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    apt = tmp_path / "etc/apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("# deb http://old.example/debian bookworm main\n")
    (apt / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
        "Components: main contrib\n"
    )
    (apt / "sources.list.d/other.list").write_text(
        "deb [arch=amd64] https://vendor.example/apt stable main\n"
    )
    monkeypatch.delenv("ONEPIN_DEBOOTSTRAP_MIRROR", raising=False)
    assert apt_debian_mirror(tmp_path) == "http://mirror.example/debian"
    (apt / "sources.list.d/debian.sources").unlink()
    assert apt_debian_mirror(tmp_path) is None
    (apt / "sources.list").write_text(
        "deb [signed-by=/k.gpg] http://one.example/debian/ bookworm main\n"
    )
    assert apt_debian_mirror(tmp_path) == "http://one.example/debian/"
