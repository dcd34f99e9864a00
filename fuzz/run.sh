#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 60) on its
# corpus; scripts/test runs it briefly. Needs cargo-fuzz; the stable
# toolchain is told to allow the nightly flags cargo-fuzz uses. A debug build:
# it compiles in a fraction of the release build's time (1.5 against 8
# minutes here), and a short run needs no speed. Build output goes beside the
# gateway's, outside the checkout.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${SEALGATE_FUZZ_TARGET:-${XDG_CACHE_HOME:-$HOME/.cache}/sealgate/fuzz-target}"
targets=$(cargo fuzz list)
cargo fuzz build --dev
for t in $targets; do
  mkdir -p corpus/"$t"
  # libFuzzer exits non-zero on a crash; its last lines say where.
  log=$(mktemp)
  if ! cargo fuzz run --dev "$t" corpus/"$t" -- -max_total_time="$secs" -max_len=4096 >"$log" 2>&1; then
    tail -40 "$log"
    rm -f "$log"
    echo "fuzz: $t FAILED"
    exit 1
  fi
  echo "fuzz: $t: $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
  rm -f "$log"
done
