//! Greedy, deterministic fusion of graph nodes into kernels.
//!
//! Movement ops (views) are folded into the indexing of the buffers a kernel reads
//! ([`super::view`]): each load keeps the exact [`FactoredView`] of its chain, and
//! [`build_spec`] iterates the kernel over a *refinement* of its index space (axes split
//! into the sub-axes the views need) over which every load and the store are strided
//! (a reduction's kept axes are scalar index math: there each view refines on its own).
//! Every other node either gets a buffer (it is *materialized*: the root of a kernel, or a
//! leaf) or is fused into the single kernel that consumes it. A node is materialized when
//! it is a graph output, a matmul operand, an elementwise node read by more than one
//! kernel, a reduction or matmul that cannot become the anchor of its consumer's kernel,
//! an elementwise node [`MAX_FUSED_DEPTH`] nodes away from its kernel's root (a longer
//! chain is cut; multi-output merging may join the pieces again), or a node the scheduler
//! *forces* (see below, and a kernel over the storage-buffer limit).
//!
//! A view costs a kernel of its own (a `copy`) only when it is:
//! - a graph output that is a view of a value living in a buffer anyway: an input,
//!   parameter or constant, or a reduce or matmul result that other kernels also read or
//!   that the output broadcasts (the output needs a buffer of its own). A view of
//!   elementwise values is computed by the output's kernel, and a permute/reshape chain of
//!   a reduce or matmul result that only it uses is stored through by that kernel;
//! - a matmul operand that is not a strided (batched) 2-D view: its chain is cut by
//!   materializing the input of one of its reshapes;
//! - a reshape whose new axis boundary cuts a digit at a non-divisible place (`[7, 3]`
//!   transposed and read as `[7, 3]`), or two operands of one elementwise kernel (or the
//!   store and an operand) needing incompatible cuts of the same axis (`6 = 2 x 3` and
//!   `6 = 3 x 2`): no iteration order makes both affine, so the input of a reshape of the
//!   refused chain is materialized;
//! - a slice of an axis that merges axes a permute or broadcast separated, at a place its
//!   digits do not allow ([`FactoredView::slice`]): the slice's input is materialized;
//! - a reduction body operand whose *reduced* axis would need cutting (the reduced axis is
//!   walked by one strided loop), handled the same way;
//! - a matmul result output through a view that cuts its M or N axis (the `[BM, BN]`
//!   tiles cannot be stored through it): the matmul writes a buffer, a copy applies the
//!   view.
//!
//! A matmul epilogue operand that needs a cut does not copy: the matmul is materialized
//! and the epilogue becomes an elementwise kernel of its own.
//!
//! An `iota` leaf is not a buffer but an index expression ([`Expr::Iota`]) of the
//! kernels reading it, seen through its views like a load; it gets a kernel and a buffer
//! of its own only as a graph output, as a matmul or standalone-op operand, or when one
//! of its views is not strided in any order (an iota `[3, 7]` read as `[7, 3]`).
//!
//! Nodes are visited in reverse topological order, so every consumer's kernel is known
//! when a producer is placed. Each kernel has at most one *anchor* (a reduce or a matmul);
//! elementwise nodes before it form the reduction's loop body, elementwise nodes after it
//! (of its output shape, without views in between) form its epilogue. Between a matmul
//! and a reduction, elementwise nodes go to the matmul's epilogue (`matmul_bias_tanh`
//! then `reduce_sum`), which costs no extra kernel. A reduce or matmul result used only
//! by a materialized permute/reshape (an output, or a reshape strides cannot express) is
//! stored by its own kernel through the inverse view instead of being copied.
//!
//! # Multi-output kernels
//!
//! Grouping makes every materialized node the root of a kernel of its own. Afterwards,
//! [`merge_elementwise`] puts several *elementwise* roots of one iteration space into one
//! kernel that stores each of them ([`Group::also`], [`SpecStore`]): kernels without a
//! reduce, matmul or standalone anchor, storing contiguously, whose roots have the same
//! shape. A group joins an earlier merged kernel that it is related to: one whose stored
//! value it reads without a view in between (the value is then computed once and reused
//! in-register: AdamW's `p'` reads `m'` and `v'`, all three stored by one kernel), else
//! one reading a non-scalar buffer it also reads (backward values of one activation). A
//! merge is refused when the merged kernel would bind more than the target's
//! `max_storage_buffers` (WGSL's 8: AdamW's `m'`, `v'` and `p'` read 7 buffers and write
//! 3, so on WGSL `p'` stays a kernel of its own after `m'` and `v'`), read more than
//! [`MAX_MERGED_READS`] buffers or store more than [`MAX_MERGED_STORES`] values, or when
//! the group depends on the merged kernel through a third kernel (no launch order would
//! exist). A temporary that only the merged kernel itself read (materialized because two
//! of the merged kernels read it) is computed in-register and no longer stored. A merged
//! kernel launches where its last root did, unless a kernel it must precede comes first
//! in a topological order. Its spec builds each stored value as an
//! expression over the shared index space (one expression arena: shared subexpressions
//! and the other stored values are computed once), binds the read buffers, then one
//! written buffer per stored value (the root's last); its name lists each op once and the
//! number of values stored (`mul_add_sqrt_div_x3`). A merged kernel that fails to build
//! (a view needing a cut, more loads than estimated) is taken apart: the scheduler keeps
//! its roots in kernels of their own and schedules again. What a merged kernel needs of
//! a target's per-kernel resources beyond bound buffers and loads is only known once it
//! is lowered (Ascend C: a Unified-Buffer slot for every value kept live for a later
//! output, at most 8 VECIN / 8 VECOUT queues); the scheduler checks it
//! ([`crate::backend::ascendc::fits`]) and, when it does not fit, keeps the merged
//! kernel's last root in a kernel of its own and merges the rest again. Everything is decided in node
//! order with ordered sets: the result is deterministic.

use super::kernel::{Expr, ExprId, KernelKind, KernelSpec, SpecBuffer, SpecStore};
use super::view::{iota_view, store_view, FactoredView, Refinement, StridedView, ViewOp};
use crate::error::CompileError;
use crate::graph::{matmul_dims, BinaryOp, Graph, NodeId, Op};
use crate::target::Target;
use crate::tile::Access;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// True for ops lowered by a kernel of their own with a dedicated tile builder
/// ([`crate::tile::ops`]): composites other than the elementwise ones, gather,
/// scatter-add and concat. Such a node anchors its kernel; its operands are read from
/// buffers through strided views (like matmul operands) and nothing is fused into it.
pub fn is_standalone(op: &Op) -> bool {
    match op {
        Op::Composite(c) => !c.is_elementwise(),
        Op::Gather { .. } | Op::ScatterAdd { .. } | Op::Concat { .. } => true,
        _ => false,
    }
}

/// A group of nodes computed by one kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The node whose buffer the kernel writes (the group's last node).
    pub root: NodeId,
    /// The node whose index space the kernel iterates: the root, or, when the root is a
    /// materialized permute/reshape chain of a value `s` that only it uses, `s` itself
    /// (the kernel stores `s` through the inverse view, no copy kernel).
    pub compute: NodeId,
    /// The reduce or matmul of the kernel, if any.
    pub anchor: Option<NodeId>,
    /// Non-view nodes computed by the kernel (root and anchor included), ascending.
    pub members: Vec<NodeId>,
    /// Multi-output elementwise kernels ([`merge_elementwise`]): further materialized
    /// nodes the kernel stores besides its root, ascending (all before the root).
    pub also: Vec<NodeId>,
}

/// The result of grouping: which kernel computes which node, and which nodes have buffers.
#[derive(Clone, Debug)]
pub struct Fusion {
    /// Groups in topological order of their roots (the launch order).
    pub groups: Vec<Group>,
    /// For each node: the group computing it (`None` for leaves, transparent views and
    /// dead nodes).
    pub group_of: Vec<Option<usize>>,
    /// Constants that need a buffer (graph outputs, matmul operands).
    pub const_buffer: Vec<bool>,
    /// Views that are materialized (graph outputs or forced): kernel roots.
    pub root_view: Vec<bool>,
    /// Graph outputs.
    pub is_output: Vec<bool>,
    /// Nodes used by a live kernel (or outputs).
    pub live: Vec<bool>,
}

impl Fusion {
    /// Whether a node's value lives in a buffer (leaf inputs and params, buffer constants,
    /// kernel roots).
    pub fn has_buffer(&self, graph: &Graph, n: NodeId) -> bool {
        match graph.node(n).op {
            Op::Input | Op::Param => true,
            Op::Constant { .. } => self.const_buffer[n.index()],
            _ => self.group_of[n.index()].is_some_and(|g| {
                let group = &self.groups[g];
                group.root == n || group.also.contains(&n)
            }),
        }
    }

    /// Whether `n` is a view that kernels see through (not materialized).
    fn transparent_view(&self, graph: &Graph, n: NodeId) -> bool {
        graph.node(n).op.is_view() && !self.root_view[n.index()]
    }
}

/// Movement ops from a materialized view down to a value, outermost first, each with the
/// shape of its input.
type ViewChain = Vec<(ViewOp, Vec<usize>)>;

/// A consumer of a node, seen through transparent views.
#[derive(Clone, Copy, Debug)]
struct Consumer {
    node: NodeId,
    via_view: bool,
}

struct Grouper<'g> {
    graph: &'g Graph,
    users: Vec<Vec<NodeId>>,
    forced: &'g HashSet<NodeId>,
    fusion: Fusion,
    /// Member of its group's "output index space": reached from the root through
    /// elementwise nodes only, without views.
    aligned: Vec<bool>,
    /// Per node in a group: the longest chain of members from it to its group's root
    /// (0 at the root), bounded by [`MAX_FUSED_DEPTH`].
    depth: Vec<usize>,
}

/// The longest chain of elementwise nodes fused into one kernel; a longer chain is cut
/// into several kernels. The kernel builders walk a kernel's expression recursively, so
/// this bounds their stack use (a machine-made graph of 20,000 chained ops is valid), and
/// a kernel of more ops than this gains nothing from fusion in memory traffic.
pub const MAX_FUSED_DEPTH: usize = 256;

impl<'g> Grouper<'g> {
    fn consumers(&self, n: NodeId) -> Vec<Consumer> {
        let mut out: Vec<Consumer> = Vec::new();
        let mut stack: Vec<(NodeId, bool)> =
            self.users[n.index()].iter().map(|&u| (u, false)).collect();
        let mut seen = HashSet::new();
        while let Some((u, via)) = stack.pop() {
            if !seen.insert((u, via)) {
                continue;
            }
            if self.fusion.transparent_view(self.graph, u) {
                stack.extend(self.users[u.index()].iter().map(|&w| (w, true)));
            } else if self.fusion.group_of[u.index()].is_some() {
                match out.iter_mut().find(|c| c.node == u) {
                    Some(c) => c.via_view |= via,
                    None => out.push(Consumer {
                        node: u,
                        via_view: via,
                    }),
                }
            }
        }
        out.sort_by_key(|c| c.node);
        out
    }

    /// The node a matmul operand reads, through transparent views.
    fn operand_source(&self, mut n: NodeId) -> NodeId {
        while self.fusion.transparent_view(self.graph, n) {
            n = self.graph.node(n).inputs[0];
        }
        n
    }

    /// True when `n` ends a chain of single-use elementwise nodes (no views) that starts at
    /// a reduce or matmul which could take the chain as its epilogue.
    fn heads_anchor_chain(&self, n: NodeId) -> bool {
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            let mut inputs = self.graph.node(x).inputs.clone();
            inputs.dedup();
            for p in inputs {
                if self.fusion.is_output[p.index()] || self.forced.contains(&p) {
                    continue;
                }
                if self.users[p.index()] != [x] {
                    continue;
                }
                match self.graph.node(p).op {
                    Op::MatMul { .. } | Op::Reduce { .. } => return true,
                    ref op if op.is_elementwise() => stack.push(p),
                    _ => {}
                }
            }
        }
        false
    }

    /// The permute/reshape chain from `n` to a materialized view that is its only user,
    /// outermost first, each with its input shape; `None` if there is no such chain.
    fn bijective_chain(&self, n: NodeId) -> Option<(NodeId, ViewChain)> {
        let mut chain = Vec::new();
        let mut x = n;
        loop {
            let [u] = self.users[x.index()][..] else {
                return None;
            };
            let op = ViewOp::of(&self.graph.node(u).op)?;
            if !op.is_bijective() {
                return None;
            }
            chain.push((op, self.graph.ty(x).shape.clone()));
            if self.fusion.root_view[u.index()] {
                chain.reverse();
                return Some((u, chain));
            }
            x = u;
        }
    }

    /// Lets a reduce or matmul result (or the head of a chain ending at one), used only by
    /// a materialized permute/reshape chain, be stored directly through the inverse view
    /// by the view's kernel. Returns whether `n` joined that kernel.
    fn store_through_view(&mut self, n: NodeId, consumers: &[Consumer]) -> bool {
        let [c] = consumers else {
            return false;
        };
        let Some(g) = self.fusion.group_of[c.node.index()] else {
            return false;
        };
        let group = &self.fusion.groups[g];
        if group.root != c.node || group.compute != group.root || group.members.len() != 1 {
            return false;
        }
        let wanted = match self.graph.node(n).op {
            Op::Reduce { .. } | Op::MatMul { .. } => true,
            // Their builders write through `KernelSpec::store` (any strided view).
            Op::Composite(
                crate::graph::CompositeOp::Attention { .. }
                | crate::graph::CompositeOp::AttentionGrad { .. },
            ) => true,
            ref op if op.is_elementwise() => self.heads_anchor_chain(n),
            _ => false,
        };
        if !wanted {
            return false;
        }
        let Some((v, chain)) = self.bijective_chain(n) else {
            return false;
        };
        if v != c.node || store_view(v, &self.graph.ty(v).shape, &chain).is_none() {
            return false;
        }
        self.join(n, g);
        let group = &mut self.fusion.groups[g];
        group.compute = n;
        let op = &self.graph.node(n).op;
        if matches!(op, Op::Reduce { .. } | Op::MatMul { .. }) || is_standalone(op) {
            group.anchor = Some(n);
        }
        self.aligned[n.index()] = true;
        true
    }

    /// An `iota` leaf is an index expression inside the kernels reading it; it gets a
    /// kernel (and a buffer) of its own only when it is a graph output, forced (a view
    /// of it that strides cannot express), or an operand of a matmul or standalone op.
    fn place_iota(&mut self, n: NodeId) {
        let consumers = self.consumers(n);
        let feeds_operand = consumers.iter().any(|c| {
            let op = &self.graph.node(c.node).op;
            matches!(op, Op::MatMul { .. }) || is_standalone(op)
        });
        if self.fusion.is_output[n.index()] || self.forced.contains(&n) || feeds_operand {
            self.fusion.live[n.index()] = true;
            self.new_group(n);
        }
    }

    fn new_group(&mut self, n: NodeId) {
        let op = &self.graph.node(n).op;
        let anchor =
            (matches!(op, Op::Reduce { .. } | Op::MatMul { .. }) || is_standalone(op)).then_some(n);
        self.fusion.groups.push(Group {
            root: n,
            compute: n,
            anchor,
            members: vec![n],
            also: Vec::new(),
        });
        self.fusion.group_of[n.index()] = Some(self.fusion.groups.len() - 1);
        // A materialized view's index space is not its input's: nothing behind it is
        // aligned with the output.
        self.aligned[n.index()] = !op.is_view();
    }

    fn join(&mut self, n: NodeId, g: usize) {
        self.fusion.group_of[n.index()] = Some(g);
        self.fusion.groups[g].members.push(n);
    }

    fn place(&mut self, n: NodeId) {
        let node = self.graph.node(n);
        if let Op::Iota { .. } = node.op {
            self.place_iota(n);
            return;
        }
        if node.op.is_leaf() || self.fusion.transparent_view(self.graph, n) {
            return;
        }
        let consumers = self.consumers(n);
        let is_output = self.fusion.is_output[n.index()];
        if consumers.is_empty() && !is_output {
            return; // dead
        }
        self.fusion.live[n.index()] = true;
        let feeds_matmul = consumers.iter().any(|c| {
            let op = &self.graph.node(c.node).op;
            matches!(op, Op::MatMul { .. }) || is_standalone(op)
        });
        let materialize =
            is_output || self.forced.contains(&n) || feeds_matmul || node.op.is_view();
        let mut groups: Vec<usize> = consumers
            .iter()
            .filter_map(|c| self.fusion.group_of[c.node.index()])
            .collect();
        groups.sort_unstable();
        groups.dedup();
        if !materialize && self.store_through_view(n, &consumers) {
            // Joined the view's group as its compute root.
        } else if materialize || groups.len() != 1 {
            self.new_group(n);
        } else {
            let g = groups[0];
            let anchor = self.fusion.groups[g].anchor;
            match node.op {
                ref op if op.is_elementwise() => {
                    let aligned = consumers.iter().all(|c| {
                        !c.via_view && self.aligned[c.node.index()] && Some(c.node) != anchor
                    });
                    // Outside the consumer's output index space (a reduction body, or
                    // behind a broadcast) an anchor chain would be recomputed per element
                    // or would leave its anchor unfused: it becomes its own kernel, the
                    // epilogue of that anchor, at no extra kernel.
                    let depth = 1 + consumers
                        .iter()
                        .filter(|c| self.fusion.group_of[c.node.index()] == Some(g))
                        .map(|c| self.depth[c.node.index()])
                        .max()
                        .unwrap_or(0);
                    if (!aligned && self.heads_anchor_chain(n)) || depth > MAX_FUSED_DEPTH {
                        self.new_group(n);
                    } else {
                        self.join(n, g);
                        self.aligned[n.index()] = aligned;
                        self.depth[n.index()] = depth;
                    }
                }
                Op::Reduce { .. } | Op::MatMul { .. } => {
                    let fits = anchor.is_none()
                        && consumers.iter().all(|c| {
                            !c.via_view
                                && self.aligned[c.node.index()]
                                && self.graph.node(c.node).op.is_elementwise()
                        });
                    if fits {
                        self.join(n, g);
                        self.fusion.groups[g].anchor = Some(n);
                        self.aligned[n.index()] = true;
                    } else {
                        self.new_group(n);
                    }
                }
                _ => self.new_group(n),
            }
        }
        let op = &self.graph.node(n).op;
        if matches!(op, Op::MatMul { .. }) || is_standalone(op) {
            for &x in &self.graph.node(n).inputs {
                let s = self.operand_source(x);
                if let Op::Constant { .. } = self.graph.node(s).op {
                    self.fusion.const_buffer[s.index()] = true;
                }
            }
        }
    }
}

/// Groups the nodes of a validated graph into kernels; `forced` nodes are materialized.
pub fn group_nodes(graph: &Graph, forced: &HashSet<NodeId>) -> Fusion {
    let len = graph.len();
    let mut is_output = vec![false; len];
    for &o in graph.outputs() {
        is_output[o.index()] = true;
    }
    let mut users = graph.users();
    for u in &mut users {
        u.dedup();
    }
    let root_view = graph
        .ids()
        .map(|n| graph.node(n).op.is_view() && (is_output[n.index()] || forced.contains(&n)))
        .collect();
    let mut const_buffer = vec![false; len];
    for &o in graph.outputs() {
        if let Op::Constant { .. } = graph.node(o).op {
            const_buffer[o.index()] = true;
        }
    }
    let mut gr = Grouper {
        graph,
        users,
        forced,
        fusion: Fusion {
            groups: Vec::new(),
            group_of: vec![None; len],
            const_buffer,
            root_view,
            is_output: is_output.clone(),
            live: is_output,
        },
        aligned: vec![false; len],
        depth: vec![0; len],
    };
    for n in graph.ids().collect::<Vec<_>>().into_iter().rev() {
        gr.place(n);
    }
    // Liveness of leaves and views: used by some live node.
    for n in graph.ids().collect::<Vec<_>>().into_iter().rev() {
        if gr.fusion.live[n.index()] {
            for &i in &graph.node(n).inputs {
                gr.fusion.live[i.index()] = true;
            }
        }
    }
    // Order groups by root (topological), members ascending.
    let mut fusion = gr.fusion;
    let mut order: Vec<usize> = (0..fusion.groups.len()).collect();
    order.sort_by_key(|&g| fusion.groups[g].root);
    let mut remap = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new;
    }
    let mut groups: Vec<Group> = order.iter().map(|&g| fusion.groups[g].clone()).collect();
    for g in &mut groups {
        g.members.sort_unstable();
    }
    fusion.groups = groups;
    for g in fusion.group_of.iter_mut().flatten() {
        *g = remap[*g];
    }
    fusion
}

/// Why building a kernel spec stopped.
#[derive(Debug)]
pub enum SpecFailure {
    /// A view is not expressible with strides: materialize this node and schedule again.
    Force(NodeId),
    /// A real error.
    Error(CompileError),
}

impl From<CompileError> for SpecFailure {
    fn from(e: CompileError) -> Self {
        SpecFailure::Error(e)
    }
}

fn internal(message: String) -> SpecFailure {
    SpecFailure::Error(CompileError::Internal {
        stage: "schedule",
        message,
    })
}

/// Index space an expression is built over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ctx {
    /// The output (elementwise kernels, epilogues).
    Out,
    /// The reduction input (reduction bodies).
    Body,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum ExprKey {
    Load(usize, FactoredView, Ctx),
    Iota(FactoredView, crate::graph::DType, Ctx),
    Const(u64, crate::graph::DType),
    Acc,
    Unary(crate::graph::UnaryOp, ExprId),
    Binary(BinaryOp, ExprId, ExprId),
    Compare(crate::graph::CompareOp, ExprId, ExprId),
    Select(ExprId, ExprId, ExprId),
    Cast(ExprId, crate::graph::DType),
}

struct SpecBuilder<'a> {
    graph: &'a Graph,
    fusion: &'a Fusion,
    /// Which matmul operand views the target reads in place.
    target: &'a Target,
    group: usize,
    buffers: Vec<SpecBuffer>,
    buffer_of: HashMap<NodeId, usize>,
    exprs: Vec<Expr>,
    interned: HashMap<ExprKey, ExprId>,
    memo: HashMap<(NodeId, Vec<NodeId>, Ctx), ExprId>,
    /// Every load, in creation order, with its exact view (placed into the expression
    /// once the kernel's refined index space is known).
    leaves: Vec<Leaf>,
}

/// A load (or an iota) of a kernel before its index space is refined.
struct Leaf {
    expr: ExprId,
    /// The buffer read (unused for an iota).
    buffer: usize,
    /// `Some(dtype)` for an iota leaf (no buffer: its view's offset is the value).
    iota: Option<crate::graph::DType>,
    view: FactoredView,
    /// View nodes between the kernel's expression and the buffer, outermost first.
    path: Vec<NodeId>,
    ctx: Ctx,
}

impl Leaf {
    /// The leaf's expression once its strided view is known.
    fn expr_with(&self, view: StridedView) -> Expr {
        match self.iota {
            Some(dtype) => Expr::Iota { view, dtype },
            None => Expr::Load {
                buffer: self.buffer,
                view,
            },
        }
    }
}

impl<'a> SpecBuilder<'a> {
    fn buffer(&mut self, n: NodeId, access: Access) -> usize {
        if let Some(&i) = self.buffer_of.get(&n) {
            return i;
        }
        let node = self.graph.node(n);
        self.buffers.push(SpecBuffer {
            node: n,
            name: node.name.clone(),
            dtype: node.ty.dtype,
            shape: node.ty.shape.clone(),
            access,
        });
        self.buffer_of.insert(n, self.buffers.len() - 1);
        self.buffers.len() - 1
    }

    fn intern(&mut self, key: ExprKey, expr: Expr) -> ExprId {
        if let Some(&id) = self.interned.get(&key) {
            return id;
        }
        self.exprs.push(expr);
        let id = ExprId(self.exprs.len() as u32 - 1);
        self.interned.insert(key, id);
        id
    }

    /// The view of `n`'s buffer seen through `path` (view nodes, outermost first).
    fn view(&self, n: NodeId, path: &[NodeId]) -> Result<FactoredView, SpecFailure> {
        self.view_from(
            n,
            FactoredView::contiguous(n, &self.graph.ty(n).shape),
            path,
        )
    }

    /// True when `n` is an `iota` leaf computed by index arithmetic where it is read (it
    /// has no buffer, or this is its own kernel).
    fn inline_iota(&self, n: NodeId) -> bool {
        matches!(self.graph.node(n).op, Op::Iota { .. })
            && (!self.fusion.has_buffer(self.graph, n)
                || self.fusion.group_of[n.index()] == Some(self.group))
    }

    /// `view` (of node `n`) seen through `path` (view nodes, outermost first).
    fn view_from(
        &self,
        n: NodeId,
        mut view: FactoredView,
        path: &[NodeId],
    ) -> Result<FactoredView, SpecFailure> {
        for &v in path.iter().rev() {
            let op = ViewOp::of(&self.graph.node(v).op)
                .ok_or_else(|| internal(format!("{v} in a view path is not a view")))?;
            match view.apply(&op) {
                Some(next) => view = next,
                None => {
                    // A reshape cutting a digit at a non-divisible place: materialize the
                    // view's own input contiguously; the view then applies to that
                    // buffer (always expressible).
                    let below = self.graph.node(v).inputs[0];
                    if below == n
                        && self.inline_iota(n)
                        && self.fusion.group_of[n.index()].is_none()
                    {
                        // A view of an iota that strides cannot express: the iota gets a
                        // kernel and a buffer of its own.
                        return Err(SpecFailure::Force(n));
                    }
                    if self.graph.node(below).op.is_leaf() || below == n {
                        return Err(internal(format!(
                            "view {} of contiguous buffer {} is not expressible",
                            self.graph.node(v).name,
                            self.graph.node(below).name
                        )));
                    }
                    return Err(SpecFailure::Force(below));
                }
            }
        }
        Ok(view)
    }

    /// The node to materialize so that a load of `n` through `path` becomes acceptable:
    /// the input of a reshape of the path (innermost first) from whose contiguous buffer
    /// the remaining ops give a view that `accept`s. The outermost reshape's input always
    /// qualifies when `accept` takes strided views: a reshape of a contiguous buffer and
    /// the permutes and broadcasts after it are strided.
    fn relief(
        &self,
        n: NodeId,
        path: &[NodeId],
        accept: impl Fn(&FactoredView) -> bool,
    ) -> SpecFailure {
        for i in (0..path.len()).rev() {
            let v = path[i];
            if !matches!(self.graph.node(v).op, Op::Reshape { .. }) {
                continue;
            }
            let below = self.graph.node(v).inputs[0];
            if below == n {
                continue;
            }
            let mut view = Some(FactoredView::contiguous(below, &self.graph.ty(below).shape));
            for &w in path[..=i].iter().rev() {
                view = view
                    .and_then(|x| ViewOp::of(&self.graph.node(w).op).and_then(|op| x.apply(&op)));
            }
            if view.is_some_and(|x| accept(&x)) {
                return SpecFailure::Force(below);
            }
        }
        if self.inline_iota(n) && self.fusion.group_of[n.index()].is_none() {
            return SpecFailure::Force(n);
        }
        internal(format!(
            "no materialization makes the view of {} through {} node(s) expressible",
            self.graph.node(n).name,
            path.len()
        ))
    }

    fn load(&mut self, n: NodeId, path: &[NodeId], ctx: Ctx) -> Result<ExprId, SpecFailure> {
        let view = self.view(n, path)?;
        let buffer = self.buffer(n, Access::Read);
        let before = self.exprs.len();
        // The expression's strided view is a placeholder until `refine` runs.
        let placeholder = StridedView::contiguous(n, &view.shape);
        let e = self.intern(
            ExprKey::Load(buffer, view.clone(), ctx),
            Expr::Load {
                buffer,
                view: placeholder,
            },
        );
        if self.exprs.len() > before {
            self.leaves.push(Leaf {
                expr: e,
                buffer,
                iota: None,
                view,
                path: path.to_vec(),
                ctx,
            });
        }
        Ok(e)
    }

    /// An `iota` leaf counting along `axis`, seen through `path`: an index expression.
    fn iota(
        &mut self,
        n: NodeId,
        axis: usize,
        path: &[NodeId],
        ctx: Ctx,
    ) -> Result<ExprId, SpecFailure> {
        let ty = self.graph.ty(n);
        let dtype = ty.dtype;
        let view = self.view_from(n, iota_view(n, &ty.shape, axis), path)?;
        let before = self.exprs.len();
        let placeholder = StridedView::contiguous(n, &view.shape);
        let e = self.intern(
            ExprKey::Iota(view.clone(), dtype, ctx),
            Expr::Iota {
                view: placeholder,
                dtype,
            },
        );
        if self.exprs.len() > before {
            self.leaves.push(Leaf {
                expr: e,
                buffer: usize::MAX,
                iota: Some(dtype),
                view,
                path: path.to_vec(),
                ctx,
            });
        }
        Ok(e)
    }

    fn build(&mut self, n: NodeId, path: &[NodeId], ctx: Ctx) -> Result<ExprId, SpecFailure> {
        let key = (n, path.to_vec(), ctx);
        if let Some(&e) = self.memo.get(&key) {
            return Ok(e);
        }
        let node = self.graph.node(n);
        let dtype = node.ty.dtype;
        let in_group = self.fusion.group_of[n.index()] == Some(self.group);
        let e = match &node.op {
            Op::Constant { value } => self.intern(
                ExprKey::Const(value.to_bits(), dtype),
                Expr::Const {
                    value: *value,
                    dtype,
                },
            ),
            Op::Iota { axis } if self.inline_iota(n) => self.iota(n, *axis, path, ctx)?,
            Op::Input | Op::Param => self.load(n, path, ctx)?,
            op if op.is_view() && (in_group || !self.fusion.root_view[n.index()]) => {
                let mut p = path.to_vec();
                p.push(n);
                self.build(node.inputs[0], &p, ctx)?
            }
            _ if !in_group => self.load(n, path, ctx)?,
            Op::Reduce { .. } | Op::MatMul { .. } => {
                if self.fusion.groups[self.group].anchor != Some(n) || !path.is_empty() {
                    return Err(internal(format!(
                        "{} is fused but is not its kernel's anchor",
                        node.name
                    )));
                }
                self.intern(ExprKey::Acc, Expr::Acc { dtype })
            }
            Op::Unary { op } => {
                let x = self.build(node.inputs[0], path, ctx)?;
                self.intern(ExprKey::Unary(*op, x), Expr::Unary { op: *op, x, dtype })
            }
            Op::Binary { op } => {
                let a = self.build(node.inputs[0], path, ctx)?;
                let b = self.build(node.inputs[1], path, ctx)?;
                self.intern(
                    ExprKey::Binary(*op, a, b),
                    Expr::Binary {
                        op: *op,
                        a,
                        b,
                        dtype,
                    },
                )
            }
            Op::Compare { op } => {
                let a = self.build(node.inputs[0], path, ctx)?;
                let b = self.build(node.inputs[1], path, ctx)?;
                self.intern(ExprKey::Compare(*op, a, b), Expr::Compare { op: *op, a, b })
            }
            Op::Cast { to } => {
                let x = self.build(node.inputs[0], path, ctx)?;
                self.intern(ExprKey::Cast(x, *to), Expr::Cast { x, to: *to })
            }
            Op::Select => {
                let cond = self.build(node.inputs[0], path, ctx)?;
                let a = self.build(node.inputs[1], path, ctx)?;
                let b = self.build(node.inputs[2], path, ctx)?;
                self.intern(
                    ExprKey::Select(cond, a, b),
                    Expr::Select { cond, a, b, dtype },
                )
            }
            op => {
                return Err(internal(format!(
                    "unexpected {} node {} inside a kernel",
                    op.name(),
                    node.name
                )))
            }
        };
        self.memo.insert(key, e);
        Ok(e)
    }

    /// Chooses the kernel's refined index space and makes every load and the store a
    /// strided view over it.
    ///
    /// Elementwise kernels may split any output axis, matmul kernels none (their epilogue
    /// runs on `[BM, BN]` tiles): the store is admitted into one common [`Refinement`]
    /// first, then the loads in creation order. A load that cannot join is made
    /// expressible by materializing part of its view chain ([`Self::relief`]), except in a
    /// matmul epilogue, where the matmul is materialized instead (the epilogue then becomes
    /// an elementwise kernel of its own, free to refine); a matmul result stored through a
    /// view that would split its tile axes is materialized and copied.
    ///
    /// A reduction addresses its kept axes with scalar index math per program, so each
    /// load and the store get a refinement of their own (the spec's shapes stay unrefined,
    /// each view's shape is a refinement of its index space); only the reduced axis, walked
    /// by one strided loop, may not be split.
    fn refine(
        &mut self,
        kind: KernelKind,
        out_shape: Vec<usize>,
        store: FactoredView,
        compute: NodeId,
    ) -> Result<(KernelKind, Vec<usize>, StridedView), SpecFailure> {
        let out_rank = out_shape.len();
        let ident = |rank: usize| -> Vec<Option<usize>> { (0..rank).map(Some).collect() };
        let unrefinable =
            |what: &str| internal(format!("{what} is not strided over its refinement"));
        if let KernelKind::Reduce { in_shape, axis, .. } = &kind {
            let body_space = |in_shape: &[usize]| {
                let mut r = Refinement::new(in_shape);
                r.fix(*axis);
                r
            };
            let mut views = Vec::with_capacity(self.leaves.len());
            for leaf in &self.leaves {
                let (mut r, map) = match leaf.ctx {
                    Ctx::Body => (body_space(in_shape), ident(in_shape.len())),
                    Ctx::Out => (Refinement::new(&out_shape), ident(out_rank)),
                };
                if !r.admit(&leaf.view, &map) {
                    let fresh = r.clone();
                    return Err(
                        self.relief(leaf.view.node, &leaf.path, |v| fresh.clone().admit(v, &map))
                    );
                }
                let view = leaf
                    .view
                    .refine(&r.view_pieces(&leaf.view.shape, &map))
                    .ok_or_else(|| unrefinable("a load"))?;
                views.push(view);
            }
            for (leaf, view) in self.leaves.iter().zip(views) {
                self.exprs[leaf.expr.index()] = leaf.expr_with(view);
            }
            let mut r = Refinement::new(&out_shape);
            if !r.admit(&store, &ident(out_rank)) {
                return Err(internal("a reduction's store view refused".into()));
            }
            let store = store
                .refine(&r.view_pieces(&out_shape, &ident(out_rank)))
                .ok_or_else(|| unrefinable("the store"))?;
            return Ok((kind, out_shape, store));
        }
        let matmul = matches!(kind, KernelKind::MatMul { .. });
        let map = ident(out_rank);
        let mut r = Refinement::new(&out_shape);
        if matmul {
            for a in 0..out_rank {
                r.fix(a);
            }
        }
        if !r.admit(&store, &map) {
            if compute == self.fusion.groups[self.group].root {
                return Err(internal(format!(
                    "contiguous store of {} refused",
                    self.graph.node(compute).name
                )));
            }
            return Err(SpecFailure::Force(compute));
        }
        for leaf in &self.leaves {
            if leaf.ctx != Ctx::Out {
                return Err(internal("a reduction body load outside a reduction".into()));
            }
            if r.admit(&leaf.view, &map) {
                continue;
            }
            if matmul {
                let anchor = self.fusion.groups[self.group]
                    .anchor
                    .ok_or_else(|| internal("matmul kernel without anchor".into()))?;
                return Err(SpecFailure::Force(anchor));
            }
            return Err(self.relief(leaf.view.node, &leaf.path, |v| r.clone().admit(v, &map)));
        }
        let store = store
            .refine(&r.view_pieces(&out_shape, &map))
            .ok_or_else(|| unrefinable("the store"))?;
        for leaf in &self.leaves {
            let view = leaf
                .view
                .refine(&r.view_pieces(&leaf.view.shape, &map))
                .ok_or_else(|| unrefinable("a load"))?;
            self.exprs[leaf.expr.index()] = leaf.expr_with(view);
        }
        Ok((kind, store.shape.clone(), store))
    }

    /// A matmul (`dot`) or standalone-op operand: a strided view of a buffer, for a matmul
    /// one whose matrices the target reads in place ([`Target::reads_dot_operand`]).
    fn operand(&mut self, x: NodeId, dot: bool) -> Result<(usize, StridedView), SpecFailure> {
        let mut path = Vec::new();
        let mut s = x;
        while self.fusion.transparent_view(self.graph, s) {
            path.push(s);
            s = self.graph.node(s).inputs[0];
        }
        if !self.fusion.has_buffer(self.graph, s) {
            return Err(internal(format!(
                "matmul operand {} has no buffer",
                self.graph.node(s).name
            )));
        }
        let target = self.target;
        // An empty operand is never read: any layout will do.
        let fits = |v: &StridedView| match v.strides[..] {
            _ if v.shape.contains(&0) => true,
            [.., rows, columns] if dot => target.reads_dot_operand([rows, columns]),
            _ => true,
        };
        let accept = |v: &FactoredView| v.to_strided().is_some_and(|v| fits(&v));
        let view = self.view(s, &path)?;
        match view.to_strided() {
            // A buffer read as it is laid out: copying it would change nothing (the
            // backend names what it cannot read).
            Some(view) if fits(&view) || path.is_empty() => {
                let buffer = self.buffer(s, Access::Read);
                Ok((buffer, view))
            }
            // The Dot tiles need strided operands (in a layout the target reads):
            // materialize part of the chain, or else the operand itself.
            _ => match self.relief(s, &path, accept) {
                SpecFailure::Error(_) if !path.is_empty() => Err(SpecFailure::Force(x)),
                relief => Err(relief),
            },
        }
    }
}

/// The base of a kernel's name: its anchor and fused op names (`matmul_bias_tanh`).
fn base_name(graph: &Graph, fusion: &Fusion, g: usize) -> String {
    base_name_with_origins(graph, fusion, g, &[])
}

/// `base_name` for a graph rewritten by [`super::composites::lower_composites`]: a node
/// expanded from a composite contributes the composite's name (`origins[node]`, e.g.
/// `gelu`: `matmul_bias_gelu`) instead of its own op's, once per kernel.
pub fn base_name_with_origins(
    graph: &Graph,
    fusion: &Fusion,
    g: usize,
    origins: &[Option<&'static str>],
) -> String {
    let group = &fusion.groups[g];
    let origin = |n: NodeId| origins.get(n.index()).copied().flatten();
    let mut parts: Vec<String> = Vec::new();
    if let Some(a) = group.anchor {
        let part = origin(a).unwrap_or_else(|| match &graph.node(a).op {
            // The forward pass, told apart from the backward kernels by name.
            Op::Composite(crate::graph::CompositeOp::Attention { .. }) => "attention_fwd",
            op => op.name(),
        });
        parts.push(part.to_string());
    }
    let is_matmul = group
        .anchor
        .is_some_and(|a| matches!(graph.node(a).op, Op::MatMul { .. }));
    for &n in &group.members {
        let node = graph.node(n);
        if let Some(tag) = origin(n) {
            if Some(n) != group.anchor && !parts.iter().any(|p| p == tag) {
                parts.push(tag.to_string());
            }
            continue;
        }
        let part = match &node.op {
            Op::Binary { op: BinaryOp::Add } if is_matmul => {
                let viewed = node
                    .inputs
                    .iter()
                    .any(|&i| matches!(graph.node(i).op, Op::Broadcast { .. }));
                if viewed {
                    "bias"
                } else {
                    "add"
                }
            }
            op if op.is_elementwise() => op.name(),
            _ => continue,
        };
        // A multi-output kernel repeats its ops per stored value: each op named once.
        let repeated = if group.also.is_empty() {
            parts.last().map(String::as_str) == Some(part)
        } else {
            parts.iter().any(|p| p == part)
        };
        if !repeated {
            parts.push(part.to_string());
        }
    }
    if parts.is_empty() {
        parts.push("copy".into());
    }
    const MAX_PARTS: usize = 4;
    parts.truncate(MAX_PARTS);
    if !group.also.is_empty() {
        // How many values it stores: `mul_add_sqrt_div_x3` (AdamW's m', v', p').
        parts.push(format!("x{}", group.also.len() + 1));
    }
    parts.join("_")
}

/// Builds the spec of group `g` (its name is the base name; the caller adds the index).
pub fn build_spec(
    graph: &Graph,
    fusion: &Fusion,
    g: usize,
    target: &Target,
) -> Result<KernelSpec, SpecFailure> {
    let group = &fusion.groups[g];
    let root = group.root;
    let compute = group.compute;
    let mut b = SpecBuilder {
        graph,
        fusion,
        target,
        group: g,
        buffers: Vec::new(),
        buffer_of: HashMap::new(),
        exprs: Vec::new(),
        interned: HashMap::new(),
        memo: HashMap::new(),
        leaves: Vec::new(),
    };
    // A multi-output kernel's further values, built first (node order); the root's
    // value reuses their expressions where it reads them.
    let mut also_values = Vec::with_capacity(group.also.len());
    for &n in &group.also {
        also_values.push((n, b.build(n, &[], Ctx::Out)?));
    }
    if !group.also.is_empty() && (group.anchor.is_some() || compute != root) {
        return Err(internal(format!(
            "multi-output kernel for {} is not a contiguous elementwise kernel",
            graph.node(root).name
        )));
    }
    let kind = match group.anchor {
        None => {
            let value = b.build(compute, &[], Ctx::Out)?;
            KernelKind::Elementwise { value }
        }
        Some(a) => {
            let node = graph.node(a);
            match &node.op {
                Op::Reduce { op, axis, .. } => {
                    let x = node.inputs[0];
                    let body = b.build(x, &[], Ctx::Body)?;
                    let epilogue = b.build(compute, &[], Ctx::Out)?;
                    KernelKind::Reduce {
                        op: *op,
                        in_shape: graph.ty(x).shape.clone(),
                        axis: *axis,
                        body,
                        epilogue,
                    }
                }
                Op::MatMul {
                    transpose_a,
                    transpose_b,
                } => {
                    let (xa, xb) = (node.inputs[0], node.inputs[1]);
                    let dims = matmul_dims(
                        &node.name,
                        graph.ty(xa),
                        graph.ty(xb),
                        *transpose_a,
                        *transpose_b,
                    )
                    .map_err(CompileError::from)?;
                    let (a_buffer, av) = b.operand(xa, true)?;
                    let (b_buffer, bv) = b.operand(xb, true)?;
                    let epilogue = b.build(compute, &[], Ctx::Out)?;
                    KernelKind::MatMul {
                        batch: dims.batch,
                        m: dims.m,
                        k: dims.k,
                        n: dims.n,
                        a_buffer,
                        a: av,
                        transpose_a: *transpose_a,
                        b_buffer,
                        b: bv,
                        transpose_b: *transpose_b,
                        epilogue,
                    }
                }
                op if is_standalone(op) => {
                    let mut operands = Vec::with_capacity(node.inputs.len());
                    for &x in &node.inputs {
                        operands.push(b.operand(x, false)?);
                    }
                    KernelKind::Standalone {
                        op: op.clone(),
                        operands,
                    }
                }
                op => {
                    return Err(internal(format!(
                        "{} node {} cannot anchor a kernel",
                        op.name(),
                        node.name
                    )))
                }
            }
        }
    };
    for &n in group.also.iter().chain([&root]) {
        if b.buffer_of.contains_key(&n) {
            return Err(internal(format!(
                "kernel for {} reads its own output",
                graph.node(n).name
            )));
        }
    }
    let also_buffers: Vec<usize> = group
        .also
        .iter()
        .map(|&n| b.buffer(n, Access::Write))
        .collect();
    let out = b.buffer(root, Access::Write);
    let store = if compute == root {
        FactoredView::contiguous(root, &graph.ty(root).shape)
    } else {
        let mut chain = Vec::new();
        let mut x = root;
        while x != compute {
            let node = graph.node(x);
            let op = ViewOp::of(&node.op).ok_or_else(|| {
                internal(format!("{} between a kernel's compute and root", node.name))
            })?;
            let input = node.inputs[0];
            chain.push((op, graph.ty(input).shape.clone()));
            x = input;
        }
        store_view(root, &graph.ty(root).shape, &chain)
            .ok_or_else(|| internal(format!("no store view for {}", graph.node(root).name)))?
    };
    let (kind, out_shape, store) =
        b.refine(kind, graph.ty(compute).shape.clone(), store, compute)?;
    // Every further value has the root's shape and a contiguous store: the same refined
    // view of its own buffer.
    let also = also_values
        .into_iter()
        .zip(also_buffers)
        .map(|((node, value), buffer)| SpecStore {
            node,
            buffer,
            value,
            store: StridedView {
                node,
                ..store.clone()
            },
        })
        .collect();
    Ok(KernelSpec {
        name: base_name(graph, fusion, g),
        nodes: group.members.clone(),
        root,
        buffers: b.buffers,
        out,
        out_shape,
        store,
        exprs: b.exprs,
        kind,
        also,
    })
}

/// For a kernel over the storage-buffer limit: a fused node whose materialization splits
/// it, reading as many of the kernel's buffers as fit in a kernel of its own.
pub fn split_candidate(graph: &Graph, fusion: &Fusion, g: usize, max: usize) -> Option<NodeId> {
    let group = &fusion.groups[g];
    let mut best: Option<(usize, NodeId)> = None;
    for &c in &group.members {
        if c == group.root || group.also.contains(&c) {
            continue;
        }
        let reads = buffers_read(graph, fusion, g, c);
        let n = reads.len();
        if n >= 2 && n < max && best.is_none_or(|(bn, _)| n > bn) {
            best = Some((n, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Buffers read while computing `c` inside group `g`.
fn buffers_read(graph: &Graph, fusion: &Fusion, g: usize, c: NodeId) -> BTreeSet<NodeId> {
    let mut out = BTreeSet::new();
    let mut stack = vec![c];
    let mut seen = HashSet::new();
    while let Some(x) = stack.pop() {
        if !seen.insert(x) {
            continue;
        }
        for &i in &graph.node(x).inputs {
            let op = &graph.node(i).op;
            if matches!(op, Op::Iota { .. }) && !fusion.has_buffer(graph, i) {
                // Index arithmetic, no buffer.
            } else if matches!(op, Op::Constant { .. }) {
                if matches!(graph.node(x).op, Op::MatMul { .. }) {
                    out.insert(i);
                }
            } else if fusion.transparent_view(graph, i) || fusion.group_of[i.index()] == Some(g) {
                stack.push(i);
            } else {
                out.insert(i);
            }
        }
    }
    out
}

/// Most buffers a multi-output kernel reads: within what every backend takes in one
/// kernel (Ascend C: 8 input queues per position) and near a single kernel's register
/// and Unified-Buffer pressure. The target's storage-buffer limit applies on top.
pub const MAX_MERGED_READS: usize = 8;

/// Most values a multi-output kernel stores (AdamW: `m'`, `v'`, `p'`).
pub const MAX_MERGED_STORES: usize = 4;

/// Whether a multi-output kernel's spec exceeds what [`merge_elementwise`] allows: more
/// than `max_buffers` bound buffers, more than [`MAX_MERGED_READS`] loads or more than
/// [`MAX_MERGED_STORES`] stores.
pub fn over_merge_limits(spec: &KernelSpec, max_buffers: usize) -> bool {
    let loads = spec
        .exprs
        .iter()
        .filter(|e| matches!(e, Expr::Load { .. }))
        .count();
    spec.buffers.len() > max_buffers
        || loads > MAX_MERGED_READS
        || spec.also.len() + 1 > MAX_MERGED_STORES
}

/// Buffers read by group `g` (not through its own members), each with whether some read
/// of it goes through a view.
fn group_reads(graph: &Graph, fusion: &Fusion, g: usize) -> BTreeMap<NodeId, bool> {
    let mut out: BTreeMap<NodeId, bool> = BTreeMap::new();
    let mut stack: Vec<(NodeId, bool)> = fusion.groups[g]
        .members
        .iter()
        .map(|&m| (m, false))
        .collect();
    let mut seen = HashSet::new();
    while let Some((x, via)) = stack.pop() {
        if !seen.insert((x, via)) {
            continue;
        }
        let through = via || graph.node(x).op.is_view();
        for &i in &graph.node(x).inputs {
            let op = &graph.node(i).op;
            // Constants are left out even with a buffer of their own (a graph output, a
            // matmul operand): elementwise kernels compute them inline (`Expr::Const`,
            // see `SpecBuilder::build`) and never bind that buffer, and a constant is in
            // no group, so it adds no dependency either.
            if matches!(op, Op::Constant { .. })
                || (matches!(op, Op::Iota { .. }) && !fusion.has_buffer(graph, i))
                || fusion.group_of[i.index()] == Some(g)
            {
                continue;
            }
            if fusion.transparent_view(graph, i) {
                stack.push((i, true));
            } else {
                *out.entry(i).or_insert(false) |= through;
            }
        }
    }
    out
}

/// Whether group `g` may be stored by a multi-output kernel: a contiguous elementwise
/// kernel (no reduce, matmul or standalone anchor, no store through a view).
fn mergeable(graph: &Graph, group: &Group, solo: &HashSet<NodeId>) -> bool {
    let op = &graph.node(group.root).op;
    group.anchor.is_none()
        && group.compute == group.root
        && group.also.is_empty()
        && op.is_elementwise()
        && graph.ty(group.root).numel() > 0
        && !solo.contains(&group.root)
}

/// Merges elementwise kernels of the same iteration space into multi-output kernels.
///
/// Groups are visited in launch order; a mergeable group (contiguous elementwise, see
/// the module docs) joins an earlier merged kernel ("cluster") of the same output shape
/// that it is related to: one whose stored
/// value it reads directly (no view between: the value is then reused in-register, as
/// AdamW's `p'` reuses `m'` and `v'`), else one sharing a non-scalar buffer it reads.
/// The merge is refused when the merged kernel would read a cluster's value through a
/// view, bind more than `max_buffers` buffers, read more than [`MAX_MERGED_READS`] or
/// store more than [`MAX_MERGED_STORES`], or when the group depends on the cluster
/// through a third kernel (the merged kernel could not be ordered). Among the allowed
/// clusters the reader of a stored value wins, then the fewest bound buffers, then the
/// earliest cluster: the result is deterministic. Roots in `solo` are never merged (the
/// scheduler puts there the roots of a merged kernel that failed to build). A merged
/// root that is no graph output, not in `keep` (nodes the scheduler forced into a
/// buffer) and read only by the merged kernel itself is no longer stored. The groups
/// come back in a topological launch order (smallest root first among the ready ones,
/// which keeps the unmerged order where nothing merged).
pub fn merge_elementwise(
    graph: &Graph,
    fusion: Fusion,
    max_buffers: usize,
    solo: &HashSet<NodeId>,
    keep: &HashSet<NodeId>,
) -> Fusion {
    let n = fusion.groups.len();
    let ok: Vec<bool> = fusion
        .groups
        .iter()
        .map(|g| mergeable(graph, g, solo))
        .collect();
    if ok.iter().filter(|&&x| x).count() < 2 {
        return fusion;
    }
    let reads: Vec<BTreeMap<NodeId, bool>> =
        (0..n).map(|g| group_reads(graph, &fusion, g)).collect();
    let deps: Vec<BTreeSet<usize>> = reads
        .iter()
        .enumerate()
        .map(|(g, r)| {
            r.keys()
                .filter_map(|&x| fusion.group_of[x.index()])
                .filter(|&h| h != g)
                .collect()
        })
        .collect();
    // Mergeable groups reading each buffer (ascending).
    let mut readers: HashMap<NodeId, Vec<usize>> = HashMap::new();
    for g in 0..n {
        if ok[g] {
            for &x in reads[g].keys() {
                readers.entry(x).or_default().push(g);
            }
        }
    }
    let mut cluster: Vec<usize> = (0..n).collect();
    let mut parts: Vec<Vec<usize>> = (0..n).map(|g| vec![g]).collect();
    let mut creads = reads.clone();
    let mut roots: Vec<Vec<NodeId>> = fusion.groups.iter().map(|g| vec![g.root]).collect();
    // Whether `c` reaches group `b` through a cluster other than `c`.
    let depends_via_other = |cluster: &[usize], parts: &[Vec<usize>], b: usize, c: usize| {
        let mut stack: Vec<usize> = deps[b]
            .iter()
            .map(|&h| cluster[h])
            .filter(|&x| x != c)
            .collect();
        let mut seen: HashSet<usize> = stack.iter().copied().collect();
        while let Some(x) = stack.pop() {
            for &h in &parts[x] {
                for &d in &deps[h] {
                    let y = cluster[d];
                    if y == c {
                        return true;
                    }
                    if y != x && seen.insert(y) {
                        stack.push(y);
                    }
                }
            }
        }
        false
    };
    for b in 0..n {
        if !ok[b] {
            continue;
        }
        let root_b = fusion.groups[b].root;
        let shape = &graph.ty(root_b).shape;
        // Candidate clusters: 0 = b reads one of its values directly, 1 = shared read.
        let mut cands: BTreeMap<usize, usize> = BTreeMap::new();
        for (&x, &via) in &reads[b] {
            if let Some(h) = fusion.group_of[x.index()] {
                if h < b && ok[h] && !via {
                    cands.insert(cluster[h], 0);
                }
            }
            if graph.ty(x).numel() > 1 {
                for &h in readers.get(&x).into_iter().flatten() {
                    if h < b {
                        cands.entry(cluster[h]).or_insert(1);
                    }
                }
            }
        }
        let mut best: Option<(usize, usize, usize)> = None;
        for (&c, &prio) in &cands {
            if graph.ty(fusion.groups[parts[c][0]].root).shape != *shape {
                continue;
            }
            if reads[b].iter().any(|(x, &via)| via && roots[c].contains(x)) {
                continue;
            }
            let stored: Vec<NodeId> = roots[c].iter().copied().chain([root_b]).collect();
            let read: BTreeSet<NodeId> = creads[c]
                .keys()
                .chain(reads[b].keys())
                .filter(|x| !stored.contains(x))
                .copied()
                .collect();
            if read.len() > MAX_MERGED_READS
                || stored.len() > MAX_MERGED_STORES
                || read.len() + stored.len() > max_buffers
            {
                continue;
            }
            if depends_via_other(&cluster, &parts, b, c) {
                continue;
            }
            let key = (prio, read.len() + stored.len(), c);
            if best.is_none_or(|k| key < k) {
                best = Some(key);
            }
        }
        if let Some((_, _, c)) = best {
            cluster[b] = c;
            parts[c].push(b);
            parts[b].clear();
            let rb = std::mem::take(&mut creads[b]);
            for (x, via) in rb {
                *creads[c].entry(x).or_insert(false) |= via;
            }
            roots[c].push(root_b);
        }
    }
    if (0..n).all(|c| parts[c].len() <= 1) {
        return fusion;
    }
    let users = graph.users();
    // Non-view nodes reading `n`, through transparent views.
    let consumers_of = |n: NodeId| -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack = users[n.index()].clone();
        while let Some(u) = stack.pop() {
            if fusion.transparent_view(graph, u) {
                stack.extend(users[u.index()].iter().copied());
            } else {
                out.push(u);
            }
        }
        out
    };
    // The merged groups, then a topological order of them.
    let heads: Vec<usize> = (0..n).filter(|&c| !parts[c].is_empty()).collect();
    let mut new_index = vec![usize::MAX; n];
    let mut merged: Vec<Group> = Vec::with_capacity(heads.len());
    for (i, &c) in heads.iter().enumerate() {
        new_index[c] = i;
        if parts[c].len() == 1 {
            merged.push(fusion.groups[c].clone());
            continue;
        }
        let mut members: Vec<NodeId> = parts[c]
            .iter()
            .flat_map(|&g| fusion.groups[g].members.iter().copied())
            .collect();
        members.sort_unstable();
        let mut stored = roots[c].clone();
        stored.sort_unstable();
        let root = stored.pop().unwrap_or(fusion.groups[c].root);
        // A temporary read only by the merged kernel itself needs no buffer any more.
        stored.retain(|&r| {
            fusion.is_output[r.index()]
                || keep.contains(&r)
                || consumers_of(r)
                    .iter()
                    .any(|u| fusion.group_of[u.index()].is_none_or(|h| cluster[h] != c))
        });
        merged.push(Group {
            root,
            compute: root,
            anchor: None,
            members,
            also: stored,
        });
    }
    let m = merged.len();
    let mut preds: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); m];
    let mut succs: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); m];
    for g in 0..n {
        let to = new_index[cluster[g]];
        for &d in &deps[g] {
            let from = new_index[cluster[d]];
            if from != to {
                preds[to].insert(from);
                succs[from].insert(to);
            }
        }
    }
    let mut missing: Vec<usize> = preds.iter().map(BTreeSet::len).collect();
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<(NodeId, usize)>> = (0..m)
        .filter(|&i| missing[i] == 0)
        .map(|i| std::cmp::Reverse((merged[i].root, i)))
        .collect();
    let mut order = Vec::with_capacity(m);
    while let Some(std::cmp::Reverse((_, i))) = ready.pop() {
        order.push(i);
        for &s in &succs[i] {
            missing[s] -= 1;
            if missing[s] == 0 {
                ready.push(std::cmp::Reverse((merged[s].root, s)));
            }
        }
    }
    if order.len() != m {
        // Cannot happen (merges never close a cycle); keep the unmerged kernels.
        return fusion;
    }
    let mut position = vec![0; m];
    for (p, &i) in order.iter().enumerate() {
        position[i] = p;
    }
    let mut fusion = fusion;
    fusion.groups = order.iter().map(|&i| merged[i].clone()).collect();
    for g in fusion.group_of.iter_mut().flatten() {
        *g = position[new_index[cluster[*g]]];
    }
    fusion
}
