#!/usr/bin/env bash
# Runs the reliability suite against a Ferrobase binary:
#   tests/reliability/run.sh BIN [--short]
# --short is the CI size (about 3 minutes); without it the full size (about 10-15 minutes).
# Each script prints a table of checks and exits non-zero when one fails; this script runs
# them all and fails if any failed. Python 3 standard library only.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:?usage: run.sh BIN [--short]}"; shift
failed=()
for t in kill9 sigterm concurrency slowloris idle_sse; do
  echo "== reliability: $t $*"
  if [[ $t == sigterm ]]; then
    python3 "$here/kill9.py" "$bin" --signal term "$@" || failed+=("$t")
  elif ! python3 "$here/$t.py" "$bin" "$@"; then failed+=("$t"); fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "reliability: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "reliability: all passed"
