#!/usr/bin/env bash
# Builds the wasm crate (WebGPU + CPU backends) and generates pkg/wasm/ with wasm-bindgen (--target web: one
# build serves browsers and Node), then shrinks it with wasm-opt when binaryen is installed (npm ci).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "build-wasm: wasm-bindgen $want is needed (found '${have:-none}'): cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
cargo build -p alignlab-wasm --target wasm32-unknown-unknown --profile wasm
rm -rf pkg/wasm
wasm-bindgen --target web --out-dir pkg/wasm "$target_dir/wasm32-unknown-unknown/wasm/alignlab_wasm.wasm"
opt="$root/node_modules/.bin/wasm-opt"
if [ -x "$opt" ]; then
  "$opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    --enable-simd --enable-reference-types --enable-multivalue \
    pkg/wasm/alignlab_wasm_bg.wasm -o pkg/wasm/alignlab_wasm_bg.wasm
fi
raw=$(stat -c %s pkg/wasm/alignlab_wasm_bg.wasm)
gz=$(gzip -9 -c pkg/wasm/alignlab_wasm_bg.wasm | wc -c)
echo "build-wasm: pkg/wasm/alignlab_wasm_bg.wasm is $raw bytes ($gz gzip)"
