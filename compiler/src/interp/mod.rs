//! Reference execution on the CPU: graphs in f64 (the oracle), tile kernels in f32.
//!
//! - [`graph::run_graph`] evaluates a [`crate::Graph`] in f64 with the op semantics the
//!   graph IR defines; every backend test compares against it.
//! - [`tile::run_kernel`] runs one [`crate::tile::TileKernel`] over f32 buffers, and
//!   [`tile::run_plan`] runs a whole [`crate::Plan`] with its memory plan, so scheduler,
//!   tiling and memory-planning bugs show up on the CPU before any device is involved.
//! - [`Tensor`] is the host tensor both take and return, with device byte conversion,
//!   deterministic random data and error metrics.

mod error;
pub mod graph;
pub mod tensor;
pub mod tile;

pub use error::InterpError;
pub use graph::{eval_all, run_graph, run_graph_with, Limits};
pub use tensor::{max_abs_diff, max_rel_diff, round_to_dtype, Tensor, REL_DIFF_FLOOR};
pub use tile::{run_kernel, run_plan, run_plan_with};
