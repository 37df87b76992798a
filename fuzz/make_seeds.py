#!/usr/bin/env python3
"""Writes the small seed corpora of the fuzz targets (fuzz/seeds/<target>/): a few hundred bytes each, valid
files of every shape the readers accept, so that libFuzzer starts from inside the formats. Standard library only."""
import json
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(0)


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_kv(key, kind, value):
    out = gguf_string(key) + struct.pack("<I", kind)
    if kind == 4:  # u32
        out += struct.pack("<I", value)
    elif kind == 6:  # f32
        out += struct.pack("<f", value)
    elif kind == 8:  # string
        out += gguf_string(value)
    elif kind == 9:  # array of strings or i32
        elem, items = value
        out += struct.pack("<IQ", elem, len(items))
        for item in items:
            out += gguf_string(item) if elem == 8 else struct.pack("<i", item)
    return out


# (ggml type id, elements per block, bytes per block)
TYPES = {"f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18), "q8_0": (8, 32, 34), "q4_k": (12, 256, 144),
         "q6_k": (14, 256, 210)}


def gguf(tensors, metadata):
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    header += b"".join(gguf_kv(*kv) for kv in metadata)
    infos, blobs, offset = b"", [], 0
    for name, dims, kind in tensors:
        type_id, block, size = TYPES[kind]
        n = 1
        for d in dims:
            n *= d
        data = bytes(rng.randrange(256) for _ in range(n // block * size))
        if kind == "f32":
            data = b"".join(struct.pack("<f", rng.uniform(-1, 1)) for _ in range(n))
        infos += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", type_id, offset)
        blobs.append(data)
        offset += (len(data) + 31) // 32 * 32
    out = header + infos
    out += b"\0" * (-len(out) % 32)
    for data in blobs:
        out += data + b"\0" * (-len(data) % 32)
    return out


def write(target, name, data):
    os.makedirs(os.path.join(HERE, "seeds", target), exist_ok=True)
    with open(os.path.join(HERE, "seeds", target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


tokens = ["<s>", "</s>", "a", "b", "ab", "Ġ", "Hello"]
llama_meta = [
    ("general.architecture", 8, "llama"),
    ("llama.embedding_length", 4, 8),
    ("llama.block_count", 4, 1),
    ("llama.attention.head_count", 4, 2),
    ("llama.feed_forward_length", 4, 16),
    ("llama.rope.freq_base", 6, 10000.0),
    ("tokenizer.ggml.model", 8, "gpt2"),
    ("tokenizer.ggml.tokens", 9, (8, tokens)),
    ("tokenizer.ggml.token_type", 9, (5, [3, 3, 1, 1, 1, 1, 1])),
    ("tokenizer.ggml.merges", 9, (8, ["a b"])),
]
write("gguf", "llama-f32", gguf([("token_embd.weight", [8, 7], "f32"), ("output_norm.weight", [8], "f32")],
                                llama_meta))
write("gguf", "quants", gguf([("q4_0", [32, 2], "q4_0"), ("q8_0", [32], "q8_0"), ("q4_k", [256], "q4_k"),
                              ("q6_k", [256], "q6_k"), ("f16", [4], "f16")], [("general.alignment", 4, 32)]))
write("gguf", "empty", gguf([], []))


def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


f32 = lambda n: b"".join(struct.pack("<f", rng.uniform(-1, 1)) for _ in range(n))  # noqa: E731
write("safetensors", "f32-bf16-f16", safetensors([
    ("model.norm.weight", "F32", [4], f32(4)),
    ("lm_head.weight", "BF16", [2, 2], bytes(rng.randrange(256) for _ in range(8))),
    ("model.embed_tokens.weight", "F16", [2, 3], bytes(rng.randrange(256) for _ in range(12))),
], {"format": "pt"}))
write("safetensors", "config.json", json.dumps({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32, "hidden_size": 8,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 16,
    "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": True,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192}}))
write("safetensors", "index.json", json.dumps({"metadata": {"total_size": 64}, "weight_map": {
    "model.norm.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"}}))

lines = [
    {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "strength": 2, "category": "math"},
    {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
     "rejected": [{"role": "assistant", "content": "Go away."}], "tie": False, "annotator": "a1"},
    {"chosen": "\n\nHuman: hi\n\nAssistant: Hello there", "rejected": "\n\nHuman: hi\n\nAssistant: No."},
    {"prompt": "x", "chosen": "y", "rejected": "z", "ref_chosen_logps": -1.5, "ref_rejected_logps": -2.0},
]
write("jsonl", "pairs.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
write("jsonl", "unpaired.jsonl", "\n".join(json.dumps(x) for x in [
    {"prompt": "Hi", "completion": "Hello!", "label": True},
    {"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "No."}],
     "label": False}]) + "\n")
write("jsonl", "lists.jsonl", "\n".join(json.dumps(x) for x in [
    {"prompt": "Pick", "responses": ["a", "b", "c"], "ranking": [2, 0, 1]},
    {"prompt": "Rate", "responses": ["x", "y", "z"], "scores": [1.0, 3.5, 3.5]}]) + "\n")
write("jsonl", "oasst.jsonl", json.dumps({"message_tree_id": "t1", "prompt": {
    "text": "Q?", "role": "prompter", "replies": [
        {"text": "A1", "role": "assistant", "rank": 0, "replies": [
            {"text": "More?", "role": "prompter", "replies": [
                {"text": "B1", "role": "assistant", "rank": 1, "replies": []},
                {"text": "B2", "role": "assistant", "rank": 0, "replies": []}]}]},
        {"text": "A2", "role": "assistant", "rank": 1, "replies": []}]}}) + "\n")
write("jsonl", "array.json", json.dumps([{"instruction": "Hi", "chosen": "a", "rejected": "b"}]))
write("jsonl", "ratings.jsonl", "\n".join(json.dumps(x) for x in [
    {"prompt": "Hi", "response": "Hello", "attributes": {"helpfulness": 3, "verbosity": 1}},
    {"prompt": "Hi", "response": "Go away", "attributes": {"helpfulness": 0}}]) + "\n")
write("jsonl", "sft.jsonl", "\n".join(json.dumps(x) for x in [
    {"prompt": "Hi", "completion": "Hello"},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
    {"text": "plain text"}, {"prompt": "only a prompt"}]) + "\n")
write("jsonl", "verifiable.jsonl", "\n".join(json.dumps(x) for x in [
    {"prompt": "2+2?", "ground_truth": "4", "verifier": "gsm8k"},
    {"prompt": "Write in lowercase, no commas, at least 3 words.", "verifier": "ifeval", "ground_truth": {
        "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma",
                                "length_constraints:number_words"],
        "kwargs": [{}, {}, {"relation": "at least", "num_words": 3}]}}]) + "\n")
write("jsonl", "pandalm.json", json.dumps([{"instruction": "Hi", "input": "", "response1": "a", "response2": "b",
                                            "annotator1": 1, "annotator2": 0, "annotator3": 2}]))
write("jsonl", "bad.jsonl", '{"prompt": 1}\n\xef\xbb\xbf{"chosen": "a"}\r\n{\n')
