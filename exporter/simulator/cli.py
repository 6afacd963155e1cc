"""``onepin-simulator``: serve the simulated OnePin API until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from .app import create_app
from .config import SimulatorConfig
from .server import format_url, start_site

TOKEN_ENV = "ONEPIN_SIMULATOR_TOKEN"  # noqa: S105 (a variable name)
DEFAULT_LISTEN = "127.0.0.1:8000"


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); port 0 picks a free port."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port_text)


def schedule_flag(text: str) -> tuple[str, str]:
    """``WORKFLOW=CRON``: a workflow (id or name) and a five-field cron expression."""
    workflow, sep, cron = text.partition("=")
    if not sep or not workflow.strip() or not cron.strip():
        raise argparse.ArgumentTypeError(f"expected WORKFLOW=CRON, got {text!r}")
    return workflow.strip(), cron.strip()


def missed_flag(text: str) -> tuple[str, int]:
    """``WORKFLOW[@N]``: the N-th fire (default 1) after the start creates no run."""
    workflow, sep, number = text.rpartition("@")
    if not sep:
        workflow, number = text, "1"
    if not workflow.strip() or not number.isdigit() or int(number) < 1:
        raise argparse.ArgumentTypeError(f"expected WORKFLOW or WORKFLOW@N (N >= 1), got {text!r}")
    return workflow.strip(), int(number)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onepin-simulator",
        description="Serve a simulated OnePin REST API (for demos, tests and benchmarks).",
    )
    add = parser.add_argument
    add(
        "--listen",
        type=listen_address,
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address to listen on; port 0 picks a free one (default {DEFAULT_LISTEN})",
    )
    add("--token", help=f"the API key clients must send (default: ${TOKEN_ENV})")
    add("--workspace-id", help="the key's workspace id (default: derived from the seed)")
    add("--workflows", type=int, default=12, help="number of workflows (default 12)")
    add("--seed", type=int, default=1, help="seed of the simulated world (default 1)")
    add("--speed", type=float, default=1.0, help="simulated seconds per real second (default 1)")
    add(
        "--clock",
        choices=("real", "manual"),
        default="real",
        help="'manual': time moves only through POST /_sim/advance (default real)",
    )
    add(
        "--latency-ms",
        type=float,
        default=0.0,
        help="each API answer leaves this long after its request came in, in ms (default 0)",
    )
    add(
        "--error-rate",
        type=float,
        default=0.0,
        help="share of API requests answered with a 5xx, 0..1 (default 0)",
    )
    add(
        "--rate-limit-per-min",
        type=int,
        default=None,
        help="API requests allowed per token and minute; beyond, 429 (default: unlimited)",
    )
    add(
        "--required-version",
        default=None,
        metavar="VERSION",
        help="send X-OnePin-Required-Version: VERSION on every API answer and answer 426 to "
        "official SDK/CLI clients (User-Agent onepin/X) older than it (default: none)",
    )
    add(
        "--validation-body",
        choices=("envelope", "framework"),
        default="envelope",
        help="422 body: the OnePin error envelope or the framework's {detail: [...]} "
        "(default envelope)",
    )
    add(
        "--active-runs",
        type=int,
        default=None,
        help="benchmark shape: exactly this many workflows have one long active run, "
        "the others stay idle",
    )
    add(
        "--schedule",
        type=schedule_flag,
        action="append",
        default=[],
        metavar="WORKFLOW=CRON",
        help="run a workflow (id or name) on a cron schedule, in UTC and simulated time, "
        "instead of its natural one; Get Workflow shows it in definition.triggers (repeatable)",
    )
    add(
        "--miss-schedule",
        type=missed_flag,
        action="append",
        default=[],
        metavar="WORKFLOW[@N]",
        help="the N-th fire (default 1) after the start of a --schedule'd workflow creates no "
        "run: a missed schedule (repeatable)",
    )
    return parser  # fmt: skip


def parse_config(argv: Sequence[str] | None) -> tuple[SimulatorConfig, str, int]:
    """The config and listen address from the command line; usage errors exit 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV, "")
    if not token:
        parser.error(f"--token is required (or set {TOKEN_ENV})")
    try:
        config = SimulatorConfig(
            token=token,
            workspace_id=args.workspace_id,
            workflows=args.workflows,
            seed=args.seed,
            speed=args.speed,
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            rate_limit_per_min=args.rate_limit_per_min,
            active_runs=args.active_runs,
            clock=args.clock,
            required_version=args.required_version,
            validation_body=args.validation_body,
            schedules=tuple(args.schedule),
            missed=tuple(args.miss_schedule),
        )
    except ValueError as error:
        parser.error(str(error))
    host, port = args.listen
    return config, host, port


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    runner, bound = await start_site(create_app(config), host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"onepin-simulator listening on {format_url(host, bound)}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    config, host, port = parse_config(argv)
    try:
        asyncio.run(serve(config, host, port))
    except OSError as error:
        print(f"onepin-simulator: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        return 1
    return 0
