"""The JSON shapes of the OnePin API (docs sections 3.1-3.6), built from the model."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from .model import RunCounts
from .names import USERS
from .plan import COMPLETED, Observation, RunPlan
from .schedule import WorkflowProfile, user_id
from .timefmt import iso, iso_or_none

Json = dict[str, Any]


class Renderer:
    """Builds response ``data`` objects; caches what never changes (users, definitions)."""

    def __init__(self, seed: int) -> None:
        self._user_ids = [user_id(seed, user.key) for user in USERS]
        # ``triggered_by`` objects, shared by every run of the same user.
        self._users: list[dict[str, str]] = [
            {"user_id": uid, "user_name": user.user_name}
            for uid, user in zip(self._user_ids, USERS, strict=True)
        ]
        self._definitions: dict[int, Json] = {}

    def user_name(self, user: int) -> str:
        return USERS[user].user_name

    # --- workflows ----------------------------------------------------------------------

    def workflow(self, profile: WorkflowProfile, counts: RunCounts) -> Json:
        last = counts.last
        return {
            "id": profile.id,
            "user_id": self._user_ids[profile.owner],
            "name": profile.name,
            "description": profile.description,
            "created_at": iso(profile.created_at),
            "updated_at": iso(profile.updated_at),
            "runs_count": counts.runs_count,
            "last_run_at": None if last is None else iso(last.created),
            "last_run_status": counts.last_status,
            "run_status_counts": counts.by_status,
        }

    def workflow_detail(self, profile: WorkflowProfile, counts: RunCounts) -> Json:
        body = self.workflow(profile, counts)
        body["definition"] = self.definition(profile)
        return body

    def definition(self, profile: WorkflowProfile) -> Json:
        cached = self._definitions.get(profile.index)
        if cached is None:
            nodes = [profile.node(step) for step in range(profile.total_steps)]
            unique = list(dict.fromkeys(nodes))
            cached = {
                "nodes": [
                    {"id": node_id, "type": node_type, "display_name": f"{node_type} #{i + 1}"}
                    for i, (node_id, node_type) in enumerate(unique)
                ],
                "edges": [{"source": a[0], "target": b[0]} for a, b in pairwise(unique)],
                "config": {"max_concurrency": 2, "retries": 1},
                "triggers": [{"type": "schedule", "every_seconds": profile.interval}],
            }
            self._definitions[profile.index] = cached
        return cached

    # --- runs ---------------------------------------------------------------------------

    def _progress(self, plan: RunPlan, seen: Observation) -> tuple[Json | None, int]:
        """(usage_summary, token_cost) after ``seen.finished_steps`` steps."""
        if seen.started_at is None:
            return None, 0
        steps = seen.finished_steps
        usage = plan.usage
        memory = usage.memory_base_mb + (
            (usage.memory_peak_mb - usage.memory_base_mb) * steps // plan.total_steps
        )
        summary = {
            "cpu_seconds": round(steps * usage.cpu_seconds_per_step, 1),
            "memory_mb": memory,
            "api_calls": steps * usage.api_calls_per_step,
        }
        return summary, steps * usage.tokens_per_step

    @staticmethod
    def credits(token_cost: int) -> int:
        return (token_cost + 99) // 100

    def run_list_item(self, plan: RunPlan, now: int) -> Json:
        """A List Runs item (3.3): no workflow_id, updated_at, error, has_export, token_cost."""
        seen = plan.observe(now)
        usage, tokens = self._progress(plan, seen)
        return {
            "id": plan.id,
            "status": seen.status,
            "run_number": plan.number,
            "created_at": iso(plan.created),
            "started_at": iso_or_none(seen.started_at),
            "completed_at": iso_or_none(seen.completed_at),
            "pause_requested_at": iso_or_none(seen.pause_requested_at),
            "paused_at": iso_or_none(seen.paused_at),
            "total_nodes": plan.total_nodes,
            "total_steps": plan.total_steps,
            "finished_steps": seen.finished_steps,
            "usage_summary": usage,
            "credits": self.credits(tokens),
            "triggered_by": self._users[plan.user],
        }

    def run_status(self, plan: RunPlan, workflow_id: str, now: int) -> Json:
        """Get Run Status (3.5)."""
        seen = plan.observe(now)
        usage, tokens = self._progress(plan, seen)
        return {
            "id": plan.id,
            "workflow_id": workflow_id,
            "status": seen.status,
            "run_number": plan.number,
            "token_cost": tokens,
            "created_at": iso(plan.created),
            "updated_at": iso(seen.updated_at),
            "started_at": iso_or_none(seen.started_at),
            "completed_at": iso_or_none(seen.completed_at),
            "pause_requested_at": iso_or_none(seen.pause_requested_at),
            "paused_at": iso_or_none(seen.paused_at),
            "total_nodes": plan.total_nodes,
            "total_steps": plan.total_steps,
            "finished_steps": seen.finished_steps,
            "usage_summary": usage,
            "error": plan.error if seen.completed_at is not None else None,
            "has_export": seen.status == COMPLETED,
            "triggered_by": self._users[plan.user],
        }

    def run_detail(self, plan: RunPlan, profile: WorkflowProfile, now: int) -> Json:
        """Get Run (3.4): the status fields plus definition_snapshot and credits."""
        body = self.run_status(plan, profile.id, now)
        body["credits"] = self.credits(body["token_cost"])
        body["definition_snapshot"] = self.definition(profile)
        return body

    # --- summary ------------------------------------------------------------------------

    @staticmethod
    def summary(by_status: dict[str, int], completed_seconds: int) -> Json:
        """Runs Summary (3.6)."""
        completed = by_status.get("completed", 0)
        finished = completed + by_status.get("failed", 0) + by_status.get("cancelled", 0)
        return {
            "total_runs": sum(by_status.values()),
            "completed": completed,
            "failed": by_status.get("failed", 0),
            "cancelled": by_status.get("cancelled", 0),
            "pending": by_status.get("pending", 0),
            "running": by_status.get("running", 0),
            "paused": by_status.get("paused", 0),
            "pass_rate": completed / finished if finished else None,
            "average_duration_seconds": completed_seconds / completed if completed else None,
        }
