#!/usr/bin/env bash
# Idempotent set-up shared by both README commands: Debian Chromium (browser tests only),
# a venv, and this project with its pinned dependencies. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
WANT_BROWSER="${WANT_BROWSER:-0}"

if [ "$WANT_BROWSER" = 1 ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "bootstrap: installing Debian chromium + chromium-driver" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
EXTRAS=""; [ "$WANT_BROWSER" = 1 ] && EXTRAS="[test]"
# A stamp of pyproject.toml skips pip entirely when nothing changed since the last install.
STAMP="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)$EXTRAS"
if [ ! -f "$STAMP" ]; then
  echo "bootstrap: pip install -e .$EXTRAS" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".$EXTRAS"
  touch "$STAMP"
fi
