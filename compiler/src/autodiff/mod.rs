//! Reverse-mode automatic differentiation on the graph IR.
//!
//! [`grad`] takes a graph, a scalar loss node and the nodes to differentiate with respect
//! to, and returns a new graph ([`GradGraph`]) that computes the original outputs, the
//! loss, and one gradient per `wrt` node. The backward pass is built from ordinary graph
//! ops (so it is scheduled, fused and emitted for every target like any forward graph).
//!
//! # The new graph
//! - Nodes `0..graph.len()` are the original nodes, copied in order: a [`NodeId`] of the
//!   input graph denotes the same node (same op, inputs, type and name) in
//!   [`GradGraph::graph`].
//! - Outputs, in order: the original outputs, then the loss (unless it already is one),
//!   then the gradients in the order of `wrt`.
//! - The gradient of node `x` is named [`grad_name`]`(x)` = `grad/<name of x>`, has the
//!   type of `x`, and is the vector-Jacobian product of the loss seeded with
//!   `d loss = 1`.
//!
//! # Rules
//! Every op has a vector-Jacobian rule (see `rules.rs` and `composite.rs` in this module);
//! gradients of a node with several users are accumulated with `add`. Composites keep
//! their identity in the backward pass where a dedicated rule allows it: the gradient of
//! softmax is `y * (g - sum(g * y))`, of log-softmax `g - exp(y) * sum(g)`, of RoPE a RoPE
//! with `-sin` (rotation by `-theta`), of cross-entropy `(softmax - onehot) * g / count`
//! (the `softmax` is the fused composite), layer-/RMS-norm use their closed forms (the
//! row statistics are recomputed from `x`), GELU / SiLU / SwiGLU their derivatives as
//! elementwise expressions. Attention's gradient is built by
//! [`Graph::attention_backward`]: one [`CompositeOp::AttentionStats`] node (per-query
//! logsumexp and `delta = rowsum(dO * O)`) and one [`CompositeOp::AttentionGrad`] node per
//! wanted gradient (flash-attention backward: the probabilities are recomputed from the
//! statistics, no `[T, T]` tensor is stored once scheduled). Those backward ops have no
//! backward rule of their own (second derivatives of attention):
//! [`AutodiffError::NoGradient`].
//!
//! Conventions at the points where a derivative is not defined (all documented on the
//! rule): `abs` has gradient `sign(x)` with `sign(0) = 0`; `relu` has gradient 0 at 0;
//! binary `max` / `min` split the gradient evenly between tied operands; reduce-max
//! splits it evenly among the tied maxima of a row; `pow(a, b)` gives `b` a zero
//! gradient where `a <= 0` (where `log a` is undefined); a float-to-float `cast` passes
//! the gradient through, cast back to the operand's dtype (straight-through rounding).
//!
//! # Integer and bool paths
//! Only float values carry gradients. A node depends on a `wrt` node when a path of
//! float-valued nodes joins them. Comparisons (bool results), `iota`, constants and index
//! operands (gather / scatter-add ids, cross-entropy targets, attention masks) are
//! piecewise constant: their gradient is zero by definition, not an error (a select's
//! condition gets no gradient; its branches do). A `cast` from a float value that depends
//! on a `wrt` node to an integer dtype, on a path to the loss, is
//! [`AutodiffError::NoGradient`]: turning a differentiated value into integers (ids,
//! counts) would silently stop its gradient, so it is refused instead. A `wrt` node the
//! loss does not depend on gets a zero gradient (a constant).

mod composite;
mod rules;

#[cfg(doc)]
use crate::graph::CompositeOp;
use crate::graph::{DType, Graph, GraphError, Node, NodeId, Op, TensorType};
use std::collections::HashMap;

/// A failure to build the gradient graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AutodiffError {
    /// The loss is not a float scalar.
    #[error("loss `{node}` must be a float scalar `[]`, got {ty}")]
    BadLoss {
        /// Loss node name.
        node: String,
        /// Its type.
        ty: TensorType,
    },
    /// A `wrt` node is not float-valued.
    #[error("cannot differentiate with respect to `{node}`: dtype {dtype} is not a float")]
    NotFloat {
        /// Node name.
        node: String,
        /// Its dtype.
        dtype: DType,
    },
    /// A handle that does not belong to the graph.
    #[error("{what}: node {id} does not belong to the graph")]
    UnknownNode {
        /// Where the handle was given (`loss` or `wrt`).
        what: &'static str,
        /// The handle.
        id: NodeId,
    },
    /// The same node appears twice in `wrt`.
    #[error("`{node}` appears twice in wrt")]
    DuplicateWrt {
        /// Node name.
        node: String,
    },
    /// An op on the path from a `wrt` node to the loss has no backward rule.
    #[error("{op} `{node}` has no gradient: {reason}")]
    NoGradient {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// Why.
        reason: String,
    },
    /// Building a backward node failed (an internal inconsistency or a name clash with a
    /// `grad/...` node already in the graph).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// The result of [`grad`]: the forward graph extended with the backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct GradGraph {
    /// Original nodes (same ids), backward nodes, and the outputs described in the module
    /// documentation.
    pub graph: Graph,
    /// The loss node.
    pub loss: NodeId,
    /// The `wrt` nodes, as given.
    pub wrt: Vec<NodeId>,
    /// The gradient of each `wrt` node (same order), named [`grad_name`] of it.
    pub grads: Vec<NodeId>,
}

impl GradGraph {
    /// The gradient node of a `wrt` node, if it was asked for.
    pub fn grad_of(&self, wrt: NodeId) -> Option<NodeId> {
        self.wrt
            .iter()
            .position(|&w| w == wrt)
            .map(|i| self.grads[i])
    }
}

/// The name of the gradient output of a node named `name`: `grad/<name>`.
pub fn grad_name(name: &str) -> String {
    format!("grad/{name}")
}

/// Builds the gradient graph of `loss` (a float scalar `[]`) with respect to each node
/// of `wrt` (float nodes of any kind: inputs, parameters or intermediate values). See the
/// module documentation for the layout of the result, the rules and the conventions.
pub fn grad(graph: &Graph, loss: NodeId, wrt: &[NodeId]) -> Result<GradGraph, AutodiffError> {
    let loss_node = graph.get(loss).ok_or(AutodiffError::UnknownNode {
        what: "loss",
        id: loss,
    })?;
    if !loss_node.ty.shape.is_empty() || !loss_node.ty.dtype.is_float() {
        return Err(AutodiffError::BadLoss {
            node: loss_node.name.clone(),
            ty: loss_node.ty.clone(),
        });
    }
    for (i, &w) in wrt.iter().enumerate() {
        let node = graph
            .get(w)
            .ok_or(AutodiffError::UnknownNode { what: "wrt", id: w })?;
        if !node.ty.dtype.is_float() {
            return Err(AutodiffError::NotFloat {
                node: node.name.clone(),
                dtype: node.ty.dtype,
            });
        }
        if wrt[..i].contains(&w) {
            return Err(AutodiffError::DuplicateWrt {
                node: node.name.clone(),
            });
        }
    }

    // The copy: same ids, names and outputs.
    let mut g = Graph::new();
    for node in graph.nodes() {
        let leaf = node.op.is_leaf().then(|| node.ty.clone());
        g.push(node.op.clone(), node.inputs.clone(), leaf, Some(&node.name))?;
    }
    for &o in graph.outputs() {
        g.mark_output(o)?;
    }
    g.mark_output(loss)?;

    let dep = dependence(graph, wrt);
    check_int_paths(graph, loss, &dep)?;

    let mut ad = Ad { g, dep };
    let mut adj: HashMap<NodeId, NodeId> = HashMap::new();
    if ad.dep[loss.index()] {
        let seed = ad.g.constant(1.0, &[], loss_node.ty.dtype)?;
        adj.insert(loss, seed);
        ad.reverse(0..loss.index() + 1, &mut adj)?;
    }

    let first_backward = graph.len();
    let mut named: Vec<NodeId> = Vec::new();
    let mut grads = Vec::with_capacity(wrt.len());
    for &w in wrt {
        let node = graph.node(w);
        let name = grad_name(&node.name);
        let id = match adj.get(&w) {
            Some(&a) if a.index() >= first_backward && !named.contains(&a) => {
                ad.g.set_name(a, &name)?;
                a
            }
            // The adjoint is a forward node or another gradient: an identity view carries
            // the name.
            Some(&a) => ad.g.push(
                Op::Reshape {
                    shape: node.ty.shape.clone(),
                },
                vec![a],
                None,
                Some(&name),
            )?,
            None => ad.g.push(
                Op::Constant { value: 0.0 },
                vec![],
                Some(node.ty.clone()),
                Some(&name),
            )?,
        };
        named.push(id);
        ad.g.mark_output(id)?;
        grads.push(id);
    }
    Ok(GradGraph {
        graph: ad.g,
        loss,
        wrt: wrt.to_vec(),
        grads,
    })
}

/// For each node, whether its value depends on a `wrt` node through float values.
fn dependence(graph: &Graph, wrt: &[NodeId]) -> Vec<bool> {
    let mut dep = vec![false; graph.len()];
    for (i, node) in graph.nodes().iter().enumerate() {
        dep[i] = wrt.contains(&NodeId(i as u32)) || derived_dep(graph, node, &dep);
    }
    dep
}

/// Whether a (non-`wrt`) node depends on a `wrt` node, given its inputs' dependence.
fn derived_dep(graph: &Graph, node: &Node, dep: &[bool]) -> bool {
    node.ty.dtype.is_float()
        && !node.op.is_leaf()
        && node
            .inputs
            .iter()
            .any(|&i| dep.get(i.index()).copied().unwrap_or(false) && graph.ty(i).dtype.is_float())
}

/// Refuses a float-to-integer cast of a differentiated value on a path to the loss.
fn check_int_paths(graph: &Graph, loss: NodeId, dep: &[bool]) -> Result<(), AutodiffError> {
    let mut reaches = vec![false; graph.len()];
    reaches[loss.index()] = true;
    for i in (0..=loss.index()).rev() {
        if !reaches[i] {
            continue;
        }
        let node = &graph.nodes()[i];
        for &inp in &node.inputs {
            reaches[inp.index()] = true;
        }
        if let Op::Cast { to } = node.op {
            let x = node.inputs[0];
            if !to.is_float() && graph.ty(x).dtype.is_float() && dep[x.index()] {
                return Err(AutodiffError::NoGradient {
                    op: node.op.name(),
                    node: node.name.clone(),
                    reason: format!(
                        "a cast to {to} of `{}`, which depends on a differentiated node, \
                         feeds the loss: integers carry no gradient",
                        graph.node(x).name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// `where(cond, a, b)` with `a` and `b` (scalars, or already of `cond`'s shape) broadcast
/// to the shape of `cond`.
pub(crate) fn select(
    g: &mut Graph,
    cond: NodeId,
    a: NodeId,
    b: NodeId,
) -> Result<NodeId, GraphError> {
    let shape = g.ty(cond).shape.clone();
    let a = g.broadcast(a, &shape)?;
    let b = g.broadcast(b, &shape)?;
    g.select(cond, a, b)
}

/// The graph under construction and the dependence of its forward nodes on `wrt`.
pub(crate) struct Ad {
    /// Forward copy plus the backward nodes built so far.
    pub(crate) g: Graph,
    /// Indexed by forward node; backward nodes (beyond its length) are `false`.
    pub(crate) dep: Vec<bool>,
}

/// A concat's inputs along its axis: `(extent, Some(part))` for a part, `(extent, None)`
/// for a constant zero.
type PadSegments = Vec<(usize, Option<NodeId>)>;

impl Ad {
    /// Whether input `id` takes a gradient (float and dependent on `wrt`).
    fn wants(&self, id: NodeId) -> bool {
        self.dep.get(id.index()).copied().unwrap_or(false) && self.g.ty(id).dtype.is_float()
    }

    /// The reverse sweep over the nodes in `range` (in decreasing order): each node with an
    /// adjoint in `adj` adds its inputs' contributions to theirs.
    fn reverse(
        &mut self,
        range: std::ops::Range<usize>,
        adj: &mut HashMap<NodeId, NodeId>,
    ) -> Result<(), AutodiffError> {
        for i in range.rev() {
            let id = NodeId(i as u32);
            let Some(&gy) = adj.get(&id) else { continue };
            let node = self.g.node(id).clone();
            if node.op.is_leaf() {
                continue;
            }
            let wants: Vec<bool> = node.inputs.iter().map(|&x| self.wants(x)).collect();
            if !wants.iter().any(|&w| w) {
                continue;
            }
            let contribs = self.vjp(id, &node, gy, &wants)?;
            for ((&x, c), &w) in node.inputs.iter().zip(contribs).zip(&wants) {
                if let (Some(c), true) = (c, w) {
                    self.accumulate(adj, x, c)?;
                }
            }
        }
        Ok(())
    }

    /// `adj[x] += c`.
    fn accumulate(
        &mut self,
        adj: &mut HashMap<NodeId, NodeId>,
        x: NodeId,
        c: NodeId,
    ) -> Result<(), AutodiffError> {
        let want = self.g.ty(x).clone();
        let have = self.g.ty(c).clone();
        if want != have {
            return Err(GraphError::Invalid {
                op: self.g.node(x).op.name(),
                node: self.g.node(x).name.clone(),
                reason: format!("autodiff: gradient of type {have} for a node of type {want}"),
            }
            .into());
        }
        let sum = match adj.get(&x) {
            Some(&prev) => match self.merge_pads(prev, c)? {
                Some(merged) => merged,
                None => self.g.add(prev, c)?,
            },
            None => c,
        };
        adj.insert(x, sum);
        Ok(())
    }

    /// The axis and segments of a zero-padded value ([`PadSegments`]); `Some` only when
    /// `n` is a concat.
    fn pad_segments(&self, n: NodeId) -> Option<(usize, PadSegments)> {
        let node = self.g.node(n);
        let Op::Concat { axis } = node.op else {
            return None;
        };
        let segs = node
            .inputs
            .iter()
            .map(|&i| {
                let len = self.g.ty(i).shape[axis];
                let zero = matches!(self.g.node(i).op, Op::Constant { value } if value == 0.0);
                (len, (!zero).then_some(i))
            })
            .collect();
        Some((axis, segs))
    }

    /// `a + b` as one concat when both are concats along one axis (the adjoints of slices:
    /// the part and zeros on either side) whose parts cover disjoint ranges: the qkv split
    /// of attention then gets one concat of its three gradients instead of three padded
    /// copies and two adds. Exact: every element is one part's value or zero. `None` when
    /// the two are not such concats.
    fn merge_pads(&mut self, a: NodeId, b: NodeId) -> Result<Option<NodeId>, GraphError> {
        let (Some((axis, sa)), Some((axis_b, sb))) = (self.pad_segments(a), self.pad_segments(b))
        else {
            return Ok(None);
        };
        if axis != axis_b {
            return Ok(None);
        }
        // Each part as (start, len, node) along the axis; they must not overlap.
        let parts_of = |segs: &PadSegments| {
            let mut at = 0;
            let mut out = Vec::new();
            for &(len, part) in segs {
                if let Some(p) = part {
                    out.push((at, len, p));
                }
                at += len;
            }
            out
        };
        let mut parts = parts_of(&sa);
        parts.extend(parts_of(&sb));
        parts.sort_by_key(|p| p.0);
        if parts.windows(2).any(|w| w[0].0 + w[0].1 > w[1].0) {
            return Ok(None);
        }
        let ty = self.g.ty(a).clone();
        let total = ty.shape[axis];
        // Zeros before each part, and after the last up to the end (`None`).
        let mut inputs = Vec::with_capacity(2 * parts.len() + 1);
        let mut at = 0;
        let pieces = parts
            .into_iter()
            .map(|(start, len, p)| (start, Some((p, start + len))));
        for (start, part) in pieces.chain([(total, None)]) {
            if start > at {
                let mut shape = ty.shape.clone();
                shape[axis] = start - at;
                inputs.push(self.zeros(&shape, ty.dtype)?);
            }
            if let Some((p, end)) = part {
                inputs.push(p);
                at = end;
            }
        }
        Ok(Some(if inputs.len() == 1 {
            inputs[0]
        } else {
            self.g.concat(&inputs, axis)?
        }))
    }

    /// A scalar constant `[]` (broadcast by the binary builders).
    pub(crate) fn scalar(&mut self, v: f64, dtype: DType) -> Result<NodeId, GraphError> {
        self.g.constant(v, &[], dtype)
    }

    /// Zeros of a type.
    pub(crate) fn zeros(&mut self, shape: &[usize], dtype: DType) -> Result<NodeId, GraphError> {
        self.g.constant(0.0, shape, dtype)
    }

    /// Sums `t` over all axes but its last `keep` ones (one reduction after a reshape).
    pub(crate) fn sum_leading(&mut self, t: NodeId, keep: usize) -> Result<NodeId, GraphError> {
        let shape = self.g.ty(t).shape.clone();
        if shape.len() <= keep {
            return Ok(t);
        }
        let split = shape.len() - keep;
        let lead: usize = shape[..split].iter().product();
        let t = if split == 1 {
            t
        } else {
            let mut s = vec![lead];
            s.extend_from_slice(&shape[split..]);
            self.g.reshape(t, &s)?
        };
        self.g.sum(t, 0, false)
    }
}
