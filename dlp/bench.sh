#!/bin/sh
# Runs the DLP throughput benchmark (engine vs ripgrep on the same text and patterns).
# Usage: dlp/bench.sh [MB]   (installs nothing; without rg the comparison is skipped)
set -eu
cd "$(dirname "$0")"
exec cargo run --release -p sealgate-dlp --example bench -- "${1:-150}"
