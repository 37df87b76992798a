#!/usr/bin/env python3
"""Writes tests/fixtures/transformersjs-tiny-llama/: a folder that alignlab's own Hugging Face exporter wrote
(`Pretrained::save_hf_dir`: config.json, model.safetensors, tokenizer.json, tokenizer_config.json), plus
onnx/model.onnx converted from it by Hugging Face's optimum exporter, the layout transformers.js loads
(its scripts/convert.py runs the same exporter and moves model.onnx into onnx/). tests/node/transformersjs.test.mjs
loads the folder with @huggingface/transformers and with alignlab's npm package and compares the two.

The model is crates/alignlab-core/tests/fixtures/hf-tiny-llama (tied LlamaForCausalLM with Llama 3 RoPE scaling,
random weights, made by scripts/make-hf-fixture.py) loaded by alignlab and exported again. Make that export first:
  ALIGNLAB_HF_EXPORT_DIR=/tmp/alignlab-export CARGO_TARGET_DIR=/work/target \
    cargo test --workspace --exclude alignlab-wasm --test hf export_then_load_is_bit_identical

Usage: pip install -r scripts/requirements-onnx-fixture.txt   (a venv of its own: optimum-onnx needs transformers 4)
       python3 scripts/make-onnx-fixture.py /tmp/alignlab-export/hf-tiny-llama

Before writing, the ONNX graph is run with onnxruntime on hf-tiny-llama's expected.json input ids and its logits
are checked against that file's (transformers 5's) to 1e-4, so a conversion that lost the RoPE scaling fails here.
"""
import json
import os
import shutil
import sys
import tempfile
from importlib.metadata import version

import numpy as np
import onnxruntime
from optimum.exporters.onnx import main_export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "transformersjs-tiny-llama")
REFERENCE = os.path.join(ROOT, "crates", "alignlab-core", "tests", "fixtures", "hf-tiny-llama", "expected.json")
EXPORTED = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]


def onnx_logits(path, ids, config):
    """Logits of the exported graph for `ids` from an empty cache, fed as transformers.js feeds it."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    n = len(ids)
    feeds = {"input_ids": np.array([ids], dtype=np.int64), "attention_mask": np.ones((1, n), dtype=np.int64)}
    if "position_ids" in names:
        feeds["position_ids"] = np.arange(n, dtype=np.int64)[None]
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    for name in names:
        if name.startswith("past_key_values."):
            feeds[name] = np.zeros((1, config["num_key_value_heads"], 0, head_dim), dtype=np.float32)
    missing = set(names) - set(feeds)
    assert not missing, f"the graph wants inputs this script does not make: {missing}"
    return session.run(["logits"], feeds)[0][0]


def main(exported):
    for name in EXPORTED:
        assert os.path.isfile(os.path.join(exported, name)), f"{exported} has no {name}"
    with open(os.path.join(exported, "config.json")) as f:
        config = json.load(f)
    with open(REFERENCE) as f:
        reference = json.load(f)

    with tempfile.TemporaryDirectory() as tmp:
        # alignlab writes RoPE as rope_theta + rope_scaling, which transformers 4 (optimum-onnx's) and 5 both read.
        onnx_dir = os.path.join(tmp, "onnx")
        main_export(exported, onnx_dir, task="text-generation-with-past", device="cpu")
        onnx_files = sorted(os.listdir(onnx_dir))
        print("optimum wrote", onnx_files)
        assert "model.onnx" in onnx_files and "model.onnx_data" not in onnx_files, onnx_files

        logits = onnx_logits(os.path.join(onnx_dir, "model.onnx"), reference["input_ids"], config)
        diff = float(np.abs(logits - np.array(reference["logits"], dtype=np.float32)).max())
        print(f"onnxruntime {onnxruntime.__version__} vs transformers' logits: max |diff| {diff:.2e}")
        assert diff < 1e-4, diff

        shutil.rmtree(OUT, ignore_errors=True)
        os.makedirs(os.path.join(OUT, "onnx"))
        for name in EXPORTED:
            shutil.copy(os.path.join(exported, name), OUT)
        shutil.copy(os.path.join(onnx_dir, "model.onnx"), os.path.join(OUT, "onnx", "model.onnx"))
    note = {
        "note": "alignlab's HF export of crates/alignlab-core/tests/fixtures/hf-tiny-llama; onnx/model.onnx by "
        f"scripts/make-onnx-fixture.py with optimum-onnx {version('optimum-onnx')}, optimum {version('optimum')}, "
        f"transformers {version('transformers')}, torch {version('torch')}, onnx {version('onnx')} "
        "(task text-generation-with-past)",
        "onnxruntime_max_abs_logit_diff": diff,
    }
    with open(os.path.join(OUT, "SOURCE.json"), "w") as f:
        json.dump(note, f, indent=2)
        f.write("\n")
    sizes = {}
    for d, _, files in os.walk(OUT):
        for name in files:
            sizes[os.path.relpath(os.path.join(d, name), OUT)] = os.path.getsize(os.path.join(d, name))
    print(OUT, sum(sizes.values()), "bytes:", sizes)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
