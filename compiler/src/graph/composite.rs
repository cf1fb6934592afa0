//! Composite ops: transformer building blocks that keep their identity in the graph until
//! lowering (softmax, norms, GELU, RoPE, attention, cross-entropy).
//!
//! Everything the compiler knows about one composite lives here: its type rule
//! ([`CompositeOp::infer`]) and its decomposition into primitive ops
//! ([`CompositeOp::decompose`], used by the f64 interpreter and by autodiff). The
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
    /// Per-token cross-entropy: `[N]` losses `logsumexp(logits[t]) - logits[t, target[t]]`,
    /// 0 where the target is `ignore_index` (and, on devices, outside `0..V`). Inputs as
    /// for [`CompositeOp::CrossEntropy`], whose mean it feeds.
    TokenCrossEntropy {
        /// Targets equal to this give a 0 loss.
        ignore_index: i64,
    },
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
        }
    }

    /// Number of inputs.
    pub fn arity(&self) -> usize {
        match self {
            CompositeOp::Softmax
            | CompositeOp::LogSoftmax
            | CompositeOp::Gelu { .. }
            | CompositeOp::Silu => 1,
            CompositeOp::LayerNorm { affine, .. } => 1 + 2 * usize::from(*affine),
            CompositeOp::RmsNorm { affine, .. } => 1 + usize::from(*affine),
            CompositeOp::SwiGlu
            | CompositeOp::CrossEntropy { .. }
            | CompositeOp::TokenCrossEntropy { .. } => 2,
            CompositeOp::Rope { .. } => 3,
            CompositeOp::Attention { padding, .. } => 3 + usize::from(*padding),
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
        }
    }

    /// Builds the decomposition of this op into primitive ops (no composites) in `g`, on
    /// `inputs` (one per [`CompositeOp::arity`]), and returns the node holding the result
    /// (same type as [`CompositeOp::infer`] gives). Used by the f64 interpreter and by
    /// autodiff.
    pub fn decompose(&self, g: &mut Graph, inputs: &[NodeId]) -> Result<NodeId, GraphError> {
        let _ = (g, inputs);
        Err(GraphError::Invalid {
            op: self.name(),
            node: String::new(),
            reason: "no decomposition yet".into(),
        })
    }
}
