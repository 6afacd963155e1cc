#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then lint, types, tests.
#   ./scripts/test.sh [pytest args...]
# Needs Python >= 3.11. As root (or with sudo) it installs Debian's prometheus and
# prometheus-alertmanager for the end-to-end tests, podman, runc, debootstrap and docker-compose
# for the container and compose tests, systemd (systemd-analyze) for the systemd unit's test and
# chromium for the status page's test; elsewhere those tests skip unless CI=true. (README.md
# lists the same.)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
# The container smoke test builds and runs the image with podman on a debootstrap'd base.
command -v podman >/dev/null || need_apt+=(podman)
command -v runc >/dev/null || need_apt+=(runc)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
# systemd-analyze verifies deploy/systemd/onepin-exporter.service.
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# The status page's test renders it in headless Chromium.
command -v chromium >/dev/null || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo -n"; else sudo=none; fi
  if [ "$sudo" != none ] && command -v apt-get >/dev/null; then
    echo "--- installing ${need_apt[*]} (Debian packages)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "--- cannot install ${need_apt[*]}: end-to-end tests will skip (they fail when CI=true)"
  fi
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check ".[test]"
export PATH="$PWD/.venv/bin:$PATH"

echo "--- ruff check";          ruff check .
echo "--- ruff format --check"; ruff format --check .
echo "--- mypy";                mypy
# Three workers, each module kept in one (its module-scoped fixtures start once), the longest
# modules first (tests/conftest.py): most of the suite waits on real processes, so on 2 cores
# the waits overlap. Arguments after these win (`-n 0` runs it in one process).
echo "--- pytest";              python -m pytest -n 3 --dist loadscope --no-loadscope-reorder "$@"
