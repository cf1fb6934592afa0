//! Construction of tile kernels from scheduled kernels ([`KernelSpec`]).
//!
//! Three kernel shapes, all built with [`TileBuilder`], over the spec's index space
//! (refined by the scheduler so that every view is strided; see [`crate::schedule::view`]):
//! - **elementwise**: the output's axes are coalesced where every operand's strides allow;
//!   the last coalesced axis is cut into rank-1 tiles of `block` elements; one program per
//!   (column block, row) with the row's base offsets computed by scalar index math; every
//!   leaf is a block load with its own stride (1 contiguous, 0 broadcast, other: views);
//! - **reduction**: one program per output element (each load and the store unravel the
//!   program index over their own refinement of the kept axes); a `For` over the reduced
//!   axis in chunks of rank-1 tiles accumulates a tile, which `Reduce` turns into a scalar;
//!   `mean` multiplies by `1/n`; the fused epilogue runs on scalars; a rank-0 store. A body that
//!   is a plain load uses masked loads with `other` = the identity; a fused body (whose
//!   masked lanes would not be the identity) runs full chunks and a static tail tile. On
//!   a target whose thread-grid rows are subgroups (CPU adapters with subgroups:
//!   `simt::lower::subgroup_rows`) a program computes one output per thread-grid row
//!   instead (`[rows, chunk]` tiles reduced along axis 1 by subgroup shuffles, the
//!   epilogue on `[rows]` tiles: no barrier), wherever every leaf and the store walk the
//!   outputs with one stride (`affine_stride`);
//! - **matmul**: `[BM, BN]` f32 accumulator from `Splat`, a `For` over K in `BK` steps of
//!   `Dot` on masked `[BM, BK]` and `[BK, BN]` loads (transposes are swapped strides), the
//!   epilogue on `[BM, BN]` tiles, a masked store; batch index on grid axis 2.
//!
//! An `iota` leaf ([`Expr::Iota`]) takes part in all three like a load, except that its
//! "access" is evaluated as index arithmetic: `base + Iota(tile) * stride` (an i32 tile),
//! converted to f32 for an f32 iota.
//!
//! The output is stored through the spec's store view: contiguous, or the inverse of a
//! permute/reshape chain when the kernel writes a materialized view of its value. A
//! multi-output elementwise kernel ([`KernelSpec::also`]) evaluates all its values in
//! one context (shared subexpressions once) and stores each to its own buffer.
//!
//! All float math is f32 (f16/bf16 loads are cast to f32, stores cast back); index math
//! is i32. Grid axes that would exceed the target's `max_grid_dim` are linearized over
//! up to three axes (surplus programs recompute the last one: same values, same place).

use super::{BlockAccess, BufferParam, IndexOp, TileBuilder, TileKernel, ValueId};
use crate::error::CompileError;
use crate::graph::{BinaryOp, DType, ReduceOp};
use crate::schedule::kernel::{Expr, ExprId, KernelKind, KernelSpec};
use crate::schedule::view::{piece_groups, StridedView};
use crate::target::{Target, TargetKind};
use std::collections::HashMap;

/// Tile sizes a target's kernels are built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileSizes {
    /// Elements per rank-1 tile of an elementwise kernel.
    pub block: usize,
    /// Elements per chunk of a reduction loop.
    pub reduce_chunk: usize,
    /// Matmul output tile rows.
    pub bm: usize,
    /// Matmul output tile columns.
    pub bn: usize,
    /// Matmul contraction step.
    pub bk: usize,
}

/// The tile sizes for a target (the one place to tune them).
///
/// WGSL and PTX run a program instance as one workgroup (256 invocations on GPUs):
/// 256-element vectors; the matmul tile is the target record's `matmul_tile`: 32x32
/// with BK = 8 on GPUs (4 outputs per invocation, A and B stages of 1 KiB each), up to
/// 128x64 on CPU adapters with 64 invocations ([`Target::for_cpu_adapter`]: up to 16x8
/// outputs per invocation, stages of 4 + 2 KiB), shrunk for small problems by
/// [`matmul_tile`]. Ascend vector instructions want long vectors (2048 f32 = 8 KiB per
/// UB tile) and the cube unit 64x64 tiles with K steps of 32.
pub fn tile_sizes(target: &Target) -> TileSizes {
    match target.kind {
        TargetKind::Wgsl | TargetKind::Ptx => TileSizes {
            block: 256,
            reduce_chunk: 256,
            bm: target.matmul_tile[0].max(1),
            bn: target.matmul_tile[1].max(1),
            bk: target.matmul_tile[2].max(1),
        },
        TargetKind::AscendC => TileSizes {
            block: 2048,
            reduce_chunk: 2048,
            bm: target.matmul_tile[0].max(1),
            bn: target.matmul_tile[1].max(1),
            bk: target.matmul_tile[2].max(1),
        },
    }
}

/// Fewest workgroups a matmul's grid should have before its tile is shrunk (see
/// [`matmul_tile`]).
const MATMUL_MIN_PROGRAMS: usize = 4;

/// The output tile `(BM, BN)` of a `[m, k] @ [k, n]` matmul (`batch` of them) on WGSL and
/// PTX: the target's `matmul_tile`, clamped to the problem (the next power of two of `m`
/// and `n`: no work on padding), then halved along its larger side while the grid would
/// have fewer than `MATMUL_MIN_PROGRAMS` workgroups (a CPU adapter spreads workgroups
/// over its cores: one big tile would leave all but one idle). Neither step goes below
/// two rows and two columns per thread (`2 TM x 2 TN`), which is exactly the GPU records'
/// 32 x 32 tile at 256 threads: on GPUs the tile never changes. Ascend C keeps the
/// target's tile (the cube unit's shape).
pub fn matmul_tile(
    target: &Target,
    sizes: &TileSizes,
    (m, n, batch): (usize, usize, usize),
) -> Result<(usize, usize), CompileError> {
    let (mut bm, mut bn) = (sizes.bm, sizes.bn);
    if target.kind == TargetKind::AscendC {
        return Ok((bm, bn));
    }
    let grid = crate::simt::lower::ThreadGrid::for_target(target)?;
    let (min_m, min_n) = (2 * grid.rows as usize, 2 * grid.cols as usize);
    bm = bm.min(m.max(1).next_power_of_two()).max(min_m.min(bm));
    bn = bn.min(n.max(1).next_power_of_two()).max(min_n.min(bn));
    let programs = |bm: usize, bn: usize| m.div_ceil(bm) * n.div_ceil(bn) * batch.max(1);
    while programs(bm, bn) < MATMUL_MIN_PROGRAMS {
        let can_m = bm / 2 >= min_m;
        let can_n = bn / 2 >= min_n;
        if can_m && (bm >= bn || !can_n) {
            bm /= 2;
        } else if can_n {
            bn /= 2;
        } else {
            break;
        }
    }
    Ok((bm, bn))
}

/// The dtype a graph dtype is computed in inside kernels (floats in f32).
pub fn compute_dtype(d: DType) -> DType {
    if d.is_float() {
        DType::F32
    } else {
        d
    }
}

/// Builds the tile kernel of a scheduled kernel, named `name`.
pub fn build_kernel(
    spec: &KernelSpec,
    name: &str,
    target: &Target,
) -> Result<TileKernel, CompileError> {
    let limit_i32 = i32::MAX as usize;
    for b in &spec.buffers {
        if b.len() > limit_i32 {
            return Err(CompileError::Limit {
                kernel: name.to_string(),
                target: target.kind.to_string(),
                limit: "i32 element index range",
                needed: b.len(),
                available: limit_i32,
            });
        }
    }
    if let KernelKind::Standalone { .. } = spec.kind {
        return super::ops::build_standalone(spec, name, target);
    }
    let sizes = tile_sizes(target);
    let mut k = KernelBuilder {
        em: Em::new(),
        spec,
        name,
        target,
    };
    let grid = match &spec.kind {
        KernelKind::Elementwise { value } => k.elementwise(*value, sizes.block)?,
        KernelKind::Reduce {
            op,
            in_shape,
            axis,
            body,
            epilogue,
        } => k.reduction(*op, in_shape, *axis, *body, *epilogue, sizes.reduce_chunk)?,
        KernelKind::MatMul { .. } => k.matmul(&sizes)?,
        KernelKind::Standalone { .. } => {
            return Err(CompileError::Internal {
                stage: "tile",
                message: format!("standalone kernel `{name}` reached the fused builder"),
            })
        }
    };
    let params = spec
        .buffers
        .iter()
        .map(|b| BufferParam {
            name: b.name.clone(),
            dtype: b.dtype,
            len: b.len(),
            access: b.access,
        })
        .collect();
    Ok(k.em.b.finish(name.to_string(), params, grid))
}

/// An i32 index value: a compile-time constant or an SSA value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ix {
    /// A constant.
    C(i64),
    /// An SSA value.
    V(ValueId),
}

/// Index-math emitter over a [`TileBuilder`]: folds constants and reuses identical index
/// computations (constants and ops) within a block and the blocks nested in it.
pub(crate) struct Em {
    pub(crate) b: TileBuilder,
    consts: Vec<HashMap<i64, ValueId>>,
    ops: Vec<HashMap<(IndexOp, ValueId, ValueId), ValueId>>,
}

impl Em {
    pub(crate) fn new() -> Em {
        Em {
            b: TileBuilder::new(),
            consts: vec![HashMap::new()],
            ops: vec![HashMap::new()],
        }
    }

    pub(crate) fn val(&mut self, x: Ix) -> ValueId {
        match x {
            Ix::V(v) => v,
            Ix::C(c) => {
                if let Some(&v) = self.consts.iter().rev().find_map(|m| m.get(&c)) {
                    return v;
                }
                let v = self.b.index(c);
                self.consts
                    .last_mut()
                    .expect("a constant scope is open")
                    .insert(c, v);
                v
            }
        }
    }

    pub(crate) fn op(&mut self, op: IndexOp, a: Ix, b: Ix) -> Ix {
        match (op, a, b) {
            (_, Ix::C(x), Ix::C(y)) => Ix::C(op.eval(x, y)),
            (IndexOp::Add, x, Ix::C(0)) | (IndexOp::Add, Ix::C(0), x) => x,
            (IndexOp::Sub, x, Ix::C(0)) => x,
            (IndexOp::Mul, _, Ix::C(0)) | (IndexOp::Mul, Ix::C(0), _) => Ix::C(0),
            (IndexOp::Mul, x, Ix::C(1)) | (IndexOp::Mul, Ix::C(1), x) => x,
            (IndexOp::Div, x, Ix::C(1)) => x,
            (IndexOp::Rem, _, Ix::C(1)) => Ix::C(0),
            _ => {
                let (va, vb) = (self.val(a), self.val(b));
                let key = (op, va, vb);
                if let Some(&v) = self.ops.iter().rev().find_map(|m| m.get(&key)) {
                    return Ix::V(v);
                }
                let v = self.b.iop(op, va, vb);
                self.ops.last_mut().expect("a scope is open").insert(key, v);
                Ix::V(v)
            }
        }
    }

    pub(crate) fn add(&mut self, a: Ix, b: Ix) -> Ix {
        self.op(IndexOp::Add, a, b)
    }

    pub(crate) fn mul(&mut self, a: Ix, c: i64) -> Ix {
        self.op(IndexOp::Mul, a, Ix::C(c))
    }

    /// `base + sum(idx[i] * strides[i])`.
    pub(crate) fn offset(&mut self, base: i64, idx: &[Ix], strides: &[i64]) -> Ix {
        let mut acc = Ix::C(base);
        for (&i, &s) in idx.iter().zip(strides) {
            let t = self.mul(i, s);
            acc = self.add(acc, t);
        }
        acc
    }

    /// Row-major multi-index of a linear index over `dims` (last axis fastest).
    pub(crate) fn unravel(&mut self, lin: Ix, dims: &[usize]) -> Vec<Ix> {
        let mut out = vec![Ix::C(0); dims.len()];
        let mut rest = lin;
        for (a, &d) in dims.iter().enumerate().rev() {
            if d == 1 {
                continue;
            }
            if a == 0 || dims[..a].iter().all(|&x| x == 1) {
                out[a] = rest;
                break;
            }
            out[a] = self.op(IndexOp::Rem, rest, Ix::C(d as i64));
            rest = self.op(IndexOp::Div, rest, Ix::C(d as i64));
        }
        out
    }

    pub(crate) fn begin_for(&mut self, init: &[ValueId]) -> Vec<ValueId> {
        self.consts.push(HashMap::new());
        self.ops.push(HashMap::new());
        self.b.begin_for(init)
    }

    pub(crate) fn end_for(
        &mut self,
        start: ValueId,
        end: ValueId,
        step: i64,
        init: &[ValueId],
        yields: &[ValueId],
    ) -> Vec<ValueId> {
        self.consts.pop();
        self.ops.pop();
        self.b.end_for(start, end, step, init, yields)
    }
}

/// Maps logical program indices (extents, first fastest) to grid axes: one axis each
/// while every extent fits the target's `max_grid_dim`, else the linear program index
/// spread over three axes (surplus programs recompute the last one: same values, same
/// place). Returns the grid and each logical index. Shared by the standalone builders.
pub(crate) fn programs(
    em: &mut Em,
    target: &Target,
    name: &str,
    extents: &[u64],
) -> Result<([u32; 3], Vec<Ix>), CompileError> {
    let max = target.max_grid_dim.max(1) as u64;
    let mut grid = [1u32; 3];
    if extents.len() <= 3 && extents.iter().all(|&e| e <= max) {
        let mut idx = Vec::new();
        for (a, &e) in extents.iter().enumerate() {
            grid[a] = e as u32;
            idx.push(if e <= 1 {
                Ix::C(0)
            } else {
                Ix::V(em.b.program_id(a as u8))
            });
        }
        return Ok((grid, idx));
    }
    let total: u64 = extents.iter().product();
    let g0 = total.min(max);
    let g1 = total.div_ceil(g0).min(max);
    let g2 = total.div_ceil(g0 * g1);
    if g2 > max || total > i32::MAX as u64 {
        return Err(CompileError::Limit {
            kernel: name.to_string(),
            target: target.kind.to_string(),
            limit: "max_grid_dim",
            needed: total as usize,
            available: (max * max * max).min(i32::MAX as u64) as usize,
        });
    }
    grid = [g0 as u32, g1 as u32, g2 as u32];
    let mut lin = Ix::C(0);
    let mut scale = 1i64;
    for (a, &g) in grid.iter().enumerate() {
        if g > 1 {
            let p = Ix::V(em.b.program_id(a as u8));
            let t = em.mul(p, scale);
            lin = em.add(lin, t);
        }
        scale *= g as i64;
    }
    if g0 * g1 * g2 > total {
        lin = em.op(IndexOp::Min, lin, Ix::C(total as i64 - 1));
    }
    // Unravel with extents[0] fastest.
    let dims: Vec<usize> = extents.iter().rev().map(|&e| e as usize).collect();
    let mut idx = em.unravel(lin, &dims);
    idx.reverse();
    Ok((grid, idx))
}

/// Where each leaf of an expression reads in one evaluation context.
struct Ctx {
    accesses: HashMap<ExprId, (BlockAccess, f64)>,
    acc: Option<ValueId>,
    memo: HashMap<ExprId, ValueId>,
}

impl Ctx {
    fn new(acc: Option<ValueId>) -> Ctx {
        Ctx {
            accesses: HashMap::new(),
            acc,
            memo: HashMap::new(),
        }
    }
}

struct KernelBuilder<'a> {
    em: Em,
    spec: &'a KernelSpec,
    name: &'a str,
    target: &'a Target,
}

/// A reduction kernel's parameters ([`KernelBuilder::reduction_rows`]).
struct Reduction {
    op: ReduceOp,
    /// Extent of the reduced axis.
    r: usize,
    /// Output elements.
    outputs: usize,
    body: ExprId,
    epilogue: ExprId,
    /// Chunk of the reduced axis per loop step.
    chunk: usize,
}

/// One leaf of a reduction as output elements advance ([`KernelBuilder::output_walk`]).
struct WalkLeaf {
    leaf: ExprId,
    buffer: usize,
    /// Offset of output element 0's first element.
    offset: i64,
    /// Stride from one output element to the next.
    step: i64,
    /// Stride along the reduced axis (body leaves; 0 for epilogue leaves).
    along: i64,
}

/// Every leaf of a reduction, and its store, as affine walks over the output elements.
#[derive(Default)]
struct OutputWalk {
    body: Vec<WalkLeaf>,
    epilogue: Vec<WalkLeaf>,
    /// The store's `(offset, step)`.
    store: (i64, i64),
}

/// The stride between consecutive positions of a row-major walk over `shape` (with
/// `strides`), when the walk is affine: each non-trivial axis's stride is the next
/// one's times its extent (extent-1 axes ignored). `Some(0)` for at most one position.
pub(crate) fn affine_stride(shape: &[usize], strides: &[i64]) -> Option<i64> {
    let axes: Vec<(usize, i64)> = shape
        .iter()
        .zip(strides)
        .filter(|(&n, _)| n > 1)
        .map(|(&n, &s)| (n, s))
        .collect();
    for w in axes.windows(2) {
        if w[0].1 != w[1].1 * w[1].0 as i64 {
            return None;
        }
    }
    Some(axes.last().map_or(0, |&(_, s)| s))
}

/// Smallest power of two `>= n` (1 for 0).
fn pow2_at_least(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// Largest power of two `<= n` (1 for 0).
fn pow2_at_most(n: usize) -> usize {
    let n = n.max(1);
    1 << (usize::BITS - 1 - n.leading_zeros())
}

impl<'a> KernelBuilder<'a> {
    fn internal(&self, message: String) -> CompileError {
        CompileError::Internal {
            stage: "tile",
            message: format!("kernel `{}`: {message}", self.name),
        }
    }

    /// Load leaves reachable from `root`, in first-visit order.
    fn leaves(&self, root: ExprId) -> Vec<ExprId> {
        let mut out = Vec::new();
        let mut seen = vec![false; self.spec.exprs.len()];
        let mut stack = vec![root];
        while let Some(e) = stack.pop() {
            if std::mem::replace(&mut seen[e.index()], true) {
                continue;
            }
            match self.spec.expr(e) {
                Expr::Load { .. } | Expr::Iota { .. } => out.push(e),
                Expr::Unary { x, .. } | Expr::Cast { x, .. } => stack.push(*x),
                Expr::Binary { a, b, .. } | Expr::Compare { a, b, .. } => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Expr::Select { cond, a, b, .. } => {
                    stack.push(*b);
                    stack.push(*a);
                    stack.push(*cond);
                }
                Expr::Const { .. } | Expr::Acc { .. } => {}
            }
        }
        out
    }

    /// A leaf's buffer and view. An iota leaf reads no buffer (`usize::MAX`, never
    /// used: its access only carries the base and strides of its index arithmetic).
    fn leaf_view(&self, e: ExprId) -> Result<(usize, &'a StridedView), CompileError> {
        match self.spec.expr(e) {
            Expr::Load { buffer, view } => Ok((*buffer, view)),
            Expr::Iota { view, .. } => Ok((usize::MAX, view)),
            _ => Err(self.internal(format!("expression {} is not a load", e.0))),
        }
    }

    fn dtype_of_buffer(&self, buffer: usize) -> DType {
        self.spec.buffers[buffer].dtype
    }

    /// Evaluates an expression in a context (leaf accesses prepared in `ctx`).
    fn eval(&mut self, e: ExprId, ctx: &mut Ctx) -> Result<ValueId, CompileError> {
        if let Some(&v) = ctx.memo.get(&e) {
            return Ok(v);
        }
        let v = match self.spec.expr(e) {
            Expr::Load { buffer, .. } => {
                let (access, other) = ctx
                    .accesses
                    .get(&e)
                    .cloned()
                    .ok_or_else(|| self.internal(format!("no access for leaf {}", e.0)))?;
                let d = self.dtype_of_buffer(*buffer);
                let v = self.em.b.load(access, d, other);
                if compute_dtype(d) != d {
                    self.em.b.cast(v, compute_dtype(d))
                } else {
                    v
                }
            }
            Expr::Iota { dtype, .. } => {
                let (access, _) = ctx
                    .accesses
                    .get(&e)
                    .cloned()
                    .ok_or_else(|| self.internal(format!("no access for iota leaf {}", e.0)))?;
                self.iota_value(&access, *dtype)
            }
            Expr::Const { value, dtype } => self.em.b.float(*value, compute_dtype(*dtype)),
            Expr::Acc { .. } => ctx
                .acc
                .ok_or_else(|| self.internal("anchor value used outside an epilogue".into()))?,
            Expr::Unary { op, x, .. } => {
                let x = self.eval(*x, ctx)?;
                self.em.b.unary(*op, x)
            }
            Expr::Binary { op, a, b, .. } => {
                let a = self.eval(*a, ctx)?;
                let b = self.eval(*b, ctx)?;
                self.em.b.binary(*op, a, b)
            }
            Expr::Cast { x, to } => {
                // Round to `to`, then compute in its compute dtype (f16 / bf16 values are
                // carried in f32 after the rounding).
                let x = self.eval(*x, ctx)?;
                if self.em.b.ty(x).dtype() == *to {
                    x
                } else {
                    let v = self.em.b.cast(x, *to);
                    if compute_dtype(*to) != *to {
                        self.em.b.cast(v, compute_dtype(*to))
                    } else {
                        v
                    }
                }
            }
            Expr::Compare { op, a, b } => {
                let a = self.eval(*a, ctx)?;
                let b = self.eval(*b, ctx)?;
                self.em.b.compare(*op, a, b)
            }
            Expr::Select { cond, a, b, .. } => {
                let cond = self.eval(*cond, ctx)?;
                let a = self.eval(*a, ctx)?;
                let b = self.eval(*b, ctx)?;
                self.em.b.select(cond, a, b)
            }
        };
        ctx.memo.insert(e, v);
        Ok(v)
    }

    /// The value of an iota leaf over an access: its element offsets
    /// `base + sum_a iota(shape, a) * stride[a]` (i32 index arithmetic on tiles), in the
    /// leaf's compute dtype (the i32 to f32 conversion is exact below 2^24).
    fn iota_value(&mut self, access: &BlockAccess, dtype: DType) -> ValueId {
        let mut v = None;
        for (a, &s) in access.strides.iter().enumerate() {
            if s == 0 || access.shape[a] <= 1 {
                continue;
            }
            let mut t = self.em.b.iota(&access.shape, a);
            if s != 1 {
                let c = self.em.val(Ix::C(s));
                t = self.em.b.binary(BinaryOp::Mul, t, c);
            }
            v = Some(match v {
                None => t,
                Some(acc) => self.em.b.binary(BinaryOp::Add, acc, t),
            });
        }
        let v = match v {
            None if access.shape.is_empty() => access.base,
            None => self.em.b.splat(access.base, &access.shape),
            Some(t) => self.em.b.binary(BinaryOp::Add, t, access.base),
        };
        let d = compute_dtype(dtype);
        if d != DType::I32 {
            self.em.b.cast(v, d)
        } else {
            v
        }
    }

    /// Splat a scalar to `shape` (tiles pass through) and cast to the output dtype.
    fn finish_value(&mut self, v: ValueId, shape: &[usize]) -> ValueId {
        let v = if !shape.is_empty() && self.em.b.ty(v).shape().is_none() {
            self.em.b.splat(v, shape)
        } else {
            v
        };
        let out = self.spec.buffers[self.spec.out].dtype;
        if self.em.b.ty(v).dtype() != out {
            self.em.b.cast(v, out)
        } else {
            v
        }
    }

    /// Maps logical program indices (extents, first fastest) to grid axes ([`programs`]).
    fn programs(&mut self, extents: &[u64]) -> Result<([u32; 3], Vec<Ix>), CompileError> {
        programs(&mut self.em, self.target, self.name, extents)
    }

    // ---------------------------------------------------------------- elementwise

    /// Stores every value of the kernel (a multi-output kernel's [`KernelSpec::also`],
    /// then the root's) from one evaluation context, so shared subexpressions and a
    /// stored value read by another are computed once.
    fn elementwise(&mut self, value: ExprId, block: usize) -> Result<[u32; 3], CompileError> {
        let spec = self.spec;
        // (buffer, store view, value) of every stored value, the root's last.
        let stores: Vec<(usize, &StridedView, ExprId)> = spec
            .also
            .iter()
            .map(|a| (a.buffer, &a.store, a.value))
            .chain([(spec.out, &spec.store, value)])
            .collect();
        let mut leaves = Vec::new();
        for &(_, _, v) in &stores {
            for l in self.leaves(v) {
                if !leaves.contains(&l) {
                    leaves.push(l);
                }
            }
        }
        let ns = stores.len();
        // Stride lists: the stores' views first, then every leaf.
        let mut lists: Vec<Vec<i64>> = stores.iter().map(|s| s.1.strides.clone()).collect();
        for &l in &leaves {
            let (_, view) = self.leaf_view(l)?;
            if view.shape != spec.out_shape {
                return Err(self.internal(format!(
                    "leaf shape {:?} differs from the output shape {:?}",
                    view.shape, spec.out_shape
                )));
            }
            lists.push(view.strides.clone());
        }
        // Coalesce: drop extent-1 axes, merge neighbours laid out alike in every list.
        let mut dims: Vec<usize> = Vec::new();
        let mut strides: Vec<Vec<i64>> = vec![Vec::new(); lists.len()];
        for (a, &d) in spec.out_shape.iter().enumerate() {
            if d == 1 {
                continue;
            }
            let mergeable = !dims.is_empty()
                && lists
                    .iter()
                    .zip(&strides)
                    .all(|(l, s)| *s.last().expect("same length as dims") == l[a] * d as i64);
            if mergeable {
                *dims.last_mut().expect("non-empty") *= d;
                for (l, s) in lists.iter().zip(strides.iter_mut()) {
                    *s.last_mut().expect("non-empty") = l[a];
                }
            } else {
                dims.push(d);
                for (l, s) in lists.iter().zip(strides.iter_mut()) {
                    s.push(l[a]);
                }
            }
        }
        if dims.is_empty() {
            dims.push(1);
            for s in strides.iter_mut() {
                s.push(1);
            }
        }
        let c = dims.len();
        let len = dims[c - 1];
        let row_dims = &dims[..c - 1];
        let rows: usize = row_dims.iter().product();
        let tile = block.min(pow2_at_least(len));
        let col_blocks = len.div_ceil(tile);
        let (grid, pids) = self.programs(&[col_blocks as u64, rows as u64])?;
        let col0 = self.em.mul(pids[0], tile as i64);
        let row_idx = self.em.unravel(pids[1], row_dims);
        let lim = self.em.op(IndexOp::Sub, Ix::C(len as i64), col0);
        let lim = self.em.val(lim);
        let mut ctx = Ctx::new(None);
        let mut accesses = Vec::new();
        for (i, s) in strides.iter().enumerate() {
            let offset = if i < ns {
                stores[i].1.offset
            } else {
                self.leaf_view(leaves[i - ns])?.1.offset
            };
            let row_base = self.em.offset(offset, &row_idx, &s[..c - 1]);
            let col = self.em.mul(col0, s[c - 1]);
            let base = self.em.add(row_base, col);
            let base = self.em.val(base);
            accesses.push(BlockAccess {
                buffer: 0,
                base,
                strides: vec![s[c - 1]],
                limits: vec![lim],
                shape: vec![tile],
            });
        }
        let leaf_accesses = accesses.split_off(ns);
        for (&l, mut a) in leaves.iter().zip(leaf_accesses) {
            a.buffer = self.leaf_view(l)?.0;
            ctx.accesses.insert(l, (a, 0.0));
        }
        for (&(buffer, _, value), mut out_access) in stores.iter().zip(accesses) {
            out_access.buffer = buffer;
            let v = self.eval(value, &mut ctx)?;
            let v = self.finish_value_into(v, &[tile], buffer);
            self.em.b.store(out_access, v);
        }
        Ok(grid)
    }

    /// [`Self::finish_value`] for the written buffer `buffer`.
    fn finish_value_into(&mut self, v: ValueId, shape: &[usize], buffer: usize) -> ValueId {
        let v = if !shape.is_empty() && self.em.b.ty(v).shape().is_none() {
            self.em.b.splat(v, shape)
        } else {
            v
        };
        let out = self.spec.buffers[buffer].dtype;
        if self.em.b.ty(v).dtype() != out {
            self.em.b.cast(v, out)
        } else {
            v
        }
    }

    // ---------------------------------------------------------------- reduction

    fn reduction(
        &mut self,
        op: ReduceOp,
        in_shape: &[usize],
        axis: usize,
        body: ExprId,
        epilogue: ExprId,
        chunk: usize,
    ) -> Result<[u32; 3], CompileError> {
        let spec = self.spec;
        let r = *in_shape
            .get(axis)
            .ok_or_else(|| self.internal(format!("axis {axis} out of {in_shape:?}")))?;
        let mut kept: Vec<usize> = in_shape.to_vec();
        kept.remove(axis);
        let programs: usize = kept.iter().product();
        if let Some(g) = crate::simt::lower::subgroup_rows(self.target) {
            if let Some(walk) = self.output_walk(in_shape, axis, body, epilogue)? {
                let rows = g.rows as usize;
                let red = Reduction {
                    op,
                    r,
                    outputs: programs,
                    body,
                    epilogue,
                    chunk,
                };
                return self.reduction_rows(&red, rows, &walk);
            }
        }
        let (grid, pids) = self.programs(&[programs as u64])?;
        let o = pids[0];

        let identity = op.identity();
        let combiner = op.combiner();
        let red = match op {
            ReduceOp::Mean => ReduceOp::Sum,
            o => o,
        };
        let pure = matches!(spec.expr(body), Expr::Load { .. });
        let body_leaves = self.leaves(body);
        // Per body leaf: buffer, base offset of this output element, stride along the axis.
        // Each leaf's view is over its own refinement of the input (the reduced axis one
        // piece): this program's index over it is `o` unravelled over the kept pieces.
        let mut bases = Vec::new();
        for &l in &body_leaves {
            let (buffer, view) = self.leaf_view(l)?;
            let pos = piece_groups(in_shape, &view.shape)
                .map(|g| g[axis].clone())
                .filter(|g| g.len() == 1)
                .ok_or_else(|| {
                    self.internal(format!(
                        "body leaf shape {:?} does not refine the reduction input {:?} \
                         along kept axes",
                        view.shape, in_shape
                    ))
                })?
                .start;
            let mut kept_pieces = view.shape.clone();
            kept_pieces.remove(pos);
            let mut idx = self.em.unravel(o, &kept_pieces);
            idx.insert(pos, Ix::C(0));
            let base = self.em.offset(view.offset, &idx, &view.strides);
            bases.push((l, buffer, base, view.strides[pos]));
        }
        let (ch, main_end, tail) = if pure {
            let ch = chunk.min(pow2_at_least(r));
            (ch, r, 0)
        } else {
            let ch = chunk.min(pow2_at_most(r));
            let main = r / ch * ch;
            (ch, main, r - main)
        };
        let other = if pure { identity } else { 0.0 };

        let idv = self.em.b.float(identity, DType::F32);
        let acc0 = self.em.b.splat(idv, &[ch]);
        let start = self.em.val(Ix::C(0));
        let end = self.em.val(Ix::C(main_end as i64));
        let args = self.em.begin_for(&[acc0]);
        let (kv, acc) = (args[0], args[1]);
        let mut ctx = Ctx::new(None);
        let lim = self.em.op(IndexOp::Sub, Ix::C(r as i64), Ix::V(kv));
        let lim = self.em.val(lim);
        for &(l, buffer, base, stride) in &bases {
            let step = self.em.mul(Ix::V(kv), stride);
            let b = self.em.add(base, step);
            let access = BlockAccess {
                buffer,
                base: self.em.val(b),
                strides: vec![stride],
                limits: vec![lim],
                shape: vec![ch],
            };
            ctx.accesses.insert(l, (access, other));
        }
        let v = self.eval(body, &mut ctx)?;
        let v = self.tile_f32(v, ch);
        let next = self.em.b.binary(combiner, acc, v);
        let res = self.em.end_for(start, end, ch as i64, &[acc0], &[next]);
        let mut s = self.em.b.reduce(red, res[0], 0);
        if tail > 0 {
            let mut ctx = Ctx::new(None);
            for &(l, buffer, base, stride) in &bases {
                let b = self.em.add(base, Ix::C(main_end as i64 * stride));
                let access = BlockAccess {
                    buffer,
                    base: self.em.val(b),
                    strides: vec![stride],
                    limits: vec![self.em.val(Ix::C(tail as i64))],
                    shape: vec![tail],
                };
                ctx.accesses.insert(l, (access, 0.0));
            }
            let v = self.eval(body, &mut ctx)?;
            let v = self.tile_f32(v, tail);
            let t = self.em.b.reduce(red, v, 0);
            s = self.em.b.binary(combiner, s, t);
        }
        if op == ReduceOp::Mean {
            let inv = self.em.b.float(1.0 / r as f64, DType::F32);
            s = self.em.b.binary(BinaryOp::Mul, s, inv);
        }
        // Epilogue on scalars.
        let mut ctx = Ctx::new(Some(s));
        // Epilogue leaves and the store: views over refinements of the output, whose
        // row-major order is the programs' (a kept extent-1 axis does not change it).
        for l in self.leaves(epilogue) {
            let (buffer, view) = self.leaf_view(l)?;
            if piece_groups(&spec.out_shape, &view.shape).is_none() {
                return Err(self.internal(format!(
                    "epilogue leaf shape {:?} does not refine the output {:?}",
                    view.shape, spec.out_shape
                )));
            }
            let idx = self.em.unravel(o, &view.shape);
            let base = self.em.offset(view.offset, &idx, &view.strides);
            let access = BlockAccess::scalar(buffer, self.em.val(base));
            ctx.accesses.insert(l, (access, 0.0));
        }
        let v = self.eval(epilogue, &mut ctx)?;
        let v = self.finish_value(v, &[]);
        let out_base = if spec.store.is_contiguous() {
            o
        } else {
            if piece_groups(&spec.out_shape, &spec.store.shape).is_none() {
                return Err(self.internal(format!(
                    "store shape {:?} does not refine the output {:?}",
                    spec.store.shape, spec.out_shape
                )));
            }
            let idx = self.em.unravel(o, &spec.store.shape);
            self.em.offset(spec.store.offset, &idx, &spec.store.strides)
        };
        let out_base = self.em.val(out_base);
        self.em.b.store(BlockAccess::scalar(spec.out, out_base), v);
        Ok(grid)
    }

    /// How the leaves of a reduction and its store move from one output element to the
    /// next, when every one moves by a fixed stride (the kept axes walk each view
    /// row-major and affinely: `affine_stride`); `None` when one does not.
    fn output_walk(
        &self,
        in_shape: &[usize],
        axis: usize,
        body: ExprId,
        epilogue: ExprId,
    ) -> Result<Option<OutputWalk>, CompileError> {
        let spec = self.spec;
        let mut walk = OutputWalk::default();
        for l in self.leaves(body) {
            let (buffer, view) = self.leaf_view(l)?;
            let Some(pos) = piece_groups(in_shape, &view.shape)
                .map(|g| g[axis].clone())
                .filter(|g| g.len() == 1)
                .map(|g| g.start)
            else {
                return Ok(None);
            };
            let mut kept_shape = view.shape.clone();
            let mut kept_strides = view.strides.clone();
            kept_shape.remove(pos);
            kept_strides.remove(pos);
            let Some(step) = affine_stride(&kept_shape, &kept_strides) else {
                return Ok(None);
            };
            walk.body.push(WalkLeaf {
                leaf: l,
                buffer,
                offset: view.offset,
                step,
                along: view.strides[pos],
            });
        }
        for l in self.leaves(epilogue) {
            let (buffer, view) = self.leaf_view(l)?;
            if piece_groups(&spec.out_shape, &view.shape).is_none() {
                return Ok(None);
            }
            let Some(step) = affine_stride(&view.shape, &view.strides) else {
                return Ok(None);
            };
            walk.epilogue.push(WalkLeaf {
                leaf: l,
                buffer,
                offset: view.offset,
                step,
                along: 0,
            });
        }
        walk.store = if spec.store.is_contiguous() {
            (0, 1)
        } else {
            if piece_groups(&spec.out_shape, &spec.store.shape).is_none() {
                return Ok(None);
            }
            match affine_stride(&spec.store.shape, &spec.store.strides) {
                Some(step) => (spec.store.offset, step),
                None => return Ok(None),
            }
        };
        Ok(Some(walk))
    }

    /// A reduction with `rows` output elements per program, for targets whose thread-grid
    /// rows are subgroups ([`crate::simt::lower::subgroup_rows`]; `rows` = the grid's row
    /// count): the body is evaluated on `[rows, ch]` tiles (row `i` is output element
    /// `o0 + i`, rows past the last output masked), reduced along axis 1 (by subgroup
    /// shuffles: no barrier), and the epilogue runs on `[rows]` tiles, stored with the
    /// output's stride. Chunks, tail and fill values as the one-output-per-program form.
    fn reduction_rows(
        &mut self,
        red: &Reduction,
        rows: usize,
        walk: &OutputWalk,
    ) -> Result<[u32; 3], CompileError> {
        let spec = self.spec;
        let r = red.r;
        let (grid, pids) = self.programs(&[red.outputs.div_ceil(rows) as u64])?;
        let o0 = self.em.mul(pids[0], rows as i64);
        let left = self.em.op(IndexOp::Sub, Ix::C(red.outputs as i64), o0);
        let lim_rows = self.em.val(left);
        let identity = red.op.identity();
        let combiner = red.op.combiner();
        let reducer = match red.op {
            ReduceOp::Mean => ReduceOp::Sum,
            o => o,
        };
        let pure = matches!(spec.expr(red.body), Expr::Load { .. });
        let (ch, main_end, tail) = if pure {
            (red.chunk.min(pow2_at_least(r)), r, 0)
        } else {
            let ch = red.chunk.min(pow2_at_most(r));
            (ch, r / ch * ch, r - r / ch * ch)
        };
        let other = if pure { identity } else { 0.0 };
        // The accesses of the body's leaves for the columns `from ..` (`width` of them,
        // `limit` valid).
        let body_ctx = |this: &mut Self, from: Ix, width: usize, limit: ValueId, fill: f64| {
            let mut ctx = Ctx::new(None);
            for w in &walk.body {
                let first = this.em.mul(o0, w.step);
                let first = this.em.add(first, Ix::C(w.offset));
                let col = this.em.mul(from, w.along);
                let base = this.em.add(first, col);
                let access = BlockAccess {
                    buffer: w.buffer,
                    base: this.em.val(base),
                    strides: vec![w.step, w.along],
                    limits: vec![lim_rows, limit],
                    shape: vec![rows, width],
                };
                ctx.accesses.insert(w.leaf, (access, fill));
            }
            ctx
        };
        let idv = self.em.b.float(identity, DType::F32);
        let acc0 = self.em.b.splat(idv, &[rows, ch]);
        let start = self.em.val(Ix::C(0));
        let end = self.em.val(Ix::C(main_end as i64));
        let args = self.em.begin_for(&[acc0]);
        let (kv, acc) = (args[0], args[1]);
        let lim = self.em.op(IndexOp::Sub, Ix::C(r as i64), Ix::V(kv));
        let lim = self.em.val(lim);
        let mut ctx = body_ctx(self, Ix::V(kv), ch, lim, other);
        let v = self.eval(red.body, &mut ctx)?;
        let v = self.tile_f32_shape(v, &[rows, ch]);
        let next = self.em.b.binary(combiner, acc, v);
        let res = self.em.end_for(start, end, ch as i64, &[acc0], &[next]);
        let mut s = self.em.b.reduce(reducer, res[0], 1);
        if tail > 0 {
            let lim = self.em.val(Ix::C(tail as i64));
            let mut ctx = body_ctx(self, Ix::C(main_end as i64), tail, lim, 0.0);
            let v = self.eval(red.body, &mut ctx)?;
            let v = self.tile_f32_shape(v, &[rows, tail]);
            let t = self.em.b.reduce(reducer, v, 1);
            s = self.em.b.binary(combiner, s, t);
        }
        if red.op == ReduceOp::Mean {
            let inv = self.em.b.float(1.0 / r as f64, DType::F32);
            s = self.em.b.binary(BinaryOp::Mul, s, inv);
        }
        // Epilogue on `[rows]` tiles.
        let mut ctx = Ctx::new(Some(s));
        for w in &walk.epilogue {
            let first = self.em.mul(o0, w.step);
            let base = self.em.add(first, Ix::C(w.offset));
            let access = BlockAccess {
                buffer: w.buffer,
                base: self.em.val(base),
                strides: vec![w.step],
                limits: vec![lim_rows],
                shape: vec![rows],
            };
            ctx.accesses.insert(w.leaf, (access, 0.0));
        }
        let v = self.eval(red.epilogue, &mut ctx)?;
        let v = self.finish_value(v, &[rows]);
        let (offset, step) = walk.store;
        let first = self.em.mul(o0, step);
        let base = self.em.add(first, Ix::C(offset));
        let base = self.em.val(base);
        self.em.b.store(
            BlockAccess {
                buffer: spec.out,
                base,
                strides: vec![step],
                limits: vec![lim_rows],
                shape: vec![rows],
            },
            v,
        );
        Ok(grid)
    }

    /// A body value as an f32 tile of `shape`.
    fn tile_f32_shape(&mut self, v: ValueId, shape: &[usize]) -> ValueId {
        let v = if self.em.b.ty(v).shape().is_none() {
            self.em.b.splat(v, shape)
        } else {
            v
        };
        if self.em.b.ty(v).dtype() != DType::F32 {
            self.em.b.cast(v, DType::F32)
        } else {
            v
        }
    }

    /// A body value as an f32 tile of `n` elements.
    fn tile_f32(&mut self, v: ValueId, n: usize) -> ValueId {
        self.tile_f32_shape(v, &[n])
    }

    // ---------------------------------------------------------------- matmul

    fn matmul(&mut self, sizes: &TileSizes) -> Result<[u32; 3], CompileError> {
        let spec = self.spec;
        let KernelKind::MatMul {
            batch,
            m,
            k,
            n,
            a_buffer,
            a,
            transpose_a,
            b_buffer,
            b,
            transpose_b,
            epilogue,
        } = &spec.kind
        else {
            return Err(self.internal("not a matmul".into()));
        };
        let (m, k, n) = (*m, *k, *n);
        let nb: usize = batch.iter().product();
        let (bm, bn) = matmul_tile(self.target, sizes, (m, n, nb))?;
        let bk = sizes.bk;
        let (grid, pids) =
            self.programs(&[n.div_ceil(bn) as u64, m.div_ceil(bm) as u64, nb as u64])?;
        let row0 = self.em.mul(pids[1], bm as i64);
        let col0 = self.em.mul(pids[0], bn as i64);
        let bidx = self.em.unravel(pids[2], batch);
        // Rows (columns) left from the tile's origin; when the tile divides the extent
        // every tile is full and the limit is the tile's own extent, a constant, so the
        // lowerings drop the bounds checks of the operand loads and the store.
        let lim_m = if m % bm == 0 {
            Ix::C(bm as i64)
        } else {
            self.em.op(IndexOp::Sub, Ix::C(m as i64), row0)
        };
        let lim_m = self.em.val(lim_m);
        let lim_n = if n % bn == 0 {
            Ix::C(bn as i64)
        } else {
            self.em.op(IndexOp::Sub, Ix::C(n as i64), col0)
        };
        let lim_n = self.em.val(lim_n);

        // Operand strides: (rows, cols) of the logical [M, K] / [K, N] and batch part.
        let operand = |view: &StridedView, transposed: bool| -> (i64, i64, Vec<i64>) {
            let r = view.strides.len();
            let (s0, s1) = (view.strides[r - 2], view.strides[r - 1]);
            let (rows, cols) = if transposed { (s1, s0) } else { (s0, s1) };
            (rows, cols, view.strides[..r - 2].to_vec())
        };
        let (sa_m, sa_k, sa_batch) = operand(a, *transpose_a);
        let (sb_k, sb_n, sb_batch) = operand(b, *transpose_b);
        let a_b = if sa_batch.is_empty() {
            Ix::C(a.offset)
        } else {
            self.em.offset(a.offset, &bidx, &sa_batch)
        };
        let t = self.em.mul(row0, sa_m);
        let a_base = self.em.add(a_b, t);
        let b_b = if sb_batch.is_empty() {
            Ix::C(b.offset)
        } else {
            self.em.offset(b.offset, &bidx, &sb_batch)
        };
        let t = self.em.mul(col0, sb_n);
        let b_base = self.em.add(b_b, t);

        let zero = self.em.b.float(0.0, DType::F32);
        let acc0 = self.em.b.splat(zero, &[bm, bn]);
        let start = self.em.val(Ix::C(0));
        let end = self.em.val(Ix::C(k as i64));
        let args = self.em.begin_for(&[acc0]);
        let (kv, acc) = (args[0], args[1]);
        let lim_k = if k % bk == 0 {
            Ix::C(bk as i64)
        } else {
            self.em.op(IndexOp::Sub, Ix::C(k as i64), Ix::V(kv))
        };
        let lim_k = self.em.val(lim_k);
        let t = self.em.mul(Ix::V(kv), sa_k);
        let ab = self.em.add(a_base, t);
        let ab = self.em.val(ab);
        let at = self.em.b.load(
            BlockAccess {
                buffer: *a_buffer,
                base: ab,
                strides: vec![sa_m, sa_k],
                limits: vec![lim_m, lim_k],
                shape: vec![bm, bk],
            },
            self.dtype_of_buffer(*a_buffer),
            0.0,
        );
        let at = self.tile_cast_f32(at);
        let t = self.em.mul(Ix::V(kv), sb_k);
        let bb = self.em.add(b_base, t);
        let bb = self.em.val(bb);
        let bt = self.em.b.load(
            BlockAccess {
                buffer: *b_buffer,
                base: bb,
                strides: vec![sb_k, sb_n],
                limits: vec![lim_k, lim_n],
                shape: vec![bk, bn],
            },
            self.dtype_of_buffer(*b_buffer),
            0.0,
        );
        let bt = self.tile_cast_f32(bt);
        let next = self.em.b.dot(at, bt, acc);
        let res = self.em.end_for(start, end, bk as i64, &[acc0], &[next]);

        // Epilogue on [BM, BN] tiles.
        let mut ctx = Ctx::new(Some(res[0]));
        let rank = spec.out_shape.len();
        for l in self.leaves(*epilogue) {
            let (buffer, view) = self.leaf_view(l)?;
            if view.shape != spec.out_shape {
                return Err(self.internal(format!(
                    "epilogue leaf shape {:?} differs from the output {:?}",
                    view.shape, spec.out_shape
                )));
            }
            let (s_m, s_n) = (view.strides[rank - 2], view.strides[rank - 1]);
            let bpart = self
                .em
                .offset(view.offset, &bidx, &view.strides[..rank - 2]);
            let t = self.em.mul(row0, s_m);
            let base = self.em.add(bpart, t);
            let t = self.em.mul(col0, s_n);
            let base = self.em.add(base, t);
            let access = BlockAccess {
                buffer,
                base: self.em.val(base),
                strides: vec![s_m, s_n],
                limits: vec![lim_m, lim_n],
                shape: vec![bm, bn],
            };
            ctx.accesses.insert(l, (access, 0.0));
        }
        let v = self.eval(*epilogue, &mut ctx)?;
        let v = self.finish_value(v, &[bm, bn]);
        let st = &spec.store;
        let (s_m, s_n) = (st.strides[rank - 2], st.strides[rank - 1]);
        let bpart = if st.is_contiguous() {
            let t = self.em.mul(pids[2], (m * n) as i64);
            self.em.add(Ix::C(st.offset), t)
        } else {
            self.em.offset(st.offset, &bidx, &st.strides[..rank - 2])
        };
        let t = self.em.mul(row0, s_m);
        let base = self.em.add(bpart, t);
        let t = self.em.mul(col0, s_n);
        let base = self.em.add(base, t);
        let base = self.em.val(base);
        self.em.b.store(
            BlockAccess {
                buffer: spec.out,
                base,
                strides: vec![s_m, s_n],
                limits: vec![lim_m, lim_n],
                shape: vec![bm, bn],
            },
            v,
        );
        Ok(grid)
    }

    fn tile_cast_f32(&mut self, v: ValueId) -> ValueId {
        if self.em.b.ty(v).dtype() != DType::F32 {
            self.em.b.cast(v, DType::F32)
        } else {
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::affine_stride;

    #[test]
    fn affine_walks_are_recognised() {
        // Row-major contiguous [5, 7] (a reduction over the last axis of [5, 7, 300]).
        assert_eq!(affine_stride(&[5, 7], &[2100, 300]), Some(300));
        // Extent-1 axes do not matter; one position or none walks with stride 0.
        assert_eq!(affine_stride(&[1, 7, 1], &[9, 4, 123]), Some(4));
        assert_eq!(affine_stride(&[1, 1], &[3, 5]), Some(0));
        assert_eq!(affine_stride(&[], &[]), Some(0));
        // A column walk (sum over axis 0 of [300, 35]).
        assert_eq!(affine_stride(&[35], &[1]), Some(1));
        // Kept axes [5, 300] of a middle-axis reduction: not one stride.
        assert_eq!(affine_stride(&[5, 300], &[2100, 1]), None);
        // A permuted view.
        assert_eq!(affine_stride(&[4, 3], &[1, 4]), None);
    }
}
