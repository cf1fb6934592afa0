//! End-to-end numerical tests of the Ascend C backend: emitted kernels + AscendCL host
//! code compiled with g++ against the CPU build of the Ascend C API
//! (`compiler/ascendc/include`) and run; results are compared with the reference
//! interpreters.
//!
//! Two groups:
//! - hand-built tile kernels (elementwise with a masked tail, strided and broadcast
//!   loads, row reductions, matmul on the cube unit) against the f32 tile interpreter
//!   (`interp::run_plan`), which defines tile-IR semantics;
//! - whole graphs scheduled for `Target::ascend_910b()` (the MLP block, an elementwise
//!   chain, reductions, matmuls with transposes and batches at awkward sizes) against
//!   the f64 graph interpreter (`interp::run_graph`).
//!
//! Tolerances (inputs uniform in [-1, 1)): every kernel computes in f32, so the error
//! against f64 is a few f32 roundings per op (relative 2^-24 ~ 6e-8 each). Exp/Ln/Sqrt
//! on the CPU build are libm-accurate; tanh is composed as 2 / (1 + exp(-2x)) - 1, whose
//! absolute error is a few ulp of 1 (< 1e-6). Sums of n terms accumulate at most
//! ~n * 6e-8 relative to the sum of magnitudes; with n <= 1000 and |terms| <= ~3 that is
//! < 2e-4 absolute. Each test states its bound next to the comparison.

use std::collections::HashMap;
use tessera::runtime::ascend_cpu::{run_plan_ascend_cpu, AscendCpuError};
use tessera_compiler::backend::ascendc::emit_plan;
use tessera_compiler::graph::{BinaryOp, DType, Graph, ReduceOp, UnaryOp};
use tessera_compiler::interp::{run_graph, run_plan, Tensor};
use tessera_compiler::schedule::plan::{
    BufferId, BufferInfo, BufferRole, Launch, Plan, StorageSlot,
};
use tessera_compiler::tile::{
    Access, BlockAccess, BufferParam, IndexOp, TileBuilder, TileKernel, ValueId,
};
use tessera_compiler::{NodeId, Target};

// ---------------------------------------------------------------------------------------
// Harness

fn target() -> Target {
    Target::ascend_910b()
}

/// Runs a plan on the Ascend CPU build; panics with the full error (compiler / runtime
/// messages included) on failure.
fn run_ascend(plan: &Plan, inputs: &HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    let art = emit_plan(plan, &target()).unwrap_or_else(|e| {
        let ir: Vec<String> = plan
            .kernels
            .iter()
            .map(tessera_compiler::tile::print_kernel)
            .collect();
        panic!("emission failed: {e}\n{}", ir.join("\n"))
    });
    match run_plan_ascend_cpu(plan, &art, inputs) {
        Ok(o) => o,
        Err(e) => panic!("Ascend CPU run failed: {e}"),
    }
}

/// Compiles a graph for Ascend, runs it on the CPU build and compares every output with
/// the f64 oracle: `max |got - want| <= atol + rtol * |want|` element by element.
fn check_graph(graph: &Graph, inputs: &HashMap<String, Tensor>, atol: f64, rtol: f64) {
    let plan = tessera_compiler::compile(graph, &target())
        .unwrap_or_else(|e| panic!("scheduling failed: {e}"));
    let got = run_ascend(&plan, inputs);
    let want = run_graph(graph, inputs).expect("oracle runs");
    assert_eq!(
        got.len(),
        want.len(),
        "outputs: got {:?}",
        got.keys().collect::<Vec<_>>()
    );
    for (name, w) in &want {
        let g = got
            .get(name)
            .unwrap_or_else(|| panic!("missing output {name}"));
        assert_eq!(g.shape, w.shape, "output {name} shape");
        compare(name, &g.data, &w.data, atol, rtol);
    }
}

fn compare(name: &str, got: &[f64], want: &[f64], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: length");
    let mut worst = (0usize, 0.0f64);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g.is_nan() && w.is_nan() {
            continue; // e.g. output elements no kernel writes (both sides leave them NaN)
        }
        let err = (g - w).abs();
        let allowed = atol + rtol * w.abs();
        assert!(
            err <= allowed,
            "{name}[{i}]: got {g}, want {w} (|err| {err:e} > {allowed:e}); first values got {:?} want {:?}",
            &got[..got.len().min(8)],
            &want[..want.len().min(8)]
        );
        if err > worst.1 {
            worst = (i, err);
        }
    }
    eprintln!("{name}: max abs error {:e} at {}", worst.1, worst.0);
}

fn inputs_for(graph: &Graph, seed: u64) -> HashMap<String, Tensor> {
    let mut m = HashMap::new();
    for (i, id) in graph.inputs().into_iter().chain(graph.params()).enumerate() {
        let n = graph.node(id);
        m.insert(
            n.name.clone(),
            Tensor::random(&graph.ty(id).shape, graph.ty(id).dtype, seed + i as u64),
        );
    }
    m
}

// ---------------------------------------------------------------------------------------
// Hand-built tile kernels

fn param(name: &str, dtype: DType, len: usize, access: Access) -> BufferParam {
    BufferParam {
        name: name.into(),
        dtype,
        len,
        access,
    }
}

/// A one-kernel plan: each parameter its own buffer and storage slot; read-only
/// parameters are inputs, the others outputs.
fn single_kernel_plan(kernel: TileKernel) -> Plan {
    let mut buffers = Vec::new();
    let mut storage = Vec::new();
    let mut outputs = Vec::new();
    for (i, p) in kernel.params.iter().enumerate() {
        let role = match p.access {
            Access::Read => BufferRole::Input {
                name: p.name.clone(),
            },
            _ => BufferRole::Output {
                name: p.name.clone(),
            },
        };
        if matches!(role, BufferRole::Output { .. }) {
            outputs.push((p.name.clone(), BufferId(i as u32)));
        }
        buffers.push(BufferInfo {
            id: BufferId(i as u32),
            node: NodeId(i as u32),
            dtype: p.dtype,
            shape: vec![p.len],
            len: p.len,
            role,
            storage: i,
        });
        storage.push(StorageSlot {
            bytes: p.len * p.dtype.size_bytes(),
        });
    }
    let args = (0..kernel.params.len())
        .map(|i| BufferId(i as u32))
        .collect();
    Plan {
        kernels: vec![kernel],
        buffers,
        launches: vec![Launch { kernel: 0, args }],
        storage,
        outputs,
    }
}

/// Runs a hand-built kernel on the CPU build and on the f32 tile interpreter.
fn check_kernel(kernel: TileKernel, seed: u64, atol: f64, rtol: f64) {
    let plan = single_kernel_plan(kernel);
    let mut inputs = HashMap::new();
    for (i, b) in plan.buffers.iter().enumerate() {
        if let BufferRole::Input { name } = &b.role {
            inputs.insert(
                name.clone(),
                Tensor::random(&b.shape, b.dtype, seed + i as u64),
            );
        }
    }
    let want = run_plan(&plan, &inputs).expect("tile interpreter runs");
    let got = run_ascend(&plan, &inputs);
    for (name, w) in &want {
        compare(name, &got[name].data, &w.data, atol, rtol);
    }
}

/// `out = tanh(exp(x) + y) * 0.5` over `n` elements in blocks of `block` (masked tail);
/// `y` is read with stride `y_stride` (0: broadcast of y[0]; > 1: a strided view).
fn elementwise_kernel(n: usize, block: usize, y_stride: i64) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let ys = b.index(y_stride);
    let ybase = b.iop(IndexOp::Mul, base, ys);
    let acc = |buffer, base, stride| BlockAccess {
        buffer,
        base,
        strides: vec![stride],
        limits: vec![lim],
        shape: vec![block],
    };
    let x = b.load(acc(0, base, 1), DType::F32, 0.0);
    let y = b.load(acc(1, ybase, y_stride), DType::F32, 0.0);
    let e = b.unary(UnaryOp::Exp, x);
    let s = b.binary(BinaryOp::Add, e, y);
    let t = b.unary(UnaryOp::Tanh, s);
    let half = b.float(0.5, DType::F32);
    let o = b.binary(BinaryOp::Mul, t, half);
    b.store(acc(2, base, 1), o);
    let ylen = if y_stride == 0 {
        1
    } else {
        (n - 1) * y_stride as usize + 1
    };
    b.finish(
        format!("ew_{n}_{block}_{y_stride}"),
        vec![
            param("x", DType::F32, n, Access::Read),
            param("y", DType::F32, ylen, Access::Read),
            param("out", DType::F32, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

/// Every elementwise / scalar op of the tile IR: `out = max(sqrt(|x| + 1) - rsqrt(x*x + 2),
/// log(x + 3) / (2 - x)) - neg(x)`, plus scalar math on the program id.
fn all_ops_kernel(n: usize, block: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let acc = |buffer| BlockAccess {
        buffer,
        base,
        strides: vec![1],
        limits: vec![lim],
        shape: vec![block],
    };
    let x = b.load(acc(0), DType::F32, 0.0);
    let one = b.float(1.0, DType::F32);
    let two = b.float(2.0, DType::F32);
    let three = b.float(3.0, DType::F32);
    let xx = b.binary(BinaryOp::Mul, x, x);
    let xx2 = b.binary(BinaryOp::Add, xx, two);
    let r = b.unary(UnaryOp::Rsqrt, xx2);
    let negx = b.unary(UnaryOp::Neg, x);
    let ax = b.binary(BinaryOp::Max, x, negx);
    let ax1 = b.binary(BinaryOp::Add, ax, one);
    let sq = b.unary(UnaryOp::Sqrt, ax1);
    let left = b.binary(BinaryOp::Sub, sq, r);
    let x3 = b.binary(BinaryOp::Add, x, three);
    let lg = b.unary(UnaryOp::Log, x3);
    let den = b.binary(BinaryOp::Sub, two, x);
    let q = b.binary(BinaryOp::Div, lg, den);
    let m = b.binary(BinaryOp::Max, left, q);
    let nx = b.unary(UnaryOp::Neg, x);
    let out = b.binary(BinaryOp::Sub, m, nx);
    // Scalar math: scale = exp(pid * 0.25) / 2 (scalar exp goes through the vector unit).
    let quarter = b.float(0.25, DType::F32);
    let e = b.unary(UnaryOp::Exp, quarter);
    let scale = b.binary(BinaryOp::Div, e, two);
    let out = b.binary(BinaryOp::Mul, out, scale);
    let out = b.binary(BinaryOp::Div, out, three);
    b.store(acc(1), out);
    b.finish(
        "all_ops".into(),
        vec![
            param("x", DType::F32, n, Access::Read),
            param("out", DType::F32, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

/// `out[r] = op over c of x[r, c]` for `x: [rows, cols]`, chunks of `block`.
fn reduction_kernel(rows: usize, cols: usize, block: usize, op: ReduceOp) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let ncols = b.index(cols as i64);
    let row_base = b.iop(IndexOp::Mul, pid, ncols);
    let zero = b.index(0);
    let ident = b.float(op.identity(), DType::F32);
    let acc0 = b.splat(ident, &[block]);
    let args = b.begin_for(&[acc0]);
    let (k, acc) = (args[0], args[1]);
    let base = b.iop(IndexOp::Add, row_base, k);
    let lim = b.iop(IndexOp::Sub, ncols, k);
    let x = b.load(
        BlockAccess {
            buffer: 0,
            base,
            strides: vec![1],
            limits: vec![lim],
            shape: vec![block],
        },
        DType::F32,
        op.identity(),
    );
    let next = b.binary(op.combiner(), acc, x);
    let res = b.end_for(zero, ncols, block as i64, &[acc0], &[next]);
    let r = b.reduce(op, res[0], 0);
    // a scalar epilogue: mean-like scale
    let inv = b.float(1.0 / cols as f64, DType::F32);
    let r = b.binary(BinaryOp::Mul, r, inv);
    b.store(
        BlockAccess {
            buffer: 1,
            base: pid,
            strides: vec![],
            limits: vec![],
            shape: vec![],
        },
        r,
    );
    b.finish(
        format!("reduce_{}_{rows}x{cols}", op.name()),
        vec![
            param("x", DType::F32, rows * cols, Access::Read),
            param("out", DType::F32, rows, Access::Write),
        ],
        [rows as u32, 1, 1],
    )
}

/// `c = tanh(a @ b + bias)`; `a: [m, k]` (`[k, m]` with `trans_a`), `b: [k, n]` (`[n, k]`
/// with `trans_b`), tiles `[bm, bn]`, K step `bk`, `batch` independent problems.
#[allow(clippy::too_many_arguments)]
fn matmul_kernel(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    (bm, bn, bk): (usize, usize, usize),
    trans_a: bool,
    trans_b: bool,
) -> TileKernel {
    matmul_kernel_typed(batch, m, n, k, (bm, bn, bk), trans_a, trans_b, DType::F32)
}

/// [`matmul_kernel`] with operands of dtype `dt` (f32 accumulation, f32 output).
#[allow(clippy::too_many_arguments)]
fn matmul_kernel_typed(
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    (bm, bn, bk): (usize, usize, usize),
    trans_a: bool,
    trans_b: bool,
    dt: DType,
) -> TileKernel {
    let mut b = TileBuilder::new();
    let pm = b.program_id(0);
    let pn = b.program_id(1);
    let pb = b.program_id(2);
    let bmv = b.index(bm as i64);
    let bnv = b.index(bn as i64);
    let row0 = b.iop(IndexOp::Mul, pm, bmv);
    let col0 = b.iop(IndexOp::Mul, pn, bnv);
    let mv = b.index(m as i64);
    let nv = b.index(n as i64);
    let kv = b.index(k as i64);
    let mk = b.index((m * k) as i64);
    let kn = b.index((k * n) as i64);
    let mn = b.index((m * n) as i64);
    let a_off = b.iop(IndexOp::Mul, pb, mk);
    let b_off = b.iop(IndexOp::Mul, pb, kn);
    let c_off = b.iop(IndexOp::Mul, pb, mn);
    let lim_m = b.iop(IndexOp::Sub, mv, row0);
    let lim_n = b.iop(IndexOp::Sub, nv, col0);
    let zero = b.float(0.0, DType::F32);
    let acc0 = b.splat(zero, &[bm, bn]);
    let z = b.index(0);
    let args = b.begin_for(&[acc0]);
    let (kk, acc) = (args[0], args[1]);
    let lim_k = b.iop(IndexOp::Sub, kv, kk);
    let (a_base, a_strides) = if trans_a {
        let t = b.iop(IndexOp::Mul, kk, mv);
        let t = b.iop(IndexOp::Add, t, row0);
        (b.iop(IndexOp::Add, t, a_off), vec![1, m as i64])
    } else {
        let t = b.iop(IndexOp::Mul, row0, kv);
        let t = b.iop(IndexOp::Add, t, kk);
        (b.iop(IndexOp::Add, t, a_off), vec![k as i64, 1])
    };
    let (b_base, b_strides) = if trans_b {
        let t = b.iop(IndexOp::Mul, col0, kv);
        let t = b.iop(IndexOp::Add, t, kk);
        (b.iop(IndexOp::Add, t, b_off), vec![1, k as i64])
    } else {
        let t = b.iop(IndexOp::Mul, kk, nv);
        let t = b.iop(IndexOp::Add, t, col0);
        (b.iop(IndexOp::Add, t, b_off), vec![n as i64, 1])
    };
    let at = b.load(
        BlockAccess {
            buffer: 0,
            base: a_base,
            strides: a_strides,
            limits: vec![lim_m, lim_k],
            shape: vec![bm, bk],
        },
        dt,
        0.0,
    );
    let bt = b.load(
        BlockAccess {
            buffer: 1,
            base: b_base,
            strides: b_strides,
            limits: vec![lim_k, lim_n],
            shape: vec![bk, bn],
        },
        dt,
        0.0,
    );
    let d = b.dot(at, bt, acc);
    let res = b.end_for(z, kv, bk as i64, &[acc0], &[d]);
    let bias = b.load(
        BlockAccess {
            buffer: 2,
            base: col0,
            strides: vec![0, 1],
            limits: vec![lim_m, lim_n],
            shape: vec![bm, bn],
        },
        DType::F32,
        0.0,
    );
    let h = b.binary(BinaryOp::Add, res[0], bias);
    let t = b.unary(UnaryOp::Tanh, h);
    let t2 = b.iop(IndexOp::Mul, row0, nv);
    let t3 = b.iop(IndexOp::Add, t2, col0);
    let c_base = b.iop(IndexOp::Add, t3, c_off);
    b.store(
        BlockAccess {
            buffer: 3,
            base: c_base,
            strides: vec![n as i64, 1],
            limits: vec![lim_m, lim_n],
            shape: vec![bm, bn],
        },
        t,
    );
    b.finish(
        format!(
            "mm_{m}x{n}x{k}_{}{}_{dt}",
            u8::from(trans_a),
            u8::from(trans_b)
        ),
        vec![
            param("a", dt, batch * m * k, Access::Read),
            param("b", dt, batch * k * n, Access::Read),
            param("bias", DType::F32, n, Access::Read),
            param("c", DType::F32, batch * m * n, Access::Write),
        ],
        [m.div_ceil(bm) as u32, n.div_ceil(bn) as u32, batch as u32],
    )
}

#[test]
fn kernel_elementwise_masked_tail() {
    // f32 ops on both sides, tanh composed differently: |err| < 1e-6 (a few ulp of 1).
    check_kernel(elementwise_kernel(1000, 256, 1), 1, 1e-6, 1e-6);
    check_kernel(elementwise_kernel(7, 8, 1), 2, 1e-6, 1e-6);
    check_kernel(elementwise_kernel(300, 64, 1), 3, 1e-6, 1e-6);
}

#[test]
fn kernel_elementwise_broadcast_and_strided_loads() {
    check_kernel(elementwise_kernel(1000, 256, 0), 4, 1e-6, 1e-6);
    check_kernel(elementwise_kernel(257, 64, 3), 5, 1e-6, 1e-6);
}

#[test]
fn kernel_all_elementwise_ops() {
    // sqrt / rsqrt / log / div / max / neg and a scalar exp: a few f32 roundings.
    check_kernel(all_ops_kernel(1000, 128), 6, 1e-6, 1e-5);
}

#[test]
fn kernel_row_reductions() {
    // 1000-term f32 sums in a different order than the interpreter: < 1e-4 absolute on
    // sums of magnitude <= 1000, scaled by 1/1000 -> 1e-6 with slack.
    check_kernel(reduction_kernel(7, 1000, 256, ReduceOp::Sum), 7, 1e-5, 1e-5);
    check_kernel(reduction_kernel(5, 37, 16, ReduceOp::Max), 8, 0.0, 1e-7);
}

#[test]
fn kernel_matmul_on_the_cube() {
    // K <= 100 products summed in f32 (cube order vs sequential): relative 1e-5 before
    // tanh, so |err| < 2e-5 after it.
    for (ta, tb) in [(false, true), (false, false), (true, false), (true, true)] {
        check_kernel(
            matmul_kernel(1, 100, 70, 50, (32, 32, 32), ta, tb),
            10,
            2e-5,
            0.0,
        );
    }
    check_kernel(
        matmul_kernel(3, 17, 33, 9, (16, 32, 16), false, true),
        11,
        2e-5,
        0.0,
    );
}

#[test]
fn host_reports_missing_input() {
    let plan = single_kernel_plan(elementwise_kernel(16, 8, 1));
    let art = emit_plan(&plan, &target()).expect("emits");
    let inputs = HashMap::from([("x".to_string(), Tensor::random(&[16], DType::F32, 1))]);
    match run_plan_ascend_cpu(&plan, &art, &inputs) {
        Err(AscendCpuError::MissingInput { name }) => assert_eq!(name, "y"),
        other => panic!("expected a missing-input error, got {other:?}"),
    }
}

#[test]
fn compile_errors_carry_the_compiler_output() {
    let plan = single_kernel_plan(elementwise_kernel(16, 8, 1));
    let mut art = emit_plan(&plan, &target()).expect("emits");
    art.files[0].contents.push_str("\nthis is not C++;\n");
    let inputs: HashMap<String, Tensor> = ["x", "y"]
        .iter()
        .map(|n| (n.to_string(), Tensor::random(&[16], DType::F32, 1)))
        .collect();
    match run_plan_ascend_cpu(&plan, &art, &inputs) {
        Err(AscendCpuError::Compile { stderr, .. }) => {
            assert!(stderr.contains("error"), "{stderr}")
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

/// `out = cast_{out_dt}(x * 2 + y)` with `x: in_dt`, `y: f32` (widening loads, a narrowing
/// store), `n` elements in blocks of `block`.
fn mixed_dtype_kernel(n: usize, block: usize, in_dt: DType, out_dt: DType) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let acc = |buffer| BlockAccess {
        buffer,
        base,
        strides: vec![1],
        limits: vec![lim],
        shape: vec![block],
    };
    let x = b.load(acc(0), in_dt, 0.0);
    let y = b.load(acc(1), DType::F32, 0.0);
    let xf = b.cast(x, DType::F32);
    let two = b.float(2.0, DType::F32);
    let x2 = b.binary(BinaryOp::Mul, xf, two);
    let s = b.binary(BinaryOp::Add, x2, y);
    let o = b.cast(s, out_dt);
    b.store(acc(2), o);
    b.finish(
        format!("mixed_{in_dt}_{out_dt}"),
        vec![
            param("x", in_dt, n, Access::Read),
            param("y", DType::F32, n, Access::Read),
            param("out", out_dt, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

/// Rank-2 tile reductions: `x: [rows, cols]` loaded as one `[tr, tc]` tile per program,
/// reduced along `axis`, the rank-1 result stored (`out` holds one result row per program).
fn tile_reduce_kernel(
    rows: usize,
    cols: usize,
    (tr, tc): (usize, usize),
    axis: usize,
    op: ReduceOp,
) -> TileKernel {
    let mut b = TileBuilder::new();
    let p0 = b.program_id(0);
    let p1 = b.program_id(1);
    let trv = b.index(tr as i64);
    let tcv = b.index(tc as i64);
    let r0 = b.iop(IndexOp::Mul, p0, trv);
    let c0 = b.iop(IndexOp::Mul, p1, tcv);
    let rv = b.index(rows as i64);
    let cv = b.index(cols as i64);
    let lr = b.iop(IndexOp::Sub, rv, r0);
    let lc = b.iop(IndexOp::Sub, cv, c0);
    let t = b.iop(IndexOp::Mul, r0, cv);
    let base = b.iop(IndexOp::Add, t, c0);
    let x = b.load(
        BlockAccess {
            buffer: 0,
            base,
            strides: vec![cols as i64, 1],
            limits: vec![lr, lc],
            shape: vec![tr, tc],
        },
        DType::F32,
        op.identity(),
    );
    let red = b.reduce(op, x, axis);
    let e = b.unary(UnaryOp::Exp, red);
    // out: [grid0, grid1, extent] row-major, extent = tc (axis 0) or tr (axis 1)
    let (g0, g1) = (rows.div_ceil(tr), cols.div_ceil(tc));
    let ext = if axis == 0 { tc } else { tr };
    let g1v = b.index(g1 as i64);
    let pp = b.iop(IndexOp::Mul, p0, g1v);
    let pp = b.iop(IndexOp::Add, pp, p1);
    let extv = b.index(ext as i64);
    let obase = b.iop(IndexOp::Mul, pp, extv);
    let lim = if axis == 0 { lc } else { lr };
    b.store(
        BlockAccess {
            buffer: 1,
            base: obase,
            strides: vec![1],
            limits: vec![lim],
            shape: vec![ext],
        },
        e,
    );
    b.finish(
        format!("tile_reduce_{}_{axis}", op.name()),
        vec![
            param("x", DType::F32, rows * cols, Access::Read),
            param("out", DType::F32, g0 * g1 * ext, Access::Write),
        ],
        [g0 as u32, g1 as u32, 1],
    )
}

/// `out = max(x * y, x + 3) - neg(y)` on i32 tiles.
fn int_kernel(n: usize, block: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let acc = |buffer| BlockAccess {
        buffer,
        base,
        strides: vec![1],
        limits: vec![lim],
        shape: vec![block],
    };
    let x = b.load(acc(0), DType::I32, 0.0);
    let y = b.load(acc(1), DType::I32, 0.0);
    let xy = b.binary(BinaryOp::Mul, x, y);
    let three = b.index(3);
    let x3 = b.binary(BinaryOp::Add, x, three);
    let m = b.binary(BinaryOp::Max, xy, x3);
    let ny = b.unary(UnaryOp::Neg, y);
    let o = b.binary(BinaryOp::Sub, m, ny);
    b.store(acc(2), o);
    b.finish(
        "int_ops".into(),
        vec![
            param("x", DType::I32, n, Access::Read),
            param("y", DType::I32, n, Access::Read),
            param("out", DType::I32, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

/// `out = exp(x^T)` for `x: [a, b]`, `out: [b, a]`, tiles `[tr, tc]` of `out` (or of `x`
/// with `scatter`): either a strided (gather) load and a contiguous store, or a contiguous
/// load and a strided (scatter) store.
fn transpose_kernel(
    a: usize,
    bdim: usize,
    (tr, tc): (usize, usize),
    scatter: bool,
    dt: DType,
) -> TileKernel {
    let mut b = TileBuilder::new();
    let p0 = b.program_id(0);
    let p1 = b.program_id(1);
    let trv = b.index(tr as i64);
    let tcv = b.index(tc as i64);
    let r0 = b.iop(IndexOp::Mul, p0, trv);
    let c0 = b.iop(IndexOp::Mul, p1, tcv);
    let av = b.index(a as i64);
    let bv = b.index(bdim as i64);
    let (load, store, grid) = if !scatter {
        // tile over out [b, a]: out rows r0.., cols c0..; x element (c, r)
        let lr = b.iop(IndexOp::Sub, bv, r0);
        let lc = b.iop(IndexOp::Sub, av, c0);
        let t = b.iop(IndexOp::Mul, c0, bv);
        let xb = b.iop(IndexOp::Add, t, r0);
        let t = b.iop(IndexOp::Mul, r0, av);
        let ob = b.iop(IndexOp::Add, t, c0);
        (
            BlockAccess {
                buffer: 0,
                base: xb,
                strides: vec![1, bdim as i64],
                limits: vec![lr, lc],
                shape: vec![tr, tc],
            },
            BlockAccess {
                buffer: 1,
                base: ob,
                strides: vec![a as i64, 1],
                limits: vec![lr, lc],
                shape: vec![tr, tc],
            },
            [bdim.div_ceil(tr) as u32, a.div_ceil(tc) as u32, 1],
        )
    } else {
        // tile over x [a, b]: x rows r0.., cols c0..; out element (c, r)
        let lr = b.iop(IndexOp::Sub, av, r0);
        let lc = b.iop(IndexOp::Sub, bv, c0);
        let t = b.iop(IndexOp::Mul, r0, bv);
        let xb = b.iop(IndexOp::Add, t, c0);
        let t = b.iop(IndexOp::Mul, c0, av);
        let ob = b.iop(IndexOp::Add, t, r0);
        (
            BlockAccess {
                buffer: 0,
                base: xb,
                strides: vec![bdim as i64, 1],
                limits: vec![lr, lc],
                shape: vec![tr, tc],
            },
            BlockAccess {
                buffer: 1,
                base: ob,
                strides: vec![1, a as i64],
                limits: vec![lr, lc],
                shape: vec![tr, tc],
            },
            [a.div_ceil(tr) as u32, bdim.div_ceil(tc) as u32, 1],
        )
    };
    let x = b.load(load, dt, 0.0);
    let xf = b.cast(x, DType::F32);
    let e = b.unary(UnaryOp::Exp, xf);
    let o = b.cast(e, dt);
    b.store(store, o);
    b.finish(
        format!(
            "transpose_{}_{dt}",
            if scatter { "scatter" } else { "gather" }
        ),
        vec![
            param("x", dt, a * bdim, Access::Read),
            param("out", dt, a * bdim, Access::Write),
        ],
        grid,
    )
}

#[test]
fn kernel_transposes_gather_and_scatter() {
    // exp of exact inputs in f32 on both sides, rounded to the dtype at the store: f32
    // agrees to 1e-6 relative, f16 to one f16 ulp (2^-10 relative).
    for scatter in [false, true] {
        check_kernel(
            transpose_kernel(37, 70, (16, 24), scatter, DType::F32),
            40,
            0.0,
            1e-6,
        );
        check_kernel(
            transpose_kernel(19, 33, (8, 32), scatter, DType::F16),
            41,
            0.0,
            1e-3,
        );
        // bf16: one bf16 ulp (2^-7 relative at most): both sides round exactly to nearest
        // even, but from f32 values (exp) that may differ by one f32 ulp between the C++
        // build and the tile interpreter, which can move a value across a bf16 tie.
        check_kernel(
            transpose_kernel(21, 300, (8, 256), scatter, DType::BF16),
            42,
            0.0,
            8e-3,
        );
    }
}

#[test]
fn kernel_half_and_bfloat16_loads_and_stores() {
    // Inputs are exact in their dtype; x*2 + y is one f32 rounding, then the store rounds
    // to the output dtype exactly like the interpreter (round to nearest even): only the
    // f32 step can differ, by far less than one output ulp, so results agree to the
    // output's precision (2^-8 relative for bf16, 2^-11 for f16) with one ulp of slack.
    check_kernel(
        mixed_dtype_kernel(1000, 128, DType::F16, DType::F32),
        20,
        1e-6,
        1e-6,
    );
    check_kernel(
        mixed_dtype_kernel(333, 64, DType::BF16, DType::F16),
        21,
        0.0,
        1e-3,
    );
    check_kernel(
        mixed_dtype_kernel(70, 32, DType::F32, DType::BF16),
        22,
        0.0,
        8e-3,
    );
}

#[test]
fn kernel_integer_tiles() {
    // Exact integer arithmetic.
    check_kernel(int_kernel(1000, 256), 23, 0.0, 0.0);
}

#[test]
fn kernel_rank2_tile_reductions() {
    // <= 40-term f32 sums, then exp: relative 1e-5.
    for op in [ReduceOp::Sum, ReduceOp::Max] {
        for axis in [0, 1] {
            check_kernel(
                tile_reduce_kernel(37, 100, (16, 40), axis, op),
                24,
                1e-6,
                1e-5,
            );
        }
    }
    // rows wider than one 256-byte repeat (cols 100 -> two WholeReduce chunks)
    check_kernel(
        tile_reduce_kernel(9, 100, (8, 100), 1, ReduceOp::Sum),
        25,
        1e-6,
        1e-5,
    );
    check_kernel(
        tile_reduce_kernel(9, 100, (8, 100), 1, ReduceOp::Max),
        26,
        1e-6,
        1e-5,
    );
}

#[test]
fn kernel_matmul_half_operands() {
    // f16 / bf16 operands are exact in their dtype and products are accumulated in f32 on
    // both sides: same bound as the f32 matmul.
    for dt in [DType::F16, DType::BF16] {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            check_kernel(
                matmul_kernel_typed(1, 45, 37, 70, (32, 32, 32), ta, tb, dt),
                30,
                2e-5,
                0.0,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Whole graphs through the scheduler

#[test]
fn graph_mlp_block() {
    // matmul (K = 33) + bias + tanh, then a 50-term row sum: |err| < 50 * 1e-6.
    let g = tessera_models::mlp::mlp_block(13, 33, 50).expect("builds");
    check_graph(&g, &inputs_for(&g, 100), 5e-5, 1e-5);
}

#[test]
fn graph_elementwise_chain() {
    let mut g = Graph::new();
    let x = g.input("x", &[7, 129], DType::F32).unwrap();
    let y = g.input("y", &[129], DType::F32).unwrap();
    let yb = g.broadcast(y, &[7, 129]).unwrap();
    let s = g.add(x, yb).unwrap();
    let e = g.exp(s).unwrap();
    let t = g.tanh(e).unwrap();
    let two = g.constant(2.0, &[7, 129], DType::F32).unwrap();
    let d = g.div(t, two).unwrap();
    let n = g.neg(d).unwrap();
    let xt = g.permute(x, &[1, 0]).unwrap();
    let xtt = g.permute(xt, &[1, 0]).unwrap();
    let m = g.max(n, xtt).unwrap();
    let sq = g.mul(m, m).unwrap();
    let r = g.sqrt(sq).unwrap();
    g.set_name(r, "out").unwrap();
    g.mark_output(r).unwrap();
    check_graph(&g, &inputs_for(&g, 200), 1e-6, 1e-5);
}

#[test]
fn graph_transpose_copy() {
    let mut g = Graph::new();
    let x = g.input("x", &[37, 70], DType::F32).unwrap();
    let t = g.permute(x, &[1, 0]).unwrap();
    let e = g.exp(t).unwrap();
    g.set_name(e, "out").unwrap();
    g.mark_output(e).unwrap();
    check_graph(&g, &inputs_for(&g, 250), 1e-6, 1e-6);
}

#[test]
fn graph_reductions() {
    for (shape, axis) in [
        (vec![7usize, 1000usize], 1usize),
        (vec![1000, 7], 0),
        (vec![3, 5, 127], 1),
    ] {
        for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Mean] {
            let mut g = Graph::new();
            let x = g.input("x", &shape, DType::F32).unwrap();
            let r = g.reduce(op, x, axis, false).unwrap();
            let e = g.exp(r).unwrap();
            g.set_name(e, "out").unwrap();
            g.mark_output(e).unwrap();
            // sums of <= 1000 terms in [-1, 1): |sum| < ~60 typically, error < 1e-4;
            // exp of it magnifies relative error only: rtol 1e-4.
            check_graph(&g, &inputs_for(&g, 300), 1e-5, 1e-4);
        }
    }
}

#[test]
fn graph_matmuls() {
    // (batch, m, k, n, transpose_a, transpose_b)
    let cases: [(usize, usize, usize, usize, bool, bool); 6] = [
        (1, 1, 1, 1, false, false),
        (1, 7, 127, 33, false, false),
        (1, 65, 31, 17, true, false),
        (1, 40, 50, 60, false, true),
        (1, 9, 129, 5, true, true),
        (3, 17, 33, 19, false, false),
    ];
    for (batch, m, k, n, ta, tb) in cases {
        let mut g = Graph::new();
        let a_shape = if ta { vec![k, m] } else { vec![m, k] };
        let b_shape = if tb { vec![n, k] } else { vec![k, n] };
        let (a_shape, b_shape) = if batch > 1 {
            (
                [vec![batch], a_shape].concat(),
                [vec![batch], b_shape].concat(),
            )
        } else {
            (a_shape, b_shape)
        };
        let a = g.input("a", &a_shape, DType::F32).unwrap();
        let b = g.input("b", &b_shape, DType::F32).unwrap();
        let c = g.matmul_t(a, b, ta, tb).unwrap();
        g.set_name(c, "c").unwrap();
        g.mark_output(c).unwrap();
        // K <= 129 products of values in [-1, 1): |c| < ~15, f32 error < 129 * 6e-8 * 15.
        check_graph(&g, &inputs_for(&g, 400), 1e-4, 1e-5);
    }
}

#[test]
fn graph_binary_ops_with_broadcast_scalars() {
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &[5, 33], DType::F32).unwrap();
        let s = g.input("s", &[5, 1], DType::F32).unwrap();
        let sb = g.broadcast(s, &[5, 33]).unwrap();
        let r = g.binary(op, sb, x).unwrap();
        g.set_name(r, "out").unwrap();
        g.mark_output(r).unwrap();
        // One f32 op per element; division by values near 0 makes large results, so
        // compare relatively.
        check_graph(&g, &inputs_for(&g, 500), 1e-6, 1e-6);
    }
}

#[test]
fn graph_half_precision() {
    for dt in [DType::F16, DType::BF16] {
        let mut g = Graph::new();
        let a = g.input("a", &[19, 40], dt).unwrap();
        let b = g.param("b", &[40, 23], dt).unwrap();
        let c = g.matmul(a, b).unwrap();
        let t = g.tanh(c).unwrap();
        let s = g.sum(t, 1, false).unwrap();
        g.set_name(s, "out").unwrap();
        g.mark_output(s).unwrap();
        // The oracle keeps f64 throughout; a device stores the matmul result in the
        // half dtype (relative rounding 2^-11 for f16, 2^-8 for bf16) before tanh and the
        // 23-term sum: |err| <= 23 * 2^-8 for bf16, 23 * 2^-11 for f16, plus slack.
        let tol = if dt == DType::BF16 { 0.1 } else { 0.015 };
        check_graph(&g, &inputs_for(&g, 600), tol, 0.0);
    }
}

#[test]
fn graph_integer_elementwise() {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 77], DType::I32).unwrap();
    let y = g.input("y", &[77], DType::I32).unwrap();
    let yb = g.broadcast(y, &[3, 77]).unwrap();
    let p = g.mul(x, yb).unwrap();
    let s = g.sub(p, x).unwrap();
    let m = g.max(s, yb).unwrap();
    let n = g.neg(m).unwrap();
    g.set_name(n, "out").unwrap();
    g.mark_output(n).unwrap();
    // Exact.
    check_graph(&g, &inputs_for(&g, 700), 0.0, 0.0);
}

#[test]
fn graph_two_matmuls_share_the_workspace() {
    // Regression: every MIX kernel gets the same GM workspace (accumulators, then a zeroed
    // region the cube copies into L1 for padded / partial tiles). A first matmul with many
    // programs writes accumulators where a second, smaller matmul's zero region lies; the
    // second matmul then padded its tiles with the first one's results.
    let mut g = Graph::new();
    let a0 = g.input("a0", &[129, 17], DType::F32).unwrap();
    let b0 = g.input("b0", &[17, 64], DType::F32).unwrap();
    let c0 = g.matmul(a0, b0).unwrap();
    g.set_name(c0, "c0").unwrap();
    g.mark_output(c0).unwrap();
    let a1 = g.input("a1", &[17, 33], DType::F32).unwrap();
    let b1 = g.input("b1", &[33, 5], DType::F32).unwrap();
    let c1 = g.matmul(a1, b1).unwrap();
    g.set_name(c1, "c1").unwrap();
    g.mark_output(c1).unwrap();
    // K <= 33 products of values in [-1, 1): |c| < ~8, f32 error < 33 * 6e-8 * 8 < 2e-5.
    check_graph(&g, &inputs_for(&g, 500), 1e-4, 1e-5);
}

/// Column broadcast on rank-2 tiles: `t[i, j] = x[(r0 + i) * s_row]` (a `[rows]` column
/// read with row stride `s_row`, column stride 0; masked-off elements read 0.5), then
/// `out = t + y` stored as `[rows, cols]` and, for float types, `sums[p] = sum_j t[i, j]`
/// over the whole `[tr, tc]` tile (masked-off lanes included, so the `other` value of
/// the edge tiles is observable).
fn column_broadcast_kernel(
    rows: usize,
    cols: usize,
    (tr, tc): (usize, usize),
    s_row: i64,
    dt: DType,
) -> TileKernel {
    column_broadcast_kernel_with(rows, cols, (tr, tc), s_row, dt, true)
}

/// [`column_broadcast_kernel`]; without `y` / `out` when `with_out` is false (only the
/// row sums, for tiles too tall to hold three of them in UB).
fn column_broadcast_kernel_with(
    rows: usize,
    cols: usize,
    (tr, tc): (usize, usize),
    s_row: i64,
    dt: DType,
    with_out: bool,
) -> TileKernel {
    let float = dt != DType::I32;
    let ct = if float { DType::F32 } else { DType::I32 };
    let mut b = TileBuilder::new();
    let p0 = b.program_id(0);
    let p1 = b.program_id(1);
    let trv = b.index(tr as i64);
    let tcv = b.index(tc as i64);
    let r0 = b.iop(IndexOp::Mul, p0, trv);
    let c0 = b.iop(IndexOp::Mul, p1, tcv);
    let rv = b.index(rows as i64);
    let cv = b.index(cols as i64);
    let lr = b.iop(IndexOp::Sub, rv, r0);
    let lc = b.iop(IndexOp::Sub, cv, c0);
    let sv = b.index(s_row);
    let xbase = b.iop(IndexOp::Mul, r0, sv);
    let x = b.load(
        BlockAccess {
            buffer: 0,
            base: xbase,
            strides: vec![s_row, 0],
            limits: vec![lr, lc],
            shape: vec![tr, tc],
        },
        dt,
        0.5,
    );
    let x = if dt == ct { x } else { b.cast(x, ct) };
    let t = b.iop(IndexOp::Mul, r0, cv);
    let ybase = b.iop(IndexOp::Add, t, c0);
    let acc = |buffer| BlockAccess {
        buffer,
        base: ybase,
        strides: vec![cols as i64, 1],
        limits: vec![lr, lc],
        shape: vec![tr, tc],
    };
    let (g0, g1) = (rows.div_ceil(tr), cols.div_ceil(tc));
    let xlen = if s_row == 0 {
        1
    } else {
        (rows - 1) * s_row as usize + 1
    };
    let mut params = vec![param("x", dt, xlen, Access::Read)];
    let mut next = 1;
    if with_out {
        let y = b.load(acc(1), ct, 0.0);
        let o = b.binary(BinaryOp::Add, x, y);
        b.store(acc(2), o);
        params.push(param("y", ct, rows * cols, Access::Read));
        params.push(param("out", ct, rows * cols, Access::Write));
        next = 3;
    }
    if float {
        let s = b.reduce(ReduceOp::Sum, x, 1);
        let g1v = b.index(g1 as i64);
        let pp = b.iop(IndexOp::Mul, p0, g1v);
        let pp = b.iop(IndexOp::Add, pp, p1);
        let obase = b.iop(IndexOp::Mul, pp, trv);
        let all = b.index(tr as i64);
        b.store(
            BlockAccess {
                buffer: next,
                base: obase,
                strides: vec![1],
                limits: vec![all],
                shape: vec![tr],
            },
            s,
        );
        params.push(param("sums", DType::F32, g0 * g1 * tr, Access::Write));
    }
    b.finish(
        format!("column_broadcast_s{s_row}"),
        params,
        [g0 as u32, g1 as u32, 1],
    )
}

#[test]
fn kernel_column_broadcast_without_scalar_loops() {
    // Element (i, j) of a column-broadcast tile comes from x[i * s_row] or is the masked
    // value 0.5: out = t + y is one f32 rounding on both sides (exact agreement expected
    // up to 1 ulp: 1e-6 relative), the row sums of <= 20 terms 1e-5 relative. Tiles of 12
    // rows (not a multiple of Brcb's 8-row groups) and 20 columns (pitch 24) with edge
    // tiles in both directions (37 x 50); row strides 1 (contiguous column), 3 (gathered
    // column) and 0 (one element for every row).
    for (s_row, dt) in [
        (1, DType::F32),
        (3, DType::F32),
        (0, DType::F32),
        (1, DType::F16),
        (3, DType::F16),
        (1, DType::BF16),
        (0, DType::F16),
    ] {
        eprintln!("s_row {s_row}, {dt}");
        check_kernel(
            column_broadcast_kernel(37, 50, (12, 20), s_row, dt),
            30 + s_row as u64,
            1e-6,
            1e-5,
        );
    }
    // Integers: exact.
    for s_row in [1, 0] {
        check_kernel(
            column_broadcast_kernel(37, 50, (12, 20), s_row, DType::I32),
            40 + s_row as u64,
            0.0,
            0.0,
        );
    }
    // Many rows: more than 255 Brcb repeats (2040 rows) in one tile; 3 columns of 1 + 2
    // masked-off (vc = 1 < 3) per row sum: exact.
    check_kernel(
        column_broadcast_kernel_with(2100, 1, (2100, 3), 1, DType::F32, false),
        45,
        0.0,
        0.0,
    );
}

#[test]
fn graph_matmul_times_row_scale() {
    // A [m, 1] scale broadcast along the columns of a matmul epilogue (a column-broadcast
    // load in the MIX kernel's vector part): K = 20 products of values in [-1, 1), times
    // a value in [-1, 1), then exp: |err| < 20 * 6e-8 * 5 absolute before exp (< e),
    // 1e-5 relative covers it.
    let mut g = Graph::new();
    let a = g.input("a", &[33, 20], DType::F32).unwrap();
    let w = g.param("w", &[20, 40], DType::F32).unwrap();
    let s = g.input("s", &[33, 1], DType::F32).unwrap();
    let h = g.matmul(a, w).unwrap();
    let h = g.mul(h, s).unwrap();
    let y = g.exp(h).unwrap();
    g.set_name(y, "y").unwrap();
    g.mark_output(y).unwrap();
    check_graph(&g, &inputs_for(&g, 600), 1e-5, 1e-5);
}

// ---------------------------------------------------------------------------------------
// Bool tiles (bit masks in UB): compare, select, bool loads and stores

/// An elementwise kernel over `[rows, cols]` buffers (row-major) in `[tr, tc]` tiles, or
/// in rank-1 `[tc]` tiles of a `[cols]` buffer when `tr == 0`: loads every input (masked
/// edges read `other`), lets `body` build one value per output from the builder, the
/// loaded tiles and program id 0, and stores them (converted to the output's dtype).
fn ew_tiles_kernel(
    name: &str,
    rows: usize,
    cols: usize,
    (tr, tc): (usize, usize),
    inputs: &[(&str, DType, f64)],
    outputs: &[(&str, DType)],
    body: impl FnOnce(&mut TileBuilder, &[ValueId], ValueId) -> Vec<ValueId>,
) -> TileKernel {
    let mut b = TileBuilder::new();
    let p0 = b.program_id(0);
    let p1 = b.program_id(1);
    let cv = b.index(cols as i64);
    let tcv = b.index(tc as i64);
    let c0 = b.iop(IndexOp::Mul, p1, tcv);
    let lc = b.iop(IndexOp::Sub, cv, c0);
    let (base, acc): (ValueId, Box<dyn Fn(usize, ValueId) -> BlockAccess>) = if tr == 0 {
        (
            c0,
            Box::new(move |buffer, base| BlockAccess {
                buffer,
                base,
                strides: vec![1],
                limits: vec![lc],
                shape: vec![tc],
            }),
        )
    } else {
        let trv = b.index(tr as i64);
        let r0 = b.iop(IndexOp::Mul, p0, trv);
        let rv = b.index(rows as i64);
        let lr = b.iop(IndexOp::Sub, rv, r0);
        let t = b.iop(IndexOp::Mul, r0, cv);
        let base = b.iop(IndexOp::Add, t, c0);
        (
            base,
            Box::new(move |buffer, base| BlockAccess {
                buffer,
                base,
                strides: vec![cols as i64, 1],
                limits: vec![lr, lc],
                shape: vec![tr, tc],
            }),
        )
    };
    let loaded: Vec<ValueId> = inputs
        .iter()
        .enumerate()
        .map(|(i, &(_, dt, other))| b.load(acc(i, base), dt, other))
        .collect();
    let outs = body(&mut b, &loaded, p0);
    assert_eq!(outs.len(), outputs.len());
    for (j, v) in outs.into_iter().enumerate() {
        b.store(acc(inputs.len() + j, base), v);
    }
    let len = rows.max(1) * cols;
    let params = inputs
        .iter()
        .map(|&(n, dt, _)| param(n, dt, len, Access::Read))
        .chain(
            outputs
                .iter()
                .map(|&(n, dt)| param(n, dt, len, Access::Write)),
        )
        .collect();
    let g0 = if tr == 0 { 1 } else { rows.div_ceil(tr) };
    b.finish(
        name.into(),
        params,
        [g0 as u32, cols.div_ceil(tc) as u32, 1],
    )
}

/// Every float comparison (tile/tile, scalar on either side), selects with tiles and
/// scalars on either side, a scalar condition, a bool input buffer and bool outputs.
/// Outputs `part * 6 ..` of the list (at most 8 VECOUT queues per kernel).
fn compare_select_kernel(
    rows: usize,
    cols: usize,
    tile: (usize, usize),
    part: usize,
) -> TileKernel {
    use tessera_compiler::graph::CompareOp;
    let mut outputs: Vec<(&str, DType)> = vec![];
    let names = ["lt", "le", "eq", "gt", "ge"];
    for n in names {
        outputs.push((n, DType::Bool));
    }
    for n in [
        "s_lt", "s_ge", "s_eq", "sel", "sel_bs", "sel_as", "sel_ss", "sel_c", "sel_in",
    ] {
        outputs.push((n, DType::F32));
    }
    outputs.push(("not_in", DType::Bool));
    let range = part * 6..(part * 6 + 6).min(outputs.len());
    let outputs = outputs[range.clone()].to_vec();
    ew_tiles_kernel(
        &format!("compare_select_{rows}x{cols}_{part}"),
        rows,
        cols,
        tile,
        &[
            ("x", DType::F32, 0.0),
            ("y", DType::F32, 0.0),
            ("c", DType::Bool, 1.0),
        ],
        &outputs,
        |b, v, pid| {
            let (x, y, c) = (v[0], v[1], v[2]);
            // y' = max(x, y): ties with x in about half of the elements.
            let m = b.binary(BinaryOp::Max, x, y);
            let mut outs: Vec<ValueId> = CompareOp::ALL
                .iter()
                .map(|&op| b.compare(op, x, m))
                .collect();
            let q = b.float(0.25, DType::F32);
            let zero = b.float(0.0, DType::F32);
            let s_lt = b.compare(CompareOp::Lt, x, q); // tile < scalar
            let s_ge = b.compare(CompareOp::Ge, q, x); // scalar >= tile (mirrored)
            let s_eq = b.compare(CompareOp::Eq, zero, x);
            let lt = outs[0];
            let sel = b.select(lt, x, y);
            let half = b.float(0.5, DType::F32);
            let sel_bs = b.select(s_lt, x, half);
            let sel_as = b.select(s_ge, half, y);
            let two = b.float(-2.0, DType::F32);
            let sel_ss = b.select(lt, half, two);
            // scalar condition: program 0 takes x, the others y
            let p1 = b.index(1);
            let pc = b.compare(CompareOp::Lt, pid, p1);
            let sel_c = b.select(pc, x, y);
            let sel_in = b.select(c, x, y);
            // a bool scalar splat into a mask
            let shape = b.ty(x).shape().map(<[usize]>::to_vec).unwrap_or_default();
            let pt = b.splat(pc, &shape);
            let sel_c = b.select(pt, sel_c, x);
            // bool in -> bool out: not c
            let ones = b.float(1.0, DType::F32);
            let sc = b.select(c, zero, ones);
            let not_in = b.compare(CompareOp::Gt, sc, half);
            for (t, o) in [s_lt, s_ge, s_eq].into_iter().zip([0.0, 1.0, 2.0]) {
                let k = b.float(o, DType::F32);
                let kk = b.float(o + 10.0, DType::F32);
                outs.push(b.select(t, k, kk));
            }
            outs.extend([sel, sel_bs, sel_as, sel_ss, sel_c, sel_in, not_in]);
            outs[range].to_vec()
        },
    )
}

#[test]
fn kernel_compare_and_select() {
    // No arithmetic: bit-exact against the tile interpreter.
    for part in 0..3 {
        check_kernel(compare_select_kernel(1, 1000, (0, 256), part), 50, 0.0, 0.0);
        check_kernel(compare_select_kernel(1, 7, (0, 8), part), 51, 0.0, 0.0);
        check_kernel(compare_select_kernel(37, 21, (8, 16), part), 52, 0.0, 0.0);
    }
}

/// i32 comparisons and selects: `part` 0: `a op b` for every op; 1: scalars on either side
/// and i32 selects (tile/tile, scalar b, scalar a).
fn int_compare_kernel(n: usize, block: usize, part: usize) -> TileKernel {
    use tessera_compiler::graph::CompareOp;
    let outputs: Vec<(&str, DType)> = if part == 0 {
        ["lt", "le", "eq", "gt", "ge"]
            .iter()
            .map(|&s| (s, DType::Bool))
            .collect()
    } else {
        vec![
            ("lt3", DType::Bool),
            ("ge3", DType::Bool),
            ("eq3", DType::Bool),
            ("sel", DType::I32),
            ("sel_bs", DType::I32),
            ("sel_as", DType::I32),
        ]
    };
    ew_tiles_kernel(
        &format!("int_compare_{n}_{part}"),
        1,
        n,
        (0, block),
        &[("a", DType::I32, 0.0), ("b", DType::I32, 0.0)],
        &outputs,
        |bl, v, _| {
            let (a, b) = (v[0], v[1]);
            if part == 0 {
                return CompareOp::ALL
                    .iter()
                    .map(|&op| bl.compare(op, a, b))
                    .collect();
            }
            let three = bl.index(3);
            let seven = bl.index(7);
            let lt3 = bl.compare(CompareOp::Lt, a, three);
            let ge3 = bl.compare(CompareOp::Ge, three, a);
            let eq3 = bl.compare(CompareOp::Eq, a, three);
            let lt = bl.compare(CompareOp::Lt, a, b);
            let sel = bl.select(lt, a, b);
            let sel_bs = bl.select(lt, a, seven);
            let sel_as = bl.select(lt3, seven, b);
            vec![lt3, ge3, eq3, sel, sel_bs, sel_as]
        },
    )
}

#[test]
fn kernel_integer_compare_and_select() {
    // Exact, against the tile interpreter (inputs in [-16, 16)).
    for part in 0..2 {
        check_kernel(int_compare_kernel(1000, 256, part), 53, 0.0, 0.0);
        check_kernel(int_compare_kernel(5, 8, part), 54, 0.0, 0.0);
    }
}

#[test]
fn kernel_integer_compare_beyond_float_precision() {
    // i32 orderings go through float keys: operands beyond 2^24 that round to the same
    // float must still compare exactly. u = x * 2^26 + y and v = x * 2^26 + z differ by
    // y - z (< 32) on top of up to +-2^30, so they usually round to one float: u op v
    // must equal y op z; u op w with w = z * 2^26 + y must equal x op z. The expected
    // values come from the inputs directly (the f32 tile interpreter cannot hold these
    // integers).
    use tessera_compiler::graph::CompareOp;
    let n = 700;
    let k = ew_tiles_kernel(
        "int_compare_big",
        1,
        n,
        (0, 128),
        &[
            ("x", DType::I32, 0.0),
            ("y", DType::I32, 0.0),
            ("z", DType::I32, 0.0),
        ],
        &[
            ("lt", DType::Bool),
            ("le", DType::Bool),
            ("eq", DType::Bool),
            ("gt", DType::Bool),
            ("ge", DType::Bool),
            ("w_lt", DType::Bool),
            ("w_ge", DType::Bool),
        ],
        |b, v, _| {
            let big = b.index(1 << 26);
            let xk = b.binary(BinaryOp::Mul, v[0], big);
            let u = b.binary(BinaryOp::Add, xk, v[1]);
            let vv = b.binary(BinaryOp::Add, xk, v[2]);
            let zk = b.binary(BinaryOp::Mul, v[2], big);
            let ww = b.binary(BinaryOp::Add, zk, v[1]);
            let mut o: Vec<ValueId> = CompareOp::ALL
                .iter()
                .map(|&op| b.compare(op, u, vv))
                .collect();
            o.push(b.compare(CompareOp::Lt, u, ww));
            o.push(b.compare(CompareOp::Ge, u, ww));
            o
        },
    );
    let plan = single_kernel_plan(k);
    let mut inputs = HashMap::new();
    for (i, name) in ["x", "y", "z"].into_iter().enumerate() {
        inputs.insert(
            name.to_string(),
            Tensor::random(&[n], DType::I32, 60 + i as u64),
        );
    }
    let got = run_ascend(&plan, &inputs);
    let (x, y, z) = (&inputs["x"].data, &inputs["y"].data, &inputs["z"].data);
    let mut same_float = 0;
    for i in 0..n {
        let u = x[i] as i64 * (1 << 26) + y[i] as i64;
        let v = x[i] as i64 * (1 << 26) + z[i] as i64;
        if u != v && (u as f32) == (v as f32) {
            same_float += 1;
        }
        for op in CompareOp::ALL {
            let want = f64::from(u8::from(op.eval(y[i], z[i])));
            assert_eq!(
                got[op.name()].data[i],
                want,
                "{}[{i}]: {u} vs {v}",
                op.name()
            );
        }
        let w_lt = f64::from(u8::from(x[i] < z[i]));
        assert_eq!(got["w_lt"].data[i], w_lt, "w_lt[{i}]");
        let w_ge = f64::from(u8::from(x[i] >= z[i]));
        assert_eq!(got["w_ge"].data[i], w_ge, "w_ge[{i}]");
    }
    // The inputs exercise the exact path: distinct integers equal as floats.
    assert!(
        same_float > n / 4,
        "only {same_float} pairs round to one float"
    );
}

// ---------------------------------------------------------------------------------------
// Iota, expand and rank-2 reductions (the building blocks of row kernels and masks)

/// Over `x: [rows, cols]` in `[tr, tc]` tiles and `v: [cols]` in `[tc]` tiles:
/// `io0 = iota(axis 0) + r0`, `io1 = iota(axis 1) + c0` (global indices), a causal mask
/// `causal = io1 <= io0 ? x : -1e30`, `ex0 = expand(v, 0) + x`, `ex1 = expand(max over the
/// row of x, 1) - x`, `exi = expand(iota([tc]), 0)` and `sum0 = exp(sum over rows of x)`
/// ([cols] in tiles of [tc], written by program row 0 only... every program row writes
/// its own partial: `sum0` has one row of `cols` per program row).
fn iota_expand_kernel(rows: usize, cols: usize, (tr, tc): (usize, usize)) -> TileKernel {
    use tessera_compiler::graph::CompareOp;
    let mut b = TileBuilder::new();
    let p0 = b.program_id(0);
    let p1 = b.program_id(1);
    let trv = b.index(tr as i64);
    let tcv = b.index(tc as i64);
    let r0 = b.iop(IndexOp::Mul, p0, trv);
    let c0 = b.iop(IndexOp::Mul, p1, tcv);
    let rv = b.index(rows as i64);
    let cv = b.index(cols as i64);
    let lr = b.iop(IndexOp::Sub, rv, r0);
    let lc = b.iop(IndexOp::Sub, cv, c0);
    let t = b.iop(IndexOp::Mul, r0, cv);
    let base = b.iop(IndexOp::Add, t, c0);
    let acc = |buffer| BlockAccess {
        buffer,
        base,
        strides: vec![cols as i64, 1],
        limits: vec![lr, lc],
        shape: vec![tr, tc],
    };
    let x = b.load(acc(0), DType::F32, 0.0);
    let v = b.load(
        BlockAccess {
            buffer: 1,
            base: c0,
            strides: vec![1],
            limits: vec![lc],
            shape: vec![tc],
        },
        DType::F32,
        0.0,
    );
    let i0 = b.iota(&[tr, tc], 0);
    let io0 = b.binary(BinaryOp::Add, i0, r0);
    let i1 = b.iota(&[tr, tc], 1);
    let io1 = b.binary(BinaryOp::Add, c0, i1);
    let m = b.compare(CompareOp::Le, io1, io0);
    let neg = b.float(-1e30, DType::F32);
    let causal = b.select(m, x, neg);
    let e0 = b.expand(v, 0, tr);
    let ex0 = b.binary(BinaryOp::Add, e0, x);
    let mx = b.reduce(ReduceOp::Max, x, 1);
    let e1 = b.expand(mx, 1, tc);
    let ex1 = b.binary(BinaryOp::Sub, e1, x);
    let it = b.iota(&[tc], 0);
    let exi = b.expand(it, 0, tr);
    for (i, val) in [io0, io1, causal, ex0, ex1, exi].into_iter().enumerate() {
        b.store(acc(2 + i), val);
    }
    let s0 = b.reduce(ReduceOp::Sum, x, 0);
    let s0 = b.unary(UnaryOp::Exp, s0);
    let g0 = rows.div_ceil(tr);
    let sb = b.iop(IndexOp::Mul, p0, cv);
    let sb = b.iop(IndexOp::Add, sb, c0);
    b.store(
        BlockAccess {
            buffer: 8,
            base: sb,
            strides: vec![1],
            limits: vec![lc],
            shape: vec![tc],
        },
        s0,
    );
    let n = rows * cols;
    b.finish(
        format!("iota_expand_{rows}x{cols}"),
        vec![
            param("x", DType::F32, n, Access::Read),
            param("v", DType::F32, cols, Access::Read),
            param("io0", DType::I32, n, Access::Write),
            param("io1", DType::I32, n, Access::Write),
            param("causal", DType::F32, n, Access::Write),
            param("ex0", DType::F32, n, Access::Write),
            param("ex1", DType::F32, n, Access::Write),
            param("exi", DType::I32, n, Access::Write),
            param("sum0", DType::F32, g0 * cols, Access::Write),
        ],
        [g0 as u32, cols.div_ceil(tc) as u32, 1],
    )
}

#[test]
fn kernel_iota_expand_and_rank2_reductions() {
    // Everything is exact but ex0 / ex1 (one f32 rounding on both sides, identical) and
    // sum0 (<= 16-term f32 sums in a possibly different order, then exp: 1e-5 relative).
    check_kernel(iota_expand_kernel(37, 100, (16, 40)), 70, 0.0, 1e-5);
    check_kernel(iota_expand_kernel(5, 3, (8, 8)), 71, 0.0, 1e-5);
    check_kernel(iota_expand_kernel(264, 20, (264, 8)), 72, 0.0, 1e-5);
}

/// `out[i, j] = v[i]` for `v: [n]`, `out: [n, w]`: one `[n]` tile expanded along a new axis
/// 1 (more than 255 groups of 8 rows when n > 2040: several Brcb calls per column block).
fn expand_rows_kernel(n: usize, w: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let zero = b.index(0);
    let nv = b.index(n as i64);
    let wv = b.index(w as i64);
    let v = b.load(
        BlockAccess {
            buffer: 0,
            base: zero,
            strides: vec![1],
            limits: vec![nv],
            shape: vec![n],
        },
        DType::F32,
        0.0,
    );
    let e = b.expand(v, 1, w);
    b.store(
        BlockAccess {
            buffer: 1,
            base: zero,
            strides: vec![w as i64, 1],
            limits: vec![nv, wv],
            shape: vec![n, w],
        },
        e,
    );
    b.finish(
        format!("expand_rows_{n}x{w}"),
        vec![
            param("v", DType::F32, n, Access::Read),
            param("out", DType::F32, n * w, Access::Write),
        ],
        [1, 1, 1],
    )
}

#[test]
fn kernel_expand_many_rows() {
    // Data movement only: exact.
    check_kernel(expand_rows_kernel(2100, 8), 73, 0.0, 0.0);
    check_kernel(expand_rows_kernel(3, 20), 74, 0.0, 0.0);
}

#[test]
fn graph_with_node_names_that_mean_something_in_cpp() {
    // Node names become C++ identifiers (kernel arguments, their global tensors, the
    // host's buffers): a keyword or literal, a macro of the API, a type name, an Ascend C
    // function visible through `using namespace AscendC`, and a non-ASCII name must all
    // still compile and compute.
    let mut g = Graph::new();
    let a = g.input("nullptr", &[5, 33], DType::F32).unwrap();
    let b = g.param("GM_ADDR", &[5, 33], DType::F32).unwrap();
    let s = g.add(a, b).unwrap();
    g.set_name(s, "uint8_t").unwrap();
    let e = g.unary(UnaryOp::Exp, s).unwrap();
    g.set_name(e, "Exp").unwrap();
    let t = g.binary(BinaryOp::Mul, e, a).unwrap();
    g.set_name(t, "true").unwrap();
    g.mark_output(t).unwrap();
    let r = g.reduce(ReduceOp::Sum, t, 1, false).unwrap();
    g.set_name(r, "größe").unwrap();
    g.mark_output(r).unwrap();
    check_graph(&g, &inputs_for(&g, 5), 1e-5, 1e-5);
}
