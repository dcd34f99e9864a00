#!/usr/bin/env bash
# Archive benchmark: journals N generated messages (varied sizes: 70% about
# 1 KB, 25% about 10 KB, 5% about 80 KB; a quarter with a CSV attachment;
# DUP% exact duplicates of earlier ones) into a fresh archive and search
# index, in process, as the archive stage does: one synced RocksDB write
# per message (zstd, AES-256-GCM, chain link; a signed checkpoint every
# 1000), index commits every 256 items (gateway/examples/archive_bench.rs,
# release build). Then prints store and index size against the raw bytes,
# the latency of 20 typical archivist queries (p50/p95/p99 over 5 runs
# each), a full reindex and a full verify.
#
# The peer, in the same run: ripgrep over the same distinct messages as
# .eml files (what an admin without an index would do), for the queries a
# plain text search can answer: a word, a phrase, an address.
#
# Usage: bench/archive.sh [N [DUP_PERCENT]]   (defaults 100000 and 30)
# Environment: ARCHIVE_KEEP=1 keeps the work directory; CARGO_TARGET_DIR is
# honoured (default ~/.cache/sealgate/target, as scripts/run and scripts/test).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
DUP=${2:-30}
scripts/install-deps bench
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sealgate/target}"
cargo build --release -p sealgate --example archive_bench
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-bench-archive.XXXXXX")
cleanup() { if [ -n "${ARCHIVE_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi; }
trap cleanup EXIT
echo "archive benchmark: $N messages, $DUP% duplicates, in $WORK" >&2
"$CARGO_TARGET_DIR/release/examples/archive_bench" "$WORK" "$N" "$DUP"

# ripgrep over the distinct messages (page cache warm: one run first).
rg_ms() {
  rg -l "$@" "$WORK/eml" > /dev/null || true
  local best=999999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s%N)
    rg -l "$@" "$WORK/eml" > "$WORK/rg.out" || true
    t1=$(date +%s%N)
    local ms=$(( (t1 - t0) / 1000000 ))
    [ "$ms" -lt "$best" ] && best=$ms
  done
  echo "$best ms, $(wc -l < "$WORK/rg.out") files"
}
echo "ripgrep peer ($(rg --version | head -1)), best of 3, over $(ls "$WORK/eml" | wc -l) files:"
echo "  potassium:                     $(rg_ms -i -w potassium)"
echo "  \"discharge summary\":           $(rg_ms -i -F 'discharge summary')"
echo "  to:*@partner.com (header):     $(rg_ms -i '^To: .*@partner\.com')"
