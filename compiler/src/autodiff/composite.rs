//! Vector-Jacobian rules of the composite ops. Each is a closed form that keeps the
//! backward pass compact (and, where it can, made of fused composites: the gradient of
//! RoPE is a RoPE, cross-entropy's uses the fused softmax, attention's is the
//! flash-attention backward ops) instead of the gradient of the decomposition.

use super::rules::Contribs;
use super::{select, Ad, AutodiffError};
use crate::graph::{CompareOp, CompositeOp, DType, GraphError, Node, NodeId};

impl Ad {
    /// The contributions of composite node `y` (with adjoint `gy`) to its inputs.
    pub(crate) fn composite_vjp(
        &mut self,
        c: &CompositeOp,
        y: NodeId,
        node: &Node,
        gy: NodeId,
        wants: &[bool],
    ) -> Result<Contribs, AutodiffError> {
        let ins = &node.inputs;
        let x = ins[0];
        let dt = node.ty.dtype;
        let mut out: Contribs = vec![None; ins.len()];
        match c {
            // y * (g - sum(g * y)).
            CompositeOp::Softmax => {
                let last = self.g.ty(x).rank() - 1;
                let gyy = self.g.mul(gy, y)?;
                let s = self.g.sum(gyy, last, true)?;
                let d = self.g.sub(gy, s)?;
                out[0] = Some(self.g.mul(y, d)?);
            }
            // g - softmax(x) * sum(g), with softmax(x) = exp(y).
            CompositeOp::LogSoftmax => {
                let last = self.g.ty(x).rank() - 1;
                let s = self.g.sum(gy, last, true)?;
                let p = self.g.exp(y)?;
                let ps = self.g.mul(p, s)?;
                out[0] = Some(self.g.sub(gy, ps)?);
            }
            CompositeOp::LayerNorm { eps, affine } => {
                let last = self.g.ty(x).rank() - 1;
                let mean = self.g.mean(x, last, true)?;
                let xc = self.g.sub(x, mean)?;
                let sq = self.g.mul(xc, xc)?;
                let var = self.g.mean(sq, last, true)?;
                let (xhat, rstd) = self.normalise(xc, var, *eps, dt)?;
                let gxh = if *affine { self.g.mul(gy, ins[1])? } else { gy };
                if wants[0] {
                    // rstd * (gxh - mean(gxh) - xhat * mean(gxh * xhat)).
                    let a = self.g.mean(gxh, last, true)?;
                    let p = self.g.mul(gxh, xhat)?;
                    let b = self.g.mean(p, last, true)?;
                    let xb = self.g.mul(xhat, b)?;
                    let t = self.g.sub(gxh, a)?;
                    let t = self.g.sub(t, xb)?;
                    out[0] = Some(self.g.mul(t, rstd)?);
                }
                if *affine && wants[1] {
                    let p = self.g.mul(gy, xhat)?;
                    out[1] = Some(self.sum_leading(p, 1)?);
                }
                if *affine && wants[2] {
                    out[2] = Some(self.sum_leading(gy, 1)?);
                }
            }
            CompositeOp::RmsNorm { eps, affine } => {
                let last = self.g.ty(x).rank() - 1;
                let sq = self.g.mul(x, x)?;
                let ms = self.g.mean(sq, last, true)?;
                let (xhat, r) = self.normalise(x, ms, *eps, dt)?;
                let gxh = if *affine { self.g.mul(gy, ins[1])? } else { gy };
                if wants[0] {
                    // r * (gxh - xhat * mean(gxh * xhat)).
                    let p = self.g.mul(gxh, xhat)?;
                    let b = self.g.mean(p, last, true)?;
                    let xb = self.g.mul(xhat, b)?;
                    let t = self.g.sub(gxh, xb)?;
                    out[0] = Some(self.g.mul(t, r)?);
                }
                if *affine && wants[1] {
                    let p = self.g.mul(gy, xhat)?;
                    out[1] = Some(self.sum_leading(p, 1)?);
                }
            }
            CompositeOp::Gelu { tanh } => {
                let d = if *tanh {
                    self.gelu_tanh_grad(x, dt)?
                } else {
                    self.gelu_erf_grad(x, dt)?
                };
                out[0] = Some(self.g.mul(gy, d)?);
            }
            CompositeOp::Silu => {
                let (_, d) = self.silu_and_grad(x, dt)?;
                out[0] = Some(self.g.mul(gy, d)?);
            }
            // silu(gate) * up.
            CompositeOp::SwiGlu => {
                let up = ins[1];
                let (s, d) = self.silu_and_grad(x, dt)?;
                if wants[0] {
                    let t = self.g.mul(gy, up)?;
                    out[0] = Some(self.g.mul(t, d)?);
                }
                if wants[1] {
                    out[1] = Some(self.g.mul(gy, s)?);
                }
            }
            CompositeOp::Rope { interleaved } => {
                out = self.rope_vjp(ins, gy, *interleaved, wants)?;
            }
            // Flash-attention backward ops: statistics, then dq / dk / dv.
            CompositeOp::Attention {
                causal,
                padding,
                scale,
            } => {
                let mask = padding.then(|| ins[3]);
                let w = [wants[0], wants[1], wants[2]];
                let [gq, gk, gv] = self
                    .g
                    .attention_backward(x, ins[1], ins[2], y, gy, mask, *causal, *scale, w)?;
                out[0] = gq;
                out[1] = gk;
                out[2] = gv;
            }
            CompositeOp::CrossEntropy { ignore_index } => {
                // (softmax - onehot) * keep * g / max(count, 1).
                let (diff, keep) = self.ce_parts(x, ins[1], *ignore_index, dt)?;
                let count = self.g.sum(keep, 0, false)?;
                let one = self.scalar(1.0, dt)?;
                let den = self.g.max(count, one)?;
                let w = self.g.div(gy, den)?;
                let w = self.g.mul(keep, w)?;
                out[0] = Some(self.row_scale(diff, w)?);
            }
            // The backward ops of attention have no backward rule themselves (second
            // derivatives of attention are not supported).
            CompositeOp::AttentionStats { .. } | CompositeOp::AttentionGrad { .. } => {
                return Err(AutodiffError::NoGradient {
                    op: c.name(),
                    node: node.name.clone(),
                    reason: "second derivatives of attention are not supported".into(),
                });
            }
            // Integer results of integer ids: nothing to differentiate.
            CompositeOp::ScatterRanks { .. }
            | CompositeOp::ScatterOrder
            | CompositeOp::ScatterStarts { .. } => {}
            // As for the scatter-add it computes: the ids gather the adjoint.
            CompositeOp::SortedScatterAdd { axis, .. } => {
                if wants[0] {
                    out[0] = Some(self.g.gather(gy, ins[1], *axis)?);
                }
            }
            CompositeOp::TokenCrossEntropy { ignore_index } => {
                // (softmax - onehot) * keep * g[t].
                let (diff, keep) = self.ce_parts(x, ins[1], *ignore_index, dt)?;
                let w = self.g.mul(keep, gy)?;
                out[0] = Some(self.row_scale(diff, w)?);
            }
        }
        Ok(out)
    }

    /// `(xc * rstd, rstd)` with `rstd = 1 / sqrt(var + eps)`.
    fn normalise(
        &mut self,
        xc: NodeId,
        var: NodeId,
        eps: f64,
        dt: DType,
    ) -> Result<(NodeId, NodeId), GraphError> {
        let e = self.scalar(eps, dt)?;
        let ve = self.g.add(var, e)?;
        let rstd = self.g.rsqrt(ve)?;
        Ok((self.g.mul(xc, rstd)?, rstd))
    }

    /// d/dx of `x Phi(x)`: `Phi(x) + x phi(x)`, `Phi(x) = (1 + erf(x / sqrt 2)) / 2`,
    /// `phi(x) = e^(-x^2 / 2) / sqrt(2 pi)`.
    fn gelu_erf_grad(&mut self, x: NodeId, dt: DType) -> Result<NodeId, GraphError> {
        let k = self.scalar(std::f64::consts::FRAC_1_SQRT_2, dt)?;
        let half = self.scalar(0.5, dt)?;
        let one = self.scalar(1.0, dt)?;
        let inv_sqrt_2pi = self.scalar(
            0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2,
            dt,
        )?;
        let m_half = self.scalar(-0.5, dt)?;
        let g = &mut self.g;
        let a = g.mul(x, k)?;
        let e = g.erf(a)?;
        let cdf = g.add(e, one)?;
        let cdf = g.mul(cdf, half)?;
        let x2 = g.mul(x, x)?;
        let t = g.mul(x2, m_half)?;
        let t = g.exp(t)?;
        let pdf = g.mul(t, inv_sqrt_2pi)?;
        let xp = g.mul(x, pdf)?;
        g.add(cdf, xp)
    }

    /// d/dx of `x (1 + tanh(u)) / 2`, `u = c (x + 0.044715 x^3)`, `c = sqrt(2/pi)`:
    /// `(1 + t) / 2 + x (1 - t^2) c (1 + 3 * 0.044715 x^2) / 2`.
    fn gelu_tanh_grad(&mut self, x: NodeId, dt: DType) -> Result<NodeId, GraphError> {
        let c = self.scalar((2.0 / std::f64::consts::PI).sqrt(), dt)?;
        let k = self.scalar(0.044715, dt)?;
        let k3 = self.scalar(3.0 * 0.044715, dt)?;
        let half = self.scalar(0.5, dt)?;
        let one = self.scalar(1.0, dt)?;
        let g = &mut self.g;
        let x2 = g.mul(x, x)?;
        let x3 = g.mul(x2, x)?;
        let kx3 = g.mul(x3, k)?;
        let s = g.add(x, kx3)?;
        let u = g.mul(s, c)?;
        let t = g.tanh(u)?;
        let a = g.add(t, one)?;
        let a = g.mul(a, half)?;
        let t2 = g.mul(t, t)?;
        let sech2 = g.sub(one, t2)?;
        let du = g.mul(x2, k3)?;
        let du = g.add(du, one)?;
        let du = g.mul(du, c)?;
        let b = g.mul(x, sech2)?;
        let b = g.mul(b, du)?;
        let b = g.mul(b, half)?;
        g.add(a, b)
    }

    /// `(silu(x), silu'(x))`: `x s` and `s (1 + x (1 - s))` with `s = sigmoid(x)`.
    fn silu_and_grad(&mut self, x: NodeId, dt: DType) -> Result<(NodeId, NodeId), GraphError> {
        let one = self.scalar(1.0, dt)?;
        let g = &mut self.g;
        let s = g.sigmoid(x)?;
        let silu = g.mul(x, s)?;
        let c = g.sub(one, s)?;
        let t = g.mul(x, c)?;
        let t = g.add(t, one)?;
        Ok((silu, g.mul(s, t)?))
    }

    /// RoPE rotates each pair by `theta`; its transpose rotates by `-theta`: `dx =
    /// rope(g, cos, -sin)`. For `cos` and `sin` (usually constants), with `(a, b)` the
    /// pairs of `x` and `(ga, gb)` those of `g`: `dcos = sum(ga a + gb b)` and
    /// `dsin = sum(gb a - ga b)` over the leading axes.
    fn rope_vjp(
        &mut self,
        ins: &[NodeId],
        gy: NodeId,
        interleaved: bool,
        wants: &[bool],
    ) -> Result<Contribs, AutodiffError> {
        let (x, cos, sin) = (ins[0], ins[1], ins[2]);
        let mut out: Contribs = vec![None; 3];
        if wants[0] {
            let ms = self.g.neg(sin)?;
            out[0] = Some(self.g.rope(gy, cos, ms, interleaved)?);
        }
        if wants[1] || wants[2] {
            let (a, b) = self.pairs(x, interleaved)?;
            let (ga, gb) = self.pairs(gy, interleaved)?;
            if wants[1] {
                let p = self.g.mul(ga, a)?;
                let q = self.g.mul(gb, b)?;
                let s = self.g.add(p, q)?;
                out[1] = Some(self.sum_leading(s, 2)?);
            }
            if wants[2] {
                let p = self.g.mul(gb, a)?;
                let q = self.g.mul(ga, b)?;
                let s = self.g.sub(p, q)?;
                out[2] = Some(self.sum_leading(s, 2)?);
            }
        }
        Ok(out)
    }

    /// The rotated pairs of `t [.., T, D]` as two `[.., T, D/2]` tensors (see
    /// [`CompositeOp::Rope`] for the layouts).
    fn pairs(&mut self, t: NodeId, interleaved: bool) -> Result<(NodeId, NodeId), GraphError> {
        let shape = self.g.ty(t).shape.clone();
        let r = shape.len();
        let half = shape[r - 1] / 2;
        if interleaved {
            let mut p = shape[..r - 1].to_vec();
            p.extend([half, 2]);
            let tp = self.g.reshape(t, &p)?;
            let a = self.g.slice(tp, r, 0, 1)?;
            let b = self.g.slice(tp, r, 1, 1)?;
            let mut h = shape[..r - 1].to_vec();
            h.push(half);
            Ok((self.g.reshape(a, &h)?, self.g.reshape(b, &h)?))
        } else {
            Ok((
                self.g.slice(t, r - 1, 0, half)?,
                self.g.slice(t, r - 1, half, half)?,
            ))
        }
    }

    /// For cross-entropy of `logits [N, V]` against `targets [N]`: `softmax(logits) -
    /// onehot(targets)` `[N, V]` and the 0/1 `keep [N]` of the tokens counted (target in
    /// `0..V` and not `ignore_index`), as [`CompositeOp::CrossEntropy`] defines them.
    fn ce_parts(
        &mut self,
        logits: NodeId,
        targets: NodeId,
        ignore_index: i64,
        dt: DType,
    ) -> Result<(NodeId, NodeId), GraphError> {
        let shape = self.g.ty(logits).shape.clone();
        let (n, v) = (shape[0], shape[1]);
        let zero = self.scalar(0.0, dt)?;
        let one = self.scalar(1.0, dt)?;
        let cols = self.g.iota(&[n, v], 1, DType::I32)?;
        let t = self.g.reshape(targets, &[n, 1])?;
        let hot = self.g.compare(CompareOp::Eq, cols, t)?;
        let hot = select(&mut self.g, hot, one, zero)?;
        let mut keep = self.g.sum(hot, 1, false)?;
        if (0..v as i64).contains(&ignore_index) {
            let ign = self.g.constant(ignore_index as f64, &[], DType::I32)?;
            let ignored = self.g.compare(CompareOp::Eq, targets, ign)?;
            keep = select(&mut self.g, ignored, zero, keep)?;
        }
        let p = self.g.softmax(logits)?;
        Ok((self.g.sub(p, hot)?, keep))
    }

    /// `m [N, V] * w[:, None]`.
    fn row_scale(&mut self, m: NodeId, w: NodeId) -> Result<NodeId, GraphError> {
        let n = self.g.ty(w).shape[0];
        let w = self.g.reshape(w, &[n, 1])?;
        self.g.mul(m, w)
    }
}
