"""Split workflows across exporter processes by a stable hash of their id (design §8)."""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric

from exporter.metrics import SHARD_ORDINAL, TOTAL_SHARDS

_ORDINAL = re.compile(r"-(\d+)$")


def shard_of(workflow_id: str, total: int) -> int:
    """The shard a workflow belongs to: the same on every host, run and Python version."""
    digest = hashlib.blake2b(workflow_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % total


@dataclass(frozen=True, slots=True)
class Shard:
    ordinal: int = 0
    total: int = 1

    def selects(self, workflow_id: str) -> bool:
        return self.total == 1 or shard_of(workflow_id, self.total) == self.ordinal

    def collect(self) -> Iterator[Metric]:
        yield SHARD_ORDINAL.metric(self.ordinal)
        yield TOTAL_SHARDS.metric(self.total)


def parse_shard(shard: str, total: int, hostname: str | None = None) -> Shard:
    """`--shard=N` or `--shard=auto` (the ordinal of a StatefulSet pod, from its hostname)."""
    if total < 1:
        raise ValueError("--total-shards must be at least 1")
    if shard == "auto":
        host = hostname if hostname is not None else socket.gethostname()
        match = _ORDINAL.search(host.split(".")[0])
        if match is None:
            raise ValueError(
                f"--shard=auto needs a hostname ending in -N (a StatefulSet pod), got {host!r}"
            )
        ordinal = int(match.group(1))
    elif shard.isdigit():
        ordinal = int(shard)
    else:
        raise ValueError(f"--shard must be a number or 'auto', got {shard!r}")
    if ordinal >= total:
        raise ValueError(f"--shard={ordinal} is out of range for --total-shards={total}")
    return Shard(ordinal, total)


NO_SHARDING = Shard()
