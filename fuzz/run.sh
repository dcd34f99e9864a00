#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60). Needs cargo-fuzz; the stable
# toolchain is told to allow the nightly flags cargo-fuzz uses.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in command data client_reply ber pdf_content office_xml; do
  mkdir -p corpus/$t
  cargo fuzz run "$t" corpus/$t -- -max_total_time="$secs" -max_len=4096
done
