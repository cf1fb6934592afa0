//! Errors of compilation after the graph is built: scheduling, target limits, emission
//! and validation of emitted code.

use crate::graph::GraphError;

/// A compilation failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// The graph is invalid.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A kernel would exceed a target limit and could not be re-tiled.
    #[error("kernel `{kernel}` exceeds the {target} limit `{limit}`: needs {needed}, the target offers {available}")]
    Limit {
        /// Kernel name.
        kernel: String,
        /// Target name.
        target: String,
        /// The limit's name.
        limit: &'static str,
        /// What the kernel needs.
        needed: usize,
        /// What the target offers.
        available: usize,
    },
    /// A construct the chosen target or lowering does not support.
    #[error("{target}: kernel `{kernel}`: {what} is not supported")]
    Unsupported {
        /// Target name.
        target: String,
        /// Kernel name.
        kernel: String,
        /// What is missing.
        what: String,
    },
    /// Emitted code failed validation (naga for WGSL): always a hard error.
    #[error("{target}: emitted kernel `{kernel}` failed validation: {message}")]
    Validation {
        /// Target name.
        target: String,
        /// Kernel name.
        kernel: String,
        /// The validator's message.
        message: String,
    },
    /// An internal invariant was broken (a compiler bug), with context.
    #[error("internal compiler error in {stage}: {message}")]
    Internal {
        /// The pipeline stage.
        stage: &'static str,
        /// What went wrong.
        message: String,
    },
}
