//! The operations of the graph IR: what each one is, its type rule and its reference
//! semantics. This is the one place that knows an op; lowerings consult these enums.

use super::error::GraphError;
use super::types::{DType, TensorType};
use serde::{Deserialize, Serialize};

/// Elementwise unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// natural logarithm
    Log,
    /// square root
    Sqrt,
    /// `1 / sqrt(x)`
    Rsqrt,
    /// hyperbolic tangent
    Tanh,
}

impl UnaryOp {
    /// All unary ops.
    pub const ALL: [UnaryOp; 6] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Tanh,
    ];

    /// Lowercase name (JSON, kernel names, errors).
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Tanh => "tanh",
        }
    }

    /// Reference semantics in f64.
    pub fn eval(self, x: f64) -> f64 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Tanh => x.tanh(),
        }
    }

    /// Whether the op is defined for integer operands (only `neg`).
    pub fn allows_int(self) -> bool {
        matches!(self, UnaryOp::Neg)
    }
}

/// Elementwise binary operations (operands of identical type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (integer division truncates toward zero)
    Div,
    /// `max(a, b)`
    Max,
}

impl BinaryOp {
    /// All binary ops.
    pub const ALL: [BinaryOp; 5] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
    ];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
        }
    }

    /// Reference semantics in f64 (for integer dtypes the caller truncates `div`).
    pub fn eval(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.max(b)
                }
            }
        }
    }
}

/// Reductions over one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReduceOp {
    /// Sum of the elements.
    Sum,
    /// Maximum of the elements.
    Max,
    /// Arithmetic mean (sum times 1/n).
    Mean,
}

impl ReduceOp {
    /// All reduce ops.
    pub const ALL: [ReduceOp; 3] = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Mean];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Mean => "mean",
        }
    }

    /// The neutral element of the combining function.
    pub fn identity(self) -> f64 {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => 0.0,
            ReduceOp::Max => f64::NEG_INFINITY,
        }
    }

    /// The binary op that combines two partial results.
    pub fn combiner(self) -> BinaryOp {
        match self {
            ReduceOp::Sum | ReduceOp::Mean => BinaryOp::Add,
            ReduceOp::Max => BinaryOp::Max,
        }
    }

    /// Reference semantics in f64 over a sequence of values.
    pub fn eval(self, values: impl IntoIterator<Item = f64>) -> f64 {
        let mut acc = self.identity();
        let mut n = 0usize;
        for v in values {
            acc = self.combiner().eval(acc, v);
            n += 1;
        }
        match self {
            ReduceOp::Mean => acc / n as f64,
            _ => acc,
        }
    }
}

/// One operation of the graph IR. Inputs live in the node, not in the op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// A value supplied at each run (a batch). Its type is the node's type.
    Input,
    /// A trainable or loaded parameter, kept on the device across runs.
    Param,
    /// A tensor filled with one value.
    Constant {
        /// The fill value.
        value: f64,
    },
    /// Elementwise unary op.
    Unary {
        /// Which op.
        #[serde(rename = "fn")]
        op: UnaryOp,
    },
    /// Elementwise binary op on operands of identical shape and dtype.
    Binary {
        /// Which op.
        #[serde(rename = "fn")]
        op: BinaryOp,
    },
    /// Reduction over one axis.
    Reduce {
        /// Which reduction.
        #[serde(rename = "fn")]
        op: ReduceOp,
        /// The axis reduced.
        axis: usize,
        /// Keep the reduced axis with extent 1.
        #[serde(default)]
        keep_dims: bool,
    },
    /// Matrix product `[.., M, K] x [.., K, N] -> [.., M, N]`; batch axes equal, or one
    /// operand 2-D and shared by every batch.
    MatMul {
        /// `a` is given as `[.., K, M]`.
        #[serde(default)]
        transpose_a: bool,
        /// `b` is given as `[.., N, K]`.
        #[serde(default)]
        transpose_b: bool,
    },
    /// NumPy-style broadcast to a shape (a view).
    Broadcast {
        /// The target shape. In the JSON form the node's `shape` key holds it (see
        /// [`crate::graph::NodeJson`]), hence the default here.
        #[serde(default)]
        shape: Vec<usize>,
    },
    /// Same elements, new shape (a view).
    Reshape {
        /// The target shape. In the JSON form the node's `shape` key holds it (see
        /// [`crate::graph::NodeJson`]), hence the default here.
        #[serde(default)]
        shape: Vec<usize>,
    },
    /// Axis permutation: output axis `i` is input axis `perm[i]` (a view).
    Permute {
        /// The permutation.
        perm: Vec<usize>,
    },
}

impl Op {
    /// Short name of the op, used in errors and kernel names.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Param => "param",
            Op::Constant { .. } => "constant",
            Op::Unary { op } => op.name(),
            Op::Binary { op } => op.name(),
            Op::Reduce { op, .. } => match op {
                ReduceOp::Sum => "reduce_sum",
                ReduceOp::Max => "reduce_max",
                ReduceOp::Mean => "reduce_mean",
            },
            Op::MatMul { .. } => "matmul",
            Op::Broadcast { .. } => "broadcast",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
        }
    }

    /// True for ops that only change how elements are indexed (views, no kernel).
    pub fn is_view(&self) -> bool {
        matches!(
            self,
            Op::Broadcast { .. } | Op::Reshape { .. } | Op::Permute { .. }
        )
    }

    /// True for elementwise ops (fusable into any consumer or producer).
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary { .. } | Op::Binary { .. })
    }

    /// True for ops with no inputs (leaves of the graph).
    pub fn is_leaf(&self) -> bool {
        matches!(self, Op::Input | Op::Param | Op::Constant { .. })
    }

    /// Number of inputs the op takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input | Op::Param | Op::Constant { .. } => 0,
            Op::Binary { .. } | Op::MatMul { .. } => 2,
            _ => 1,
        }
    }

    /// The type rule: the output type from the input types, or a typed error naming the
    /// op, the node and the shapes. Leaves are typed by their node and are not checked here.
    pub fn infer(&self, node: &str, inputs: &[&TensorType]) -> Result<TensorType, GraphError> {
        let op = self.name();
        if inputs.len() != self.arity() {
            return Err(GraphError::Arity {
                op,
                node: node.to_string(),
                expected: self.arity(),
                got: inputs.len(),
            });
        }
        match self {
            Op::Input | Op::Param | Op::Constant { .. } => Err(GraphError::Invalid {
                op,
                node: node.to_string(),
                reason: "leaf nodes carry their own type".into(),
            }),
            Op::Unary { op: u } => {
                let x = inputs[0];
                if !(x.dtype.is_float() || (u.allows_int() && x.dtype.is_int())) {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: x.dtype,
                    });
                }
                Ok(x.clone())
            }
            Op::Binary { .. } => {
                let (a, b) = (inputs[0], inputs[1]);
                if a.shape != b.shape {
                    return Err(GraphError::ShapeMismatch {
                        op,
                        node: node.to_string(),
                        lhs: a.shape.clone(),
                        rhs: b.shape.clone(),
                    });
                }
                if a.dtype != b.dtype {
                    return Err(GraphError::DTypeMismatch {
                        op,
                        node: node.to_string(),
                        lhs: a.dtype,
                        rhs: b.dtype,
                    });
                }
                if a.dtype == DType::Bool {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: a.dtype,
                    });
                }
                Ok(a.clone())
            }
            Op::Reduce {
                axis, keep_dims, ..
            } => {
                let x = inputs[0];
                if *axis >= x.rank() {
                    return Err(GraphError::AxisOutOfRange {
                        op,
                        node: node.to_string(),
                        axis: *axis,
                        shape: x.shape.clone(),
                    });
                }
                if !x.dtype.is_float() {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: x.dtype,
                    });
                }
                let mut shape = x.shape.clone();
                if *keep_dims {
                    shape[*axis] = 1;
                } else {
                    shape.remove(*axis);
                }
                Ok(TensorType::new(shape, x.dtype))
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => infer_matmul(node, inputs[0], inputs[1], *transpose_a, *transpose_b),
            Op::Broadcast { shape } => {
                let x = inputs[0];
                let ok = shape.len() >= x.rank()
                    && x.shape
                        .iter()
                        .rev()
                        .zip(shape.iter().rev())
                        .all(|(&s, &t)| s == t || s == 1);
                if !ok {
                    return Err(GraphError::BadBroadcast {
                        node: node.to_string(),
                        from: x.shape.clone(),
                        to: shape.clone(),
                    });
                }
                Ok(TensorType::new(shape.clone(), x.dtype))
            }
            Op::Reshape { shape } => {
                let x = inputs[0];
                let to: usize = shape.iter().product();
                if to != x.numel() {
                    return Err(GraphError::ReshapeElementCount {
                        node: node.to_string(),
                        from: x.shape.clone(),
                        from_elements: x.numel(),
                        to: shape.clone(),
                        to_elements: to,
                    });
                }
                Ok(TensorType::new(shape.clone(), x.dtype))
            }
            Op::Permute { perm } => {
                let x = inputs[0];
                let mut seen = vec![false; x.rank()];
                let valid = perm.len() == x.rank()
                    && perm
                        .iter()
                        .all(|&p| p < x.rank() && !std::mem::replace(&mut seen[p], true));
                if !valid {
                    return Err(GraphError::BadPermutation {
                        node: node.to_string(),
                        perm: perm.clone(),
                        shape: x.shape.clone(),
                    });
                }
                Ok(TensorType::new(
                    perm.iter().map(|&p| x.shape[p]).collect::<Vec<_>>(),
                    x.dtype,
                ))
            }
        }
    }
}

/// Logical matmul dimensions after transposes: batch shape, M, K, N.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatMulDims {
    /// Batch axes of the output.
    pub batch: Vec<usize>,
    /// Whether `a` has batch axes (else it is shared by every batch).
    pub a_batched: bool,
    /// Whether `b` has batch axes (else it is shared by every batch).
    pub b_batched: bool,
    /// Rows of the output.
    pub m: usize,
    /// Contraction length.
    pub k: usize,
    /// Columns of the output.
    pub n: usize,
}

/// The dimensions of a matmul, checking the operand shapes.
pub fn matmul_dims(
    node: &str,
    a: &TensorType,
    b: &TensorType,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<MatMulDims, GraphError> {
    if a.rank() < 2 || b.rank() < 2 {
        return Err(GraphError::MatMulRank {
            node: node.to_string(),
            a: a.shape.clone(),
            b: b.shape.clone(),
        });
    }
    let (ar, br) = (a.rank(), b.rank());
    let (m, ka) = if transpose_a {
        (a.shape[ar - 1], a.shape[ar - 2])
    } else {
        (a.shape[ar - 2], a.shape[ar - 1])
    };
    let (kb, n) = if transpose_b {
        (b.shape[br - 1], b.shape[br - 2])
    } else {
        (b.shape[br - 2], b.shape[br - 1])
    };
    if ka != kb {
        return Err(GraphError::MatMulInner {
            node: node.to_string(),
            a: a.shape.clone(),
            b: b.shape.clone(),
            ka,
            kb,
        });
    }
    let (ab, bb) = (&a.shape[..ar - 2], &b.shape[..br - 2]);
    let batch = if ab == bb || bb.is_empty() {
        ab.to_vec()
    } else if ab.is_empty() {
        bb.to_vec()
    } else {
        return Err(GraphError::MatMulBatch {
            node: node.to_string(),
            a: a.shape.clone(),
            b: b.shape.clone(),
        });
    };
    Ok(MatMulDims {
        a_batched: !ab.is_empty(),
        b_batched: !bb.is_empty(),
        batch,
        m,
        k: ka,
        n,
    })
}

fn infer_matmul(
    node: &str,
    a: &TensorType,
    b: &TensorType,
    transpose_a: bool,
    transpose_b: bool,
) -> Result<TensorType, GraphError> {
    if a.dtype != b.dtype {
        return Err(GraphError::DTypeMismatch {
            op: "matmul",
            node: node.to_string(),
            lhs: a.dtype,
            rhs: b.dtype,
        });
    }
    if !a.dtype.is_float() {
        return Err(GraphError::UnsupportedDType {
            op: "matmul",
            node: node.to_string(),
            dtype: a.dtype,
        });
    }
    let d = matmul_dims(node, a, b, transpose_a, transpose_b)?;
    let mut shape = d.batch;
    shape.push(d.m);
    shape.push(d.n);
    Ok(TensorType::new(shape, a.dtype))
}
