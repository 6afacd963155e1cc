"""The docs write PromQL by the convention of tests/doc_queries.py, so that the end-to-end test
(tests/test_docs_queries_e2e.py) runs every query of README.md and docs/*.md: no query escapes."""

from __future__ import annotations

from tests.doc_queries import escapes, scan_markdown

SAMPLE = """\
# Title

Alert when `onepin_up == 0`, or when no `job=~".*onepin.*"` target exists; the `onepin_run_*`
gauges; `rate(…{code="429"}) > 0` with `> 0`; add `unless on (…) onepin_workflow_info{x="…"}`;
`increase()` sees the first; `onepin_workflow_up 0` is a sample; it stays up, or goes down.

| Metric | Meaning | Example |
|---|---|---|
| `onepin_up` | 1 if `onepin_workflow_info` | `onepin_up` |
| `onepin_workflow_runs` | runs | `sum by (status) (onepin_workflow_runs)` |

```promql
onepin_run_status{run_id="…"} == 1      # a comment
sum by (workspace) (
  onepin_workflow_runs
  )
```

```yaml
expr: onepin_up == 0
```

```sh
curl -s localhost:9879/metrics | grep onepin_up   # onepin_up == 0 in a comment counts
docker compose up --build
```

Prose: when onepin_up == 0 fires, or rate(onepin_api_requests_total[5m]) grows.
"""


def test_the_convention_finds_every_query_and_nothing_else() -> None:
    found, outside = scan_markdown(SAMPLE, "sample.md")
    assert [(q.line, q.expr) for q in found] == [
        (3, "onepin_up == 0"),
        (9, "onepin_up"),  # an Example cell is a query, even a bare name
        (10, "sum by (status) (onepin_workflow_runs)"),
        (13, 'onepin_run_status{run_id="…"} == 1'),
        (14, "sum by (workspace) ( onepin_workflow_runs )"),
    ]
    assert outside == [
        "sample.md:24: PromQL in a sh code block (put queries in a ```promql block): "
        "curl -s localhost:9879/metrics | grep onepin_up   # onepin_up == 0 in a comment counts",
        "sample.md:28: PromQL outside backticks (write it as `…`): "
        "Prose: when onepin_up == 0 fires, or rate(onepin_api_requests_total[5m]) grows.",
    ]


def test_the_docs_write_promql_only_where_the_test_finds_it() -> None:
    assert escapes() == []
