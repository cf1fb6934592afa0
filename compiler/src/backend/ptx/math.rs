//! Multi-instruction f32 sequences for `exp`, `log` and `tanh`, and their accuracy.
//!
//! PTX has only approximate transcendental instructions (`ex2.approx`, `lg2.approx`,
//! `tanh.approx`); these sequences wrap them for accuracy close to a libm's. Each
//! sequence is mirrored step by step by an f32 emulation in this file's tests, which
//! measures its error over a dense sweep against f64 (with `ex2.approx` taken as
//! correctly rounded; the hardware's own error, documented by NVIDIA as about 2 ulp for
//! `exp2f`, comes on top):
//!
//! | op   | emulated max error (sweep)  | on hardware (adding the `approx` ops' error) |
//! |------|-----------------------------|----------------------------------------------|
//! | exp  | 1.0 ulp                     | about 3 ulp (`ex2.approx.f32`, ~2 ulp)       |
//! | log  | 0.78 ulp                    | same (`lg2.approx` only for 0, <0, inf, NaN) |
//! | tanh | 1.5e-7 relative (~2.5 ulp)  | below 5e-7 relative (`ex2`, `rcp.approx`)    |
//!
//! (`tanh.approx.f32` would be about 2^-11 = 5e-4 relative; `lg2.approx.f32 * ln 2` has
//! an absolute, not relative, error bound, so large relative error near x = 1.)
//!
//! Special values: `exp(-inf) = 0`, `exp(+inf) = +inf`, `exp(NaN) = NaN`; `log(0) = -inf`,
//! `log(x<0) = NaN`, `log(+inf) = +inf`, subnormal `x` handled; `tanh(±inf) = ±1`,
//! `tanh(-0) = -0`, NaN propagates.

use super::{Class, Printer};

/// `log2(e)` rounded to f32.
pub(super) const L2E_HI: u32 = 0x3FB8_AA3B;
/// `log2(e) - L2E_HI`.
pub(super) const L2E_LO: u32 = 0x32A5_7060;
/// `ln(2)` rounded to f32.
pub(super) const LN2: u32 = 0x3F31_7218;
/// `ln(2)` with 12 trailing zero bits (so `e * LN2_HI` is exact for |e| < 2^12).
pub(super) const LN2_HI: u32 = 0x3F31_7200;
/// `-(ln(2) - LN2_HI)`.
pub(super) const NEG_LN2_LO: u32 = 0xB5BF_BE8E;
/// `2 * log2(e)`.
pub(super) const TWO_L2E: u32 = 0x4038_AA3B;
/// exp's input clamp: below, the result rounds to 0 (`exp(-104) < 2^-150`).
pub(super) const EXP_MIN: u32 = 0xC2D0_0000; // -104.0
/// exp's input clamp: above, the result overflows (`exp(89) > f32::MAX`).
pub(super) const EXP_MAX: u32 = 0x42B2_0000; // 89.0
/// Bits of `sqrt(1/2)` rounded to f32: log's mantissa lies in `[sqrt(1/2), sqrt(2))`.
pub(super) const SQRT_HALF_BITS: u32 = 0x3F35_04F3;
/// `2/3, 2/5, 2/7, 2/9`: the atanh series of log's reduced argument.
pub(super) const LOG_SERIES: [u32; 4] = [0x3F2A_AAAB, 0x3ECC_CCCD, 0x3E92_4925, 0x3E63_8E39];
/// tanh switches from the polynomial to the exponential form at |x| = 0.625.
pub(super) const TANH_SMALL: u32 = 0x3F20_0000;
/// tanh(x) = x + x^3 P(x^2) on |x| < 0.625; P's coefficients, highest degree first
/// (a Chebyshev fit of (tanh(x) - x) / x^3 in x^2 on [0, 0.390625], degree 5).
pub(super) const TANH_POLY: [u32; 6] = [
    0x3B16_41E0,
    0xBC08_B50B,
    0x3CB2_54BB,
    0xBD5D_0462,
    0x3E08_8875,
    0xBEAA_AAAB,
];

/// An f32 immediate from its bits.
fn imm(bits: u32) -> String {
    format!("0f{bits:08X}")
}

/// `d = exp(x)`: `x * log2(e) = hi + lo` exactly enough (an fma recovers the product's
/// rounding error), `exp(x) = e + e * (lo * ln 2)` with `e = ex2.approx(hi)`, and
/// `exp(x) = e` where `e` overflowed (the fma would give NaN there; within about one ulp
/// of `f32::MAX` this returns +inf). The input is clamped to [-104, 89] with
/// NaN-propagating min/max, so infinities give 0 / inf, not NaN.
pub(super) fn exp(p: &mut Printer, d: &str, x: &str) {
    let xc = p.fresh(Class::F32);
    let hi = p.fresh(Class::F32);
    let nhi = p.fresh(Class::F32);
    let lo = p.fresh(Class::F32);
    let e = p.fresh(Class::F32);
    let u = p.fresh(Class::F32);
    let r = p.fresh(Class::F32);
    let inf = p.fresh(Class::Pred);
    p.comment(&format!("{d} = exp({x})"));
    p.ins(&format!("max.NaN.f32 {xc}, {x}, {}", imm(EXP_MIN)));
    p.ins(&format!("min.NaN.f32 {xc}, {xc}, {}", imm(EXP_MAX)));
    p.ins(&format!("mul.rn.f32 {hi}, {xc}, {}", imm(L2E_HI)));
    p.ins(&format!("neg.f32 {nhi}, {hi}"));
    p.ins(&format!("fma.rn.f32 {lo}, {xc}, {}, {nhi}", imm(L2E_HI)));
    p.ins(&format!("fma.rn.f32 {lo}, {xc}, {}, {lo}", imm(L2E_LO)));
    p.ins(&format!("ex2.approx.f32 {e}, {hi}"));
    p.ins(&format!("mul.rn.f32 {u}, {lo}, {}", imm(LN2)));
    p.ins(&format!("fma.rn.f32 {r}, {e}, {u}, {e}"));
    p.ins(&format!("setp.eq.f32 {inf}, {e}, 0f7F800000"));
    p.ins(&format!("selp.f32 {d}, {e}, {r}, {inf}"));
}

/// `d = log(x)`: `x = m * 2^k` with `m` in `[sqrt(1/2), sqrt(2))` by integer arithmetic
/// on the bits (subnormals pre-scaled by 2^23); with `f = m - 1` (exact) and
/// `s = f/(2+f)` (`div.rn`, |s| <= 0.1716), `log(m) = f - (hfsq - s (hfsq + R))` where
/// `hfsq = f^2/2` and `R = 2s^2/3 + 2s^4/5 + 2s^6/7 + 2s^8/9` (the atanh series of
/// `log(m) = 2 atanh(s)` rearranged so that `f`, exact, carries the leading bits), plus
/// `k ln 2` in two parts. Zero, negatives, infinities and NaN take `lg2.approx`'s exact
/// special results.
pub(super) fn log(p: &mut Printer, d: &str, x: &str) {
    let small = p.fresh(Class::Pred);
    let xs = p.fresh(Class::F32);
    let xm = p.fresh(Class::F32);
    let kb = p.fresh(Class::S32);
    let ix = p.fresh(Class::S32);
    let t = p.fresh(Class::S32);
    let k = p.fresh(Class::S32);
    let kshift = p.fresh(Class::S32);
    let im = p.fresh(Class::S32);
    let m = p.fresh(Class::F32);
    let kf = p.fresh(Class::F32);
    let f = p.fresh(Class::F32);
    let den = p.fresh(Class::F32);
    let s = p.fresh(Class::F32);
    let ns = p.fresh(Class::F32);
    let z = p.fresh(Class::F32);
    let q = p.fresh(Class::F32);
    let hf = p.fresh(Class::F32);
    let hfsq = p.fresh(Class::F32);
    let u = p.fresh(Class::F32);
    let c = p.fresh(Class::F32);
    let l = p.fresh(Class::F32);
    let r = p.fresh(Class::F32);
    let pos = p.fresh(Class::Pred);
    let fin = p.fresh(Class::Pred);
    let ok = p.fresh(Class::Pred);
    let special = p.fresh(Class::F32);
    p.comment(&format!("{d} = log({x})"));
    p.ins(&format!("setp.lt.f32 {small}, {x}, 0f00800000"));
    p.ins(&format!("mul.rn.f32 {xs}, {x}, 0f4B000000"));
    p.ins(&format!("selp.f32 {xm}, {xs}, {x}, {small}"));
    p.ins(&format!("selp.s32 {kb}, -23, 0, {small}"));
    p.ins(&format!("mov.b32 {ix}, {xm}"));
    p.ins(&format!("sub.s32 {t}, {ix}, {SQRT_HALF_BITS}"));
    p.ins(&format!("shr.s32 {k}, {t}, 23"));
    p.ins(&format!("shl.b32 {kshift}, {k}, 23"));
    p.ins(&format!("sub.s32 {im}, {ix}, {kshift}"));
    p.ins(&format!("mov.b32 {m}, {im}"));
    p.ins(&format!("add.s32 {k}, {k}, {kb}"));
    p.ins(&format!("cvt.rn.f32.s32 {kf}, {k}"));
    p.ins(&format!("sub.rn.f32 {f}, {m}, 0f3F800000"));
    p.ins(&format!("add.rn.f32 {den}, {f}, 0f40000000"));
    p.ins(&format!("div.rn.f32 {s}, {f}, {den}"));
    p.ins(&format!("neg.f32 {ns}, {s}"));
    p.ins(&format!("mul.rn.f32 {z}, {s}, {s}"));
    p.ins(&format!(
        "fma.rn.f32 {q}, {z}, {}, {}",
        imm(LOG_SERIES[3]),
        imm(LOG_SERIES[2])
    ));
    p.ins(&format!("fma.rn.f32 {q}, {q}, {z}, {}", imm(LOG_SERIES[1])));
    p.ins(&format!("fma.rn.f32 {q}, {q}, {z}, {}", imm(LOG_SERIES[0])));
    p.ins(&format!("mul.rn.f32 {q}, {q}, {z}"));
    p.ins(&format!("mul.rn.f32 {hf}, {f}, 0f3F000000"));
    p.ins(&format!("mul.rn.f32 {hfsq}, {hf}, {f}"));
    p.ins(&format!("add.rn.f32 {u}, {hfsq}, {q}"));
    p.ins(&format!("fma.rn.f32 {c}, {ns}, {u}, {hfsq}"));
    p.ins(&format!("fma.rn.f32 {c}, {kf}, {}, {c}", imm(NEG_LN2_LO)));
    p.ins(&format!("sub.rn.f32 {l}, {f}, {c}"));
    p.ins(&format!("fma.rn.f32 {r}, {kf}, {}, {l}", imm(LN2_HI)));
    p.ins(&format!("setp.gt.f32 {pos}, {x}, 0f00000000"));
    p.ins(&format!("setp.lt.f32 {fin}, {x}, 0f7F800000"));
    p.ins(&format!("and.pred {ok}, {pos}, {fin}"));
    p.ins(&format!("lg2.approx.f32 {special}, {x}"));
    p.ins(&format!("selp.f32 {d}, {r}, {special}, {ok}"));
}

/// `d = tanh(x)`, computed on `a = |x|` and given the sign of `x` at the end (so
/// `tanh(-0) = -0`): for `a < 0.625`, `a + a^3 P(a^2)`; above, `1 - 2/(e^(2a) + 1)` with
/// `ex2.approx.ftz` and `rcp.approx.ftz` (e^(2a) >= 1, so flushing cannot matter; an
/// infinite exponential gives exactly 1).
pub(super) fn tanh(p: &mut Printer, d: &str, x: &str) {
    let a = p.fresh(Class::F32);
    let t = p.fresh(Class::F32);
    let e = p.fresh(Class::F32);
    let den = p.fresh(Class::F32);
    let q = p.fresh(Class::F32);
    let big = p.fresh(Class::F32);
    let z = p.fresh(Class::F32);
    let poly = p.fresh(Class::F32);
    let a3 = p.fresh(Class::F32);
    let small_v = p.fresh(Class::F32);
    let is_small = p.fresh(Class::Pred);
    let mag = p.fresh(Class::F32);
    p.comment(&format!("{d} = tanh({x})"));
    p.ins(&format!("abs.f32 {a}, {x}"));
    p.ins(&format!("mul.rn.f32 {t}, {a}, {}", imm(TWO_L2E)));
    p.ins(&format!("ex2.approx.ftz.f32 {e}, {t}"));
    p.ins(&format!("add.rn.f32 {den}, {e}, 0f3F800000"));
    p.ins(&format!("rcp.approx.ftz.f32 {q}, {den}"));
    p.ins(&format!("fma.rn.f32 {big}, {q}, 0fC0000000, 0f3F800000"));
    p.ins(&format!("mul.rn.f32 {z}, {a}, {a}"));
    p.ins(&format!(
        "fma.rn.f32 {poly}, {z}, {}, {}",
        imm(TANH_POLY[0]),
        imm(TANH_POLY[1])
    ));
    for c in &TANH_POLY[2..] {
        p.ins(&format!("fma.rn.f32 {poly}, {poly}, {z}, {}", imm(*c)));
    }
    p.ins(&format!("mul.rn.f32 {a3}, {z}, {a}"));
    p.ins(&format!("fma.rn.f32 {small_v}, {poly}, {a3}, {a}"));
    p.ins(&format!("setp.lt.f32 {is_small}, {a}, {}", imm(TANH_SMALL)));
    p.ins(&format!("selp.f32 {mag}, {small_v}, {big}, {is_small}"));
    p.ins(&format!("copysign.f32 {d}, {x}, {mag}"));
}

#[cfg(test)]
mod tests {
    //! f32 emulations of the sequences above, instruction by instruction, measured
    //! against f64. `ex2.approx` / `lg2.approx` / `rcp.approx` are emulated as correctly
    //! rounded; their hardware error (about 2 ulp, 1 ulp for rcp) is stated, not tested.
    use super::*;

    fn c(bits: u32) -> f32 {
        f32::from_bits(bits)
    }

    fn ex2(x: f32) -> f32 {
        (x as f64).exp2() as f32
    }

    fn exp_emul(x: f32) -> f32 {
        let xc = if x.is_nan() {
            x
        } else {
            x.max(c(EXP_MIN)).min(c(EXP_MAX))
        };
        let hi = xc * c(L2E_HI);
        let lo = xc.mul_add(c(L2E_HI), -hi);
        let lo = xc.mul_add(c(L2E_LO), lo);
        let e = ex2(hi);
        let u = lo * c(LN2);
        let r = e.mul_add(u, e);
        if e == f32::INFINITY {
            e
        } else {
            r
        }
    }

    fn log_emul(x: f32) -> f32 {
        let small = x < f32::MIN_POSITIVE;
        let xm = if small { x * 8_388_608.0 } else { x };
        let kb: i32 = if small { -23 } else { 0 };
        let ix = xm.to_bits() as i32;
        let t = ix.wrapping_sub(SQRT_HALF_BITS as i32);
        let k = t >> 23;
        let im = ix.wrapping_sub(k << 23);
        let m = f32::from_bits(im as u32);
        let kf = (k + kb) as f32;
        let f = m - 1.0;
        let s = f / (f + 2.0);
        let z = s * s;
        let q = z.mul_add(c(LOG_SERIES[3]), c(LOG_SERIES[2]));
        let q = q.mul_add(z, c(LOG_SERIES[1]));
        let q = q.mul_add(z, c(LOG_SERIES[0]));
        let q = q * z;
        let hfsq = (f * 0.5) * f;
        let u = hfsq + q;
        let cc = (-s).mul_add(u, hfsq);
        let cc = kf.mul_add(c(NEG_LN2_LO), cc);
        let l = f - cc;
        let r = kf.mul_add(c(LN2_HI), l);
        if x > 0.0 && x < f32::INFINITY {
            r
        } else {
            (x as f64).log2() as f32
        }
    }

    fn tanh_emul(x: f32) -> f32 {
        let a = x.abs();
        let t = a * c(TWO_L2E);
        let e = ex2(t);
        let den = e + 1.0;
        let q = (1.0f64 / den as f64) as f32;
        let big = q.mul_add(-2.0, 1.0);
        let z = a * a;
        let mut poly = z.mul_add(c(TANH_POLY[0]), c(TANH_POLY[1]));
        for k in &TANH_POLY[2..] {
            poly = poly.mul_add(z, c(*k));
        }
        let a3 = z * a;
        let small_v = poly.mul_add(a3, a);
        let mag = if a < c(TANH_SMALL) { small_v } else { big };
        mag.copysign(x)
    }

    /// Error in units of the last place of the f32 nearest to `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        let ulp = if w == 0.0 {
            f32::from_bits(1) as f64
        } else {
            let b = w.abs().to_bits();
            (f32::from_bits(b + 1) as f64) - (f32::from_bits(b) as f64)
        };
        (got as f64 - want).abs() / ulp
    }

    /// Points spread over `[lo, hi]`, plus every f32 in a window around 1.
    fn sweep(lo: f32, hi: f32, n: usize) -> impl Iterator<Item = f32> {
        (0..=n).map(move |i| lo + (hi - lo) * (i as f32 / n as f32))
    }

    #[test]
    fn exp_is_within_1_25_ulp_of_f64() {
        let mut worst: f64 = 0.0;
        let mut wx = 0.0;
        for x in sweep(-87.0, 88.5, 400_000) {
            let e = ulps(exp_emul(x), (x as f64).exp());
            if e > worst {
                worst = e;
                wx = x;
            }
        }
        eprintln!("exp: worst {worst} ulp at {wx:e}");
        assert!(worst <= 1.25, "exp worst error {worst} ulp at {wx:e}");
        assert_eq!(exp_emul(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_emul(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_emul(89.0), f32::INFINITY);
        assert!(exp_emul(f32::NAN).is_nan());
        assert_eq!(exp_emul(0.0), 1.0);
    }

    #[test]
    fn log_is_within_1_ulp_of_f64() {
        let mut worst: f64 = 0.0;
        let near_one = (0..200_000u32).map(|i| f32::from_bits(0x3F80_0000 - 100_000 + i));
        let wide = (0..400_000u32).map(|i| f32::from_bits(1 + i * 5_300));
        let mut wx = 0.0;
        for x in near_one.chain(wide).chain(sweep(1e-3, 1e6, 100_000)) {
            if x > 0.0 && x.is_finite() {
                let e = ulps(log_emul(x), (x as f64).ln());
                if e > worst {
                    worst = e;
                    wx = x;
                }
            }
        }
        eprintln!("log: worst {worst} ulp at {wx:e}");
        assert!(worst <= 1.0, "log worst error {worst} ulp at {wx:e}");
        assert_eq!(log_emul(1.0), 0.0);
        assert_eq!(log_emul(0.0), f32::NEG_INFINITY);
        assert_eq!(log_emul(f32::INFINITY), f32::INFINITY);
        assert!(log_emul(-1.0).is_nan());
        assert!(log_emul(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_is_within_2e_7_relative_of_f64() {
        let mut worst: f64 = 0.0;
        let tiny = (0..100_000u32).map(|i| f32::from_bits(0x2000_0000 + i * 3_000));
        for x in sweep(-12.0, 12.0, 400_000).chain(tiny) {
            let want = (x as f64).tanh();
            if want != 0.0 {
                worst = worst.max(((tanh_emul(x) as f64 - want) / want).abs());
            }
        }
        eprintln!("tanh: worst relative error {worst}");
        assert!(worst <= 2e-7, "tanh worst relative error {worst}");
        assert_eq!(tanh_emul(f32::INFINITY), 1.0);
        assert_eq!(tanh_emul(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_emul(100.0), 1.0);
        assert!(tanh_emul(-0.0).is_sign_negative());
        assert!(tanh_emul(f32::NAN).is_nan());
    }
}
