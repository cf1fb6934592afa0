//! Tessera's compiler: graph IR in, kernel source out, for WGSL, PTX and Ascend C.
//!
//! Pipeline: [`graph`] (the model as a dataflow graph) -> [`schedule`] (fusion into
//! kernels, execution and memory plan) -> [`tile`] (hardware-neutral block programs) ->
//! [`simt`] + [`backend::wgsl`] / [`backend::ptx`], or [`backend::ascendc`].
//! [`interp`] executes graphs in f64 and tile kernels in f32: the oracle of every test.
//! This crate touches no device and does no file I/O.
#![warn(missing_docs)]

pub mod autodiff;
pub mod backend;
pub mod error;
pub mod graph;
pub mod interp;
pub mod optim;
pub mod ptxvm;
pub mod schedule;
pub mod simt;
pub mod target;
pub mod tile;

/// Directory of the CPU build of the Ascend C API subset (C++17 headers): emitted Ascend C
/// kernels and host code compile against it with
/// `g++ -std=c++17 -DASCENDC_CPU_DEBUG -I <ASCENDC_CPU_INCLUDE>`.
pub const ASCENDC_CPU_INCLUDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ascendc/include");

pub use autodiff::{grad, AutodiffError, GradGraph};
pub use error::CompileError;
pub use graph::{DType, Graph, GraphError, NodeId, TensorType};
pub use schedule::plan::Plan;
pub use target::{Target, TargetKind};

/// Schedules a graph into a [`Plan`] of tile kernels for a target.
pub fn compile(graph: &Graph, target: &Target) -> Result<Plan, CompileError> {
    graph.validate()?;
    schedule::schedule(graph, target)
}

/// Compiles a graph and emits the kernel sources (and host code) for a target.
pub fn compile_and_emit(
    graph: &Graph,
    target: &Target,
) -> Result<(Plan, backend::Artifact), CompileError> {
    let plan = compile(graph, target)?;
    let artifact = backend::emit(&plan, target)?;
    Ok((plan, artifact))
}
