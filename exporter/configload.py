"""Load and validate the YAML configuration into the frozen settings of exporter/settings.py.

Which keys a mapping may hold, which are required, how each value is read and checked: all come
from the keys' declarations. Only what one declaration cannot say is written here: a token from
`token` or `token_file`, a workflow given as a bare id, and rules across keys.
"""

from __future__ import annotations

from dataclasses import MISSING
from pathlib import Path
from typing import Any, TypeVar

import yaml

from exporter.apitoken import Token, TokenError
from exporter.configvalues import _string
from exporter.settings import (
    Config,
    Discovery,
    Key,
    WorkflowRef,
    Workspace,
    declared,
    yaml_names,
)
from exporter.yamltree import ConfigError, _Checker, _convert, _items, _Node

S = TypeVar("S")


def _required(settings: type) -> frozenset[str]:
    return frozenset(f.name for f, k in declared(settings) if k.required)


def _key(settings: type, name: str) -> Key:
    return next(k for f, k in declared(settings) if f.name == name)


def read_key(c: _Checker, node: _Node | None, path: str, k: Key, default: Any) -> Any:
    """One key's value as its declaration reads it; `default` when absent or unreadable."""
    if k.section is not None:
        return read_section(c, node, path, k.section)
    if k.convert is None:
        raise TypeError(f"{path}: its section reads it")  # a declaration without a reader
    if k.many:
        read = (c.typed(item, at, k.convert, None, k.what) for at, item in _items(c, node, path))
        return tuple(value for value in read if value is not None)
    return c.typed(node, path, k.convert, default, k.what)


def read_section(c: _Checker, node: _Node | None, path: str, settings: type[S]) -> S:
    """A mapping of keys into `settings`: every key read, then every rule checked."""
    default = settings()
    if node is None:
        return default
    m = c.mapping(node, path, yaml_names(settings), _required(settings))
    if m is None:
        return default
    values = {
        f.name: read_key(c, m.get(f.name), f"{path}.{f.name}", k, getattr(default, f.name))
        for f, k in declared(settings)
    }
    for f, k in declared(settings):
        problem = k.check(values[f.name]) if k.check is not None else None
        if problem is not None:
            c.error(f"{path}.{f.name}", m.get(f.name), problem)
    return settings(**values)


def _read(c: _Checker, m: dict[str, _Node], path: str, settings: type, name: str) -> Any:
    """A key of a mapping read by its section's own code; None when absent or unreadable."""
    return read_key(c, m.get(name), f"{path}.{name}", _key(settings, name), None)


def _token(
    c: _Checker, m: dict[str, _Node], node: _Node, path: str, base_dir: Path
) -> Token | None:
    has_token = m.get("token") is not None and m["token"].value is not None
    has_file = m.get("token_file") is not None and m["token_file"].value is not None
    if has_token and has_file:
        c.error(f"{path}.token_file", m["token_file"], "set either token or token_file, not both")
    elif has_token:
        value = c.typed(m["token"], f"{path}.token", _string, "", "a non-empty string")
        try:
            return Token(value=value)
        except TokenError as exc:
            c.error(f"{path}.token", m["token"], str(exc))
    elif has_file:
        raw = c.typed(m["token_file"], f"{path}.token_file", _string, "", "a file path")
        token_path = (base_dir / raw) if raw else None
        if token_path is not None:
            try:
                token = Token(path=token_path)
                if not token.reveal():
                    c.error(f"{path}.token_file", m["token_file"], f"{token_path} is empty")
                return token
            except OSError as exc:
                c.error(f"{path}.token_file", m["token_file"], f"cannot read: {exc.strerror}")
            except TokenError as exc:
                c.error(f"{path}.token_file", m["token_file"], f"{token_path}: {exc}")
    else:
        c.error(f"{path}.token", node, "is required (or token_file)")
    return None


def _workflows(c: _Checker, node: _Node | None, path: str) -> tuple[WorkflowRef, ...] | None:
    if node is None or node.value is None:
        return None
    refs = []
    for wpath, wnode in _items(c, node, path):
        if isinstance(wnode.value, str):
            wnode = _Node({"id": wnode}, wnode.line)
        wm = c.mapping(wnode, wpath, yaml_names(WorkflowRef), _required(WorkflowRef))
        if wm is None:
            continue
        values = _workflow_keys(c, wm, wpath)
        if values["id"]:
            refs.append(WorkflowRef(**values))
    return tuple(refs)


def _workflow_keys(c: _Checker, wm: dict[str, _Node], wpath: str) -> dict[str, Any]:
    """One entry's keys, each checked; the schedule's own keys only with a `schedule`."""
    values: dict[str, Any] = {}
    for f, k in declared(WorkflowRef):
        default = None if f.default is MISSING else f.default
        node = wm.get(f.name)
        values[f.name] = read_key(c, node, f"{wpath}.{f.name}", k, default)
        problem = k.check(values[f.name]) if k.check is not None and node is not None else None
        if problem is not None:
            c.error(f"{wpath}.{f.name}", node, problem)
    for name in ("schedule_timezone", "schedule_grace"):
        if name in wm and "schedule" not in wm:
            c.error(f"{wpath}.{name}", wm[name], "applies to a `schedule`: set one, or remove it")
    return values


def _workspace(c: _Checker, node: _Node, path: str, base_dir: Path) -> Workspace | None:
    m = c.mapping(node, path, yaml_names(Workspace), _required(Workspace))
    if m is None:
        return None
    name = _read(c, m, path, Workspace, "name")
    api_url = _read(c, m, path, Workspace, "api_url")
    token = _token(c, m, node, path, base_dir)
    workspace_id = _read(c, m, path, Workspace, "workspace_id")
    workflows = _workflows(c, m.get("workflows"), f"{path}.workflows")
    discovery = read_section(c, m.get("discovery"), f"{path}.discovery", Discovery)
    if workflows is not None and (discovery.include or discovery.exclude):
        c.error(
            f"{path}.discovery", m["discovery"], "has no effect when workflows is set; remove one"
        )
    if not name or not api_url or token is None:
        return None
    return Workspace(name, api_url, token, workspace_id, workflows, discovery)


def _workspaces(c: _Checker, root: dict[str, _Node], base_dir: Path) -> tuple[Workspace, ...]:
    workspaces: list[Workspace] = []
    seen: set[str] = set()
    ws_node = root.get("workspaces")
    for path, node in _items(c, ws_node, "workspaces"):
        ws = _workspace(c, node, path, base_dir)
        if ws is None:
            continue
        if ws.name in seen:
            c.error(f"{path}.name", node, f"workspace name {ws.name!r} is used twice")
        seen.add(ws.name)
        workspaces.append(ws)
    if ws_node is not None and isinstance(ws_node.value, list) and not ws_node.value:
        c.error("workspaces", ws_node, "needs at least one workspace")
    return tuple(workspaces)


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Parse and validate a YAML document; raise ConfigError listing every problem."""
    try:
        root_node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {problem}"]) from None
    c = _Checker(source)
    if root_node is None:
        raise ConfigError([f"{source}: the file is empty; it needs at least one workspace"])
    root = c.mapping(_convert(root_node), "", yaml_names(Config), _required(Config))
    if root is None:
        raise ConfigError(c.problems)
    workspaces = _workspaces(c, root, base_dir or Path.cwd())
    settings = {
        f.name: read_key(c, root.get(f.name), f.name, k, None)
        for f, k in declared(Config)
        if f.name != "workspaces"
    }
    if c.problems:
        raise ConfigError(c.problems)
    return Config(workspaces, source=source, **settings)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.strerror}"]) from None
    return parse_config(text, str(path), path.parent)
