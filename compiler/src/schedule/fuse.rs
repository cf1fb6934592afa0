//! Greedy, deterministic fusion of graph nodes into kernels.
//!
//! Movement ops (views) are never kernels: they are folded into the strided views of the
//! buffers a kernel reads ([`super::view`]). Every other node either gets a buffer (it is
//! *materialized*: the root of a kernel, or a leaf) or is fused into the single kernel that
//! consumes it. A node is materialized when it is a graph output, a matmul operand, an
//! elementwise node read by more than one kernel, a reduction or matmul that cannot become
//! the anchor of its consumer's kernel, or a node the scheduler *forces* (a reshape that
//! strides cannot express, a kernel over the storage-buffer limit).
//!
//! Nodes are visited in reverse topological order, so every consumer's kernel is known
//! when a producer is placed. Each kernel has at most one *anchor* (a reduce or a matmul);
//! elementwise nodes before it form the reduction's loop body, elementwise nodes after it
//! (of its output shape, without views in between) form its epilogue. Between a matmul
//! and a reduction, elementwise nodes go to the matmul's epilogue (`matmul_bias_tanh`
//! then `reduce_sum`), which costs no extra kernel. A reduce or matmul result used only
//! by a materialized permute/reshape (an output, or a reshape strides cannot express) is
//! stored by its own kernel through the inverse view instead of being copied.

use super::kernel::{Expr, ExprId, KernelKind, KernelSpec, SpecBuffer};
use super::view::{store_view, StridedView, ViewOp};
use crate::error::CompileError;
use crate::graph::{matmul_dims, BinaryOp, Graph, NodeId, Op};
use crate::tile::Access;
use std::collections::{BTreeSet, HashMap, HashSet};

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
            _ => self.group_of[n.index()].is_some_and(|g| self.groups[g].root == n),
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
}

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
                    Op::Unary { .. } | Op::Binary { .. } => stack.push(p),
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
            if matches!(op, ViewOp::Broadcast(_)) {
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
            Op::Unary { .. } | Op::Binary { .. } => self.heads_anchor_chain(n),
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
        if matches!(self.graph.node(n).op, Op::Reduce { .. } | Op::MatMul { .. }) {
            group.anchor = Some(n);
        }
        self.aligned[n.index()] = true;
        true
    }

    fn new_group(&mut self, n: NodeId) {
        let op = &self.graph.node(n).op;
        let anchor = matches!(op, Op::Reduce { .. } | Op::MatMul { .. }).then_some(n);
        self.fusion.groups.push(Group {
            root: n,
            compute: n,
            anchor,
            members: vec![n],
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
        if node.op.is_leaf() || self.fusion.transparent_view(self.graph, n) {
            return;
        }
        let consumers = self.consumers(n);
        let is_output = self.fusion.is_output[n.index()];
        if consumers.is_empty() && !is_output {
            return; // dead
        }
        self.fusion.live[n.index()] = true;
        let feeds_matmul = consumers
            .iter()
            .any(|c| matches!(self.graph.node(c.node).op, Op::MatMul { .. }));
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
                Op::Unary { .. } | Op::Binary { .. } => {
                    let aligned = consumers.iter().all(|c| {
                        !c.via_view && self.aligned[c.node.index()] && Some(c.node) != anchor
                    });
                    // Outside the consumer's output index space (a reduction body, or
                    // behind a broadcast) an anchor chain would be recomputed per element
                    // or would leave its anchor unfused: it becomes its own kernel, the
                    // epilogue of that anchor, at no extra kernel.
                    if !aligned && self.heads_anchor_chain(n) {
                        self.new_group(n);
                    } else {
                        self.join(n, g);
                        self.aligned[n.index()] = aligned;
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
        if let Op::MatMul { .. } = self.graph.node(n).op {
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
    Load(usize, StridedView),
    Const(u64, crate::graph::DType),
    Acc,
    Unary(crate::graph::UnaryOp, ExprId),
    Binary(BinaryOp, ExprId, ExprId),
}

struct SpecBuilder<'a> {
    graph: &'a Graph,
    fusion: &'a Fusion,
    group: usize,
    buffers: Vec<SpecBuffer>,
    buffer_of: HashMap<NodeId, usize>,
    exprs: Vec<Expr>,
    interned: HashMap<ExprKey, ExprId>,
    memo: HashMap<(NodeId, Vec<NodeId>, Ctx), ExprId>,
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
    fn view(&self, n: NodeId, path: &[NodeId]) -> Result<StridedView, SpecFailure> {
        let mut view = StridedView::contiguous(n, &self.graph.ty(n).shape);
        for &v in path.iter().rev() {
            let op = ViewOp::of(&self.graph.node(v).op)
                .ok_or_else(|| internal(format!("{v} in a view path is not a view")))?;
            match view.apply(&op) {
                Some(next) => view = next,
                None => {
                    // Materialize the view's own input contiguously; the view then
                    // applies to that buffer (always expressible).
                    let below = self.graph.node(v).inputs[0];
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

    fn load(&mut self, n: NodeId, path: &[NodeId]) -> Result<ExprId, SpecFailure> {
        let view = self.view(n, path)?;
        let buffer = self.buffer(n, Access::Read);
        Ok(self.intern(
            ExprKey::Load(buffer, view.clone()),
            Expr::Load { buffer, view },
        ))
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
            Op::Input | Op::Param => self.load(n, path)?,
            op if op.is_view() && (in_group || !self.fusion.root_view[n.index()]) => {
                let mut p = path.to_vec();
                p.push(n);
                self.build(node.inputs[0], &p, ctx)?
            }
            _ if !in_group => self.load(n, path)?,
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

    /// A matmul operand: a strided view of a buffer.
    fn operand(&mut self, x: NodeId) -> Result<(usize, StridedView), SpecFailure> {
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
        let view = self.view(s, &path)?;
        let buffer = self.buffer(s, Access::Read);
        Ok((buffer, view))
    }
}

/// The base of a kernel's name: its anchor and fused op names (`matmul_bias_tanh`).
fn base_name(graph: &Graph, fusion: &Fusion, g: usize) -> String {
    let group = &fusion.groups[g];
    let mut parts: Vec<String> = Vec::new();
    if let Some(a) = group.anchor {
        parts.push(graph.node(a).op.name().to_string());
    }
    let is_matmul = group
        .anchor
        .is_some_and(|a| matches!(graph.node(a).op, Op::MatMul { .. }));
    for &n in &group.members {
        let node = graph.node(n);
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
        if parts.last().map(String::as_str) != Some(part) {
            parts.push(part.to_string());
        }
    }
    if parts.is_empty() {
        parts.push("copy".into());
    }
    const MAX_PARTS: usize = 4;
    parts.truncate(MAX_PARTS);
    parts.join("_")
}

/// Builds the spec of group `g` (its name is the base name; the caller adds the index).
pub fn build_spec(graph: &Graph, fusion: &Fusion, g: usize) -> Result<KernelSpec, SpecFailure> {
    let group = &fusion.groups[g];
    let root = group.root;
    let compute = group.compute;
    let mut b = SpecBuilder {
        graph,
        fusion,
        group: g,
        buffers: Vec::new(),
        buffer_of: HashMap::new(),
        exprs: Vec::new(),
        interned: HashMap::new(),
        memo: HashMap::new(),
    };
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
                    let (a_buffer, av) = b.operand(xa)?;
                    let (b_buffer, bv) = b.operand(xb)?;
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
    if b.buffer_of.contains_key(&root) {
        return Err(internal(format!(
            "kernel for {} reads its own output",
            graph.node(root).name
        )));
    }
    let out = b.buffer(root, Access::Write);
    let store = if compute == root {
        StridedView::contiguous(root, &graph.ty(root).shape)
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
    Ok(KernelSpec {
        name: base_name(graph, fusion, g),
        nodes: group.members.clone(),
        root,
        buffers: b.buffers,
        out,
        out_shape: graph.ty(compute).shape.clone(),
        store,
        exprs: b.exprs,
        kind,
    })
}

/// For a kernel over the storage-buffer limit: a fused node whose materialization splits
/// it, reading as many of the kernel's buffers as fit in a kernel of its own.
pub fn split_candidate(graph: &Graph, fusion: &Fusion, g: usize, max: usize) -> Option<NodeId> {
    let group = &fusion.groups[g];
    let mut best: Option<(usize, NodeId)> = None;
    for &c in &group.members {
        if c == group.root {
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
            if matches!(op, Op::Constant { .. }) {
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
