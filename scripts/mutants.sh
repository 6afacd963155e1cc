#!/usr/bin/env bash
# Mutation testing of the modules whose logic is pure, with mutmut (issue 17). Not part of CI.
#   scripts/mutants.sh                      # every module of [tool.mutmut] only_mutate
#   scripts/mutants.sh exporter/logs.py     # some of them (they must be in only_mutate)
#   DIFF=1 scripts/mutants.sh ...           # also show what each surviving mutant changes
# Each mutant runs the fast unit tests of [tool.mutmut] pytest_add_cli_args_test_selection
# that call the mutated function. Prints the killed share per module and the survivors;
# mutants listed in scripts/mutants-equivalent.txt (they cannot change behaviour) are left
# out of the share. Needs mutmut 3: .venv/bin/pip install '.[mutation]'. JOBS sets the
# number of parallel mutants (default 2); PYTHON the interpreter (default .venv/bin/python).
# Starts afresh each time: mutmut's working copy and results are in mutants/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
mutmut="$(dirname "$python")/mutmut"
modules=("$@")
if [ ${#modules[@]} -eq 0 ]; then
  mapfile -t modules < <("$python" scripts/mutants_report.py --modules)
fi
patterns=()
for module in "${modules[@]}"; do
  name=${module%.py}
  patterns+=("${name//\//.}.*")  # exporter/logs.py -> mutants named exporter.logs.*
done
rm -rf mutants
mkdir mutants
start=$(date +%s)
echo "--- mutmut run ${patterns[*]} (log: mutants/run.log)"
status=0
"$mutmut" run --max-children "${JOBS:-2}" "${patterns[@]}" >mutants/run.log 2>&1 || status=$?
seconds=$(($(date +%s) - start))
if [ "$status" -ne 0 ]; then
  tail -n 30 mutants/run.log
  echo "mutmut run failed (exit $status)" >&2
  exit "$status"
fi
"$python" scripts/mutants_report.py ${DIFF:+--diff} --seconds "$seconds" "${modules[@]}"
