//! Model families and the scalar reward head.

pub mod bert;
pub mod llama;
pub mod lora;
pub mod reward;

use burn::tensor::{Device, Tensor, TensorData};

/// A Hugging Face linear weight (`[d_out, d_in]`, row-major) in Burn's layout `[d_in, d_out]`, transposed on the
/// host so that the tensor is contiguous: a transposed view would be copied by the CPU backend before every
/// matmul, which costs as much as the matmul itself when generating one token at a time.
pub(crate) fn linear_weight(w: &[f32], d_out: usize, d_in: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(transpose(w, d_out, d_in), [d_in, d_out]), device)
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub(crate) fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).flat_map(|c| (0..rows).map(move |r| v[r * cols + c])).collect()
}
