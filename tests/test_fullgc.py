"""Full garbage collections run as a poll starts, at most once a minute, never in its middle
(exporter/fullgc.py): at 20,000 workflows one took 0.2-1 s out of about every second poll."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exporter.fullgc import EVERY, FullCollections, due


@pytest.mark.parametrize(
    ("now", "last", "expected"),
    [
        (100.0, 100.0, False),
        (100.0 + EVERY - 0.001, 100.0, False),
        (100.0 + EVERY, 100.0, True),
        (100.0 + 10 * EVERY, 100.0, True),
    ],
)
def test_a_full_collection_is_due_a_minute_after_the_last(
    now: float, last: float, expected: bool
) -> None:
    assert due(now, last) is expected


def test_polls_start_with_a_full_collection_at_most_once_a_minute() -> None:
    now = [1000.0]
    collected: list[float] = []
    full = FullCollections(clock=lambda: now[0], collect=lambda: collected.append(now[0]))
    for at in (1000.0, 1010.0, 1059.0, 1060.0, 1061.0, 1119.0, 1125.0):
        now[0] = at
        full.before_poll()
    # None at once: an exporter's first minute (and every short-lived one in tests) has none.
    assert collected == [1060.0, 1125.0]


_BURST = """
import gc, sys
from exporter.fullgc import hold_automatic
if sys.argv[1] == "held":
    hold_automatic()
full = []
def seen(phase, info):
    if phase == "stop" and info["generation"] == 2:
        full.append(info)
gc.callbacks.append(seen)
kept = [[] for _ in range(1_000_000)]  # what a big poll leaves: many long-lived objects
print(len(full))
"""


@pytest.mark.parametrize(("mode", "any_full"), [("default", True), ("held", False)])
def test_held_cpython_starts_no_full_collection_however_much_a_poll_allocates(
    mode: str, any_full: bool
) -> None:
    """In a process of its own: the thresholds are the whole process's."""
    out = subprocess.run(
        [sys.executable, "-c", _BURST, mode], capture_output=True, text=True, check=True
    )
    assert (int(out.stdout) > 0) is any_full, out


def test_the_exporters_process_holds_automatic_full_collections() -> None:
    """The exporter's and the demo's main loop (exporter/signals.py) holds them."""
    code = (
        "import gc\n"
        "from exporter.signals import run_until_signalled\n"
        "async def main(stop):\n"
        "    print(gc.get_threshold()[2])\n"
        "run_until_signalled(main)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 1_000_000, out  # CPython's default is 10
