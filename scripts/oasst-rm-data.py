#!/usr/bin/env python3
"""Reward-model data from OpenAssistant trees (../shared/data/oasst-en100), split by tree so that no prompt is
in both halves: ratings of every ranked assistant reply (for `alignlab regression`) and preference pairs (for
`alignlab reward`), training and held-out.

These early-2023 trees carry no HelpSteer/OASST1 attribute labels (quality, humor, …); the human signals on a
reply are its rank among its siblings and the crowd's +1/-1 reactions. So the ratings are:
  rank_score = 4·(1 − rank/(n − 1))   0–4, 4 = best of its n ranked siblings (every ranked reply)
  votes      = clamp(#(+1) − #(−1), −2, 2) + 2   0–4 (only replies with at least one +1/−1 reaction)
Pairs: every two ranked siblings, the better rank chosen, strength = min(3, rank gap) (Scaled BT's 1–3).
Prompt: the conversation so far as plain text ("User: …\nAssistant: …\nUser: …"), the reply as the response.

usage: scripts/oasst-rm-data.py TREES OUT_DIR [--held-out 0.2] [--seed 0]
"""
import argparse
import json
import random
from pathlib import Path


def walk(node, history, out):
    replies = [r for r in node.get("replies", []) if not r.get("deleted")]
    ranked = [r for r in replies if r.get("role") == "assistant" and r.get("rank") is not None]
    turn = ("User: " if node["role"] == "prompter" else "Assistant: ") + node["text"]
    context = history + [turn]
    if len(ranked) >= 2:
        out.append(("\n".join(context), sorted(ranked, key=lambda r: r["rank"])))
    for r in replies:
        walk(r, context, out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trees")
    ap.add_argument("out")
    ap.add_argument("--held-out", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    trees = [json.loads(line) for line in open(a.trees, encoding="utf-8")]
    order = list(range(len(trees)))
    random.Random(a.seed).shuffle(order)
    n_held = round(a.held_out * len(trees))
    held = set(order[:n_held])
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        (split, kind): open(out / f"{kind}-{split}.jsonl", "w", encoding="utf-8")
        for split in ("train", "heldout")
        for kind in ("ratings", "pairs")
    }
    counts = {k: 0 for k in files}
    for i, tree in enumerate(trees):
        split = "heldout" if i in held else "train"
        groups = []
        walk(tree["prompt"], [], groups)
        for prompt, ranked in groups:
            n = len(ranked)
            for r in ranked:
                attrs = {"rank_score": 4.0 * (1 - r["rank"] / (n - 1))}
                e = r.get("emojis") or {}
                up, down = e.get("+1", 0), e.get("-1", 0)
                if up or down:
                    attrs["votes"] = float(max(-2, min(2, up - down)) + 2)
                rec = {"prompt": prompt, "response": r["text"], "attributes": attrs}
                files[(split, "ratings")].write(json.dumps(rec) + "\n")
                counts[(split, "ratings")] += 1
            for x in range(n):
                for y in range(x + 1, n):
                    w, l = ranked[x], ranked[y]
                    if w["rank"] == l["rank"]:
                        continue
                    rec = {"prompt": prompt, "chosen": w["text"], "rejected": l["text"],
                           "strength": min(3, l["rank"] - w["rank"])}
                    files[(split, "pairs")].write(json.dumps(rec) + "\n")
                    counts[(split, "pairs")] += 1
    for f in files.values():
        f.close()
    print(json.dumps({f"{kind}-{split}": c for (split, kind), c in counts.items()}))


if __name__ == "__main__":
    main()
