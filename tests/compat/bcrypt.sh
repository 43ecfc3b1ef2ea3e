#!/usr/bin/env bash
# A password hash written by Ferrobase must work in PocketBase 0.40.6 (the other direction,
# a PocketBase hash in Ferrobase, is a unit test in app/src/auth/password.rs).
#   tests/compat/bcrypt.sh FERROBASE_BIN POCKETBASE_BIN
set -euo pipefail
fb="$1"; pb="$2"
tmp="$(mktemp -d)"
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=0
email=compat@example.com
"$fb" superuser upsert "$email" 'Ferrobase-Hash-1' --dir "$tmp/fb" >/dev/null
"$pb" superuser upsert "$email" 'PocketBase-Hash-1' --dir "$tmp/pb" >/dev/null
python3 - "$tmp" "$email" <<'PY'
import sqlite3, sys
tmp, email = sys.argv[1], sys.argv[2]
h = sqlite3.connect(f"{tmp}/fb/data.db").execute("SELECT password FROM _superusers WHERE email = ?", (email,)).fetchone()[0]
assert h.startswith("$2"), h
db = sqlite3.connect(f"{tmp}/pb/data.db")
db.execute("UPDATE _superusers SET password = ? WHERE email = ?", (h, email))
db.commit()
PY
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
"$pb" serve --http "127.0.0.1:$port" --dir "$tmp/pb" >"$tmp/pb.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/health" >/dev/null 2>&1 && break; sleep 0.1; done
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/collections/_superusers/auth-with-password" \
  -H 'content-type: application/json' -d "{\"identity\":\"$email\",\"password\":\"Ferrobase-Hash-1\"}")
if [[ "$code" != 200 ]]; then
  echo "bcrypt compat: PocketBase rejected a Ferrobase hash (HTTP $code)" >&2
  exit 1
fi
echo "bcrypt compat: a Ferrobase hash signs in to PocketBase 0.40.6"
