"""Sharding: each workflow is exported by exactly one of M processes, the same one every time."""

from __future__ import annotations

import urllib.request

import pytest

from exporter.sharding import Shard, parse_shard, shard_of
from exporter.simulator.config import SimulatorConfig
from exporter.simulator.server import RunningSimulator
from tests.background import BackgroundExporter
from tests.helpers import make_config, samples, value


def workflows_exported(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {s.labels["workflow_id"] for s in samples(text) if s.name == "onepin_workflow_info"}


def shard_metrics(url: str) -> tuple[float | None, float | None]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        text = response.read().decode()
    return value(text, "onepin_exporter_shard_ordinal"), value(text, "onepin_exporter_total_shards")


def test_three_shards_split_the_workflows_with_no_gap_or_overlap() -> None:
    with RunningSimulator(SimulatorConfig(workflows=60, seed=3)) as sim:
        config = make_config(api_url=sim.url, token=sim.token)
        with BackgroundExporter(config) as whole:
            everything = workflows_exported(whole.url)
        assert len(everything) == 60

        def run_shards() -> list[set[str]]:
            parts = []
            for ordinal in range(3):
                with BackgroundExporter(config, shard=Shard(ordinal, 3)) as part:
                    parts.append(workflows_exported(part.url))
                    assert shard_metrics(part.url) == (ordinal, 3)
            return parts

        first = run_shards()
        assert set().union(*first) == everything
        assert sum(len(p) for p in first) == len(everything)  # no workflow twice
        assert all(first), "every shard gets some of 60 workflows"
        assert run_shards() == first  # stable across restarts


def test_shard_assignment_is_a_stable_hash() -> None:
    # Fixed expectations: a change in the hash would move every workflow to another shard.
    assert [shard_of(f"wf-{i}", 3) for i in range(8)] == [0, 1, 0, 0, 0, 1, 0, 2]
    assert shard_of("3fa85f64-5717-4562-b3fc-2c963f66afa6", 1) == 0
    assert Shard(0, 1).selects("anything")


@pytest.mark.parametrize(
    ("shard", "total", "host", "expected"),
    [("auto", 3, "onepin-exporter-2", 2), ("auto", 3, "onepin-exporter-0.svc.local", 0),
     ("1", 2, None, 1)],
)  # fmt: skip
def test_shard_flags(shard: str, total: int, host: str | None, expected: int) -> None:
    assert parse_shard(shard, total, host) == Shard(expected, total)


@pytest.mark.parametrize(
    ("shard", "total", "host", "message"),
    [("auto", 3, "laptop", "needs a hostname ending in -N"), ("3", 3, None, "out of range"),
     ("x", 2, None, "a number or 'auto'"), ("0", 0, None, "at least 1")],
)  # fmt: skip
def test_bad_shard_flags_are_explained(
    shard: str, total: int, host: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(shard, total, host)
