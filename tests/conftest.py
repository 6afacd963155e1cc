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

# The modules that take longest, longest first (seconds measured with --durations on a 2-core
# machine, on 3 workers); the rest follow in file order. A module missing here only costs time.
LONGEST_FIRST = (
    "tests/test_soak.py",  # 130: a bounded soak (ONEPIN_SOAK_SECONDS)
    "tests/test_faults.py",  # 100, over 99 tests
    "tests/test_e2e_dashboards.py",  # 80: a scenario waits out a 429's Retry-After
    "tests/test_budget_e2e.py",  # 75
    "tests/test_budget.py",  # 60
    "tests/test_rules.py",  # 55: promtool's rule unit tests
    "tests/test_container.py",  # 55: the image build
    "tests/test_e2e_schedule.py",  # 35 to 95: waits for the next minute of the clock
    "tests/test_docs_queries_e2e.py",  # 20
    "tests/test_ledger_stateful.py",  # 15
)
RANK = {module: rank for rank, module in enumerate(LONGEST_FIRST)}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # set in xdist's worker processes only
        # Stable: a module's tests keep their order, and the other modules their file order.
        items.sort(key=lambda item: RANK.get(item.nodeid.split("::")[0], len(RANK)))
