//! Bundled model definitions for Tessera: pure graph definitions that know no device.

pub mod mlp;
