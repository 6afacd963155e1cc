"""The JSON shapes of the OnePin API, built from the model.

The shapes are those of the official SDK's models (docs section 8 over sections 3.1-3.7), which
tests/test_sdk_contract.py holds the simulator to.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from .model import RunCounts
from .names import PAUSE_ERRORS, USERS
from .plan import COMPLETED, FAILED, Observation, RunPlan
from .schedule import WorkflowProfile, user_id
from .steps import finished_nodes, held_nodes, is_automatic, step_rows
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
            "name_source": profile.name_source,
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
                # The docs' sample shape, for workflows on a cron schedule (UTC).
                "triggers": []
                if profile.cron is None
                else [{"type": "schedule", "cron": profile.cron}],
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

    @staticmethod
    def _pause(seen: Observation) -> Json:
        """``paused_ms``, ``pause_reason`` and ``pause_error`` (automatic pauses only)."""
        reason = seen.pause_reason
        return {
            "paused_ms": None if seen.started_at is None else seen.paused_seconds * 1000,
            "pause_reason": reason,
            "pause_error": PAUSE_ERRORS.get(reason) if is_automatic(reason) and reason else None,
        }

    @staticmethod
    def _head(plan: RunPlan, seen: Observation) -> Json:
        """What every view of a run starts with: identity, status and times."""
        return {
            "id": plan.id,
            "status": seen.status,
            "run_number": plan.number,
            "created_at": iso(plan.created),
            "started_at": iso_or_none(seen.started_at),
            "completed_at": iso_or_none(seen.completed_at),
        }

    def run_list_item(self, plan: RunPlan, now: int) -> Json:
        """A List Runs item: no workflow_id, updated_at, error, has_export, token_cost."""
        seen = plan.observe(now)
        usage, tokens = self._progress(plan, seen)
        started = seen.started_at is not None
        return {
            **self._head(plan, seen),
            "pause_requested_at": iso_or_none(seen.pause_requested_at),
            "paused_at": iso_or_none(seen.paused_at),
            **self._pause(seen),
            "total_nodes": plan.total_nodes,
            "total_steps": plan.total_steps,
            "finished_steps": seen.finished_steps,
            "finished_nodes": finished_nodes(plan, seen),
            "usage_summary": usage,
            "credits": self.credits(tokens),
            "triggered_by": self._users[plan.user],
            "output_line_count": plan.output_lines(seen.finished_steps) if started else None,
            "delivered_audio_ms": (
                plan.delivered_audio_ms(seen.finished_steps) if started else None
            ),
        }

    def run_status(self, plan: RunPlan, workflow_id: str, now: int) -> Json:
        """Get Run Status."""
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
            **self._pause(seen),
            "total_nodes": plan.total_nodes,
            "total_steps": plan.total_steps,
            "finished_steps": seen.finished_steps,
            "finished_nodes": finished_nodes(plan, seen),
            "held_nodes": held_nodes(plan, seen),
            "usage_summary": usage,
            "error": plan.error if seen.completed_at is not None else None,
            "has_export": seen.status == COMPLETED,
            "triggered_by": self._users[plan.user],
        }

    def run_detail(self, plan: RunPlan, profile: WorkflowProfile, now: int) -> Json:
        """Get Run: the status fields plus the snapshot, credits and sharing."""
        body = self.run_status(plan, profile.id, now)
        body["credits"] = self.credits(body["token_cost"])
        # Credits are rounded up (``credits``), so floor-rounding never discounts anything.
        body["credits_absorbed"] = 0.0
        body["definition_snapshot"] = self.definition(profile)
        body["public_share_id"] = None
        body["shared_at"] = None
        return body

    # --- steps and overview -------------------------------------------------------------

    @staticmethod
    def run_steps(
        plan: RunPlan,
        now: int,
        *,
        include_result: bool,
        node_type: str | None,
        node_id: str | None,
    ) -> list[Json]:
        """Get Run Steps (see steps.py)."""
        return step_rows(
            plan,
            now,
            include_result=include_result,
            node_type_filter=node_type,
            node_id_filter=node_id,
        )

    def run_overview(self, plan: RunPlan, profile: WorkflowProfile, now: int) -> Json:
        """Get Run Overview: metrics, audio per locale, validators and node states."""
        seen = plan.observe(now)
        started = seen.started_at is not None
        rows = step_rows(plan, now)
        latest: dict[str, Json] = {}
        for row in rows:
            latest[row["node_id"]] = row
        lines = plan.output_lines(seen.finished_steps) if started else 0
        audio_ms = plan.delivered_audio_ms(seen.finished_steps) if started else 0
        ready = "available" if started else "not_ready"
        return {
            "workflow": {"id": profile.id, "name": profile.name},
            "run": {
                **self._head(plan, seen),
                "paused_ms": self._pause(seen)["paused_ms"],
                "has_export": seen.status == COMPLETED,
                "error": plan.error if seen.completed_at is not None else None,
            },
            "share": None,
            "metric_sections": [
                {
                    "key": "output",
                    "title": "Output",
                    "layout": "grid",
                    "metrics": [
                        _metric("output_lines", "Output lines", lines, f"{lines}", "lines", ready),
                        _metric(
                            "delivered_audio",
                            "Delivered audio",
                            audio_ms,
                            f"{audio_ms / 1000:.1f} s",
                            "ms",
                            ready,
                        ),
                    ],
                }
            ],
            "audio_by_language": _audio_by_language(plan, lines),
            "validators": self._validators(plan, latest),
            "workflow_snapshot": {
                "definition": self.definition(profile),
                "node_states": [_node_state(row) for row in latest.values()],
            },
            "capabilities": {
                "validator_drilldown": False,
                "live_trace_timing": False,
                "persisted_aggregates": True,
            },
            "future_links": {"validator_drilldown": None, "live_trace": None},
        }

    @staticmethod
    def _validators(plan: RunPlan, latest: dict[str, Json]) -> list[Json]:
        """Validator nodes that have run: each iteration before the latest one passed."""
        found = []
        for row in latest.values():
            if not row["node_type"].startswith("validator_"):
                continue
            status = row["status"]
            failed = 1 if status == FAILED else 0
            passed = row["iteration"] - (0 if status == COMPLETED else 1)
            judged = passed + failed
            found.append(
                {
                    "node_id": row["node_id"],
                    "kind": row["node_type"],
                    "label": row["node_display_name"],
                    "avg_score": 0.8 + (plan.number % 20) / 100 if passed else None,
                    "pass_rate": passed / judged if judged else None,
                    "pass_count": passed,
                    "fail_count": failed,
                    "retry_count": 0,
                    "status": "available" if judged else "not_ready",
                }
            )
        return found

    # --- summary ------------------------------------------------------------------------

    @staticmethod
    def summary(by_status: dict[str, int], completed_seconds: int, delivered_audio_ms: int) -> Json:
        """Runs Summary, by the SDK's rules: ``pass_rate`` is completed / (completed + failed)
        (cancelled runs are not failures); the average duration is the mean *active* duration
        of the completed runs (paused time excluded); audio is summed over completed runs."""
        completed = by_status.get("completed", 0)
        decided = completed + by_status.get("failed", 0)
        return {
            "total_runs": sum(by_status.values()),
            "completed": completed,
            "failed": by_status.get("failed", 0),
            "cancelled": by_status.get("cancelled", 0),
            "pending": by_status.get("pending", 0),
            "running": by_status.get("running", 0),
            "paused": by_status.get("paused", 0),
            "pass_rate": completed / decided if decided else None,
            "delivered_audio_ms": delivered_audio_ms,
            "average_duration_seconds": completed_seconds / completed if completed else None,
        }


def _metric(key: str, label: str, value: int, text: str, unit: str, status: str) -> Json:
    return {
        "key": key,
        "label": label,
        "value": value,
        "formatted_value": text,
        "unit": unit,
        "status": status,
        "reason": None,
        "display": {"variant": "number", "emphasis": None},
        "annotation": None,
    }


def _audio_by_language(plan: RunPlan, lines: int) -> list[Json]:
    """Lines and audio split evenly over the run's locales (the first ones get the rest)."""
    locales = plan.locales
    result = []
    for index, locale in enumerate(locales):
        count = lines // len(locales) + (1 if index < lines % len(locales) else 0)
        total = count * plan.audio_ms_per_line
        result.append(
            {
                "locale_code": locale,
                "line_count": count,
                "total_duration_ms": total,
                "avg_duration_ms": plan.audio_ms_per_line if count else None,
            }
        )
    return result


def _node_state(row: Json) -> Json:
    return {
        "node_id": row["node_id"],
        "node_type": row["node_type"],
        "node_display_name": row["node_display_name"],
        "status": row["status"],
        "iteration": row["iteration"],
        "started_at": row["started_at"],
        "completed_at": row["completed_at"],
        "duration_ms": None,
        "error": row["error"],
    }
