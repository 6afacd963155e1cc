"""Exemplars: which run the ledger names for each finished counter and duration bucket, how
OpenMetrics writes it (and the text format does not), and that a parser reads it back."""

from __future__ import annotations

import dataclasses

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.apistats import RUN_DURATION_BUCKETS, ApiStats, Exemplar, Histogram
from exporter.exposition import EXEMPLAR_LABEL_CHARS, exemplar, histogram
from exporter.ledger import RunLedger
from exporter.models import Run
from exporter.rendering import MetricsRenderer
from exporter.snapshot import Snapshot, WorkflowSnapshot, WorkspaceSnapshot

# Bucket indices of RUN_DURATION_BUCKETS (+Inf is the last index).
LE_60, LE_120, LE_7200, INF = 2, 3, 9, len(RUN_DURATION_BUCKETS)


def ran(number: int, seconds: float, end: float, status: str = "completed") -> Run:
    """Run number n (id r<n>) that ran `seconds` and ended at `end`."""
    return Run(
        f"r{number}", number, status, 0.0, started_at=end - seconds, completed_at=end,
        updated_at=end, detailed=True, delivered_audio_ms=0,
    )  # fmt: skip


def polls(ledger: RunLedger, *pages: tuple[Run, ...]) -> None:
    """Each page a poll's List Runs showing just these runs (all of their range) as final."""
    for runs in pages:
        numbers = [r.run_number for r in runs]
        ledger.listed([(r, True) for r in runs], [(min(numbers), max(numbers))])


HISTORY = (ran(1, 100.0, 500.0),)  # the first listing only sets the mark
EXEMPLAR_CASES: dict[str, tuple[list[tuple[Run, ...]], dict[int, int], dict[str, int]]] = {
    "a run counted names its bucket and its status": (
        [HISTORY, (ran(2, 100.0, 5000.0),)],
        {LE_120: 2},
        {"completed": 2},
    ),
    "history names nothing": ([HISTORY, HISTORY], {}, {}),
    "runs counted in one poll: the one that ended last, in either order": (
        [HISTORY, (ran(3, 90.0, 9000.0), ran(2, 100.0, 8000.0), ran(4, 110.0, 7000.0))],
        {LE_120: 3},
        {"completed": 3},
    ),
    "the same, listed the other way round": (
        [HISTORY, (ran(4, 110.0, 7000.0), ran(2, 100.0, 8000.0), ran(3, 90.0, 9000.0))],
        {LE_120: 3},
        {"completed": 3},
    ),
    "paging back to older runs keeps the recent one": (
        # Run 5 is listed first (runs 2-4 are a gap), then the page back counts runs 2-4.
        [HISTORY, (ran(5, 100.0, 9000.0),), (ran(4, 100.0, 8000.0), ran(2, 100.0, 7000.0))],
        {LE_120: 5},
        {"completed": 5},
    ),
    "a later poll's run that ended later replaces it": (
        [HISTORY, (ran(2, 100.0, 5000.0),), (ran(3, 100.0, 6000.0),)],
        {LE_120: 3},
        {"completed": 3},
    ),
    "each bucket keeps its own run, +Inf included": (
        [HISTORY, (ran(2, 50.0, 5000.0), ran(3, 4000.0, 6000.0), ran(4, 1e6, 1.1e6))],
        {LE_60: 2, LE_7200: 3, INF: 4},
        {"completed": 4},
    ),
    "each status keeps its own run": (
        [HISTORY, (ran(2, 100.0, 5000.0, "failed"), ran(3, 100.0, 4000.0))],
        {LE_120: 2},
        {"failed": 2, "completed": 3},
    ),
    "ended at the same time: the higher number": (
        [HISTORY, (ran(3, 100.0, 5000.0), ran(2, 100.0, 5000.0))],
        {LE_120: 3},
        {"completed": 3},
    ),
    "a run without a duration names its status only": (
        [HISTORY, (dataclasses.replace(ran(2, 0.0, 5000.0, "cancelled"), started_at=None),)],
        {},
        {"cancelled": 2},
    ),
}


@pytest.mark.parametrize("case", EXEMPLAR_CASES)
def test_the_ledger_names_the_run_that_ended_last_per_bucket_and_status(case: str) -> None:
    pages, buckets, statuses = EXEMPLAR_CASES[case]
    ledger = RunLedger()
    polls(ledger, *pages)
    totals = ledger.totals.freeze()
    got_buckets = {
        i: ex.run_number for i, ex in enumerate(totals.duration_exemplars) if ex is not None
    }
    assert got_buckets == buckets
    assert {s: ex.run_number for s, ex in totals.finished_exemplars.items()} == statuses
    for i, ex in enumerate(totals.duration_exemplars):  # each inside its own bucket
        if ex is not None:
            assert i == INF or ex.value <= RUN_DURATION_BUCKETS[i]
            assert i == 0 or ex.value > RUN_DURATION_BUCKETS[i - 1]


def test_an_exemplar_carries_the_value_observed_and_the_end_time() -> None:
    ledger = RunLedger()
    polls(ledger, HISTORY, (ran(2, 100.0, 5000.0),))
    totals = ledger.totals.freeze()
    assert totals.duration_exemplars[LE_120] == Exemplar("r2", 2, 100.0, 5000.0)
    assert totals.finished_exemplars["completed"] == Exemplar("r2", 2, 1.0, 5000.0)


NEWER_CASES = [
    (Exemplar("a", 1, 1.0, 10.0), None, True),
    (Exemplar("a", 1, 1.0, 10.0), Exemplar("b", 2, 1.0, 9.0), True),
    (Exemplar("a", 1, 1.0, 9.0), Exemplar("b", 2, 1.0, 10.0), False),
    (Exemplar("a", 1, 1.0, None), Exemplar("b", 2, 1.0, 10.0), False),  # no end time: older
    (Exemplar("a", 1, 1.0, 10.0), Exemplar("b", 2, 1.0, None), True),
    (Exemplar("a", 3, 1.0, None), Exemplar("b", 2, 1.0, None), True),
    (Exemplar("a", 3, 1.0, 10.0), Exemplar("b", 2, 1.0, 10.0), True),
    (Exemplar("a", 1, 1.0, 10.0), Exemplar("b", 2, 1.0, 10.0), False),
]


@pytest.mark.parametrize(("new", "old", "newer"), NEWER_CASES)
def test_which_exemplar_is_newer(new: Exemplar, old: Exemplar | None, newer: bool) -> None:
    assert new.newer_than(old) is newer


# --- the text of an exemplar ---------------------------------------------------------------------


def test_an_exemplar_is_written_after_its_sample() -> None:
    assert (
        exemplar(Exemplar("r", 7, 123.4, 1767225600.0))
        == ' # {run_id="r",run_number="7"} 123.4 1767225600.0'
    )
    assert exemplar(Exemplar("r", 7, 1.0)) == ' # {run_id="r",run_number="7"} 1.0'
    assert exemplar(Exemplar("r", 7, 1.0, float("nan"))) == ' # {run_id="r",run_number="7"} 1.0'
    assert exemplar(None) == ""


def parsed_exemplar(ex: Exemplar) -> dict[str, str]:
    """The labels of `ex` as prometheus_client's OpenMetrics parser reads them back."""
    text = f"# TYPE c counter\nc_total 1.0{exemplar(ex)}\n# EOF\n"
    (family,) = parse_om(text)
    found = family.samples[0].exemplar
    assert found is not None and found.value == ex.value
    return dict(found.labels)


@pytest.mark.parametrize("run_id", ["back\\slash", "new\nline", "ünïcødé", "{}#, "])
def test_label_values_are_escaped_and_read_back(run_id: str) -> None:
    assert parsed_exemplar(Exemplar(run_id, 12, 5.0, 1.0)) == {
        "run_id": run_id,
        "run_number": "12",
    }


def test_a_quote_is_escaped() -> None:
    # prometheus_client 0.26's exemplar scanner takes an escaped quote for the end of the value
    # (its sample label parser does not): the escaping is checked as text. It is the escaping
    # of sample label values, which tests/test_label_escaping.py checks against the parser.
    assert exemplar(Exemplar('a"b', 1, 1.0)) == ' # {run_id="a\\"b",run_number="1"} 1.0'


def test_the_label_set_stays_within_128_characters() -> None:
    # run_id + run_number, names and values: 6 + 10 + 2 digits leave 110 for the id.
    fits, too_long = "é" * 110, "é" * 111  # characters, not bytes, count
    assert parsed_exemplar(Exemplar(fits, 12, 5.0)) == {"run_id": fits, "run_number": "12"}
    assert parsed_exemplar(Exemplar(too_long, 12, 5.0)) == {"run_number": "12"}
    assert len("run_id" + fits + "run_number" + "12") == EXEMPLAR_LABEL_CHARS


def test_a_bucket_s_exemplar_follows_its_count_on_the_same_line() -> None:
    # The exact bytes: a bucket's count keeps all its digits before the exemplar.
    hist = Histogram((1.0, 10.0))
    for seconds in (0.5, 5.0, 50.0):
        hist.observe(seconds)
    exemplars = (None, Exemplar("r2", 2, 5.0, 100.0), Exemplar("r3", 3, 50.0))
    assert histogram("d", 'w="a"', hist, exemplars) == (
        'd_bucket{w="a",le="1.0"} 1.0\n'
        'd_bucket{w="a",le="10.0"} 2.0 # {run_id="r2",run_number="2"} 5.0 100.0\n'
        'd_bucket{w="a",le="+Inf"} 3.0 # {run_id="r3",run_number="3"} 50.0\n'
        'd_count{w="a"} 3.0\n'
        'd_sum{w="a"} 55.5\n'
    )


# --- in the exposition ---------------------------------------------------------------------------


def snapshot_of(ledger: RunLedger, version: int, active: bool = False) -> Snapshot:
    running = (Run("r99", 99, "running", 0.0, started_at=1.0, observed_at=2.0),) if active else ()
    wf = WorkflowSnapshot(
        "wf-1", "nightly", True, True, ledger.totals.freeze(), active_runs=running, version=version
    )
    return Snapshot((WorkspaceSnapshot("prod", True, (wf,), ApiStats()),), 0.0)


def om_exemplars(text: str) -> dict[tuple[str, str], str]:
    """(sample name, le or status) -> the exemplar's run_id, as the parser reads them."""
    out = {}
    for family in parse_om(text):
        for s in family.samples:
            if s.exemplar is not None:
                key = s.labels.get("le") or s.labels["status"]
                out[(s.name, key)] = s.exemplar.labels["run_id"]
    return out


BUCKET = "onepin_workflow_run_duration_seconds_bucket"
FINISHED = "onepin_workflow_runs_finished_total"


@pytest.mark.parametrize("active", [False, True])
def test_openmetrics_shows_exemplars_the_text_format_does_not(active: bool) -> None:
    ledger = RunLedger()
    polls(ledger, HISTORY, (ran(2, 100.0, 5000.0), ran(3, 4000.0, 6000.0, "failed")))
    renderer = MetricsRenderer()
    first = snapshot_of(ledger, 1, active)
    expected = {(BUCKET, "120.0"): "r2", (BUCKET, "7200.0"): "r3"}
    expected |= {(FINISHED, "completed"): "r2", (FINISHED, "failed"): "r3"}
    for _ in range(2):  # made, then kept: each format from its own cache
        assert om_exemplars(renderer.render(first, openmetrics=True) + "# EOF\n") == expected
        text = renderer.render(first)
        assert " # {" not in text
        assert list(parse_text(text))
    # A run counted later in the same bucket: a new version, a new exemplar.
    polls(ledger, (ran(4, 110.0, 7000.0),))
    later = om_exemplars(
        renderer.render(snapshot_of(ledger, 2, active), openmetrics=True) + "# EOF\n"
    )
    assert later == expected | {(BUCKET, "120.0"): "r4", (FINISHED, "completed"): "r4"}
