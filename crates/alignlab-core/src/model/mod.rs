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
    let mut t = vec![0.0; w.len()];
    for (o, row) in w.chunks_exact(d_in).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            t[i * d_out + o] = v;
        }
    }
    Tensor::from_data(TensorData::new(t, [d_in, d_out]), device)
}
