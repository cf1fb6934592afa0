//! The oracle: evaluates a graph node by node in `f64`.
//!
//! Float values are kept in full `f64` precision through the whole graph, whatever the
//! node's dtype (f32, f16 and bf16 results are *not* rounded after each op): the oracle is
//! the exact answer the backends approximate, and tests state their tolerances against
//! it. Inputs and parameters are used as supplied ([`Tensor::random`] produces values
//! exactly representable in their dtype); constants are filled with their f64 value.
//! Integer results (i32, u32) are truncated toward zero and wrapped modulo 2^32 after
//! every op, as on a device; integer division by zero is an error. Bool values are 0 or 1.
//!
//! Op semantics come from the graph IR itself ([`UnaryOp::eval`], [`BinaryOp::eval`],
//! [`ReduceOp::eval`], [`matmul_dims`]); this module only does the indexing. Composite
//! ops are evaluated through their decomposition ([`CompositeOp::decompose`]) into
//! primitive ops, so the oracle of a fused kernel is the graph it stands for.
//!
//! Index operands are checked: a gather or scatter-add id outside its axis, or a
//! cross-entropy target outside `0..V` that is not the ignore index, is
//! [`InterpError::IndexOutOfRange`] naming the node, the value and the range (devices
//! clamp or drop such indices instead; the oracle refuses to define them).
//!
//! Memory is bounded: every value is held in f64, so a graph that is small on a device can
//! be large here (an attention's `[B, H, T, T]` scores at T = 65536 are 32 GiB a head).
//! Values are dropped after their last use, and a node whose value would take the bytes
//! held at once past [`Limits::max_bytes`] is [`InterpError::MemoryLimit`] instead of an
//! allocation the operating system kills the process for.

use super::tensor::{round_to_dtype, Tensor};
use super::InterpError;
use crate::graph::{
    cast_value, contiguous_strides, matmul_dims, BinaryOp, CompositeOp, DType, Graph, Node, NodeId,
    Op, ReduceOp, TensorType, UnaryOp,
};
use std::collections::HashMap;

/// Bounds on what an interpreter run may hold in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of tensor values held at once: f64 values of the graph interpreter
    /// (8 bytes an element, whatever the dtype), f32 storage of the tile interpreter (4).
    /// The caller's own input tensors are not counted; their copies are.
    pub max_bytes: u64,
}

impl Limits {
    /// The default bound: 8 GiB.
    pub const DEFAULT_MAX_BYTES: u64 = 8 << 30;

    /// No bound (the run takes what the values need, or fails to allocate).
    pub fn unbounded() -> Limits {
        Limits {
            max_bytes: u64::MAX,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: Limits::DEFAULT_MAX_BYTES,
        }
    }
}

/// Bytes of `n` elements of `size` bytes, saturating (compared with a limit only).
pub(crate) fn bytes_of(n: usize, size: u64) -> u64 {
    (n as u64).saturating_mul(size)
}

/// Evaluates a graph and returns its outputs by node name. Inputs and parameters are both
/// looked up by node name in `inputs`; each supplied tensor must have the node's shape and
/// dtype. Extra entries are ignored. Memory is bounded by [`Limits::default`].
pub fn run_graph(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, InterpError> {
    run_graph_with(graph, inputs, &Limits::default())
}

/// [`run_graph`] under the given memory bound.
pub fn run_graph_with(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
    limits: &Limits,
) -> Result<HashMap<String, Tensor>, InterpError> {
    let mut values = eval_keeping(graph, inputs, graph.outputs(), &Budget::of(limits))?;
    let mut out = HashMap::new();
    for &o in graph.outputs() {
        let t = values
            .get_mut(o.index())
            .and_then(Option::take)
            .ok_or_else(|| crate::graph::GraphError::UnknownInput {
                node: "outputs".into(),
                input: o.to_string(),
            })?;
        out.insert(graph.node(o).name.clone(), t);
    }
    Ok(out)
}

/// Evaluates every node; the result is indexed like [`Graph::nodes`]. For debugging and
/// for tests that look at intermediate values. Memory is bounded by [`Limits::default`]
/// (every value is kept, so the bound is reached sooner than by [`run_graph`]).
pub fn eval_all(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
) -> Result<Vec<Tensor>, InterpError> {
    let keep: Vec<NodeId> = graph.ids().collect();
    let values = eval_keeping(graph, inputs, &keep, &Budget::of(&Limits::default()))?;
    Ok(values.into_iter().flatten().collect())
}

/// The memory bound of one (possibly nested) evaluation: `base` bytes are held by the
/// evaluations around it (a composite's decomposition runs while the outer graph's live
/// values stay).
struct Budget {
    limit: u64,
    base: u64,
}

impl Budget {
    /// The budget of a whole run: nothing held around it.
    fn of(limits: &Limits) -> Budget {
        Budget {
            limit: limits.max_bytes,
            base: 0,
        }
    }
}

/// Evaluates the graph in order, dropping each value after its last use unless it is in
/// `keep` (so that large intermediates, such as the `[N, V]` tensors of a cross-entropy
/// over a 50k vocabulary, do not all live at once). Kept values are `Some`.
fn eval_keeping(
    graph: &Graph,
    inputs: &HashMap<String, Tensor>,
    keep: &[NodeId],
    budget: &Budget,
) -> Result<Vec<Option<Tensor>>, InterpError> {
    let mut uses = vec![0usize; graph.len()];
    for node in graph.nodes() {
        for &inp in &node.inputs {
            if let Some(u) = uses.get_mut(inp.index()) {
                *u += 1;
            }
        }
    }
    for &k in keep {
        if let Some(u) = uses.get_mut(k.index()) {
            // Never reaches zero.
            *u = usize::MAX;
        }
    }
    let mut values: Vec<Option<Tensor>> = Vec::with_capacity(graph.len());
    // Bytes of the values in `values` that are `Some`.
    let mut live: u64 = 0;
    for (i, node) in graph.nodes().iter().enumerate() {
        let needed = bytes_of(
            TensorType::checked_numel(&node.ty.shape).unwrap_or(usize::MAX),
            VALUE_BYTES,
        );
        let held = budget.base.saturating_add(live);
        if held.saturating_add(needed) > budget.limit {
            return Err(InterpError::MemoryLimit {
                node: node.name.clone(),
                within: None,
                shape: node.ty.shape.clone(),
                needed,
                held,
                limit: budget.limit,
            });
        }
        let t = {
            let mut args = Vec::with_capacity(node.inputs.len());
            for &inp in &node.inputs {
                let v = if inp.index() < i {
                    values[inp.index()].as_ref()
                } else {
                    None
                };
                let Some(v) = v else {
                    return Err(crate::graph::GraphError::Cycle {
                        node: node.name.clone(),
                    }
                    .into());
                };
                args.push(v);
            }
            let inner = Budget {
                limit: budget.limit,
                base: held,
            };
            eval_node(node, &args, inputs, &inner)?
        };
        for &inp in &node.inputs {
            let u = &mut uses[inp.index()];
            if *u != usize::MAX {
                *u -= 1;
                if *u == 0 {
                    if let Some(dropped) = values[inp.index()].take() {
                        live = live.saturating_sub(bytes_of(dropped.data.len(), VALUE_BYTES));
                    }
                }
            }
        }
        live = live.saturating_add(bytes_of(t.data.len(), VALUE_BYTES));
        values.push(Some(t));
    }
    Ok(values)
}

/// Bytes of one value of the graph interpreter (an f64).
const VALUE_BYTES: u64 = 8;

/// Evaluates one node from its operand values.
fn eval_node(
    node: &Node,
    args: &[&Tensor],
    inputs: &HashMap<String, Tensor>,
    budget: &Budget,
) -> Result<Tensor, InterpError> {
    if !node.op.is_leaf() {
        // Re-check the type rule so that a hand-edited node cannot index out of range.
        let tys: Vec<_> = args.iter().map(|t| t.ty()).collect();
        let refs: Vec<_> = tys.iter().collect();
        let ty = node.op.infer(&node.name, &refs)?;
        if ty != node.ty {
            return Err(crate::graph::GraphError::Invalid {
                op: node.op.name(),
                node: node.name.clone(),
                reason: format!("recorded type {} differs from inferred {}", node.ty, ty),
            }
            .into());
        }
    }
    let shape = &node.ty.shape;
    let dtype = node.ty.dtype;
    match &node.op {
        Op::Input | Op::Param => {
            let t = inputs
                .get(&node.name)
                .ok_or_else(|| InterpError::MissingInput {
                    name: node.name.clone(),
                })?;
            if &t.shape != shape {
                return Err(InterpError::InputShape {
                    name: node.name.clone(),
                    expected: shape.clone(),
                    got: t.shape.clone(),
                });
            }
            if t.dtype != dtype {
                return Err(InterpError::InputDType {
                    name: node.name.clone(),
                    expected: dtype,
                    got: t.dtype,
                });
            }
            if t.data.len() != t.numel() {
                return Err(InterpError::DataLength {
                    what: "graph input",
                    shape: t.shape.clone(),
                    expected: t.numel(),
                    got: t.data.len(),
                });
            }
            Ok(t.clone())
        }
        Op::Constant { value } => {
            let v = if dtype.is_float() {
                *value
            } else {
                round_to_dtype(*value, dtype)
            };
            Ok(Tensor {
                shape: shape.clone(),
                dtype,
                data: vec![v; node.ty.numel()],
            })
        }
        Op::Slice { axis, start, .. } => Ok(slice(args[0], *axis, *start, shape, dtype)),
        Op::Concat { axis } => Ok(concat(args, *axis, shape, dtype)),
        Op::Gather { axis } => take(node, args[0], args[1], *axis),
        Op::ScatterAdd { axis, size } => scatter_add(node, args[0], args[1], *axis, *size),
        Op::Composite(c) => composite(node, c, args, budget),
        Op::Iota { axis } => {
            let strides = contiguous_strides(shape);
            let data = (0..node.ty.numel())
                .map(|i| ((i / strides[*axis]) % shape[*axis]) as f64)
                .collect();
            Ok(Tensor {
                shape: shape.clone(),
                dtype,
                data,
            })
        }
        Op::Compare { op } => Ok(Tensor {
            shape: shape.clone(),
            dtype,
            data: args[0]
                .data
                .iter()
                .zip(&args[1].data)
                .map(|(&a, &b)| f64::from(op.eval(a, b)))
                .collect(),
        }),
        Op::Select => Ok(Tensor {
            shape: shape.clone(),
            dtype,
            data: args[0]
                .data
                .iter()
                .zip(args[1].data.iter().zip(&args[2].data))
                .map(|(&c, (&a, &b))| if c != 0.0 { a } else { b })
                .collect(),
        }),
        Op::Cast { to } => Ok(Tensor {
            shape: shape.clone(),
            dtype,
            data: args[0].data.iter().map(|&v| cast_value(v, *to)).collect(),
        }),
        Op::Unary { op } => Ok(unary(*op, args[0], dtype)),
        Op::Binary { op } => binary(*op, args[0], args[1], dtype, &node.name),
        Op::Reduce { op, axis, .. } => Ok(reduce(*op, args[0], *axis, shape, dtype)),
        Op::MatMul {
            transpose_a,
            transpose_b,
        } => matmul(node, args[0], args[1], *transpose_a, *transpose_b),
        Op::Broadcast { .. } => {
            let x = args[0];
            // Input axes align with the trailing output axes; extent-1 axes get stride 0.
            let in_strides = contiguous_strides(&x.shape);
            let lead = shape.len() - x.shape.len();
            let strides: Vec<usize> = (0..shape.len())
                .map(|o| {
                    if o < lead || x.shape[o - lead] == 1 {
                        0
                    } else {
                        in_strides[o - lead]
                    }
                })
                .collect();
            Ok(gather(x, shape, &strides, dtype))
        }
        Op::Reshape { .. } => Ok(Tensor {
            shape: shape.clone(),
            dtype,
            data: args[0].data.clone(),
        }),
        Op::Permute { perm } => {
            let x = args[0];
            let in_strides = contiguous_strides(&x.shape);
            let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
            Ok(gather(x, shape, &strides, dtype))
        }
    }
}

/// Rounds integer and bool results to their dtype; floats stay f64.
fn fix(v: f64, dtype: DType) -> f64 {
    if dtype.is_float() {
        v
    } else {
        round_to_dtype(v, dtype)
    }
}

fn unary(op: UnaryOp, x: &Tensor, dtype: DType) -> Tensor {
    Tensor {
        shape: x.shape.clone(),
        dtype,
        data: x.data.iter().map(|&v| fix(op.eval(v), dtype)).collect(),
    }
}

fn binary(
    op: BinaryOp,
    a: &Tensor,
    b: &Tensor,
    dtype: DType,
    node: &str,
) -> Result<Tensor, InterpError> {
    let mut data = Vec::with_capacity(a.data.len());
    for (&x, &y) in a.data.iter().zip(&b.data) {
        if op == BinaryOp::Div && !dtype.is_float() && y == 0.0 {
            return Err(InterpError::DivisionByZero {
                node: node.to_string(),
            });
        }
        data.push(fix(op.eval(x, y), dtype));
    }
    Ok(Tensor {
        shape: a.shape.clone(),
        dtype,
        data,
    })
}

fn reduce(op: ReduceOp, x: &Tensor, axis: usize, out_shape: &[usize], dtype: DType) -> Tensor {
    let n = x.shape[axis];
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let v = op.eval((0..n).map(|k| x.data[base + k * inner]));
            data.push(fix(v, dtype));
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        dtype,
        data,
    }
}

fn matmul(
    node: &Node,
    a: &Tensor,
    b: &Tensor,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<Tensor, InterpError> {
    let d = matmul_dims(&node.name, &a.ty(), &b.ty(), transpose_a, transpose_b)?;
    let (m, k, n) = (d.m, d.k, d.n);
    let batches: usize = d.batch.iter().product();
    let mut data = Vec::with_capacity(batches * m * n);
    for bi in 0..batches {
        let a0 = if d.a_batched { bi * m * k } else { 0 };
        let b0 = if d.b_batched { bi * k * n } else { 0 };
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for kk in 0..k {
                    // a is [.., M, K] or, transposed, [.., K, M]; b is [.., K, N] or [.., N, K].
                    let av = if transpose_a {
                        a.data[a0 + kk * m + i]
                    } else {
                        a.data[a0 + i * k + kk]
                    };
                    let bv = if transpose_b {
                        b.data[b0 + j * k + kk]
                    } else {
                        b.data[b0 + kk * n + j]
                    };
                    acc = BinaryOp::Add.eval(acc, BinaryOp::Mul.eval(av, bv));
                }
                data.push(fix(acc, node.ty.dtype));
            }
        }
    }
    Ok(Tensor {
        shape: node.ty.shape.clone(),
        dtype: node.ty.dtype,
        data,
    })
}

/// A strided view of `x` made dense: element `idx` of the output reads
/// `x.data[sum(idx[a] * strides[a])]`.
fn gather(x: &Tensor, shape: &[usize], strides: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let mut data = Vec::with_capacity(n);
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        let off: usize = idx.iter().zip(strides).map(|(&i, &s)| i * s).sum();
        data.push(x.data[off]);
        for a in (0..shape.len()).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    Tensor {
        shape: shape.to_vec(),
        dtype,
        data,
    }
}

/// Flattened extents around one axis: (product of the axes before, product after).
fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

/// `x[.., start..start + len, ..]` along `axis` (`len` = `out_shape[axis]`).
fn slice(x: &Tensor, axis: usize, start: usize, out_shape: &[usize], dtype: DType) -> Tensor {
    let (outer, inner) = outer_inner(&x.shape, axis);
    let (n, len) = (x.shape[axis], out_shape[axis]);
    let mut data = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let base = (o * n + start) * inner;
        data.extend_from_slice(&x.data[base..base + len * inner]);
    }
    Tensor {
        shape: out_shape.to_vec(),
        dtype,
        data,
    }
}

/// Concatenation of the operands along `axis`.
fn concat(xs: &[&Tensor], axis: usize, out_shape: &[usize], dtype: DType) -> Tensor {
    let (outer, inner) = outer_inner(out_shape, axis);
    let mut data = Vec::with_capacity(out_shape.iter().product());
    for o in 0..outer {
        for x in xs {
            let chunk = x.shape[axis] * inner;
            data.extend_from_slice(&x.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        dtype,
        data,
    }
}

/// Checks that every id lies in `0..len` and returns them as indices.
fn check_ids(
    node: &Node,
    what: &'static str,
    ids: &Tensor,
    len: usize,
) -> Result<Vec<usize>, InterpError> {
    ids.data
        .iter()
        .map(|&v| {
            let id = v as i64;
            if id >= 0 && (id as u64) < len as u64 {
                Ok(id as usize)
            } else {
                Err(InterpError::IndexOutOfRange {
                    node: node.name.clone(),
                    what,
                    index: id,
                    len,
                })
            }
        })
        .collect()
}

/// `table[.., ids, ..]` along `axis` ([`Op::Gather`]).
fn take(node: &Node, table: &Tensor, ids: &Tensor, axis: usize) -> Result<Tensor, InterpError> {
    let n = table.shape[axis];
    let ids = check_ids(node, "gather id", ids, n)?;
    let (outer, inner) = outer_inner(&table.shape, axis);
    let mut data = Vec::with_capacity(node.ty.numel());
    for o in 0..outer {
        for &id in &ids {
            let base = (o * n + id) * inner;
            data.extend_from_slice(&table.data[base..base + inner]);
        }
    }
    Ok(Tensor {
        shape: node.ty.shape.clone(),
        dtype: node.ty.dtype,
        data,
    })
}

/// [`Op::ScatterAdd`]: zeros, then `out[.., ids[i], ..] += src[.., i, ..]` in increasing
/// order of `i`.
fn scatter_add(
    node: &Node,
    src: &Tensor,
    ids: &Tensor,
    axis: usize,
    size: usize,
) -> Result<Tensor, InterpError> {
    let ids_rank = ids.shape.len();
    let ids = check_ids(node, "scatter_add id", ids, size)?;
    let outer: usize = src.shape[..axis].iter().product();
    let m = ids.len();
    let inner: usize = src.shape[axis + ids_rank..].iter().product();
    let mut data = vec![0.0; node.ty.numel()];
    for o in 0..outer {
        for (k, &id) in ids.iter().enumerate() {
            let s = (o * m + k) * inner;
            let d = (o * size + id) * inner;
            for i in 0..inner {
                data[d + i] = BinaryOp::Add.eval(data[d + i], src.data[s + i]);
            }
        }
    }
    Ok(Tensor {
        shape: node.ty.shape.clone(),
        dtype: node.ty.dtype,
        data,
    })
}

/// A composite op, evaluated through its decomposition: a graph with one input per
/// operand, [`CompositeOp::decompose`], and a run of that graph.
fn composite(
    node: &Node,
    op: &CompositeOp,
    args: &[&Tensor],
    budget: &Budget,
) -> Result<Tensor, InterpError> {
    if let CompositeOp::CrossEntropy { ignore_index }
    | CompositeOp::TokenCrossEntropy { ignore_index } = op
    {
        let v = args[0].shape.get(1).copied().unwrap_or(0);
        for &t in &args[1].data {
            let t = t as i64;
            if t != *ignore_index && !(t >= 0 && (t as u64) < v as u64) {
                return Err(InterpError::IndexOutOfRange {
                    node: node.name.clone(),
                    what: "target",
                    index: t,
                    len: v,
                });
            }
        }
    }
    let mut g = Graph::new();
    let mut ins = Vec::with_capacity(args.len());
    let mut feed = HashMap::new();
    // The copies fed to the decomposition are held while it runs.
    let mut fed: u64 = 0;
    for (i, a) in args.iter().enumerate() {
        let name = format!("operand{i}");
        ins.push(g.input(&name, &a.shape, a.dtype)?);
        fed = fed.saturating_add(bytes_of(a.data.len(), VALUE_BYTES));
        feed.insert(name, (*a).clone());
    }
    let out = op
        .decompose(&mut g, &ins)
        .map_err(|e| rename(e, &node.name))?;
    let inner = Budget {
        limit: budget.limit,
        base: budget.base.saturating_add(fed),
    };
    let t = eval_keeping(&g, &feed, &[out], &inner)
        .map_err(|e| blame(e, &node.name))?
        .get_mut(out.index())
        .and_then(Option::take)
        .ok_or_else(|| crate::graph::GraphError::UnknownInput {
            node: node.name.clone(),
            input: out.to_string(),
        })?;
    if t.shape != node.ty.shape || t.dtype != node.ty.dtype {
        return Err(crate::graph::GraphError::Invalid {
            op: node.op.name(),
            node: node.name.clone(),
            reason: format!(
                "decomposition gives {}, the node is typed {}",
                t.ty(),
                node.ty
            ),
        }
        .into());
    }
    Ok(t)
}

/// A memory-limit error inside a decomposition, reported against the composite node (the
/// decomposition's node names are internal).
fn blame(e: InterpError, composite: &str) -> InterpError {
    match e {
        InterpError::MemoryLimit {
            node,
            within,
            shape,
            needed,
            held,
            limit,
        } => InterpError::MemoryLimit {
            node: composite.to_string(),
            within: within.or(Some(node)),
            shape,
            needed,
            held,
            limit,
        },
        other => other,
    }
}

/// A decomposition error reported against the composite node.
fn rename(e: crate::graph::GraphError, node: &str) -> crate::graph::GraphError {
    match e {
        crate::graph::GraphError::Invalid { op, reason, .. } => crate::graph::GraphError::Invalid {
            op,
            node: node.to_string(),
            reason,
        },
        other => other,
    }
}
