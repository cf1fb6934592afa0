//! Training: device-resident training steps, AdamW, learning-rate schedules, atomic
//! safetensors checkpoints, loss-curve plots and progress bars.
//!
//! - [`trainer`]: [`trainer::build_training_graph`] turns a forward graph with a scalar
//!   loss into one training graph (forward, backward via
//!   [`tessera_compiler::autodiff::grad`], AdamW update); [`trainer::Trainer`] loads it on
//!   a device with every parameter and moment bound to its update
//!   ([`crate::runtime::Executable::bind_update`]), so a step uploads the batch and a few
//!   scalars, and reads back only the loss.
//! - [`checkpoint`]: parameters, moments, step, RNG state and model config in one
//!   safetensors file, saved atomically, loaded with every mismatch reported.
//! - [`schedule`]: warmup + cosine learning rate.
//! - [`plot`]: loss curves as PNG (plotters) and CSV.
//! - [`progress`]: an indicatif bar with loss and tokens/s.
//! - [`sample`]: text generation from a trained GPT (temperature, top-k, seeded).

pub mod checkpoint;
pub mod plot;
pub mod progress;
pub mod sample;
pub mod schedule;
pub mod trainer;

pub use checkpoint::{Checkpoint, CheckpointError, Mismatch};
pub use schedule::LrSchedule;
pub use trainer::{build_training_graph, TrainGraph, Trainer, TrainerOptions};

use crate::runtime::RuntimeError;

/// A training failure.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The device failed or rejected a tensor.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Saving or loading a checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Building the training graph failed.
    #[error(transparent)]
    Graph(#[from] tessera_compiler::GraphError),
    /// The gradient graph could not be built (e.g. an op without a backward rule).
    #[error(transparent)]
    Autodiff(#[from] tessera_compiler::AutodiffError),
    /// The model definition failed.
    #[error(transparent)]
    Model(#[from] tessera_models::gpt::GptError),
    /// Batching failed.
    #[error(transparent)]
    Data(#[from] tessera_models::data::DataError),
    /// Drawing or writing the loss curve failed.
    #[error(transparent)]
    Plot(#[from] plot::PlotError),
    /// A bad argument or inconsistent state (e.g. a checkpoint of another model).
    #[error("{0}")]
    Invalid(String),
}
