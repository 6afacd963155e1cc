"""Which workflows of a workspace run on a schedule, and what their schedule says at a poll.

The schedules come from the config (`workflows[].schedule`, checked when the config was loaded)
or from the workflow's definition (exporter/triggers.py), the config winning; the fire times are
exporter/schedule.py's, at the poll's wall-clock time, so that a snapshot's expected times are
those of the poll it shows. Whether a fire was missed is the alert's to say
(OnePinScheduledRunMissed compares them with the latest run's creation time).
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.schedule import Schedule, choose, expected_times, make_schedule
from exporter.settings import Workspace
from exporter.snapshot import ScheduleTimes


def configured_schedules(workspace: Workspace) -> dict[str, Schedule]:
    """The schedule of each listed workflow that has one, by workflow id."""
    return {
        ref.id: make_schedule(ref.schedule, ref.schedule_timezone, ref.schedule_grace)
        for ref in workspace.workflows or ()
        if ref.schedule is not None
    }


def schedule_times(
    configured: Mapping[str, Schedule],
    from_api: Mapping[str, Schedule],
    workflow_id: str,
    now: float,
) -> ScheduleTimes | None:
    """The workflow's expected fire times around `now` (Unix seconds), if it has a schedule
    (the config's wins over its definition's trigger)."""
    schedule = choose(configured.get(workflow_id), from_api.get(workflow_id))
    if schedule is None:
        return None
    expected = expected_times(schedule, now)
    return ScheduleTimes(expected.last, expected.next, schedule.grace)
