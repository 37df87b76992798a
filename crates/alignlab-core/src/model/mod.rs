//! Model families and the scalar reward head.

pub mod bert;
pub mod llama;
pub mod lora;
pub mod reward;
