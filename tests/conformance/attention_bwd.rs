//! Conformance cases of attention's backward pass (the flash-attention backward kernels
//! of `compiler/src/tile/ops/attention_bwd.rs`): `dq`, `dk`, `dv` of
//! `attention(q, k, v)` for an output adjoint `w`, through
//! [`tessera::compiler::Graph::attention_backward`] (statistics + three gradient ops),
//! against the f64 interpreter (which evaluates the ops' decompositions).
//!
//! Each case is one shape `q [B, Hq, Tq, D]`, `k [B, Hkv, Tk, D]`, `v [B, Hkv, Tk, Dv]`,
//! `w [B, Hq, Tq, Dv]` (uniform in [-1, 1)), B = 2, with the forward (its own kernel on
//! the devices) and the backward for several mask variants (`plain`, `causal`, `padded`,
//! `causal_padded`), three outputs each. The padding mask is a length mask: batch `b`
//! keeps keys `j < Tk - b * ceil(Tk / 2)` (so at Tk = 1 the second batch row sees no key
//! at all: its gradients must be 0, as the forward's output is), built in the graph as
//! `clamp(len_b - j, 0, 1)` in i32.
//!
//! Sizes: T = 1, 7, 257 and 1024 (Tq == Tk), one Tq < Tk and one Tq > Tk causal case (rows that
//! see no key), head dims 32, 64, 80 (Dv != D once), Hq == Hkv and grouped-query heads
//! (Hq = 4, Hkv = 2 and Hq = 8, Hkv = 1).
//!
//! Every backend runs every case (Ascend C through the vector-only form of the kernels,
//! see `compiler/src/tile/ops/attention_bwd.rs`).
//!
//! # Tolerances
//!
//! The score scale is `1 / D` (not the usual `1 / sqrt(D)`; the kernels treat it as a
//! plain parameter): with |q|, |k| < 1 every score obeys `|s| <= 1`, so every softmax
//! weight lies within `e^2` of uniform, `P_ij <= e^2 / n_i` with `n_i` the keys query
//! `i` sees, and the bounds below are deterministic. With `u = 2^-24`:
//!
//! - `P` is recomputed as `exp(S - L)`: the score (dot product 2 D u scale <= 2u, the
//!   scaling u), `L` from the statistics kernel (the forward's online max / sum
//!   analysis with `smax = 1`: (21 + 6 + 8 nb) u per weight, nb key blocks of 32, plus
//!   `tk u` for the sum, `log` 8u, the add 2u), the subtraction (3u) and `exp` of
//!   `|x| <= 2 + ln tk` ((6 + 4|x|) u): `dP_rel = (58 + 8 nb + tk + 5 ln tk) u`.
//! - The column mass of key `j` (what `dk`, `dv` sum over): `C = sum_{h, i} P_ij <= e^2
//!   G H` with `G = Hq / Hkv` and `H = sum_i 1 / n_i` (computed for the case's masks;
//!   `~ln Tq` when causal, `Tq / len` when padded) and `kmin` the fewest keys a query
//!   that sees any key sees.
//! - `dv_j = sum P_ij w_i` (|w| < 1): `C dP_rel` from the weights, plus the products'
//!   roundings and the sum of `G Tq` terms of magnitude `<= e^2 / kmin` (the
//!   sequential-order bound of `sum_tol`, 3 n u per unit term):
//!   `eps_dv = C (dP_rel + u) + 3 G Tq u e^2 / kmin`.
//! - `delta_i = w_i . out_i`: the forward's output error (`attention_tol` of
//!   attention.rs with `smax = 1`: `(60 + 16 nb + 2 tk) u`, absolute) over `Dv` terms
//!   plus the dot product (2 Dv u): `eps_delta = Dv (62 + 16 nb + 2 tk) u`.
//! - `dS_ij = P_ij (dP_ij - delta_i)` with `|dP_ij|, |delta_i| <= Dv`: per unit of `P`,
//!   `2 Dv dP_rel + 2 Dv u` (the dot product `w_i . v_j`) `+ eps_delta + 2 Dv u` (the
//!   subtraction and products).
//! - `dk_j = scale sum_{h, i} dS_ij q_i`: `eps_dk = scale (C e_s + 3 G Tq u 2 Dv e^2 /
//!   kmin)`, `e_s` the per-unit error of `dS` above; `dq_i = scale sum_j dS_ij k_j`
//!   (row mass 1): `eps_dq = scale (e_s + 3 tk u 2 Dv e^2 / kmin)`.
//!
//! All absolute (the gradients cancel: no relative part). These are worst-case bounds
//! (every rounding aligned, every weight at its `e^2 / n_i` ceiling, sequential-order
//! sums), so the measured errors use a small share of them: M (worst over the cases,
//! wgpu / tile interpreter / Ascend C CPU): dq 1.8e-8 / 1.5e-8 / 6.7e-9, dk 1.3e-7 /
//! 1.4e-7 / 2.3e-8, dv 3.5e-6 / 3.5e-6 / 9.4e-7, at most 0.3% of the tolerance. A
//! structural error (a mask, a head mapping, a missing `delta` or scale) moves the
//! gradients by their own size, which the tolerances stay below at T <= 7.

use super::{Table, Tol, EPS, F};
use tessera::compiler::{DType, Graph, GraphError, NodeId};

const E2: f64 = std::f64::consts::E * std::f64::consts::E;

/// Key block of the kernels (the bounds count blocks of 32; fewer blocks only help).
const KEY_BLOCK: usize = 32;

/// The (dq, dk, dv) tolerances of one shape, derived in the module doc. `h`: the largest
/// `sum_i 1 / n_i` over batch rows ([`mask_stats`]), `kmin` the fewest keys a query that
/// sees any key sees.
fn grad_tols(
    g: usize,
    tq: usize,
    tk: usize,
    dv: usize,
    (h, kmin): (f64, usize),
    scale: f64,
) -> [Tol; 3] {
    let u = EPS;
    let (gf, tqf, tkf, dvf) = (g as f64, tq as f64, tk as f64, dv as f64);
    let kmin = kmin.max(1) as f64;
    let nb = tk.div_ceil(KEY_BLOCK) as f64;
    let dp_rel = (58.0 + 8.0 * nb + tkf + 5.0 * tkf.ln()) * u;
    let mass = E2 * gf * h;
    let eps_dv = mass * (dp_rel + u) + 3.0 * gf * tqf * u * E2 / kmin;
    let eps_delta = dvf * (62.0 + 16.0 * nb + 2.0 * tkf) * u;
    let e_s = 2.0 * dvf * dp_rel + 4.0 * dvf * u + eps_delta;
    let eps_dk = scale * (mass * e_s + 3.0 * gf * tqf * u * 2.0 * dvf * E2 / kmin);
    let eps_dq = scale * (e_s + 3.0 * tkf * u * 2.0 * dvf * E2 / kmin);
    [
        Tol::new(0.0, eps_dq),
        Tol::new(0.0, eps_dk),
        Tol::new(0.0, eps_dv),
    ]
}

/// One shape and its mask variants.
struct Shape {
    hq: usize,
    hkv: usize,
    tq: usize,
    tk: usize,
    d: usize,
    dv: usize,
    /// (causal, padded) variants.
    variants: &'static [(bool, bool)],
}

const ALL_MASKS: &[(bool, bool)] = &[(false, false), (true, false), (false, true), (true, true)];
const MASKED: &[(bool, bool)] = &[(true, false), (false, true)];
const CAUSAL: &[(bool, bool)] = &[(true, false), (true, true)];

fn variant_name(causal: bool, padded: bool) -> &'static str {
    match (causal, padded) {
        (false, false) => "plain",
        (true, false) => "causal",
        (false, true) => "padded",
        (true, true) => "causal_padded",
    }
}

const B: usize = 2;

/// The length mask `[B, Tk]` (i32 0 / 1): batch `b` keeps keys `j < Tk - b ceil(Tk/2)`.
fn length_mask(g: &mut Graph, tk: usize) -> Result<NodeId, GraphError> {
    let i = DType::I32;
    let j = g.iota(&[B, tk], 1, i)?;
    let bi = g.iota(&[B, tk], 0, i)?;
    let c = g.constant(tk.div_ceil(2) as f64, &[], i)?;
    let cut = g.mul(bi, c)?;
    let tkc = g.constant(tk as f64, &[], i)?;
    let len = g.sub(tkc, cut)?;
    let diff = g.sub(len, j)?;
    let zero = g.constant(0.0, &[], i)?;
    let one = g.constant(1.0, &[], i)?;
    let m = g.min(diff, one)?;
    g.max(m, zero)
}

/// For a variant: the largest `H = sum_i 1 / n_i` over the batch rows (`n_i` the keys
/// query `i` sees; queries that see none left out), which bounds the column mass
/// `sum_i P_ij <= e^2 H` of every key, and the fewest keys `kmin` a query that sees any
/// key sees.
fn mask_stats(tq: usize, tk: usize, causal: bool, padded: bool) -> (f64, usize) {
    let mut h_max = 0.0f64;
    let mut kmin = usize::MAX;
    for b in 0..B {
        let len = if padded { tk - b * tk.div_ceil(2) } else { tk };
        let mut h = 0.0;
        for i in 0..tq {
            let n = if causal {
                // Keys j <= i + Tk - Tq.
                (i as i64 + 1 + tk as i64 - tq as i64).clamp(0, len as i64) as usize
            } else {
                len
            };
            if n > 0 {
                h += 1.0 / n as f64;
                kmin = kmin.min(n);
            }
        }
        h_max = h_max.max(h);
    }
    (h_max, kmin.min(tk).max(1))
}

/// Adds this family's cases to the table.
pub(super) fn add_cases(t: &mut Table) {
    #[rustfmt::skip]
    let shapes = [
        Shape { hq: 4, hkv: 2, tq: 1, tk: 1, d: 32, dv: 32, variants: ALL_MASKS },
        Shape { hq: 2, hkv: 2, tq: 7, tk: 7, d: 64, dv: 64, variants: ALL_MASKS },
        Shape { hq: 8, hkv: 1, tq: 7, tk: 7, d: 80, dv: 32, variants: ALL_MASKS },
        Shape { hq: 4, hkv: 2, tq: 257, tk: 257, d: 80, dv: 80, variants: MASKED },
        Shape { hq: 2, hkv: 2, tq: 257, tk: 257, d: 32, dv: 32, variants: &[(false, false)] },
        Shape { hq: 2, hkv: 1, tq: 1024, tk: 1024, d: 64, dv: 64, variants: &[(true, true)] },
        Shape { hq: 4, hkv: 4, tq: 7, tk: 100, d: 32, dv: 32, variants: CAUSAL },
        Shape { hq: 2, hkv: 1, tq: 100, tk: 7, d: 64, dv: 64, variants: CAUSAL },
    ];
    for s in shapes {
        let name = format!(
            "attention_bwd/b{B}_hq{}_hkv{}_tq{}_tk{}_d{}_dv{}",
            s.hq, s.hkv, s.tq, s.tk, s.d, s.dv
        );
        t.case(name, &[], |g, o| {
            let q = g.input("q", &[B, s.hq, s.tq, s.d], F)?;
            let k = g.input("k", &[B, s.hkv, s.tk, s.d], F)?;
            let v = g.input("v", &[B, s.hkv, s.tk, s.dv], F)?;
            let w = g.input("w", &[B, s.hq, s.tq, s.dv], F)?;
            let mask = if s.variants.iter().any(|v| v.1) {
                Some(length_mask(g, s.tk)?)
            } else {
                None
            };
            let scale = 1.0 / s.d as f64;
            for &(causal, padded) in s.variants {
                let m = if padded { mask } else { None };
                let out = g.attention(q, k, v, m, causal, Some(scale))?;
                let grads = g.attention_backward(q, k, v, out, w, m, causal, scale, [true; 3])?;
                let ms = mask_stats(s.tq, s.tk, causal, padded);
                let tols = grad_tols(s.hq / s.hkv, s.tq, s.tk, s.dv, ms, scale);
                let vn = variant_name(causal, padded);
                for ((gr, tol), wrt) in grads.into_iter().zip(tols).zip(["dq", "dk", "dv"]) {
                    if let Some(gr) = gr {
                        o.add(format!("{vn}_{wrt}"), gr, tol);
                    }
                }
            }
            Ok(())
        });
    }

    // Non-contiguous operands and gradients, as in a transformer layer: q, k, v and the
    // adjoint arrive as `[B, T, H, D]` and are permuted to `[B, H, T, D]` (strided views
    // the kernels read in place); the gradients are permuted back and their heads
    // merged, `[B, T, H * D]` (stored through the inverse views).
    let (hq, hkv, tn, d) = (4, 2, 100, 32);
    let name = format!("attention_bwd/views_b{B}_hq{hq}_hkv{hkv}_t{tn}_d{d}");
    t.case(name, &[], |g, o| {
        let q = g.input("q", &[B, tn, hq, d], F)?;
        let k = g.input("k", &[B, tn, hkv, d], F)?;
        let v = g.input("v", &[B, tn, hkv, d], F)?;
        let w = g.input("w", &[B, tn, hq, d], F)?;
        let mask = length_mask(g, tn)?;
        let p = [0, 2, 1, 3];
        let (q, k, v, w) = (
            g.permute(q, &p)?,
            g.permute(k, &p)?,
            g.permute(v, &p)?,
            g.permute(w, &p)?,
        );
        let scale = 1.0 / d as f64;
        for (causal, padded) in [(true, false), (false, true)] {
            let m = if padded { Some(mask) } else { None };
            let out = g.attention(q, k, v, m, causal, Some(scale))?;
            let grads = g.attention_backward(q, k, v, out, w, m, causal, scale, [true; 3])?;
            let ms = mask_stats(tn, tn, causal, padded);
            let tols = grad_tols(hq / hkv, tn, tn, d, ms, scale);
            let vn = variant_name(causal, padded);
            for ((gr, tol), (wrt, h)) in
                grads
                    .into_iter()
                    .zip(tols)
                    .zip([("dq", hq), ("dk", hkv), ("dv", hkv)])
            {
                if let Some(gr) = gr {
                    let y = g.permute(gr, &p)?;
                    let y = g.reshape(y, &[B, tn, h * d])?;
                    o.add(format!("{vn}_{wrt}"), y, tol);
                }
            }
        }
        Ok(())
    });
}
