//! Fusion of graph nodes into kernels, the execution plan and the memory plan.
//!
//! [`schedule`] groups the graph's nodes into kernels ([`fuse`]), folds movement ops into
//! views ([`view`]), describes each kernel as a [`kernel::KernelSpec`] over a refinement of
//! its index space where every view is strided, builds its tile kernel
//! ([`crate::tile::build`]), orders the launches topologically and assigns storage
//! ([`memory`]). When a view cannot be expressed with strides over any refinement (the
//! cases are listed in [`fuse`]), or a kernel would bind more storage buffers than the
//! target allows, the offending intermediate is materialized and scheduling starts over
//! (each round materializes one more node). Elementwise kernels of one iteration space
//! are then merged into multi-output kernels ([`fuse::merge_elementwise`]); a merged
//! kernel that does not build is taken apart and scheduling starts over. A merged kernel
//! that builds but exceeds a per-kernel resource of the target's lowering (Ascend C's
//! queues and Unified Buffer, checked by [`crate::backend::ascendc::fits`]) loses its
//! last root, which stays a kernel of its own, and the rest is merged again: merging
//! never turns a plan whose single kernels compile into one that does not.

pub mod composites;
mod dedup;
pub mod fuse;
pub mod kernel;
pub mod memory;
pub mod plan;
pub mod view;

use crate::error::CompileError;
use crate::graph::{Graph, NodeId, Op};
use crate::target::Target;
use crate::tile::build::build_kernel;
use fuse::{
    build_spec, group_nodes, merge_elementwise, over_merge_limits, split_candidate, Fusion,
    SpecFailure,
};
use kernel::KernelSpec;
use plan::{BufferId, BufferInfo, BufferRole, Launch, Plan};
use std::collections::{HashMap, HashSet};

/// The fused kernels of a graph (before tile construction) with their final names, in
/// launch order; kernels writing zero elements are left out.
pub fn fuse_graph(
    graph: &Graph,
    target: &Target,
) -> Result<(Fusion, Vec<KernelSpec>), CompileError> {
    fuse_graph_with_origins(graph, target, &[])
}

/// Scheduler switches, for measuring what a pass buys; [`schedule`] uses the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// Merge elementwise kernels of one iteration space into multi-output kernels
    /// ([`fuse::merge_elementwise`]). Default: on.
    pub multi_output: bool,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions { multi_output: true }
    }
}

/// [`fuse_graph`] for a graph rewritten by [`composites::lower_composites`]: kernels are
/// named after the composites their nodes were expanded from (`origins`, per node).
pub fn fuse_graph_with_origins(
    graph: &Graph,
    target: &Target,
    origins: &[Option<&'static str>],
) -> Result<(Fusion, Vec<KernelSpec>), CompileError> {
    fuse_graph_with_options(graph, target, origins, &ScheduleOptions::default())
}

/// [`fuse_graph_with_origins`] with explicit [`ScheduleOptions`].
pub fn fuse_graph_with_options(
    graph: &Graph,
    target: &Target,
    origins: &[Option<&'static str>],
    options: &ScheduleOptions,
) -> Result<(Fusion, Vec<KernelSpec>), CompileError> {
    let mut forced: HashSet<NodeId> = HashSet::new();
    // Roots of multi-output kernels that failed to build: kept in kernels of their own.
    let mut solo: HashSet<NodeId> = HashSet::new();
    // Each round forces one more node or keeps one more root solo, so the loop ends
    // within `2 * graph.len()` rounds.
    for _ in 0..=2 * graph.len() {
        let grouped = group_nodes(graph, &forced);
        let fusion = if options.multi_output {
            merge_elementwise(graph, grouped, target.max_storage_buffers, &solo, &forced)
        } else {
            grouped
        };
        let mut specs = Vec::new();
        let mut retry = None;
        let mut unmerge = false;
        for g in 0..fusion.groups.len() {
            let group = &fusion.groups[g];
            let root = group.root;
            if graph.ty(root).numel() == 0 {
                continue;
            }
            let merged = !group.also.is_empty();
            let spec = match build_spec(graph, &fusion, g, target) {
                // A merged kernel over the limits, or needing a cut: unmerge it instead.
                Ok(s) if merged && over_merge_limits(&s, target.max_storage_buffers) => None,
                Ok(s) => Some(s),
                Err(SpecFailure::Force(_)) if merged => None,
                Err(SpecFailure::Force(n)) => {
                    retry = Some(n);
                    break;
                }
                Err(SpecFailure::Error(e)) => return Err(e),
            };
            let Some(mut spec) = spec else {
                solo.extend(group.also.iter().copied().chain([root]));
                unmerge = true;
                break;
            };
            if !origins.is_empty() {
                spec.name = fuse::base_name_with_origins(graph, &fusion, g, origins);
            }
            spec.name = format!("{}_{}", spec.name, specs.len());
            if merged && !merged_kernel_fits(&spec, target) {
                // Over a per-kernel resource only the backend's lowering measures (Ascend
                // C's queues and Unified Buffer): peel the last root off and merge again.
                solo.insert(root);
                unmerge = true;
                break;
            }
            if spec.buffers.len() > target.max_storage_buffers {
                match split_candidate(graph, &fusion, g, target.max_storage_buffers) {
                    Some(n) => {
                        retry = Some(n);
                        break;
                    }
                    None => {
                        return Err(CompileError::Limit {
                            kernel: spec.name,
                            target: target.kind.to_string(),
                            limit: "max_storage_buffers",
                            needed: spec.buffers.len(),
                            available: target.max_storage_buffers,
                        })
                    }
                }
            }
            specs.push(spec);
        }
        if unmerge {
            continue;
        }
        match retry {
            None => return Ok((fusion, specs)),
            Some(n) => {
                if !forced.insert(n) {
                    return Err(CompileError::Internal {
                        stage: "schedule",
                        message: format!(
                            "node {} was materialized already and still blocks scheduling",
                            graph.node(n).name
                        ),
                    });
                }
            }
        }
    }
    Err(CompileError::Internal {
        stage: "schedule",
        message: "scheduling did not converge".into(),
    })
}

/// Whether a multi-output kernel (within [`over_merge_limits`]) also fits the per-kernel
/// resources of the target's lowering. Ascend C: the tile kernel is built and its vector
/// side lowered ([`crate::backend::ascendc::fits`]: at most 8 VECIN and 8 VECOUT queues,
/// queues and scratch slots within `ub_bytes`); every value a merged kernel keeps live
/// for a later output holds a scratch slot, so a merge of kernels that fit alone may not.
/// WGSL and PTX need nothing more: a merged elementwise kernel has the grid and dtypes
/// of its parts, no shared memory, and its bound buffers are counted already.
fn merged_kernel_fits(spec: &KernelSpec, target: &Target) -> bool {
    if target.kind != crate::target::TargetKind::AscendC {
        return true;
    }
    build_kernel(spec, &spec.name, target)
        .and_then(|k| crate::backend::ascendc::fits(&k, target))
        .is_ok()
}

/// Schedules a validated graph.
pub fn schedule(graph: &Graph, target: &Target) -> Result<Plan, CompileError> {
    schedule_with_options(graph, target, &ScheduleOptions::default())
}

/// [`schedule`] with explicit [`ScheduleOptions`].
pub fn schedule_with_options(
    graph: &Graph,
    target: &Target,
    options: &ScheduleOptions,
) -> Result<Plan, CompileError> {
    // Elementwise composites expanded (they fuse), mean cross-entropy split into token
    // losses, count and mean ([`composites`]); the rest lower as they are.
    let (lowered, origins) = composites::lower_composites(graph)?;
    let graph = &lowered;
    // Ops the graph IR and the interpreter define but the scheduler does not lower yet.
    for n in graph.ids() {
        let node = graph.node(n);
        if matches!(&node.op, Op::Composite(c) if !composites::scheduled(c)) {
            return Err(CompileError::Unsupported {
                target: target.kind.name().to_string(),
                kernel: node.name.clone(),
                what: format!("the `{}` op (not scheduled yet)", node.op.name()),
            });
        }
    }
    let (fusion, specs) = fuse_graph_with_options(graph, target, &origins, options)?;

    // Buffers: every input and parameter, then every other materialized live node.
    let mut buffers: Vec<BufferInfo> = Vec::new();
    let mut buffer_of: HashMap<NodeId, BufferId> = HashMap::new();
    for n in graph.ids() {
        let node = graph.node(n);
        let wanted = match node.op {
            Op::Input | Op::Param => true,
            _ => fusion.live[n.index()] && fusion.has_buffer(graph, n),
        };
        if !wanted {
            continue;
        }
        let role = match &node.op {
            Op::Input => BufferRole::Input {
                name: node.name.clone(),
            },
            Op::Param => BufferRole::Param {
                name: node.name.clone(),
            },
            Op::Constant { value } => BufferRole::Constant { value: *value },
            _ if fusion.is_output[n.index()] => BufferRole::Output {
                name: node.name.clone(),
            },
            _ => BufferRole::Temp,
        };
        let id = BufferId(buffers.len() as u32);
        buffers.push(BufferInfo {
            id,
            node: n,
            dtype: node.ty.dtype,
            shape: node.ty.shape.clone(),
            len: node.ty.numel(),
            role,
            storage: 0,
        });
        buffer_of.insert(n, id);
    }

    if let Some(b) = buffers
        .iter()
        .find(|b| !target.storage_dtypes.contains(&b.dtype))
    {
        let user = specs
            .iter()
            .find(|s| s.buffers.iter().any(|sb| sb.node == b.node))
            .map_or_else(|| "(none)".to_string(), |s| s.name.clone());
        return Err(CompileError::Unsupported {
            target: target.kind.to_string(),
            kernel: user,
            what: format!(
                "{} (buffer `{}`)",
                target
                    .missing_storage(b.dtype)
                    .unwrap_or_else(|| format!("{} storage", b.dtype)),
                graph.node(b.node).name
            ),
        });
    }

    let mut kernels = Vec::new();
    let mut launches = Vec::new();
    for spec in &specs {
        let kernel = build_kernel(spec, &spec.name, target)?;
        let mut args = Vec::new();
        for b in &spec.buffers {
            let id = buffer_of
                .get(&b.node)
                .ok_or_else(|| CompileError::Internal {
                    stage: "schedule",
                    message: format!(
                        "kernel `{}` binds {} which has no buffer",
                        spec.name, b.name
                    ),
                })?;
            if args.contains(id) {
                return Err(CompileError::Internal {
                    stage: "schedule",
                    message: format!("kernel `{}` binds {} twice", spec.name, b.name),
                });
            }
            args.push(*id);
        }
        launches.push(Launch {
            kernel: kernels.len(),
            args,
        });
        kernels.push(kernel);
    }

    let kernels = dedup::dedup_kernels(kernels, &mut launches);
    let storage = memory::assign_storage(&mut buffers, &launches);
    let mut outputs = Vec::new();
    for &o in graph.outputs() {
        let id = buffer_of.get(&o).ok_or_else(|| CompileError::Internal {
            stage: "schedule",
            message: format!("output {} has no buffer", graph.node(o).name),
        })?;
        outputs.push((graph.node(o).name.clone(), *id));
    }
    Ok(Plan {
        kernels,
        buffers,
        launches,
        storage,
        outputs,
    })
}
