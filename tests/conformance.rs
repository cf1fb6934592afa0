//! Cross-backend conformance: one table of cases (every op and fused combination of the
//! first op set), each run on every backend and compared with the f64 graph interpreter
//! on the same random inputs.
//!
//! Backends (one `#[test]` each, so one failing backend does not hide another):
//! - `wgpu`: the emitted WGSL on the wgpu device (lavapipe in CI);
//! - `ascend_cpu`: the emitted Ascend C kernels + AscendCL host code compiled with the
//!   project's CPU build of the Ascend C API (one g++ build per case, cached by source
//!   hash);
//! - `tile_interp`: the compiled plan on the f32 tile interpreter (no code generation),
//!   which tells scheduler bugs from printer bugs;
//! - `ptx`: every case compiled for `Target::ptx()`, every emitted module assembled by
//!   `ptxas -arch=sm_80 -v` and `-arch=sm_90 -v` (in parallel), which must accept it with
//!   zero spill stores and loads; registers and spills of every kernel go to
//!   `target/ptxas-conformance-report.json`. (This backend checks code generation only.)
//! - `ptx_vm`: the same emitted PTX executed on the host by the PTX virtual machine
//!   (`tessera_compiler::ptxvm`), which also checks bounds, alignment, data races and
//!   barrier convergence on every access: the PTX's numbers, without a GPU; and
//!   `ptx_vm_approx2`, the same with 2 ulps of error on every approximate instruction;
//! - `cuda` (feature `cuda`): the emitted PTX run on an Nvidia GPU by `CudaDevice`
//!   (`conformance/cuda.rs`); without a GPU it reports itself as skipped, by name.
//!
//! A case is one graph with several named outputs, each checked with its own tolerance:
//! the unary case at size n computes all six unary ops, the reduction case at size n every
//! op over every axis with both keep_dims values, and so on. Grouping keeps the number of
//! compilations (a g++ build each on the Ascend C CPU build) small, while a failure still
//! names the output, i.e. the op, that is wrong. Each test runs the whole table, prints one
//! line per output (measured max error and the share of the tolerance it uses; run with
//! `--nocapture`), then a summary of the worst share per output family, and fails at the
//! end listing every failing output.
//!
//! Sizes: every size-parameterised case runs at 1, 7, 127, 1000 and 4097 along the axis
//! under test. Reductions: sum, max and mean over every axis of a rank-3 tensor (the
//! reduced extent n, the others 3 and 5) and over a rank-1 tensor, with keep_dims true and
//! false: the full product at every size. Matmul: the full product M, N, K in
//! {1, 17, 64, 129} (64 shapes) for each of the four transpose combinations, one case per
//! combination holding its 64 independent matmuls (so 4 g++ builds on the Ascend C CPU
//! build, not 256); plus batched matmuls (both operands batched, or either one shared).
//!
//! Tolerances: an element passes when `|got - want| <= atol + rtol * |want|`; each
//! output's tolerance is stated where it is built, with a one-line derivation. `u` is the
//! f32 unit roundoff 2^-24 ([`EPS`]); an ulp is at most 2u relative. Elementary functions
//! use the WGSL accuracy table (the loosest of the targets: the PTX and Ascend C lowerings
//! and the f32 interpreter are at least as accurate): `exp` 3 + 2|x| ulp, `log` 3 ulp
//! outside [0.5, 2] and 2^-21 absolute inside, `inverseSqrt` 2 ulp, `sqrt` as
//! 1 / inverseSqrt, `x / y` 2.5 ulp, `tanh` as sinh / cosh through `exp`; `+ - *` are
//! correctly rounded. Sums use the worst summation order (sequential), whose error was
//! simulated (2M random sums per length, lengths 2..4097): see [`sum_tol`] and
//! [`dot_tol`].
//!
//! Measured worst share of the tolerance, "M: wgpu / tile interpreter / Ascend C CPU"
//! (wgpu on lavapipe), is noted at each tolerance; the summary at the end of each
//! backend's output prints the current values.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use tessera::compiler::backend;
use tessera::compiler::graph::ReduceOp;
use tessera::compiler::interp::{round_to_dtype, run_graph, Tensor};
use tessera::compiler::{DType, Graph, GraphError, NodeId, Target};
use tessera::models::mlp::mlp_block;
use tessera::runtime::{CpuDevice, Device, PtxVmDevice, WgpuDevice};

// Finding ptxas, `ptxas -v` parsing and the JSON report: shared with
// compiler/tests/ptx.rs.
#[path = "support/ptxas.rs"]
mod ptxas_support;

// Case families added with issue 3, one module each (children of this file, so they use
// `Table`, `Tol`, `Dist`, `EPS` ... directly).
#[path = "conformance/attention_bwd.rs"]
mod attention_bwd_cases;
#[path = "conformance/attention.rs"]
mod attention_cases;
#[path = "conformance/composite.rs"]
mod composite_cases;
#[path = "conformance/dtypes.rs"]
mod dtypes_cases;
#[path = "conformance/indexing.rs"]
mod indexing_cases;
#[path = "conformance/multi_output.rs"]
mod multi_output_cases;
#[path = "conformance/rope.rs"]
mod rope_cases;
// The CUDA device (issue 6): runs when a GPU is present, else reports itself skipped.
#[path = "conformance/cuda.rs"]
mod cuda_backend;
#[path = "support/cuda.rs"]
mod cuda_support;
#[path = "support/wgpu_thread.rs"]
mod wgpu_thread;

const SIZES: [usize; 5] = [1, 7, 127, 1000, 4097];
const MM: [usize; 4] = [1, 17, 64, 129];
const TRANSPOSES: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];
/// One f32 rounding, relative: 2^-24.
const EPS: f64 = 1.0 / (1u64 << 24) as f64;
const F: DType = DType::F32;

/// This test thread's wgpu device (`support/wgpu_thread.rs`: lavapipe compiles on one
/// queue thread per device, so threads sharing one would wait for each other's compiles).
fn wgpu() -> &'static WgpuDevice {
    wgpu_thread::device_of_this_thread("the wgpu conformance suite")
}

/// An elementwise error bound: `|got - want| <= atol + rtol * |want|`.
#[derive(Clone, Copy, Debug)]
struct Tol {
    rtol: f64,
    atol: f64,
}

impl Tol {
    /// Exact: no rounding is involved (neg, max, pure data movement).
    const EXACT: Tol = Tol {
        rtol: 0.0,
        atol: 0.0,
    };
    /// One correctly rounded f32 operation on exact inputs (add, sub, mul; the oracle's
    /// f64 result of two f32 operands is exact): |fl(x) - x| <= u |x|, so rtol = u.
    /// (Was 4u. M: 100% / 100% / 100%: just below u |x| near rounding ties, as
    /// expected of a correctly rounded operation.)
    const ONE_ROUNDING: Tol = Tol {
        rtol: EPS,
        atol: 0.0,
    };
    fn new(rtol: f64, atol: f64) -> Tol {
        Tol { rtol, atol }
    }
}

/// Tolerance of a sum of `n` f32 terms uniform in [-1, 1) (independent, zero mean), for
/// any summation order: the error is sum_k d_k s_k over the partial sums s_k (|d_k| <= u),
/// largest for the sequential order. Simulating that order (2M sums per n, n from 2 to
/// 4097) gives a worst error of 2.5 n u (n = 129; 1.9 n u at n = 4097, 1.8 n u at n = 7;
/// the tail is heavy: ~10 standard deviations), so 3 n u absolute. The error does not
/// grow with the result (zero-mean terms): no relative part. (Was 4 n u + 1e-5 relative.
/// M for reduce sums: 17% / 24% / 13%; the backends' blocked orders do better than
/// sequential.)
fn sum_tol(n: usize) -> Tol {
    Tol::new(0.0, 3.0 * n as f64 * EPS)
}

/// Tolerance of a dot product of length `k` whose factors are uniform in [-1, 1) (matmul):
/// each product rounded (u |p|), then summed in any order. The sequential order, simulated
/// as for [`sum_tol`] (2M dot products per k, k from 2 to 1000), has a worst error of
/// 1.44 k u (k = 4; 1.32 k u at k = 17, 1.25 k u at k = 129): 2 k u absolute, no relative
/// part. (Was 4 k u + 1e-5 relative. M: 56% / 56% / 25% for 2-D matmuls, 47% / 47% / 25%
/// batched, 55% / 36% / 41% for the 6-term broadcast_mul_reduce.)
fn dot_tol(k: usize) -> Tol {
    Tol::new(0.0, 2.0 * k as f64 * EPS)
}

/// WGSL `exp` on |x| <= 1: 3 + 2|x| <= 5 ulp <= 10u relative. (Was 1e-5 relative, 17x
/// looser. M: 47% / 10% / 10%.)
const EXP_TOL: Tol = Tol {
    rtol: 10.0 * EPS,
    atol: 0.0,
};

/// WGSL `tanh` = sinh / cosh through `exp` (10u relative each on |x| <= 1): the numerator
/// e^x - e^-x has an absolute error of 10u (e^x + e^-x) + u |e^x - e^-x|, the denominator
/// 11u relative, the division 5u: 10u absolute + 17u relative. (Was 1e-6 absolute + 1e-5
/// relative. M: 15% / 3% / 16%.)
const TANH_TOL: Tol = Tol {
    rtol: 17.0 * EPS,
    atol: 10.0 * EPS,
};

/// How the random values of an input are shaped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dist {
    /// Uniform in [-1, 1).
    Uniform,
    /// In [0.1, 1.1): for log, sqrt, rsqrt.
    Positive,
    /// |v| in [0.25, 1.25) with a random sign: for divisors.
    AwayFromZero,
    /// Integers uniform in `0..n` (ids of `i32` inputs: gather, scatter-add, targets).
    Ids(usize),
}

struct Case {
    name: String,
    graph: Graph,
    dists: HashMap<String, Dist>,
    /// Tolerance of every output, by output name.
    tols: HashMap<String, Tol>,
    /// Backends that do not lower this case yet and must refuse it with a typed
    /// `Unsupported` error (checked: a backend that starts accepting it fails the row
    /// until it is taken off this list and compared like every other backend).
    refused_by: &'static [&'static str],
}

impl Case {
    /// Random inputs and parameters, deterministic per case and per name.
    fn inputs(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for id in self.graph.inputs().into_iter().chain(self.graph.params()) {
            let node = self.graph.node(id);
            let seed = fnv(&format!("{}/{}", self.name, node.name));
            let mut t = Tensor::random(&node.ty.shape, node.ty.dtype, seed);
            let dist = self.dists.get(&node.name).copied().unwrap_or(Dist::Uniform);
            for v in &mut t.data {
                *v = round_to_dtype(
                    match dist {
                        Dist::Uniform => *v,
                        Dist::Positive => v.abs() + 0.1,
                        Dist::AwayFromZero => v.signum() * (v.abs() + 0.25),
                        Dist::Ids(_) => 0.0,
                    },
                    node.ty.dtype,
                );
            }
            if let Dist::Ids(n) = dist {
                // Uniform integers from the f32 stream of the same seed (f32 uniform in
                // [-1, 1) has 24 random bits: ample for n up to 2^20).
                let u = Tensor::random(&node.ty.shape, DType::F32, seed);
                for (v, r) in t.data.iter_mut().zip(&u.data) {
                    *v = (((r + 1.0) * 0.5 * n as f64).floor())
                        .min(n as f64 - 1.0)
                        .max(0.0);
                }
            }
            out.insert(node.name.clone(), t);
        }
        out
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The outputs a case builder declares: name, node, tolerance.
#[derive(Default)]
struct Outs(Vec<(String, NodeId, Tol)>);

impl Outs {
    fn add(&mut self, name: impl Into<String>, node: NodeId, tol: Tol) {
        self.0.push((name.into(), node, tol));
    }
}

#[derive(Default)]
struct Table(Vec<Case>);

impl Table {
    /// Adds a case built by `build`, which creates inputs and declares outputs.
    fn case(
        &mut self,
        name: String,
        dists: &[(&str, Dist)],
        build: impl FnOnce(&mut Graph, &mut Outs) -> Result<(), GraphError>,
    ) {
        let mut g = Graph::new();
        let mut outs = Outs::default();
        build(&mut g, &mut outs).unwrap_or_else(|e| panic!("{name}: graph does not build: {e}"));
        let mut tols = HashMap::new();
        for (out, id, tol) in outs.0 {
            g.set_name(id, &out)
                .unwrap_or_else(|e| panic!("{name}: output name {out}: {e}"));
            g.mark_output(id).expect("output node exists");
            tols.insert(out, tol);
        }
        self.push(name, dists, g, tols);
    }

    fn push(
        &mut self,
        name: String,
        dists: &[(&str, Dist)],
        graph: Graph,
        tols: HashMap<String, Tol>,
    ) {
        self.0.push(Case {
            name,
            graph,
            dists: dists.iter().map(|(n, d)| (n.to_string(), *d)).collect(),
            tols,
            refused_by: &[],
        });
    }
}

/// The 2-D matmul shapes (M, N, K) of every transpose combination: the full product of
/// {1, 17, 64, 129}, 64 shapes.
fn matmul_shapes() -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for m in MM {
        for n in MM {
            for k in MM {
                out.push((m, n, k));
            }
        }
    }
    out
}

/// The output name of the 2-D matmul of shape (M, N, K) in a `matmul/...` case.
fn mm_name(m: usize, n: usize, k: usize) -> String {
    format!("mm_m{m}n{n}k{k}")
}

fn tname(ta: bool, tb: bool) -> String {
    format!("ta{}tb{}", ta as u8, tb as u8)
}

fn cases() -> Vec<Case> {
    use Dist::*;
    let mut t = Table::default();

    // --- Unary ops on [n] (x uniform in [-1, 1), p in [0.1, 1.1) for log / sqrt / rsqrt).
    // neg: exact. exp: EXP_TOL. tanh: TANH_TOL. log: 3 ulp (6u) relative outside
    // [0.5, 2], 2^-21 absolute inside (was 1e-5 relative + 1e-6). sqrt: 1 / inverseSqrt,
    // 2 ulp + 2.5 ulp = 9u relative (was 1e-6). rsqrt: 2 ulp = 4u relative (was 1e-6).
    // M: log 20% / 10% / 10%, sqrt 11% / 11% / 11%, rsqrt 36% / 25% / 25%.
    let log_tol = Tol::new(6.0 * EPS, 1.0 / f64::from(1u32 << 21));
    for n in SIZES {
        t.case(format!("unary/n{n}"), &[("p", Positive)], |g, o| {
            let x = g.input("x", &[n], F)?;
            let p = g.input("p", &[n], F)?;
            o.add("neg", g.neg(x)?, Tol::EXACT);
            o.add("exp", g.exp(x)?, EXP_TOL);
            o.add("tanh", g.tanh(x)?, TANH_TOL);
            o.add("log", g.log(p)?, log_tol);
            o.add("sqrt", g.sqrt(p)?, Tol::new(9.0 * EPS, 0.0));
            o.add("rsqrt", g.rsqrt(p)?, Tol::new(4.0 * EPS, 0.0));
            // abs = max(x, -x), relu = max(x, 0): exact. sigmoid = exp(min(x, 0)) /
            // (1 + exp(-|x|)): numerator exp 10u (EXP_TOL), denominator 10u * e/(1+e) <= 5u
            // plus the add's rounding 1u, the division 2.5 ulp = 5u: 21u -> 24u relative.
            o.add("abs", g.abs(x)?, Tol::EXACT);
            o.add("relu", g.relu(x)?, Tol::EXACT);
            o.add("sigmoid", g.sigmoid(x)?, Tol::new(24.0 * EPS, 0.0));
            // erf: every target uses the Maclaurin series to x^13 for |x| <= 0.5 (a few
            // roundings: 8u relative) and Abramowitz-Stegun 7.1.26 above (max absolute
            // error 1.5e-7, plus the f32 evaluation's roundings, covered by the 8u).
            o.add("erf", g.erf(x)?, Tol::new(8.0 * EPS, 1.5e-7));
            Ok(())
        });
    }

    // --- Compare (bool outputs) and select on [n]: no arithmetic, exact. `m = max(x, y)`
    // equals x wherever x >= y, so every comparison against it meets ties (about half of
    // the elements). Not lowered to Ascend C yet: refused there with a typed error.
    for n in SIZES {
        t.case(format!("compare/n{n}"), &[], |g, o| {
            let x = g.input("x", &[n], F)?;
            let y = g.input("y", &[n], F)?;
            let m = g.max(x, y)?;
            for op in tessera::compiler::graph::CompareOp::ALL {
                o.add(op.name(), g.compare(op, x, m)?, Tol::EXACT);
            }
            let c = g.compare(tessera::compiler::graph::CompareOp::Lt, x, y)?;
            o.add("select", g.select(c, x, y)?, Tol::EXACT);
            let c = g.compare(tessera::compiler::graph::CompareOp::Ge, x, y)?;
            let s = g.select(c, y, x)?;
            o.add("select_neg", g.neg(s)?, Tol::EXACT);
            Ok(())
        });
        if let Some(c) = t.0.last_mut() {
            c.refused_by = &[];
        }
    }

    // --- Casts on [n] (the reference computes in f64 without rounding to f32). f32 -> i32
    // truncates toward zero: x is scaled by 100 so that the integer parts vary; the device
    // truncates f32(100 x), the reference 100 x, which differ only within 100u of an
    // integer (none in these inputs): exact. i32 -> f32 is exact below 2^24; the
    // difference 100 x - trunc carries the f32 rounding of 100 x (|100 x| < 100: 100u
    // absolute) and is itself exact. f32 -> f16 rounds to nearest even (exact); the
    // product with x is one f32 rounding. The f16 and bf16 rows are separate cases,
    // refused (typed Unsupported) by the tile interpreter (which runs the `Target::wgsl()`
    // plan: no f16 or bf16 storage); wgpu stores f16 where the device has `shader-f16`
    // and bf16 as u32 word pairs. f32 -> bf16 likewise (exact: rounded to nearest even,
    // in registers on the SIMT targets, see conformance/dtypes.rs). (An
    // Ascend bf16 row was once one bf16 ulp off at one element of 4097: the reference's
    // rounding was wrong, `half::bf16::from_f64` ignores the low 32 mantissa bits, so a
    // value just above a tie rounded as a tie; `graph::bf16_from_f64` fixes that.)
    for n in SIZES {
        t.case(format!("cast/n{n}"), &[], |g, o| {
            let x = g.input("x", &[n], F)?;
            let hundred = g.constant(100.0, &[], F)?;
            let big = g.mul(x, hundred)?;
            let i = g.cast(big, DType::I32)?;
            o.add("f32_to_i32", i, Tol::EXACT);
            let back = g.cast(i, F)?;
            o.add(
                "i32_to_f32_sub",
                g.sub(big, back)?,
                Tol::new(0.0, 100.0 * EPS),
            );
            Ok(())
        });
        t.case(format!("cast_f16/n{n}"), &[], |g, o| {
            let x = g.input("x", &[n], F)?;
            let h = g.cast(x, DType::F16)?;
            let hf = g.cast(h, F)?;
            o.add("f32_to_f16_mul", g.mul(hf, x)?, Tol::ONE_ROUNDING);
            o.add("f32_to_f16", h, Tol::EXACT);
            Ok(())
        });
        // wgpu stores f16 when the device has `shader-f16` (lavapipe does).
        if let Some(c) = t.0.last_mut() {
            c.refused_by = &["tile_interp"];
        }
        t.case(format!("cast_bf16/n{n}"), &[], |g, o| {
            let x = g.input("x", &[n], F)?;
            let h = g.cast(x, DType::BF16)?;
            let hf = g.cast(h, F)?;
            o.add("f32_to_bf16_mul", g.mul(hf, x)?, Tol::ONE_ROUNDING);
            o.add("f32_to_bf16", h, Tol::EXACT);
            Ok(())
        });
        if let Some(c) = t.0.last_mut() {
            c.refused_by = &["tile_interp"];
        }
    }

    // --- Binary ops on [n] x [n]. add / sub / mul: one rounding. div: WGSL allows 2.5 ulp,
    // 5u relative (the divisor d is kept away from zero; was 1e-6; M: 20% / 20% / 20%).
    // max: exact.
    for n in SIZES {
        t.case(
            format!("binary/n{n}"),
            &[("d", AwayFromZero), ("p", Positive)],
            |g, o| {
                let a = g.input("a", &[n], F)?;
                let b = g.input("b", &[n], F)?;
                let d = g.input("d", &[n], F)?;
                o.add("add", g.add(a, b)?, Tol::ONE_ROUNDING);
                o.add("sub", g.sub(a, b)?, Tol::ONE_ROUNDING);
                o.add("mul", g.mul(a, b)?, Tol::ONE_ROUNDING);
                o.add("div", g.div(a, d)?, Tol::new(5.0 * EPS, 0.0));
                o.add("max", g.max(a, b)?, Tol::EXACT);
                // min and clamp (max then min against constants): exact. reciprocal: one
                // division, 2.5 ulp in WGSL: 5u relative (as div).
                o.add("min", g.min(a, b)?, Tol::EXACT);
                o.add("clamp", g.clamp(a, -0.5, 0.25)?, Tol::EXACT);
                o.add("reciprocal", g.reciprocal(d)?, Tol::new(5.0 * EPS, 0.0));
                // pow(p, b) = exp(b ln p), p in [0.1, 1.1), |b| < 1, so |b ln p| < 2.31. WGSL's
                // log: 2^-21 absolute inside [0.5, 2], 6u relative outside (|ln p| < 2.31):
                // at most 14u absolute; times |b| < 1, plus the product's rounding 2.31u, is
                // the absolute error of the exponent, i.e. the relative error it leaves after
                // exp: 8u + 14u + 2.3u; exp's own 3 + 2 * 2.31 ulp = 15.3u: 40u -> 48u relative.
                let p = g.input("p", &[n], F)?;
                o.add("pow", g.pow(p, b)?, Tol::new(48.0 * EPS, 0.0));
                Ok(())
            },
        );
    }

    // --- Reductions: every op over every axis of a rank-3 tensor (reduced extent n) and
    // over a rank-1 tensor, keep_dims both ways. sum: sum_tol(n). mean: the sum's error
    // divided by n (3u absolute) + the scaling by 1/n (rounding of 1/n and of the
    // product: 2u relative; was 16u absolute + 1e-5 relative; M: 25% / 22% / 18%). max:
    // exact.
    for n in SIZES {
        t.case(format!("reduce/n{n}"), &[], |g, o| {
            let inputs = [
                ("axis0", g.input("x0", &[n, 3, 5], F)?, 0),
                ("axis1", g.input("x1", &[3, n, 5], F)?, 1),
                ("axis2", g.input("x2", &[3, 5, n], F)?, 2),
                ("rank1", g.input("x3", &[n], F)?, 0),
            ];
            for (what, x, axis) in inputs {
                for (op, name, tol) in [
                    (ReduceOp::Sum, "sum", sum_tol(n)),
                    (ReduceOp::Max, "max", Tol::EXACT),
                    (ReduceOp::Mean, "mean", Tol::new(2.0 * EPS, 3.0 * EPS)),
                ] {
                    for keep in [true, false] {
                        let y = g.reduce(op, x, axis, keep)?;
                        o.add(format!("{name}_{what}_keep{}", keep as u8), y, tol);
                    }
                }
            }
            Ok(())
        });
    }

    // --- Matmul, per transpose combination: all 64 shapes of {1, 17, 64, 129}^3, then
    // batched matmuls (batch 3) with both operands batched or one shared by every batch.
    // Error: a dot product of length K, dot_tol(K).
    for (t_idx, (ta, tb)) in TRANSPOSES.into_iter().enumerate() {
        t.case(format!("matmul/{}", tname(ta, tb)), &[], |g, o| {
            let shape =
                |rows: usize, cols: usize, tr: bool| if tr { [cols, rows] } else { [rows, cols] };
            for (i, (m, n, k)) in matmul_shapes().into_iter().enumerate() {
                let a = g.input(&format!("a{i}"), &shape(m, k, ta), F)?;
                let b = g.input(&format!("b{i}"), &shape(k, n, tb), F)?;
                o.add(mm_name(m, n, k), g.matmul_t(a, b, ta, tb)?, dot_tol(k));
            }
            for (j, mode) in ["both", "shared_b", "shared_a"].into_iter().enumerate() {
                let r = t_idx * 3 + j;
                let (m, n, k) = (MM[r % 4], MM[(r + 1) % 4], MM[(r + 2) % 4]);
                let batch = 3;
                let a2 = shape(m, k, ta).to_vec();
                let b2 = shape(k, n, tb).to_vec();
                let ash = if mode == "shared_a" {
                    a2
                } else {
                    [vec![batch], a2].concat()
                };
                let bsh = if mode == "shared_b" {
                    b2
                } else {
                    [vec![batch], b2].concat()
                };
                let a = g.input(&format!("ba{j}"), &ash, F)?;
                let b = g.input(&format!("bb{j}"), &bsh, F)?;
                o.add(
                    format!("bmm_{mode}_b{batch}m{m}n{n}k{k}"),
                    g.matmul_t(a, b, ta, tb)?,
                    dot_tol(k),
                );
            }
            Ok(())
        });
    }

    // --- Views feeding compute. Each view only changes indexing; what follows is one
    // add / mul (one rounding), an exp (EXP_TOL), or a sum of 6 products (dot_tol(6); was
    // 24u + 1e-5 relative).
    for n in SIZES {
        t.case(format!("views/n{n}"), &[], |g, o| {
            // Row broadcast (bias add, a parameter): [3, n] + [n].
            let x = g.input("rx", &[3, n], F)?;
            let b = g.param("rb", &[n], F)?;
            o.add("broadcast_row_add", g.add(x, b)?, Tol::ONE_ROUNDING);
            // Column broadcast: [n, 5] * [n, 1].
            let x = g.input("cx", &[n, 5], F)?;
            let s = g.input("cs", &[n, 1], F)?;
            o.add("broadcast_col_mul", g.mul(x, s)?, Tol::ONE_ROUNDING);
            // A scalar constant broadcast to [n].
            let x = g.input("kx", &[n], F)?;
            let c = g.constant(2.5, &[], F)?;
            o.add("constant_scalar_mul", g.mul(x, c)?, Tol::ONE_ROUNDING);
            // 2-D transpose feeding an add: x^T [7, n] + y [7, n].
            let x = g.input("px", &[n, 7], F)?;
            let y = g.input("py", &[7, n], F)?;
            let xt = g.permute(x, &[1, 0])?;
            o.add("permute2d_add", g.add(xt, y)?, Tol::ONE_ROUNDING);
            // 3-D permute feeding an add: [2, n, 3] -> [3, 2, n].
            let x = g.input("qx", &[2, n, 3], F)?;
            let y = g.input("qy", &[3, 2, n], F)?;
            let xp = g.permute(x, &[2, 0, 1])?;
            o.add("permute3d_add", g.add(xp, y)?, Tol::ONE_ROUNDING);
            // Reshape, then permute, then exp: [4n] -> [n, 4] -> [4, n].
            let x = g.input("sx", &[4 * n], F)?;
            let r = g.reshape(x, &[n, 4])?;
            let p = g.permute(r, &[1, 0])?;
            o.add("reshape_permute_exp", g.exp(p)?, EXP_TOL);
            // Broadcast feeding a reduction over the broadcast axis: sum_0(bcast(x) * y).
            let x = g.input("ux", &[n], F)?;
            let y = g.input("uy", &[6, n], F)?;
            let p = g.mul(x, y)?;
            o.add("broadcast_mul_reduce", g.sum(p, 0, false)?, dot_tol(6));
            Ok(())
        });
    }
    // Views that are themselves outputs (a copy is forced): exact.
    t.case("views/as_outputs".into(), &[], |g, o| {
        for n in [7, 1000] {
            let x = g.input(&format!("x{n}"), &[n, 3], F)?;
            o.add(format!("permute_n{n}"), g.permute(x, &[1, 0])?, Tol::EXACT);
        }
        let x = g.input("r", &[4, 6], F)?;
        let r = g.reshape(x, &[3, 8])?;
        o.add("reshape_exp", g.exp(r)?, EXP_TOL);
        Ok(())
    });

    // --- Elementwise chains (fused kernels). A few roundings and one or two
    // transcendental ops per element: 1e-5 relative, 1e-6 absolute (tanh near 0). Kept:
    // near zero the WGSL bounds allow more than 1e-6 absolute (exp(-x) * y + x cancels
    // exp's 10u relative error on values up to 2.7, i.e. 27u = 1.6e-6 before tanh; exp(xy)
    // in shared_exp_add the same; log's 2^-21 absolute times rsqrt(q) <= 3.2 is 1.5e-6),
    // so the stated bound is not looser than the numerics justify. M: 17.5% / 3.5% / 5.9%
    // (worst chain output).
    let chain = Tol::new(1e-5, 1e-6);
    for n in SIZES {
        t.case(
            format!("chains/n{n}"),
            &[("p", Positive), ("q", Positive)],
            |g, o| {
                let x = g.input("x", &[n], F)?;
                let y = g.input("y", &[n], F)?;
                let p = g.input("p", &[n], F)?;
                let q = g.input("q", &[n], F)?;
                // tanh(exp(-x) * y + x) / (sqrt(p) + 1)
                let e = g.neg(x)?;
                let e = g.exp(e)?;
                let z = g.mul(e, y)?;
                let z = g.add(z, x)?;
                let z = g.tanh(z)?;
                let s = g.sqrt(p)?;
                let one = g.constant(1.0, &[], F)?;
                let d = g.add(s, one)?;
                o.add("exp_mul_add_tanh_div", g.div(z, d)?, chain);
                // Three outputs sharing an intermediate (x * y), an input used twice.
                let xy = g.mul(x, y)?;
                let ex = g.exp(xy)?;
                let o2 = g.add(ex, x)?;
                let xx = g.mul(x, x)?;
                let o3 = g.sub(xx, xy)?;
                o.add("shared_xy", xy, Tol::ONE_ROUNDING);
                o.add("shared_exp_add", o2, chain);
                // x*x - x*y can cancel: the two products (below 1 in magnitude) are
                // rounded by up to u each, 2u = 1.19e-7 absolute together (1.2e-7 covers
                // the u^2 term), and the difference by one rounding relative to itself:
                // u (was 4u; M: 56% on every backend).
                o.add("shared_square_sub", o3, Tol::new(EPS, 1.2e-7));
                // log(max(p, q)) * rsqrt(q)
                let m = g.max(p, q)?;
                let l = g.log(m)?;
                let r = g.rsqrt(q)?;
                o.add("max_log_rsqrt", g.mul(l, r)?, chain);
                Ok(())
            },
        );
    }

    // --- Reductions with fused producers and consumers.
    for n in SIZES {
        t.case(format!("fused_reduce/n{n}"), &[], |g, o| {
            // Layer-norm-like over rows of [3, n]: (x - mean) * rsqrt(var + eps). The
            // output's relative error is half the variance's (a positive sum: ~sqrt(n) eps
            // relative, <= 4e-6 at n = 4097) plus rsqrt's 2 ulp; x - mean has an absolute
            // error of ~eps: 2e-5 relative, 1e-6 absolute (outputs are O(1)).
            let x = g.input("lx", &[3, n], F)?;
            let mu = g.mean(x, 1, true)?;
            let d = g.sub(x, mu)?;
            let d2 = g.mul(d, d)?;
            let var = g.mean(d2, 1, true)?;
            let eps = g.constant(1e-5, &[], F)?;
            let v = g.add(var, eps)?;
            let r = g.rsqrt(v)?;
            // Kept: rsqrt(var + eps) multiplies the mean's absolute error and is not
            // bounded by the data (up to 316), so 1e-6 absolute is not loose. M for all
            // four fused reductions: <= 3.1% / 5.6% / 2.4% (blocked sums beat the
            // worst-order derivations below).
            o.add("layernorm_rows", g.mul(d, r)?, Tol::new(2e-5, 1e-6));
            // Softmax-like over rows: exp(x - max) / sum(exp(x - max)). Values in (0, 1]:
            // exp's few ulp, the division's 2.5 ulp and the relative error of a sum of n
            // positive terms (~sqrt(n) eps typical, 4e-6 at n = 4097): 2e-5 relative.
            let x = g.input("sx", &[3, n], F)?;
            let m = g.reduce_max(x, 1, true)?;
            let d = g.sub(x, m)?;
            let e = g.exp(d)?;
            let s = g.sum(e, 1, true)?;
            // Kept: in the worst (sequential) order a sum of 4097 positive terms reaches
            // ~8 sqrt(n) u / 3 = 170u = 1e-5 relative, plus exp (|x - max| <= 2: 7 ulp)
            // and the division: 1.2e-5 derived, not far below 2e-5.
            o.add("softmax_rows", g.div(e, s)?, Tol::new(2e-5, 0.0));
            // Log-sum-exp over axis 0 of [n, 5] (a strided reduction): the sum of n terms
            // in (0.36, 2.72) has no cancellation (relative error < 1e-5), which log turns
            // into an absolute error of that size; log's own 3 ulp are relative to
            // |result| <= 8.4: 2e-6 relative + 1e-5 absolute.
            let x = g.input("ex", &[n, 5], F)?;
            let e = g.exp(x)?;
            let s = g.sum(e, 0, false)?;
            // Kept: the positive sum's ~1e-5 relative error (as for softmax) becomes 1e-5
            // absolute through log.
            o.add("logsumexp_cols", g.log(s)?, Tol::new(2e-6, 1e-5));
            // sqrt(sum((x * y)^2)) over a rank-1 tensor, keep_dims false (a rank-0
            // output): non-negative terms, relative error of the sum < 1e-5, halved by
            // sqrt, plus sqrt's ulp: 1e-5 relative.
            let x = g.input("nx", &[n], F)?;
            let y = g.input("ny", &[n], F)?;
            let p = g.mul(x, y)?;
            let p2 = g.mul(p, p)?;
            let s = g.sum(p2, 0, false)?;
            // Kept: the positive sum's ~1e-5 relative error, halved by sqrt, plus two
            // product roundings and sqrt's 9u: 6e-6 derived, not far below 1e-5.
            o.add("norm_rank1", g.sqrt(s)?, Tol::new(1e-5, 0.0));
            Ok(())
        });
    }

    // --- Matmul with a bias + tanh epilogue (every transpose combination). The matmul's
    // dot_tol(K) (was 4Ku + 1e-5 relative) passes through tanh (slope <= 1), plus tanh's
    // own 1e-6 absolute + 1e-5 relative, kept: WGSL's exp bound grows as 3 + 2|z| ulp with
    // the pre-activation |z| (up to K + 1), which makes tanh's bound comparable to 1e-5.
    // M: 11.5% / 11.2% / 9.1%.
    t.case("fused_matmul/bias_tanh".into(), &[], |g, o| {
        for (i, (m, n, k)) in [(1, 17, 64), (17, 129, 1), (64, 1, 129), (129, 64, 17)]
            .into_iter()
            .enumerate()
        {
            let (ta, tb) = TRANSPOSES[i];
            let a = g.input(&format!("x{i}"), &if ta { [k, m] } else { [m, k] }, F)?;
            let w = g.param(&format!("w{i}"), &if tb { [n, k] } else { [k, n] }, F)?;
            let b = g.param(&format!("b{i}"), &[n], F)?;
            let h = g.matmul_t(a, w, ta, tb)?;
            let h = g.add(h, b)?;
            o.add(
                format!("{}_m{m}n{n}k{k}", tname(ta, tb)),
                g.tanh(h)?,
                Tol::new(1e-5, dot_tol(k).atol + 1e-6),
            );
        }
        Ok(())
    });

    // --- The MLP demo: sum over d_hidden of tanh(x @ w + b). The matmul's error per
    // hidden unit passes through tanh, then d_hidden terms in (-1, 1) are summed:
    // 4 (d_in + d_hidden) u + 1e-5 relative. Kept: tanh's error per hidden unit (up to
    // ~1e-6 at large pre-activations, see above) can be biased and then adds up linearly
    // over d_hidden = 4097, which is above this bound. M: 7.7% / 8.0% / 5.3%.
    for (b, i, h) in [
        (1, 1, 1),
        (7, 17, 64),
        (127, 64, 129),
        (1000, 17, 7),
        (3, 129, 4097),
    ] {
        let g = mlp_block(b, i, h).expect("MLP demo graph");
        let tols = HashMap::from([("y".to_string(), Tol::new(1e-5, 4.0 * (i + h) as f64 * EPS))]);
        t.push(format!("mlp/b{b}i{i}h{h}"), &[], g, tols);
    }
    composite_cases::add_cases(&mut t);
    indexing_cases::add_cases(&mut t);
    attention_cases::add_cases(&mut t);
    attention_bwd_cases::add_cases(&mut t);
    rope_cases::add_cases(&mut t);
    dtypes_cases::add_cases(&mut t);
    multi_output_cases::add_cases(&mut t);
    t.0
}

/// The case table, restricted to the case names containing `TESSERA_CONFORMANCE_FILTER`
/// when that variable is set (for working on one family: the filter is printed, so a
/// filtered run is never mistaken for a full one).
fn selected_cases() -> Vec<Case> {
    let all = cases();
    match std::env::var("TESSERA_CONFORMANCE_FILTER") {
        Ok(f) if !f.is_empty() => {
            println!("TESSERA_CONFORMANCE_FILTER={f}: running only the matching cases");
            all.into_iter().filter(|c| c.name.contains(&f)).collect()
        }
        _ => all,
    }
}

// ---------------------------------------------------------------------------------------

/// Runs one case on one backend, returning the outputs by name.
type Runner<'a> =
    dyn Fn(&Case, &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>, String> + Sync + 'a;

/// Loads the graph on a [`Device`], sets the parameters and runs once.
fn run_on_device(
    device: &dyn Device,
    case: &Case,
    all: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, String> {
    let mut exe = device.load(&case.graph).map_err(|e| e.to_string())?;
    let params: Vec<String> = exe
        .signature()
        .params
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    let mut inputs = all.clone();
    for p in params {
        let t = inputs.remove(&p).ok_or(format!("no value for param {p}"))?;
        exe.set_param(&p, &t).map_err(|e| e.to_string())?;
    }
    exe.run(&inputs).map_err(|e| e.to_string())
}

fn run_ascend_cpu(
    case: &Case,
    all: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, String> {
    let target = Target::ascend_910b();
    let plan = tessera::compiler::compile(&case.graph, &target).map_err(|e| e.to_string())?;
    let artifact = backend::emit(&plan, &target).map_err(|e| e.to_string())?;
    tessera::runtime::ascend_cpu::run_plan_ascend_cpu(&plan, &artifact, all)
        .map_err(|e| e.to_string())
}

/// The check of one output: max abs error and the share of the tolerance used, or why
/// it fails.
type OutputCheck = (String, Result<(f64, f64), String>);

/// Compares every output of a case with its tolerance.
fn compare(
    case: &Case,
    got: &HashMap<String, Tensor>,
    want: &HashMap<String, Tensor>,
) -> Vec<OutputCheck> {
    let mut names: Vec<&String> = want.keys().collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            (
                name.clone(),
                compare_one(case, name, got.get(name), &want[name]),
            )
        })
        .collect()
}

fn compare_one(
    case: &Case,
    name: &str,
    got: Option<&Tensor>,
    w: &Tensor,
) -> Result<(f64, f64), String> {
    let tol = case
        .tols
        .get(name)
        .ok_or(format!("no tolerance declared for output `{name}`"))?;
    let g = got.ok_or("missing from the backend's outputs")?;
    if g.shape != w.shape {
        return Err(format!("shape {:?}, want {:?}", g.shape, w.shape));
    }
    if g.data.len() != w.data.len() {
        return Err(format!("{} values, want {}", g.data.len(), w.data.len()));
    }
    let (mut worst_abs, mut worst_ratio) = (0.0f64, 0.0f64);
    let mut bad = 0usize;
    let mut first_bad = String::new();
    for (idx, (&gv, &wv)) in g.data.iter().zip(&w.data).enumerate() {
        let err = if gv == wv { 0.0 } else { (gv - wv).abs() };
        let allowed = tol.atol + tol.rtol * wv.abs();
        if err.is_nan() || err > allowed {
            if bad == 0 {
                first_bad = format!(
                    "element {idx}: got {gv:e}, want {wv:e} (error {err:.3e} > allowed {allowed:.3e})"
                );
            }
            bad += 1;
        }
        worst_abs = worst_abs.max(err);
        if allowed > 0.0 {
            worst_ratio = worst_ratio.max(err / allowed);
        }
    }
    if bad > 0 {
        return Err(format!(
            "{bad} of {} elements out of tolerance; first: {first_bad}",
            w.data.len()
        ));
    }
    Ok((worst_abs, worst_ratio))
}

/// Runs the whole table on one backend with `threads` workers (cases are independent;
/// results are printed in table order) and fails listing every failing output.
/// `TESSERA_CONFORMANCE_THREADS=N` overrides `threads` (1: one case at a time, so that
/// the first case to fault a GPU context is the one the log names last).
fn conformance(backend: &str, threads: usize, run: &Runner<'_>) {
    let threads = match std::env::var("TESSERA_CONFORMANCE_THREADS") {
        Ok(v) if !v.is_empty() => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => panic!("TESSERA_CONFORMANCE_THREADS={v}: expected a whole number above 0"),
        },
        _ => threads.max(1),
    };
    println!("{backend}: {threads} worker thread(s)");
    let cases = selected_cases();
    // `TESSERA_CONFORMANCE_PROGRESS=1`: each case's start and end on stderr as it runs
    // (the summary below comes only at the end: a case that hangs on a GPU is then named
    // in the log of the run that was killed).
    let progress = std::env::var_os("TESSERA_CONFORMANCE_PROGRESS").is_some_and(|v| v == "1");
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    type Outcome = (Result<Vec<OutputCheck>, String>, u128);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                if skipped_on(backend, case).is_some() {
                    continue;
                }
                let inputs = case.inputs();
                if progress {
                    eprintln!("start {backend} {}", case.name);
                }
                let t0 = Instant::now();
                let result = match run_graph(&case.graph, &inputs) {
                    Ok(_) if case.refused_by.contains(&backend) => match run(case, &inputs) {
                        Err(e) if e.contains("not supported") || e.contains("Unsupported") => {
                            println!(
                                "refused {backend} {} (expected): {}",
                                case.name,
                                shorten(&e)
                            );
                            Ok(vec![])
                        }
                        Err(e) => Err(format!("expected a typed Unsupported error, got: {e}")),
                        Ok(_) => Err(format!(
                            "{backend} now runs this case: take it off `refused_by`"
                        )),
                    },
                    Ok(want) => run(case, &inputs).map(|got| compare(case, &got, &want)),
                    Err(e) => Err(format!("the reference interpreter failed: {e}")),
                };
                let ms = t0.elapsed().as_millis();
                if progress {
                    eprintln!("done {backend} {} ({ms} ms)", case.name);
                }
                if let Ok(mut r) = results.lock() {
                    r[i] = Some((result, ms));
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut failures = String::new();
    let (mut nfail, mut nout, mut nskip) = (0, 0, 0);
    // Worst (abs error, share of tolerance) per (case family, output name with its
    // numbers replaced by `#`).
    let mut worst: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for (case, r) in cases.iter().zip(results) {
        if let Some(why) = skipped_on(backend, case) {
            nskip += 1;
            println!("skip {backend} {} ({why})", case.name);
            continue;
        }
        let (result, ms) = r.unwrap_or((Err("not run".into()), 0));
        match result {
            Err(e) => {
                nfail += 1;
                let e = shorten(&e);
                println!("FAIL {backend} {} ({ms} ms): {e}", case.name);
                let _ = writeln!(failures, "  {}: {e}", case.name);
            }
            Ok(checks) => {
                let ok = checks.iter().all(|(_, c)| c.is_ok());
                println!(
                    "{} {backend} {} ({ms} ms)",
                    if ok { "ok  " } else { "FAIL" },
                    case.name
                );
                for (out, c) in checks {
                    nout += 1;
                    match c {
                        Ok((abs, ratio)) => {
                            println!(
                                "       {out:<32} max abs err {abs:.2e} ({:>5.1}% of tolerance)",
                                100.0 * ratio
                            );
                            let w = worst.entry(family(&case.name, &out)).or_default();
                            *w = (w.0.max(abs), w.1.max(ratio));
                        }
                        Err(e) => {
                            nfail += 1;
                            println!("  FAIL {out:<32} {e}");
                            let _ = writeln!(failures, "  {} `{out}`: {e}", case.name);
                        }
                    }
                }
            }
        }
    }
    println!("{backend}: worst per output family (passing outputs):");
    for ((fam, out), (abs, ratio)) in &worst {
        println!(
            "  {backend:<11} {:<40} max abs err {abs:.2e} ({:>5.1}% of tolerance)",
            format!("{fam}/{out}"),
            100.0 * ratio
        );
    }
    println!(
        "{backend}: {} cases ({nout} outputs checked), {nfail} failures, {nskip} skipped, {:.1} s",
        cases.len() - nskip,
        start.elapsed().as_secs_f64()
    );
    assert!(
        nfail == 0,
        "{backend}: {nfail} conformance failures (cases that did not run, or outputs out of tolerance):\n{failures}"
    );
}

/// Why `backend` does not run `case`, if it does not: the PTX VM interprets every thread's
/// instructions (a few hundred million a second), and the two T = 1024 attention cases
/// alone took 263 s of its 452 s over the table (2 cores). T = 257 runs the same code
/// paths (several key blocks, a partial last one, causal and padding masks, GQA); the
/// CUDA device runs T = 1024. `TESSERA_PTX_VM_FULL=1` runs them on the VM too.
fn skipped_on(backend: &str, case: &Case) -> Option<&'static str> {
    let full = std::env::var("TESSERA_PTX_VM_FULL").is_ok_and(|v| v == "1");
    if full {
        return None;
    }
    match backend {
        "ptx_vm" if case.name.contains("tq1024") => Some(
            "T = 1024 is too slow to interpret; T = 257 covers its code paths; TESSERA_PTX_VM_FULL=1 runs it",
        ),
        "ptx_vm_approx2" if case.name.contains("tq1024") || case.name.contains("tq257") => {
            Some("long attention runs in conformance_ptx_vm; TESSERA_PTX_VM_FULL=1 runs it here")
        }
        _ => None,
    }
}

/// The summary key of an output: its case family (`matmul`, `unary`, ...) and its name
/// with every number replaced by `#`.
fn family(case: &str, out: &str) -> (String, String) {
    let fam = case.split('/').next().unwrap_or(case).to_string();
    let mut name = String::new();
    for ch in out.chars() {
        if ch.is_ascii_digit() {
            if !name.ends_with('#') {
                name.push('#');
            }
        } else {
            name.push(ch);
        }
    }
    (fam, name)
}

/// The first lines of a long error (compiler diagnostics can run to pages).
fn shorten(e: &str) -> String {
    const MAX_LINES: usize = 8;
    let lines: Vec<&str> = e.lines().collect();
    if lines.len() <= MAX_LINES {
        return lines.join("\n      ");
    }
    format!(
        "{}\n      ... ({} more lines)",
        lines[..MAX_LINES].join("\n      "),
        lines.len() - MAX_LINES
    )
}

#[test]
fn conformance_wgpu() {
    println!("wgpu adapter: {}", wgpu().name());
    // Two workers, each with a device of its own (`wgpu()` is per thread): on an empty Mesa
    // shader cache the kernel compiles are most of this test, 2066 s on 2 cores when one
    // device compiled them all in line (measurements in `support/wgpu_thread.rs`).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    conformance("wgpu", threads, &|c, i| run_on_device(wgpu(), c, i));
}

#[test]
fn conformance_ascend_cpu() {
    // Each case is a g++ build (cached by source hash) plus a process run: one worker per
    // core (at most 4) hides most of the build latency.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    conformance("ascend_cpu", threads, &run_ascend_cpu);
}

#[test]
fn conformance_tile_interp() {
    let device = CpuDevice::tile();
    conformance("tile_interp", 1, &|c, i| run_on_device(&device, c, i));
}

/// The PTX VM: the emitted PTX (the text `conformance_ptx` assembles and the CUDA device
/// loads) executed on the host by `tessera_compiler::ptxvm`, with bounds, alignment,
/// race and barrier checks on every access. One worker per core (at most 4).
#[test]
fn conformance_ptx_vm() {
    let device = PtxVmDevice::new();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    conformance("ptx_vm", threads, &|c, i| run_on_device(&device, c, i));
}

/// The PTX VM with 2 ulps of pseudo-random error on every approximate instruction
/// (`ex2.approx`, `lg2.approx`, `rcp.approx` ...), the size of the hardware's documented
/// error: the tolerances must hold with it, not only with exactly rounded
/// approximations. (The long attention cases are left to `conformance_ptx_vm`; the
/// approximate instructions of attention run at T <= 100 here.)
#[test]
fn conformance_ptx_vm_approx_error() {
    let device = PtxVmDevice::new().with_approx_error(2);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    conformance("ptx_vm_approx2", threads, &|c, i| {
        run_on_device(&device, c, i)
    });
}

/// The CUDA device (feature `cuda`): the table on the GPU; without one, a visible
/// `SKIPPED: conformance_cuda (...)` line (a failure under `TESSERA_REQUIRE_CUDA=1`).
#[test]
fn conformance_cuda() {
    cuda_backend::run();
}

/// The PTX backend: every case compiled for `Target::ptx()`, every emitted module
/// assembled by `ptxas -v` for sm_80 and sm_90 (the emitted text as is: `.target sm_80`
/// PTX is what the driver JIT-compiles for sm_90 too), with zero spills required. The
/// ptxas runs are spread over one worker thread per core. Registers and spills of every
/// (kernel, architecture) go to `target/ptxas-conformance-report.json`.
#[test]
fn conformance_ptx() {
    const ARCHS: [u32; 2] = [80, 90];
    let ptxas = ptxas_support::find_ptxas();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ptx-conformance");
    let target = Target::ptx();
    let cases = selected_cases();
    let start = Instant::now();

    // Compile and emit every case; one job per (kernel, architecture).
    struct Job {
        case: usize,
        kernel: String,
        file: String,
        text: std::sync::Arc<str>,
        sm: u32,
    }
    let mut jobs = Vec::new();
    let mut case_errors: Vec<Option<String>> = vec![None; cases.len()];
    for (ci, case) in cases.iter().enumerate() {
        let artifact = tessera::compiler::compile(&case.graph, &target)
            .map_err(|e| format!("compile: {e}"))
            .and_then(|plan| {
                let a = backend::emit(&plan, &target).map_err(|e| format!("emit: {e}"))?;
                if a.kernels.len() == plan.kernels.len() {
                    Ok(a)
                } else {
                    Err(format!(
                        "{} kernels emitted for {} in the plan",
                        a.kernels.len(),
                        plan.kernels.len()
                    ))
                }
            });
        if case.refused_by.contains(&"ptx") {
            match artifact {
                Err(e) if e.contains("not supported") => {
                    println!("refused ptx {} (expected): {}", case.name, shorten(&e));
                }
                Err(e) => case_errors[ci] = Some(format!("expected Unsupported, got: {e}")),
                Ok(_) => {
                    case_errors[ci] =
                        Some("ptx now compiles this case: take it off `refused_by`".into())
                }
            }
            continue;
        }
        let artifact = match artifact {
            Ok(a) => a,
            Err(e) => {
                case_errors[ci] = Some(e);
                continue;
            }
        };
        for k in &artifact.kernels {
            let Some(f) = artifact.files.iter().find(|f| f.name == k.file) else {
                case_errors[ci] = Some(format!("kernel {}: no file {}", k.name, k.file));
                break;
            };
            let text: std::sync::Arc<str> = f.contents.as_str().into();
            for sm in ARCHS {
                jobs.push(Job {
                    case: ci,
                    kernel: k.name.clone(),
                    file: format!("{}__{}", case.name.replace('/', "__"), k.name),
                    text: text.clone(),
                    sm,
                });
            }
        }
    }
    let compiled = start.elapsed().as_secs_f64();

    // Assemble in parallel.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<ptxas_support::PtxasInfo, String>>>> =
        Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let r = ptxas_support::assemble(&ptxas, &dir, &job.file, &job.text, job.sm);
                if let Ok(mut all) = results.lock() {
                    all[i] = Some(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();

    // Report, per case, and collect failures.
    let mut report = Vec::new();
    let mut failures = String::new();
    let mut nfail = 0;
    let mut per_case: Vec<Vec<(&Job, Result<ptxas_support::PtxasInfo, String>)>> =
        (0..cases.len()).map(|_| Vec::new()).collect();
    for (job, r) in jobs.iter().zip(results) {
        per_case[job.case].push((job, r.unwrap_or_else(|| Err("not run".into()))));
    }
    let mut max_regs: BTreeMap<u32, (u32, String)> = BTreeMap::new();
    for (ci, case) in cases.iter().enumerate() {
        if let Some(e) = &case_errors[ci] {
            nfail += 1;
            let e = shorten(e);
            println!("FAIL ptx {}: {e}", case.name);
            let _ = writeln!(failures, "  {}: {e}", case.name);
            continue;
        }
        let mut bad = Vec::new();
        let mut regs = [0u32; 2];
        for (job, r) in &per_case[ci] {
            match r {
                Ok(info) => {
                    report.push(ptxas_support::ReportEntry::new(
                        &case.name,
                        &job.kernel,
                        job.sm,
                        info,
                    ));
                    let slot = usize::from(job.sm == 90);
                    regs[slot] = regs[slot].max(info.registers);
                    let m = max_regs.entry(job.sm).or_default();
                    if info.registers > m.0 {
                        *m = (info.registers, format!("{}/{}", case.name, job.kernel));
                    }
                    if info.spill_stores > 0 || info.spill_loads > 0 {
                        bad.push(format!(
                            "{} on sm_{}: {} bytes spill stores, {} bytes spill loads",
                            job.kernel, job.sm, info.spill_stores, info.spill_loads
                        ));
                    }
                }
                Err(e) => bad.push(format!("{} on sm_{}: {}", job.kernel, job.sm, shorten(e))),
            }
        }
        let kernels = per_case[ci].len() / ARCHS.len();
        if bad.is_empty() {
            println!(
                "ok   ptx {} ({kernels} kernels; max registers sm_80 {}, sm_90 {})",
                case.name, regs[0], regs[1]
            );
        } else {
            nfail += bad.len();
            println!("FAIL ptx {} ({kernels} kernels)", case.name);
            for b in bad {
                println!("  FAIL {b}");
                let _ = writeln!(failures, "  {}: {b}", case.name);
            }
        }
    }
    let written = ptxas_support::write_report("ptxas-conformance-report.json", &report);
    for (sm, (r, k)) in &max_regs {
        println!("ptx: most registers on sm_{sm}: {r} ({k})");
    }
    println!(
        "ptx: {} cases, {} modules x {} architectures assembled with {} ({threads} threads), \
         {nfail} failures, {:.1} s (compile + emit {compiled:.1} s); report: {}",
        cases.len(),
        jobs.len() / ARCHS.len(),
        ARCHS.len(),
        ptxas.display(),
        start.elapsed().as_secs_f64(),
        written
            .as_ref()
            .map_or_else(|e| e.clone(), |p| p.display().to_string()),
    );
    assert!(
        nfail == 0,
        "ptx: {nfail} failures (cases that did not compile, modules ptxas rejected, spills):\n{failures}"
    );
    if let Err(e) = written {
        panic!("ptx: cannot write the ptxas report: {e}");
    }
}

/// The summation bounds hold for the worst summation order: sequential f32 sums of
/// uniform terms (and of rounded products) against the exact f64 sum, many random trials
/// per length (a smaller rerun of the simulation `sum_tol` and `dot_tol` cite).
#[test]
fn sum_bounds_cover_sequential_summation() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // SplitMix64 -> uniform in [-1, 1) with 53 random bits, rounded to f32 (as
        // `Tensor::random` makes the suite's inputs).
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 * (2.0 / (1u64 << 53) as f64) - 1.0) as f32
    };
    for (n, trials) in [
        (2, 200_000),
        (3, 200_000),
        (6, 200_000),
        (7, 200_000),
        (17, 100_000),
        (64, 50_000),
        (129, 50_000),
        (1000, 5_000),
        (4097, 1_000),
    ] {
        let (mut worst_sum, mut worst_dot) = (0.0f64, 0.0f64);
        for _ in 0..trials {
            let (mut s32, mut s64, mut d32, mut d64) = (0.0f32, 0.0f64, 0.0f32, 0.0f64);
            for _ in 0..n {
                let (a, b) = (next(), next());
                s32 += a;
                s64 += f64::from(a);
                d32 += a * b;
                d64 += f64::from(a) * f64::from(b);
            }
            worst_sum = worst_sum.max((f64::from(s32) - s64).abs());
            worst_dot = worst_dot.max((f64::from(d32) - d64).abs());
        }
        println!(
            "n = {n:>4}: sequential sum worst {:.2} n u (bound {:.1}), dot worst {:.2} n u \
             (bound {:.1})",
            worst_sum / (n as f64 * EPS),
            sum_tol(n).atol / (n as f64 * EPS),
            worst_dot / (n as f64 * EPS),
            dot_tol(n).atol / (n as f64 * EPS)
        );
        assert!(worst_sum <= sum_tol(n).atol, "sum of {n}: {worst_sum:e}");
        assert!(worst_dot <= dot_tol(n).atol, "dot of {n}: {worst_dot:e}");
    }
}

#[test]
fn case_table_is_well_formed() {
    // Every case builds, validates, has a unique name and a tolerance for each output.
    let cases = cases();
    let mut names = std::collections::HashSet::new();
    let mut outputs = 0;
    for c in &cases {
        assert!(names.insert(c.name.clone()), "duplicate case {}", c.name);
        c.graph
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        for &o in c.graph.outputs() {
            let name = &c.graph.node(o).name;
            let tol = c
                .tols
                .get(name)
                .unwrap_or_else(|| panic!("{}: `{name}` has no tolerance", c.name));
            assert!(tol.rtol >= 0.0 && tol.atol >= 0.0);
            outputs += 1;
        }
        assert_eq!(c.tols.len(), c.graph.outputs().len(), "{}", c.name);
    }
    // Every size is covered by each size-parameterised family.
    for family in [
        "unary",
        "binary",
        "reduce",
        "views",
        "chains",
        "fused_reduce",
    ] {
        for n in SIZES {
            assert!(
                names.contains(&format!("{family}/n{n}")),
                "{family} at n = {n} missing"
            );
        }
    }
    // Every matmul shape of {1, 17, 64, 129}^3, for every transpose combination.
    assert_eq!(matmul_shapes().len(), 64);
    for (ta, tb) in TRANSPOSES {
        let name = format!("matmul/{}", tname(ta, tb));
        let case = cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        for m in MM {
            for n in MM {
                for k in MM {
                    assert!(
                        case.tols.contains_key(&mm_name(m, n, k)),
                        "{name}: M, N, K = {m}, {n}, {k} not covered"
                    );
                }
            }
        }
    }
    println!("{} conformance cases, {outputs} outputs", cases.len());
}
