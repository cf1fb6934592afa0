//! Bundled model definitions for Tessera: pure graph definitions that know no device.
#![warn(missing_docs)]

pub mod bert;
pub mod data;
pub mod gpt;
pub mod mlp;
pub mod nn;
pub mod rng;
pub mod tokenizer;
