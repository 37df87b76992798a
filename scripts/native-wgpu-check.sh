#!/usr/bin/env bash
# The cross-surface run (tiny model, 8 TruthfulQA pairs, 5 DPO steps) natively on wgpu, compared with the
# fixture that native CPU, Node and Chromium also match. Exits 3 when no usable GPU adapter exists (Debian 12's
# lavapipe works with Burn's WGSL path; see ../shared/DESIGN.md §6).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cli=${ALIGNLAB_CLI:-${CARGO_TARGET_DIR:-$root/target}/debug/alignlab}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cli" tiny-model --seed 0 --out "$tmp/tiny.gguf" >/dev/null
head -n 8 tests/fixtures/truthfulqa/pairs.jsonl > "$tmp/pairs.jsonl"
if ! timeout 600 "$cli" dpo --device wgpu --model "$tmp/tiny.gguf" --data "$tmp/pairs.jsonl" --out "$tmp/run" \
    --beta 0.1 --learning-rate 0.001 --batch-size 2 --max-steps 5 --max-length 256 --max-prompt-length 128 --seed 0 \
    > "$tmp/log" 2>&1; then
  tail -n 5 "$tmp/log"
  echo "native wgpu: the run failed (no working adapter?)"
  exit 3
fi
python3 - "$tmp/run/metrics.jsonl" tests/fixtures/tiny-dpo-first5.json <<'PY'
import json, sys
got = [json.loads(l)["loss"] for l in open(sys.argv[1])]
want = json.load(open(sys.argv[2]))["losses"]
worst = max(abs(a - b) for a, b in zip(got, want))
print(f"native wgpu: first five losses {['%.6f' % x for x in got]}, max |diff| vs fixture {worst:.2e}")
sys.exit(0 if len(got) == 5 and worst < 1e-4 else 1)
PY
