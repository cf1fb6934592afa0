//! The tile kernel of scaled-dot-product attention: flash-attention style (K/V tiles
//! streamed, online softmax, no T x T matrix in device memory).

use super::unsupported;
use crate::error::CompileError;
use crate::graph::CompositeOp;
use crate::schedule::kernel::KernelSpec;
use crate::schedule::view::StridedView;
use crate::target::Target;
use crate::tile::TileKernel;

/// Builds the kernel of `c` over its operands (`(buffer index, view)` per node input).
pub fn build(
    spec: &KernelSpec,
    _name: &str,
    c: &CompositeOp,
    _operands: &[(usize, StridedView)],
    target: &Target,
) -> Result<TileKernel, CompileError> {
    Err(unsupported(
        spec,
        target,
        format!("`{}` (no tile kernel yet)", c.name()),
    ))
}
