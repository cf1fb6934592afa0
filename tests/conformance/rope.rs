//! Conformance cases of rotary position embedding (interleaved and half-split layouts).
//!
//! One case per sequence length T in {1, 7, 100, 257}, each holding, for every head dim
//! D in {2, 32, 64, 80, 128} and both layouts, the rope of
//! - `x [T, D]` (contiguous, no leading axes),
//! - `x [B, H, T, D]` with B = 2, H = 3 (contiguous),
//! - `x [B, T, H, D]` permuted to `[B, H, T, D]` (a non-contiguous view, as when heads are
//!   split off a `[B, T, H*D]` projection),
//!
//! with `cos`, `sin` `[T, D/2]` inputs shared by the outputs of one D; at D = 64 also `x`
//! given as `[B, H, D, T]` and transposed (the D axis strided, T contiguous) and `cos` /
//! `sin` given as `[D/2, T]` and transposed. Every rope is one kernel.
//!
//! Tolerance (f32): each output element is `a c - b s` or `b c + a s`, two products and a
//! sum, each correctly rounded in f32 (u = 2^-24) on f32 inputs that the f64 oracle uses
//! exactly. With p = a c, q = b s: `fl(fl(p) - fl(q)) - (p - q)` is at most
//! `u (|p| + |q|)` from the products plus `u |p - q|` (to first order) from the sum; the
//! inputs are uniform in [-1, 1), so `|p| + |q| < 2`: `|err| <= 2u + u |want|`, i.e.
//! atol 2u, rtol u. No cancellation term can exceed it: the bound is absolute in the
//! products. (A fused multiply-add, as ptxas may contract to, drops one product rounding
//! and stays inside the bound.)
//!
//! M (wgpu, tile interpreter and Ascend C CPU alike): 60-64%.
//!
//! f16 storage (PTX, Ascend, and wgpu on a device with `shader-f16`; WGSL without it
//! refuses f16, as does the tile interpreter, which runs the `Target::wgsl()` plan; wgpu
//! stores bf16 as u32 word pairs): the same f32 computation on the f16 inputs, then
//! one rounding to f16 (2^-11 relative, round to nearest): `2u + u |want|` plus
//! `2^-11 (|want| + 2u + u |want|)`, i.e. rtol 2^-11 + 2u, atol 2u + 2^-10 u. The
//! smallest normal f16 is 2^-14, below which the rounding is absolute (2^-25): covered by
//! the atol only where |want| < 2^-14, so the atol gets 2^-25 added. bf16 storage: the
//! same with 2^-8 for 2^-11 (bf16 has f32's exponent range: no subnormal term). M (Ascend C
//! CPU): 99.7% (f16), 99.6% (bf16): the final rounding dominates and reaches its bound just
//! above a power of two, as a correctly rounded conversion does.
//!
//! Each case also compiles for PTX (ptxas sm_80 / sm_90, zero spills; at most 38
//! registers).

use super::{Table, Tol, EPS, F};
use tessera::compiler::DType;

/// Sequence lengths.
const TS: [usize; 4] = [1, 7, 100, 257];
/// Head dims (D = 2: one frequency).
const DS: [usize; 5] = [2, 32, 64, 80, 128];
/// Batch and heads of the rank-4 inputs.
const B: usize = 2;
const H: usize = 3;

/// The f32 tolerance: two products and a sum, correctly rounded (see the module doc).
fn f32_tol() -> Tol {
    Tol::new(EPS, 2.0 * EPS)
}

/// The f16-storage tolerance (see the module doc).
fn f16_tol() -> Tol {
    let h = 1.0 / f64::from(1u32 << 11);
    Tol::new(
        h + 2.0 * EPS,
        2.0 * EPS + 2.0 * h * EPS + 1.0 / f64::from(1u32 << 25),
    )
}

/// The bf16-storage tolerance (see the module doc).
fn bf16_tol() -> Tol {
    let h = 1.0 / f64::from(1u32 << 8);
    Tol::new(h + 2.0 * EPS, 2.0 * EPS + 2.0 * h * EPS)
}

fn layout(interleaved: bool) -> &'static str {
    if interleaved {
        "inter"
    } else {
        "half"
    }
}

/// Adds this family's cases to the table.
pub(super) fn add_cases(t: &mut Table) {
    let tol = f32_tol();
    for tt in TS {
        t.case(format!("rope/t{tt}"), &[], |g, o| {
            for d in DS {
                let half = d / 2;
                let cos = g.input(&format!("cos_d{d}"), &[tt, half], F)?;
                let sin = g.input(&format!("sin_d{d}"), &[tt, half], F)?;
                let x2 = g.input(&format!("x2_d{d}"), &[tt, d], F)?;
                let x4 = g.input(&format!("x4_d{d}"), &[B, H, tt, d], F)?;
                let xp = g.input(&format!("xp_d{d}"), &[B, tt, H, d], F)?;
                let xp = g.permute(xp, &[0, 2, 1, 3])?;
                for inter in [false, true] {
                    let l = layout(inter);
                    o.add(format!("{l}_d{d}_2d"), g.rope(x2, cos, sin, inter)?, tol);
                    o.add(format!("{l}_d{d}_4d"), g.rope(x4, cos, sin, inter)?, tol);
                    o.add(format!("{l}_d{d}_perm"), g.rope(xp, cos, sin, inter)?, tol);
                }
                if d == 64 {
                    // x with D strided (given [B, H, D, T]), cos / sin given [D/2, T].
                    let xt = g.input("xt_d64", &[B, H, d, tt], F)?;
                    let xt = g.permute(xt, &[0, 1, 3, 2])?;
                    let ct = g.input("cos_t_d64", &[half, tt], F)?;
                    let ct = g.permute(ct, &[1, 0])?;
                    let st = g.input("sin_t_d64", &[half, tt], F)?;
                    let st = g.permute(st, &[1, 0])?;
                    for inter in [false, true] {
                        let l = layout(inter);
                        o.add(
                            format!("{l}_d{d}_dstrided"),
                            g.rope(xt, cos, sin, inter)?,
                            tol,
                        );
                        o.add(
                            format!("{l}_d{d}_trig_transposed"),
                            g.rope(x4, ct, st, inter)?,
                            tol,
                        );
                    }
                }
            }
            Ok(())
        });
    }

    // f16 and bf16 storage, f32 arithmetic: the rank-4 layouts at D = 64 and 80. The
    // Ascend C lowering has no strided load of bf16 data (its gather compacts with
    // `WholeReduceSum`, float / half only), which the interleaved layout needs: those
    // outputs are a case of their own, refused there.
    let low_precision = [
        (
            DType::F16,
            "f16",
            f16_tol(),
            vec![false, true],
            // wgpu stores f16 when the device has `shader-f16` (lavapipe does).
            &["tile_interp"][..],
        ),
        (
            DType::BF16,
            "bf16",
            bf16_tol(),
            vec![false],
            // wgpu stores bf16 as u32 word pairs (backend/wgsl.rs).
            &["tile_interp"][..],
        ),
        (
            DType::BF16,
            "bf16_inter",
            bf16_tol(),
            vec![true],
            // wgpu stores bf16 as u32 word pairs (backend/wgsl.rs).
            &["tile_interp"][..],
        ),
    ];
    for (dtype, tag, tol, layouts, refused) in low_precision {
        for tt in [7, 257] {
            t.case(format!("rope_{tag}/t{tt}"), &[], |g, o| {
                for d in [64, 80] {
                    let half = d / 2;
                    let cos = g.input(&format!("cos_d{d}"), &[tt, half], dtype)?;
                    let sin = g.input(&format!("sin_d{d}"), &[tt, half], dtype)?;
                    let x4 = g.input(&format!("x4_d{d}"), &[B, H, tt, d], dtype)?;
                    let xp = g.input(&format!("xp_d{d}"), &[B, tt, H, d], dtype)?;
                    let xp = g.permute(xp, &[0, 2, 1, 3])?;
                    for &inter in &layouts {
                        let l = layout(inter);
                        o.add(format!("{l}_d{d}_4d"), g.rope(x4, cos, sin, inter)?, tol);
                        o.add(format!("{l}_d{d}_perm"), g.rope(xp, cos, sin, inter)?, tol);
                    }
                }
                Ok(())
            });
            if let Some(c) = t.0.last_mut() {
                c.refused_by = refused;
            }
        }
    }
}
