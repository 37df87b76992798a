#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, build the CLI, the npm package and the page, fetch
# SmolLM2-135M-Instruct, serve the page on http://localhost:4173, and run a short DPO of SmolLM2 on real
# preference pairs (TruthfulQA) from the CLI, printing its metrics. The page keeps serving until Ctrl-C.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
scripts/setup.sh
cargo build -p alignlab-cli
cli="$CARGO_TARGET_DIR/debug/alignlab"
npm run build
npm run serve > /tmp/alignlab-serve.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
echo
echo "The page is served at http://localhost:4173 (log: /tmp/alignlab-serve.log)"
echo
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
"$cli" generate --model "$model" --prompt "What is the capital of France?"
"$cli" dpo --model "$model" --data tests/fixtures/truthfulqa/pairs.jsonl --limit 16 --chat-template \
  --max-steps 8 --batch-size 2 --learning-rate 5e-6 --max-length 128 --max-prompt-length 64 \
  --print-metrics --out runs/demo-dpo
echo
echo "Metrics: runs/demo-dpo/metrics.jsonl; checkpoint: runs/demo-dpo/model.safetensors"
echo "Press Ctrl-C to stop serving the page."
wait $server
