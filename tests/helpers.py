"""Shared helpers: build a config against the fake API, poll, and read the exposition."""

from __future__ import annotations

import asyncio
import functools
import gzip
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from exporter.config import Config, parse_config
from exporter.gzipbody import gzip_stream, plain_stream
from exporter.rendering import MetricsRenderer
from exporter.server import ServerState, render
from exporter.sharedpoll import Poller
from exporter.snapshot import Snapshot
from exporter.wiring import build_poller
from tests.fakeapi import API, TOKEN, FakeOnePin


def make_config(
    *,
    api_url: str = API,
    token: str = TOKEN,
    workspace: str = "prod",
    extra_workspace_yaml: str = "",
    http: str = "{timeout: 5s, max_concurrency: 8, max_retries: 2}",
    collection: str = "{min_interval: 0s}",
) -> Config:
    text = f"""
workspaces:
  - name: {workspace}
    api_url: {api_url}
    token: {token}
{extra_workspace_yaml}
http: {http}
collection: {collection}
"""
    return parse_config(text)


def poller_for(fake: FakeOnePin, config: Config | None = None) -> Poller:
    return build_poller(config or make_config(), transport=fake.transport())


def poll(poller: Poller, timeout: float = 5.0) -> Snapshot:
    async def run() -> Snapshot:
        return await poller.snapshot(timeout)

    return asyncio.run(run())


def exposition(snapshot: Snapshot, triggered_by: bool = False) -> str:
    return MetricsRenderer(triggered_by).render(snapshot)


def samples(text: str) -> list[Sample]:
    return list(_parsed(text))


# Tests read many values out of one scrape (value(), series(), a view per workflow): the text is
# parsed once, not once per look-up (prometheus_client's parser reads it a character at a time,
# and re-parsing was most of the fault-injection tests' run time).
@functools.lru_cache(maxsize=32)
def _parsed(text: str) -> tuple[Sample, ...]:
    return tuple(s for fam in text_string_to_metric_families(text) for s in fam.samples)


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of the one sample with this name whose labels include `labels`."""
    found = [s for s in samples(text) if s.name == name and _has(s.labels, labels)]
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} match {labels}")
    return found[0].value if found else None


def series(text: str, name: str, **labels: str) -> list[Sample]:
    return [s for s in samples(text) if s.name == name and _has(s.labels, labels)]


def _has(have: Mapping[str, str], want: Mapping[str, str]) -> bool:
    return all(have.get(k) == v for k, v in want.items())


def render_text(snapshot: Snapshot, config: Config, accept: str | None = None) -> str:
    """What /metrics serves: process metrics and the snapshot's families."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    state = ServerState(config, 0.0, registry, MetricsRenderer())
    pieces = list(render(snapshot, state, accept)[0])
    body = b"".join(plain_stream(pieces))
    assert gzip.decompress(b"".join(gzip_stream(pieces))) == body  # what a gzip scraper gets
    return body.decode()


def require_binary(name: str) -> str:
    """Path of a binary the test needs; skip without it, except in CI where it must exist.

    Looked for on PATH, in /usr/bin (Debian's packages) and beside this Python (the test
    extras' commands, when the venv is not on PATH)."""
    path = shutil.which(name) or shutil.which(name, path=f"/usr/bin:{Path(sys.executable).parent}")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is required in CI (the test command installs it)")
    pytest.skip(f"{name} not installed")


def listed_workspace(
    name: str, api_url: str, token: str, workflows: Mapping[str, str], schedules: Mapping[str, str]
) -> str:
    """YAML `workspaces:` of one workspace listing each workflow of `workflows` (id -> name),
    those whose name is in `schedules` with that entry's keys (e.g. `schedule: '@daily'`)."""
    entries = "".join(
        f"      - {{id: '{wid}', {schedules[wf]}}}\n" if wf in schedules else f"      - '{wid}'\n"
        for wid, wf in workflows.items()
    )
    return (
        f"workspaces:\n  - name: {name}\n    api_url: '{api_url}'\n    token: {token}\n"
        f"    workflows:\n{entries}"
    )
