//! Model families and the scalar reward head.

pub mod llama;
pub mod reward;
