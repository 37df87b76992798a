#!/usr/bin/env python3
"""Checks that a LoRA run folder of `alignlab dpo --lora-r ...` is what peft and transformers expect.

Loads the base model from its GGUF (as bench/dpo_step.py does), then
- peft: `PeftModel.from_pretrained(base, RUN)` reads RUN/adapter_config.json and RUN/adapter_model.safetensors
  (peft only warns about a missing or misnamed adapter tensor and leaves it at its initial value: the logits
  comparison below is what catches it);
- transformers: RUN/model.safetensors, the merged weights, loaded with strict=True into the base's config;
and prints the largest difference between the logits of the two on a few token sequences, and between peft's
own merge (`merge_and_unload`) and alignlab's merged weights. Exit status 1 when either exceeds 1e-4.

Usage (the bench venv has peft): /var/tmp/alignlab-bench-venv/bin/python bench/peft_check.py BASE.gguf RUN
"""

import json
import sys

import peft
import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM

from dpo_step import load_gguf


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    gguf_path, run = sys.argv[1:]
    base, config = load_gguf(gguf_path)
    base.eval()
    ids = torch.tensor([list(b"\x01Hello, world"), list(b"\x01What is 2+2?")])  # any ids < 259 (tiny vocab)
    adapter = json.load(open(f"{run}/adapter_config.json"))
    model = peft.PeftModel.from_pretrained(base, run, is_trainable=False)
    model.eval()
    loaded = peft.get_peft_model_state_dict(model)
    with torch.no_grad():
        with_adapter = model(input_ids=ids).logits
        peft_merged = {k: v.clone() for k, v in model.merge_and_unload().state_dict().items()}

    merged = LlamaForCausalLM(config)
    state = load_file(f"{run}/model.safetensors")
    missing, unexpected = merged.load_state_dict(state, strict=False)
    tied = ["lm_head.weight"] if config.tie_word_embeddings else []
    if sorted(missing) != tied or unexpected:
        raise SystemExit(f"{run}/model.safetensors: missing {missing}, unexpected {unexpected}")
    merged.eval()
    with torch.no_grad():
        merged_logits = merged(input_ids=ids).logits
    logits_diff = (with_adapter - merged_logits).abs().max().item()
    weight_diff = max((peft_merged[k] - v).abs().max().item() for k, v in state.items())
    fresh = load_gguf(gguf_path)[0].state_dict()
    moved = max((peft_merged[k] - fresh[k]).abs().max().item() for k in state)
    report = {
        "peft": peft.__version__,
        "adapter_config": {k: adapter[k] for k in ("r", "lora_alpha", "lora_dropout", "target_modules")},
        "adapter_tensors": len(loaded),
        "max_abs_logits_peft_vs_merged": logits_diff,
        "max_abs_weight_peft_merge_vs_alignlab_merge": weight_diff,
        "max_abs_weight_change_from_base": moved,
    }
    print(json.dumps(report, indent=1))
    if logits_diff > 1e-4 or weight_diff > 1e-4 or moved == 0.0:
        sys.exit(1)


if __name__ == "__main__":
    main()
