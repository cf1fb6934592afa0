//! The tile kernel of scaled-dot-product attention: flash-attention style (K/V tiles
//! streamed, online softmax, no T x T matrix in device memory).
//!
//! One program per (query block of `BM` rows, query head, batch): grid
//! `(ceil(Tq / BM), Hq, B)`, linearised over up to three axes when an extent exceeds the
//! target's `max_grid_dim`. A program loads its query tile `Q [BM, D]` once (in column
//! chunks, see below), then walks the keys in blocks of `BN` with a `For` carrying the
//! running row maximum `m [BM]`, the running row sum `l [BM]` and the output accumulator
//! `acc [BM, Dv]`:
//!
//! ```text
//! S     = (Q @ K_blk^T) * scale                       [BM, BN]  (K^T: swapped strides)
//! S     = masked ? NEG : S                            (key range, causal, padding)
//! m'    = max(m, rowmax(S))
//! P     = exp(S - m')                                 [BM, BN]
//! alpha = exp(m - m')
//! l'    = l * alpha + rowsum(P)
//! acc'  = acc * alpha + P @ V_blk                     [BM, Dv]
//! ```
//!
//! and finally `out = acc / l`, or 0 for a query that sees no key. Nothing of size
//! `T x T` exists outside one `[BM, BN]` tile: the kernel's only device buffers are its
//! operands and its output.
//!
//! Masks are built from `Iota` tiles: key `j0 + c` is out of range when `c >= Tk - j0`;
//! with `causal` query `q0 + r` sees key `j0 + c` iff `c - r <= q0 + Tk - Tq - j0` (aligned
//! at the end, [`CompositeOp::Attention`]); with `padding` the mask row `mask[b, j0..]`
//! (i32, 0 = masked) is loaded as `[BN]` and expanded over the `BM` rows. A causal program
//! stops at the last key block its last query row can see.
//!
//! Masked scores take the finite value `NEG = -1e30` (no infinities: WGSL does not
//! guarantee them), and `m` starts at `NEG`. While a row has seen only masked keys its
//! `m` stays `NEG` and its `P` is `exp(0) = 1` (garbage in `l` and `acc`); the first
//! visible key raises `m` to a real score, and `alpha = exp(NEG - m) = 0` wipes the
//! garbage (as every later masked score gives `exp(NEG - m) = 0`). A row whose final `m`
//! is still below `NEG / 2` saw no key and is written as zeros. (Real scores below
//! `-5e29` would be taken for masked ones.)
//!
//! Workgroup memory (SIMT targets): each `Dot` stages both operands in shared memory, so
//! `Q @ K^T` runs over column chunks of `D` (`Q [BM, cd] @ K^T [cd, BN]`, accumulated
//! into `S`) and `P @ V` over column chunks of `Dv` (one accumulator tile per chunk),
//! with the fewest chunks whose staging fits `shared_memory_bytes` minus a reserve for
//! the row reductions (WebGPU's default 16 KiB with 32 x 32 blocks: head dims up to 48
//! in one chunk, 64 and 80 in two). `BM` and `BN` are the powers of two covering `Tq`
//! and `Tk` up to the target's `attention_block` (32 on GPUs, 64 on CPU adapters),
//! halved while no chunking fits (`choose_tiling`, shared with the backward kernels);
//! where the `Dot`s read B in place (below) and the queries span more than one block,
//! up to twice the block of queries and half the block of keys (`block_caps`: 128 x 32
//! on lavapipe, each load of K or V feeding twice the `Fma`s).
//! On a CPU adapter with subgroups (`Target::subgroup_size`) nothing is staged: `Q`
//! and `K` are read in place, `P` reaches the threads that need it by subgroup
//! shuffles and the row reductions combine by shuffles too (`simt::lower`), so the
//! kernel has no barrier; the chunks are then only a loop split, the same sums.
//!
//! Ascend C gets a vector-only form of the same algorithm (`build_vector`): one program
//! per query row, `q . K_blk^T` as a row sum of an elementwise product, `P @ V_blk` as a
//! column sum, no `Dot` (a `Dot` in a loop with vector work in between would need a
//! Cube/Vector pipeline the Ascend lowering does not have). It runs on the AIV cores
//! only: correct and streaming (memory linear in T), not Cube-fast.

use super::{params, unsupported};
use crate::error::CompileError;
use crate::graph::{BinaryOp, CompareOp, CompositeOp, DType, ReduceOp, UnaryOp};
use crate::schedule::kernel::KernelSpec;
use crate::schedule::view::{piece_groups, StridedView};
use crate::simt::lower::ThreadGrid;
use crate::target::{Target, TargetKind};
use crate::tile::build::{programs, Em, Ix};
use crate::tile::{BlockAccess, IndexOp, TileKernel, ValueId};

/// The score given to masked (query, key) pairs: finite, far below any real score.
pub const NEG: f64 = -1.0e30;

/// Smallest query / key block tried when the blocks [`block_caps`] gives leave no
/// chunking that fits the target's shared memory (blocks are halved down to this, or
/// stay where they start below it).
pub(super) const MIN_BLOCK: usize = 16;

/// Shared-memory bytes kept free for the row reductions and expansions of the SIMT
/// lowering (the `Dot` staging arrays get the rest).
pub(super) const SHARED_RESERVE: usize = 4 * 1024;

/// Column chunks of a head dimension are multiples of this (the SIMT thread grid's
/// column count, so that a staged `[BN, chunk]` tile needs no pitch padding).
pub(super) const CHUNK_QUANTUM: usize = 16;

/// The tiling chosen for one attention kernel (the forward, or one of the four backward
/// kernels: the same for all four on GPUs, see [`block_caps`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttentionTiling {
    /// Query rows per block.
    pub bm: usize,
    /// Keys per block.
    pub bn: usize,
    /// Column chunks `(offset, width)` of the head dimension `D` (for `Q @ K^T`).
    pub d_chunks: Vec<(usize, usize)>,
    /// Column chunks `(offset, width)` of the value dimension `Dv` (for `P @ V`).
    pub dv_chunks: Vec<(usize, usize)>,
}

/// The `Dot`s `(M, K, N)` a family of attention kernels stages, given its query block
/// `bm`, key block `bn` and widest column chunks `cd` (of `D`) and `cv` (of `Dv`).
pub(super) type DotShapes = fn(usize, usize, usize, usize) -> Vec<(usize, usize, usize)>;

/// Smallest power of two `>= n` (1 for 0).
pub(super) fn pow2_at_least(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// `n` split into `parts` chunks of a width that is a multiple of [`CHUNK_QUANTUM`]
/// (the last one shorter).
pub(super) fn chunks(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let w = n
        .div_ceil(parts.max(1))
        .next_multiple_of(CHUNK_QUANTUM)
        .min(n)
        .max(1);
    (0..n).step_by(w).map(|off| (off, w.min(n - off))).collect()
}

/// Chooses the tiling of a family of attention kernels over `q [.., Tq, D]`, `k [.., Tk,
/// D]`, `v [.., Tk, Dv]` on a SIMT target, whose `Dot`s are `dots`:
///
/// - blocks `BM`, `BN`: the powers of two covering `Tq`, `Tk`, at most `caps` (from
///   [`block_caps`]), both halved (neither below [`MIN_BLOCK`] unless it starts there)
///   while no chunking fits;
/// - for those blocks, the fewest column chunks of `D` and `Dv` such that every `Dot`
///   stages within the target's shared memory less [`SHARED_RESERVE`] (one chunk each
///   where nothing is staged: `in_place`, from [`dots_in_place`]), as
///   [`crate::simt::lower`] lays staging out: A `[M, K]` with rows padded to the thread
///   rows, B `[K, N]` with its pitch padded to the thread columns, one array per operand
///   side sized to its largest use.
///
/// `Err(bytes)`: nothing fits; `bytes` is the shared memory the smallest candidate needs.
pub(super) fn choose_tiling(
    target: &Target,
    (tq, tk, d, dv): (usize, usize, usize, usize),
    dots: DotShapes,
    caps: (usize, usize),
    in_place: bool,
) -> Result<AttentionTiling, usize> {
    let g = ThreadGrid::for_target(target).map_err(|_| usize::MAX)?;
    let (tm, tn) = (g.rows as usize, g.cols as usize);
    // Where the `Dot`s stage nothing, any chunking fits: the fewest chunks win.
    let budget = if in_place {
        usize::MAX
    } else {
        target.shared_memory_bytes.saturating_sub(SHARED_RESERVE) / 4
    };
    let max_parts = |n: usize| n.div_ceil(CHUNK_QUANTUM).max(1);
    let (mut cap_m, mut cap_n) = (caps.0.max(1), caps.1.max(1));
    let mut least = usize::MAX;
    loop {
        let (bm, bn) = (pow2_at_least(tq).min(cap_m), pow2_at_least(tk).min(cap_n));
        // Floats of the A and B staging arrays for widest chunks (cd, cv).
        let staging = |cd: usize, cv: usize| {
            let shapes = dots(bm, bn, cd, cv);
            let a = shapes.iter().map(|&(m, k, _)| m.div_ceil(tm) * tm * k);
            let b = shapes.iter().map(|&(_, k, n)| k * (n.div_ceil(tn) * tn));
            a.max().unwrap_or(0) + b.max().unwrap_or(0)
        };
        let mut best: Option<(usize, AttentionTiling)> = None;
        for nd in 1..=max_parts(d) {
            let dc = chunks(d, nd);
            let cd = dc.iter().map(|c| c.1).max().unwrap_or(1);
            for nv in 1..=max_parts(dv) {
                let vc = chunks(dv, nv);
                let cv = vc.iter().map(|c| c.1).max().unwrap_or(1);
                let floats = staging(cd, cv);
                least = least.min(4 * floats + SHARED_RESERVE);
                let cost = dc.len() + vc.len();
                if floats <= budget && best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    best = Some((
                        cost,
                        AttentionTiling {
                            bm,
                            bn,
                            d_chunks: dc.clone(),
                            dv_chunks: vc,
                        },
                    ));
                }
            }
        }
        if let Some((_, t)) = best {
            return Ok(t);
        }
        if cap_m.max(cap_n) <= MIN_BLOCK {
            return Err(least);
        }
        cap_m = (cap_m / 2).max(MIN_BLOCK.min(cap_m));
        cap_n = (cap_n / 2).max(MIN_BLOCK.min(cap_n));
    }
}

/// True where every `Dot` of the attention kernels reads its B operand in place and
/// holds A in registers, moved by subgroup shuffles (`stage_dot_operands` false and
/// subgroup rows: [`crate::simt::lower`]'s `dot_shuffled`; CPU adapters such as
/// lavapipe): the kernels then use no workgroup memory, so no chunking of the head
/// dimensions is needed to fit it. Measured on lavapipe (causal, batch 2, 8 heads, the
/// forward and four backward kernels, 128 x 32 blocks), whole head dims against the
/// chunks the staging model chose: T = 256, head dim 32 25.4 against 29.3 ms, 64 48.8
/// against 55.5, 128 95.6 against 110.5; T = 100, head dim 48 11.6 against 13.4.
///
/// Only where every operand of the `Dot`s (`operands`: the dtypes of the buffers they
/// load) is f32: an f16 or bf16 tile is converted to f32 in registers after its load,
/// and a `Dot` stages operands computed in registers, so those kernels do use workgroup
/// memory and must be chunked to fit it.
pub(super) fn dots_in_place(target: &Target, operands: &[DType]) -> bool {
    !target.stage_dot_operands
        && crate::simt::lower::subgroup_rows(target).is_some()
        && operands.iter().all(|&d| d == DType::F32)
}

/// Which of a kernel's two sequences its programs own blocks of (the other is walked
/// block by block in its loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BlockRows {
    /// Programs own query blocks (the forward, the backward's stats and dq).
    Queries,
    /// Programs own key blocks (the backward's dk and dv).
    Keys,
}

/// The largest query and key blocks (`BM`, `BN`) an attention kernel over `tq` queries
/// and `tk` keys tries: the target's [`Target::attention_block`] rounded down to a power
/// of two for both, except where every `Dot` of the attention kernels reads its B operand
/// in place and moves A by subgroup shuffles (`stage_dot_operands` false and subgroup
/// rows: [`crate::simt::lower`]'s `dot_shuffled`, CPU adapters such as lavapipe) and the
/// sequence the programs own is longer than one block. There the loads of B (keys,
/// values, queries: one per thread per step of `k` and per column the thread owns) are
/// what a `Dot` costs, so a program owns twice the block of rows and walks half the block
/// of the other sequence: each thread then holds twice the rows and half the columns of
/// a score tile (the same registers), and each load feeds twice the `Fma`s. Measured on
/// lavapipe (causal, batch 2, 8 heads; forward and the four backward kernels, alternate
/// runs): T = 256 with head dims 16 / 32 / 64 14.6 / 28.6 / 54.7 ms against 21.1 / 40.2 /
/// 79.6 (the forward alone at head dim 64: 9.2 against 15.7 ms; at T = 1024 106 against
/// 182 ms), T = 100 with head dim 48 13.7 against 15.4 ms. Where the owned sequence fits
/// one block, halving the walked block alone was slower (T = 64, head dim 16: 3.7 against
/// 3.5-3.6 ms), so the blocks stay.
pub(super) fn block_caps(
    target: &Target,
    in_place: bool,
    rows: BlockRows,
    (tq, tk): (usize, usize),
) -> (usize, usize) {
    let block = target.attention_block.max(1);
    let block = 1 << (usize::BITS - 1 - block.leading_zeros());
    let owned = match rows {
        BlockRows::Queries => tq,
        BlockRows::Keys => tk,
    };
    if !in_place || pow2_at_least(owned) <= block {
        return (block, block);
    }
    let (own, walked) = (block * 2, (block / 2).max(1));
    match rows {
        BlockRows::Queries => (own, walked),
        BlockRows::Keys => (walked, own),
    }
}

/// The forward kernel's `Dot`s: `Q @ K^T` per chunk of `D`, `P @ V` per chunk of `Dv`.
fn forward_dots(bm: usize, bn: usize, cd: usize, cv: usize) -> Vec<(usize, usize, usize)> {
    vec![(bm, cd, bn), (bm, bn, cv)]
}

/// Chooses the forward kernel's tiling for `q [.., Tq, D]`, `k [.., Tk, D]`, `v [.., Tk,
/// Dv]` on a SIMT target, whose `Dot`s load buffers of the `operands` dtypes (see
/// `choose_tiling` and [`dots_in_place`]); `Err(bytes)` as there.
pub fn tiling(
    target: &Target,
    (tq, tk, d, dv): (usize, usize, usize, usize),
    operands: &[DType],
) -> Result<AttentionTiling, usize> {
    let in_place = dots_in_place(target, operands);
    let caps = block_caps(target, in_place, BlockRows::Queries, (tq, tk));
    choose_tiling(target, (tq, tk, d, dv), forward_dots, caps, in_place)
}

/// The error of an attention kernel whose tiling found no fit (`needed` bytes of shared
/// memory for the smallest candidate, from `choose_tiling`).
pub(super) fn no_fit(name: &str, target: &Target, needed: usize) -> CompileError {
    CompileError::Limit {
        kernel: name.to_string(),
        target: target.kind.to_string(),
        limit: "shared_memory_bytes",
        needed,
        available: target.shared_memory_bytes,
    }
}

/// Builds the kernel of `c` over its operands (`(buffer index, view)` per node input).
pub fn build(
    spec: &KernelSpec,
    name: &str,
    c: &CompositeOp,
    operands: &[(usize, StridedView)],
    target: &Target,
) -> Result<TileKernel, CompileError> {
    let internal = |message: String| CompileError::Internal {
        stage: "tile",
        message: format!("kernel `{name}`: {message}"),
    };
    let CompositeOp::Attention {
        causal,
        padding,
        scale,
    } = *c
    else {
        return Err(internal(format!("`{}` is not attention", c.name())));
    };
    let want = 3 + usize::from(padding);
    if operands.len() != want {
        return Err(internal(format!(
            "{} operands, attention takes {want}",
            operands.len()
        )));
    }
    let (q, k, v) = (&operands[0], &operands[1], &operands[2]);
    for (what, o) in [("q", q), ("k", k), ("v", v)] {
        if o.1.shape.len() != 4 || o.1.strides.len() != 4 {
            return Err(internal(format!(
                "operand {what} has shape {:?}, want rank 4",
                o.1.shape
            )));
        }
    }
    let (b, hq, tq, d) = (q.1.shape[0], q.1.shape[1], q.1.shape[2], q.1.shape[3]);
    let (hkv, tk, dv) = (k.1.shape[1], k.1.shape[2], v.1.shape[3]);
    if hkv == 0 || hq % hkv != 0 || k.1.shape != [b, hkv, tk, d] || v.1.shape != [b, hkv, tk, dv] {
        return Err(internal(format!(
            "operand shapes {:?}, {:?}, {:?}",
            q.1.shape, k.1.shape, v.1.shape
        )));
    }
    if d == 0 {
        return Err(unsupported(
            spec,
            target,
            "attention with an empty head dimension",
        ));
    }
    let mask = if padding {
        let m = &operands[3];
        if m.1.shape != [b, tk] || m.1.strides.len() != 2 {
            return Err(internal(format!("mask shape {:?}", m.1.shape)));
        }
        if spec.buffers[m.0].dtype != DType::I32 {
            return Err(internal(format!("mask dtype {}", spec.buffers[m.0].dtype)));
        }
        Some(m)
    } else {
        None
    };
    let out_shape = [b, hq, tq, dv];
    let store = out_store(spec, &out_shape).ok_or_else(|| {
        unsupported(
            spec,
            target,
            format!(
                "attention stored through a view that splits its query or value axis \
                 (store shape {:?})",
                spec.store.shape
            ),
        )
    })?;
    if target.kind == TargetKind::AscendC {
        let a = Attn {
            q,
            k,
            v,
            mask,
            store,
            dims: [b, hq, hkv, tq, tk, d, dv],
            causal,
            scale,
        };
        return build_vector(spec, name, target, &a);
    }
    let operands = [q, k, v].map(|x| spec.buffers[x.0].dtype);
    let t = tiling(target, (tq, tk, d, dv), &operands)
        .map_err(|needed| no_fit(name, target, needed))?;
    let (bm, bn) = (t.bm, t.bn);
    let group = (hq / hkv) as i64;
    let f32t = DType::F32;

    let mut em = Em::new();
    let (grid, pids) = programs(
        &mut em,
        target,
        name,
        &[tq.div_ceil(bm) as u64, hq as u64, b as u64],
    )?;
    let (qblk, h, bi) = (pids[0], pids[1], pids[2]);
    let q0 = em.mul(qblk, bm as i64);
    let hk = em.op(IndexOp::Div, h, Ix::C(group));
    let lim_q = em.op(IndexOp::Sub, Ix::C(tq as i64), q0);
    let lim_q = em.val(lim_q);

    // Bases: q at (b, h, q0, 0); k, v at (b, h / group, 0, 0); mask at (b, 0).
    let (qs, ks, vs) = (&q.1.strides, &k.1.strides, &v.1.strides);
    let q_base = em.offset(q.1.offset, &[bi, h, q0], &qs[..3]);
    let k_base = em.offset(k.1.offset, &[bi, hk], &ks[..2]);
    let v_base = em.offset(v.1.offset, &[bi, hk], &vs[..2]);
    let m_base = mask.map(|m| em.offset(m.1.offset, &[bi], &m.1.strides[..1]));

    let cast_f32 = |em: &mut Em, x: ValueId| -> ValueId {
        if em.b.ty(x).dtype() != f32t {
            em.b.cast(x, f32t)
        } else {
            x
        }
    };

    // Q chunks [BM, cd], kept in registers for the whole key loop.
    let q_dtype = spec.buffers[q.0].dtype;
    let mut q_tiles = Vec::with_capacity(t.d_chunks.len());
    for &(off, w) in &t.d_chunks {
        let base = em.add(q_base, Ix::C(off as i64 * qs[3]));
        let base = em.val(base);
        let wl = em.val(Ix::C(w as i64));
        let x = em.b.load(
            BlockAccess {
                buffer: q.0,
                base,
                strides: vec![qs[2], qs[3]],
                limits: vec![lim_q, wl],
                shape: vec![bm, w],
            },
            q_dtype,
            0.0,
        );
        q_tiles.push(cast_f32(&mut em, x));
    }

    // Loop-invariant tiles and constants.
    let zero = em.b.float(0.0, f32t);
    let neg = em.b.float(NEG, f32t);
    let scale_c = em.b.float(scale, f32t);
    let s0 = em.b.splat(zero, &[bm, bn]);
    let col = em.b.iota(&[bm, bn], 1);
    let diff = if causal {
        let row = em.b.iota(&[bm, bn], 0);
        Some(em.b.binary(BinaryOp::Sub, col, row))
    } else {
        None
    };
    // Keys past Tk: masked explicitly unless every key block is full, or the padding
    // mask (loaded with 0 past Tk) already masks them.
    let range_mask = tk % bn != 0 && mask.is_none();

    // Key loop bound: all keys, or (causal) up to the last key the block's last row sees.
    let end = if causal {
        let q_end = em.add(q0, Ix::C(bm as i64));
        let rows_end = em.op(IndexOp::Min, Ix::C(tq as i64), q_end);
        let e = em.add(rows_end, Ix::C(tk as i64 - tq as i64));
        let e = em.op(IndexOp::Min, e, Ix::C(tk as i64));
        em.op(IndexOp::Max, e, Ix::C(0))
    } else {
        Ix::C(tk as i64)
    };
    let start = em.val(Ix::C(0));
    let end = em.val(end);

    let m0 = em.b.splat(neg, &[bm]);
    let l0 = em.b.splat(zero, &[bm]);
    let mut init = vec![m0, l0];
    for &(_, w) in &t.dv_chunks {
        init.push(em.b.splat(zero, &[bm, w]));
    }
    let args = em.begin_for(&init);
    let j0 = Ix::V(args[0]);
    let (m, l) = (args[1], args[2]);
    let accs: Vec<ValueId> = args[3..].to_vec();
    let lim_k = em.op(IndexOp::Sub, Ix::C(tk as i64), j0);
    let lim_k = em.val(lim_k);

    // S = Q @ K^T over the D chunks, scaled.
    let k_dtype = spec.buffers[k.0].dtype;
    let kj = em.mul(j0, ks[2]);
    let k_blk = em.add(k_base, kj);
    let mut s = s0;
    for (&(off, w), &qt) in t.d_chunks.iter().zip(&q_tiles) {
        let base = em.add(k_blk, Ix::C(off as i64 * ks[3]));
        let base = em.val(base);
        let wl = em.val(Ix::C(w as i64));
        let kt = em.b.load(
            BlockAccess {
                buffer: k.0,
                base,
                strides: vec![ks[3], ks[2]],
                limits: vec![wl, lim_k],
                shape: vec![w, bn],
            },
            k_dtype,
            0.0,
        );
        let kt = cast_f32(&mut em, kt);
        s = em.b.dot(qt, kt, s);
    }
    let mut s = em.b.binary(BinaryOp::Mul, s, scale_c);

    // Masks.
    if range_mask {
        let keep = em.b.compare(CompareOp::Lt, col, lim_k);
        s = em.b.select(keep, s, neg);
    }
    if let Some(diff) = diff {
        // Query q0 + r sees key j0 + c iff c - r <= q0 + Tk - Tq - j0.
        let t0 = em.add(q0, Ix::C(tk as i64 - tq as i64));
        let bound = em.op(IndexOp::Sub, t0, j0);
        let bound = em.val(bound);
        let keep = em.b.compare(CompareOp::Le, diff, bound);
        s = em.b.select(keep, s, neg);
    }
    if let (Some(mk), Some(mb)) = (mask, m_base) {
        let st = mk.1.strides[1];
        let mj = em.mul(j0, st);
        let base = em.add(mb, mj);
        let base = em.val(base);
        let row = em.b.load(
            BlockAccess {
                buffer: mk.0,
                base,
                strides: vec![st],
                limits: vec![lim_k],
                shape: vec![bn],
            },
            DType::I32,
            0.0,
        );
        let full = em.b.expand(row, 0, bm);
        let izero = em.val(Ix::C(0));
        let masked = em.b.compare(CompareOp::Eq, full, izero);
        s = em.b.select(masked, neg, s);
    }

    // Online softmax.
    let rmax = em.b.reduce(ReduceOp::Max, s, 1);
    let m_new = em.b.binary(BinaryOp::Max, m, rmax);
    let m_full = em.b.expand(m_new, 1, bn);
    let x = em.b.binary(BinaryOp::Sub, s, m_full);
    let p = em.b.unary(UnaryOp::Exp, x);
    let dm = em.b.binary(BinaryOp::Sub, m, m_new);
    let alpha = em.b.unary(UnaryOp::Exp, dm);
    let rsum = em.b.reduce(ReduceOp::Sum, p, 1);
    let la = em.b.binary(BinaryOp::Mul, l, alpha);
    let l_new = em.b.binary(BinaryOp::Add, la, rsum);

    // acc = acc * alpha + P @ V over the Dv chunks.
    let v_dtype = spec.buffers[v.0].dtype;
    let vj = em.mul(j0, vs[2]);
    let v_blk = em.add(v_base, vj);
    let mut expanded: Vec<(usize, ValueId)> = Vec::new();
    let mut yields = vec![m_new, l_new];
    for (&(off, w), &acc) in t.dv_chunks.iter().zip(&accs) {
        let ae = match expanded.iter().find(|e| e.0 == w) {
            Some(&(_, e)) => e,
            None => {
                let e = em.b.expand(alpha, 1, w);
                expanded.push((w, e));
                e
            }
        };
        let scaled = em.b.binary(BinaryOp::Mul, acc, ae);
        let base = em.add(v_blk, Ix::C(off as i64 * vs[3]));
        let base = em.val(base);
        let wl = em.val(Ix::C(w as i64));
        let vt = em.b.load(
            BlockAccess {
                buffer: v.0,
                base,
                strides: vec![vs[2], vs[3]],
                limits: vec![lim_k, wl],
                shape: vec![bn, w],
            },
            v_dtype,
            0.0,
        );
        let vt = cast_f32(&mut em, vt);
        yields.push(em.b.dot(p, vt, scaled));
    }
    let res = em.end_for(start, end, bn as i64, &init, &yields);

    // out = acc / l, zeros where the row saw no key.
    let (m_fin, l_fin) = (res[0], res[1]);
    let half_neg = em.b.float(NEG / 2.0, f32t);
    let seen = em.b.compare(CompareOp::Gt, m_fin, half_neg);
    let one = em.b.float(1.0, f32t);
    let inv = em.b.binary(BinaryOp::Div, one, l_fin);
    let inv = em.b.select(seen, inv, zero);
    let out_dtype = spec.buffers[spec.out].dtype;
    let o_base = em.offset(store.offset, &[bi, h, q0], &store.strides[..3]);
    let mut expanded: Vec<(usize, ValueId)> = Vec::new();
    for (&(off, w), &acc) in t.dv_chunks.iter().zip(&res[2..]) {
        let ie = match expanded.iter().find(|e| e.0 == w) {
            Some(&(_, e)) => e,
            None => {
                let e = em.b.expand(inv, 1, w);
                expanded.push((w, e));
                e
            }
        };
        let o = em.b.binary(BinaryOp::Mul, acc, ie);
        let o = if out_dtype != f32t {
            em.b.cast(o, out_dtype)
        } else {
            o
        };
        let base = em.add(o_base, Ix::C(off as i64 * store.strides[3]));
        let base = em.val(base);
        let wl = em.val(Ix::C(w as i64));
        em.b.store(
            BlockAccess {
                buffer: spec.out,
                base,
                strides: vec![store.strides[2], store.strides[3]],
                limits: vec![lim_q, wl],
                shape: vec![bm, w],
            },
            o,
        );
    }
    Ok(em.b.finish(name.to_string(), params(spec), grid))
}

/// The operands of one attention kernel, checked.
struct Attn<'a> {
    q: &'a (usize, StridedView),
    k: &'a (usize, StridedView),
    v: &'a (usize, StridedView),
    mask: Option<&'a (usize, StridedView)>,
    /// The output's store view over `[B, Hq, Tq, Dv]`.
    store: StridedView,
    /// `[B, Hq, Hkv, Tq, Tk, D, Dv]`.
    dims: [usize; 7],
    causal: bool,
    scale: f64,
}

/// Keys per loop step of the vector-only kernel: a power of two covering `tk` (at least
/// 8, at most 128) such that six `[BN, max(D, Dv)]` f32 tiles take at most three
/// quarters of the Unified Buffer.
fn vector_key_block(target: &Target, tk: usize, d: usize, dv: usize) -> usize {
    let row = d.max(dv).next_multiple_of(8) * 4;
    let mut bn = pow2_at_least(tk).clamp(8, 128);
    while bn > 8 && 6 * bn * row > target.ub_bytes * 3 / 4 {
        bn /= 2;
    }
    bn
}

/// The vector-only form (Ascend C): no `Dot`, one program per query row.
///
/// Per key block: `s = rowsum(K_blk * q)` (`q [D]` expanded to `[BN, D]` once), the
/// masks and the online softmax on `[BN]` tiles with a scalar running max and sum, and
/// `acc += colsum(expand(p) * V_blk)` on `[Dv]`. The same numerics as the SIMT form (the
/// dot products summed in another order); only vector instructions, so the Ascend
/// lowering runs it on the AIV cores without a Cube/Vector pipeline.
fn build_vector(
    spec: &KernelSpec,
    name: &str,
    target: &Target,
    a: &Attn<'_>,
) -> Result<TileKernel, CompileError> {
    let [b, hq, hkv, tq, tk, d, dv] = a.dims;
    let (q, k, v) = (a.q, a.k, a.v);
    let bn = vector_key_block(target, tk, d, dv);
    let group = (hq / hkv) as i64;
    let f32t = DType::F32;
    let mut em = Em::new();
    let (grid, pids) = programs(&mut em, target, name, &[tq as u64, hq as u64, b as u64])?;
    let (i, h, bi) = (pids[0], pids[1], pids[2]);
    let hk = em.op(IndexOp::Div, h, Ix::C(group));
    let (qs, ks, vs) = (&q.1.strides, &k.1.strides, &v.1.strides);
    let q_base = em.offset(q.1.offset, &[bi, h, i], &qs[..3]);
    let k_base = em.offset(k.1.offset, &[bi, hk], &ks[..2]);
    let v_base = em.offset(v.1.offset, &[bi, hk], &vs[..2]);
    let m_base = a
        .mask
        .map(|m| em.offset(m.1.offset, &[bi], &m.1.strides[..1]));
    let cast_f32 = |em: &mut Em, x: ValueId| -> ValueId {
        if em.b.ty(x).dtype() != f32t {
            em.b.cast(x, f32t)
        } else {
            x
        }
    };
    let dl = em.val(Ix::C(d as i64));
    let dvl = em.val(Ix::C(dv as i64));
    let qb = em.val(q_base);
    let qrow = em.b.load(
        BlockAccess {
            buffer: q.0,
            base: qb,
            strides: vec![qs[3]],
            limits: vec![dl],
            shape: vec![d],
        },
        spec.buffers[q.0].dtype,
        0.0,
    );
    let qrow = cast_f32(&mut em, qrow);
    let qe = em.b.expand(qrow, 0, bn);
    let zero = em.b.float(0.0, f32t);
    let neg = em.b.float(NEG, f32t);
    let scale_c = em.b.float(a.scale, f32t);
    let col = em.b.iota(&[bn], 0);
    let range_mask = tk % bn != 0 && a.mask.is_none();
    let end = if a.causal {
        // Row i sees keys j <= i + Tk - Tq.
        let e = em.add(i, Ix::C(1 + tk as i64 - tq as i64));
        let e = em.op(IndexOp::Min, e, Ix::C(tk as i64));
        em.op(IndexOp::Max, e, Ix::C(0))
    } else {
        Ix::C(tk as i64)
    };
    let start = em.val(Ix::C(0));
    let end = em.val(end);
    let acc0 = em.b.splat(zero, &[dv]);
    let init = [neg, zero, acc0];
    let args = em.begin_for(&init);
    let j0 = Ix::V(args[0]);
    let (m, l, acc) = (args[1], args[2], args[3]);
    let lim_k = em.op(IndexOp::Sub, Ix::C(tk as i64), j0);
    let lim_k = em.val(lim_k);
    let kj = em.mul(j0, ks[2]);
    let kb = em.add(k_base, kj);
    let kb = em.val(kb);
    let kt = em.b.load(
        BlockAccess {
            buffer: k.0,
            base: kb,
            strides: vec![ks[2], ks[3]],
            limits: vec![lim_k, dl],
            shape: vec![bn, d],
        },
        spec.buffers[k.0].dtype,
        0.0,
    );
    let kt = cast_f32(&mut em, kt);
    let prod = em.b.binary(BinaryOp::Mul, kt, qe);
    let s = em.b.reduce(ReduceOp::Sum, prod, 1);
    let mut s = em.b.binary(BinaryOp::Mul, s, scale_c);
    if range_mask {
        let keep = em.b.compare(CompareOp::Lt, col, lim_k);
        s = em.b.select(keep, s, neg);
    }
    if a.causal {
        let t0 = em.add(i, Ix::C(tk as i64 - tq as i64));
        let bound = em.op(IndexOp::Sub, t0, j0);
        let bound = em.val(bound);
        let keep = em.b.compare(CompareOp::Le, col, bound);
        s = em.b.select(keep, s, neg);
    }
    if let (Some(mk), Some(mb)) = (a.mask, m_base) {
        let st = mk.1.strides[1];
        let mj = em.mul(j0, st);
        let base = em.add(mb, mj);
        let base = em.val(base);
        let row = em.b.load(
            BlockAccess {
                buffer: mk.0,
                base,
                strides: vec![st],
                limits: vec![lim_k],
                shape: vec![bn],
            },
            DType::I32,
            0.0,
        );
        let izero = em.val(Ix::C(0));
        let masked = em.b.compare(CompareOp::Eq, row, izero);
        s = em.b.select(masked, neg, s);
    }
    let bmax = em.b.reduce(ReduceOp::Max, s, 0);
    let m_new = em.b.binary(BinaryOp::Max, m, bmax);
    let x = em.b.binary(BinaryOp::Sub, s, m_new);
    let p = em.b.unary(UnaryOp::Exp, x);
    let dm = em.b.binary(BinaryOp::Sub, m, m_new);
    let alpha = em.b.unary(UnaryOp::Exp, dm);
    let psum = em.b.reduce(ReduceOp::Sum, p, 0);
    let la = em.b.binary(BinaryOp::Mul, l, alpha);
    let l_new = em.b.binary(BinaryOp::Add, la, psum);
    let vj = em.mul(j0, vs[2]);
    let vb = em.add(v_base, vj);
    let vb = em.val(vb);
    let vt = em.b.load(
        BlockAccess {
            buffer: v.0,
            base: vb,
            strides: vec![vs[2], vs[3]],
            limits: vec![lim_k, dvl],
            shape: vec![bn, dv],
        },
        spec.buffers[v.0].dtype,
        0.0,
    );
    let vt = cast_f32(&mut em, vt);
    let pe = em.b.expand(p, 1, dv);
    let pv = em.b.binary(BinaryOp::Mul, pe, vt);
    let contrib = em.b.reduce(ReduceOp::Sum, pv, 0);
    let scaled = em.b.binary(BinaryOp::Mul, acc, alpha);
    let acc_new = em.b.binary(BinaryOp::Add, scaled, contrib);
    let res = em.end_for(start, end, bn as i64, &init, &[m_new, l_new, acc_new]);
    let (m_fin, l_fin, acc_fin) = (res[0], res[1], res[2]);
    let half_neg = em.b.float(NEG / 2.0, f32t);
    let seen = em.b.compare(CompareOp::Gt, m_fin, half_neg);
    let one = em.b.float(1.0, f32t);
    let inv = em.b.binary(BinaryOp::Div, one, l_fin);
    let inv = em.b.select(seen, inv, zero);
    let o = em.b.binary(BinaryOp::Mul, acc_fin, inv);
    let out_dtype = spec.buffers[spec.out].dtype;
    let o = if out_dtype != f32t {
        em.b.cast(o, out_dtype)
    } else {
        o
    };
    let st = &a.store;
    let ob = em.offset(st.offset, &[bi, h, i], &st.strides[..3]);
    let ob = em.val(ob);
    em.b.store(
        BlockAccess {
            buffer: spec.out,
            base: ob,
            strides: vec![st.strides[3]],
            limits: vec![dvl],
            shape: vec![dv],
        },
        o,
    );
    Ok(em.b.finish(name.to_string(), params(spec), grid))
}

/// The store view as strides over `[B, Hq, Tq, Dv]`: the spec's store view when it has
/// that shape, or a refinement of it that splits only the batch and head axes (each of
/// which must then be a single stride: a refinement that splits them is refused too).
/// `None` when the store cannot be addressed that way.
pub(super) fn out_store(spec: &KernelSpec, out_shape: &[usize; 4]) -> Option<StridedView> {
    let st = &spec.store;
    if st.shape == out_shape {
        return Some(st.clone());
    }
    let groups = piece_groups(out_shape, &st.shape)?;
    let mut strides = Vec::with_capacity(4);
    for g in &groups {
        match g.len() {
            1 => strides.push(st.strides[g.start]),
            0 => strides.push(0),
            // A split axis is one stride only if its pieces are laid out contiguously
            // relative to each other (outer stride = inner stride * inner extent).
            _ => {
                let pieces: Vec<usize> = g.clone().collect();
                for w in pieces.windows(2) {
                    if st.strides[w[0]] != st.strides[w[1]] * st.shape[w[1]] as i64 {
                        return None;
                    }
                }
                strides.push(st.strides[*pieces.last()?]);
            }
        }
    }
    Some(StridedView {
        node: st.node,
        shape: out_shape.to_vec(),
        strides,
        offset: st.offset,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    const F32: [DType; 3] = [DType::F32; 3];

    #[test]
    fn chunks_cover_the_dimension() {
        assert_eq!(chunks(80, 1), vec![(0, 80)]);
        assert_eq!(chunks(80, 2), vec![(0, 48), (48, 32)]);
        assert_eq!(chunks(64, 2), vec![(0, 32), (32, 32)]);
        assert_eq!(chunks(7, 3), vec![(0, 7)]);
    }

    #[test]
    fn tiling_fits_webgpu_shared_memory() {
        let t = Target::wgsl();
        for d in [32, 64, 80, 128] {
            let tl = tiling(&t, (1024, 1024, d, d), &F32).expect("a tiling");
            assert_eq!((tl.bm, tl.bn), (32, 32));
            let cd = tl.d_chunks.iter().map(|c| c.1).max().unwrap_or(0);
            let cv = tl.dv_chunks.iter().map(|c| c.1).max().unwrap_or(0);
            let a = 32 * cd.max(32);
            let b = (cd * 32).max(32 * cv.next_multiple_of(16));
            assert!(
                4 * (a + b) + SHARED_RESERVE <= t.shared_memory_bytes,
                "d {d}: {tl:?}"
            );
            assert_eq!(tl.d_chunks.iter().map(|c| c.1).sum::<usize>(), d);
        }
        // PTX has room for whole head dims.
        let tl = tiling(&Target::ptx(), (1024, 1024, 80, 80), &F32).expect("a tiling");
        assert_eq!(tl.d_chunks.len() + tl.dv_chunks.len(), 2);
    }

    /// lavapipe's target: a CPU adapter with subgroups of 8 (the thread grid's columns)
    /// and 32 KiB of workgroup memory.
    pub(in crate::tile::ops) fn lavapipe() -> Target {
        Target {
            subgroup_size: Some(8),
            shared_memory_bytes: 32 * 1024,
            ..Target::wgsl().for_cpu_adapter()
        }
    }

    /// f16 (or bf16) operands are converted to f32 in registers after their loads, and a
    /// `Dot` stages what it does not load itself: on lavapipe those kernels need
    /// workgroup memory, and their tiling must fit it (found by `tests/fuzz_graphs.rs`:
    /// f16 attention with Tq 65, Tk 33, head dim 64 asked for 40 KiB of lavapipe's 32).
    #[test]
    fn low_precision_operands_are_staged_within_shared_memory() {
        let lavapipe = lavapipe();
        for dtype in [DType::F16, DType::BF16] {
            assert!(!dots_in_place(&lavapipe, &[dtype, DType::F32, DType::F32]));
            for dims in [(65, 33, 64, 3), (256, 256, 128, 128), (1024, 1024, 64, 64)] {
                let tl = tiling(&lavapipe, dims, &[dtype; 3]).expect("a tiling");
                let cd = tl.d_chunks.iter().map(|c| c.1).max().unwrap_or(0);
                let cv = tl.dv_chunks.iter().map(|c| c.1).max().unwrap_or(0);
                // As `simt::lower` stages (8 x 8 threads): one A and one B array, each
                // sized to its largest use.
                let dots = [(tl.bm, cd, tl.bn), (tl.bm, tl.bn, cv)];
                let a = dots
                    .iter()
                    .map(|&(m, k, _)| m.next_multiple_of(8) * k)
                    .max();
                let b = dots
                    .iter()
                    .map(|&(_, k, n)| k * n.next_multiple_of(8))
                    .max();
                let floats = a.unwrap_or(0) + b.unwrap_or(0);
                assert!(
                    4 * floats + SHARED_RESERVE <= lavapipe.shared_memory_bytes,
                    "{dtype} {dims:?}: {tl:?}"
                );
            }
        }
    }

    #[test]
    fn in_place_dots_own_long_blocks_and_walk_short_ones() {
        let lavapipe = lavapipe();
        assert_eq!(
            block_caps(&lavapipe, true, BlockRows::Queries, (256, 256)),
            (128, 32)
        );
        assert_eq!(
            block_caps(&lavapipe, true, BlockRows::Keys, (256, 256)),
            (32, 128)
        );
        // The owned sequence fits one block: the blocks stay.
        assert_eq!(
            block_caps(&lavapipe, true, BlockRows::Queries, (64, 256)),
            (64, 64)
        );
        assert_eq!(
            block_caps(&lavapipe, true, BlockRows::Keys, (256, 64)),
            (64, 64)
        );
        let tl = tiling(&lavapipe, (256, 256, 64, 64), &F32).expect("a tiling");
        assert_eq!((tl.bm, tl.bn), (128, 32));
        let tl = tiling(&lavapipe, (100, 1000, 48, 48), &F32).expect("a tiling");
        assert_eq!((tl.bm, tl.bn), (128, 32));
        // Staged targets (GPUs, or no subgroups) keep square blocks.
        for t in [
            Target::ptx(),
            Target::wgsl(),
            Target::wgsl().for_cpu_adapter(),
        ] {
            let b = t.attention_block;
            for rows in [BlockRows::Queries, BlockRows::Keys] {
                let in_place = dots_in_place(&t, &F32);
                assert!(!in_place, "{}", t.kind);
                assert_eq!(
                    block_caps(&t, in_place, rows, (4096, 4096)),
                    (b, b),
                    "{}",
                    t.kind
                );
            }
        }
    }

    #[test]
    fn blocks_follow_the_target_and_shrink_to_fit() {
        let cpu = Target::wgsl().for_cpu_adapter();
        // WebGPU's default 16 KiB: 64 x 64 blocks do not fit ([64, 64] P alone is 16
        // KiB), so the blocks halve to 32.
        let tl = tiling(&cpu, (256, 256, 64, 64), &F32).expect("a tiling");
        assert_eq!((tl.bm, tl.bn, tl.d_chunks.len()), (32, 32, 2));
        // lavapipe's 32 KiB: 64 x 64 in two chunks of 32 per head dim.
        let big = Target {
            shared_memory_bytes: 32 * 1024,
            ..cpu.clone()
        };
        let tl = tiling(&big, (256, 256, 64, 64), &F32).expect("a tiling");
        assert_eq!((tl.bm, tl.bn), (64, 64));
        assert_eq!(tl.d_chunks, vec![(0, 32), (32, 32)]);
        // Short sequences keep their power-of-two blocks.
        let tl = tiling(&big, (5, 40, 64, 64), &F32).expect("a tiling");
        assert_eq!((tl.bm, tl.bn), (8, 64));
        // A block that is not a power of two is rounded down.
        let odd = Target {
            attention_block: 48,
            ..big.clone()
        };
        assert_eq!(tiling(&odd, (256, 256, 64, 64), &F32).map(|t| t.bm), Ok(32));
        // Nothing fits: the error gives what the smallest candidate needs (16 x 16
        // blocks, 16-column chunks).
        let tiny = Target {
            shared_memory_bytes: SHARED_RESERVE + 1024,
            ..cpu
        };
        // A [16, 16] (rows padded to 8) + B [16, 16] = 512 floats = 2048 bytes.
        assert_eq!(
            tiling(&tiny, (256, 256, 64, 64), &F32),
            Err(2048 + SHARED_RESERVE)
        );
    }
}
