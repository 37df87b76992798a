//! Where the integration tests find the real files: the shared data sets and the downloaded models. A missing
//! file fails the test with what to do; these tests are not skipped.
#![allow(dead_code)] // each test file uses only some of these

use std::path::PathBuf;

/// `rel` under `$ALIGNLAB_DATA` (default: `../shared/data` beside the workspace).
pub fn data_path(rel: &str) -> PathBuf {
    let dir = std::env::var_os("ALIGNLAB_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")));
    let path = dir.join(rel);
    assert!(
        path.exists(),
        "{} is missing: the shared data sets live in ../shared/data beside the workspace (or set ALIGNLAB_DATA)",
        path.display()
    );
    path
}

/// `name` under `$ALIGNLAB_MODELS` (default: the workspace's `models/`, filled by `scripts/fetch-models.sh`).
pub fn model_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("ALIGNLAB_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models")));
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run scripts/fetch-models.sh (or set ALIGNLAB_MODELS)", path.display());
    path
}
