"""The version and the git revision the package was built from, for `--version`.

The revision is written into the package as `_revision.txt` when a wheel or an sdist is built
(setup.py, which reuses `git_revision` below; the container build passes it in the
ONEPIN_EXPORTER_REVISION build argument, as the build context has no .git). Run from a
checkout, where no such file is, it is asked of git. Standard library only: setup.py loads this
file on its own, before any dependency is installed.
"""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

REVISION_FILE = "_revision.txt"
REVISION_ENV = "ONEPIN_EXPORTER_REVISION"
UNKNOWN = "unknown"


def git_revision(root: Path) -> str | None:
    """The short commit of the checkout at `root` (with "-dirty" when files differ from it);
    None when `root` is not the top of a git checkout or git is missing."""

    def git(*args: str) -> str | None:
        try:
            # git from PATH, as a developer runs it; the arguments are this module's own.
            proc = subprocess.run(  # noqa: S603
                ["git", "-C", str(root), *args],  # noqa: S607
                capture_output=True, text=True, timeout=10, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    # Not a checkout of its own (an unpacked sdist in some other repository's tree): no answer.
    if top is None or Path(top).resolve() != root.resolve():
        return None
    revision = git("rev-parse", "--short=12", "HEAD")
    if not revision:
        return None
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return revision + ("-dirty" if dirty else "")


def revision() -> str:
    """The revision this package was built from, or that of the checkout it runs from."""
    package = Path(__file__).resolve().parent
    try:
        built = (package / REVISION_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        built = ""
    return built or git_revision(package.parent) or UNKNOWN


def version_text(version: str) -> str:
    """`--version`, in the layout of the Prometheus exporters'."""
    return (
        f"onepin-exporter, version {version} (revision: {revision()})\n"
        f"  python: {platform.python_version()} ({platform.python_implementation()}, "
        f"{sys.executable})\n"
        f"  platform: {sys.platform}/{platform.machine()}"
    )
