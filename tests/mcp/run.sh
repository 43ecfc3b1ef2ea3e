#!/usr/bin/env bash
# The MCP plugin with real MCP clients: the Python `mcp` SDK 2.3.0 (Streamable HTTP in both
# protocol modes, and stdio), the JS SDK watching the results.
#   tests/mcp/run.sh [BINARY]   (default: <repo>/target/debug/ferrobase)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/../../target/debug/ferrobase}"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/ferrobase-mcp-venv"
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'mcp==2.3.0'
fi
(cd "$here" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund --silent; })
exec "$venv/bin/python" "$here/test_mcp.py" "$bin"
