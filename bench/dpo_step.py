#!/usr/bin/env python3
"""The DPO step of crates/alignlab-core/examples/bench_dpo.rs in PyTorch, on the CPU, for comparison.

Same shapes, same tokens, same weights, same optimisation as the core's Trainer:
- model: Hugging Face transformers' LlamaForCausalLM (SDPA attention, f32), its config read from the GGUF's
  metadata and its weights dequantised from the same GGUF with the `gguf` package (Q/K rows un-permuted from
  llama.cpp's layout, as alignlab does), so the reference log-probs of both sides agree and are printed as a
  cross-check. The tiny model's GGUF is written by `bench_dpo --save-tiny PATH`.
- tokens: 4 pairs of prompt 64 + chosen 192 / rejected 192 token ids from SplitMix64 (seed 20240607), drawn in
  the same order as the Rust example; sequences of 256 tokens, no padding. Inputs are the first 255 tokens,
  targets the last 255, response positions masked in: 8 x 192 = 1536 response tokens per step.
- loss: sigmoid DPO, beta 0.1, against reference log-probs computed once before the timed steps (no grad).
- optimiser: AdamW (lr 1e-5, betas 0.9/0.999, eps 1e-8, weight decay 0), linear decay to 0 over the run, global
  grad-norm clipping at 1.0; the full-vocabulary logits of the batch are materialised, as in TRL.
- method: `full` trains every weight; `lora` wraps the model with peft's LoRA as TRL does with --use_peft
  (r 16, alpha 32, dropout 0.05, target_modules "all-linear") after the reference log-probs are taken, and
  AdamW and the clipping see the adapters only.
- threads: torch.set_num_threads(number of CPUs this process may use, or --threads), printed. On a machine
  shared with other work, PyTorch's OpenMP threads wait for each other at every op: measured here with another
  process busy on one of the 2 cores, the tiny model's step took 2.2 s with 2 threads and 0.17 s with 1.

Prints one JSON line per model with the fields of bench_dpo (impl "pytorch"), plus the resident memory right
after `import torch` (the PyPI wheel loads its CUDA libraries even on a CPU-only run).
"""

import argparse
import json
import os
import sys
import time


def status_bytes(field):
    """A memory field of /proc/self/status (VmHWM: peak resident set, VmRSS: current) in bytes; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


import numpy as np  # noqa: E402
import torch  # noqa: E402

RSS_AFTER_IMPORT = status_bytes("VmRSS:")

import gguf  # noqa: E402
import peft  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

PAIRS, PROMPT, RESPONSE = 4, 64, 192
# The LoRA of `--method lora`, the same in bench_dpo.rs: TRL's CLI defaults on every projection.
LORA_R, LORA_ALPHA, LORA_DROPOUT, LORA_TARGETS = 16, 32, 0.05, "all-linear"
TOKEN_SEED = 20240607
FIRST_ID = 3
MASK64 = (1 << 64) - 1
SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"


class SplitMix64:
    """alignlab_core::rng::SplitMix64, bit for bit."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def next_f64(self):
        return (self.next_u64() >> 11) * (1.0 / (1 << 53))

    def below(self, n):
        return int(self.next_f64() * n) % max(n, 1)


def fixed_pairs(vocab):
    rng = SplitMix64(TOKEN_SEED)

    def ids(n):
        return [FIRST_ID + rng.below(vocab - FIRST_ID) for _ in range(n)]

    pairs = []
    for _ in range(PAIRS):
        prompt = ids(PROMPT)
        chosen = ids(RESPONSE)
        rejected = ids(RESPONSE)
        pairs.append((prompt, chosen, rejected))
    return pairs


def field(reader, key):
    f = reader.fields[key]
    v = f.parts[f.data[0]]
    return v.tobytes().decode() if f.types[0] == gguf.GGUFValueType.STRING else v[0].item()


def unpermute(w, n_head):
    """Inverse of llama.cpp's convert permute of Q/K rows (back to Hugging Face's rotate-half layout)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_gguf(path):
    """A LlamaForCausalLM with the GGUF's config and dequantised weights."""
    reader = gguf.GGUFReader(path)
    arch = field(reader, "general.architecture")
    get = lambda k, default=None: field(reader, f"{arch}.{k}") if f"{arch}.{k}" in reader.fields else default
    tensors = {t.name: t for t in reader.tensors}
    n_head, n_kv = get("attention.head_count"), get("attention.head_count_kv")
    embed = tensors["token_embd.weight"]
    vocab, d = int(embed.shape[1]), int(embed.shape[0])  # GGUF shapes list the fastest axis first
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=d,
        intermediate_size=get("feed_forward_length"),
        num_hidden_layers=get("block_count"),
        num_attention_heads=n_head,
        num_key_value_heads=n_kv,
        max_position_embeddings=get("context_length"),
        rms_norm_eps=get("attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta=get("rope.freq_base", 10000.0),
        tie_word_embeddings="output.weight" not in tensors,
        attention_bias=False,
        mlp_bias=False,
        torch_dtype=torch.float32,
    )
    config._attn_implementation = "sdpa"

    def weight(name, rows_heads=None):
        t = tensors[name]
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        w = w.reshape([int(x) for x in reversed(t.shape)])
        if rows_heads is not None:
            w = unpermute(w, rows_heads)
        return torch.from_numpy(np.ascontiguousarray(w))

    hf = {"model.embed_tokens.weight": weight("token_embd.weight"), "model.norm.weight": weight("output_norm.weight")}
    for i in range(config.num_hidden_layers):
        p, b = f"model.layers.{i}", f"blk.{i}"
        hf[f"{p}.input_layernorm.weight"] = weight(f"{b}.attn_norm.weight")
        hf[f"{p}.self_attn.q_proj.weight"] = weight(f"{b}.attn_q.weight", n_head)
        hf[f"{p}.self_attn.k_proj.weight"] = weight(f"{b}.attn_k.weight", n_kv)
        hf[f"{p}.self_attn.v_proj.weight"] = weight(f"{b}.attn_v.weight")
        hf[f"{p}.self_attn.o_proj.weight"] = weight(f"{b}.attn_output.weight")
        hf[f"{p}.post_attention_layernorm.weight"] = weight(f"{b}.ffn_norm.weight")
        hf[f"{p}.mlp.gate_proj.weight"] = weight(f"{b}.ffn_gate.weight")
        hf[f"{p}.mlp.up_proj.weight"] = weight(f"{b}.ffn_up.weight")
        hf[f"{p}.mlp.down_proj.weight"] = weight(f"{b}.ffn_down.weight")
    if not config.tie_word_embeddings:
        hf["lm_head.weight"] = weight("output.weight")
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(hf, strict=False)
    tied = ["lm_head.weight"] if config.tie_word_embeddings else []
    if sorted(missing) != tied or unexpected:
        raise SystemExit(f"{path}: missing {missing}, unexpected {unexpected}")
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr() or not tied
    del hf, reader
    return model, config


def sequence_logps(model, inputs, targets, mask):
    """Summed log-probs of the masked (response) targets of each sequence: full logits, log-softmax, gather."""
    logits = model(input_ids=inputs, use_cache=False).logits
    logps = torch.gather(logits.log_softmax(-1), 2, targets.unsqueeze(-1)).squeeze(-1)
    return (logps * mask).sum(-1)


def method_name(method):
    """The row label of a method, the same in bench_dpo.rs."""
    return "full" if method == "full" else f"lora r{LORA_R} a{LORA_ALPHA} {LORA_TARGETS}"


def bench(name, path, args):
    model, config = load_gguf(path)
    n_params = sum(p.numel() for p in model.parameters())
    pairs = fixed_pairs(config.vocab_size)
    checksum = sum(sum(p) + sum(c) + sum(r) for p, c, r in pairs)
    seqs = [p + c for p, c, _ in pairs] + [p + r for p, _, r in pairs]  # chosen first, as in the core
    ids = torch.tensor(seqs, dtype=torch.long)
    inputs, targets = ids[:, :-1], ids[:, 1:]
    mask = torch.zeros(targets.shape, dtype=torch.float32)
    mask[:, PROMPT - 1 :] = 1.0  # target j+1 is a response token when j+1 >= PROMPT
    response_tokens = int(mask.sum().item())

    start = time.perf_counter()
    model.eval()
    with torch.no_grad():
        ref = sequence_logps(model, inputs, targets, mask)
    ref_c, ref_r = ref[:PAIRS], ref[PAIRS:]
    if args.method == "lora":
        lora = peft.LoraConfig(
            r=LORA_R,
            lora_alpha=LORA_ALPHA,
            lora_dropout=LORA_DROPOUT,
            target_modules=LORA_TARGETS,
            task_type="CAUSAL_LM",
        )
        model = peft.get_peft_model(model, lora)
        n_params = sum(p.numel() for p in model.parameters())
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    total = args.warmup + args.steps
    lr = 1e-5
    optimizer = torch.optim.AdamW(trainable, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / total))
    setup_s = time.perf_counter() - start
    rss_setup = status_bytes("VmRSS:")

    def step():
        logps = sequence_logps(model, inputs, targets, mask)
        delta = (logps[:PAIRS] - ref_c) - (logps[PAIRS:] - ref_r)
        loss = -torch.nn.functional.logsigmoid(0.1 * delta).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, losses = [], []
    cpu_start = time.process_time()
    for _ in range(args.steps):
        t = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t)
    cpu_per_step = (time.process_time() - cpu_start) / args.steps
    mean = sum(times) / len(times)
    return {
        "impl": "pytorch",
        "model": name,
        "method": method_name(args.method),
        "params": n_params,
        "trainable_params": sum(p.numel() for p in trainable),
        "shape": f"{PAIRS}x{PROMPT + RESPONSE} ({PROMPT}+{RESPONSE})",
        "pairs": PAIRS,
        "seq": PROMPT + RESPONSE,
        "prompt": PROMPT,
        "response": RESPONSE,
        "token_checksum": checksum,
        "ref_logps_sum": float(ref.sum().item()),
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "peft": peft.__version__,
        "setup_s": setup_s,
        "warmup_steps": args.warmup,
        "steps": args.steps,
        "s_per_step": mean,
        "s_per_step_min": min(times),
        "s_per_step_max": max(times),
        "cpu_s_per_step": cpu_per_step,
        "response_tokens_per_step": response_tokens,
        "response_tokens_per_s": response_tokens / mean,
        "losses": losses,
        "rss_after_import_bytes": RSS_AFTER_IMPORT,
        "rss_setup_bytes": rss_setup,
        "peak_rss_bytes": status_bytes("VmHWM:"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["tiny", "smollm2", "all"], default="all")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--method", choices=["full", "lora"], default="full", help="train every weight, or LoRA adapters")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: the CPUs this process may use)")
    ap.add_argument("--tiny-gguf", default="/var/tmp/alignlab-bench/tiny.gguf", help="written by bench_dpo --save-tiny")
    ap.add_argument(
        "--gguf",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", SMOLLM2),
    )
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")
    threads = args.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if args.model != "smollm2":
        print(json.dumps(bench("tiny", args.tiny_gguf, args)), flush=True)
    if args.model != "tiny":
        if os.path.exists(args.gguf):
            print(json.dumps(bench("smollm2-135m", args.gguf, args)), flush=True)
        else:
            msg = f"dpo_step.py: skipping SmolLM2-135M: {args.gguf} is absent (run scripts/fetch-models.sh)"
            print(msg, file=sys.stderr)


if __name__ == "__main__":
    main()
