//! Lowering of a tile kernel to a per-thread (SIMT) program.
//!
//! One program instance of the tile kernel is one workgroup of `T` threads, `T` the
//! largest power of two not above `min(target.workgroup_size, target.max_workgroup_size)`
//! (256 on WGSL and PTX for GPUs, 64 for WGSL on a CPU adapter). Every tile value becomes a fixed set of registers per thread (slots are
//! unrolled statically); scalars are uniform and computed redundantly by every thread.
//!
//! Layouts (see [`ThreadGrid`]):
//! - rank-1 tile `[B]`, *linear* layout (the default): element `i` lives in thread
//!   `i % T`, register slot `i / T`. Threads whose element index is `>= B` own nothing
//!   in that slot (masked). In an elementwise kernel whose rank-1 tiles span a multiple
//!   of `4T` (`vector_width`: CPU adapters, 64 threads over 256-element tiles) the
//!   linear layout is the *vector* one instead: slot `s` of thread `tid` holds element
//!   `(s / 4) 4T + 4 tid + s % 4`, so a contiguous access whose base is a known
//!   multiple of 4 (`Lower::divisor` tracks divisibility through the index math) moves
//!   each run of 4 slots by one 16-byte [`Stmt::LoadGlobal4`] / [`Stmt::StoreGlobal4`],
//!   guarded by its last element being in range; when the limit is not a known
//!   multiple of 4 the other branch moves the run element by element. Other accesses
//!   of such a kernel go element by element in the same layout.
//! - rank-2 tile `[M, N]`: the threads form a `TM x TN` grid (`ty = tid / TN`,
//!   `tx = tid % TN`; 16 x 16 for 256 threads, 4 x 8 for 32). Slot `(sr, sc)` of thread
//!   `(ty, tx)` holds element `(sr*TM + ty, sc*TN + tx)` (the *cyclic* micro-tile:
//!   neighbouring threads own neighbouring columns, so global loads and stores coalesce
//!   and the shared-memory reads of `dot` are conflict free). Register `sr*SC + sc` with
//!   `SC = ceil(N/TN)` slots per row.
//! - rank-1 tile `[M]`, *row* layout: element `i` lives in every thread of thread-grid
//!   row `ty = i % TM`, slot `i / TM` (replicated over `tx`): exactly the rows a thread
//!   owns in a rank-2 tile `[M, N]`. The result of a rank-2 `Reduce` along axis 1 is in
//!   this layout, and `Expand` along axis 1 (`[M] -> [M, N]`) takes its operand in it, so
//!   slot `(sr, sc)` of the expansion is slot `sr` of the operand: no data movement.
//! - rank-1 tile `[N]`, *column* layout: the same over thread-grid columns (`tx = j % TN`,
//!   slot `j / TN`, replicated over `ty`): results of `Reduce` along axis 0, operands of
//!   `Expand` along axis 0.
//!
//! Which layout a rank-1 value gets is decided before lowering (`infer_layouts`):
//! reductions give row / column layouts; splats, rank-1 loads and iotas cost the same
//! in every layout (a splat is a single operand, a load or iota is done in whichever
//! layout), so their uses decide (`Expand` along axis 1 wants rows, along axis 0
//! columns); elementwise results join their operands' layouts, and loop-carried values
//! join their initial and yielded values' (all iterated to a fixed point); disagreeing
//! layouts meet in the linear one. So the online-softmax statistics of flash attention
//! (row max and row sum carried through the key loop, expanded back over the rows)
//! never move, and a per-key vector loaded for a column expansion is loaded in the
//! column layout. Where an operand's layout differs from the one needed (a rank-1
//! `Reduce` of a row-layout value, an elementwise op mixing layouts, one vector expanded
//! along both axes), it is moved through shared memory at the use: one owner per
//! element writes (`tx == 0` for rows, `ty == 0` for columns), a barrier, every thread
//! reads its slots, a barrier (bool vectors travel as i32 0 / 1). A move inside a loop
//! body is repeated every iteration.
//!
//! `Iota` needs no data: each slot's position is `ty + sr*TM`, `tx + sc*TN`, or
//! `tid + s*T` (the layout's thread coordinate plus the slot offset).
//!
//! Memory: block loads compute `base + sum idx*stride` per element and guard the load
//! by its mask with an `If` (a masked element is never read, it takes `other`); stores
//! are guarded the same way; a rank-0 store is done by thread 0 alone. A rank-1 tile in
//! the row (column) layout is loaded by every thread of a thread-grid row (column) and
//! stored by its owner (`tx == 0`, `ty == 0`) only.
//!
//! `Reduce` (rank-1 tile to scalar): each thread combines its own slots, then a
//! shared-memory tree over the threads (barrier per level) and every thread reads the
//! result back (a barrier follows so the array can be reused).
//!
//! `Reduce` of a rank-2 tile along axis 1: each thread combines the `SC` slots of each
//! of its micro-rows (masking columns `>= N`), stores the partial at `p[row*TN + tx]`,
//! a barrier, then every thread combines the `min(TN, N)` partials of each of its rows
//! in column order (all `TN` threads of a row compute the same value: the row layout),
//! a barrier. Along axis 0 the same with rows and columns exchanged. Two barriers per
//! reduction, no dependence on subgroup operations unless the target offers them: where
//! the target's `subgroup_size` equals `TN` (lavapipe: 8, the 8 x 8 grid of 64 threads),
//! a thread-grid row is one subgroup, and an axis-1 reduction reads the row's `min(TN,
//! N)` partials by subgroup shuffles ([`Stmt::Shuffle`]) and combines them in the same
//! column order: the same result, bit for bit, without shared memory or barrier.
//!
//! `Dot`: the `A [BM,BK]` and `B [BK,BN]` tiles are staged in workgroup memory (A with
//! its rows padded to a multiple of `TM`, B with its row pitch padded to a multiple of
//! `TN`, so every thread may read its whole micro-tile without bounds checks). A `Load`
//! whose only uses are `Dot` operands is not distributed to registers at all: it becomes
//! a cooperative load straight into shared memory (consecutive threads fetch consecutive
//! elements); an operand computed in registers (attention's `P`) is written to shared
//! memory by the threads that own its elements. Then a barrier, a loop over `k` in
//! which each thread does
//! `(M/TM) x (N/TN)` `Fma`s from shared memory, and a barrier before the arrays are
//! reused. On a target whose `stage_dot_operands` is false (CPU adapters), a `Dot` whose
//! operands are both such loads skips shared memory: in the loop over `k` each thread
//! loads its own `M/TM` elements of A's column and `N/TN` of B's row from the buffers
//! (guarded as the cooperative load, fill value outside) for the same `Fma`s in the same
//! order, so the kernel has no barrier at all (lavapipe runs kernels with barriers as
//! coroutines, at about half the speed). With subgroup rows (above), a `Dot` whose B is
//! such a load holds A in registers in the thread-grid layout instead, computed there
//! (attention's `P`, `dS`) or loaded there once (each thread reads `(M/TM) x (K/TN)`
//! elements, not `(M/TM) x K`): `A[r, k]` is in lane `k % TN` of the subgroup of the
//! threads that need it, so each step of the loop over `k` takes it by a shuffle
//! (`dot_shuffled`), with the same `Fma`s in the same order. Then every attention
//! kernel is free of barriers and workgroup memory, and a matmul reads A with a
//! `TN`-th of the loads (on lavapipe, twice the speed: the loads of A were gathers of
//! one address per lane).
//!
//! Every use of shared memory ends with a barrier, so consecutive uses never race; this
//! is also why f32 reductions and layout moves reuse the array that stages `dot`'s A
//! operand (one array per purpose otherwise, sized to its largest use).
//!
//! Floats of every storage dtype are computed in f32 (f16/bf16 are converted by the
//! loads and stores). A `Cast` to f16 rounds through an f16 register where the target
//! stores f16; a `Cast` to bf16 rounds in registers with integer ops on the f32 bits
//! (round to nearest even, NaN kept a NaN: `round_bf16`), so every SIMT target does it
//! the same way, and the result stays an f32 holding a bf16 value. On WGSL, which has
//! no bf16 conversion, every value stored to a bf16 buffer is rounded that way first
//! (the printer then keeps its top 16 bits); PTX's store converts with `cvt.rn`.

use super::ir::{IntOp, Operand, Reg, SType, SharedArray, SimtBuffer, SimtKernel, Special, Stmt};
use crate::error::CompileError;
use crate::graph::{BinaryOp, CompareOp, DType, ReduceOp, UnaryOp};
use crate::target::{Target, TargetKind};
use crate::tile::{Access, Block, BlockAccess, IndexOp, Inst, InstKind, TileKernel, Ty, ValueId};
use std::collections::{HashMap, HashSet};

/// The workgroup size GPU target records ask for (`Target::workgroup_size`; the
/// lowering reads the record, capped by `max_workgroup_size`).
pub const PREFERRED_WORKGROUP_SIZE: u32 = 256;

/// How the threads of a workgroup are arranged for rank-2 tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadGrid {
    /// Threads per workgroup `T` (a power of two).
    pub threads: u32,
    /// Thread rows `TM` (for rank-2 tiles).
    pub rows: u32,
    /// Thread columns `TN` (`rows * cols == threads`, `cols >= rows`).
    pub cols: u32,
}

impl ThreadGrid {
    /// The arrangement used for a target: `T` = the largest power of two not above
    /// `min(workgroup_size, max_workgroup_size)` (256 on GPUs, 64 on CPU adapters),
    /// split into `TM x TN` as square as possible.
    pub fn for_target(target: &Target) -> Result<ThreadGrid, CompileError> {
        let cap = target.workgroup_size.min(target.max_workgroup_size);
        if cap == 0 {
            return Err(CompileError::Limit {
                kernel: String::new(),
                target: target.kind.name().to_string(),
                limit: "max_workgroup_size",
                needed: 1,
                available: 0,
            });
        }
        let log = 31 - cap.leading_zeros();
        let threads = 1u32 << log;
        let cols = 1u32 << log.div_ceil(2);
        Ok(ThreadGrid {
            threads,
            rows: threads / cols,
            cols,
        })
    }
}

/// Greatest common divisor (`gcd(0, x) = x`).
fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Contiguous elements per run of a thread's slots in the linear layout of `k`: 4 (the
/// *vector layout*: slot `s` of thread `tid` holds element `(s / 4) * 4T + 4 tid + s % 4`,
/// so contiguous accesses move 16-byte vectors, [`Stmt::LoadGlobal4`]) for a kernel
/// that is elementwise on rank-1 tiles, every one of which spans a multiple of `4T`
/// elements (no rank-2 tile, `Reduce`, `Dot`, `Expand` or loop, so no value ever
/// changes layout); 1 (the plain linear layout) otherwise. On GPU records an
/// elementwise tile has one element per thread (1); on CPU adapters (64 threads,
/// 256-element tiles) it is 4: there each scalar load is a gather across the SIMD
/// lanes and a vector load one wide load per lane.
fn vector_width(k: &TileKernel, g: ThreadGrid) -> i64 {
    const V: usize = 4;
    let run = V * g.threads as usize;
    let mut tiles = false;
    for t in &k.values {
        match t.shape() {
            Some([n]) if n % run == 0 => tiles = true,
            Some(_) => return 1,
            None => {}
        }
    }
    let elementwise = k.body.insts.iter().all(|i| {
        !matches!(
            i.kind,
            InstKind::For { .. }
                | InstKind::Reduce { .. }
                | InstKind::Dot { .. }
                | InstKind::Expand { .. }
        )
    });
    if tiles && elementwise {
        V as i64
    } else {
        1
    }
}

/// The thread grid of `target` when its rows are subgroups (the target's
/// `subgroup_size` is the grid's column count, above 1): then row reductions of rank-2
/// tiles and register `Dot` operands move by subgroup shuffles, without barriers, and
/// kernel builders may prefer tiles of one row per thread-grid row.
pub fn subgroup_rows(target: &Target) -> Option<ThreadGrid> {
    let g = ThreadGrid::for_target(target).ok()?;
    (g.cols > 1 && target.subgroup_size == Some(g.cols)).then_some(g)
}

/// A `Dot`'s value: its accumulator registers, in the thread-grid layout.
fn dot_result(rs: Vec<Reg>) -> Val {
    Val::Tile(Lay::Lin, rs.into_iter().map(Operand::Reg).collect())
}

/// Lowers one tile kernel for a SIMT target (WGSL or PTX).
pub fn lower_kernel(kernel: &TileKernel, target: &Target) -> Result<SimtKernel, CompileError> {
    let grid = ThreadGrid::for_target(target).map_err(|e| match e {
        CompileError::Limit {
            target,
            limit,
            needed,
            available,
            ..
        } => CompileError::Limit {
            kernel: kernel.name.clone(),
            target,
            limit,
            needed,
            available,
        },
        e => e,
    })?;
    check_kernel(kernel, target)?;
    let mut l = Lower::new(kernel, target, grid);
    l.prologue();
    let body = kernel.body.clone();
    l.block(&body)?;
    let out = l.finish()?;
    Ok(out)
}

/// Checks what the target record allows before lowering: dtypes, grid, buffer count.
fn check_kernel(k: &TileKernel, target: &Target) -> Result<(), CompileError> {
    let tname = target.kind.name().to_string();
    let unsupported = |what: String| CompileError::Unsupported {
        target: tname.clone(),
        kernel: k.name.clone(),
        what,
    };
    if target.subgroup_size.is_some() && target.kind != TargetKind::Wgsl {
        return Err(unsupported(format!(
            "subgroup operations (`subgroup_size` {:?}) on {tname}: only WGSL has them",
            target.subgroup_size
        )));
    }
    for p in &k.params {
        if let Some(why) = target.missing_storage(p.dtype) {
            return Err(unsupported(format!("{why} (buffer `{}`)", p.name)));
        }
    }
    for t in &k.values {
        let d = t.dtype();
        // bf16 values live in f32 registers and are rounded with integer ops
        // (`round_bf16`): only bf16 buffers need the target's bf16 storage (checked with
        // the params above). f16 values round through f16 registers.
        if d != DType::BF16 {
            if let Some(why) = target.missing_storage(d) {
                return Err(unsupported(why));
            }
        }
        if let Some(s) = t.shape() {
            if s.is_empty() || s.len() > 2 {
                return Err(unsupported(format!("a tile of rank {}", s.len())));
            }
            if s.contains(&0) {
                return Err(unsupported("an empty tile".into()));
            }
        }
    }
    let limit = |limit: &'static str, needed: usize, available: usize| CompileError::Limit {
        kernel: k.name.clone(),
        target: tname.clone(),
        limit,
        needed,
        available,
    };
    for &g in &k.grid {
        if g > target.max_grid_dim {
            return Err(limit(
                "max_grid_dim",
                g as usize,
                target.max_grid_dim as usize,
            ));
        }
    }
    if k.params.len() > target.max_storage_buffers {
        return Err(limit(
            "max_storage_buffers",
            k.params.len(),
            target.max_storage_buffers,
        ));
    }
    Ok(())
}

/// erf's Maclaurin coefficients `2/sqrt(pi) * (-1)^n / (n! (2n+1))` for n = 6 down to 0
/// (Horner order in `x^2`).
const ERF_SERIES: [f64; 7] = [
    2.0 / (1.772_453_850_905_516 * 720.0 * 13.0),
    -2.0 / (1.772_453_850_905_516 * 120.0 * 11.0),
    2.0 / (1.772_453_850_905_516 * 24.0 * 9.0),
    -2.0 / (1.772_453_850_905_516 * 6.0 * 7.0),
    2.0 / (1.772_453_850_905_516 * 2.0 * 5.0),
    -2.0 / (1.772_453_850_905_516 * 3.0),
    2.0 / 1.772_453_850_905_516,
];

/// Abramowitz-Stegun 7.1.26: `p`.
const ERF_AS_P: f64 = 0.327_591_1;

/// Abramowitz-Stegun 7.1.26: `a1 .. a5`.
const ERF_AS: [f64; 5] = [
    0.254_829_592,
    -0.284_496_736,
    1.421_413_741,
    -1.453_152_027,
    1.061_405_429,
];

/// Register type holding elements of a dtype in arithmetic (every float in f32, unlike
/// [`SType::of`]: f16 and bf16 are storage formats here).
pub fn register_type(d: DType) -> SType {
    match d {
        DType::F32 | DType::F16 | DType::BF16 => SType::F32,
        DType::I32 => SType::I32,
        DType::U32 => SType::U32,
        DType::Bool => SType::Bool,
    }
}

/// `x` rounded to the nearest bf16 (ties to even; a NaN stays a quiet NaN of the same
/// sign), as an f32: the host-side twin of the register sequence of `round_bf16`.
pub fn round_bf16_bits(x: f32) -> f32 {
    let b = x.to_bits();
    if x.is_nan() {
        return f32::from_bits((b & 0xffff_0000) | 0x0040_0000);
    }
    let r = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(r)
}

/// An immediate of a dtype.
fn imm(v: f64, d: DType) -> Operand {
    match d {
        DType::F32 | DType::F16 | DType::BF16 => Operand::Float(v, SType::F32),
        DType::I32 => Operand::Int((v as i64).clamp(i32::MIN as i64, i32::MAX as i64)),
        DType::U32 => Operand::Int((v as i64).clamp(0, u32::MAX as i64)),
        DType::Bool => Operand::Bool(v != 0.0),
    }
}

/// The lowered form of a tile-IR value.
#[derive(Clone, Debug)]
enum Val {
    /// A uniform scalar.
    Scalar(Operand),
    /// A tile: one operand per register slot of its layout (always [`Lay::Lin`] for
    /// rank-2 tiles).
    Tile(Lay, Vec<Operand>),
    /// A splat tile: every element is this operand, in whatever layout a use needs.
    Uniform(Operand),
    /// A load staged into shared memory by the `Dot`s that use it.
    Deferred,
}

/// Layout of a rank-1 tile (rank-2 tiles always use the thread-grid layout, tagged
/// [`Lay::Lin`]). See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Lay {
    /// No preference (a splat, or derived only from splats); analysis only: such a
    /// value is materialised in [`Lay::Lin`] unless it is a splat.
    Any,
    /// Element `i` in thread `i % T`, slot `i / T`.
    Lin,
    /// Element `i` in every thread of thread-grid row `i % TM`, slot `i / TM`.
    Rows,
    /// Element `j` in every thread of thread-grid column `j % TN`, slot `j / TN`.
    Cols,
}

impl Lay {
    /// The least layout covering both (disagreeing concrete layouts meet in `Lin`).
    fn join(self, o: Lay) -> Lay {
        match (self, o) {
            (Lay::Any, x) | (x, Lay::Any) => x,
            (x, y) if x == y => x,
            _ => Lay::Lin,
        }
    }
}

/// One tile axis as the threads cover it.
#[derive(Clone, Copy, Debug)]
struct AxisSlots {
    /// The thread's coordinate on this axis (`tid`, `ty` or `tx`; `tid * V` in the
    /// vector layout).
    thread: Operand,
    /// Distance between consecutive slots (`T`, `TM` or `TN`), or between consecutive
    /// runs of `vec` slots (`V * T`).
    step: i64,
    /// Number of slots.
    count: usize,
    /// Tile extent.
    extent: usize,
    /// Slots per run of contiguous elements: `V` for the linear layout of a vector
    /// kernel ([`vector_width`]), 1 otherwise.
    vec: i64,
}

impl AxisSlots {
    /// Position of slot `s` along the axis, less the thread coordinate.
    fn offset(&self, s: i64) -> i64 {
        (s / self.vec) * self.step + s % self.vec
    }

    /// One more than the largest thread coordinate.
    fn span(&self) -> i64 {
        if self.vec == 1 {
            self.step
        } else {
            self.step - self.vec + 1
        }
    }
}

/// Purposes of shared arrays (each purpose reuses one array, sized to its largest use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SharedUse {
    Reduce(SType),
    DotA,
    DotB,
}

/// A rank-1 access moved in groups of 4 contiguous elements ([`Lower::vector_access`]).
struct VectorAccess {
    /// Per group: index of its first element, whether all four are in range, and the
    /// first element's position past the thread's coordinate.
    groups: Vec<(Operand, Operand, i64)>,
    /// What the element-wise fallback of a cut group needs.
    tail: VectorTail,
}

/// The limit side of a [`VectorAccess`].
#[derive(Clone, Copy)]
struct VectorTail {
    /// The access's limit.
    lim: Operand,
    /// Whether the limit is a multiple of 4, so that a group is in range whole or not at
    /// all (no element-wise fallback).
    whole: bool,
    /// The thread's coordinate (`tid * 4`).
    thread: Operand,
}

/// One `Dot` operand read in place by each thread ([`Lower::dot_direct`]).
struct DirectOperand {
    /// Kernel parameter read.
    buffer: usize,
    /// Register type of its elements.
    t: SType,
    /// Fill value of elements outside the tile or the access's limits.
    other: Operand,
    /// The access's limit along the contraction axis.
    k_lim: Operand,
    /// The access's stride along the contraction axis.
    k_stride: i64,
    /// Per slot: whether this thread's row (column) is inside the tile and the limit.
    valid: Vec<Operand>,
    /// Per slot: the element index at `k = 0`.
    addr: Vec<Operand>,
}

struct Lower<'a> {
    k: &'a TileKernel,
    target: &'a Target,
    g: ThreadGrid,
    regs: Vec<SType>,
    shared: Vec<SharedArray>,
    shared_by_use: HashMap<SharedUse, usize>,
    out: Vec<Vec<Stmt>>,
    vals: Vec<Option<Val>>,
    deferred: HashMap<ValueId, (BlockAccess, f64)>,
    /// Layout of every rank-1 tile value ([`infer_layouts`]).
    lays: HashMap<ValueId, Lay>,
    tid: Operand,
    ty: Operand,
    tx: Operand,
    /// Whether a thread-grid row is one subgroup (the target's `subgroup_size` is the
    /// grid's column count), so its threads exchange registers by [`Stmt::Shuffle`].
    rows_are_subgroups: bool,
    /// Contiguous elements per run of a thread's slots in the linear layout
    /// ([`vector_width`]: 4 or 1).
    vec: i64,
    /// `tid * vec`: the thread's coordinate in the linear layout.
    tid_v: Operand,
    /// A known divisor of each integer register computed by [`Lower::iop`] (absent: 1).
    divisors: HashMap<Reg, i64>,
    /// Buffers moved by [`Stmt::LoadGlobal4`] / [`Stmt::StoreGlobal4`].
    vector_buffers: std::collections::BTreeSet<usize>,
}

impl<'a> Lower<'a> {
    fn new(k: &'a TileKernel, target: &'a Target, g: ThreadGrid) -> Self {
        let mut deferred = HashMap::new();
        find_deferred(k, &mut deferred);
        Lower {
            k,
            target,
            g,
            regs: Vec::new(),
            shared: Vec::new(),
            shared_by_use: HashMap::new(),
            out: vec![Vec::new()],
            vals: vec![None; k.values.len()],
            deferred,
            lays: infer_layouts(k),
            tid: Operand::Int(0),
            ty: Operand::Int(0),
            tx: Operand::Int(0),
            rows_are_subgroups: subgroup_rows(target) == Some(g),
            vec: vector_width(k, g),
            tid_v: Operand::Int(0),
            divisors: HashMap::new(),
            vector_buffers: Default::default(),
        }
    }

    // ---- errors ----

    fn unsupported(&self, what: impl Into<String>) -> CompileError {
        CompileError::Unsupported {
            target: self.target.kind.name().to_string(),
            kernel: self.k.name.clone(),
            what: what.into(),
        }
    }

    fn internal(&self, message: impl Into<String>) -> CompileError {
        CompileError::Internal {
            stage: "simt",
            message: format!("kernel `{}`: {}", self.k.name, message.into()),
        }
    }

    // ---- emission helpers ----

    fn reg(&mut self, t: SType) -> Reg {
        self.regs.push(t);
        Reg(self.regs.len() as u32 - 1)
    }

    fn emit(&mut self, s: Stmt) {
        // WGSL has no bf16 conversion: a value stored to a bf16 buffer is rounded here
        // and the printer stores its top 16 bits (PTX converts with `cvt.rn.bf16.f32`).
        let s = match s {
            Stmt::StoreGlobal {
                buffer,
                index,
                value,
            } if self.target.kind == TargetKind::Wgsl
                && self.k.params.get(buffer).map(|p| p.dtype) == Some(DType::BF16) =>
            {
                let v = self.convert(value, SType::F32);
                let value = self.round_bf16(v);
                Stmt::StoreGlobal {
                    buffer,
                    index,
                    value,
                }
            }
            s => s,
        };
        self.out.last_mut().expect("an open block").push(s);
    }

    fn push_block(&mut self) {
        self.out.push(Vec::new());
    }

    fn pop_block(&mut self) -> Vec<Stmt> {
        self.out.pop().expect("a pushed block")
    }

    fn op_type(&self, o: Operand) -> SType {
        match o {
            Operand::Reg(r) => self.regs[r.0 as usize],
            Operand::Int(_) => SType::I32,
            Operand::Float(_, t) => t,
            Operand::Bool(_) => SType::Bool,
        }
    }

    /// Integer / predicate op with constant folding and trivial identities.
    fn iop(&mut self, op: IntOp, a: Operand, b: Operand) -> Operand {
        use Operand::{Bool, Int};
        match (op, a, b) {
            (IntOp::Lt, Int(x), Int(y)) => return Bool(x < y),
            (IntOp::And, Bool(x), Bool(y)) => return Bool(x && y),
            (IntOp::And, Bool(true), o) | (IntOp::And, o, Bool(true)) => return o,
            (IntOp::And, Bool(false), _) | (IntOp::And, _, Bool(false)) => return Bool(false),
            (IntOp::Add, x, Int(0)) | (IntOp::Add, Int(0), x) => return x,
            (IntOp::Sub, x, Int(0)) => return x,
            (IntOp::Mul, x, Int(1)) | (IntOp::Mul, Int(1), x) => return x,
            (IntOp::Mul, _, Int(0)) | (IntOp::Mul, Int(0), _) => return Int(0),
            (IntOp::Div, x, Int(1)) => return x,
            (IntOp::Rem, _, Int(1)) => return Int(0),
            (_, Int(x), Int(y)) => {
                let v = match op {
                    IntOp::Add => Some(x + y),
                    IntOp::Sub => Some(x - y),
                    IntOp::Mul => x.checked_mul(y),
                    IntOp::Div if y != 0 => Some(x / y),
                    IntOp::Rem if y != 0 => Some(x % y),
                    IntOp::Min => Some(x.min(y)),
                    IntOp::Max => Some(x.max(y)),
                    _ => None,
                };
                if let Some(v) = v.filter(|v| i32::try_from(*v).is_ok()) {
                    return Int(v);
                }
            }
            _ => {}
        }
        let t = match op {
            c if c.is_comparison() || c == IntOp::And => SType::Bool,
            _ => match (a, b) {
                (Operand::Reg(_), _) => self.op_type(a),
                (_, Operand::Reg(_)) => self.op_type(b),
                _ => SType::I32,
            },
        };
        let dst = self.reg(t);
        self.emit(Stmt::Int { dst, op, a, b });
        if matches!(t, SType::I32 | SType::U32) {
            let (da, db) = (self.divisor(a), self.divisor(b));
            let d = match (op, b) {
                (IntOp::Add | IntOp::Sub | IntOp::Min | IntOp::Max, _) => gcd(da, db),
                (IntOp::Mul, _) => da.checked_mul(db).unwrap_or(1),
                (IntOp::Rem, Operand::Int(m)) => gcd(da, m.abs()),
                (IntOp::Shl, Operand::Int(k @ 0..=31)) => da.checked_mul(1 << k).unwrap_or(1),
                _ => 1,
            };
            if d != 1 {
                self.divisors.insert(dst, d);
            }
        }
        Operand::Reg(dst)
    }

    /// A known divisor of an integer operand's value (0 for the constant 0, which every
    /// number divides; 1 when nothing is known). Values are i32 and wrap modulo 2^32,
    /// which keeps divisibility by powers of two (all this is asked about).
    fn divisor(&self, o: Operand) -> i64 {
        match o {
            Operand::Int(v) => v.checked_abs().unwrap_or(1),
            Operand::Reg(r) => self.divisors.get(&r).copied().unwrap_or(1),
            _ => 1,
        }
    }

    fn mov_new(&mut self, src: Operand, t: SType) -> Reg {
        let dst = self.reg(t);
        self.emit(Stmt::Mov { dst, src });
        dst
    }

    /// Converts an operand to a register type (no-op if it already has it).
    fn convert(&mut self, o: Operand, t: SType) -> Operand {
        if self.op_type(o) == t {
            return o;
        }
        match (o, t) {
            (Operand::Int(v), SType::I32 | SType::U32) => return Operand::Int(v),
            (Operand::Int(v), SType::F32 | SType::F16) => return Operand::Float(v as f64, t),
            (Operand::Float(v, _), SType::F32 | SType::F16) => return Operand::Float(v, t),
            (Operand::Bool(b), SType::F32 | SType::F16) => {
                return Operand::Float(b as u8 as f64, t)
            }
            (Operand::Bool(b), SType::I32 | SType::U32) => return Operand::Int(b as i64),
            _ => {}
        }
        let dst = self.reg(t);
        self.emit(Stmt::Cast { dst, src: o });
        Operand::Reg(dst)
    }

    /// `pred ? then : else` as an `If`, simplified for constant predicates.
    fn guarded(&mut self, pred: Operand, then: Vec<Stmt>, els: Vec<Stmt>) {
        match pred {
            Operand::Bool(true) => self.out.last_mut().expect("block").extend(then),
            Operand::Bool(false) => self.out.last_mut().expect("block").extend(els),
            cond => self.emit(Stmt::If { cond, then, els }),
        }
    }

    // ---- values ----

    fn bind(&mut self, v: ValueId, val: Val) {
        self.vals[v.index()] = Some(val);
    }

    fn val(&self, v: ValueId) -> Result<&Val, CompileError> {
        self.vals
            .get(v.index())
            .and_then(|x| x.as_ref())
            .ok_or_else(|| self.internal(format!("value {v} used before its definition")))
    }

    fn scalar(&self, v: ValueId) -> Result<Operand, CompileError> {
        match self.val(v)? {
            Val::Scalar(o) => Ok(*o),
            _ => Err(self.internal(format!("value {v} is not a scalar"))),
        }
    }

    /// The slot operands of a value as a tile in layout `lay` with `n` slots (scalars
    /// and splats broadcast; a rank-1 tile in another layout is converted through
    /// shared memory).
    fn elems(&mut self, v: ValueId, lay: Lay, n: usize) -> Result<Vec<Operand>, CompileError> {
        let (have, ops) = match self.val(v)? {
            Val::Scalar(o) | Val::Uniform(o) => return Ok(vec![*o; n]),
            Val::Tile(l, ops) => (*l, ops.clone()),
            Val::Deferred => {
                return Err(self.internal(format!("staged load {v} used as registers")))
            }
        };
        let ops = if have == lay {
            ops
        } else {
            let extent = match self.ty(v)?.shape() {
                Some([e]) => *e,
                _ => return Err(self.internal(format!("relayout of {v}, not a rank-1 tile"))),
            };
            let t = register_type(self.ty(v)?.dtype());
            self.relayout(&ops, have, lay, extent, t)?
        };
        if ops.len() == n {
            Ok(ops)
        } else {
            Err(self.internal(format!("value {v} has {} slots, {n} expected", ops.len())))
        }
    }

    /// The layout a value is lowered in (rank-1 tiles: from [`infer_layouts`]).
    fn lay_of(&self, v: ValueId) -> Lay {
        match self.lays.get(&v) {
            Some(Lay::Any) | None => Lay::Lin,
            Some(&l) => l,
        }
    }

    /// `(thread coordinate, slot step)` of a rank-1 layout.
    fn lay_axis(&self, lay: Lay) -> (Operand, i64) {
        match lay {
            Lay::Rows => (self.ty, self.g.rows as i64),
            Lay::Cols => (self.tx, self.g.cols as i64),
            Lay::Any | Lay::Lin => (self.tid, self.g.threads as i64),
        }
    }

    /// The slots of a rank-1 tile of `n` elements in a layout.
    fn rank1_axis(&self, n: usize, lay: Lay) -> AxisSlots {
        let (thread, step) = self.lay_axis(lay);
        if self.vec > 1 && matches!(lay, Lay::Any | Lay::Lin) {
            // `vector_width` made `n` a multiple of `V * T`.
            return AxisSlots {
                thread: self.tid_v,
                step: step * self.vec,
                count: n.div_ceil(step as usize),
                extent: n,
                vec: self.vec,
            };
        }
        AxisSlots {
            thread,
            step,
            count: n.div_ceil(step as usize),
            extent: n,
            vec: 1,
        }
    }

    /// Number of register slots of a tile shape in a layout.
    fn count(&self, shape: &[usize], lay: Lay) -> usize {
        match shape {
            [n] => n.div_ceil(self.lay_axis(lay).1 as usize),
            _ => self.axes(shape).iter().map(|a| a.count).product(),
        }
    }

    /// Layout and slot count of value `v` as it is lowered.
    fn slots_of(&self, v: ValueId) -> Result<(Lay, usize), CompileError> {
        let lay = self.lay_of(v);
        Ok(match self.ty(v)?.shape() {
            None => (lay, 1),
            Some(s) => (lay, self.count(s, lay)),
        })
    }

    /// Moves a rank-1 tile of `extent` elements from layout `from` to layout `to`
    /// through shared memory: the owners write (one thread per element: `tx == 0` for
    /// [`Lay::Rows`], `ty == 0` for [`Lay::Cols`]), a barrier, every thread reads its
    /// slots (slots beyond the extent read 0), a barrier.
    fn relayout(
        &mut self,
        ops: &[Operand],
        from: Lay,
        to: Lay,
        extent: usize,
        t: SType,
    ) -> Result<Vec<Operand>, CompileError> {
        if t == SType::Bool {
            // Through i32 (0 / 1): shared arrays of predicates do not exist in PTX.
            let mut ints = Vec::with_capacity(ops.len());
            for &o in ops {
                ints.push(self.select(o, Operand::Int(1), Operand::Int(0), SType::I32));
            }
            let moved = self.relayout(&ints, from, to, extent, SType::I32)?;
            return Ok(moved
                .into_iter()
                .map(|o| self.iop(IntOp::Gt, o, Operand::Int(0)))
                .collect());
        }
        if self.vec > 1 {
            return Err(self.internal("a layout move in a vector kernel"));
        }
        let arr = self.shared_array(SharedUse::Reduce(t), t, extent);
        let (c, step) = self.lay_axis(from);
        let owner = match from {
            Lay::Rows => self.iop(IntOp::Lt, self.tx, Operand::Int(1)),
            Lay::Cols => self.iop(IntOp::Lt, self.ty, Operand::Int(1)),
            Lay::Any | Lay::Lin => Operand::Bool(true),
        };
        for (s, &value) in ops.iter().enumerate() {
            let s = s as i64;
            let index = self.iop(IntOp::Add, c, Operand::Int(s * step));
            let inb = if (s + 1) * step <= extent as i64 {
                Operand::Bool(true)
            } else {
                self.iop(IntOp::Lt, index, Operand::Int(extent as i64))
            };
            let pred = self.iop(IntOp::And, owner, inb);
            let value = self.convert(value, t);
            let st = Stmt::StoreShared {
                array: arr,
                index,
                value,
            };
            self.guarded(pred, vec![st], vec![]);
        }
        self.emit(Stmt::Barrier);
        let (c, step) = self.lay_axis(to);
        let n = extent.div_ceil(step as usize);
        let mut out = Vec::with_capacity(n);
        for s in 0..n as i64 {
            let index = self.iop(IntOp::Add, c, Operand::Int(s * step));
            let inb = if (s + 1) * step <= extent as i64 {
                Operand::Bool(true)
            } else {
                self.iop(IntOp::Lt, index, Operand::Int(extent as i64))
            };
            let dst = self.reg(t);
            let ld = Stmt::LoadShared {
                dst,
                array: arr,
                index,
            };
            let zero = match t {
                SType::F32 | SType::F16 => Operand::Float(0.0, t),
                _ => Operand::Int(0),
            };
            let mv = Stmt::Mov { dst, src: zero };
            self.guarded(inb, vec![ld], vec![mv]);
            out.push(Operand::Reg(dst));
        }
        self.emit(Stmt::Barrier);
        Ok(out)
    }

    fn ty(&self, v: ValueId) -> Result<&'a Ty, CompileError> {
        let k: &'a TileKernel = self.k;
        k.values
            .get(v.index())
            .ok_or_else(|| self.internal(format!("value {v} has no type")))
    }

    /// Per-axis slot structure of a tile shape.
    fn axes(&self, shape: &[usize]) -> Vec<AxisSlots> {
        let g = self.g;
        match shape {
            [n] => vec![self.rank1_axis(*n, Lay::Lin)],
            [m, n] => vec![
                AxisSlots {
                    thread: self.ty,
                    step: g.rows as i64,
                    count: m.div_ceil(g.rows as usize),
                    extent: *m,
                    vec: 1,
                },
                AxisSlots {
                    thread: self.tx,
                    step: g.cols as i64,
                    count: n.div_ceil(g.cols as usize),
                    extent: *n,
                    vec: 1,
                },
            ],
            _ => vec![],
        }
    }

    // ---- kernel structure ----

    fn prologue(&mut self) {
        let lid = self.reg(SType::U32);
        self.emit(Stmt::Special {
            dst: lid,
            which: Special::LocalId,
        });
        self.tid = self.convert(Operand::Reg(lid), SType::I32);
        self.tid_v = self.iop(IntOp::Mul, self.tid, Operand::Int(self.vec));
        let has_rank2 = self
            .k
            .values
            .iter()
            .any(|t| t.shape().is_some_and(|s| s.len() == 2));
        if has_rank2 {
            let tn = Operand::Int(self.g.cols as i64);
            self.ty = self.iop(IntOp::Div, self.tid, tn);
            self.tx = self.iop(IntOp::Rem, self.tid, tn);
        }
    }

    fn finish(mut self) -> Result<SimtKernel, CompileError> {
        let bytes: usize = self
            .shared
            .iter()
            .map(|a| {
                a.len
                    * match a.ty {
                        SType::F16 => 2,
                        _ => 4,
                    }
            })
            .sum();
        if bytes > self.target.shared_memory_bytes {
            return Err(CompileError::Limit {
                kernel: self.k.name.clone(),
                target: self.target.kind.name().to_string(),
                limit: "shared_memory_bytes",
                needed: bytes,
                available: self.target.shared_memory_bytes,
            });
        }
        let body = self.out.pop().expect("the top-level block");
        Ok(SimtKernel {
            name: self.k.name.clone(),
            buffers: self
                .k
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| SimtBuffer {
                    name: p.name.clone(),
                    dtype: p.dtype,
                    len: p.len,
                    writable: p.access != Access::Read,
                    vector: self.vector_buffers.contains(&i),
                })
                .collect(),
            workgroup_size: self.g.threads,
            grid: self.k.grid,
            regs: self.regs,
            shared: self.shared,
            body,
        })
    }

    fn shared_array(&mut self, u: SharedUse, ty: SType, len: usize) -> usize {
        // Every use of shared memory ends with a barrier, so f32 reductions and layout
        // moves may share the array that stages `dot`'s A operand.
        let u = match u {
            SharedUse::Reduce(SType::F32) => SharedUse::DotA,
            u => u,
        };
        if let Some(&i) = self.shared_by_use.get(&u) {
            let a = &mut self.shared[i];
            a.len = a.len.max(len);
            return i;
        }
        self.shared.push(SharedArray { ty, len });
        let i = self.shared.len() - 1;
        self.shared_by_use.insert(u, i);
        i
    }

    fn block(&mut self, b: &Block) -> Result<(), CompileError> {
        for inst in &b.insts {
            self.inst(inst)?;
        }
        Ok(())
    }

    fn result(&self, inst: &Inst) -> Result<ValueId, CompileError> {
        inst.results
            .first()
            .copied()
            .ok_or_else(|| self.internal("an instruction without its result"))
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), CompileError> {
        match &inst.kind {
            InstKind::Iota { shape, axis } => {
                let r = self.result(inst)?;
                let val = self.iota(r, shape, *axis)?;
                self.bind(r, val);
            }
            InstKind::Expand { x, axis, size } => {
                let r = self.result(inst)?;
                let val = self.expand(*x, *axis, *size)?;
                self.bind(r, val);
            }
            InstKind::ProgramId { axis } => {
                if *axis > 2 {
                    return Err(self.internal(format!("program_id axis {axis}")));
                }
                let r = self.result(inst)?;
                let g = self.reg(SType::U32);
                self.emit(Stmt::Special {
                    dst: g,
                    which: Special::GroupId(*axis),
                });
                let o = self.convert(Operand::Reg(g), SType::I32);
                self.bind(r, Val::Scalar(o));
            }
            InstKind::ConstIndex(v) => {
                if i32::try_from(*v).is_err() {
                    return Err(self.unsupported(format!("index constant {v} beyond i32")));
                }
                let r = self.result(inst)?;
                self.bind(r, Val::Scalar(Operand::Int(*v)));
            }
            InstKind::ConstFloat(v, d) => {
                let r = self.result(inst)?;
                self.bind(r, Val::Scalar(imm(*v, *d)));
            }
            InstKind::Index { op, a, b } => {
                let r = self.result(inst)?;
                let (a, b) = (self.scalar(*a)?, self.scalar(*b)?);
                let op = match op {
                    IndexOp::Add => IntOp::Add,
                    IndexOp::Sub => IntOp::Sub,
                    IndexOp::Mul => IntOp::Mul,
                    IndexOp::Div => IntOp::Div,
                    IndexOp::Rem => IntOp::Rem,
                    IndexOp::Min => IntOp::Min,
                    IndexOp::Max => IntOp::Max,
                };
                let o = self.iop(op, a, b);
                self.bind(r, Val::Scalar(o));
            }
            InstKind::Unary { op, x } => {
                let r = self.result(inst)?;
                let d = self.ty(*x)?.dtype();
                let (lay, n) = self.slots_of(r)?;
                let xs = self.elems(*x, lay, n)?;
                let mut outs = Vec::with_capacity(n);
                for xo in xs {
                    outs.push(self.unary(*op, xo, d)?);
                }
                let val = self.wrap(r, outs)?;
                self.bind(r, val);
            }
            InstKind::Binary { op, a, b } => {
                let r = self.result(inst)?;
                let d = self.ty(r)?.dtype();
                let (lay, n) = self.slots_of(r)?;
                let (av, bv) = (self.elems(*a, lay, n)?, self.elems(*b, lay, n)?);
                let mut outs = Vec::with_capacity(n);
                for (ao, bo) in av.into_iter().zip(bv) {
                    outs.push(self.binary(*op, ao, bo, d)?);
                }
                let val = self.wrap(r, outs)?;
                self.bind(r, val);
            }
            InstKind::Compare { op, a, b } => {
                let r = self.result(inst)?;
                let (lay, n) = self.slots_of(r)?;
                let iop = match op {
                    CompareOp::Lt => IntOp::Lt,
                    CompareOp::Le => IntOp::Le,
                    CompareOp::Eq => IntOp::Eq,
                    CompareOp::Gt => IntOp::Gt,
                    CompareOp::Ge => IntOp::Ge,
                };
                let (av, bv) = (self.elems(*a, lay, n)?, self.elems(*b, lay, n)?);
                let mut outs = Vec::with_capacity(n);
                for (ao, bo) in av.into_iter().zip(bv) {
                    // Operands in one register type: a constant takes the other's.
                    let ao = match ao {
                        Operand::Reg(_) => ao,
                        _ => {
                            let t = self.op_type(bo);
                            let dst = self.reg(t);
                            self.emit(Stmt::Mov { dst, src: ao });
                            Operand::Reg(dst)
                        }
                    };
                    let dst = self.reg(SType::Bool);
                    self.emit(Stmt::Int {
                        dst,
                        op: iop,
                        a: ao,
                        b: bo,
                    });
                    outs.push(Operand::Reg(dst));
                }
                let val = self.wrap(r, outs)?;
                self.bind(r, val);
            }
            InstKind::Select { cond, a, b } => {
                let r = self.result(inst)?;
                let t = register_type(self.ty(r)?.dtype());
                let (lay, n) = self.slots_of(r)?;
                let cv = self.elems(*cond, lay, n)?;
                let (av, bv) = (self.elems(*a, lay, n)?, self.elems(*b, lay, n)?);
                let mut outs = Vec::with_capacity(n);
                for ((co, ao), bo) in cv.into_iter().zip(av).zip(bv) {
                    outs.push(self.select(co, ao, bo, t));
                }
                let val = self.wrap(r, outs)?;
                self.bind(r, val);
            }
            InstKind::Cast { x, to } => {
                let r = self.result(inst)?;
                let (lay, n) = self.slots_of(r)?;
                let xs = self.elems(*x, lay, n)?;
                let mut outs = Vec::with_capacity(n);
                for xo in xs {
                    outs.push(self.cast(xo, *to));
                }
                let val = self.wrap(r, outs)?;
                self.bind(r, val);
            }
            InstKind::Splat { x, .. } => {
                let r = self.result(inst)?;
                let o = self.scalar(*x)?;
                self.bind(r, Val::Uniform(o));
            }
            InstKind::Load { access, other } => {
                let r = self.result(inst)?;
                if self.deferred.contains_key(&r) {
                    self.bind(r, Val::Deferred);
                } else {
                    let lay = self.lay_of(r);
                    let val = self.load(access, *other, lay)?;
                    self.bind(r, val);
                }
            }
            InstKind::Store { access, value } => self.store(access, *value)?,
            InstKind::Reduce { op, x, axis } => {
                let r = self.result(inst)?;
                let val = self.reduce(*op, *x, *axis)?;
                self.bind(r, val);
            }
            InstKind::Dot { a, b, acc } => {
                let r = self.result(inst)?;
                let val = self.dot(*a, *b, *acc)?;
                self.bind(r, val);
            }
            InstKind::For {
                start,
                end,
                step,
                init,
                body,
            } => self.for_loop(inst, *start, *end, *step, init, body)?,
        }
        Ok(())
    }

    /// Packs per-slot operands as the value kind of `r` (scalar or tile).
    fn wrap(&self, r: ValueId, outs: Vec<Operand>) -> Result<Val, CompileError> {
        match self.ty(r)? {
            Ty::Scalar(_) => outs
                .first()
                .map(|o| Val::Scalar(*o))
                .ok_or_else(|| self.internal("scalar without an operand")),
            Ty::Tile(..) => Ok(Val::Tile(self.lay_of(r), outs)),
        }
    }

    // ---- elementwise ----

    fn unary(&mut self, op: UnaryOp, x: Operand, d: DType) -> Result<Operand, CompileError> {
        let t = register_type(d);
        match t {
            SType::F32 | SType::F16 => self.float_unary(op, x, t),
            SType::I32 | SType::U32 => match op {
                UnaryOp::Neg => Ok(self.iop(IntOp::Sub, Operand::Int(0), x)),
                UnaryOp::Abs if t == SType::I32 => {
                    let n = self.iop(IntOp::Sub, Operand::Int(0), x);
                    Ok(self.iop(IntOp::Max, x, n))
                }
                UnaryOp::Abs => Ok(x),
                UnaryOp::Relu => Ok(self.iop(IntOp::Max, x, Operand::Int(0))),
                _ => Err(self.unsupported(format!("{} on {d}", op.name()))),
            },
            _ => Err(self.unsupported(format!("{} on {d}", op.name()))),
        }
    }

    /// A float unary op. `neg`, `exp`, `log`, `sqrt`, `rsqrt` and `tanh` are printer
    /// primitives; the others are composed here, once for WGSL and PTX:
    ///
    /// - `abs(x) = max(x, -x)`, `relu(x) = max(x, 0)` (NaN-propagating max), `1/x` a
    ///   division;
    /// - `sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|))`: both exponents are `<= 0`, so
    ///   nothing overflows, and the quotient keeps full relative accuracy on both sides
    ///   (`e^x / (1 + e^x)` for `x < 0`, `1 / (1 + e^-x)` for `x >= 0`); error: two exp
    ///   errors plus two roundings, a few ulp;
    /// - `erf`: for `|x| < 0.5` the Maclaurin series to `x^13` (truncation below 5e-10
    ///   relative), else Abramowitz-Stegun 7.1.26 `1 - t (a1 + .. + a5 t^4) e^(-x^2)` with
    ///   `t = 1 / (1 + p|x|)` (max absolute error 1.5e-7, so relative 3e-7 as `erf(0.5) =
    ///   0.52`), sign restored with a select (`erf(-x) = -erf(x)`).
    fn float_unary(&mut self, op: UnaryOp, x: Operand, t: SType) -> Result<Operand, CompileError> {
        let f = |v: f64| Operand::Float(v, t);
        Ok(match op {
            UnaryOp::Neg
            | UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Tanh => self.fun(op, x, t),
            UnaryOp::Abs => {
                let n = self.fun(UnaryOp::Neg, x, t);
                self.fbin(BinaryOp::Max, x, n, t)
            }
            UnaryOp::Relu => self.fbin(BinaryOp::Max, x, f(0.0), t),
            UnaryOp::Reciprocal => self.fbin(BinaryOp::Div, f(1.0), x, t),
            UnaryOp::Sigmoid => {
                let m = self.fbin(BinaryOp::Min, x, f(0.0), t);
                let num = self.fun(UnaryOp::Exp, m, t);
                let a = self.float_unary(UnaryOp::Abs, x, t)?;
                let na = self.fun(UnaryOp::Neg, a, t);
                let e = self.fun(UnaryOp::Exp, na, t);
                let den = self.fbin(BinaryOp::Add, f(1.0), e, t);
                self.fbin(BinaryOp::Div, num, den, t)
            }
            UnaryOp::Erf => {
                let a = self.float_unary(UnaryOp::Abs, x, t)?;
                // Maclaurin: erf(a) = 2/sqrt(pi) * sum (-1)^n a^(2n+1) / (n! (2n+1)).
                let a2 = self.fbin(BinaryOp::Mul, a, a, t);
                let mut p = f(ERF_SERIES[0]);
                for &c in &ERF_SERIES[1..] {
                    let m = self.fbin(BinaryOp::Mul, p, a2, t);
                    p = self.fbin(BinaryOp::Add, m, f(c), t);
                }
                let small = self.fbin(BinaryOp::Mul, p, a, t);
                // A&S 7.1.26.
                let pa = self.fbin(BinaryOp::Mul, a, f(ERF_AS_P), t);
                let den = self.fbin(BinaryOp::Add, pa, f(1.0), t);
                let tt = self.fbin(BinaryOp::Div, f(1.0), den, t);
                let mut q = f(ERF_AS[4]);
                for &c in ERF_AS[..4].iter().rev() {
                    let m = self.fbin(BinaryOp::Mul, q, tt, t);
                    q = self.fbin(BinaryOp::Add, m, f(c), t);
                }
                let q = self.fbin(BinaryOp::Mul, q, tt, t);
                let na2 = self.fun(UnaryOp::Neg, a2, t);
                let e = self.fun(UnaryOp::Exp, na2, t);
                let qe = self.fbin(BinaryOp::Mul, q, e, t);
                let large = self.fbin(BinaryOp::Sub, f(1.0), qe, t);
                let is_small = self.iop(IntOp::Lt, a, f(0.5));
                let r = self.select(is_small, small, large, t);
                let is_neg = self.iop(IntOp::Lt, x, f(0.0));
                let nr = self.fun(UnaryOp::Neg, r, t);
                self.select(is_neg, nr, r, t)
            }
        })
    }

    /// A printer-primitive float unary op.
    fn fun(&mut self, op: UnaryOp, x: Operand, t: SType) -> Operand {
        let dst = self.reg(t);
        self.emit(Stmt::Unary { dst, op, x });
        Operand::Reg(dst)
    }

    /// A printer-primitive float binary op (`add sub mul div max min`).
    fn fbin(&mut self, op: BinaryOp, a: Operand, b: Operand, t: SType) -> Operand {
        let (a, b) = (self.convert(a, t), self.convert(b, t));
        let dst = self.reg(t);
        self.emit(Stmt::Binary { dst, op, a, b });
        Operand::Reg(dst)
    }

    /// `cond ? a : b`.
    fn select(&mut self, cond: Operand, a: Operand, b: Operand, t: SType) -> Operand {
        let dst = self.reg(t);
        self.emit(Stmt::Select { dst, cond, a, b });
        Operand::Reg(dst)
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        a: Operand,
        b: Operand,
        d: DType,
    ) -> Result<Operand, CompileError> {
        let t = register_type(d);
        match t {
            // pow(a, b) = exp(b * log(a)) with the accurate exp and log sequences: the
            // relative error is about (|b ln a| + 4) ulp (the product's rounding is
            // amplified by |b ln a|); NaN for a < 0, as the reference.
            SType::F32 | SType::F16 if op == BinaryOp::Pow => {
                let l = self.fun(UnaryOp::Log, a, t);
                let m = self.fbin(BinaryOp::Mul, b, l, t);
                Ok(self.fun(UnaryOp::Exp, m, t))
            }
            SType::F32 | SType::F16 => Ok(self.fbin(op, a, b, t)),
            SType::I32 | SType::U32 => {
                let iop = match op {
                    BinaryOp::Add => IntOp::Add,
                    BinaryOp::Sub => IntOp::Sub,
                    BinaryOp::Mul => IntOp::Mul,
                    BinaryOp::Div => IntOp::Div,
                    BinaryOp::Max => IntOp::Max,
                    BinaryOp::Min => IntOp::Min,
                    BinaryOp::Pow => return Err(self.unsupported(format!("pow on {d}"))),
                };
                // Fold constants only for i32 (u32 wraps differently).
                if t == SType::U32 {
                    let dst = self.reg(t);
                    self.emit(Stmt::Int { dst, op: iop, a, b });
                    return Ok(Operand::Reg(dst));
                }
                Ok(self.iop(iop, a, b))
            }
            SType::Bool => Err(self.unsupported(format!("{} on bool", op.name()))),
        }
    }

    fn cast(&mut self, x: Operand, to: DType) -> Operand {
        let t = register_type(to);
        if to == DType::F16 && self.target.storage_dtypes.contains(&DType::F16) {
            // Round to f16 precision, keep computing in f32.
            let x32 = self.convert(x, SType::F32);
            let h = self.reg(SType::F16);
            self.emit(Stmt::Cast { dst: h, src: x32 });
            let f = self.reg(SType::F32);
            self.emit(Stmt::Cast {
                dst: f,
                src: Operand::Reg(h),
            });
            return Operand::Reg(f);
        }
        if to == DType::BF16 {
            let x32 = self.convert(x, SType::F32);
            return self.round_bf16(x32);
        }
        self.convert(x, t)
    }

    /// `x` (f32) rounded to the nearest bf16 (ties to even), kept in an f32 register:
    /// on the f32 bits `b`, `(b + 0x7fff + ((b >> 16) & 1)) & 0xffff0000` (a carry out of
    /// the mantissa bumps the exponent, so the largest values round to infinity, as
    /// they should). A NaN keeps its sign and becomes the quiet NaN
    /// `(b & 0xffff0000) | 0x00400000` (the addition could carry it into infinity or
    /// wrap it). Integer ops only, so every SIMT target prints it.
    fn round_bf16(&mut self, x: Operand) -> Operand {
        if let Operand::Float(v, _) = x {
            return Operand::Float(f64::from(round_bf16_bits(v as f32)), SType::F32);
        }
        let u = SType::U32;
        let int = |l: &mut Self, op: IntOp, a: Operand, b: Operand| {
            let dst = l.reg(u);
            l.emit(Stmt::Int { dst, op, a, b });
            Operand::Reg(dst)
        };
        let bits = self.reg(u);
        self.emit(Stmt::Bitcast { dst: bits, src: x });
        let bits = Operand::Reg(bits);
        let high = int(self, IntOp::Shr, bits, Operand::Int(16));
        let lsb = int(self, IntOp::And, high, Operand::Int(1));
        let biased = int(self, IntOp::Add, bits, Operand::Int(0x7fff));
        let sum = int(self, IntOp::Add, biased, lsb);
        let rounded = int(self, IntOp::And, sum, Operand::Int(0xffff_0000));
        let top = int(self, IntOp::And, bits, Operand::Int(0xffff_0000));
        let nan = int(self, IntOp::Or, top, Operand::Int(0x0040_0000));
        let ordered = self.reg(SType::Bool);
        self.emit(Stmt::Int {
            dst: ordered,
            op: IntOp::Eq,
            a: x,
            b: x,
        });
        let sel = self.reg(u);
        self.emit(Stmt::Select {
            dst: sel,
            cond: Operand::Reg(ordered),
            a: rounded,
            b: nan,
        });
        let f = self.reg(SType::F32);
        self.emit(Stmt::Bitcast {
            dst: f,
            src: Operand::Reg(sel),
        });
        Operand::Reg(f)
    }

    // ---- memory ----

    /// Address and predicate of every slot of a tile access, in slot order.
    /// A rank-1 access in the row (column) layout covers each element in all threads of
    /// a thread-grid row (column); `lay` is ignored for rank-2 accesses.
    fn access_slots(
        &mut self,
        acc: &BlockAccess,
        lay: Lay,
    ) -> Result<Vec<(Operand, Operand)>, CompileError> {
        let rank = acc.shape.len();
        if acc.strides.len() != rank || acc.limits.len() != rank {
            return Err(self.internal("block access with mismatched strides/limits"));
        }
        let mut axes = self.axes(&acc.shape);
        if let ([n], [ax]) = (acc.shape.as_slice(), axes.as_mut_slice()) {
            *ax = self.rank1_axis(*n, lay);
        }
        let base = self.scalar(acc.base)?;
        let mut addr0 = base;
        for (ax, &s) in axes.iter().zip(&acc.strides) {
            let off = self.iop(IntOp::Mul, ax.thread, Operand::Int(s));
            addr0 = self.iop(IntOp::Add, addr0, off);
        }
        let mut preds: Vec<Vec<Operand>> = Vec::new();
        for (d, ax) in axes.iter().enumerate() {
            let lim = self.scalar(acc.limits[d])?;
            let ext = ax.extent as i64;
            let beyond_tile = ax.offset(ax.count as i64 - 1) + ax.span() > ext;
            let eff = if beyond_tile {
                self.iop(IntOp::Min, lim, Operand::Int(ext))
            } else {
                lim
            };
            let mut p = Vec::with_capacity(ax.count);
            for s in 0..ax.count as i64 {
                let off = ax.offset(s);
                let pred = match eff {
                    Operand::Int(e) if off + ax.span() <= e => Operand::Bool(true),
                    Operand::Int(e) if off >= e => Operand::Bool(false),
                    _ => {
                        let c = self.iop(IntOp::Add, ax.thread, Operand::Int(off));
                        self.iop(IntOp::Lt, c, eff)
                    }
                };
                p.push(pred);
            }
            preds.push(p);
        }
        let mut out = Vec::new();
        match axes.len() {
            1 => {
                for (s, &p) in preds[0].iter().enumerate() {
                    let off = axes[0].offset(s as i64) * acc.strides[0];
                    let addr = self.iop(IntOp::Add, addr0, Operand::Int(off));
                    out.push((addr, p));
                }
            }
            2 => {
                for i in 0..axes[0].count {
                    for j in 0..axes[1].count {
                        let off = i as i64 * axes[0].step * acc.strides[0]
                            + j as i64 * axes[1].step * acc.strides[1];
                        let addr = self.iop(IntOp::Add, addr0, Operand::Int(off));
                        let p = self.iop(IntOp::And, preds[0][i], preds[1][j]);
                        out.push((addr, p));
                    }
                }
            }
            _ => return Err(self.internal("access of unsupported rank")),
        }
        Ok(out)
    }

    /// The groups of 4 contiguous elements of a rank-1 access in the vector layout
    /// ([`vector_width`]), when the access can move them by [`Stmt::LoadGlobal4`] /
    /// [`Stmt::StoreGlobal4`]: a contiguous access (stride 1) of a 32-bit buffer whose
    /// base is a known multiple of 4, so that every group starts at a multiple of 4.
    /// `None` otherwise (the access is done element by element in the same layout).
    fn vector_access(
        &mut self,
        acc: &BlockAccess,
        lay: Lay,
    ) -> Result<Option<VectorAccess>, CompileError> {
        let v = self.vec;
        let d = self.buffer_dtype(acc.buffer)?;
        let ([n], [1], [lim]) = (
            acc.shape.as_slice(),
            acc.strides.as_slice(),
            acc.limits.as_slice(),
        ) else {
            return Ok(None);
        };
        if v != 4
            || !matches!(lay, Lay::Any | Lay::Lin)
            || !matches!(d, DType::F32 | DType::I32 | DType::U32)
        {
            return Ok(None);
        }
        let base = self.scalar(acc.base)?;
        if self.divisor(base) % v != 0 {
            return Ok(None);
        }
        let lim = self.scalar(*lim)?;
        let ax = self.rank1_axis(*n, lay);
        let addr0 = self.iop(IntOp::Add, base, ax.thread);
        let mut groups = Vec::with_capacity(ax.count / v as usize);
        for s in (0..ax.count as i64).step_by(v as usize) {
            // The group's last element is in range (so all are: they increase).
            let first = ax.offset(s);
            let all = match lim {
                Operand::Int(e) if first + ax.span() + v - 1 <= e => Operand::Bool(true),
                Operand::Int(e) if first + v > e => Operand::Bool(false),
                _ => {
                    let c = self.iop(IntOp::Add, ax.thread, Operand::Int(first + v - 1));
                    self.iop(IntOp::Lt, c, lim)
                }
            };
            let index = self.iop(IntOp::Add, addr0, Operand::Int(first));
            groups.push((index, all, first));
        }
        self.vector_buffers.insert(acc.buffer);
        Ok(Some(VectorAccess {
            groups,
            tail: VectorTail {
                lim,
                // A limit that is a multiple of 4 never cuts a group.
                whole: self.divisor(lim) % v == 0,
                thread: ax.thread,
            },
        }))
    }

    /// Index and predicate of element `i` of the vector group at `index` whose first
    /// element is `first` past the thread's coordinate (the element-wise fallback of a
    /// group the limit cuts).
    fn vector_element(
        &mut self,
        va: VectorTail,
        index: Operand,
        first: i64,
        i: i64,
    ) -> (Operand, Operand) {
        let c = self.iop(IntOp::Add, va.thread, Operand::Int(first + i));
        let pred = self.iop(IntOp::Lt, c, va.lim);
        (self.iop(IntOp::Add, index, Operand::Int(i)), pred)
    }

    fn buffer_dtype(&self, buffer: usize) -> Result<DType, CompileError> {
        self.k
            .params
            .get(buffer)
            .map(|p| p.dtype)
            .ok_or_else(|| self.internal(format!("buffer {buffer} out of range")))
    }

    fn load(&mut self, acc: &BlockAccess, other: f64, lay: Lay) -> Result<Val, CompileError> {
        let d = self.buffer_dtype(acc.buffer)?;
        let t = register_type(d);
        if acc.shape.is_empty() {
            let index = self.scalar(acc.base)?;
            let dst = self.reg(t);
            self.emit(Stmt::LoadGlobal {
                dst,
                buffer: acc.buffer,
                index,
            });
            return Ok(Val::Scalar(Operand::Reg(dst)));
        }
        let other = imm(other, d);
        if let Some(va) = self.vector_access(acc, lay)? {
            let mut outs = Vec::with_capacity(va.groups.len() * 4);
            for (index, all, first) in va.groups {
                let dst: [Reg; 4] = std::array::from_fn(|_| self.reg(t));
                let ld = Stmt::LoadGlobal4 {
                    dst,
                    buffer: acc.buffer,
                    index,
                };
                self.push_block();
                for (i, &dst) in dst.iter().enumerate() {
                    let mv = Stmt::Mov { dst, src: other };
                    if va.tail.whole {
                        self.emit(mv);
                        continue;
                    }
                    let (index, pred) = self.vector_element(va.tail, index, first, i as i64);
                    let ld = Stmt::LoadGlobal {
                        dst,
                        buffer: acc.buffer,
                        index,
                    };
                    self.guarded(pred, vec![ld], vec![mv]);
                }
                let tail = self.pop_block();
                self.guarded(all, vec![ld], tail);
                outs.extend(dst.map(Operand::Reg));
            }
            return Ok(Val::Tile(lay, outs));
        }
        let slots = self.access_slots(acc, lay)?;
        let mut outs = Vec::with_capacity(slots.len());
        for (index, pred) in slots {
            let dst = self.reg(t);
            let ld = Stmt::LoadGlobal {
                dst,
                buffer: acc.buffer,
                index,
            };
            let mv = Stmt::Mov { dst, src: other };
            self.guarded(pred, vec![ld], vec![mv]);
            outs.push(Operand::Reg(dst));
        }
        Ok(Val::Tile(lay, outs))
    }

    fn store(&mut self, acc: &BlockAccess, value: ValueId) -> Result<(), CompileError> {
        let d = self.buffer_dtype(acc.buffer)?;
        let t = register_type(d);
        if acc.shape.is_empty() {
            let v = self.scalar(value)?;
            let v = self.convert(v, t);
            let index = self.scalar(acc.base)?;
            let first = self.iop(IntOp::Lt, self.tid, Operand::Int(1));
            let st = Stmt::StoreGlobal {
                buffer: acc.buffer,
                index,
                value: v,
            };
            self.guarded(first, vec![st], vec![]);
            return Ok(());
        }
        // A rank-1 value is stored from the layout it has, by one owner per element.
        let (lay, owner) = match (self.val(value)?, acc.shape.len()) {
            (Val::Tile(Lay::Rows, _), 1) => {
                (Lay::Rows, self.iop(IntOp::Lt, self.tx, Operand::Int(1)))
            }
            (Val::Tile(Lay::Cols, _), 1) => {
                (Lay::Cols, self.iop(IntOp::Lt, self.ty, Operand::Int(1)))
            }
            _ => (Lay::Lin, Operand::Bool(true)),
        };
        if let Some(va) = self.vector_access(acc, lay)? {
            let vals = self.elems(value, lay, va.groups.len() * 4)?;
            for ((index, all, first), vs) in va.groups.into_iter().zip(vals.chunks(4)) {
                let values: [Operand; 4] = std::array::from_fn(|i| self.convert(vs[i], t));
                let st = Stmt::StoreGlobal4 {
                    buffer: acc.buffer,
                    index,
                    values,
                };
                self.push_block();
                if !va.tail.whole {
                    for (i, &value) in values.iter().enumerate() {
                        let (index, pred) = self.vector_element(va.tail, index, first, i as i64);
                        let st = Stmt::StoreGlobal {
                            buffer: acc.buffer,
                            index,
                            value,
                        };
                        self.guarded(pred, vec![st], vec![]);
                    }
                }
                let tail = self.pop_block();
                self.guarded(all, vec![st], tail);
            }
            return Ok(());
        }
        let slots = self.access_slots(acc, lay)?;
        let vals = self.elems(value, lay, slots.len())?;
        for ((index, pred), v) in slots.into_iter().zip(vals) {
            let pred = self.iop(IntOp::And, owner, pred);
            if pred == Operand::Bool(false) {
                continue;
            }
            let v = self.convert(v, t);
            let st = Stmt::StoreGlobal {
                buffer: acc.buffer,
                index,
                value: v,
            };
            self.guarded(pred, vec![st], vec![]);
        }
        Ok(())
    }

    // ---- reduction ----

    fn combine(&mut self, op: ReduceOp, a: Operand, b: Operand, t: SType) -> Operand {
        let dst = self.reg(t);
        match t {
            SType::F32 | SType::F16 => self.emit(Stmt::Binary {
                dst,
                op: op.combiner(),
                a,
                b,
            }),
            _ => {
                let op = match op.combiner() {
                    BinaryOp::Max => IntOp::Max,
                    _ => IntOp::Add,
                };
                self.emit(Stmt::Int { dst, op, a, b })
            }
        }
        Operand::Reg(dst)
    }

    /// The register type and identity of a reduction over elements of dtype `d`.
    fn reduce_kind(&self, op: ReduceOp, d: DType) -> Result<(SType, Operand), CompileError> {
        let t = register_type(d);
        if t == SType::Bool {
            return Err(self.unsupported("reduce of a bool tile"));
        }
        if op == ReduceOp::Mean && !matches!(t, SType::F32 | SType::F16) {
            return Err(self.unsupported("mean of an integer tile"));
        }
        let identity = match (op, t) {
            (ReduceOp::Max, SType::I32) => Operand::Int(i32::MIN as i64),
            (ReduceOp::Max, SType::U32) => Operand::Int(0),
            _ => imm(op.identity(), d),
        };
        Ok((t, identity))
    }

    /// `v` where `pred`, else `identity` (constant predicates fold).
    fn masked(&mut self, pred: Operand, v: Operand, identity: Operand, t: SType) -> Operand {
        match pred {
            Operand::Bool(true) => v,
            Operand::Bool(false) => identity,
            cond => self.select(cond, v, identity, t),
        }
    }

    /// `Reduce`: a rank-1 tile to a scalar, or a rank-2 tile along an axis.
    fn reduce(&mut self, op: ReduceOp, x: ValueId, axis: usize) -> Result<Val, CompileError> {
        match self.ty(x)? {
            Ty::Tile(s, _) if s.len() == 1 && axis == 0 => Ok(Val::Scalar(self.reduce1(op, x)?)),
            Ty::Tile(s, _) if s.len() == 2 && axis < 2 => self.reduce2(op, x, axis),
            Ty::Tile(s, _) => Err(self.unsupported(format!(
                "reduce over axis {axis} of a rank-{} tile",
                s.len()
            ))),
            Ty::Scalar(_) => Err(self.internal("reduce of a scalar")),
        }
    }

    /// Reduces a rank-2 tile `[M, N]` along `axis`. Along axis 1 each thread combines
    /// the `SC` slots of each of its micro-rows, the partials go to shared memory as
    /// `p[row * TN + tx]`, a barrier, then every thread combines the `min(TN, N)`
    /// partials of each of its rows in order (so all `TN` threads of a row hold the same
    /// value: the result is in [`Lay::Rows`]), a barrier. Along axis 0 the same with
    /// rows and columns exchanged (`p[col * TM + ty]`, result in [`Lay::Cols`]).
    fn reduce2(&mut self, op: ReduceOp, x: ValueId, axis: usize) -> Result<Val, CompileError> {
        let (m, n, d) = self.shape2(x)?;
        let (t, identity) = self.reduce_kind(op, d)?;
        let g = self.g;
        let (tm, tn) = (g.rows as i64, g.cols as i64);
        let (sr, sc) = (m.div_ceil(tm as usize), n.div_ceil(tn as usize));
        let xs = self.elems(x, Lay::Lin, sr * sc)?;
        // Along axis 1: `outer` = rows (kept), `inner` = columns (reduced).
        let (outer_n, inner_n, outer_t, inner_t, inner_step, inner_ext, lay) = if axis == 1 {
            (sr, sc, tm, tn, tn, n, Lay::Rows)
        } else {
            (sc, sr, tn, tm, tm, m, Lay::Cols)
        };
        let inner_thread = if axis == 1 { self.tx } else { self.ty };
        let outer_thread = if axis == 1 { self.ty } else { self.tx };
        // 1. Per-thread partials over the reduced axis, masked beyond the extent.
        let mut parts = Vec::with_capacity(outer_n);
        for o in 0..outer_n {
            let mut part: Option<Operand> = None;
            for i in 0..inner_n {
                let v = if axis == 1 {
                    xs[o * sc + i]
                } else {
                    xs[i * sc + o]
                };
                let i = i as i64;
                let own = if (i + 1) * inner_step > inner_ext as i64 {
                    let c = self.iop(IntOp::Add, inner_thread, Operand::Int(i * inner_step));
                    self.iop(IntOp::Lt, c, Operand::Int(inner_ext as i64))
                } else {
                    Operand::Bool(true)
                };
                let v = self.masked(own, v, identity, t);
                part = Some(match part {
                    None => v,
                    Some(p) => self.combine(op, p, v, t),
                });
            }
            parts.push(part.ok_or_else(|| self.internal("reduce of an empty tile"))?);
        }
        // 2. Combine the partials of the `inner_t` threads sharing a row (column).
        let mut out = parts;
        let used = inner_t.min(inner_ext as i64);
        if axis == 1 && self.rows_are_subgroups && t != SType::Bool {
            // The row's threads are the lanes of one subgroup: read each lane's partial
            // by a shuffle and combine them in the same (column) order.
            let mut res = Vec::with_capacity(out.len());
            for &part in &out {
                let mut acc: Option<Operand> = None;
                for c in 0..used {
                    let dst = self.reg(t);
                    self.emit(Stmt::Shuffle {
                        dst,
                        src: part,
                        lane: Operand::Int(c),
                    });
                    acc = Some(match acc {
                        None => Operand::Reg(dst),
                        Some(a) => self.combine(op, a, Operand::Reg(dst), t),
                    });
                }
                res.push(acc.ok_or_else(|| self.internal("reduce of an empty axis"))?);
            }
            out = res;
        } else if inner_t > 1 {
            let arr = self.shared_array(
                SharedUse::Reduce(t),
                t,
                outer_n * (outer_t * inner_t) as usize,
            );
            let ob = self.iop(IntOp::Mul, outer_thread, Operand::Int(inner_t));
            let idx0 = self.iop(IntOp::Add, ob, inner_thread);
            for (o, &value) in out.iter().enumerate() {
                let index = self.iop(IntOp::Add, idx0, Operand::Int(o as i64 * outer_t * inner_t));
                self.emit(Stmt::StoreShared {
                    array: arr,
                    index,
                    value,
                });
            }
            self.emit(Stmt::Barrier);
            let mut res = Vec::with_capacity(out.len());
            for o in 0..out.len() as i64 {
                let row0 = self.iop(IntOp::Add, ob, Operand::Int(o * outer_t * inner_t));
                let mut acc: Option<Operand> = None;
                for c in 0..used {
                    let index = self.iop(IntOp::Add, row0, Operand::Int(c));
                    let dst = self.reg(t);
                    self.emit(Stmt::LoadShared {
                        dst,
                        array: arr,
                        index,
                    });
                    acc = Some(match acc {
                        None => Operand::Reg(dst),
                        Some(a) => self.combine(op, a, Operand::Reg(dst), t),
                    });
                }
                res.push(acc.ok_or_else(|| self.internal("reduce of an empty axis"))?);
            }
            self.emit(Stmt::Barrier);
            out = res;
        }
        if op == ReduceOp::Mean {
            let scale = Operand::Float(1.0 / inner_ext as f64, t);
            out = out
                .into_iter()
                .map(|v| self.fbin(BinaryOp::Mul, v, scale, t))
                .collect();
        }
        Ok(Val::Tile(lay, out))
    }

    /// Reduces a rank-1 tile to a (uniform) scalar.
    fn reduce1(&mut self, op: ReduceOp, x: ValueId) -> Result<Operand, CompileError> {
        let (n, d) = match self.ty(x)? {
            Ty::Tile(s, d) if s.len() == 1 => (s[0], *d),
            _ => return Err(self.internal("reduce1 of a non-rank-1 value")),
        };
        let (t, identity) = self.reduce_kind(op, d)?;
        if self.vec > 1 {
            return Err(self.internal("a rank-1 reduction in a vector kernel"));
        }
        let tt = self.g.threads as i64;
        let ax = self.axes(&[n])[0];
        let xs = self.elems(x, Lay::Lin, ax.count)?;
        // 1. Per-thread combine of the slots this thread owns.
        let mut part: Option<Operand> = None;
        for (s, v) in xs.into_iter().enumerate() {
            let s = s as i64;
            let v = if (s + 1) * tt > n as i64 {
                let c = self.iop(IntOp::Add, self.tid, Operand::Int(s * tt));
                let own = self.iop(IntOp::Lt, c, Operand::Int(n as i64));
                let dst = self.reg(t);
                self.emit(Stmt::Select {
                    dst,
                    cond: own,
                    a: v,
                    b: identity,
                });
                Operand::Reg(dst)
            } else {
                v
            };
            part = Some(match part {
                None => v,
                Some(p) => self.combine(op, p, v, t),
            });
        }
        let part = part.ok_or_else(|| self.internal("reduce of an empty tile"))?;
        let mut result = part;
        if tt > 1 {
            // 2. Tree over the (power-of-two many) participating threads.
            let active = (n.next_power_of_two() as i64).min(tt);
            let arr = self.shared_array(SharedUse::Reduce(t), t, tt as usize);
            let st = Stmt::StoreShared {
                array: arr,
                index: self.tid,
                value: part,
            };
            let pred = self.iop(IntOp::Lt, self.tid, Operand::Int(active));
            self.guarded(pred, vec![st], vec![]);
            self.emit(Stmt::Barrier);
            let mut s = active / 2;
            while s >= 1 {
                let pred = self.iop(IntOp::Lt, self.tid, Operand::Int(s));
                self.push_block();
                let lo = self.reg(t);
                self.emit(Stmt::LoadShared {
                    dst: lo,
                    array: arr,
                    index: self.tid,
                });
                let j = self.iop(IntOp::Add, self.tid, Operand::Int(s));
                let hi = self.reg(t);
                self.emit(Stmt::LoadShared {
                    dst: hi,
                    array: arr,
                    index: j,
                });
                let c = self.combine(op, Operand::Reg(lo), Operand::Reg(hi), t);
                self.emit(Stmt::StoreShared {
                    array: arr,
                    index: self.tid,
                    value: c,
                });
                let then = self.pop_block();
                self.guarded(pred, then, vec![]);
                self.emit(Stmt::Barrier);
                s /= 2;
            }
            // 3. Every thread reads the result (uniform from here on).
            let r = self.reg(t);
            self.emit(Stmt::LoadShared {
                dst: r,
                array: arr,
                index: Operand::Int(0),
            });
            self.emit(Stmt::Barrier);
            result = Operand::Reg(r);
        }
        if op == ReduceOp::Mean {
            let dst = self.reg(t);
            self.emit(Stmt::Binary {
                dst,
                op: BinaryOp::Mul,
                a: result,
                b: Operand::Float(1.0 / n as f64, t),
            });
            result = Operand::Reg(dst);
        }
        Ok(result)
    }

    // ---- iota / expand ----

    /// `Iota`: each slot's position along `axis`, from the thread coordinates.
    fn iota(&mut self, r: ValueId, shape: &[usize], axis: usize) -> Result<Val, CompileError> {
        match (shape, axis) {
            ([n], 0) => {
                let lay = self.lay_of(r);
                let ax = self.rank1_axis(*n, lay);
                let ops = (0..ax.count as i64)
                    .map(|s| self.iop(IntOp::Add, ax.thread, Operand::Int(ax.offset(s))))
                    .collect();
                Ok(Val::Tile(lay, ops))
            }
            ([_, _], 0 | 1) => {
                let axes = self.axes(shape);
                let (rows, cols) = (axes[0], axes[1]);
                let mut ops = Vec::with_capacity(rows.count * cols.count);
                for i in 0..rows.count as i64 {
                    for j in 0..cols.count as i64 {
                        ops.push(if axis == 0 {
                            self.iop(IntOp::Add, rows.thread, Operand::Int(i * rows.step))
                        } else {
                            self.iop(IntOp::Add, cols.thread, Operand::Int(j * cols.step))
                        });
                    }
                }
                Ok(Val::Tile(Lay::Lin, ops))
            }
            _ => Err(self.internal(format!("iota of shape {shape:?} along axis {axis}"))),
        }
    }

    /// `Expand`: along axis 1 (`[n] -> [n, size]`) the operand is taken in
    /// [`Lay::Rows`], so slot `(sr, sc)` is operand slot `sr`; along axis 0
    /// (`[n] -> [size, n]`) in [`Lay::Cols`], slot `(sr, sc)` is operand slot `sc`.
    fn expand(&mut self, x: ValueId, axis: usize, size: usize) -> Result<Val, CompileError> {
        let n = match self.ty(x)?.shape() {
            Some([n]) => *n,
            _ => return Err(self.internal(format!("expand of {x}, not a rank-1 tile"))),
        };
        if let Val::Scalar(o) | Val::Uniform(o) = self.val(x)? {
            return Ok(Val::Uniform(*o));
        }
        let (shape, lay) = match axis {
            0 => ([size, n], Lay::Cols),
            1 => ([n, size], Lay::Rows),
            _ => return Err(self.internal(format!("expand along axis {axis}"))),
        };
        let xs = self.elems(x, lay, self.count(&[n], lay))?;
        let axes = self.axes(&shape);
        let mut ops = Vec::with_capacity(axes[0].count * axes[1].count);
        for i in 0..axes[0].count {
            for j in 0..axes[1].count {
                ops.push(if axis == 1 { xs[i] } else { xs[j] });
            }
        }
        Ok(Val::Tile(Lay::Lin, ops))
    }

    // ---- dot ----

    fn shape2(&self, v: ValueId) -> Result<(usize, usize, DType), CompileError> {
        match self.ty(v)? {
            Ty::Tile(s, d) if s.len() == 2 => Ok((s[0], s[1], *d)),
            _ => Err(self.internal(format!("dot operand {v} is not a rank-2 tile"))),
        }
    }

    fn dot(&mut self, a: ValueId, b: ValueId, acc: ValueId) -> Result<Val, CompileError> {
        let (bm, bk, da) = self.shape2(a)?;
        let (bk2, bn, db) = self.shape2(b)?;
        let (cm, cn, dc) = self.shape2(acc)?;
        if bk != bk2 || cm != bm || cn != bn {
            return Err(self.internal(format!(
                "dot shapes [{bm},{bk}] x [{bk2},{bn}] -> [{cm},{cn}]"
            )));
        }
        for d in [da, db, dc] {
            if !d.is_float() {
                return Err(self.unsupported(format!("dot on {d}")));
            }
        }
        if !self.target.stage_dot_operands {
            let in_place = |this: &Self, v: ValueId| -> Result<_, CompileError> {
                Ok(match this.val(v)? {
                    Val::Deferred => this.deferred.get(&v).cloned(),
                    _ => None,
                })
            };
            match (in_place(self, a)?, in_place(self, b)?) {
                (a_load, Some(db)) if self.rows_are_subgroups => {
                    return self.dot_shuffled(acc, (bm, bk, bn), a, a_load, &db);
                }
                (Some(da), Some(db)) => return self.dot_direct(acc, (bm, bk, bn), &da, &db),
                _ => {}
            }
        }
        let g = self.g;
        let (tm, tn) = (g.rows as usize, g.cols as usize);
        let (sr, sc) = (bm.div_ceil(tm), bn.div_ceil(tn));
        let a_rows = sr * tm;
        let b_pitch = sc * tn;
        let sa = self.shared_array(SharedUse::DotA, SType::F32, a_rows * bk);
        let sb = self.shared_array(SharedUse::DotB, SType::F32, bk * b_pitch);
        self.stage(a, sa, bk)?;
        self.stage(b, sb, b_pitch)?;
        self.emit(Stmt::Barrier);
        let rs = self.dot_accumulators(acc, sr * sc)?;
        let ty_bk = self.iop(IntOp::Mul, self.ty, Operand::Int(bk as i64));
        let mut arow = Vec::with_capacity(sr);
        for i in 0..sr {
            arow.push(self.iop(IntOp::Add, ty_bk, Operand::Int((i * tm * bk) as i64)));
        }
        let mut bcol = Vec::with_capacity(sc);
        for j in 0..sc {
            bcol.push(self.iop(IntOp::Add, self.tx, Operand::Int((j * tn) as i64)));
        }
        self.micro_tile_loop(&rs, bk, |this, k| {
            let mut av = Vec::with_capacity(sr);
            for &row in &arow {
                let index = this.iop(IntOp::Add, row, k);
                let dst = this.reg(SType::F32);
                this.emit(Stmt::LoadShared {
                    dst,
                    array: sa,
                    index,
                });
                av.push(Operand::Reg(dst));
            }
            let kb = this.iop(IntOp::Mul, k, Operand::Int(b_pitch as i64));
            let mut bv = Vec::with_capacity(sc);
            for &col in &bcol {
                let index = this.iop(IntOp::Add, kb, col);
                let dst = this.reg(SType::F32);
                this.emit(Stmt::LoadShared {
                    dst,
                    array: sb,
                    index,
                });
                bv.push(Operand::Reg(dst));
            }
            Ok((av, bv))
        })?;
        self.emit(Stmt::Barrier);
        Ok(dot_result(rs))
    }

    /// `acc + A @ B` with both operands block loads (`a`, `b`: their accesses and fill
    /// values) read straight from the buffers, without shared memory or barriers: in a
    /// loop over `k` each thread loads `A[r, k]` for its `M/TM` rows and `B[k, c]` for its
    /// `N/TN` columns (an element outside the tile or its access's limits takes the fill
    /// value) and does the same `Fma`s as the staged form, in the same order.
    fn dot_direct(
        &mut self,
        acc: ValueId,
        (bm, bk, bn): (usize, usize, usize),
        a: &(BlockAccess, f64),
        b: &(BlockAccess, f64),
    ) -> Result<Val, CompileError> {
        let g = self.g;
        let (tm, tn) = (g.rows as i64, g.cols as i64);
        let (sr, sc) = (bm.div_ceil(tm as usize), bn.div_ceil(tn as usize));
        let rs = self.dot_accumulators(acc, sr * sc)?;
        // A's rows (this thread's `ty + i TM`) and B's columns (`tx + j TN`): whether each
        // is inside the tile and the access's limit, and its address at k = 0.
        let a_op = self.direct_operand(a, bm, self.ty, tm, sr, 0)?;
        let b_op = self.direct_operand(b, bn, self.tx, tn, sc, 1)?;
        self.micro_tile_loop(&rs, bk, |this, k| {
            let av = this.direct_loads(&a_op, k, bk)?;
            let bv = this.direct_loads(&b_op, k, bk)?;
            Ok((av, bv))
        })?;
        Ok(dot_result(rs))
    }

    /// `acc + A @ B` with A in registers and B a block load read in place, on a target
    /// whose thread-grid rows are subgroups. A is `a`'s registers, or, when `a` is a
    /// block load (`a_load`: its access and fill value), loaded into them once (a
    /// subgroup's lanes read consecutive `k`) instead of every thread reading its rows'
    /// whole columns: `A[r, k]` lives in thread `(r % TM, k %
    /// TN)`, slot `(r / TM, k / TN)`, so the thread needing it for its row `r` finds it
    /// in lane `k % TN` of its own subgroup. For each slot column `s` (unrolled), a loop
    /// over the lanes `l` shuffles this thread's `M/TM` elements of A's column `k = s TN
    /// + l` out of lane `l`, loads its `N/TN` elements of B's row `k` (as
    /// [`Lower::dot_direct`]) and does the staged form's `Fma`s in the same order
    /// (increasing `k`): no shared memory, no barrier.
    fn dot_shuffled(
        &mut self,
        acc: ValueId,
        (bm, bk, bn): (usize, usize, usize),
        a: ValueId,
        a_load: Option<(BlockAccess, f64)>,
        b: &(BlockAccess, f64),
    ) -> Result<Val, CompileError> {
        let g = self.g;
        let (tm, tn) = (g.rows as usize, g.cols as usize);
        let (sr, sc, sk) = (bm.div_ceil(tm), bn.div_ceil(tn), bk.div_ceil(tn));
        let a_regs = match a_load {
            Some((access, other)) => match self.load(&access, other, Lay::Lin)? {
                Val::Tile(_, regs) if regs.len() == sr * sk => regs,
                _ => return Err(self.internal("a rank-2 load is not a thread-grid tile")),
            },
            None => self.elems(a, Lay::Lin, sr * sk)?,
        };
        let mut av = Vec::with_capacity(sr * sk);
        for o in a_regs {
            av.push(self.convert(o, SType::F32));
        }
        let rs = self.dot_accumulators(acc, sr * sc)?;
        let b_op = self.direct_operand(b, bn, self.tx, tn as i64, sc, 1)?;
        for s in 0..sk {
            let lanes = tn.min(bk - s * tn);
            let lane = self.reg(SType::I32);
            self.push_block();
            let k = self.iop(
                IntOp::Add,
                Operand::Reg(lane),
                Operand::Int((s * tn) as i64),
            );
            let mut ak = Vec::with_capacity(sr);
            for i in 0..sr {
                let dst = self.reg(SType::F32);
                self.emit(Stmt::Shuffle {
                    dst,
                    src: av[i * sk + s],
                    lane: Operand::Reg(lane),
                });
                ak.push(Operand::Reg(dst));
            }
            let bv = self.direct_loads(&b_op, k, bk)?;
            self.fmas(&rs, &ak, &bv);
            let body = self.pop_block();
            self.emit(Stmt::Loop {
                var: lane,
                start: Operand::Int(0),
                end: Operand::Int(lanes as i64),
                step: 1,
                body,
            });
        }
        Ok(dot_result(rs))
    }

    /// `rs[i * SC + j] += a[i] * b[j]` (one step of a `Dot`'s micro-tile).
    fn fmas(&mut self, rs: &[Reg], av: &[Operand], bv: &[Operand]) {
        let sc = bv.len();
        for (i, &a) in av.iter().enumerate() {
            for (j, &b) in bv.iter().enumerate() {
                let r = rs[i * sc + j];
                self.emit(Stmt::Fma {
                    dst: r,
                    a,
                    b,
                    c: Operand::Reg(r),
                });
            }
        }
    }

    /// Fresh f32 registers holding `acc`'s `n` elements in the thread-grid layout (a
    /// `Dot`'s loop updates them in place).
    fn dot_accumulators(&mut self, acc: ValueId, n: usize) -> Result<Vec<Reg>, CompileError> {
        let accs = self.elems(acc, Lay::Lin, n)?;
        let mut rs = Vec::with_capacity(accs.len());
        for o in accs {
            let o = self.convert(o, SType::F32);
            rs.push(self.mov_new(o, SType::F32));
        }
        Ok(rs)
    }

    /// A `Dot`'s loop `for k in 0..bk`: `operands(k)` emits the loads of this thread's
    /// elements of A's column `k` (one per micro-row) and of B's row `k` (one per
    /// micro-column), then `rs[i * SC + j] += a[i] * b[j]`.
    fn micro_tile_loop(
        &mut self,
        rs: &[Reg],
        bk: usize,
        operands: impl FnOnce(&mut Self, Operand) -> Result<(Vec<Operand>, Vec<Operand>), CompileError>,
    ) -> Result<(), CompileError> {
        let k = self.reg(SType::I32);
        self.push_block();
        let (av, bv) = operands(self, Operand::Reg(k))?;
        self.fmas(rs, &av, &bv);
        let body = self.pop_block();
        self.emit(Stmt::Loop {
            var: k,
            start: Operand::Int(0),
            end: Operand::Int(bk as i64),
            step: 1,
            body,
        });
        Ok(())
    }

    /// The per-thread side of one `Dot` operand read in place ([`Lower::dot_direct`]):
    /// `axis` is the operand's axis this thread owns (0: A's rows, 1: B's columns) of
    /// extent `extent` in the tile, `coord + s * step` for `s < slots`.
    fn direct_operand(
        &mut self,
        (acc, other): &(BlockAccess, f64),
        extent: usize,
        coord: Operand,
        step: i64,
        slots: usize,
        axis: usize,
    ) -> Result<DirectOperand, CompileError> {
        let d = self.buffer_dtype(acc.buffer)?;
        if !d.is_float() || acc.strides.len() != 2 || acc.limits.len() != 2 {
            return Err(self.internal("direct dot operand of a non-float or non-2-D access"));
        }
        let base = self.scalar(acc.base)?;
        let own_lim = self.scalar(acc.limits[axis])?;
        let k_lim = self.scalar(acc.limits[1 - axis])?;
        // A constant limit at least the tile's extent needs no check.
        let covers = |lim: Operand, e: usize| matches!(lim, Operand::Int(l) if l >= e as i64);
        let own_eff = self.iop(IntOp::Min, own_lim, Operand::Int(extent as i64));
        let mut valid = Vec::with_capacity(slots);
        let mut addr = Vec::with_capacity(slots);
        for s in 0..slots as i64 {
            let c = self.iop(IntOp::Add, coord, Operand::Int(s * step));
            let inside = (s + 1) * step <= extent as i64 && covers(own_eff, extent);
            valid.push(if inside {
                Operand::Bool(true)
            } else {
                self.iop(IntOp::Lt, c, own_eff)
            });
            let off = self.iop(IntOp::Mul, c, Operand::Int(acc.strides[axis]));
            addr.push(self.iop(IntOp::Add, base, off));
        }
        Ok(DirectOperand {
            buffer: acc.buffer,
            t: register_type(d),
            other: imm(*other, d),
            k_lim,
            k_stride: acc.strides[1 - axis],
            valid,
            addr,
        })
    }

    /// The loads of one `Dot` operand at contraction index `k` ([`Lower::dot_direct`]),
    /// as f32 operands.
    fn direct_loads(
        &mut self,
        o: &DirectOperand,
        k: Operand,
        bk: usize,
    ) -> Result<Vec<Operand>, CompileError> {
        let k_ok = match o.k_lim {
            Operand::Int(l) if l >= bk as i64 => Operand::Bool(true),
            lim => self.iop(IntOp::Lt, k, lim),
        };
        let k_off = self.iop(IntOp::Mul, k, Operand::Int(o.k_stride));
        let mut out = Vec::with_capacity(o.addr.len());
        for (&valid, &addr) in o.valid.iter().zip(&o.addr) {
            let ok = self.iop(IntOp::And, valid, k_ok);
            let index = self.iop(IntOp::Add, addr, k_off);
            let dst = self.reg(o.t);
            let ld = Stmt::LoadGlobal {
                dst,
                buffer: o.buffer,
                index,
            };
            let mv = Stmt::Mov { dst, src: o.other };
            self.guarded(ok, vec![ld], vec![mv]);
            out.push(self.convert(Operand::Reg(dst), SType::F32));
        }
        Ok(out)
    }

    /// Writes a rank-2 tile `[R, C]` into shared array `arr` as `arr[r*pitch + c]`.
    fn stage(&mut self, v: ValueId, arr: usize, pitch: usize) -> Result<(), CompileError> {
        let (rows, cols, _) = self.shape2(v)?;
        if let Val::Deferred = self.val(v)? {
            let (acc, other) = self
                .deferred
                .get(&v)
                .cloned()
                .ok_or_else(|| self.internal(format!("staged load {v} without its access")))?;
            return self.cooperative_load(&acc, other, rows, cols, arr, pitch);
        }
        // From registers: each thread stores the elements it owns.
        let g = self.g;
        let (tm, tn) = (g.rows as i64, g.cols as i64);
        let (sr, sc) = (rows.div_ceil(tm as usize), cols.div_ceil(tn as usize));
        let vals = self.elems(v, Lay::Lin, sr * sc)?;
        let ty_p = self.iop(IntOp::Mul, self.ty, Operand::Int(pitch as i64));
        let idx0 = self.iop(IntOp::Add, ty_p, self.tx);
        for i in 0..sr as i64 {
            let rp = if (i + 1) * tm > rows as i64 {
                let r = self.iop(IntOp::Add, self.ty, Operand::Int(i * tm));
                self.iop(IntOp::Lt, r, Operand::Int(rows as i64))
            } else {
                Operand::Bool(true)
            };
            for j in 0..sc as i64 {
                let cp = if (j + 1) * tn > cols as i64 {
                    let c = self.iop(IntOp::Add, self.tx, Operand::Int(j * tn));
                    self.iop(IntOp::Lt, c, Operand::Int(cols as i64))
                } else {
                    Operand::Bool(true)
                };
                let p = self.iop(IntOp::And, rp, cp);
                let index = self.iop(
                    IntOp::Add,
                    idx0,
                    Operand::Int(i * tm * pitch as i64 + j * tn),
                );
                let value = self.convert(vals[(i * sc as i64 + j) as usize], SType::F32);
                let st = Stmt::StoreShared {
                    array: arr,
                    index,
                    value,
                };
                self.guarded(p, vec![st], vec![]);
            }
        }
        Ok(())
    }

    /// A `[R, C]` block load done by all threads together (consecutive threads fetch
    /// consecutive elements) straight into shared memory.
    fn cooperative_load(
        &mut self,
        acc: &BlockAccess,
        other: f64,
        rows: usize,
        cols: usize,
        arr: usize,
        pitch: usize,
    ) -> Result<(), CompileError> {
        let d = self.buffer_dtype(acc.buffer)?;
        if !d.is_float() || acc.strides.len() != 2 || acc.limits.len() != 2 {
            return Err(self.internal("cooperative load of a non-float or non-2-D access"));
        }
        let t = register_type(d);
        let other = imm(other, d);
        let base = self.scalar(acc.base)?;
        let lim0 = self.scalar(acc.limits[0])?;
        let lim1 = self.scalar(acc.limits[1])?;
        let (s0, s1) = (acc.strides[0], acc.strides[1]);
        let eff0 = self.iop(IntOp::Min, lim0, Operand::Int(rows as i64));
        let tt = self.g.threads as i64;
        let total = (rows * cols) as i64;
        let count = (total + tt - 1) / tt;
        let (c_i, r, pitch_i) = (cols as i64, rows as i64, pitch as i64);
        // Per slot: (row, col, in-tile predicate, global address, shared index).
        let mut slots = Vec::with_capacity(count as usize);
        if tt % c_i == 0 {
            // Each thread keeps one column; rows advance by T / C per slot.
            let per = tt / c_i;
            let r0 = self.iop(IntOp::Div, self.tid, Operand::Int(c_i));
            let c = self.iop(IntOp::Rem, self.tid, Operand::Int(c_i));
            let ra = self.iop(IntOp::Mul, r0, Operand::Int(s0));
            let ca = self.iop(IntOp::Mul, c, Operand::Int(s1));
            let a0 = self.iop(IntOp::Add, base, ra);
            let addr0 = self.iop(IntOp::Add, a0, ca);
            let rp = self.iop(IntOp::Mul, r0, Operand::Int(pitch_i));
            let sidx0 = self.iop(IntOp::Add, rp, c);
            for s in 0..count {
                let row = self.iop(IntOp::Add, r0, Operand::Int(s * per));
                let inb = if (s + 1) * per <= r {
                    Operand::Bool(true)
                } else {
                    self.iop(IntOp::Lt, row, Operand::Int(r))
                };
                let addr = self.iop(IntOp::Add, addr0, Operand::Int(s * per * s0));
                let sidx = self.iop(IntOp::Add, sidx0, Operand::Int(s * per * pitch_i));
                slots.push((row, c, inb, addr, sidx));
            }
        } else {
            for s in 0..count {
                let e = self.iop(IntOp::Add, self.tid, Operand::Int(s * tt));
                let row = self.iop(IntOp::Div, e, Operand::Int(c_i));
                let c = self.iop(IntOp::Rem, e, Operand::Int(c_i));
                let inb = if (s + 1) * tt <= total {
                    Operand::Bool(true)
                } else {
                    self.iop(IntOp::Lt, e, Operand::Int(total))
                };
                let ra = self.iop(IntOp::Mul, row, Operand::Int(s0));
                let ca = self.iop(IntOp::Mul, c, Operand::Int(s1));
                let a0 = self.iop(IntOp::Add, base, ra);
                let addr = self.iop(IntOp::Add, a0, ca);
                let rp = self.iop(IntOp::Mul, row, Operand::Int(pitch_i));
                let sidx = self.iop(IntOp::Add, rp, c);
                slots.push((row, c, inb, addr, sidx));
            }
        }
        // Inside its `inb` guard a slot's row is below `rows` and its column below `cols`
        // (by construction), so a constant limit at least that large needs no check.
        let covers =
            |lim: Operand, extent: usize| matches!(lim, Operand::Int(e) if e >= extent as i64);
        let (rows_ok, cols_ok) = (covers(eff0, rows), covers(lim1, cols));
        for (row, c, inb, addr, sidx) in slots {
            self.push_block();
            let rv = if rows_ok {
                Operand::Bool(true)
            } else {
                self.iop(IntOp::Lt, row, eff0)
            };
            let cv = if cols_ok {
                Operand::Bool(true)
            } else {
                self.iop(IntOp::Lt, c, lim1)
            };
            let valid = self.iop(IntOp::And, rv, cv);
            let dst = self.reg(t);
            let ld = Stmt::LoadGlobal {
                dst,
                buffer: acc.buffer,
                index: addr,
            };
            let mv = Stmt::Mov { dst, src: other };
            self.guarded(valid, vec![ld], vec![mv]);
            self.emit(Stmt::StoreShared {
                array: arr,
                index: sidx,
                value: Operand::Reg(dst),
            });
            let then = self.pop_block();
            self.guarded(inb, then, vec![]);
        }
        Ok(())
    }

    // ---- loops ----

    fn for_loop(
        &mut self,
        inst: &Inst,
        start: ValueId,
        end: ValueId,
        step: i64,
        init: &[ValueId],
        body: &Block,
    ) -> Result<(), CompileError> {
        if step <= 0 {
            return Err(self.internal(format!("loop step {step}")));
        }
        if body.args.len() != init.len() + 1
            || body.yields.len() != init.len()
            || inst.results.len() != init.len()
        {
            return Err(self.internal("loop with mismatched carried values"));
        }
        let (start, end) = (self.scalar(start)?, self.scalar(end)?);
        // Carried values live in registers assigned before the loop and at the end of
        // each iteration.
        let mut carried: Vec<Vec<Reg>> = Vec::with_capacity(init.len());
        let mut carried_vals = Vec::with_capacity(init.len());
        for (&v, &arg) in init.iter().zip(&body.args[1..]) {
            let t = register_type(self.ty(v)?.dtype());
            let (lay, n) = self.slots_of(arg)?;
            let ops = self.elems(v, lay, n)?;
            let mut regs = Vec::with_capacity(n);
            for o in ops {
                let o = self.convert(o, t);
                regs.push(self.mov_new(o, t));
            }
            let val = match self.ty(v)? {
                Ty::Scalar(_) => Val::Scalar(Operand::Reg(regs[0])),
                Ty::Tile(..) => Val::Tile(lay, regs.iter().map(|&r| Operand::Reg(r)).collect()),
            };
            carried.push(regs);
            carried_vals.push(val);
        }
        let iv = self.reg(SType::I32);
        self.bind(body.args[0], Val::Scalar(Operand::Reg(iv)));
        for (a, v) in body.args[1..].iter().zip(&carried_vals) {
            self.bind(*a, v.clone());
        }
        self.push_block();
        self.block(body)?;
        // Parallel assignment of the yields to the carried registers.
        let mut moves: Vec<(Reg, Operand)> = Vec::new();
        for ((y, regs), arg) in body.yields.iter().zip(&carried).zip(&body.args[1..]) {
            let t = register_type(self.ty(*y)?.dtype());
            let lay = self.lay_of(*arg);
            let ops = self.elems(*y, lay, regs.len())?;
            for (&d, o) in regs.iter().zip(ops) {
                let o = self.convert(o, t);
                moves.push((d, o));
            }
        }
        let dsts: HashSet<Reg> = moves.iter().map(|(d, _)| *d).collect();
        let mut staged = Vec::with_capacity(moves.len());
        for (d, s) in moves {
            match s {
                Operand::Reg(r) if r == d => {}
                Operand::Reg(r) if dsts.contains(&r) => {
                    let t = self.regs[r.0 as usize];
                    let tmp = self.mov_new(s, t);
                    staged.push((d, Operand::Reg(tmp)));
                }
                _ => staged.push((d, s)),
            }
        }
        for (dst, src) in staged {
            self.emit(Stmt::Mov { dst, src });
        }
        let body_stmts = self.pop_block();
        self.emit(Stmt::Loop {
            var: iv,
            start,
            end,
            step,
            body: body_stmts,
        });
        for (r, v) in inst.results.iter().zip(carried_vals) {
            self.bind(*r, v);
        }
        Ok(())
    }
}

// ---- analysis: loads staged straight into shared memory ----

/// Where a value is used.
struct UseSite {
    block: usize,
    pos: usize,
    dot_operand: bool,
}

fn collect_uses<'b>(
    b: &'b Block,
    blocks: &mut Vec<&'b Block>,
    uses: &mut HashMap<ValueId, Vec<UseSite>>,
) {
    let id = blocks.len();
    blocks.push(b);
    let mut add = |v: ValueId, pos: usize, dot: bool| {
        uses.entry(v).or_default().push(UseSite {
            block: id,
            pos,
            dot_operand: dot,
        })
    };
    for (pos, inst) in b.insts.iter().enumerate() {
        let access_uses = |acc: &BlockAccess, add: &mut dyn FnMut(ValueId, usize, bool)| {
            add(acc.base, pos, false);
            for &l in &acc.limits {
                add(l, pos, false);
            }
        };
        match &inst.kind {
            InstKind::ProgramId { .. }
            | InstKind::ConstIndex(_)
            | InstKind::ConstFloat(..)
            | InstKind::Iota { .. } => {}
            InstKind::Expand { x, .. } => add(*x, pos, false),
            InstKind::Index { a, b, .. }
            | InstKind::Binary { a, b, .. }
            | InstKind::Compare { a, b, .. } => {
                add(*a, pos, false);
                add(*b, pos, false);
            }
            InstKind::Select { cond, a, b } => {
                add(*cond, pos, false);
                add(*a, pos, false);
                add(*b, pos, false);
            }
            InstKind::Unary { x, .. }
            | InstKind::Cast { x, .. }
            | InstKind::Splat { x, .. }
            | InstKind::Reduce { x, .. } => add(*x, pos, false),
            InstKind::Load { access, .. } => access_uses(access, &mut add),
            InstKind::Store { access, value } => {
                access_uses(access, &mut add);
                add(*value, pos, false);
            }
            InstKind::Dot { a, b, acc } => {
                add(*a, pos, true);
                add(*b, pos, true);
                add(*acc, pos, false);
            }
            InstKind::For {
                start, end, init, ..
            } => {
                add(*start, pos, false);
                add(*end, pos, false);
                for &v in init {
                    add(v, pos, false);
                }
            }
        }
    }
    let n_insts = b.insts.len();
    for &y in &b.yields {
        uses.entry(y).or_default().push(UseSite {
            block: id,
            pos: n_insts,
            dot_operand: false,
        });
    }
    for inst in &b.insts {
        if let InstKind::For { body, .. } = &inst.kind {
            collect_uses(body, blocks, uses);
        }
    }
}

/// Finds rank-2 loads whose only uses are `Dot` operands later in the same block, with
/// no store to that buffer nor loop in between: these are staged cooperatively.
fn find_deferred(k: &TileKernel, out: &mut HashMap<ValueId, (BlockAccess, f64)>) {
    let mut blocks = Vec::new();
    let mut uses = HashMap::new();
    collect_uses(&k.body, &mut blocks, &mut uses);
    for (bid, b) in blocks.iter().enumerate() {
        for (pos, inst) in b.insts.iter().enumerate() {
            let InstKind::Load { access, other } = &inst.kind else {
                continue;
            };
            let Some(&r) = inst.results.first() else {
                continue;
            };
            if access.shape.len() != 2 {
                continue;
            }
            let Some(us) = uses.get(&r) else { continue };
            if us.is_empty() || !us.iter().all(|u| u.dot_operand && u.block == bid) {
                continue;
            }
            let last = us.iter().map(|u| u.pos).max().unwrap_or(pos);
            let Some(between) = b.insts.get(pos + 1..last) else {
                continue;
            };
            let clobbered = between.iter().any(|i| match &i.kind {
                InstKind::Store { access: a, .. } => a.buffer == access.buffer,
                InstKind::For { .. } => true,
                _ => false,
            });
            if !clobbered {
                out.insert(r, (access.clone(), *other));
            }
        }
    }
}

// ---- analysis: layouts of rank-1 tiles ----

/// Chooses the layout of every rank-1 tile value: a rank-2 `Reduce` along axis 1 gives
/// [`Lay::Rows`] (along axis 0 [`Lay::Cols`]), a splat [`Lay::Any`], loads and iotas
/// [`Lay::Lin`]; elementwise results join their operands' layouts; a loop-carried value
/// joins its initial and yielded values' layouts (iterated to a fixed point). So a row
/// statistic that is updated in a loop and expanded back over rows never leaves the
/// row layout.
fn infer_layouts(k: &TileKernel) -> HashMap<ValueId, Lay> {
    let mut m = HashMap::new();
    // Each value's layout only rises (Any < Rows, Cols < Lin): a few passes suffice.
    for _ in 0..8 {
        let mut changed = infer_block(k, &k.body, &mut m);
        // Values still free (from splats, loads, iotas only) take the layout their uses
        // need, which may settle further values.
        let mut demand = HashMap::new();
        demand_block(&k.body, &m, &mut demand);
        for (v, l) in demand {
            if m.get(&v) == Some(&Lay::Any) && l != Lay::Any {
                m.insert(v, l);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    m
}

/// The layouts the uses of each rank-1 value need: `Expand` along axis 1 rows, along
/// axis 0 columns; an elementwise op or a loop-carried slot its result's layout (when
/// decided); joined over all uses.
fn demand_block(b: &Block, m: &HashMap<ValueId, Lay>, out: &mut HashMap<ValueId, Lay>) {
    fn need(out: &mut HashMap<ValueId, Lay>, m: &HashMap<ValueId, Lay>, v: ValueId, l: Lay) {
        if l != Lay::Any && m.contains_key(&v) {
            let e = out.entry(v).or_insert(Lay::Any);
            *e = e.join(l);
        }
    }
    let lay = |v: ValueId| m.get(&v).copied().unwrap_or(Lay::Any);
    for inst in &b.insts {
        let r = inst.results.first().copied();
        match &inst.kind {
            InstKind::Expand { x, axis, .. } => {
                need(out, m, *x, if *axis == 1 { Lay::Rows } else { Lay::Cols })
            }
            InstKind::Unary { x, .. } | InstKind::Cast { x, .. } => {
                if let Some(r) = r {
                    need(out, m, *x, lay(r));
                }
            }
            InstKind::Binary { a, b, .. } | InstKind::Compare { a, b, .. } => {
                if let Some(r) = r {
                    need(out, m, *a, lay(r));
                    need(out, m, *b, lay(r));
                }
            }
            InstKind::Select { cond, a, b } => {
                if let Some(r) = r {
                    for v in [*cond, *a, *b] {
                        need(out, m, v, lay(r));
                    }
                }
            }
            InstKind::For { init, body, .. } => {
                for (&i, &arg) in init.iter().zip(body.args.iter().skip(1)) {
                    need(out, m, i, lay(arg));
                }
                for (&y, &arg) in body.yields.iter().zip(body.args.iter().skip(1)) {
                    need(out, m, y, lay(arg));
                }
                for (&res, &arg) in inst.results.iter().zip(body.args.iter().skip(1)) {
                    // A loop result settled by its uses asks that of the carried slot.
                    need(out, m, arg, lay(res));
                }
                demand_block(body, m, out);
            }
            _ => {}
        }
    }
}

/// One pass over a block; true when some layout changed.
fn infer_block(k: &TileKernel, b: &Block, m: &mut HashMap<ValueId, Lay>) -> bool {
    let rank1 = |v: ValueId| {
        k.values
            .get(v.index())
            .and_then(Ty::shape)
            .is_some_and(|s| s.len() == 1)
    };
    let get = |m: &HashMap<ValueId, Lay>, v: ValueId| m.get(&v).copied().unwrap_or(Lay::Any);
    let mut changed = false;
    let set = |m: &mut HashMap<ValueId, Lay>, v: ValueId, l: Lay| -> bool {
        if !rank1(v) {
            return false;
        }
        let old = m.get(&v).copied();
        let new = old.unwrap_or(Lay::Any).join(l);
        m.insert(v, new);
        old != Some(new)
    };
    for inst in &b.insts {
        let r = inst.results.first().copied();
        let l = match &inst.kind {
            InstKind::Splat { .. } => Some(Lay::Any),
            // Rank-1 loads and iotas cost the same in every layout: their uses decide.
            InstKind::Iota { .. } | InstKind::Load { .. } => Some(Lay::Any),
            InstKind::Reduce { x, axis, .. } => {
                let rank2 = k
                    .values
                    .get(x.index())
                    .and_then(Ty::shape)
                    .is_some_and(|s| s.len() == 2);
                Some(match (rank2, axis) {
                    (true, 1) => Lay::Rows,
                    (true, _) => Lay::Cols,
                    _ => Lay::Any,
                })
            }
            InstKind::Unary { x, .. } | InstKind::Cast { x, .. } => Some(get(m, *x)),
            InstKind::Binary { a, b, .. } | InstKind::Compare { a, b, .. } => {
                Some(get(m, *a).join(get(m, *b)))
            }
            InstKind::Select { cond, a, b } => {
                Some(get(m, *cond).join(get(m, *a)).join(get(m, *b)))
            }
            InstKind::For { init, body, .. } => {
                for (&i, &arg) in init.iter().zip(body.args.iter().skip(1)) {
                    let l = get(m, i);
                    changed |= set(m, arg, l);
                }
                if infer_block(k, body, m) {
                    changed = true;
                }
                for (&y, &arg) in body.yields.iter().zip(body.args.iter().skip(1)) {
                    let l = get(m, y);
                    changed |= set(m, arg, l);
                }
                for (&res, &arg) in inst.results.iter().zip(body.args.iter().skip(1)) {
                    let l = get(m, arg);
                    changed |= set(m, res, l);
                }
                None
            }
            _ => None,
        };
        if let (Some(r), Some(l)) = (r, l) {
            changed |= set(m, r, l);
        }
    }
    changed
}
