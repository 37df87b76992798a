#!/usr/bin/env bash
# Fuzzes the readers of untrusted files with cargo-fuzz (libFuzzer): fuzz/fuzz_targets/{gguf,safetensors,jsonl}.rs,
# starting from the small seeds in fuzz/seeds/ (regenerate them with fuzz/make_seeds.py). Not part of CI.
#   scripts/fuzz.sh [seconds per target, default 600] [target ...]
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). New inputs go to fuzz/corpus/<target>
# and crashes to fuzz/artifacts/<target> (both ignored by git); add a crash's input to the seeds once fixed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf safetensors jsonl)
# its own build folder: the fuzz build instruments every crate, so it shares nothing with the main one
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-/var/tmp/alignlab-fuzz-target}
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t for ${seconds}s"
  # -rss_limit_mb: an input that makes a reader allocate gigabytes is a finding, as is a panic or a 10 s hang
  rc=0
  cargo +nightly fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
    > "/tmp/alignlab-fuzz-$t.log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+ +(DONE|INITED)|stat::|==[0-9]+== ERROR|SUMMARY|thread '|error(\[|:))" "/tmp/alignlab-fuzz-$t.log" || true
  if [ "$rc" -ne 0 ]; then
    echo "fuzz $t: exit $rc (a finding is in fuzz/artifacts/$t; the whole log is /tmp/alignlab-fuzz-$t.log)"
    status=1
  fi
done
exit "${status:-0}"
