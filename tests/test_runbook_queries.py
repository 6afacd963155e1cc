"""Runbook queries that combine two metrics match their labels: promtool evaluates them on
series labelled as the exporter labels them, and each must return a sample.

(The token spend "per run" query divided a metric without a `status` label by one with it, and
returned nothing on real data.)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.helpers import require_binary
from tests.procs import REPO

RUNBOOK = REPO / "docs" / "runbook.md"
TARGET = {"job": "onepin", "instance": "localhost:9879"}
WORKFLOW = {**TARGET, "workspace": "production", "workflow_id": "wf-1",
            "workflow_name": "nightly-etl"}  # fmt: skip


def runbook_queries() -> dict[str, str]:
    """comment -> query, of every query in a ```promql block of the runbook that ends with a
    `# comment` (continuation lines, indented, joined)."""
    queries: dict[str, str] = {}
    for block in re.findall(r"```promql\n(.*?)```", RUNBOOK.read_text(), re.S):
        expression: list[str] = []
        for line in block.splitlines():
            code, _, comment = line.partition("#")
            if line[:1].isspace() and expression:
                expression.append(code.strip())
            else:
                expression = [code.strip()]
            if comment.strip():
                queries[comment.strip()] = " ".join(expression)
    return queries


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def test_token_spend_per_run_returns_the_tokens_per_finished_run(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    query = runbook_queries()["per run"]
    # 100 tokens a minute; one completed and one failed run a minute: 50 tokens per run.
    series = [
        _series("onepin_workflow_run_token_cost_total", WORKFLOW, "0+100x120"),
        _series("onepin_workflow_runs_finished_total", {**WORKFLOW, "status": "completed"},
                "0+1x120"),
        _series("onepin_workflow_runs_finished_total", {**WORKFLOW, "status": "failed"},
                "0+1x120"),
    ]  # fmt: skip
    labels = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(WORKFLOW.items())) + "}"
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": query, "eval_time": "1h", "exp_samples": [{"labels": labels, "value": 50}]}
            ],
        }],
    }  # fmt: skip
    path = tmp_path / "runbook.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, f"{query}\n{proc.stdout}{proc.stderr}"
