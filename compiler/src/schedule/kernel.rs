//! A scheduled (fused) kernel before tile construction: which buffers it binds and what it
//! computes, as an expression DAG over strided views of buffers.
//!
//! Three kinds, matching the three tile-kernel shapes ([`crate::tile::build`]):
//! elementwise (one expression over the output's index space), reduction (a body
//! expression over the input's index space, reduced along one axis, then a scalar
//! epilogue) and matmul (two strided operand views, then an epilogue on the output tile).
//! An elementwise kernel may store several values over the same index space
//! ([`KernelSpec::also`]: a multi-output kernel), sharing their subexpressions.

use super::view::StridedView;
use crate::graph::{BinaryOp, CompareOp, DType, NodeId, Op, ReduceOp, UnaryOp};
use crate::tile::Access;
use serde::{Deserialize, Serialize};

/// Handle of an expression in [`KernelSpec::exprs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExprId(pub u32);

impl ExprId {
    /// Index into [`KernelSpec::exprs`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One node of a kernel's expression DAG. Every expression is evaluated over an index
/// space (the output shape, the reduction input shape, ...) that its leaves' views share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// Reads buffer parameter `buffer` through a view whose shape is the index space.
    Load {
        /// Index into [`KernelSpec::buffers`].
        buffer: usize,
        /// How the index space maps to buffer elements.
        view: StridedView,
    },
    /// The value of an `iota` leaf seen through its movement ops: the element offset of
    /// `view` (over the index space, as for [`Expr::Load`]) as a number of `dtype` (`i32`
    /// or `f32`). No buffer is read: the view starts from
    /// [`crate::schedule::view::iota_view`] and `view.node` is the iota node.
    Iota {
        /// The index-to-value map (its element offset is the value).
        view: StridedView,
        /// The graph dtype.
        dtype: DType,
    },
    /// A constant (graph dtype `dtype`).
    Const {
        /// The value.
        value: f64,
        /// The graph dtype.
        dtype: DType,
    },
    /// The result of the kernel's anchor: the reduced value (reductions) or the
    /// accumulator tile (matmul). Only in epilogues.
    Acc {
        /// The anchor's graph dtype.
        dtype: DType,
    },
    /// Elementwise unary op.
    Unary {
        /// Which op.
        op: UnaryOp,
        /// Operand.
        x: ExprId,
        /// Result graph dtype.
        dtype: DType,
    },
    /// Elementwise binary op.
    Binary {
        /// Which op.
        op: BinaryOp,
        /// Left operand.
        a: ExprId,
        /// Right operand.
        b: ExprId,
        /// Result graph dtype.
        dtype: DType,
    },
    /// Elementwise dtype conversion ([`crate::graph::cast_value`] semantics).
    Cast {
        /// Operand.
        x: ExprId,
        /// Target graph dtype.
        to: DType,
    },
    /// Elementwise comparison (bool result).
    Compare {
        /// Which comparison.
        op: CompareOp,
        /// Left operand.
        a: ExprId,
        /// Right operand.
        b: ExprId,
    },
    /// Elementwise `cond ? a : b`.
    Select {
        /// Bool condition.
        cond: ExprId,
        /// Value where true.
        a: ExprId,
        /// Value where false.
        b: ExprId,
        /// Result graph dtype.
        dtype: DType,
    },
}

impl Expr {
    /// The graph dtype of the value.
    pub fn dtype(&self, buffers: &[SpecBuffer]) -> DType {
        match self {
            Expr::Load { buffer, .. } => buffers[*buffer].dtype,
            Expr::Const { dtype, .. }
            | Expr::Iota { dtype, .. }
            | Expr::Acc { dtype }
            | Expr::Unary { dtype, .. }
            | Expr::Binary { dtype, .. }
            | Expr::Select { dtype, .. } => *dtype,
            Expr::Compare { .. } => DType::Bool,
            Expr::Cast { to, .. } => *to,
        }
    }
}

/// A buffer bound by a kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecBuffer {
    /// The graph node whose value the buffer holds.
    pub node: NodeId,
    /// Parameter name (the node's name).
    pub name: String,
    /// Element dtype.
    pub dtype: DType,
    /// Dense row-major shape.
    pub shape: Vec<usize>,
    /// Read or written.
    pub access: Access,
}

impl SpecBuffer {
    /// Element count.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a kernel computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KernelKind {
    /// `out[i] = value(i)` over the output shape.
    Elementwise {
        /// The value, over the output's index space.
        value: ExprId,
    },
    /// `out[o] = epilogue(reduce_{r} body(o with axis = r))`.
    Reduce {
        /// Sum, max or mean.
        op: ReduceOp,
        /// Shape of the reduced value (the body's index space). Each body load's view is
        /// over a refinement of it of its own, in which the reduced axis is never split.
        in_shape: Vec<usize>,
        /// The reduced axis, in `in_shape`.
        axis: usize,
        /// The body, over `in_shape`.
        body: ExprId,
        /// The epilogue over the output's index space; contains [`Expr::Acc`].
        epilogue: ExprId,
    },
    /// `out[b, m, n] = epilogue(sum_k a[b, m, k] * b[b, k, n])`.
    MatMul {
        /// Batch shape of the output.
        batch: Vec<usize>,
        /// Rows.
        m: usize,
        /// Contraction length.
        k: usize,
        /// Columns.
        n: usize,
        /// Buffer index of the left operand.
        a_buffer: usize,
        /// View of the left operand, in its own logical shape (`[.., M, K]`, or `[.., K, M]`
        /// when `transpose_a`).
        a: StridedView,
        /// The left operand is given transposed.
        transpose_a: bool,
        /// Buffer index of the right operand.
        b_buffer: usize,
        /// View of the right operand (`[.., K, N]`, or `[.., N, K]` when `transpose_b`).
        b: StridedView,
        /// The right operand is given transposed.
        transpose_b: bool,
        /// The epilogue over the output's index space; contains [`Expr::Acc`].
        epilogue: ExprId,
    },
    /// An op with a dedicated tile builder ([`crate::schedule::fuse::is_standalone`]:
    /// composites such as softmax or attention, gather, scatter-add, concat), computing
    /// the kernel's root from its operands. The output is written through
    /// [`KernelSpec::store`].
    Standalone {
        /// The op (with its attributes).
        op: Op,
        /// Each input of the node, in order: `(buffer index, strided view in the input's
        /// logical shape)`.
        operands: Vec<(usize, StridedView)>,
    },
}

/// A further value stored by a multi-output elementwise kernel, besides its root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpecStore {
    /// The node whose value is stored.
    pub node: NodeId,
    /// Index of its written buffer in [`KernelSpec::buffers`].
    pub buffer: usize,
    /// The value over the kernel's index space (it may use the other stored values'
    /// subexpressions: one value is computed once and stored by every store using it).
    pub value: ExprId,
    /// Where element `i` of the index space is stored: contiguous, refined like
    /// [`KernelSpec::store`].
    pub store: StridedView,
}

/// One fused kernel, ready for tile construction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelSpec {
    /// Unique kernel name saying what it computes (e.g. `matmul_bias_tanh_0`).
    pub name: String,
    /// Graph nodes fused into the kernel (root included), in topological order.
    pub nodes: Vec<NodeId>,
    /// The node whose value the kernel writes.
    pub root: NodeId,
    /// Bound buffers: the ones read (first-use order, no repeats), then the ones written
    /// (those of [`KernelSpec::also`] in order, the root's last).
    pub buffers: Vec<SpecBuffer>,
    /// Index of the root's written buffer in `buffers` (always the last).
    pub out: usize,
    /// Shape of the kernel's index space: the shape of the value computed (the written
    /// node's, unless the kernel stores through a view). Elementwise kernels: with axes
    /// split into the sub-axes their views need (same elements, same row-major order), the
    /// shape of every load's view. Reductions: unrefined; each epilogue load's view and
    /// the store view are over a refinement of it of their own
    /// ([`crate::schedule::view::piece_groups`]).
    pub out_shape: Vec<usize>,
    /// Where element `i` of the index space is stored: a view of the written buffer over
    /// `out_shape` (or, for reductions, a refinement of it), contiguous or the inverse of
    /// a permute/reshape chain.
    pub store: StridedView,
    /// Expression arena.
    pub exprs: Vec<Expr>,
    /// What is computed.
    pub kind: KernelKind,
    /// Multi-output elementwise kernels: the values stored besides the root's, in node
    /// order (every one before the root). Empty for every other kernel.
    #[serde(default)]
    pub also: Vec<SpecStore>,
}

impl KernelSpec {
    /// The expression behind a handle.
    pub fn expr(&self, id: ExprId) -> &Expr {
        &self.exprs[id.index()]
    }
}
