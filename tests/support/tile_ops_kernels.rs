//! Hand-built tile kernels exercising `iota`, `expand` (both axes) and the reduction of
//! rank-2 tiles along either axis, shared by `compiler/tests/tile_ops.rs` (interpreter
//! against values computed in the test, WGSL validated by naga, PTX assembled by ptxas)
//! and `tests/tile_ops_wgpu.rs` (run on the wgpu device, compared with the tile
//! interpreter). Included in both with `#[path]`.
//!
//! Every kernel reads buffers with `Access::Read` and writes buffers with
//! `Access::Write`; written buffers are covered completely by the kernel's stores.

// Each including test crate uses a different subset of these helpers.
#![allow(dead_code)]

use super::tc::tile::{
    Access, BinaryOp, BlockAccess, BufferParam, CompareOp, IndexOp, ReduceOp, TileBuilder,
    TileKernel, UnaryOp, ValueId,
};
use super::tc::DType;

/// A block access.
pub fn access(
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

/// A buffer parameter.
pub fn param(name: &str, dtype: DType, len: usize, access: Access) -> BufferParam {
    BufferParam {
        name: name.to_string(),
        dtype,
        len,
        access,
    }
}

/// Deterministic inputs in [lo, hi) (splitmix64).
pub fn inputs(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
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

/// Identity of a reduction, used as the `other` of masked loads feeding it.
pub fn identity(op: ReduceOp) -> f64 {
    match op {
        ReduceOp::Max => f64::NEG_INFINITY,
        _ => 0.0,
    }
}

fn op_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "sum",
        ReduceOp::Max => "max",
        ReduceOp::Mean => "mean",
    }
}

/// Row and column statistics of `x [m, n]` (row-major), one `[bm, bn]` tile per program
/// (`bn >= n`, programs over row blocks):
/// - `rows[i] = op_j x[i, j]` (reduce along axis 1);
/// - `cols[p, j] = op_{i in block p} x[i, j]` (reduce along axis 0, per row block);
/// - `total[p] = sum_i rows_i` over the block's valid rows (a rank-1 reduce of the
///   row-layout result; padded rows are excluded by a select on a row iota).
///
/// Buffers: `x` (read), `rows [m]`, `cols [gm * n]`, `total [gm]` (written).
pub fn row_col_stats(m: usize, n: usize, bm: usize, bn: usize, op: ReduceOp) -> TileKernel {
    assert!(bn >= n, "one column tile");
    let gm = m.div_ceil(bm);
    let mut b = TileBuilder::new();
    let p = b.program_id(0);
    let bm_c = b.index(bm as i64);
    let row0 = b.iop(IndexOp::Mul, p, bm_c);
    let m_c = b.index(m as i64);
    let n_c = b.index(n as i64);
    let lim_r = b.iop(IndexOp::Sub, m_c, row0);
    let base = b.iop(IndexOp::Mul, row0, n_c);
    let x = b.load(
        access(0, base, &[n as i64, 1], &[lim_r, n_c], &[bm, bn]),
        DType::F32,
        identity(op),
    );
    let rows = b.reduce(op, x, 1);
    b.store(access(1, row0, &[1], &[lim_r], &[bm]), rows);
    let cols = b.reduce(op, x, 0);
    let cbase = b.iop(IndexOp::Mul, p, n_c);
    b.store(access(2, cbase, &[1], &[n_c], &[bn]), cols);
    let ri = b.iota(&[bm], 0);
    let valid = b.compare(CompareOp::Lt, ri, lim_r);
    let zero = b.float(0.0, DType::F32);
    let rows_v = b.select(valid, rows, zero);
    let total = b.reduce(ReduceOp::Sum, rows_v, 0);
    b.store(access(3, p, &[], &[], &[]), total);
    b.finish(
        format!("stats_{}_{m}x{n}_b{bm}x{bn}", op_name(op)),
        vec![
            param("x", DType::F32, m * n, Access::Read),
            param("rows", DType::F32, m, Access::Write),
            param("cols", DType::F32, gm * n, Access::Write),
            param("total", DType::F32, gm, Access::Write),
        ],
        [gm as u32, 1, 1],
    )
}

/// Softmax of `x [m, n]` along `axis` (1: over each row, 0: over each column), one
/// `[bm, bn]` tile per program covering the whole reduced axis (`bn >= n` for axis 1,
/// `bm >= m` for axis 0): `y = exp(x - expand(max)) / expand(sum)`. Masked elements load
/// `-inf` (so `exp` gives 0 there). Buffers: `x` (read), `y [m, n]` (written).
pub fn softmax(m: usize, n: usize, bm: usize, bn: usize, axis: usize) -> TileKernel {
    let (gm, gn) = if axis == 1 {
        assert!(bn >= n);
        (m.div_ceil(bm), 1)
    } else {
        assert!(bm >= m);
        (1, n.div_ceil(bn))
    };
    let mut b = TileBuilder::new();
    let pr = b.program_id(0);
    let pc = b.program_id(1);
    let bm_c = b.index(bm as i64);
    let bn_c = b.index(bn as i64);
    let row0 = b.iop(IndexOp::Mul, pr, bm_c);
    let col0 = b.iop(IndexOp::Mul, pc, bn_c);
    let m_c = b.index(m as i64);
    let n_c = b.index(n as i64);
    let lim_r = b.iop(IndexOp::Sub, m_c, row0);
    let lim_c = b.iop(IndexOp::Sub, n_c, col0);
    let rb = b.iop(IndexOp::Mul, row0, n_c);
    let base = b.iop(IndexOp::Add, rb, col0);
    let acc = access(0, base, &[n as i64, 1], &[lim_r, lim_c], &[bm, bn]);
    let x = b.load(acc.clone(), DType::F32, f64::NEG_INFINITY);
    let size = if axis == 1 { bn } else { bm };
    let mx = b.reduce(ReduceOp::Max, x, axis);
    let mxe = b.expand(mx, axis, size);
    let d = b.binary(BinaryOp::Sub, x, mxe);
    let e = b.unary(UnaryOp::Exp, d);
    let s = b.reduce(ReduceOp::Sum, e, axis);
    let se = b.expand(s, axis, size);
    let y = b.binary(BinaryOp::Div, e, se);
    b.store(
        access(1, base, &[n as i64, 1], &[lim_r, lim_c], &[bm, bn]),
        y,
    );
    b.finish(
        format!("softmax_axis{axis}_{m}x{n}_b{bm}x{bn}"),
        vec![
            param("x", DType::F32, m * n, Access::Read),
            param("y", DType::F32, m * n, Access::Write),
        ],
        [gm as u32, gn as u32, 1],
    )
}

/// Position tiles: `a[i, j] = iota0 * 1000 + iota1` from rank-2 iotas, and
/// `b[i, j] = expand(iota[bm], 1) * 1000 + expand(iota[bn], 0)` from rank-1 iotas
/// expanded along both axes (i32), plus the float row sums of `b`
/// `c[i] = sum_j b[i, j]` (a rank-2 reduce of a converted tile). Buffers: `a`, `b`
/// `[bm, bn]` i32, `c [bm]` f32 (all written), one program.
pub fn iota_expand(bm: usize, bn: usize) -> TileKernel {
    let mut b = TileBuilder::new();
    let zero = b.index(0);
    let bm_c = b.index(bm as i64);
    let bn_c = b.index(bn as i64);
    let k1000 = b.index(1000);
    let i0 = b.iota(&[bm, bn], 0);
    let i1 = b.iota(&[bm, bn], 1);
    let hi = b.binary(BinaryOp::Mul, i0, k1000);
    let a = b.binary(BinaryOp::Add, hi, i1);
    b.store(
        access(0, zero, &[bn as i64, 1], &[bm_c, bn_c], &[bm, bn]),
        a,
    );
    let r = b.iota(&[bm], 0);
    let c = b.iota(&[bn], 0);
    let re = b.expand(r, 1, bn);
    let ce = b.expand(c, 0, bm);
    let hi2 = b.binary(BinaryOp::Mul, re, k1000);
    let v = b.binary(BinaryOp::Add, hi2, ce);
    b.store(
        access(1, zero, &[bn as i64, 1], &[bm_c, bn_c], &[bm, bn]),
        v,
    );
    let vf = b.cast(v, DType::F32);
    let rs = b.reduce(ReduceOp::Sum, vf, 1);
    b.store(access(2, zero, &[1], &[bm_c], &[bm]), rs);
    b.finish(
        format!("iota_expand_{bm}x{bn}"),
        vec![
            param("a", DType::I32, bm * bn, Access::Write),
            param("b", DType::I32, bm * bn, Access::Write),
            param("c", DType::F32, bm, Access::Write),
        ],
        [1, 1, 1],
    )
}

/// Running row maxima and row sums over column blocks: `mx` starts from a loaded
/// vector `init [m]` (linear layout) and `sm` from a splat, both carried through a loop
/// over `[bm, bn]` column blocks of `x [m, n]` (`mx = max(mx, rowmax(block))`,
/// `sm = sm + rowsum(block)`), then `out[i] = mx[i] + sm[i] / n`. The carried maximum
/// meets a linear-layout initial value and a row-layout update, so it is moved between
/// layouts every iteration. Buffers: `x`, `init` (read), `out [m]` (written).
pub fn row_loop(m: usize, n: usize, bm: usize, bn: usize) -> TileKernel {
    let gm = m.div_ceil(bm);
    let mut b = TileBuilder::new();
    let p = b.program_id(0);
    let bm_c = b.index(bm as i64);
    let row0 = b.iop(IndexOp::Mul, p, bm_c);
    let m_c = b.index(m as i64);
    let n_c = b.index(n as i64);
    let lim_r = b.iop(IndexOp::Sub, m_c, row0);
    let init = b.load(access(1, row0, &[1], &[lim_r], &[bm]), DType::F32, 0.0);
    let z = b.float(0.0, DType::F32);
    let sm0 = b.splat(z, &[bm]);
    let zero = b.index(0);
    let args = b.begin_for(&[init, sm0]);
    let (j, mx, sm) = (args[0], args[1], args[2]);
    let lim_c = b.iop(IndexOp::Sub, n_c, j);
    let rb = b.iop(IndexOp::Mul, row0, n_c);
    let base = b.iop(IndexOp::Add, rb, j);
    let x = b.load(
        access(0, base, &[n as i64, 1], &[lim_r, lim_c], &[bm, bn]),
        DType::F32,
        f64::NEG_INFINITY,
    );
    let bmx = b.reduce(ReduceOp::Max, x, 1);
    let mx2 = b.binary(BinaryOp::Max, mx, bmx);
    let x0 = b.load(
        access(0, base, &[n as i64, 1], &[lim_r, lim_c], &[bm, bn]),
        DType::F32,
        0.0,
    );
    let bsm = b.reduce(ReduceOp::Sum, x0, 1);
    let sm2 = b.binary(BinaryOp::Add, sm, bsm);
    let res = b.end_for(zero, n_c, bn as i64, &[init, sm0], &[mx2, sm2]);
    let inv = b.float(1.0 / n as f64, DType::F32);
    let mean = b.binary(BinaryOp::Mul, res[1], inv);
    let out = b.binary(BinaryOp::Add, res[0], mean);
    b.store(access(2, row0, &[1], &[lim_r], &[bm]), out);
    b.finish(
        format!("row_loop_{m}x{n}_b{bm}x{bn}"),
        vec![
            param("x", DType::F32, m * n, Access::Read),
            param("init", DType::F32, m, Access::Read),
            param("out", DType::F32, m, Access::Write),
        ],
        [gm as u32, 1, 1],
    )
}

/// Flash-attention forward for one head: `o = softmax(q k^T / sqrt(d) [+ causal mask]) v`
/// with `q [m, d]`, `k, v [n, d]` row-major. One program per `bm` query rows; a loop
/// over `bn` key blocks with the online softmax (running row max `mi` and row sum `li`
/// in the row layout, accumulator `[bm, d]` rescaled by `expand(alpha, 1, d)`),
/// `S = dot(q, k^T)` with `k^T` a strided load, and `P . V` with `P` a computed tile.
/// Key columns beyond `n` (and, causal, beyond the query row) are set to `-inf` via a
/// select on iotas. Buffers: `q`, `k`, `v` (read), `o [m, d]` (written).
pub fn attention(m: usize, n: usize, d: usize, bm: usize, bn: usize, causal: bool) -> TileKernel {
    let gm = m.div_ceil(bm);
    let mut b = TileBuilder::new();
    let p = b.program_id(0);
    let bm_c = b.index(bm as i64);
    let row0 = b.iop(IndexOp::Mul, p, bm_c);
    let m_c = b.index(m as i64);
    let n_c = b.index(n as i64);
    let d_c = b.index(d as i64);
    let lim_r = b.iop(IndexOp::Sub, m_c, row0);
    let qbase = b.iop(IndexOp::Mul, row0, d_c);
    let q = b.load(
        access(0, qbase, &[d as i64, 1], &[lim_r, d_c], &[bm, d]),
        DType::F32,
        0.0,
    );
    let ninf = b.float(f64::NEG_INFINITY, DType::F32);
    let zf = b.float(0.0, DType::F32);
    let mi0 = b.splat(ninf, &[bm]);
    let li0 = b.splat(zf, &[bm]);
    let acc0 = b.splat(zf, &[bm, d]);
    let zero = b.index(0);
    let init = [mi0, li0, acc0];
    let args = b.begin_for(&init);
    let (j, mi, li, acc) = (args[0], args[1], args[2], args[3]);
    let lim_c = b.iop(IndexOp::Sub, n_c, j);
    let kbase = b.iop(IndexOp::Mul, j, d_c);
    let kt = b.load(
        access(1, kbase, &[1, d as i64], &[d_c, lim_c], &[d, bn]),
        DType::F32,
        0.0,
    );
    let zs = b.splat(zf, &[bm, bn]);
    let s0 = b.dot(q, kt, zs);
    let scale = b.float(1.0 / (d as f64).sqrt(), DType::F32);
    let s1 = b.binary(BinaryOp::Mul, s0, scale);
    let ci = b.iota(&[bm, bn], 1);
    let col = b.binary(BinaryOp::Add, ci, j);
    let inside = b.compare(CompareOp::Lt, col, n_c);
    let mut s = b.select(inside, s1, ninf);
    if causal {
        let ri = b.iota(&[bm, bn], 0);
        let row = b.binary(BinaryOp::Add, ri, row0);
        let seen = b.compare(CompareOp::Le, col, row);
        s = b.select(seen, s, ninf);
    }
    let bmx = b.reduce(ReduceOp::Max, s, 1);
    let mnew = b.binary(BinaryOp::Max, mi, bmx);
    let dm = b.binary(BinaryOp::Sub, mi, mnew);
    let alpha = b.unary(UnaryOp::Exp, dm);
    let me = b.expand(mnew, 1, bn);
    let sd = b.binary(BinaryOp::Sub, s, me);
    let pm = b.unary(UnaryOp::Exp, sd);
    let ps = b.reduce(ReduceOp::Sum, pm, 1);
    let la = b.binary(BinaryOp::Mul, li, alpha);
    let lnew = b.binary(BinaryOp::Add, la, ps);
    let vt = b.load(
        access(2, kbase, &[d as i64, 1], &[lim_c, d_c], &[bn, d]),
        DType::F32,
        0.0,
    );
    let ae = b.expand(alpha, 1, d);
    let accs = b.binary(BinaryOp::Mul, acc, ae);
    let accn = b.dot(pm, vt, accs);
    let res = b.end_for(zero, n_c, bn as i64, &init, &[mnew, lnew, accn]);
    let le = b.expand(res[1], 1, d);
    let o = b.binary(BinaryOp::Div, res[2], le);
    b.store(access(3, qbase, &[d as i64, 1], &[lim_r, d_c], &[bm, d]), o);
    b.finish(
        format!(
            "attention_{}{m}x{n}_d{d}_b{bm}x{bn}",
            if causal { "causal_" } else { "" }
        ),
        vec![
            param("q", DType::F32, m * d, Access::Read),
            param("k", DType::F32, n * d, Access::Read),
            param("v", DType::F32, n * d, Access::Read),
            param("o", DType::F32, m * d, Access::Write),
        ],
        [gm as u32, 1, 1],
    )
}

/// Pairwise differences of one vector, which is needed in both the row and the column
/// layout (so it is moved between layouts), with a bool vector expanded along rows:
/// with `a = x` zero-padded to `bn >= n` elements,
/// - `out[i, j] = a_i > 0 ? a_i - a_j : a_j` (`[n, n]`);
/// - `s[i] = sum_j a_i a_j` (a row reduction stored straight from the row layout);
/// - `colmax[j] = max_i out[i, j]` over the whole `[bn, bn]` tile (padded rows
///   included: there `a_i = 0`), stored from the column layout;
/// - `total = sum_i s_i` (a rank-1 reduce of a row-layout value).
///
/// Buffers: `x [n]` (read), `out [n, n]`, `s [n]`, `colmax [n]`, `total [1]` (written).
pub fn pairwise(n: usize, bn: usize) -> TileKernel {
    assert!(bn >= n);
    let mut b = TileBuilder::new();
    let zero = b.index(0);
    let n_c = b.index(n as i64);
    let a = b.load(access(0, zero, &[1], &[n_c], &[bn]), DType::F32, 0.0);
    let r = b.expand(a, 1, bn);
    let c = b.expand(a, 0, bn);
    let zf = b.float(0.0, DType::F32);
    let pos = b.compare(CompareOp::Gt, a, zf);
    let pe = b.expand(pos, 1, bn);
    let diff = b.binary(BinaryOp::Sub, r, c);
    let out = b.select(pe, diff, c);
    b.store(access(1, zero, &[n as i64, 1], &[n_c, n_c], &[bn, bn]), out);
    let prod = b.binary(BinaryOp::Mul, r, c);
    let srow = b.reduce(ReduceOp::Sum, prod, 1);
    b.store(access(2, zero, &[1], &[n_c], &[bn]), srow);
    let cm = b.reduce(ReduceOp::Max, out, 0);
    b.store(access(3, zero, &[1], &[n_c], &[bn]), cm);
    let total = b.reduce(ReduceOp::Sum, srow, 0);
    b.store(access(4, zero, &[], &[], &[]), total);
    b.finish(
        format!("pairwise_{n}_b{bn}"),
        vec![
            param("x", DType::F32, n, Access::Read),
            param("out", DType::F32, n * n, Access::Write),
            param("s", DType::F32, n, Access::Write),
            param("colmax", DType::F32, n, Access::Write),
            param("total", DType::F32, 1, Access::Write),
        ],
        [1, 1, 1],
    )
}

/// One kernel of the suite with its parameters.
#[derive(Clone, Copy, Debug)]
pub enum Case {
    /// [`row_col_stats`]`(m, n, bm, bn, op)`.
    Stats(usize, usize, usize, usize, ReduceOp),
    /// [`softmax`]`(m, n, bm, bn, axis)`.
    Softmax(usize, usize, usize, usize, usize),
    /// [`iota_expand`]`(bm, bn)`.
    Iota(usize, usize),
    /// [`row_loop`]`(m, n, bm, bn)`.
    RowLoop(usize, usize, usize, usize),
    /// [`attention`]`(m, n, d, bm, bn, causal)`.
    Attention(usize, usize, usize, usize, usize, bool),
    /// [`pairwise`]`(n, bn)`.
    Pairwise(usize, usize),
}

/// Every case of the suite, at awkward shapes (non-multiples of the tile and of the
/// thread grid, masked loads, head dims 20 / 32 / 64 / 80).
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    for op in [ReduceOp::Sum, ReduceOp::Max] {
        v.push(Case::Stats(7, 33, 8, 64, op));
        v.push(Case::Stats(16, 80, 16, 80, op));
        v.push(Case::Stats(64, 64, 64, 64, op));
        v.push(Case::Stats(100, 5, 32, 8, op));
    }
    v.push(Case::Softmax(7, 33, 8, 64, 1));
    v.push(Case::Softmax(100, 80, 16, 80, 1));
    v.push(Case::Softmax(7, 33, 8, 16, 0));
    v.push(Case::Softmax(30, 100, 32, 32, 0));
    v.push(Case::Iota(7, 33));
    v.push(Case::Iota(16, 80));
    v.push(Case::Iota(64, 64));
    v.push(Case::RowLoop(7, 100, 8, 32));
    v.push(Case::RowLoop(40, 33, 16, 16));
    v.push(Case::Pairwise(7, 8));
    v.push(Case::Pairwise(33, 40));
    v.push(Case::Pairwise(64, 64));
    v.push(Case::Attention(7, 33, 32, 16, 32, false));
    v.push(Case::Attention(100, 100, 64, 16, 32, false));
    v.push(Case::Attention(33, 33, 80, 16, 16, true));
    v.push(Case::Attention(1, 7, 64, 16, 32, false));
    v.push(Case::Attention(64, 64, 64, 32, 32, true));
    // More query rows than keys per block (lavapipe's 128 x 32 shape, scaled to fit the
    // GPU records' shared memory and registers), with partial blocks.
    v.push(Case::Attention(100, 100, 32, 64, 16, true));
    v.push(Case::Attention(70, 50, 16, 64, 8, false));
    // A head dim that is no multiple of the thread grid's 8 columns: the last lanes of
    // `Q`'s register columns are padding.
    v.push(Case::Attention(9, 21, 20, 16, 16, true));
    v
}

/// `u = 2^-24`, the f32 unit roundoff.
pub const U: f64 = 1.0 / 16_777_216.0;

/// What one written buffer must hold: the f64 value and the tolerance of each element.
pub struct Expect {
    /// Parameter index of the buffer.
    pub buffer: usize,
    /// Values computed in f64 from the (f32) inputs.
    pub want: Vec<f64>,
    /// Allowed absolute error per element.
    pub tol: Vec<f64>,
}

fn combine(op: ReduceOp, it: impl Iterator<Item = f64>) -> f64 {
    match op {
        ReduceOp::Max => it.fold(f64::NEG_INFINITY, f64::max),
        _ => it.sum(),
    }
}

/// Tolerance of an f32 reduction of the given terms: exact for max, and for a sum in
/// any order `(n-1) u sum|x|` (Higham 4.3, first order).
fn red_tol(op: ReduceOp, terms: &[f64]) -> f64 {
    match op {
        ReduceOp::Max => 0.0,
        _ => terms.len().saturating_sub(1) as f64 * U * terms.iter().map(|v| v.abs()).sum::<f64>(),
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

impl Case {
    /// The kernel.
    pub fn kernel(&self) -> TileKernel {
        match *self {
            Case::Stats(m, n, bm, bn, op) => row_col_stats(m, n, bm, bn, op),
            Case::Softmax(m, n, bm, bn, axis) => softmax(m, n, bm, bn, axis),
            Case::Iota(bm, bn) => iota_expand(bm, bn),
            Case::RowLoop(m, n, bm, bn) => row_loop(m, n, bm, bn),
            Case::Attention(m, n, d, bm, bn, causal) => attention(m, n, d, bm, bn, causal),
            Case::Pairwise(n, bn) => pairwise(n, bn),
        }
    }

    /// Inputs: every read buffer gets deterministic values in [-1, 1), written buffers
    /// start as NaN (so an element nobody writes fails the comparison).
    pub fn buffers(&self, k: &TileKernel, seed: u64) -> Vec<Vec<f32>> {
        k.params
            .iter()
            .enumerate()
            .map(|(i, p)| match p.access {
                Access::Read => inputs(p.len, seed + i as u64, -1.0, 1.0),
                _ => vec![f32::NAN; p.len],
            })
            .collect()
    }

    /// The expected contents of the written buffers, from the inputs in `bufs`, with
    /// tolerances derived for an f32 computation (in any summation order).
    pub fn expected(&self, bufs: &[Vec<f32>]) -> Vec<Expect> {
        match *self {
            Case::Stats(m, n, bm, _, op) => {
                let x = f64s(&bufs[0]);
                let gm = m.div_ceil(bm);
                let (mut rw, mut rt) = (vec![], vec![]);
                for i in 0..m {
                    let row = &x[i * n..(i + 1) * n];
                    rw.push(combine(op, row.iter().copied()));
                    rt.push(red_tol(op, row));
                }
                let (mut cw, mut ct, mut tw, mut tt) = (vec![], vec![], vec![], vec![]);
                for p in 0..gm {
                    let rows: Vec<usize> = (p * bm..((p + 1) * bm).min(m)).collect();
                    for j in 0..n {
                        let col: Vec<f64> = rows.iter().map(|&i| x[i * n + j]).collect();
                        cw.push(combine(op, col.iter().copied()));
                        ct.push(red_tol(op, &col));
                    }
                    // The block total sums the f32 row results: their errors, the
                    // outer sum's, and the rounding of each row result to f32 (u each).
                    let rs: Vec<f64> = rows.iter().map(|&i| rw[i]).collect();
                    let abs: f64 = rs.iter().map(|v| v.abs()).sum();
                    tw.push(rs.iter().sum());
                    tt.push(
                        rows.iter().map(|&i| rt[i]).sum::<f64>()
                            + red_tol(ReduceOp::Sum, &rs)
                            + 2.0 * U * abs,
                    );
                }
                vec![
                    Expect {
                        buffer: 1,
                        want: rw,
                        tol: rt,
                    },
                    Expect {
                        buffer: 2,
                        want: cw,
                        tol: ct,
                    },
                    Expect {
                        buffer: 3,
                        want: tw,
                        tol: tt,
                    },
                ]
            }
            Case::Softmax(m, n, _, _, axis) => {
                let x = f64s(&bufs[0]);
                let lines: Vec<Vec<usize>> = if axis == 1 {
                    (0..m)
                        .map(|i| (0..n).map(|j| i * n + j).collect())
                        .collect()
                } else {
                    (0..n)
                        .map(|j| (0..m).map(|i| i * n + j).collect())
                        .collect()
                };
                let mut want = vec![0.0; m * n];
                let mut tol = vec![0.0; m * n];
                for line in lines {
                    let mx = line.iter().map(|&e| x[e]).fold(f64::NEG_INFINITY, f64::max);
                    let s: f64 = line.iter().map(|&e| (x[e] - mx).exp()).sum();
                    // x - max (|.| <= 2) rounds once: <= 2u absolute in the exponent,
                    // so <= 2u relative in exp, plus exp's own error (<= 2u allowed for
                    // device exp); the sum adds (len - 1) u relative, the division u:
                    // (len + 6) u relative per element.
                    for &e in &line {
                        want[e] = (x[e] - mx).exp() / s;
                        tol[e] = (line.len() as f64 + 6.0) * U * want[e];
                    }
                }
                vec![Expect {
                    buffer: 1,
                    want,
                    tol,
                }]
            }
            Case::Iota(bm, bn) => {
                let want: Vec<f64> = (0..bm * bn)
                    .map(|e| ((e / bn) * 1000 + e % bn) as f64)
                    .collect();
                // Row sums of integers: exact in f32 while partial sums stay below 2^24
                // (at most 64 * 64063 here).
                let rows: Vec<f64> = (0..bm)
                    .map(|i| (0..bn).map(|j| (i * 1000 + j) as f64).sum())
                    .collect();
                vec![
                    Expect {
                        buffer: 0,
                        want: want.clone(),
                        tol: vec![0.0; bm * bn],
                    },
                    Expect {
                        buffer: 1,
                        want,
                        tol: vec![0.0; bm * bn],
                    },
                    Expect {
                        buffer: 2,
                        want: rows,
                        tol: vec![0.0; bm],
                    },
                ]
            }
            Case::RowLoop(m, n, _, _) => {
                let x = f64s(&bufs[0]);
                let init = f64s(&bufs[1]);
                let (mut want, mut tol) = (vec![], vec![]);
                for i in 0..m {
                    let row = &x[i * n..(i + 1) * n];
                    let mx = row.iter().copied().fold(init[i], f64::max);
                    let s: f64 = row.iter().sum();
                    want.push(mx + s / n as f64);
                    // The sum's (n-1) u sum|x| scaled by 1/n, the product's rounding and
                    // that of 1/n (2u |s/n|), the final addition's (u |result|).
                    let abs: f64 = row.iter().map(|v| v.abs()).sum();
                    tol.push(
                        (n as f64 + 2.0) * U * abs / n as f64
                            + U * (mx.abs() + (s / n as f64).abs()),
                    );
                }
                vec![Expect {
                    buffer: 2,
                    want,
                    tol,
                }]
            }
            Case::Pairwise(n, bn) => {
                let mut a = f64s(&bufs[0]);
                a.resize(bn, 0.0);
                let o = |i: usize, j: usize| if a[i] > 0.0 { a[i] - a[j] } else { a[j] };
                let mut out = vec![];
                for i in 0..n {
                    for j in 0..n {
                        out.push(o(i, j));
                    }
                }
                // A difference of two f32 values rounds once: u |out|.
                let otol = out.iter().map(|v| U * v.abs()).collect();
                let abs: f64 = a.iter().map(|v| v.abs()).sum();
                let s: Vec<f64> = (0..n).map(|i| a[i] * a.iter().sum::<f64>()).collect();
                // Products round once (u), the bn-term sum adds (bn - 1) u: bn u per
                // |a_i| sum|a|.
                let stol: Vec<f64> = (0..n).map(|i| bn as f64 * U * a[i].abs() * abs).collect();
                let cm: Vec<f64> = (0..n)
                    .map(|j| (0..bn).map(|i| o(i, j)).fold(f64::NEG_INFINITY, f64::max))
                    .collect();
                let ctol = cm.iter().map(|v| U * v.abs()).collect();
                let total: f64 = s.iter().sum();
                // The row sums' errors plus the outer n-term sum's, and one rounding of
                // each row sum: (bn + n + 1) u (sum|a|)^2.
                let ttol = (bn + n + 1) as f64 * U * abs * abs;
                vec![
                    Expect {
                        buffer: 1,
                        want: out,
                        tol: otol,
                    },
                    Expect {
                        buffer: 2,
                        want: s,
                        tol: stol,
                    },
                    Expect {
                        buffer: 3,
                        want: cm,
                        tol: ctol,
                    },
                    Expect {
                        buffer: 4,
                        want: vec![total],
                        tol: vec![ttol],
                    },
                ]
            }
            Case::Attention(m, n, d, _, bn, causal) => {
                let (q, kk, v) = (f64s(&bufs[0]), f64s(&bufs[1]), f64s(&bufs[2]));
                let scale = 1.0 / (d as f64).sqrt();
                let mut want = vec![0.0; m * d];
                for i in 0..m {
                    let cols: Vec<usize> = (0..n).filter(|&j| !causal || j <= i).collect();
                    let s: Vec<f64> = cols
                        .iter()
                        .map(|&j| (0..d).map(|c| q[i * d + c] * kk[j * d + c]).sum::<f64>() * scale)
                        .collect();
                    let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let p: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
                    let l: f64 = p.iter().sum();
                    for c in 0..d {
                        want[i * d + c] = cols
                            .iter()
                            .zip(&p)
                            .map(|(&j, pj)| pj * v[j * d + c])
                            .sum::<f64>()
                            / l;
                    }
                }
                // Scores: a d-term dot product of values in [-1, 1) scaled by 1/sqrt(d):
                // error <= d u sum|q_c k_c| / sqrt(d) <= d u sqrt(d), plus 2u |s| <=
                // 2u sqrt(d) for the scaling. The weights exp(s - m) then carry a
                // relative error of twice that (s and the max) plus the exp / rescale
                // roundings (~4u per key block); the outputs are weighted means of
                // |v| < 1 whose numerator and denominator sums add (n + 2) u each.
                // Bound: (2 (d + 2) sqrt(d) + 4 n / bn + 2 n + 8) u.
                let t = (2.0 * (d as f64 + 2.0) * (d as f64).sqrt()
                    + 4.0 * n.div_ceil(bn) as f64
                    + 2.0 * n as f64
                    + 8.0)
                    * U;
                vec![Expect {
                    buffer: 3,
                    want,
                    tol: vec![t; m * d],
                }]
            }
        }
    }
}

/// `|got - want| <= tol` everywhere (NaN fails); returns the worst error / tolerance.
pub fn check(what: &str, got: &[f32], want: &[f64], tol: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0.0f64, 0usize);
    for i in 0..got.len() {
        let err = (got[i] as f64 - want[i]).abs();
        assert!(
            err <= tol[i],
            "{what}: element {i}: got {}, want {} (error {err:e} > {:e})",
            got[i],
            want[i],
            tol[i]
        );
        if tol[i] > 0.0 && err / tol[i] > worst.0 {
            worst = (err / tol[i], i);
        }
    }
    eprintln!(
        "{what}: ok, worst at {} ({:.3} of tolerance)",
        worst.1, worst.0
    );
    worst.0
}
