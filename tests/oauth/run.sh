#!/usr/bin/env bash
# The OAuth plugin end to end: a real OpenID Connect provider (op.mjs, npm oidc-provider) and
# a stand-in of the preset providers (presets-standin.mjs) on loopback, the official
# PocketBase JS SDK as the client. Each test file starts its own Ferrobase.
#   tests/oauth/run.sh [BINARY]   (default: $FERROBASE_BIN, else <repo>/target/debug/ferrobase)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
[[ -d node_modules ]] || npm ci --no-audit --no-fund --silent
export FERROBASE_BIN="${1:-${FERROBASE_BIN:-$here/../../target/debug/ferrobase}}"
[[ -x "$FERROBASE_BIN" ]] || { echo "no server binary at $FERROBASE_BIN" >&2; exit 2; }
exec node --test --test-reporter=spec --test-timeout=60000 ./*.test.mjs
