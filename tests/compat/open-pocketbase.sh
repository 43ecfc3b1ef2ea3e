#!/usr/bin/env bash
# Creates data with the real PocketBase 0.40.6 (every field type, users, a relation, a file),
# stops it, starts Ferrobase on the same directory and checks through the JS SDK that every
# record, file and password sign-in is there and that new writes work.
#   tests/compat/open-pocketbase.sh FERROBASE_BIN POCKETBASE_BIN
set -euo pipefail
fb="$1"; pb="$2"
sdk="$(cd "$(dirname "$0")/../sdk" && pwd)"
[[ -d "$sdk/node_modules" ]] || (cd "$sdk" && npm ci --no-audit --no-fund --silent)
tmp="$(mktemp -d)"; echo "work dir: $tmp"
pid=0
trap 'kill $pid 2>/dev/null || true; [[ -n "${KEEP_TMP:-}" ]] || rm -rf "$tmp"' EXIT
export SDK_SUPERUSER_EMAIL=compat-admin@example.com SDK_SUPERUSER_PASSWORD=Compat-Passw0rd-1
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
export SDK_URL="http://127.0.0.1:$port"
wait_up() { for _ in $(seq 1 200); do curl -fs "$SDK_URL/api/health" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "server did not start" >&2; cat "$tmp/log" >&2; return 1; }

"$pb" superuser upsert "$SDK_SUPERUSER_EMAIL" "$SDK_SUPERUSER_PASSWORD" --dir "$tmp/pb_data" >/dev/null
"$pb" serve --http "127.0.0.1:$port" --dir "$tmp/pb_data" >"$tmp/log" 2>&1 &
pid=$!
wait_up
(cd "$sdk" && node compat-seed.mjs seed)
kill "$pid"; wait "$pid" 2>/dev/null || true

"$fb" serve --http "127.0.0.1:$port" --dir "$tmp/pb_data" >"$tmp/log" 2>&1 &
pid=$!
wait_up
(cd "$sdk" && node compat-seed.mjs verify)
echo "compat: Ferrobase opened a PocketBase 0.40.6 data directory"
