"""`onepin-exporter --demo`: the simulator and the exporter in one process, no account needed."""

from __future__ import annotations

import asyncio
import errno
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from exporter.config import Config, parse_config
from exporter.listen import CannotListen, ListenAddress
from exporter.logs import setup_logging
from exporter.serving import serve
from exporter.signals import run_until_signalled
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


@dataclass(frozen=True, slots=True)
class WebOptions:
    """The --web.* flags the demo honours besides the listen addresses."""

    telemetry_path: str = "/metrics"
    exporter_metrics: bool = True


async def demo_main(
    listens: Sequence[ListenAddress],
    stop: asyncio.Event,
    fallback: bool,
    out: TextIO,
    web: WebOptions = WebOptions(),
) -> None:
    """The simulator, then the exporter against it on `listens`; with `fallback` (no address
    was asked for), a taken port makes the exporter take a free one, and say so."""
    simulator = SimulatorConfig(token=DEMO_TOKEN, workflows=DEMO_WORKFLOWS, speed=DEMO_SPEED)
    runner, port = await start_site(create_app(simulator), "127.0.0.1", 0)
    api_url = f"http://127.0.0.1:{port}"
    config = demo_config(api_url)
    try:
        try:
            await _serve_exporter(config, listens, stop, api_url, out, web)
        except CannotListen as exc:
            if not fallback or exc.errno != errno.EADDRINUSE:
                raise
            taken = exc.address
            free = ListenAddress(taken.host, 0)
            note = f"port {taken.port} is in use, so the demo took port {{port}} instead\n"
            await _serve_exporter(config, [free], stop, api_url, out, web, note)
    finally:
        await runner.cleanup()


async def _serve_exporter(
    config: Config,
    listens: Sequence[ListenAddress],
    stop: asyncio.Event,
    api_url: str,
    out: TextIO,
    web: WebOptions,
    note: str = "",
) -> None:
    def announce(urls: list[str]) -> None:
        url = urls[0]
        print(
            "\nOnePin exporter demo\n"
            f"  simulated OnePin API: {api_url}/api/v1/workflows"
            f"  (token {DEMO_TOKEN}, {DEMO_SPEED:g}x real time)\n"
            + "".join(f"  exporter:             {u}/\n" for u in urls)
            + f"  metrics:              {url}{web.telemetry_path}\n"
            + note.format(port=url.rsplit(":", 1)[1])
            + "Press Ctrl-C to stop.\n",
            file=out,
            flush=True,
        )

    await serve(
        config,
        listens,
        stop,
        announce,
        telemetry_path=web.telemetry_path,
        exporter_metrics=web.exporter_metrics,
    )


def run_demo(
    listens: Sequence[ListenAddress] | None,
    log_level: str,
    log_format: str,
    web: WebOptions = WebOptions(),
) -> int:
    setup_logging(log_level, log_format, lambda: [DEMO_TOKEN])
    try:
        run_until_signalled(
            lambda stop: demo_main(listens or [DEMO_LISTEN], stop, not listens, sys.stdout, web)
        )
    except (CannotListen, OSError) as exc:
        print(f"onepin-exporter: demo failed to start: {exc}", file=sys.stderr)
        return 1
    return 0
