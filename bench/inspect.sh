#!/bin/sh
# The inspect stage end to end (MIME decode + extraction + detection) on a
# generated corpus of .eml messages with attachments, on one core.
# Usage: bench/inspect.sh [MB]   (dlp/bench.sh compares the regex pass with ripgrep)
set -eu
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sealgate/target}"
exec cargo run --release -q -p sealgate --example inspect_bench -- "${1:-100}"
