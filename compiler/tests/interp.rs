//! The reference interpreters: the f64 graph oracle against hand-computed values, and
//! hand-built tile kernels (run in f32) and plans against the oracle.

use std::collections::HashMap;
use tessera_compiler::graph::{BinaryOp, DType, Graph, NodeId, ReduceOp};
use tessera_compiler::interp::{
    run_graph, run_graph_with, run_kernel, run_plan, run_plan_with, InterpError, Limits, Tensor,
};
use tessera_compiler::schedule::plan::{
    BufferId, BufferInfo, BufferRole, Launch, Plan, StorageSlot,
};
use tessera_compiler::tile::{
    Access, BlockAccess, BufferParam, IndexOp, TileBuilder, TileKernel, UnaryOp, ValueId,
};

type Inputs = HashMap<String, Tensor>;

fn t(shape: &[usize], data: &[f64]) -> Tensor {
    Tensor::from_vec(shape, DType::F32, data.to_vec()).expect("test tensor")
}

fn inputs(items: &[(&str, Tensor)]) -> Inputs {
    items
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

/// Runs a single-output graph.
fn run1(g: &Graph, ins: &Inputs, out: NodeId) -> Tensor {
    let mut res = run_graph(g, ins).expect("graph runs");
    res.remove(&g.node(out).name).expect("output present")
}

/// Exact comparison: the oracle computes these in f64 with a handful of operations, so
/// hand-computed values agree to a few ulps of f64.
fn assert_close(got: &Tensor, shape: &[usize], want: &[f64]) {
    assert_eq!(got.shape, shape, "shape");
    assert_eq!(got.data.len(), want.len());
    for (i, (&g, &w)) in got.data.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs().max(1.0),
            "element {i}: got {g}, want {w}"
        );
    }
}

// ---------------------------------------------------------------- graph oracle

#[test]
fn unary_ops() {
    let mut g = Graph::new();
    let x = g.input("x", &[3], DType::F32).unwrap();
    let ops = [
        g.neg(x).unwrap(),
        g.exp(x).unwrap(),
        g.log(x).unwrap(),
        g.sqrt(x).unwrap(),
        g.rsqrt(x).unwrap(),
        g.tanh(x).unwrap(),
    ];
    for &o in &ops {
        g.mark_output(o).unwrap();
    }
    let ins = inputs(&[("x", t(&[3], &[0.25, 1.0, 4.0]))]);
    let res = run_graph(&g, &ins).unwrap();
    let get = |id: NodeId| &res[&g.node(id).name];
    assert_close(get(ops[0]), &[3], &[-0.25, -1.0, -4.0]);
    assert_close(
        get(ops[1]),
        &[3],
        &[1.2840254166877414, std::f64::consts::E, 54.598150033144236],
    );
    assert_close(
        get(ops[2]),
        &[3],
        &[-1.3862943611198906, 0.0, 1.3862943611198906],
    );
    assert_close(get(ops[3]), &[3], &[0.5, 1.0, 2.0]);
    assert_close(get(ops[4]), &[3], &[2.0, 1.0, 0.5]);
    assert_close(
        get(ops[5]),
        &[3],
        &[0.24491866240370913, 0.7615941559557649, 0.999329299739067],
    );
}

#[test]
fn binary_ops_with_broadcasting() {
    let mut g = Graph::new();
    let a = g.input("a", &[2, 3], DType::F32).unwrap();
    let b = g.input("b", &[3], DType::F32).unwrap();
    let c = g.input("c", &[2, 1], DType::F32).unwrap();
    let add = g.add(a, b).unwrap();
    let sub = g.sub(a, c).unwrap();
    let mul = g.mul(a, b).unwrap();
    let div = g.div(a, c).unwrap();
    let max = g.max(a, b).unwrap();
    for o in [add, sub, mul, div, max] {
        g.mark_output(o).unwrap();
    }
    let ins = inputs(&[
        ("a", t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
        ("b", t(&[3], &[10.0, -1.0, 4.0])),
        ("c", t(&[2, 1], &[2.0, -4.0])),
    ]);
    assert_close(
        &run1(&g, &ins, add),
        &[2, 3],
        &[11.0, 1.0, 7.0, 14.0, 4.0, 10.0],
    );
    assert_close(
        &run1(&g, &ins, sub),
        &[2, 3],
        &[-1.0, 0.0, 1.0, 8.0, 9.0, 10.0],
    );
    assert_close(
        &run1(&g, &ins, mul),
        &[2, 3],
        &[10.0, -2.0, 12.0, 40.0, -5.0, 24.0],
    );
    assert_close(
        &run1(&g, &ins, div),
        &[2, 3],
        &[0.5, 1.0, 1.5, -1.0, -1.25, -1.5],
    );
    assert_close(
        &run1(&g, &ins, max),
        &[2, 3],
        &[10.0, 2.0, 4.0, 10.0, 5.0, 6.0],
    );
}

#[test]
fn integer_ops_truncate_and_wrap() {
    let mut g = Graph::new();
    let a = g.input("a", &[4], DType::I32).unwrap();
    let b = g.input("b", &[4], DType::I32).unwrap();
    let div = g.div(a, b).unwrap();
    let mul = g.mul(a, b).unwrap();
    g.mark_output(div).unwrap();
    g.mark_output(mul).unwrap();
    let big = 2f64.powi(30);
    let ins: Inputs = [
        (
            "a".to_string(),
            Tensor::from_vec(&[4], DType::I32, vec![7.0, -7.0, 3.0, big]).unwrap(),
        ),
        (
            "b".to_string(),
            Tensor::from_vec(&[4], DType::I32, vec![2.0, 2.0, -4.0, 4.0]).unwrap(),
        ),
    ]
    .into();
    let res = run_graph(&g, &ins).unwrap();
    // Division truncates toward zero; 2^30 * 4 = 2^32 wraps to 0 in i32.
    assert_eq!(
        res[&g.node(div).name].data,
        vec![3.0, -3.0, 0.0, 2f64.powi(28)]
    );
    assert_eq!(res[&g.node(mul).name].data, vec![14.0, -14.0, -12.0, 0.0]);
    assert_eq!(res[&g.node(div).name].dtype, DType::I32);

    let mut zero = ins.clone();
    zero.insert("b".into(), Tensor::zeros(&[4], DType::I32));
    assert!(matches!(
        run_graph(&g, &zero),
        Err(InterpError::DivisionByZero { .. })
    ));
}

#[test]
fn reductions_with_and_without_keep_dims() {
    let x_val = t(&[2, 3], &[1.0, -2.0, 3.0, 4.0, 5.0, -6.0]);
    for keep in [false, true] {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3], DType::F32).unwrap();
        let s0 = g.sum(x, 0, keep).unwrap();
        let s1 = g.sum(x, 1, keep).unwrap();
        let m0 = g.reduce_max(x, 0, keep).unwrap();
        let m1 = g.reduce_max(x, 1, keep).unwrap();
        let a0 = g.mean(x, 0, keep).unwrap();
        let a1 = g.mean(x, 1, keep).unwrap();
        for o in [s0, s1, m0, m1, a0, a1] {
            g.mark_output(o).unwrap();
        }
        let ins = inputs(&[("x", x_val.clone())]);
        let (sh0, sh1): (&[usize], &[usize]) = if keep {
            (&[1, 3], &[2, 1])
        } else {
            (&[3], &[2])
        };
        assert_close(&run1(&g, &ins, s0), sh0, &[5.0, 3.0, -3.0]);
        assert_close(&run1(&g, &ins, s1), sh1, &[2.0, 3.0]);
        assert_close(&run1(&g, &ins, m0), sh0, &[4.0, 5.0, 3.0]);
        assert_close(&run1(&g, &ins, m1), sh1, &[3.0, 5.0]);
        assert_close(&run1(&g, &ins, a0), sh0, &[2.5, 1.5, -1.5]);
        assert_close(&run1(&g, &ins, a1), sh1, &[2.0 / 3.0, 1.0]);
    }
    // A middle axis of a rank-3 tensor.
    let mut g = Graph::new();
    let x = g.input("x", &[2, 2, 2], DType::F32).unwrap();
    let s = g.sum(x, 1, true).unwrap();
    g.mark_output(s).unwrap();
    let ins = inputs(&[(
        "x",
        t(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]),
    )]);
    assert_close(&run1(&g, &ins, s), &[2, 1, 2], &[4.0, 6.0, 12.0, 14.0]);
}

/// `a = [[1,2,3],[4,5,6]]`, `b = [[1,2],[3,4],[5,6]]`: `a @ b = [[22,28],[49,64]]`.
const A: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
const B: [f64; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
const AB: [f64; 4] = [22.0, 28.0, 49.0, 64.0];
/// `a^T = [[1,4],[2,5],[3,6]]`, `b^T = [[1,3,5],[2,4,6]]`.
const AT: [f64; 6] = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
const BT: [f64; 6] = [1.0, 3.0, 5.0, 2.0, 4.0, 6.0];

#[test]
fn matmul_with_transposes() {
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let mut g = Graph::new();
        let a_shape: &[usize] = if ta { &[3, 2] } else { &[2, 3] };
        let b_shape: &[usize] = if tb { &[2, 3] } else { &[3, 2] };
        let a = g.input("a", a_shape, DType::F32).unwrap();
        let b = g.input("b", b_shape, DType::F32).unwrap();
        let c = g.matmul_t(a, b, ta, tb).unwrap();
        g.mark_output(c).unwrap();
        let ins = inputs(&[
            ("a", t(a_shape, if ta { &AT } else { &A })),
            ("b", t(b_shape, if tb { &BT } else { &B })),
        ]);
        assert_close(&run1(&g, &ins, c), &[2, 2], &AB);
    }
}

#[test]
fn batched_matmul_and_shared_operands() {
    // Batch 1 is batch 0 times -1 (a) / times 2 (b).
    let a_b: Vec<f64> = A.iter().copied().chain(A.iter().map(|v| -v)).collect();
    let b_b: Vec<f64> = B.iter().copied().chain(B.iter().map(|v| 2.0 * v)).collect();
    // (a shape, a data, b shape, b data, expected output)
    type Case = (
        &'static [usize],
        Vec<f64>,
        &'static [usize],
        Vec<f64>,
        Vec<f64>,
    );
    let cases: [Case; 3] = [
        // Both batched: batch 1 = (-a) @ (2b) = -2ab.
        (
            &[2, 2, 3],
            a_b.clone(),
            &[2, 3, 2],
            b_b.clone(),
            AB.iter()
                .copied()
                .chain(AB.iter().map(|v| -2.0 * v))
                .collect(),
        ),
        // b shared: batch 1 = -ab.
        (
            &[2, 2, 3],
            a_b,
            &[3, 2],
            B.to_vec(),
            AB.iter().copied().chain(AB.iter().map(|v| -v)).collect(),
        ),
        // a shared: batch 1 = 2ab.
        (
            &[2, 3],
            A.to_vec(),
            &[2, 3, 2],
            b_b,
            AB.iter()
                .copied()
                .chain(AB.iter().map(|v| 2.0 * v))
                .collect(),
        ),
    ];
    for (sa, da, sb, db, want) in cases {
        let mut g = Graph::new();
        let a = g.input("a", sa, DType::F32).unwrap();
        let b = g.input("b", sb, DType::F32).unwrap();
        let c = g.matmul(a, b).unwrap();
        g.mark_output(c).unwrap();
        let ins = inputs(&[("a", t(sa, &da)), ("b", t(sb, &db))]);
        assert_close(&run1(&g, &ins, c), &[2, 2, 2], &want);
    }
    // Batched with a transposed shared operand: [2,2,3] x [2,3]^T (b given as [N=2, K=3]).
    let mut g = Graph::new();
    let a = g.input("a", &[1, 2, 3], DType::F32).unwrap();
    let b = g.input("b", &[2, 3], DType::F32).unwrap();
    let c = g.matmul_t(a, b, false, true).unwrap();
    g.mark_output(c).unwrap();
    let ins = inputs(&[("a", t(&[1, 2, 3], &A)), ("b", t(&[2, 3], &BT))]);
    assert_close(&run1(&g, &ins, c), &[1, 2, 2], &AB);
}

#[test]
fn views_broadcast_reshape_permute() {
    let mut g = Graph::new();
    let v = g.input("v", &[3], DType::F32).unwrap();
    let col = g.input("col", &[2, 1], DType::F32).unwrap();
    let x = g.input("x", &[2, 3, 4], DType::F32).unwrap();
    let bv = g.broadcast(v, &[2, 3]).unwrap();
    let bc = g.broadcast(col, &[2, 3]).unwrap();
    let r = g.reshape(x, &[6, 4]).unwrap();
    let p = g.permute(x, &[2, 0, 1]).unwrap();
    for o in [bv, bc, r, p] {
        g.mark_output(o).unwrap();
    }
    let xs: Vec<f64> = (0..24).map(f64::from).collect();
    let ins = inputs(&[
        ("v", t(&[3], &[1.0, 2.0, 3.0])),
        ("col", t(&[2, 1], &[7.0, 8.0])),
        ("x", t(&[2, 3, 4], &xs)),
    ]);
    assert_close(
        &run1(&g, &ins, bv),
        &[2, 3],
        &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
    );
    assert_close(
        &run1(&g, &ins, bc),
        &[2, 3],
        &[7.0, 7.0, 7.0, 8.0, 8.0, 8.0],
    );
    assert_close(&run1(&g, &ins, r), &[6, 4], &xs);
    // out[l][i][j] = x[i][j][l] = 12i + 4j + l.
    let want: Vec<f64> = (0..4)
        .flat_map(|l| (0..2).flat_map(move |i| (0..3).map(move |j| (12 * i + 4 * j + l) as f64)))
        .collect();
    assert_close(&run1(&g, &ins, p), &[4, 2, 3], &want);
}

#[test]
fn constants_and_params() {
    let mut g = Graph::new();
    let w = g.param("w", &[2], DType::F32).unwrap();
    let c = g.constant(0.5, &[2], DType::F32).unwrap();
    let y = g.mul(w, c).unwrap();
    g.mark_output(y).unwrap();
    let ins = inputs(&[("w", t(&[2], &[3.0, -4.0]))]);
    assert_close(&run1(&g, &ins, y), &[2], &[1.5, -2.0]);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let mut g = Graph::new();
    let x = g.input("x", &[2], DType::F32).unwrap();
    let y = g.neg(x).unwrap();
    g.mark_output(y).unwrap();
    assert_eq!(
        run_graph(&g, &HashMap::new()),
        Err(InterpError::MissingInput { name: "x".into() })
    );
    assert!(matches!(
        run_graph(&g, &inputs(&[("x", t(&[3], &[1.0, 2.0, 3.0]))])),
        Err(InterpError::InputShape { .. })
    ));
    assert!(matches!(
        run_graph(&g, &inputs(&[("x", Tensor::zeros(&[2], DType::F16))])),
        Err(InterpError::InputDType { .. })
    ));
    assert!(matches!(
        Tensor::from_vec(&[2, 2], DType::F32, vec![1.0]),
        Err(InterpError::DataLength { .. })
    ));
    assert!(matches!(
        Tensor::from_bytes(&[2], DType::F16, &[0, 0, 0]),
        Err(InterpError::DataLength { .. })
    ));
}

#[test]
fn tensor_bytes_per_dtype() {
    let v = Tensor::from_vec(&[2], DType::F16, vec![1.0, -0.5]).unwrap();
    assert_eq!(v.to_bytes(), vec![0x00, 0x3c, 0x00, 0xb8]);
    let v = Tensor::from_vec(&[1], DType::BF16, vec![1.0]).unwrap();
    assert_eq!(v.to_bytes(), vec![0x80, 0x3f]);
    let v = Tensor::from_vec(&[2], DType::Bool, vec![0.0, 3.0]).unwrap();
    assert_eq!(v.to_bytes(), vec![0, 0, 0, 0, 1, 0, 0, 0]);
    let v = Tensor::from_vec(&[1], DType::I32, vec![-2.0]).unwrap();
    assert_eq!(v.to_bytes(), (-2i32).to_le_bytes().to_vec());
    for d in DType::ALL {
        let r = Tensor::random(&[17], d, 42);
        assert_eq!(Tensor::from_bytes(&[17], d, &r.to_bytes()).unwrap(), r);
    }
}

// ---------------------------------------------------------------- tile kernels

fn param(name: &str, len: usize, access: Access) -> BufferParam {
    BufferParam {
        name: name.into(),
        dtype: DType::F32,
        len,
        access,
    }
}

fn acc1(buffer: usize, base: ValueId, stride: i64, limit: ValueId, n: usize) -> BlockAccess {
    BlockAccess {
        buffer,
        base,
        strides: vec![stride],
        limits: vec![limit],
        shape: vec![n],
    }
}

fn scalar_access(buffer: usize, base: ValueId) -> BlockAccess {
    BlockAccess {
        buffer,
        base,
        strides: vec![],
        limits: vec![],
        shape: vec![],
    }
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_f32()
}

/// `y = tanh(x * s + b)` with a scalar `s` read by a rank-0 load, `BLOCK` = 32, masked.
fn elementwise_kernel(n: usize, masked: bool) -> TileKernel {
    const BLOCK: usize = 32;
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let block = b.index(BLOCK as i64);
    let base = b.iop(IndexOp::Mul, pid, block);
    let nn = b.index(n as i64);
    let lim = if masked {
        b.iop(IndexOp::Sub, nn, base)
    } else {
        block
    };
    let zero = b.index(0);
    let x = b.load(acc1(0, base, 1, lim, BLOCK), DType::F32, 0.0);
    let bias = b.load(acc1(1, base, 1, lim, BLOCK), DType::F32, 0.0);
    let s = b.load(scalar_access(2, zero), DType::F32, 0.0);
    let xs = b.binary(BinaryOp::Mul, x, s);
    let h = b.binary(BinaryOp::Add, xs, bias);
    let y = b.unary(UnaryOp::Tanh, h);
    b.store(acc1(3, base, 1, lim, BLOCK), y);
    let grid = n.div_ceil(BLOCK) as u32;
    b.finish(
        "mul_add_tanh_0".into(),
        vec![
            param("x", n, Access::Read),
            param("bias", n, Access::Read),
            param("s", 1, Access::Read),
            param("y", n, Access::Write),
        ],
        [grid, 1, 1],
    )
}

#[test]
fn tile_elementwise_masked_matches_oracle() {
    let n = 100;
    let mut g = Graph::new();
    let x = g.input("x", &[n], DType::F32).unwrap();
    let bias = g.input("bias", &[n], DType::F32).unwrap();
    let s = g.input("s", &[1], DType::F32).unwrap();
    let xs = g.mul(x, s).unwrap();
    let h = g.add(xs, bias).unwrap();
    let y = g.tanh(h).unwrap();
    g.mark_output(y).unwrap();
    let ins = inputs(&[
        ("x", Tensor::random(&[n], DType::F32, 1)),
        ("bias", Tensor::random(&[n], DType::F32, 2)),
        ("s", t(&[1], &[1.5])),
    ]);
    let want = run1(&g, &ins, y);
    let k = elementwise_kernel(n, true);
    let mut bufs = vec![
        f32s(&ins["x"]),
        f32s(&ins["bias"]),
        f32s(&ins["s"]),
        vec![f32::NAN; n],
    ];
    run_kernel(&k, &mut bufs).unwrap();
    let got = Tensor::from_f32(&[n], DType::F32, &bufs[3]).unwrap();
    // Three f32 ops, each correctly rounded (relative error <= 2^-24 each), on inputs that
    // are exact in f32; tanh's derivative is <= 1, so the result is within a few ulps.
    assert!(
        got.max_abs_diff(&want) < 1e-6,
        "{}",
        got.max_abs_diff(&want)
    );
}

#[test]
fn tile_unmasked_out_of_bounds_is_an_error() {
    let n = 100;
    let k = elementwise_kernel(n, false);
    let mut bufs = vec![vec![0.0; n], vec![0.0; n], vec![1.0], vec![0.0; n]];
    match run_kernel(&k, &mut bufs) {
        Err(InterpError::OutOfBounds {
            kernel,
            buffer,
            offset,
            len,
            program,
        }) => {
            assert_eq!(kernel, "mul_add_tanh_0");
            assert_eq!(buffer, "x");
            // Program 3 covers 96..128; element 100 is the first outside the buffer.
            assert_eq!(offset, 100);
            assert_eq!(len, 100);
            assert_eq!(program, [3, 0, 0]);
        }
        other => panic!("expected OutOfBounds, got {other:?}"),
    }
    // Wrong number of buffers.
    assert!(matches!(
        run_kernel(&k, &mut bufs[..2]),
        Err(InterpError::BadKernel { .. })
    ));
}

/// One program per row: a For loop over the columns in chunks of `BLOCK`, masked loads
/// with `other` = the identity, then a rank-1 -> scalar reduce and a scalar store.
fn row_reduce_kernel(op: ReduceOp, rows: usize, cols: usize) -> TileKernel {
    const BLOCK: usize = 32;
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let ncols = b.index(cols as i64);
    let row = b.iop(IndexOp::Mul, pid, ncols);
    let zero = b.index(0);
    let id = b.float(op.identity(), DType::F32);
    let acc0 = b.splat(id, &[BLOCK]);
    let args = b.begin_for(&[acc0]);
    let (iv, acc) = (args[0], args[1]);
    let base = b.iop(IndexOp::Add, row, iv);
    let lim = b.iop(IndexOp::Sub, ncols, iv);
    let x = b.load(acc1(0, base, 1, lim, BLOCK), DType::F32, op.identity());
    let next = b.binary(op.combiner(), acc, x);
    let res = b.end_for(zero, ncols, BLOCK as i64, &[acc0], &[next]);
    let s = b.reduce(op, res[0], 0);
    b.store(scalar_access(1, pid), s);
    b.finish(
        format!("reduce_{}_0", op.name()),
        vec![
            param("x", rows * cols, Access::Read),
            param("y", rows, Access::Write),
        ],
        [rows as u32, 1, 1],
    )
}

#[test]
fn tile_reduction_with_for_loop_matches_oracle() {
    let (rows, cols) = (3, 100);
    for op in [ReduceOp::Sum, ReduceOp::Max] {
        let mut g = Graph::new();
        let x = g.input("x", &[rows, cols], DType::F32).unwrap();
        let y = g.reduce(op, x, 1, false).unwrap();
        g.mark_output(y).unwrap();
        // Shifted negative (and kept exact in f32) so that max with a wrong `other` (0)
        // would be visible.
        let mut xv = Tensor::random(&[rows, cols], DType::F32, 3);
        xv.data
            .iter_mut()
            .for_each(|v| *v = (*v - 2.0) as f32 as f64);
        let ins = inputs(&[("x", xv)]);
        let want = run1(&g, &ins, y);
        let k = row_reduce_kernel(op, rows, cols);
        let mut bufs = vec![f32s(&ins["x"]), vec![f32::NAN; rows]];
        run_kernel(&k, &mut bufs).unwrap();
        let got = Tensor::from_f32(&[rows], DType::F32, &bufs[1]).unwrap();
        // Max is exact. A sum of n f32 values has |error| <= (n-1) * 2^-24 * sum|x_i|,
        // here 99 * 6e-8 * 300 < 2e-3.
        let tol = if op == ReduceOp::Max { 0.0 } else { 2e-3 };
        assert!(
            got.max_abs_diff(&want) <= tol,
            "{op:?}: {} (got {:?}, want {:?})",
            got.max_abs_diff(&want),
            got.data,
            want.data
        );
    }
}

/// `out = tanh(a @ b + bias)` for `a: [M, K]`, `b: [K, N]` (or, with `tb`, `b` given as
/// `[N, K]`: swapped strides), bias `[N]` loaded with row stride 0. `BM = BN = BK = 4`,
/// one program per output block, a For loop over K with `Dot`.
fn matmul_kernel(m: usize, k: usize, n: usize, tb: bool) -> TileKernel {
    const BS: usize = 4;
    let mut b = TileBuilder::new();
    let pm = b.program_id(0);
    let pn = b.program_id(1);
    let bs = b.index(BS as i64);
    let (mm, kk, nn) = (b.index(m as i64), b.index(k as i64), b.index(n as i64));
    let row0 = b.iop(IndexOp::Mul, pm, bs);
    let col0 = b.iop(IndexOp::Mul, pn, bs);
    let mlim = b.iop(IndexOp::Sub, mm, row0);
    let nlim = b.iop(IndexOp::Sub, nn, col0);
    let zero = b.index(0);
    let zf = b.float(0.0, DType::F32);
    let acc0 = b.splat(zf, &[BS, BS]);
    let args = b.begin_for(&[acc0]);
    let (kv, acc) = (args[0], args[1]);
    let klim = b.iop(IndexOp::Sub, kk, kv);
    // a[row0 + i, kv + j] at (row0 + i) * K + kv + j.
    let arow = b.iop(IndexOp::Mul, row0, kk);
    let abase = b.iop(IndexOp::Add, arow, kv);
    let a_t = b.load(
        BlockAccess {
            buffer: 0,
            base: abase,
            strides: vec![k as i64, 1],
            limits: vec![mlim, klim],
            shape: vec![BS, BS],
        },
        DType::F32,
        0.0,
    );
    // b[kv + i, col0 + j] at (kv + i) * N + col0 + j, or transposed (col0 + j) * K + kv + i.
    let (bbase, bstrides) = if tb {
        let c = b.iop(IndexOp::Mul, col0, kk);
        (b.iop(IndexOp::Add, c, kv), vec![1, k as i64])
    } else {
        let r = b.iop(IndexOp::Mul, kv, nn);
        (b.iop(IndexOp::Add, r, col0), vec![n as i64, 1])
    };
    let b_t = b.load(
        BlockAccess {
            buffer: 1,
            base: bbase,
            strides: bstrides,
            limits: vec![klim, nlim],
            shape: vec![BS, BS],
        },
        DType::F32,
        0.0,
    );
    let next = b.dot(a_t, b_t, acc);
    let res = b.end_for(zero, kk, BS as i64, &[acc0], &[next]);
    let bias = b.load(
        BlockAccess {
            buffer: 2,
            base: col0,
            strides: vec![0, 1],
            limits: vec![mlim, nlim],
            shape: vec![BS, BS],
        },
        DType::F32,
        0.0,
    );
    let h = b.binary(BinaryOp::Add, res[0], bias);
    let y = b.unary(UnaryOp::Tanh, h);
    let orow = b.iop(IndexOp::Mul, row0, nn);
    let obase = b.iop(IndexOp::Add, orow, col0);
    b.store(
        BlockAccess {
            buffer: 3,
            base: obase,
            strides: vec![n as i64, 1],
            limits: vec![mlim, nlim],
            shape: vec![BS, BS],
        },
        y,
    );
    b.finish(
        "matmul_bias_tanh_0".into(),
        vec![
            param("a", m * k, Access::Read),
            param("b", k * n, Access::Read),
            param("bias", n, Access::Read),
            param("out", m * n, Access::Write),
        ],
        [m.div_ceil(BS) as u32, n.div_ceil(BS) as u32, 1],
    )
}

#[test]
fn tile_dot_matches_oracle() {
    let (m, k, n) = (5, 7, 6);
    for tb in [false, true] {
        let mut g = Graph::new();
        let a = g.input("a", &[m, k], DType::F32).unwrap();
        let b_shape: &[usize] = if tb { &[n, k] } else { &[k, n] };
        let b = g.input("b", b_shape, DType::F32).unwrap();
        let bias = g.input("bias", &[n], DType::F32).unwrap();
        let c = g.matmul_t(a, b, false, tb).unwrap();
        let h = g.add(c, bias).unwrap();
        let y = g.tanh(h).unwrap();
        g.mark_output(y).unwrap();
        let ins = inputs(&[
            ("a", Tensor::random(&[m, k], DType::F32, 4)),
            ("b", Tensor::random(b_shape, DType::F32, 5)),
            ("bias", Tensor::random(&[n], DType::F32, 6)),
        ]);
        let want = run1(&g, &ins, y);
        let kern = matmul_kernel(m, k, n, tb);
        let mut bufs = vec![
            f32s(&ins["a"]),
            f32s(&ins["b"]),
            f32s(&ins["bias"]),
            vec![f32::NAN; m * n],
        ];
        run_kernel(&kern, &mut bufs).unwrap();
        let got = Tensor::from_f32(&[m, n], DType::F32, &bufs[3]).unwrap();
        // K = 7 products of values in [-1, 1) and a bias: |error| <= 8 * 2^-24 * 8 < 1e-5
        // before tanh (derivative <= 1), plus one rounding of tanh.
        assert!(
            got.max_abs_diff(&want) < 1e-5,
            "tb={tb}: {}",
            got.max_abs_diff(&want)
        );
    }
}

#[test]
fn tile_rank2_reduce_cast_and_splat() {
    // x: [4, 8] loaded whole; row sums (axis 1) -> [4], column maxima (axis 0) -> [8];
    // x cast to f16 and back stored to `h`.
    let mut b = TileBuilder::new();
    let zero = b.index(0);
    let big = b.index(1 << 20);
    let x = b.load(
        BlockAccess {
            buffer: 0,
            base: zero,
            strides: vec![8, 1],
            limits: vec![big, big],
            shape: vec![4, 8],
        },
        DType::F32,
        0.0,
    );
    let rs = b.reduce(ReduceOp::Sum, x, 1);
    let cm = b.reduce(ReduceOp::Max, x, 0);
    b.store(acc1(1, zero, 1, big, 4), rs);
    b.store(acc1(2, zero, 1, big, 8), cm);
    let h = b.cast(x, DType::F16);
    let back = b.cast(h, DType::F32);
    let two = b.float(2.0, DType::F32);
    let twos = b.splat(two, &[4, 8]);
    let scaled = b.binary(BinaryOp::Mul, back, twos);
    b.store(
        BlockAccess {
            buffer: 3,
            base: zero,
            strides: vec![8, 1],
            limits: vec![big, big],
            shape: vec![4, 8],
        },
        scaled,
    );
    let k = b.finish(
        "misc_0".into(),
        vec![
            param("x", 32, Access::Read),
            param("rows", 4, Access::Write),
            param("cols", 8, Access::Write),
            param("h", 32, Access::Write),
        ],
        [1, 1, 1],
    );
    let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.1 + 1e-4).collect();
    let mut bufs = vec![x.clone(), vec![0.0; 4], vec![0.0; 8], vec![0.0; 32]];
    run_kernel(&k, &mut bufs).unwrap();
    for r in 0..4 {
        let want: f64 = (0..8).map(|c| x[r * 8 + c] as f64).sum();
        assert!((bufs[1][r] as f64 - want).abs() < 1e-5, "row {r}");
    }
    for c in 0..8 {
        assert_eq!(bufs[2][c], x[24 + c], "col {c}");
    }
    for i in 0..32 {
        let want = half::f16::from_f32(x[i]).to_f32() * 2.0;
        assert_eq!(bufs[3][i], want, "element {i}");
        // The f16 round trip really rounds (1e-4 is below f16 resolution near 1).
        if i >= 10 {
            assert_ne!(bufs[3][i], x[i] * 2.0, "element {i}");
        }
    }
}

// ---------------------------------------------------------------- plans

/// Two launches: `t = exp(x)` then `y = t + x`, with `t` in storage slot `t_slot`.
fn two_kernel_plan(n: usize, t_slot: usize) -> Plan {
    let ew = |name: &str, binary: bool| {
        let mut b = TileBuilder::new();
        let pid = b.program_id(0);
        let bs = b.index(16);
        let base = b.iop(IndexOp::Mul, pid, bs);
        let nn = b.index(n as i64);
        let lim = b.iop(IndexOp::Sub, nn, base);
        let a = b.load(acc1(0, base, 1, lim, 16), DType::F32, 0.0);
        let (out_buf, r) = if binary {
            let c = b.load(acc1(1, base, 1, lim, 16), DType::F32, 0.0);
            (2, b.binary(BinaryOp::Add, a, c))
        } else {
            (1, b.unary(UnaryOp::Exp, a))
        };
        b.store(acc1(out_buf, base, 1, lim, 16), r);
        let mut params = vec![param("in0", n, Access::Read)];
        if binary {
            params.push(param("in1", n, Access::Read));
        }
        params.push(param("out", n, Access::Write));
        b.finish(name.into(), params, [n.div_ceil(16) as u32, 1, 1])
    };
    let buf = |id: u32, role: BufferRole, storage: usize| BufferInfo {
        id: BufferId(id),
        node: NodeId(id),
        dtype: DType::F32,
        shape: vec![n],
        len: n,
        role,
        storage,
    };
    Plan {
        kernels: vec![ew("exp_0", false), ew("add_1", true)],
        buffers: vec![
            buf(0, BufferRole::Input { name: "x".into() }, 0),
            buf(1, BufferRole::Temp, t_slot),
            buf(2, BufferRole::Output { name: "y".into() }, 2),
        ],
        launches: vec![
            Launch {
                kernel: 0,
                args: vec![BufferId(0), BufferId(1)],
            },
            Launch {
                kernel: 1,
                args: vec![BufferId(1), BufferId(0), BufferId(2)],
            },
        ],
        storage: vec![StorageSlot { bytes: n * 4 }; 3],
        outputs: vec![("y".into(), BufferId(2))],
    }
}

#[test]
fn plan_runs_and_a_wrong_memory_plan_shows() {
    let n = 37;
    let mut g = Graph::new();
    let x = g.input("x", &[n], DType::F32).unwrap();
    let e = g.exp(x).unwrap();
    let y = g.add(e, x).unwrap();
    g.set_name(y, "y").unwrap();
    g.mark_output(y).unwrap();
    let ins = inputs(&[("x", Tensor::random(&[n], DType::F32, 9))]);
    let want = run_graph(&g, &ins).unwrap().remove("y").unwrap();

    let plan = two_kernel_plan(n, 1);
    let text = tessera_compiler::tile::print_plan(&plan);
    for line in [
        "  b1 f32[37] len=37 temp node=%1 storage=s1",
        "  b2 f32[37] len=37 output `y` node=%2 storage=s2",
        "  1: add_1(b1, b0, b2)",
        "  `y` = b2",
        "kernel exp_0 grid=[3,1,1]",
        "  param 2 out: f32 len=37 write",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let good = run_plan(&plan, &ins).unwrap();
    // exp and add each correctly rounded in f32: |error| < 2 ulp(e) < 1e-6.
    assert!(good["y"].max_abs_diff(&want) < 1e-6);
    // Storing the temporary over the still-needed input gives exp(x) + exp(x).
    let bad = run_plan(&two_kernel_plan(n, 0), &ins).unwrap();
    assert!(bad["y"].max_abs_diff(&want) > 0.1);

    // A storage slot smaller than its buffer, and a missing input, are errors.
    let mut small = two_kernel_plan(n, 1);
    small.storage[1].bytes = 8;
    assert!(matches!(
        run_plan(&small, &ins),
        Err(InterpError::BadPlan { .. })
    ));
    assert_eq!(
        run_plan(&two_kernel_plan(n, 1), &HashMap::new()),
        Err(InterpError::MissingInput { name: "x".into() })
    );
}

/// Shapes whose element count overflows `usize` are a typed error, not a panic.
#[test]
fn tensors_of_overflowing_shapes_are_refused() {
    let huge = [1usize << 33, 1 << 33];
    assert!(Tensor::from_vec(&huge, DType::F32, vec![]).is_err());
    assert!(Tensor::from_bytes(&huge, DType::F32, &[]).is_err());
    assert!(Tensor::from_bytes(&[1 << 62], DType::F32, &[]).is_err());
}

// ---------------------------------------------------------------- memory bound

/// `x [n, 1] @ w [1, n]`: small operands, an `n × n` product.
fn outer_product(n: usize) -> (Graph, Inputs) {
    let mut g = Graph::new();
    let x = g.input("x", &[n, 1], DType::F32).unwrap();
    let w = g.input("w", &[1, n], DType::F32).unwrap();
    let y = g.matmul(x, w).unwrap();
    g.set_name(y, "y").unwrap();
    g.mark_output(y).unwrap();
    let ins = inputs(&[
        ("x", Tensor::random(&[n, 1], DType::F32, 1)),
        ("w", Tensor::random(&[1, n], DType::F32, 2)),
    ]);
    (g, ins)
}

/// A product of 32 GiB in f64 (12.8 GB + 6.4 GB on the tile interpreter) is refused by the default bound before anything is
/// allocated, on both interpreters, naming the node and the bytes.
#[test]
fn a_value_past_the_memory_bound_is_an_error_not_an_allocation() {
    let n = 1 << 16;
    let (g, ins) = outer_product(n);
    let err = run_graph(&g, &ins).unwrap_err();
    let held = 2 * n as u64 * 8;
    assert_eq!(
        err,
        InterpError::MemoryLimit {
            node: "y".into(),
            within: None,
            shape: vec![n, n],
            needed: (n * n) as u64 * 8,
            held,
            limit: Limits::DEFAULT_MAX_BYTES,
        }
    );
    let text = err.to_string();
    assert!(text.starts_with("`y`: a value of shape [65536, 65536] needs 34359738368 bytes"));

    // Compiled buffers stay within i32 indices: 40000^2 elements, 6.4 GB in f32 storage
    // and 12.8 GB returned in f64.
    let (g, ins) = outer_product(40_000);
    let plan = tessera_compiler::compile(&g, &tessera_compiler::Target::wgsl()).unwrap();
    match run_plan(&plan, &ins) {
        Err(InterpError::MemoryLimit { node, needed, .. }) => {
            assert_eq!(node, "plan storage");
            // The f32 product in storage and its f64 copy returned.
            assert!(needed >= 40_000 * 40_000 * 12, "{needed}");
        }
        other => panic!("expected a memory-limit error, got {other:?}"),
    }
}

/// The bound counts the bytes held at once: values dropped after their last use do not
/// count, so a long chain of `[64, 64]` values (32 KiB each) runs in 3 values' room.
#[test]
fn the_memory_bound_counts_live_values_only() {
    let value = 64 * 64 * 8;
    let mut g = Graph::new();
    let x = g.input("x", &[64, 64], DType::F32).unwrap();
    let mut h = x;
    for _ in 0..20 {
        h = g.tanh(h).unwrap();
    }
    g.set_name(h, "h").unwrap();
    g.mark_output(h).unwrap();
    let ins = inputs(&[("x", Tensor::random(&[64, 64], DType::F32, 3))]);
    let want = run_graph(&g, &ins).unwrap();
    // Two values at once: an operand and its result.
    let two = Limits {
        max_bytes: 2 * value,
    };
    assert_eq!(run_graph_with(&g, &ins, &two).unwrap(), want);
    // One value's room is too little for the first tanh.
    let one = Limits {
        max_bytes: 2 * value - 1,
    };
    assert!(matches!(
        run_graph_with(&g, &ins, &one),
        Err(InterpError::MemoryLimit { held, needed, .. }) if held == value && needed == value
    ));
    assert!(run_graph_with(&g, &ins, &Limits::unbounded()).is_ok());
}

/// A composite runs its decomposition while the outer values stay: the error names the
/// composite and the decomposition's node that did not fit.
#[test]
fn a_decomposition_past_the_memory_bound_names_the_composite() {
    let value = 64 * 64 * 8;
    let mut g = Graph::new();
    let x = g.input("x", &[64, 64], DType::F32).unwrap();
    let s = g.softmax(x).unwrap();
    g.set_name(s, "probs").unwrap();
    g.mark_output(s).unwrap();
    let ins = inputs(&[("x", Tensor::random(&[64, 64], DType::F32, 4))]);
    // The input and the softmax's value fit; the decomposition's copies and
    // intermediates do not.
    let tight = Limits {
        max_bytes: 2 * value + value / 2,
    };
    match run_graph_with(&g, &ins, &tight) {
        Err(e @ InterpError::MemoryLimit { .. }) => {
            let InterpError::MemoryLimit { node, within, .. } = &e else {
                unreachable!()
            };
            assert_eq!(node, "probs");
            assert!(within.is_some(), "{e}");
            assert!(e.to_string().contains("of its decomposition"), "{e}");
        }
        other => panic!("expected a memory-limit error, got {other:?}"),
    }
    assert!(run_graph_with(
        &g,
        &ins,
        &Limits {
            max_bytes: 8 * value
        }
    )
    .is_ok());
}

/// The tile interpreter's bound covers the plan's storage and the outputs it returns.
#[test]
fn plan_storage_past_the_memory_bound_is_refused() {
    let n = 37;
    let ins = inputs(&[("x", Tensor::random(&[n], DType::F32, 9))]);
    let plan = two_kernel_plan(n, 1);
    // Three slots of 37 f32 and one f64 output.
    let needed = (3 * n * 4 + n * 8) as u64;
    assert!(run_plan_with(&plan, &ins, &Limits { max_bytes: needed }).is_ok());
    assert_eq!(
        run_plan_with(
            &plan,
            &ins,
            &Limits {
                max_bytes: needed - 1
            }
        ),
        Err(InterpError::MemoryLimit {
            node: "plan storage".into(),
            within: None,
            shape: vec![3 * n],
            needed,
            held: 0,
            limit: needed - 1,
        })
    );
}
