//! The bundled GPT written with Burn tensor ops: the independent reference of
//! `tests/burn_reference.rs` (on Burn's ndarray CPU backend) and the peer of the GPT
//! training-step benchmark in `bench/` (on Burn's wgpu backend). Burn 0.22 tensors carry
//! no backend type, so the same code runs on either device.
//!
//! Parameters are rank-2 Burn tensors keyed by Tessera's names (`[n]` parameters as
//! `[1, n]`, which broadcast as row vectors); the layout and the math follow
//! `tessera_models::gpt` (pre-LN blocks, exact erf GELU, causal attention, LM head tied
//! to the token embedding, mean cross-entropy with ignored targets).

#![allow(dead_code)] // each includer uses its own part

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::collections::HashMap;
use tessera_compiler::interp::Tensor as TTensor;
use tessera_compiler::optim::AdamW;
use tessera_models::gpt::{GptConfig, IGNORE_INDEX, LN_EPS};

/// Parameters as Burn tensors, keyed by Tessera's names.
pub type Params = HashMap<String, Tensor<2>>;

/// A Tessera parameter as a rank-2 f32 Burn tensor on `dev`.
pub fn to_burn(t: &TTensor, dev: &Device) -> Tensor<2> {
    let shape = match t.shape.as_slice() {
        [n] => [1, *n],
        [r, c] => [*r, *c],
        s => panic!("unexpected parameter shape {s:?}"),
    };
    let data: Vec<f32> = t.data.iter().map(|&v| v as f32).collect();
    Tensor::<2>::from_data(TensorData::new(data, shape), dev)
}

/// An autodiff leaf that requires its gradient.
pub fn leaf(t: Tensor<2>) -> Tensor<2> {
    t.autodiff().require_grad()
}

/// Every parameter of `init` as an autodiff leaf on `dev` (an autodiff device).
pub fn burn_params(init: &HashMap<String, TTensor>, dev: &Device) -> Params {
    init.iter()
        .map(|(n, t)| (n.clone(), leaf(to_burn(t, dev))))
        .collect()
}

fn p(params: &Params, name: &str) -> Tensor<2> {
    params
        .get(name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .clone()
}

fn linear(params: &Params, prefix: &str, x: Tensor<2>) -> Tensor<2> {
    x.matmul(p(params, &format!("{prefix}.weight"))) + p(params, &format!("{prefix}.bias"))
}

fn layer_norm(params: &Params, prefix: &str, x: Tensor<2>) -> Tensor<2> {
    let (var, mean) = x.clone().var_mean_bias(1);
    let xhat = (x - mean) / var.add_scalar(LN_EPS).sqrt();
    xhat * p(params, &format!("{prefix}.weight")) + p(params, &format!("{prefix}.bias"))
}

/// The exact GELU composed from Burn's `erf` (`tests/burn_reference.rs` says why not
/// Burn's `gelu`).
pub fn gelu_erf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let e = x.clone().div_scalar(std::f64::consts::SQRT_2).erf();
    (x * e.add_scalar(1.0)).mul_scalar(0.5)
}

/// `[1, 1, T, T]` additive causal mask: 0 where key <= query, -1e30 above the diagonal
/// (exp underflows to exactly 0 after the max subtraction; no infinities in the graph).
fn causal_mask(t: usize, dev: &Device) -> Tensor<4> {
    let data: Vec<f32> = (0..t * t)
        .map(|i| if i % t > i / t { -1e30 } else { 0.0 })
        .collect();
    Tensor::<4>::from_data(TensorData::new(data, [1, 1, t, t]), dev)
}

fn attention(
    params: &Params,
    prefix: &str,
    x: Tensor<2>,
    cfg: &GptConfig,
    (b, t): (usize, usize),
) -> Tensor<2> {
    let (c, h) = (cfg.n_embd, cfg.n_head);
    let d = cfg.head_dim();
    let n = b * t;
    let qkv = linear(params, &format!("{prefix}.qkv"), x);
    let head = |j: usize| -> Tensor<4> {
        qkv.clone()
            .slice([0..n, j * c..(j + 1) * c])
            .reshape([b, t, h, d])
            .swap_dims(1, 2)
    };
    let (q, k, v) = (head(0), head(1), head(2));
    let dev = q.device();
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(1.0 / (d as f64).sqrt());
    let probs = softmax(scores + causal_mask(t, &dev), 3);
    let y = probs.matmul(v).swap_dims(1, 2).reshape([n, c]);
    linear(params, &format!("{prefix}.proj"), y)
}

/// Mean cross-entropy of `logits [N, V]` against `targets` (ids, -1 ignored).
fn cross_entropy(logits: Tensor<2>, targets: &[f64], dev: &Device) -> Tensor<1> {
    let n = targets.len();
    let idx: Vec<i64> = targets.iter().map(|&t| (t as i64).max(0)).collect();
    let keep: Vec<f32> = targets
        .iter()
        .map(|&t| if t as i64 == IGNORE_INDEX { 0.0 } else { 1.0 })
        .collect();
    let count = keep.iter().filter(|&&k| k > 0.0).count();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n, 1]), dev);
    let keep = Tensor::<2>::from_data(TensorData::new(keep, [n, 1]), dev);
    let picked = log_softmax(logits, 1).gather(1, idx);
    (picked * keep).sum().neg().div_scalar(count as f64)
}

/// The GPT forward pass and mean loss of a `batch x seq` token batch (`tokens`,
/// `targets`: row-major ids as Tessera's data loader gives them).
pub fn burn_loss(
    params: &Params,
    cfg: &GptConfig,
    (batch, seq): (usize, usize),
    tokens: &[f64],
    targets: &[f64],
) -> Tensor<1> {
    let dev = p(params, "wte.weight").device();
    let (b, t, c) = (batch, seq, cfg.n_embd);
    let n = b * t;
    let ids: Vec<i64> = tokens.iter().map(|&v| v as i64).collect();
    let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &dev);
    let tok = p(params, "wte.weight").select(0, ids).reshape([b, t, c]);
    let pos = p(params, "wpe.weight")
        .slice([0..t, 0..c])
        .reshape([1, t, c]);
    let mut x: Tensor<2> = (tok + pos).reshape([n, c]);
    for i in 0..cfg.n_layer {
        let pre = format!("h.{i}");
        let a = layer_norm(params, &format!("{pre}.ln_1"), x.clone());
        x = x + attention(params, &format!("{pre}.attn"), a, cfg, (b, t));
        let m = layer_norm(params, &format!("{pre}.ln_2"), x.clone());
        let m = gelu_erf(linear(params, &format!("{pre}.mlp.fc"), m));
        x = x + linear(params, &format!("{pre}.mlp.proj"), m);
    }
    let x = layer_norm(params, "ln_f", x);
    let logits = x.matmul(p(params, "wte.weight").transpose());
    cross_entropy(logits, targets, &dev)
}

/// One AdamW update of a parameter, in Burn tensor ops, as `tessera_compiler::optim`
/// defines it: `g` already clipped, decoupled weight decay when `decay`, bias
/// corrections `bc = (1 - beta1^t, 1 - beta2^t)`. Takes `(p, m, v)` (inner, non-autodiff
/// tensors) and returns `(p', m', v')`.
pub fn adamw_update(
    opt: &AdamW,
    lr: f64,
    (bc1, bc2): (f64, f64),
    decay: bool,
    g: Tensor<2>,
    (p, m, v): (Tensor<2>, Tensor<2>, Tensor<2>),
) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let m1 = m.mul_scalar(opt.beta1) + g.clone().mul_scalar(1.0 - opt.beta1);
    let v1 = v.mul_scalar(opt.beta2) + g.square().mul_scalar(1.0 - opt.beta2);
    let p = if decay {
        p.mul_scalar(1.0 - lr * opt.weight_decay)
    } else {
        p
    };
    let upd = m1.clone().div_scalar(bc1) / v1.clone().div_scalar(bc2).sqrt().add_scalar(opt.eps);
    (p - upd.mul_scalar(lr), m1, v1)
}
