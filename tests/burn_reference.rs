//! Independent reference: the bundled GPT (`tessera_models::gpt`) written a second time with
//! Burn 0.22 (CPU `ndarray` backend + `autodiff`, nothing else), from the same initial
//! weights (`GptConfig::init_params`, handed over in memory) and the same tiny-shakespeare
//! batches (`tessera_models::data` with a fixed seed).
//!
//! Checked against Tessera:
//! 1. the first-step loss and the gradient of every parameter, against Tessera's gradient
//!    graph (`compiler::autodiff::grad`) on the f64 graph interpreter and on the f32 tile
//!    interpreter (the plan compiled for the WGSL target);
//! 2. the losses of 10 AdamW steps (with global-norm clipping and decoupled weight decay on
//!    the decayed parameters only), Tessera's training graph (`compiler::optim::AdamW`) on
//!    the f64 interpreter against the same update written on Burn tensors.
//!
//! # The Burn model
//! Written from Burn's tensor operations, module by module, with the parameter layout of the
//! `tessera_models::gpt` module docs (linear weights `[d_in, d_out]`, `x @ W + b`): token
//! embedding (`select` rows of `wte`), position embedding (the first `T` rows of `wpe`),
//! pre-LN blocks (layer norm from Burn's biased variance, eps 1e-5), causal multi-head
//! attention by explicit matmuls, an additive causal mask and Burn's `softmax`, a GELU MLP,
//! the final layer norm, the LM head tied to `wte` (`x @ wte^T`), and the mean token
//! cross-entropy from Burn's `log_softmax` + `gather`, ignoring targets equal to -1.
//!
//! Two places where Burn itself is not used as-is, on purpose:
//! - GELU is written as `x/2 (1 + erf(x / sqrt 2))` from Burn's `erf` (whose derivative is
//!   the exact `2/sqrt(pi) exp(-x^2)`). Burn 0.22.1's `activation::gelu` computes the erf
//!   form forward, but its backward (`burn_backend` `ActivationOps::gelu_backward`, used
//!   by the autodiff backend) is the derivative of the *tanh approximation* (constants to 6
//!   digits): its gradients are not those of the function it computes. The test
//!   `burn_gelu_forward_is_the_erf_form` checks that the composed form and Burn's `gelu`
//!   agree forward.
//! - AdamW is written by hand on Burn tensors (the `optim` feature is not enabled, and
//!   Burn's `AdamWConfig` applies one weight decay to every parameter: it cannot exempt
//!   biases and layer-norm gains as Tessera's parameter specs do). The formula is the same
//!   as Burn's `burn_optim::AdamW` and PyTorch's: `p <- p (1 - lr wd) - lr m_hat /
//!   (sqrt(v_hat) + eps)` with `m_hat = m / (1 - b1^t)`, `v_hat = v / (1 - b2^t)`.
//!   Cross-entropy is written by hand too: Burn's `CrossEntropyLoss` ignores "pad tokens",
//!   which are valid class ids, not an out-of-range ignore index such as -1.
//!
//! # Tolerances (f32 against f64)
//! Burn's ndarray backend computes in f32 (unit roundoff u = 2^-24 ~ 6e-8); the graph
//! interpreter in f64. Errors are measured per parameter tensor as `max_i |g_burn - g_ref|
//! / max_i |g_ref|` (normalised by the tensor's largest gradient component: components
//! whose exact value is 0, such as the gradient of the key bias, which softmax cancels,
//! have no relative error to speak of), and for the loss as a plain relative error.
//! The longest accumulation is a dot product of `K = 4 C = 128` terms (the MLP
//! projection). Rounding errors are independent and of random sign, so one f32 dot product
//! is off by ~`sqrt(K) u ~ 7e-7` of the magnitude of its terms, and a gradient passes
//! through about 10 such products (2 blocks forward and backward, the tied head): ~7e-6
//! if they all added up. The bound asserted is 1e-5 (`GRAD_TOL`): tighter than the
//! issue's 1e-4, which it implies, and tight enough to see a wrong derivative that is
//! small at GPT-2's initial scale (Burn's tanh-form GELU backward gives 2.1e-5 here, the
//! f32 noise ~3.6e-7). The f32 tile interpreter against Burn is two f32 computations
//! against each other: the same bound covers the sum of two such errors in practice
//! (measured figures are printed).
//!
//! Over 10 AdamW steps (`TRAIN_TOL`) the loss may drift further: Adam divides by
//! `sqrt(v)`, so a gradient component at the f32 noise level is amplified to an update of
//! up to `lr`; such components have, by definition, a tiny gradient, so their effect on
//! the loss is second order (`|g| lr`), and the first-order effect of the 1e-6-scale
//! update noise on a loss of ~4 over 10 steps stays ~1e-6. The bound asserted is 1e-5
//! relative (the issue asks 1e-3); it is tight enough to catch, e.g., `eps` moved under
//! the square root.

#[path = "support/burn_gpt.rs"]
mod burn_gpt;

use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor, TensorData};
use burn_gpt::{adamw_update, gelu_erf, leaf, Params};
use std::collections::HashMap;
use tessera_compiler::autodiff::{grad, grad_name};
use tessera_compiler::graph::{DType, Graph};
use tessera_compiler::interp::{run_graph, run_plan, Tensor as TTensor};
use tessera_compiler::optim::{AdamW, AdamWInputs, ParamState};
use tessera_compiler::Target;
use tessera_models::data::{Batch, Dataset, Split};
use tessera_models::gpt::{gpt_forward, GptConfig, GptOutput, IGNORE_INDEX};
use tessera_models::nn::ParamSpec;
use tessera_models::rng::Rng;

const BATCH: usize = 4;
const SEQ: usize = 16;
const INIT_SEED: u64 = 1234;
const DATA_SEED: u64 = 99;
/// Loss and gradient tolerance of the first step (see the module docs).
const GRAD_TOL: f64 = 1e-5;
/// Loss tolerance over the AdamW steps (see the module docs).
const TRAIN_TOL: f64 = 1e-5;
const STEPS: usize = 10;
const LR: f64 = 1e-2;

fn config() -> GptConfig {
    GptConfig {
        n_layer: 2,
        n_head: 2,
        n_embd: 32,
        block_size: SEQ,
        vocab_size: 65,
    }
}

fn optimizer() -> AdamW {
    AdamW {
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        // Below the initial global gradient norm, so clipping is active (asserted).
        max_grad_norm: Some(0.5),
    }
}

/// `STEPS + 1` training batches from the seeded loader; in each, a few targets are set to
/// the ignore index (-1) so the ignore path of the loss is exercised.
fn batches() -> Vec<Batch> {
    let ds = Dataset::tiny_shakespeare().expect("dataset");
    assert_eq!(ds.tokenizer().vocab_size(), config().vocab_size);
    let mut rng = Rng::new(DATA_SEED);
    (0..=STEPS)
        .map(|s| {
            let mut b = ds.batch(Split::Train, BATCH, SEQ, &mut rng).expect("batch");
            for k in 0..3 {
                let i = (s * 7 + k * 13) % (BATCH * SEQ);
                b.targets.data[i] = IGNORE_INDEX as f64;
            }
            b
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The Burn model (`support/burn_gpt.rs`, shared with the benchmark's Burn peer).

#[allow(deprecated)] // the ndarray backend is the one the issue asks for (no wgpu/cubecl)
fn device() -> Device {
    Device::ndarray()
}

fn to_vec(t: Tensor<2>) -> Vec<f64> {
    t.into_data()
        .try_to_vec::<f32>()
        .expect("f32 data")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The GPT forward pass and loss of `batch` on Burn tensors.
fn burn_loss(params: &Params, cfg: &GptConfig, batch: &Batch) -> Tensor<1> {
    burn_gpt::burn_loss(
        params,
        cfg,
        (BATCH, SEQ),
        &batch.tokens.data,
        &batch.targets.data,
    )
}

/// Loss and gradients (flat, by parameter name) of the Burn model.
fn burn_loss_and_grads(
    params: &Params,
    cfg: &GptConfig,
    batch: &Batch,
) -> (f64, HashMap<String, Vec<f64>>) {
    let loss = burn_loss(params, cfg, batch);
    let grads = loss.backward();
    let value = to_vec(loss.reshape([1, 1]))[0];
    let g = params
        .iter()
        .map(|(name, t)| {
            let gt = t
                .grad(&grads)
                .unwrap_or_else(|| panic!("no Burn gradient for {name}"));
            (name.clone(), to_vec(gt))
        })
        .collect();
    (value, g)
}

fn burn_params(init: &HashMap<String, TTensor>) -> Params {
    burn_gpt::burn_params(init, &device().autodiff())
}

// ---------------------------------------------------------------------------------------
// Tessera.

struct TesseraGrad {
    graph: Graph,
    specs: Vec<ParamSpec>,
}

fn tessera_grad_graph(cfg: &GptConfig) -> TesseraGrad {
    let fwd = gpt_forward(cfg, BATCH, SEQ, GptOutput::Loss).expect("gpt graph");
    let loss = fwd.loss.expect("loss");
    let wrt: Vec<_> = fwd
        .params
        .iter()
        .map(|s| fwd.graph.find(&s.name).expect("param node"))
        .collect();
    let gg = grad(&fwd.graph, loss, &wrt).expect("grad graph");
    TesseraGrad {
        graph: gg.graph,
        specs: fwd.params,
    }
}

fn feeds(params: &HashMap<String, TTensor>, batch: &Batch) -> HashMap<String, TTensor> {
    let mut f = params.clone();
    f.insert("tokens".into(), batch.tokens.clone());
    f.insert("targets".into(), batch.targets.clone());
    f
}

// ---------------------------------------------------------------------------------------
// Comparison helpers.

/// `max_i |a_i - r_i| / max_i |r_i|`.
fn scaled_err(a: &[f64], r: &[f64]) -> f64 {
    assert_eq!(a.len(), r.len());
    let scale = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "reference gradient is identically zero");
    let diff = a
        .iter()
        .zip(r)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

fn rel(a: f64, r: f64) -> f64 {
    (a - r).abs() / r.abs()
}

/// Compares Burn's loss and gradients with a Tessera run's outputs; returns the worst
/// loss error and the worst (parameter, gradient error).
fn compare(
    what: &str,
    specs: &[ParamSpec],
    burn_loss: f64,
    burn_grads: &HashMap<String, Vec<f64>>,
    out: &HashMap<String, TTensor>,
) -> (f64, String, f64) {
    let loss = out["loss"].data[0];
    let loss_err = rel(burn_loss, loss);
    println!("{what}: loss tessera {loss:.9} burn {burn_loss:.9} rel err {loss_err:.2e}");
    let mut worst = (String::new(), 0.0f64);
    for s in specs {
        let r = &out
            .get(&grad_name(&s.name))
            .unwrap_or_else(|| panic!("{what}: no output {}", grad_name(&s.name)))
            .data;
        let e = scaled_err(&burn_grads[&s.name], r);
        println!("{what}:   grad {:<24} err {e:.2e}", s.name);
        if e > worst.1 {
            worst = (s.name.clone(), e);
        }
    }
    println!("{what}: worst gradient error {:.2e} ({})", worst.1, worst.0);
    (loss_err, worst.0, worst.1)
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn burn_gelu_forward_is_the_erf_form() {
    let dev = device();
    let xs: Vec<f32> = (0..41).map(|i| -5.0 + 0.25 * i as f32).collect();
    let x = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &dev);
    let a = gelu(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    let b = gelu_erf(x).into_data().try_to_vec::<f32>().expect("f32");
    for ((x, a), b) in xs.iter().zip(&a).zip(&b) {
        let x = f64::from(*x);
        let exact = 0.5 * x * (1.0 + erf_series(x / 2f64.sqrt()));
        // f32: `1 + erf` carries an absolute error of a few u, scaled by |x| / 2, plus the
        // rounding of the products: 4 eps (|gelu| + |x|) bounds both forms.
        let tol = 4.0 * f64::from(f32::EPSILON) * (exact.abs() + x.abs());
        for (what, got) in [("burn gelu", a), ("composed gelu", b)] {
            let got = f64::from(*got);
            assert!(
                (got - exact).abs() <= tol,
                "{what}({x}) = {got}, exact {exact}"
            );
        }
    }
}

/// erf by its Maclaurin series, summed in f64 until the terms vanish (|z| <= 3.6 here:
/// the largest term is ~e^(z^2) ~ 4e5, so ~1e-10 absolute accuracy, far below f32
/// resolution): independent of the code under test.
fn erf_series(z: f64) -> f64 {
    let mut term = z;
    let mut sum = z;
    let mut n = 0.0;
    loop {
        n += 1.0;
        term *= -z * z / n;
        let add = term / (2.0 * n + 1.0);
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn first_step_loss_and_gradients_match_burn() {
    let cfg = config();
    let init = cfg.init_params(INIT_SEED).expect("init");
    let batch = &batches()[0];

    let bp = burn_params(&init);
    let (b_loss, b_grads) = burn_loss_and_grads(&bp, &cfg, batch);
    // Sanity: an untrained model's loss is close to ln(vocab).
    assert!(
        (b_loss - (cfg.vocab_size as f64).ln()).abs() < 0.1,
        "burn loss {b_loss}"
    );

    let tg = tessera_grad_graph(&cfg);
    let out = run_graph(&tg.graph, &feeds(&init, batch)).expect("f64 interpreter");
    let (le, wp, we) = compare("f64 interp", &tg.specs, b_loss, &b_grads, &out);
    assert!(le <= GRAD_TOL, "loss rel err {le:.2e} > {GRAD_TOL}");
    assert!(
        we <= GRAD_TOL,
        "gradient of {wp}: err {we:.2e} > {GRAD_TOL}"
    );

    let plan = tessera_compiler::compile(&tg.graph, &Target::wgsl()).expect("compile");
    let out = run_plan(&plan, &feeds(&init, batch)).expect("tile interpreter");
    let (le, wp, we) = compare("f32 tile interp", &tg.specs, b_loss, &b_grads, &out);
    assert!(le <= GRAD_TOL, "loss rel err {le:.2e} > {GRAD_TOL}");
    assert!(
        we <= GRAD_TOL,
        "gradient of {wp}: err {we:.2e} > {GRAD_TOL}"
    );
}

/// Tessera's training graph: loss, gradients and the AdamW update of every parameter;
/// outputs `new/<p>`, `m/<p>.new`, `v/<p>.new`; moments are parameters `m/<p>`, `v/<p>`.
fn tessera_train_graph(cfg: &GptConfig, opt: &AdamW) -> (Graph, Vec<ParamSpec>) {
    let TesseraGrad { mut graph, specs } = tessera_grad_graph(cfg);
    let g = &mut graph;
    let mut states = Vec::new();
    for s in &specs {
        let param = g.find(&s.name).expect("param");
        let gr = g.find(&grad_name(&s.name)).expect("grad");
        let m = g
            .param(&format!("m/{}", s.name), &s.shape, DType::F32)
            .expect("m");
        let v = g
            .param(&format!("v/{}", s.name), &s.shape, DType::F32)
            .expect("v");
        states.push(ParamState {
            param,
            grad: gr,
            m,
            v,
            decay: s.decay,
        });
    }
    let inputs = AdamWInputs::add(g, "adamw.").expect("adamw inputs");
    let ups = opt.step(g, &inputs, &states).expect("adamw");
    for (s, u) in specs.iter().zip(&ups) {
        for (id, name) in [
            (u.param, format!("new/{}", s.name)),
            (u.m, format!("m/{}.new", s.name)),
            (u.v, format!("v/{}.new", s.name)),
        ] {
            g.set_name(id, &name).expect("name");
            g.mark_output(id).expect("output");
        }
    }
    graph.validate().expect("valid");
    (graph, specs)
}

/// One AdamW update on Burn tensors (see the module docs), clipping by the global norm.
fn burn_adamw(
    opt: &AdamW,
    specs: &[ParamSpec],
    params: &mut Params,
    grads: &HashMap<String, Vec<f64>>,
    m: &mut HashMap<String, Tensor<2>>,
    v: &mut HashMap<String, Tensor<2>>,
    step: i32,
) -> f64 {
    let dev = device();
    // Global norm of the gradients as Burn computes it (f32 sums).
    let mut sq = 0.0f64;
    let mut g_t = HashMap::new();
    for s in specs {
        let shape = params[&s.name].dims();
        let data: Vec<f32> = grads[&s.name].iter().map(|&x| x as f32).collect();
        let t = Tensor::<2>::from_data(TensorData::new(data, shape), &dev);
        sq += to_vec(t.clone().square().sum().reshape([1, 1]))[0];
        g_t.insert(s.name.clone(), t);
    }
    let norm = sq.sqrt();
    let clip = opt.max_grad_norm.map_or(1.0, |mx| {
        (mx / (norm + tessera_compiler::optim::CLIP_EPS)).min(1.0)
    });
    let bc1 = 1.0 - opt.beta1.powi(step);
    let bc2 = 1.0 - opt.beta2.powi(step);
    for s in specs {
        let g = g_t.remove(&s.name).expect("grad").mul_scalar(clip);
        let state = (
            params[&s.name].clone().inner(),
            m[&s.name].clone(),
            v[&s.name].clone(),
        );
        let (p1, m1, v1) = adamw_update(opt, LR, (bc1, bc2), s.decay, g, state);
        params.insert(s.name.clone(), leaf(p1));
        m.insert(s.name.clone(), m1);
        v.insert(s.name.clone(), v1);
    }
    norm
}

#[test]
fn ten_adamw_steps_match_burn() {
    let cfg = config();
    let opt = optimizer();
    let init = cfg.init_params(INIT_SEED).expect("init");
    let data = batches();
    let (graph, specs) = tessera_train_graph(&cfg, &opt);

    // Tessera on the f64 interpreter.
    let mut t_params = init.clone();
    let mut t_m: HashMap<String, TTensor> = specs
        .iter()
        .map(|s| (s.name.clone(), TTensor::zeros(&s.shape, DType::F32)))
        .collect();
    let mut t_v = t_m.clone();
    let mut t_losses = Vec::new();
    for (step, batch) in data.iter().enumerate().take(STEPS) {
        let mut f = feeds(&t_params, batch);
        for s in &specs {
            f.insert(format!("m/{}", s.name), t_m[&s.name].clone());
            f.insert(format!("v/{}", s.name), t_v[&s.name].clone());
        }
        f.extend(opt.step_values("adamw.", step as u64 + 1, LR));
        let out = run_graph(&graph, &f).expect("train step");
        t_losses.push(out["loss"].data[0]);
        for s in &specs {
            t_params.insert(s.name.clone(), out[&format!("new/{}", s.name)].clone());
            t_m.insert(s.name.clone(), out[&format!("m/{}.new", s.name)].clone());
            t_v.insert(s.name.clone(), out[&format!("v/{}.new", s.name)].clone());
        }
    }
    // The loss after the last update (a forward pass on the next batch).
    let fwd = gpt_forward(&cfg, BATCH, SEQ, GptOutput::Loss).expect("gpt");
    let out = run_graph(&fwd.graph, &feeds(&t_params, &data[STEPS])).expect("final loss");
    t_losses.push(out["loss"].data[0]);

    // Burn.
    let mut b_params = burn_params(&init);
    let zeros = |s: &ParamSpec| b_params[&s.name].clone().inner().zeros_like();
    let mut b_m: HashMap<String, Tensor<2>> =
        specs.iter().map(|s| (s.name.clone(), zeros(s))).collect();
    let mut b_v = b_m.clone();
    let mut b_losses = Vec::new();
    let mut norms = Vec::new();
    for (step, batch) in data.iter().enumerate().take(STEPS) {
        let (loss, grads) = burn_loss_and_grads(&b_params, &cfg, batch);
        b_losses.push(loss);
        let norm = burn_adamw(
            &opt,
            &specs,
            &mut b_params,
            &grads,
            &mut b_m,
            &mut b_v,
            step as i32 + 1,
        );
        norms.push(norm);
    }
    b_losses.push(to_vec(burn_loss(&b_params, &cfg, &data[STEPS]).reshape([1, 1]))[0]);

    let mut worst = (0usize, 0.0f64);
    for (i, (t, b)) in t_losses.iter().zip(&b_losses).enumerate() {
        let e = rel(*b, *t);
        println!("step {i:2}: loss tessera {t:.7} burn {b:.7} rel err {e:.2e}");
        if e > worst.1 {
            worst = (i, e);
        }
    }
    println!("gradient norms (burn): {norms:?}");
    println!(
        "worst loss error over {STEPS} AdamW steps: {:.2e} (step {})",
        worst.1, worst.0
    );
    let max_norm = opt.max_grad_norm.unwrap_or(f64::INFINITY);
    assert!(
        norms.iter().any(|&n| n > max_norm),
        "clipping never active: norms {norms:?}"
    );
    // Training happened: the loss moved well beyond the tolerance.
    assert!(
        t_losses[0] - t_losses[STEPS] > 0.1,
        "loss did not fall: {t_losses:?}"
    );
    assert!(
        worst.1 <= TRAIN_TOL,
        "loss rel err {:.2e} at step {} > {TRAIN_TOL}",
        worst.1,
        worst.0
    );
}
