#!/usr/bin/env bash
# The fixture plugin (tests/plugin-host) through the official JS SDK.
#   tests/sdk/run-fixture.sh [FIXTURE_BINARY]   (default: <repo>/target/debug/ferrobase-fixture)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../target/debug/ferrobase-fixture}"
shift || true
SDK_TESTS='plugin/*.test.mjs' exec bash "$here/run.sh" "$bin" "$@"
