//! Tessera: one model definition, trained on any accelerator. This crate holds the
//! runtime (devices and executables), the model-author API and the CLI.
#![warn(missing_docs)]

pub mod runtime;

pub use tessera_compiler as compiler;
pub use tessera_models as models;
pub mod train;
