//! Conformance cases of f16 and bf16 storage with f32 computation.
//!
//! Every case of this family reads and writes f16 or bf16 buffers (except `bf16_round`,
//! which checks the bf16 rounding of a cast in registers with f32 buffers). The harness
//! rounds every input to its dtype (`Case::inputs`), so the f64 oracle and the device see
//! the same values. The backends compute in f32 and round each output once to its dtype
//! when storing it; the oracle rounds nothing (floats stay f64).
//!
//! Tolerance of a low-precision output ([`lowp`]): if the f32 computation is within
//! `e = atol + rtol |y|` of the exact result `y` (the f32 tolerance of the same op, as
//! derived in `conformance.rs` and `conformance/composite.rs`), its rounding to the
//! storage dtype adds at most `h |y'| <= h (|y| + e)` with `h` the dtype's unit roundoff:
//! 2^-11 for f16 (10 mantissa bits), 2^-8 for bf16 (7 bits), round to nearest. So the
//! bound is `rtol' = h + rtol (1 + h)`, `atol' = atol (1 + h)`, plus, for f16, half the
//! smallest subnormal (2^-25): below 2^-14 the f16 rounding is absolute. (The double
//! rounding f64 -> f32 -> f16 is covered: `y'` is the f32 result, whatever its error.)
//! Ops that are exact on exact inputs (neg, abs, relu, max, min) stay exact: their f32
//! result is one of the inputs' values (or its negation), representable in the dtype.
//!
//! Backends: PTX (assembly; f16 and bf16), wgpu with f16 when the device has
//! `shader-f16` (lavapipe does) and bf16 (element pairs in u32 words, atomic stores: see
//! `backend/wgsl.rs`), the tile interpreter (runs the plan for `Target::wgsl()`, which
//! has no f16 or bf16 storage: refused, naming `shader-f16` for f16), Ascend C CPU.

use super::{dot_tol, sum_tol, Dist, Table, Tol, EPS, EXP_TOL, TANH_TOL};
use tessera::compiler::graph::ReduceOp;
use tessera::compiler::DType;

/// Unit roundoff of a storage dtype (round to nearest).
fn unit(d: DType) -> f64 {
    match d {
        DType::F16 => 1.0 / f64::from(1u32 << 11),
        DType::BF16 => 1.0 / f64::from(1u32 << 8),
        _ => EPS,
    }
}

/// The tolerance of an output stored in `d` whose f32 computation is within `f`
/// (see the module doc).
fn lowp(d: DType, f: Tol) -> Tol {
    let h = unit(d);
    let sub = if d == DType::F16 {
        1.0 / f64::from(1u32 << 25)
    } else {
        0.0
    };
    Tol::new(h + f.rtol * (1.0 + h), f.atol * (1.0 + h) + sub)
}

/// Relative error of a sum of `n` positive f32 terms (as `pos_sum_rel` of
/// `conformance/composite.rs`: the classical `(n - 1) u`, capped by 8 standard
/// deviations of the sequential order's error, `8 sqrt(n) u / 3`).
fn pos_sum_rel(n: usize) -> f64 {
    let n = n.max(1) as f64;
    ((n - 1.0) * EPS).min(8.0 * n.sqrt() * EPS / 3.0)
}

/// WGSL `log` absolute error inside [0.5, 2].
const LOG_ABS: f64 = 1.0 / (1u64 << 21) as f64;

fn tag(d: DType) -> &'static str {
    if d == DType::F16 {
        "f16"
    } else {
        "bf16"
    }
}

/// Backends that refuse a storage dtype (typed Unsupported): the tile interpreter runs
/// the plan for `Target::wgsl()` (neither f16 nor bf16 storage).
fn refused(_d: DType) -> &'static [&'static str] {
    &["tile_interp"]
}

/// Adds this family's cases to the table.
pub(super) fn add_cases(t: &mut Table) {
    for d in [DType::F16, DType::BF16] {
        for n in [7, 1000] {
            ops_case(t, d, n);
        }
        matmul_case(t, d);
        attention_case(t, d);
        index_case(t, d);
    }
    bf16_round_case(t);
}

/// Elementwise ops, reductions and the row composites on `[3, n]` / `[n]` in dtype `d`.
/// The f32 tolerances are those of the f32 cases (derived there), made low-precision by
/// [`lowp`].
fn ops_case(t: &mut Table, d: DType, n: usize) {
    let name = format!("dtypes_{}/ops_n{n}", tag(d));
    let dists = [("p", Dist::Positive), ("q", Dist::AwayFromZero)];
    t.case(name, &dists, |g, o| {
        let x = g.input("x", &[n], d)?;
        let y = g.input("y", &[n], d)?;
        let p = g.input("p", &[n], d)?;
        let q = g.input("q", &[n], d)?;
        // Unary (conformance.rs `unary/*`): exact ones stay exact.
        o.add("neg", g.neg(x)?, Tol::EXACT);
        o.add("abs", g.abs(x)?, Tol::EXACT);
        o.add("relu", g.relu(x)?, Tol::EXACT);
        o.add("exp", g.exp(x)?, lowp(d, EXP_TOL));
        o.add("tanh", g.tanh(x)?, lowp(d, TANH_TOL));
        o.add("log", g.log(p)?, lowp(d, Tol::new(6.0 * EPS, LOG_ABS)));
        o.add("sqrt", g.sqrt(p)?, lowp(d, Tol::new(9.0 * EPS, 0.0)));
        o.add("rsqrt", g.rsqrt(p)?, lowp(d, Tol::new(4.0 * EPS, 0.0)));
        o.add("sigmoid", g.sigmoid(x)?, lowp(d, Tol::new(24.0 * EPS, 0.0)));
        o.add("erf", g.erf(x)?, lowp(d, Tol::new(8.0 * EPS, 1.5e-7)));
        // Binary: add / sub / mul one f32 rounding, div 5u, max / min exact.
        o.add("add", g.add(x, y)?, lowp(d, Tol::ONE_ROUNDING));
        o.add("sub", g.sub(x, y)?, lowp(d, Tol::ONE_ROUNDING));
        o.add("mul", g.mul(x, y)?, lowp(d, Tol::ONE_ROUNDING));
        o.add("div", g.div(x, q)?, lowp(d, Tol::new(5.0 * EPS, 0.0)));
        o.add("max", g.max(x, y)?, Tol::EXACT);
        o.add("min", g.min(x, y)?, Tol::EXACT);
        // Casts: to f32 exact (every f16 / bf16 value is an f32); from f32 to the dtype
        // both sides round to nearest even: exact.
        o.add("to_f32", g.cast(x, DType::F32)?, Tol::EXACT);
        let xf = g.input("xf", &[n], DType::F32)?;
        o.add("from_f32", g.cast(xf, d)?, Tol::EXACT);
        // Reductions over the last axis of [3, n] (conformance.rs `reduce/*`).
        let r = g.input("r", &[3, n], d)?;
        let sum = g.reduce(ReduceOp::Sum, r, 1, false)?;
        o.add("sum", sum, lowp(d, sum_tol(n)));
        let max = g.reduce(ReduceOp::Max, r, 1, true)?;
        o.add("max_keep", max, Tol::EXACT);
        let mean = g.reduce(ReduceOp::Mean, r, 1, false)?;
        o.add("mean", mean, lowp(d, Tol::new(2.0 * EPS, 3.0 * EPS)));
        // Row composites (conformance/composite.rs `softmax_case`, `norm_case`).
        let sr = pos_sum_rel(n);
        let sm = Tol::new(38.0 * EPS + sr, 0.0);
        let lsm = Tol::new(8.0 * EPS, 16.0 * EPS + sr + LOG_ABS);
        o.add("softmax", g.softmax(r)?, lowp(d, sm));
        o.add("log_softmax", g.log_softmax(r)?, lowp(d, lsm));
        let ymax = ((n.max(1) - 1) as f64).sqrt().min(5.0);
        let gamma = g.param("gamma", &[n], d)?;
        let beta = g.param("beta", &[n], d)?;
        let ln_affine = Tol::new(0.0, (22.0 * EPS + sr / 2.0) * ymax + 52.0 * EPS);
        o.add(
            "layer_norm_affine",
            g.layer_norm(r, Some((gamma, beta)), 1e-5)?,
            lowp(d, ln_affine),
        );
        let ln = Tol::new(22.0 * EPS + sr / 2.0, 40.0 * EPS);
        o.add("layer_norm", g.layer_norm(r, None, 1e-5)?, lowp(d, ln));
        let rms_affine = Tol::new(18.0 * EPS + sr / 2.0, 0.0);
        o.add(
            "rms_norm_affine",
            g.rms_norm(r, Some(gamma), 1e-6)?,
            lowp(d, rms_affine),
        );
        // Elementwise composites (conformance/composite.rs `gelu_case`).
        o.add(
            "gelu",
            g.gelu(x, false)?,
            lowp(d, Tol::new(2.0 * EPS, 7.5e-8 + 4.0 * EPS)),
        );
        o.add(
            "gelu_tanh",
            g.gelu(x, true)?,
            lowp(d, Tol::new(2.0 * EPS, 13.0 * EPS)),
        );
        o.add("silu", g.silu(x)?, lowp(d, Tol::new(25.0 * EPS, 0.0)));
        o.add(
            "swiglu",
            g.swiglu(x, y)?,
            lowp(d, Tol::new(26.0 * EPS, 0.0)),
        );
        Ok(())
    });
    if let Some(c) = t.0.last_mut() {
        c.refused_by = refused(d);
    }
}

/// Matmuls in dtype `d` with f32 accumulation: a dot product of length K, `dot_tol(K)`
/// (conformance.rs), then one rounding ([`lowp`]); one transposed operand and a bias add
/// (one more f32 rounding of a value below K + 1: `(K + 1) u` absolute).
fn matmul_case(t: &mut Table, d: DType) {
    t.case(format!("dtypes_{}/matmul", tag(d)), &[], |g, o| {
        for (i, (m, n, k)) in [(1, 17, 64), (17, 64, 129), (64, 1, 17), (33, 80, 100)]
            .into_iter()
            .enumerate()
        {
            let a = g.input(&format!("a{i}"), &[m, k], d)?;
            let b = g.input(&format!("b{i}"), &[k, n], d)?;
            o.add(
                format!("mm_m{m}n{n}k{k}"),
                g.matmul(a, b)?,
                lowp(d, dot_tol(k)),
            );
        }
        let (m, n, k) = (17, 33, 64);
        let a = g.input("ta", &[k, m], d)?;
        let b = g.input("tb", &[k, n], d)?;
        let bias = g.param("bias", &[n], d)?;
        let mm = g.matmul_t(a, b, true, false)?;
        let tol = Tol::new(0.0, dot_tol(k).atol + (k + 1) as f64 * EPS);
        o.add("mm_ta_bias", g.add(mm, bias)?, lowp(d, tol));
        Ok(())
    });
    if let Some(c) = t.0.last_mut() {
        c.refused_by = refused(d);
    }
}

/// Attention in dtype `d` (f32 inside the kernel): the f32 bound of
/// `conformance/attention.rs` (`attention_tol`: `(42 smax + 16 nb + 2 tk + 18) u`
/// absolute, smax = scale * D, nb = ceil(tk / 32) key blocks), then one rounding.
///
/// At T = 100 with head dim 64, lavapipe's 128 x 32 blocks would need 40 KiB of its 32
/// KiB of workgroup memory if the Dots read their f16 operands in place, which they do
/// not (they are converted in registers, then staged): the tiling must chunk the head
/// dims (`tile::ops::attention::dots_in_place`).
fn attention_case(t: &mut Table, d: DType) {
    let (b, hq, hkv) = (2, 4, 2);
    for (tn, dh) in [(7, 64), (100, 32), (100, 64)] {
        let name = format!("dtypes_{}/attention_t{tn}_d{dh}", tag(d));
        t.case(name, &[("mask_raw", Dist::Uniform)], |g, o| {
            let q = g.input("q", &[b, hq, tn, dh], d)?;
            let k = g.input("k", &[b, hkv, tn, dh], d)?;
            let v = g.input("v", &[b, hkv, tn, dh], d)?;
            let raw = g.input("mask_raw", &[b, tn], DType::I32)?;
            let zero = g.constant(0.0, &[], DType::I32)?;
            let mask = g.max(raw, zero)?;
            let scale = 1.0 / (dh as f64).sqrt();
            let smax = scale * dh as f64;
            let nb = tn.div_ceil(32) as f64;
            let f = Tol::new(
                0.0,
                (42.0 * smax + 16.0 * nb + 2.0 * tn as f64 + 18.0) * EPS,
            );
            o.add(
                "causal",
                g.attention(q, k, v, None, true, Some(scale))?,
                lowp(d, f),
            );
            o.add(
                "padded",
                g.attention(q, k, v, Some(mask), false, Some(scale))?,
                lowp(d, f),
            );
            Ok(())
        });
        if let Some(c) = t.0.last_mut() {
            c.refused_by = refused(d);
        }
    }
}

/// Movement, indexing and cross-entropy in dtype `d`: gather (rows copied, exact),
/// concat (exact), a slice feeding an add (one f32 rounding), scatter-add (sums of up to
/// 200 terms, `sum_tol(200)` of conformance.rs), token cross-entropy and its mean over
/// 37 tokens of 257 classes (the f32 bounds of `conformance/composite.rs`
/// `cross_entropy_case`: tokens 7u relative + (18u + pos_sum_rel(V) + 2^-21) absolute,
/// mean (12u + pos_sum_rel(37)) relative with the same absolute part), each made
/// low-precision by [`lowp`].
fn index_case(t: &mut Table, d: DType) {
    use tessera::compiler::graph::CompositeOp;
    let (v, tokens) = (257, 37);
    let dists = [
        ("ids", Dist::Ids(50)),
        ("sids", Dist::Ids(50)),
        ("tg", Dist::Ids(v)),
    ];
    t.case(format!("dtypes_{}/index_ce", tag(d)), &dists, |g, o| {
        let table = g.param("table", &[50, 64], d)?;
        let ids = g.input("ids", &[3, 7], DType::I32)?;
        let e = g.gather(table, ids, 0)?;
        o.add("gather", e, Tol::EXACT);
        let x = g.input("cx", &[3, 2, 64], d)?;
        o.add("concat", g.concat(&[e, x], 1)?, Tol::EXACT);
        let x = g.input("sx", &[5, 100], d)?;
        let y = g.input("sy", &[5, 90], d)?;
        let sl = g.slice(x, 1, 3, 90)?;
        o.add("slice_add", g.add(sl, y)?, lowp(d, Tol::ONE_ROUNDING));
        let dy = g.input("dy", &[2, 100, 64], d)?;
        let sids = g.input("sids", &[2, 100], DType::I32)?;
        o.add(
            "scatter_add",
            g.scatter_add(dy, sids, 0, 50)?,
            lowp(d, sum_tol(200)),
        );
        let logits = g.input("logits", &[tokens, v], d)?;
        let tg = g.input("tg", &[tokens], DType::I32)?;
        let atol = 18.0 * EPS + pos_sum_rel(v) + LOG_ABS;
        let tok = g.composite(
            CompositeOp::TokenCrossEntropy { ignore_index: -100 },
            &[logits, tg],
        )?;
        o.add("ce_tokens", tok, lowp(d, Tol::new(7.0 * EPS, atol)));
        o.add(
            "ce_mean",
            g.cross_entropy(logits, tg, -100)?,
            lowp(d, Tol::new(12.0 * EPS + pos_sum_rel(tokens), atol)),
        );
        Ok(())
    });
    if let Some(c) = t.0.last_mut() {
        c.refused_by = refused(d);
    }
}

/// bf16 rounding of a cast in registers (f32 buffers, so every backend runs it):
/// `w = 1 + v 2^-16` for integers `v` in `0..65536` is exact in f32 and has its bits below
/// bf16's 7 mantissa bits set by `v`'s low 9 bits, so ties (low bits exactly 2^8: one
/// value in 512, ~8 of 4097) and carries into the exponent (`v` near 65536) occur; the
/// round trip f32 -> bf16 -> f32 of `w`, of `-w 2^100` and of `w 2^-100` must equal the
/// oracle's round to nearest even exactly. `x` uniform: `bf16(x) * x` is one f32
/// rounding of an exact product.
fn bf16_round_case(t: &mut Table) {
    let n = 4097;
    t.case(
        "dtypes_bf16/round".into(),
        &[("v", Dist::Ids(65536))],
        |g, o| {
            let v = g.input("v", &[n], DType::I32)?;
            let vf = g.cast(v, DType::F32)?;
            let step = g.constant(1.0 / 65536.0, &[], DType::F32)?;
            let one = g.constant(1.0, &[], DType::F32)?;
            let frac = g.mul(vf, step)?;
            let w = g.add(frac, one)?;
            let round = |g: &mut tessera::compiler::Graph, x| {
                let b = g.cast(x, DType::BF16)?;
                g.cast(b, DType::F32)
            };
            o.add("round_w", round(g, w)?, Tol::EXACT);
            let big = g.constant(-(2f64.powi(100)), &[], DType::F32)?;
            let wb = g.mul(w, big)?;
            o.add("round_neg_big", round(g, wb)?, Tol::EXACT);
            let small = g.constant(2f64.powi(-100), &[], DType::F32)?;
            let ws = g.mul(w, small)?;
            o.add("round_small", round(g, ws)?, Tol::EXACT);
            let x = g.input("x", &[n], DType::F32)?;
            let xb = round(g, x)?;
            o.add("round_mul", g.mul(xb, x)?, Tol::ONE_ROUNDING);
            Ok(())
        },
    );
}

/// Without `shader-f16` (`Target::wgsl()`), compiling f16 storage for WGSL is a typed
/// error naming the feature; with it (`Target::wgsl_f16()`), every module that stores
/// f16 enables it and declares `array<f16>`.
#[test]
fn wgsl_f16_needs_shader_f16() {
    use tessera::compiler::{backend, compile, CompileError, Graph, Target};
    let mut g = Graph::new();
    let x = g.input("x", &[7], DType::F16).expect("input");
    let y = g.exp(x).expect("exp");
    g.mark_output(y).expect("output");
    match compile(&g, &Target::wgsl()) {
        Err(CompileError::Unsupported { what, .. }) => {
            assert!(what.contains("`shader-f16`"), "names the feature: {what}")
        }
        other => panic!("expected Unsupported naming shader-f16, got {other:?}"),
    }
    let target = Target::wgsl_f16();
    let plan = compile(&g, &target).expect("f16 compiles with shader-f16");
    let art = backend::emit(&plan, &target).expect("emits");
    for f in &art.files {
        assert!(f.contents.contains("enable f16;"), "{}", f.contents);
        assert!(f.contents.contains("array<f16>"), "{}", f.contents);
    }
}

/// bf16 on WGSL (the record the wgpu device reports: bf16 storage added): element pairs
/// in u32 words, a written buffer as `array<atomic<u32>>` stored with `atomicAnd` /
/// `atomicOr`, the value rounded in registers first (the lowering's bit sequence:
/// `0x7fff`); `Target::wgsl()` itself refuses bf16 buffers.
#[test]
fn wgsl_bf16_is_packed_with_atomic_stores() {
    use tessera::compiler::{backend, compile, CompileError, Graph, Target};
    let mut g = Graph::new();
    let x = g.input("x", &[7], DType::BF16).expect("input");
    let y = g.exp(x).expect("exp");
    g.mark_output(y).expect("output");
    assert!(matches!(
        compile(&g, &Target::wgsl()),
        Err(CompileError::Unsupported { .. })
    ));
    let mut target = Target::wgsl();
    target.storage_dtypes.push(DType::BF16);
    let plan = compile(&g, &target).expect("bf16 compiles");
    let art = backend::emit(&plan, &target).expect("emits");
    let text = &art.files[0].contents;
    for needle in [
        "array<u32>",
        "array<atomic<u32>>",
        "atomicAnd(",
        "atomicOr(",
        "32767u",
    ] {
        assert!(text.contains(needle), "`{needle}` in\n{text}");
    }
}

/// The host twin of the SIMT bf16 rounding (used to fold casts of constants) agrees with
/// the reference's round to nearest even: ties both ways, carries into the exponent,
/// overflow to infinity, subnormals, NaN kept a NaN of the same sign.
#[test]
fn bf16_constant_rounding_matches_the_reference() {
    use tessera::compiler::interp::round_to_dtype;
    use tessera::compiler::simt::lower::round_bf16_bits;
    let ulp = 2f32.powi(-7);
    let mut values = vec![
        0.0f32,
        -0.0,
        1.0,
        1.0 + ulp / 2.0,                  // tie, even below: 1
        1.0 + ulp + ulp / 2.0,            // tie, even above: 1 + 2 ulp
        1.0 + ulp / 2.0 + 2f32.powi(-20), // just above a tie: up
        2.0 - ulp / 4.0,                  // carries into the exponent: 2
        f32::MAX,                         // rounds to infinity
        -f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        f32::from_bits(0x0000_8001), // subnormal just above a tie
        f32::from_bits(0x0001_8000), // subnormal tie, odd below: up
    ];
    for i in 0..2000u32 {
        values.push(f32::from_bits(i.wrapping_mul(2_654_435_761)));
    }
    for x in values {
        let got = round_bf16_bits(x);
        if x.is_nan() {
            assert!(got.is_nan() && got.is_sign_negative() == x.is_sign_negative());
            continue;
        }
        let want = round_to_dtype(f64::from(x), DType::BF16);
        assert_eq!(f64::from(got), want, "{x:e} ({:#010x})", x.to_bits());
    }
}
