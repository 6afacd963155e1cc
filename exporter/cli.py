"""`onepin-exporter`: command-line flags in the Prometheus style."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter import __version__
from exporter.buildinfo import version_text
from exporter.config import Config, ConfigError, describe, load_config
from exporter.listen import CannotListen, ListenAddress, parse_listen_address
from exporter.logs import LEVELS, setup_logging
from exporter.serving import serve
from exporter.sharding import Shard, parse_shard
from exporter.signals import run_until_signalled
from exporter.webconfig import WebConfig, load_web_config

DEFAULT_LISTEN = ":9879"
DEFAULT_TELEMETRY_PATH = "/metrics"
# Paths the exporter serves itself: metrics there would hide them.
_RESERVED_PATHS = ("/", "/-/healthy", "/-/ready")


def _listen(value: str) -> ListenAddress:
    try:
        return parse_listen_address(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _telemetry_path(value: str) -> str:
    if not value.startswith("/") or any(c.isspace() or c in "?#" for c in value):
        raise argparse.ArgumentTypeError(f"{value!r}: expected a path such as /metrics")
    if value in _RESERVED_PATHS:
        raise argparse.ArgumentTypeError(f"{value!r} is where the exporter serves another page")
    return value


class _VersionAction(argparse.Action):
    """Like argparse's "version", but asks for the revision only when --version is given."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(version_text(__version__))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onepin-exporter",
        description="Prometheus exporter for OnePin workflow runs.",
        epilog="First time? Run `onepin-exporter --demo` to see it work against the built-in "
        "simulator, no account needed.",
    )
    _config_flags(parser)
    _web_flags(parser)
    _shard_flags(parser)
    _log_flags(parser)
    _run_flags(parser)
    return parser


def _config_flags(parser: argparse.ArgumentParser) -> None:
    """--config.file and --config.check."""
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


def _web_flags(parser: argparse.ArgumentParser) -> None:
    """The --web.* flags, as Prometheus and its exporters name them."""
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        type=_listen,
        action="append",
        default=None,
        metavar="HOST:PORT",
        help=f"address to serve on (default {DEFAULT_LISTEN}); repeat the flag to serve on "
        "several, e.g. an IPv4 and an IPv6 address",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        type=_telemetry_path,
        default=DEFAULT_TELEMETRY_PATH,
        metavar="PATH",
        help=f"path under which to serve the metrics (default {DEFAULT_TELEMETRY_PATH})",
    )
    parser.add_argument(
        "--web.disable-exporter-metrics",
        dest="exporter_metrics",
        action="store_false",
        help="leave out the exporter process's own process_* and python_* metrics",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="lifecycle",
        action="store_true",
        help="reload the configuration on POST /-/reload (SIGHUP always does)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="PATH",
        help="TLS and basic auth for /metrics, in the Prometheus exporter-toolkit format",
    )


def _shard_flags(parser: argparse.ArgumentParser) -> None:
    """--shard and --total-shards."""
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


def _log_flags(parser: argparse.ArgumentParser) -> None:
    """--log.level and --log.format."""
    parser.add_argument(
        "--log.level",
        dest="log_level",
        choices=list(LEVELS),
        default="info",
        help="least severe messages to log (default info); debug adds one line per API request "
        "(method, endpoint, path, status, duration, attempt)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=["logfmt", "json"],
        default="logfmt",
        help="logfmt (key=value, default) or json, one object per line; either goes to stderr",
    )


def _run_flags(parser: argparse.ArgumentParser) -> None:
    """--demo and --version: runs other than the exporter's own."""
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the built-in OnePin simulator and the exporter against it; print both URLs",
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the version, the git revision it was built from and Python's version; exit",
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader went away (`--config.check | head -1`): nothing left to say, no traceback.
        # stdout goes to /dev/null so that Python's flush at exit does not fail once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demo:
        from exporter.demo import WebOptions, run_demo

        web = WebOptions(args.telemetry_path, args.exporter_metrics)
        return run_demo(args.listen, args.log_level, args.log_format, web)
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
        count = len(exc.problems)
        print(
            f"onepin-exporter: invalid configuration ({count} problem{'s' * (count != 1)}):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    if args.config_check:
        print(describe(config), flush=True)
        return 0
    # Every token ever loaded stays redacted: a reload may bring new ones, and lines about the
    # old ones may still be written.
    configs = [config]
    setup_logging(args.log_level, args.log_format, lambda: _secrets(configs))
    listens = args.listen or [parse_listen_address(DEFAULT_LISTEN)]
    return run(
        config,
        listens,
        shard,
        web_config or WebConfig(),
        telemetry_path=args.telemetry_path,
        exporter_metrics=args.exporter_metrics,
        reload=Reload(args.config_file, args.web_config_file, args.lifecycle, configs.append),
    )


def _secrets(configs: Sequence[Config]) -> list[str]:
    return [ws.token.reveal() for config in configs for ws in config.workspaces]


@dataclass(frozen=True, slots=True)
class Reload:
    """What a reload re-reads, and whether POST /-/reload may ask for one."""

    config_file: str | None = None
    web_config_file: str | None = None
    lifecycle: bool = False
    on_config: Callable[[Config], None] | None = None


def run(
    config: Config,
    listens: Sequence[ListenAddress],
    shard: Shard,
    web_config: WebConfig,
    telemetry_path: str = DEFAULT_TELEMETRY_PATH,
    exporter_metrics: bool = True,
    reload: Reload = Reload(),
) -> int:
    try:
        run_until_signalled(
            lambda stop: serve(
                config,
                listens,
                stop,
                shard=shard,
                web_config=web_config,
                telemetry_path=telemetry_path,
                exporter_metrics=exporter_metrics,
                config_file=reload.config_file,
                web_config_file=reload.web_config_file,
                lifecycle=reload.lifecycle,
                on_config=reload.on_config,
            )
        )
    except CannotListen as exc:
        print(f"onepin-exporter: {exc}", file=sys.stderr)
        return 1
    return 0
