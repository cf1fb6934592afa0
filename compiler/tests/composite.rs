//! Composite ops, slice / concat / gather / scatter-add on the f64 oracle, each against an
//! independent reference written here as plain f64 loops (not through the graph), plus
//! the typed errors for out-of-range ids and targets, composite expansion and the JSON
//! round trip of every new op.
//!
//! Tolerance: the oracle and the references both compute in f64 and differ only in the
//! order of operations; with at most a few thousand operations per output and values of
//! magnitude <= ~10, the difference is bounded by ~1e3 * 2^-53 * 10 ~ 1e-12, so
//! `TOL = 1e-11` relative (absolute below 1) can only pass if the semantics agree.

use std::collections::HashMap;
use tessera_compiler::graph::{CompositeOp, DType, Graph, NodeId, Op};
use tessera_compiler::interp::{run_graph, InterpError, Tensor};

const TOL: f64 = 1e-11;
const F: DType = DType::F32;

type Inputs = HashMap<String, Tensor>;

fn rnd(shape: &[usize], seed: u64) -> Tensor {
    Tensor::random(shape, F, seed)
}

fn ids(shape: &[usize], data: &[i64]) -> Tensor {
    Tensor::from_vec(shape, DType::I32, data.iter().map(|&v| v as f64).collect())
        .expect("ids tensor")
}

/// Runs `g` on `ins` and returns the value of `out`.
fn run1(g: &Graph, ins: &Inputs, out: NodeId) -> Tensor {
    let mut g = g.clone();
    g.mark_output(out).expect("output");
    let mut res = run_graph(&g, ins).expect("graph runs");
    res.remove(&g.node(out).name).expect("output present")
}

fn feed(items: &[(&str, &Tensor)]) -> Inputs {
    items
        .iter()
        .map(|(n, t)| (n.to_string(), (*t).clone()))
        .collect()
}

fn assert_close(what: &str, got: &Tensor, shape: &[usize], want: &[f64]) {
    assert_eq!(got.shape, shape, "{what}: shape");
    assert_eq!(got.data.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.data.iter().zip(want).enumerate() {
        assert!(
            g.is_finite() && (g - w).abs() <= TOL * w.abs().max(1.0),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

/// Rows of the last axis.
fn rows(t: &Tensor) -> impl Iterator<Item = &[f64]> {
    let n = *t.shape.last().unwrap_or(&1);
    t.data.chunks(n.max(1))
}

// ---------------------------------------------------------------- softmax family

fn softmax_ref(row: &[f64]) -> Vec<f64> {
    // Plain formula (inputs are small, no max subtraction needed): independent of the
    // decomposition's max-subtracted form.
    let s: f64 = row.iter().map(|v| v.exp()).sum();
    row.iter().map(|v| v.exp() / s).collect()
}

#[test]
fn softmax_matches_formula_and_rows_sum_to_one() {
    for (shape, seed) in [
        (vec![3, 7], 1),
        (vec![2, 3, 100], 2),
        (vec![1], 3),
        (vec![4, 1], 4),
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, F).unwrap();
        let y = g.softmax(x).unwrap();
        let xt = rnd(&shape, seed);
        let got = run1(&g, &feed(&[("x", &xt)]), y);
        let want: Vec<f64> = rows(&xt).flat_map(softmax_ref).collect();
        assert_close("softmax", &got, &shape, &want);
        for r in rows(&got) {
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn softmax_is_max_subtracted() {
    // exp(1000) overflows f64: only a max-subtracted evaluation stays finite.
    let mut g = Graph::new();
    let x = g.input("x", &[1, 3], F).unwrap();
    let y = g.softmax(x).unwrap();
    let ls = g.log_softmax(x).unwrap();
    let xt = Tensor::from_vec(&[1, 3], F, vec![1000.0, 1001.0, 999.0]).unwrap();
    let ins = feed(&[("x", &xt)]);
    let shifted = softmax_ref(&[0.0, 1.0, -1.0]);
    assert_close("softmax large", &run1(&g, &ins, y), &[1, 3], &shifted);
    let logs: Vec<f64> = shifted.iter().map(|v| v.ln()).collect();
    assert_close("log_softmax large", &run1(&g, &ins, ls), &[1, 3], &logs);
}

#[test]
fn log_softmax_matches_formula() {
    for (shape, seed) in [(vec![5, 9], 5), (vec![2, 2, 257], 6)] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, F).unwrap();
        let y = g.log_softmax(x).unwrap();
        let xt = rnd(&shape, seed);
        let got = run1(&g, &feed(&[("x", &xt)]), y);
        let want: Vec<f64> = rows(&xt)
            .flat_map(|r| {
                let lse = r.iter().map(|v| v.exp()).sum::<f64>().ln();
                r.iter().map(move |v| v - lse).collect::<Vec<_>>()
            })
            .collect();
        assert_close("log_softmax", &got, &shape, &want);
    }
}

// ---------------------------------------------------------------- norms

fn layer_norm_ref(row: &[f64], eps: f64, gb: Option<(&[f64], &[f64])>) -> Vec<f64> {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    row.iter()
        .enumerate()
        .map(|(i, v)| {
            let y = (v - mean) / (var + eps).sqrt();
            match gb {
                Some((g, b)) => y * g[i] + b[i],
                None => y,
            }
        })
        .collect()
}

#[test]
fn layer_norm_with_and_without_affine() {
    for (shape, affine, eps) in [
        (vec![4, 8], false, 1e-5),
        (vec![2, 3, 100], true, 1e-5),
        (vec![3, 1], true, 1e-3),
        (vec![7, 64], false, 0.5),
    ] {
        let n = *shape.last().unwrap();
        let mut g = Graph::new();
        let x = g.input("x", &shape, F).unwrap();
        let gamma = g.param("gamma", &[n], F).unwrap();
        let beta = g.param("beta", &[n], F).unwrap();
        let y = g
            .layer_norm(x, affine.then_some((gamma, beta)), eps)
            .unwrap();
        let (xt, gt, bt) = (rnd(&shape, 10), rnd(&[n], 11), rnd(&[n], 12));
        let got = run1(&g, &feed(&[("x", &xt), ("gamma", &gt), ("beta", &bt)]), y);
        let want: Vec<f64> = rows(&xt)
            .flat_map(|r| layer_norm_ref(r, eps, affine.then_some((&gt.data[..], &bt.data[..]))))
            .collect();
        assert_close("layer_norm", &got, &shape, &want);
    }
}

#[test]
fn rms_norm_with_and_without_affine() {
    for (shape, affine, eps) in [
        (vec![5, 64], true, 1e-6),
        (vec![3, 7], false, 1e-5),
        (vec![2, 2, 80], true, 0.1),
    ] {
        let n = *shape.last().unwrap();
        let mut g = Graph::new();
        let x = g.input("x", &shape, F).unwrap();
        let gamma = g.param("gamma", &[n], F).unwrap();
        let y = g.rms_norm(x, affine.then_some(gamma), eps).unwrap();
        let (xt, gt) = (rnd(&shape, 20), rnd(&[n], 21));
        let got = run1(&g, &feed(&[("x", &xt), ("gamma", &gt)]), y);
        let want: Vec<f64> = rows(&xt)
            .flat_map(|r| {
                let ms = r.iter().map(|v| v * v).sum::<f64>() / n as f64;
                let gt = &gt;
                r.iter()
                    .enumerate()
                    .map(move |(i, v)| {
                        v / (ms + eps).sqrt() * if affine { gt.data[i] } else { 1.0 }
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_close("rms_norm", &got, &shape, &want);
    }
}

// ---------------------------------------------------------------- activations

#[test]
fn gelu_exact_known_values() {
    // x * Phi(x) from tables of the normal CDF (Phi(1) = 0.8413447460685429,
    // Phi(2) = 0.9772498680518208, Phi(-3) = 0.0013498980316301).
    let xs = [1.0, -1.0, 2.0, -3.0, 0.0];
    let want = [
        0.8413447460685429,
        -0.15865525393145707,
        1.9544997361036416,
        -0.00404969409489031,
        0.0,
    ];
    let mut g = Graph::new();
    let x = g.input("x", &[5], F).unwrap();
    let y = g.gelu(x, false).unwrap();
    let xt = Tensor::from_vec(&[5], F, xs.to_vec()).unwrap();
    assert_close("gelu", &run1(&g, &feed(&[("x", &xt)]), y), &[5], &want);
}

#[test]
fn gelu_tanh_form() {
    // Known values of the tanh approximation, and the formula on random inputs.
    let mut g = Graph::new();
    let x = g.input("x", &[3], F).unwrap();
    let y = g.gelu(x, true).unwrap();
    let xt = Tensor::from_vec(&[3], F, vec![1.0, -0.5, 2.0]).unwrap();
    let want = [0.8411919906082768, -0.15428599017485606, 1.954597694087775];
    assert_close("gelu_tanh", &run1(&g, &feed(&[("x", &xt)]), y), &[3], &want);

    let mut g = Graph::new();
    let x = g.input("x", &[7, 13], F).unwrap();
    let y = g.gelu(x, true).unwrap();
    let xt = rnd(&[7, 13], 30);
    let want: Vec<f64> = xt
        .data
        .iter()
        .map(|&v| {
            0.5 * v
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v)).tanh())
        })
        .collect();
    assert_close(
        "gelu_tanh random",
        &run1(&g, &feed(&[("x", &xt)]), y),
        &[7, 13],
        &want,
    );
}

#[test]
fn silu_and_swiglu() {
    let mut g = Graph::new();
    let a = g.input("a", &[4, 33], F).unwrap();
    let b = g.input("b", &[4, 33], F).unwrap();
    let s = g.silu(a).unwrap();
    let w = g.swiglu(a, b).unwrap();
    let (at, bt) = (rnd(&[4, 33], 40), rnd(&[4, 33], 41));
    let ins = feed(&[("a", &at), ("b", &bt)]);
    let silu: Vec<f64> = at.data.iter().map(|&v| v / (1.0 + (-v).exp())).collect();
    assert_close("silu", &run1(&g, &ins, s), &[4, 33], &silu);
    let sw: Vec<f64> = silu.iter().zip(&bt.data).map(|(s, u)| s * u).collect();
    assert_close("swiglu", &run1(&g, &ins, w), &[4, 33], &sw);
}

// ---------------------------------------------------------------- rope

#[test]
fn rope_both_layouts() {
    let (b, h, t, d) = (2, 3, 5, 8);
    let half = d / 2;
    // Real rotary tables: angle t * 10000^(-i / half).
    let mut cos = vec![0.0; t * half];
    let mut sin = vec![0.0; t * half];
    for p in 0..t {
        for i in 0..half {
            let a = p as f64 * 10000f64.powf(-(i as f64) / half as f64);
            cos[p * half + i] = a.cos();
            sin[p * half + i] = a.sin();
        }
    }
    let ct = Tensor::from_vec(&[t, half], F, cos.clone()).unwrap();
    let st = Tensor::from_vec(&[t, half], F, sin.clone()).unwrap();
    let xt = rnd(&[b, h, t, d], 50);
    for interleaved in [false, true] {
        let mut g = Graph::new();
        let x = g.input("x", &[b, h, t, d], F).unwrap();
        let c = g.input("cos", &[t, half], F).unwrap();
        let s = g.input("sin", &[t, half], F).unwrap();
        let y = g.rope(x, c, s, interleaved).unwrap();
        let got = run1(&g, &feed(&[("x", &xt), ("cos", &ct), ("sin", &st)]), y);
        let mut want = vec![0.0; xt.data.len()];
        for row in 0..b * h * t {
            let p = row % t;
            let base = row * d;
            for i in 0..half {
                let (ia, ib) = if interleaved {
                    (2 * i, 2 * i + 1)
                } else {
                    (i, i + half)
                };
                let (xa, xb) = (xt.data[base + ia], xt.data[base + ib]);
                let (c, s) = (cos[p * half + i], sin[p * half + i]);
                want[base + ia] = xa * c - xb * s;
                want[base + ib] = xb * c + xa * s;
            }
        }
        assert_close(
            &format!("rope interleaved={interleaved}"),
            &got,
            &[b, h, t, d],
            &want,
        );
    }
}

// ---------------------------------------------------------------- attention

struct Attn {
    b: usize,
    hq: usize,
    hkv: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    causal: bool,
    mask: Option<Vec<i64>>,
}

/// Naive attention: for each query, scores over visible keys, softmax, weighted sum.
fn attention_ref(a: &Attn, q: &[f64], k: &[f64], v: &[f64], scale: f64) -> Vec<f64> {
    let mut out = vec![0.0; a.b * a.hq * a.tq * a.dv];
    let group = a.hq / a.hkv;
    for bi in 0..a.b {
        for h in 0..a.hq {
            let kh = h / group;
            for i in 0..a.tq {
                let mut sc = Vec::new();
                for j in 0..a.tk {
                    let causal_ok = !a.causal || (j as i64) <= i as i64 + a.tk as i64 - a.tq as i64;
                    let pad_ok = a.mask.as_ref().is_none_or(|m| m[bi * a.tk + j] != 0);
                    if causal_ok && pad_ok {
                        let mut s = 0.0;
                        for c in 0..a.d {
                            s += q[((bi * a.hq + h) * a.tq + i) * a.d + c]
                                * k[((bi * a.hkv + kh) * a.tk + j) * a.d + c];
                        }
                        sc.push((j, s * scale));
                    }
                }
                if sc.is_empty() {
                    continue;
                }
                let m = sc.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = sc.iter().map(|x| (x.1 - m).exp()).sum();
                for &(j, s) in &sc {
                    let p = (s - m).exp() / z;
                    for c in 0..a.dv {
                        out[((bi * a.hq + h) * a.tq + i) * a.dv + c] +=
                            p * v[((bi * a.hkv + kh) * a.tk + j) * a.dv + c];
                    }
                }
            }
        }
    }
    out
}

fn check_attention(name: &str, a: Attn, scale: Option<f64>) -> Tensor {
    let mut g = Graph::new();
    let q = g.input("q", &[a.b, a.hq, a.tq, a.d], F).unwrap();
    let k = g.input("k", &[a.b, a.hkv, a.tk, a.d], F).unwrap();
    let v = g.input("v", &[a.b, a.hkv, a.tk, a.dv], F).unwrap();
    let m = g.input("mask", &[a.b, a.tk], DType::I32).unwrap();
    let y = g
        .attention(q, k, v, a.mask.is_some().then_some(m), a.causal, scale)
        .unwrap();
    let qt = rnd(&[a.b, a.hq, a.tq, a.d], 60);
    let kt = rnd(&[a.b, a.hkv, a.tk, a.d], 61);
    let vt = rnd(&[a.b, a.hkv, a.tk, a.dv], 62);
    let mt = ids(
        &[a.b, a.tk],
        a.mask.as_deref().unwrap_or(&vec![1; a.b * a.tk]),
    );
    let got = run1(
        &g,
        &feed(&[("q", &qt), ("k", &kt), ("v", &vt), ("mask", &mt)]),
        y,
    );
    let s = scale.unwrap_or(1.0 / (a.d as f64).sqrt());
    let want = attention_ref(&a, &qt.data, &kt.data, &vt.data, s);
    assert_close(name, &got, &[a.b, a.hq, a.tq, a.dv], &want);
    got
}

fn attn(b: usize, hq: usize, hkv: usize, tq: usize, tk: usize, d: usize, dv: usize) -> Attn {
    Attn {
        b,
        hq,
        hkv,
        tq,
        tk,
        d,
        dv,
        causal: false,
        mask: None,
    }
}

#[test]
fn attention_plain_and_causal() {
    check_attention("plain", attn(2, 2, 2, 7, 7, 16, 16), None);
    check_attention("plain tq<tk", attn(1, 2, 2, 3, 9, 8, 8), Some(0.3));
    check_attention(
        "causal square",
        Attn {
            causal: true,
            ..attn(2, 2, 2, 7, 7, 16, 16)
        },
        None,
    );
    check_attention(
        "causal tq<tk",
        Attn {
            causal: true,
            ..attn(1, 3, 3, 3, 10, 8, 8)
        },
        None,
    );
    check_attention(
        "causal t=1",
        Attn {
            causal: true,
            ..attn(1, 1, 1, 1, 1, 32, 32)
        },
        None,
    );
}

#[test]
fn attention_causal_alignment_is_at_the_end() {
    // Tq = 1, Tk = 5: the single query is the last position and sees every key, so the
    // output equals non-causal attention.
    let c = check_attention(
        "causal decode",
        Attn {
            causal: true,
            ..attn(1, 1, 1, 1, 5, 4, 4)
        },
        None,
    );
    let n = check_attention("decode", attn(1, 1, 1, 1, 5, 4, 4), None);
    assert_eq!(c.data, n.data);
}

#[test]
fn attention_padding_gqa_and_dv() {
    let mask = vec![
        1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, -1,
    ];
    // B = 3, Tk = 7: batch 0 partly masked, batch 1 one key masked, batch 2 only the
    // last two keys (values 3 and -1: nonzero = keep).
    check_attention(
        "padding",
        Attn {
            mask: Some(mask.clone()),
            ..attn(3, 2, 2, 7, 7, 8, 8)
        },
        None,
    );
    check_attention("gqa", attn(2, 4, 2, 5, 6, 16, 16), None);
    check_attention(
        "gqa causal padding",
        Attn {
            causal: true,
            mask: Some(mask),
            ..attn(3, 4, 2, 7, 7, 8, 8)
        },
        None,
    );
    check_attention("dv != d", attn(2, 4, 1, 3, 7, 8, 5), Some(0.7));
}

#[test]
fn attention_query_seeing_no_key_gives_zeros() {
    // Batch 1 fully padded: every query of batch 1 gets zeros, no NaN.
    let mask = vec![1, 0, 1, 1, 0, 0, 0, 0];
    let got = check_attention(
        "all masked",
        Attn {
            mask: Some(mask),
            ..attn(2, 2, 2, 3, 4, 8, 8)
        },
        None,
    );
    let per_batch = 2 * 3 * 8;
    assert!(got.data[per_batch..].iter().all(|&v| v == 0.0));
    assert!(got.data[..per_batch].iter().any(|&v| v != 0.0));
    // Causal with Tq > Tk: the first Tq - Tk queries see no key.
    let got = check_attention(
        "causal tq>tk",
        Attn {
            causal: true,
            ..attn(1, 1, 1, 5, 3, 4, 4)
        },
        None,
    );
    assert!(got.data[..2 * 4].iter().all(|&v| v == 0.0));
    assert!(got.data[2 * 4..].iter().all(|v| v.is_finite()));
}

// ---------------------------------------------------------------- cross-entropy

fn token_ce_ref(logits: &[f64], v: usize, targets: &[i64], ignore: i64) -> Vec<f64> {
    logits
        .chunks(v)
        .zip(targets)
        .map(|(row, &t)| {
            if t == ignore {
                return 0.0;
            }
            let lse = row.iter().map(|x| x.exp()).sum::<f64>().ln();
            lse - row[t as usize]
        })
        .collect()
}

fn ce_graph(n: usize, v: usize, ignore: i64) -> (Graph, NodeId, NodeId) {
    let mut g = Graph::new();
    let l = g.input("logits", &[n, v], F).unwrap();
    let t = g.input("targets", &[n], DType::I32).unwrap();
    let mean = g.cross_entropy(l, t, ignore).unwrap();
    let tok = g
        .composite(
            CompositeOp::TokenCrossEntropy {
                ignore_index: ignore,
            },
            &[l, t],
        )
        .unwrap();
    (g, mean, tok)
}

#[test]
fn cross_entropy_mean_and_tokens() {
    for (n, v, targets, ignore) in [
        (6, 11, vec![3, -100, 0, 10, -100, 7], -100),
        (4, 5, vec![0, 1, 0, 4], 0),
        (3, 50257, vec![50256, 0, 12345], -100),
        (1, 1, vec![0], -1),
    ] {
        let (g, mean, tok) = ce_graph(n, v, ignore);
        let lt = rnd(&[n, v], 70);
        let tt = ids(&[n], &targets);
        let ins = feed(&[("logits", &lt), ("targets", &tt)]);
        let want = token_ce_ref(&lt.data, v, &targets, ignore);
        assert_close("token ce", &run1(&g, &ins, tok), &[n], &want);
        let count = targets.iter().filter(|&&t| t != ignore).count();
        let m = want.iter().sum::<f64>() / count.max(1) as f64;
        assert_close("mean ce", &run1(&g, &ins, mean), &[], &[m]);
    }
}

#[test]
fn cross_entropy_all_ignored_is_zero() {
    let (g, mean, tok) = ce_graph(3, 4, -100);
    let lt = rnd(&[3, 4], 71);
    let tt = ids(&[3], &[-100, -100, -100]);
    let ins = feed(&[("logits", &lt), ("targets", &tt)]);
    assert_eq!(run1(&g, &ins, mean).data, vec![0.0]);
    assert_eq!(run1(&g, &ins, tok).data, vec![0.0; 3]);
}

#[test]
fn cross_entropy_target_out_of_range_is_a_typed_error() {
    for bad in [4, -1, 1000] {
        let (mut g, mean, tok) = ce_graph(3, 4, -100);
        g.set_name(mean, "loss").unwrap();
        let lt = rnd(&[3, 4], 72);
        let tt = ids(&[3], &[0, bad, 1]);
        let mut g1 = g.clone();
        g1.mark_output(mean).unwrap();
        match run_graph(&g1, &feed(&[("logits", &lt), ("targets", &tt)])) {
            Err(InterpError::IndexOutOfRange {
                node,
                what,
                index,
                len,
            }) => {
                assert_eq!(
                    (node.as_str(), what, index, len),
                    ("loss", "target", bad, 4)
                );
            }
            other => panic!("expected IndexOutOfRange, got {other:?}"),
        }
        g.mark_output(tok).unwrap();
        assert!(matches!(
            run_graph(&g, &feed(&[("logits", &lt), ("targets", &tt)])),
            Err(InterpError::IndexOutOfRange { what: "target", .. })
        ));
    }
}

// ---------------------------------------------------------------- indexing

#[test]
fn slice_and_concat() {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 5, 4], F).unwrap();
    let y = g.input("y", &[3, 2, 4], F).unwrap();
    let s = g.slice(x, 1, 1, 3).unwrap();
    let c = g.concat(&[x, y, s], 1).unwrap();
    let c0 = g.concat(&[x], 2).unwrap();
    let (xt, yt) = (rnd(&[3, 5, 4], 80), rnd(&[3, 2, 4], 81));
    let ins = feed(&[("x", &xt), ("y", &yt)]);
    let at = |i: usize, j: usize, k: usize| xt.data[(i * 5 + j) * 4 + k];
    let mut ws = Vec::new();
    for i in 0..3 {
        for j in 1..4 {
            for k in 0..4 {
                ws.push(at(i, j, k));
            }
        }
    }
    assert_close("slice", &run1(&g, &ins, s), &[3, 3, 4], &ws);
    let mut wc = Vec::new();
    for i in 0..3 {
        wc.extend_from_slice(&xt.data[i * 20..(i + 1) * 20]);
        wc.extend_from_slice(&yt.data[i * 8..(i + 1) * 8]);
        wc.extend_from_slice(&ws[i * 12..(i + 1) * 12]);
    }
    assert_close("concat", &run1(&g, &ins, c), &[3, 10, 4], &wc);
    assert_close("concat of one", &run1(&g, &ins, c0), &[3, 5, 4], &xt.data);
    // Last-axis slice.
    let mut g = Graph::new();
    let x = g.input("x", &[3, 5, 4], F).unwrap();
    let s = g.slice(x, 2, 3, 1).unwrap();
    let want: Vec<f64> = xt.data.chunks(4).map(|r| r[3]).collect();
    assert_close(
        "slice last",
        &run1(&g, &feed(&[("x", &xt)]), s),
        &[3, 5, 1],
        &want,
    );
}

#[test]
fn gather_embedding_and_inner_axis() {
    // Embedding lookup: table [V, E], ids [2, 3].
    let mut g = Graph::new();
    let table = g.param("table", &[7, 4], F).unwrap();
    let id = g.input("ids", &[2, 3], DType::I32).unwrap();
    let e = g.gather(table, id, 0).unwrap();
    let tt = rnd(&[7, 4], 90);
    let it = ids(&[2, 3], &[0, 6, 3, 3, 1, 0]);
    let got = run1(&g, &feed(&[("table", &tt), ("ids", &it)]), e);
    let want: Vec<f64> = it
        .data
        .iter()
        .flat_map(|&i| tt.data[i as usize * 4..i as usize * 4 + 4].to_vec())
        .collect();
    assert_close("embedding", &got, &[2, 3, 4], &want);
    // Inner axis: x [2, 5, 3], ids [4] along axis 1.
    let mut g = Graph::new();
    let x = g.input("x", &[2, 5, 3], F).unwrap();
    let id = g.input("ids", &[4], DType::I32).unwrap();
    let y = g.gather(x, id, 1).unwrap();
    let xt = rnd(&[2, 5, 3], 91);
    let idv = [4, 0, 2, 4];
    let got = run1(&g, &feed(&[("x", &xt), ("ids", &ids(&[4], &idv))]), y);
    let mut want = Vec::new();
    for a in 0..2 {
        for &i in &idv {
            for c in 0..3 {
                want.push(xt.data[(a * 5 + i as usize) * 3 + c]);
            }
        }
    }
    assert_close("gather axis 1", &got, &[2, 4, 3], &want);
}

#[test]
fn scatter_add_accumulates_repeated_ids() {
    // src [2, 3, 4] with ids [3] at axis 1 -> out [2, 5, 4].
    let mut g = Graph::new();
    let src = g.input("src", &[2, 3, 4], F).unwrap();
    let id = g.input("ids", &[3], DType::I32).unwrap();
    let y = g.scatter_add(src, id, 1, 5).unwrap();
    let st = rnd(&[2, 3, 4], 100);
    let idv = [2, 0, 2];
    let got = run1(&g, &feed(&[("src", &st), ("ids", &ids(&[3], &idv))]), y);
    let mut want = vec![0.0; 2 * 5 * 4];
    for a in 0..2 {
        for (k, &i) in idv.iter().enumerate() {
            for c in 0..4 {
                want[(a * 5 + i as usize) * 4 + c] += st.data[(a * 3 + k) * 4 + c];
            }
        }
    }
    assert_close("scatter_add", &got, &[2, 5, 4], &want);
    // Rank-2 ids (the gradient of an embedding lookup): src [2, 3, 4], ids [2, 3] at 0.
    let mut g = Graph::new();
    let src = g.input("src", &[2, 3, 4], F).unwrap();
    let id = g.input("ids", &[2, 3], DType::I32).unwrap();
    let y = g.scatter_add(src, id, 0, 6).unwrap();
    let idv = [5, 1, 5, 0, 1, 1];
    let got = run1(&g, &feed(&[("src", &st), ("ids", &ids(&[2, 3], &idv))]), y);
    let mut want = vec![0.0; 6 * 4];
    for (k, &i) in idv.iter().enumerate() {
        for c in 0..4 {
            want[i as usize * 4 + c] += st.data[k * 4 + c];
        }
    }
    assert_close("scatter_add rank-2 ids", &got, &[6, 4], &want);
}

#[test]
fn out_of_range_ids_are_typed_errors() {
    for bad in [7, -1] {
        let mut g = Graph::new();
        let table = g.param("table", &[7, 4], F).unwrap();
        let id = g.input("ids", &[3], DType::I32).unwrap();
        let e = g.gather(table, id, 0).unwrap();
        g.set_name(e, "embed").unwrap();
        g.mark_output(e).unwrap();
        let r = run_graph(
            &g,
            &feed(&[
                ("table", &rnd(&[7, 4], 1)),
                ("ids", &ids(&[3], &[0, bad, 2])),
            ]),
        );
        match r {
            Err(InterpError::IndexOutOfRange {
                node,
                what,
                index,
                len,
            }) => {
                assert_eq!(
                    (node.as_str(), what, index, len),
                    ("embed", "gather id", bad, 7)
                );
                let msg = InterpError::IndexOutOfRange {
                    node,
                    what,
                    index,
                    len,
                }
                .to_string();
                assert!(msg.contains("embed") && msg.contains("0..7"), "{msg}");
            }
            other => panic!("expected IndexOutOfRange, got {other:?}"),
        }
        let mut g = Graph::new();
        let src = g.input("src", &[3, 4], F).unwrap();
        let id = g.input("ids", &[3], DType::I32).unwrap();
        let s = g.scatter_add(src, id, 0, 7).unwrap();
        g.mark_output(s).unwrap();
        let r = run_graph(
            &g,
            &feed(&[("src", &rnd(&[3, 4], 2)), ("ids", &ids(&[3], &[bad, 0, 0]))]),
        );
        assert!(
            matches!(r, Err(InterpError::IndexOutOfRange { what: "scatter_add id", index, len: 7, .. }) if index == bad),
            "{r:?}"
        );
    }
}

// ---------------------------------------------------------------- expansion

/// A small transformer-ish graph using every composite.
fn block() -> (Graph, Inputs) {
    let (b, h, t, d) = (2, 2, 5, 8);
    let mut g = Graph::new();
    let x = g.input("x", &[b, h, t, d], F).unwrap();
    let cos = g.input("cos", &[t, d / 2], F).unwrap();
    let sin = g.input("sin", &[t, d / 2], F).unwrap();
    let gamma = g.param("gamma", &[d], F).unwrap();
    let beta = g.param("beta", &[d], F).unwrap();
    let mask = g.input("mask", &[b, t], DType::I32).unwrap();
    let targets = g.input("targets", &[b * h * t], DType::I32).unwrap();
    let n = g.layer_norm(x, Some((gamma, beta)), 1e-5).unwrap();
    let n = g.rms_norm(n, Some(gamma), 1e-6).unwrap();
    let q = g.rope(n, cos, sin, false).unwrap();
    let k = g.rope(n, cos, sin, true).unwrap();
    let a = g.attention(q, k, n, Some(mask), true, None).unwrap();
    g.set_name(a, "attn").unwrap();
    let ge = g.gelu(a, false).unwrap();
    let gt = g.gelu(a, true).unwrap();
    let sw = g.swiglu(ge, gt).unwrap();
    let si = g.silu(sw).unwrap();
    let sm = g.softmax(si).unwrap();
    let ls = g.log_softmax(sm).unwrap();
    let flat = g.reshape(ls, &[b * h * t, d]).unwrap();
    let loss = g.cross_entropy(flat, targets, -100).unwrap();
    g.set_name(loss, "loss").unwrap();
    g.mark_output(loss).unwrap();
    g.mark_output(sm).unwrap();
    let tg: Vec<i64> = (0..(b * h * t) as i64)
        .map(|i| if i % 3 == 0 { -100 } else { i % 8 })
        .collect();
    let ins = feed(&[
        ("x", &rnd(&[b, h, t, d], 1)),
        ("cos", &rnd(&[t, d / 2], 2)),
        ("sin", &rnd(&[t, d / 2], 3)),
        ("gamma", &rnd(&[d], 4)),
        ("beta", &rnd(&[d], 5)),
        ("mask", &ids(&[b, t], &[1, 1, 1, 0, 1, 0, 1, 1, 1, 1])),
        ("targets", &ids(&[b * h * t], &tg)),
    ]);
    (g, ins)
}

#[test]
fn expand_composites_keeps_names_and_values() {
    let (g, ins) = block();
    let e = g.expand_composites().unwrap();
    e.validate().unwrap();
    assert!(e.nodes().iter().all(|n| !matches!(n.op, Op::Composite(_))));
    for name in [
        "x", "cos", "sin", "gamma", "beta", "mask", "targets", "attn", "loss",
    ] {
        assert!(e.find(name).is_some(), "{name} kept");
    }
    let in_names = |g: &Graph| -> Vec<String> {
        g.inputs()
            .iter()
            .chain(&g.params())
            .map(|&i| g.node(i).name.clone())
            .collect()
    };
    assert_eq!(in_names(&g), in_names(&e));
    let outs = |g: &Graph| -> Vec<String> {
        g.outputs()
            .iter()
            .map(|&i| g.node(i).name.clone())
            .collect()
    };
    assert_eq!(outs(&g), outs(&e));
    // The interpreter evaluates composites through the same decomposition: identical.
    assert_eq!(run_graph(&g, &ins).unwrap(), run_graph(&e, &ins).unwrap());
    // The expanded graph (no infinite constants) survives JSON (loading re-sorts the
    // nodes, so compare them by name).
    assert_same_nodes(&Graph::from_json(&e.to_json()).unwrap(), &e);
}

#[test]
fn expand_only_elementwise_composites() {
    let (g, ins) = block();
    let (e, origin) = g
        .expand_composites_where(CompositeOp::is_elementwise)
        .unwrap();
    e.validate().unwrap();
    assert_eq!(origin.len(), e.len());
    let kept: Vec<&str> = e
        .nodes()
        .iter()
        .filter_map(|n| match &n.op {
            Op::Composite(c) => Some(c.name()),
            _ => None,
        })
        .collect();
    assert_eq!(
        kept,
        [
            "layer_norm",
            "rms_norm",
            "rope",
            "rope",
            "attention",
            "softmax",
            "log_softmax",
            "cross_entropy"
        ]
    );
    let tags: std::collections::BTreeSet<&str> = origin.iter().flatten().copied().collect();
    assert_eq!(
        tags,
        ["gelu", "gelu_tanh", "silu", "swiglu"]
            .into_iter()
            .collect()
    );
    for (n, o) in e.nodes().iter().zip(&origin) {
        if o.is_some() {
            assert!(!matches!(n.op, Op::Composite(_) | Op::Input | Op::Param));
        }
    }
    assert_eq!(run_graph(&g, &ins).unwrap(), run_graph(&e, &ins).unwrap());
}

#[test]
fn expansion_names_do_not_clash_with_later_nodes() {
    // A later node named like an auto-generated decomposition node.
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3], F).unwrap();
    let s = g.softmax(x).unwrap();
    let y = g.exp(s).unwrap();
    for k in 0..12 {
        // Whatever `exp_k` the decomposition would pick, it exists later in the graph.
        if g.find(&format!("exp_{k}")).is_none() && k != y.index() {
            let z = g.neg(y).unwrap();
            let _ = g.set_name(z, &format!("exp_{k}"));
        }
    }
    let last = NodeId(g.len() as u32 - 1);
    g.mark_output(last).unwrap();
    let e = g.expand_composites().unwrap();
    e.validate().unwrap();
    let ins = feed(&[("x", &rnd(&[2, 3], 7))]);
    assert_eq!(run_graph(&g, &ins).unwrap(), run_graph(&e, &ins).unwrap());
}

// ---------------------------------------------------------------- JSON

/// Same nodes (by name: op, type, input names) and the same outputs, in any node order.
fn assert_same_nodes(a: &Graph, b: &Graph) {
    assert_eq!(a.len(), b.len(), "node count");
    let inputs = |g: &Graph, id: NodeId| -> Vec<String> {
        g.node(id)
            .inputs
            .iter()
            .map(|&i| g.node(i).name.clone())
            .collect()
    };
    for id in b.ids() {
        let n = b.node(id);
        let Some(m) = a.find(&n.name) else {
            panic!("node {} missing", n.name)
        };
        assert!(
            a.node(m).op == n.op && a.node(m).ty == n.ty,
            "node {} differs",
            n.name
        );
        assert_eq!(inputs(a, m), inputs(b, id), "inputs of {}", n.name);
    }
    let outs = |g: &Graph| -> Vec<String> {
        g.outputs()
            .iter()
            .map(|&i| g.node(i).name.clone())
            .collect()
    };
    assert_eq!(outs(a), outs(b));
}

#[test]
fn json_round_trip_of_new_ops() {
    let (mut g, _) = block();
    let x = g.input("xs", &[4, 6], F).unwrap();
    let y = g.input("ys", &[4, 2], F).unwrap();
    let i = g.input("is", &[3], DType::I32).unwrap();
    let s = g.slice(x, 1, 2, 3).unwrap();
    let c = g.concat(&[x, y, s], 1).unwrap();
    let ga = g.gather(c, i, 1).unwrap();
    let sa = g.scatter_add(ga, i, 1, 9).unwrap();
    g.mark_output(sa).unwrap();
    let text = g.to_json();
    assert!(text.contains(r#""op": "composite""#), "{text}");
    assert!(text.contains(r#""fn": "layer_norm""#));
    let back = Graph::from_json(&text).unwrap();
    assert_eq!(back, g);
    // The documented hand-written form.
    let hand = r#"{"nodes": [
        {"name": "x", "op": "input", "shape": [2, 8]},
        {"name": "g", "op": "param", "shape": [8]},
        {"name": "b", "op": "param", "shape": [8]},
        {"name": "ln", "op": "composite", "fn": "layer_norm", "eps": 1e-5, "affine": true,
         "inputs": ["x", "g", "b"]},
        {"name": "sl", "op": "slice", "axis": 1, "start": 2, "len": 4, "inputs": ["ln"]},
        {"name": "cat", "op": "concat", "axis": 1, "inputs": ["sl", "x", "sl"]},
        {"name": "t", "op": "input", "shape": [2], "dtype": "i32"},
        {"name": "ce", "op": "composite", "fn": "cross_entropy", "ignore_index": -100,
         "inputs": ["cat", "t"]},
        {"name": "at", "op": "composite", "fn": "attention", "causal": true,
         "padding": false, "scale": 0.5, "inputs": ["q", "q", "q"]},
        {"name": "q", "op": "input", "shape": [1, 1, 3, 4]}
    ], "outputs": ["ce", "at"]}"#;
    let g = Graph::from_json(hand).unwrap();
    let ln = g.find("ln").unwrap();
    assert_eq!(
        g.node(ln).op,
        Op::Composite(CompositeOp::LayerNorm {
            eps: 1e-5,
            affine: true
        })
    );
    assert_eq!(g.ty(g.find("cat").unwrap()).shape, vec![2, 16]);
    assert_eq!(Graph::from_json(&g.to_json()).unwrap(), g);
}

#[test]
fn composites_keep_half_dtypes() {
    // The decomposition computes in the input's dtype (constants included); the oracle
    // keeps f64 values whatever the dtype, so f16 / bf16 graphs give the f32 graph's
    // values exactly, with the half dtype on every result.
    let build = |dt: DType| -> (Graph, Vec<NodeId>) {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3, 4, 8], dt).unwrap();
        let c = g.input("c", &[4, 4], dt).unwrap();
        let gm = g.param("gm", &[8], dt).unwrap();
        let t = g.input("t", &[6], DType::I32).unwrap();
        let flat = g.reshape(x, &[24, 8]).unwrap();
        let f6 = g.slice(flat, 0, 0, 6).unwrap();
        let outs = vec![
            g.softmax(x).unwrap(),
            g.log_softmax(x).unwrap(),
            g.layer_norm(x, Some((gm, gm)), 1e-5).unwrap(),
            g.rms_norm(x, None, 1e-5).unwrap(),
            g.gelu(x, false).unwrap(),
            g.gelu(x, true).unwrap(),
            g.swiglu(x, x).unwrap(),
            g.rope(x, c, c, true).unwrap(),
            g.attention(x, x, x, None, true, None).unwrap(),
            g.cross_entropy(f6, t, 1).unwrap(),
        ];
        (g, outs)
    };
    let ins = |dt: DType| {
        let mut x = rnd(&[2, 3, 4, 8], 1);
        let mut c = rnd(&[4, 4], 2);
        let mut gm = rnd(&[8], 3);
        for t in [&mut x, &mut c, &mut gm] {
            // Values representable in bf16 (8 significant bits) are exact in every dtype.
            t.data = t.data.iter().map(|v| (v * 64.0).round() / 64.0).collect();
            t.dtype = dt;
        }
        let t = ids(&[6], &[0, 1, 2, 3, 1, 0]);
        feed(&[("x", &x), ("c", &c), ("gm", &gm), ("t", &t)])
    };
    let (g32, o32) = build(F);
    let i32s = ins(F);
    for dt in [DType::F16, DType::BF16] {
        let (g, outs) = build(dt);
        let i = ins(dt);
        for (o, o32) in outs.iter().zip(&o32) {
            let got = run1(&g, &i, *o);
            assert_eq!(got.dtype, dt, "{}", g.node(*o).name);
            let want = run1(&g32, &i32s, *o32);
            assert_eq!(got.data, want.data, "{}", g.node(*o).name);
        }
    }
}

// ------------------------------------------------------------ sorted scatter-add

/// The ranks of ids (`[2, 5]`, row-major) in the stable ascending order of the ids
/// clamped into `-1..=size`, their inverse, the rows' segment starts, and the sorted
/// scatter-add, against a stable sort written here; ids outside `0..size` sort to the ends (and the sorted
/// scatter-add, like the scatter-add, rejects them on the oracle). These are the
/// reference semantics: the oracle's sorted scatter-add is the scatter-add and does not
/// read `order`; the kernels do, and `tests/conformance/indexing.rs` checks them on
/// every backend.
#[test]
fn scatter_ranks_order_starts_and_sorted_sum_match_a_stable_sort() {
    let size = 4usize;
    let id_v: [i64; 10] = [3, -9, 1, 3, 7, 0, 1, 4, -1, 3];
    let mut g = Graph::new();
    let x = g.input("ids", &[2, 5], DType::I32).expect("input");
    let ranks = g
        .composite(CompositeOp::ScatterRanks { size }, &[x])
        .expect("ranks");
    let order = g
        .composite(CompositeOp::ScatterOrder, &[ranks])
        .expect("order");
    let starts = g
        .composite(CompositeOp::ScatterStarts { size }, &[x, order])
        .expect("starts");
    let ins = feed(&[("ids", &ids(&[2, 5], &id_v))]);
    let mut by_key: Vec<usize> = (0..id_v.len()).collect();
    by_key.sort_by_key(|&n| id_v[n].clamp(-1, size as i64)); // stable
    let mut want_rank = vec![0.0; id_v.len()];
    for (r, &n) in by_key.iter().enumerate() {
        want_rank[n] = r as f64;
    }
    let want_order: Vec<f64> = by_key.iter().map(|&n| n as f64).collect();
    let got = run1(&g, &ins, ranks);
    assert_eq!(got.dtype, DType::I32);
    assert_close("ranks", &got, &[10], &want_rank);
    assert_close("order", &run1(&g, &ins, order), &[10], &want_order);
    // Row r's segment of the order starts after the ids clamped below r: here the
    // clamped ids are -1 x2, 0, 1 x2, 3 x3, 4 x2.
    let want_starts = [2.0, 3.0, 5.0, 5.0, 8.0];
    let got = run1(&g, &ins, starts);
    assert_eq!(got.dtype, DType::I32);
    assert_close("starts", &got, &[size + 1], &want_starts);
    for r in 0..size {
        let (a, b) = (want_starts[r] as usize, want_starts[r + 1] as usize);
        assert!(
            by_key[a..b].iter().all(|&n| id_v[n] == r as i64),
            "segment of row {r}"
        );
    }

    // The sorted form is the scatter-add (in range ids).
    let in_range: [i64; 10] = [3, 2, 1, 3, 0, 0, 1, 2, 1, 3];
    let mut g = Graph::new();
    let src = g.input("src", &[2, 5, 3], F).expect("input");
    let x = g.input("ids", &[2, 5], DType::I32).expect("input");
    let ranks = g
        .composite(CompositeOp::ScatterRanks { size }, &[x])
        .expect("ranks");
    let order = g
        .composite(CompositeOp::ScatterOrder, &[ranks])
        .expect("order");
    let starts = g
        .composite(CompositeOp::ScatterStarts { size }, &[x, order])
        .expect("starts");
    let sorted = g
        .composite(
            CompositeOp::SortedScatterAdd { axis: 0, size },
            &[src, x, order, starts],
        )
        .expect("sorted");
    let s = rnd(&[2, 5, 3], 3);
    let ins = feed(&[("src", &s), ("ids", &ids(&[2, 5], &in_range))]);
    let mut want = vec![0.0; size * 3];
    for (n, &id) in in_range.iter().enumerate() {
        for c in 0..3 {
            want[id as usize * 3 + c] += s.data[n * 3 + c];
        }
    }
    assert_close("sorted sum", &run1(&g, &ins, sorted), &[size, 3], &want);
}

/// The type rules of the sort composites: i32 ids, fewer than 2^24 ids and rows, an
/// order of one entry per id, starts of one entry per row and one more.
#[test]
fn scatter_sort_composites_check_their_operands() {
    let mut g = Graph::new();
    let f = g.input("f", &[4], F).expect("input");
    let big = g.input("big", &[1 << 24], DType::I32).expect("input");
    let x = g.input("ids", &[4], DType::I32).expect("input");
    let short = g.input("short", &[3], DType::I32).expect("input");
    let src = g.input("src", &[4, 2], F).expect("input");
    let ranks = |size| CompositeOp::ScatterRanks { size };
    assert!(g.composite(ranks(3), &[f]).is_err(), "float ids");
    assert!(g.composite(ranks(3), &[big]).is_err(), "2^24 ids");
    assert!(g.composite(ranks(1 << 24), &[x]).is_err(), "2^24 rows");
    assert!(g.composite(CompositeOp::ScatterOrder, &[big]).is_err());
    let starts = |size| CompositeOp::ScatterStarts { size };
    assert!(g.composite(starts(3), &[x, short]).is_err(), "order length");
    assert!(g.composite(starts(3), &[f, x]).is_err(), "float ids");
    assert!(g.composite(starts(1 << 24), &[x, x]).is_err(), "2^24 rows");
    let four = g.composite(starts(3), &[x, x]).expect("starts");
    assert_eq!(g.ty(four).shape, [4]);
    let sorted = CompositeOp::SortedScatterAdd { axis: 0, size: 3 };
    assert!(
        g.composite(sorted.clone(), &[src, x, short, four]).is_err(),
        "order length"
    );
    assert!(
        g.composite(sorted.clone(), &[src, short, x, four]).is_err(),
        "ids shape"
    );
    assert!(
        g.composite(sorted.clone(), &[src, x, x, short]).is_err(),
        "starts length"
    );
    assert!(
        g.composite(sorted.clone(), &[src, x, x]).is_err(),
        "no starts"
    );
    let r = g.composite(ranks(3), &[x]).expect("ranks");
    let o = g.composite(CompositeOp::ScatterOrder, &[r]).expect("order");
    let st = g.composite(starts(3), &[x, o]).expect("starts");
    let s = g.composite(sorted, &[src, x, o, st]).expect("sorted");
    assert_eq!(g.ty(s).shape, [3, 2]);
}
