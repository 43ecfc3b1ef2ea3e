#!/usr/bin/env bash
# Runs the JS SDK suite against a server binary (Ferrobase by default; any binary with
# PocketBase's CLI works, e.g. the real PocketBase), or against a running server when SDK_URL
# is set (then SDK_SUPERUSER_EMAIL and SDK_SUPERUSER_PASSWORD must name a superuser).
#   tests/sdk/run.sh [BINARY]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund --silent
fi

run_tests() {
  node --test tests/*.test.mjs
}

if [[ -n "${SDK_URL:-}" ]]; then
  run_tests
  exit $?
fi

bin="${1:-${FERROBASE_BIN:-$repo/target/debug/ferrobase}}"
[[ -x "$bin" ]] || { echo "no server binary at $bin (build it with: cargo build -p ferrobase)" >&2; exit 2; }
tmp="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
export SDK_URL="http://127.0.0.1:$port"
export SDK_SUPERUSER_EMAIL="sdk-admin@example.com"
export SDK_SUPERUSER_PASSWORD="Sdk-Passw0rd-123"
"$bin" superuser upsert "$SDK_SUPERUSER_EMAIL" "$SDK_SUPERUSER_PASSWORD" --dir "$tmp/data" >/dev/null
"$bin" serve --http "127.0.0.1:$port" --dir "$tmp/data" >"$tmp/server.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 300); do
  if curl -fs "$SDK_URL/api/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$tmp/server.log" >&2; exit 1; fi
  sleep 0.1
done
echo "SDK suite against $bin at $SDK_URL"
set +e
run_tests
code=$?
set -e
if [[ $code -ne 0 ]]; then
  echo "--- server log (last 50 lines) ---" >&2
  tail -n 50 "$tmp/server.log" >&2
fi
exit $code
