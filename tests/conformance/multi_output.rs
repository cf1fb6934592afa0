//! Conformance cases of multi-output elementwise kernels (the scheduler stores several
//! values of one iteration space from one kernel, reusing a stored value in-register
//! where another reads it): at n in {7, 257, 1000} and `[3, 257]`,
//! - `multi_output/...`: five outputs of `x, y, z` uniform in [-1, 1) and `p` in
//!   [0.1, 1.1): `s = x y + z`, `d = x y z - x` and `e = exp(x y)` share `x y`; `q = s p
//!   + s` consumes `s`, `w = q / (p + 1)` consumes `q`;
//! - `multi_output/adamw_...`: the AdamW update of one parameter (`tessera_compiler::optim`): `m'`,
//!   `v'` and `p'` (which reads `m'` and `v'`), with weight decay, with the step scalars
//!   `[lr, bc1, bc2]` as one input in [0.1, 1.1) and `v` in [0.1, 1.1). Five buffers
//!   read and three written: within WGSL's 8 storage buffers, so every target stores all
//!   three from one kernel.
//!
//! Tolerances (absolute unless said; `u` = 2^-24, f32 constants of the graph are
//! rounded once, u relative; a fused multiply-add only drops roundings):
//! - `s`: the product `u |x y| <= u`, the sum `u |s|`: atol 2u, rtol u;
//! - `d`: two products, each `u` on values <= 1, the difference `u |d|`: atol 3u, rtol u;
//! - `e`: the argument's error `u |x y| <= u` becomes `u` relative through `exp`, plus
//!   `exp` itself (WGSL: 3 + 2|x| <= 5 ulp = 10u): rtol 12u;
//! - `q`: `s` within 3u (|s| <= 2), times `p + 1 <= 2.1`: 6.3u, plus the product
//!   (`u |s p| <= 2.2u`) and the sum (`u |q| <= 4.2u`): atol 13u -> 14u;
//! - `w`: `q`'s 14u over `p + 1 >= 1.1`: 12.7u, plus the rounding of `p + 1` (u relative
//!   of the result) and the division (2.5 ulp = 5u relative) on `|w| <= 2`: 12u: atol 26u;
//! - `m' = 0.9 m + 0.1 g` (`|m|, |g| <= 1`): constants and products 2u of 0.9 and 0.2u of
//!   0.1, the sum `u |m'| <= u`: atol 4u;
//! - `v' = 0.999 v + 0.001 g^2` (`v <= 1.1`): 2u of 1.1, 0.003u, the sum 1.1u: atol 4u;
//! - `p' = p (1 - 0.01 lr) - lr (m' bc1) / (sqrt(v' bc2) + 1e-8)`: `v' bc2 >= 0.01`, so
//!   the root is >= 0.1 and the ratio <= 11 (|m' bc1| <= 1.1); `m' bc1` within 3.3u,
//!   the denominator within 12u relative (v' 3u, bc2 product u, sqrt 9u as WGSL's
//!   1/inverseSqrt, the add u), the division 5u: the ratio within 3.3u / 0.1 + 11 * 17u
//!   = 220u, times `lr <= 1.1` plus its rounding: 254u; the decay term and the final
//!   difference (`|p'| <= 13`): 15u more: atol 270u -> 300u (1.8e-5; a wrong or missing
//!   term is off by 1e-3 or more).

use super::{Dist, Table, Tol, EPS, F};
use tessera::compiler::optim::{AdamW, AdamWInputs, ParamState};

/// Shapes: awkward lengths, and a 2-D one (rows and a ragged last block).
fn shapes() -> Vec<Vec<usize>> {
    vec![vec![7], vec![257], vec![1000], vec![3, 257]]
}

fn tag(shape: &[usize]) -> String {
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Adds this family's cases to the table.
pub(super) fn add_cases(t: &mut Table) {
    for shape in shapes() {
        let name = format!("multi_output/n{}", tag(&shape));
        t.case(name, &[("p", Dist::Positive)], |g, o| {
            let x = g.input("x", &shape, F)?;
            let y = g.input("y", &shape, F)?;
            let z = g.input("z", &shape, F)?;
            let p = g.input("p", &shape, F)?;
            let xy = g.mul(x, y)?;
            let s = g.add(xy, z)?;
            let xyz = g.mul(xy, z)?;
            let d = g.sub(xyz, x)?;
            let e = g.exp(xy)?;
            let sp = g.mul(s, p)?;
            let q = g.add(sp, s)?;
            let one = g.constant(1.0, &[], F)?;
            let p1 = g.add(p, one)?;
            let w = g.div(q, p1)?;
            o.add("s", s, Tol::new(EPS, 2.0 * EPS));
            o.add("d", d, Tol::new(EPS, 3.0 * EPS));
            o.add("e", e, Tol::new(12.0 * EPS, 0.0));
            o.add("q", q, Tol::new(0.0, 14.0 * EPS));
            o.add("w", w, Tol::new(0.0, 26.0 * EPS));
            Ok(())
        });
    }
    for shape in shapes() {
        let name = format!("multi_output/adamw_n{}", tag(&shape));
        let positive = [("v", Dist::Positive), ("adamw.step", Dist::Positive)];
        t.case(name, &positive, |g, o| {
            let param = g.param("p", &shape, F)?;
            let grad = g.input("g", &shape, F)?;
            let m = g.param("m", &shape, F)?;
            let v = g.param("v", &shape, F)?;
            let inputs = AdamWInputs::add(g, "adamw.")?;
            let state = ParamState {
                param,
                grad,
                m,
                v,
                decay: true,
            };
            let up = AdamW::default().update(g, &inputs, &state, None)?;
            o.add("m_new", up.m, Tol::new(0.0, 4.0 * EPS));
            o.add("v_new", up.v, Tol::new(0.0, 4.0 * EPS));
            o.add("p_new", up.param, Tol::new(0.0, 300.0 * EPS));
            Ok(())
        });
    }
}
