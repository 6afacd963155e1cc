"""YAML with line numbers, and the checker that collects every problem with its key path and line.

The configuration (exporter/configload.py) and the web configuration (exporter/webconfig.py) are
read from YAML; this module is the configuration's reader. Every error names the key path and,
where YAML gives one, the file and line, and all errors are reported at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(slots=True)
class _Node:
    """A YAML value with the line it came from."""

    value: Any
    line: int | None


def _convert(node: yaml.Node, loader: yaml.SafeLoader | None = None) -> _Node:
    loader = loader or yaml.SafeLoader("")
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Node] = {}
        for k, v in node.value:
            out[str(loader.construct_object(k, deep=True))] = _convert(v, loader)
        return _Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_convert(v, loader) for v in node.value], line)
    # PyYAML resolves the scalar's type (int, bool, null, str ...).
    return _Node(loader.construct_object(node, deep=True), line)


class _Checker:
    """Walks the YAML tree, collecting problems with their key path and line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def error(self, path: str, node: _Node | None, message: str) -> None:
        where = f"{self.source}:{node.line}" if node is not None and node.line else self.source
        self.problems.append(f"{where}: {path}: {message}")

    def mapping(
        self, node: _Node, path: str, allowed: set[str], required: frozenset[str] = frozenset()
    ) -> dict[str, _Node] | None:
        if node.value is None:
            node.value = {}
        if not isinstance(node.value, dict):
            self.error(path, node, f"expected a mapping, got {_kind(node.value)}")
            return None
        for key in node.value:
            if key not in allowed:
                hint = _close_match(key, allowed)
                self.error(
                    f"{path}.{key}" if path else key,
                    node.value[key],
                    "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""),
                )
        for key in sorted(required):
            if key not in node.value or node.value[key].value is None:
                where = node.value.get(key, node)
                self.error(f"{path}.{key}" if path else key, where, "is required")
        return dict(node.value)

    def expand(self, node: _Node, path: str) -> Any:
        """Expand ${VAR} in strings from the environment."""
        if not isinstance(node.value, str):
            return node.value
        missing: list[str] = []

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1)
            if name not in os.environ:
                missing.append(name)
                return ""
            return os.environ[name]

        result = _ENV_REF.sub(sub, node.value)
        for name in missing:
            self.error(path, node, f"environment variable {name} is not set")
        return result

    def typed(
        self, node: _Node | None, path: str, convert: Callable[[Any], T], default: T, what: str
    ) -> T:
        if node is None or node.value is None:
            return default
        reported = len(self.problems)
        value = self.expand(node, path)
        if len(self.problems) > reported:
            return default  # a missing variable is the problem; its empty value is not another
        try:
            return convert(value)
        except (TypeError, ValueError) as exc:
            detail = f": {exc}" if str(exc) else ""
            self.error(path, node, f"expected {what}, got {_plain(value)!r}{detail}")
            return default


def _plain(value: Any) -> Any:
    """A YAML value as written, without the lines of its parts (for error texts)."""
    if isinstance(value, _Node):
        return _plain(value.value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _close_match(key: str, allowed: set[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, sorted(allowed), n=1)
    return matches[0] if matches else None


def _items(c: _Checker, node: _Node | None, path: str) -> Iterator[tuple[str, _Node]]:
    if node is None or node.value is None:
        return
    if not isinstance(node.value, list):
        c.error(path, node, f"expected a list, got {_kind(node.value)}")
        return
    for i, item in enumerate(node.value):
        yield f"{path}[{i}]", item
