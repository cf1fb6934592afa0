//! Vector-Jacobian rules of the primitive ops. Each rule receives the node `y`, its
//! adjoint `gy` (same type as `y`) and which inputs want a gradient, and builds the
//! contributions to those inputs' adjoints.

use super::{select, Ad, AutodiffError};
use crate::graph::GraphError;
use crate::graph::{matmul_dims, BinaryOp, CompareOp, Node, NodeId, Op, ReduceOp, UnaryOp};

/// Contributions to each input's adjoint (`None`: none, or not wanted).
pub(crate) type Contribs = Vec<Option<NodeId>>;

impl Ad {
    /// The contributions of node `y` (with adjoint `gy`) to its inputs.
    pub(crate) fn vjp(
        &mut self,
        y: NodeId,
        node: &Node,
        gy: NodeId,
        wants: &[bool],
    ) -> Result<Contribs, AutodiffError> {
        let ins = &node.inputs;
        let mut out: Contribs = vec![None; ins.len()];
        match &node.op {
            // Leaves have no inputs; comparisons give bool values (never an adjoint).
            Op::Input | Op::Param | Op::Constant { .. } | Op::Iota { .. } | Op::Compare { .. } => {}
            Op::Unary { op } => out[0] = Some(self.unary_vjp(*op, ins[0], y, gy)?),
            Op::Binary { op } => {
                let (ga, gb) = self.binary_vjp(*op, ins[0], ins[1], y, gy, wants[0], wants[1])?;
                out[0] = ga;
                out[1] = gb;
            }
            Op::Reduce {
                op,
                axis,
                keep_dims,
            } => out[0] = Some(self.reduce_vjp(*op, ins[0], y, gy, *axis, *keep_dims)?),
            Op::MatMul {
                transpose_a,
                transpose_b,
            } => {
                let (ga, gb) = self.matmul_vjp(
                    node,
                    ins[0],
                    ins[1],
                    gy,
                    (*transpose_a, *transpose_b),
                    (wants[0], wants[1]),
                )?;
                out[0] = ga;
                out[1] = gb;
            }
            Op::Broadcast { .. } => {
                let shape = self.g.ty(ins[0]).shape.clone();
                out[0] = Some(self.unbroadcast(gy, &shape)?);
            }
            Op::Reshape { .. } => {
                let shape = self.g.ty(ins[0]).shape.clone();
                out[0] = Some(self.g.reshape(gy, &shape)?);
            }
            Op::Permute { perm } => {
                let mut inv = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inv[p] = i;
                }
                out[0] = Some(self.g.permute(gy, &inv)?);
            }
            // `where(c, a, b)`: the gradient goes to the chosen branch; `c` takes none.
            Op::Select => {
                let dt = node.ty.dtype;
                let zero = self.scalar(0.0, dt)?;
                if wants[1] {
                    out[1] = Some(select(&mut self.g, ins[0], gy, zero)?);
                }
                if wants[2] {
                    out[2] = Some(select(&mut self.g, ins[0], zero, gy)?);
                }
            }
            // Float to float: straight through, cast back. (Float to integer on a path to
            // the loss is refused before the sweep; integer operands want nothing.)
            Op::Cast { .. } => {
                let from = self.g.ty(ins[0]).dtype;
                out[0] = Some(if from == node.ty.dtype {
                    gy
                } else {
                    self.g.cast(gy, from)?
                });
            }
            // Pad with zeros on both sides of the slice.
            Op::Slice { axis, start, len } => {
                let shape = self.g.ty(ins[0]).shape.clone();
                let dt = node.ty.dtype;
                let after = shape[*axis] - start - len;
                let mut parts = Vec::with_capacity(3);
                for (n, is_gy) in [(*start, false), (*len, true), (after, false)] {
                    if is_gy {
                        parts.push(gy);
                    } else if n > 0 {
                        let mut s = shape.clone();
                        s[*axis] = n;
                        parts.push(self.zeros(&s, dt)?);
                    }
                }
                out[0] = Some(if parts.len() == 1 {
                    gy
                } else {
                    self.g.concat(&parts, *axis)?
                });
            }
            // Each operand gets its slice of the gradient.
            Op::Concat { axis } => {
                let mut off = 0;
                for (k, &x) in ins.iter().enumerate() {
                    let len = self.g.ty(x).shape[*axis];
                    if wants[k] {
                        out[k] = Some(self.g.slice(gy, *axis, off, len)?);
                    }
                    off += len;
                }
            }
            // The table's gradient scatters the rows back (ids repeat: they add up).
            Op::Gather { axis } => {
                let n = self.g.ty(ins[0]).shape[*axis];
                out[0] = Some(self.g.scatter_add(gy, ins[1], *axis, n)?);
            }
            // The source's gradient gathers the rows it was added to.
            Op::ScatterAdd { axis, .. } => {
                out[0] = Some(self.g.gather(gy, ins[1], *axis)?);
            }
            Op::Composite(c) => out = self.composite_vjp(c, y, node, gy, wants)?,
        }
        Ok(out)
    }

    /// `dx` of a unary op `y = f(x)`.
    fn unary_vjp(
        &mut self,
        op: UnaryOp,
        x: NodeId,
        y: NodeId,
        gy: NodeId,
    ) -> Result<NodeId, GraphError> {
        let dt = self.g.ty(x).dtype;
        let g = &mut self.g;
        match op {
            UnaryOp::Neg => g.neg(gy),
            // e^x: gy * y.
            UnaryOp::Exp => g.mul(gy, y),
            // 1/x.
            UnaryOp::Log => g.div(gy, x),
            // 1 / (2 sqrt x): gy * 0.5 / y.
            UnaryOp::Sqrt => {
                let h = g.constant(0.5, &[], dt)?;
                let t = g.mul(gy, h)?;
                g.div(t, y)
            }
            // -x^(-3/2) / 2 = -0.5 * y / x.
            UnaryOp::Rsqrt => {
                let h = g.constant(-0.5, &[], dt)?;
                let t = g.mul(gy, y)?;
                let t = g.div(t, x)?;
                g.mul(t, h)
            }
            // 1 - y^2.
            UnaryOp::Tanh => {
                let one = g.constant(1.0, &[], dt)?;
                let y2 = g.mul(y, y)?;
                let d = g.sub(one, y2)?;
                g.mul(gy, d)
            }
            // 2/sqrt(pi) e^(-x^2).
            UnaryOp::Erf => {
                let x2 = g.mul(x, x)?;
                let e = g.neg(x2)?;
                let e = g.exp(e)?;
                let k = g.constant(std::f64::consts::FRAC_2_SQRT_PI, &[], dt)?;
                let d = g.mul(e, k)?;
                g.mul(gy, d)
            }
            // y (1 - y).
            UnaryOp::Sigmoid => {
                let one = g.constant(1.0, &[], dt)?;
                let c = g.sub(one, y)?;
                let d = g.mul(y, c)?;
                g.mul(gy, d)
            }
            // -1/x^2 = -y^2.
            UnaryOp::Reciprocal => {
                let y2 = g.mul(y, y)?;
                let t = g.mul(gy, y2)?;
                g.neg(t)
            }
            // sign(x), with sign(0) = 0.
            UnaryOp::Abs => {
                let zero = g.constant(0.0, &[], dt)?;
                let one = g.constant(1.0, &[], dt)?;
                let m1 = g.constant(-1.0, &[], dt)?;
                let pos = g.compare(CompareOp::Gt, x, zero)?;
                let neg = g.compare(CompareOp::Lt, x, zero)?;
                let s = select(g, neg, m1, zero)?;
                let s = select(g, pos, one, s)?;
                g.mul(gy, s)
            }
            // 1 where x > 0, else 0 (0 at the kink).
            UnaryOp::Relu => {
                let zero = g.constant(0.0, &[], dt)?;
                let pos = g.compare(CompareOp::Gt, x, zero)?;
                select(g, pos, gy, zero)
            }
        }
    }

    /// `(da, db)` of a binary op `y = a op b` (operands of one shape).
    #[allow(clippy::too_many_arguments)]
    fn binary_vjp(
        &mut self,
        op: BinaryOp,
        a: NodeId,
        b: NodeId,
        y: NodeId,
        gy: NodeId,
        wa: bool,
        wb: bool,
    ) -> Result<(Option<NodeId>, Option<NodeId>), GraphError> {
        let dt = self.g.ty(a).dtype;
        let g = &mut self.g;
        let (mut ga, mut gb) = (None, None);
        match op {
            BinaryOp::Add => {
                ga = Some(gy);
                gb = Some(gy);
            }
            BinaryOp::Sub => {
                ga = Some(gy);
                if wb {
                    gb = Some(g.neg(gy)?);
                }
            }
            BinaryOp::Mul => {
                if wa {
                    ga = Some(g.mul(gy, b)?);
                }
                if wb {
                    gb = Some(g.mul(gy, a)?);
                }
            }
            // d/da = 1/b, d/db = -a/b^2 = -y/b.
            BinaryOp::Div => {
                if wa {
                    ga = Some(g.div(gy, b)?);
                }
                if wb {
                    let t = g.mul(gy, y)?;
                    let t = g.div(t, b)?;
                    gb = Some(g.neg(t)?);
                }
            }
            // The larger (smaller) operand takes the gradient; ties split it evenly.
            BinaryOp::Max | BinaryOp::Min => {
                let wins = if op == BinaryOp::Max {
                    CompareOp::Gt
                } else {
                    CompareOp::Lt
                };
                let zero = g.constant(0.0, &[], dt)?;
                let half = g.constant(0.5, &[], dt)?;
                let one = g.constant(1.0, &[], dt)?;
                let tie = g.compare(CompareOp::Eq, a, b)?;
                let tie_w = select(g, tie, half, zero)?;
                for (want, this, other, slot) in [(wa, a, b, &mut ga), (wb, b, a, &mut gb)] {
                    if want {
                        let win = g.compare(wins, this, other)?;
                        let w = select(g, win, one, tie_w)?;
                        *slot = Some(g.mul(gy, w)?);
                    }
                }
            }
            // y = a^b: d/da = b a^(b-1); d/db = y ln a, taken as 0 where a <= 0.
            BinaryOp::Pow => {
                if wa {
                    let one = g.constant(1.0, &[], dt)?;
                    let bm1 = g.sub(b, one)?;
                    let p = g.pow(a, bm1)?;
                    let d = g.mul(b, p)?;
                    ga = Some(g.mul(gy, d)?);
                }
                if wb {
                    let zero = g.constant(0.0, &[], dt)?;
                    let pos = g.compare(CompareOp::Gt, a, zero)?;
                    let l = g.log(a)?;
                    let d = g.mul(y, l)?;
                    let d = select(g, pos, d, zero)?;
                    gb = Some(g.mul(gy, d)?);
                }
            }
        }
        Ok((ga, gb))
    }

    /// `dx` of a reduction over `axis`.
    fn reduce_vjp(
        &mut self,
        op: ReduceOp,
        x: NodeId,
        y: NodeId,
        gy: NodeId,
        axis: usize,
        keep_dims: bool,
    ) -> Result<NodeId, GraphError> {
        let xt = self.g.ty(x).clone();
        let mut kept = xt.shape.clone();
        kept[axis] = 1;
        let g1 = if keep_dims {
            gy
        } else {
            self.g.reshape(gy, &kept)?
        };
        match op {
            ReduceOp::Sum => self.g.broadcast(g1, &xt.shape),
            ReduceOp::Mean => {
                let k = self.scalar(1.0 / xt.shape[axis] as f64, xt.dtype)?;
                let g1 = self.g.mul(g1, k)?;
                self.g.broadcast(g1, &xt.shape)
            }
            // The maxima of each row share the gradient evenly (ties split it).
            ReduceOp::Max => {
                let y1 = if keep_dims {
                    y
                } else {
                    self.g.reshape(y, &kept)?
                };
                let hit = self.g.compare(CompareOp::Eq, x, y1)?;
                let one = self.scalar(1.0, xt.dtype)?;
                let zero = self.scalar(0.0, xt.dtype)?;
                let m = select(&mut self.g, hit, one, zero)?;
                let count = self.g.sum(m, axis, true)?;
                let w = self.g.div(g1, count)?;
                self.g.mul(m, w)
            }
        }
    }

    /// `(da, db)` of a matmul. A 2-D operand shared by every batch sums its gradient over
    /// the batch: for a shared `b` and an untransposed `a` (the `x [B, T, K] @ w [K, N]`
    /// of a linear layer) the batch folds into the contraction of one 2-D matmul;
    /// otherwise the batched gradient is summed over the batch axes.
    fn matmul_vjp(
        &mut self,
        node: &Node,
        a: NodeId,
        b: NodeId,
        gy: NodeId,
        (ta, tb): (bool, bool),
        (wa, wb): (bool, bool),
    ) -> Result<(Option<NodeId>, Option<NodeId>), GraphError> {
        let d = matmul_dims(&node.name, self.g.ty(a), self.g.ty(b), ta, tb)?;
        let batched = !d.batch.is_empty();
        let (mut ga, mut gb) = (None, None);
        if wa {
            // dA^ = G B^T; with `transpose_a`, dA = B^ G^T.
            let t = if ta {
                self.g.matmul_t(b, gy, tb, true)?
            } else {
                self.g.matmul_t(gy, b, false, !tb)?
            };
            ga = Some(if batched && !d.a_batched {
                self.sum_leading(t, 2)?
            } else {
                t
            });
        }
        if wb {
            gb = Some(if batched && !d.b_batched && !ta {
                // Fold the batch into the rows of a and of G: [P * M, K] and [P * M, N].
                let p: usize = d.batch.iter().product();
                let a2 = self.g.reshape(a, &[p * d.m, d.k])?;
                let g2 = self.g.reshape(gy, &[p * d.m, d.n])?;
                if tb {
                    self.g.matmul_t(g2, a2, true, false)?
                } else {
                    self.g.matmul_t(a2, g2, true, false)?
                }
            } else {
                // dB^ = A^T G; with `transpose_b`, dB = G^T A^.
                let t = if tb {
                    self.g.matmul_t(gy, a, true, ta)?
                } else {
                    self.g.matmul_t(a, gy, !ta, false)?
                };
                if batched && !d.b_batched {
                    self.sum_leading(t, 2)?
                } else {
                    t
                }
            });
        }
        Ok((ga, gb))
    }

    /// Sums `gy` over the axes a broadcast to its shape added or stretched, back to
    /// `shape`.
    pub(crate) fn unbroadcast(
        &mut self,
        gy: NodeId,
        shape: &[usize],
    ) -> Result<NodeId, GraphError> {
        let t = self.g.ty(gy).shape.clone();
        let lead = t.len() - shape.len();
        let mut cur = if lead > 0 {
            self.sum_leading(gy, shape.len())?
        } else {
            gy
        };
        for (i, &s) in shape.iter().enumerate() {
            if s == 1 && t[lead + i] != 1 {
                cur = self.g.sum(cur, i, true)?;
            }
        }
        Ok(cur)
    }
}
