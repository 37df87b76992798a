//! Training objectives. `logprob` holds the one kernel most methods share (masked sequence log-probs,
//! computed in chunks of tokens); each family of losses has a file of its own, named as in the papers.

pub mod dpo;
pub mod kto;
pub mod lipo;
pub mod logprob;
pub mod modpo;
pub mod reward;
