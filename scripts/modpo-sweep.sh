#!/usr/bin/env bash
# MODPO's Pareto front (Zhou et al. 2023; METHODS.md §B3): one policy per weight w_k ∈ {0.1, …, 0.9} of the target
# objective (preference pairs DATA_K) against one other objective (its reward model MARGIN_RM, weight 1 − w_k),
# then each policy's held-out DPO implicit-reward accuracy (ties half) and margins on both objectives' held-out
# pairs, measured by `alignlab eval` against the starting model: one JSON line per weight in OUT/sweep.jsonl.
#
# Usage: scripts/modpo-sweep.sh MODEL DATA_K EVAL_K MARGIN_RM EVAL_OTHER OUT [alignlab modpo options…]
#   MODEL       starting policy and reference (GGUF or HF folder)
#   DATA_K      training pairs of the target objective; EVAL_K its held-out pairs
#   MARGIN_RM   the other objective's reward model (a reward run folder or reward-model folder)
#   EVAL_OTHER  held-out pairs of the other objective
# e.g. scripts/modpo-sweep.sh models/SmolLM2-135M-Instruct.Q4_1.gguf helpful.jsonl helpful-test.jsonl \
#        runs/harmless-rm harmless-test.jsonl runs/modpo-sweep --max-steps 50 --learning-rate 1e-5
# Weights: MODPO_WEIGHTS="0.1 0.3 0.5 0.7 0.9" to sweep fewer. ALIGNLAB=path/to/alignlab (default: the debug build).
set -euo pipefail
[ $# -ge 6 ] || { sed -n '2,15p' "$0"; exit 2; }
model=$1 data_k=$2 eval_k=$3 margin_rm=$4 eval_other=$5 out=$6
shift 6
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ALIGNLAB:-${CARGO_TARGET_DIR:-$root/target}/debug/alignlab}
weights=${MODPO_WEIGHTS:-0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9}
mkdir -p "$out"
: >"$out/sweep.jsonl"
for wk in $weights; do
  other=$(python3 -c "print(round(1 - $wk, 10))")
  run="$out/w$wk"
  echo "== MODPO w_k = $wk, w_other = $other -> $run" >&2
  "$bin" modpo --model "$model" --data "$data_k" --eval-data "$eval_k" --margin-reward-model "$margin_rm" \
    --modpo-weights "$wk,$other" --out "$run" "$@"
  "$bin" eval --model "$model" --weights "$run/model.safetensors" --data "$eval_k" >"$run/eval-target.json"
  "$bin" eval --model "$model" --weights "$run/model.safetensors" --data "$eval_other" >"$run/eval-other.json"
  python3 - "$wk" "$run" >>"$out/sweep.jsonl" <<'EOF'
import json, sys
wk, run = float(sys.argv[1]), sys.argv[2]
def pick(name):
    with open(f"{run}/{name}") as f:
        o = json.load(f)["overall"]
    return {k: o[k] for k in ("rewards/accuracies", "rewards/margins", "count")}
print(json.dumps({"w_k": wk, "target": pick("eval-target.json"), "other": pick("eval-other.json")}))
EOF
done
cat "$out/sweep.jsonl"
