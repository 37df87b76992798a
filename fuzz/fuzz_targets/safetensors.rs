//! A safetensors file from anywhere: the header is parsed and every tensor is converted to f32; the first
//! bytes also go to the Hugging Face config and shard-index parsers, which read JSON from the same folders.
#![no_main]

use alignlab_core::weights::hf::{llama_config_from_hf, shard_index};
use alignlab_core::weights::safetensors::SafetensorsFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = SafetensorsFile::parse(data) {
        for name in file.names() {
            let _ = file.shape(&name);
            let _ = file.tensor_f32(&name);
        }
        let _ = file.metadata();
    }
    let _ = llama_config_from_hf(data);
    let _ = shard_index(data);
});
