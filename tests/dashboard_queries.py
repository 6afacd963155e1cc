"""The PromQL of the committed Grafana dashboards and alert rules, ready to run or check.

Used by tests/test_dashboards.py and tests/test_rules.py, and meant for end-to-end tests that run
every dashboard query against a real Prometheus scraping the exporter:

    from tests.dashboard_queries import dashboard_queries
    for dashboard, panel, expr in dashboard_queries():
        ...  # GET /api/v1/query?query=expr

Grafana's variables are substituted so that each query selects everything: dashboard variables
($workspace, $workflow, $job, $instance) become `.*`, $__rate_interval and $__interval become 1m,
$__range becomes 1h.

It also holds the list of metric names the exporter emits (design.md §4.4) and a small PromQL
scanner that lists the metric names an expression selects, so that tests can check that
dashboards and alerts refer to nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.contract import CONTRACT_METRICS

REPO = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = REPO / "grafana" / "dashboards"

# Grafana's built-in interval variables, as the tests substitute them.
BUILTIN_VARIABLES = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}

# --- the metric contract (design.md §4.4) -----------------------------------------------------

# Set by Prometheus for every target, beside the exporter's contract.
KNOWN_METRICS: frozenset[str] = CONTRACT_METRICS | {"up"}
# prometheus_client's standard process and Python collectors.
STANDARD_PREFIXES = ("process_", "python_")


def is_known_metric(name: str) -> bool:
    return name in KNOWN_METRICS or name.startswith(STANDARD_PREFIXES)


# --- a PromQL scanner --------------------------------------------------------------------------

AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
FUNCTIONS = frozenset(
    {
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "deg",
        "delta",
        "deriv",
        "double_exponential_smoothing",
        "end",
        "exp",
        "floor",
        "histogram_avg",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_stddev",
        "histogram_stdvar",
        "histogram_sum",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "mad_over_time",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_by_label",
        "sort_by_label_desc",
        "sort_desc",
        "sqrt",
        "start",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    }
)
# Keywords followed by a parenthesised label list, which is not an expression.
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OTHER_KEYWORDS = frozenset({"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    |(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<duration>(?:\d+(?:ms|[smhdwy]))+)(?![\w.])
    |(?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<op>==|!=|>=|<=|=~|!~|[-+*/%^=<>(){}\[\],:@])
    """,
    re.VERBOSE,
)


class PromQLScanError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(expr: str) -> list[Token]:
    """Split a PromQL expression into tokens, leaving out white space and comments."""
    out: list[Token] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLScanError(f"unexpected character {expr[pos]!r} at {pos} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            out.append(Token(kind, match.group()))
        pos = match.end()
    return out


@dataclass(frozen=True)
class Selectors:
    """What an expression selects: metric names, and `__name__` matchers of name-less selectors."""

    names: frozenset[str]
    name_matchers: tuple[tuple[str, str], ...]
    # Every series selector: (metric name or "", its label matchers as written, e.g. job=~"x").
    selectors: tuple[tuple[str, frozenset[str]], ...] = ()


def _closing(toks: list[Token], start: int, opening: str, closing: str) -> int:
    depth = 0
    for index in range(start, len(toks)):
        if toks[index].text == opening:
            depth += 1
        elif toks[index].text == closing:
            depth -= 1
            if depth == 0:
                return index
    raise PromQLScanError(f"unbalanced {opening!r}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(text: str) -> str:
    """The value of a PromQL string literal."""
    body = text[1:-1]
    if text.startswith("`"):
        return body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def _label_matchers(inner: list[Token]) -> frozenset[str]:
    """The matchers between a selector's braces, each as `label op "value"`."""
    parts: list[list[str]] = [[]]
    for tok in inner:
        if tok.text == ",":
            parts.append([])
        else:
            parts[-1].append(tok.text)
    return frozenset("".join(part) for part in parts if part)


def scan(expr: str) -> Selectors:
    """The metric names (and __name__ matchers) an expression selects.

    Raises PromQLScanError for an identifier used as a function that PromQL does not have.
    It is a scanner, not a parser: pair it with `promtool check rules` for syntax.
    """
    toks = tokens(expr)
    names: set[str] = set()
    matchers: list[tuple[str, str]] = []
    selectors: list[tuple[str, frozenset[str]]] = []
    index = 0
    while index < len(toks):
        tok = toks[index]
        following = toks[index + 1] if index + 1 < len(toks) else None
        if tok.text == "{":
            end = _closing(toks, index, "{", "}")
            inner = toks[index + 1 : end]
            previous = toks[index - 1] if index > 0 else None
            if previous is None or previous.kind != "ident" or previous.text in OTHER_KEYWORDS:
                selectors.append(("", _label_matchers(inner)))
                for pos in range(len(inner) - 2):
                    if inner[pos].text == "__name__" and inner[pos + 2].kind == "string":
                        matchers.append((inner[pos + 1].text, _unquote(inner[pos + 2].text)))
            index = end + 1
            continue
        if tok.text == "[":
            index = _closing(toks, index, "[", "]") + 1
            continue
        if tok.kind == "ident":
            word = tok.text
            if word in LABEL_LIST_KEYWORDS:
                if following is not None and following.text == "(":
                    index = _closing(toks, index + 1, "(", ")") + 1
                else:
                    index += 1
                continue
            if word in OTHER_KEYWORDS:
                index += 1
                continue
            if (
                word in AGGREGATIONS
                and following is not None
                and following.text in ("by", "without")
            ):
                index += 1  # `sum by (...) (...)`: the label list is skipped next
                continue
            if following is not None and following.text == "(":
                if word not in FUNCTIONS and word not in AGGREGATIONS:
                    raise PromQLScanError(f"unknown function {word!r} in {expr!r}")
                index += 1
                continue
            names.add(word)
            if following is not None and following.text == "{":
                end = _closing(toks, index + 1, "{", "}")
                selectors.append((word, _label_matchers(toks[index + 2 : end])))
                index = end
            else:
                selectors.append((word, frozenset()))
        index += 1
    return Selectors(frozenset(names), tuple(matchers), tuple(selectors))


def unknown_metrics(expr: str) -> list[str]:
    """Names (or __name__ matchers) in expr that are not metrics the exporter emits."""
    found = scan(expr)
    bad = sorted(name for name in found.names if not is_known_metric(name))
    for op, value in found.name_matchers:
        if op in ("=", "!="):
            ok = op == "!=" or is_known_metric(value)
        else:
            pattern = re.compile(value)
            ok = op == "!~" or any(pattern.fullmatch(name) for name in KNOWN_METRICS)
        if not ok:
            bad.append(f"__name__{op}{value!r}")
    return bad


# --- the dashboards ----------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


def substitute(expr: str, variables: set[str]) -> str:
    """Replace Grafana variables: dashboard ones by `.*`, interval ones by fixed durations."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in BUILTIN_VARIABLES:
            return BUILTIN_VARIABLES[name]
        if name in variables:
            return ".*"
        raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")

    return _VARIABLE.sub(replace, expr)


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # dashboard title
    panel: str  # panel title
    ref_id: str
    raw_expr: str  # as in the dashboard
    expr: str  # with the variables substituted
    instant: bool


def load_dashboards(directory: Path = DASHBOARD_DIR) -> dict[str, dict[str, Any]]:
    """File name -> dashboard model of every committed dashboard."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def variable_names(model: dict[str, Any]) -> set[str]:
    return {variable["name"] for variable in model.get("templating", {}).get("list", [])}


def panel_queries(directory: Path = DASHBOARD_DIR) -> list[PanelQuery]:
    out: list[PanelQuery] = []
    for model in load_dashboards(directory).values():
        variables = variable_names(model)
        for panel in iter_panels(model["panels"]):
            for tgt in panel.get("targets", []):
                raw = tgt["expr"]
                out.append(
                    PanelQuery(
                        dashboard=model["title"],
                        panel=panel["title"],
                        ref_id=tgt["refId"],
                        raw_expr=raw,
                        expr=substitute(raw, variables),
                        instant=bool(tgt.get("instant", False)),
                    )
                )
    return out


def dashboard_queries(directory: Path = DASHBOARD_DIR) -> list[tuple[str, str, str]]:
    """(dashboard title, panel title, substituted expr) for every panel target."""
    return [(q.dashboard, q.panel, q.expr) for q in panel_queries(directory)]


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),)?\s*(?P<label>\w+)\s*\)$", re.S)
_QUERY_RESULT = re.compile(r"^query_result\((?P<selector>.+)\)$", re.S)


def variable_selectors(directory: Path = DASHBOARD_DIR) -> list[tuple[str, str, str]]:
    """(dashboard title, variable name, substituted query) of the query variables: the series
    selector of label_values(selector, label), the expression of query_result(expression)."""
    out: list[tuple[str, str, str]] = []
    for model in load_dashboards(directory).values():
        variables = variable_names(model)
        for variable in model["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = _LABEL_VALUES.match(text.strip()) or _QUERY_RESULT.match(text.strip())
            if match is None or match.group("selector") is None:
                raise ValueError(f"{model['title']}: ${variable['name']}: unknown query: {text}")
            selector = substitute(match.group("selector").strip(), variables)
            out.append((model["title"], variable["name"], selector))
    return out


# --- tools -------------------------------------------------------------------------------------


def require_binary(name: str, package: str) -> str:
    """Path of a command-line tool; skip the test without it, unless CI=true (then fail)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found on PATH (Debian package: {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true, so this is an error, not a skip")
        pytest.skip(message)
    return path
