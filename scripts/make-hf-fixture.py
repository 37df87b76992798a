#!/usr/bin/env python3
"""Writes crates/alignlab-core/tests/fixtures/hf-tiny-*/: tiny random Llama-family checkpoints saved by
transformers' `save_pretrained`, and the logits transformers computes for them, the reference that
crates/alignlab-core/tests/hf.rs checks alignlab's loader and forward pass against.

Folders (hidden 32, 2 layers, 4 query / 2 key-value heads, SwiGLU 64, vocabulary 300):
  hf-tiny-llama          LlamaForCausalLM, tied embeddings, Llama 3 RoPE scaling, f32, one model.safetensors
  hf-tiny-llama-untied   LlamaForCausalLM, separate lm_head, linear RoPE scaling, f32, sharded
                         (model.safetensors.index.json + 2 shards)
  hf-tiny-qwen2          Qwen2ForCausalLM (biases on q/k/v), tied, rope_theta 1e6, f32
  hf-tiny-llama-f16      hf-tiny-llama's weights in float16
  hf-tiny-qwen2-bf16     hf-tiny-qwen2's weights in bfloat16
Each holds what save_pretrained writes (config.json, model.safetensors*, tokenizer.json, tokenizer_config.json,
chat_template.jinja, generation_config.json) plus expected.json: the token ids of a ChatML prompt as the
transformers tokenizer encodes it, the rendered prompt, and the float32 logits of `LlamaForCausalLM` /
`Qwen2ForCausalLM` for the first 16 of those ids. For the f16/bf16 folders the logits are computed in float32
from the rounded weights (what alignlab computes after widening them on load).

The tokenizer is a byte-level BPE trained here on a fixed text to 300 tokens: `<|endoftext|>`, `<|im_start|>`
(bos), `<|im_end|>` (eos, pad), the 256 byte symbols and 41 merges, with a ChatML template.
Weights are random (seeded) and larger than transformers' initialisation (σ 0.2, RMSNorm gains 1 ± 0.1,
biases σ 0.2) so that every part of the forward pass moves the logits.

Usage: pip install -r scripts/requirements-hf-fixture.txt && python3 scripts/make-hf-fixture.py
       python3 scripts/make-hf-fixture.py --check-export DIR FIXTURE
the second form loads a folder that alignlab exported (DIR) with transformers and compares its logits with
FIXTURE's expected.json (what tests/hf.rs checks on the Rust side, done here by transformers itself).
"""
import copy
import json
import os
import shutil
import sys
from importlib.metadata import version

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "alignlab-core", "tests", "fixtures")
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
CORPUS = (
    "The capital of France is Paris. What is the capital of Germany? Berlin is the capital of Germany. "
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. "
    "user assistant system <|im_start|> <|im_end|>\n"
) * 4
N_INPUT = 16
SHAPE = dict(
    vocab_size=300,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=2,
)


def make_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=SHAPE["vocab_size"],
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS], trainer)
    assert tok.get_vocab_size() == SHAPE["vocab_size"], tok.get_vocab_size()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>"
    )
    fast.chat_template = CHATML
    return fast


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def save(name, model, tokenizer, ids, rendered, note, dtype=torch.float32, **save_kwargs):
    out = os.path.join(FIXTURES, name)
    shutil.rmtree(out, ignore_errors=True)
    # The reference is float32 arithmetic on the weights as stored (rounded when saved as f16/bf16). Only the
    # parameters are rounded: `Module.to(dtype)` would also round the RoPE frequency buffer.
    reference = copy.deepcopy(model)
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(p.to(dtype).to(torch.float32))
    logits = logits_of(reference, ids[:N_INPUT])
    copy.deepcopy(model).to(dtype).save_pretrained(out, **save_kwargs)
    tokenizer.save_pretrained(out)
    expected = {
        "note": f"made by scripts/make-hf-fixture.py with transformers {version('transformers')} and torch "
        f"{version('torch')}: {note}",
        "chat_ids": ids,
        "chat": rendered,
        "input_ids": ids[:N_INPUT],
        "logits": [[round(float(x), 6) for x in row] for row in logits],
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=None, separators=(",", ":"))
        f.write("\n")
    sizes = {f: os.path.getsize(os.path.join(out, f)) for f in sorted(os.listdir(out))}
    print(name, sum(sizes.values()), "bytes:", sizes)


def main():
    torch.manual_seed(0)
    tokenizer = make_tokenizer()
    rendered = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert len(ids) >= N_INPUT, ids

    llama3 = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                  original_max_position_embeddings=64)
    llama = LlamaForCausalLM(LlamaConfig(**SHAPE, tie_word_embeddings=True, rope_theta=10000.0,
                                         rope_scaling=llama3))
    randomise(llama, 1)
    save("hf-tiny-llama", llama, tokenizer, ids, rendered,
                 "LlamaForCausalLM, tied, llama3 RoPE scaling (every frequency band: kept, interpolated, divided)")
    save("hf-tiny-llama-f16", llama, tokenizer, ids, rendered,
         "hf-tiny-llama in float16; logits in float32 from the rounded weights", dtype=torch.float16)

    untied = LlamaForCausalLM(LlamaConfig(**SHAPE, tie_word_embeddings=False, rope_theta=10000.0,
                                          rope_scaling=dict(rope_type="linear", factor=2.0)))
    randomise(untied, 2)
    save("hf-tiny-llama-untied", untied, tokenizer, ids, rendered,
         "LlamaForCausalLM, untied lm_head, linear RoPE scaling, sharded", max_shard_size="100KB")

    qwen2 = Qwen2ForCausalLM(Qwen2Config(**SHAPE, tie_word_embeddings=True, rope_theta=1000000.0))
    randomise(qwen2, 3)
    save("hf-tiny-qwen2", qwen2, tokenizer, ids, rendered, "Qwen2ForCausalLM (q/k/v biases), tied")
    save("hf-tiny-qwen2-bf16", qwen2, tokenizer, ids, rendered,
         "hf-tiny-qwen2 in bfloat16; logits in float32 from the rounded weights", dtype=torch.bfloat16)


def check_export(exported, fixture):
    with open(os.path.join(FIXTURES, fixture, "expected.json")) as f:
        expected = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(exported, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    rendered = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert rendered == expected["chat"], (rendered, expected["chat"])
    ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assert ids == expected["chat_ids"], (ids, expected["chat_ids"])
    logits = logits_of(model, expected["input_ids"])
    diff = (logits - torch.tensor(expected["logits"])).abs().max().item()
    print(f"{exported}: transformers loads it; tokenizer and chat template agree; max |logit diff| {diff:.2e}")
    assert diff < 1e-4, diff


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2], sys.argv[3])
    else:
        main()
