#!/usr/bin/env bash
# Regenerate the hashed lock files the container image installs with `pip install --require-hashes`:
#   requirements.lock        the exporter's runtime dependencies (from pyproject.toml)
#   requirements-build.lock  what builds its wheel (setuptools, wheel: pyproject's build-system)
# Run it after changing dependencies in pyproject.toml, or to take newer releases:
#   ./deploy/lock.sh            # keep current pins where still allowed
#   ./deploy/lock.sh --upgrade  # newest allowed releases
# It resolves for Python 3.11 on Linux (the image's interpreter) from the default package index
# only: local pip configuration (extra indexes, find-links, constraints) is ignored so that every
# pin and hash is one that the image's build can download.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info[:2] == (3, 11), "run with Python 3.11 (PYTHON=...)"'

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX
"$python" -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q --disable-pip-version-check "pip-tools>=7.4,<8"

export CUSTOM_COMPILE_COMMAND="./deploy/lock.sh"
compile=("$tools/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras
  --no-emit-index-url --no-emit-trusted-host --no-emit-find-links --resolver=backtracking "$@")

"${compile[@]}" --output-file=requirements.lock pyproject.toml
printf 'setuptools>=77\nwheel\n' >"$tools/build.in"
"${compile[@]}" --output-file=requirements-build.lock "$tools/build.in"
# The temporary input's path means nothing to a reader.
sed -i "s|$tools/build.in|pyproject.toml [build-system] requires|" requirements-build.lock
echo "wrote requirements.lock and requirements-build.lock"
