"""Load and validate the YAML configuration into frozen typed objects.

Nothing else in the project parses YAML. Every error names the key path and, where YAML gives
one, the file and line, and all errors are reported at once.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

T = TypeVar("T")
log = logging.getLogger("exporter.config")

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class ConfigError(Exception):
    """The configuration is invalid; `problems` lists every problem found, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Discovery:
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    def selects(self, name: str) -> bool:
        if self.include and not any(p.search(name) for p in self.include):
            return False
        return not any(p.search(name) for p in self.exclude)


class TokenError(ValueError):
    """A token that cannot be sent as a bearer credential; the message never shows it."""


def token_problem(value: str) -> str | None:
    """What makes a token unusable in an `Authorization: Bearer` header, without showing it.

    Printable ASCII only, and no quote or backslash: those are what a log line or an HTTP
    header would have to escape, after which the log scrubbing could no longer find the token."""
    for i, char in enumerate(value, 1):
        if "!" <= char <= "~" and char not in '"\\':
            continue
        if char in "\r\n":
            what = "a line break"
        elif char.isspace():
            what = "a space"
        elif not char.isprintable():
            what = "a control character"
        elif char.isascii():
            what = "a quote or backslash"
        else:
            what = "a non-ASCII character"
        return (
            f"the token holds {what} at character {i} of {len(value)}:"
            " a key is one line of printable ASCII, without quotes"
        )
    return None


class Token:
    """The API token, read from the config or from a file that is re-read when it changes.

    Its repr and str never show the value, so it cannot leak through logs or tracebacks.
    Surrounding whitespace (a token file's final newline) is removed; a token with a line break
    or control character inside is refused with `TokenError`.
    """

    def __init__(self, value: str | None = None, path: Path | None = None) -> None:
        self._value = _checked((value or "").strip())
        self._path = path
        self._mtime: float | None = None
        if path is not None:
            self._read(path)  # at start-up an unreadable file is an error (OSError, TokenError)

    @property
    def source(self) -> str:
        return f"token_file {self._path}" if self._path else "token"

    def refresh(self) -> bool:
        """Re-read the token file if it changed; True when the token value changed."""
        if self._path is None:
            return False
        try:
            if self._path.stat().st_mtime == self._mtime:
                return False
            old = self._value
            self._read(self._path)
        except OSError:
            return False  # keep the last token while the file is being replaced
        except TokenError as exc:  # keep the last token; said once per change of the file
            log.error("token file not used: %s", exc, extra={"token_file": str(self._path)})
            return False
        return self._value != old

    def _read(self, path: Path) -> None:
        self._mtime = path.stat().st_mtime
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TokenError("the token is not UTF-8 text") from None
        self._value = _checked(text.strip())

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Token(<redacted>)"

    __str__ = __repr__


def _checked(value: str) -> str:
    problem = token_problem(value)
    if problem is not None:
        raise TokenError(problem)
    return value


@dataclass(frozen=True, slots=True)
class Workspace:
    name: str
    api_url: str
    token: Token = field(repr=False)
    workspace_id: str | None = None
    workflows: tuple[WorkflowRef, ...] | None = None
    discovery: Discovery = Discovery()


@dataclass(frozen=True, slots=True)
class HttpSettings:
    timeout: float = 10.0
    max_concurrency: int = 16
    max_retries: int = 2
    ca_file: str | None = None
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Which metric families are exported: regexes matching whole family names; exclude wins,
    an empty include allows every family."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CollectionSettings:
    min_interval: float = 10.0
    recent_runs: int = 20
    run_series: bool = True
    stale_after: float = 300.0
    max_duration: float = 30.0
    runs_summary: bool = True
    triggered_by_label: bool = False
    metrics: MetricsSettings = MetricsSettings()


@dataclass(frozen=True, slots=True)
class Config:
    workspaces: tuple[Workspace, ...]
    http: HttpSettings = HttpSettings()
    collection: CollectionSettings = CollectionSettings()
    source: str = "<config>"


# --- YAML with line numbers -------------------------------------------------------------------


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


# --- value converters --------------------------------------------------------------------------


def parse_duration(value: Any) -> float:
    """`15s`, `5m`, `1h`, `250ms` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError("")
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _positive_int(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            else:
                raise ValueError("")
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return int(value)

    return convert


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("")


def _string(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("")
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _url(value: Any) -> str:
    text = _string(value).rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use token or token_file")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    if parts.path.lower().endswith("/api/v1"):
        # The client adds /api/v1 to every path: kept, it would make every request a 404.
        origin = text[: -len("/api/v1")]
        raise ValueError(f"must be the API's address without /api/v1, which the exporter adds "
                         f"to every request: api_url: {origin}")  # fmt: skip
    return text


def _regex(value: Any) -> re.Pattern[str]:
    try:
        return re.compile(_string(value))
    except re.error as exc:
        raise ValueError(f"invalid regular expression ({exc})") from None


# --- sections ----------------------------------------------------------------------------------

_WORKSPACE_KEYS = {
    "name",
    "api_url",
    "token",
    "token_file",
    "workspace_id",
    "workflows",
    "discovery",
}
_HTTP_KEYS = {"timeout", "max_concurrency", "max_retries", "ca_file", "insecure_skip_verify"}
_COLLECTION_KEYS = {
    "min_interval",
    "recent_runs",
    "run_series",
    "stale_after",
    "max_duration",
    "runs_summary",
    "triggered_by_label",
    "metrics",
}


def _items(c: _Checker, node: _Node | None, path: str) -> Iterator[tuple[str, _Node]]:
    if node is None or node.value is None:
        return
    if not isinstance(node.value, list):
        c.error(path, node, f"expected a list, got {_kind(node.value)}")
        return
    for i, item in enumerate(node.value):
        yield f"{path}[{i}]", item


def _workspace(c: _Checker, node: _Node, path: str, base_dir: Path) -> Workspace | None:
    m = c.mapping(node, path, _WORKSPACE_KEYS, frozenset({"name", "api_url"}))
    if m is None:
        return None
    name = c.typed(m.get("name"), f"{path}.name", _string, "", "a non-empty string")
    api_url = c.typed(m.get("api_url"), f"{path}.api_url", _url, "", "an http(s) URL")
    token: Token | None = None
    has_token = m.get("token") is not None and m["token"].value is not None
    has_file = m.get("token_file") is not None and m["token_file"].value is not None
    if has_token and has_file:
        c.error(f"{path}.token_file", m["token_file"], "set either token or token_file, not both")
    elif has_token:
        value = c.typed(m["token"], f"{path}.token", _string, "", "a non-empty string")
        try:
            token = Token(value=value)
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
            except OSError as exc:
                c.error(f"{path}.token_file", m["token_file"], f"cannot read: {exc.strerror}")
            except TokenError as exc:
                c.error(f"{path}.token_file", m["token_file"], f"{token_path}: {exc}")
    else:
        c.error(f"{path}.token", node, "is required (or token_file)")
    workspace_id = c.typed(m.get("workspace_id"), f"{path}.workspace_id", _string, None, "a string")

    workflows: tuple[WorkflowRef, ...] | None = None
    if m.get("workflows") is not None and m["workflows"].value is not None:
        refs = []
        for wpath, wnode in _items(c, m["workflows"], f"{path}.workflows"):
            if isinstance(wnode.value, str):
                wnode = _Node({"id": wnode}, wnode.line)
            wm = c.mapping(wnode, wpath, {"id", "name"}, frozenset({"id"}))
            if wm is None:
                continue
            wid = c.typed(wm.get("id"), f"{wpath}.id", _string, "", "a workflow id")
            wname = c.typed(wm.get("name"), f"{wpath}.name", _string, None, "a string")
            if wid:
                refs.append(WorkflowRef(wid, wname))
        workflows = tuple(refs)

    discovery = Discovery()
    if m.get("discovery") is not None:
        dpath = f"{path}.discovery"
        dm = c.mapping(m["discovery"], dpath, {"include", "exclude"})
        if dm is not None:
            patterns: dict[str, tuple[re.Pattern[str], ...]] = {}
            for key in ("include", "exclude"):
                compiled = []
                for rpath, rnode in _items(c, dm.get(key), f"{dpath}.{key}"):
                    pattern = c.typed(rnode, rpath, _regex, None, "a regular expression")
                    if pattern is not None:
                        compiled.append(pattern)
                patterns[key] = tuple(compiled)
            discovery = Discovery(patterns["include"], patterns["exclude"])
            if workflows is not None and (discovery.include or discovery.exclude):
                c.error(dpath, m["discovery"], "has no effect when workflows is set; remove one")
    if not name or not api_url or token is None:
        return None
    return Workspace(name, api_url, token, workspace_id, workflows, discovery)


def _http(c: _Checker, node: _Node | None) -> HttpSettings:
    d = HttpSettings()
    if node is None:
        return d
    m = c.mapping(node, "http", _HTTP_KEYS)
    if m is None:
        return d
    settings = HttpSettings(
        timeout=c.typed(m.get("timeout"), "http.timeout", parse_duration, d.timeout, "a duration"),
        max_concurrency=c.typed(
            m.get("max_concurrency"),
            "http.max_concurrency",
            _positive_int(1, 1024),
            d.max_concurrency,
            "an integer",
        ),
        max_retries=c.typed(
            m.get("max_retries"),
            "http.max_retries",
            _positive_int(0, 10),
            d.max_retries,
            "an integer",
        ),
        ca_file=c.typed(m.get("ca_file"), "http.ca_file", _string, None, "a file path"),
        insecure_skip_verify=c.typed(
            m.get("insecure_skip_verify"),
            "http.insecure_skip_verify",
            _bool,
            False,
            "true or false",
        ),
    )
    if settings.timeout <= 0:
        c.error("http.timeout", m.get("timeout"), "must be greater than 0")
    if settings.ca_file and not Path(settings.ca_file).is_file():
        c.error("http.ca_file", m.get("ca_file"), f"{settings.ca_file} is not a readable file")
    return settings


def _collection(c: _Checker, node: _Node | None) -> CollectionSettings:
    d = CollectionSettings()
    if node is None:
        return d
    m = c.mapping(node, "collection", _COLLECTION_KEYS)
    if m is None:
        return d

    def dur(key: str, default: float) -> float:
        return c.typed(m.get(key), f"collection.{key}", parse_duration, default, "a duration")

    def flag(key: str, default: bool) -> bool:
        return c.typed(m.get(key), f"collection.{key}", _bool, default, "true or false")

    settings = CollectionSettings(
        min_interval=dur("min_interval", d.min_interval),
        recent_runs=c.typed(
            m.get("recent_runs"),
            "collection.recent_runs",
            _positive_int(1, 100),
            d.recent_runs,
            "an integer",
        ),
        run_series=flag("run_series", d.run_series),
        stale_after=dur("stale_after", d.stale_after),
        max_duration=dur("max_duration", d.max_duration),
        runs_summary=flag("runs_summary", d.runs_summary),
        triggered_by_label=flag("triggered_by_label", d.triggered_by_label),
        metrics=_metrics(c, m.get("metrics")),
    )
    if settings.max_duration <= 0:
        c.error("collection.max_duration", m.get("max_duration"), "must be greater than 0")
    return settings


def _metrics(c: _Checker, node: _Node | None) -> MetricsSettings:
    """collection.metrics: include and exclude, lists of regexes on family names."""
    m = c.mapping(node, "collection.metrics", {"include", "exclude"}) if node else None
    if m is None:
        return MetricsSettings()
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("include", "exclude"):
        patterns = []
        for path, item in _items(c, m.get(key), f"collection.metrics.{key}"):
            try:
                patterns.append(re.compile(str(item.value)).pattern)
            except re.error as exc:
                c.error(path, item, f"not a regular expression: {exc}")
        lists[key] = tuple(patterns)
    return MetricsSettings(lists["include"], lists["exclude"])


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
    root = c.mapping(
        _convert(root_node), "", {"workspaces", "http", "collection"}, frozenset({"workspaces"})
    )
    if root is None:
        raise ConfigError(c.problems)
    workspaces: list[Workspace] = []
    seen: set[str] = set()
    ws_node = root.get("workspaces")
    for path, node in _items(c, ws_node, "workspaces"):
        ws = _workspace(c, node, path, base_dir or Path.cwd())
        if ws is None:
            continue
        if ws.name in seen:
            c.error(f"{path}.name", node, f"workspace name {ws.name!r} is used twice")
        seen.add(ws.name)
        workspaces.append(ws)
    if ws_node is not None and isinstance(ws_node.value, list) and not ws_node.value:
        c.error("workspaces", ws_node, "needs at least one workspace")
    http = _http(c, root.get("http"))
    collection = _collection(c, root.get("collection"))
    if c.problems:
        raise ConfigError(c.problems)
    return Config(tuple(workspaces), http, collection, source)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.strerror}"]) from None
    return parse_config(text, str(path), path.parent)


def describe(config: Config) -> str:
    """A redacted, human-readable summary for --config.check."""
    lines = [f"config {config.source} is valid"]
    for ws in config.workspaces:
        lines.append(f"workspace {ws.name}: api_url={ws.api_url} credentials={ws.token.source}")
        if ws.workspace_id:
            lines.append(f"  workspace_id={ws.workspace_id}")
        if ws.workflows is not None:
            lines.append(f"  workflows: {len(ws.workflows)} listed")
            lines.extend(f"    - {w.id}" + (f" ({w.name})" if w.name else "") for w in ws.workflows)
        else:
            inc = ", ".join(p.pattern for p in ws.discovery.include) or "all"
            exc = ", ".join(p.pattern for p in ws.discovery.exclude) or "none"
            lines.append(f"  workflows: discovered (include: {inc}; exclude: {exc})")
    h, col = config.http, config.collection
    lines.append(
        f"http: timeout={h.timeout:g}s max_concurrency={h.max_concurrency} "
        f"max_retries={h.max_retries}"
        + (" insecure_skip_verify=true" if h.insecure_skip_verify else "")
    )
    lines.append(
        f"collection: min_interval={col.min_interval:g}s recent_runs={col.recent_runs} "
        f"run_series={str(col.run_series).lower()} stale_after={col.stale_after:g}s "
        f"max_duration={col.max_duration:g}s runs_summary={str(col.runs_summary).lower()}"
    )
    return "\n".join(lines)
