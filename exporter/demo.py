"""`onepin-exporter --demo`: the simulator and the exporter in one process, no account needed."""

from __future__ import annotations

import asyncio
import sys

from exporter.config import Config, parse_config
from exporter.logs import setup_logging
from exporter.runtime import ListenAddress, run_until_signalled, serve
from exporter.simulator.app import create_app
from exporter.simulator.config import SimulatorConfig
from exporter.simulator.server import start_site

DEMO_LISTEN = ListenAddress("127.0.0.1", 9879)
DEMO_TOKEN = "op_live_DemoDemoDemoDemoDemoDemoDemoDemo"  # noqa: S105 (public demo key)
# 30 simulated seconds per real second: runs visibly progress between two scrapes.
DEMO_SPEED = 30.0
DEMO_WORKFLOWS = 12


def demo_config(api_url: str) -> Config:
    return parse_config(
        f"""
workspaces:
  - name: demo
    api_url: {api_url}
    token: {DEMO_TOKEN}
collection:
  min_interval: 2s
""",
        "<demo>",
    )


async def _demo(listen: ListenAddress, stop: asyncio.Event) -> None:
    simulator = SimulatorConfig(token=DEMO_TOKEN, workflows=DEMO_WORKFLOWS, speed=DEMO_SPEED)
    runner, port = await start_site(create_app(simulator), "127.0.0.1", 0)
    api_url = f"http://127.0.0.1:{port}"
    try:
        try:
            await _serve_exporter(demo_config(api_url), listen, stop, api_url)
        except OSError:
            # The demo's usual port is taken: any free port will do.
            fallback = ListenAddress(listen.host, 0)
            await _serve_exporter(demo_config(api_url), fallback, stop, api_url)
    finally:
        await runner.cleanup()


async def _serve_exporter(
    config: Config, listen: ListenAddress, stop: asyncio.Event, api_url: str
) -> None:
    def announce(url: str) -> None:
        print(
            "\nOnePin exporter demo\n"
            f"  simulated OnePin API: {api_url}/api/v1/workflows"
            f"  (token {DEMO_TOKEN}, {DEMO_SPEED:g}x real time)\n"
            f"  exporter:             {url}/\n"
            f"  metrics:              {url}/metrics\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )

    await serve(config, listen, stop, announce)


def run_demo(listen: ListenAddress | None, log_level: str, log_format: str) -> int:
    setup_logging(log_level, log_format, lambda: [DEMO_TOKEN])
    target = listen or DEMO_LISTEN

    try:
        run_until_signalled(lambda stop: _demo(target, stop))
    except OSError as exc:
        print(f"onepin-exporter: demo failed to start: {exc}", file=sys.stderr)
        return 1
    return 0
