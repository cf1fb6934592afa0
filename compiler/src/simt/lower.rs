//! Lowering of a tile kernel to a per-thread program.

use super::ir::SimtKernel;
use crate::error::CompileError;
use crate::target::Target;
use crate::tile::TileKernel;

/// Lowers one tile kernel for a SIMT target.
pub fn lower_kernel(kernel: &TileKernel, target: &Target) -> Result<SimtKernel, CompileError> {
    let _ = (kernel, target);
    Err(CompileError::Internal {
        stage: "simt",
        message: "not yet implemented".into(),
    })
}
