#!/usr/bin/env bash
# The training-step benchmark of DESIGN.md §7 (a benchmark, not a test): the same DPO optimizer step of the
# same shapes in alignlab (the core's Trainer on the `flex` CPU backend, crates/alignlab-core/examples/
# bench_dpo.rs) and in PyTorch (transformers' LlamaForCausalLM on the CPU, bench/dpo_step.py), then one table of
# response tokens/s, their ratio and the peak resident memory of each.
#
# Shapes: 4 pairs of 256 tokens (prompt 64 + response 192) per step, on the tiny model (d 64, 2 layers) and
# SmolLM2-135M (skipped when models/ lacks it: run scripts/fetch-models.sh). Both sides load the same weights
# and the same token ids, and print the summed reference log-probs, which the table checks agree.
# Each model runs twice: `full` trains every weight, `lora` trains LoRA adapters (r 16, alpha 32, dropout 0.05,
# all-linear: TRL's --use_peft defaults; peft on the PyTorch side).
#
# Usage: scripts/bench.sh            (BENCH_MODELS="tiny smollm2", BENCH_METHODS="full lora", BENCH_STEPS=3,
#                                    BENCH_WARMUP=1, BENCH_TORCH_THREADS=<CPUs>)
# Both sides use every CPU by default (Burn's rayon pool, torch.set_num_threads). On a loaded machine PyTorch's
# OpenMP threads stall on each other at every op (small models suffer most): quote the load with the numbers.
# Each model and method runs in its own process, so that its peak memory is its own; the two sides alternate
# (alignlab, PyTorch, alignlab, PyTorch...) so that a change in the machine's load hits both. The Python requirements go into a
# venv under /var/tmp (ALIGNLAB_BENCH_VENV), never into the repository; results go to ALIGNLAB_BENCH_OUT.
#
# The Rust example is built in the `dev` profile with the package set of `cargo test-native`, so it reuses the
# Burn build of the tests instead of rebuilding it: dependencies (Burn's kernels) are at opt-level 3 there, but
# the workspace crates — alignlab's own code — at opt-level 1, a handicap for alignlab in this comparison.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
venv=${ALIGNLAB_BENCH_VENV:-/var/tmp/alignlab-bench-venv}
out=${ALIGNLAB_BENCH_OUT:-/var/tmp/alignlab-bench}
models=${BENCH_MODELS:-tiny smollm2}
methods=${BENCH_METHODS:-full lora}
steps=${BENCH_STEPS:-3}
warmup=${BENCH_WARMUP:-1}
step() { printf '\n== bench: %s\n' "$*" >&2; }

step "Python venv ($venv)"
stamp="$venv/.requirements.sha256"
want=$(sha256sum bench/requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet -r bench/requirements.txt
  echo "$want" >"$stamp"
fi

step "model files"
scripts/fetch-models.sh || echo "bench: SmolLM2 could not be fetched; its rows will be skipped" >&2

step "build the Rust example (dev profile, package set of cargo test-native)"
cargo build --workspace --exclude alignlab-wasm --example bench_dpo
bin="$CARGO_TARGET_DIR/debug/examples/bench_dpo"

mkdir -p "$out"
rm -f "$out"/*.json
"$bin" --model tiny --steps 1 --warmup 0 --save-tiny "$out/tiny.gguf" >/dev/null # writes the tiny GGUF for PyTorch
load_before=$(uptime)
for m in $models; do
  for method in $methods; do
    step "$m $method: alignlab"
    "$bin" --model "$m" --method "$method" --steps "$steps" --warmup "$warmup" | tee "$out/alignlab-$m-$method.json"
    step "$m $method: PyTorch"
    "$venv/bin/python" bench/dpo_step.py --model "$m" --method "$method" --steps "$steps" --warmup "$warmup" \
      --tiny-gguf "$out/tiny.gguf" --threads "${BENCH_TORCH_THREADS:-0}" |
      tee "$out/pytorch-$m-$method.json"
  done
done
load_after=$(uptime)

python3 - "$out" "$load_before" "$load_after" <<'PY'
import json, os, sys

out, before, after = sys.argv[1:4]
rows = {}
for name in sorted(os.listdir(out)):
    if name.endswith(".json"):
        for line in open(os.path.join(out, name)):
            if line.strip():
                r = json.loads(line)
                rows.setdefault((r["model"], r.get("method", "full"), r["shape"]), {})[r["impl"]] = r
mib = lambda b: f"{b / 2**20:.0f} MiB" if b else "?"
head = ["model", "method", "trainable params", "shape (pairs x seq)", "alignlab tok/s", "PyTorch tok/s", "ratio", "alignlab s/step",
        "PyTorch s/step", "CPU-s/step alignlab, PyTorch (ratio)", "alignlab peak RSS",
        "PyTorch peak RSS (after import)", "ref logps agree"]
table = [head]
order = lambda kv: (kv[1].get("alignlab", kv[1].get("pytorch"))["params"], kv[0][1] != "full")
for (model, method, shape), r in sorted(rows.items(), key=order):
    a, p = r.get("alignlab"), r.get("pytorch")
    if not (a and p):
        table.append([model, method, "?", shape] + ["missing"] * (len(head) - 4))
        continue
    counts = f"{a['trainable_params']}" + ("" if a["trainable_params"] == p["trainable_params"] else
                                          f" (PyTorch {p['trainable_params']})")
    agree = abs(a["ref_logps_sum"] - p["ref_logps_sum"]) <= 1e-4 * abs(p["ref_logps_sum"]) + 1e-3
    table.append([
        model, method, counts, shape,
        f"{a['response_tokens_per_s']:.0f}", f"{p['response_tokens_per_s']:.0f}",
        f"{a['response_tokens_per_s'] / p['response_tokens_per_s']:.2f}",
        f"{a['s_per_step']:.3f}", f"{p['s_per_step']:.3f}",
        f"{a['cpu_s_per_step']:.2f}, {p['cpu_s_per_step']:.2f} ({p['cpu_s_per_step'] / a['cpu_s_per_step']:.2f})"
        if a.get("cpu_s_per_step") and p.get("cpu_s_per_step") else "?",
        mib(a["peak_rss_bytes"]), f"{mib(p['peak_rss_bytes'])} ({mib(p['rss_after_import_bytes'])})",
        "yes" if agree else f"NO ({a['ref_logps_sum']:.3f} vs {p['ref_logps_sum']:.3f})",
    ])
widths = [max(len(row[i]) for row in table) for i in range(len(head))]
any_row = next(iter(rows.values()), {})
a, p = any_row.get("alignlab", {}), any_row.get("pytorch", {})
print()
print(f"DPO step, CPU: alignlab flex ({a.get('threads', '?')} threads) vs PyTorch {p.get('torch', '?')} "
      f"({p.get('threads', '?')} threads); {a.get('warmup_steps', '?')} warm-up + {a.get('steps', '?')} timed steps; "
      "tok/s = response tokens per second (wall clock); ratio = alignlab / PyTorch; CPU-s = user + system "
      "CPU seconds, its ratio PyTorch / alignlab (above 1: alignlab needs less CPU)")
print(f"load before: {before.strip()}")
print(f"load after:  {after.strip()}")
for row in table:
    print(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
PY
