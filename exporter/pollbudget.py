"""One workspace's polls under its request budget (exporter/ratebudget.py): what each poll may
ask before the details, the figures exported, and one log line when the budget starts to bind."""

from __future__ import annotations

import logging
import math

from exporter.apistats import ApiStats
from exporter.client import PAGE_LIMIT
from exporter.ratebudget import Allotment, RequestBudget, allot, fitting_interval

log = logging.getLogger("exporter.poller")


class PollBudget:
    """The budget's side of a workspace's polls: `start` and `finish` bracket each poll."""

    def __init__(self, budget: RequestBudget, stats: ApiStats, workspace: str) -> None:
        self.budget = budget
        self._stats = stats
        self._workspace = workspace
        self._pages = 1  # catalogue pages the last poll read
        self._binding = False  # the last poll deferred requests (told once per episode)
        self._sent = self._deferred = 0

    def start(self, statuses: int) -> Allotment:
        """The poll's allotment, `statuses` being the active runs it would ask about."""
        self._sent, self._deferred = self._stats.total(), self.budget.deferred
        share = allot(self.budget.remaining(), statuses, self._pages)
        self.budget.defer(statuses - share.statuses + (0 if share.catalogue else self._pages))
        return share

    def catalogue_read(self, workflows: int) -> None:
        self._pages = max(1, math.ceil(workflows / PAGE_LIMIT))

    def finish(self) -> None:
        """Export the budget's figures; log when it starts to bind (and the interval that fits)."""
        budget, stats = self.budget, self._stats
        stats.budget_remaining, stats.deferred = budget.remaining(), budget.deferred
        deferred = budget.deferred - self._deferred
        if deferred and not self._binding and budget.limit is not None:
            needed = stats.total() - self._sent + deferred
            interval = fitting_interval(needed, budget.limit)
            log.warning(
                f"the budget of {budget.limit}/min binds: this poll needed at least {needed} "
                f"requests; a scrape interval of {interval} s would fit; what did not fit "
                "keeps its last data and is asked at the next polls",
                extra={"workspace": self._workspace},
            )
        self._binding = deferred > 0
