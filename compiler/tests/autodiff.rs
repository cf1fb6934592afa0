//! Gradient checks of reverse-mode autodiff ([`tessera_compiler::autodiff::grad`]): for
//! every op and composite, the analytic gradient (the gradient graph run on the f64
//! interpreter) against central finite differences of the loss (the forward graph run on
//! the f64 interpreter), on small random shapes drawn from a seeded RNG. Plus a small MLP,
//! a tiny GPT-like block, the conventions at kinks and ties (checked against values
//! derived by hand), and the typed errors.
//!
//! Tolerance: central differences `(f(x+h) - f(x-h)) / 2h` with `h = 1e-5` have a
//! truncation error `h^2/6 |f'''| ~ 2e-11 |f'''|` and a rounding error
//! `~ (ops * 2^-53 * |f|) / h`: with ~1e2 operations feeding each loss and `|f| <= ~10`,
//! about `1e2 * 1.1e-16 * 10 / 1e-5 ~ 1e-8` in the worst case, ~1e-10 typically.
//! Each gradient element must satisfy `|analytic - numeric| <= TOL * max(1, |numeric|)`
//! with `TOL = 1e-8` (measured worst over 119 checks: 4.6e-10, binary pow); a wrong
//! rule (a missing factor, a wrong transpose, a dropped accumulation) is off by O(1e-2)
//! or more. The measured worst error of each check is printed (`--nocapture`). Inputs
//! stay away from kinks (abs, relu, max/min at ties, reduce-max ties: values at least
//! 1e-2 apart, >> h) and from the domain edges of
//! log / sqrt / rsqrt / reciprocal / pow (bases in [0.5, 1.5]).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use tessera_compiler::autodiff::{grad, grad_name, AutodiffError};
use tessera_compiler::graph::{
    BinaryOp, CompareOp, CompositeOp, DType, Graph, NodeId, Op, UnaryOp,
};
use tessera_compiler::interp::{run_graph, Tensor};

const F: DType = DType::F32;
const H: f64 = 1e-5;
const TOL: f64 = 1e-8;

type Inputs = HashMap<String, Tensor>;

/// The analytic gradients of `loss` w.r.t. `wrt` against central differences; returns the
/// worst normalised error (and asserts it is within `TOL`). Also checks that the gradient
/// graph reproduces the forward outputs exactly.
fn check(g: &Graph, loss: NodeId, wrt: &[NodeId], feed: &Inputs) -> f64 {
    let gg = grad(g, loss, wrt).expect("grad builds");
    gg.graph.validate().expect("gradient graph is valid");
    let out = run_graph(&gg.graph, feed).expect("gradient graph runs");
    let mut fwd = g.clone();
    fwd.mark_output(loss).expect("loss output");
    let base = run_graph(&fwd, feed).expect("forward runs");
    for (name, t) in &base {
        assert_eq!(out[name].data, t.data, "forward output {name} changed");
    }
    let loss_name = g.node(loss).name.clone();
    let loss_at =
        |f: &Inputs| -> f64 { run_graph(&fwd, f).expect("forward runs")[&loss_name].data[0] };
    let mut worst: f64 = 0.0;
    let mut f = feed.clone();
    for (k, &w) in wrt.iter().enumerate() {
        let name = g.node(w).name.clone();
        let a = &out[&grad_name(&name)];
        assert_eq!(
            gg.grads[k],
            gg.graph.find(&grad_name(&name)).expect("named")
        );
        assert_eq!(a.shape, g.ty(w).shape, "gradient shape of {name}");
        assert_eq!(a.dtype, g.ty(w).dtype, "gradient dtype of {name}");
        for i in 0..a.numel() {
            let x0 = feed[&name].data[i];
            f.get_mut(&name).expect("fed").data[i] = x0 + H;
            let lp = loss_at(&f);
            f.get_mut(&name).expect("fed").data[i] = x0 - H;
            let lm = loss_at(&f);
            f.get_mut(&name).expect("fed").data[i] = x0;
            let num = (lp - lm) / (2.0 * H);
            let err = (a.data[i] - num).abs() / num.abs().max(1.0);
            assert!(
                err <= TOL,
                "d loss / d {name}[{i}]: analytic {} vs numeric {num} (error {err:.2e})",
                a.data[i]
            );
            worst = worst.max(err);
        }
    }
    worst
}

/// A graph under test: its inputs (random values), which of them are differentiated, and
/// a seeded RNG for shapes and values.
struct Case {
    g: Graph,
    feed: Inputs,
    wrt: Vec<NodeId>,
    rng: StdRng,
    name: String,
}

impl Case {
    fn new(name: &str, seed: u64) -> Case {
        Case {
            g: Graph::new(),
            feed: Inputs::new(),
            wrt: vec![],
            rng: StdRng::seed_from_u64(seed),
            name: name.to_string(),
        }
    }

    fn dim(&mut self, lo: usize, hi: usize) -> usize {
        self.rng.random_range(lo..=hi)
    }

    fn uniform(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| self.rng.random_range(lo..hi)).collect();
        Tensor::from_vec(shape, F, data).expect("tensor")
    }

    /// Values `>= margin` in magnitude, uniform in `[-1, -margin] U [margin, 1]`.
    fn away_from_zero(&mut self, shape: &[usize], margin: f64) -> Tensor {
        let mut t = self.uniform(shape, margin, 1.0);
        for v in &mut t.data {
            if self.rng.random_bool(0.5) {
                *v = -*v;
            }
        }
        t
    }

    /// Distinct values (at least 0.05 apart within the whole tensor), shuffled.
    fn distinct(&mut self, shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let mut vals: Vec<f64> = (0..n)
            .map(|i| (i as f64 - n as f64 / 2.0) * 0.07 + self.rng.random_range(0.0..0.02))
            .collect();
        for i in (1..n).rev() {
            let j = self.rng.random_range(0..=i);
            vals.swap(i, j);
        }
        Tensor::from_vec(shape, F, vals).expect("tensor")
    }

    /// A differentiated input with the given values.
    fn wrt_input(&mut self, name: &str, t: Tensor) -> NodeId {
        let id = self.g.input(name, &t.shape, t.dtype).expect("input");
        self.feed.insert(name.to_string(), t);
        self.wrt.push(id);
        id
    }

    /// A differentiated input, uniform in `[-1, 1)`.
    fn x(&mut self, name: &str, shape: &[usize]) -> NodeId {
        let t = self.uniform(shape, -1.0, 1.0);
        self.wrt_input(name, t)
    }

    /// An input that is not differentiated.
    fn fixed(&mut self, name: &str, t: Tensor) -> NodeId {
        let id = self.g.input(name, &t.shape, t.dtype).expect("input");
        self.feed.insert(name.to_string(), t);
        id
    }

    /// An `i32` input.
    fn ids(&mut self, name: &str, shape: &[usize], data: &[i64]) -> NodeId {
        let t = Tensor::from_vec(shape, DType::I32, data.iter().map(|&v| v as f64).collect())
            .expect("ids");
        self.fixed(name, t)
    }

    /// Random ids in `0..n`.
    fn random_ids(&mut self, name: &str, shape: &[usize], n: usize) -> NodeId {
        let len: usize = shape.iter().product();
        let data: Vec<i64> = (0..len)
            .map(|_| self.rng.random_range(0..n as i64))
            .collect();
        self.ids(name, shape, &data)
    }

    /// `loss = sum(y * w)` with a fixed random `w` (so the seed of `y` is not uniform),
    /// then the gradient check.
    fn check_weighted(mut self, y: NodeId) -> f64 {
        let ty = self.g.ty(y).clone();
        let w = self.uniform(&ty.shape, -1.0, 1.0);
        let wn = self.fixed("loss_weight", w);
        let p = self.g.mul(y, wn).expect("mul");
        let flat = self.g.reshape(p, &[ty.numel()]).expect("reshape");
        let loss = self.g.sum(flat, 0, false).expect("sum");
        self.check_scalar(loss)
    }

    /// The gradient check of a scalar loss.
    fn check_scalar(self, loss: NodeId) -> f64 {
        let worst = check(&self.g, loss, &self.wrt, &self.feed);
        eprintln!("{:<40} worst error {worst:.2e}", self.name);
        worst
    }
}

// ---- elementwise -------------------------------------------------------------------

#[test]
fn unary_ops() {
    for (k, op) in UnaryOp::ALL.into_iter().enumerate() {
        for rep in 0..2 {
            let mut c = Case::new(&format!("unary {}", op.name()), 100 + 10 * k as u64 + rep);
            let rank = c.dim(1, 3);
            let shape: Vec<usize> = (0..rank).map(|_| c.dim(2, 4)).collect();
            let t = match op {
                UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Reciprocal => {
                    c.uniform(&shape, 0.5, 1.5)
                }
                UnaryOp::Abs | UnaryOp::Relu => c.away_from_zero(&shape, 0.01),
                _ => c.uniform(&shape, -2.0, 2.0),
            };
            let x = c.wrt_input("x", t);
            let y = c.g.unary(op, x).expect("unary");
            c.check_weighted(y);
        }
    }
}

#[test]
fn binary_ops() {
    for (k, op) in BinaryOp::ALL.into_iter().enumerate() {
        for rep in 0..2 {
            let mut c = Case::new(&format!("binary {}", op.name()), 200 + 10 * k as u64 + rep);
            let rank = c.dim(1, 3);
            let shape: Vec<usize> = (0..rank).map(|_| c.dim(2, 4)).collect();
            let (ta, tb) = match op {
                BinaryOp::Pow => (c.uniform(&shape, 0.5, 1.5), c.uniform(&shape, -2.0, 2.0)),
                BinaryOp::Div => (c.uniform(&shape, -1.0, 1.0), c.uniform(&shape, 0.5, 1.5)),
                BinaryOp::Max | BinaryOp::Min => {
                    // b = a + an offset of magnitude >= 0.01: never a tie.
                    let a = c.uniform(&shape, -1.0, 1.0);
                    let off = c.away_from_zero(&shape, 0.01);
                    let mut b = a.clone();
                    for (v, o) in b.data.iter_mut().zip(&off.data) {
                        *v += o;
                    }
                    (a, b)
                }
                _ => (c.uniform(&shape, -1.0, 1.0), c.uniform(&shape, -1.0, 1.0)),
            };
            let a = c.wrt_input("a", ta);
            let b = c.wrt_input("b", tb);
            let y = c.g.binary(op, a, b).expect("binary");
            c.check_weighted(y);
        }
    }
}

#[test]
fn binary_with_broadcast_and_shared_operand() {
    // a [3, 1] against b [2, 3, 4]: the builder inserts broadcasts; a's gradient sums over
    // the broadcast axes. a is also used twice (accumulation).
    let mut c = Case::new("broadcast mul + reuse", 300);
    let a = c.x("a", &[3, 1]);
    let b = c.x("b", &[2, 3, 4]);
    let p = c.g.mul(a, b).expect("mul");
    let q = c.g.sub(p, a).expect("sub");
    let y = c.g.mul(q, q).expect("square");
    c.check_weighted(y);
}

#[test]
fn select_compare_iota_and_cast() {
    // y = where(x > z, x * u, exp(z)) + cast(iota): compare and iota take no gradient.
    // (Float-to-float casts round, which finite differences cannot see through: they
    // are checked against exact values in `float_casts_pass_the_gradient_straight_through`.)
    let mut c = Case::new("select/compare/iota/cast", 310);
    let x = c.x("x", &[3, 5]);
    let zt = {
        let xt = c.feed["x"].clone();
        let off = c.away_from_zero(&[3, 5], 0.01);
        Tensor::from_vec(
            &[3, 5],
            F,
            xt.data.iter().zip(&off.data).map(|(a, o)| a + o).collect(),
        )
        .expect("z")
    };
    let z = c.wrt_input("z", zt);
    let u = c.x("u", &[3, 5]);
    let gt = c.g.compare(CompareOp::Gt, x, z).expect("gt");
    let xu = c.g.mul(x, u).expect("mul");
    let ez = c.g.exp(z).expect("exp");
    let s = c.g.select(gt, xu, ez).expect("select");
    let io = c.g.iota(&[3, 5], 1, DType::I32).expect("iota");
    let iof = c.g.cast(io, F).expect("cast i32 -> f32");
    let y = c.g.add(s, iof).expect("add");
    c.check_weighted(y);
}

// ---- reductions, matmul, movement ---------------------------------------------------

#[test]
fn reductions() {
    use tessera_compiler::graph::ReduceOp;
    let mut seed = 400;
    for op in ReduceOp::ALL {
        for keep in [false, true] {
            for axis in 0..3 {
                seed += 1;
                let mut c = Case::new(
                    &format!("reduce {} axis {axis} keep {keep}", op.name()),
                    seed,
                );
                let shape = [c.dim(1, 4), c.dim(2, 4), c.dim(1, 4)];
                let t = c.distinct(&shape);
                let x = c.wrt_input("x", t);
                let y = c.g.reduce(op, x, axis, keep).expect("reduce");
                c.check_weighted(y);
            }
        }
    }
}

#[test]
fn matmul_every_transpose_and_batching() {
    let mut seed = 500;
    // (a batch, b batch): both batched, a shared, b shared, none.
    let batchings: [(&[usize], &[usize]); 5] = [
        (&[], &[]),
        (&[2], &[2]),
        (&[2, 3], &[2, 3]),
        (&[], &[3]),
        (&[2, 2], &[]),
    ];
    for (ab, bb) in batchings {
        for ta in [false, true] {
            for tb in [false, true] {
                seed += 1;
                let mut c = Case::new(&format!("matmul {ab:?}x{bb:?} ta={ta} tb={tb}"), seed);
                let (m, k, n) = (c.dim(1, 4), c.dim(1, 4), c.dim(1, 4));
                let mut sa = ab.to_vec();
                sa.extend(if ta { [k, m] } else { [m, k] });
                let mut sb = bb.to_vec();
                sb.extend(if tb { [n, k] } else { [k, n] });
                let a = c.x("a", &sa);
                let b = c.x("b", &sb);
                let y = c.g.matmul_t(a, b, ta, tb).expect("matmul");
                c.check_weighted(y);
            }
        }
    }
}

#[test]
fn broadcast_reshape_permute() {
    let mut c = Case::new("broadcast/reshape/permute", 600);
    let x = c.x("x", &[3, 1, 2]);
    let b = c.g.broadcast(x, &[2, 3, 4, 2]).expect("broadcast");
    let p = c.g.permute(b, &[2, 0, 3, 1]).expect("permute");
    let r = c.g.reshape(p, &[8, 6]).expect("reshape");
    let y = c.g.tanh(r).expect("tanh");
    c.check_weighted(y);

    let mut c = Case::new("broadcast scalar", 601);
    let x = c.x("s", &[]);
    let y = c.g.broadcast(x, &[2, 3]).expect("broadcast");
    let y = c.g.mul(y, y).expect("mul");
    c.check_weighted(y);
}

#[test]
fn slice_and_concat() {
    for seed in 0..3 {
        let mut c = Case::new(&format!("slice/concat {seed}"), 700 + seed);
        let shape = [c.dim(2, 4), c.dim(3, 6), c.dim(1, 3)];
        let x = c.x("x", &shape);
        let len = c.dim(1, shape[1] - 1);
        let start = c.dim(0, shape[1] - len);
        let s = c.g.slice(x, 1, start, len).expect("slice");
        let u = c.x("u", &[shape[0], 2, shape[2]]);
        let y = c.g.concat(&[u, s, u], 1).expect("concat");
        let y = c.g.mul(y, y).expect("square");
        c.check_weighted(y);
    }
    let mut c = Case::new("slice whole + concat axis 0", 710);
    let x = c.x("x", &[2, 3]);
    let s = c.g.slice(x, 0, 0, 2).expect("slice");
    let v = c.x("v", &[1, 3]);
    let y = c.g.concat(&[s, v], 0).expect("concat");
    c.check_weighted(y);
}

#[test]
fn slices_of_one_tensor_get_one_concat_gradient() {
    // A qkv-style split: the adjoints of disjoint slices (each its part padded with
    // zeros) merge into one concat, not padded copies summed by adds; a gap between the
    // slices stays zeros. Overlapping slices still add. Checked against central
    // differences either way.
    for (case, slices) in [
        ("qkv split", vec![(0, 4), (4, 4), (8, 4)]),
        ("gap in the middle", vec![(8, 4), (0, 3)]),
        ("overlap", vec![(0, 6), (4, 4), (9, 3)]),
    ] {
        let mut c = Case::new(case, 720);
        let x = c.x("x", &[3, 12, 2]);
        let mut y = None;
        for (k, &(start, len)) in slices.iter().enumerate() {
            let s = c.g.slice(x, 1, start, len).expect("slice");
            let f = if k % 2 == 0 {
                c.g.mul(s, s).expect("square")
            } else {
                c.g.unary(UnaryOp::Exp, s).expect("exp")
            };
            let r = c.g.sum(f, 1, false).expect("sum");
            y = Some(match y {
                Some(acc) => c.g.add(acc, r).expect("add"),
                None => r,
            });
        }
        let y = y.expect("a slice");
        // The structure: x's adjoint is built without adding padded slices.
        let mut probe = c.g.clone();
        let flat = probe.reshape(y, &[6]).expect("reshape");
        let loss = probe.sum(flat, 0, false).expect("sum");
        let gg = grad(&probe, loss, &[x]).expect("grad");
        let gx = gg.graph.node(gg.grads[0]);
        let overlapping = case == "overlap";
        assert_eq!(
            matches!(gx.op, Op::Concat { .. }),
            !overlapping,
            "{case}: x's adjoint is {:?}",
            gx.op
        );
        c.check_weighted(y);
    }
}

#[test]
fn gather_and_scatter_add() {
    // Embedding lookup with repeated ids (their gradients add up), rank-2 ids.
    let mut c = Case::new("gather axis 0 (embedding)", 800);
    let table = c.x("table", &[5, 3]);
    let ids = c.ids("ids", &[2, 3], &[4, 0, 4, 1, 4, 2]);
    let y = c.g.gather(table, ids, 0).expect("gather");
    c.check_weighted(y);

    let mut c = Case::new("gather axis 1", 801);
    let table = c.x("table", &[2, 4, 3]);
    let ids = c.random_ids("ids", &[5], 4);
    let y = c.g.gather(table, ids, 1).expect("gather");
    c.check_weighted(y);

    let mut c = Case::new("scatter_add axis 1", 802);
    let src = c.x("src", &[2, 3, 2, 2]);
    let ids = c.random_ids("ids", &[3, 2], 4);
    let y = c.g.scatter_add(src, ids, 1, 4).expect("scatter_add");
    let y = c.g.mul(y, y).expect("square");
    c.check_weighted(y);
}

// ---- composites ----------------------------------------------------------------------

#[test]
fn softmax_and_log_softmax() {
    for (k, log) in [false, true].into_iter().enumerate() {
        for rep in 0..2 {
            let mut c = Case::new(&format!("softmax log={log}"), 900 + 10 * k as u64 + rep);
            let shape = [c.dim(1, 3), c.dim(1, 3), c.dim(1, 6)];
            let x = c.x("x", &shape);
            let y = if log {
                c.g.log_softmax(x)
            } else {
                c.g.softmax(x)
            }
            .expect("softmax");
            c.check_weighted(y);
        }
    }
}

#[test]
fn layer_norm_and_rms_norm() {
    for affine in [false, true] {
        for (k, eps) in [1e-5, 0.1].into_iter().enumerate() {
            let seed = 1000 + 10 * u64::from(affine) + k as u64;
            let mut c = Case::new(&format!("layer_norm affine={affine} eps={eps}"), seed);
            let shape = [c.dim(1, 3), c.dim(2, 3), c.dim(2, 6)];
            let x = c.x("x", &shape);
            let y = if affine {
                let gm = c.x("gamma", &[shape[2]]);
                let bt = c.x("beta", &[shape[2]]);
                c.g.layer_norm(x, Some((gm, bt)), eps)
            } else {
                c.g.layer_norm(x, None, eps)
            }
            .expect("layer_norm");
            c.check_weighted(y);

            let mut c = Case::new(&format!("rms_norm affine={affine} eps={eps}"), seed + 100);
            let shape = [c.dim(1, 3), c.dim(1, 6)];
            let x = c.x("x", &shape);
            let gm = affine.then(|| c.x("gamma", &[shape[1]]));
            let y = c.g.rms_norm(x, gm, eps).expect("rms_norm");
            c.check_weighted(y);
        }
    }
}

#[test]
fn gelu_silu_swiglu() {
    for tanh in [false, true] {
        let mut c = Case::new(&format!("gelu tanh={tanh}"), 1200 + u64::from(tanh));
        let t = c.uniform(&[3, 7], -4.0, 4.0);
        let x = c.wrt_input("x", t);
        let y = c.g.gelu(x, tanh).expect("gelu");
        c.check_weighted(y);
    }
    let mut c = Case::new("silu", 1210);
    let t = c.uniform(&[4, 5], -4.0, 4.0);
    let x = c.wrt_input("x", t);
    let y = c.g.silu(x).expect("silu");
    c.check_weighted(y);

    let mut c = Case::new("swiglu", 1220);
    let t = c.uniform(&[2, 3, 4], -3.0, 3.0);
    let gate = c.wrt_input("gate", t);
    let up = c.x("up", &[2, 3, 4]);
    let y = c.g.swiglu(gate, up).expect("swiglu");
    c.check_weighted(y);
}

#[test]
fn rope_both_layouts() {
    for interleaved in [false, true] {
        for rep in 0..2 {
            let seed = 1300 + 10 * u64::from(interleaved) + rep;
            let mut c = Case::new(&format!("rope interleaved={interleaved}"), seed);
            let (t, d) = (c.dim(1, 4), 2 * c.dim(1, 3));
            let h = c.dim(1, 2);
            let x = c.x("x", &[2, h, t, d]);
            let cos = c.x("cos", &[t, d / 2]);
            let sin = c.x("sin", &[t, d / 2]);
            let y = c.g.rope(x, cos, sin, interleaved).expect("rope");
            c.check_weighted(y);
        }
    }
}

#[test]
fn attention_masks_and_grouped_heads() {
    // (B, Hq, Hkv, Tq, Tk, D, Dv, causal, padding)
    // Tq > Tk with causal: the first queries see no key (zeros, zero gradient).
    type Shape = (usize, usize, usize, usize, usize, usize, usize, bool, bool);
    let cases: [Shape; 7] = [
        (1, 2, 2, 3, 3, 4, 4, false, false),
        (2, 2, 1, 3, 4, 3, 2, false, false),
        (1, 4, 2, 4, 4, 2, 3, true, false),
        (2, 2, 2, 2, 5, 3, 3, true, false),
        (2, 2, 1, 3, 4, 2, 2, false, true),
        (2, 2, 2, 3, 3, 2, 2, true, true),
        (1, 2, 1, 4, 2, 3, 2, true, false),
    ];
    for (k, &(b, hq, hkv, tq, tk, d, dv, causal, padding)) in cases.iter().enumerate() {
        let mut c = Case::new(
            &format!("attention B{b} H{hq}/{hkv} T{tq}x{tk} causal={causal} pad={padding}"),
            1400 + k as u64,
        );
        let q = c.x("q", &[b, hq, tq, d]);
        let kk = c.x("k", &[b, hkv, tk, d]);
        let v = c.x("v", &[b, hkv, tk, dv]);
        // Batch 0 sees keys 0 and 2..; the last batch sees no key at all with
        // causal + padding, so that its query rows are empty (zeros, zero gradient).
        let mask = padding.then(|| {
            let mut m = vec![1i64; b * tk];
            m[1] = 0;
            if causal {
                for j in 0..tk {
                    m[(b - 1) * tk + j] = 0;
                }
            }
            c.ids("mask", &[b, tk], &m)
        });
        let y =
            c.g.attention(q, kk, v, mask, causal, None)
                .expect("attention");
        c.check_weighted(y);
    }
}

#[test]
fn cross_entropy_with_ignored_tokens() {
    // ignore_index inside 0..V (token 2 ignored), and outside (-100).
    for (k, ignore) in [2i64, -100].into_iter().enumerate() {
        let mut c = Case::new(&format!("cross_entropy ignore={ignore}"), 1500 + k as u64);
        let logits = c.uniform(&[6, 5], -3.0, 3.0);
        let x = c.wrt_input("logits", logits);
        let t = c.ids("targets", &[6], &[0, 2, 4, 2, -100, 1]);
        if ignore == 2 {
            // -100 is out of range and would be an interpreter error here.
            c.feed.get_mut("targets").expect("targets").data[4] = 3.0;
        }
        let loss = c.g.cross_entropy(x, t, ignore).expect("ce");
        c.check_scalar(loss);

        let mut c = Case::new(
            &format!("token_cross_entropy ignore={ignore}"),
            1510 + k as u64,
        );
        let logits = c.uniform(&[4, 7], -3.0, 3.0);
        let x = c.wrt_input("logits", logits);
        let t = c.ids("targets", &[4], &[6, ignore.max(0), 0, 3]);
        let y =
            c.g.composite(
                CompositeOp::TokenCrossEntropy {
                    ignore_index: ignore,
                },
                &[x, t],
            )
            .expect("token ce");
        c.check_weighted(y);
    }
    // Every token ignored: loss 0, gradient 0.
    let mut c = Case::new("cross_entropy all ignored", 1520);
    let x = c.x("logits", &[2, 3]);
    let t = c.ids("targets", &[2], &[1, 1]);
    let loss = c.g.cross_entropy(x, t, 1).expect("ce");
    c.check_scalar(loss);
}

// ---- models ------------------------------------------------------------------------------

/// x [2, 5, 3] -> tanh(x W1 + b1) W2 + b2 -> mean squared error against a target; W1 and
/// W2 are shared 2-D operands of batched matmuls. Returns the case and the loss.
fn build_mlp() -> (Case, NodeId) {
    let mut c = Case::new("mlp", 1600);
    let x = c.x("x", &[2, 5, 3]);
    let w1 = c.x("w1", &[3, 6]);
    let b1 = c.x("b1", &[6]);
    let w2 = c.x("w2", &[6, 2]);
    let b2 = c.x("b2", &[2]);
    let tt = c.uniform(&[2, 5, 2], -1.0, 1.0);
    let target = c.fixed("target", tt);
    let h = c.g.matmul(x, w1).expect("mm");
    let h = c.g.add(h, b1).expect("bias");
    let h = c.g.tanh(h).expect("tanh");
    let o = c.g.matmul(h, w2).expect("mm");
    let o = c.g.add(o, b2).expect("bias");
    let e = c.g.sub(o, target).expect("sub");
    let e = c.g.mul(e, e).expect("sq");
    let e = c.g.reshape(e, &[20]).expect("flat");
    let loss = c.g.mean(e, 0, false).expect("mean");
    (c, loss)
}

#[test]
fn mlp() {
    let (c, loss) = build_mlp();
    c.check_scalar(loss);
}

/// The inputs with every float value rounded to f32 (what a device is given).
fn rounded_to_f32(feed: &Inputs) -> Inputs {
    feed.iter()
        .map(|(k, t)| {
            let mut t = t.clone();
            if t.dtype == F {
                for v in &mut t.data {
                    *v = *v as f32 as f64;
                }
            }
            (k.clone(), t)
        })
        .collect()
}

/// The MLP's gradient graph goes through the scheduler for every target and runs on the
/// f32 tile interpreter ([`run_plan`]) close to the f64 oracle (inputs rounded to f32
/// for both). Tolerance: every value is a chain of <= ~15 f32 ops including sums of <= 20
/// terms (u = 2^-24 ~ 6e-8 each, values O(1) without cancellation below ~1e-2 of the
/// magnitudes): <= ~60 u ~ 4e-6 relative; `1e-5` (measured: 5e-7).
#[test]
fn mlp_gradient_graph_compiles_for_every_target() {
    use tessera_compiler::interp::run_plan;
    use tessera_compiler::{compile, Target};
    let (c, loss) = build_mlp();
    let wrt: Vec<NodeId> = c.wrt[1..].to_vec();
    let gg = grad(&c.g, loss, &wrt).expect("grad");
    let feed = rounded_to_f32(&c.feed);
    let reference = run_graph(&gg.graph, &feed).expect("f64 oracle");
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        let plan = compile(&gg.graph, &target).expect("schedules");
        let out = run_plan(&plan, &feed).expect("tile interpreter runs");
        for (name, r) in &reference {
            let err = out[name].max_rel_diff(r);
            eprintln!("{} {name}: max rel {err:.2e}", target.kind.name());
            assert!(err <= 1e-5, "{} {name}: {err:.2e}", target.kind.name());
        }
    }
}

/// Token + position embeddings -> pre-LN causal multi-head attention -> residual ->
/// pre-LN GELU MLP -> residual -> final LN -> LM head tied to the token embedding ->
/// cross-entropy. B = 2, T = 4, C = 8, 2 heads, V = 7. Every parameter is differentiated.
fn build_gpt_block() -> (Case, NodeId) {
    let (b, t, cw, nh, v) = (2usize, 4usize, 8usize, 2usize, 7usize);
    let hd = cw / nh;
    let mut c = Case::new("gpt block", 1700);
    let wte = c.x("wte", &[v, cw]);
    let wpe = c.x("wpe", &[t, cw]);
    let ln1g = c.x("ln1_g", &[cw]);
    let ln1b = c.x("ln1_b", &[cw]);
    let wqkv = c.x("w_qkv", &[cw, 3 * cw]);
    let wo = c.x("w_o", &[cw, cw]);
    let ln2g = c.x("ln2_g", &[cw]);
    let ln2b = c.x("ln2_b", &[cw]);
    let w1 = c.x("w_fc", &[cw, 4 * cw]);
    let b1 = c.x("b_fc", &[4 * cw]);
    let w2 = c.x("w_proj", &[4 * cw, cw]);
    let b2 = c.x("b_proj", &[cw]);
    let lnfg = c.x("lnf_g", &[cw]);
    let lnfb = c.x("lnf_b", &[cw]);
    let ids = c.random_ids("ids", &[b, t], v);
    let targets = c.random_ids("targets", &[b * t], v);
    let g = &mut c.g;
    let x = g.gather(wte, ids, 0).expect("embed");
    let x = g.add(x, wpe).expect("pos");
    // Attention.
    let h = g.layer_norm(x, Some((ln1g, ln1b)), 1e-5).expect("ln1");
    let qkv = g.matmul(h, wqkv).expect("qkv");
    let heads = |g: &mut Graph, i: usize| {
        let s = g.slice(qkv, 2, i * cw, cw).expect("slice");
        let s = g.reshape(s, &[b, t, nh, hd]).expect("reshape");
        g.permute(s, &[0, 2, 1, 3]).expect("permute")
    };
    let (q, k, vv) = (heads(g, 0), heads(g, 1), heads(g, 2));
    let a = g.attention(q, k, vv, None, true, None).expect("attention");
    let a = g.permute(a, &[0, 2, 1, 3]).expect("permute");
    let a = g.reshape(a, &[b, t, cw]).expect("reshape");
    let a = g.matmul(a, wo).expect("proj");
    let x = g.add(x, a).expect("residual");
    // MLP.
    let h = g.layer_norm(x, Some((ln2g, ln2b)), 1e-5).expect("ln2");
    let h = g.matmul(h, w1).expect("fc");
    let h = g.add(h, b1).expect("bias");
    let h = g.gelu(h, true).expect("gelu");
    let h = g.matmul(h, w2).expect("proj");
    let h = g.add(h, b2).expect("bias");
    let x = g.add(x, h).expect("residual");
    // Head.
    let x = g.layer_norm(x, Some((lnfg, lnfb)), 1e-5).expect("lnf");
    let x = g.reshape(x, &[b * t, cw]).expect("flat");
    let logits = g.matmul_t(x, wte, false, true).expect("lm head");
    let loss = g.cross_entropy(logits, targets, -100).expect("ce");
    (c, loss)
}

#[test]
fn gpt_block() {
    let (c, loss) = build_gpt_block();
    c.check_scalar(loss);
}

/// The gradient graph of the GPT block (every composite, gather -> scatter-add, the tied
/// head) through the scheduler for every target, run on the f32 tile interpreter against
/// the f64 oracle (inputs rounded to f32 for both). Tolerance `1e-4` relative, the
/// issue's bound for long reductions and matmuls in f32: the deepest chains (~40 kernels
/// back from the loss, three layer norms whose `1/sigma` amplify relative errors by the
/// row's `|x| / sigma`, here <= ~5) accumulate ~a few hundred u ~ 2e-5.
#[test]
fn gpt_block_gradient_graph_compiles_for_every_target() {
    use tessera_compiler::interp::run_plan;
    use tessera_compiler::{compile, Target};
    let (c, loss) = build_gpt_block();
    let gg = grad(&c.g, loss, &c.wrt).expect("grad");
    let feed = rounded_to_f32(&c.feed);
    let reference = run_graph(&gg.graph, &feed).expect("f64 oracle");
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        let plan = match compile(&gg.graph, &target) {
            Ok(plan) => plan,
            Err(e) => panic!("{}: {e}", target.kind.name()),
        };
        let out = run_plan(&plan, &feed).expect("tile interpreter runs");
        let mut worst: f64 = 0.0;
        for (name, r) in &reference {
            let err = out[name].max_rel_diff(r);
            assert!(err <= 1e-4, "{} {name}: {err:.2e}", target.kind.name());
            worst = worst.max(err);
        }
        eprintln!(
            "gpt block gradient graph on {}: {} kernels, worst rel {worst:.2e}",
            target.kind.name(),
            plan.kernels.len()
        );
    }
}

// ---- conventions at kinks and ties (values derived by hand) ----------------------------

/// Runs the gradient graph of `loss` w.r.t. `x` and returns `grad/x`.
fn grad_values(g: &Graph, loss: NodeId, x: NodeId, feed: &Inputs) -> Vec<f64> {
    let gg = grad(g, loss, &[x]).expect("grad");
    let out = run_graph(&gg.graph, feed).expect("runs");
    out[&grad_name(&g.node(x).name)].data.clone()
}

fn one_input(values: &[f64]) -> (Graph, NodeId, Inputs) {
    let mut g = Graph::new();
    let x = g.input("x", &[values.len()], F).expect("x");
    let feed = Inputs::from([(
        "x".to_string(),
        Tensor::from_vec(&[values.len()], F, values.to_vec()).expect("x"),
    )]);
    (g, x, feed)
}

#[test]
fn ties_and_kinks_follow_the_documented_conventions() {
    // reduce max: the tied maxima share the gradient evenly.
    let (mut g, x, feed) = one_input(&[1.0, 3.0, 3.0, 2.0, 3.0]);
    let m = g.reduce_max(x, 0, false).expect("max");
    assert_eq!(
        grad_values(&g, m, x, &feed),
        [0.0, 1.0 / 3.0, 1.0 / 3.0, 0.0, 1.0 / 3.0]
    );
    // binary max / min: ties split in half; loss = sum(max(x, c)) + 2 sum(min(x, c)).
    let (mut g, x, feed) = one_input(&[0.5, 1.0, 1.5]);
    let c = g.constant(1.0, &[3], F).expect("c");
    let two = g.constant(2.0, &[3], F).expect("two");
    let mx = g.max(x, c).expect("max");
    let mn = g.min(x, c).expect("min");
    let mn = g.mul(mn, two).expect("mul");
    let s = g.add(mx, mn).expect("add");
    let l = g.sum(s, 0, false).expect("sum");
    assert_eq!(grad_values(&g, l, x, &feed), [2.0, 0.5 + 1.0, 1.0]);
    // abs: sign(x) with sign(0) = 0; relu: 0 at 0.
    let (mut g, x, feed) = one_input(&[-2.0, 0.0, 3.0]);
    let a = g.abs(x).expect("abs");
    let l = g.sum(a, 0, false).expect("sum");
    assert_eq!(grad_values(&g, l, x, &feed), [-1.0, 0.0, 1.0]);
    let (mut g, x, feed) = one_input(&[-2.0, 0.0, 3.0]);
    let r = g.relu(x).expect("relu");
    let l = g.sum(r, 0, false).expect("sum");
    assert_eq!(grad_values(&g, l, x, &feed), [0.0, 0.0, 1.0]);
    // pow: the exponent gets 0 where the base is 0; d/da at a = 0 with b = 2 is 0.
    let (mut g, x, feed) = one_input(&[0.0, 2.0]);
    let base = g.constant(0.0, &[2], F).expect("base");
    let two = g.constant(2.0, &[2], F).expect("two");
    let pb = g.pow(base, x).expect("pow");
    let l = g.sum(pb, 0, false).expect("sum");
    assert_eq!(grad_values(&g, l, x, &feed), [0.0, 0.0]);
    let px = g.pow(x, two).expect("pow");
    let l2 = g.sum(px, 0, false).expect("sum");
    assert_eq!(grad_values(&g, l2, x, &feed), [0.0, 4.0]);
}

#[test]
fn float_casts_pass_the_gradient_straight_through() {
    // loss = sum(cast_f32(cast_f16(x)) * w): d loss / dx = w exactly (the rounding is
    // passed through, as documented), in x's dtype.
    let (mut g, x, mut feed) = one_input(&[0.1, -0.3, 0.7]);
    let h = g.cast(x, DType::F16).expect("to f16");
    let back = g.cast(h, F).expect("to f32");
    let w = g.input("w", &[3], F).expect("w");
    feed.insert(
        "w".into(),
        Tensor::from_vec(&[3], F, vec![2.0, -1.5, 0.25]).expect("w"),
    );
    let p = g.mul(back, w).expect("mul");
    let l = g.sum(p, 0, false).expect("sum");
    assert_eq!(grad_values(&g, l, x, &feed), [2.0, -1.5, 0.25]);
    let gg = grad(&g, l, &[x]).expect("grad");
    assert!(gg
        .graph
        .nodes()
        .iter()
        .any(|n| matches!(n.op, Op::Cast { to: DType::F32 }) && n.inputs[0].index() >= g.len()));
}

#[test]
fn comparisons_give_zero_not_an_error() {
    // loss = sum(where(x > 0, w, 0)): piecewise constant in x, gradient 0.
    let (mut g, x, mut feed) = one_input(&[-1.0, 0.5, 2.0]);
    let w = g.input("w", &[3], F).expect("w");
    feed.insert(
        "w".into(),
        Tensor::from_vec(&[3], F, vec![1.0; 3]).expect("w"),
    );
    let z = g.constant(0.0, &[3], F).expect("z");
    let c = g.compare(CompareOp::Gt, x, z).expect("gt");
    let s = g.select(c, w, z).expect("select");
    let l = g.sum(s, 0, false).expect("sum");
    assert_eq!(grad_values(&g, l, x, &feed), [0.0; 3]);
}

#[test]
fn unused_intermediate_and_loss_as_wrt() {
    let mut c = Case::new("wrt intermediate / unused / loss", 1800);
    let x = c.x("x", &[3]);
    let unused = c.x("unused", &[2]);
    let e = c.g.exp(x).expect("exp");
    let l = c.g.sum(e, 0, false).expect("sum");
    let gg = grad(&c.g, l, &[x, unused, e, l]).expect("grad");
    let out = run_graph(&gg.graph, &c.feed).expect("runs");
    let xs = &c.feed["x"].data;
    let ex: Vec<f64> = xs.iter().map(|v| v.exp()).collect();
    assert_eq!(out["grad/x"].data, ex);
    assert_eq!(out["grad/unused"].data, [0.0, 0.0]);
    assert_eq!(out["grad/exp_2"].data, [1.0; 3]);
    assert_eq!(out["grad/reduce_sum_3"].data, [1.0]);
    // Outputs: the loss, then the gradients in order.
    let names: Vec<&str> = gg
        .graph
        .outputs()
        .iter()
        .map(|&o| gg.graph.node(o).name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "reduce_sum_3",
            "grad/x",
            "grad/unused",
            "grad/exp_2",
            "grad/reduce_sum_3"
        ]
    );
}

// ---- structure: composites stay fused in the backward pass --------------------------

#[test]
fn backward_of_composites_uses_composites() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 4, 6], F).expect("x");
    let cos = g.input("cos", &[4, 3], F).expect("cos");
    let sin = g.input("sin", &[4, 3], F).expect("sin");
    let r = g.rope(x, cos, sin, false).expect("rope");
    let r = g.reshape(r, &[8, 6]).expect("flat");
    let t = g.input("t", &[8], DType::I32).expect("t");
    let l = g.cross_entropy(r, t, -100).expect("ce");
    let gg = grad(&g, l, &[x]).expect("grad");
    let backward = &gg.graph.nodes()[g.len()..];
    let count = |name: &str| {
        backward
            .iter()
            .filter(|n| matches!(&n.op, Op::Composite(c) if c.name() == name))
            .count()
    };
    // The gradient of RoPE is one RoPE (with -sin); cross-entropy's uses one softmax; no
    // decomposition (no max-reduce, no exp) appears.
    assert_eq!(count("rope"), 1);
    assert_eq!(count("softmax"), 1);
    assert!(!backward.iter().any(|n| matches!(
        n.op,
        Op::Unary { op: UnaryOp::Exp }
            | Op::Reduce {
                op: tessera_compiler::graph::ReduceOp::Max,
                ..
            }
    )));
}

#[test]
fn backward_of_attention_is_the_flash_backward_ops() {
    // T = 16: no [.., 16, 16] tensor may appear in the backward pass.
    let mut g = Graph::new();
    let q = g.input("q", &[1, 4, 16, 8], F).expect("q");
    let k = g.input("k", &[1, 2, 16, 8], F).expect("k");
    let v = g.input("v", &[1, 2, 16, 8], F).expect("v");
    let m = g.input("mask", &[1, 16], DType::I32).expect("mask");
    let a = g
        .attention(q, k, v, Some(m), true, None)
        .expect("attention");
    let a = g.reshape(a, &[512]).expect("flat");
    let l = g.sum(a, 0, false).expect("sum");
    let gg = grad(&g, l, &[q, k, v]).expect("grad");
    let backward = &gg.graph.nodes()[g.len()..];
    let names: Vec<&str> = backward
        .iter()
        .filter_map(|n| match &n.op {
            Op::Composite(c) => Some(c.name()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "attention_bwd_stats",
            "attention_bwd_dq",
            "attention_bwd_dk",
            "attention_bwd_dv"
        ]
    );
    for n in backward {
        assert!(
            !n.ty.shape.ends_with(&[16, 16]),
            "{} materialises {}",
            n.name,
            n.ty
        );
    }
}

// ---- typed errors ------------------------------------------------------------------------

#[test]
fn typed_errors() {
    let mut g = Graph::new();
    let x = g.input("x", &[3], F).expect("x");
    let i = g.input("i", &[3], DType::I32).expect("i");
    let e = g.exp(x).expect("exp");
    let l = g.sum(e, 0, false).expect("sum");
    // Loss not a scalar.
    assert!(matches!(
        grad(&g, e, &[x]),
        Err(AutodiffError::BadLoss { node, .. }) if node == "exp_2"
    ));
    // wrt not float.
    assert!(matches!(
        grad(&g, l, &[i]),
        Err(AutodiffError::NotFloat { node, dtype: DType::I32 }) if node == "i"
    ));
    assert!(matches!(
        grad(&g, l, &[x, x]),
        Err(AutodiffError::DuplicateWrt { node }) if node == "x"
    ));
    assert!(matches!(
        grad(&g, l, &[NodeId(99)]),
        Err(AutodiffError::UnknownNode { what: "wrt", .. })
    ));

    // A float-to-integer cast of a differentiated value on the path to the loss has no
    // gradient: the error names the op and the node.
    let mut g = Graph::new();
    let x = g.input("x", &[3], F).expect("x");
    let table = g.input("table", &[4], F).expect("table");
    let ids = g.cast(x, DType::I32).expect("cast");
    g.set_name(ids, "ids_from_x").expect("name");
    let rows = g.gather(table, ids, 0).expect("gather");
    let l = g.sum(rows, 0, false).expect("sum");
    let err = grad(&g, l, &[x, table]).expect_err("no gradient through a cast to i32");
    assert!(
        matches!(&err, AutodiffError::NoGradient { op: "cast", node, .. } if node == "ids_from_x"),
        "{err}"
    );
    assert!(err.to_string().contains("ids_from_x"));
    // The same graph differentiated only w.r.t. the table is fine (x is not differentiated).
    grad(&g, l, &[table]).expect("table only");
}

#[test]
fn second_derivatives_of_attention_have_no_rule() {
    // loss = sum(dq * w) where dq is attention's backward: the backward ops have no rule.
    let mut g = Graph::new();
    let q = g.input("q", &[1, 1, 3, 2], F).expect("q");
    let k = g.input("k", &[1, 1, 3, 2], F).expect("k");
    let v = g.input("v", &[1, 1, 3, 2], F).expect("v");
    let d_out = g.input("d_out", &[1, 1, 3, 2], F).expect("d_out");
    let out = g.attention(q, k, v, None, false, None).expect("attention");
    let [dq, _, _] = g
        .attention_backward(q, k, v, out, d_out, None, false, 0.5, [true, false, false])
        .expect("backward");
    let dq = dq.expect("dq");
    let flat = g.reshape(dq, &[6]).expect("flat");
    let l = g.sum(flat, 0, false).expect("sum");
    let err = grad(&g, l, &[q]).expect_err("no second derivative");
    assert!(
        matches!(&err, AutodiffError::NoGradient { op: "attention_bwd_dq", node, .. }
            if *node == g.node(dq).name),
        "{err}"
    );
    // Differentiating w.r.t. the adjoint input only still needs the rule.
    assert!(matches!(
        grad(&g, l, &[d_out]),
        Err(AutodiffError::NoGradient { .. })
    ));
}
