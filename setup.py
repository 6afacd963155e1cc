"""Only what pyproject.toml cannot say: write the git revision into the package when it is built.

`onepin-exporter --version` prints it (exporter/buildinfo.py). The revision is, in order:
$ONEPIN_EXPORTER_REVISION (the container build passes its REVISION build argument, as its build
context has no .git), the checkout's `git rev-parse` (a build from a checkout, and the sdist
that `python -m build` makes first), or the file an sdist carries (the wheel built from that
sdist, where no .git is). Nothing found, nothing is written and --version says "unknown".
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _buildinfo() -> ModuleType:
    # By path: importing the package would import its dependencies, not installed at build time.
    spec = importlib.util.spec_from_file_location("_buildinfo", ROOT / "exporter" / "buildinfo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_revision(package_dir: Path) -> None:
    info = _buildinfo()
    kept = ROOT / "exporter" / info.REVISION_FILE
    revision = (
        os.environ.get(info.REVISION_ENV, "").strip()
        or info.git_revision(ROOT)
        or (kept.read_text(encoding="utf-8").strip() if kept.is_file() else "")
    )
    if revision:
        package_dir.mkdir(parents=True, exist_ok=True)
        (package_dir / info.REVISION_FILE).write_text(revision + "\n", encoding="utf-8")


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if not self.editable_mode:  # an editable install asks git at run time
            _write_revision(Path(self.build_lib) / "exporter")


class Sdist(sdist):
    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        _write_revision(Path(base_dir) / "exporter")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
