#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 20), starting from seeds/<target>
# and replaying regressions/<target>/ (inputs that once crashed; they must pass now).
#   app/fuzz/run.sh [SECONDS] [TARGET...]
# With FUZZ_RUNS=N each target instead runs exactly N inputs from a fixed seed (-seed=1), so
# the same tree gives the same run on every machine: that is how tests/run.sh (and CI) runs
# it, so that CI stays reproducible; finding new crashes is the job of the long, timed runs.
# Needs cargo-fuzz (cargo install cargo-fuzz --locked). Runs on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's -Z flags) without a sanitizer (-s none), as a
# debug build with debug assertions (--dev); for long runs use nightly with ASan:
#   cargo +nightly fuzz run filter -- -max_total_time=3600
# A crash is saved under artifacts/<target>/: copy it to regressions/<target>/ with the fix.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"; shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(filter sort fields expand multipart collection_json)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none --dev
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "regressions/$t"
  if compgen -G "regressions/$t/*" >/dev/null; then
    echo "== $t: replaying regressions"
    cargo fuzz run -s none --dev "$t" regressions/"$t"/* -- -runs=0
  fi
  if [[ -n "${FUZZ_RUNS:-}" ]]; then
    echo "== $t: ${FUZZ_RUNS} inputs from seed 1"
    budget=(-runs="$FUZZ_RUNS" -seed=1)
  else
    echo "== $t: ${secs}s"
    budget=(-max_total_time="$secs")
  fi
  cargo fuzz run -s none --dev "$t" "corpus/$t" "seeds/$t" -- "${budget[@]}" -max_len=2048 -print_final_stats=0 2>&1 \
    | grep -E -A3 "^(Done|INFO: -max_total_time)|panicked|SUMMARY|Test unit written" || true
  # cargo fuzz exits non-zero on a crash; grep above would hide it, so check artifacts.
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "FAILED in $t (crash, leak, timeout or out of memory):" artifacts/"$t"/* >&2
    exit 1
  fi
done
