#!/usr/bin/env python3
"""PandaLM's human test set (../shared/data/pandalm-human-pairwise) as TRL preference pairs for a reward-model run.

Label: the majority of the three annotators (1 = response1 better, 2 = response2 better); items whose majority is
a tie (0) or that have no majority are left out. A seeded 80/20 split writes OUT/train.jsonl and OUT/test.jsonl
(prompt = instruction + input, category = the motivating app, source = the two models compared), and prints
the "longer answer wins" baseline on the test split (characters; equal lengths count half), the number a
reward model has to beat. The data stays outside the repository (its licence: SOURCE.md beside it).

    python3 scripts/pandalm-pairs.py ../shared/data/pandalm-human-pairwise/testset-v1.json /tmp/pandalm
"""
import collections
import json
import os
import random
import sys


def main(src, out):
    rows = json.load(open(src, encoding="utf-8"))
    pairs = []
    for r in rows:
        votes = collections.Counter(int(r[f"annotator{i}"]) for i in (1, 2, 3))
        label, n = votes.most_common(1)[0]
        if n < 2 or label == 0:
            continue
        prompt = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
        # A few responses are JSON booleans (a model answered "True"); they are text to the reward model.
        r1, r2 = str(r["response1"]), str(r["response2"])
        good, bad = (r1, r2) if label == 1 else (r2, r1)
        pairs.append({"prompt": prompt, "chosen": good, "rejected": bad, "category": r["motivation_app"],
                      "source": r["cmp_key"]})
    random.Random(0).shuffle(pairs)
    cut = int(len(pairs) * 0.8)
    os.makedirs(out, exist_ok=True)
    for name, part in (("train", pairs[:cut]), ("test", pairs[cut:])):
        with open(os.path.join(out, f"{name}.jsonl"), "w", encoding="utf-8") as f:
            for p in part:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    test = pairs[cut:]
    longer = sum(1.0 if len(p["chosen"]) > len(p["rejected"]) else 0.5 if len(p["chosen"]) == len(p["rejected"]) else 0.0
                 for p in test) / len(test)
    print(json.dumps({"items": len(rows), "pairs": len(pairs), "train": cut, "test": len(test),
                      "longer_answer_wins_test_accuracy": round(longer, 4)}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
