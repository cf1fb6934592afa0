//! Ascend C backend: tile IR -> Ascend C kernels (vector unit over whole tiles, Cube unit
//! for matmul) plus AscendCL host code.

use super::Artifact;
use crate::error::CompileError;
use crate::schedule::plan::Plan;
use crate::target::Target;

/// Emits every kernel of a plan plus host code.
pub fn emit_plan(plan: &Plan, target: &Target) -> Result<Artifact, CompileError> {
    let _ = (plan, target);
    Err(CompileError::Internal {
        stage: "ascendc",
        message: "not yet implemented".into(),
    })
}
