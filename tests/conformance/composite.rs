//! Conformance cases of composite ops: softmax, log-softmax, layer/RMS norm, GELU, SiLU,
//! SwiGLU, cross-entropy (RoPE has a module of its own).
//!
//! Row-wise composites run over rows of 1, 7, 100, 257, 1000 and 4097 elements (one row
//! kernel each: the rows up to the target's chunk are loaded once, longer rows are
//! streamed in chunks plus a tail), with batch shapes of rank 1 to 3, a permuted
//! (non-contiguous) input, affine and plain norms and several eps values. Cross-entropy
//! runs over vocabularies of 1 to 50257 with an ignore index that occurs in the targets.
//!
//! Tolerances are derived at each case from the numerics stated at the top of
//! `conformance.rs` (u = 2^-24, WGSL's accuracy table). One more ingredient here: the
//! relative error of a sum of `n` positive terms, [`pos_sum_rel`].

use super::{Dist, Table, Tol, EPS, F};
use tessera::compiler::graph::CompositeOp;
use tessera::compiler::DType;

/// Row lengths of the row-wise composites.
const ROWS: [usize; 6] = [1, 7, 100, 257, 1000, 4097];

/// Relative error of a sum of `n` positive f32 terms (each exact), in any order: at most
/// `(n - 1) u` (the classical bound), and statistically much less: in the sequential
/// order, partial sum `k` carries a rounding of at most `u s_k` with `s_k ~ (k / n) s`,
/// roughly uniform, so the relative error has a standard deviation of `u sqrt(n) / 3`;
/// 8 standard deviations, `8 sqrt(n) u / 3`, is the bound used past the classical one (as
/// for the softmax rows of `fused_reduce`). 4097 terms: 171u = 1.0e-5.
fn pos_sum_rel(n: usize) -> f64 {
    let n = n.max(1) as f64;
    ((n - 1.0) * EPS).min(8.0 * n.sqrt() * EPS / 3.0)
}

/// WGSL `log` absolute error inside [0.5, 2] (3 ulp relative outside).
const LOG_ABS: f64 = 1.0 / (1u64 << 21) as f64;

/// Adds this family's cases to the table.
pub(super) fn add_cases(t: &mut Table) {
    for n in ROWS {
        softmax_case(t, n);
        norm_case(t, n);
        gelu_case(t, n);
    }
    matmul_gelu_case(t);
    for (v, tokens, ignore_in_range) in [
        (1, 5, false),
        (7, 37, true),
        (100, 37, true),
        (257, 37, true),
        (1000, 37, true),
        (4097, 37, true),
        (50257, 5, false),
    ] {
        cross_entropy_case(t, v, tokens, ignore_in_range);
    }
}

/// Softmax and log-softmax over rows of `n`: rank 1, 2 and 3 inputs and a permuted one.
///
/// softmax `exp(x - m) / s`: `x - m` in (-2, 0] is rounded (2u absolute, i.e. 2u
/// relative after exp), exp itself is within 3 + 2 * 2 = 7 ulp (14u); every term of `s`
/// carries that 16u, and its sum adds [`pos_sum_rel`]; `1 / s` 2.5 ulp (5u), the product
/// 1u: 16u + 16u + 5u + 1u + pos_sum_rel(n) = 38u + pos_sum_rel(n) relative.
///
/// log-softmax `(x - m) - log s`: `x - m` rounded (u |x - m|), `log s` (s in [1, n]) has
/// the absolute error `s` carries (16u + pos_sum_rel(n)) plus log's own (6u |log s|, or
/// 2^-21 absolute in [0.5, 2]), the difference u |y|; as |x - m| and log s are both at
/// most |y|: 8u relative + (16u + pos_sum_rel(n) + 2^-21) absolute.
fn softmax_case(t: &mut Table, n: usize) {
    let sm = Tol::new(38.0 * EPS + pos_sum_rel(n), 0.0);
    let lsm = Tol::new(8.0 * EPS, 16.0 * EPS + pos_sum_rel(n) + LOG_ABS);
    t.case(format!("softmax/n{n}"), &[], |g, o| {
        let x1 = g.input("x1", &[n], F)?;
        o.add("softmax_r1", g.softmax(x1)?, sm);
        let x2 = g.input("x2", &[3, n], F)?;
        o.add("log_softmax_r2", g.log_softmax(x2)?, lsm);
        let x3 = g.input("x3", &[2, 3, n], F)?;
        o.add("softmax_r3", g.softmax(x3)?, sm);
        // Rows with stride 1 apart, elements 3 apart.
        let xp = g.input("xp", &[n, 3], F)?;
        let xt = g.permute(xp, &[1, 0])?;
        o.add("softmax_permuted", g.softmax(xt)?, sm);
        o.add("log_softmax_permuted", g.log_softmax(xt)?, lsm);
        Ok(())
    });
}

/// Layer norm and RMS norm over rows of `n` (x uniform in [-1, 1), gamma and beta too).
///
/// RMS norm `x * r`, `r = 1 / sqrt(mean(x^2) + eps)`: the mean square is a positive sum
/// (squares 1u, sum pos_sum_rel(n), the 1/n scaling 2u), plus eps 1u; sqrt (as 1 /
/// inverseSqrt: 9u) halves the input's error; the division 5u, the product 1u: (4u +
/// pos_sum_rel) / 2 + 15u = 17u + pos_sum_rel / 2 relative; gamma's product one more u.
///
/// Layer norm `(x - mean) * r`: the mean of zero-mean terms has an absolute error of
/// sum_tol(n) / n = 3u plus its own rounding (u |mean| < u): `d = x - mean` is off by
/// 4u + u |d|. The variance of the two-pass form is a positive sum of `d^2` (d's rounding
/// 2u, the square 1u, the sum pos_sum_rel, 1/n 2u; the mean's error is second order),
/// then `r` as for RMS norm: 6u + pos_sum_rel / 2 + 14u; with d's rounding and the
/// product: 22u + pos_sum_rel(n) / 2 relative, plus the mean's 4u times `r`. `r` is at
/// most 10 here (a row variance above 0.01: for 7 uniforms below it has probability
/// ~1e-4, for longer rows far less): 40u absolute. With gamma and beta, `y * g + b` may
/// cancel: |g| < 1 keeps y's error, |y| is at most sqrt(n - 1) (a standardized row)
/// and, for n >= 100 (variance above 0.2 in every row), at most 2 / sqrt(0.2) < 5; the
/// product and sum round 2u of values below 6: (22u + pos_sum_rel / 2) * min(sqrt(n-1),
/// 5) + 40u + 12u absolute.
fn norm_case(t: &mut Table, n: usize) {
    let sr = pos_sum_rel(n);
    let rms = Tol::new(17.0 * EPS + sr / 2.0, 0.0);
    let rms_affine = Tol::new(18.0 * EPS + sr / 2.0, 0.0);
    let ln = Tol::new(22.0 * EPS + sr / 2.0, 40.0 * EPS);
    let ymax = ((n.max(1) - 1) as f64).sqrt().min(5.0);
    let ln_affine = Tol::new(0.0, (22.0 * EPS + sr / 2.0) * ymax + 52.0 * EPS);
    t.case(format!("norm/n{n}"), &[], |g, o| {
        let x = g.input("lx", &[3, n], F)?;
        let gamma = g.param("lg", &[n], F)?;
        let beta = g.param("lb", &[n], F)?;
        o.add(
            "layer_norm_affine",
            g.layer_norm(x, Some((gamma, beta)), 1e-5)?,
            ln_affine,
        );
        let x = g.input("px", &[2, 2, n], F)?;
        o.add("layer_norm", g.layer_norm(x, None, 1e-6)?, ln);
        // A permuted input (elements 2 apart) and a large eps.
        let x = g.input("tx", &[n, 2], F)?;
        let xt = g.permute(x, &[1, 0])?;
        o.add("layer_norm_permuted", g.layer_norm(xt, None, 0.1)?, ln);
        let x = g.input("rx", &[3, n], F)?;
        let gamma = g.param("rg", &[n], F)?;
        o.add(
            "rms_norm_affine",
            g.rms_norm(x, Some(gamma), 1e-6)?,
            rms_affine,
        );
        let x = g.input("sx", &[n], F)?;
        o.add("rms_norm", g.rms_norm(x, None, 1e-5)?, rms);
        let x = g.input("qx", &[n, 3], F)?;
        let xt = g.permute(x, &[1, 0])?;
        o.add("rms_norm_permuted", g.rms_norm(xt, None, 0.0)?, rms);
        Ok(())
    });
}

/// The elementwise composites on [n] (x, y uniform in [-1, 1)), fused into elementwise
/// kernels named after them.
///
/// GELU (erf) `x (1 + erf(x / sqrt 2)) / 2`: the argument's rounding (u), erf's 8u
/// relative + 1.5e-7 absolute (|erf| < 0.69), the sum's u * 1.69: `1 + erf` is off by
/// 1.5e-7 + 8u; times |x| / 2 <= 1/2, and the products' roundings (u; the halving is
/// exact): 2u relative + 7.5e-8 + 4u absolute.
///
/// GELU (tanh) `x (1 + tanh(a)) / 2`, `a = sqrt(2/pi) (x + 0.044715 x^3)`, |a| < 0.84:
/// a is off by ~3u relative (2.5u absolute), which tanh (slope <= 1) passes on; tanh's
/// own 10u absolute + 17u relative (|tanh| < 0.69: 12u): 24.5u, plus the sum's 1.7u:
/// 26u absolute on `1 + tanh`; times |x| / 2: 13u absolute, the products 2u relative.
///
/// SiLU `x sigmoid(x)`: sigmoid's 24u relative (see the unary cases) and the product:
/// 25u. SwiGLU `silu(g) * u`: one more product, 26u.
fn gelu_case(t: &mut Table, n: usize) {
    t.case(format!("gelu/n{n}"), &[], |g, o| {
        let x = g.input("x", &[n], F)?;
        let y = g.input("y", &[n], F)?;
        o.add(
            "gelu",
            g.gelu(x, false)?,
            Tol::new(2.0 * EPS, 7.5e-8 + 4.0 * EPS),
        );
        o.add(
            "gelu_tanh",
            g.gelu(x, true)?,
            Tol::new(2.0 * EPS, 13.0 * EPS),
        );
        o.add("silu", g.silu(x)?, Tol::new(25.0 * EPS, 0.0));
        o.add("swiglu", g.swiglu(x, y)?, Tol::new(26.0 * EPS, 0.0));
        Ok(())
    });
}

/// GELU in a matmul epilogue (`matmul_bias_gelu_*`): the pre-activation carries the dot
/// product's dot_tol(K) plus the bias add's rounding; GELU's slope is at most 1.13, and
/// its own error is as on [n] but the erf's absolute 1.5e-7 is scaled by |z| / 2 (|z|
/// up to ~10 here): 1e-5 relative + 1.13 dot_tol(K) + 1e-6 absolute (as the bias_tanh
/// case).
fn matmul_gelu_case(t: &mut Table) {
    t.case("gelu/matmul_bias_gelu".into(), &[], |g, o| {
        for (i, (m, k, n, tanh)) in [(17, 64, 33, false), (7, 129, 64, true)]
            .into_iter()
            .enumerate()
        {
            let x = g.input(&format!("x{i}"), &[m, k], F)?;
            let w = g.param(&format!("w{i}"), &[k, n], F)?;
            let b = g.param(&format!("b{i}"), &[n], F)?;
            let h = g.matmul(x, w)?;
            let h = g.add(h, b)?;
            let tol = Tol::new(1e-5, 1.13 * super::dot_tol(k).atol + 1e-6);
            let name = if tanh { "gelu_tanh" } else { "gelu" };
            o.add(format!("{name}_m{m}k{k}n{n}"), g.gelu(h, tanh)?, tol);
        }
        Ok(())
    });
}

/// Cross-entropy over `tokens` rows of `v` logits (uniform in [-1, 1)), per token and
/// the mean. Targets: an i32 input `t` drawn with `Dist::Positive` (|r| + 0.1 truncated:
/// 0..=16), spread over the vocabulary as `min(t * c, v - 1)` with `c = ceil(v / 16)`;
/// the ignore index is the first token's target (so it occurs), or -100 (outside the
/// vocabulary) for 1 and 50257 classes. The logits of the 1000-class case are also read through a permutation.
///
/// Per token `(m - x_t) + log s`: `m - x_t` in [0, 2) is rounded (2u), `log s` (s in
/// [1, v]) carries the sum's relative error as an absolute one, 16u (exp, as for
/// softmax) + pos_sum_rel(v), plus log's own 6u |log s| (or 2^-21 in [0.5, 2]), the sum
/// u |loss|; log s <= loss: 7u relative + (18u + pos_sum_rel(v) + 2^-21) absolute.
/// Mean: every loss's error as above, the positive sum of the losses pos_sum_rel(tokens),
/// the division by the (exact) count 5u: (12u + pos_sum_rel(tokens)) relative, the same
/// absolute part.
fn cross_entropy_case(t: &mut Table, v: usize, tokens: usize, ignore_in_range: bool) {
    let c = v.div_ceil(16).max(1);
    let target = |r: f64| ((r as i64) * c as i64).min(v as i64 - 1);
    let name = format!("cross_entropy/v{v}");
    // The inputs depend only on the case and input names: build once to read the first
    // token's target, then build the case with that target as the ignore index.
    cross_entropy_graph(t, &name, v, tokens, -100, c);
    if ignore_in_range {
        let case = t.0.pop().expect("the case was just added");
        let ignore = case
            .inputs()
            .get("t")
            .and_then(|raw| raw.data.first().copied())
            .map_or(0, target);
        cross_entropy_graph(t, &name, v, tokens, ignore, c);
    }
}

fn cross_entropy_graph(t: &mut Table, name: &str, v: usize, tokens: usize, ignore: i64, c: usize) {
    let atol = 18.0 * EPS + pos_sum_rel(v) + LOG_ABS;
    let tok = Tol::new(7.0 * EPS, atol);
    let mean = Tol::new(12.0 * EPS + pos_sum_rel(tokens), atol);
    t.case(name.to_string(), &[("t", Dist::Positive)], |g, o| {
        let logits = g.input("logits", &[tokens, v], F)?;
        let raw = g.input("t", &[tokens], DType::I32)?;
        let scale = g.constant(c as f64, &[], DType::I32)?;
        let spread = g.mul(raw, scale)?;
        let last = g.constant((v - 1) as f64, &[], DType::I32)?;
        let targets = g.min(spread, last)?;
        let token = g.composite(
            CompositeOp::TokenCrossEntropy {
                ignore_index: ignore,
            },
            &[logits, targets],
        )?;
        o.add("tokens", token, tok);
        o.add("mean", g.cross_entropy(logits, targets, ignore)?, mean);
        if v == 1000 {
            let lt = g.input("logits_t", &[v, tokens], F)?;
            let lp = g.permute(lt, &[1, 0])?;
            let token = g.composite(
                CompositeOp::TokenCrossEntropy {
                    ignore_index: ignore,
                },
                &[lp, targets],
            )?;
            o.add("tokens_permuted", token, tok);
            o.add("mean_permuted", g.cross_entropy(lp, targets, ignore)?, mean);
        }
        Ok(())
    });
}
