//! Fusion of graph nodes into kernels, the execution plan and the memory plan.

pub mod plan;

use crate::error::CompileError;
use crate::graph::Graph;
use crate::target::Target;
use plan::Plan;

/// Schedules a validated graph.
pub fn schedule(graph: &Graph, target: &Target) -> Result<Plan, CompileError> {
    let _ = (graph, target);
    Err(CompileError::Internal {
        stage: "schedule",
        message: "not yet implemented".into(),
    })
}
