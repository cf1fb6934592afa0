//! Cross-backend conformance: one table of cases (every op and fused combination of the
//! first op set), each run on every backend and compared with the f64 graph interpreter
//! on the same random inputs.
//!
//! Backends (one `#[test]` each, so one failing backend does not hide another):
//! - `wgpu`: the emitted WGSL on the wgpu device (lavapipe in CI);
//! - `ascend_cpu`: the emitted Ascend C kernels + AscendCL host code compiled with the
//!   project's CPU build of the Ascend C API;
//! - `tile_interp`: the compiled plan on the f32 tile interpreter (no code generation),
//!   which tells scheduler bugs from printer bugs.
//!
//! Each test runs the whole table, prints one line per case (measured max errors, so the
//! tolerances below can be checked against what the backends actually do; run with
//! `--nocapture` to see them) and fails at the end listing every failing case.
//!
//! Sizes: every size-parameterised case runs at 1, 7, 127, 1000 and 4097 along the axis
//! under test. Matmul: M, N, K in {1, 17, 64, 129}; not the full 4^3 x 4 product but,
//! for non-transposed operands, all 16 (M, N) pairs with K from a Latin square (so every
//! pair of values of every pair of dims occurs once), and for each of the three transposed
//! variants 8 cells of that square in which every value of every dim occurs twice. Reductions: every op over every axis of a rank-3 tensor and over a rank-1
//! tensor, at all five sizes, with keep_dims alternating with the size (both values are
//! covered for every op and axis).
//!
//! Tolerances: an element passes when `|got - want| <= atol + rtol * |want|`; each case's
//! tolerance is stated where the case is built, with its justification.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use tessera::compiler::backend;
use tessera::compiler::interp::{round_to_dtype, run_graph, Tensor};
use tessera::compiler::{DType, Graph, GraphError, NodeId, Target};
use tessera::models::mlp::mlp_block;
use tessera::runtime::{CpuDevice, Device, WgpuDevice};

const SIZES: [usize; 5] = [1, 7, 127, 1000, 4097];
const MM: [usize; 4] = [1, 17, 64, 129];
/// One f32 rounding, relative: 2^-24.
const EPS: f64 = 1.0 / (1u64 << 24) as f64;

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
    const EXACT: Tol = Tol {
        rtol: 0.0,
        atol: 0.0,
    };
    fn new(rtol: f64, atol: f64) -> Tol {
        Tol { rtol, atol }
    }
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
    tol: Tol,
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

/// Builds a graph with a closure; the closure returns the output nodes (named `out0`...).
fn graph(build: impl FnOnce(&mut Graph) -> Result<Vec<NodeId>, GraphError>) -> Graph {
    let mut g = Graph::new();
    let outs = build(&mut g).expect("conformance graph builds");
    for (i, o) in outs.into_iter().enumerate() {
        let name = if i == 0 {
            "out".to_string()
        } else {
            format!("out{i}")
        };
        g.set_name(o, &name).expect("unique output name");
        g.mark_output(o).expect("output");
    }
    g
}

struct Table(Vec<Case>);

impl Table {
    fn add(&mut self, name: String, tol: Tol, dists: &[(&str, Dist)], g: Graph) {
        self.0.push(Case {
            name,
            graph: g,
            dists: dists.iter().map(|(n, d)| (n.to_string(), *d)).collect(),
            tol,
        });
    }
}

/// Tolerance of a sum of `n` f32 terms of magnitude <= 1 with random signs. Each addition
/// rounds by up to eps = 2^-24 relative to a partial sum of typical size 0.6 sqrt(k), so a
/// sequential sum's error has a standard deviation of about 0.4 n eps (blocked and tree
/// orders do better): 4 n eps absolute is ~10 sigma for the worst order, plus 1e-5
/// relative for large results. (Measured on lavapipe: <= 1% of this bound.)
fn sum_tol(n: usize) -> Tol {
    Tol::new(1e-5, 4.0 * n as f64 * EPS)
}

/// The 2-D matmul cases (transpose a, transpose b, M, N, K): a Latin square over
/// {1, 17, 64, 129} (K = value (i + j + t) mod 4 for M = value i, N = value j, t the
/// transpose variant); all 16 cells without transposes, and for each transposed variant
/// the 8 cells with j - i = 0 or 1 (mod 4), where each value of each dim occurs twice.
fn matmul_dims() -> Vec<(bool, bool, usize, usize, usize)> {
    let mut out = Vec::new();
    for (ti, (ta, tb)) in [(false, false), (false, true), (true, false), (true, true)]
        .into_iter()
        .enumerate()
    {
        for i in 0..4 {
            for j in 0..4 {
                if ti > 0 && (j + 4 - i) % 4 > 1 {
                    continue;
                }
                out.push((ta, tb, MM[i], MM[j], MM[(i + j + ti) % 4]));
            }
        }
    }
    out
}

fn cases() -> Vec<Case> {
    use Dist::*;
    let f = DType::F32;
    let mut t = Table(Vec::new());

    // --- Unary ops on [n].
    // neg: exact. exp: WGSL allows 3 + 2|x| ulp (<= 5 ulp = 3e-7 on [-1, 1]); 1e-5
    // leaves room for the software drivers' polynomial approximations. log: WGSL gives
    // 2^-21 absolute near 1, 3 ulp elsewhere. sqrt/rsqrt: 2-3 ulp (<= 4e-7 relative).
    // tanh: WGSL inherits sinh/cosh accuracy, i.e. an absolute bound near 0: 1e-6.
    let unary: [(&str, Dist, Tol); 6] = [
        ("neg", Uniform, Tol::EXACT),
        ("exp", Uniform, Tol::new(1e-5, 0.0)),
        ("log", Positive, Tol::new(1e-5, 1e-6)),
        ("sqrt", Positive, Tol::new(1e-6, 0.0)),
        ("rsqrt", Positive, Tol::new(1e-6, 0.0)),
        ("tanh", Uniform, Tol::new(1e-5, 1e-6)),
    ];
    for (op, dist, tol) in unary {
        for n in SIZES {
            let g = graph(|g| {
                let x = g.input("x", &[n], f)?;
                let y = match op {
                    "neg" => g.neg(x)?,
                    "exp" => g.exp(x)?,
                    "log" => g.log(x)?,
                    "sqrt" => g.sqrt(x)?,
                    "rsqrt" => g.rsqrt(x)?,
                    _ => g.tanh(x)?,
                };
                Ok(vec![y])
            });
            t.add(format!("unary/{op}/n{n}"), tol, &[("x", dist)], g);
        }
    }

    // --- Binary ops on [n] x [n].
    // add/sub/mul of exact f32 inputs: one rounding (2^-24 relative); 4 eps of slack.
    // div: WGSL allows 2.5 ulp: 1e-6. max: exact.
    let binary: [(&str, Dist, Tol); 5] = [
        ("add", Uniform, Tol::new(4.0 * EPS, 0.0)),
        ("sub", Uniform, Tol::new(4.0 * EPS, 0.0)),
        ("mul", Uniform, Tol::new(4.0 * EPS, 0.0)),
        ("div", AwayFromZero, Tol::new(1e-6, 0.0)),
        ("max", Uniform, Tol::EXACT),
    ];
    for (op, bdist, tol) in binary {
        for n in SIZES {
            let g = graph(|g| {
                let a = g.input("a", &[n], f)?;
                let b = g.input("b", &[n], f)?;
                let y = match op {
                    "add" => g.add(a, b)?,
                    "sub" => g.sub(a, b)?,
                    "mul" => g.mul(a, b)?,
                    "div" => g.div(a, b)?,
                    _ => g.max(a, b)?,
                };
                Ok(vec![y])
            });
            t.add(format!("binary/{op}/n{n}"), tol, &[("b", bdist)], g);
        }
    }

    // --- Reductions: every op over every axis of a rank-3 tensor (reduced extent n, the
    // others 3 and 5) and over a rank-1 tensor; keep_dims alternates with the size.
    // sum: see sum_tol. mean: the sum's error divided by n, so relative 1e-5 plus a small
    // absolute term. max: exact (no rounding).
    for (op, name) in [
        (tessera::compiler::graph::ReduceOp::Sum, "sum"),
        (tessera::compiler::graph::ReduceOp::Max, "max"),
        (tessera::compiler::graph::ReduceOp::Mean, "mean"),
    ] {
        for axis in 0..4usize {
            for (si, n) in SIZES.into_iter().enumerate() {
                let keep = si % 2 == 0;
                let shape: Vec<usize> = match axis {
                    0 => vec![n, 3, 5],
                    1 => vec![3, n, 5],
                    2 => vec![3, 5, n],
                    _ => vec![n],
                };
                let red_axis = if axis < 3 { axis } else { 0 };
                let tol = match name {
                    "sum" => sum_tol(n),
                    "max" => Tol::EXACT,
                    _ => Tol::new(1e-5, 16.0 * EPS),
                };
                let g = graph(|g| {
                    let x = g.input("x", &shape, f)?;
                    Ok(vec![g.reduce(op, x, red_axis, keep)?])
                });
                let what = if axis < 3 {
                    format!("rank3_axis{axis}")
                } else {
                    "rank1".into()
                };
                t.add(format!("reduce/{name}/{what}/keep{keep}/n{n}"), tol, &[], g);
            }
        }
    }

    // --- 2-D matmul. Error: K products (exact in f64, one rounding each in f32) summed:
    // sum_tol(K), plus relative 1e-5.
    for (ta, tb, m, n, k) in matmul_dims() {
        let ashape = if ta { [k, m] } else { [m, k] };
        let bshape = if tb { [n, k] } else { [k, n] };
        let g = graph(|g| {
            let a = g.input("a", &ashape, f)?;
            let b = g.input("b", &bshape, f)?;
            Ok(vec![g.matmul_t(a, b, ta, tb)?])
        });
        t.add(
            format!("matmul/ta{}tb{}/m{m}n{n}k{k}", ta as u8, tb as u8),
            sum_tol(k),
            &[],
            g,
        );
    }

    // --- Batched matmul: both operands batched, or one shared by every batch, with
    // every transpose combination; dims rotate through the value set.
    let mut rot = 0;
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        for mode in ["both", "shared_b", "shared_a"] {
            let (m, n, k) = (MM[rot % 4], MM[(rot + 1) % 4], MM[(rot + 2) % 4]);
            rot += 1;
            let batch = 3;
            let a2 = if ta { vec![k, m] } else { vec![m, k] };
            let b2 = if tb { vec![n, k] } else { vec![k, n] };
            let with_batch = |s: &Vec<usize>| [vec![batch], s.clone()].concat();
            let ashape = if mode == "shared_a" {
                a2.clone()
            } else {
                with_batch(&a2)
            };
            let bshape = if mode == "shared_b" {
                b2.clone()
            } else {
                with_batch(&b2)
            };
            let g = graph(|g| {
                let a = g.input("a", &ashape, f)?;
                let b = g.input("b", &bshape, f)?;
                Ok(vec![g.matmul_t(a, b, ta, tb)?])
            });
            t.add(
                format!(
                    "bmm/{mode}/ta{}tb{}/b{batch}m{m}n{n}k{k}",
                    ta as u8, tb as u8
                ),
                sum_tol(k),
                &[],
                g,
            );
        }
    }

    // --- Views feeding compute. Each view only changes indexing; the compute after it
    // is a single add/mul (4 eps), an exp (1e-5), or a reduction (sum_tol).
    for n in SIZES {
        // Row broadcast (bias add): [3, n] + [n].
        t.add(
            format!("view/broadcast_row_add/n{n}"),
            Tol::new(4.0 * EPS, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[3, n], f)?;
                let b = g.param("b", &[n], f)?;
                Ok(vec![g.add(x, b)?])
            }),
        );
        // Column broadcast: [n, 5] * [n, 1].
        t.add(
            format!("view/broadcast_col_mul/n{n}"),
            Tol::new(4.0 * EPS, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[n, 5], f)?;
                let s = g.input("s", &[n, 1], f)?;
                Ok(vec![g.mul(x, s)?])
            }),
        );
        // A scalar constant broadcast to [n].
        t.add(
            format!("view/constant_scalar_mul/n{n}"),
            Tol::new(4.0 * EPS, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[n], f)?;
                let c = g.constant(2.5, &[], f)?;
                Ok(vec![g.mul(x, c)?])
            }),
        );
        // 2-D transpose feeding an add: x^T [7, n] + y [7, n].
        t.add(
            format!("view/permute2d_add/n{n}"),
            Tol::new(4.0 * EPS, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[n, 7], f)?;
                let y = g.input("y", &[7, n], f)?;
                let xt = g.permute(x, &[1, 0])?;
                Ok(vec![g.add(xt, y)?])
            }),
        );
        // 3-D permute feeding an add: [2, n, 3] -> [3, 2, n].
        t.add(
            format!("view/permute3d_add/n{n}"),
            Tol::new(4.0 * EPS, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[2, n, 3], f)?;
                let y = g.input("y", &[3, 2, n], f)?;
                let xp = g.permute(x, &[2, 0, 1])?;
                Ok(vec![g.add(xp, y)?])
            }),
        );
        // Reshape, then permute, then exp: [4n] -> [n, 4] -> [4, n].
        t.add(
            format!("view/reshape_permute_exp/n{n}"),
            Tol::new(1e-5, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[4 * n], f)?;
                let r = g.reshape(x, &[n, 4])?;
                let p = g.permute(r, &[1, 0])?;
                Ok(vec![g.exp(p)?])
            }),
        );
        // Broadcast feeding a reduction over the broadcast axis: sum_0(bcast(x) * y).
        t.add(
            format!("view/broadcast_reduce/n{n}"),
            sum_tol(6),
            &[],
            graph(|g| {
                let x = g.input("x", &[n], f)?;
                let y = g.input("y", &[6, n], f)?;
                let p = g.mul(x, y)?;
                Ok(vec![g.sum(p, 0, false)?])
            }),
        );
    }
    // A view that is itself an output (forces a copy): exact.
    for n in [7, 1000] {
        t.add(
            format!("view/permute_output/n{n}"),
            Tol::EXACT,
            &[],
            graph(|g| {
                let x = g.input("x", &[n, 3], f)?;
                Ok(vec![g.permute(x, &[1, 0])?])
            }),
        );
    }

    // --- Elementwise chains (one fused kernel each). A few roundings and one or two
    // transcendental ops per element: 1e-5 relative, 1e-6 absolute (tanh near 0).
    for n in SIZES {
        t.add(
            format!("chain/exp_mul_add_tanh_div/n{n}"),
            Tol::new(1e-5, 1e-6),
            &[("p", Positive)],
            graph(|g| {
                let x = g.input("x", &[n], f)?;
                let y = g.input("y", &[n], f)?;
                let p = g.input("p", &[n], f)?;
                let e = g.neg(x)?;
                let e = g.exp(e)?;
                let z = g.mul(e, y)?;
                let z = g.add(z, x)?;
                let z = g.tanh(z)?;
                let s = g.sqrt(p)?;
                let one = g.constant(1.0, &[], f)?;
                let d = g.add(s, one)?;
                Ok(vec![g.div(z, d)?])
            }),
        );
        // Two outputs sharing an intermediate, and an input used twice.
        t.add(
            format!("chain/multi_output_shared/n{n}"),
            Tol::new(1e-5, 1e-6),
            &[],
            graph(|g| {
                let x = g.input("x", &[n], f)?;
                let y = g.input("y", &[n], f)?;
                let xy = g.mul(x, y)?;
                let e = g.exp(xy)?;
                let o2 = g.add(e, x)?;
                let xx = g.mul(x, x)?;
                let o3 = g.sub(xx, xy)?;
                Ok(vec![xy, o2, o3])
            }),
        );
        // max / sub / log / rsqrt chain on positive inputs.
        t.add(
            format!("chain/max_log_rsqrt/n{n}"),
            Tol::new(1e-5, 1e-6),
            &[("p", Positive), ("q", Positive)],
            graph(|g| {
                let p = g.input("p", &[n], f)?;
                let q = g.input("q", &[n], f)?;
                let m = g.max(p, q)?;
                let l = g.log(m)?;
                let r = g.rsqrt(q)?;
                Ok(vec![g.mul(l, r)?])
            }),
        );
    }

    // --- Reductions with fused producers and consumers, over the last axis of [3, n] and
    // over the first axis of [n, 5].
    for n in SIZES {
        // Layer-norm-like: (x - mean) * rsqrt(var + eps). The output's relative error is
        // half the variance's (a positive sum: ~sqrt(n) eps relative, <= 4e-6 at n = 4097)
        // plus rsqrt's 2 ulp, and x - mean has an absolute error of ~eps: 2e-5 relative,
        // 1e-6 absolute (outputs are O(1); measured <= 2.5e-7).
        t.add(
            format!("fused/layernorm_rows/n{n}"),
            Tol::new(2e-5, 1e-6),
            &[],
            graph(|g| {
                let x = g.input("x", &[3, n], f)?;
                let mu = g.mean(x, 1, true)?;
                let d = g.sub(x, mu)?;
                let d2 = g.mul(d, d)?;
                let var = g.mean(d2, 1, true)?;
                let eps = g.constant(1e-5, &[], f)?;
                let v = g.add(var, eps)?;
                let r = g.rsqrt(v)?;
                Ok(vec![g.mul(d, r)?])
            }),
        );
        // Softmax-like over rows: exp(x - max) / sum(exp(x - max)). Values in (0, 1]:
        // exp's few ulp, the division's 2.5 ulp and the relative error of a sum of n
        // positive terms (~sqrt(n) eps typical, 4e-6 at n = 4097): 2e-5 relative.
        t.add(
            format!("fused/softmax_rows/n{n}"),
            Tol::new(2e-5, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[3, n], f)?;
                let m = g.reduce_max(x, 1, true)?;
                let d = g.sub(x, m)?;
                let e = g.exp(d)?;
                let s = g.sum(e, 1, true)?;
                Ok(vec![g.div(e, s)?])
            }),
        );
        // Log-sum-exp over axis 0 of [n, 5]: producer exp, consumer log (strided reduction).
        // The sum of n terms in (0.36, 2.72) is positive with no cancellation (relative
        // error < 1e-5), which log turns into an absolute error of the same size; log's
        // own 3 ulp are relative to |result| <= 8.4: 2e-6 relative + 1e-5 absolute.
        t.add(
            format!("fused/logsumexp_cols/n{n}"),
            Tol::new(2e-6, 1e-5),
            &[],
            graph(|g| {
                let x = g.input("x", &[n, 5], f)?;
                let e = g.exp(x)?;
                let s = g.sum(e, 0, false)?;
                Ok(vec![g.log(s)?])
            }),
        );
        // Norm of a product, sqrt(sum((x * y)^2)), over a rank-1 tensor with keep_dims
        // false: a rank-0 output. Non-negative terms (relative error of the sum < 1e-5,
        // halved by sqrt, plus sqrt's ulp): 1e-5 relative.
        t.add(
            format!("fused/norm_rank1/n{n}"),
            Tol::new(1e-5, 0.0),
            &[],
            graph(|g| {
                let x = g.input("x", &[n], f)?;
                let y = g.input("y", &[n], f)?;
                let p = g.mul(x, y)?;
                let p2 = g.mul(p, p)?;
                let s = g.sum(p2, 0, false)?;
                Ok(vec![g.sqrt(s)?])
            }),
        );
    }

    // --- Matmul with a bias + tanh epilogue (the transposes vary). The matmul's sum_tol
    // passes through tanh (slope <= 1), plus tanh's own 1e-5 / 1e-6.
    for (i, (m, n, k)) in [(1, 17, 64), (17, 129, 1), (64, 1, 129), (129, 64, 17)]
        .into_iter()
        .enumerate()
    {
        let (ta, tb) = (i % 2 == 1, i / 2 == 1);
        let tol = sum_tol(k);
        t.add(
            format!(
                "fused/matmul_bias_tanh/ta{}tb{}/m{m}n{n}k{k}",
                ta as u8, tb as u8
            ),
            Tol::new(tol.rtol, tol.atol + 1e-6),
            &[],
            graph(|g| {
                let a = g.input("x", &if ta { [k, m] } else { [m, k] }, f)?;
                let w = g.param("w", &if tb { [n, k] } else { [k, n] }, f)?;
                let b = g.param("b", &[n], f)?;
                let h = g.matmul_t(a, w, ta, tb)?;
                let h = g.add(h, b)?;
                Ok(vec![g.tanh(h)?])
            }),
        );
    }

    // --- The MLP demo: sum over d_hidden of tanh(x @ w + b). The matmul's sum_tol(d_in)
    // per hidden unit, then d_hidden terms in (-1, 1): sum_tol(d_in + d_hidden).
    for (b, i, h) in [
        (1, 1, 1),
        (7, 17, 64),
        (127, 64, 129),
        (1000, 17, 7),
        (3, 129, 4097),
    ] {
        let g = mlp_block(b, i, h).expect("MLP demo graph");
        t.add(format!("mlp/b{b}i{i}h{h}"), sum_tol(i + h), &[], g);
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

/// Compares every output; returns (max abs error, max error / allowed) or a message.
fn compare(
    case: &Case,
    got: &HashMap<String, Tensor>,
    want: &HashMap<String, Tensor>,
) -> Result<(f64, f64), String> {
    let (mut worst_abs, mut worst_ratio) = (0.0f64, 0.0f64);
    let mut names: Vec<&String> = want.keys().collect();
    names.sort();
    for name in names {
        let w = &want[name];
        let g = got.get(name).ok_or(format!("output `{name}` missing"))?;
        if g.shape != w.shape {
            return Err(format!(
                "output `{name}`: shape {:?}, want {:?}",
                g.shape, w.shape
            ));
        }
        for (idx, (&gv, &wv)) in g.data.iter().zip(&w.data).enumerate() {
            let err = if gv == wv { 0.0 } else { (gv - wv).abs() };
            let allowed = case.tol.atol + case.tol.rtol * wv.abs();
            if err.is_nan() || err > allowed {
                return Err(format!(
                    "output `{name}` element {idx}: got {gv:e}, want {wv:e} (error {err:.3e} > allowed {allowed:.3e})"
                ));
            }
            worst_abs = worst_abs.max(err);
            if allowed > 0.0 {
                worst_ratio = worst_ratio.max(err / allowed);
            }
        }
    }
    Ok((worst_abs, worst_ratio))
}

/// Runs the whole table on one backend with `threads` workers (cases are independent;
/// results are printed in table order) and fails listing every failing case.
fn conformance(backend: &str, threads: usize, run: &Runner<'_>) {
    let cases = cases();
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<(Result<(f64, f64), String>, u128)>>> =
        Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let inputs = case.inputs();
                let t0 = Instant::now();
                let result = match run_graph(&case.graph, &inputs) {
                    Ok(want) => run(case, &inputs).and_then(|got| compare(case, &got, &want)),
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
    let mut nfail = 0;
    for (case, r) in cases.iter().zip(results) {
        let (result, ms) = r.unwrap_or((Err("not run".into()), 0));
        match result {
            Ok((abs, ratio)) => println!(
                "ok   {backend:<11} {:<48} max abs err {abs:.2e}  ({:>5.1}% of tolerance)  {ms} ms",
                case.name,
                100.0 * ratio
            ),
            Err(e) => {
                nfail += 1;
                let e = shorten(&e);
                println!("FAIL {backend:<11} {:<48} {e}", case.name);
                let _ = writeln!(failures, "  {}: {e}", case.name);
            }
        }
    }
    println!(
        "{backend}: {} cases, {nfail} failed, {:.1} s",
        cases.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(
        nfail == 0,
        "{backend}: {nfail} of {} conformance cases failed:\n{failures}",
        cases.len()
    );
}

/// The first lines of a long error (compiler diagnostics can run to pages).
fn shorten(e: &str) -> String {
    const MAX_LINES: usize = 6;
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
    // Every case builds, validates, has a unique name, and runs on the oracle.
    let cases = cases();
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name.clone()), "duplicate case {}", c.name);
        c.graph
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert!(c.tol.rtol >= 0.0 && c.tol.atol >= 0.0);
    }
    // Every size and every matmul dimension value is covered.
    for n in SIZES {
        assert!(cases.iter().any(|c| c.name.ends_with(&format!("/n{n}"))));
    }
    let dims = matmul_dims();
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let cells: Vec<_> = dims
            .iter()
            .filter(|d| (d.0, d.1) == (ta, tb))
            .map(|d| (d.2, d.3, d.4))
            .collect();
        for v in MM {
            assert!(
                cells.iter().any(|c| c.0 == v),
                "ta {ta} tb {tb}: M = {v} not covered"
            );
            assert!(
                cells.iter().any(|c| c.1 == v),
                "ta {ta} tb {tb}: N = {v} not covered"
            );
            assert!(
                cells.iter().any(|c| c.2 == v),
                "ta {ta} tb {tb}: K = {v} not covered"
            );
        }
    }
    println!("{} conformance cases", cases.len());
}
