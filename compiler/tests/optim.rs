//! AdamW and global-norm clipping built as graph ops (`tessera_compiler::optim`), run on
//! the f64 interpreter for several steps and compared with an independent, hand-written
//! f64 AdamW in PyTorch's formulation (`p *= 1 - lr wd; p -= (lr / (1 - b1^t)) m /
//! (sqrt(v) / sqrt(1 - b2^t) + eps)`), which orders the arithmetic differently from the
//! graph. Both run in f64, so the only difference is rounding: a few ulps of the values
//! involved (|p| <= 1, |m|, |v| <= 1, one step at most `lr`). Tolerance: 1e-13 absolute on
//! values of magnitude <= 1 after <= 6 steps (each step contributes at most a few 1e-16).

use std::collections::HashMap;
use tessera_compiler::graph::{DType, Graph, GraphError, NodeId};
use tessera_compiler::interp::{run_graph, Tensor};
use tessera_compiler::optim::{clip_scale, global_grad_norm, AdamW, AdamWInputs, ParamState};

const TOL: f64 = 1e-13;

struct Built {
    graph: Graph,
    names: Vec<String>,
}

/// Params `p{i}` of the given shapes with gradient inputs `g{i}` and moment params
/// `m{i}`, `v{i}`; outputs `p{i}.new`, `m{i}.new`, `v{i}.new`.
fn build(opt: &AdamW, shapes: &[(&[usize], bool)]) -> Built {
    let mut g = Graph::new();
    let mut states = Vec::new();
    let mut names = Vec::new();
    for (i, (shape, decay)) in shapes.iter().enumerate() {
        let p = g.param(&format!("p{i}"), shape, DType::F32).unwrap();
        let gr = g.input(&format!("g{i}"), shape, DType::F32).unwrap();
        let m = g.param(&format!("m{i}"), shape, DType::F32).unwrap();
        let v = g.param(&format!("v{i}"), shape, DType::F32).unwrap();
        states.push(ParamState {
            param: p,
            grad: gr,
            m,
            v,
            decay: *decay,
        });
        names.push(format!("{i}"));
    }
    let inputs = AdamWInputs::add(&mut g, "adamw.").unwrap();
    let ups = opt.step(&mut g, &inputs, &states).unwrap();
    for (i, u) in ups.iter().enumerate() {
        for (id, what) in [(u.param, "p"), (u.m, "m"), (u.v, "v")] {
            name_output(&mut g, id, &format!("{what}{i}.new"));
        }
    }
    g.validate().unwrap();
    Built { graph: g, names }
}

fn name_output(g: &mut Graph, id: NodeId, name: &str) {
    g.set_name(id, name).unwrap();
    g.mark_output(id).unwrap();
}

/// The reference: PyTorch's AdamW step on flat f64 vectors, clipping first.
#[allow(clippy::too_many_arguments)]
fn reference_step(
    opt: &AdamW,
    step: u64,
    lr: f64,
    decays: &[bool],
    p: &mut [Vec<f64>],
    grads: &[Vec<f64>],
    m: &mut [Vec<f64>],
    v: &mut [Vec<f64>],
) {
    let mut scale = 1.0;
    if let Some(max_norm) = opt.max_grad_norm {
        let total: f64 = grads.iter().flatten().map(|x| x * x).sum::<f64>().sqrt();
        let coef = max_norm / (total + 1e-6);
        if coef < 1.0 {
            scale = coef;
        }
    }
    let t = step as i32;
    let bias1 = 1.0 - opt.beta1.powi(t);
    let bias2 = 1.0 - opt.beta2.powi(t);
    for i in 0..p.len() {
        for j in 0..p[i].len() {
            let gr = grads[i][j] * scale;
            if decays[i] {
                p[i][j] *= 1.0 - lr * opt.weight_decay;
            }
            m[i][j] = opt.beta1 * m[i][j] + (1.0 - opt.beta1) * gr;
            v[i][j] = opt.beta2 * v[i][j] + (1.0 - opt.beta2) * gr * gr;
            let denom = v[i][j].sqrt() / bias2.sqrt() + opt.eps;
            p[i][j] -= (lr / bias1) * m[i][j] / denom;
        }
    }
}

/// Runs `steps` AdamW steps on the interpreter and on the reference; returns the worst
/// absolute difference over params and moments after each step, and the largest gradient
/// scale seen (to show whether clipping was active).
fn run(opt: AdamW, steps: u64, grad_amp: f64) -> f64 {
    let shapes: Vec<(&[usize], bool)> = vec![(&[3, 4], true), (&[5], false), (&[2, 1, 3], true)];
    let built = build(&opt, &shapes);
    let decays: Vec<bool> = shapes.iter().map(|s| s.1).collect();
    let mut state: HashMap<String, Tensor> = HashMap::new();
    let (mut rp, mut rm, mut rv) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (shape, _)) in shapes.iter().enumerate() {
        let p = Tensor::random(shape, DType::F32, 100 + i as u64);
        rp.push(p.data.clone());
        rm.push(vec![0.0; p.numel()]);
        rv.push(vec![0.0; p.numel()]);
        state.insert(format!("p{i}"), p);
        state.insert(format!("m{i}"), Tensor::zeros(shape, DType::F32));
        state.insert(format!("v{i}"), Tensor::zeros(shape, DType::F32));
    }
    let mut worst = 0.0f64;
    for step in 1..=steps {
        // A learning rate that changes every step, as a schedule would.
        let lr = 1e-2 / step as f64;
        let mut feed = state.clone();
        feed.extend(opt.step_values("adamw.", step, lr));
        let mut grads = Vec::new();
        for (i, (shape, _)) in shapes.iter().enumerate() {
            let mut gt = Tensor::random(shape, DType::F32, 1000 * step + i as u64);
            gt.data.iter_mut().for_each(|x| *x *= grad_amp);
            grads.push(gt.data.clone());
            feed.insert(format!("g{i}"), gt);
        }
        let out = run_graph(&built.graph, &feed).unwrap();
        reference_step(&opt, step, lr, &decays, &mut rp, &grads, &mut rm, &mut rv);
        for (i, _) in built.names.iter().enumerate() {
            for (what, r) in [("p", &rp[i]), ("m", &rm[i]), ("v", &rv[i])] {
                let t = out[&format!("{what}{i}.new")].clone();
                let d = tessera_compiler::interp::max_abs_diff(&t.data, r);
                worst = worst.max(d);
                state.insert(format!("{what}{i}"), t);
            }
        }
    }
    worst
}

#[test]
fn adamw_matches_reference_without_clipping() {
    let opt = AdamW {
        weight_decay: 0.1,
        ..AdamW::default()
    };
    let worst = run(opt, 6, 1.0);
    eprintln!("without_clipping: worst abs diff {worst:e}");
    assert!(worst <= TOL, "worst abs diff {worst:e}");
}

#[test]
fn adamw_matches_reference_with_active_clipping() {
    // 47 gradient values uniform in [-1, 1): norm about sqrt(47 / 3) ~ 4 > 0.5, so the
    // clip scales every step.
    let opt = AdamW {
        weight_decay: 0.05,
        max_grad_norm: Some(0.5),
        beta1: 0.8,
        beta2: 0.95,
        eps: 1e-6,
    };
    let worst = run(opt, 5, 1.0);
    eprintln!("with_active_clipping: worst abs diff {worst:e}");
    assert!(worst <= TOL, "worst abs diff {worst:e}");
}

#[test]
fn adamw_matches_reference_with_inactive_clipping() {
    // Gradients scaled by 1e-2: norm ~ 0.04 < 1, the clip is the identity (min picks 1).
    let opt = AdamW {
        max_grad_norm: Some(1.0),
        ..AdamW::default()
    };
    let worst = run(opt, 4, 1e-2);
    eprintln!("with_inactive_clipping: worst abs diff {worst:e}");
    assert!(worst <= TOL, "worst abs diff {worst:e}");
}

#[test]
fn clipping_changes_the_update() {
    // The same run with and without clipping must differ (the clip is really applied), and
    // the reference without clipping must not match the clipped graph.
    let clipped = AdamW {
        max_grad_norm: Some(0.5),
        ..AdamW::default()
    };
    let shapes: Vec<(&[usize], bool)> = vec![(&[4], true)];
    let a = build(&clipped, &shapes);
    let b = build(&AdamW::default(), &shapes);
    let mut feed: HashMap<String, Tensor> = HashMap::new();
    feed.insert("p0".into(), Tensor::random(&[4], DType::F32, 1));
    feed.insert("g0".into(), Tensor::random(&[4], DType::F32, 2));
    // Nonzero moments: at step 2 the update depends on the gradient's magnitude.
    feed.insert("m0".into(), Tensor::full(&[4], DType::F32, 0.3));
    feed.insert("v0".into(), Tensor::full(&[4], DType::F32, 0.2));
    feed.extend(clipped.step_values("adamw.", 2, 1e-2));
    let (ra, rb) = (
        run_graph(&a.graph, &feed).unwrap(),
        run_graph(&b.graph, &feed).unwrap(),
    );
    // The 4 gradient values have norm ~1.2 > 0.5: m' = 0.9 m + 0.1 g s differs by
    // 0.1 |g| (1 - s) ~ 0.03 for a typical element.
    let dm = ra["m0.new"].max_abs_diff(&rb["m0.new"]);
    assert!(dm > 1e-3, "clip had no effect on m: {dm:e}");
    let dp = ra["p0.new"].max_abs_diff(&rb["p0.new"]);
    assert!(dp > 0.0, "clip had no effect on p");
}

#[test]
fn bias_corrections_and_step_values() {
    let opt = AdamW::default();
    let (b1, b2) = opt.bias_corrections(1);
    assert!((b1 - 10.0).abs() < 1e-12, "{b1}");
    assert!((b2 - 1000.0).abs() < 1e-9, "{b2}");
    // 1 / (1 - beta^10) by repeated multiplication (relative tolerance: a few ulps of
    // beta^10, amplified by 1 / (1 - beta^10) ~ 100 for beta2).
    let (b1, b2) = opt.bias_corrections(10);
    let pow10 = |b: f64| (0..10).fold(1.0, |acc, _| acc * b);
    assert!(
        (b1 / (1.0 / (1.0 - pow10(0.9))) - 1.0).abs() < 1e-13,
        "{b1}"
    );
    assert!(
        (b2 / (1.0 / (1.0 - pow10(0.999))) - 1.0).abs() < 1e-12,
        "{b2}"
    );
    let vals = opt.step_values("o.", 3, 0.25);
    let (b1, b2) = opt.bias_corrections(3);
    assert_eq!(vals["o.step"].data, vec![0.25, b1, b2]);
    assert_eq!(vals["o.step"].shape, vec![3]);
    assert_eq!(vals.len(), 1);
}

#[test]
fn mismatched_state_is_a_typed_error() {
    let mut g = Graph::new();
    let p = g.param("p", &[3], DType::F32).unwrap();
    let gr = g.input("g", &[4], DType::F32).unwrap();
    let m = g.param("m", &[3], DType::F32).unwrap();
    let v = g.param("v", &[3], DType::F32).unwrap();
    let inputs = AdamWInputs::add(&mut g, "").unwrap();
    let st = ParamState {
        param: p,
        grad: gr,
        m,
        v,
        decay: true,
    };
    let err = AdamW::default()
        .update(&mut g, &inputs, &st, None)
        .unwrap_err();
    assert!(err.to_string().contains("grad"), "{err}");
    let bad_clip = AdamW {
        max_grad_norm: Some(-1.0),
        ..AdamW::default()
    };
    let st = ParamState { grad: p, ..st };
    assert!(bad_clip.step(&mut g, &inputs, &[st]).is_err());
    assert!(AdamW::default()
        .step(&mut g, &inputs, &[])
        .unwrap()
        .is_empty());
    // Ids that are not nodes of the graph are typed errors, not panics.
    let foreign = NodeId(10_000);
    let st = ParamState {
        grad: foreign,
        ..st
    };
    assert!(matches!(
        AdamW::default().update(&mut g, &inputs, &st, None),
        Err(GraphError::UnknownInput { .. })
    ));
    assert!(matches!(
        global_grad_norm(&mut g, &[p, foreign]),
        Err(GraphError::UnknownInput { .. })
    ));
    assert!(matches!(
        clip_scale(&mut g, foreign, 1.0),
        Err(GraphError::UnknownInput { .. })
    ));
}
