#!/usr/bin/env bash
# Simulated annotation end to end (AlpacaFarm-style; METHODS.md §2.G), small enough for a CPU:
#   1. prompts: 12 self-instruct user-oriented instructions + 4 IFEval prompts (with ground_truth + verifier, so
#      the gold reward's constraint feature has something to check);
#   2. K candidates per prompt from SmolLM2-135M-Instruct (`alignlab generate --n K`);
#   3. the even-numbered sets are labelled twice — by the noisy pool (25 % flips, biases) and by the noise-free
#      gold annotator — and the pool's agreement with gold is printed;
#   4. one MiniLM reward model per labelling (`alignlab reward`);
#   5. best-of-n curves (n = 1, 2, 4, …) of both proxies on the held-out odd-numbered sets: mean gold reward and
#      mean proxy reward of the proxy's pick — over-optimisation shows as gold falling while proxy rises;
#   6. the pool as a fourth rater of PandaLM's human-labelled pairs (agreement with the humans).
# Everything lands in $OUT (default /tmp/alignlab-simulate). Needs the CLI built
# (cargo build --workspace --exclude alignlab-wasm), scripts/fetch-models.sh and ../shared/data.
# Knobs: PROMPTS (16 max here), K (8), MAX_NEW_TOKENS (64), SEED (1), EPOCHS (1), LR (3e-4), SKIP_HUMANS=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cli=${ALIGNLAB_CLI:-${CARGO_TARGET_DIR:-$root/target}/debug/alignlab}
data=${ALIGNLAB_DATA:-$root/../shared/data}
out=${OUT:-/tmp/alignlab-simulate}
k=${K:-8}
seed=${SEED:-1}
mkdir -p "$out"
[ -x "$cli" ] || { echo "no CLI at $cli: build it first (cargo build --workspace --exclude alignlab-wasm)" >&2; exit 1; }

if [ ! -s "$out/prompts.jsonl" ]; then
  python3 - "$data" "$out/prompts.jsonl" "${PROMPTS:-16}" <<'EOF'
import json, sys
data, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(f"{data}/self-instruct-prompts/user_oriented_instructions.jsonl")]
short = []
for r in rows:
    inp = r["instances"][0]["input"]
    p = r["instruction"] + ("\n\n" + inp if inp else "")
    if len(p) < 200:
        short.append({"prompt": p, "source": "self-instruct"})
picked = short[:: max(1, len(short) // 12)][:12]
ifeval = [json.loads(l) for l in open(f"{data}/ifeval/input_data.jsonl")]
simple = [r for r in ifeval if len(r["prompt"]) < 220 and len(r["instruction_id_list"]) == 1][:4]
picked += [{"prompt": r["prompt"], "source": "ifeval", "verifier": "ifeval",
            "ground_truth": {"instruction_id_list": r["instruction_id_list"], "kwargs": r["kwargs"]}} for r in simple]
with open(path, "w") as f:
    for p in picked[:n]:
        f.write(json.dumps(p) + "\n")
EOF
fi

if [ ! -s "$out/generated.jsonl" ]; then
  "$cli" generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompts "$out/prompts.jsonl" --n "$k" \
    --max-new-tokens "${MAX_NEW_TOKENS:-64}" --temperature 1.0 --top-p 0.95 --seed "$seed" --out "$out/generated.jsonl"
fi
# generate writes {"prompt", "responses"}; carry each prompt's source, ground_truth and verifier over (same order).
python3 - "$out/prompts.jsonl" "$out/generated.jsonl" "$out/candidates.jsonl" <<'EOF'
import json, sys
prompts = [json.loads(l) for l in open(sys.argv[1])]
sets = [json.loads(l) for l in open(sys.argv[2])]
assert len(prompts) == len(sets)
with open(sys.argv[3], "w") as f:
    for p, s in zip(prompts, sets):
        assert p["prompt"] == s["prompt"]
        s.update({k: p[k] for k in ("source", "verifier", "ground_truth") if k in p})
        f.write(json.dumps(s) + "\n")
EOF
awk 'NR % 2 == 1' "$out/candidates.jsonl" > "$out/train-sets.jsonl"
awk 'NR % 2 == 0' "$out/candidates.jsonl" > "$out/test-sets.jsonl"

echo "== labels: the noisy pool and the gold annotator (train sets)"
"$cli" annotate --candidates "$out/train-sets.jsonl" --seed "$seed" --out "$out/pairs-pool.jsonl" | tee "$out/label-pool.json"
"$cli" annotate --candidates "$out/train-sets.jsonl" --seed "$seed" --annotator gold --out "$out/pairs-gold.jsonl" \
  | tee "$out/label-gold.json"

for labels in pool gold; do
  if [ ! -s "$out/rm-$labels/hf/config.json" ]; then
    echo "== reward model on the $labels labels"
    "$cli" reward --model models/all-MiniLM-L6-v2 --data "$out/pairs-$labels.jsonl" --out "$out/rm-$labels" \
      --num-epochs "${EPOCHS:-1}" --batch-size 8 --learning-rate "${LR:-3e-4}" --max-length 256 --max-prompt-length 128 --seed "$seed"
  fi
done

for labels in pool gold; do
  echo "== best-of-n on the held-out sets, proxy = the RM trained on $labels labels"
  "$cli" annotate --bon-curve --candidates "$out/test-sets.jsonl" --reward-model "$out/rm-$labels" --max-length 256 --max-prompt-length 128 \
    | tee "$out/bon-$labels.json"
done

if [ "${SKIP_HUMANS:-0}" != 1 ]; then
  echo "== the pool as a fourth rater of PandaLM's human-labelled pairs"
  "$cli" annotate --human-labels "$data/pandalm-human-pairwise/testset-v1.json" --seed "$seed" | tee "$out/humans.json"
fi
echo "results in $out"
