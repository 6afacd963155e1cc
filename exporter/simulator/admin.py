"""The admin API under ``/_sim`` (no auth): drive the clock, faults and runs; read stats."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .clock import ManualClock
from .errors import ApiError, not_found, validation_error
from .names import PAUSE_REASONS
from .plan import COMPLETED, OUTCOMES, RunPlan
from .rng import derive
from .schedule import DAY
from .state import Simulator, error_response, json_response
from .timefmt import iso

ADMIN_PREFIX = "/_sim"
_CHURN = 0x4348524E
# Runs started by churn last as long as the benchmark shape's long runs: they stay active.
CHURN_RUN_SECONDS = 2 * DAY

AdminHandler = Callable[[web.Request], Awaitable[web.Response]]


def _bad(field: str, message: str) -> ApiError:
    return validation_error([{"field": field, "message": message}])


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _bad("body", f"invalid JSON: {error}") from None
    if not isinstance(body, dict):
        raise _bad("body", "must be a JSON object")
    return body


def _int_field(
    body: dict[str, Any], name: str, default: int | None, low: int, required: bool = False
) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(name, "is required")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(name, "must be a number")
    if value < low:
        raise _bad(name, f"must be >= {low}")
    return int(value)


class AdminRoutes:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._churns = 0

    def register(self, router: web.UrlDispatcher) -> None:
        routes: list[tuple[str, str, AdminHandler]] = [
            ("POST", "advance", self.advance),
            ("GET", "faults", self.get_faults),
            ("POST", "faults", self.set_faults),
            ("GET", "stats", self.get_stats),
            ("POST", "stats/reset", self.reset_stats),
            ("POST", "runs", self.start_run),
            ("POST", "churn", self.churn),
            ("GET", "workflows", self.workflows),
        ]
        for method, path, handler in routes:
            router.add_route(method, f"{ADMIN_PREFIX}/{path}", self._answering_errors(handler))

    def _answering_errors(self, handler: AdminHandler) -> AdminHandler:
        async def wrapped(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except ApiError as error:
                return error_response(self.sim, error)

        return wrapped

    async def advance(self, request: web.Request) -> web.Response:
        clock = self.sim.clock
        if not isinstance(clock, ManualClock):
            raise ApiError(409, "CONFLICT", "the clock is not manual (start with --clock=manual)")
        raw = request.query.get("seconds", "")
        try:
            seconds = float(raw)
        except ValueError:
            raise _bad("seconds", "must be a number") from None
        if not (math.isfinite(seconds) and seconds >= 0):
            raise _bad("seconds", "must be a finite number >= 0")
        now = clock.advance(seconds)
        return json_response({"now": iso(int(now)), "now_unix": now})

    async def get_faults(self, request: web.Request) -> web.Response:
        return json_response(self.sim.faults.settings.as_json())

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        try:
            settings = self.sim.faults.update(body)
        except (TypeError, ValueError) as error:
            raise _bad("body", str(error)) from None
        return json_response(settings.as_json())

    async def get_stats(self, request: web.Request) -> web.Response:
        return json_response(self.sim.stats.snapshot())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.sim.stats.reset()
        return json_response(self.sim.stats.snapshot())

    async def start_run(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        workflow_id = body.get("workflow_id")
        if not isinstance(workflow_id, str):
            raise _bad("workflow_id", "is required (a workflow id)")
        outcome = body.get("outcome")
        if outcome not in OUTCOMES:
            raise _bad("outcome", f"must be one of {', '.join(OUTCOMES)}")
        model = self.sim.model
        profile = model.profile(workflow_id)
        if profile is None:
            raise not_found("Workflow")
        duration = _int_field(body, "duration_seconds", profile.duration, 1, outcome != "stall")
        pending = _int_field(body, "pending_seconds", 2, 0)
        steps = _int_field(body, "total_steps", None, 1)
        pause_reason = body.get("pause_reason")
        reasons = [reason for reason, _ in PAUSE_REASONS]
        if pause_reason is not None and pause_reason not in reasons:
            raise _bad("pause_reason", f"must be one of {', '.join(reasons)}, or null")
        pause_seconds = _int_field(body, "pause_seconds", 60, 1)
        if pause_reason is not None and duration is not None and duration < 6:
            raise _bad("duration_seconds", "must be >= 6 for a run with a pause")
        assert duration is not None and pending is not None and pause_seconds is not None
        plan = model.start_run(
            workflow_id,
            outcome=str(outcome),
            duration_seconds=duration,
            pending_seconds=pending,
            total_steps=steps,
            pause_reason=pause_reason,
            pause_seconds=pause_seconds,
        )
        with model.session() as now:
            data = self.sim.renderer.run_status(plan, profile.id, now)
        return json_response({"data": data, "meta": self.sim.meta(now)}, status=201)

    async def workflows(self, request: web.Request) -> web.Response:
        return json_response([{"id": p.id, "name": p.name} for p in self.sim.model.profiles])

    async def churn(self, request: web.Request) -> web.Response:
        """End a share of the active runs at the next second; start as many now on idle workflows.

        Body: ``share`` (0..1 of the active runs, rounded) or ``runs`` (a count). Only runs
        started explicitly (``--active-runs``, ``POST /_sim/runs``, earlier churn) end; the new
        runs go to workflows with no active run and other than those just ended, so that each
        touched workflow has one change. Picks are seeded: the same calls give the same world."""
        body = await _json_object(request)
        share = body.get("share")
        runs = _int_field(body, "runs", None, 0)
        if (share is None) == (runs is None):
            raise _bad("body", "give exactly one of share (0..1) or runs (a count)")
        model, seed = self.sim.model, self.sim.config.seed
        active = model.active_runs()
        if runs is None:
            if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
                raise _bad("share", "must be a number from 0 to 1")
            runs = round(share * len(active))
        self._churns += 1
        busy = {plan.workflow for plan in active}
        order = sorted(active, key=lambda p: derive(seed, _CHURN, self._churns, p.workflow))
        finished: list[RunPlan] = []
        for plan in order:
            if len(finished) >= runs:
                break
            ended = model.finish_run(model.profiles[plan.workflow].id)
            if ended is not None:
                finished.append(ended)
        idle = [p for p in model.profiles if p.index not in busy]
        idle.sort(key=lambda p: derive(seed, _CHURN, self._churns, -1 - p.index))
        started = [
            model.start_run(p.id, outcome=COMPLETED, duration_seconds=CHURN_RUN_SECONDS)
            for p in idle[: len(finished)]
        ]

        def runs_json(plans: list[RunPlan]) -> list[dict[str, str]]:
            return [{"workflow_id": model.profiles[p.workflow].id, "run_id": p.id} for p in plans]

        return json_response({"finished": runs_json(finished), "started": runs_json(started)})
