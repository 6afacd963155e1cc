"""The PromQL queries of README.md and docs/*.md, found by one convention that lets none escape.

The convention (what a writer of the docs follows):

- A ```promql block holds queries, one per line; a line that starts with a space continues the
  query above it, and `#` starts a comment.
- In a table with an *Example* column, every code span of that column is a query.
- Any other code span is a query when it looks like one: it names a metric (`onepin_…`, `up`,
  `scrape_…`) with a selector, operator or function around it. A span that is only a piece of
  a query says so: the part left out is written `…` (or `...`), e.g. `rate(…{code="429"}) > 0`,
  or it starts with the operator or keyword it adds (`unless on (…) onepin_workflow_info`).
- A label value `"…"` inside a query is a placeholder the reader fills in (`run_id="…"`); the
  end-to-end test fills it with a value that exists.
- Queries go nowhere else: no PromQL in prose outside backticks, nor in ```sh or plain blocks.
  ```yaml blocks are configuration (alert rule excerpts are checked by the rule tests).

`queries()` returns every query; `escapes()` every query-looking text outside the convention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.procs import REPO

PLACEHOLDER = "…"
# A metric name: the exporter's, Prometheus's scrape metrics, and `up` where it is one.
METRIC = re.compile(
    r"\b(?:onepin_[a-z0-9_]*[a-z0-9]|scrape_[a-z_]*[a-z]|up(?=\s*(?:[{\[=!<>]|$)))\b"
)
# PromQL around a metric name: a selector, a range, a call, an operator or a keyword.
SYNTAX = re.compile(r"[{}\[\]()]|==|!=|>=|<=|[<>+/*%^-]|\b(?:and|or|unless|by|without|offset)\b")
# PromQL beyond doubt, where words and shell lines surround it: a metric with a selector, a
# range or a comparison right after it, or as a function's argument.
PLAIN_QUERY = re.compile(
    rf"(?:{METRIC.pattern})\s*(?:[{{\[]|[=!<>]=|[<>]\s*[\d(])|\b[a-z_]+\(\s*(?:{METRIC.pattern})"
)
# `onepin_run_*` or `onepin_workflow_last_run_…`: several metric names, not a query.
NAME_GLOB = re.compile(r"\b[a-z_]+_(?:\*|…)")
ELLIPSIS = re.compile(r"…|\.\.\.")
# A piece that extends a query: starts with the operator or keyword it adds.
TAIL = re.compile(r"^(?:==|!=|>=|<=|[<>+/*%^-]|and\b|or\b|unless\b|offset\b|by\b|without\b|on\b)")


@dataclass(frozen=True, slots=True)
class DocQuery:
    path: str  # relative to the repository
    line: int  # 1-based, where the query (or its table row or paragraph) starts
    expr: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def looks_like_promql(text: str) -> bool:
    """True for text that a reader would take for PromQL (a query or a piece of one)."""
    text = NAME_GLOB.sub("", text)
    return bool(METRIC.search(text)) and bool(SYNTAX.search(text))


def is_piece(text: str) -> bool:
    """A piece of a query written as the convention says: elided, or a tail."""
    text = text.strip()
    return bool(ELLIPSIS.search(_without_placeholders(text)) or TAIL.match(text))


def _without_placeholders(text: str) -> str:
    return text.replace(f'"{PLACEHOLDER}"', '""')


def block_queries(content: str) -> list[tuple[int, str]]:
    """(line offset, query) of a ```promql block: one per line, indented lines continue it."""
    found: list[tuple[int, list[str]]] = []
    for offset, line in enumerate(content.splitlines()):
        code = line.split("#", 1)[0].rstrip()
        if not code.strip():
            continue
        if line[:1].isspace() and found:
            found[-1][1].append(code.strip())
        else:
            found.append((offset, [code.strip()]))
    return [(offset, " ".join(parts)) for offset, parts in found]


@dataclass(slots=True)
class _Scan:
    path: str
    queries: list[DocQuery]
    escapes: list[str]

    def fence(self, token: Token) -> None:
        assert token.map is not None
        # The first line of code, 1-based: after the opening fence of a fenced block.
        first = token.map[0] + (2 if token.type == "fence" else 1)
        language = token.info.strip().split(" ")[0] if token.type == "fence" else "indented"
        if language == "promql":
            for offset, expr in block_queries(token.content):
                self.queries.append(DocQuery(self.path, first + offset, expr))
        elif language != "yaml":
            for offset, line in enumerate(token.content.splitlines()):
                if PLAIN_QUERY.search(line):
                    self.escapes.append(
                        f"{self.path}:{first + offset}: PromQL in a {language} code block "
                        f"(put queries in a ```promql block): {line.strip()}"
                    )

    def inline(self, token: Token, example_cell: bool) -> None:
        assert token.map is not None and token.children is not None
        line = token.map[0] + 1
        for child in token.children:
            text = child.content
            if child.type == "code_inline":
                if example_cell or (looks_like_promql(text) and not is_piece(text)):
                    self.queries.append(DocQuery(self.path, line, text.strip()))
            elif child.type == "text" and PLAIN_QUERY.search(text):
                self.escapes.append(
                    f"{self.path}:{line}: PromQL outside backticks (write it as `…`): {text}"
                )


def scan_markdown(text: str, name: str) -> tuple[list[DocQuery], list[str]]:
    """The queries of one Markdown document, and its PromQL outside the convention."""
    scan = _Scan(name, [], [])
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headers: list[str] = []
    column = 0
    previous = ""
    for token in tokens:
        if token.type == "thead_open":
            headers = []
        elif token.type == "tr_open":
            column = 0
        elif token.type in ("th_close", "td_close"):
            column += 1
        elif token.type in ("fence", "code_block"):
            scan.fence(token)
        elif token.type == "inline" and previous == "th_open":
            headers.append(token.content.strip())
        elif token.type == "inline":
            in_cell = previous == "td_open"
            scan.inline(token, in_cell and column < len(headers) and headers[column] == "Example")
        previous = token.type
    return scan.queries, scan.escapes


def _scan(path: Path) -> tuple[list[DocQuery], list[str]]:
    return scan_markdown(path.read_text(encoding="utf-8"), path.relative_to(REPO).as_posix())


def queries() -> list[DocQuery]:
    return [query for path in doc_files() for query in _scan(path)[0]]


def escapes() -> list[str]:
    return [problem for path in doc_files() for problem in _scan(path)[1]]
