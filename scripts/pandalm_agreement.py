#!/usr/bin/env python3
"""Reference agreement numbers for crates/alignlab-core/tests/agreement_pandalm.rs.

Reads the PandaLM human test set (../shared/data/pandalm-human-pairwise, or $ALIGNLAB_DATA) and prints, as JSON,
the three annotators' pairwise Cohen's kappa, Fleiss' kappa, Krippendorff's alpha (nominal), per-item agreement
counts, and the agreement of the two judges shipped with the data (GPT-3.5, PandaLM-7B) with the annotators.

Standard library only, and written independently of the Rust code: kappa from the textbook p_o/p_e form,
alpha from the pairable-values form (D_o from pairs within a unit weighted 1/(m_u - 1), D_e from all pairs of
pairable values), not from a coincidence matrix. Judge labels: GPT-3.5's "1"/"2"/"Tie" become 1/2/0 and its
"garbage" answers are missing; PandaLM-7B's are already 0/1/2.

Usage: python3 scripts/pandalm_agreement.py
"""

import json
import os
from collections import Counter
from itertools import combinations

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("ALIGNLAB_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
DIR = os.path.join(DATA, "pandalm-human-pairwise")


def load(name):
    with open(os.path.join(DIR, name), encoding="utf-8") as f:
        return json.load(f)


def cohen(a, b):
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    n = len(pairs)
    p_o = sum(x == y for x, y in pairs) / n
    ca, cb = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    p_e = sum(ca[c] * cb[c] for c in set(ca) | set(cb)) / (n * n)
    return (p_o - p_e) / (1 - p_e)


def fleiss(units):
    units = [[v for v in u if v is not None] for u in units]
    units = [u for u in units if len(u) >= 2]
    p_i = []
    for u in units:
        m = len(u)
        agreeing = sum(1 for x, y in combinations(u, 2) if x == y)
        p_i.append(agreeing / (m * (m - 1) / 2))
    p_bar = sum(p_i) / len(p_i)
    totals = Counter(v for u in units for v in u)
    n = sum(totals.values())
    p_e = sum((t / n) ** 2 for t in totals.values())
    return (p_bar - p_e) / (1 - p_e)


def krippendorff_nominal(units):
    units = [[v for v in u if v is not None] for u in units]
    units = [u for u in units if len(u) >= 2]
    values = [v for u in units for v in u]
    n = len(values)
    d_o = sum(sum(2 for x, y in combinations(u, 2) if x != y) / (len(u) - 1) for u in units) / n
    counts = Counter(values)
    disagreeing_pairs = n * n - sum(c * c for c in counts.values())  # ordered pairs of unequal values
    d_e = disagreeing_pairs / (n * (n - 1))
    return 1 - d_o / d_e


def majority(u):
    top = Counter(v for v in u if v is not None).most_common()
    if not top or (len(top) > 1 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def judge(labels, units):
    raters = list(zip(*units))
    kappas = [cohen(labels, list(r)) for r in raters]
    hits = [m == majority(u) for m, u in zip(labels, units) if m is not None and majority(u) is not None]
    return {
        "cohen_kappa": kappas,
        "mean_cohen_kappa": sum(kappas) / len(kappas),
        "majority_accuracy": sum(hits) / len(hits),
        "majority_items": len(hits),
    }


def main():
    rows = load("testset-v1.json")
    units = [[r["annotator1"], r["annotator2"], r["annotator3"]] for r in rows]
    raters = list(zip(*units))
    pairwise = {f"{i + 1}-{j + 1}": cohen(raters[i], raters[j]) for i, j in combinations(range(3), 2)}
    item = [sum(1 for x, y in combinations(u, 2) if x == y) / 3 for u in units]

    gpt_map = {"1": 1, "2": 2, "Tie": 0}
    gpt = {r["idx"]: gpt_map.get(r["gpt_result"]) for r in load("gpt-3.5-turbo-testset-v1.json")}
    pandalm = {r["idx"]: r["pandalm_result"] for r in load("pandalm-7b-testset-v1.json")}
    idx = [r["idx"] for r in rows]

    out = {
        "items": len(units),
        "unanimous": sum(a == 1 for a in item),
        "disagreements": sum(a < 1 for a in item),
        "mean_item_agreement": sum(item) / len(item),
        "cohen_kappa": pairwise,
        "mean_cohen_kappa": sum(pairwise.values()) / len(pairwise),
        "fleiss_kappa": fleiss(units),
        "krippendorff_alpha": krippendorff_nominal(units),
        "gpt-3.5-turbo": judge([gpt[i] for i in idx], units),
        "pandalm-7b": judge([pandalm[i] for i in idx], units),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
