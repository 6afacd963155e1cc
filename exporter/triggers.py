"""Schedules read from the API: the schedule trigger of each workflow's definition.

With `collection.schedule_triggers`, a workflow without a `schedule` in the config has its
definition read by Get Workflow when it is first seen and again only when its catalogue entry's
`updated_at` changes (a steady poll asks nothing more). At most MAX_PER_POLL are asked per poll,
so that the first polls of a large workspace stay within their deadline: the rest are asked at the
next polls. A definition that cannot be asked for is asked for again at the next poll; what is
wrong in one is logged when it is read, so once per change of the workflow (exporter/schedule.py
reads it defensively).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping

from exporter.apierrors import ApiError
from exporter.client import OnePinClient
from exporter.deadline import Deadline
from exporter.models import Workflow
from exporter.schedule import Schedule, schedule_from_definition

log = logging.getLogger("exporter.poller")
MAX_PER_POLL = 100


def to_ask(
    selected: Mapping[str, Workflow],
    configured: Mapping[str, Schedule],
    seen: Mapping[str, float | None],
    limit: int = MAX_PER_POLL,
) -> list[str]:
    """The workflows whose definition to ask for now: not configured, and never read or changed
    (`updated_at`) since it was read; the first `limit` of them."""
    wanted = (
        wid
        for wid, entry in selected.items()
        if wid not in configured and (wid not in seen or seen[wid] != entry.updated_at)
    )
    return list(itertools.islice(wanted, limit))


class TriggerWatch:
    """The schedule triggers of one workspace's workflows, read as their definitions change."""

    def __init__(self, workspace: str, enabled: bool) -> None:
        self._workspace, self.enabled = workspace, enabled
        self.seen: dict[str, float | None] = {}  # workflow id -> updated_at when read
        self.schedules: dict[str, Schedule] = {}

    async def learn(
        self,
        client: OnePinClient,
        selected: Mapping[str, Workflow],
        configured: Mapping[str, Schedule],
        deadline: Deadline,
    ) -> None:
        """Read the definitions `to_ask` says, concurrently (the client bounds how many)."""
        if not self.enabled:
            return
        for gone in self.seen.keys() - selected.keys():
            del self.seen[gone]
            self.schedules.pop(gone, None)
        asks = to_ask(selected, configured, self.seen)
        await asyncio.gather(*(self._read(client, selected[wid], deadline) for wid in asks))

    async def _read(self, client: OnePinClient, entry: Workflow, deadline: Deadline) -> None:
        try:
            definition = await client.workflow_definition(entry.id, deadline)
        except ApiError:
            return  # asked again at the next poll; the request is counted and logged already
        schedule, problems = schedule_from_definition(definition)
        if problems:
            log.warning(
                "workflow definition: schedule trigger not read",
                extra={"workspace": self._workspace, "workflow_id": entry.id,
                       "problems": "; ".join(problems)},
            )  # fmt: skip
        self.seen[entry.id] = entry.updated_at
        if schedule is None:
            self.schedules.pop(entry.id, None)
        else:
            self.schedules[entry.id] = schedule

    def adopt(self, old: TriggerWatch) -> None:
        """Keep what `old`, the same workspace before a config reload, read."""
        if self.enabled:
            self.seen, self.schedules = old.seen, old.schedules
