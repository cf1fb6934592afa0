//! Attention's backward ops ([`CompositeOp::AttentionStats`], [`CompositeOp::AttentionGrad`],
//! built by [`Graph::attention_backward`]) against central finite differences of the
//! forward ([`CompositeOp::Attention`]) on the f64 interpreter.
//!
//! The loss is `sum(w * attention(q, k, v))` with a random weight `w`; its gradients are
//! the backward ops with `d_out = w`. Every element of q, k and v is perturbed by
//! `+-H` and `(L(x + H) - L(x - H)) / 2H` is compared with the analytic gradient.
//!
//! Tolerance: the interpreter computes in f64 without rounding to f32. The truncation
//! error of the central difference is `H^2 / 6 * |L'''|`; with |q|, |k|, |v| < 1, a
//! score scale of `1/sqrt(D)` and `|w| < 1`, third derivatives of the loss stay below
//! ~10 * Tq * Dv per element (bounded products of softmax moments), so with `H = 1e-4`
//! it is below 2e-7 for these shapes; the rounding error is `~1e-16 * |L| / H` < 1e-10.
//! `TOL = 1e-6` absolute + 1e-6 relative thus leaves a margin of ~5x, while any wrong
//! term of a gradient (a missing mask, a wrong head mapping, a missing scale) shows up
//! at the size of the gradient itself (~1e-2 .. 1). Measured worst |analytic - fd|:
//! 1.5e-10 over all shapes and masks.

use std::collections::HashMap;
use tessera_compiler::graph::{CompositeOp, DType, Graph, NodeId};
use tessera_compiler::interp::{run_graph, Tensor};

const F: DType = DType::F32;
const H: f64 = 1e-4;
const TOL: f64 = 1e-6;

struct Case {
    b: usize,
    hq: usize,
    hkv: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    causal: bool,
    /// Padding mask rows (`[B, Tk]`), or none.
    mask: Option<Vec<i64>>,
}

fn run(g: &Graph, ins: &HashMap<String, Tensor>, outs: &[NodeId]) -> Vec<Tensor> {
    let mut g = g.clone();
    for &o in outs {
        g.mark_output(o).expect("output");
    }
    let mut res = run_graph(&g, ins).expect("graph runs");
    outs.iter()
        .map(|&o| res.remove(&g.node(o).name).expect("output present"))
        .collect()
}

fn check(c: &Case, seed: u64) {
    let scale = 1.0 / (c.d as f64).sqrt();
    let mut g = Graph::new();
    let q = g.input("q", &[c.b, c.hq, c.tq, c.d], F).unwrap();
    let k = g.input("k", &[c.b, c.hkv, c.tk, c.d], F).unwrap();
    let v = g.input("v", &[c.b, c.hkv, c.tk, c.dv], F).unwrap();
    let w = g.input("w", &[c.b, c.hq, c.tq, c.dv], F).unwrap();
    let mask = c
        .mask
        .as_ref()
        .map(|_| g.input("mask", &[c.b, c.tk], DType::I32).unwrap());
    let out = g.attention(q, k, v, mask, c.causal, Some(scale)).unwrap();
    let [dq, dk, dv] = g
        .attention_backward(q, k, v, out, w, mask, c.causal, scale, [true; 3])
        .unwrap();
    let (dq, dk, dv) = (dq.unwrap(), dk.unwrap(), dv.unwrap());
    // The backward graph holds fused ops only: no decomposition was built in `g`.
    let n_bwd = g
        .nodes()
        .iter()
        .filter(|n| {
            matches!(
                n.op,
                tessera_compiler::graph::Op::Composite(
                    CompositeOp::AttentionStats { .. } | CompositeOp::AttentionGrad { .. }
                )
            )
        })
        .count();
    assert_eq!(n_bwd, 4, "stats + three gradients");

    let mut ins: HashMap<String, Tensor> = HashMap::new();
    ins.insert("q".into(), Tensor::random(&[c.b, c.hq, c.tq, c.d], F, seed));
    ins.insert(
        "k".into(),
        Tensor::random(&[c.b, c.hkv, c.tk, c.d], F, seed + 1),
    );
    ins.insert(
        "v".into(),
        Tensor::random(&[c.b, c.hkv, c.tk, c.dv], F, seed + 2),
    );
    ins.insert(
        "w".into(),
        Tensor::random(&[c.b, c.hq, c.tq, c.dv], F, seed + 3),
    );
    if let Some(m) = &c.mask {
        let data = m.iter().map(|&x| x as f64).collect();
        ins.insert(
            "mask".into(),
            Tensor::from_vec(&[c.b, c.tk], DType::I32, data).unwrap(),
        );
    }
    let grads = run(&g, &ins, &[dq, dk, dv]);
    let wdata = ins["w"].data.clone();
    let loss = |ins: &HashMap<String, Tensor>| -> f64 {
        let o = &run(&g, ins, &[out])[0];
        o.data.iter().zip(&wdata).map(|(a, b)| a * b).sum()
    };
    let mut worst = 0.0f64;
    for (name, grad) in ["q", "k", "v"].iter().zip(&grads) {
        let n = ins[*name].data.len();
        assert_eq!(grad.data.len(), n, "{name}: gradient size");
        for i in 0..n {
            let mut p = ins.clone();
            p.get_mut(*name).unwrap().data[i] += H;
            let lp = loss(&p);
            p.get_mut(*name).unwrap().data[i] -= 2.0 * H;
            let lm = loss(&p);
            let fd = (lp - lm) / (2.0 * H);
            let an = grad.data[i];
            let err = (an - fd).abs();
            worst = worst.max(err);
            assert!(
                an.is_finite() && err <= TOL + TOL * fd.abs(),
                "d{name}[{i}]: analytic {an}, finite difference {fd} (causal {}, mask {:?})",
                c.causal,
                c.mask
            );
        }
    }
    // The gradients are not trivially zero.
    let norm: f64 = grads
        .iter()
        .flat_map(|t| t.data.iter())
        .map(|x| x * x)
        .sum();
    assert!(norm > 1e-4, "gradients vanish: {norm}");
    eprintln!(
        "b{} hq{} hkv{} tq{} tk{} d{} dv{} causal {} mask {}: worst |analytic - fd| = {worst:.2e}",
        c.b,
        c.hq,
        c.hkv,
        c.tq,
        c.tk,
        c.d,
        c.dv,
        c.causal,
        c.mask.is_some()
    );
}

#[test]
fn attention_backward_matches_finite_differences() {
    let shapes = [
        // (b, hq, hkv, tq, tk, d, dv)
        (1, 2, 1, 3, 4, 5, 3),
        (2, 2, 2, 4, 4, 3, 2),
        (1, 3, 1, 1, 3, 4, 4),
        // Tq > Tk: causal rows that see no key (their gradients must be 0).
        (1, 2, 2, 5, 3, 3, 2),
    ];
    let mut seed = 10;
    for (b, hq, hkv, tq, tk, d, dv) in shapes {
        // Batch 0 keeps keys 0 and 2.. ; a second batch row masks every key.
        let mut m: Vec<i64> = (0..tk).map(|j| i64::from(j != 1)).collect();
        if b > 1 {
            m.extend(std::iter::repeat_n(0, tk));
        }
        for (causal, mask) in [
            (false, None),
            (true, None),
            (false, Some(m.clone())),
            (true, Some(m)),
        ] {
            let c = Case {
                b,
                hq,
                hkv,
                tq,
                tk,
                d,
                dv,
                causal,
                mask,
            };
            check(&c, seed);
            seed += 7;
        }
    }
}

#[test]
fn rows_that_see_no_key_get_zero_gradients() {
    // Tq = 4 > Tk = 2 causal: queries 0 and 1 see no key; and the padding mask hides
    // every key of batch 1.
    let (b, h, tq, tk, d) = (2, 1, 4, 2, 3);
    let mut g = Graph::new();
    let q = g.input("q", &[b, h, tq, d], F).unwrap();
    let k = g.input("k", &[b, h, tk, d], F).unwrap();
    let v = g.input("v", &[b, h, tk, d], F).unwrap();
    let w = g.input("w", &[b, h, tq, d], F).unwrap();
    let mk = g.input("mask", &[b, tk], DType::I32).unwrap();
    let out = g.attention(q, k, v, Some(mk), true, Some(0.5)).unwrap();
    let [dq, dk, dv] = g
        .attention_backward(q, k, v, out, w, Some(mk), true, 0.5, [true; 3])
        .unwrap();
    let mut ins: HashMap<String, Tensor> = HashMap::new();
    ins.insert("q".into(), Tensor::random(&[b, h, tq, d], F, 1));
    ins.insert("k".into(), Tensor::random(&[b, h, tk, d], F, 2));
    ins.insert("v".into(), Tensor::random(&[b, h, tk, d], F, 3));
    ins.insert("w".into(), Tensor::random(&[b, h, tq, d], F, 4));
    ins.insert(
        "mask".into(),
        Tensor::from_vec(&[b, tk], DType::I32, vec![1.0, 1.0, 0.0, 0.0]).unwrap(),
    );
    let r = run(&g, &ins, &[dq.unwrap(), dk.unwrap(), dv.unwrap()]);
    let per_batch = |t: &Tensor| t.data.len() / b;
    // Batch 1: everything masked, all gradients 0.
    for t in &r {
        let n = per_batch(t);
        assert!(t.data[n..].iter().all(|&x| x == 0.0), "{:?}", &t.data[n..]);
    }
    // Batch 0: dq of queries 0 and 1 is 0, of queries 2 and 3 is not.
    let dq = &r[0].data;
    assert!(dq[..2 * d].iter().all(|&x| x == 0.0));
    assert!(dq[2 * d..4 * d].iter().any(|&x| x != 0.0));
}

#[test]
fn backward_ops_round_trip_through_json() {
    let mut g = Graph::new();
    let q = g.input("q", &[1, 4, 3, 8], F).unwrap();
    let k = g.input("k", &[1, 2, 5, 8], F).unwrap();
    let v = g.input("v", &[1, 2, 5, 6], F).unwrap();
    let w = g.input("w", &[1, 4, 3, 6], F).unwrap();
    let m = g.input("mask", &[1, 5], DType::I32).unwrap();
    let out = g.attention(q, k, v, Some(m), true, Some(0.25)).unwrap();
    let grads = g
        .attention_backward(q, k, v, out, w, Some(m), true, 0.25, [true; 3])
        .unwrap();
    let shapes: Vec<Vec<usize>> = grads
        .iter()
        .map(|x| g.ty(x.unwrap()).shape.clone())
        .collect();
    assert_eq!(
        shapes,
        [vec![1, 4, 3, 8], vec![1, 2, 5, 8], vec![1, 2, 5, 6]]
    );
    for x in grads.into_iter().flatten() {
        g.mark_output(x).unwrap();
    }
    let text = g.to_json();
    assert!(text.contains("attention_stats") && text.contains("attention_grad"));
    let back = Graph::from_json(&text).expect("parses");
    assert_eq!(back.to_json(), text);
    // A stats operand of the wrong dtype is a type error naming the op.
    let mut g2 = Graph::new();
    let q = g2.input("q", &[1, 1, 2, 4], F).unwrap();
    let k = g2.input("k", &[1, 1, 2, 4], F).unwrap();
    let v = g2.input("v", &[1, 1, 2, 4], F).unwrap();
    let w = g2.input("w", &[1, 1, 2, 4], F).unwrap();
    let st = g2.input("stats", &[1, 1, 2, 2], DType::F16).unwrap();
    let e = g2
        .composite(
            CompositeOp::AttentionGrad {
                causal: false,
                padding: false,
                scale: 0.5,
                wrt: tessera_compiler::graph::AttentionWrt::Q,
            },
            &[q, k, v, w, st],
        )
        .expect_err("stats must be f32");
    assert!(e.to_string().contains("attention_bwd_dq"), "{e}");
}
