#!/usr/bin/env bash
# Installs everything alignlab needs on a fresh Debian machine (idempotent): Chromium (WebGPU through
# SwiftShader, for Node's `webgpu` package and the page tests), Mesa's Vulkan drivers (native wgpu), the wasm32
# Rust target, the wasm-bindgen CLI matching Cargo.lock, the npm packages, the SmolLM2 model and
# the all-MiniLM-L6-v2 encoder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n== setup: %s\n' "$*"; }

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need_apt+=(mesa-vulkan-drivers)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

step "rust target wasm32-unknown-unknown"
rustup target add wasm32-unknown-unknown

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
  step "wasm-bindgen-cli $want (a few CPU-minutes)"
  cargo install wasm-bindgen-cli --version "$want"
fi

step "npm ci"
npm ci --no-audit --no-fund

step "models"
scripts/fetch-models.sh
scripts/fetch-minilm.sh
