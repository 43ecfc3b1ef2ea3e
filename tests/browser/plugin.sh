#!/usr/bin/env bash
# The fixture plugin's dashboard page and settings form in headless Chromium.
#   tests/browser/plugin.sh [FIXTURE_BINARY]   (default: <repo>/target/debug/ferrobase-fixture)
# PLUGIN_TEST picks the test file (default plugin-page.mjs; mcp-tokens.mjs runs the MCP
# plugin's token page against the ferrobase binary).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
bin="${1:-$repo/target/debug/ferrobase-fixture}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "no Chromium at $CHROMIUM" >&2; exit 2; }
[[ -x "$bin" ]] || { echo "no fixture binary at $bin (cargo build -p ferrobase-plugin-host)" >&2; exit 2; }
[[ -d node_modules ]] || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
export FB_SCREENSHOTS="${FB_SCREENSHOTS:-$repo/target/test-output/browser}"
mkdir -p "$FB_SCREENSHOTS"
tmp="$(mktemp -d)"; pid=""
cleanup() { [[ -n "$pid" ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; rm -rf "$tmp"; }
trap cleanup EXIT
export FB_EMAIL=admin@example.com FB_PASSWORD='Plugin-Passw0rd!'
"$bin" superuser upsert "$FB_EMAIL" "$FB_PASSWORD" --dir "$tmp/data" >/dev/null
port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
export FB_URL="http://127.0.0.1:$port"
"$bin" serve --http "127.0.0.1:$port" --dir "$tmp/data" >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 300); do "$bin" health --url "$FB_URL" 2>/dev/null && break; sleep 0.1; done
code=0
node --test --test-reporter=spec "${PLUGIN_TEST:-plugin-page.mjs}" || code=$?
[[ $code -eq 0 ]] || tail -n 40 "$tmp/log" >&2
exit "$code"
