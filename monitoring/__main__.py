"""python -m monitoring [--check] [--out DIR]: write (or compare) the generated files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitoring import links, outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring",
        description="Write the Grafana dashboards, prometheus/alerts.yml and the PrometheusRule "
        "from the Python sources in monitoring/.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is out of date"
    )
    parser.add_argument(
        "--out", type=Path, default=links.REPO, help="root directory (default: the repository)"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = outputs.stale(args.out)
        for path in stale:
            print(f"{path} is out of date: run python -m monitoring", file=sys.stderr)
        return 1 if stale else 0
    for path in outputs.write(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
