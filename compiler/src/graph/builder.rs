//! Builder methods on [`Graph`]: one call per op, each inferring and checking types.
//! Elementwise binary helpers broadcast their operands NumPy-style by inserting explicit
//! `broadcast` views, so the graph itself only holds same-shape binary ops.

use super::{
    BinaryOp, CompareOp, CompositeOp, DType, Graph, GraphError, NodeId, Op, ReduceOp, TensorType,
    UnaryOp,
};

impl Graph {
    /// A run-time input of the given shape and dtype.
    pub fn input(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<NodeId, GraphError> {
        self.push(
            Op::Input,
            vec![],
            Some(TensorType::new(shape, dtype)),
            Some(name),
        )
    }

    /// A parameter of the given shape and dtype.
    pub fn param(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
    ) -> Result<NodeId, GraphError> {
        self.push(
            Op::Param,
            vec![],
            Some(TensorType::new(shape, dtype)),
            Some(name),
        )
    }

    /// A tensor of the given shape filled with `value`.
    pub fn constant(
        &mut self,
        value: f64,
        shape: &[usize],
        dtype: DType,
    ) -> Result<NodeId, GraphError> {
        self.push(
            Op::Constant { value },
            vec![],
            Some(TensorType::new(shape, dtype)),
            None,
        )
    }

    /// Elementwise unary op.
    pub fn unary(&mut self, op: UnaryOp, x: NodeId) -> Result<NodeId, GraphError> {
        self.push(Op::Unary { op }, vec![x], None, None)
    }

    /// Elementwise binary op; operands are broadcast to a common shape first.
    pub fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        let (a, b) = self.broadcast_pair(op.name(), a, b)?;
        self.push(Op::Binary { op }, vec![a, b], None, None)
    }

    /// `a + b` (broadcasting).
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.binary(BinaryOp::Add, a, b)
    }
    /// `a - b` (broadcasting).
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.binary(BinaryOp::Sub, a, b)
    }
    /// `a * b` (broadcasting).
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.binary(BinaryOp::Mul, a, b)
    }
    /// `a / b` (broadcasting).
    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.binary(BinaryOp::Div, a, b)
    }
    /// `max(a, b)` (broadcasting).
    pub fn max(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.binary(BinaryOp::Max, a, b)
    }
    /// `-x`
    pub fn neg(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Neg, x)
    }
    /// `e^x`
    pub fn exp(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Exp, x)
    }
    /// `ln x`
    pub fn log(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Log, x)
    }
    /// `sqrt x`
    pub fn sqrt(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Sqrt, x)
    }
    /// `1/sqrt x`
    pub fn rsqrt(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Rsqrt, x)
    }
    /// `tanh x`
    pub fn tanh(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Tanh, x)
    }
    /// `erf x`
    pub fn erf(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Erf, x)
    }
    /// `1 / (1 + e^-x)`
    pub fn sigmoid(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Sigmoid, x)
    }
    /// `1 / x`
    pub fn reciprocal(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Reciprocal, x)
    }
    /// `|x|`
    pub fn abs(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Abs, x)
    }
    /// `max(x, 0)`
    pub fn relu(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.unary(UnaryOp::Relu, x)
    }
    /// `a ^ b` (broadcasting; float, `a >= 0`).
    pub fn pow(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.binary(BinaryOp::Pow, a, b)
    }
    /// `min(a, b)` (broadcasting).
    pub fn min(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.binary(BinaryOp::Min, a, b)
    }

    /// `clamp(x, lo, hi)`, built as `min(max(x, lo), hi)` with `lo` and `hi` constants of
    /// `x`'s type (constants fold into the kernel; no op of its own). NaN propagates.
    pub fn clamp(&mut self, x: NodeId, lo: f64, hi: f64) -> Result<NodeId, GraphError> {
        self.check_id(x, "clamp")?;
        let ty = self.ty(x).clone();
        if lo > hi {
            return Err(GraphError::Invalid {
                op: "clamp",
                node: self.node(x).name.clone(),
                reason: format!("clamp bounds {lo} > {hi}"),
            });
        }
        let l = self.constant(lo, &ty.shape, ty.dtype)?;
        let h = self.constant(hi, &ty.shape, ty.dtype)?;
        let m = self.max(x, l)?;
        self.min(m, h)
    }

    /// Elementwise comparison (broadcasting); the result is `bool`.
    pub fn compare(&mut self, op: CompareOp, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        let (a, b) = self.broadcast_pair(op.name(), a, b)?;
        self.push(Op::Compare { op }, vec![a, b], None, None)
    }

    /// `where(cond, a, b)`: `a` and `b` are broadcast to a common shape, then `cond` to it.
    pub fn select(&mut self, cond: NodeId, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.check_id(cond, "select")?;
        let (a, b) = self.broadcast_pair("select", a, b)?;
        let shape = self.ty(a).shape.clone();
        let cond = if self.ty(cond).shape == shape {
            cond
        } else {
            self.broadcast(cond, &shape)?
        };
        self.push(Op::Select, vec![cond, a, b], None, None)
    }

    /// Conversion to another dtype.
    pub fn cast(&mut self, x: NodeId, to: DType) -> Result<NodeId, GraphError> {
        self.push(Op::Cast { to }, vec![x], None, None)
    }

    /// `iota`: a tensor of the given shape whose elements count along `axis` (`i32` or
    /// `f32`).
    pub fn iota(
        &mut self,
        shape: &[usize],
        axis: usize,
        dtype: DType,
    ) -> Result<NodeId, GraphError> {
        self.push(
            Op::Iota { axis },
            vec![],
            Some(TensorType::new(shape, dtype)),
            None,
        )
    }

    /// Reduction over one axis.
    pub fn reduce(
        &mut self,
        op: ReduceOp,
        x: NodeId,
        axis: usize,
        keep_dims: bool,
    ) -> Result<NodeId, GraphError> {
        self.push(
            Op::Reduce {
                op,
                axis,
                keep_dims,
            },
            vec![x],
            None,
            None,
        )
    }

    /// Sum over an axis.
    pub fn sum(&mut self, x: NodeId, axis: usize, keep_dims: bool) -> Result<NodeId, GraphError> {
        self.reduce(ReduceOp::Sum, x, axis, keep_dims)
    }
    /// Max over an axis.
    pub fn reduce_max(
        &mut self,
        x: NodeId,
        axis: usize,
        keep_dims: bool,
    ) -> Result<NodeId, GraphError> {
        self.reduce(ReduceOp::Max, x, axis, keep_dims)
    }
    /// Mean over an axis.
    pub fn mean(&mut self, x: NodeId, axis: usize, keep_dims: bool) -> Result<NodeId, GraphError> {
        self.reduce(ReduceOp::Mean, x, axis, keep_dims)
    }

    /// Matrix product with optional transposes.
    pub fn matmul_t(
        &mut self,
        a: NodeId,
        b: NodeId,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<NodeId, GraphError> {
        self.push(
            Op::MatMul {
                transpose_a,
                transpose_b,
            },
            vec![a, b],
            None,
            None,
        )
    }

    /// Matrix product.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
        self.matmul_t(a, b, false, false)
    }

    /// Broadcast to a shape (a view; no-op when the shape is unchanged).
    pub fn broadcast(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId, GraphError> {
        self.check_id(x, "broadcast")?;
        if self.ty(x).shape == shape {
            return Ok(x);
        }
        self.push(
            Op::Broadcast {
                shape: shape.to_vec(),
            },
            vec![x],
            None,
            None,
        )
    }

    /// Reshape (a view).
    pub fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId, GraphError> {
        self.push(
            Op::Reshape {
                shape: shape.to_vec(),
            },
            vec![x],
            None,
            None,
        )
    }

    /// Permute axes (a view).
    pub fn permute(&mut self, x: NodeId, perm: &[usize]) -> Result<NodeId, GraphError> {
        self.push(
            Op::Permute {
                perm: perm.to_vec(),
            },
            vec![x],
            None,
            None,
        )
    }

    /// `x[.., start..start + len, ..]` along `axis` (a view).
    pub fn slice(
        &mut self,
        x: NodeId,
        axis: usize,
        start: usize,
        len: usize,
    ) -> Result<NodeId, GraphError> {
        self.push(Op::Slice { axis, start, len }, vec![x], None, None)
    }

    /// Concatenation along `axis`.
    pub fn concat(&mut self, xs: &[NodeId], axis: usize) -> Result<NodeId, GraphError> {
        self.push(Op::Concat { axis }, xs.to_vec(), None, None)
    }

    /// `table[.., ids, ..]` along `axis` (embedding lookup with `axis` 0).
    pub fn gather(
        &mut self,
        table: NodeId,
        ids: NodeId,
        axis: usize,
    ) -> Result<NodeId, GraphError> {
        self.push(Op::Gather { axis }, vec![table, ids], None, None)
    }

    /// Scatter-add of `src` rows into `size` slots along `axis` (see [`Op::ScatterAdd`]).
    pub fn scatter_add(
        &mut self,
        src: NodeId,
        ids: NodeId,
        axis: usize,
        size: usize,
    ) -> Result<NodeId, GraphError> {
        self.push(Op::ScatterAdd { axis, size }, vec![src, ids], None, None)
    }

    /// A composite op on its inputs.
    pub fn composite(&mut self, op: CompositeOp, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        self.push(Op::Composite(op), inputs.to_vec(), None, None)
    }

    /// Softmax over the last axis.
    pub fn softmax(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.composite(CompositeOp::Softmax, &[x])
    }

    /// Log-softmax over the last axis.
    pub fn log_softmax(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.composite(CompositeOp::LogSoftmax, &[x])
    }

    /// Layer norm over the last axis, with `Some((gamma, beta))` for the affine form.
    pub fn layer_norm(
        &mut self,
        x: NodeId,
        affine: Option<(NodeId, NodeId)>,
        eps: f64,
    ) -> Result<NodeId, GraphError> {
        match affine {
            Some((g, b)) => {
                self.composite(CompositeOp::LayerNorm { eps, affine: true }, &[x, g, b])
            }
            None => self.composite(CompositeOp::LayerNorm { eps, affine: false }, &[x]),
        }
    }

    /// RMS norm over the last axis, with `Some(gamma)` for the affine form.
    pub fn rms_norm(
        &mut self,
        x: NodeId,
        gamma: Option<NodeId>,
        eps: f64,
    ) -> Result<NodeId, GraphError> {
        match gamma {
            Some(g) => self.composite(CompositeOp::RmsNorm { eps, affine: true }, &[x, g]),
            None => self.composite(CompositeOp::RmsNorm { eps, affine: false }, &[x]),
        }
    }

    /// GELU (exact erf form, or the tanh approximation).
    pub fn gelu(&mut self, x: NodeId, tanh: bool) -> Result<NodeId, GraphError> {
        self.composite(CompositeOp::Gelu { tanh }, &[x])
    }

    /// SiLU `x * sigmoid(x)`.
    pub fn silu(&mut self, x: NodeId) -> Result<NodeId, GraphError> {
        self.composite(CompositeOp::Silu, &[x])
    }

    /// SwiGLU `silu(gate) * up`.
    pub fn swiglu(&mut self, gate: NodeId, up: NodeId) -> Result<NodeId, GraphError> {
        self.composite(CompositeOp::SwiGlu, &[gate, up])
    }

    /// Rotary position embedding of `x [.., T, D]` with `cos`, `sin` `[T, D/2]`.
    pub fn rope(
        &mut self,
        x: NodeId,
        cos: NodeId,
        sin: NodeId,
        interleaved: bool,
    ) -> Result<NodeId, GraphError> {
        self.composite(CompositeOp::Rope { interleaved }, &[x, cos, sin])
    }

    /// Scaled-dot-product attention (see [`CompositeOp::Attention`]); `scale` defaults to
    /// `1 / sqrt(D)`, `mask` is the optional `[B, Tk]` `i32` padding mask.
    pub fn attention(
        &mut self,
        q: NodeId,
        k: NodeId,
        v: NodeId,
        mask: Option<NodeId>,
        causal: bool,
        scale: Option<f64>,
    ) -> Result<NodeId, GraphError> {
        self.check_id(q, "attention")?;
        let d = self.ty(q).shape.last().copied().unwrap_or(1).max(1);
        let scale = scale.unwrap_or(1.0 / (d as f64).sqrt());
        let mut inputs = vec![q, k, v];
        inputs.extend(mask);
        self.composite(
            CompositeOp::Attention {
                causal,
                padding: mask.is_some(),
                scale,
            },
            &inputs,
        )
    }

    /// Mean cross-entropy of `logits [N, V]` against `targets [N]` (`i32`).
    pub fn cross_entropy(
        &mut self,
        logits: NodeId,
        targets: NodeId,
        ignore_index: i64,
    ) -> Result<NodeId, GraphError> {
        self.composite(
            CompositeOp::CrossEntropy { ignore_index },
            &[logits, targets],
        )
    }

    /// Renames a node (names must stay unique).
    pub fn set_name(&mut self, id: NodeId, name: &str) -> Result<(), GraphError> {
        if name.is_empty() {
            return Err(GraphError::Invalid {
                op: "rename",
                node: String::new(),
                reason: "a node name must not be empty".into(),
            });
        }
        if let Some(other) = self.find(name) {
            if other != id {
                return Err(GraphError::DuplicateName {
                    node: name.to_string(),
                });
            }
            return Ok(());
        }
        let node = self
            .nodes
            .get_mut(id.index())
            .ok_or_else(|| GraphError::UnknownInput {
                node: name.to_string(),
                input: id.to_string(),
            })?;
        let old = std::mem::replace(&mut node.name, name.to_string());
        self.names.remove(&old);
        self.names.insert(name.to_string(), id);
        Ok(())
    }

    fn broadcast_pair(
        &mut self,
        op: &'static str,
        a: NodeId,
        b: NodeId,
    ) -> Result<(NodeId, NodeId), GraphError> {
        self.check_id(a, op)?;
        self.check_id(b, op)?;
        let (sa, sb) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        if sa == sb {
            return Ok((a, b));
        }
        let rank = sa.len().max(sb.len());
        let mut out = vec![0; rank];
        for i in 0..rank {
            let da = if i + sa.len() >= rank {
                sa[i + sa.len() - rank]
            } else {
                1
            };
            let db = if i + sb.len() >= rank {
                sb[i + sb.len() - rank]
            } else {
                1
            };
            out[i] = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err(GraphError::ShapeMismatch {
                    op,
                    node: format!("{}_{}", op, self.len()),
                    lhs: sa,
                    rhs: sb,
                });
            };
        }
        Ok((self.broadcast(a, &out)?, self.broadcast(b, &out)?))
    }
}
