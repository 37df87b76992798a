#!/usr/bin/env python3
"""Writes crates/alignlab-core/tests/fixtures/reward-tiny-*/: tiny random reward models saved by transformers, and
the scores transformers computes for a right-padded batch, the reference crates/alignlab-core/tests/reward_io.rs
checks alignlab's loader, its head position and its export round trip against.

Folders (the Llama shape and tokenizer of hf-tiny-llama: hidden 32, 2 layers, vocabulary 300, pad = eos = 2):
  reward-tiny-llama       LlamaForSequenceClassification, num_labels 1 (a Bradley–Terry reward model)
  reward-tiny-qwen2-attr  Qwen2ForSequenceClassification, 3 labels (helpfulness, correctness, coherence):
                          one head per attribute, as HelpSteer2's regression reward models
  reward-tiny-bert        alignlab's encoder layout (model/reward.rs): BertModel.save_pretrained, plus
                          score.weight [2, 24] in model.safetensors and "alignlab_pooling": "mean" in config.json;
                          the score is the attention-mask mean of the last hidden states times score.weight
Each holds expected.json: the input ids (right-padded with the pad id), the attention mask, and the float32 scores
[batch, labels]. Decoders read the rightmost token that is not pad_token_id (transformers'
GenericForSequenceClassification): the rows that end in eos = pad are read one token earlier.

Usage: pip install -r scripts/requirements-hf-fixture.txt && python3 scripts/make-reward-fixture.py
       python3 scripts/make-reward-fixture.py --check-export DIR FIXTURE
the second form loads a reward folder that alignlab wrote (DIR; tests/reward_io.rs writes them when
ALIGNLAB_REWARD_EXPORT_DIR is set) with transformers and compares its scores with FIXTURE's expected.json.
"""
import json
import os
import shutil
import sys
from importlib.metadata import version

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    LlamaConfig,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForSequenceClassification,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "crates", "alignlab-core", "tests", "fixtures")
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
PAD = 2
# Three sequences: one ending in eos (= pad: read one token earlier), one without eos, one short and padded.
DECODER_ROWS = [[1, 70, 80, 90, 100, 110, 2], [1, 150, 160, 170, 180, 190, 200, 210], [1, 44, 55, 2]]
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [c for c in "abcdefghijklmnopqrstuvwxyz"] + [
    "the", "capital", "of", "france", "is", "paris", "what", "##s", "##ing", "good", "bad", "answer", "?", ".", ",",
]
BERT_ROWS = [[2, 31, 32, 33, 34, 3], [2, 35, 36, 37, 38, 39, 40, 41, 3], [2, 42, 3]]


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("LayerNorm.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def padded(rows, pad):
    t = max(map(len, rows))
    ids = [r + [pad] * (t - len(r)) for r in rows]
    mask = [[1] * len(r) + [0] * (t - len(r)) for r in rows]
    return ids, mask


def decoder_scores(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.float()


def bert_scores(bert, score, ids, mask):
    with torch.no_grad():
        m = torch.tensor(mask, dtype=torch.float32)
        hidden = bert(torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
        pooled = (hidden * m[:, :, None]).sum(1) / m.sum(1, keepdim=True)
        return pooled @ score.T


def write_expected(out, note, ids, mask, scores):
    expected = {
        "note": f"made by scripts/make-reward-fixture.py with transformers {version('transformers')} and torch "
        f"{version('torch')}: {note}",
        "input_ids": ids,
        "attention_mask": mask,
        "scores": [[round(float(x), 6) for x in row] for row in scores],
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=None, separators=(",", ":"))
        f.write("\n")
    sizes = {f: os.path.getsize(os.path.join(out, f)) for f in sorted(os.listdir(out))}
    print(os.path.basename(out), sum(sizes.values()), "bytes:", sizes)


def decoder_fixture(name, model, tokenizer, note):
    out = os.path.join(FIXTURES, name)
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    ids, mask = padded(DECODER_ROWS, PAD)
    write_expected(out, note, ids, mask, decoder_scores(model, ids))


def bert_tokenizer():
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
        mask_token="[MASK]",
    )


def bert_fixture():
    out = os.path.join(FIXTURES, "reward-tiny-bert")
    shutil.rmtree(out, ignore_errors=True)
    config = BertConfig(vocab_size=len(WORDS), hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                        intermediate_size=48, max_position_embeddings=32, pad_token_id=0)
    bert = BertModel(config, add_pooling_layer=False).eval()
    randomise(bert, 6)
    score = 0.2 * torch.randn((2, 24), generator=torch.Generator().manual_seed(7))
    bert.save_pretrained(out)
    tensors = load_file(os.path.join(out, "model.safetensors"))
    tensors["score.weight"] = score.contiguous()
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    cfg.update(alignlab_pooling="mean", num_labels=2, id2label={"0": "helpfulness", "1": "verbosity"},
               label2id={"helpfulness": 0, "verbosity": 1})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    bert_tokenizer().save_pretrained(out)
    ids, mask = padded(BERT_ROWS, 0)
    write_expected(out, "BertModel + mean pooling + score.weight [2, 24] (alignlab's encoder layout)", ids, mask,
                   bert_scores(bert, score, ids, mask))


def main():
    torch.manual_seed(0)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(os.path.join(FIXTURES, "hf-tiny-llama"))
    llama = LlamaForSequenceClassification(LlamaConfig(**SHAPE, num_labels=1, tie_word_embeddings=True,
                                                       rope_theta=10000.0)).eval()
    randomise(llama, 4)
    decoder_fixture("reward-tiny-llama", llama, tokenizer, "LlamaForSequenceClassification, 1 label")
    labels = ["helpfulness", "correctness", "coherence"]
    qwen2 = Qwen2ForSequenceClassification(Qwen2Config(
        **SHAPE, tie_word_embeddings=True, rope_theta=1000000.0, num_labels=3,
        id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})).eval()
    randomise(qwen2, 5)
    decoder_fixture("reward-tiny-qwen2-attr", qwen2, tokenizer, "Qwen2ForSequenceClassification, 3 attribute labels")
    bert_fixture()


def check_export(exported, fixture):
    with open(os.path.join(FIXTURES, fixture, "expected.json")) as f:
        expected = json.load(f)
    ids, mask = expected["input_ids"], expected["attention_mask"]
    with open(os.path.join(exported, "config.json")) as f:
        cfg = json.load(f)
    if cfg["model_type"] == "bert":
        bert = BertModel.from_pretrained(exported, add_pooling_layer=False, dtype=torch.float32).eval()
        score = load_file(os.path.join(exported, "model.safetensors"))["score.weight"]
        scores = bert_scores(bert, score, ids, mask)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(exported, dtype=torch.float32).eval()
        assert model.config.pad_token_id == PAD, model.config.pad_token_id
        scores = decoder_scores(model, ids)
    diff = (scores - torch.tensor(expected["scores"])).abs().max().item()
    print(f"{exported}: transformers loads it as {cfg['architectures'][0]} ({scores.shape[1]} labels); "
          f"max |score diff| vs {fixture} {diff:.2e}")
    assert diff < 1e-4, diff


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--check-export":
        check_export(sys.argv[2], sys.argv[3])
    else:
        main()
