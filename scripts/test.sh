#!/usr/bin/env bash
# Every test of the project, in order: Rust (core + CLI, native CPU), the wasm build, the npm package in Node
# (wasm CPU and WebGPU), the page in Chromium with WebGPU. Run scripts/setup.sh once before.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
step() { printf '\n== test: %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo test (native, CPU)"
cargo test-native
step "native wgpu (where a working Vulkan exists)"
rc=0
scripts/native-wgpu-check.sh || rc=$?
case $rc in
  0) ;;
  3) echo "native wgpu: skipped, no working adapter on this machine" ;;
  *) exit "$rc" ;;
esac
step "build the wasm package and the page"
npm run build
step "Node tests (wasm CPU, WebGPU through the webgpu package)"
export ALIGNLAB_CLI="$CARGO_TARGET_DIR/debug/alignlab"
npm run test:node
step "Playwright (Chromium, WebGPU)"
npm run test:e2e
