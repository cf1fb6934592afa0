//! WGSL printer of the shared SIMT program.

use super::Artifact;
use crate::error::CompileError;
use crate::schedule::plan::Plan;
use crate::target::Target;

/// Emits every kernel of a plan.
pub fn emit_plan(plan: &Plan, target: &Target) -> Result<Artifact, CompileError> {
    let _ = (plan, target);
    Err(CompileError::Internal {
        stage: "wgsl",
        message: "not yet implemented".into(),
    })
}
