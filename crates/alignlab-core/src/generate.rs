//! Greedy decoding with a KV cache. Each new token costs one forward of one position and one small read
//! back from the device (its id), which is asynchronous so that it works on wasm.

use burn::tensor::{Int, Tensor, TensorData};

use crate::model::llama::{KvCache, Llama};

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the prompt is empty: generation needs at least one token to condition on")]
    EmptyPrompt,
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    BadToken { id: u32, vocab: usize },
    #[error("reading the next token back from the device failed: {0}")]
    Read(String),
}

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens to produce.
    pub max_new_tokens: usize,
    /// Generation stops after producing any of these (the model's end-of-turn token, usually).
    pub stop_tokens: Vec<u32>,
}

/// Greedy continuation of `prompt`; returns the new tokens (a stop token included when one was produced).
/// `on_token` sees each token as it is produced, for streaming.
pub async fn greedy(
    model: &Llama,
    prompt: &[u32],
    options: &GenerateOptions,
    mut on_token: impl FnMut(u32),
) -> Result<Vec<u32>, GenerateError> {
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    let vocab = model.vocab_size();
    if let Some(&id) = prompt.iter().find(|&&id| id as usize >= vocab) {
        return Err(GenerateError::BadToken { id, vocab });
    }
    let device = model.embed_tokens.val().device();
    let head_t = model.head_weight().transpose();
    let mut cache = KvCache::new();
    let mut input: Vec<i64> = prompt.iter().map(|&i| i as i64).collect();
    let mut out = Vec::new();
    while out.len() < options.max_new_tokens {
        let len = input.len();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(std::mem::take(&mut input), [1, len]), &device);
        let hidden = model.forward_hidden(ids, Some(&mut cache));
        let d = hidden.dims()[2];
        let last = hidden.narrow(1, len - 1, 1).reshape([1, d]);
        let next = last.matmul(head_t.clone()).argmax(1);
        let data = next.into_data_async().await.map_err(|e| GenerateError::Read(format!("{e:?}")))?;
        let id = data.iter::<i64>().next().ok_or_else(|| GenerateError::Read("empty argmax".into()))? as u32;
        out.push(id);
        on_token(id);
        if options.stop_tokens.contains(&id) {
            break;
        }
        input = vec![id as i64];
    }
    Ok(out)
}
