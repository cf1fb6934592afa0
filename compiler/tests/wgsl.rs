//! SIMT lowering + WGSL printer: hand-built tile kernels (elementwise with masks, a
//! reduction loop with a rank-0 store, matmul with `dot` and an epilogue; sizes that are
//! not multiples of the tiles) are lowered, printed, validated by naga, and run through
//! wgpu on the default adapter (Mesa lavapipe in CI), compared with values computed on
//! the host in f64.
//!
//! No adapter is a test failure, never a silent pass: install lavapipe with
//! `apt-get install -y mesa-vulkan-drivers libvulkan1` (or `cargo xtask setup`).

use std::sync::OnceLock;
use tessera_compiler::backend::wgsl;
use tessera_compiler::schedule::plan::Plan;
use tessera_compiler::simt::{self, Operand, SimtKernel, Stmt};
use tessera_compiler::tile::{
    Access, BinaryOp, BlockAccess, BufferParam, IndexOp, ReduceOp, TileBuilder, TileKernel,
    UnaryOp, ValueId,
};
use tessera_compiler::{CompileError, DType, Target};
use wgpu::util::DeviceExt;

// ---------------------------------------------------------------- helpers

fn access(
    buffer: usize,
    base: ValueId,
    strides: &[i64],
    limits: &[ValueId],
    shape: &[usize],
) -> BlockAccess {
    BlockAccess {
        buffer,
        base,
        strides: strides.to_vec(),
        limits: limits.to_vec(),
        shape: shape.to_vec(),
    }
}

fn param(name: &str, dtype: DType, len: usize, access: Access) -> BufferParam {
    BufferParam {
        name: name.to_string(),
        dtype,
        len,
        access,
    }
}

/// Deterministic inputs in [lo, hi) (splitmix64).
fn inputs(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i32_bytes(v: &[i32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn to_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn to_i32(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Asserts `|got - want| <= abs + rel * scale[i]` element by element.
fn assert_close(what: &str, got: &[f32], want: &[f64], scale: &[f64], abs: f64, rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0f64, 0usize, 0.0f64);
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i]).abs();
        let tol = abs + rel * scale[i];
        assert!(
            err <= tol,
            "{what}: element {i}: got {}, want {} (error {err:e} > tolerance {tol:e})",
            got[i],
            want[i]
        );
        if tol > 0.0 && err / tol > worst.0 {
            worst = (err / tol, i, err);
        }
    }
    eprintln!(
        "{what}: worst element {} (error {:e}, {:.3} of its tolerance)",
        worst.1, worst.2, worst.0
    );
}

/// Runs the kernel on the tile interpreter (f32) with the same inputs and checks that
/// the device agrees with it on buffer `out` within the same tolerance as with the f64
/// reference (the interpreter is itself an f32 computation, so up to twice the
/// reference tolerance apart is allowed).
fn check_against_interp(
    k: &TileKernel,
    data: &[Vec<f32>],
    out: usize,
    got: &[f32],
    scale: &[f64],
    abs: f64,
    rel: f64,
) {
    let mut bufs = data.to_vec();
    tessera_compiler::interp::tile::run_kernel(k, &mut bufs)
        .unwrap_or_else(|e| panic!("tile interpreter on `{}`: {e}", k.name));
    let want: Vec<f64> = bufs[out].iter().map(|&v| v as f64).collect();
    assert_close(
        &format!("{} vs tile interpreter", k.name),
        got,
        &want,
        scale,
        2.0 * abs,
        2.0 * rel,
    );
}

/// Lowers + prints + validates; returns the SIMT kernel and the WGSL text.
fn compile(k: &TileKernel, target: &Target) -> (SimtKernel, String) {
    let simt = simt::lower_kernel(k, target).unwrap_or_else(|e| panic!("lowering: {e}"));
    let text = wgsl::print_kernel(&simt);
    if let Err(e) = wgsl::validate(&text, &simt.name, target) {
        panic!("{e}\n--- module ---\n{text}");
    }
    if let Ok(dir) = std::env::var("TESSERA_DUMP_WGSL") {
        let _ = std::fs::write(format!("{dir}/{}.wgsl", simt.name), &text);
    }
    (simt, text)
}

fn count_stmts(body: &[Stmt], f: &dyn Fn(&Stmt) -> bool) -> usize {
    body.iter()
        .map(|s| {
            let inner = match s {
                Stmt::If { then, els, .. } => count_stmts(then, f) + count_stmts(els, f),
                Stmt::Loop { body, .. } => count_stmts(body, f),
                _ => 0,
            };
            inner + f(s) as usize
        })
        .sum()
}

// ---------------------------------------------------------------- wgpu runner

struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
}

fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    match GPU.get_or_init(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter =
            pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
                .map_err(|e| {
                format!(
                    "no wgpu adapter found ({e}). The WGSL tests need one: install Mesa lavapipe \
                 with `apt-get install -y mesa-vulkan-drivers libvulkan1` (or `cargo xtask setup`)"
                )
            })?;
        eprintln!("wgpu adapter: {:?}", adapter.get_info());
        // Subgroup operations where the adapter has them (lavapipe does), for the
        // kernels of targets with `subgroup_size`.
        let desc = wgpu::DeviceDescriptor {
            required_features: adapter.features() & wgpu::Features::SUBGROUP,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| format!("wgpu request_device failed: {e}"))?;
        Ok(Gpu { device, queue })
    }) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// Runs a validated module once; returns the contents of every buffer afterwards.
fn run(simt: &SimtKernel, text: &str, data: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let g = gpu();
    let module = g.device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(&simt.name),
        source: wgpu::ShaderSource::Wgsl(text.into()),
    });
    let pipeline = g
        .device
        .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&simt.name),
            layout: None,
            module: &module,
            entry_point: Some(&simt.name),
            compilation_options: Default::default(),
            cache: None,
        });
    assert_eq!(data.len(), simt.buffers.len(), "one data vector per buffer");
    // Bindings in multiples of 16 bytes, as the runtime's storage slots: a buffer bound
    // as vectors (`SimtBuffer::vector`) must hold its last vector whole.
    let lens: Vec<usize> = data.iter().map(Vec::len).collect();
    let data: Vec<Vec<u8>> = data
        .iter()
        .map(|d| {
            let mut d = d.clone();
            d.resize(d.len().div_ceil(16).max(1) * 16, 0);
            d
        })
        .collect();
    let bufs: Vec<wgpu::Buffer> = data
        .iter()
        .map(|d| {
            g.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: None,
                    contents: d,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                })
        })
        .collect();
    let layout = pipeline.get_bind_group_layout(0);
    let entries: Vec<wgpu::BindGroupEntry> = bufs
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let bind = g.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    });
    let staging: Vec<wgpu::Buffer> = data
        .iter()
        .map(|d| {
            g.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size: d.len() as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
        .collect();
    let mut enc = g
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(simt.grid[0], simt.grid[1], simt.grid[2]);
    }
    for (b, s) in bufs.iter().zip(&staging) {
        enc.copy_buffer_to_buffer(b, 0, s, 0, b.size());
    }
    g.queue.submit([enc.finish()]);
    for s in &staging {
        s.slice(..).map_async(wgpu::MapMode::Read, |r| {
            r.expect("mapping a staging buffer");
        });
    }
    g.device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("wgpu poll");
    staging
        .iter()
        .zip(lens)
        .map(|(s, len)| {
            let mut v = s.slice(..).get_mapped_range().expect("mapped").to_vec();
            s.unmap();
            v.truncate(len);
            v
        })
        .collect()
}

// ---------------------------------------------------------------- kernels

/// `y[i] = max(tanh(x[i]*s) + exp(-x[i]), 0.25) - log(x[i]^2 + 2) / sqrt(x[i]^2 + 1)
///          + rsqrt(x[i]^2 + 1)` with `s` a broadcast (stride 0) element.
fn elementwise(n: usize, block: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let zero = b.index(0);
    let x = b.load(access(0, base, &[1], &[lim], &[block]), DType::F32, 0.0);
    let s = b.load(access(1, zero, &[0], &[lim], &[block]), DType::F32, 0.0);
    let xs = b.binary(BinaryOp::Mul, x, s);
    let th = b.unary(UnaryOp::Tanh, xs);
    let nx = b.unary(UnaryOp::Neg, x);
    let e = b.unary(UnaryOp::Exp, nx);
    let sum = b.binary(BinaryOp::Add, th, e);
    let q = b.float(0.25, DType::F32);
    let m = b.binary(BinaryOp::Max, sum, q);
    let x2 = b.binary(BinaryOp::Mul, x, x);
    let one = b.float(1.0, DType::F32);
    let two = b.float(2.0, DType::F32);
    let x21 = b.binary(BinaryOp::Add, x2, one);
    let x22 = b.binary(BinaryOp::Add, x2, two);
    let lg = b.unary(UnaryOp::Log, x22);
    let sq = b.unary(UnaryOp::Sqrt, x21);
    let dv = b.binary(BinaryOp::Div, lg, sq);
    let rs = b.unary(UnaryOp::Rsqrt, x21);
    let y0 = b.binary(BinaryOp::Sub, m, dv);
    let y = b.binary(BinaryOp::Add, y0, rs);
    b.store(access(2, base, &[1], &[lim], &[block]), y);
    b.finish(
        format!("ew_{n}_{block}"),
        vec![
            param("x", DType::F32, n, Access::Read),
            param("s", DType::F32, 1, Access::Read),
            param("y", DType::F32, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

fn elementwise_ref(x: &[f32], s: f32) -> Vec<f64> {
    x.iter()
        .map(|&x| {
            let (x, s) = (x as f64, s as f64);
            let m = ((x * s).tanh() + (-x).exp()).max(0.25);
            m - (x * x + 2.0).ln() / (x * x + 1.0).sqrt() + 1.0 / (x * x + 1.0).sqrt()
        })
        .collect()
}

/// Integer path: `y = max(x*3 - 7, -x) / 2` (i32), `z = f32(y) * 0.5`, `w = i32(f(x))`.
fn int_kernel(n: usize, block: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let x = b.load(access(0, base, &[1], &[lim], &[block]), DType::I32, 0.0);
    let three = b.index(3);
    let seven = b.index(7);
    let two = b.index(2);
    let x3 = b.binary(BinaryOp::Mul, x, three);
    let x37 = b.binary(BinaryOp::Sub, x3, seven);
    let nx = b.unary(UnaryOp::Neg, x);
    let m = b.binary(BinaryOp::Max, x37, nx);
    let y = b.binary(BinaryOp::Div, m, two);
    b.store(access(1, base, &[1], &[lim], &[block]), y);
    let yf = b.cast(y, DType::F32);
    let half = b.float(0.5, DType::F32);
    let z = b.binary(BinaryOp::Mul, yf, half);
    b.store(access(2, base, &[1], &[lim], &[block]), z);
    b.finish(
        format!("int_{n}_{block}"),
        vec![
            param("x", DType::I32, n, Access::Read),
            param("y", DType::I32, n, Access::Write),
            param("z", DType::F32, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

/// Bool buffers (one u32 per element): `y = bool(x)` stored, `w = f32(z) * 2` from a
/// bool input `z`.
fn bool_kernel(n: usize, block: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let x = b.load(access(0, base, &[1], &[lim], &[block]), DType::F32, 0.0);
    let xb = b.cast(x, DType::Bool);
    b.store(access(1, base, &[1], &[lim], &[block]), xb);
    let z = b.load(access(2, base, &[1], &[lim], &[block]), DType::Bool, 0.0);
    let zf = b.cast(z, DType::F32);
    let two = b.float(2.0, DType::F32);
    let w = b.binary(BinaryOp::Mul, zf, two);
    b.store(access(3, base, &[1], &[lim], &[block]), w);
    b.finish(
        format!("bool_{n}_{block}"),
        vec![
            param("x", DType::F32, n, Access::Read),
            param("y", DType::Bool, n, Access::Write),
            param("z", DType::Bool, n, Access::Read),
            param("w", DType::F32, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

/// `y[i] = 2 x[i + shift] + i` for `i < n` (an iota for the index; `x` has `n + shift`
/// elements): a contiguous load whose base is a multiple of 4 only when `shift` is.
fn shifted_axpy(n: usize, block: usize, shift: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let bs = b.index(block as i64);
    let base = b.iop(IndexOp::Mul, pid, bs);
    let sh = b.index(shift as i64);
    let xbase = b.iop(IndexOp::Add, base, sh);
    let nn = b.index(n as i64);
    let lim = b.iop(IndexOp::Sub, nn, base);
    let x = b.load(access(0, xbase, &[1], &[lim], &[block]), DType::F32, 0.0);
    let two = b.float(2.0, DType::F32);
    let x2 = b.binary(BinaryOp::Mul, x, two);
    let io = b.iota(&[block], 0);
    let i = b.binary(BinaryOp::Add, io, base);
    let fi = b.cast(i, DType::F32);
    let y = b.binary(BinaryOp::Add, x2, fi);
    b.store(access(1, base, &[1], &[lim], &[block]), y);
    b.finish(
        format!("axpy_{n}_{block}_{shift}"),
        vec![
            param("x", DType::F32, n + shift, Access::Read),
            param("y", DType::F32, n, Access::Write),
        ],
        [n.div_ceil(block) as u32, 1, 1],
    )
}

/// What the reduction kernel computes per row.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Red {
    /// `sqrt(mean(x^2))`.
    Rms,
    /// `max(x)` (masked lanes read -inf).
    Max,
    /// `sum(x + 1)` over every tile lane, masked lanes included (they read 0, so add
    /// 1 each): checks that lanes beyond the tile extent (threads that own nothing)
    /// do not take part, while masked lanes inside the tile do.
    SumPlusOne,
}

/// One program per row: a loop over the row in `[block]` chunks, then a rank-1 reduce
/// and a rank-0 store.
fn reduction(rows: usize, cols: usize, block: usize, red: Red) -> TileKernel {
    let op = if red == Red::Max {
        ReduceOp::Max
    } else {
        ReduceOp::Sum
    };
    let mut b = TileBuilder::new();
    let pid = b.program_id(0);
    let c = b.index(cols as i64);
    let rowbase = b.iop(IndexOp::Mul, pid, c);
    let id = b.float(op.identity(), DType::F32);
    let acc0 = b.splat(id, &[block]);
    let start = b.index(0);
    let args = b.begin_for(&[acc0]);
    let (k, acc) = (args[0], args[1]);
    let base = b.iop(IndexOp::Add, rowbase, k);
    let lim = b.iop(IndexOp::Sub, c, k);
    let x = b.load(
        access(0, base, &[1], &[lim], &[block]),
        DType::F32,
        op.identity(),
    );
    let acc2 = match red {
        Red::Max => b.binary(BinaryOp::Max, acc, x),
        Red::Rms => {
            let sq = b.binary(BinaryOp::Mul, x, x);
            b.binary(BinaryOp::Add, acc, sq)
        }
        Red::SumPlusOne => {
            let one = b.float(1.0, DType::F32);
            let x1 = b.binary(BinaryOp::Add, x, one);
            b.binary(BinaryOp::Add, acc, x1)
        }
    };
    let res = b.end_for(start, c, block as i64, &[acc0], &[acc2]);
    let r = b.reduce(op, res[0], 0);
    let out = match red {
        Red::Max | Red::SumPlusOne => r,
        Red::Rms => {
            let inv = b.float(1.0 / cols as f64, DType::F32);
            let m = b.binary(BinaryOp::Mul, r, inv);
            b.unary(UnaryOp::Sqrt, m)
        }
    };
    b.store(access(1, pid, &[], &[], &[]), out);
    b.finish(
        format!("reduce_{red:?}_{rows}x{cols}_{block}").to_lowercase(),
        vec![
            param("x", DType::F32, rows * cols, Access::Read),
            param("out", DType::F32, rows, Access::Write),
        ],
        [rows as u32, 1, 1],
    )
}

/// Reference values and the magnitude their rounding error scales with.
fn reduction_ref(
    x: &[f32],
    rows: usize,
    cols: usize,
    block: usize,
    red: Red,
) -> (Vec<f64>, Vec<f64>) {
    (0..rows)
        .map(|r| {
            let row = &x[r * cols..(r + 1) * cols];
            match red {
                Red::Max => {
                    let m = row
                        .iter()
                        .map(|&v| v as f64)
                        .fold(f64::NEG_INFINITY, f64::max);
                    (m, m.abs())
                }
                Red::Rms => {
                    let v =
                        (row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / cols as f64).sqrt();
                    (v, v)
                }
                Red::SumPlusOne => {
                    let lanes = cols.div_ceil(block) * block;
                    let v = row.iter().map(|&v| v as f64).sum::<f64>() + lanes as f64;
                    let mag = row.iter().map(|&v| (v as f64).abs() + 1.0).sum::<f64>()
                        + (lanes - cols) as f64;
                    (v, mag)
                }
            }
        })
        .unzip()
}

/// Matmul options.
#[derive(Clone, Copy)]
struct Mm {
    m: usize,
    n: usize,
    k: usize,
    bm: usize,
    bn: usize,
    bk: usize,
    /// `b` given as `[N, K]`.
    trans_b: bool,
    /// `a` is scaled by 0.5 before the dot (not a plain load: staged from registers).
    scale_a: bool,
}

/// `out = tanh(a @ b + bias)` with `a: [M,K]`, `b: [K,N]` (or `[N,K]`), `bias: [N]`
/// broadcast over rows (row stride 0). Grid: (column blocks, row blocks).
fn matmul(p: Mm) -> TileKernel {
    let mut b = TileBuilder::new();
    let pn = b.program_id(0);
    let pm = b.program_id(1);
    let (bmv, bnv) = (b.index(p.bm as i64), b.index(p.bn as i64));
    let m0 = b.iop(IndexOp::Mul, pm, bmv);
    let n0 = b.iop(IndexOp::Mul, pn, bnv);
    let (mi, ni, ki) = (
        b.index(p.m as i64),
        b.index(p.n as i64),
        b.index(p.k as i64),
    );
    let limm = b.iop(IndexOp::Sub, mi, m0);
    let limn = b.iop(IndexOp::Sub, ni, n0);
    let zf = b.float(0.0, DType::F32);
    let acc0 = b.splat(zf, &[p.bm, p.bn]);
    let start = b.index(0);
    let args = b.begin_for(&[acc0]);
    let (k, acc) = (args[0], args[1]);
    let limk = b.iop(IndexOp::Sub, ki, k);
    let m0k = b.iop(IndexOp::Mul, m0, ki);
    let abase = b.iop(IndexOp::Add, m0k, k);
    let a = b.load(
        access(0, abase, &[p.k as i64, 1], &[limm, limk], &[p.bm, p.bk]),
        DType::F32,
        0.0,
    );
    let bt = if p.trans_b {
        let n0k = b.iop(IndexOp::Mul, n0, ki);
        let bbase = b.iop(IndexOp::Add, n0k, k);
        b.load(
            access(1, bbase, &[1, p.k as i64], &[limk, limn], &[p.bk, p.bn]),
            DType::F32,
            0.0,
        )
    } else {
        let kn = b.iop(IndexOp::Mul, k, ni);
        let bbase = b.iop(IndexOp::Add, kn, n0);
        b.load(
            access(1, bbase, &[p.n as i64, 1], &[limk, limn], &[p.bk, p.bn]),
            DType::F32,
            0.0,
        )
    };
    let a = if p.scale_a {
        let h = b.float(0.5, DType::F32);
        b.binary(BinaryOp::Mul, a, h)
    } else {
        a
    };
    let acc2 = b.dot(a, bt, acc);
    let res = b.end_for(start, ki, p.bk as i64, &[acc0], &[acc2]);
    let bias = b.load(
        access(2, n0, &[0, 1], &[limm, limn], &[p.bm, p.bn]),
        DType::F32,
        0.0,
    );
    let s = b.binary(BinaryOp::Add, res[0], bias);
    let y = b.unary(UnaryOp::Tanh, s);
    let m0n = b.iop(IndexOp::Mul, m0, ni);
    let obase = b.iop(IndexOp::Add, m0n, n0);
    b.store(
        access(3, obase, &[p.n as i64, 1], &[limm, limn], &[p.bm, p.bn]),
        y,
    );
    b.finish(
        format!(
            "matmul_{}x{}x{}_{}x{}x{}{}{}",
            p.m,
            p.n,
            p.k,
            p.bm,
            p.bn,
            p.bk,
            if p.trans_b { "_tb" } else { "" },
            if p.scale_a { "_sa" } else { "" }
        ),
        vec![
            param("a", DType::F32, p.m * p.k, Access::Read),
            param("b", DType::F32, p.k * p.n, Access::Read),
            param("bias", DType::F32, p.n, Access::Read),
            param("out", DType::F32, p.m * p.n, Access::Write),
        ],
        [p.n.div_ceil(p.bn) as u32, p.m.div_ceil(p.bm) as u32, 1],
    )
}

/// Reference: returns (values, scale = sum |a||b| + |bias| per element).
fn matmul_ref(p: Mm, a: &[f32], b: &[f32], bias: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0.0; p.m * p.n];
    let mut scale = vec![0.0; p.m * p.n];
    let sa = if p.scale_a { 0.5 } else { 1.0 };
    for i in 0..p.m {
        for j in 0..p.n {
            let (mut s, mut mag) = (bias[j] as f64, (bias[j] as f64).abs());
            for kk in 0..p.k {
                let av = sa * a[i * p.k + kk] as f64;
                let bv = if p.trans_b {
                    b[j * p.k + kk]
                } else {
                    b[kk * p.n + j]
                } as f64;
                s += av * bv;
                mag += (av * bv).abs();
            }
            out[i * p.n + j] = s.tanh();
            scale[i * p.n + j] = mag;
        }
    }
    (out, scale)
}

fn check_matmul(p: Mm, target: &Target) {
    let k = matmul(p);
    let (simt, text) = compile(&k, target);
    // GPU records stage the tiles in workgroup memory; CPU adapters read two plain loads
    // in place (no workgroup memory, no barrier), but an operand computed in registers
    // (`scale_a`) is staged either way.
    let staged = target.stage_dot_operands || p.scale_a;
    assert_eq!(
        text.contains("var<workgroup>"),
        staged,
        "workgroup memory iff staged"
    );
    assert_eq!(text.contains("workgroupBarrier()"), staged);
    assert!(text.contains("fma("), "micro-tile accumulates with fma");
    assert!(text.contains(&format!("@workgroup_size({})", simt.workgroup_size)));
    assert!(text.contains("var<storage, read> b0_a: array<f32>;"));
    assert!(text.contains("var<storage, read_write> b3_out: array<f32>;"));
    let a = inputs(p.m * p.k, 11, -1.0, 1.0);
    let bm = inputs(p.k * p.n, 12, -1.0, 1.0);
    let bias = inputs(p.n, 13, -0.5, 0.5);
    let out = run(
        &simt,
        &text,
        &[
            f32_bytes(&a),
            f32_bytes(&bm),
            f32_bytes(&bias),
            f32_bytes(&vec![f32::NAN; p.m * p.n]),
        ],
    );
    let (want, scale) = matmul_ref(p, &a, &bm, &bias);
    // f32 accumulation over K terms: error <= K * 2^-24 * sum|a||b| (plus tanh's few
    // ulps, whose derivative is <= 1); we allow 4x that bound plus 1e-6.
    let rel = 4.0 * p.k as f64 * f64::powi(2.0, -24);
    let got = to_f32(&out[3]);
    assert_close(&simt.name, &got, &want, &scale, 2e-6, rel);
    let data = [a, bm, bias, vec![f32::NAN; p.m * p.n]];
    check_against_interp(&k, &data, 3, &got, &scale, 2e-6, rel);
}

// ---------------------------------------------------------------- tests

#[test]
fn elementwise_masked_runs() {
    let target = Target::wgsl();
    // 1000 over blocks of 512 (two slots per thread, last block partial) and 100 over
    // blocks of 64 (fewer elements than threads).
    for (n, block) in [(1000, 512), (100, 64), (7, 1024)] {
        let k = elementwise(n, block);
        let (simt, text) = compile(&k, &target);
        assert_eq!(simt.workgroup_size, 256);
        assert!(text.contains("@workgroup_size(256)"));
        // Four or more elements per thread: the vector layout (4 contiguous each).
        let elem = if block % 1024 == 0 {
            "vec4<f32>"
        } else {
            "f32"
        };
        assert!(text.contains(&format!("var<storage, read> b0_x: array<{elem}>;")));
        assert!(text.contains(&format!("var<storage, read_write> b2_y: array<{elem}>;")));
        assert!(text.contains("fn ew_"));
        // Large |x| checks the stable tanh (and exp up to e^40).
        let mut x = inputs(n, 1, -3.0, 3.0);
        x[0] = 40.0;
        if n > 1 {
            x[1] = -40.0;
        }
        let s = 1.5f32;
        let out = run(
            &simt,
            &text,
            &[
                f32_bytes(&x),
                f32_bytes(&[s]),
                f32_bytes(&vec![f32::NAN; n]),
            ],
        );
        let want = elementwise_ref(&x, s);
        let scale: Vec<f64> = want.iter().map(|v| v.abs()).collect();
        // exp/log/tanh in f32 on the device: a few ulps each (WGSL allows exp
        // 3 + 2|x| ulp); 1e-5 relative covers them with margin, 1e-5 absolute the
        // cancellation in the final sum.
        let got = to_f32(&out[2]);
        assert_close(&simt.name, &got, &want, &scale, 1e-5, 1e-5);
        let data = [x, vec![s], vec![f32::NAN; n]];
        check_against_interp(&k, &data, 2, &got, &scale, 1e-5, 1e-5);
    }
}

#[test]
fn cpu_adapters_move_elementwise_tiles_as_vectors() {
    // 64 threads and 256-element tiles: each thread holds 4 contiguous elements, moved
    // by one 16-byte load or store where the access is contiguous and its base a
    // multiple of 4; a limit that is not a multiple of 4 cuts the last group, whose
    // elements then go one by one; a broadcast or misaligned operand is read element by
    // element in the same layout. All against f64, at ragged sizes.
    let target = Target::wgsl().for_cpu_adapter();
    let vec_loads = |simt: &SimtKernel, buf: usize| {
        executed_stmts(
            &simt.body,
            &|s| matches!(s, Stmt::LoadGlobal4 { buffer, .. } if *buffer == buf),
        )
    };
    let vec_stores = |simt: &SimtKernel, buf: usize| {
        executed_stmts(
            &simt.body,
            &|s| matches!(s, Stmt::StoreGlobal4 { buffer, .. } if *buffer == buf),
        )
    };
    // 256-element tiles (one group of 4 per thread) and 512 (two: the second group at
    // 4 tid + 256).
    for (n, block, shift) in [
        (4096, 256, 0),
        (1001, 256, 0),
        (7, 256, 0),
        (300, 256, 4),
        (1000, 256, 1),
        (257, 256, 3),
        (2000, 512, 0),
        (1537, 512, 0),
        (700, 512, 2),
    ] {
        let groups = block / 256;
        let k = shifted_axpy(n, block, shift);
        let (simt, text) = compile(&k, &target);
        assert_eq!(simt.workgroup_size, 64);
        let aligned = shift % 4 == 0;
        assert_eq!(simt.buffers[0].vector, aligned, "{}", simt.name);
        assert!(simt.buffers[1].vector, "{}", simt.name);
        assert_eq!(
            vec_loads(&simt, 0),
            aligned as usize * groups,
            "{}",
            simt.name
        );
        assert_eq!(vec_stores(&simt, 1), groups, "{}", simt.name);
        let scalar_x = executed_stmts(&simt.body, &|s| {
            matches!(s, Stmt::LoadGlobal { buffer: 0, .. })
        });
        // Misaligned: element by element; aligned, a limit that is not a multiple of 4
        // cuts the last group, which has an element-wise fallback (one per element).
        let fallback = if !aligned || n % 4 != 0 {
            4 * groups
        } else {
            0
        };
        assert_eq!(scalar_x, fallback, "{}", simt.name);
        if aligned {
            assert!(text.contains("array<vec4<f32>>"), "{text}");
        }
        let x = inputs(n + shift, 3, -2.0, 2.0);
        let out = run(
            &simt,
            &text,
            &[f32_bytes(&x), f32_bytes(&vec![f32::NAN; n])],
        );
        let got = to_f32(&out[1]);
        for (i, &g) in got.iter().enumerate() {
            let want = 2.0 * x[i + shift] + i as f32;
            assert_eq!(g, want, "{}: y[{i}]", simt.name);
        }
        let data = [x, vec![f32::NAN; n]];
        let scale = vec![1.0; n];
        check_against_interp(&k, &data, 1, &got, &scale, 0.0, 0.0);
    }
    // The mixed kernel: its broadcast operand stays scalar, results as on the GPU record.
    let n = 1003;
    let k = elementwise(n, 256);
    let (simt, text) = compile(&k, &target);
    assert!(simt.buffers[0].vector && !simt.buffers[1].vector && simt.buffers[2].vector);
    let x = inputs(n, 1, -3.0, 3.0);
    let data = [
        f32_bytes(&x),
        f32_bytes(&[1.5]),
        f32_bytes(&vec![f32::NAN; n]),
    ];
    let got = to_f32(&run(&simt, &text, &data)[2]);
    let (gsimt, gtext) = compile(&k, &Target::wgsl());
    assert!(
        gsimt.buffers.iter().all(|b| !b.vector),
        "GPU record: one element per thread"
    );
    assert_eq!(got, to_f32(&run(&gsimt, &gtext, &data)[2]));
    // i32 buffers move as vectors too, and a kernel with a reduction never does.
    let k = int_kernel(301, 256);
    let (simt, _) = compile(&k, &target);
    assert!(simt.buffers.iter().all(|b| b.vector), "{:?}", simt.buffers);
    let (simt, _) = compile(&reduction(3, 1000, 256, Red::Rms), &target);
    assert!(simt.buffers.iter().all(|b| !b.vector));
}

#[test]
fn integer_elementwise_runs() {
    let target = Target::wgsl();
    let n = 300;
    let k = int_kernel(n, 256);
    let (simt, text) = compile(&k, &target);
    let x: Vec<i32> = (0..n as i32).map(|i| (i * 37) % 101 - 50).collect();
    let out = run(
        &simt,
        &text,
        &[
            i32_bytes(&x),
            i32_bytes(&vec![-999; n]),
            f32_bytes(&vec![f32::NAN; n]),
        ],
    );
    let y = to_i32(&out[1]);
    let z = to_f32(&out[2]);
    for i in 0..n {
        let want = (x[i] * 3 - 7).max(-x[i]) / 2;
        assert_eq!(y[i], want, "y[{i}] for x = {}", x[i]);
        assert_eq!(z[i], want as f32 * 0.5, "z[{i}]");
    }
    // The tile interpreter holds integers as f32 (exact at these magnitudes).
    let mut bufs = vec![
        x.iter().map(|&v| v as f32).collect(),
        vec![0.0; n],
        vec![f32::NAN; n],
    ];
    tessera_compiler::interp::tile::run_kernel(&k, &mut bufs).expect("tile interpreter");
    let yi: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    assert_eq!(bufs[1], yi, "i32 results vs tile interpreter");
    assert_eq!(bufs[2], z, "f32 results vs tile interpreter");
}

#[test]
fn bool_buffers_run() {
    let n = 77;
    let k = bool_kernel(n, 64);
    let (simt, text) = compile(&k, &Target::wgsl());
    assert!(text.contains("var<storage, read_write> b1_y: array<u32>;"));
    assert!(text.contains("var<storage, read> b2_z: array<u32>;"));
    let x: Vec<f32> = (0..n)
        .map(|i| if i % 3 == 0 { 0.0 } else { i as f32 - 40.0 })
        .collect();
    let z: Vec<i32> = (0..n as i32).map(|i| i % 2).collect();
    let out = run(
        &simt,
        &text,
        &[
            f32_bytes(&x),
            i32_bytes(&vec![7; n]),
            i32_bytes(&z),
            f32_bytes(&vec![f32::NAN; n]),
        ],
    );
    let y = to_i32(&out[1]);
    let w = to_f32(&out[3]);
    for i in 0..n {
        assert_eq!(y[i], (x[i] != 0.0) as i32, "y[{i}] for x = {}", x[i]);
        assert_eq!(w[i], 2.0 * z[i] as f32, "w[{i}]");
    }
}

#[test]
fn reduction_loop_runs() {
    let target = Target::wgsl();
    for (rows, cols, block, red) in [
        (5, 1000, 512, Red::Rms),
        (3, 4097, 1024, Red::Rms),
        (4, 7, 256, Red::Rms),
        (6, 127, 64, Red::Max),
        (2, 1000, 256, Red::Max),
        (3, 300, 96, Red::SumPlusOne),
        (2, 1000, 384, Red::SumPlusOne),
        (2, 5, 1, Red::SumPlusOne),
    ] {
        let k = reduction(rows, cols, block, red);
        let (simt, text) = compile(&k, &target);
        assert!(
            text.contains("var<workgroup>"),
            "tree reduction in workgroup memory"
        );
        assert!(text.contains("workgroupBarrier()"));
        assert!(text.contains("for ("), "the tile loop stays a loop");
        // The rank-0 store is done by one thread (under an `if`), once.
        assert_eq!(
            count_stmts(&simt.body, &|s| matches!(s, Stmt::StoreGlobal { .. })),
            1
        );
        assert!(!simt
            .body
            .iter()
            .any(|s| matches!(s, Stmt::StoreGlobal { .. })));
        let x = inputs(rows * cols, 7, -2.0, 1.0);
        let out = run(
            &simt,
            &text,
            &[f32_bytes(&x), f32_bytes(&vec![f32::NAN; rows])],
        );
        let (want, scale) = reduction_ref(&x, rows, cols, block, red);
        // A sum of L terms in f32 (per-thread running sums, then a tree): error <=
        // L * 2^-24 * sum|terms| in the worst case; mean and sqrt add an ulp. Max is exact.
        let lanes = cols.div_ceil(block) * block;
        let rel = match red {
            Red::Max => 0.0,
            _ => (lanes + 2) as f64 * f64::powi(2.0, -24),
        };
        let got = to_f32(&out[1]);
        assert_close(&simt.name, &got, &want, &scale, 0.0, rel);
        let data = [x, vec![f32::NAN; rows]];
        check_against_interp(&k, &data, 1, &got, &scale, 0.0, rel);
    }
}

#[test]
fn matmul_runs() {
    let target = Target::wgsl();
    // Sizes not multiples of the tiles; 64x64x16 uses the full 16 KiB... (check below).
    check_matmul(
        Mm {
            m: 70,
            n: 45,
            k: 37,
            bm: 32,
            bn: 32,
            bk: 16,
            trans_b: false,
            scale_a: false,
        },
        &target,
    );
    check_matmul(
        Mm {
            m: 17,
            n: 129,
            k: 64,
            bm: 64,
            bn: 64,
            bk: 32,
            trans_b: true,
            scale_a: false,
        },
        &target,
    );
    check_matmul(
        Mm {
            m: 1,
            n: 1,
            k: 1,
            bm: 16,
            bn: 16,
            bk: 8,
            trans_b: false,
            scale_a: false,
        },
        &target,
    );
    // `a` staged from registers (not a plain load), odd tile shape.
    check_matmul(
        Mm {
            m: 33,
            n: 20,
            k: 29,
            bm: 24,
            bn: 40,
            bk: 12,
            trans_b: true,
            scale_a: true,
        },
        &target,
    );
}

#[test]
fn matmul_on_cpu_adapters_reads_operands_in_place() {
    // The CPU record (`stage_dot_operands` false, 64 threads): ragged sizes, a transposed
    // `b`, a 1x1x1 problem in a 16x16 tile, and an `a` computed in registers (staged).
    let target = Target::wgsl().for_cpu_adapter();
    assert!(!target.stage_dot_operands);
    for (m, n, k, bm, bn, bk, trans_b, scale_a) in [
        (70, 45, 37, 32, 32, 16, false, false),
        (17, 129, 64, 64, 64, 32, true, false),
        (1, 1, 1, 16, 16, 8, false, false),
        (33, 20, 29, 24, 40, 12, true, true),
    ] {
        check_matmul(
            Mm {
                m,
                n,
                k,
                bm,
                bn,
                bk,
                trans_b,
                scale_a,
            },
            &target,
        );
    }
}

/// How many times one thread executes statements matching `f` (loops with constant
/// bounds multiply their bodies; both branches of an `If` are counted).
fn executed_stmts(body: &[Stmt], f: &dyn Fn(&Stmt) -> bool) -> usize {
    body.iter()
        .map(|s| {
            let inner = match s {
                Stmt::If { then, els, .. } => executed_stmts(then, f) + executed_stmts(els, f),
                Stmt::Loop {
                    start: Operand::Int(a),
                    end: Operand::Int(b),
                    step,
                    body,
                    ..
                } => ((b - a).max(0) as usize).div_ceil(*step as usize) * executed_stmts(body, f),
                Stmt::Loop { .. } => panic!("a loop with bounds that are not constants"),
                _ => 0,
            };
            inner + f(s) as usize
        })
        .sum()
}

#[test]
fn subgroup_rows_load_a_matmul_operand_once_per_dot() {
    // On the CPU record with subgroups of 8 (lavapipe's), a matmul's `Dot` holds its A
    // tile in registers, one element per thread and slot (loaded once per `Dot`), and
    // takes A's column `k` from lane `k % 8` by a shuffle, instead of each thread
    // reading the whole column `k` of its rows (8 times the loads). B is read in place
    // either way, and neither form has a barrier. The numbers are the same (the run and
    // the bit-for-bit comparison with the other form: `tests/tile_ops_wgpu.rs`).
    let p = Mm {
        m: 70,
        n: 45,
        k: 37,
        bm: 32,
        bn: 32,
        bk: 16,
        trans_b: true,
        scale_a: false,
    };
    let mut target = Target::wgsl().for_cpu_adapter();
    let (tm, tn) = (8, 8);
    let k_blocks = p.k.div_ceil(p.bk);
    let a_loads = |simt: &SimtKernel| {
        executed_stmts(&simt.body, &|s| {
            matches!(s, Stmt::LoadGlobal { buffer: 0, .. })
        })
    };
    let b_loads = |simt: &SimtKernel| {
        executed_stmts(&simt.body, &|s| {
            matches!(s, Stmt::LoadGlobal { buffer: 1, .. })
        })
    };
    let without = simt::lower_kernel(&matmul(p), &target).expect("lowers");
    target.subgroup_size = Some(8);
    let with = simt::lower_kernel(&matmul(p), &target).expect("lowers");
    assert_eq!(a_loads(&without), k_blocks * (p.bm / tm) * p.bk);
    assert_eq!(a_loads(&with), k_blocks * (p.bm / tm) * (p.bk / tn));
    assert_eq!(b_loads(&with), b_loads(&without));
    assert_eq!(b_loads(&with), k_blocks * p.bk * (p.bn / tn));
    let shuffles = executed_stmts(&with.body, &|s| matches!(s, Stmt::Shuffle { .. }));
    assert_eq!(shuffles, k_blocks * p.bk * (p.bm / tm));
    for simt in [&with, &without] {
        let barriers = count_stmts(&simt.body, &|s| matches!(s, Stmt::Barrier));
        assert_eq!((barriers, simt.shared.len()), (0, 0), "{}", simt.name);
    }
    // And it runs: ragged sizes, transposed B, against the f64 reference.
    check_matmul(p, &target);
}

#[test]
fn smaller_workgroups_run() {
    // A target allowing only 64 threads: 8x8 thread grid, 64-thread reduction tree.
    let target = Target {
        max_workgroup_size: 64,
        ..Target::wgsl()
    };
    let k = reduction(3, 1000, 200, Red::SumPlusOne);
    let (simt, text) = compile(&k, &target);
    assert_eq!(simt.workgroup_size, 64);
    let x = inputs(3000, 5, -1.0, 1.0);
    let out = run(&simt, &text, &[f32_bytes(&x), f32_bytes(&[f32::NAN; 3])]);
    let (want, scale) = reduction_ref(&x, 3, 1000, 200, Red::SumPlusOne);
    assert_close(
        "reduce@64",
        &to_f32(&out[1]),
        &want,
        &scale,
        0.0,
        1002.0 * 6e-8,
    );
    check_matmul(
        Mm {
            m: 50,
            n: 19,
            k: 23,
            bm: 32,
            bn: 16,
            bk: 8,
            trans_b: false,
            scale_a: true,
        },
        &target,
    );
}

#[test]
fn matmul_loads_are_cooperative() {
    // Plain operand loads go straight to shared memory: no global load of `a` or `b`
    // lands in per-thread micro-tile registers, and each staged element is loaded by
    // exactly one thread: ceil(BM*BK / T) load sites for `a`.
    let p = Mm {
        m: 64,
        n: 64,
        k: 64,
        bm: 64,
        bn: 64,
        bk: 16,
        trans_b: false,
        scale_a: false,
    };
    let simt = simt::lower_kernel(&matmul(p), &Target::wgsl()).expect("lowers");
    let loads_of = |buf: usize| {
        count_stmts(
            &simt.body,
            &|s| matches!(s, Stmt::LoadGlobal { buffer, .. } if *buffer == buf),
        )
    };
    assert_eq!(loads_of(0), 64 * 16 / 256);
    assert_eq!(loads_of(1), 16 * 64 / 256);
    // One 16-KiB-or-less pair of staging arrays.
    let bytes: usize = simt.shared.iter().map(|a| a.len * 4).sum();
    assert_eq!(bytes, (64 * 16 + 16 * 64) * 4);
    let fmas = count_stmts(&simt.body, &|s| matches!(s, Stmt::Fma { .. }));
    assert_eq!(fmas, (64 / 16) * (64 / 16), "a 4x4 micro-tile per thread");
}

#[test]
fn ptx_target_lowers_too() {
    let k = matmul(Mm {
        m: 70,
        n: 45,
        k: 37,
        bm: 64,
        bn: 64,
        bk: 32,
        trans_b: false,
        scale_a: false,
    });
    let simt = simt::lower_kernel(&k, &Target::ptx()).expect("lowers for ptx");
    assert_eq!(simt.workgroup_size, 256);
    let r = simt::lower_kernel(&reduction(3, 100, 128, Red::Max), &Target::ptx());
    assert!(r.is_ok());
}

#[test]
fn shared_memory_limit_is_an_error() {
    // 64x64 tiles with BK = 64: 2 * 64*64*4 = 32 KiB of staging > WebGPU's 16 KiB.
    let k = matmul(Mm {
        m: 64,
        n: 64,
        k: 64,
        bm: 64,
        bn: 64,
        bk: 64,
        trans_b: false,
        scale_a: false,
    });
    match simt::lower_kernel(&k, &Target::wgsl()) {
        Err(CompileError::Limit {
            limit: "shared_memory_bytes",
            needed,
            available: 16384,
            ..
        }) => assert_eq!(needed, 32768),
        other => panic!("expected a shared_memory_bytes limit error, got {other:?}"),
    }
    // The same kernel fits PTX's 48 KiB.
    assert!(simt::lower_kernel(&k, &Target::ptx()).is_ok());
}

#[test]
fn other_limits_are_errors() {
    let k = elementwise(100, 64);
    let t = Target {
        max_workgroup_size: 0,
        ..Target::wgsl()
    };
    assert!(matches!(
        simt::lower_kernel(&k, &t),
        Err(CompileError::Limit {
            limit: "max_workgroup_size",
            ..
        })
    ));
    let t = Target {
        max_storage_buffers: 2,
        ..Target::wgsl()
    };
    assert!(matches!(
        simt::lower_kernel(&k, &t),
        Err(CompileError::Limit {
            limit: "max_storage_buffers",
            needed: 3,
            ..
        })
    ));
    let mut big = elementwise(100, 64);
    big.grid = [70000, 1, 1];
    assert!(matches!(
        simt::lower_kernel(&big, &Target::wgsl()),
        Err(CompileError::Limit {
            limit: "max_grid_dim",
            ..
        })
    ));
}

#[test]
fn unsupported_dtypes_and_reductions_are_errors() {
    for d in [DType::BF16, DType::F16] {
        let mut k = elementwise(10, 64);
        k.params[0].dtype = d;
        match simt::lower_kernel(&k, &Target::wgsl()) {
            Err(CompileError::Unsupported { what, .. }) => {
                assert!(what.contains(d.name()), "{what} names {d}")
            }
            other => panic!("expected Unsupported for {d}, got {other:?}"),
        }
    }
    // Reduce of a rank-2 tile along an axis it does not have (axes 0 and 1 are lowered:
    // compiler/tests/tile_ops.rs).
    let mut b = TileBuilder::new();
    let z = b.index(0);
    let l = b.index(4);
    let x = b.load(access(0, z, &[4, 1], &[l, l], &[4, 4]), DType::F32, 0.0);
    let r = b.reduce(ReduceOp::Sum, x, 2);
    b.store(access(1, z, &[4, 1], &[l, l], &[4, 4]), r);
    let k = b.finish(
        "rowsum".into(),
        vec![
            param("x", DType::F32, 16, Access::Read),
            param("y", DType::F32, 16, Access::Write),
        ],
        [1, 1, 1],
    );
    assert!(matches!(
        simt::lower_kernel(&k, &Target::wgsl()),
        Err(CompileError::Unsupported { .. })
    ));
}

#[test]
fn invalid_wgsl_is_a_validation_error() {
    match wgsl::validate("fn broken( {", "broken", &Target::wgsl()) {
        Err(CompileError::Validation {
            kernel, message, ..
        }) => {
            assert_eq!(kernel, "broken");
            assert!(!message.is_empty());
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    // Type errors are caught by the validator too (not only parse errors).
    let src = "@compute @workgroup_size(1) fn k() { var a: f32; a = 1i; }";
    assert!(matches!(
        wgsl::validate(src, "k", &Target::wgsl()),
        Err(CompileError::Validation { .. })
    ));
}

#[test]
fn emit_plan_writes_one_module_per_kernel() {
    let plan = Plan {
        kernels: vec![
            elementwise(1000, 512),
            reduction(5, 1000, 512, Red::Rms),
            matmul(Mm {
                m: 70,
                n: 45,
                k: 37,
                bm: 32,
                bn: 32,
                bk: 16,
                trans_b: false,
                scale_a: false,
            }),
        ],
        buffers: vec![],
        launches: vec![],
        storage: vec![],
        outputs: vec![],
    };
    let art = wgsl::emit_plan(&plan, &Target::wgsl()).expect("emits");
    assert_eq!(art.files.len(), 3);
    assert_eq!(art.kernels.len(), 3);
    for (k, (f, info)) in plan.kernels.iter().zip(art.files.iter().zip(&art.kernels)) {
        assert_eq!(f.name, format!("{}.wgsl", k.name));
        assert_eq!(info.file, f.name);
        assert_eq!(info.name, k.name);
        assert_eq!(info.grid, k.grid);
        assert_eq!(info.block, 256);
        assert_eq!(
            info.params,
            k.params.iter().map(|p| p.name.clone()).collect::<Vec<_>>()
        );
        assert!(f.contents.contains(&format!("fn {}(", k.name)));
    }
    // Through the backend dispatcher as well.
    let art2 = tessera_compiler::backend::emit(&plan, &Target::wgsl()).expect("emits");
    assert_eq!(art, art2);
}

#[test]
fn scheduled_graphs_emit_valid_wgsl() {
    use tessera_compiler::graph::Graph;
    // The demo MLP block: matmul + bias + tanh, then a row sum; plus a permuted
    // elementwise chain and a mean.
    let mut g = Graph::new();
    let x = g.input("x", &[17, 37], DType::F32).unwrap();
    let w = g.param("w", &[37, 45], DType::F32).unwrap();
    let b = g.param("b", &[45], DType::F32).unwrap();
    let h = g.matmul(x, w).unwrap();
    let h = g.add(h, b).unwrap();
    let h = g.tanh(h).unwrap();
    let y = g.sum(h, 1, false).unwrap();
    g.set_name(y, "y").unwrap();
    g.mark_output(y).unwrap();
    let xt = g.permute(x, &[1, 0]).unwrap();
    let e = g.exp(xt).unwrap();
    let m = g.mean(e, 0, false).unwrap();
    g.set_name(m, "m").unwrap();
    g.mark_output(m).unwrap();
    let (plan, art) = tessera_compiler::compile_and_emit(&g, &Target::wgsl())
        .unwrap_or_else(|e| panic!("compile_and_emit: {e}"));
    assert_eq!(art.files.len(), plan.kernels.len());
    for (f, k) in art.files.iter().zip(&plan.kernels) {
        assert_eq!(f.name, format!("{}.wgsl", k.name));
        // Already validated by emit; validate again to make the check explicit here.
        wgsl::validate(&f.contents, &k.name, &Target::wgsl()).expect("valid WGSL");
    }
    let matmul = art
        .files
        .iter()
        .find(|f| f.contents.contains("fma("))
        .expect("a matmul kernel");
    assert!(matmul.contents.contains("var<workgroup>"));
    assert!(matmul.contents.contains("workgroupBarrier()"));
}

#[test]
fn subgroup_rows_make_attention_barrier_free() {
    use tessera_compiler::graph::Graph;
    // The CPU record with subgroups of 8 (lavapipe's; `WgpuDevice::wgsl_target` sets it
    // after probing the device): 64 threads as 8 x 8, so a thread-grid row is one
    // subgroup. Attention forward and backward (head dim 40: ragged tiles, causal, T =
    // 45): every kernel's row reductions and register `Dot` operands (`P`, `dS`) move
    // by `subgroupShuffle`, and none has a barrier or workgroup memory.
    let mut target = Target::wgsl().for_cpu_adapter();
    target.subgroup_size = Some(8);
    let mut g = Graph::new();
    let s = [2, 3, 45, 40];
    let q = g.param("q", &s, DType::F32).unwrap();
    let k = g.param("k", &s, DType::F32).unwrap();
    let v = g.param("v", &s, DType::F32).unwrap();
    let w = g.input("w", &s, DType::F32).unwrap();
    let out = g.attention(q, k, v, None, true, None).unwrap();
    let [dq, dk, dv] = g
        .attention_backward(q, k, v, out, w, None, true, 40f64.powf(-0.5), [true; 3])
        .unwrap();
    for (i, x) in [Some(out), dq, dk, dv].into_iter().enumerate() {
        let x = x.unwrap();
        g.set_name(x, &format!("o{i}")).unwrap();
        g.mark_output(x).unwrap();
    }
    let (plan, art) = tessera_compiler::compile_and_emit(&g, &target)
        .unwrap_or_else(|e| panic!("compile_and_emit: {e}"));
    let mut shuffled = Vec::new();
    for (f, k) in art.files.iter().zip(&plan.kernels) {
        if !k.name.starts_with("attention") {
            continue;
        }
        assert!(
            !f.contents.contains("workgroupBarrier()") && !f.contents.contains("var<workgroup>"),
            "{}: a barrier or workgroup memory with subgroup rows",
            k.name
        );
        if f.contents.contains("subgroupShuffle(") {
            shuffled.push(k.name.clone());
        }
    }
    for want in [
        "attention_fwd",
        "attention_bwd_stats",
        "attention_bwd_dq",
        "attention_bwd_dk",
        "attention_bwd_dv",
    ] {
        assert!(
            shuffled.iter().any(|n| n.starts_with(want)),
            "no `{want}` kernel shuffles; shuffling kernels: {shuffled:?}"
        );
    }
    // Without subgroups the same record stages attention's `P` in workgroup memory.
    target.subgroup_size = None;
    let (_, art) = tessera_compiler::compile_and_emit(&g, &target).unwrap();
    assert!(art
        .files
        .iter()
        .any(|f| f.name.starts_with("attention_fwd") && f.contents.contains("workgroupBarrier()")));
    assert!(art.files.iter().all(|f| !f.contents.contains("subgroup")));
}

#[test]
fn subgroups_are_wgsl_only() {
    let mut target = Target::ptx();
    target.subgroup_size = Some(32);
    let k = reduction(3, 100, 64, Red::Max);
    match simt::lower::lower_kernel(&k, &target) {
        Err(CompileError::Unsupported { what, .. }) => {
            assert!(what.contains("subgroup"), "{what}")
        }
        other => panic!("want Unsupported, got {other:?}"),
    }
}

#[test]
fn subgroup_rows_reduce_several_outputs_per_workgroup_without_barriers() {
    use tessera_compiler::graph::Graph;
    // With subgroup rows, a reduction computes 8 outputs per workgroup (one per
    // thread-grid row) as an axis-1 reduction of `[8, ch]` tiles: no barrier. Sums over
    // the last axis (pure and with a fused body), a mean over a middle axis (strided
    // rows) with a fused epilogue, and a max over the first axis. The mean's outputs do
    // not walk its input with one stride (kept axes [5, 300] at strides [2100, 1]), so
    // it keeps one output per workgroup, reduced through workgroup memory.
    let mut target = Target::wgsl().for_cpu_adapter();
    target.subgroup_size = Some(8);
    let mut g = Graph::new();
    let x = g.input("x", &[5, 7, 300], DType::F32).unwrap();
    let y = g.input("y", &[5, 7, 300], DType::F32).unwrap();
    let s = g.sum(x, 2, false).unwrap();
    let xy = g.mul(x, y).unwrap();
    let t = g.sum(xy, 2, false).unwrap();
    let m = g.mean(x, 1, false).unwrap();
    let m = g.exp(m).unwrap();
    let mx = g.reduce_max(y, 0, false).unwrap();
    for (i, v) in [s, t, m, mx].into_iter().enumerate() {
        g.set_name(v, &format!("r{i}")).unwrap();
        g.mark_output(v).unwrap();
    }
    let (plan, art) = tessera_compiler::compile_and_emit(&g, &target)
        .unwrap_or_else(|e| panic!("compile_and_emit: {e}"));
    let mut reductions = 0;
    for (f, k) in art.files.iter().zip(&plan.kernels) {
        if !k.name.starts_with("reduce") {
            continue;
        }
        reductions += 1;
        if k.name.starts_with("reduce_mean") {
            assert_eq!(k.grid, [1500, 1, 1], "{}: one output per workgroup", k.name);
            assert!(f.contents.contains("workgroupBarrier()"));
            continue;
        }
        assert!(
            !f.contents.contains("workgroupBarrier()") && f.contents.contains("subgroupShuffle("),
            "{}: want a shuffled reduction without barriers:\n{}",
            k.name,
            f.contents
        );
        let outputs: u32 = if k.name.starts_with("reduce_max") {
            2100
        } else {
            35
        };
        assert_eq!(
            k.grid[0],
            outputs.div_ceil(8),
            "{}: 8 outputs per workgroup",
            k.name
        );
    }
    assert_eq!(
        reductions,
        4,
        "kernels: {:?}",
        plan.kernels.iter().map(|k| &k.name).collect::<Vec<_>>()
    );
}

#[test]
fn subgroup_rows_run_row_kernels_several_rows_per_workgroup() {
    use tessera_compiler::graph::Graph;
    // With subgroup rows, softmax, log-softmax, layer norm (affine) and RMS norm take one
    // row per thread-grid row (8 per workgroup): statistics by shuffles, no barrier, for
    // kept rows (n = 40), streamed rows (n = 700 > 256: a loop, a tail, a masked store
    // pass) and 21 rows (the last workgroup's rows 5..8 masked).
    let mut target = Target::wgsl().for_cpu_adapter();
    target.subgroup_size = Some(8);
    for n in [40, 700] {
        let mut g = Graph::new();
        let x = g.input("x", &[3, 7, n], DType::F32).unwrap();
        let gamma = g.param("gamma", &[n], DType::F32).unwrap();
        let beta = g.param("beta", &[n], DType::F32).unwrap();
        let outs = [
            g.softmax(x).unwrap(),
            g.log_softmax(x).unwrap(),
            g.layer_norm(x, Some((gamma, beta)), 1e-5).unwrap(),
            g.rms_norm(x, Some(gamma), 1e-6).unwrap(),
        ];
        for (i, o) in outs.into_iter().enumerate() {
            g.set_name(o, &format!("o{i}")).unwrap();
            g.mark_output(o).unwrap();
        }
        let (plan, art) = tessera_compiler::compile_and_emit(&g, &target)
            .unwrap_or_else(|e| panic!("compile_and_emit: {e}"));
        assert_eq!(plan.kernels.len(), 4);
        for (f, k) in art.files.iter().zip(&plan.kernels) {
            assert_eq!(k.grid, [3, 1, 1], "{}: 21 rows, 8 per workgroup", k.name);
            assert!(
                !f.contents.contains("workgroupBarrier()")
                    && f.contents.contains("subgroupShuffle("),
                "{} (n = {n}): want shuffled statistics without barriers",
                k.name
            );
        }
    }
}
