#!/usr/bin/env python3
"""Reference values for crates/alignlab-core/tests/minilm.rs: an independent float64 numpy forward pass of
all-MiniLM-L6-v2 (BERT, Devlin et al. 2019) read straight from model.safetensors, with its own WordPiece
tokenizer over vocab.txt (BERT's BasicTokenizer + greedy longest-match-first WordPiece; enough for the ASCII
sentences below), mean pooling over the real tokens and L2 normalisation as sentence-transformers does.

Usage: scripts/minilm_reference.py [models/all-MiniLM-L6-v2]   (numpy only; fetch the model with
scripts/fetch-minilm.sh)
"""
import json
import math
import struct
import sys
import unicodedata
from pathlib import Path

import numpy as np

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]


def load_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw[base + start : base + end], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return out


def is_punct(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokens(text):
    """BERT's BasicTokenizer for an uncased model: lowercase, strip accents, split on spaces and punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, cur = [], ""
    for ch in text:
        if ch.isspace():
            if cur:
                words.append(cur)
            cur = ""
        elif is_punct(ch):
            if cur:
                words.append(cur)
            words.append(ch)
            cur = ""
        else:
            cur += ch
    if cur:
        words.append(cur)
    return words


def wordpiece(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                pieces.append(vocab[sub])
                break
            end -= 1
        if end == start:
            return [vocab["[UNK]"]]
        start = end
    return pieces


def encode(text, vocab):
    ids = [vocab["[CLS]"]]
    for w in basic_tokens(text):
        ids += wordpiece(w, vocab)
    return ids + [vocab["[SEP]"]]


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


ERF = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)))


def forward(ids, w, cfg):
    """Final hidden states [t, d] of one unpadded sequence (token types all 0)."""
    t, eps = len(ids), cfg["layer_norm_eps"]
    e = "embeddings."
    x = w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][:t]
    x = x + w[e + "token_type_embeddings.weight"][0]
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)
    h = cfg["num_attention_heads"]
    hd = cfg["hidden_size"] // h
    lin = lambda x, p: x @ w[p + ".weight"].T + w[p + ".bias"]
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + "attention.self." + n).reshape(t, h, hd).transpose(1, 0, 2) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        a = lin(a.transpose(1, 0, 2).reshape(t, h * hd), p + "attention.output.dense")
        x = layer_norm(x + a, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense")
        x = layer_norm(x + f, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    return x


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "models/all-MiniLM-L6-v2")
    cfg = json.loads((root / "config.json").read_text())
    vocab = {tok: i for i, tok in enumerate((root / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    w = load_safetensors(root / "model.safetensors")
    pooled = []
    for s in SENTENCES:
        ids = encode(s, vocab)
        mean = forward(ids, w, cfg).mean(0)
        pooled.append(mean / np.linalg.norm(mean))
        print(f"{s!r}: ids {ids}")
        print(f"  mean-pooled[:8] {[float(f'{v:.6f}') for v in mean[:8]]}  (norm {np.linalg.norm(mean):.6f})")
    for j in (1, 2):
        print(f"cosine(0, {j}) = {pooled[0] @ pooled[j]:.6f}")


if __name__ == "__main__":
    main()
