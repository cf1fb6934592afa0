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
//!   which tells scheduler bugs from printer bugs.
//!
//! A case is one graph with several named outputs, each checked with its own tolerance:
//! the unary case at size n computes all six unary ops, the reduction case at size n every
//! op over every axis with both keep_dims values, and so on. Grouping keeps the number of
//! compilations (a g++ build each on the Ascend C CPU build) small, while a failure still
//! names the output, i.e. the op, that is wrong. Each test runs the whole table, prints one
//! line per output (measured max error and the share of the tolerance it uses; run with
//! `--nocapture`) and fails at the end listing every failing output.
//!
//! Sizes: every size-parameterised case runs at 1, 7, 127, 1000 and 4097 along the axis
//! under test. Reductions: sum, max and mean over every axis of a rank-3 tensor (the
//! reduced extent n, the others 3 and 5) and over a rank-1 tensor, with keep_dims true and
//! false: the full product at every size. Matmul: M, N, K in {1, 17, 64, 129}, for each of
//! the four transpose combinations a 16-cell Latin square (M = value i, N = value j,
//! K = value (i + j + t) mod 4): every pair of values of every pair of dims occurs once,
//! so every value of each dim is covered 4 times (the full product would be 4^3 per
//! combination); plus batched matmuls (both operands batched, or either one shared).
//!
//! Tolerances: an element passes when `|got - want| <= atol + rtol * |want|`; each
//! output's tolerance is stated where it is built, with its justification.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use tessera::compiler::backend;
use tessera::compiler::graph::ReduceOp;
use tessera::compiler::interp::{round_to_dtype, run_graph, Tensor};
use tessera::compiler::{DType, Graph, GraphError, NodeId, Target};
use tessera::models::mlp::mlp_block;
use tessera::runtime::{CpuDevice, Device, WgpuDevice};

const SIZES: [usize; 5] = [1, 7, 127, 1000, 4097];
const MM: [usize; 4] = [1, 17, 64, 129];
const TRANSPOSES: [(bool, bool); 4] = [(false, false), (false, true), (true, false), (true, true)];
/// One f32 rounding, relative: 2^-24.
const EPS: f64 = 1.0 / (1u64 << 24) as f64;
const F: DType = DType::F32;

fn wgpu() -> &'static WgpuDevice {
    static DEVICE: OnceLock<Result<WgpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| WgpuDevice::new().map_err(|e| e.to_string())) {
        Ok(d) => d,
        Err(e) => panic!("no wgpu device, so the wgpu conformance suite cannot run: {e}"),
    }
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
    /// One correctly rounded f32 operation on exact inputs (add, sub, mul): 2^-24
    /// relative; 4 eps of slack.
    const ONE_ROUNDING: Tol = Tol {
        rtol: 4.0 * EPS,
        atol: 0.0,
    };
    fn new(rtol: f64, atol: f64) -> Tol {
        Tol { rtol, atol }
    }
}

/// Tolerance of a sum of `n` f32 terms of magnitude <= 1 with random signs. Each addition
/// rounds by up to eps = 2^-24 relative to a partial sum of typical size 0.6 sqrt(k), so a
/// sequential sum's error has a standard deviation of about 0.4 n eps (blocked and tree
/// orders do better): 4 n eps absolute is ~10 sigma for the worst order, plus 1e-5
/// relative for large results. (Measured on lavapipe: <= 5% of this bound.)
fn sum_tol(n: usize) -> Tol {
    Tol::new(1e-5, 4.0 * n as f64 * EPS)
}

/// How the random values of an input are shaped.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dist {
    /// Uniform in [-1, 1).
    Uniform,
    /// In [0.1, 1.1): for log, sqrt, rsqrt.
    Positive,
    /// |v| in [0.25, 1.25) with a random sign: for divisors.
    AwayFromZero,
}

struct Case {
    name: String,
    graph: Graph,
    dists: HashMap<String, Dist>,
    /// Tolerance of every output, by output name.
    tols: HashMap<String, Tol>,
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
                    },
                    node.ty.dtype,
                );
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
        });
    }
}

/// The 2-D matmul cells (transpose a, transpose b, M, N, K): for each transpose variant t,
/// the Latin square M = value i, N = value j, K = value (i + j + t) mod 4 over
/// {1, 17, 64, 129}.
fn matmul_dims() -> Vec<(bool, bool, usize, usize, usize)> {
    let mut out = Vec::new();
    for (t, (ta, tb)) in TRANSPOSES.into_iter().enumerate() {
        for i in 0..4 {
            for j in 0..4 {
                out.push((ta, tb, MM[i], MM[j], MM[(i + j + t) % 4]));
            }
        }
    }
    out
}

fn tname(ta: bool, tb: bool) -> String {
    format!("ta{}tb{}", ta as u8, tb as u8)
}

fn cases() -> Vec<Case> {
    use Dist::*;
    let mut t = Table::default();

    // --- Unary ops on [n] (x uniform, p positive for log / sqrt / rsqrt).
    // neg: exact. exp: WGSL allows 3 + 2|x| ulp (<= 5 ulp = 3e-7 on [-1, 1]); 1e-5 leaves
    // room for the drivers' approximations (measured <= 2.5e-7 relative on lavapipe).
    // log: WGSL gives 2^-21 absolute near 1, 3 ulp elsewhere: 1e-5 relative + 1e-6
    // absolute. sqrt / rsqrt: 2-3 ulp, 1e-6 relative (measured <= 1.5 ulp). tanh: WGSL
    // inherits sinh / cosh accuracy, an absolute bound near 0: 1e-5 relative + 1e-6.
    for n in SIZES {
        t.case(format!("unary/n{n}"), &[("p", Positive)], |g, o| {
            let x = g.input("x", &[n], F)?;
            let p = g.input("p", &[n], F)?;
            o.add("neg", g.neg(x)?, Tol::EXACT);
            o.add("exp", g.exp(x)?, Tol::new(1e-5, 0.0));
            o.add("tanh", g.tanh(x)?, Tol::new(1e-5, 1e-6));
            o.add("log", g.log(p)?, Tol::new(1e-5, 1e-6));
            o.add("sqrt", g.sqrt(p)?, Tol::new(1e-6, 0.0));
            o.add("rsqrt", g.rsqrt(p)?, Tol::new(1e-6, 0.0));
            // abs = max(x, -x), relu = max(x, 0): exact. sigmoid = exp(min(x, 0)) /
            // (1 + exp(-|x|)): the numerator's exp within 1e-5 relative (as exp above),
            // the denominator's within 1e-5 * e/(1+e) <= 0.5e-5, the division 2.5 ulp:
            // 2e-5 relative.
            o.add("abs", g.abs(x)?, Tol::EXACT);
            o.add("relu", g.relu(x)?, Tol::EXACT);
            o.add("sigmoid", g.sigmoid(x)?, Tol::new(2e-5, 0.0));
            Ok(())
        });
    }

    // --- Binary ops on [n] x [n]. add / sub / mul: one rounding. div: WGSL allows 2.5 ulp,
    // 1e-6 relative (the divisor d is kept away from zero). max: exact.
    for n in SIZES {
        t.case(format!("binary/n{n}"), &[("d", AwayFromZero)], |g, o| {
            let a = g.input("a", &[n], F)?;
            let b = g.input("b", &[n], F)?;
            let d = g.input("d", &[n], F)?;
            o.add("add", g.add(a, b)?, Tol::ONE_ROUNDING);
            o.add("sub", g.sub(a, b)?, Tol::ONE_ROUNDING);
            o.add("mul", g.mul(a, b)?, Tol::ONE_ROUNDING);
            o.add("div", g.div(a, d)?, Tol::new(1e-6, 0.0));
            o.add("max", g.max(a, b)?, Tol::EXACT);
            // min and clamp (max then min against constants): exact. reciprocal: a
            // division, 2.5 ulp in WGSL: 1e-6 relative.
            o.add("min", g.min(a, b)?, Tol::EXACT);
            o.add("clamp", g.clamp(a, -0.5, 0.25)?, Tol::EXACT);
            o.add("reciprocal", g.reciprocal(d)?, Tol::new(1e-6, 0.0));
            Ok(())
        });
    }

    // --- Reductions: every op over every axis of a rank-3 tensor (reduced extent n) and
    // over a rank-1 tensor, keep_dims both ways. sum: sum_tol(n). mean: the sum's error
    // divided by n (16 eps absolute) + 1e-5 relative. max: exact.
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
                    (ReduceOp::Mean, "mean", Tol::new(1e-5, 16.0 * EPS)),
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

    // --- Matmul, per transpose combination: the 16 Latin-square cells, then batched
    // matmuls (batch 3) with both operands batched or one shared by every batch. Error: K
    // products (exact in f64, one rounding in f32) summed: sum_tol(K).
    let cells = matmul_dims();
    for (t_idx, (ta, tb)) in TRANSPOSES.into_iter().enumerate() {
        t.case(format!("matmul/{}", tname(ta, tb)), &[], |g, o| {
            let shape =
                |rows: usize, cols: usize, tr: bool| if tr { [cols, rows] } else { [rows, cols] };
            for (i, &(_, _, m, n, k)) in cells.iter().filter(|c| (c.0, c.1) == (ta, tb)).enumerate()
            {
                let a = g.input(&format!("a{i}"), &shape(m, k, ta), F)?;
                let b = g.input(&format!("b{i}"), &shape(k, n, tb), F)?;
                o.add(
                    format!("mm_m{m}n{n}k{k}"),
                    g.matmul_t(a, b, ta, tb)?,
                    sum_tol(k),
                );
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
                    sum_tol(k),
                );
            }
            Ok(())
        });
    }

    // --- Views feeding compute. Each view only changes indexing; what follows is one
    // add / mul (one rounding), an exp (1e-5), or a 6-term reduction (sum_tol(6)).
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
            o.add("reshape_permute_exp", g.exp(p)?, Tol::new(1e-5, 0.0));
            // Broadcast feeding a reduction over the broadcast axis: sum_0(bcast(x) * y).
            let x = g.input("ux", &[n], F)?;
            let y = g.input("uy", &[6, n], F)?;
            let p = g.mul(x, y)?;
            o.add("broadcast_mul_reduce", g.sum(p, 0, false)?, sum_tol(6));
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
        o.add("reshape_exp", g.exp(r)?, Tol::new(1e-5, 0.0));
        Ok(())
    });

    // --- Elementwise chains (fused kernels). A few roundings and one or two
    // transcendental ops per element: 1e-5 relative, 1e-6 absolute (tanh near 0).
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
                // x*x - x*y can cancel: the two products (below 1) are rounded by up to
                // 2^-25 each, 6e-8 absolute together (x2 margin: 1.2e-7), and the
                // difference by one rounding relative to itself (4 eps).
                o.add("shared_square_sub", o3, Tol::new(4.0 * EPS, 1.2e-7));
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
            o.add("layernorm_rows", g.mul(d, r)?, Tol::new(2e-5, 1e-6));
            // Softmax-like over rows: exp(x - max) / sum(exp(x - max)). Values in (0, 1]:
            // exp's few ulp, the division's 2.5 ulp and the relative error of a sum of n
            // positive terms (~sqrt(n) eps typical, 4e-6 at n = 4097): 2e-5 relative.
            let x = g.input("sx", &[3, n], F)?;
            let m = g.reduce_max(x, 1, true)?;
            let d = g.sub(x, m)?;
            let e = g.exp(d)?;
            let s = g.sum(e, 1, true)?;
            o.add("softmax_rows", g.div(e, s)?, Tol::new(2e-5, 0.0));
            // Log-sum-exp over axis 0 of [n, 5] (a strided reduction): the sum of n terms
            // in (0.36, 2.72) has no cancellation (relative error < 1e-5), which log turns
            // into an absolute error of that size; log's own 3 ulp are relative to
            // |result| <= 8.4: 2e-6 relative + 1e-5 absolute.
            let x = g.input("ex", &[n, 5], F)?;
            let e = g.exp(x)?;
            let s = g.sum(e, 0, false)?;
            o.add("logsumexp_cols", g.log(s)?, Tol::new(2e-6, 1e-5));
            // sqrt(sum((x * y)^2)) over a rank-1 tensor, keep_dims false (a rank-0
            // output): non-negative terms, relative error of the sum < 1e-5, halved by
            // sqrt, plus sqrt's ulp: 1e-5 relative.
            let x = g.input("nx", &[n], F)?;
            let y = g.input("ny", &[n], F)?;
            let p = g.mul(x, y)?;
            let p2 = g.mul(p, p)?;
            let s = g.sum(p2, 0, false)?;
            o.add("norm_rank1", g.sqrt(s)?, Tol::new(1e-5, 0.0));
            Ok(())
        });
    }

    // --- Matmul with a bias + tanh epilogue (every transpose combination). The matmul's
    // sum_tol(K) passes through tanh (slope <= 1), plus tanh's own 1e-6 absolute.
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
            let tol = sum_tol(k);
            o.add(
                format!("{}_m{m}n{n}k{k}", tname(ta, tb)),
                g.tanh(h)?,
                Tol::new(tol.rtol, tol.atol + 1e-6),
            );
        }
        Ok(())
    });

    // --- The MLP demo: sum over d_hidden of tanh(x @ w + b). The matmul's sum_tol(d_in)
    // per hidden unit passes through tanh, then d_hidden terms in (-1, 1) are summed:
    // sum_tol(d_in + d_hidden).
    for (b, i, h) in [
        (1, 1, 1),
        (7, 17, 64),
        (127, 64, 129),
        (1000, 17, 7),
        (3, 129, 4097),
    ] {
        let g = mlp_block(b, i, h).expect("MLP demo graph");
        let tols = HashMap::from([("y".to_string(), sum_tol(i + h))]);
        t.push(format!("mlp/b{b}i{i}h{h}"), &[], g, tols);
    }
    t.0
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
fn conformance(backend: &str, threads: usize, run: &Runner<'_>) {
    let cases = cases();
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    type Outcome = (Result<Vec<OutputCheck>, String>, u128);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let inputs = case.inputs();
                let t0 = Instant::now();
                let result = match run_graph(&case.graph, &inputs) {
                    Ok(want) => run(case, &inputs).map(|got| compare(case, &got, &want)),
                    Err(e) => Err(format!("the reference interpreter failed: {e}")),
                };
                let ms = t0.elapsed().as_millis();
                if let Ok(mut r) = results.lock() {
                    r[i] = Some((result, ms));
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut failures = String::new();
    let (mut nfail, mut nout) = (0, 0);
    for (case, r) in cases.iter().zip(results) {
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
                        Ok((abs, ratio)) => println!(
                            "       {out:<32} max abs err {abs:.2e} ({:>5.1}% of tolerance)",
                            100.0 * ratio
                        ),
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
    println!(
        "{backend}: {} cases ({nout} outputs checked), {nfail} failures, {:.1} s",
        cases.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        nfail == 0,
        "{backend}: {nfail} conformance failures (cases that did not run, or outputs out of tolerance):\n{failures}"
    );
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
    let device = wgpu();
    println!("wgpu adapter: {}", device.name());
    // One worker: lavapipe already spreads each dispatch over the cores.
    conformance("wgpu", 1, &|c, i| run_on_device(device, c, i));
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
    // Every matmul dimension value, for every transpose combination, and every pair of
    // values of every pair of dims.
    let dims = matmul_dims();
    for (ta, tb) in TRANSPOSES {
        let cells: Vec<[usize; 3]> = dims
            .iter()
            .filter(|d| (d.0, d.1) == (ta, tb))
            .map(|d| [d.2, d.3, d.4])
            .collect();
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            for u in MM {
                for v in MM {
                    assert!(
                        cells.iter().any(|c| c[p] == u && c[q] == v),
                        "{}: dims {p},{q} = {u},{v} not covered",
                        tname(ta, tb)
                    );
                }
            }
        }
    }
    println!("{} conformance cases, {outputs} outputs", cases.len());
}
