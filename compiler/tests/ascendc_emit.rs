//! Emission tests of the Ascend C backend on hand-built tile kernels of the three shapes
//! the scheduler produces (elementwise, reduction, matmul): the emitted text uses vector
//! instructions over whole tiles, `DataCopyPad` for GM <-> UB, the Cube unit (`Mmad`) for
//! `dot`, never a per-element scalar loop; oversized tiles are a `Limit` error.
//!
//! Numerical checks (compiling the sources against the CPU build of the Ascend C API and
//! comparing with the interpreter) live in the root crate's `tests/ascend_cpu.rs`.

use tessera_compiler::backend::ascendc::{emit_kernel, emit_plan, host_io, KernelKind};
use tessera_compiler::graph::{BinaryOp, DType, ReduceOp, UnaryOp};
use tessera_compiler::schedule::plan::{
    BufferId, BufferInfo, BufferRole, Launch, Plan, StorageSlot,
};
use tessera_compiler::tile::{Access, BlockAccess, BufferParam, IndexOp, TileBuilder, TileKernel};
use tessera_compiler::{CompileError, NodeId, Target};

fn param(name: &str, dtype: DType, len: usize, access: Access) -> BufferParam {
    BufferParam {
        name: name.into(),
        dtype,
        len,
        access,
    }
}

/// `out[i] = tanh(exp(x[i]) + y[i]) * 0.5` over `n` elements in blocks of `block`, with a
/// masked tail.
pub fn elementwise_kernel(n: usize, block: usize) -> TileKernel {
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
    let y = b.load(acc(1), DType::F32, 0.0);
    let e = b.unary(UnaryOp::Exp, x);
    let s = b.binary(BinaryOp::Add, e, y);
    let t = b.unary(UnaryOp::Tanh, s);
    let half = b.float(0.5, DType::F32);
    let o = b.binary(BinaryOp::Mul, t, half);
    b.store(acc(2), o);
    let grid = [n.div_ceil(block) as u32, 1, 1];
    b.finish(
        "ew_exp_add_tanh".into(),
        vec![
            param("x", DType::F32, n, Access::Read),
            param("y", DType::F32, n, Access::Read),
            param("out", DType::F32, n, Access::Write),
        ],
        grid,
    )
}

/// `out[r] = sum_c x[r, c]` (or max) for `x: [rows, cols]`, chunks of `block` columns.
pub fn reduction_kernel(rows: usize, cols: usize, block: usize, op: ReduceOp) -> TileKernel {
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
        format!("reduce_{}_rows", op.name()),
        vec![
            param("x", DType::F32, rows * cols, Access::Read),
            param("out", DType::F32, rows, Access::Write),
        ],
        [rows as u32, 1, 1],
    )
}

/// `c = tanh(a @ b + bias)` for `a: [m, k]` (or `[k, m]` with `trans_a`), `b: [k, n]` (or
/// `[n, k]` with `trans_b`), tiles `[bm, bn]`, K step `bk`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_kernel(
    m: usize,
    n: usize,
    k: usize,
    bm: usize,
    bn: usize,
    bk: usize,
    trans_a: bool,
    trans_b: bool,
) -> TileKernel {
    let mut b = TileBuilder::new();
    let pm = b.program_id(0);
    let pn = b.program_id(1);
    let bmv = b.index(bm as i64);
    let bnv = b.index(bn as i64);
    let row0 = b.iop(IndexOp::Mul, pm, bmv);
    let col0 = b.iop(IndexOp::Mul, pn, bnv);
    let mv = b.index(m as i64);
    let nv = b.index(n as i64);
    let kv = b.index(k as i64);
    let lim_m = b.iop(IndexOp::Sub, mv, row0);
    let lim_n = b.iop(IndexOp::Sub, nv, col0);
    let zero = b.float(0.0, DType::F32);
    let acc0 = b.splat(zero, &[bm, bn]);
    let z = b.index(0);
    let args = b.begin_for(&[acc0]);
    let (kk, acc) = (args[0], args[1]);
    let lim_k = b.iop(IndexOp::Sub, kv, kk);
    // a tile [bm, bk] at (row0, kk)
    let (a_base, a_strides) = if trans_a {
        // a given as [k, m]: element (i, j) at (kk + j) * m + row0 + i
        let t = b.iop(IndexOp::Mul, kk, mv);
        (b.iop(IndexOp::Add, t, row0), vec![1, m as i64])
    } else {
        let t = b.iop(IndexOp::Mul, row0, kv);
        (b.iop(IndexOp::Add, t, kk), vec![k as i64, 1])
    };
    let (b_base, b_strides) = if trans_b {
        // b given as [n, k]: element (i, j) at (col0 + j) * k + kk + i
        let t = b.iop(IndexOp::Mul, col0, kv);
        (b.iop(IndexOp::Add, t, kk), vec![1, k as i64])
    } else {
        let t = b.iop(IndexOp::Mul, kk, nv);
        (b.iop(IndexOp::Add, t, col0), vec![n as i64, 1])
    };
    let at = b.load(
        BlockAccess {
            buffer: 0,
            base: a_base,
            strides: a_strides,
            limits: vec![lim_m, lim_k],
            shape: vec![bm, bk],
        },
        DType::F32,
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
        DType::F32,
        0.0,
    );
    let d = b.dot(at, bt, acc);
    let res = b.end_for(z, kv, bk as i64, &[acc0], &[d]);
    // epilogue: + bias (row stride 0), tanh
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
    let c_base = b.iop(IndexOp::Add, t2, col0);
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
        "matmul_bias_tanh".into(),
        vec![
            param("a", DType::F32, m * k, Access::Read),
            param("b", DType::F32, k * n, Access::Read),
            param("bias", DType::F32, n, Access::Read),
            param("c", DType::F32, m * n, Access::Write),
        ],
        [m.div_ceil(bm) as u32, n.div_ceil(bn) as u32, 1],
    )
}

/// A one-kernel plan around `kernel` (every parameter its own buffer and slot).
pub fn single_kernel_plan(kernel: TileKernel) -> Plan {
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

/// No per-element scalar loop: GetValue / SetValue never appear inside a `for` over
/// tile elements. The emitted code only calls GetValue on reduction results, broadcast
/// scalars (one per row) and GM scalars, and never calls SetValue.
fn assert_no_scalar_element_loops(src: &str) {
    assert!(
        !src.contains("SetValue("),
        "SetValue in emitted code:\n{src}"
    );
    for (i, line) in src.lines().enumerate() {
        if line.contains("GetValue(") {
            let ok = line.contains("red") || line.contains("sy") || line.contains("_gm.GetValue(");
            assert!(ok, "line {}: unexpected GetValue: {line}\n{src}", i + 1);
        }
    }
}

#[test]
fn elementwise_uses_vector_instructions_and_datacopypad() {
    let k = elementwise_kernel(1000, 256);
    let e = emit_kernel(&k, &Target::ascend_910b()).expect("emits");
    let src = &e.file.contents;
    println!("{src}");
    assert_eq!(e.kind, KernelKind::Vector);
    assert_eq!(e.block_dim, 4, "4 programs on min(4, 48) cores");
    assert!(src.contains("#include \"kernel_operator.h\""));
    assert!(src.contains("extern \"C\" __global__ __aicore__ void ew_exp_add_tanh(GM_ADDR x, GM_ADDR y, GM_ADDR out)"));
    assert!(src.contains("KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY)"));
    assert!(
        src.contains("for (int32_t pid = GetBlockIdx(); pid < kPrograms; pid += GetBlockNum())")
    );
    for needle in [
        "Exp(",
        "Add(",
        "Muls(",
        "Div(",
        "DataCopyPad(",
        "TQue<TPosition::VECIN",
        "TQue<TPosition::VECOUT",
        "TBuf<TPosition::VECCALC>",
        "EnQue(",
        "DeQue<float>()",
        "FreeTensor(",
        "PipeBarrier<PIPE_V>()",
    ] {
        assert!(src.contains(needle), "missing `{needle}`");
    }
    // The masked tail: padding in the copy and Duplicate of `other` beyond it.
    assert!(src.contains("DataCopyPadExtParams<float>{true, 0, pad"));
    assert!(src.contains("Duplicate("));
    assert_no_scalar_element_loops(src);
    // Double-buffered queues (InitBuffer(q, 2, bytes)) fit.
    assert!(src.contains("pipe.InitBuffer(in_q0, 2, 1024);"), "{src}");
}

#[test]
fn reduction_uses_reducesum_and_scalar_store() {
    for op in [ReduceOp::Sum, ReduceOp::Max] {
        let k = reduction_kernel(7, 1000, 256, op);
        let e = emit_kernel(&k, &Target::ascend_910b()).expect("emits");
        let src = &e.file.contents;
        println!("{src}");
        let (red, comb) = match op {
            ReduceOp::Sum => ("ReduceSum<float>(", "Add("),
            _ => ("ReduceMax<float>(", "Max("),
        };
        assert!(src.contains(red), "missing {red}");
        assert!(src.contains(comb), "missing {comb}");
        assert!(src.contains("for (int32_t i"), "the K loop is a C++ loop");
        assert!(
            src.contains("SetFlag<HardEvent::V_S>"),
            "vector -> scalar sync before GetValue"
        );
        assert!(
            src.contains("DataCopyPad(out_gm["),
            "rank-0 store via a 1-element DataCopyPad"
        );
        assert_no_scalar_element_loops(src);
        assert_eq!(e.block_dim, 7);
    }
}

#[test]
fn matmul_uses_the_cube_unit() {
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let k = matmul_kernel(100, 70, 50, 32, 32, 32, ta, tb);
        let e = emit_kernel(&k, &Target::ascend_910b()).expect("emits");
        let src = &e.file.contents;
        println!("{src}");
        assert_eq!(e.kind, KernelKind::Mix);
        assert!(e.workspace_bytes > 0);
        assert!(src.contains("GM_ADDR c, GM_ADDR workspace)"));
        for needle in [
            "KERNEL_TYPE_MIX_AIC_1_2",
            "if ASCEND_IS_AIC",
            "if ASCEND_IS_AIV",
            "Nd2NzParams",
            "LoadData",
            "Mmad(c_l0, a_l0, b_l0, mm);",
            "Fixpipe<float, float, CFG_ROW_MAJOR>(",
            "CrossCoreSetFlag<2, PIPE_FIX>(kCubeDone);",
            "CrossCoreWaitFlag<2, PIPE_S>(kCubeDone);",
            "TQue<TPosition::A1, 1>",
            "TQue<TPosition::CO1, 1>",
            "Adds(",
            "Exp(",
        ] {
            assert!(
                src.contains(needle),
                "missing `{needle}` (ta={ta}, tb={tb})"
            );
        }
        // f32 operands whose K axis is not contiguous (a given as [k, m], b as [k, n])
        // need the square transpose on the way to L0; K-contiguous ones need none.
        assert_eq!(
            src.contains("LoadDataWithTranspose(a_l0"),
            ta,
            "a transposed: {ta}"
        );
        assert_eq!(
            src.contains("LoadDataWithTranspose(b_l0"),
            !tb,
            "b K-contiguous: {tb}"
        );
        assert_no_scalar_element_loops(src);
        assert_eq!(e.block_dim, 4 * 3, "12 programs on min(12, 24) cube cores");
    }
}

#[test]
fn oversized_tile_is_a_ub_limit_error() {
    // 3 double-buffered [65536] f32 queues cannot fit 184 KiB of UB.
    let k = elementwise_kernel(1 << 20, 65536);
    match emit_kernel(&k, &Target::ascend_910b()) {
        Err(CompileError::Limit {
            limit,
            needed,
            available,
            kernel,
            ..
        }) => {
            assert_eq!(limit, "ub_bytes");
            assert_eq!(available, 184 * 1024);
            assert!(needed > available);
            assert!(kernel.contains("in_q0"), "names the buffers: {kernel}");
        }
        other => panic!("expected a UB limit error, got {other:?}"),
    }
    // A matmul tile that overflows L0A.
    let k = matmul_kernel(512, 512, 512, 128, 32, 256, false, false);
    match emit_kernel(&k, &Target::ascend_910b()) {
        Err(CompileError::Limit { limit, .. }) => assert_eq!(limit, "l0ab_bytes"),
        other => panic!("expected an L0A limit error, got {other:?}"),
    }
}

#[test]
fn plan_emits_kernels_host_and_cmake() {
    let plan = single_kernel_plan(elementwise_kernel(1000, 256));
    let art = emit_plan(&plan, &Target::ascend_910b()).expect("emits");
    let names: Vec<&str> = art.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["ew_exp_add_tanh.cpp", "host.cpp", "CMakeLists.txt"]);
    let host = &art.files[1].contents;
    println!("{host}");
    for needle in [
        "aclInit(nullptr)",
        "aclrtSetDevice(0)",
        "aclrtCreateStream(&stream)",
        "aclrtMalloc(",
        "ACL_MEMCPY_HOST_TO_DEVICE",
        "ICPU_RUN_KF(ew_exp_add_tanh, 4, slot0, slot1, slot2);",
        "ACLRT_LAUNCH_KERNEL(ew_exp_add_tanh)(4, stream, slot0, slot1, slot2);",
        "aclrtSynchronizeStream(stream)",
        "ACL_MEMCPY_DEVICE_TO_HOST",
        "aclrtFree(",
        "aclFinalize()",
    ] {
        assert!(host.contains(needle), "host.cpp misses `{needle}`");
    }
    let io = host_io(&plan);
    assert_eq!(io.inputs.len(), 2);
    assert_eq!(io.outputs[0].file, "out_out.bin");
    assert!(host.contains("in_x.bin"));
    let cmake = &art.files[2].contents;
    assert!(cmake.contains("ascendc_library(tessera_kernels STATIC ${KERNEL_FILES})"));
    assert!(cmake.contains("RUN_MODE"));
    assert!(cmake.contains("tikicpulib::${SOC_VERSION}"));
    assert_eq!(art.kernels[0].block, 4);
}
