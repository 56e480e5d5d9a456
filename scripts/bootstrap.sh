#!/usr/bin/env bash
# Idempotent set-up shared by both README commands: Debian Chromium (browser tests only),
# a venv, and this project with its pinned dependencies. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
WANT_BROWSER="${WANT_BROWSER:-0}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
APT_UPDATED=0
apt_install() {
  [ "$APT_UPDATED" = 1 ] || { $SUDO apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ "$WANT_BROWSER" = 1 ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  echo "bootstrap: installing Debian chromium + chromium-driver" >&2
  apt_install chromium chromium-driver
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: $PYTHON is $("$PYTHON" -V 2>&1); this project needs Python >= 3.11 (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  # Debian's own python3 has no venv module until python3-venv is installed.
  "$PYTHON" -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV"; apt_install python3-venv; "$PYTHON" -m venv "$VENV"; }
fi
# A stamp of pyproject.toml skips pip entirely when nothing changed since the last install; the test
# install ([test]) includes everything the plain one needs.
HASH="$(sha1sum pyproject.toml | cut -c1-12)"
EXTRAS=""; [ "$WANT_BROWSER" = 1 ] && EXTRAS="[test]"
if [ ! -f "$VENV/.installed-$HASH$EXTRAS" ] && [ ! -f "$VENV/.installed-$HASH[test]" ]; then
  echo "bootstrap: pip install -e .$EXTRAS" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".$EXTRAS"
  touch "$VENV/.installed-$HASH$EXTRAS"
fi
# plotly.js's cartesian partial bundle for the pages (dashboard/plotly_bundle.py), from the npm registry at
# install time only (never at run time); without it (offline install) the pages use dcc's full bundle.
"$VENV/bin/python" -m dashboard.plotly_bundle fetch || echo "bootstrap: continuing without the plotly.js partial bundle" >&2
