"""The order in which pytest-xdist hands the test modules to its workers (scripts/test.sh runs
the suite with `-n 3 --dist loadscope --no-loadscope-reorder`).

Most of the suite's wall time is spent waiting: on real Prometheus scrapes, on the soak's
minutes, on the container build. With workers those waits overlap. `--dist loadscope` keeps each
module in one worker, in file order, so a module-scoped fixture (one real Prometheus, one image
build) still starts once. The modules that take longest go first, so that none of them is left
alone at the end of the run while the other workers idle.
Without xdist (`-n 0`, or no `-n`), nothing changes: the order stays the file order.
"""

from __future__ import annotations

import pytest

# Modules that take tens of seconds to minutes, most of it waiting: those marked so (the soak,
# the container, the end-to-end chains) and these (measured with --durations on CI's machine).
LONG_MARKS = ("soak", "container", "e2e")
LONG_MODULES = (
    "tests/test_budget_e2e.py",
    "tests/test_budget.py",
    "tests/test_faults.py",
    "tests/test_ledger_stateful.py",
)


def _takes_long(item: pytest.Item) -> bool:
    module = item.nodeid.split("::")[0]
    return module in LONG_MODULES or any(item.get_closest_marker(m) for m in LONG_MARKS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # set in xdist's worker processes only
        items.sort(key=lambda item: not _takes_long(item))  # stable: file order otherwise
