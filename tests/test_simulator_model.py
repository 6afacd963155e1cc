"""The simulator's model: a deterministic world whose runs live and die by the clock."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.simulator.clock import ManualClock, RealClock
from exporter.simulator.model import SimModel
from exporter.simulator.plan import ACTIVE_STATUSES, TERMINAL_STATUSES, RunPlan
from exporter.simulator.rng import MAX_RUN_NUMBER, MAX_WORKFLOWS, RunIdCodec
from exporter.simulator.steps import finished_nodes, step_rows
from exporter.simulator.timefmt import iso

HOUR = 3600


def make_model(workflows: int = 12, seed: int = 1, active_runs: int | None = None) -> SimModel:
    return SimModel(ManualClock(), workflows=workflows, seed=seed, active_runs=active_runs)


def all_runs(model: SimModel, workflow: int, now: int) -> list[RunPlan]:
    count = model.run_count(workflow, now)
    return [model.plan(workflow, number) for number in range(1, count + 1)]


def advance(model: SimModel, seconds: float) -> int:
    clock = model.clock
    assert isinstance(clock, ManualClock)
    clock.advance(seconds)
    with model.session() as now:
        return now


def current(model: SimModel) -> int:
    with model.session() as now:
        return now


# --- the world ---------------------------------------------------------------------------


def test_same_seed_builds_the_same_world_and_another_seed_another() -> None:
    first, again, other = make_model(seed=5), make_model(seed=5), make_model(seed=6)
    now = current(first)
    assert [p.id for p in first.profiles] == [p.id for p in again.profiles]
    assert [first.run_count(i, now) for i in range(12)] == [
        again.run_count(i, now) for i in range(12)
    ]
    assert first.plan(0, 1) == again.plan(0, 1)
    assert {p.id for p in first.profiles}.isdisjoint(p.id for p in other.profiles)


def test_workflows_have_readable_unique_names_and_uuid_ids() -> None:
    model = make_model(workflows=100)
    names = [p.name for p in model.profiles]
    assert names[0] == "nightly-etl"
    assert len(set(names)) == 100
    assert all(name.replace("-", "").isalnum() and name == name.lower() for name in names)
    for profile in model.profiles:
        assert uuid.UUID(profile.id).version == 4


def test_dashboards_have_history_and_live_runs_from_the_start() -> None:
    model = make_model(workflows=60)
    now = current(model)
    counts = [model.counts(i, now) for i in range(60)]
    with_history = [c for c in counts if c.by_status["completed"] + c.by_status["failed"] > 0]
    assert len(with_history) >= 45
    assert any(c.by_status["failed"] > 0 for c in counts)
    active = sum(c.by_status[s] for c in counts for s in ACTIVE_STATUSES)
    assert active >= 5


def test_runs_keep_coming_on_each_workflows_schedule() -> None:
    model = make_model()
    before = [model.run_count(i, current(model)) for i in range(12)]
    now = advance(model, 24 * HOUR)
    after = [model.run_count(i, now) for i in range(12)]
    assert all(b < a for b, a in zip(before, after, strict=True))


# --- one run's life ----------------------------------------------------------------------


def start(model: SimModel, outcome: str, **kwargs: int) -> RunPlan:
    return model.start_run(
        model.profiles[0].id, outcome=outcome, **{"duration_seconds": 100, **kwargs}
    )


def test_a_completed_run_goes_pending_running_completed_and_only_moves_forward() -> None:
    model = make_model()
    plan = start(model, "completed", duration_seconds=100, pending_seconds=5, total_steps=20)
    now = current(model)
    seen = plan.observe(now)
    assert (seen.status, seen.started_at, seen.finished_steps) == ("pending", None, 0)

    history = [seen]
    for _ in range(30):
        now = advance(model, 4)
        history.append(plan.observe(now))
    phases = [
        s.status for i, s in enumerate(history) if i == 0 or history[i - 1].status != s.status
    ]
    assert phases == ["pending", "running", "completed"]
    steps = [s.finished_steps for s in history]
    assert steps == sorted(steps) and steps[-1] == 20 and len(set(steps)) > 10
    updated = [s.updated_at for s in history]
    assert updated == sorted(updated)
    final = history[-1]
    assert final.started_at == plan.created + 5
    assert final.completed_at is not None
    assert final.completed_at - final.started_at == 100
    assert final.updated_at == final.completed_at
    assert plan.error is None


def test_a_failed_run_stops_part_way_with_an_error() -> None:
    model = make_model()
    plan = start(model, "failed", duration_seconds=60, total_steps=30)
    now = advance(model, 3600)
    seen = plan.observe(now)
    assert seen.status == "failed"
    assert 0 < seen.finished_steps < 30
    assert plan.error is not None and "failed" in plan.error
    assert seen.completed_at == plan.created + 2 + 60


def test_a_cancelled_run_ends_without_an_error() -> None:
    model = make_model()
    plan = start(model, "cancelled", duration_seconds=60, total_steps=30)
    seen = plan.observe(advance(model, 3600))
    assert seen.status == "cancelled" and seen.finished_steps < 30 and plan.error is None


def test_a_stalled_run_makes_a_few_steps_then_never_moves_again() -> None:
    model = make_model()
    plan = start(model, "stall", duration_seconds=100, total_steps=50)
    early = plan.observe(advance(model, 60))
    late = plan.observe(advance(model, 365 * 24 * HOUR))
    assert early.status == late.status == "running"
    assert 0 < early.finished_steps == late.finished_steps <= 3
    assert early.updated_at == late.updated_at
    # ...and the workflow starts no new run behind it.
    assert model.run_count(0, current(model)) == plan.number


def test_paused_runs_happen_and_report_their_pause() -> None:
    model = make_model(workflows=200)
    now = current(model)
    paused = [
        plan
        for index in range(200)
        for plan in all_runs(model, index, now)
        if plan.pause is not None and plan.end is not None
    ]
    assert paused, "some runs should carry a pause"
    plan = paused[0]
    assert plan.pause is not None
    requested = plan.observe(plan.pause.requested)
    assert requested.status == "running" and requested.pause_requested_at == plan.pause.requested
    during = plan.observe(plan.pause.paused)
    assert during.status == "paused" and during.paused_at == plan.pause.paused
    assert plan.observe(plan.pause.resumed - 1).finished_steps == during.finished_steps
    resumed = plan.observe(plan.pause.resumed)
    assert resumed.status == "running" and resumed.pause_requested_at is None


# --- counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_counts_are_exact_at_every_moment(seed: int) -> None:
    model = make_model(workflows=10, seed=seed)
    model.start_run(model.profiles[3].id, outcome="stall", duration_seconds=50)
    for _ in range(40):
        now = advance(model, 397)
        for index in range(10):
            counts = model.counts(index, now)
            truth = Counter(plan.status_at(now) for plan in all_runs(model, index, now))
            assert counts.by_status == {s: truth.get(s, 0) for s in counts.by_status}
            assert sum(counts.by_status.values()) == counts.runs_count
            if counts.last is not None:
                assert counts.last.number == counts.runs_count


def test_a_workflow_has_at_most_one_natural_run_active() -> None:
    model = make_model(workflows=30)
    for _ in range(50):
        now = advance(model, 173)
        for index in range(30):
            active = [p for p in model.unsettled(index, now) if p.status_at(now) in ACTIVE_STATUSES]
            assert len(active) <= 1


def test_runs_are_ordered_by_creation_then_id_even_when_created_together() -> None:
    model = make_model()
    workflow = model.profiles[2].id
    for outcome in ("completed", "failed", "completed", "cancelled"):
        model.start_run(workflow, outcome=outcome, duration_seconds=30)
    now = current(model)
    runs = all_runs(model, 2, now)
    expected = sorted(runs, key=lambda p: p.id)
    expected.sort(key=lambda p: p.created, reverse=True)
    assert list(model.runs_by_created(2, now)) == expected
    for skip in range(len(runs)):
        assert list(model.runs_by_created(2, now, skip=skip)) == expected[skip:]
    ascending = sorted(runs, key=lambda p: p.id)
    ascending.sort(key=lambda p: p.created)
    assert list(model.runs_by_created(2, now, descending=False)) == ascending


def test_a_started_run_becomes_the_latest_and_schedule_resumes_after_it() -> None:
    model = make_model()
    now = current(model)
    before = model.run_count(1, now)
    plan = model.start_run(model.profiles[1].id, outcome="completed", duration_seconds=30)
    assert plan.number == before + 1
    assert model.counts(1, current(model)).last == plan
    later = advance(model, 24 * HOUR)
    assert model.run_count(1, later) > plan.number
    assert model.plan(1, plan.number + 1).created > (plan.end or 0)


def test_start_run_rejects_unknown_workflows_and_bad_values() -> None:
    model = make_model()
    with pytest.raises(KeyError):
        model.start_run(str(uuid.uuid4()), outcome="completed", duration_seconds=10)
    with pytest.raises(ValueError):
        model.start_run(model.profiles[0].id, outcome="exploded", duration_seconds=10)
    with pytest.raises(ValueError):
        model.start_run(model.profiles[0].id, outcome="completed", duration_seconds=0)


# --- benchmark shape and scale -----------------------------------------------------------


def test_active_runs_mode_has_exactly_that_many_long_runs_and_a_still_catalogue() -> None:
    model = make_model(workflows=300, active_runs=40)
    active = model.active_runs()
    assert len(active) == 40
    assert len({plan.workflow for plan in active}) == 40
    before = {i: model.counts(i, current(model)) for i in range(300)}
    steps_before = {plan.id: plan.finished_steps(current(model)) for plan in active}

    now = advance(model, 6 * HOUR)
    after_active = model.active_runs()
    assert [p.id for p in after_active] == [p.id for p in active]
    assert all(p.status_at(now) == "running" for p in after_active)
    assert all(p.finished_steps(now) > steps_before[p.id] for p in after_active)
    for index, counts in before.items():
        assert model.counts(index, now).by_status == counts.by_status


def test_serving_a_run_or_a_page_costs_constant_work_at_scale() -> None:
    model = make_model(workflows=5000, active_runs=2000)
    active = model.active_runs()
    assert len(active) == 2000
    now = advance(model, 30)
    built = model.plans_built
    for plan in active:
        assert model.find_run(plan.workflow, plan.id, now) == plan
    assert model.plans_built - built <= 2000, "at most one plan per run, then cached"
    built = model.plans_built
    for plan in active:
        model.find_run(plan.workflow, plan.id, now)
    assert model.plans_built == built
    # A catalogue page of 100 workflows, once their history is folded, builds O(page) plans.
    for index in range(100):
        model.counts(index, now)
    now = advance(model, 30)
    built = model.plans_built
    for index in range(100):
        model.counts(index, now)
    assert model.plans_built - built <= 100


# --- identifiers and clocks --------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    workflow=st.integers(0, MAX_WORKFLOWS - 1),
    number=st.integers(1, MAX_RUN_NUMBER),
)
def test_run_ids_round_trip_and_look_like_uuid4(seed: int, workflow: int, number: int) -> None:
    codec = RunIdCodec(seed)
    text = codec.encode(workflow, number)
    assert uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text
    assert codec.decode(text) == (workflow, number)
    assert codec.decode(text.upper()) == (workflow, number)


@settings(max_examples=300, deadline=None)
@given(st.uuids())
def test_made_up_run_ids_are_not_taken_for_runs(value: uuid.UUID) -> None:
    assert RunIdCodec(1).decode(str(value)) is None


def test_run_id_codec_rejects_garbage() -> None:
    codec = RunIdCodec(1)
    assert codec.decode("summary") is None
    assert codec.decode("") is None
    assert RunIdCodec(2).decode(codec.encode(3, 4)) is None


def test_manual_clock_moves_only_forward_and_only_when_told() -> None:
    clock = ManualClock(start=1000.0)
    assert clock.now() == 1000.0 == clock.now()
    assert clock.advance(2.5) == 1002.5
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_real_clock_runs_at_its_speed() -> None:
    ticks = iter([100.0, 110.0, 110.0])
    clock = RealClock(speed=30, start=5000.0, monotonic=lambda: next(ticks))
    assert clock.now() == 5000.0 + 10 * 30
    assert clock.elapsed() == 10.0
    with pytest.raises(ValueError):
        RealClock(speed=0)


def test_terminal_statuses_are_the_documented_ones() -> None:
    assert frozenset({"completed", "failed", "cancelled"}) == TERMINAL_STATUSES


# --- steps and pauses (the SDK's fields) ---------------------------------------------------


def _latest_terminal_nodes(rows: list[dict[str, object]]) -> int:
    """The SDK's finished_nodes over Get Run Steps: latest iteration terminal, parked excluded."""
    latest: dict[object, dict[str, object]] = {}
    for row in rows:
        latest[row["node_id"]] = row
    return sum(
        1
        for row in latest.values()
        if row["status"] in ("completed", "failed", "cancelled")
        and not (row["status"] == "cancelled" and row["pause_reason"] is not None)
    )


def test_steps_add_up_to_the_run_at_every_moment() -> None:
    model = make_model(workflows=40, seed=3)
    checked = failed = 0
    for _ in range(6):
        now = advance(model, 1_111)
        for index in range(40):
            for plan in all_runs(model, index, now)[-6:]:
                seen = plan.observe(now)
                rows = step_rows(plan, now)
                done = [row for row in rows if row["status"] == "completed"]
                assert len(done) == seen.finished_steps and len(rows) <= plan.total_steps
                assert finished_nodes(plan, seen) == _latest_terminal_nodes(rows)
                starts = [row["started_at"] for row in rows]
                ends = [row["completed_at"] for row in rows]
                assert starts[1:] == ends[: len(rows) - 1]  # back to back
                if rows:
                    assert starts[0] == iso(plan.start or 0)
                if seen.status in ("completed", "failed", "cancelled") and rows:
                    assert ends[-1] == iso(plan.end or 0)
                if seen.status == "failed":
                    failed += 1
                    assert [row["status"] for row in rows].count("failed") == 1
                    assert f"'{rows[-1]['node_id']}'" in (plan.error or "")
                checked += 1
    assert checked > 1_000 and failed > 10


def test_runs_pause_for_every_reason_at_a_realistic_rate() -> None:
    model = make_model(workflows=200)
    now = current(model)
    runs = [plan for index in range(200) for plan in all_runs(model, index, now)]
    reasons = Counter(plan.pause.reason for plan in runs if plan.pause is not None)
    assert set(reasons) == {
        "user",
        "provider_outage",
        "provider_rate_limited",
        "provider_billing",
        "node_timeout",
    }
    paused_share = sum(reasons.values()) / len(runs)
    assert 0.03 < paused_share < 0.15, paused_share
    automatic = paused_share - reasons["user"] / len(runs)
    assert automatic > 0.5 * paused_share


def test_a_paused_run_counts_its_paused_time_and_clears_its_reason_on_resume() -> None:
    model = make_model(workflows=200)
    now = current(model)
    plan = next(
        plan
        for index in range(200)
        for plan in all_runs(model, index, now)
        if plan.pause is not None and plan.pause.reason != "user"
    )
    assert plan.pause is not None
    during = plan.observe(plan.pause.paused + 7)
    assert during.pause_reason == plan.pause.reason and during.paused_seconds == 7
    after = plan.observe(plan.pause.resumed)
    assert after.pause_reason is None and after.paused_seconds == plan.pause.length
    if plan.outcome == "completed":
        assert plan.active_duration() == (plan.duration() or 0) - plan.pause.length
