//! Conformance cases of scaled-dot-product attention (flash-attention kernels): causal and
//! padding masks, multi-head and grouped-query heads.
//!
//! Each case is one shape `q [B, Hq, Tq, D]`, `k [B, Hkv, Tk, D]`, `v [B, Hkv, Tk, Dv]`
//! (uniform in [-1, 1)) with up to four outputs, one attention kernel each: no mask
//! (`plain`), `causal`, `padded` and `causal_padded`. The padding mask is
//! `max(raw, 0)` of a random i32 `raw [B, Tk]` in [-16, 15], so about half of the keys
//! are masked at random, and at T = 1 a whole batch row may be (a query that sees no key
//! must come out as zeros; the Tq > Tk causal case has such rows by construction). The
//! reference is the decomposition ([`tessera::compiler::graph::CompositeOp::decompose`])
//! on the f64 interpreter.
//!
//! Sizes: T = 1, 7, 100, 257 and 1024 (Tq == Tk), one Tq < Tk and one Tq > Tk causal
//! case; head dims 32, 64 and 80; Hq == Hkv and grouped-query heads (Hq = 4, Hkv = 2 and
//! Hq = 8, Hkv = 1); B = 2; Dv != D once; one case with non-contiguous (permuted)
//! operands.
//!
//! Every backend runs every case (Ascend C through the vector-only form of the kernel,
//! see `compiler/src/tile/ops/attention.rs`).

use super::{Dist, Table, Tol, EPS, F};
use tessera::compiler::DType;

/// The fewest keys per step of the kernels' key loop when `Tk >= 32` (`BN`: 32 or more
/// on the SIMT targets, lavapipe's 128 x 32 blocks included; 64 or 128 on Ascend C; the
/// tolerance counts one rescaling of the running sums per step, so fewer steps only
/// help).
const KEY_BLOCK: usize = 32;

/// Error bound of one attention output, absolute (|v| < 1), for head dim `d`, `tk` keys
/// and score scale `scale` (q, k, v uniform in [-1, 1)).
///
/// A score `s = scale * q.k` satisfies `|s| <= smax = scale * d`. Each unnormalised
/// weight `p_j = exp(s_j - m)` is off by a relative
/// `delta = (21 smax + 6 + 8 nb) u`, nb = ceil(tk / 32) key blocks:
/// - the dot product, `2 d u` absolute (the `dot_tol` bound), times the scale: 2 smax u;
/// - the scaling and the subtraction of the running max: u smax + 2 u smax;
/// - `exp` of an argument `|x| <= 2 smax`: (3 + 2|x|) ulp <= (6 + 8 smax) u (WGSL);
/// - the running max `m` is one of the computed scores (max is exact), so its own error
///   is a common factor of numerator and denominator and cancels; each rescaling by
///   `alpha = exp(m_old - m_new)` adds, per block, the `exp` error (6 + 4|dm|) u and a
///   rounding of each of `l * alpha` and `acc * alpha` (2u), with sum |dm| <= 2 smax:
///   (8 nb + 8 smax) u.
///
/// A weighted mean `sum p_j v_j / sum p_j` whose weights carry relative errors up to
/// `delta` moves by at most `2 delta max|v| < 2 delta`. The numerator's and the
/// denominator's sums over `tk` terms, each added in sequence (worst case; the
/// denominator's terms are positive, and `sum |p_j v_j| <= sum p_j`), add `tk u` each
/// relative to the denominator; the final reciprocal (2.5 ulp) and product: 6u.
/// Total: `(42 smax + 16 nb + 2 tk + 18) u`.
fn attention_tol(d: usize, tk: usize, scale: f64) -> Tol {
    let smax = scale * d as f64;
    let nb = tk.div_ceil(KEY_BLOCK) as f64;
    Tol::new(
        0.0,
        (42.0 * smax + 16.0 * nb + 2.0 * tk as f64 + 18.0) * EPS,
    )
}

/// One attention shape and the mask variants it is checked with.
struct Shape {
    b: usize,
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

/// Adds this family's cases to the table.
pub(super) fn add_cases(t: &mut Table) {
    #[rustfmt::skip]
    let shapes = [
        Shape { b: 2, hq: 4, hkv: 2, tq: 1, tk: 1, d: 32, dv: 32, variants: ALL_MASKS },
        Shape { b: 2, hq: 2, hkv: 2, tq: 7, tk: 7, d: 64, dv: 64, variants: ALL_MASKS },
        Shape { b: 2, hq: 8, hkv: 1, tq: 7, tk: 7, d: 80, dv: 32, variants: ALL_MASKS },
        Shape { b: 2, hq: 1, hkv: 1, tq: 100, tk: 100, d: 32, dv: 32, variants: ALL_MASKS },
        Shape { b: 2, hq: 4, hkv: 2, tq: 257, tk: 257, d: 80, dv: 80, variants: ALL_MASKS },
        Shape { b: 2, hq: 2, hkv: 1, tq: 1024, tk: 1024, d: 64, dv: 64, variants: MASKED },
        Shape { b: 2, hq: 4, hkv: 4, tq: 7, tk: 100, d: 32, dv: 32, variants: CAUSAL },
        Shape { b: 2, hq: 2, hkv: 1, tq: 100, tk: 7, d: 64, dv: 64, variants: CAUSAL },
    ];
    for s in shapes {
        let name = format!(
            "attention/b{}_hq{}_hkv{}_tq{}_tk{}_d{}_dv{}",
            s.b, s.hq, s.hkv, s.tq, s.tk, s.d, s.dv
        );
        t.case(name, &[("mask_raw", Dist::Uniform)], |g, o| {
            let q = g.input("q", &[s.b, s.hq, s.tq, s.d], F)?;
            let k = g.input("k", &[s.b, s.hkv, s.tk, s.d], F)?;
            let v = g.input("v", &[s.b, s.hkv, s.tk, s.dv], F)?;
            let mask = if s.variants.iter().any(|v| v.1) {
                let raw = g.input("mask_raw", &[s.b, s.tk], DType::I32)?;
                let zero = g.constant(0.0, &[], DType::I32)?;
                Some(g.max(raw, zero)?)
            } else {
                None
            };
            let scale = 1.0 / (s.d as f64).sqrt();
            let tol = attention_tol(s.d, s.tk, scale);
            for &(causal, padded) in s.variants {
                let m = if padded { mask } else { None };
                let y = g.attention(q, k, v, m, causal, Some(scale))?;
                o.add(variant_name(causal, padded), y, tol);
            }
            Ok(())
        });
    }

    // Non-contiguous operands and output, as in a transformer layer: q, k, v arrive as
    // `[B, T, H, D]` and are permuted to `[B, H, T, D]` (strided views the attention
    // kernel reads in place), the output is permuted back and its heads merged,
    // `[B, T, Hq * Dv]`.
    let (b, hq, hkv, tn, d) = (2, 4, 2, 100, 32);
    let name = format!("attention/views_b{b}_hq{hq}_hkv{hkv}_t{tn}_d{d}");
    t.case(name, &[("mask_raw", Dist::Uniform)], |g, o| {
        let q = g.input("q", &[b, tn, hq, d], F)?;
        let k = g.input("k", &[b, tn, hkv, d], F)?;
        let v = g.input("v", &[b, tn, hkv, d], F)?;
        let raw = g.input("mask_raw", &[b, tn], DType::I32)?;
        let zero = g.constant(0.0, &[], DType::I32)?;
        let mask = g.max(raw, zero)?;
        let (q, k, v) = (
            g.permute(q, &[0, 2, 1, 3])?,
            g.permute(k, &[0, 2, 1, 3])?,
            g.permute(v, &[0, 2, 1, 3])?,
        );
        let scale = 1.0 / (d as f64).sqrt();
        let tol = attention_tol(d, tn, scale);
        for (causal, padded) in [(true, false), (false, true)] {
            let m = if padded { Some(mask) } else { None };
            let y = g.attention(q, k, v, m, causal, Some(scale))?;
            let y = g.permute(y, &[0, 2, 1, 3])?;
            let y = g.reshape(y, &[b, tn, hq * d])?;
            o.add(variant_name(causal, padded), y, tol);
        }
        // As in a transformer layer: the merged heads feed the output projection (the
        // attention kernel stores through the permute, no copy kernel). |y| <= 1 (a convex
        // combination of v), so each of the k = hq * d products carries y's absolute
        // error times |w| < 1, plus the dot product's own 2ku.
        let w = g.input("w_proj", &[hq * d, 16], F)?;
        let y = g.attention(q, k, v, None, true, Some(scale))?;
        let y = g.permute(y, &[0, 2, 1, 3])?;
        let y = g.reshape(y, &[b * tn, hq * d])?;
        let kk = (hq * d) as f64;
        o.add(
            "causal_proj",
            g.matmul(y, w)?,
            Tol::new(0.0, kk * tol.atol + 2.0 * kk * EPS),
        );
        Ok(())
    });
}
