"""Where dashboards and alerts link to: the runbook in the repository, and the OnePin app."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The OnePin web app. The API documentation shows no URL of a workflow or run page in the app, so
# the dashboards assume <app>/workflows/<workflow id>[/runs/<run id>]; the base is a dashboard
# constant (variable app_url) to set when provisioning.
APP_URL = "https://app.onepin.ai"


@cache
def repository() -> str:
    """The repository's URL, from pyproject.toml's [project.urls] Source."""
    with (REPO / "pyproject.toml").open("rb") as file:
        url: str = tomllib.load(file)["project"]["urls"]["Source"]
    return url.rstrip("/")


def runbook() -> str:
    """docs/runbook.md as GitHub shows it; an alert's section is #<alert name in lower case>."""
    return f"{repository()}/blob/main/docs/runbook.md"


def runbook_section(alert: str) -> str:
    return f"{runbook()}#{alert.lower()}"


def app_workflow(base: str, workflow_id: str) -> str:
    return f"{base}/workflows/{workflow_id}"


def app_run(base: str, workflow_id: str, run_id: str) -> str:
    return f"{app_workflow(base, workflow_id)}/runs/{run_id}"
