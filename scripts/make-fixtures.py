#!/usr/bin/env python3
"""Writes tests/fixtures/truthfulqa/pairs.jsonl: TRL preference pairs from TruthfulQA (Apache-2.0), the
question as prompt, "Best Answer" as chosen and "Best Incorrect Answer" as rejected, in file order.

Usage: python3 scripts/make-fixtures.py [path/to/shared/data] [count]
"""
import csv, json, os, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "data")
count = int(sys.argv[2]) if len(sys.argv) > 2 else 64
src = os.path.join(shared, "truthfulqa", "TruthfulQA.csv")
out_dir = os.path.join(root, "tests", "fixtures", "truthfulqa")
os.makedirs(out_dir, exist_ok=True)
with open(src, newline="", encoding="utf-8") as f, open(os.path.join(out_dir, "pairs.jsonl"), "w", encoding="utf-8") as out:
    for i, row in enumerate(csv.DictReader(f)):
        if i == count:
            break
        rec = {"prompt": row["Question"], "chosen": row["Best Answer"], "rejected": row["Best Incorrect Answer"],
               "category": row["Category"], "source": "truthfulqa"}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
