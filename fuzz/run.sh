#!/usr/bin/env bash
# Run each fuzz target for a bounded time (default 60 s each), growing the
# committed corpus in fuzz/corpus/<target>. Needs cargo-fuzz
# (`cargo install cargo-fuzz --locked`); it builds with the installed stable
# toolchain, RUSTC_BOOTSTRAP=1 standing in for nightly (libFuzzer and the
# address sanitizer need unstable flags). `cargo xtask fuzz` runs this.
#
#   fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in http_request bearer_token tool_arguments; do
  mkdir -p "corpus/$target"
  # Tool arguments are short; the whole request needs room for its body.
  max_len=65536
  [ "$target" = tool_arguments ] && max_len=4096
  echo "fuzz: $target for ${secs}s"
  cargo fuzz run -O "$target" "corpus/$target" -- -max_total_time="$secs" -max_len="$max_len" -timeout=20
done
