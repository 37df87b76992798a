#!/usr/bin/env python3
"""Writes crates/alignlab-core/tests/fixtures/kquants.json: raw GGUF quant blocks and their values as
dequantised by gguf-py, the reference the Rust reader's legacy and K-quant decoders are checked against.

gguf-py (`gguf.quants.dequantize`) is a numpy implementation of ggml's block layouts written independently of
ours. The blocks are random bytes (every bit pattern of quants, packed scales and high bits occurs), with the
f16 super-block scales overwritten by finite values: two blocks with ordinary scales and a third with extreme
ones (the largest f16 and a subnormal), per type. Values are stored as f32 bit patterns so that the test can
compare them exactly.

Usage: pip install -r scripts/requirements-fixtures.txt && python3 scripts/make-kquant-fixture.py
(made with gguf 0.19.0 and numpy 2.4.6; the output does not depend on the numpy version's float printing).
"""
import json
import os
from importlib.metadata import version

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as T, quants

# Byte offsets of each type's f16 scale fields inside one block (ggml's block_* structs).
F16_FIELDS = {
    T.Q4_0: [0],  # d, qs[16]
    T.Q4_1: [0, 2],  # d, m, qs[16]
    T.Q5_0: [0],  # d, qh[4], qs[16]
    T.Q5_1: [0, 2],  # d, m, qh[4], qs[16]
    T.Q8_0: [0],  # d, qs[32]
    T.Q2_K: [80, 82],  # scales[16], qs[64], d, dmin
    T.Q3_K: [108],  # hmask[32], qs[64], scales[12], d
    T.Q4_K: [0, 2],  # d, dmin, scales[12], qs[128]
    T.Q5_K: [0, 2],  # d, dmin, scales[12], qh[32], qs[128]
    T.Q6_K: [208],  # ql[128], qh[64], scales[16], d
}
EXTREMES = [np.float16(65504.0), np.float16(-6e-8)]  # the largest f16; the smallest subnormal, negated

rng = np.random.default_rng(20240601)
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = {
    "note": f"made by scripts/make-kquant-fixture.py with gguf {version('gguf')} (gguf.quants.dequantize); "
    "bytes: hex of the raw blocks; bits: the dequantised f32 values as u32 bit patterns",
    "types": {},
}
for qtype, fields in F16_FIELDS.items():
    block, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(3, type_size), dtype=np.uint8)
    for b in range(3):
        for k, at in enumerate(fields):
            if b < 2:
                scale = np.float16(rng.uniform(-0.05, 0.05))
            else:
                scale = EXTREMES[k % 2]
            blocks[b, at : at + 2] = np.frombuffer(scale.tobytes(), dtype=np.uint8)
    values = quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32).reshape(-1)
    assert values.shape == (3 * block,) and np.isfinite(values).all(), qtype.name
    out["types"][qtype.name] = {
        "id": int(qtype),
        "block": block,
        "bytes": blocks.tobytes().hex(),
        "bits": [int(v) for v in values.view(np.uint32)],
    }

path = os.path.join(root, "crates", "alignlab-core", "tests", "fixtures", "kquants.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
    f.write("\n")
print(path, os.path.getsize(path), "bytes")
