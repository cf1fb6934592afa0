//! Emission tests of the Ascend C backend on hand-built tile kernels of the three shapes
//! the scheduler produces (elementwise, reduction, matmul): the emitted text uses vector
//! instructions over whole tiles, `DataCopyPad` for GM <-> UB, the Cube unit (`Mmad`) for
//! `dot`, never a per-element scalar loop; oversized tiles are a `Limit` error.
//!
//! Numerical checks (compiling the sources against the CPU build of the Ascend C API and
//! comparing with the interpreter) live in the root crate's `tests/ascend_cpu.rs`.

use tessera_compiler::backend::ascendc::{
    emit_kernel, emit_plan, host_io, kernel_workspace, workspace_zero_region, KernelKind,
};
use tessera_compiler::graph::{BinaryOp, DType, ReduceOp, UnaryOp};
use tessera_compiler::schedule::plan::{
    BufferId, BufferInfo, BufferRole, Launch, Plan, StorageSlot,
};
use tessera_compiler::tile::{Access, BlockAccess, BufferParam, IndexOp, TileBuilder, TileKernel};
use tessera_compiler::{CompileError, Graph, GraphError, NodeId, Target};

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

/// Whether a `for` header written by the emitter walks a tile extent (rows, column chunks,
/// fractals...). The only loops that do not are the program-instance loop (induction
/// variable `pid`) and the tile IR's own `For` loops (induction variable `i<value id>`,
/// e.g. the chunk loop of a reduction or the K loop of a matmul), which iterate over
/// program instances or blocks of tiles, never over the elements of one tile.
fn loop_walks_tile_extent(header: &str) -> bool {
    let after = header
        .trim_start()
        .strip_prefix("for (")
        .unwrap_or_else(|| panic!("not a for header: {header}"));
    // `for (int32_t <var> = ...`
    let var = after
        .split(['=', ';'])
        .next()
        .and_then(|decl| decl.split_whitespace().last())
        .unwrap_or_else(|| panic!("cannot find the induction variable of `{header}`"));
    let ir_loop = var
        .strip_prefix('i')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()));
    !(var == "pid" || ir_loop)
}

/// No per-element scalar loop: no `GetValue` / `SetValue` anywhere inside a `for` loop
/// whose bound is a tile extent (see [`loop_walks_tile_extent`]), at any nesting depth.
/// Scalar accesses are allowed only once per program instance or per iteration of a
/// tile-IR loop (reduction results, rank-0 loads, broadcast scalars). The emitter never
/// writes `SetValue`. Also checks that braces balance, so the scope tracking is sound.
fn assert_no_scalar_element_loops(src: &str) -> usize {
    assert!(
        !src.contains("SetValue("),
        "SetValue in emitted code:\n{src}"
    );
    // One entry per open brace: the line that opened it, if that line is a tile loop.
    let mut scopes: Vec<Option<(usize, String)>> = Vec::new();
    let mut loops_seen = 0usize;
    for (i, line) in src.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let trimmed = code.trim_start();
        let tile_loop = trimmed.starts_with("for (") && loop_walks_tile_extent(trimmed);
        if tile_loop {
            loops_seen += 1;
        }
        if code.contains("GetValue(") || code.contains("SetValue(") {
            if let Some((at, header)) = scopes.iter().rev().flatten().next() {
                panic!(
                    "line {}: scalar access inside the tile-extent loop of line {at} (`{}`): {}\n{src}",
                    i + 1,
                    header.trim(),
                    line.trim()
                );
            }
        }
        for c in code.chars() {
            match c {
                '{' => scopes.push(tile_loop.then(|| (i + 1, trimmed.to_string()))),
                '}' => {
                    scopes
                        .pop()
                        .unwrap_or_else(|| panic!("line {}: unbalanced `}}`\n{src}", i + 1));
                }
                _ => {}
            }
        }
    }
    assert!(scopes.is_empty(), "unclosed braces in emitted code:\n{src}");
    loops_seen
}

#[test]
fn scalar_loop_check_catches_per_element_accesses() {
    // The check itself must be able to fail: a per-element scalar copy in a row loop,
    // nested in a program loop, is rejected; the same access per program is accepted.
    let bad = "for (int32_t pid = GetBlockIdx(); pid < kPrograms; pid += GetBlockNum()) {\n    \
               for (int32_t row = 0; row < 16; ++row) {\n        if (row < vr) {\n            \
               const float b = x_gm.GetValue(row);\n        }\n    }\n}\n";
    assert!(std::panic::catch_unwind(|| assert_no_scalar_element_loops(bad)).is_err());
    let fractal = "for (int32_t i = 0; i < 4; ++i) {\n    t.SetValue(i, 0.0f);\n}\n";
    assert!(std::panic::catch_unwind(|| assert_no_scalar_element_loops(fractal)).is_err());
    let ok = "for (int32_t pid = GetBlockIdx(); pid < kPrograms; pid += GetBlockNum()) {\n    \
              for (int32_t i7 = 0; i7 < s3; i7 += 256) {\n        const float s9 = red9.GetValue(0);\n    }\n    \
              const float b = x_gm.GetValue(pid);\n    DataCopyParams p{1, 2, 0, 0};\n}\n";
    assert_no_scalar_element_loops(ok);
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
        "ew_exp_add_tanh_do(4, stream, (uint8_t*)slot0, (uint8_t*)slot1, (uint8_t*)slot2);",
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

// ---------------------------------------------------------------------------------------
// Whole graphs (the shapes of the conformance suite): emission only, no C++ compiler.

/// Graphs like those of the conformance suite (`tests/conformance.rs`), cheap to schedule:
/// elementwise chains, reductions over every axis, views feeding compute, matmuls with
/// every transpose combination and batch rule, matmul epilogues, the MLP block.
fn conformance_like_graphs() -> Vec<(String, Graph)> {
    const F: DType = DType::F32;
    type Build = Box<dyn Fn(&mut Graph) -> Result<Vec<NodeId>, GraphError>>;
    let mut builds: Vec<(String, Build)> = Vec::new();
    for n in [1usize, 7, 127, 1000, 4097] {
        builds.push((
            format!("chains/n{n}"),
            Box::new(move |g| {
                let x = g.input("x", &[n], F)?;
                let y = g.input("y", &[n], F)?;
                let p = g.input("p", &[n], F)?;
                let e = g.neg(x)?;
                let e = g.exp(e)?;
                let z = g.mul(e, y)?;
                let z = g.add(z, x)?;
                let z = g.tanh(z)?;
                let s = g.sqrt(p)?;
                let one = g.constant(1.0, &[], F)?;
                let d = g.add(s, one)?;
                let o1 = g.div(z, d)?;
                let m = g.max(p, y)?;
                let l = g.log(m)?;
                let r = g.rsqrt(p)?;
                let o2 = g.mul(l, r)?;
                Ok(vec![o1, o2])
            }),
        ));
        builds.push((
            format!("reduce/n{n}"),
            Box::new(move |g| {
                let mut outs = Vec::new();
                let xs = [
                    (g.input("x0", &[n, 3, 5], F)?, 0),
                    (g.input("x1", &[3, n, 5], F)?, 1),
                    (g.input("x2", &[3, 5, n], F)?, 2),
                    (g.input("x3", &[n], F)?, 0),
                ];
                for (x, axis) in xs {
                    for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Mean] {
                        for keep in [true, false] {
                            outs.push(g.reduce(op, x, axis, keep)?);
                        }
                    }
                }
                Ok(outs)
            }),
        ));
        builds.push((
            format!("views/n{n}"),
            Box::new(move |g| {
                let x = g.input("rx", &[3, n], F)?;
                let b = g.param("rb", &[n], F)?;
                let o1 = g.add(x, b)?;
                let x = g.input("cx", &[n, 5], F)?;
                let s = g.input("cs", &[n, 1], F)?;
                let o2 = g.mul(x, s)?;
                let x = g.input("px", &[n, 7], F)?;
                let y = g.input("py", &[7, n], F)?;
                let xt = g.permute(x, &[1, 0])?;
                let o3 = g.add(xt, y)?;
                let x = g.input("qx", &[2, n, 3], F)?;
                let y = g.input("qy", &[3, 2, n], F)?;
                let xp = g.permute(x, &[2, 0, 1])?;
                let o4 = g.add(xp, y)?;
                let x = g.input("sx", &[4 * n], F)?;
                let r = g.reshape(x, &[n, 4])?;
                let p = g.permute(r, &[1, 0])?;
                let o5 = g.exp(p)?;
                let x = g.input("ux", &[n], F)?;
                let y = g.input("uy", &[6, n], F)?;
                let p = g.mul(x, y)?;
                let o6 = g.sum(p, 0, false)?;
                let x = g.input("vx", &[n, 3], F)?;
                let o7 = g.permute(x, &[1, 0])?;
                Ok(vec![o1, o2, o3, o4, o5, o6, o7])
            }),
        ));
        builds.push((
            format!("fused_reduce/n{n}"),
            Box::new(move |g| {
                let x = g.input("lx", &[3, n], F)?;
                let mu = g.mean(x, 1, true)?;
                let d = g.sub(x, mu)?;
                let d2 = g.mul(d, d)?;
                let var = g.mean(d2, 1, true)?;
                let eps = g.constant(1e-5, &[], F)?;
                let v = g.add(var, eps)?;
                let r = g.rsqrt(v)?;
                let o1 = g.mul(d, r)?;
                let x = g.input("sx", &[3, n], F)?;
                let m = g.reduce_max(x, 1, true)?;
                let d = g.sub(x, m)?;
                let e = g.exp(d)?;
                let s = g.sum(e, 1, true)?;
                let o2 = g.div(e, s)?;
                let x = g.input("ex", &[n, 5], F)?;
                let e = g.exp(x)?;
                let s = g.sum(e, 0, false)?;
                let o3 = g.log(s)?;
                Ok(vec![o1, o2, o3])
            }),
        ));
    }
    const MM: [usize; 4] = [1, 17, 64, 129];
    for (t, (ta, tb)) in [(false, false), (false, true), (true, false), (true, true)]
        .into_iter()
        .enumerate()
    {
        builds.push((
            format!("matmul/ta{}tb{}", ta as u8, tb as u8),
            Box::new(move |g| {
                let shape = |r: usize, c: usize, tr: bool| if tr { [c, r] } else { [r, c] };
                let mut outs = Vec::new();
                for i in 0..4 {
                    for j in 0..4 {
                        let (m, n, k) = (MM[i], MM[j], MM[(i + j + t) % 4]);
                        let a = g.input(&format!("a{i}_{j}"), &shape(m, k, ta), F)?;
                        let b = g.input(&format!("b{i}_{j}"), &shape(k, n, tb), F)?;
                        outs.push(g.matmul_t(a, b, ta, tb)?);
                    }
                }
                for (j, mode) in ["both", "shared_b", "shared_a"].into_iter().enumerate() {
                    let r = t * 3 + j;
                    let (m, n, k) = (MM[r % 4], MM[(r + 1) % 4], MM[(r + 2) % 4]);
                    let a2 = shape(m, k, ta).to_vec();
                    let b2 = shape(k, n, tb).to_vec();
                    let ash = if mode == "shared_a" {
                        a2
                    } else {
                        [vec![3], a2].concat()
                    };
                    let bsh = if mode == "shared_b" {
                        b2
                    } else {
                        [vec![3], b2].concat()
                    };
                    let a = g.input(&format!("ba{j}"), &ash, F)?;
                    let b = g.input(&format!("bb{j}"), &bsh, F)?;
                    outs.push(g.matmul_t(a, b, ta, tb)?);
                }
                Ok(outs)
            }),
        ));
    }
    builds.push((
        "fused_matmul/epilogues".into(),
        Box::new(|g| {
            let mut outs = Vec::new();
            for (i, (m, n, k)) in [(1, 17, 64), (17, 129, 1), (64, 1, 129), (129, 64, 17)]
                .into_iter()
                .enumerate()
            {
                let (ta, tb) = (i & 2 != 0, i & 1 != 0);
                let a = g.input(&format!("x{i}"), &if ta { [k, m] } else { [m, k] }, F)?;
                let w = g.param(&format!("w{i}"), &if tb { [n, k] } else { [k, n] }, F)?;
                let b = g.param(&format!("b{i}"), &[n], F)?;
                let h = g.matmul_t(a, w, ta, tb)?;
                let h = g.add(h, b)?;
                outs.push(g.tanh(h)?);
            }
            // A per-row scale ([m, 1], broadcast along the columns) and a reduction of the
            // product over its rows.
            let a = g.input("ca", &[33, 20], F)?;
            let w = g.param("cw", &[20, 40], F)?;
            let s = g.input("cs", &[33, 1], F)?;
            let h = g.matmul(a, w)?;
            let h = g.mul(h, s)?;
            outs.push(g.exp(h)?);
            let a = g.input("ra", &[9, 70], F)?;
            let w = g.param("rw", &[70, 12], F)?;
            let h = g.matmul(a, w)?;
            outs.push(g.sum(h, 1, false)?);
            Ok(outs)
        }),
    ));
    for (b, i, h) in [
        (1, 1, 1),
        (7, 17, 64),
        (127, 64, 129),
        (1000, 17, 7),
        (3, 129, 4097),
    ] {
        builds.push((
            format!("mlp/b{b}i{i}h{h}"),
            Box::new(move |g| {
                let x = g.input("x", &[b, i], F)?;
                let w = g.param("w", &[i, h], F)?;
                let bias = g.param("b", &[h], F)?;
                let z = g.matmul(x, w)?;
                let z = g.add(z, bias)?;
                let t = g.tanh(z)?;
                Ok(vec![g.sum(t, 1, false)?])
            }),
        ));
    }
    builds
        .into_iter()
        .map(|(name, build)| {
            let mut g = Graph::new();
            let outs = build(&mut g).unwrap_or_else(|e| panic!("{name}: graph: {e}"));
            for (j, o) in outs.into_iter().enumerate() {
                g.set_name(o, &format!("out{j}"))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                g.mark_output(o).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            (name, g)
        })
        .collect()
}

#[test]
fn conformance_like_graphs_have_no_scalar_element_loops() {
    let target = Target::ascend_910b();
    let (mut kernels, mut mix, mut tile_loops) = (0, 0, 0);
    for (name, g) in conformance_like_graphs() {
        let plan = tessera_compiler::compile(&g, &target)
            .unwrap_or_else(|e| panic!("{name}: scheduling failed: {e}"));
        let art =
            emit_plan(&plan, &target).unwrap_or_else(|e| panic!("{name}: emission failed: {e}"));
        for k in &art.kernels {
            let f = art
                .files
                .iter()
                .find(|f| f.name == k.file)
                .unwrap_or_else(|| panic!("{name}: no file {}", k.file));
            let r = std::panic::catch_unwind(|| assert_no_scalar_element_loops(&f.contents));
            match r {
                Ok(n) => tile_loops += n,
                Err(e) => std::panic::resume_unwind(Box::new(format!(
                    "{name}, kernel {}: {}",
                    k.name,
                    e.downcast_ref::<String>().map_or("?", |s| s.as_str())
                ))),
            }
            kernels += 1;
            mix += usize::from(k.params.last().is_some_and(|p| p == "workspace"));
        }
    }
    eprintln!("{kernels} kernels ({mix} with a matmul), {tile_loops} tile-extent loops checked");
    assert!(mix >= 30 && kernels >= 60, "the sweep covers too little");
    assert!(
        tile_loops > 0,
        "no tile-extent loop seen: the check would be vacuous"
    );
}

#[test]
fn matmul_kernels_of_a_plan_share_the_workspace_safely() {
    // Every MIX kernel of a plan gets the same workspace: its zero region (read by the
    // cube to pad partial tiles) must sit where no kernel of the plan writes
    // accumulators, and the host must zero it. Regression: the zero region used to follow
    // each kernel's own accumulators, so a smaller matmul read a larger one's results as
    // "zeros".
    let target = Target::ascend_910b();
    let zero_region = workspace_zero_region(&target);
    for (name, g) in conformance_like_graphs() {
        let plan = tessera_compiler::compile(&g, &target).expect("schedules");
        let art = emit_plan(&plan, &target).expect("emits");
        let host = &art
            .files
            .iter()
            .find(|f| f.name == "host.cpp")
            .expect("host")
            .contents;
        let (mut max_ws, mut max_zero) = (0, 0);
        for k in &art.kernels {
            let src = &art
                .files
                .iter()
                .find(|f| f.name == k.file)
                .expect("file")
                .contents;
            let has_ws = k.params.last().is_some_and(|p| p == "workspace");
            let Some((bytes, zero)) = kernel_workspace(src) else {
                assert!(
                    !has_ws,
                    "{name}: {} takes a workspace but states no size",
                    k.name
                );
                continue;
            };
            assert!(
                has_ws,
                "{name}: {} states a workspace it does not take",
                k.name
            );
            assert!(
                zero > 0 && zero <= zero_region,
                "{name}: zero prefix {zero}"
            );
            assert!(bytes > zero_region, "{name}: {bytes} bytes");
            assert!(
                src.contains("zero_ws.SetGlobalBuffer((__gm__ float*)workspace, "),
                "{name}: the zero region starts the workspace"
            );
            assert!(
                src.contains(&format!(
                    "acc_ws.SetGlobalBuffer((__gm__ float*)(workspace + {zero_region}), "
                )),
                "{name}: the accumulators follow the shared zero region\n{src}"
            );
            max_ws = max_ws.max(bytes);
            max_zero = max_zero.max(zero);
        }
        if max_ws == 0 {
            assert!(!host.contains("workspace"), "{name}");
            continue;
        }
        assert!(
            host.contains(&format!(
                "aclrtMalloc(reinterpret_cast<void**>(&workspace), {max_ws}, "
            )),
            "{name}: host allocates the largest workspace\n{host}"
        );
        assert!(
            host.contains(&format!(
                "aclrtMemset(workspace, {max_ws}, 0, {max_zero}));"
            )),
            "{name}: host zeroes every kernel's zero prefix\n{host}"
        );
        // The CPU build poisons the accumulators before every matmul launch, never the
        // zero region.
        let mix_launches = plan
            .launches
            .iter()
            .filter(|l| {
                art.kernels[l.kernel]
                    .params
                    .last()
                    .is_some_and(|p| p == "workspace")
            })
            .count();
        let poison = format!(
            "aclrtMemset(workspace + {zero_region}, {}, 0xFF, ",
            max_ws - zero_region
        );
        assert_eq!(
            host.matches(&poison).count(),
            mix_launches,
            "{name}: one accumulator poisoning per matmul launch\n{host}"
        );
        assert_eq!(host.matches("0xFF").count(), mix_launches, "{name}");
    }
}
