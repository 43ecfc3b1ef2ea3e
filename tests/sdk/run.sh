#!/usr/bin/env bash
# Runs the JS SDK suite (official `pocketbase` npm package) against a server.
#   tests/sdk/run.sh [BINARY]
# BINARY defaults to $FERROBASE_BIN, else <repo>/target/debug/ferrobase. Any binary with
# PocketBase's CLI works (e.g. the real PocketBase): a superuser is upserted into a fresh temp
# data dir, the server is started on a free loopback port, and stopped again at the end.
# With SDK_URL set, no server is started: the tests run against SDK_URL, and
# SDK_SUPERUSER_EMAIL / SDK_SUPERUSER_PASSWORD must name one of its superusers.
# Extra arguments after BINARY go to `node --test` (e.g. --test-name-pattern=import).
# Exits with node's exit code.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund --silent
fi

bin="${1:-${FERROBASE_BIN:-$repo/target/debug/ferrobase}}"
shift || true

run_tests() {
  set +e
  # SDK_TESTS: which test files (default: the core suite; run-fixture.sh runs plugin/).
  # shellcheck disable=SC2086
  node --test --test-reporter=spec --test-timeout=60000 "$@" ${SDK_TESTS:-tests/*.test.mjs}
  local code=$?
  set -e
  return "$code"
}

if [[ -n "${SDK_URL:-}" ]]; then
  : "${SDK_SUPERUSER_EMAIL:?SDK_URL is set: also set SDK_SUPERUSER_EMAIL (a superuser of that server)}"
  : "${SDK_SUPERUSER_PASSWORD:?SDK_URL is set: also set SDK_SUPERUSER_PASSWORD}"
  export SDK_URL SDK_SUPERUSER_EMAIL SDK_SUPERUSER_PASSWORD
  echo "SDK suite against the running server at $SDK_URL"
  code=0
  run_tests "$@" || code=$?
  exit "$code"
fi

[[ -x "$bin" ]] || { echo "no server binary at $bin (build it with: cargo build -p ferrobase, or pass a path)" >&2; exit 2; }

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
export SDK_URL="http://127.0.0.1:$port"
export SDK_SUPERUSER_EMAIL="admin@example.com"
export SDK_SUPERUSER_PASSWORD="Sdk-Passw0rd-123"

if ! "$bin" superuser upsert "$SDK_SUPERUSER_EMAIL" "$SDK_SUPERUSER_PASSWORD" --dir "$tmp/pb_data" >"$tmp/upsert.log" 2>&1; then
  echo "superuser upsert failed:" >&2
  cat "$tmp/upsert.log" >&2
  exit 1
fi
"$bin" serve --http "127.0.0.1:$port" --dir "$tmp/pb_data" >"$tmp/server.log" 2>&1 &
pid=$!

# Wait (30 s at most) until GET /api/health answers 200; stop early if the server died.
if ! node -e '
  const [url, pid] = process.argv.slice(1);
  const deadline = Date.now() + 30000;
  (async () => {
    while (Date.now() < deadline) {
      try { process.kill(Number(pid), 0); } catch { console.error("the server exited"); process.exit(1); }
      try {
        const res = await fetch(url + "/api/health", { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) process.exit(0);
      } catch {}
      await new Promise((r) => setTimeout(r, 100));
    }
    console.error("no 200 from /api/health within 30 s");
    process.exit(1);
  })();
' "$SDK_URL" "$pid"; then
  echo "--- server log ---" >&2
  cat "$tmp/server.log" >&2
  exit 1
fi

echo "SDK suite against $bin at $SDK_URL"
code=0
run_tests "$@" || code=$?
if [[ $code -ne 0 ]]; then
  echo "--- server log (last 50 lines) ---" >&2
  tail -n 50 "$tmp/server.log" >&2
fi
exit "$code"
