//! A GGUF file from anywhere: the header, metadata and tensor table are parsed, the model shape and the
//! tokenizer are read from the metadata, and every tensor is dequantised. Any input must give Ok or an
//! error: no panic, no allocation larger than the input justifies.
#![no_main]

use alignlab_core::tokenizer::Tokenizer;
use alignlab_core::weights::gguf::Gguf;
use alignlab_core::weights::llama_config_from_gguf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(gguf) = Gguf::parse(data.to_vec()) else { return };
    let _ = llama_config_from_gguf(&gguf);
    if let Ok(tokenizer) = Tokenizer::from_gguf(&gguf) {
        let _ = tokenizer.encode("Hello, world!");
    }
    let names: Vec<String> = gguf.tensor_names().map(str::to_string).collect();
    for name in names {
        let _ = gguf.tensor_f32(&name);
    }
});
