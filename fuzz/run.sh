#!/usr/bin/env bash
# Run each fuzz target for a bounded time (default 60 s each), growing the
# committed corpus in fuzz/corpus/<target>. Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz --locked`).
#
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
for target in http_request bearer_token; do
  mkdir -p "corpus/$target"
  echo "fuzz: $target for ${secs}s"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=65536 -timeout=10
done
