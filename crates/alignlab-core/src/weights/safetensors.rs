//! Hugging Face safetensors: the export format that transformers and transformers.js load.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};

use super::WeightError;
use crate::model::llama::NamedTensor;

/// Serialises named tensors (read back from the device asynchronously) as f32 safetensors bytes.
pub async fn to_safetensors(
    tensors: Vec<NamedTensor>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, WeightError> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, shape, t) in tensors {
        let data = t.into_data_async().await.map_err(|e| WeightError::Read(format!("{name}: {e:?}")))?;
        let bytes: Vec<u8> = data.iter::<f32>().flat_map(f32::to_le_bytes).collect();
        owned.push((name, shape, bytes));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(name, shape, bytes)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map_err(|e| WeightError::Read(format!("{name}: {e}")))?;
            Ok((name.clone(), view))
        })
        .collect::<Result<_, WeightError>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| WeightError::Read(e.to_string()))
}
