//! alignlab-core: train and evaluate language models from human preferences, on any Burn device.
//!
//! The core takes bytes (weights, tokenizer, JSONL) and a `burn::tensor::Device`, and returns metrics and
//! weights as bytes. It names no backend: each surface (CLI, wasm) enables the backends it ships.

pub mod annotators;
pub mod convert;
pub mod data;
pub mod eval;
pub mod generate;
pub mod jsonl;
pub mod metrics;
pub mod model;
pub mod objectives;
pub mod pretrained;
pub mod ref_logps;
pub mod rng;
pub mod tiny;
pub mod tokenizer;
pub mod train;
pub mod verify;
pub mod weights;
