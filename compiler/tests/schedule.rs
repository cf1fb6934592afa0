//! Scheduler tests: fusion (how many kernels, named how), views (movement ops fold into
//! indexing over a refined iteration space; a copy only where no iteration order makes a
//! view strided, or a matmul operand is not a strided 2-D view), the memory plan, and
//! numerical agreement of the scheduled tile kernels (run by the f32 tile interpreter)
//! with the f64 graph interpreter, for the tile sizes of every target.
//!
//! Tolerances: the tile interpreter computes in f32 with each op rounded once
//! (`u = 2^-24` relative error per op) and accumulates sums sequentially per tile lane,
//! then across lanes. Every comparison allows `|got - want| <= atol + rtol * |want|`:
//! - elementwise chains: `rtol = 1e-5` (about 100 ulps: a few ops, each amplifying the
//!   incoming error by at most its condition number, which stays below ~10 on the input
//!   ranges used), `atol = 1e-6` for results that cancel to near zero (`sub`);
//! - sums of `n` terms of magnitude <= `c`: the error of blocked f32 summation with
//!   random-sign terms is about `sqrt(n) * u * c * sqrt(n)`; we allow `atol = 2e-6 * n * c`
//!   (far above the typical error, far below the O(1) error of a wrong or missing term);
//! - means: the sum's tolerance divided by `n`; matmul: the sum's rule with `n = K`.

use std::collections::HashMap;
use tessera_compiler::graph::{BinaryOp, DType, Graph, NodeId, UnaryOp};
use tessera_compiler::interp::{round_to_dtype, run_graph, run_plan, Tensor};
use tessera_compiler::schedule::plan::{BufferRole, Plan};
use tessera_compiler::tile::build::tile_sizes;
use tessera_compiler::tile::{Block, InstKind, TileKernel};
use tessera_compiler::{compile, Target, TargetKind};

const SIZES: [usize; 5] = [1, 7, 127, 1000, 4097];
const MM_SIZES: [usize; 4] = [1, 17, 64, 129];

fn targets() -> Vec<Target> {
    vec![Target::wgsl(), Target::ptx(), Target::ascend_910b()]
}

/// How random inputs are shaped before use.
#[derive(Clone, Copy, PartialEq)]
enum Domain {
    /// Uniform in [-1, 1).
    Signed,
    /// Uniform in [0.25, 1.25): for log, sqrt, rsqrt and divisors.
    Positive,
}

fn inputs_for(g: &Graph, seed: u64, domain: Domain) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    for (i, n) in g.inputs().into_iter().chain(g.params()).enumerate() {
        let node = g.node(n);
        let mut t = Tensor::random(&node.ty.shape, node.ty.dtype, seed * 1000 + i as u64);
        if domain == Domain::Positive {
            for v in &mut t.data {
                *v = round_to_dtype(v.abs() + 0.25, node.ty.dtype);
            }
        }
        out.insert(node.name.clone(), t);
    }
    out
}

/// Structural invariants every plan must satisfy.
fn check_plan(plan: &Plan, target: &Target) {
    let mut names = std::collections::HashSet::new();
    for k in &plan.kernels {
        assert!(
            names.insert(k.name.clone()),
            "duplicate kernel name {}",
            k.name
        );
        assert!(
            k.params.len() <= target.max_storage_buffers,
            "{} binds {} buffers",
            k.name,
            k.params.len()
        );
        for g in k.grid {
            assert!(
                g >= 1 && g <= target.max_grid_dim,
                "{} grid {:?}",
                k.name,
                k.grid
            );
        }
    }
    for (li, l) in plan.launches.iter().enumerate() {
        let k = &plan.kernels[l.kernel];
        assert_eq!(l.args.len(), k.params.len());
        for (i, a) in l.args.iter().enumerate() {
            let b = plan.buffer(*a);
            assert_eq!(b.len, k.params[i].len, "launch {li} param {i}");
            assert_eq!(b.dtype, k.params[i].dtype, "launch {li} param {i}");
            for a2 in &l.args[i + 1..] {
                assert_ne!(a, a2, "launch {li} binds a buffer twice");
                assert_ne!(
                    b.storage,
                    plan.buffer(*a2).storage,
                    "launch {li} ({}) binds two buffers sharing a storage slot",
                    k.name
                );
            }
        }
    }
    // Slots of non-temporaries are private.
    for b in &plan.buffers {
        if !matches!(b.role, BufferRole::Temp) {
            let sharing = plan
                .buffers
                .iter()
                .filter(|o| o.storage == b.storage)
                .count();
            assert_eq!(sharing, 1, "buffer {:?} shares its slot", b.role);
        }
        assert!(plan.storage[b.storage].bytes >= b.len * b.dtype.size_bytes());
    }
}

/// Compiles for `target`, runs the plan and the graph, and compares every output.
fn compare(
    g: &Graph,
    target: &Target,
    inputs: &HashMap<String, Tensor>,
    atol: f64,
    rtol: f64,
) -> Plan {
    let plan = compile(g, target).unwrap_or_else(|e| panic!("{:?}: {e}", target.kind));
    check_plan(&plan, target);
    let want = run_graph(g, inputs).expect("graph interpreter");
    let got = run_plan(&plan, inputs)
        .unwrap_or_else(|e| panic!("{:?}: {e}\nkernels: {:?}", target.kind, kernel_names(&plan)));
    assert_eq!(want.len(), got.len());
    for (name, w) in &want {
        let t = &got[name];
        assert_eq!(t.shape, w.shape, "output {name}");
        for (i, (&a, &b)) in t.data.iter().zip(&w.data).enumerate() {
            let ok = a == b || (a - b).abs() <= atol + rtol * b.abs() || (a.is_nan() && b.is_nan());
            assert!(
                ok,
                "{:?}: output {name}[{i}] = {a}, want {b} (atol {atol}, rtol {rtol}); kernels {:?}",
                target.kind,
                kernel_names(&plan)
            );
        }
    }
    plan
}

fn kernel_names(plan: &Plan) -> Vec<String> {
    plan.launches
        .iter()
        .map(|l| plan.kernels[l.kernel].name.clone())
        .collect()
}

/// Compares on every target; returns the WGSL plan.
fn compare_all(g: &Graph, seed: u64, domain: Domain, atol: f64, rtol: f64) -> Plan {
    let inputs = inputs_for(g, seed, domain);
    let mut first = None;
    for t in targets() {
        let p = compare(g, &t, &inputs, atol, rtol);
        first.get_or_insert(p);
    }
    first.expect("targets")
}

fn output(g: &mut Graph, n: NodeId, name: &str) {
    g.set_name(n, name).expect("unique name");
    g.mark_output(n).expect("valid node");
}

fn visit(block: &Block, f: &mut impl FnMut(&InstKind)) {
    for inst in &block.insts {
        f(&inst.kind);
        if let InstKind::For { body, .. } = &inst.kind {
            visit(body, f);
        }
    }
}

fn count_insts(k: &TileKernel, pred: impl Fn(&InstKind) -> bool) -> usize {
    let mut n = 0;
    visit(&k.body, &mut |i| {
        if pred(i) {
            n += 1
        }
    });
    n
}

// ------------------------------------------------------------------ single ops

#[test]
fn each_unary_op_alone_is_one_kernel() {
    for op in UnaryOp::ALL {
        let domain = match op {
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Reciprocal => Domain::Positive,
            _ => Domain::Signed,
        };
        for (si, &s) in SIZES.iter().enumerate() {
            let mut g = Graph::new();
            let x = g.input("x", &[s], DType::F32).unwrap();
            let y = g.unary(op, x).unwrap();
            output(&mut g, y, "y");
            let plan = compare_all(&g, si as u64, domain, 1e-6, 1e-6);
            assert_eq!(plan.launches.len(), 1, "{op:?}");
            assert_eq!(plan.kernels[0].name, format!("{}_0", op.name()));
        }
    }
}

#[test]
fn each_binary_op_alone_is_one_kernel() {
    for op in BinaryOp::ALL {
        let domain = if matches!(op, BinaryOp::Div | BinaryOp::Pow) {
            Domain::Positive
        } else {
            Domain::Signed
        };
        for (si, &s) in SIZES.iter().enumerate() {
            let mut g = Graph::new();
            let x = g.input("x", &[s, 3], DType::F32).unwrap();
            let y = g.input("y", &[s, 3], DType::F32).unwrap();
            let z = g.binary(op, x, y).unwrap();
            output(&mut g, z, "z");
            let plan = compare_all(&g, 10 + si as u64, domain, 1e-6, 1e-6);
            assert_eq!(plan.launches.len(), 1, "{op:?}");
            // x and y are contiguous and of one shape: coalesced to one axis.
            assert_eq!(plan.kernels[0].params.len(), 3);
        }
    }
}

#[test]
fn elementwise_chain_of_five_is_one_kernel() {
    for (si, &s) in SIZES.iter().enumerate() {
        for shape in [vec![s], vec![s, 7], vec![3, s, 2]] {
            let mut g = Graph::new();
            let x = g.input("x", &shape, DType::F32).unwrap();
            let y = g.input("y", &shape, DType::F32).unwrap();
            let a = g.add(x, y).unwrap();
            let b = g.mul(a, x).unwrap();
            let c = g.tanh(b).unwrap();
            let d = g.exp(c).unwrap();
            let e = g.sub(d, y).unwrap();
            output(&mut g, e, "out");
            let plan = compare_all(&g, 20 + si as u64, Domain::Signed, 1e-6, 1e-5);
            assert_eq!(plan.launches.len(), 1);
            assert_eq!(plan.kernels[0].name, "add_mul_tanh_exp_0");
            // Reads x and y once each, writes out.
            assert_eq!(plan.kernels[0].params.len(), 3);
            let temps = plan
                .buffers
                .iter()
                .filter(|b| b.role == BufferRole::Temp)
                .count();
            assert_eq!(temps, 0);
        }
    }
}

#[test]
fn shared_elementwise_value_is_computed_once_per_kernel() {
    // h is used twice inside one kernel: no buffer for it.
    let mut g = Graph::new();
    let x = g.input("x", &[127, 5], DType::F32).unwrap();
    let h = g.exp(x).unwrap();
    let t = g.tanh(h).unwrap();
    let y = g.mul(t, h).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 30, Domain::Signed, 1e-6, 1e-5);
    assert_eq!(plan.launches.len(), 1);
    assert_eq!(
        count_insts(&plan.kernels[0], |i| matches!(
            i,
            InstKind::Unary {
                op: UnaryOp::Exp,
                ..
            }
        )),
        1
    );
    // h used by two kernels (an output and another output's kernel): materialized once.
    let mut g = Graph::new();
    let x = g.input("x", &[127, 5], DType::F32).unwrap();
    let h = g.exp(x).unwrap();
    let a = g.sum(h, 1, false).unwrap();
    let b = g.reduce_max(h, 0, false).unwrap();
    output(&mut g, a, "a");
    output(&mut g, b, "b");
    let plan = compare_all(&g, 31, Domain::Signed, 2e-6 * 5.0 * 3.0, 1e-5);
    assert_eq!(plan.launches.len(), 3, "{:?}", kernel_names(&plan));
}

// ------------------------------------------------------------------ reductions

#[test]
fn reductions_over_every_axis_of_3d_shapes() {
    use tessera_compiler::graph::ReduceOp;
    for op in ReduceOp::ALL {
        for (si, &s) in SIZES.iter().enumerate() {
            for shape in [[s, 2, 3], [2, s, 3], [3, 2, s]] {
                for axis in 0..3 {
                    for keep in [false, true] {
                        let mut g = Graph::new();
                        let x = g.input("x", &shape, DType::F32).unwrap();
                        let y = g.reduce(op, x, axis, keep).unwrap();
                        output(&mut g, y, "y");
                        let n = shape[axis] as f64;
                        let atol = match op {
                            ReduceOp::Sum => 2e-6 * n,
                            ReduceOp::Mean => 2e-6,
                            ReduceOp::Max => 0.0,
                        };
                        let plan = compare_all(&g, 40 + si as u64, Domain::Signed, atol, 1e-5);
                        assert_eq!(plan.launches.len(), 1);
                        assert_eq!(plan.kernels[0].name, format!("{}_0", g_op_name(op)));
                        let k = &plan.kernels[0];
                        assert_eq!(
                            k.num_programs() as usize,
                            shape.iter().product::<usize>() / shape[axis]
                        );
                    }
                }
            }
        }
    }
}

fn g_op_name(op: tessera_compiler::graph::ReduceOp) -> String {
    format!("reduce_{}", op.name())
}

#[test]
fn reduction_fuses_producers_and_consumers() {
    // rsqrt(mean(exp(x) * x, axis 1) + eps) * 2: one kernel, body and scalar epilogue.
    for (si, &s) in SIZES.iter().enumerate() {
        for keep in [false, true] {
            let mut g = Graph::new();
            let x = g.input("x", &[5, s], DType::F32).unwrap();
            let e = g.exp(x).unwrap();
            let p = g.mul(e, x).unwrap();
            let m = g.mean(p, 1, keep).unwrap();
            let m = g.mul(m, m).unwrap();
            let eps = g.constant(1e-5, &[], DType::F32).unwrap();
            let v = g.add(m, eps).unwrap();
            let r = g.rsqrt(v).unwrap();
            let two = g.constant(2.0, &[], DType::F32).unwrap();
            let y = g.mul(r, two).unwrap();
            output(&mut g, y, "y");
            // Terms are at most e; rsqrt of a value >= 1e-5 can amplify relative error.
            let plan = compare_all(&g, 50 + si as u64, Domain::Signed, 1e-5, 1e-4);
            assert_eq!(plan.launches.len(), 1, "{:?}", kernel_names(&plan));
            assert!(plan.kernels[0].name.starts_with("reduce_mean_exp_mul"));
            // Constants are immediates, not buffers.
            assert_eq!(plan.buffers.len(), 2);
            // A fused body is not a plain load: full chunks plus a static tail, no mask
            // needed; exactly one Reduce per chunk kind.
            let reduces = count_insts(&plan.kernels[0], |i| matches!(i, InstKind::Reduce { .. }));
            assert!(reduces == 1 || reduces == 2);
        }
    }
}

#[test]
fn layer_norm_like_graph() {
    for (si, &s) in SIZES.iter().enumerate() {
        let mut g = Graph::new();
        let x = g.input("x", &[7, s], DType::F32).unwrap();
        let mean = g.mean(x, 1, true).unwrap();
        let d = g.sub(x, mean).unwrap();
        let d2 = g.mul(d, d).unwrap();
        let var = g.mean(d2, 1, true).unwrap();
        let eps = g.constant(1e-5, &[], DType::F32).unwrap();
        let ve = g.add(var, eps).unwrap();
        let rstd = g.rsqrt(ve).unwrap();
        let y = g.mul(d, rstd).unwrap();
        output(&mut g, y, "y");
        let plan = compare_all(&g, 60 + si as u64, Domain::Signed, 1e-4, 1e-4);
        if s == 1 {
            // No broadcasts at all ([7, 1] everywhere): d = x - mean is the epilogue
            // of the mean, the normalization that of the variance.
            assert_eq!(
                kernel_names(&plan),
                vec!["reduce_mean_sub_0", "reduce_mean_mul_add_rsqrt_1"]
            );
        } else {
            // mean, d (two consumer kernels), var + rsqrt epilogue, normalize.
            assert_eq!(
                kernel_names(&plan),
                vec![
                    "reduce_mean_0",
                    "sub_1",
                    "reduce_mean_mul_add_rsqrt_2",
                    "mul_3"
                ],
            );
        }
    }
}

// ------------------------------------------------------------------ matmul

/// `a @ b` (optionally transposed, batched, with a shared `b`), then `tanh(. + bias)`.
#[allow(clippy::too_many_arguments)]
fn matmul_graph(
    m: usize,
    n: usize,
    k: usize,
    ta: bool,
    tb: bool,
    batch: Option<usize>,
    shared_b: bool,
    epilogue: bool,
) -> Graph {
    let mut g = Graph::new();
    let with_batch = |s: [usize; 2], batched: bool| -> Vec<usize> {
        match (batch, batched) {
            (Some(b), true) => vec![b, s[0], s[1]],
            _ => s.to_vec(),
        }
    };
    let ash = if ta { [k, m] } else { [m, k] };
    let bsh = if tb { [n, k] } else { [k, n] };
    let a = g.input("a", &with_batch(ash, true), DType::F32).unwrap();
    let b = g
        .param("b", &with_batch(bsh, !shared_b), DType::F32)
        .unwrap();
    let mut y = g.matmul_t(a, b, ta, tb).unwrap();
    if epilogue {
        let bias = g.param("bias", &[n], DType::F32).unwrap();
        y = g.add(y, bias).unwrap();
        y = g.tanh(y).unwrap();
    }
    output(&mut g, y, "y");
    g
}

#[test]
fn matmul_2d_all_sizes_and_transposes() {
    let mut i = 0u64;
    for &m in &MM_SIZES {
        for &n in &MM_SIZES {
            for &k in &MM_SIZES {
                let (ta, tb) = ((i & 1) == 1, (i & 2) == 2);
                let epi = i.is_multiple_of(3);
                let g = matmul_graph(m, n, k, ta, tb, None, false, epi);
                let plan = compare_all(&g, 100 + i, Domain::Signed, 2e-6 * k as f64, 1e-5);
                assert_eq!(plan.launches.len(), 1);
                let want = if epi {
                    "matmul_bias_tanh_0"
                } else {
                    "matmul_0"
                };
                assert_eq!(plan.kernels[0].name, want);
                i += 1;
            }
        }
    }
}

#[test]
fn matmul_every_transpose_combination() {
    for (m, n, k) in [(17, 129, 64), (129, 1, 17), (1, 64, 129), (64, 17, 1)] {
        for ta in [false, true] {
            for tb in [false, true] {
                let g = matmul_graph(m, n, k, ta, tb, None, false, true);
                let plan = compare_all(&g, 200, Domain::Signed, 2e-6 * k as f64, 1e-5);
                assert_eq!(plan.launches.len(), 1);
            }
        }
    }
}

#[test]
fn batched_matmul_and_shared_weight() {
    for (bi, (m, n, k)) in [(17, 64, 129), (1, 17, 64), (129, 1, 17)]
        .into_iter()
        .enumerate()
    {
        for shared in [false, true] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let g = matmul_graph(m, n, k, ta, tb, Some(3), shared, bi != 1);
                let plan = compare_all(&g, 300 + bi as u64, Domain::Signed, 2e-6 * k as f64, 1e-5);
                assert_eq!(plan.launches.len(), 1);
                let kern = &plan.kernels[0];
                // Batch on grid axis 2.
                assert_eq!(kern.grid[2], 3);
            }
        }
    }
}

#[test]
fn matmul_operand_views_fold_into_strides() {
    // x @ permute(w): the transpose is a stride swap, no copy kernel.
    let mut g = Graph::new();
    let x = g.input("x", &[17, 64], DType::F32).unwrap();
    let w = g.param("w", &[33, 64], DType::F32).unwrap();
    let wt = g.permute(w, &[1, 0]).unwrap();
    let y = g.matmul(x, wt).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 400, Domain::Signed, 2e-6 * 64.0, 1e-5);
    assert_eq!(plan.launches.len(), 1);
    // An elementwise operand is materialized first.
    let mut g = Graph::new();
    let x = g.input("x", &[17, 64], DType::F32).unwrap();
    let w = g.param("w", &[64, 33], DType::F32).unwrap();
    let xe = g.tanh(x).unwrap();
    let y = g.matmul(xe, w).unwrap();
    let y = g.exp(y).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 401, Domain::Signed, 2e-6 * 64.0 * 3.0, 1e-5);
    assert_eq!(kernel_names(&plan), vec!["tanh_0", "matmul_exp_1"]);
    // A constant matmul operand gets a Constant buffer.
    let mut g = Graph::new();
    let x = g.input("x", &[17, 64], DType::F32).unwrap();
    let c = g.constant(0.5, &[64, 5], DType::F32).unwrap();
    let y = g.matmul(x, c).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 402, Domain::Signed, 2e-6 * 64.0, 1e-5);
    assert_eq!(plan.launches.len(), 1);
    assert!(plan
        .buffers
        .iter()
        .any(|b| matches!(b.role, BufferRole::Constant { value } if value == 0.5)));
}

#[test]
fn matmul_operands_the_cube_cannot_read_are_copied_on_ascend() {
    // permute([3, 5, 6], [2, 1, 0]) @ w: the [5, 3] matrices have strides [6, 30], no
    // contiguous axis. SIMT targets read them in place; Ascend's cube copies operands
    // row by row, so the scheduler copies this one contiguous first. Likewise a
    // broadcast operand (row stride 0).
    let mut g = Graph::new();
    let x = g.input("x", &[3, 5, 6], DType::F32).unwrap();
    let p = g.permute(x, &[2, 1, 0]).unwrap();
    let w = g.param("w", &[3, 4], DType::F32).unwrap();
    let y = g.matmul(p, w).unwrap();
    output(&mut g, y, "y");
    let v = g.param("v", &[7], DType::F32).unwrap();
    let vb = g.broadcast(v, &[4, 7]).unwrap();
    let z = g.matmul(y, vb).unwrap();
    output(&mut g, z, "z");
    compare_all(&g, 403, Domain::Signed, 2e-6 * 4.0 * 3.0 * 8.0, 1e-5);
    for t in targets() {
        let plan = compile(&g, &t).unwrap();
        let copies = kernel_names(&plan)
            .iter()
            .filter(|n| n.starts_with("copy"))
            .count();
        let want = if t.kind == TargetKind::AscendC { 2 } else { 0 };
        assert_eq!(copies, want, "{:?}: {:?}", t.kind, kernel_names(&plan));
        tessera_compiler::backend::emit(&plan, &t).unwrap();
    }
    // An empty operand reads nothing: whatever its strides, no copy and no error
    // (found by `fuzz_json`: an internal error on Ascend C).
    let mut g = Graph::new();
    let e = g.input("e", &[0, 2], DType::F32).unwrap();
    let y = g.matmul_t(e, e, true, false).unwrap();
    output(&mut g, y, "y");
    for t in targets() {
        let plan = compile(&g, &t).unwrap();
        match tessera_compiler::backend::emit(&plan, &t) {
            Ok(_) => {}
            // Ascend's cube refuses the empty operand's layout, by name.
            Err(e @ tessera_compiler::CompileError::Unsupported { .. })
                if t.kind == TargetKind::AscendC =>
            {
                assert!(e.to_string().contains("dot operand"), "{e}")
            }
            Err(e) => panic!("{:?}: {e}", t.kind),
        }
    }
    // Integer immediates wrap into their type, as the graph's integer ops do: a folded
    // u32 `neg 70000` is 2^32 - 70000 on both SIMT printers (`simt::wrap_int`).
    let g = Graph::from_json(
        r#"{"nodes": [{"name": "c", "op": "constant", "value": 70000, "shape": [], "dtype": "u32"},
                      {"name": "n", "op": "unary", "fn": "neg", "inputs": ["c"]}],
            "outputs": ["n"]}"#,
    )
    .unwrap();
    for t in [Target::wgsl(), Target::ptx()] {
        let plan = compile(&g, &t).unwrap();
        let art = tessera_compiler::backend::emit(&plan, &t).unwrap();
        let text: String = art.files.iter().map(|f| f.contents.clone()).collect();
        assert!(text.contains("4294897296"), "{:?}:\n{text}", t.kind);
    }
    assert!(!TargetKind::AscendC.reads_dot_operand([6, 30]));
    assert!(!TargetKind::AscendC.reads_dot_operand([0, 1]));
    assert!(TargetKind::AscendC.reads_dot_operand([1, 30]));
    assert!(TargetKind::Ptx.reads_dot_operand([6, 30]));
}

#[test]
fn matmul_tiles_follow_the_target() {
    let g = matmul_graph(64, 64, 64, false, false, None, false, true);
    for t in targets() {
        let sizes = tile_sizes(&t);
        let plan = compile(&g, &t).unwrap();
        let k = &plan.kernels[0];
        let mut dots = 0;
        visit(&k.body, &mut |i| {
            if let InstKind::Dot { .. } = i {
                dots += 1;
            }
            if let InstKind::Load { access, .. } = i {
                if access.shape.len() == 2 && access.shape != vec![sizes.bm, sizes.bn] {
                    assert!(
                        access.shape == vec![sizes.bm, sizes.bk]
                            || access.shape == vec![sizes.bk, sizes.bn],
                        "{:?}",
                        access.shape
                    );
                }
            }
        });
        assert_eq!(dots, 1);
        assert_eq!(
            k.grid,
            [
                64u32.div_ceil(sizes.bn as u32),
                64u32.div_ceil(sizes.bm as u32),
                1
            ]
        );
    }
    assert_eq!(tile_sizes(&Target::wgsl()).block, 256);
    assert_eq!(tile_sizes(&Target::ascend_910b()).block, 2048);
    assert_eq!(tile_sizes(&Target::ascend_910b()).bk, 32);
}

// ------------------------------------------------------------------ views

#[test]
fn permute_then_add_is_one_kernel() {
    for (si, &s) in SIZES.iter().enumerate() {
        let mut g = Graph::new();
        let x = g.input("x", &[s, 3, 5], DType::F32).unwrap();
        let y = g.input("y", &[5, s, 3], DType::F32).unwrap();
        let xp = g.permute(x, &[2, 0, 1]).unwrap();
        let z = g.add(xp, y).unwrap();
        output(&mut g, z, "z");
        let plan = compare_all(&g, 500 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["add_0"]);
        // A permuted load has a non-unit stride.
        let strided = count_insts(
            &plan.kernels[0],
            |i| matches!(i, InstKind::Load { access, .. } if access.strides.iter().any(|&s| s != 1)),
        );
        assert!(s == 1 || strided >= 1);
    }
}

#[test]
fn broadcast_add_is_one_kernel() {
    for (si, &s) in SIZES.iter().enumerate() {
        let mut g = Graph::new();
        let x = g.input("x", &[4, s], DType::F32).unwrap();
        let row = g.input("row", &[s], DType::F32).unwrap();
        let col = g.input("col", &[4, 1], DType::F32).unwrap();
        let a = g.add(x, row).unwrap();
        let b = g.mul(a, col).unwrap();
        output(&mut g, b, "b");
        let plan = compare_all(&g, 600 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["add_mul_0"]);
        let zero_stride = count_insts(
            &plan.kernels[0],
            |i| matches!(i, InstKind::Load { access, .. } if access.strides == vec![0]),
        );
        assert!(s == 1 || zero_stride == 1, "the column is a stride-0 load");
    }
}

/// Awkward factor pairs for views: 1, primes, a power of ten and 4097 = 17 * 241.
const PAIRS: [(usize, usize); 8] = [
    (1, 7),
    (7, 1),
    (7, 127),
    (127, 7),
    (1000, 7),
    (3, 1000),
    (4097, 3),
    (2, 4097),
];

/// Strides of every load of a kernel, in program order.
fn load_strides(k: &TileKernel) -> Vec<Vec<i64>> {
    let mut out = Vec::new();
    visit(&k.body, &mut |i| {
        if let InstKind::Load { access, .. } = i {
            out.push(access.strides.clone());
        }
    });
    out
}

#[test]
fn reshape_of_permuted_tensor() {
    for (i, &(a, b)) in PAIRS.iter().enumerate() {
        // Merging two axes that a permute separated: the kernel iterates [b * a] as
        // [b, a], over which x is read with strides [1, b]: one kernel, no copy.
        let mut g = Graph::new();
        let x = g.input("x", &[a, b], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let r = g.reshape(xt, &[b * a]).unwrap();
        let y = g.exp(r).unwrap();
        output(&mut g, y, "y");
        // One exp per element, rounded once in f32 (inputs in [-1, 1)).
        let plan = compare_all(&g, 700 + i as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["exp_0"]);
        if a > 1 && b > 1 {
            assert_eq!(load_strides(&plan.kernels[0]), vec![vec![b as i64]]);
        }
    }
    for (si, &s) in SIZES.iter().enumerate() {
        let mut g = Graph::new();
        let x = g.input("x", &[s, 6], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let r = g.reshape(xt, &[6 * s]).unwrap();
        let y = g.exp(r).unwrap();
        output(&mut g, y, "y");
        let plan = compare_all(&g, 705 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["exp_0"]);
        // With an elementwise op between permute and reshape: still one kernel.
        let mut g = Graph::new();
        let x = g.input("x", &[s, 6], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let e = g.tanh(xt).unwrap();
        let r = g.reshape(e, &[3, 2 * s]).unwrap();
        let y = g.exp(r).unwrap();
        output(&mut g, y, "y");
        // Two ops, tanh is 1-Lipschitz and exp's condition number is <= 1 on [-1, 1].
        let plan = compare_all(&g, 710 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["tanh_exp_0"]);
        // Splitting a permuted axis is strided already.
        let mut g = Graph::new();
        let x = g.input("x", &[s, 6], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let r = g.reshape(xt, &[2, 3, s]).unwrap();
        let y = g.exp(r).unwrap();
        output(&mut g, y, "y");
        let plan = compare_all(&g, 720 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["exp_0"]);
    }
}

#[test]
fn reshapes_splitting_and_merging_around_permutes() {
    for (si, &s) in SIZES.iter().enumerate() {
        // Split and merge across a permute: [6, s] -> [s, 6] -> [2s, 3]; the 6 is cut
        // into 2 x 3, the output iterated as [s, 2, 3].
        let mut g = Graph::new();
        let x = g.input("x", &[6, s], DType::F32).unwrap();
        let y = g.input("y", &[2 * s, 3], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let r = g.reshape(xt, &[2 * s, 3]).unwrap();
        let z = g.add(r, y).unwrap();
        output(&mut g, z, "z");
        // One rounding of a sum of two terms in [-1, 1): atol for cancellation.
        let plan = compare_all(&g, 730 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["add_0"]);
    }
    for (i, (a, b, c)) in [
        (7, 3, 5),
        (127, 2, 7),
        (3, 1000, 2),
        (4097, 2, 3),
        (1, 7, 1),
    ]
    .into_iter()
    .enumerate()
    {
        // Three axes rotated, then flattened.
        let mut g = Graph::new();
        let x = g.input("x", &[a, b, c], DType::F32).unwrap();
        let y = g.input("y", &[b * c * a], DType::F32).unwrap();
        let xp = g.permute(x, &[1, 2, 0]).unwrap();
        let r = g.reshape(xp, &[b * c * a]).unwrap();
        let z = g.mul(r, y).unwrap();
        output(&mut g, z, "z");
        let plan = compare_all(&g, 740 + i as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["mul_0"]);
        // Two operands needing different but compatible cuts (at a and at a * b) of
        // the same axis: iterated as [c, b, a].
        let mut g = Graph::new();
        let x = g.input("x", &[a, b * c], DType::F32).unwrap();
        let y = g.input("y", &[a * b, c], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let xr = g.reshape(xt, &[a * b * c]).unwrap();
        let yt = g.permute(y, &[1, 0]).unwrap();
        let yr = g.reshape(yt, &[a * b * c]).unwrap();
        let z = g.sub(xr, yr).unwrap();
        output(&mut g, z, "z");
        let plan = compare_all(&g, 750 + i as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["sub_0"]);
    }
    for (i, &(a, b)) in PAIRS.iter().enumerate() {
        // Incompatible cuts (b * a read as b x a and as a x b, a and b coprime): no
        // iteration order makes both strided, so one operand is copied first.
        let mut g = Graph::new();
        let x = g.input("x", &[a, b], DType::F32).unwrap();
        let y = g.input("y", &[b, a], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let xr = g.reshape(xt, &[a * b]).unwrap();
        let yt = g.permute(y, &[1, 0]).unwrap();
        let yr = g.reshape(yt, &[a * b]).unwrap();
        let z = g.add(xr, yr).unwrap();
        output(&mut g, z, "z");
        let plan = compare_all(&g, 760 + i as u64, Domain::Signed, 1e-6, 1e-6);
        if a == 1 || b == 1 {
            assert_eq!(kernel_names(&plan), vec!["add_0"]);
        } else {
            assert_eq!(kernel_names(&plan), vec!["copy_0", "add_1"]);
        }
    }
    // A reshape cutting an axis at a non-divisible place ([7, 3] read back as [3, 7]
    // after a transpose) is not affine in any iteration order: a copy.
    let mut g = Graph::new();
    let x = g.input("x", &[7, 3], DType::F32).unwrap();
    let xt = g.permute(x, &[1, 0]).unwrap();
    let r = g.reshape(xt, &[7, 3]).unwrap();
    let y = g.exp(r).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 770, Domain::Signed, 1e-6, 1e-6);
    assert_eq!(kernel_names(&plan), vec!["copy_0", "exp_1"]);
}

#[test]
fn broadcast_then_reshape_is_one_kernel() {
    for (si, &s) in SIZES.iter().enumerate() {
        // [s] -> [3, s] -> [s, 3] -> [3s]: out[i * 3 + j] reads x[i] (strides [1, 0]);
        // [s, 1] -> [s, 3] -> [3s] alike; both cut [3s] into [s, 3].
        let mut g = Graph::new();
        let x = g.input("x", &[s], DType::F32).unwrap();
        let col = g.input("col", &[s, 1], DType::F32).unwrap();
        let y = g.input("y", &[3 * s], DType::F32).unwrap();
        let xb = g.broadcast(x, &[3, s]).unwrap();
        let xt = g.permute(xb, &[1, 0]).unwrap();
        let xr = g.reshape(xt, &[3 * s]).unwrap();
        let cb = g.broadcast(col, &[s, 3]).unwrap();
        let cr = g.reshape(cb, &[3 * s]).unwrap();
        let z = g.add(xr, y).unwrap();
        let z = g.mul(z, cr).unwrap();
        output(&mut g, z, "z");
        // Two ops on values of magnitude <= 2: rtol 1e-6, atol for cancellation.
        let plan = compare_all(&g, 780 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["add_mul_0"]);
        if s > 1 {
            // x and col are read with stride 0 along the inner (broadcast) axis.
            let zero = load_strides(&plan.kernels[0])
                .iter()
                .filter(|st| st.as_slice() == [0])
                .count();
            assert_eq!(zero, 2);
        }
    }
}

#[test]
fn reductions_over_refined_views() {
    use tessera_compiler::graph::ReduceOp;
    for (i, (a, b, r)) in [
        (7, 3, 5),
        (127, 2, 7),
        (3, 1000, 2),
        (1, 7, 4097),
        (2, 17, 1),
    ]
    .into_iter()
    .enumerate()
    {
        for op in ReduceOp::ALL {
            for keep in [false, true] {
                // The kept axis b * a merges permuted axes: iterated as [b, a] by the
                // programs (scalar index math), the reduced axis stays one strided loop.
                let mut g = Graph::new();
                let x = g.input("x", &[a, b, r], DType::F32).unwrap();
                let xp = g.permute(x, &[1, 0, 2]).unwrap();
                let xr = g.reshape(xp, &[b * a, r]).unwrap();
                let y = g.reduce(op, xr, 1, keep).unwrap();
                output(&mut g, y, "y");
                // Sums of r terms in [-1, 1): 2e-6 * r; means divide by r; max exact.
                let atol = match op {
                    ReduceOp::Sum => 2e-6 * r as f64,
                    ReduceOp::Mean => 2e-6,
                    ReduceOp::Max => 0.0,
                };
                let plan = compare_all(&g, 800 + i as u64, Domain::Signed, atol, 1e-5);
                assert_eq!(kernel_names(&plan), vec![format!("reduce_{}_0", op.name())]);
                assert_eq!(plan.kernels[0].num_programs() as usize, a * b);
            }
        }
        // An epilogue operand whose view needs the kept axis cut: still one kernel.
        let mut g = Graph::new();
        let x = g.input("x", &[a * b, r], DType::F32).unwrap();
        let w = g.input("w", &[b, a], DType::F32).unwrap();
        let m = g.mean(x, 1, false).unwrap();
        let wt = g.permute(w, &[1, 0]).unwrap();
        let wr = g.reshape(wt, &[a * b]).unwrap();
        let y = g.add(m, wr).unwrap();
        output(&mut g, y, "y");
        let plan = compare_all(&g, 810 + i as u64, Domain::Signed, 4e-6, 1e-5);
        assert_eq!(kernel_names(&plan), vec!["reduce_mean_add_0"]);
        // Body and epilogue views cutting the kept axis b * a differently (at a, and at
        // b): kept axes are scalar index math per program, each view unravels the
        // program index its own way, so there is no conflict and no copy.
        let mut g = Graph::new();
        let x = g.input("x", &[a, b, r], DType::F32).unwrap();
        let w = g.input("w", &[b, a], DType::F32).unwrap();
        let xp = g.permute(x, &[1, 0, 2]).unwrap();
        let xr = g.reshape(xp, &[b * a, r]).unwrap();
        let s = g.sum(xr, 1, false).unwrap();
        let wt = g.permute(w, &[1, 0]).unwrap();
        let wr = g.reshape(wt, &[a * b]).unwrap();
        let y = g.add(s, wr).unwrap();
        output(&mut g, y, "y");
        let plan = compare_all(
            &g,
            815 + i as u64,
            Domain::Signed,
            2e-6 * (r + 1) as f64,
            1e-5,
        );
        assert_eq!(kernel_names(&plan), vec!["reduce_sum_add_0"]);
        // A reduction result stored through a view that cuts a kept axis: one kernel.
        let mut g = Graph::new();
        let x = g.input("x", &[3, a * b, r], DType::F32).unwrap();
        let s = g.sum(x, 2, false).unwrap();
        let s = g.reshape(s, &[3, a, b]).unwrap();
        let s = g.permute(s, &[0, 2, 1]).unwrap();
        let s = g.reshape(s, &[3, b * a]).unwrap();
        output(&mut g, s, "s");
        let plan = compare_all(&g, 820 + i as u64, Domain::Signed, 2e-6 * r as f64, 1e-5);
        assert_eq!(kernel_names(&plan), vec!["reduce_sum_0"]);
    }
    // Reducing over an axis that merges permuted axes would need the loop split into
    // digits: the permuted tensor is copied first (a documented limitation).
    for (i, &(a, b)) in PAIRS.iter().enumerate() {
        let mut g = Graph::new();
        let x = g.input("x", &[a, b], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let xr = g.reshape(xt, &[b * a]).unwrap();
        let y = g.sum(xr, 0, false).unwrap();
        output(&mut g, y, "y");
        let n = (a * b) as f64;
        let plan = compare_all(&g, 830 + i as u64, Domain::Signed, 2e-6 * n, 1e-5);
        if a == 1 || b == 1 {
            assert_eq!(kernel_names(&plan), vec!["reduce_sum_0"]);
        } else {
            assert_eq!(kernel_names(&plan), vec!["copy_0", "reduce_sum_1"]);
        }
    }
}

#[test]
fn matmul_views_that_strides_cannot_express() {
    let (m, k, n1, n2) = (17, 12, 3, 5);
    let n = n1 * n2;
    // An epilogue operand whose N axis must be cut cannot be read by [BM, BN] tiles:
    // the matmul stays alone and the epilogue becomes an elementwise kernel (no copy).
    let mut g = Graph::new();
    let x = g.input("x", &[m, k], DType::F32).unwrap();
    let w = g.param("w", &[k, n], DType::F32).unwrap();
    let res = g.input("res", &[m, n2, n1], DType::F32).unwrap();
    let y = g.matmul(x, w).unwrap();
    let rp = g.permute(res, &[0, 2, 1]).unwrap();
    let rr = g.reshape(rp, &[m, n]).unwrap();
    let y = g.add(y, rr).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 850, Domain::Signed, 2e-6 * k as f64, 1e-5);
    assert_eq!(kernel_names(&plan), vec!["matmul_0", "add_1"]);
    // A matmul operand that is not a strided 2-D view (its K merges permuted axes) is
    // copied (the Dot tiles need one stride per axis).
    let mut g = Graph::new();
    let x = g.input("x", &[m, 4, 3], DType::F32).unwrap();
    let w = g.param("w", &[k, n], DType::F32).unwrap();
    let xp = g.permute(x, &[0, 2, 1]).unwrap();
    let xr = g.reshape(xp, &[m, k]).unwrap();
    let y = g.matmul(xr, w).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 851, Domain::Signed, 2e-6 * k as f64, 1e-5);
    assert_eq!(kernel_names(&plan), vec!["copy_0", "matmul_1"]);
    // A matmul result output through a view that cuts N: stored contiguously, then
    // copied through the view.
    let mut g = Graph::new();
    let x = g.input("x", &[m, k], DType::F32).unwrap();
    let w = g.param("w", &[k, n], DType::F32).unwrap();
    let y = g.matmul(x, w).unwrap();
    let y = g.reshape(y, &[m, n1, n2]).unwrap();
    let y = g.permute(y, &[0, 2, 1]).unwrap();
    let y = g.reshape(y, &[m, n2 * n1]).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 852, Domain::Signed, 2e-6 * k as f64, 1e-5);
    assert_eq!(kernel_names(&plan), vec!["matmul_0", "copy_1"]);
}

#[test]
fn outputs_that_are_views_or_inputs() {
    for (si, &s) in SIZES.iter().enumerate() {
        // A view of an input as an output: one copy kernel.
        let mut g = Graph::new();
        let x = g.input("x", &[s, 3], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        output(&mut g, xt, "xt");
        let plan = compare_all(&g, 800 + si as u64, Domain::Signed, 0.0, 0.0);
        assert_eq!(kernel_names(&plan), vec!["copy_0"]);
        // A permute-then-reshape of an input as an output: still one copy kernel.
        let mut g = Graph::new();
        let x = g.input("x", &[s, 3], DType::F32).unwrap();
        let xt = g.permute(x, &[1, 0]).unwrap();
        let xr = g.reshape(xt, &[3 * s]).unwrap();
        output(&mut g, xr, "xr");
        let plan = compare_all(&g, 805 + si as u64, Domain::Signed, 0.0, 0.0);
        assert_eq!(kernel_names(&plan), vec!["copy_0"]);
        // An input as an output: no kernel; it is read back from its own buffer.
        let mut g = Graph::new();
        let x = g.input("x", &[s], DType::F32).unwrap();
        let y = g.exp(x).unwrap();
        output(&mut g, y, "y");
        g.mark_output(x).unwrap();
        let plan = compare_all(&g, 810 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(plan.launches.len(), 1);
        let (_, xb) = plan.outputs.iter().find(|(n, _)| n == "x").unwrap();
        assert!(matches!(plan.buffer(*xb).role, BufferRole::Input { .. }));
        // A view of an elementwise result as an output: the view folds into the kernel.
        let mut g = Graph::new();
        let x = g.input("x", &[s, 3], DType::F32).unwrap();
        let y = g.exp(x).unwrap();
        let yt = g.permute(y, &[1, 0]).unwrap();
        output(&mut g, yt, "yt");
        let plan = compare_all(&g, 820 + si as u64, Domain::Signed, 1e-6, 1e-6);
        assert_eq!(kernel_names(&plan), vec!["exp_0"]);
    }
}

#[test]
fn views_of_matmul_and_reduce_results_are_stored_through() {
    for (i, &s) in [1usize, 7, 127].iter().enumerate() {
        // An output that permutes a matmul result: the matmul stores transposed.
        let mut g = Graph::new();
        let a = g.input("a", &[3, s, 17], DType::F32).unwrap();
        let b = g.param("b", &[17, 5], DType::F32).unwrap();
        let y = g.matmul(a, b).unwrap();
        let y = g.tanh(y).unwrap();
        let yt = g.permute(y, &[2, 0, 1]).unwrap();
        output(&mut g, yt, "yt");
        let plan = compare_all(&g, 850 + i as u64, Domain::Signed, 2e-6 * 17.0, 1e-5);
        assert_eq!(kernel_names(&plan), vec!["matmul_tanh_0"]);
        // An output that reshapes a reduction: stored in place.
        let mut g = Graph::new();
        let x = g.input("x", &[4, s, 6], DType::F32).unwrap();
        let m = g.mean(x, 1, false).unwrap();
        let r = g.reshape(m, &[24]).unwrap();
        output(&mut g, r, "r");
        let plan = compare_all(&g, 860 + i as u64, Domain::Signed, 2e-6, 1e-5);
        assert_eq!(kernel_names(&plan), vec!["reduce_mean_0"]);
        // Attention-style head merge: [B, H, T, D] -> permute -> reshape [B, T, H*D] feeds
        // a projection. The reshape of the permuted product cannot be a view, so the
        // product is stored permuted by its own kernel: two kernels, no copy.
        let (bsz, h, d) = (2, 3, 4);
        let mut g = Graph::new();
        let p = g.input("p", &[bsz, h, s, s], DType::F32).unwrap();
        let v = g.input("v", &[bsz, h, s, d], DType::F32).unwrap();
        let w = g.param("w", &[h * d, 8], DType::F32).unwrap();
        let o = g.matmul(p, v).unwrap();
        let o = g.permute(o, &[0, 2, 1, 3]).unwrap();
        let o = g.reshape(o, &[bsz, s, h * d]).unwrap();
        let y = g.matmul(o, w).unwrap();
        output(&mut g, y, "y");
        let atol = 2e-6 * (s * h * d) as f64;
        let plan = compare_all(&g, 870 + i as u64, Domain::Signed, atol, 1e-5);
        if s == 1 {
            assert_eq!(plan.launches.len(), 2);
        } else {
            assert_eq!(kernel_names(&plan), vec!["matmul_0", "matmul_1"]);
        }
    }
}

#[test]
fn attention_gradients_are_stored_into_one_concat() {
    // A GPT block's qkv split: `qkv [B, T, 3C]` sliced into q, k, v, each reshaped to
    // heads and permuted to `[B, H, T, D]`. The backward's dq, dk and dv kernels store
    // through the inverse permute and one concat assembles `d qkv` (autodiff merges the
    // slices' padded adjoints): no copy kernel in the backward, one concat, no add of
    // padded gradients.
    let (bsz, t, h, d) = (2, 5, 2, 4);
    let c = h * d;
    let mut g = Graph::new();
    let qkv = g.input("qkv", &[bsz, t, 3 * c], DType::F32).unwrap();
    let mut heads = Vec::new();
    for k in 0..3 {
        let s = g.slice(qkv, 2, k * c, c).unwrap();
        let s = g.reshape(s, &[bsz, t, h, d]).unwrap();
        heads.push(g.permute(s, &[0, 2, 1, 3]).unwrap());
    }
    let o = g
        .attention(heads[0], heads[1], heads[2], None, true, None)
        .unwrap();
    let o = g.permute(o, &[0, 2, 1, 3]).unwrap();
    let o = g.reshape(o, &[bsz * t * c]).unwrap();
    let w = g.input("w", &[bsz * t * c], DType::F32).unwrap();
    let o = g.mul(o, w).unwrap();
    let loss = g.sum(o, 0, false).unwrap();
    // The gradient graph outputs `grad/qkv` (and the loss).
    let gg = tessera_compiler::grad(&g, loss, &[qkv]).unwrap().graph;
    assert!(gg
        .outputs()
        .contains(&gg.find("grad/qkv").expect("named gradient")));
    let plan = compare_all(&gg, 990, Domain::Signed, 1e-5, 1e-4);
    let names = kernel_names(&plan);
    // (The forward's output is read by its permute and by the backward, so its permute
    // stays a copy kernel of its own, before the backward.)
    let bwd = names
        .iter()
        .position(|n| n.starts_with("attention_bwd"))
        .expect("a backward kernel");
    assert!(
        names[bwd..].iter().all(|n| !n.starts_with("copy")),
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with("concat")).count(),
        1,
        "{names:?}"
    );
    assert!(names.iter().all(|n| !n.starts_with("add")), "{names:?}");
}

#[test]
fn constant_output_and_dead_nodes() {
    let mut g = Graph::new();
    let x = g.input("x", &[7], DType::F32).unwrap();
    let _dead = g.exp(x).unwrap();
    let c = g.constant(3.0, &[2, 2], DType::F32).unwrap();
    output(&mut g, c, "c");
    let y = g.neg(x).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 900, Domain::Signed, 0.0, 0.0);
    assert_eq!(kernel_names(&plan), vec!["neg_0"]);
}

// ------------------------------------------------------------------ the demo

fn mlp_block(batch: usize, d_in: usize, d_hidden: usize) -> Graph {
    // The same graph as `tessera_models::mlp::mlp_block` (a dev-dependency on the models
    // crate would be a cycle): sum(tanh(x @ w + b), axis 1).
    let mut g = Graph::new();
    let x = g.input("x", &[batch, d_in], DType::F32).unwrap();
    let w = g.param("w", &[d_in, d_hidden], DType::F32).unwrap();
    let b = g.param("b", &[d_hidden], DType::F32).unwrap();
    let h = g.matmul(x, w).unwrap();
    let h = g.add(h, b).unwrap();
    let h = g.tanh(h).unwrap();
    let y = g.sum(h, 1, false).unwrap();
    output(&mut g, y, "y");
    g
}

#[test]
fn mlp_demo_is_two_kernels() {
    for (i, (batch, d_in, d_hidden)) in [(1, 7, 127), (7, 129, 17), (127, 64, 1000), (4, 17, 4097)]
        .into_iter()
        .enumerate()
    {
        let g = mlp_block(batch, d_in, d_hidden);
        // tanh is 1-Lipschitz: each term errs by K-sum rounding; then an n-term sum.
        let atol = 2e-6 * d_in as f64 * d_hidden as f64 + 2e-6 * d_hidden as f64;
        let plan = compare_all(&g, 1000 + i as u64, Domain::Signed, atol, 1e-5);
        assert_eq!(
            kernel_names(&plan),
            vec!["matmul_bias_tanh_0", "reduce_sum_1"]
        );
        // The bias is read once, through a stride-0 row view (a batch of one row has
        // an extent-1 row axis, whose stride is the contiguous one: it never moves).
        let k = &plan.kernels[0];
        let bias = k.params.iter().position(|p| p.name == "b").expect("bias");
        let row_stride = if batch == 1 { d_hidden as i64 } else { 0 };
        let bias_loads = count_insts(k, |i| {
            matches!(i, InstKind::Load { access, .. }
                if access.buffer == bias && access.strides.first() == Some(&row_stride))
        });
        assert_eq!(bias_loads, 1);
    }
}

// ------------------------------------------------------------------ memory plan

#[test]
fn chain_of_four_matmuls_reuses_storage() {
    let mut g = Graph::new();
    let mut h = g.input("x", &[17, 64], DType::F32).unwrap();
    for i in 0..4 {
        let w = g.param(&format!("w{i}"), &[64, 64], DType::F32).unwrap();
        h = g.matmul(h, w).unwrap();
    }
    output(&mut g, h, "y");
    // Four chained products of 64 terms: values grow like 64^(i/2) / 3^i; scale atol.
    let plan = compare_all(&g, 1100, Domain::Signed, 1e-3, 1e-4);
    assert_eq!(plan.launches.len(), 4);
    let temps: Vec<_> = plan
        .buffers
        .iter()
        .filter(|b| b.role == BufferRole::Temp)
        .collect();
    assert_eq!(temps.len(), 3);
    let temp_slots: std::collections::BTreeSet<usize> = temps.iter().map(|b| b.storage).collect();
    assert!(
        temp_slots.len() < temps.len(),
        "temps {} use {} slots",
        temps.len(),
        temp_slots.len()
    );
    assert_eq!(temp_slots.len(), 2);
}

#[test]
fn storage_buffer_limit_splits_kernels() {
    // A sum of 10 inputs needs 11 bindings in one kernel; WGSL allows 8.
    let mut g = Graph::new();
    let xs: Vec<_> = (0..10)
        .map(|i| g.input(&format!("x{i}"), &[127], DType::F32).unwrap())
        .collect();
    let mut acc = xs[0];
    for &x in &xs[1..] {
        acc = g.add(acc, x).unwrap();
    }
    output(&mut g, acc, "y");
    let inputs = inputs_for(&g, 1200, Domain::Signed);
    let plan = compare(&g, &Target::wgsl(), &inputs, 1e-5, 1e-5);
    assert!(plan.launches.len() >= 2);
    let plan = compare(&g, &Target::ptx(), &inputs, 1e-5, 1e-5);
    assert_eq!(plan.launches.len(), 1);
}

#[test]
fn grids_beyond_max_grid_dim_are_linearized() {
    let mut t = Target::wgsl();
    t.max_grid_dim = 16;
    let mut g = Graph::new();
    let x = g.input("x", &[9, 1000], DType::F32).unwrap();
    let xt = g.permute(x, &[1, 0]).unwrap();
    let e = g.exp(xt).unwrap();
    output(&mut g, e, "e");
    let s = g.sum(x, 0, false).unwrap();
    output(&mut g, s, "s");
    let inputs = inputs_for(&g, 1300, Domain::Signed);
    compare(&g, &t, &inputs, 2e-5, 1e-5);
    let g = matmul_graph(129, 129, 17, false, true, Some(5), false, true);
    let inputs = inputs_for(&g, 1301, Domain::Signed);
    compare(&g, &t, &inputs, 1e-4, 1e-5);
    // Too many programs even over three axes: a typed error naming the limit.
    t.max_grid_dim = 2;
    let g = mlp_block(64, 64, 64);
    match compile(&g, &t) {
        Err(tessera_compiler::CompileError::Limit { limit, .. }) => {
            assert_eq!(limit, "max_grid_dim")
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn half_precision_buffers_compute_in_f32() {
    for dtype in [DType::F16, DType::BF16] {
        let mut g = Graph::new();
        let a = g.input("a", &[17, 64], dtype).unwrap();
        let b = g.param("b", &[64, 33], dtype).unwrap();
        let y = g.matmul(a, b).unwrap();
        let y = g.tanh(y).unwrap();
        let s = g.sum(y, 1, false).unwrap();
        output(&mut g, s, "s");
        let inputs = inputs_for(&g, 1400, Domain::Signed);
        // The intermediate tanh(a @ b) is stored in the half dtype (rel. 2^-8 for bf16):
        // each of the 33 summed terms errs by up to 2^-8.
        let plan = compare(&g, &Target::ptx(), &inputs, 33.0 * 2f64.powi(-8), 1e-2);
        let casts = count_insts(&plan.kernels[0], |i| matches!(i, InstKind::Cast { .. }));
        assert!(
            casts >= 3,
            "loads of a and b cast to f32, the store casts back"
        );
        // WGSL cannot store bf16/f16: a typed error, not a broken kernel.
        assert!(matches!(
            compile(&g, &Target::wgsl()),
            Err(tessera_compiler::CompileError::Unsupported { .. })
        ));
    }
}

#[test]
fn scalars_integers_and_empty_tensors() {
    // Rank-0 values: a scalar input, a full reduction to a scalar with an epilogue.
    let mut g = Graph::new();
    let s = g.input("s", &[], DType::F32).unwrap();
    let x = g.input("x", &[1000], DType::F32).unwrap();
    let e = g.exp(s).unwrap();
    output(&mut g, e, "e");
    let t = g.reduce_max(x, 0, false).unwrap();
    let t = g.add(t, s).unwrap();
    output(&mut g, t, "t");
    let xs = g.add(x, s).unwrap();
    output(&mut g, xs, "xs");
    let plan = compare_all(&g, 1500, Domain::Signed, 1e-6, 1e-6);
    assert_eq!(plan.launches.len(), 3);
    // Integer arithmetic stays in its dtype.
    let mut g = Graph::new();
    let a = g.input("a", &[127, 3], DType::I32).unwrap();
    let b = g.input("b", &[3], DType::I32).unwrap();
    let c = g.constant(5.0, &[], DType::I32).unwrap();
    let y = g.add(a, b).unwrap();
    let y = g.mul(y, c).unwrap();
    let y = g.neg(y).unwrap();
    output(&mut g, y, "y");
    let plan = compare_all(&g, 1501, Domain::Signed, 0.0, 0.0);
    assert_eq!(plan.launches.len(), 1);
    // Empty tensors: no kernel writes nothing, but every buffer and output exists.
    let mut g = Graph::new();
    let x = g.input("x", &[0, 3], DType::F32).unwrap();
    let y = g.exp(x).unwrap();
    output(&mut g, y, "y");
    let z = g.sum(x, 1, false).unwrap();
    output(&mut g, z, "z");
    let plan = compare_all(&g, 1502, Domain::Signed, 0.0, 0.0);
    assert_eq!(plan.launches.len(), 0);
    assert_eq!(plan.outputs.len(), 2);
    // Reducing an empty axis gives the identity (sum 0, max -inf, mean NaN).
    let mut g = Graph::new();
    let x = g.input("x", &[3, 0], DType::F32).unwrap();
    for (i, op) in tessera_compiler::graph::ReduceOp::ALL
        .into_iter()
        .enumerate()
    {
        let y = g.reduce(op, x, 1, false).unwrap();
        output(&mut g, y, &format!("y{i}"));
    }
    let plan = compare_all(&g, 1503, Domain::Signed, 0.0, 0.0);
    assert_eq!(plan.launches.len(), 3);
}

// ------------------------------------------------------------------ random graphs

/// A small deterministic generator (splitmix64) for the random-graph test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random graph of every op kind over small shapes: values stay in [-e, e] (tanh
/// after sums and products) so a fixed tolerance applies.
fn random_graph(seed: u64) -> Graph {
    let mut r = Rng(seed);
    let mut g = Graph::new();
    let mut pool: Vec<NodeId> = Vec::new();
    let dims = |r: &mut Rng| 1 + r.below(6);
    let rank = 1 + r.below(3);
    let shape: Vec<usize> = (0..rank).map(|_| dims(&mut r)).collect();
    pool.push(g.input("x0", &shape, DType::F32).unwrap());
    let n_ops = 4 + r.below(10);
    let mut params = 0;
    for _ in 0..n_ops {
        let a = pool[r.below(pool.len())];
        let sa = g.ty(a).shape.clone();
        let node = match r.below(9) {
            0 => {
                let op = [UnaryOp::Neg, UnaryOp::Tanh, UnaryOp::Exp][r.below(3)];
                let x = if op == UnaryOp::Exp {
                    g.tanh(a).unwrap()
                } else {
                    a
                };
                g.unary(op, x).unwrap()
            }
            1 | 2 => {
                // Same shape partner from the pool, or a fresh broadcastable input.
                let same: Vec<NodeId> = pool
                    .iter()
                    .copied()
                    .filter(|&p| g.ty(p).shape == sa)
                    .collect();
                let b = if r.below(2) == 0 && !same.is_empty() {
                    same[r.below(same.len())]
                } else {
                    let mut bs: Vec<usize> = sa.clone();
                    for d in bs.iter_mut() {
                        if r.below(2) == 0 {
                            *d = 1;
                        }
                    }
                    let drop = r.below(bs.len() + 1);
                    let bs = bs[drop..].to_vec();
                    params += 1;
                    g.param(&format!("p{params}"), &bs, DType::F32).unwrap()
                };
                let op = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Max][r.below(4)];
                let (x, y) = if r.below(2) == 0 { (a, b) } else { (b, a) };
                let v = g.binary(op, x, y).unwrap();
                if op == BinaryOp::Mul {
                    g.tanh(v).unwrap()
                } else {
                    v
                }
            }
            3 if !sa.is_empty() => {
                let op = tessera_compiler::graph::ReduceOp::ALL[r.below(3)];
                let axis = r.below(sa.len());
                let v = g.reduce(op, a, axis, r.below(2) == 0).unwrap();
                if g.ty(v).shape.is_empty() {
                    v
                } else {
                    g.tanh(v).unwrap()
                }
            }
            4 if sa.len() >= 2 => {
                let mut perm: Vec<usize> = (0..sa.len()).collect();
                for i in (1..perm.len()).rev() {
                    perm.swap(i, r.below(i + 1));
                }
                g.permute(a, &perm).unwrap()
            }
            5 => {
                // Merge two neighbours or split one axis.
                let mut s = sa.clone();
                if s.len() >= 2 && r.below(2) == 0 {
                    let i = r.below(s.len() - 1);
                    let m = s[i] * s[i + 1];
                    s.splice(i..i + 2, [m]);
                } else if !s.is_empty() {
                    let i = r.below(s.len());
                    let d = s[i];
                    let f = (2..=d).find(|&f| d.is_multiple_of(f)).unwrap_or(1);
                    s.splice(i..i + 1, [f, d / f]);
                }
                if s.is_empty() || s.len() > 4 {
                    a
                } else {
                    g.reshape(a, &s).unwrap()
                }
            }
            6 if sa.len() < 3 => {
                let mut s = vec![1 + r.below(3)];
                s.extend(&sa);
                g.broadcast(a, &s).unwrap()
            }
            7 | 8 if (2..=3).contains(&sa.len()) => {
                let k = sa[sa.len() - 1];
                let n = dims(&mut r);
                params += 1;
                let tb = r.below(2) == 0;
                let ws = if tb { [n, k] } else { [k, n] };
                let w = g.param(&format!("p{params}"), &ws, DType::F32).unwrap();
                let m = g.matmul_t(a, w, false, tb).unwrap();
                g.tanh(m).unwrap()
            }
            _ => g.neg(a).unwrap(),
        };
        pool.push(node);
    }
    let last = *pool.last().expect("non-empty");
    g.mark_output(last).unwrap();
    for &p in &pool[1..] {
        if r.below(4) == 0 {
            g.mark_output(p).unwrap();
        }
    }
    g
}

#[test]
fn random_graphs_agree_with_the_oracle() {
    for seed in 0..1000 {
        let g = random_graph(seed);
        // Values are bounded by e and every sum has at most a few hundred terms.
        let inputs = inputs_for(&g, seed, Domain::Signed);
        // A tight target: 3 bindings per kernel forces splits, 7 programs per grid axis
        // forces linearized grids.
        let mut tight = Target::wgsl();
        tight.max_storage_buffers = 3;
        tight.max_grid_dim = 7;
        let mut all = targets();
        if compile(&g, &tight).is_ok() {
            all.push(tight);
        }
        for t in all {
            let plan = std::panic::catch_unwind(|| compare(&g, &t, &inputs, 1e-4, 1e-4));
            if plan.is_err() {
                let nodes: Vec<String> = g
                    .nodes()
                    .iter()
                    .map(|n| format!("{} = {:?}{:?} {}", n.name, n.op, n.inputs, n.ty))
                    .collect();
                panic!("seed {seed}, {:?}:\n{}", t.kind, nodes.join("\n"));
            }
        }
    }
}

#[test]
fn a_chain_of_twenty_thousand_ops_compiles_in_bounded_stack() {
    // A machine-made graph may chain thousands of elementwise ops. Fusion cuts such a
    // chain every `MAX_FUSED_DEPTH` ops (the kernel builders recurse over a kernel's
    // expression), so it compiles for every target on a test thread's 2 MiB stack, and
    // the cut kernels (merged again into multi-output kernels) compute the chain.
    use tessera_compiler::schedule::fuse::MAX_FUSED_DEPTH;
    let mut g = Graph::new();
    let x = g.input("x", &[37], DType::F32).unwrap();
    let mut y = x;
    for i in 0..20_000 {
        let op = if i % 2 == 0 {
            UnaryOp::Tanh
        } else {
            UnaryOp::Neg
        };
        y = g.unary(op, y).unwrap();
    }
    g.mark_output(y).unwrap();
    let data: Vec<f32> = (0..37).map(|i| i as f32 / 9.0 - 2.0).collect();
    let inputs = HashMap::from([(
        "x".to_string(),
        Tensor::from_f32(&[37], DType::F32, &data).unwrap(),
    )]);
    let want = run_graph(&g, &inputs).expect("graph interpreter");
    for target in targets() {
        let (plan, art) = tessera_compiler::compile_and_emit(&g, &target)
            .unwrap_or_else(|e| panic!("{:?}: {e}", target.kind));
        assert!(
            plan.launches.len() >= 20_000 / (8 * MAX_FUSED_DEPTH),
            "{:?}: {} launches",
            target.kind,
            plan.launches.len()
        );
        assert!(!art.files.is_empty());
        let got = run_plan(&plan, &inputs).expect("tile interpreter");
        let (name, w) = want.iter().next().unwrap();
        // Each tanh contracts errors (|tanh'| <= 1) and neg is exact: the f32 chain
        // stays within a few ulps of the f64 one.
        for (i, (a, b)) in got[name].to_f32().iter().zip(&w.data).enumerate() {
            assert!(
                (*a as f64 - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "{:?} [{i}]: {a} vs {b}",
                target.kind
            );
        }
    }
}
