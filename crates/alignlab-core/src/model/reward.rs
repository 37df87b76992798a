//! A scalar reward model: a decoder backbone and a linear head read at the last real token of each sequence
//! (TRL's `AutoModelForSequenceClassification` with one label; Ouyang et al. 2022 §3.5).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::llama::{Llama, NamedTensor};

#[derive(Module, Debug)]
pub struct RewardModel {
    pub backbone: Llama,
    /// `[d_model, 1]`, initialised to zero so that every reward starts at 0 and the first loss is ln 2.
    pub score: Linear,
}

impl RewardModel {
    pub fn new(backbone: Llama, device: &Device) -> Self {
        let d = backbone.d_model();
        let score = Linear { weight: Param::from_tensor(Tensor::zeros([d, 1], device)), bias: None };
        Self { backbone, score }
    }

    /// Rewards of right-padded sequences `ids: [batch, seq]` whose real lengths are `lengths`, `[batch]`.
    pub fn forward(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<1> {
        let [b, t] = ids.dims();
        let device = ids.device();
        let hidden = self.backbone.forward_hidden(ids, None);
        let d = hidden.dims()[2];
        let last: Vec<i64> = lengths.iter().enumerate().map(|(i, &len)| (i * t + len.max(1) - 1) as i64).collect();
        let last = Tensor::<1, Int>::from_data(TensorData::new(last, [b]), &device);
        let h = hidden.reshape([b * t, d]).select(0, last);
        self.score.forward(h).reshape([b])
    }

    /// Backbone tensors plus `score.weight` `[1, d_model]`, named as transformers'
    /// `LlamaForSequenceClassification`.
    pub fn named_tensors(&self) -> Vec<NamedTensor> {
        let mut out = self.backbone.named_tensors();
        let w = self.score.weight.val();
        let [d, _] = w.dims();
        out.push(("score.weight".into(), vec![1, d], w.reshape([d])));
        out
    }
}

/// A model that scores each sequence of a right-padded batch with one scalar: what the reward loop trains.
pub trait ScalarReward: Module {
    fn rewards(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<1>;
}

impl ScalarReward for RewardModel {
    fn rewards(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<1> {
        self.forward(ids, lengths)
    }
}

impl ScalarReward for crate::model::bert::EncoderRewardModel {
    fn rewards(&self, ids: Tensor<2, Int>, lengths: &[usize]) -> Tensor<1> {
        self.forward(ids, lengths)
    }
}
