//! The operations of the graph IR: what each one is, its type rule and its reference
//! semantics. This is the one place that knows an op; lowerings consult these enums.

use super::composite::CompositeOp;
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
    /// the error function `2/sqrt(pi) * integral_0^x e^(-t^2) dt`
    Erf,
    /// the logistic function `1 / (1 + e^(-x))`
    Sigmoid,
    /// `1 / x`
    Reciprocal,
    /// `|x|`
    Abs,
    /// `max(x, 0)`
    Relu,
}

impl UnaryOp {
    /// All unary ops.
    pub const ALL: [UnaryOp; 11] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Tanh,
        UnaryOp::Erf,
        UnaryOp::Sigmoid,
        UnaryOp::Reciprocal,
        UnaryOp::Abs,
        UnaryOp::Relu,
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
            UnaryOp::Erf => "erf",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Abs => "abs",
            UnaryOp::Relu => "relu",
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
            UnaryOp::Erf => libm::erf(x),
            // Both branches only ever exponentiate a non-positive number: no overflow.
            UnaryOp::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Abs => x.abs(),
            // NaN propagates (like `max`); -0.0 maps to 0.0.
            UnaryOp::Relu => {
                if x.is_nan() {
                    f64::NAN
                } else if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
        }
    }

    /// Whether the op is defined for integer operands (`neg`, `abs`, `relu`).
    pub fn allows_int(self) -> bool {
        matches!(self, UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu)
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
    /// `a ^ b` for float operands. Defined for `a >= 0` (NaN for `a < 0`, whatever `b`):
    /// devices compute `exp2(b * log2(a))`, which has no sign for a negative base.
    Pow,
    /// `min(a, b)` (NaN if either operand is NaN)
    Min,
}

impl BinaryOp {
    /// All binary ops.
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Pow,
        BinaryOp::Min,
    ];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Pow => "pow",
            BinaryOp::Min => "min",
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
            BinaryOp::Pow => {
                if a < 0.0 {
                    f64::NAN
                } else {
                    a.powf(b)
                }
            }
            BinaryOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.min(b)
                }
            }
        }
    }

    /// Whether the op is defined for integer operands (all but `pow`).
    pub fn allows_int(self) -> bool {
        !matches!(self, BinaryOp::Pow)
    }
}

/// Elementwise comparisons; the result is `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompareOp {
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a == b`
    Eq,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
}

impl CompareOp {
    /// All comparisons.
    pub const ALL: [CompareOp; 5] = [
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Eq,
        CompareOp::Gt,
        CompareOp::Ge,
    ];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Eq => "eq",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }

    /// Reference semantics: IEEE ordered comparisons (false whenever an operand is NaN).
    pub fn eval(self, a: f64, b: f64) -> bool {
        match self {
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Eq => a == b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
        }
    }
}

/// Reference semantics of [`Op::Cast`] from a value already held in `from` to `to`:
/// float to float rounds to nearest even; float to integer truncates toward zero and
/// saturates to the integer range (NaN becomes 0), as `cvt.rzi.sat` in PTX, WGSL's
/// conversions and Ascend's `CAST_TRUNC` do; integer to float rounds to nearest; bool is
/// 0 or 1 and casting to bool tests `!= 0`.
pub fn cast_value(v: f64, to: DType) -> f64 {
    match to {
        DType::F32 => v as f32 as f64,
        DType::F16 => super::types::f16_from_f64(v).to_f64(),
        DType::BF16 => super::types::bf16_from_f64(v).to_f64(),
        // `as` from f64 truncates toward zero, saturates and maps NaN to 0.
        DType::I32 => v as i32 as f64,
        DType::U32 => v as u32 as f64,
        DType::Bool => f64::from(v != 0.0),
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
    /// Elementwise comparison of two operands of identical shape and dtype; `bool` result.
    Compare {
        /// Which comparison.
        #[serde(rename = "fn")]
        op: CompareOp,
    },
    /// `where(cond, a, b)`: `a` where the `bool` operand `cond` is true, else `b`; all three
    /// of one shape, `a` and `b` of one dtype.
    Select,
    /// Elementwise conversion to another dtype (see [`cast_value`]).
    Cast {
        /// The target dtype.
        to: DType,
    },
    /// A leaf (typed by its node, `i32` or `f32`) whose element at index `idx` is
    /// `idx[axis]`: an arange along one axis, constant along the others.
    Iota {
        /// The counted axis.
        axis: usize,
    },
    /// `x[.., start..start + len, ..]` along one axis (a view).
    Slice {
        /// The sliced axis.
        axis: usize,
        /// First index kept.
        start: usize,
        /// Number of indices kept.
        len: usize,
    },
    /// Concatenation of one or more operands along an axis (all other extents and the
    /// dtype equal).
    Concat {
        /// The joined axis.
        axis: usize,
    },
    /// `table[.., ids[..], ..]` (NumPy `take`): inputs `table` and `ids` (`i32`, any
    /// shape); the output shape is `table.shape[..axis] ++ ids.shape ++
    /// table.shape[axis+1..]`. An id outside `0..table.shape[axis]` is an error in the
    /// interpreter; devices clamp it into range.
    Gather {
        /// The indexed axis of `table`.
        axis: usize,
    },
    /// The transpose of [`Op::Gather`]: inputs `src` and `ids` (`i32`), output zeros of
    /// `src.shape[..axis] ++ [size] ++ src.shape[axis + ids.rank()..]` with
    /// `out[.., ids[i], ..] += src[.., i, ..]` (ids occupy axes `axis..axis+ids.rank()`
    /// of `src`). Deterministic on every target (fixed summation order); an id outside
    /// `0..size` is an error in the interpreter and dropped on devices.
    ScatterAdd {
        /// Where the ids' axes start in `src` (and the scattered axis of the output).
        axis: usize,
        /// Extent of the scattered axis of the output.
        size: usize,
    },
    /// A composite op (see [`CompositeOp`]).
    Composite(CompositeOp),
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
            Op::Compare { op } => op.name(),
            Op::Select => "select",
            Op::Cast { .. } => "cast",
            Op::Iota { .. } => "iota",
            Op::Slice { .. } => "slice",
            Op::Concat { .. } => "concat",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::Composite(c) => c.name(),
        }
    }

    /// True for ops that only change how elements are indexed (views, no kernel).
    pub fn is_view(&self) -> bool {
        matches!(
            self,
            Op::Broadcast { .. } | Op::Reshape { .. } | Op::Permute { .. } | Op::Slice { .. }
        )
    }

    /// True for elementwise ops (fusable into any consumer or producer).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Unary { .. }
                | Op::Binary { .. }
                | Op::Compare { .. }
                | Op::Select
                | Op::Cast { .. }
        )
    }

    /// True for ops with no inputs (leaves of the graph).
    pub fn is_leaf(&self) -> bool {
        matches!(
            self,
            Op::Input | Op::Param | Op::Constant { .. } | Op::Iota { .. }
        )
    }

    /// Checks the type a leaf node carries: an `iota` is an `i32` or `f32` tensor with
    /// the counted axis in range; a constant's value is representable in its dtype (an
    /// integer in range for `i32` / `u32`, 0 or 1 for `bool`, not finite beyond the
    /// largest float of a float dtype).
    pub fn check_leaf(&self, node: &str, ty: &TensorType) -> Result<(), GraphError> {
        if let Op::Constant { value } = *self {
            let cast = cast_value(value, ty.dtype);
            let fits = if ty.dtype.is_float() {
                !(value.is_finite() && cast.is_infinite())
            } else {
                cast == value
            };
            if !fits {
                let what = match ty.dtype {
                    DType::Bool => "0 or 1",
                    DType::I32 | DType::U32 => "an integer in its range",
                    _ => "within its finite range",
                };
                return Err(GraphError::Invalid {
                    op: "constant",
                    node: node.to_string(),
                    reason: format!("value {value} does not fit {}: must be {what}", ty.dtype),
                });
            }
        }
        if let Op::Iota { axis } = self {
            if *axis >= ty.rank() {
                return Err(GraphError::AxisOutOfRange {
                    op: "iota",
                    node: node.to_string(),
                    axis: *axis,
                    shape: ty.shape.clone(),
                });
            }
            if !matches!(ty.dtype, DType::I32 | DType::F32) {
                return Err(GraphError::UnsupportedDType {
                    op: "iota",
                    node: node.to_string(),
                    dtype: ty.dtype,
                });
            }
        }
        Ok(())
    }

    /// Number of inputs the op takes (`None`: any number from 1, for `concat`).
    pub fn arity(&self) -> Option<usize> {
        Some(match self {
            Op::Input | Op::Param | Op::Constant { .. } | Op::Iota { .. } => 0,
            Op::Binary { .. }
            | Op::MatMul { .. }
            | Op::Compare { .. }
            | Op::Gather { .. }
            | Op::ScatterAdd { .. } => 2,
            Op::Select => 3,
            Op::Concat { .. } => return None,
            Op::Composite(c) => c.arity(),
            _ => 1,
        })
    }

    /// The type rule: the output type from the input types, or a typed error naming the
    /// op, the node and the shapes. Leaves are typed by their node and are not checked here.
    pub fn infer(&self, node: &str, inputs: &[&TensorType]) -> Result<TensorType, GraphError> {
        let op = self.name();
        let arity_ok = match self.arity() {
            Some(n) => inputs.len() == n,
            None => !inputs.is_empty(),
        };
        if !arity_ok {
            return Err(GraphError::Arity {
                op,
                node: node.to_string(),
                expected: self.arity().unwrap_or(1),
                got: inputs.len(),
            });
        }
        match self {
            Op::Input | Op::Param | Op::Constant { .. } | Op::Iota { .. } => {
                Err(GraphError::Invalid {
                    op,
                    node: node.to_string(),
                    reason: "leaf nodes carry their own type".into(),
                })
            }
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
            Op::Binary { op: bop } => {
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
                if a.dtype == DType::Bool || (!bop.allows_int() && !a.dtype.is_float()) {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: a.dtype,
                    });
                }
                Ok(a.clone())
            }
            Op::Compare { .. } => {
                let (a, b) = (inputs[0], inputs[1]);
                same_shape_dtype(op, node, a, b)?;
                if a.dtype == DType::Bool {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: a.dtype,
                    });
                }
                Ok(TensorType::new(a.shape.clone(), DType::Bool))
            }
            Op::Select => {
                let (c, a, b) = (inputs[0], inputs[1], inputs[2]);
                if c.dtype != DType::Bool {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: c.dtype,
                    });
                }
                if c.shape != a.shape {
                    return Err(GraphError::ShapeMismatch {
                        op,
                        node: node.to_string(),
                        lhs: c.shape.clone(),
                        rhs: a.shape.clone(),
                    });
                }
                same_shape_dtype(op, node, a, b)?;
                Ok(a.clone())
            }
            Op::Cast { to } => {
                let x = inputs[0];
                if x.dtype == DType::Bool || *to == DType::Bool {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: DType::Bool,
                    });
                }
                Ok(TensorType::new(x.shape.clone(), *to))
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
                let to = TensorType::checked_numel(shape).ok_or_else(|| GraphError::TooLarge {
                    op: "reshape",
                    node: node.to_string(),
                    shape: shape.clone(),
                })?;
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
            Op::Slice { axis, start, len } => {
                let x = inputs[0];
                check_axis(op, node, *axis, x)?;
                if start
                    .checked_add(*len)
                    .is_none_or(|end| end > x.shape[*axis])
                {
                    return Err(GraphError::Invalid {
                        op,
                        node: node.to_string(),
                        reason: format!(
                            "slice {start}..{} of axis {axis} out of range for shape {:?}",
                            start.saturating_add(*len),
                            x.shape
                        ),
                    });
                }
                let mut shape = x.shape.clone();
                shape[*axis] = *len;
                Ok(TensorType::new(shape, x.dtype))
            }
            Op::Concat { axis } => {
                let x = inputs[0];
                check_axis(op, node, *axis, x)?;
                let mut shape = x.shape.clone();
                for y in &inputs[1..] {
                    let fits = y.rank() == x.rank()
                        && (0..x.rank()).all(|i| i == *axis || y.shape[i] == x.shape[i]);
                    if !fits {
                        return Err(GraphError::ShapeMismatch {
                            op,
                            node: node.to_string(),
                            lhs: x.shape.clone(),
                            rhs: y.shape.clone(),
                        });
                    }
                    if y.dtype != x.dtype {
                        return Err(GraphError::DTypeMismatch {
                            op,
                            node: node.to_string(),
                            lhs: x.dtype,
                            rhs: y.dtype,
                        });
                    }
                    shape[*axis] = shape[*axis].checked_add(y.shape[*axis]).ok_or_else(|| {
                        GraphError::Invalid {
                            op,
                            node: node.to_string(),
                            reason: format!("the concatenated extent of axis {axis} overflows"),
                        }
                    })?;
                }
                Ok(TensorType::new(shape, x.dtype))
            }
            Op::Gather { axis } => {
                let (table, ids) = (inputs[0], inputs[1]);
                check_axis(op, node, *axis, table)?;
                check_ids(op, node, ids)?;
                if table.shape[*axis] == 0 && ids.numel() > 0 {
                    return Err(GraphError::Invalid {
                        op,
                        node: node.to_string(),
                        reason: format!(
                            "ids {:?} index axis {axis} of table {:?}, which is empty",
                            ids.shape, table.shape
                        ),
                    });
                }
                let mut shape = table.shape[..*axis].to_vec();
                shape.extend_from_slice(&ids.shape);
                shape.extend_from_slice(&table.shape[*axis + 1..]);
                Ok(TensorType::new(shape, table.dtype))
            }
            Op::ScatterAdd { axis, size } => {
                let (src, ids) = (inputs[0], inputs[1]);
                check_ids(op, node, ids)?;
                let end = axis.saturating_add(ids.rank());
                if end > src.rank() || src.shape[*axis..end] != ids.shape[..] {
                    return Err(GraphError::Invalid {
                        op,
                        node: node.to_string(),
                        reason: format!(
                            "ids {:?} must match axes {axis}.. of src {:?}",
                            ids.shape, src.shape
                        ),
                    });
                }
                if !src.dtype.is_float() {
                    return Err(GraphError::UnsupportedDType {
                        op,
                        node: node.to_string(),
                        dtype: src.dtype,
                    });
                }
                let mut shape = src.shape[..*axis].to_vec();
                shape.push(*size);
                shape.extend_from_slice(&src.shape[end..]);
                Ok(TensorType::new(shape, src.dtype))
            }
            Op::Composite(c) => c.infer(node, inputs),
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

/// Checks that an axis is within an operand's rank.
fn check_axis(op: &'static str, node: &str, axis: usize, x: &TensorType) -> Result<(), GraphError> {
    if axis >= x.rank() {
        return Err(GraphError::AxisOutOfRange {
            op,
            node: node.to_string(),
            axis,
            shape: x.shape.clone(),
        });
    }
    Ok(())
}

/// Checks that an index operand is `i32`.
fn check_ids(op: &'static str, node: &str, ids: &TensorType) -> Result<(), GraphError> {
    if ids.dtype != DType::I32 {
        return Err(GraphError::UnsupportedDType {
            op,
            node: node.to_string(),
            dtype: ids.dtype,
        });
    }
    Ok(())
}

/// Checks that two operands have one shape and one dtype.
fn same_shape_dtype(
    op: &'static str,
    node: &str,
    a: &TensorType,
    b: &TensorType,
) -> Result<(), GraphError> {
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
    Ok(())
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
