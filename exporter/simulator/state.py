"""One simulator's parts, built from its config and shared by the API and admin handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .clock import Clock
from .config import SimulatorConfig
from .errors import ApiError
from .faults import Faults
from .listing import Catalogue
from .model import SimModel
from .names import USERS
from .render import Renderer
from .rng import derive, mix64, uuid_from
from .schedule import user_id
from .stats import RequestStats
from .timefmt import iso

_API_KEY = 0x41504B
_REQUEST = 0x524551

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_json(payload: Any) -> bytes:
    return _encode(payload).encode()


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=encode_json(payload), status=status, headers=headers, content_type="application/json"
    )


def error_response(sim: Simulator, error: ApiError) -> web.Response:
    """The OnePin error envelope, with the error's extra headers (e.g. Retry-After)."""
    return json_response(error.body(sim.meta()), error.status, error.headers or None)


@dataclass
class Simulator:
    config: SimulatorConfig
    clock: Clock
    model: SimModel
    faults: Faults
    stats: RequestStats
    renderer: Renderer
    catalogue: Catalogue
    workspace_id: str
    whoami: dict[str, Any]
    _requests: int = field(default=0, init=False, repr=False)
    _request_key: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._request_key = derive(self.config.seed, _REQUEST)

    @classmethod
    def from_config(cls, config: SimulatorConfig) -> Simulator:
        clock = config.make_clock()
        model = SimModel(
            clock,
            workflows=config.workflows,
            seed=config.seed,
            active_runs=config.active_runs,
            schedules=config.schedules,
            missed=config.missed,
        )
        renderer = Renderer(config.seed)
        workspace_id = config.resolved_workspace_id
        whoami = {
            "auth_kind": "api_key",
            "user_id": user_id(config.seed, USERS[0].key),
            "workspace_id": workspace_id,
            "api_key_id": uuid_from(config.seed, _API_KEY),
            "scopes": sorted({"workflows:read", "workflows:run", "workspace:read"}),
        }
        return cls(
            config=config,
            clock=clock,
            model=model,
            faults=Faults(config.fault_settings(), clock, config.seed),
            stats=RequestStats(),
            renderer=renderer,
            catalogue=Catalogue(model, renderer),
            workspace_id=workspace_id,
            whoami=whoami,
        )

    def meta(self, now: int | None = None) -> dict[str, str]:
        """``meta`` of a response: an opaque request id and the simulator clock's time."""
        self._requests += 1
        if now is None:
            with self.model.session() as now:
                pass
        return {
            "request_id": f"req_{mix64(self._request_key + self._requests):016x}",
            "timestamp": iso(now),
        }

    def meta_json(self, now: int) -> bytes:
        """``meta`` already encoded (its values never need escaping)."""
        meta = self.meta(now)
        return (
            f'{{"request_id":"{meta["request_id"]}","timestamp":"{meta["timestamp"]}"}}'
        ).encode()
