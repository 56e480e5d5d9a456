#!/usr/bin/env bash
# README command 1: install what is missing (venv, pip; no browser needed), then run the main job:
# HLT merger emulator, one receiver per subsystem, and the dashboard on http://127.0.0.1:8050.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec "${VENV:-.venv}/bin/python" app.py "$@"
