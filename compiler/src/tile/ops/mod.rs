//! Tile builders of the standalone ops ([`crate::schedule::fuse::is_standalone`]): one
//! hand-written tile kernel per op family, each in a module of its own.
//!
//! - [`rows`]: row-wise composites over the last axis (softmax, log-softmax, layer norm,
//!   RMS norm) and cross-entropy;
//! - [`index`]: gather, scatter-add (also in its sorted form), concat;
//! - [`sort`]: the ranks and the sorted order of a sorted scatter-add's ids;
//! - [`rope`]: rotary position embedding;
//! - [`attention`]: flash-attention style scaled-dot-product attention;
//! - [`attention_bwd`]: its backward pass (statistics, dq, dk, dv kernels).

pub mod attention;
pub mod attention_bwd;
pub mod index;
pub mod rope;
pub mod rows;
pub mod sort;

use crate::error::CompileError;
use crate::graph::Op;
use crate::schedule::kernel::{KernelKind, KernelSpec};
use crate::target::Target;
use crate::tile::{BufferParam, TileKernel};

/// The kernel parameters of a spec: its buffers in binding order.
pub fn params(spec: &KernelSpec) -> Vec<BufferParam> {
    spec.buffers
        .iter()
        .map(|b| BufferParam {
            name: b.name.clone(),
            dtype: b.dtype,
            len: b.len(),
            access: b.access,
        })
        .collect()
}

/// The error for a standalone op a builder does not handle (yet).
pub fn unsupported(spec: &KernelSpec, target: &Target, what: impl Into<String>) -> CompileError {
    CompileError::Unsupported {
        target: target.kind.name().to_string(),
        kernel: spec.name.clone(),
        what: what.into(),
    }
}

/// Builds the tile kernel of a [`KernelKind::Standalone`] spec.
pub fn build_standalone(
    spec: &KernelSpec,
    name: &str,
    target: &Target,
) -> Result<TileKernel, CompileError> {
    let KernelKind::Standalone { op, operands } = &spec.kind else {
        return Err(CompileError::Internal {
            stage: "tile",
            message: format!("kernel `{name}` is not a standalone op"),
        });
    };
    match op {
        Op::Composite(c) => match c {
            crate::graph::CompositeOp::Attention { .. } => {
                attention::build(spec, name, c, operands, target)
            }
            crate::graph::CompositeOp::AttentionStats { .. }
            | crate::graph::CompositeOp::AttentionGrad { .. } => {
                attention_bwd::build(spec, name, c, operands, target)
            }
            crate::graph::CompositeOp::Rope { .. } => rope::build(spec, name, c, operands, target),
            crate::graph::CompositeOp::ScatterRanks { .. }
            | crate::graph::CompositeOp::ScatterOrder
            | crate::graph::CompositeOp::ScatterStarts { .. } => {
                sort::build(spec, name, c, operands, target)
            }
            crate::graph::CompositeOp::SortedScatterAdd { .. } => {
                index::build(spec, name, op, operands, target)
            }
            _ => rows::build(spec, name, c, operands, target),
        },
        Op::Gather { .. } | Op::ScatterAdd { .. } | Op::Concat { .. } => {
            index::build(spec, name, op, operands, target)
        }
        other => Err(unsupported(
            spec,
            target,
            format!("`{}` as a standalone kernel", other.name()),
        )),
    }
}
