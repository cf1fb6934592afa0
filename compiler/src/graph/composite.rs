//! Composite ops: transformer building blocks that keep their identity in the graph until
//! lowering (softmax, norms, GELU, RoPE, attention, cross-entropy).
//!
//! Each composite's knowledge has one home per kind: its type rule
//! ([`CompositeOp::infer`]) and its reference semantics, the decomposition into primitive
//! ops ([`CompositeOp::decompose`], which the f64 interpreter evaluates), live here; its
//! vector-Jacobian rule in `crate::autodiff` (closed forms, not the gradient of the
//! decomposition); its kernel in `crate::tile::ops` (one module per family). The
//! scheduler lowers each composite to one fused kernel (or the documented minimal number)
//! instead of lowering the decomposition.

use super::error::GraphError;
use super::types::{DType, TensorType};
use super::{Graph, NodeId};
use serde::{Deserialize, Serialize};

/// A composite op. In the JSON form: `{"op": "composite", "fn": "layer_norm", "eps": 1e-5,
/// "affine": true, "inputs": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fn", rename_all = "snake_case")]
pub enum CompositeOp {
    /// `exp(x - max) / sum(exp(x - max))` over the last axis. Input: `x [.., n]` (float).
    Softmax,
    /// `x - max - log(sum(exp(x - max)))` over the last axis. Input: `x [.., n]` (float).
    LogSoftmax,
    /// `(x - mean) / sqrt(var + eps) [* gamma + beta]` over the last axis (biased
    /// variance). Inputs: `x [.., n]`, then with `affine` `gamma [n]` and `beta [n]`.
    LayerNorm {
        /// Added to the variance.
        eps: f64,
        /// Scale and shift by `gamma` and `beta`.
        affine: bool,
    },
    /// `x / sqrt(mean(x^2) + eps) [* gamma]` over the last axis. Inputs: `x [.., n]`, then
    /// with `affine` `gamma [n]`.
    RmsNorm {
        /// Added to the mean square.
        eps: f64,
        /// Scale by `gamma`.
        affine: bool,
    },
    /// GELU: `x * (1 + erf(x / sqrt 2)) / 2`, or with `tanh` the approximation
    /// `x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) / 2`. Input: `x` (float).
    Gelu {
        /// Use the tanh approximation.
        tanh: bool,
    },
    /// `x * sigmoid(x)`. Input: `x` (float).
    Silu,
    /// `silu(gate) * up`. Inputs: `gate`, `up` of one shape and dtype.
    SwiGlu,
    /// Rotary position embedding. Inputs: `x [.., T, D]` (`D` even), `cos [T, D/2]`,
    /// `sin [T, D/2]`. Pairs `(a, b)` rotate to `(a cos - b sin, b cos + a sin)` with
    /// frequency `i` in `0..D/2`: with `interleaved` the pair of frequency `i` is
    /// `(x[2i], x[2i+1])` (GPT-J), otherwise `(x[i], x[i + D/2])` (half-split, GPT-NeoX /
    /// Llama).
    Rope {
        /// Interleaved pairs instead of the half-split layout.
        interleaved: bool,
    },
    /// Scaled-dot-product attention `softmax(q k^T * scale + mask) v`. Inputs:
    /// `q [B, Hq, Tq, D]`, `k [B, Hkv, Tk, D]`, `v [B, Hkv, Tk, Dv]` (`Hq` a multiple of
    /// `Hkv`: query head `h` uses key/value head `h / (Hq / Hkv)`, grouped-query
    /// attention), then with `padding` `mask [B, Tk]` (`i32`, nonzero = the key may be
    /// attended). With `causal`, query `i` sees keys `j <= i + Tk - Tq` (aligned at the
    /// end, as in a KV cache). A query that sees no key gets zeros. Output `[B, Hq, Tq, Dv]`.
    Attention {
        /// Causal mask.
        causal: bool,
        /// Padding mask input.
        padding: bool,
        /// Multiplies the scores (usually `1 / sqrt(D)`).
        scale: f64,
    },
    /// Cross-entropy from logits: the mean over tokens whose target is not
    /// `ignore_index` of `logsumexp(logits[t]) - logits[t, target[t]]`. Inputs:
    /// `logits [N, V]` (float), `targets [N]` (`i32`). Output: a scalar `[]` of the
    /// logits' dtype; 0 when every token is ignored. A target outside `0..V` (other than
    /// `ignore_index`) is an error in the interpreter; on devices it counts as ignored.
    CrossEntropy {
        /// Targets equal to this are left out of the mean.
        ignore_index: i64,
    },
    /// The per-query statistics of attention's backward pass (see
    /// [`CompositeOp::AttentionGrad`]). Inputs: `q [B, Hq, Tq, D]`, `k [B, Hkv, Tk, D]`,
    /// the forward's output `out [B, Hq, Tq, Dv]` and its adjoint `d_out [B, Hq, Tq, Dv]`,
    /// then with `padding` `mask [B, Tk]` (`i32`), masks and heads as for
    /// [`CompositeOp::Attention`]. Output `[B, Hq, Tq, 2]`, always `f32`: `[.., 0]` the
    /// logsumexp `L` of the query's visible scaled scores (0 for a query that sees no key),
    /// `[.., 1]` `delta = sum(d_out * out)` over `Dv`. Linear in `T`: the flash-attention
    /// backward kernels recompute the softmax from `L` instead of storing it.
    AttentionStats {
        /// Causal mask.
        causal: bool,
        /// Padding mask input.
        padding: bool,
        /// Multiplies the scores.
        scale: f64,
    },
    /// One gradient of attention ([`CompositeOp::Attention`] with the same `causal`,
    /// `padding`, `scale`), given its output's adjoint `d_out` and the statistics
    /// `stats` ([`CompositeOp::AttentionStats`] of the same q, k, out, d_out, mask). With
    /// `P = softmax(scale q k^T)` (masked entries 0, a query that sees no key has `P = 0`),
    /// recomputed as `exp(scale q.k - L)`:
    /// `dP = d_out v^T`, `dS = P * (dP - delta)`, and
    /// - `wrt: q`: inputs `q, k, v, d_out, stats[, mask]`, output
    ///   `dq = scale dS k` `[B, Hq, Tq, D]`;
    /// - `wrt: k`: inputs `q, k, v, d_out, stats[, mask]`, output
    ///   `dk = scale dS^T q` `[B, Hkv, Tk, D]`;
    /// - `wrt: v`: inputs `q, k, d_out, stats[, mask]`, output `dv = P^T d_out`
    ///   `[B, Hkv, Tk, Dv]`.
    ///
    /// With grouped-query heads `dk` and `dv` sum over the `Hq / Hkv` query heads of each
    /// key/value head. Outputs in the dtype of `q`.
    AttentionGrad {
        /// Causal mask.
        causal: bool,
        /// Padding mask input.
        padding: bool,
        /// Multiplies the scores.
        scale: f64,
        /// The operand differentiated.
        wrt: AttentionWrt,
    },
    /// Per-token cross-entropy: `[N]` losses `logsumexp(logits[t]) - logits[t, target[t]]`,
    /// 0 where the target is `ignore_index` (and, on devices, outside `0..V`). Inputs as
    /// for [`CompositeOp::CrossEntropy`], whose mean it feeds.
    TokenCrossEntropy {
        /// Targets equal to this give a 0 loss.
        ignore_index: i64,
    },
    /// The first step of a sorted scatter-add ([`CompositeOp::SortedScatterAdd`]): for
    /// each id (any shape, `i32`, taken in row-major order as `ids[n]`), its rank in the
    /// stable ascending order of the ids clamped into `-1..=size`: `rank[n] = #{m :
    /// c[m] < c[n]} + #{m < n : c[m] == c[n]}` with `c = clamp(ids, -1, size)`. Output
    /// `[N]` `i32`, a permutation of `0..N`. `N` and `size` must be below 2^24 (the
    /// kernel compares in f32).
    ScatterRanks {
        /// The scatter-add's output extent (ids are clamped into `-1..=size`).
        size: usize,
    },
    /// The second step of a sorted scatter-add: the inverse of a permutation. Input
    /// `ranks [N]` (`i32`); output `[N]` `i32` with `order[r] = n` where `ranks[n] == r`
    /// (in general the sum of the positions `n` with `ranks[n] == r`, 0 where none).
    /// `N` must be below 2^24.
    ScatterOrder,
    /// The third step of a sorted scatter-add: where each output row's segment of the
    /// sorted order starts. Inputs `ids` (any shape, `i32`, as for
    /// [`CompositeOp::ScatterRanks`]) and `order [N]` (`i32`, [`CompositeOp::ScatterOrder`]
    /// of their ranks); output `[size + 1]` `i32` with `starts[r] = #{n : c[n] < r}`
    /// (`c = clamp(ids, -1, size)`), so that row `j`'s ids are at the sorted positions
    /// `starts[j]..starts[j + 1]`. The value depends on `ids` only; `order` is what the
    /// kernel reads the ids through (sorted, so that each program of rows finds its
    /// positions by binary search). `N` and `size` must be below 2^24.
    ScatterStarts {
        /// The scatter-add's output extent (ids are clamped into `-1..=size`).
        size: usize,
    },
    /// [`crate::graph::Op::ScatterAdd`] given the stable sorted order of its ids
    /// (`order`, [`CompositeOp::ScatterOrder`] of [`CompositeOp::ScatterRanks`] of
    /// `ids`) and its rows' segments of it (`starts`, [`CompositeOp::ScatterStarts`]):
    /// inputs `src`, `ids`, `order [N]`, `starts [size + 1]`; the result is the
    /// scatter-add of `src` by `ids` (the same bits: each output row sums its matches in
    /// increasing position, which is the order of its segment of `order`). The scheduler
    /// builds this form; its kernel reads each row's segment bounds instead of scanning
    /// all ids.
    SortedScatterAdd {
        /// Where the ids' axes start in `src`.
        axis: usize,
        /// Extent of the scattered axis of the output.
        size: usize,
    },
}

/// The operand an [`CompositeOp::AttentionGrad`] differentiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionWrt {
    /// The queries.
    Q,
    /// The keys.
    K,
    /// The values.
    V,
}

impl CompositeOp {
    /// Short name, used in errors and kernel names.
    pub fn name(&self) -> &'static str {
        match self {
            CompositeOp::Softmax => "softmax",
            CompositeOp::LogSoftmax => "log_softmax",
            CompositeOp::LayerNorm { .. } => "layer_norm",
            CompositeOp::RmsNorm { .. } => "rms_norm",
            CompositeOp::Gelu { tanh: false } => "gelu",
            CompositeOp::Gelu { tanh: true } => "gelu_tanh",
            CompositeOp::Silu => "silu",
            CompositeOp::SwiGlu => "swiglu",
            CompositeOp::Rope { .. } => "rope",
            CompositeOp::Attention { .. } => "attention",
            CompositeOp::CrossEntropy { .. } => "cross_entropy",
            CompositeOp::TokenCrossEntropy { .. } => "token_cross_entropy",
            CompositeOp::ScatterRanks { .. } => "scatter_ranks",
            CompositeOp::ScatterOrder => "scatter_order",
            CompositeOp::ScatterStarts { .. } => "scatter_starts",
            CompositeOp::SortedScatterAdd { .. } => "scatter_add_sorted",
            CompositeOp::AttentionStats { .. } => "attention_bwd_stats",
            CompositeOp::AttentionGrad { wrt, .. } => match wrt {
                AttentionWrt::Q => "attention_bwd_dq",
                AttentionWrt::K => "attention_bwd_dk",
                AttentionWrt::V => "attention_bwd_dv",
            },
        }
    }

    /// Number of inputs.
    pub fn arity(&self) -> usize {
        match self {
            CompositeOp::Softmax
            | CompositeOp::LogSoftmax
            | CompositeOp::Gelu { .. }
            | CompositeOp::Silu
            | CompositeOp::ScatterRanks { .. }
            | CompositeOp::ScatterOrder => 1,
            CompositeOp::SortedScatterAdd { .. } => 4,
            CompositeOp::LayerNorm { affine, .. } => 1 + 2 * usize::from(*affine),
            CompositeOp::RmsNorm { affine, .. } => 1 + usize::from(*affine),
            CompositeOp::SwiGlu
            | CompositeOp::ScatterStarts { .. }
            | CompositeOp::CrossEntropy { .. }
            | CompositeOp::TokenCrossEntropy { .. } => 2,
            CompositeOp::Rope { .. } => 3,
            CompositeOp::Attention { padding, .. } => 3 + usize::from(*padding),
            CompositeOp::AttentionStats { padding, .. } => 4 + usize::from(*padding),
            CompositeOp::AttentionGrad { padding, wrt, .. } => {
                let base = if *wrt == AttentionWrt::V { 4 } else { 5 };
                base + usize::from(*padding)
            }
        }
    }

    /// True when the op is elementwise (lowered by fusing its decomposition).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            CompositeOp::Gelu { .. } | CompositeOp::Silu | CompositeOp::SwiGlu
        )
    }

    /// The type rule (inputs already counted against [`CompositeOp::arity`]).
    pub fn infer(&self, node: &str, inputs: &[&TensorType]) -> Result<TensorType, GraphError> {
        let op = self.name();
        let node_s = || node.to_string();
        let float = |t: &TensorType| -> Result<(), GraphError> {
            if t.dtype.is_float() {
                Ok(())
            } else {
                Err(GraphError::UnsupportedDType {
                    op,
                    node: node_s(),
                    dtype: t.dtype,
                })
            }
        };
        let want = |t: &TensorType, shape: &[usize], dtype: DType| -> Result<(), GraphError> {
            if t.shape != shape {
                return Err(GraphError::ShapeMismatch {
                    op,
                    node: node_s(),
                    lhs: t.shape.clone(),
                    rhs: shape.to_vec(),
                });
            }
            if t.dtype != dtype {
                return Err(GraphError::DTypeMismatch {
                    op,
                    node: node_s(),
                    lhs: t.dtype,
                    rhs: dtype,
                });
            }
            Ok(())
        };
        let invalid = |reason: String| GraphError::Invalid {
            op,
            node: node_s(),
            reason,
        };
        let x = inputs[0];
        match self {
            CompositeOp::Softmax
            | CompositeOp::LogSoftmax
            | CompositeOp::LayerNorm { .. }
            | CompositeOp::RmsNorm { .. } => {
                float(x)?;
                let Some(&n) = x.shape.last() else {
                    return Err(invalid("needs an operand of rank >= 1".into()));
                };
                for p in &inputs[1..] {
                    want(p, &[n], x.dtype)?;
                }
                if let CompositeOp::LayerNorm { eps, .. } | CompositeOp::RmsNorm { eps, .. } = self
                {
                    if !(eps.is_finite() && *eps >= 0.0) {
                        return Err(invalid(format!("eps must be finite and >= 0, got {eps}")));
                    }
                }
                Ok(x.clone())
            }
            CompositeOp::Gelu { .. } | CompositeOp::Silu => {
                float(x)?;
                Ok(x.clone())
            }
            CompositeOp::SwiGlu => {
                float(x)?;
                want(inputs[1], &x.shape, x.dtype)?;
                Ok(x.clone())
            }
            CompositeOp::Rope { .. } => {
                float(x)?;
                let r = x.rank();
                if r < 2 || !x.shape[r - 1].is_multiple_of(2) {
                    return Err(invalid(format!(
                        "x must be [.., T, D] with D even, got {:?}",
                        x.shape
                    )));
                }
                let half = [x.shape[r - 2], x.shape[r - 1] / 2];
                want(inputs[1], &half, x.dtype)?;
                want(inputs[2], &half, x.dtype)?;
                Ok(x.clone())
            }
            CompositeOp::Attention { padding, scale, .. } => {
                let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
                float(q)?;
                if q.rank() != 4 || k.rank() != 4 || v.rank() != 4 {
                    return Err(invalid(format!(
                        "q, k, v must be [B, H, T, D]; got {:?}, {:?}, {:?}",
                        q.shape, k.shape, v.shape
                    )));
                }
                let (b, hq, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
                let (hkv, tk) = (k.shape[1], k.shape[2]);
                want(k, &[b, hkv, tk, d], q.dtype)?;
                let dv = v.shape[3];
                want(v, &[b, hkv, tk, dv], q.dtype)?;
                if hkv == 0 || hq % hkv != 0 {
                    return Err(invalid(format!(
                        "query heads ({hq}) must be a multiple of key/value heads ({hkv})"
                    )));
                }
                if !scale.is_finite() {
                    return Err(invalid(format!("scale must be finite, got {scale}")));
                }
                if *padding {
                    want(inputs[3], &[b, tk], DType::I32)?;
                }
                Ok(TensorType::new(vec![b, hq, tq, dv], q.dtype))
            }
            CompositeOp::AttentionStats { padding, scale, .. }
            | CompositeOp::AttentionGrad { padding, scale, .. } => {
                let q = inputs[0];
                let k = inputs[1];
                float(q)?;
                let wrt = match self {
                    CompositeOp::AttentionGrad { wrt, .. } => Some(*wrt),
                    _ => None,
                };
                // (v, d_out-like, stats) positions.
                let (v, dout, stats) = match wrt {
                    None => (None, 3, None),
                    Some(AttentionWrt::V) => (None, 2, Some(3)),
                    Some(_) => (Some(inputs[2]), 3, Some(4)),
                };
                let dout_t = inputs[dout];
                if q.rank() != 4 || k.rank() != 4 || dout_t.rank() != 4 {
                    return Err(invalid(format!(
                        "q, k, d_out must be [B, H, T, D]; got {:?}, {:?}, {:?}",
                        q.shape, k.shape, dout_t.shape
                    )));
                }
                let (b, hq, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
                let (hkv, tk) = (k.shape[1], k.shape[2]);
                want(k, &[b, hkv, tk, d], q.dtype)?;
                let dv = dout_t.shape[3];
                want(dout_t, &[b, hq, tq, dv], q.dtype)?;
                if stats.is_none() {
                    // AttentionStats: out then d_out.
                    want(inputs[2], &[b, hq, tq, dv], q.dtype)?;
                }
                if let Some(v) = v {
                    want(v, &[b, hkv, tk, dv], q.dtype)?;
                }
                if let Some(st) = stats {
                    want(inputs[st], &[b, hq, tq, 2], DType::F32)?;
                }
                if hkv == 0 || hq % hkv != 0 {
                    return Err(invalid(format!(
                        "query heads ({hq}) must be a multiple of key/value heads ({hkv})"
                    )));
                }
                if !scale.is_finite() {
                    return Err(invalid(format!("scale must be finite, got {scale}")));
                }
                if *padding {
                    want(inputs[self.arity() - 1], &[b, tk], DType::I32)?;
                }
                Ok(match wrt {
                    None => TensorType::new(vec![b, hq, tq, 2], DType::F32),
                    Some(AttentionWrt::Q) => q.clone(),
                    Some(AttentionWrt::K) => TensorType::new(vec![b, hkv, tk, d], q.dtype),
                    Some(AttentionWrt::V) => TensorType::new(vec![b, hkv, tk, dv], q.dtype),
                })
            }
            CompositeOp::CrossEntropy { .. } | CompositeOp::TokenCrossEntropy { .. } => {
                float(x)?;
                if x.rank() != 2 {
                    return Err(invalid(format!("logits must be [N, V], got {:?}", x.shape)));
                }
                want(inputs[1], &[x.shape[0]], DType::I32)?;
                let shape = match self {
                    CompositeOp::CrossEntropy { .. } => vec![],
                    _ => vec![x.shape[0]],
                };
                Ok(TensorType::new(shape, x.dtype))
            }
            CompositeOp::ScatterRanks { size } => {
                let n = x.numel();
                want(x, &x.shape, DType::I32)?;
                if n >= SORT_LIMIT || *size >= SORT_LIMIT {
                    return Err(invalid(format!(
                        "{n} ids into {size} rows: both must be below 2^24"
                    )));
                }
                Ok(TensorType::new(vec![n], DType::I32))
            }
            CompositeOp::ScatterOrder => {
                let n = x.numel();
                want(x, &[n], DType::I32)?;
                if n >= SORT_LIMIT {
                    return Err(invalid(format!("{n} ranks: must be below 2^24")));
                }
                Ok(TensorType::new(vec![n], DType::I32))
            }
            CompositeOp::ScatterStarts { size } => {
                let n = x.numel();
                want(x, &x.shape, DType::I32)?;
                want(inputs[1], &[n], DType::I32)?;
                if n >= SORT_LIMIT || *size >= SORT_LIMIT {
                    return Err(invalid(format!(
                        "{n} ids into {size} rows: both must be below 2^24"
                    )));
                }
                Ok(TensorType::new(vec![size + 1], DType::I32))
            }
            CompositeOp::SortedScatterAdd { axis, size } => {
                let (ids, order, starts) = (inputs[1], inputs[2], inputs[3]);
                let ty = crate::graph::Op::ScatterAdd {
                    axis: *axis,
                    size: *size,
                }
                .infer(node, &[x, ids])?;
                want(order, &[ids.numel()], DType::I32)?;
                want(starts, &[size.saturating_add(1)], DType::I32)?;
                Ok(ty)
            }
        }
    }

    /// Builds the decomposition of this op into primitive ops in `g`, on `inputs` (one per
    /// [`CompositeOp::arity`], typed as [`CompositeOp::infer`] requires), and returns the
    /// node holding the result (of the type [`CompositeOp::infer`] gives). Used by the f64
    /// interpreter, by [`Graph::expand_composites`] and by autodiff.
    ///
    /// Only primitive ops are built (unary, binary, reduce, matmul, broadcast, reshape,
    /// compare, select, constant, iota, slice, concat): the result never holds a
    /// composite. Arithmetic stays in the input's float dtype (constants are built in it);
    /// integer operands (ids, targets, masks) are only compared.
    ///
    /// - softmax / log-softmax / cross-entropy subtract the row max before `exp`;
    /// - attention masks scores with `select` (never adds `-inf`; no infinite constant,
    ///   so an expanded graph round-trips through JSON): a masked score contributes
    ///   exactly 0 and a query that sees no key gets zeros (the row sum is replaced by 1
    ///   where it is 0); the masked row max only takes visible keys;
    /// - cross-entropy picks `logits[t, target]` through a one-hot comparison with an iota,
    ///   so ignored and out-of-range targets pick nothing (loss 0, not counted).
    pub fn decompose(&self, g: &mut Graph, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        if inputs.len() != self.arity() {
            return Err(GraphError::Arity {
                op: self.name(),
                node: String::new(),
                expected: self.arity(),
                got: inputs.len(),
            });
        }
        for &i in inputs {
            if g.get(i).is_none() {
                return Err(GraphError::UnknownInput {
                    node: self.name().to_string(),
                    input: i.to_string(),
                });
            }
        }
        {
            let tys: Vec<&TensorType> = inputs.iter().map(|&i| g.ty(i)).collect();
            self.infer(self.name(), &tys)?;
        }
        let x = inputs[0];
        let xt = g.ty(x).clone();
        let dt = xt.dtype;
        let last = xt.rank().saturating_sub(1);
        match self {
            CompositeOp::Softmax => {
                let m = g.reduce_max(x, last, true)?;
                let e = sub_exp(g, x, m)?;
                let s = g.sum(e, last, true)?;
                g.div(e, s)
            }
            CompositeOp::LogSoftmax => {
                let m = g.reduce_max(x, last, true)?;
                let xm = g.sub(x, m)?;
                let e = g.exp(xm)?;
                let s = g.sum(e, last, true)?;
                let l = g.log(s)?;
                g.sub(xm, l)
            }
            CompositeOp::LayerNorm { eps, affine } => {
                let mean = g.mean(x, last, true)?;
                let xc = g.sub(x, mean)?;
                let sq = g.mul(xc, xc)?;
                let var = g.mean(sq, last, true)?;
                let e = scalar(g, *eps, dt)?;
                let ve = g.add(var, e)?;
                let sd = g.sqrt(ve)?;
                let y = g.div(xc, sd)?;
                if *affine {
                    let y = g.mul(y, inputs[1])?;
                    g.add(y, inputs[2])
                } else {
                    Ok(y)
                }
            }
            CompositeOp::RmsNorm { eps, affine } => {
                let sq = g.mul(x, x)?;
                let ms = g.mean(sq, last, true)?;
                let e = scalar(g, *eps, dt)?;
                let me = g.add(ms, e)?;
                let r = g.sqrt(me)?;
                let y = g.div(x, r)?;
                if *affine {
                    g.mul(y, inputs[1])
                } else {
                    Ok(y)
                }
            }
            CompositeOp::Gelu { tanh } => {
                let inner = if *tanh {
                    // sqrt(2/pi) * (x + 0.044715 x^3)
                    let x2 = g.mul(x, x)?;
                    let x3 = g.mul(x2, x)?;
                    let c = scalar(g, 0.044715, dt)?;
                    let cx3 = g.mul(x3, c)?;
                    let s = g.add(x, cx3)?;
                    let k = scalar(g, (2.0 / std::f64::consts::PI).sqrt(), dt)?;
                    let a = g.mul(s, k)?;
                    g.tanh(a)?
                } else {
                    let k = scalar(g, std::f64::consts::FRAC_1_SQRT_2, dt)?;
                    let a = g.mul(x, k)?;
                    g.erf(a)?
                };
                let one = scalar(g, 1.0, dt)?;
                let p = g.add(inner, one)?;
                let xp = g.mul(x, p)?;
                let half = scalar(g, 0.5, dt)?;
                g.mul(xp, half)
            }
            CompositeOp::Silu => silu(g, x),
            CompositeOp::SwiGlu => {
                let s = silu(g, x)?;
                g.mul(s, inputs[1])
            }
            CompositeOp::Rope { interleaved } => rope(g, inputs, *interleaved),
            CompositeOp::Attention {
                causal,
                padding,
                scale,
            } => attention(g, inputs, *causal, padding.then(|| inputs[3]), *scale),
            CompositeOp::CrossEntropy { ignore_index } => {
                let (loss, keep) = token_cross_entropy(g, x, inputs[1], *ignore_index)?;
                let total = g.sum(loss, 0, false)?;
                let count = g.sum(keep, 0, false)?;
                let one = scalar(g, 1.0, dt)?;
                let denom = g.max(count, one)?;
                g.div(total, denom)
            }
            CompositeOp::TokenCrossEntropy { ignore_index } => {
                Ok(token_cross_entropy(g, x, inputs[1], *ignore_index)?.0)
            }
            CompositeOp::ScatterRanks { size } => scatter_ranks(g, x, *size),
            CompositeOp::ScatterOrder => scatter_order(g, x),
            CompositeOp::ScatterStarts { size } => scatter_starts(g, x, *size),
            CompositeOp::SortedScatterAdd { axis, size } => {
                g.scatter_add(x, inputs[1], *axis, *size)
            }
            CompositeOp::AttentionStats {
                causal,
                padding,
                scale,
            } => attention_stats(g, inputs, *causal, padding.then(|| inputs[4]), *scale),
            CompositeOp::AttentionGrad {
                causal,
                padding,
                scale,
                wrt,
            } => {
                let mask = padding.then(|| inputs[inputs.len() - 1]);
                attention_grad(g, inputs, *causal, mask, *scale, *wrt)
            }
        }
    }
}

/// Bound (exclusive) on the ids and rows of [`CompositeOp::ScatterRanks`],
/// [`CompositeOp::ScatterOrder`] and [`CompositeOp::ScatterStarts`]: their kernels compare
/// positions and ids in f32.
pub const SORT_LIMIT: usize = 1 << 24;

/// [`CompositeOp::ScatterRanks`]: over `[N, N]` pairs `(n, m)`, `1` where `c[m] < c[n]`,
/// or `c[m] == c[n]` and `m < n`, summed over `m`.
fn scatter_ranks(g: &mut Graph, ids: NodeId, size: usize) -> Result<NodeId, GraphError> {
    let f = DType::F32;
    let n = g.ty(ids).numel();
    let flat = g.reshape(ids, &[n])?;
    let c = g.clamp(flat, -1.0, size as f64)?;
    let c = g.cast(c, f)?;
    let col = g.reshape(c, &[n, 1])?;
    let own = g.broadcast(col, &[n, n])?;
    let row = g.reshape(c, &[1, n])?;
    let other = g.broadcast(row, &[n, n])?;
    let pn = g.iota(&[n, n], 0, f)?;
    let pm = g.iota(&[n, n], 1, f)?;
    let lt = g.compare(super::CompareOp::Lt, other, own)?;
    let eq = g.compare(super::CompareOp::Eq, other, own)?;
    let before = g.compare(super::CompareOp::Lt, pm, pn)?;
    let one = g.constant(1.0, &[n, n], f)?;
    let zero = g.constant(0.0, &[n, n], f)?;
    let tie = g.select(before, one, zero)?;
    let tie = g.select(eq, tie, zero)?;
    let term = g.select(lt, one, tie)?;
    let rank = g.sum(term, 1, false)?;
    g.cast(rank, DType::I32)
}

/// [`CompositeOp::ScatterOrder`]: over `[N, N]` pairs `(r, n)`, `n` where `ranks[n] ==
/// r`, summed over `n`.
fn scatter_order(g: &mut Graph, ranks: NodeId) -> Result<NodeId, GraphError> {
    let f = DType::F32;
    let n = g.ty(ranks).numel();
    let rk = g.cast(ranks, f)?;
    let rk = g.reshape(rk, &[1, n])?;
    let rk = g.broadcast(rk, &[n, n])?;
    let pr = g.iota(&[n, n], 0, f)?;
    let pn = g.iota(&[n, n], 1, f)?;
    let hit = g.compare(super::CompareOp::Eq, rk, pr)?;
    let zero = scalar(g, 0.0, f)?;
    let pos = g.select(hit, pn, zero)?;
    let order = g.sum(pos, 1, false)?;
    g.cast(order, DType::I32)
}

/// [`CompositeOp::ScatterStarts`]: over `[size + 1, N]` pairs `(r, n)`, `1` where
/// `c[n] < r`, summed over `n`.
fn scatter_starts(g: &mut Graph, ids: NodeId, size: usize) -> Result<NodeId, GraphError> {
    let f = DType::F32;
    let n = g.ty(ids).numel();
    let rows = size + 1;
    let flat = g.reshape(ids, &[n])?;
    let c = g.clamp(flat, -1.0, size as f64)?;
    let c = g.cast(c, f)?;
    let c = g.reshape(c, &[1, n])?;
    let c = g.broadcast(c, &[rows, n])?;
    let r = g.iota(&[rows, n], 0, f)?;
    let below = g.compare(super::CompareOp::Lt, c, r)?;
    let one = scalar(g, 1.0, f)?;
    let zero = scalar(g, 0.0, f)?;
    let term = select(g, below, one, zero)?;
    let starts = g.sum(term, 1, false)?;
    g.cast(starts, DType::I32)
}

/// A scalar constant (shape `[]`), broadcast by the binary builders.
fn scalar(g: &mut Graph, value: f64, dtype: DType) -> Result<NodeId, GraphError> {
    g.constant(value, &[], dtype)
}

/// The lowest finite value of a float dtype.
fn lowest(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => f64::from(half::f16::MIN),
        DType::BF16 => f64::from(half::bf16::MIN),
        _ => f64::from(f32::MIN),
    }
}

/// `where(cond, a, b)` with `a` and `b` broadcast to the shape of `cond`.
fn select(g: &mut Graph, cond: NodeId, a: NodeId, b: NodeId) -> Result<NodeId, GraphError> {
    let shape = g.ty(cond).shape.clone();
    let a = g.broadcast(a, &shape)?;
    let b = g.broadcast(b, &shape)?;
    g.select(cond, a, b)
}

/// `exp(x - m)` (`m` broadcast).
fn sub_exp(g: &mut Graph, x: NodeId, m: NodeId) -> Result<NodeId, GraphError> {
    let d = g.sub(x, m)?;
    g.exp(d)
}

/// `x * sigmoid(x)`.
fn silu(g: &mut Graph, x: NodeId) -> Result<NodeId, GraphError> {
    let s = g.sigmoid(x)?;
    g.mul(x, s)
}

/// RoPE on `[x, cos, sin]`: pairs `(a, b)` become `(a cos - b sin, b cos + a sin)`.
fn rope(g: &mut Graph, inputs: &[NodeId], interleaved: bool) -> Result<NodeId, GraphError> {
    let (x, cos, sin) = (inputs[0], inputs[1], inputs[2]);
    let shape = g.ty(x).shape.clone();
    let r = shape.len();
    let half = shape[r - 1] / 2;
    let (a, b) = if interleaved {
        // [.., T, D] -> [.., T, D/2, 2]: the pair of frequency i is the last axis.
        let mut pairs = shape[..r - 1].to_vec();
        pairs.extend([half, 2]);
        let xp = g.reshape(x, &pairs)?;
        let a = g.slice(xp, r, 0, 1)?;
        let b = g.slice(xp, r, 1, 1)?;
        let mut halves = shape[..r - 1].to_vec();
        halves.push(half);
        (g.reshape(a, &halves)?, g.reshape(b, &halves)?)
    } else {
        (g.slice(x, r - 1, 0, half)?, g.slice(x, r - 1, half, half)?)
    };
    // `cos`, `sin` [T, D/2] broadcast over the leading axes of x.
    let ac = g.mul(a, cos)?;
    let bs = g.mul(b, sin)?;
    let ra = g.sub(ac, bs)?;
    let bc = g.mul(b, cos)?;
    let as_ = g.mul(a, sin)?;
    let rb = g.add(bc, as_)?;
    if interleaved {
        let mut col = shape[..r - 1].to_vec();
        col.extend([half, 1]);
        let ra = g.reshape(ra, &col)?;
        let rb = g.reshape(rb, &col)?;
        let y = g.concat(&[ra, rb], r)?;
        g.reshape(y, &shape)
    } else {
        g.concat(&[ra, rb], r - 1)
    }
}

/// Attention on `q [B, Hq, Tq, D]`, `k [B, Hkv, Tk, D]`, `v [B, Hkv, Tk, Dv]`.
fn attention(
    g: &mut Graph,
    inputs: &[NodeId],
    causal: bool,
    mask: Option<NodeId>,
    scale: f64,
) -> Result<NodeId, GraphError> {
    let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
    let qs = g.ty(q).shape.clone();
    let dt = g.ty(q).dtype;
    let (b, hq, tq) = (qs[0], qs[1], qs[2]);
    let ks = g.ty(k).shape.clone();
    let (hkv, tk, d) = (ks[1], ks[2], ks[3]);
    // Grouped-query heads: repeat each key/value head `hq / hkv` times, so that query
    // head h meets key/value head h / (hq / hkv).
    let group = hq / hkv;
    let repeat = |g: &mut Graph, t: NodeId, w: usize| -> Result<NodeId, GraphError> {
        if group == 1 {
            return Ok(t);
        }
        let r = g.reshape(t, &[b, hkv, 1, tk, w])?;
        let r = g.broadcast(r, &[b, hkv, group, tk, w])?;
        g.reshape(r, &[b, hq, tk, w])
    };
    let k = repeat(g, k, d)?;
    let dv = g.ty(v).shape[3];
    let v = repeat(g, v, dv)?;
    let s = g.matmul_t(q, k, false, true)?;
    let sc = scalar(g, scale, dt)?;
    let s = g.mul(s, sc)?;
    // Visibility as 0/1 in the score dtype, then a bool `keep [B, Hq, Tq, Tk]`.
    let mut vis: Option<NodeId> = None;
    let zero = scalar(g, 0.0, dt)?;
    let one = scalar(g, 1.0, dt)?;
    if causal {
        // Key j is visible to query i iff j <= i + (Tk - Tq).
        let i = g.iota(&[tq, tk], 0, DType::I32)?;
        let j = g.iota(&[tq, tk], 1, DType::I32)?;
        let off = g.constant(tk as f64 - tq as f64, &[], DType::I32)?;
        let lim = g.add(i, off)?;
        let c = g.compare(super::CompareOp::Le, j, lim)?;
        vis = Some(select(g, c, one, zero)?);
    }
    if let Some(m) = mask {
        let z = g.constant(0.0, &[], DType::I32)?;
        let pad = g.compare(super::CompareOp::Eq, m, z)?;
        let p = select(g, pad, zero, one)?;
        let p = g.reshape(p, &[b, 1, 1, tk])?;
        vis = Some(match vis {
            Some(c) => g.mul(p, c)?,
            None => p,
        });
    }
    let p = match vis {
        None => {
            let m = g.reduce_max(s, 3, true)?;
            sub_exp(g, s, m)?
        }
        Some(vis) => {
            let vis = g.broadcast(vis, &[b, hq, tq, tk])?;
            let halfc = scalar(g, 0.5, dt)?;
            let keep = g.compare(super::CompareOp::Gt, vis, halfc)?;
            // The lowest finite value of the dtype stands for -inf (a JSON number, unlike
            // -inf); a fully masked row has that max, and its entries, `exp` of a huge
            // (possibly infinite) value, are all dropped by the select below.
            let low = scalar(g, lowest(dt), dt)?;
            let sm = select(g, keep, s, low)?;
            let m = g.reduce_max(sm, 3, true)?;
            let e = sub_exp(g, s, m)?;
            select(g, keep, e, zero)?
        }
    };
    let den = g.sum(p, 3, true)?;
    let empty = g.compare(super::CompareOp::Eq, den, zero)?;
    let den = select(g, empty, one, den)?;
    let o = g.matmul(p, v)?;
    g.div(o, den)
}

/// Per-token cross-entropy of `logits [N, V]` against `targets [N]`: the losses `[N]`
/// (0 for ignored or out-of-range targets) and the 0/1 count of tokens kept `[N]`.
fn token_cross_entropy(
    g: &mut Graph,
    logits: NodeId,
    targets: NodeId,
    ignore_index: i64,
) -> Result<(NodeId, NodeId), GraphError> {
    let lt = g.ty(logits).clone();
    let (n, v, dt) = (lt.shape[0], lt.shape[1], lt.dtype);
    let m = g.reduce_max(logits, 1, true)?;
    let e = sub_exp(g, logits, m)?;
    let s = g.sum(e, 1, false)?;
    let l = g.log(s)?;
    let m = g.reshape(m, &[n])?;
    let lse = g.add(l, m)?;
    let cols = g.iota(&[n, v], 1, DType::I32)?;
    let t = g.reshape(targets, &[n, 1])?;
    let t = g.broadcast(t, &[n, v])?;
    let hot = g.compare(super::CompareOp::Eq, cols, t)?;
    let zero = scalar(g, 0.0, dt)?;
    let one = scalar(g, 1.0, dt)?;
    let picked = select(g, hot, logits, zero)?;
    let picked = g.sum(picked, 1, false)?;
    let inside = select(g, hot, one, zero)?;
    let mut keep = g.sum(inside, 1, false)?;
    if (0..v as i64).contains(&ignore_index) {
        let ign = g.constant(ignore_index as f64, &[], DType::I32)?;
        let ignored = g.compare(super::CompareOp::Eq, targets, ign)?;
        keep = select(g, ignored, zero, keep)?;
    }
    let diff = g.sub(lse, picked)?;
    let loss = g.mul(diff, keep)?;
    Ok((loss, keep))
}

/// `[B, Hkv, T, W]` -> `[B, Hkv * group, T, W]`, each key/value head repeated `group`
/// times (query head `h` meets key/value head `h / group`).
fn repeat_heads(g: &mut Graph, t: NodeId, group: usize) -> Result<NodeId, GraphError> {
    if group == 1 {
        return Ok(t);
    }
    let s = g.ty(t).shape.clone();
    let r = g.reshape(t, &[s[0], s[1], 1, s[2], s[3]])?;
    let r = g.broadcast(r, &[s[0], s[1], group, s[2], s[3]])?;
    g.reshape(r, &[s[0], s[1] * group, s[2], s[3]])
}

/// The transpose of [`repeat_heads`]: `[B, Hkv * group, T, W]` -> `[B, Hkv, T, W]`, the
/// sum over each group of query heads.
fn sum_heads(g: &mut Graph, t: NodeId, group: usize) -> Result<NodeId, GraphError> {
    if group == 1 {
        return Ok(t);
    }
    let s = g.ty(t).shape.clone();
    let r = g.reshape(t, &[s[0], s[1] / group, group, s[2], s[3]])?;
    g.sum(r, 2, false)
}

/// The scaled scores `scale q k^T` `[B, Hq, Tq, Tk]` (key/value heads repeated) and,
/// with a mask, the bool visibility `keep [B, Hq, Tq, Tk]` of each score, as
/// [`CompositeOp::Attention`] defines it.
fn scores_and_keep(
    g: &mut Graph,
    q: NodeId,
    k: NodeId,
    causal: bool,
    mask: Option<NodeId>,
    scale: f64,
) -> Result<(NodeId, Option<NodeId>), GraphError> {
    let qs = g.ty(q).shape.clone();
    let dt = g.ty(q).dtype;
    let (b, hq, tq) = (qs[0], qs[1], qs[2]);
    let ks = g.ty(k).shape.clone();
    let (hkv, tk) = (ks[1], ks[2]);
    let kr = repeat_heads(g, k, hq / hkv)?;
    let s = g.matmul_t(q, kr, false, true)?;
    let sc = scalar(g, scale, dt)?;
    let s = g.mul(s, sc)?;
    let zero = scalar(g, 0.0, dt)?;
    let one = scalar(g, 1.0, dt)?;
    let mut vis: Option<NodeId> = None;
    if causal {
        let i = g.iota(&[tq, tk], 0, DType::I32)?;
        let j = g.iota(&[tq, tk], 1, DType::I32)?;
        let off = g.constant(tk as f64 - tq as f64, &[], DType::I32)?;
        let lim = g.add(i, off)?;
        let c = g.compare(super::CompareOp::Le, j, lim)?;
        vis = Some(select(g, c, one, zero)?);
    }
    if let Some(m) = mask {
        let z = g.constant(0.0, &[], DType::I32)?;
        let pad = g.compare(super::CompareOp::Eq, m, z)?;
        let p = select(g, pad, zero, one)?;
        let p = g.reshape(p, &[b, 1, 1, tk])?;
        vis = Some(match vis {
            Some(c) => g.mul(p, c)?,
            None => p,
        });
    }
    let keep = match vis {
        None => None,
        Some(vis) => {
            let vis = g.broadcast(vis, &[b, hq, tq, tk])?;
            let halfc = scalar(g, 0.5, dt)?;
            Some(g.compare(super::CompareOp::Gt, vis, halfc)?)
        }
    };
    Ok((s, keep))
}

/// [`CompositeOp::AttentionStats`] on `[q, k, out, d_out(, mask)]`.
fn attention_stats(
    g: &mut Graph,
    inputs: &[NodeId],
    causal: bool,
    mask: Option<NodeId>,
    scale: f64,
) -> Result<NodeId, GraphError> {
    let (q, k, out, d_out) = (inputs[0], inputs[1], inputs[2], inputs[3]);
    let dt = g.ty(q).dtype;
    let (s, keep) = scores_and_keep(g, q, k, causal, mask, scale)?;
    let zero = scalar(g, 0.0, dt)?;
    let one = scalar(g, 1.0, dt)?;
    let (m, e) = match keep {
        None => {
            let m = g.reduce_max(s, 3, true)?;
            (m, sub_exp(g, s, m)?)
        }
        Some(keep) => {
            let low = scalar(g, lowest(dt), dt)?;
            let sm = select(g, keep, s, low)?;
            let m = g.reduce_max(sm, 3, true)?;
            let e = sub_exp(g, s, m)?;
            (m, select(g, keep, e, zero)?)
        }
    };
    // L = m + log(sum e), 0 where the query sees no key (sum 0).
    let den = g.sum(e, 3, true)?;
    let empty = g.compare(super::CompareOp::Eq, den, zero)?;
    let den1 = select(g, empty, one, den)?;
    let lg = g.log(den1)?;
    let l = g.add(m, lg)?;
    let l = select(g, empty, zero, l)?;
    let prod = g.mul(d_out, out)?;
    let delta = g.sum(prod, 3, true)?;
    let st = g.concat(&[l, delta], 3)?;
    if dt == DType::F32 {
        Ok(st)
    } else {
        g.cast(st, DType::F32)
    }
}

/// [`CompositeOp::AttentionGrad`] on its inputs (see there for the order).
fn attention_grad(
    g: &mut Graph,
    inputs: &[NodeId],
    causal: bool,
    mask: Option<NodeId>,
    scale: f64,
    wrt: AttentionWrt,
) -> Result<NodeId, GraphError> {
    let (q, k) = (inputs[0], inputs[1]);
    let (v, d_out, stats) = match wrt {
        AttentionWrt::V => (None, inputs[2], inputs[3]),
        _ => (Some(inputs[2]), inputs[3], inputs[4]),
    };
    let dt = g.ty(q).dtype;
    let hq = g.ty(q).shape[1];
    let hkv = g.ty(k).shape[1];
    let group = hq / hkv;
    let (s, keep) = scores_and_keep(g, q, k, causal, mask, scale)?;
    let stats = if dt == DType::F32 {
        stats
    } else {
        g.cast(stats, dt)?
    };
    let l = g.slice(stats, 3, 0, 1)?;
    let e = sub_exp(g, s, l)?;
    let zero = scalar(g, 0.0, dt)?;
    let p = match keep {
        None => e,
        Some(keep) => select(g, keep, e, zero)?,
    };
    let Some(v) = v else {
        let t = g.matmul_t(p, d_out, true, false)?;
        return sum_heads(g, t, group);
    };
    let delta = g.slice(stats, 3, 1, 1)?;
    let vr = repeat_heads(g, v, group)?;
    let dp = g.matmul_t(d_out, vr, false, true)?;
    let t = g.sub(dp, delta)?;
    let ds = g.mul(p, t)?;
    let sc = scalar(g, scale, dt)?;
    let ds = g.mul(ds, sc)?;
    if wrt == AttentionWrt::Q {
        let kr = repeat_heads(g, k, group)?;
        g.matmul(ds, kr)
    } else {
        let t = g.matmul_t(ds, q, true, false)?;
        sum_heads(g, t, group)
    }
}

impl Graph {
    /// The vector-Jacobian product of [`CompositeOp::Attention`] as fused backward ops:
    /// for `out = attention(q, k, v, mask, causal, scale)` and its adjoint `d_out`, the
    /// gradients `[dq, dk, dv]` (`None` where `wants` is false). Builds one
    /// [`CompositeOp::AttentionStats`] node (shared by the gradients) and one
    /// [`CompositeOp::AttentionGrad`] node per wanted gradient; none of them holds a
    /// `T x T` tensor once scheduled (flash-attention backward kernels).
    #[allow(clippy::too_many_arguments)]
    pub fn attention_backward(
        &mut self,
        q: NodeId,
        k: NodeId,
        v: NodeId,
        out: NodeId,
        d_out: NodeId,
        mask: Option<NodeId>,
        causal: bool,
        scale: f64,
        wants: [bool; 3],
    ) -> Result<[Option<NodeId>; 3], GraphError> {
        let padding = mask.is_some();
        let with_mask = |mut xs: Vec<NodeId>| {
            xs.extend(mask);
            xs
        };
        let mut res = [None; 3];
        if !wants.iter().any(|&w| w) {
            return Ok(res);
        }
        let stats = self.composite(
            CompositeOp::AttentionStats {
                causal,
                padding,
                scale,
            },
            &with_mask(vec![q, k, out, d_out]),
        )?;
        for (i, wrt) in [AttentionWrt::Q, AttentionWrt::K, AttentionWrt::V]
            .into_iter()
            .enumerate()
        {
            if !wants[i] {
                continue;
            }
            let ins = if wrt == AttentionWrt::V {
                vec![q, k, d_out, stats]
            } else {
                vec![q, k, v, d_out, stats]
            };
            res[i] = Some(self.composite(
                CompositeOp::AttentionGrad {
                    causal,
                    padding,
                    scale,
                    wrt,
                },
                &with_mask(ins),
            )?);
        }
        Ok(res)
    }
}
