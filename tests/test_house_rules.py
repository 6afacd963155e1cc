"""The layout a newcomer can read: small modules, short functions, imports that flow one way.

A module over 400 lines or a function over 50 does several jobs; an import cycle means two
modules cannot be understood apart. These limits hold for the exporter itself; the simulator
is a separate program in the same package and must stay independent of it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import REPO

PACKAGE = REPO / "exporter"
SIMULATOR = PACKAGE / "simulator"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def exporter_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if SIMULATOR not in p.parents)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> Iterator[str]:
    """The exporter modules `path` imports, at any depth of the file (lazy imports count)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from exporter import x` may name a module.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    names = {module_name(p): p for p in exporter_modules()}
    return {
        name: {m for m in imported_modules(path) if m in names and m != name}
        for name, path in names.items()
    }


def test_no_exporter_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(REPO)): n
        for p in exporter_modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these modules by job: {long}"


def test_no_exporter_function_is_over_50_lines() -> None:
    long: dict[str, int] = {}
    for path in exporter_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(REPO)}:{node.lineno} {node.name}"] = lines
    assert long == {}, f"functions doing several jobs: {long}"


def test_the_exporter_modules_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                cycles.append([*path[path.index(dep) :], dep] if dep in path else [name, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], f"import cycles: {cycles}"


@pytest.mark.parametrize("path", sorted(SIMULATOR.rglob("*.py")), ids=lambda p: p.name)
def test_the_simulator_imports_nothing_of_the_exporter(path: Path) -> None:
    outside = {
        m
        for m in imported_modules(path)
        if m.startswith("exporter") and not m.startswith("exporter.simulator")
    }
    assert outside == set(), f"{path.name} depends on the exporter it is meant to test: {outside}"


def test_only_the_demo_starts_the_simulator() -> None:
    users = {
        module_name(p)
        for p in exporter_modules()
        if any(m.startswith("exporter.simulator") for m in imported_modules(p))
    }
    assert users <= {"exporter.demo"}, users
