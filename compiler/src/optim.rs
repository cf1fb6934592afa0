//! Optimizers as graph ops: AdamW (decoupled weight decay, bias correction) and gradient
//! clipping by global norm.
//!
//! The update is built into the training graph, so parameters, gradients and moments stay
//! on the device. Everything that changes from step to step — the learning rate and the
//! two bias corrections — is one `[3]` graph *input* ([`AdamWInputs`]), so one compiled
//! graph serves every step; the host computes its value with [`AdamW::step_values`].
//! The per-parameter update is purely elementwise in `(param, grad, m, v)` and those
//! scalars, so the scheduler's multi-output kernels make each parameter's update one
//! kernel storing `m'`, `v'` and `p'` (5 buffers in, 3 out: within WebGPU's 8; with
//! clipping the scale is a sixth input and WGSL needs 2 kernels, `m', v'` then `p'`). The
//! clipped gradient is recomputed inline, never materialised. Clipping adds one reduction
//! per gradient (its sum of squares) and a scalar combination.
//!
//! The update of one parameter `p` with gradient `g` at step `t = 1, 2, ..` (as PyTorch's
//! `AdamW`, `amsgrad = false`):
//! ```text
//! g  = g * clip                                  (clip = 1 without clipping)
//! m' = beta1 m + (1 - beta1) g
//! v' = beta2 v + (1 - beta2) g^2
//! p' = p (1 - lr wd) - lr (m' bc1) / (sqrt(v' bc2) + eps)
//! bc1 = 1 / (1 - beta1^t),  bc2 = 1 / (1 - beta2^t)
//! clip = min(1, max_norm / (sqrt(sum over all grads of g^2) + 1e-6))
//! ```
//! `wd` is 0 for parameters the caller does not decay (biases, norm gains).

use crate::graph::{DType, Graph, GraphError, NodeId};
use crate::interp::Tensor;
use std::collections::HashMap;

/// Added to the global gradient norm before dividing (as `torch.nn.utils.clip_grad_norm_`).
pub const CLIP_EPS: f64 = 1e-6;

/// AdamW hyper-parameters fixed at graph-build time (the learning rate is an input).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamW {
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
    /// Decoupled weight decay (multiplied by the learning rate).
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value.
    pub max_grad_norm: Option<f64>,
}

impl Default for AdamW {
    /// `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`, `weight_decay = 0.01` (PyTorch's
    /// defaults), no clipping.
    fn default() -> Self {
        AdamW {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: None,
        }
    }
}

/// The per-step scalars of an update, read from one graph input `{prefix}step` of shape
/// `[3]` holding `[lr, bc1, bc2]` (one buffer, not three: on WebGPU's 8 storage buffers
/// per kernel, `p, g, m, v, step` in and `p', m', v'` out make the whole update of a
/// parameter one kernel). The fields are scalar (`[]`) views of its elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdamWInputs {
    /// The input `{prefix}step` (`[3]`, f32).
    pub step: NodeId,
    /// Learning rate: `step[0]`.
    pub lr: NodeId,
    /// `1 / (1 - beta1^t)`: `step[1]`.
    pub bc1: NodeId,
    /// `1 / (1 - beta2^t)`: `step[2]`.
    pub bc2: NodeId,
}

/// Name of the per-step input made by [`AdamWInputs::add`] with a prefix: `{prefix}step`.
pub fn input_name(prefix: &str) -> String {
    format!("{prefix}step")
}

impl AdamWInputs {
    /// Adds the input `{prefix}step` (`[3]`, `f32`: `lr`, `bc1`, `bc2`) and its three
    /// scalar views.
    pub fn add(g: &mut Graph, prefix: &str) -> Result<AdamWInputs, GraphError> {
        let step = g.input(&input_name(prefix), &[3], DType::F32)?;
        let mut element = |i: usize| -> Result<NodeId, GraphError> {
            let one = g.slice(step, 0, i, 1)?;
            g.reshape(one, &[])
        };
        Ok(AdamWInputs {
            lr: element(0)?,
            bc1: element(1)?,
            bc2: element(2)?,
            step,
        })
    }
}

/// The state of one parameter entering an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamState {
    /// The parameter.
    pub param: NodeId,
    /// Its gradient (same shape and dtype).
    pub grad: NodeId,
    /// First moment (same shape and dtype).
    pub m: NodeId,
    /// Second moment (same shape and dtype).
    pub v: NodeId,
    /// Whether weight decay applies.
    pub decay: bool,
}

/// The new values of one parameter after an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamUpdate {
    /// Updated parameter.
    pub param: NodeId,
    /// Updated first moment.
    pub m: NodeId,
    /// Updated second moment.
    pub v: NodeId,
}

impl AdamW {
    /// `(bc1, bc2) = (1 / (1 - beta1^t), 1 / (1 - beta2^t))` for step `t >= 1` (the first
    /// update is step 1; `t = 0` is treated as 1).
    pub fn bias_corrections(&self, step: u64) -> (f64, f64) {
        let t = step.max(1).min(i32::MAX as u64) as i32;
        (
            1.0 / (1.0 - self.beta1.powi(t)),
            1.0 / (1.0 - self.beta2.powi(t)),
        )
    }

    /// Value of the input [`AdamWInputs::add`] made with `prefix`, for step `t` and
    /// learning rate `lr`: `[lr, bc1, bc2]` as an `f32` tensor keyed by the input's name.
    /// The values are kept in f64 (not rounded to f32: the f64 interpreter sees the exact
    /// values, a device rounds them when it uploads them).
    pub fn step_values(&self, prefix: &str, step: u64, lr: f64) -> HashMap<String, Tensor> {
        let (bc1, bc2) = self.bias_corrections(step);
        let t = Tensor {
            shape: vec![3],
            dtype: DType::F32,
            data: vec![lr, bc1, bc2],
        };
        HashMap::from([(input_name(prefix), t)])
    }

    /// Builds the update of one parameter (see the module docs); `clip` is the scalar
    /// gradient scale from [`clip_scale`], if any. Purely elementwise.
    pub fn update(
        &self,
        g: &mut Graph,
        inputs: &AdamWInputs,
        state: &ParamState,
        clip: Option<NodeId>,
    ) -> Result<ParamUpdate, GraphError> {
        for id in [state.param, state.grad, state.m, state.v]
            .into_iter()
            .chain(clip)
        {
            g.check_id(id, "adamw")?;
        }
        let ty = g.ty(state.param).clone();
        for (what, id) in [("grad", state.grad), ("m", state.m), ("v", state.v)] {
            if *g.ty(id) != ty {
                return Err(GraphError::Invalid {
                    op: "adamw",
                    node: g.node(state.param).name.clone(),
                    reason: format!(
                        "{what} `{}` has type {}, the parameter {}",
                        g.node(id).name,
                        g.ty(id),
                        ty
                    ),
                });
            }
        }
        let dt = ty.dtype;
        let scalar = |g: &mut Graph, v: f64| g.constant(v, &[], dt);
        // The clipped gradient is rebuilt for each use (one node per user) so that no
        // scheduler has a reason to materialise it: each consumer recomputes `g * clip`.
        let clipped = |g: &mut Graph| match clip {
            Some(c) => g.mul(state.grad, c),
            None => Ok(state.grad),
        };
        // m' = beta1 m + (1 - beta1) g
        let b1 = scalar(g, self.beta1)?;
        let one_b1 = scalar(g, 1.0 - self.beta1)?;
        let m1 = g.mul(state.m, b1)?;
        let grad = clipped(g)?;
        let m2 = g.mul(grad, one_b1)?;
        let m = g.add(m1, m2)?;
        // v' = beta2 v + (1 - beta2) g^2
        let b2 = scalar(g, self.beta2)?;
        let one_b2 = scalar(g, 1.0 - self.beta2)?;
        let v1 = g.mul(state.v, b2)?;
        let grad = clipped(g)?;
        let gg = g.mul(grad, grad)?;
        let v2 = g.mul(gg, one_b2)?;
        let v = g.add(v1, v2)?;
        // step = lr * (m' bc1) / (sqrt(v' bc2) + eps)
        let mh = g.mul(m, inputs.bc1)?;
        let vh = g.mul(v, inputs.bc2)?;
        let den = g.sqrt(vh)?;
        let eps = scalar(g, self.eps)?;
        let den = g.add(den, eps)?;
        let dir = g.div(mh, den)?;
        let step = g.mul(dir, inputs.lr)?;
        // p' = p (1 - lr wd) - step
        let p = if state.decay && self.weight_decay != 0.0 {
            let wd = scalar(g, self.weight_decay)?;
            let one = scalar(g, 1.0)?;
            let lr_wd = g.mul(inputs.lr, wd)?;
            let keep = g.sub(one, lr_wd)?;
            g.mul(state.param, keep)?
        } else {
            state.param
        };
        let param = g.sub(p, step)?;
        Ok(ParamUpdate { param, m, v })
    }

    /// Updates every parameter: with [`AdamW::max_grad_norm`] the gradients are first
    /// scaled by [`clip_scale`] of their [`global_grad_norm`]. Results in the order of
    /// `states`.
    pub fn step(
        &self,
        g: &mut Graph,
        inputs: &AdamWInputs,
        states: &[ParamState],
    ) -> Result<Vec<ParamUpdate>, GraphError> {
        let clip = match self.max_grad_norm {
            Some(max_norm) => {
                let grads: Vec<NodeId> = states.iter().map(|s| s.grad).collect();
                let norm = global_grad_norm(g, &grads)?;
                Some(clip_scale(g, norm, max_norm)?)
            }
            None => None,
        };
        states
            .iter()
            .map(|s| self.update(g, inputs, s, clip))
            .collect()
    }
}

/// `sqrt(sum over all grads of sum(g^2))`, a scalar `[]` of the first gradient's dtype.
/// Each gradient is flattened and reduced on its own; the partial sums are added.
pub fn global_grad_norm(g: &mut Graph, grads: &[NodeId]) -> Result<NodeId, GraphError> {
    let Some(&first) = grads.first() else {
        return Err(GraphError::Invalid {
            op: "global_grad_norm",
            node: "global_grad_norm".into(),
            reason: "no gradients".into(),
        });
    };
    let mut total = sum_of_squares(g, first)?;
    for &gr in &grads[1..] {
        let s = sum_of_squares(g, gr)?;
        total = g.add(total, s)?;
    }
    g.sqrt(total)
}

fn sum_of_squares(g: &mut Graph, x: NodeId) -> Result<NodeId, GraphError> {
    g.check_id(x, "global_grad_norm")?;
    let n = g.ty(x).numel();
    let flat = g.reshape(x, &[n])?;
    let sq = g.mul(flat, flat)?;
    g.sum(sq, 0, false)
}

/// The gradient scale of clipping to `max_norm`: `min(1, max_norm / (norm + 1e-6))` for
/// a scalar `norm`.
pub fn clip_scale(g: &mut Graph, norm: NodeId, max_norm: f64) -> Result<NodeId, GraphError> {
    g.check_id(norm, "clip_scale")?;
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(GraphError::Invalid {
            op: "clip_scale",
            node: g.node(norm).name.clone(),
            reason: format!("max_norm must be finite and > 0, got {max_norm}"),
        });
    }
    let dt = g.ty(norm).dtype;
    let eps = g.constant(CLIP_EPS, &[], dt)?;
    let mx = g.constant(max_norm, &[], dt)?;
    let one = g.constant(1.0, &[], dt)?;
    let den = g.add(norm, eps)?;
    let r = g.div(mx, den)?;
    g.min(r, one)
}
