#!/usr/bin/env bash
# README command 2: install what is missing (Debian chromium for browser tests, venv, pip), then run
# the whole test suite headless. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
WANT_BROWSER=1 bash scripts/bootstrap.sh
exec "${VENV:-.venv}/bin/python" -m pytest -q --headless "$@"
