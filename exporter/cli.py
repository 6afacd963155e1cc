"""`onepin-exporter`: command-line flags in the Prometheus style."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from exporter import __version__
from exporter.config import Config, ConfigError, describe, load_config
from exporter.logs import LEVELS, setup_logging
from exporter.runtime import ListenAddress, parse_listen_address, run_until_signalled, serve
from exporter.sharding import Shard, parse_shard
from exporter.webconfig import WebConfig, load_web_config

DEFAULT_LISTEN = ":9879"


def _listen(value: str) -> ListenAddress:
    try:
        return parse_listen_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onepin-exporter",
        description="Prometheus exporter for OnePin workflow runs.",
        epilog="First time? Run `onepin-exporter --demo` to see it work against the built-in "
        "simulator, no account needed.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="PATH",
        help="YAML configuration file (see config.example.yaml)",
    )
    parser.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the configuration, print a redacted summary and exit",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        type=_listen,
        default=None,
        metavar="HOST:PORT",
        help=f"address to serve /metrics on (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="TLS and basic auth for /metrics, in the Prometheus exporter-toolkit format",
    )
    parser.add_argument(
        "--shard",
        default="0",
        metavar="N|auto",
        help="export only the workflows of shard N (0-based) of --total-shards; 'auto' takes N "
        "from the hostname's -N suffix (a StatefulSet pod)",
    )
    parser.add_argument(
        "--total-shards",
        dest="total_shards",
        type=int,
        default=1,
        metavar="M",
        help="split workflows into M shards by a stable hash of their id (default 1: no sharding)",
    )
    parser.add_argument("--log.level", dest="log_level", choices=list(LEVELS), default="info")
    parser.add_argument(
        "--log.format", dest="log_format", choices=["logfmt", "json"], default="logfmt"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in OnePin simulator and the exporter against it; print both URLs",
    )
    parser.add_argument("--version", action="version", version=f"onepin-exporter {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demo:
        from exporter.demo import run_demo

        return run_demo(args.listen, args.log_level, args.log_format)
    if not args.config_file:
        parser.error("--config.file is required (or run --demo)")
    try:
        shard = parse_shard(args.shard, args.total_shards)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        config = load_config(args.config_file)
        web_config = load_web_config(args.web_config_file) if args.web_config_file else None
    except ConfigError as exc:
        print(
            f"onepin-exporter: invalid configuration ({len(exc.problems)} problems):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.config_check:
        print(describe(config))
        return 0
    setup_logging(args.log_level, args.log_format, lambda: _secrets(config))
    listen = args.listen or parse_listen_address(DEFAULT_LISTEN)
    return run(config, listen, shard, web_config or WebConfig())


def _secrets(config: Config) -> list[str]:
    return [ws.token.reveal() for ws in config.workspaces]


def run(config: Config, listen: ListenAddress, shard: Shard, web_config: WebConfig) -> int:
    try:
        run_until_signalled(
            lambda stop: serve(config, listen, stop, shard=shard, web_config=web_config)
        )
    except OSError as exc:
        print(f"onepin-exporter: cannot listen on {listen.url()}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
