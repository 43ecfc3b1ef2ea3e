#!/usr/bin/env bash
# Drives the admin dashboard (/_/) in headless Chromium (playwright-core, no browser download:
# Debian's chromium) through one serial flow on a fresh server that has no superuser yet.
#   tests/browser/run.sh [BINARY] [extra `node --test` arguments]
# BINARY defaults to $FERROBASE_BIN, else <repo>/target/debug/ferrobase. The server is started
# on a free loopback port with a temp data dir and stopped again at the end. Chromium is
# $CHROMIUM, else /usr/bin/chromium. Screenshots go to $FB_SCREENSHOTS, else
# <repo>/target/test-output/browser/ (the CI artifact folder). Exits with node's exit code.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

bin="${1:-${FERROBASE_BIN:-$repo/target/debug/ferrobase}}"
shift || true

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "no Chromium at $CHROMIUM (install it with: apt-get install chromium fonts-dejavu-core, or set CHROMIUM)" >&2
  exit 2
fi
[[ -x "$bin" ]] || { echo "no server binary at $bin (build it with: cargo build -p ferrobase, or pass a path)" >&2; exit 2; }

if [[ ! -d node_modules ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent
fi

export FB_SCREENSHOTS="${FB_SCREENSHOTS:-$repo/target/test-output/browser}"
mkdir -p "$FB_SCREENSHOTS"

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
export FB_URL="http://127.0.0.1:$port"
export FB_LOG="$tmp/server.log"

# No `superuser upsert`: the flow starts with the installer link that `serve` prints.
"$bin" serve --http "127.0.0.1:$port" --dir "$tmp/fb_data" >"$FB_LOG" 2>&1 &
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
' "$FB_URL" "$pid"; then
  echo "--- server log ---" >&2
  cat "$FB_LOG" >&2
  exit 1
fi

echo "dashboard suite against $bin at $FB_URL (Chromium: $CHROMIUM, screenshots: $FB_SCREENSHOTS)"
code=0
node --test --test-reporter=spec --test-timeout=120000 "$@" tests/*.test.mjs || code=$?
if [[ $code -ne 0 ]]; then
  echo "--- server log (last 50 lines) ---" >&2
  tail -n 50 "$FB_LOG" >&2
fi
exit "$code"
