#!/usr/bin/env bash
# The storage layer's shape (issue #22): the app talks to SQLite through SeaORM
# (sea-orm-sync on its rusqlite driver), one SQLite library is linked, and no module of
# app/src outside the storage module (app/src/db) uses rusqlite itself.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree --locked -p ferrobase --target all -e normal,build --prefix none)
fail=0
if ! grep -q '^sea-orm-sync ' <<<"$tree"; then
  echo "sea-orm-sync is not in the dependency tree of ferrobase"; fail=1
fi
sqlite=$(grep '^libsqlite3-sys ' <<<"$tree" | sed 's/ (\*)$//' | sort -u)
if [[ $(grep -c . <<<"$sqlite") -ne 1 ]]; then
  echo "expected exactly one libsqlite3-sys, found:"; echo "$sqlite"; fail=1
fi
if grep -rn 'rusqlite' app/src --include='*.rs' | grep -v '^app/src/db/'; then
  echo "rusqlite is used outside app/src/db (statements go through db::Conn, SeaORM)"; fail=1
fi
[[ $fail -eq 0 ]] && echo "ok: SeaORM ($(grep '^sea-orm-sync ' <<<"$tree" | head -1)), one SQLite ($sqlite), rusqlite only in app/src/db"
exit $fail
