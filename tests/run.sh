#!/usr/bin/env bash
# The whole test suite: Rust unit and end-to-end tests, then the official PocketBase JS SDK
# suite against the freshly built binary. Needs cargo, node (>= 18) and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (unit + end-to-end)"
cargo test --workspace --locked

echo "== JS SDK suite against Ferrobase"
cargo build --locked -p ferrobase --bin ferrobase
bash tests/sdk/run.sh "$PWD/target/debug/ferrobase"
