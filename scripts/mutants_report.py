"""The killed share per module of a mutmut run, and the mutants that survived it.

Run by scripts/mutants.sh after `mutmut run`; reads mutmut's own result files (mutants/*.meta)
and its status and diff functions, so the figures are the tool's. Mutants listed in
scripts/mutants-equivalent.txt (they cannot change behaviour) are left out of the share; an
entry whose function changed since it was written is stale and counts as a survivor again.

    python scripts/mutants_report.py --modules          # the modules [tool.mutmut] mutates
    python scripts/mutants_report.py [--diff] [MODULE.py ...] [--seconds N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT = ROOT / "scripts" / "mutants-equivalent.txt"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
# A mutant no test ran ("no tests") is not caught: it counts as a survivor.
SURVIVED = {"survived", "no tests", "suspicious"}


@dataclass
class Tally:
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: int = 0
    unchecked: int = 0

    @property
    def share(self) -> float | None:
        judged = self.killed + len(self.survived)
        return self.killed / judged if judged else None


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def equivalents() -> dict[str, tuple[str, str]]:
    """Mutant name -> (hash of its function when judged, reason)."""
    found = {}
    for number, line in enumerate(EQUIVALENT.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            sys.exit(f"{EQUIVALENT.name}:{number}: expected 'MUTANT FUNCTION_HASH REASON'")
        found[parts[0]] = (parts[1], parts[2])
    return found


def function_of(mutant: str) -> str:
    """exporter.logs.x__fields__mutmut_3 -> x__fields (the key of mutmut's function hashes)."""
    return mutant.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]


def tally(module: str, judged: dict[str, tuple[str, str]], stale: list[str]) -> Tally | None:
    from mutmut.stats import status_by_exit_code

    meta = ROOT / "mutants" / (module + ".meta")
    if not meta.exists():
        return None
    data = json.loads(meta.read_text(encoding="utf-8"))
    hashes = data.get("hash_by_function_name", {})
    result = Tally()
    for mutant, code in sorted(data["exit_code_by_key"].items(), key=lambda kv: _order(kv[0])):
        status = status_by_exit_code[code]
        if code is None:
            result.unchecked += 1
        elif status in KILLED:
            result.killed += 1
        elif mutant in judged and judged[mutant][0] == hashes.get(function_of(mutant)):
            result.equivalent += 1
        else:
            if mutant in judged:
                stale.append(mutant)
            result.survived.append(f"{mutant} ({status})")
    return result


def _order(mutant: str) -> tuple[str, int]:
    function, _, number = mutant.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="default: [tool.mutmut] only_mutate")
    parser.add_argument("--modules", dest="list_modules", action="store_true")
    parser.add_argument("--diff", action="store_true", help="show each survivor's change")
    parser.add_argument("--seconds", type=int, help="the run's wall time, to print")
    args = parser.parse_args()
    if args.list_modules:
        print("\n".join(configured_modules()))
        return
    judged = equivalents()
    stale: list[str] = []
    rows = []
    for module in args.modules or configured_modules():
        result = tally(module, judged, stale)
        if result is None:
            print(f"{module}: no results (not mutated in this run)")
            continue
        rows.append((module, result))
    for module, result in rows:
        for survivor in result.survived:
            print(f"survived: {survivor}")
            if args.diff:
                from mutmut.mutation.diff_apply import get_diff_for_mutant

                name = survivor.split(" ", 1)[0]
                print(get_diff_for_mutant(name, path=module), end="\n\n")
    for mutant in stale:
        print(f"stale equivalent entry (its function changed; judge it again): {mutant}")
    print(f"\n{'module':<28} {'killed':>7} {'survived':>9} {'equivalent':>11} {'share':>7}")
    for module, result in rows:
        share = "-" if result.share is None else f"{result.share:.1%}"
        unchecked = f"  ({result.unchecked} not run)" if result.unchecked else ""
        print(
            f"{module:<28} {result.killed:>7} {len(result.survived):>9} "
            f"{result.equivalent:>11} {share:>7}{unchecked}"
        )
    if args.seconds is not None:
        print(f"\nwall time: {args.seconds // 60} min {args.seconds % 60} s")


if __name__ == "__main__":
    main()
