//! The tile kernels of attention's backward pass: flash-attention style, deterministic
//! (no atomics: every output element is written by one program), no `T x T` matrix in
//! device memory.
//!
//! With `S = scale q k^T` (masked as [`CompositeOp::Attention`] defines), `P =
//! softmax(S)`, `L` the row logsumexp and `delta = rowsum(d_out * out)`:
//!
//! ```text
//! P  = exp(S - L)            (recomputed per tile; masked entries 0)
//! dP = d_out v^T
//! dS = P * (dP - delta)
//! dq = scale dS k            dk = scale dS^T q            dv = P^T d_out
//! ```
//!
//! Four kernels, one per op ([`CompositeOp::AttentionStats`], [`CompositeOp::AttentionGrad`]
//! with `wrt` q, k, v):
//!
//! - `attention_bwd_stats`: one program per (query block of `BM` rows, query head,
//!   batch), the forward's key loop without the `P @ V` (running max and sum, online) and
//!   `delta` from one pass over `out` and `d_out`; writes `[L, delta]` per query, `[B, Hq,
//!   Tq, 2]` f32 (`L = 0` for a query that sees no key);
//! - `attention_bwd_dq`: one program per (query block, query head, batch), `Q`, `d_out`
//!   (in column chunks), `L` and `delta` loaded once, a loop over the key blocks it can
//!   see: `S = Q K^T`, `P = exp(S - L)`, `dP = d_out V^T`, `dS`, `dq += dS K`;
//! - `attention_bwd_dk` / `attention_bwd_dv`: one program per (key block of `BN` keys,
//!   key/value head, batch), `K` and `V` loaded once, a loop over the query blocks of
//!   every query head of its group (grouped-query heads: the sum over the group is the
//!   loop, so no cross-program reduction): everything in the transposed orientation
//!   (`S^T = K Q^T` `[BN, BM]`, `P^T = exp(S^T - L)`, `dP^T = V d_out^T`), so that
//!   `dk += dS^T Q` and `dv += P^T d_out` are plain `Dot`s without a transpose. A
//!   causal program starts, in every head of its group, at the first query block that
//!   sees its keys.
//!
//! Masked scores take `NEG = -1e30` ([`super::attention::NEG`]) and `P = exp(NEG - L) =
//! 0` exactly; a query that sees no key has `L = 0` and every `P` 0, so its gradient
//! contributions are 0 (consistent with the forward's zeros). Queries past `Tq` in a
//! key-block program read `L = 1e30` (the load's fill value), so their `P` is 0 without
//! a mask; keys past `Tk` are masked as in the forward (or by the padding mask, which
//! reads 0 past `Tk`).
//!
//! Workgroup memory: as in the forward, each `Dot` stages both operands in shared
//! memory, so the head dimensions are split into column chunks chosen so that the
//! largest staging of every `Dot` of the four kernels fits (WebGPU's 16 KiB: head dims
//! 32 in one chunk, 64 and 80 in two). Each kernel chooses its blocks with the forward's
//! rule (`super::attention::block_caps`): the same for all four on GPUs; where the
//! `Dot`s read B in place (CPU adapters with subgroups), stats and dq own up to twice
//! the block of queries and walk half the block of keys, dk and dv the other way round.
//! The blocks and chunks change how the loops are split, not the order of any sum over
//! a head dimension, so every score is the same bits in every kernel.
//!
//! Ascend C gets a vector-only form of the same four kernels (as the forward's
//! `build_vector`: no `Dot`, AIV cores only): stats and dq one program per query row
//! (a loop over key blocks, `q . K_blk^T` as a row sum of an elementwise product,
//! `ds @ K_blk` as a column sum), dk and dv one program per key row (a loop over the
//! query blocks of its group's heads). Streaming and linear in `T`, not Cube-fast.

use super::attention::NEG;
use super::attention::{
    block_caps, choose_tiling, dots_in_place, no_fit, out_store, pow2_at_least, AttentionTiling,
    BlockRows,
};
use super::{params, unsupported};
use crate::error::CompileError;
use crate::graph::{AttentionWrt, BinaryOp, CompareOp, CompositeOp, DType, ReduceOp, UnaryOp};
use crate::schedule::kernel::KernelSpec;
use crate::schedule::view::StridedView;
use crate::target::{Target, TargetKind};
use crate::tile::build::{programs, Em, Ix};
use crate::tile::{BlockAccess, IndexOp, TileKernel, ValueId};

/// `L` read for queries past `Tq` in the key-block kernels: `exp(S - L) = 0`.
const FAR: f64 = 1.0e30;

/// The `Dot`s of the four backward kernels, each kernel's tiling fitting all of them
/// ([`super::attention::choose_tiling`]: every `Dot` of the four stages within the
/// target's shared memory): stats and dq over query rows (`Q K^T`,
/// `d_out V^T`, `dS K`), dk and dv over key rows (`K Q^T`, `V d_out^T`, `dS^T Q`,
/// `P^T d_out`).
fn backward_dots(bm: usize, bn: usize, cd: usize, cv: usize) -> Vec<(usize, usize, usize)> {
    vec![
        (bm, cd, bn),
        (bm, cv, bn),
        (bm, bn, cd),
        (bn, cd, bm),
        (bn, cv, bm),
        (bn, bm, cd),
        (bn, bm, cv),
    ]
}

/// The checked operands of one backward kernel.
struct Ops<'a> {
    q: &'a (usize, StridedView),
    k: &'a (usize, StridedView),
    /// Values (dq, dk kernels).
    v: Option<&'a (usize, StridedView)>,
    /// The forward's output (stats kernel).
    out: Option<&'a (usize, StridedView)>,
    d_out: &'a (usize, StridedView),
    /// `[L, delta]` per query (gradient kernels).
    stats: Option<&'a (usize, StridedView)>,
    mask: Option<&'a (usize, StridedView)>,
    /// `[B, Hq, Hkv, Tq, Tk, D, Dv]`.
    dims: [usize; 7],
    causal: bool,
    scale: f64,
}

/// Which backward kernel.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Stats,
    Grad(AttentionWrt),
}

/// Builds the kernel of `c` (an [`CompositeOp::AttentionStats`] or
/// [`CompositeOp::AttentionGrad`]) over its operands (`(buffer index, view)` per node
/// input).
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
    let (which, causal, padding, scale) = match *c {
        CompositeOp::AttentionStats {
            causal,
            padding,
            scale,
        } => (Which::Stats, causal, padding, scale),
        CompositeOp::AttentionGrad {
            causal,
            padding,
            scale,
            wrt,
        } => (Which::Grad(wrt), causal, padding, scale),
        _ => {
            return Err(internal(format!(
                "`{}` is not an attention backward op",
                c.name()
            )))
        }
    };
    if operands.len() != c.arity() {
        return Err(internal(format!(
            "{} operands, {} takes {}",
            operands.len(),
            c.name(),
            c.arity()
        )));
    }
    for (i, o) in operands.iter().enumerate() {
        let rank = if padding && i + 1 == operands.len() {
            2
        } else {
            4
        };
        if o.1.shape.len() != rank || o.1.strides.len() != rank {
            return Err(internal(format!(
                "operand {i} has shape {:?}, want rank {rank}",
                o.1.shape
            )));
        }
    }
    let mask = padding.then(|| &operands[operands.len() - 1]);
    let (v, out, d_out, stats) = match which {
        Which::Stats => (None, Some(&operands[2]), &operands[3], None),
        Which::Grad(AttentionWrt::V) => (None, None, &operands[2], Some(&operands[3])),
        Which::Grad(_) => (Some(&operands[2]), None, &operands[3], Some(&operands[4])),
    };
    let (q, k) = (&operands[0], &operands[1]);
    let (b, hq, tq, d) = (q.1.shape[0], q.1.shape[1], q.1.shape[2], q.1.shape[3]);
    let (hkv, tk) = (k.1.shape[1], k.1.shape[2]);
    let dv = d_out.1.shape[3];
    let shapes_ok = hkv != 0
        && hq % hkv == 0
        && k.1.shape == [b, hkv, tk, d]
        && d_out.1.shape == [b, hq, tq, dv]
        && v.is_none_or(|v| v.1.shape == [b, hkv, tk, dv])
        && out.is_none_or(|o| o.1.shape == [b, hq, tq, dv])
        && stats.is_none_or(|s| s.1.shape == [b, hq, tq, 2])
        && mask.is_none_or(|m| m.1.shape == [b, tk]);
    if !shapes_ok {
        return Err(internal(format!(
            "operand shapes {:?}",
            operands.iter().map(|o| &o.1.shape).collect::<Vec<_>>()
        )));
    }
    if let Some(m) = mask {
        if spec.buffers[m.0].dtype != DType::I32 {
            return Err(internal(format!("mask dtype {}", spec.buffers[m.0].dtype)));
        }
    }
    if d == 0 || dv == 0 {
        return Err(unsupported(
            spec,
            target,
            "attention backward with an empty head dimension",
        ));
    }
    let out_shape = match which {
        Which::Stats => [b, hq, tq, 2],
        Which::Grad(AttentionWrt::Q) => [b, hq, tq, d],
        Which::Grad(AttentionWrt::K) => [b, hkv, tk, d],
        Which::Grad(AttentionWrt::V) => [b, hkv, tk, dv],
    };
    let store = out_store(spec, &out_shape).ok_or_else(|| {
        unsupported(
            spec,
            target,
            format!(
                "{} stored through a view that splits its sequence or feature axis \
                 (store shape {:?})",
                c.name(),
                spec.store.shape
            ),
        )
    })?;
    if target.kind == TargetKind::AscendC {
        let a = Ops {
            q,
            k,
            v,
            out,
            d_out,
            stats,
            mask,
            dims: [b, hq, hkv, tq, tk, d, dv],
            causal,
            scale,
        };
        let mut em = Em::new();
        let grid = match which {
            Which::Stats | Which::Grad(AttentionWrt::Q) => {
                vector_query_side(&mut em, spec, name, target, &a, &store, which)?
            }
            Which::Grad(wrt) => vector_key_side(&mut em, spec, name, target, &a, &store, wrt)?,
        };
        return Ok(em.b.finish(name.to_string(), params(spec), grid));
    }
    let rows = match which {
        Which::Stats | Which::Grad(AttentionWrt::Q) => BlockRows::Queries,
        Which::Grad(_) => BlockRows::Keys,
    };
    // The buffers the `Dot`s load (`out` only enters the stats' elementwise product).
    let operands: Vec<DType> = [Some(q), Some(k), v, Some(d_out)]
        .into_iter()
        .flatten()
        .map(|x| spec.buffers[x.0].dtype)
        .collect();
    let in_place = dots_in_place(target, &operands);
    let caps = block_caps(target, in_place, rows, (tq, tk));
    let t = choose_tiling(target, (tq, tk, d, dv), backward_dots, caps, in_place)
        .map_err(|needed| no_fit(name, target, needed))?;
    let a = Ops {
        q,
        k,
        v,
        out,
        d_out,
        stats,
        mask,
        dims: [b, hq, hkv, tq, tk, d, dv],
        causal,
        scale,
    };
    let mut em = Em::new();
    let grid = match which {
        Which::Stats | Which::Grad(AttentionWrt::Q) => {
            query_side(&mut em, spec, name, target, &a, &t, &store, which)?
        }
        Which::Grad(wrt) => key_side(&mut em, spec, name, target, &a, &t, &store, wrt)?,
    };
    Ok(em.b.finish(name.to_string(), params(spec), grid))
}

/// `x` as f32.
fn cast_f32(em: &mut Em, x: ValueId) -> ValueId {
    if em.b.ty(x).dtype() != DType::F32 {
        em.b.cast(x, DType::F32)
    } else {
        x
    }
}

/// A rank-2 block load `[rows, cols]` from `buffer` at `base` (f32 after the load).
#[allow(clippy::too_many_arguments)]
fn load2(
    em: &mut Em,
    spec: &KernelSpec,
    buffer: usize,
    base: Ix,
    strides: [i64; 2],
    limits: [Ix; 2],
    shape: [usize; 2],
    other: f64,
) -> ValueId {
    let base = em.val(base);
    let l0 = em.val(limits[0]);
    let l1 = em.val(limits[1]);
    let x = em.b.load(
        BlockAccess {
            buffer,
            base,
            strides: strides.to_vec(),
            limits: vec![l0, l1],
            shape: shape.to_vec(),
        },
        spec.buffers[buffer].dtype,
        other,
    );
    cast_f32(em, x)
}

/// A rank-1 block load `[n]` (f32 after the load unless the buffer is i32).
#[allow(clippy::too_many_arguments)]
fn load1(
    em: &mut Em,
    spec: &KernelSpec,
    buffer: usize,
    base: Ix,
    stride: i64,
    limit: Ix,
    n: usize,
    other: f64,
) -> ValueId {
    let base = em.val(base);
    let l = em.val(limit);
    let dt = spec.buffers[buffer].dtype;
    let x = em.b.load(
        BlockAccess {
            buffer,
            base,
            strides: vec![stride],
            limits: vec![l],
            shape: vec![n],
        },
        dt,
        other,
    );
    if dt == DType::I32 {
        x
    } else {
        cast_f32(em, x)
    }
}

/// Stores the f32 tile `x [rows, cols]` (cast to the output dtype).
fn store2(
    em: &mut Em,
    spec: &KernelSpec,
    base: Ix,
    strides: [i64; 2],
    limits: [Ix; 2],
    x: ValueId,
) {
    let out_dtype = spec.buffers[spec.out].dtype;
    let x = if out_dtype != DType::F32 {
        em.b.cast(x, out_dtype)
    } else {
        x
    };
    let shape =
        em.b.ty(x)
            .shape()
            .map(<[usize]>::to_vec)
            .unwrap_or_default();
    let base = em.val(base);
    let l0 = em.val(limits[0]);
    let l1 = em.val(limits[1]);
    em.b.store(
        BlockAccess {
            buffer: spec.out,
            base,
            strides: strides.to_vec(),
            limits: vec![l0, l1],
            shape,
        },
        x,
    );
}

/// Stores the rank-1 f32 tile `x [n]` (cast to the output dtype).
fn store1(em: &mut Em, spec: &KernelSpec, base: Ix, stride: i64, limit: Ix, x: ValueId) {
    let out_dtype = spec.buffers[spec.out].dtype;
    let x = if out_dtype != DType::F32 {
        em.b.cast(x, out_dtype)
    } else {
        x
    };
    let shape =
        em.b.ty(x)
            .shape()
            .map(<[usize]>::to_vec)
            .unwrap_or_default();
    let base = em.val(base);
    let l = em.val(limit);
    em.b.store(
        BlockAccess {
            buffer: spec.out,
            base,
            strides: vec![stride],
            limits: vec![l],
            shape,
        },
        x,
    );
}

/// The stats kernel and the dq kernel: one program per (query block, query head,
/// batch), a loop over key blocks.
#[allow(clippy::too_many_arguments)]
fn query_side(
    em: &mut Em,
    spec: &KernelSpec,
    name: &str,
    target: &Target,
    a: &Ops<'_>,
    t: &AttentionTiling,
    store: &StridedView,
    which: Which,
) -> Result<[u32; 3], CompileError> {
    let [b, hq, hkv, tq, tk, _d, _dv] = a.dims;
    let (bm, bn) = (t.bm, t.bn);
    let group = (hq / hkv) as i64;
    let f32t = DType::F32;
    let (grid, pids) = programs(
        em,
        target,
        name,
        &[tq.div_ceil(bm) as u64, hq as u64, b as u64],
    )?;
    let (qblk, h, bi) = (pids[0], pids[1], pids[2]);
    let q0 = em.mul(qblk, bm as i64);
    let hk = em.op(IndexOp::Div, h, Ix::C(group));
    let lim_q = em.op(IndexOp::Sub, Ix::C(tq as i64), q0);
    let (q, k, d_out) = (a.q, a.k, a.d_out);
    let (qs, ks, ds) = (&q.1.strides, &k.1.strides, &d_out.1.strides);
    let q_base = em.offset(q.1.offset, &[bi, h, q0], &qs[..3]);
    let k_base = em.offset(k.1.offset, &[bi, hk], &ks[..2]);
    let do_base = em.offset(d_out.1.offset, &[bi, h, q0], &ds[..3]);
    let m_base = a
        .mask
        .map(|m| em.offset(m.1.offset, &[bi], &m.1.strides[..1]));

    // Q chunks [BM, cd], for the whole key loop.
    let mut q_tiles = Vec::new();
    for &(off, w) in &t.d_chunks {
        let base = em.add(q_base, Ix::C(off as i64 * qs[3]));
        q_tiles.push(load2(
            em,
            spec,
            q.0,
            base,
            [qs[2], qs[3]],
            [lim_q, Ix::C(w as i64)],
            [bm, w],
            0.0,
        ));
    }
    let zero = em.b.float(0.0, f32t);
    let neg = em.b.float(NEG, f32t);
    let scale_c = em.b.float(a.scale, f32t);
    let s0 = em.b.splat(zero, &[bm, bn]);
    let col = em.b.iota(&[bm, bn], 1);
    let diff = if a.causal {
        let row = em.b.iota(&[bm, bn], 0);
        Some(em.b.binary(BinaryOp::Sub, col, row))
    } else {
        None
    };
    let range_mask = tk % bn != 0 && a.mask.is_none();
    let end = if a.causal {
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

    // The gradient kernel's loop invariants: d_out chunks, L and delta.
    let mut do_tiles = Vec::new();
    let mut l_row = zero;
    let mut delta_row = zero;
    if let Which::Grad(_) = which {
        for &(off, w) in &t.dv_chunks {
            let base = em.add(do_base, Ix::C(off as i64 * ds[3]));
            do_tiles.push(load2(
                em,
                spec,
                d_out.0,
                base,
                [ds[2], ds[3]],
                [lim_q, Ix::C(w as i64)],
                [bm, w],
                0.0,
            ));
        }
        let st = a.stats.ok_or_else(|| CompileError::Internal {
            stage: "tile",
            message: format!("kernel `{name}`: no stats operand"),
        })?;
        let ss = &st.1.strides;
        let st_base = em.offset(st.1.offset, &[bi, h, q0], &ss[..3]);
        l_row = load1(em, spec, st.0, st_base, ss[2], lim_q, bm, 0.0);
        let db = em.add(st_base, Ix::C(ss[3]));
        delta_row = load1(em, spec, st.0, db, ss[2], lim_q, bm, 0.0);
    }

    let mut init = Vec::new();
    match which {
        Which::Stats => {
            init.push(em.b.splat(neg, &[bm]));
            init.push(em.b.splat(zero, &[bm]));
        }
        _ => {
            for &(_, w) in &t.d_chunks {
                init.push(em.b.splat(zero, &[bm, w]));
            }
        }
    }
    let args = em.begin_for(&init);
    let j0 = Ix::V(args[0]);
    let carried: Vec<ValueId> = args[1..].to_vec();
    let lim_k = em.op(IndexOp::Sub, Ix::C(tk as i64), j0);

    // S = Q @ K^T, scaled and masked.
    let kj = em.mul(j0, ks[2]);
    let k_blk = em.add(k_base, kj);
    let mut s = s0;
    for (&(off, w), &qt) in t.d_chunks.iter().zip(&q_tiles) {
        let base = em.add(k_blk, Ix::C(off as i64 * ks[3]));
        let kt = load2(
            em,
            spec,
            k.0,
            base,
            [ks[3], ks[2]],
            [Ix::C(w as i64), lim_k],
            [w, bn],
            0.0,
        );
        s = em.b.dot(qt, kt, s);
    }
    let mut s = em.b.binary(BinaryOp::Mul, s, scale_c);
    if range_mask {
        let lk = em.val(lim_k);
        let keep = em.b.compare(CompareOp::Lt, col, lk);
        s = em.b.select(keep, s, neg);
    }
    if let Some(diff) = diff {
        let t0 = em.add(q0, Ix::C(tk as i64 - tq as i64));
        let bound = em.op(IndexOp::Sub, t0, j0);
        let bound = em.val(bound);
        let keep = em.b.compare(CompareOp::Le, diff, bound);
        s = em.b.select(keep, s, neg);
    }
    if let (Some(mk), Some(mb)) = (a.mask, m_base) {
        let st = mk.1.strides[1];
        let mj = em.mul(j0, st);
        let base = em.add(mb, mj);
        let row = load1(em, spec, mk.0, base, st, lim_k, bn, 0.0);
        let full = em.b.expand(row, 0, bm);
        let izero = em.val(Ix::C(0));
        let masked = em.b.compare(CompareOp::Eq, full, izero);
        s = em.b.select(masked, neg, s);
    }

    let yields = match which {
        Which::Stats => {
            let (m, l) = (carried[0], carried[1]);
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
            vec![m_new, l_new]
        }
        _ => {
            // P = exp(S - L); dP = d_out @ V^T; dS = P (dP - delta) scale; dq += dS @ K.
            let le = em.b.expand(l_row, 1, bn);
            let x = em.b.binary(BinaryOp::Sub, s, le);
            let p = em.b.unary(UnaryOp::Exp, x);
            let v = a.v.ok_or_else(|| CompileError::Internal {
                stage: "tile",
                message: format!("kernel `{name}`: no v operand"),
            })?;
            let vs = &v.1.strides;
            let v_base = em.offset(v.1.offset, &[bi, hk], &vs[..2]);
            let vj = em.mul(j0, vs[2]);
            let v_blk = em.add(v_base, vj);
            let mut dp = s0;
            for (&(off, w), &dot) in t.dv_chunks.iter().zip(&do_tiles) {
                let base = em.add(v_blk, Ix::C(off as i64 * vs[3]));
                let vt = load2(
                    em,
                    spec,
                    v.0,
                    base,
                    [vs[3], vs[2]],
                    [Ix::C(w as i64), lim_k],
                    [w, bn],
                    0.0,
                );
                dp = em.b.dot(dot, vt, dp);
            }
            let de = em.b.expand(delta_row, 1, bn);
            let dd = em.b.binary(BinaryOp::Sub, dp, de);
            let ds_ = em.b.binary(BinaryOp::Mul, p, dd);
            let ds_ = em.b.binary(BinaryOp::Mul, ds_, scale_c);
            let mut ys = Vec::new();
            for (&(off, w), &acc) in t.d_chunks.iter().zip(&carried) {
                let base = em.add(k_blk, Ix::C(off as i64 * ks[3]));
                let kt = load2(
                    em,
                    spec,
                    k.0,
                    base,
                    [ks[2], ks[3]],
                    [lim_k, Ix::C(w as i64)],
                    [bn, w],
                    0.0,
                );
                ys.push(em.b.dot(ds_, kt, acc));
            }
            ys
        }
    };
    let res = em.end_for(start, end, bn as i64, &init, &yields);

    let o_base = em.offset(store.offset, &[bi, h, q0], &store.strides[..3]);
    match which {
        Which::Stats => {
            // L = m + log(l), 0 where the row saw no key; delta = rowsum(d_out * out).
            let (m_fin, l_fin) = (res[0], res[1]);
            let half_neg = em.b.float(NEG / 2.0, f32t);
            let seen = em.b.compare(CompareOp::Gt, m_fin, half_neg);
            let one = em.b.float(1.0, f32t);
            let l_safe = em.b.select(seen, l_fin, one);
            let lg = em.b.unary(UnaryOp::Log, l_safe);
            let lse = em.b.binary(BinaryOp::Add, m_fin, lg);
            let lse = em.b.select(seen, lse, zero);
            let out = a.out.ok_or_else(|| CompileError::Internal {
                stage: "tile",
                message: format!("kernel `{name}`: no out operand"),
            })?;
            let os = &out.1.strides;
            let out_base = em.offset(out.1.offset, &[bi, h, q0], &os[..3]);
            let mut delta = em.b.splat(zero, &[bm]);
            for &(off, w) in &t.dv_chunks {
                let ob = em.add(out_base, Ix::C(off as i64 * os[3]));
                let ot = load2(
                    em,
                    spec,
                    out.0,
                    ob,
                    [os[2], os[3]],
                    [lim_q, Ix::C(w as i64)],
                    [bm, w],
                    0.0,
                );
                let gb = em.add(do_base, Ix::C(off as i64 * ds[3]));
                let gt = load2(
                    em,
                    spec,
                    d_out.0,
                    gb,
                    [ds[2], ds[3]],
                    [lim_q, Ix::C(w as i64)],
                    [bm, w],
                    0.0,
                );
                let pr = em.b.binary(BinaryOp::Mul, ot, gt);
                let r = em.b.reduce(ReduceOp::Sum, pr, 1);
                delta = em.b.binary(BinaryOp::Add, delta, r);
            }
            store1(em, spec, o_base, store.strides[2], lim_q, lse);
            let db = em.add(o_base, Ix::C(store.strides[3]));
            store1(em, spec, db, store.strides[2], lim_q, delta);
        }
        _ => {
            for (&(off, w), &acc) in t.d_chunks.iter().zip(&res) {
                let base = em.add(o_base, Ix::C(off as i64 * store.strides[3]));
                store2(
                    em,
                    spec,
                    base,
                    [store.strides[2], store.strides[3]],
                    [lim_q, Ix::C(w as i64)],
                    acc,
                );
            }
        }
    }
    Ok(grid)
}

/// The dk and dv kernels: one program per (key block, key/value head, batch), a loop over
/// the query blocks of every query head of the group, in the transposed orientation.
#[allow(clippy::too_many_arguments)]
fn key_side(
    em: &mut Em,
    spec: &KernelSpec,
    name: &str,
    target: &Target,
    a: &Ops<'_>,
    t: &AttentionTiling,
    store: &StridedView,
    wrt: AttentionWrt,
) -> Result<[u32; 3], CompileError> {
    let [b, hq, hkv, tq, tk, _d, _dv] = a.dims;
    let (bm, bn) = (t.bm, t.bn);
    let group = hq / hkv;
    let f32t = DType::F32;
    let internal = |what: &str| CompileError::Internal {
        stage: "tile",
        message: format!("kernel `{name}`: no {what} operand"),
    };
    let (grid, pids) = programs(
        em,
        target,
        name,
        &[tk.div_ceil(bn) as u64, hkv as u64, b as u64],
    )?;
    let (kblk, hk, bi) = (pids[0], pids[1], pids[2]);
    let j0 = em.mul(kblk, bn as i64);
    let lim_k = em.op(IndexOp::Sub, Ix::C(tk as i64), j0);
    let (q, k, d_out) = (a.q, a.k, a.d_out);
    let st = a.stats.ok_or_else(|| internal("stats"))?;
    let (qs, ks, ds, ss) = (&q.1.strides, &k.1.strides, &d_out.1.strides, &st.1.strides);
    let k_base = em.offset(k.1.offset, &[bi, hk, j0], &ks[..3]);

    // K chunks [BN, cd] and (dk) V chunks [BN, cv], for the whole query loop.
    let mut k_tiles = Vec::new();
    for &(off, w) in &t.d_chunks {
        let base = em.add(k_base, Ix::C(off as i64 * ks[3]));
        k_tiles.push(load2(
            em,
            spec,
            k.0,
            base,
            [ks[2], ks[3]],
            [lim_k, Ix::C(w as i64)],
            [bn, w],
            0.0,
        ));
    }
    let mut v_tiles = Vec::new();
    if wrt == AttentionWrt::K {
        let v = a.v.ok_or_else(|| internal("v"))?;
        let vs = &v.1.strides;
        let v_base = em.offset(v.1.offset, &[bi, hk, j0], &vs[..3]);
        for &(off, w) in &t.dv_chunks {
            let base = em.add(v_base, Ix::C(off as i64 * vs[3]));
            v_tiles.push(load2(
                em,
                spec,
                v.0,
                base,
                [vs[2], vs[3]],
                [lim_k, Ix::C(w as i64)],
                [bn, w],
                0.0,
            ));
        }
    }
    let zero = em.b.float(0.0, f32t);
    let neg = em.b.float(NEG, f32t);
    let scale_c = em.b.float(a.scale, f32t);
    let s0 = em.b.splat(zero, &[bn, bm]);
    // Causal: key j0 + r is visible to query q0 + c iff r - c <= q0 + Tk - Tq - j0.
    let diff = if a.causal {
        let row = em.b.iota(&[bn, bm], 0);
        let col = em.b.iota(&[bn, bm], 1);
        Some(em.b.binary(BinaryOp::Sub, row, col))
    } else {
        None
    };
    // Padding: the key mask is loop-invariant, a bool [BN, BM].
    let pad_masked = match a.mask {
        Some(mk) => {
            let ms = &mk.1.strides;
            let base = em.offset(mk.1.offset, &[bi, j0], &ms[..2]);
            let row = load1(em, spec, mk.0, base, ms[1], lim_k, bn, 0.0);
            let full = em.b.expand(row, 1, bm);
            let izero = em.val(Ix::C(0));
            Some(em.b.compare(CompareOp::Eq, full, izero))
        }
        None => None,
    };

    // The loop runs over t in [start, group * TqP) by BM, TqP = ceil(Tq / BM) * BM:
    // query head hk * group + t / TqP, query block t % TqP.
    let (first, span, start, end) = query_loop(em, a.causal, j0, tq, tk, bm, group);
    let mut init = Vec::new();
    let chunks_out = if wrt == AttentionWrt::K {
        &t.d_chunks
    } else {
        &t.dv_chunks
    };
    for &(_, w) in chunks_out {
        init.push(em.b.splat(zero, &[bn, w]));
    }
    let args = em.begin_for(&init);
    let it = Ix::V(args[0]);
    let accs: Vec<ValueId> = args[1..].to_vec();
    let (h, q0) = head_and_block(em, it, first, span, hk, group);
    let lim_q = em.op(IndexOp::Sub, Ix::C(tq as i64), q0);
    let q_base = em.offset(q.1.offset, &[bi, h, q0], &qs[..3]);
    let do_base = em.offset(d_out.1.offset, &[bi, h, q0], &ds[..3]);
    let st_base = em.offset(st.1.offset, &[bi, h, q0], &ss[..3]);

    // S^T = K @ Q^T [BN, BM], scaled and masked.
    let mut s = s0;
    for (&(off, w), &kt) in t.d_chunks.iter().zip(&k_tiles) {
        let base = em.add(q_base, Ix::C(off as i64 * qs[3]));
        let qt = load2(
            em,
            spec,
            q.0,
            base,
            [qs[3], qs[2]],
            [Ix::C(w as i64), lim_q],
            [w, bm],
            0.0,
        );
        s = em.b.dot(kt, qt, s);
    }
    let mut s = em.b.binary(BinaryOp::Mul, s, scale_c);
    if let Some(diff) = diff {
        let t0 = em.add(q0, Ix::C(tk as i64 - tq as i64));
        let bound = em.op(IndexOp::Sub, t0, j0);
        let bound = em.val(bound);
        let keep = em.b.compare(CompareOp::Le, diff, bound);
        s = em.b.select(keep, s, neg);
    }
    if let Some(pm) = pad_masked {
        s = em.b.select(pm, neg, s);
    }
    // P^T = exp(S^T - L) (L = FAR past Tq: P = 0 there).
    let l_col = load1(em, spec, st.0, st_base, ss[2], lim_q, bm, FAR);
    let le = em.b.expand(l_col, 0, bn);
    let x = em.b.binary(BinaryOp::Sub, s, le);
    let p = em.b.unary(UnaryOp::Exp, x);

    let mut yields = Vec::new();
    if wrt == AttentionWrt::V {
        // dv += P^T @ d_out.
        for (&(off, w), &acc) in t.dv_chunks.iter().zip(&accs) {
            let base = em.add(do_base, Ix::C(off as i64 * ds[3]));
            let gt = load2(
                em,
                spec,
                d_out.0,
                base,
                [ds[2], ds[3]],
                [lim_q, Ix::C(w as i64)],
                [bm, w],
                0.0,
            );
            yields.push(em.b.dot(p, gt, acc));
        }
    } else {
        // dP^T = V @ d_out^T; dS^T = P^T (dP^T - delta) scale; dk += dS^T @ Q.
        let mut dp = s0;
        for (&(off, w), &vt) in t.dv_chunks.iter().zip(&v_tiles) {
            let base = em.add(do_base, Ix::C(off as i64 * ds[3]));
            let gt = load2(
                em,
                spec,
                d_out.0,
                base,
                [ds[3], ds[2]],
                [Ix::C(w as i64), lim_q],
                [w, bm],
                0.0,
            );
            dp = em.b.dot(vt, gt, dp);
        }
        let db = em.add(st_base, Ix::C(ss[3]));
        let delta = load1(em, spec, st.0, db, ss[2], lim_q, bm, 0.0);
        let de = em.b.expand(delta, 0, bn);
        let dd = em.b.binary(BinaryOp::Sub, dp, de);
        let ds_ = em.b.binary(BinaryOp::Mul, p, dd);
        let ds_ = em.b.binary(BinaryOp::Mul, ds_, scale_c);
        for (&(off, w), &acc) in t.d_chunks.iter().zip(&accs) {
            let base = em.add(q_base, Ix::C(off as i64 * qs[3]));
            let qt = load2(
                em,
                spec,
                q.0,
                base,
                [qs[2], qs[3]],
                [lim_q, Ix::C(w as i64)],
                [bm, w],
                0.0,
            );
            yields.push(em.b.dot(ds_, qt, acc));
        }
    }
    let res = em.end_for(start, end, bm as i64, &init, &yields);
    let o_base = em.offset(store.offset, &[bi, hk, j0], &store.strides[..3]);
    for (&(off, w), &acc) in chunks_out.iter().zip(&res) {
        let base = em.add(o_base, Ix::C(off as i64 * store.strides[3]));
        store2(
            em,
            spec,
            base,
            [store.strides[2], store.strides[3]],
            [lim_k, Ix::C(w as i64)],
            acc,
        );
    }
    Ok(grid)
}

/// The query loop of a key-side program (key position `key`): it runs `it` over `[0,
/// group * span)` by `BM`, query head `hk * group + it / span`, query block `first + it %
/// span` ([`head_and_block`]), where `first` is the first query block that sees the key
/// (causal: query `key - (Tk - Tq)`, rounded down to a block; else 0) and `span = TqP -
/// first`, `TqP = ceil(Tq / BM) * BM`. Returns `(first, span, start, end)`.
#[allow(clippy::too_many_arguments)]
fn query_loop(
    em: &mut Em,
    causal: bool,
    key: Ix,
    tq: usize,
    tk: usize,
    bm: usize,
    group: usize,
) -> (Ix, Ix, ValueId, ValueId) {
    let tqp = (tq.div_ceil(bm) * bm) as i64;
    let first = if causal {
        let f = em.op(IndexOp::Sub, key, Ix::C(tk as i64 - tq as i64));
        let f = em.op(IndexOp::Max, f, Ix::C(0));
        let f = em.op(IndexOp::Min, f, Ix::C(tqp));
        let blk = em.op(IndexOp::Div, f, Ix::C(bm as i64));
        em.mul(blk, bm as i64)
    } else {
        Ix::C(0)
    };
    let span = em.op(IndexOp::Sub, Ix::C(tqp), first);
    let end = em.mul(span, group as i64);
    let start = em.val(Ix::C(0));
    let end = em.val(end);
    (first, span, start, end)
}

/// The query head and query block start of iteration `it` of [`query_loop`].
fn head_and_block(em: &mut Em, it: Ix, first: Ix, span: Ix, hk: Ix, group: usize) -> (Ix, Ix) {
    if group == 1 {
        return (hk, em.add(first, it));
    }
    let hoff = em.op(IndexOp::Div, it, span);
    let r = em.op(IndexOp::Rem, it, span);
    let hb = em.mul(hk, group as i64);
    (em.add(hb, hoff), em.add(first, r))
}

/// Rows per loop step of the vector-only kernels: a power of two covering `n` (at least
/// 8, at most 128) such that eight `[rows, max(D, Dv)]` f32 tiles take at most three
/// quarters of the Unified Buffer.
fn vector_block(target: &Target, n: usize, d: usize, dv: usize) -> usize {
    let row = d.max(dv).next_multiple_of(8) * 4;
    let mut bn = pow2_at_least(n).clamp(8, 128);
    while bn > 8 && 8 * bn * row > target.ub_bytes * 3 / 4 {
        bn /= 2;
    }
    bn
}

/// Element `i` of the rank-1 tile `x` as a scalar (`sum(select(iota == i, x, 0))`).
fn element(em: &mut Em, x: ValueId, i: i64) -> ValueId {
    let n =
        em.b.ty(x)
            .shape()
            .and_then(|s| s.first().copied())
            .unwrap_or(1);
    let pos = em.b.iota(&[n], 0);
    let iv = em.val(Ix::C(i));
    let hit = em.b.compare(CompareOp::Eq, pos, iv);
    let zero = em.b.float(0.0, DType::F32);
    let picked = em.b.select(hit, x, zero);
    em.b.reduce(ReduceOp::Sum, picked, 0)
}

/// The vector-only (Ascend C) stats and dq kernels: one program per query row, no `Dot`
/// (as the forward's vector form): per key block `s = rowsum(K_blk * q)`, the masks,
/// then the online max / sum (stats) or `p = exp(s - L)`, `dp = rowsum(V_blk * d_out)`,
/// `ds = p (dp - delta) scale`, `dq += colsum(ds * K_blk)` (dq).
fn vector_query_side(
    em: &mut Em,
    spec: &KernelSpec,
    name: &str,
    target: &Target,
    a: &Ops<'_>,
    store: &StridedView,
    which: Which,
) -> Result<[u32; 3], CompileError> {
    let [b, hq, hkv, tq, tk, d, dv] = a.dims;
    let bn = vector_block(target, tk, d, dv);
    let group = (hq / hkv) as i64;
    let f32t = DType::F32;
    let internal = |what: &str| CompileError::Internal {
        stage: "tile",
        message: format!("kernel `{name}`: no {what} operand"),
    };
    let (grid, pids) = programs(em, target, name, &[tq as u64, hq as u64, b as u64])?;
    let (i, h, bi) = (pids[0], pids[1], pids[2]);
    let hk = em.op(IndexOp::Div, h, Ix::C(group));
    let (q, k, d_out) = (a.q, a.k, a.d_out);
    let (qs, ks, ds) = (&q.1.strides, &k.1.strides, &d_out.1.strides);
    let q_base = em.offset(q.1.offset, &[bi, h, i], &qs[..3]);
    let k_base = em.offset(k.1.offset, &[bi, hk], &ks[..2]);
    let do_base = em.offset(d_out.1.offset, &[bi, h, i], &ds[..3]);
    let m_base = a
        .mask
        .map(|m| em.offset(m.1.offset, &[bi], &m.1.strides[..1]));
    let qrow = load1(em, spec, q.0, q_base, qs[3], Ix::C(d as i64), d, 0.0);
    let qe = em.b.expand(qrow, 0, bn);
    let zero = em.b.float(0.0, f32t);
    let neg = em.b.float(NEG, f32t);
    let scale_c = em.b.float(a.scale, f32t);
    let col = em.b.iota(&[bn], 0);
    let range_mask = tk % bn != 0 && a.mask.is_none();
    let end = if a.causal {
        let e = em.add(i, Ix::C(1 + tk as i64 - tq as i64));
        let e = em.op(IndexOp::Min, e, Ix::C(tk as i64));
        em.op(IndexOp::Max, e, Ix::C(0))
    } else {
        Ix::C(tk as i64)
    };
    let start = em.val(Ix::C(0));
    let end = em.val(end);
    // dq: d_out row, L and delta.
    let (mut doe, mut lse, mut delta) = (zero, zero, zero);
    let mut v_base = Ix::C(0);
    if let Which::Grad(_) = which {
        let dorow = load1(em, spec, d_out.0, do_base, ds[3], Ix::C(dv as i64), dv, 0.0);
        doe = em.b.expand(dorow, 0, bn);
        let st = a.stats.ok_or_else(|| internal("stats"))?;
        let ss = &st.1.strides;
        let sb = em.offset(st.1.offset, &[bi, h, i], &ss[..3]);
        let pair = load1(em, spec, st.0, sb, ss[3], Ix::C(2), 2, 0.0);
        lse = element(em, pair, 0);
        delta = element(em, pair, 1);
        let v = a.v.ok_or_else(|| internal("v"))?;
        v_base = em.offset(v.1.offset, &[bi, hk], &v.1.strides[..2]);
    }
    let init = match which {
        Which::Stats => vec![neg, zero],
        _ => vec![em.b.splat(zero, &[d])],
    };
    let args = em.begin_for(&init);
    let j0 = Ix::V(args[0]);
    let lim_k = em.op(IndexOp::Sub, Ix::C(tk as i64), j0);
    let kj = em.mul(j0, ks[2]);
    let kb = em.add(k_base, kj);
    let kt = load2(
        em,
        spec,
        k.0,
        kb,
        [ks[2], ks[3]],
        [lim_k, Ix::C(d as i64)],
        [bn, d],
        0.0,
    );
    let prod = em.b.binary(BinaryOp::Mul, kt, qe);
    let s = em.b.reduce(ReduceOp::Sum, prod, 1);
    let mut s = em.b.binary(BinaryOp::Mul, s, scale_c);
    if range_mask {
        let lk = em.val(lim_k);
        let keep = em.b.compare(CompareOp::Lt, col, lk);
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
        let row = load1(em, spec, mk.0, base, st, lim_k, bn, 0.0);
        let izero = em.val(Ix::C(0));
        let masked = em.b.compare(CompareOp::Eq, row, izero);
        s = em.b.select(masked, neg, s);
    }
    let yields = match which {
        Which::Stats => {
            let (m, l) = (args[1], args[2]);
            let bmax = em.b.reduce(ReduceOp::Max, s, 0);
            let m_new = em.b.binary(BinaryOp::Max, m, bmax);
            let x = em.b.binary(BinaryOp::Sub, s, m_new);
            let p = em.b.unary(UnaryOp::Exp, x);
            let dm = em.b.binary(BinaryOp::Sub, m, m_new);
            let alpha = em.b.unary(UnaryOp::Exp, dm);
            let psum = em.b.reduce(ReduceOp::Sum, p, 0);
            let la = em.b.binary(BinaryOp::Mul, l, alpha);
            let l_new = em.b.binary(BinaryOp::Add, la, psum);
            vec![m_new, l_new]
        }
        _ => {
            let v = a.v.ok_or_else(|| internal("v"))?;
            let vs = &v.1.strides;
            let x = em.b.binary(BinaryOp::Sub, s, lse);
            let p = em.b.unary(UnaryOp::Exp, x);
            let vj = em.mul(j0, vs[2]);
            let vb = em.add(v_base, vj);
            let vt = load2(
                em,
                spec,
                v.0,
                vb,
                [vs[2], vs[3]],
                [lim_k, Ix::C(dv as i64)],
                [bn, dv],
                0.0,
            );
            let pv = em.b.binary(BinaryOp::Mul, vt, doe);
            let dp = em.b.reduce(ReduceOp::Sum, pv, 1);
            let dd = em.b.binary(BinaryOp::Sub, dp, delta);
            let dsv = em.b.binary(BinaryOp::Mul, p, dd);
            let dsv = em.b.binary(BinaryOp::Mul, dsv, scale_c);
            let dse = em.b.expand(dsv, 1, d);
            let kt2 = load2(
                em,
                spec,
                k.0,
                kb,
                [ks[2], ks[3]],
                [lim_k, Ix::C(d as i64)],
                [bn, d],
                0.0,
            );
            let contrib = em.b.binary(BinaryOp::Mul, dse, kt2);
            let c = em.b.reduce(ReduceOp::Sum, contrib, 0);
            vec![em.b.binary(BinaryOp::Add, args[1], c)]
        }
    };
    let res = em.end_for(start, end, bn as i64, &init, &yields);
    let ob = em.offset(store.offset, &[bi, h, i], &store.strides[..3]);
    match which {
        Which::Stats => {
            let (m_fin, l_fin) = (res[0], res[1]);
            let half_neg = em.b.float(NEG / 2.0, f32t);
            let seen = em.b.compare(CompareOp::Gt, m_fin, half_neg);
            let one = em.b.float(1.0, f32t);
            let l_safe = em.b.select(seen, l_fin, one);
            let lg = em.b.unary(UnaryOp::Log, l_safe);
            let l = em.b.binary(BinaryOp::Add, m_fin, lg);
            let l = em.b.select(seen, l, zero);
            let out = a.out.ok_or_else(|| internal("out"))?;
            let os = &out.1.strides;
            let obase = em.offset(out.1.offset, &[bi, h, i], &os[..3]);
            let orow = load1(em, spec, out.0, obase, os[3], Ix::C(dv as i64), dv, 0.0);
            let grow = load1(em, spec, d_out.0, do_base, ds[3], Ix::C(dv as i64), dv, 0.0);
            let pr = em.b.binary(BinaryOp::Mul, orow, grow);
            let dl = em.b.reduce(ReduceOp::Sum, pr, 0);
            let pos = em.b.iota(&[2], 0);
            let izero = em.val(Ix::C(0));
            let first = em.b.compare(CompareOp::Eq, pos, izero);
            let ls = em.b.splat(l, &[2]);
            let dls = em.b.splat(dl, &[2]);
            let pair = em.b.select(first, ls, dls);
            store1(em, spec, ob, store.strides[3], Ix::C(2), pair);
        }
        _ => store1(em, spec, ob, store.strides[3], Ix::C(d as i64), res[0]),
    }
    Ok(grid)
}

/// The vector-only (Ascend C) dk and dv kernels: one program per key row, a loop over
/// the query blocks of every query head of its group: `s = rowsum(Q_blk * k)`, `p =
/// exp(s - L_blk)`, then `dv += colsum(p * dO_blk)` or `dp = rowsum(dO_blk * v)`,
/// `ds = p (dp - delta) scale`, `dk += colsum(ds * Q_blk)`. A key the padding mask hides
/// gets `-1e30` added to its scores (so `p = 0`).
fn vector_key_side(
    em: &mut Em,
    spec: &KernelSpec,
    name: &str,
    target: &Target,
    a: &Ops<'_>,
    store: &StridedView,
    wrt: AttentionWrt,
) -> Result<[u32; 3], CompileError> {
    let [b, hq, hkv, tq, tk, d, dv] = a.dims;
    let bm = vector_block(target, tq, d, dv);
    let group = hq / hkv;
    let f32t = DType::F32;
    let internal = |what: &str| CompileError::Internal {
        stage: "tile",
        message: format!("kernel `{name}`: no {what} operand"),
    };
    let (grid, pids) = programs(em, target, name, &[tk as u64, hkv as u64, b as u64])?;
    let (j, hk, bi) = (pids[0], pids[1], pids[2]);
    let (q, k, d_out) = (a.q, a.k, a.d_out);
    let st = a.stats.ok_or_else(|| internal("stats"))?;
    let (qs, ks, ds, ss) = (&q.1.strides, &k.1.strides, &d_out.1.strides, &st.1.strides);
    let kb = em.offset(k.1.offset, &[bi, hk, j], &ks[..3]);
    let krow = load1(em, spec, k.0, kb, ks[3], Ix::C(d as i64), d, 0.0);
    let ke = em.b.expand(krow, 0, bm);
    let mut ve = ke;
    if wrt == AttentionWrt::K {
        let v = a.v.ok_or_else(|| internal("v"))?;
        let vs = &v.1.strides;
        let vb = em.offset(v.1.offset, &[bi, hk, j], &vs[..3]);
        let vrow = load1(em, spec, v.0, vb, vs[3], Ix::C(dv as i64), dv, 0.0);
        ve = em.b.expand(vrow, 0, bm);
    }
    let zero = em.b.float(0.0, f32t);
    let neg = em.b.float(NEG, f32t);
    let scale_c = em.b.float(a.scale, f32t);
    // Padding: 0 for a visible key, -1e30 for a hidden one (added to the scores).
    let pad = match a.mask {
        Some(mk) => {
            let ms = &mk.1.strides;
            let base = em.offset(mk.1.offset, &[bi, j], &ms[..2]);
            let one_i = Ix::C(1);
            let mrow = load1(em, spec, mk.0, base, ms[1], one_i, 1, 0.0);
            let izero = em.val(Ix::C(0));
            let hidden = em.b.compare(CompareOp::Eq, mrow, izero);
            let penalty = em.b.select(hidden, neg, zero);
            Some(em.b.reduce(ReduceOp::Sum, penalty, 0))
        }
        None => None,
    };
    let row = em.b.iota(&[bm], 0);
    let (first, span, start, end) = query_loop(em, a.causal, j, tq, tk, bm, group);
    let width = if wrt == AttentionWrt::K { d } else { dv };
    let init = [em.b.splat(zero, &[width])];
    let args = em.begin_for(&init);
    let it = Ix::V(args[0]);
    let (h, q0) = head_and_block(em, it, first, span, hk, group);
    let lim_q = em.op(IndexOp::Sub, Ix::C(tq as i64), q0);
    let qb = em.offset(q.1.offset, &[bi, h, q0], &qs[..3]);
    let gb = em.offset(d_out.1.offset, &[bi, h, q0], &ds[..3]);
    let sb = em.offset(st.1.offset, &[bi, h, q0], &ss[..3]);
    let qt = load2(
        em,
        spec,
        q.0,
        qb,
        [qs[2], qs[3]],
        [lim_q, Ix::C(d as i64)],
        [bm, d],
        0.0,
    );
    let prod = em.b.binary(BinaryOp::Mul, qt, ke);
    let s = em.b.reduce(ReduceOp::Sum, prod, 1);
    let mut s = em.b.binary(BinaryOp::Mul, s, scale_c);
    if a.causal {
        // Query q0 + r sees key j iff r >= j - q0 - (Tk - Tq).
        let t0 = em.op(IndexOp::Sub, j, q0);
        let bound = em.op(IndexOp::Sub, t0, Ix::C(tk as i64 - tq as i64));
        let bound = em.val(bound);
        let keep = em.b.compare(CompareOp::Ge, row, bound);
        s = em.b.select(keep, s, neg);
    }
    if let Some(pen) = pad {
        s = em.b.binary(BinaryOp::Add, s, pen);
    }
    let lrow = load1(em, spec, st.0, sb, ss[2], lim_q, bm, FAR);
    let x = em.b.binary(BinaryOp::Sub, s, lrow);
    let p = em.b.unary(UnaryOp::Exp, x);
    let gt = load2(
        em,
        spec,
        d_out.0,
        gb,
        [ds[2], ds[3]],
        [lim_q, Ix::C(dv as i64)],
        [bm, dv],
        0.0,
    );
    let acc_new = if wrt == AttentionWrt::V {
        let pe = em.b.expand(p, 1, dv);
        let pg = em.b.binary(BinaryOp::Mul, pe, gt);
        let c = em.b.reduce(ReduceOp::Sum, pg, 0);
        em.b.binary(BinaryOp::Add, args[1], c)
    } else {
        let gv = em.b.binary(BinaryOp::Mul, gt, ve);
        let dp = em.b.reduce(ReduceOp::Sum, gv, 1);
        let db = em.add(sb, Ix::C(ss[3]));
        let drow = load1(em, spec, st.0, db, ss[2], lim_q, bm, 0.0);
        let dd = em.b.binary(BinaryOp::Sub, dp, drow);
        let dsv = em.b.binary(BinaryOp::Mul, p, dd);
        let dsv = em.b.binary(BinaryOp::Mul, dsv, scale_c);
        let dse = em.b.expand(dsv, 1, d);
        let qt2 = load2(
            em,
            spec,
            q.0,
            qb,
            [qs[2], qs[3]],
            [lim_q, Ix::C(d as i64)],
            [bm, d],
            0.0,
        );
        let c = em.b.binary(BinaryOp::Mul, dse, qt2);
        let c = em.b.reduce(ReduceOp::Sum, c, 0);
        em.b.binary(BinaryOp::Add, args[1], c)
    };
    let res = em.end_for(start, end, bm as i64, &init, &[acc_new]);
    let ob = em.offset(store.offset, &[bi, hk, j], &store.strides[..3]);
    store1(em, spec, ob, store.strides[3], Ix::C(width as i64), res[0]);
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lavapipe_query_and_key_side_kernels_own_long_blocks() {
        let lavapipe = super::super::attention::tests::lavapipe();
        let dims = (256, 256, 64, 64);
        let in_place = dots_in_place(&lavapipe, &[DType::F32; 5]);
        assert!(in_place);
        let side = |rows| {
            let caps = block_caps(&lavapipe, in_place, rows, (256, 256));
            choose_tiling(&lavapipe, dims, backward_dots, caps, in_place).expect("a tiling")
        };
        let (q, k) = (side(BlockRows::Queries), side(BlockRows::Keys));
        assert_eq!((q.bm, q.bn), (128, 32), "stats and dq: {q:?}");
        assert_eq!((k.bm, k.bn), (32, 128), "dk and dv: {k:?}");
        // Nothing is staged: whole head dims, whatever the shared memory.
        assert_eq!((q.d_chunks.len(), q.dv_chunks.len()), (1, 1), "{q:?}");
        let small = Target {
            shared_memory_bytes: 16 * 1024,
            ..lavapipe.clone()
        };
        let caps = block_caps(&small, true, BlockRows::Keys, (256, 256));
        let t = choose_tiling(&small, (256, 256, 128, 128), backward_dots, caps, true)
            .expect("a tiling");
        assert_eq!((t.bm, t.bn, t.d_chunks.len()), (32, 128, 1), "{t:?}");
        // Staged (no subgroups), the same memory halves the blocks, neither below
        // MIN_BLOCK.
        let staged = Target {
            subgroup_size: None,
            ..small
        };
        let in_place = dots_in_place(&staged, &[DType::F32; 5]);
        assert!(!in_place);
        let caps = block_caps(&staged, in_place, BlockRows::Keys, (256, 256));
        let t = choose_tiling(&staged, dims, backward_dots, caps, in_place).expect("a tiling");
        assert!(t.bm >= 16 && t.bn >= 16 && t.bn < 64, "{t:?}");
        // f16 operands are converted in registers, and those the Dots stage: on lavapipe
        // too the tiling must fit its workgroup memory.
        let f16 = [DType::F16, DType::F16, DType::F16, DType::F32, DType::F16];
        let in_place = dots_in_place(&lavapipe, &f16);
        assert!(!in_place);
        let caps = block_caps(&lavapipe, in_place, BlockRows::Keys, (256, 256));
        let t = choose_tiling(&lavapipe, dims, backward_dots, caps, in_place).expect("a tiling");
        assert_eq!((t.bm, t.bn), (64, 64), "{t:?}");
        assert!(t.d_chunks.len() > 1, "staged: chunked to fit 32 KiB: {t:?}");
    }

    #[test]
    fn tiling_fits_webgpu_shared_memory() {
        let t = Target::wgsl();
        for (d, parts) in [(32, 1), (64, 2), (80, 2)] {
            let caps = block_caps(&t, false, BlockRows::Queries, (1024, 1024));
            let tl = choose_tiling(&t, (1024, 1024, d, d), backward_dots, caps, false)
                .expect("a tiling");
            assert_eq!((tl.bm, tl.bn), (32, 32));
            assert_eq!(tl.d_chunks.len(), parts, "d {d}: {tl:?}");
            assert_eq!(tl.d_chunks.iter().map(|c| c.1).sum::<usize>(), d);
            assert_eq!(tl.dv_chunks.iter().map(|c| c.1).sum::<usize>(), d);
        }
        let ptx = Target::ptx();
        let caps = block_caps(&ptx, false, BlockRows::Keys, (1024, 1024));
        let tl = choose_tiling(&ptx, (1024, 1024, 80, 80), backward_dots, caps, false)
            .expect("a tiling");
        assert_eq!(tl.d_chunks.len() + tl.dv_chunks.len(), 2);
    }
}
