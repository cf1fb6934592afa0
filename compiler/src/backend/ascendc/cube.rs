//! The cube side of a MIX kernel: a tile-IR matmul loop (`acc = dot(load a, load b, acc)`
//! over K) lowered to the Cube unit of an AI Core (AIC).
//!
//! Per K step: the `a` tile `[BM, BK]` and the `b` tile `[BK, BN]` go GM -> L1 with the
//! ND -> NZ conversion of `DataCopy(.., Nd2NzParams)`, L1 -> L0A / L0B with `LoadData`
//! (`LoadData2DParams`; a per-fractal transpose when the operand's K axis is not its
//! contiguous one), and `Mmad` accumulates into L0C. After the loop `Fixpipe` writes the
//! accumulator (NZ -> row-major) into the program's region of a GM workspace, which the
//! vector side (AIV) reads back for the epilogue.
//!
//! Fractal layouts on A2 (arch 2201): L1 operands are NZ (column groups of `C0 = 32 B /
//! sizeof(T)` elements, rows contiguous inside a group); L0A wants "Zz" (16 x C0 fractals,
//! row-major over M blocks then K groups), L0B wants "Zn" (C0 x 16 fractals stored with K
//! contiguous per N, K groups outer). Tiles are padded to multiples of 16 in M, N and K;
//! the padding (and any masked-off part of a partial tile) is zero, copied from a zeroed
//! region of the workspace before the ND -> NZ copy.
//!
//! Supported operand layouts: every combination of `a` with K or M contiguous and `b` with
//! K or N contiguous, for f32, f16 and bf16 (f16/bf16 transposes use `LoadData` with
//! `ifTranspose`; f32 transposes use `LoadDataWithTranspose`, which merges two 16 x 8
//! fractals into a 16 x 16 square, transposes it and splits it again).

use super::cpp::{self, round_up, Writer};
use super::vector::{deep_uses, operands, use_counts, CubeResult};
use crate::error::CompileError;
use crate::graph::DType;
use crate::target::{Target, TargetKind};
use crate::tile::{BlockAccess, IndexOp, Inst, InstKind, TileKernel, Ty, ValueId};
use std::collections::{HashMap, HashSet};

type R<T> = Result<T, CompileError>;

fn unsupported(kernel: &str, what: impl Into<String>) -> CompileError {
    CompileError::Unsupported {
        target: "ascendc".into(),
        kernel: kernel.to_string(),
        what: what.into(),
    }
}

/// A recognised matmul loop.
#[derive(Debug)]
pub(crate) struct CubePlan<'k> {
    /// The top-level instruction replaced by the cube (the `For`, or the `Dot` itself).
    pub(crate) top: &'k Inst,
    /// Index of `top` in the kernel body.
    pub(crate) top_index: usize,
    pub(crate) a: &'k BlockAccess,
    pub(crate) b: &'k BlockAccess,
    pub(crate) a_value: ValueId,
    pub(crate) b_value: ValueId,
    pub(crate) dtype: DType,
    pub(crate) bm: usize,
    pub(crate) bn: usize,
    pub(crate) bk: usize,
    /// The vector-side view.
    pub(crate) result: CubeResult,
    /// Values not emitted on the vector side (the zero splat of the accumulator, and the
    /// operand loads of a loop-less dot).
    pub(crate) vector_skip: HashSet<ValueId>,
}

/// Byte sizes of the cube buffers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CubeSizes {
    pub(crate) mp: usize,
    pub(crate) np: usize,
    pub(crate) kp: usize,
    pub(crate) a_bytes: usize,
    pub(crate) b_bytes: usize,
    pub(crate) c_bytes: usize,
}

impl CubePlan<'_> {
    pub(crate) fn sizes(&self) -> CubeSizes {
        let (mp, np, kp) = (
            round_up(self.bm, 16),
            round_up(self.bn, 16),
            round_up(self.bk, 16),
        );
        let es = self.dtype.size_bytes();
        CubeSizes {
            mp,
            np,
            kp,
            a_bytes: mp * kp * es,
            b_bytes: kp * np * es,
            c_bytes: mp * np * 4,
        }
    }

    /// Bytes of the zero region of the workspace (the largest L1 tile).
    pub(crate) fn zero_bytes(&self) -> usize {
        let s = self.sizes();
        round_up(s.a_bytes.max(s.b_bytes), 512)
    }
}

/// Finds the kernel's dot and checks it has the matmul shape the cube lowering handles.
/// `None` when the kernel has no dot.
pub(crate) fn plan<'k>(
    k: &'k TileKernel,
    kname: &str,
    pitch: usize,
    ws_var: &str,
) -> R<Option<CubePlan<'k>>> {
    // Locate every dot.
    let mut found: Vec<(usize, Option<usize>)> = Vec::new(); // (top index, index in body)
    for (ti, inst) in k.body.insts.iter().enumerate() {
        match &inst.kind {
            InstKind::Dot { .. } => found.push((ti, None)),
            InstKind::For { body, .. } => {
                for (bi, bin) in body.insts.iter().enumerate() {
                    match &bin.kind {
                        InstKind::Dot { .. } => found.push((ti, Some(bi))),
                        InstKind::For { body: inner, .. } if contains_dot(inner) => {
                            return Err(unsupported(kname, "a dot nested two loops deep"));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    if found.len() > 1 {
        return Err(unsupported(
            kname,
            format!(
                "{} dots in one kernel (the cube lowering takes one)",
                found.len()
            ),
        ));
    }
    let (ti, bi) = found[0];
    let uses = use_counts(k);
    let top = &k.body.insts[ti];
    let def_in = |insts: &'k [Inst], v: ValueId| insts.iter().find(|i| i.results.contains(&v));
    let (dot, body_insts, init, result, is_loop) = match (&top.kind, bi) {
        (InstKind::For { init, body, .. }, Some(bi)) => {
            let dot = &body.insts[bi];
            let InstKind::Dot { acc, .. } = &dot.kind else {
                unreachable!()
            };
            let d = dot.results[0];
            if init.len() != 1 || body.yields.len() != 1 {
                return Err(unsupported(
                    kname,
                    "a matmul loop carrying values other than the accumulator",
                ));
            }
            if body.args.get(1) != Some(acc) || body.yields[0] != d {
                return Err(unsupported(
                    kname,
                    "a matmul loop whose dot does not accumulate into the carried value",
                ));
            }
            if uses[acc.index()] != 1 || uses[d.index()] != 1 {
                return Err(unsupported(
                    kname,
                    "a matmul loop that uses the accumulator for anything but the dot",
                ));
            }
            (dot, body.insts.as_slice(), init[0], top.results[0], true)
        }
        (InstKind::Dot { acc, .. }, None) => {
            (top, k.body.insts.as_slice(), *acc, top.results[0], false)
        }
        _ => unreachable!("found lists dots only"),
    };
    let InstKind::Dot { a, b, .. } = &dot.kind else {
        unreachable!()
    };
    // Each operand is a load used only by the dot, optionally widened from f16 / bf16 to
    // f32 by a cast used only by the dot (the cube multiplies half products exactly into
    // its f32 accumulator, so the widening is folded into the cube's operand type).
    let operand = |v: ValueId, what: &str| -> R<(&'k BlockAccess, f64, Vec<ValueId>)> {
        let not_load = || {
            unsupported(
                kname,
                format!("a dot whose {what} operand is not a load (optionally widened by a cast) used only by the dot"),
            )
        };
        let inst = def_in(body_insts, v).ok_or_else(not_load)?;
        if uses[v.index()] != 1 {
            return Err(not_load());
        }
        match &inst.kind {
            InstKind::Load { access, other } => Ok((access, *other, vec![v])),
            InstKind::Cast { x, to: DType::F32 } => {
                let li = def_in(body_insts, *x).ok_or_else(not_load)?;
                match &li.kind {
                    InstKind::Load { access, other }
                        if uses[x.index()] == 1
                            && matches!(
                                k.params[access.buffer].dtype,
                                DType::F16 | DType::BF16
                            ) =>
                    {
                        Ok((access, *other, vec![v, *x]))
                    }
                    _ => Err(not_load()),
                }
            }
            _ => Err(not_load()),
        }
    };
    let (aa, ao, a_chain) = operand(*a, "left")?;
    let (ba, bo, b_chain) = operand(*b, "right")?;
    if ao != 0.0 || bo != 0.0 {
        return Err(unsupported(
            kname,
            "dot operands whose masked-off elements are not 0",
        ));
    }
    if is_loop {
        for i in body_insts {
            let feeds_dot = i
                .results
                .iter()
                .any(|r| a_chain.contains(r) || b_chain.contains(r));
            let scalar = !i.results.is_empty()
                && i.results
                    .iter()
                    .all(|v| matches!(k.values[v.index()], Ty::Scalar(_)))
                && !matches!(i.kind, InstKind::Store { .. } | InstKind::For { .. });
            if !(std::ptr::eq(i, dot) || feeds_dot || scalar) {
                return Err(unsupported(
                    kname,
                    "a matmul loop doing more than index math, the two operand loads and the dot",
                ));
            }
        }
    }
    let (ad, bd) = (k.params[aa.buffer].dtype, k.params[ba.buffer].dtype);
    if ad != bd || !matches!(ad, DType::F32 | DType::F16 | DType::BF16) {
        return Err(unsupported(
            kname,
            format!("a dot of {ad} x {bd} tiles (the cube takes f32, f16 or bf16 pairs)"),
        ));
    }
    let (&[bm, bk], &[bk2, bn]) = (aa.shape.as_slice(), ba.shape.as_slice()) else {
        return Err(unsupported(kname, "a dot of tiles that are not rank 2"));
    };
    if bk != bk2 {
        return Err(unsupported(
            kname,
            format!("a dot of [{bm}, {bk}] x [{bk2}, {bn}]"),
        ));
    }
    match &k.values[init.index()] {
        Ty::Tile(s, DType::F32) if s.as_slice() == [bm, bn] => {}
        t => {
            return Err(unsupported(
                kname,
                format!("a dot accumulator of type {t:?}"),
            ))
        }
    }
    // Operand layouts: the cube's rule (the scheduler copies operands it refuses).
    for (acc, what) in [(aa, "left"), (ba, "right")] {
        let readable = match acc.strides[..] {
            [rows, columns] => TargetKind::AscendC.reads_dot_operand([rows, columns]),
            _ => false,
        };
        if !readable {
            return Err(unsupported(
                kname,
                format!(
                    "a {what} dot operand with strides {:?} (the ND -> NZ copy needs one \
                     contiguous axis and a leading dimension of 1..=65535 elements)",
                    acc.strides
                ),
            ));
        }
    }
    let (mp, np, kp) = (round_up(bm, 16), round_up(bn, 16), round_up(bk, 16));
    if mp > 4095 || np > 4095 || kp > 4095 {
        return Err(unsupported(
            kname,
            "a dot tile larger than 4095 in M, N or K",
        ));
    }
    // The accumulator's initial value: a zero splat is dropped (Mmad starts from 0).
    let mut vector_skip = HashSet::new();
    let init_is_zero = match k.body.insts.iter().find(|i| i.results.contains(&init)) {
        Some(Inst {
            kind: InstKind::Splat { x, .. },
            ..
        }) if uses[init.index()] == 1 => {
            let c = k.body.insts.iter().find(|i| i.results.contains(x));
            matches!(c, Some(Inst { kind: InstKind::ConstFloat(v, _), .. }) if *v == 0.0)
        }
        _ => false,
    };
    if init_is_zero {
        vector_skip.insert(init);
    }
    if !is_loop {
        vector_skip.extend(a_chain.iter().copied());
        vector_skip.extend(b_chain.iter().copied());
    }
    let bounds = match &top.kind {
        InstKind::For { start, end, .. } => Some((*start, *end)),
        _ => None,
    };
    Ok(Some(CubePlan {
        top,
        top_index: ti,
        a: aa,
        b: ba,
        a_value: *a,
        b_value: *b,
        dtype: ad,
        bm,
        bn,
        bk,
        result: CubeResult {
            inst_result: result,
            init,
            init_is_zero,
            bounds,
            rows: bm,
            pitch,
            ws_var: ws_var.to_string(),
        },
        vector_skip,
    }))
}

fn contains_dot(b: &crate::tile::Block) -> bool {
    b.insts.iter().any(|i| match &i.kind {
        InstKind::Dot { .. } => true,
        InstKind::For { body, .. } => contains_dot(body),
        _ => false,
    })
}

/// Emits the AIC program: cube buffers, the program loop with the matmul loop, Fixpipe
/// into the workspace, and the cross-core flag that releases the vector side.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_aic(
    k: &TileKernel,
    kname: &str,
    cp: &CubePlan<'_>,
    target: &Target,
    gm: &[String],
    zero_var: &str,
    program_loop: &str,
    unflatten: &[String],
    flag: &str,
) -> R<String> {
    let s = cp.sizes();
    let t = cpp::gm_type(cp.dtype);
    let es = cp.dtype.size_bytes();
    let c0 = 32 / es;
    let (mp, np, kp) = (s.mp, s.np, s.kp);
    // Buffer budgets: L1 holds the a and b tiles, L0A / L0B one operand each, L0C the
    // accumulator. Double-buffer what fits.
    let limit =
        |name: &'static str, what: String, needed: usize, available: usize| CompileError::Limit {
            kernel: format!("{kname} ({what})"),
            target: "ascendc".into(),
            limit: name,
            needed,
            available,
        };
    let l1_single = s.a_bytes + s.b_bytes;
    if l1_single > target.l1_bytes {
        return Err(limit(
            "l1_bytes",
            format!("L1: a tile {} B + b tile {} B", s.a_bytes, s.b_bytes),
            l1_single,
            target.l1_bytes,
        ));
    }
    if s.a_bytes > target.l0ab_bytes {
        return Err(limit(
            "l0ab_bytes",
            format!("L0A: a tile [{mp}, {kp}] {} B", s.a_bytes),
            s.a_bytes,
            target.l0ab_bytes,
        ));
    }
    if s.b_bytes > target.l0ab_bytes {
        return Err(limit(
            "l0ab_bytes",
            format!("L0B: b tile [{kp}, {np}] {} B", s.b_bytes),
            s.b_bytes,
            target.l0ab_bytes,
        ));
    }
    if s.c_bytes > target.l0c_bytes {
        return Err(limit(
            "l0c_bytes",
            format!("L0C: accumulator [{mp}, {np}] {} B", s.c_bytes),
            s.c_bytes,
            target.l0c_bytes,
        ));
    }
    let l1_depth = if 2 * l1_single <= target.l1_bytes {
        2
    } else {
        1
    };
    let a2_depth = if 2 * s.a_bytes <= target.l0ab_bytes {
        2
    } else {
        1
    };
    let b2_depth = if 2 * s.b_bytes <= target.l0ab_bytes {
        2
    } else {
        1
    };

    let mut w = Writer::new(1);
    w.open("if ASCEND_IS_AIC");
    w.comment(format!(
        "Cube unit: {} = matmul of {} [{} x {}] and [{} x {}] ({}), padded to M {mp}, K {kp}, N {np}.",
        cp.result.inst_result, t, cp.bm, cp.bk, cp.bk, cp.bn, cp.dtype
    ));
    w.line(format!(
        "TQue<TPosition::A1, 1> a_l1_q; // a tile in L1 (NZ), {} bytes",
        s.a_bytes
    ));
    w.line(format!(
        "pipe.InitBuffer(a_l1_q, {l1_depth}, {});",
        s.a_bytes
    ));
    w.line(format!(
        "TQue<TPosition::B1, 1> b_l1_q; // b tile in L1 (NZ), {} bytes",
        s.b_bytes
    ));
    w.line(format!(
        "pipe.InitBuffer(b_l1_q, {l1_depth}, {});",
        s.b_bytes
    ));
    w.line("TQue<TPosition::A2, 1> a_l0_q; // a tile in L0A (Zz)");
    w.line(format!(
        "pipe.InitBuffer(a_l0_q, {a2_depth}, {});",
        s.a_bytes
    ));
    w.line("TQue<TPosition::B2, 1> b_l0_q; // b tile in L0B (Zn)");
    w.line(format!(
        "pipe.InitBuffer(b_l0_q, {b2_depth}, {});",
        s.b_bytes
    ));
    w.line("TQue<TPosition::CO1, 1> c_l0_q; // accumulator in L0C (NZ, float)");
    w.line(format!("pipe.InitBuffer(c_l0_q, 1, {});", s.c_bytes));
    w.open(program_loop);
    for l in unflatten {
        w.line(l);
    }
    // Scalars the cube side needs, in program order.
    let mut sc = Scalars::new(kname);
    let needed = needed_scalars(k, cp);
    for (i, inst) in k.body.insts.iter().enumerate() {
        if i >= cp.top_index {
            break;
        }
        if inst.results.iter().any(|r| needed.contains(r)) {
            sc.emit(&mut w, k, inst, gm)?;
        }
    }
    w.line("LocalTensor<float> c_l0 = c_l0_q.AllocTensor<float>();");
    w.line("bool k_first = true; // the first Mmad starts the accumulator from zero");
    match &cp.top.kind {
        InstKind::For {
            start,
            end,
            step,
            body,
            ..
        } => {
            let iv = body.args[0];
            let ivn = format!("i{}", iv.0);
            w.open(format!(
                "for (int32_t {ivn} = {}; {ivn} < {}; {ivn} += {step})",
                sc.get(*start)?,
                sc.get(*end)?
            ));
            sc.map.insert(iv, ivn);
            for inst in &body.insts {
                if inst
                    .results
                    .iter()
                    .all(|r| matches!(k.values[r.index()], Ty::Scalar(_)))
                    && !matches!(inst.kind, InstKind::Store { .. })
                    && !inst.results.is_empty()
                {
                    sc.emit(&mut w, k, inst, gm)?;
                }
            }
            k_step(&mut w, cp, &sc, gm, zero_var, c0, t)?;
            w.close();
        }
        _ => {
            k_step(&mut w, cp, &sc, gm, zero_var, c0, t)?;
        }
    }
    w.line("c_l0_q.EnQue(c_l0);");
    w.line("c_l0 = c_l0_q.DeQue<float>();");
    w.open("if (!k_first)");
    w.comment("L0C (NZ) -> workspace (row-major, the vector side's row pitch)");
    w.line("FixpipeParamsV220 fp;");
    w.line(format!("fp.nSize = {};", cp.bn));
    w.line(format!("fp.mSize = {};", cp.bm));
    w.line(format!("fp.srcStride = {mp};"));
    w.line(format!("fp.dstStride = {};", cp.result.pitch));
    w.line("fp.ndNum = 1;");
    w.line("fp.srcNdStride = 0;");
    w.line("fp.dstNdStride = 0;");
    w.line(format!(
        "Fixpipe<float, float, CFG_ROW_MAJOR>({}[static_cast<int64_t>(pid) * {}], c_l0, fp);",
        cp.result.ws_var,
        cp.bm * cp.result.pitch
    ));
    w.close();
    w.line("c_l0_q.FreeTensor(c_l0);");
    w.close();
    w.comment("every accumulator of this core group is in the workspace: release the vector cores");
    w.line(format!("CrossCoreSetFlag<2, PIPE_FIX>({flag});"));
    w.close();
    Ok(w.finish())
}

/// One K step: both operands GM -> L1 -> L0, then Mmad.
fn k_step(
    w: &mut Writer,
    cp: &CubePlan<'_>,
    sc: &Scalars,
    gm: &[String],
    zero_var: &str,
    c0: usize,
    t: &str,
) -> R<()> {
    let s = cp.sizes();
    let (mp, np, kp) = (s.mp, s.np, s.kp);
    let f32 = cp.dtype == DType::F32;
    // ---- a: [BM, BK]
    let (a, b) = (cp.a, cp.b);
    let abase = sc.get(a.base)?;
    let bbase = sc.get(b.base)?;
    let (alim_m, alim_k) = (sc.get(a.limits[0])?, sc.get(a.limits[1])?);
    let (blim_k, blim_n) = (sc.get(b.limits[0])?, sc.get(b.limits[1])?);
    let clamp = |l: &str, e: usize| format!("({l} < 0 ? 0 : ({l} > {e} ? {e} : {l}))");
    let ag = &gm[a.buffer];
    let bg = &gm[b.buffer];
    w.comment(format!(
        "{} = load a {:?} strides {:?}: GM -> L1 (ND -> NZ)",
        cp.a_value, a.shape, a.strides
    ));
    w.line(format!("const int32_t am = {};", clamp(&alim_m, cp.bm)));
    w.line(format!("const int32_t ak = {};", clamp(&alim_k, cp.bk)));
    w.line(format!(
        "LocalTensor<{t}> a_l1 = a_l1_q.AllocTensor<{t}>();"
    ));
    zero_fill(
        w,
        "a_l1",
        zero_var,
        s.a_bytes,
        &format!("am < {} || ak < {kp}", cp.bm),
    );
    let a_k_contig = a.strides[1] == 1;
    let (sa0, sa1) = (a.strides[0], a.strides[1]);
    if a_k_contig {
        nd2nz(
            w,
            "a_l1",
            "0",
            ag,
            &abase,
            "1",
            "am",
            "ak",
            &sa0.to_string(),
            &mp.to_string(),
            "am > 0 && ak > 0",
        );
    } else if f32 {
        // Transposed f32 operand: one NZ matrix of 16 K-rows per K block ("Zz" in L1).
        w.open("for (int32_t kb = 0; kb * 16 < ak; ++kb)");
        w.line("const int32_t rows = (ak - kb * 16) < 16 ? (ak - kb * 16) : 16;");
        nd2nz(
            w,
            "a_l1",
            &format!("kb * {}", 16 * mp),
            ag,
            &format!("{abase} + kb * {}", 16 * sa1),
            "1",
            "rows",
            "am",
            &sa1.to_string(),
            "16",
            "am > 0",
        );
        w.close();
    } else {
        nd2nz(
            w,
            "a_l1",
            "0",
            ag,
            &abase,
            "1",
            "ak",
            "am",
            &sa1.to_string(),
            &kp.to_string(),
            "am > 0 && ak > 0",
        );
    }
    w.line("a_l1_q.EnQue(a_l1);");
    // ---- b: [BK, BN]
    w.comment(format!(
        "{} = load b {:?} strides {:?}: GM -> L1 (ND -> NZ)",
        cp.b_value, b.shape, b.strides
    ));
    w.line(format!("const int32_t bk = {};", clamp(&blim_k, cp.bk)));
    w.line(format!("const int32_t bn = {};", clamp(&blim_n, cp.bn)));
    w.line(format!(
        "LocalTensor<{t}> b_l1 = b_l1_q.AllocTensor<{t}>();"
    ));
    zero_fill(
        w,
        "b_l1",
        zero_var,
        s.b_bytes,
        &format!("bk < {kp} || bn < {}", cp.bn),
    );
    let b_k_contig = b.strides[0] == 1;
    let (sb0, sb1) = (b.strides[0], b.strides[1]);
    if b_k_contig {
        nd2nz(
            w,
            "b_l1",
            "0",
            bg,
            &bbase,
            "1",
            "bn",
            "bk",
            &sb1.to_string(),
            &np.to_string(),
            "bk > 0 && bn > 0",
        );
    } else if f32 {
        w.open("for (int32_t kb = 0; kb * 16 < bk; ++kb)");
        w.line("const int32_t rows = (bk - kb * 16) < 16 ? (bk - kb * 16) : 16;");
        nd2nz(
            w,
            "b_l1",
            &format!("kb * {}", 16 * np),
            bg,
            &format!("{bbase} + kb * {}", 16 * sb0),
            "1",
            "rows",
            "bn",
            &sb0.to_string(),
            "16",
            "bn > 0",
        );
        w.close();
    } else {
        nd2nz(
            w,
            "b_l1",
            "0",
            bg,
            &bbase,
            "1",
            "bk",
            "bn",
            &sb0.to_string(),
            &kp.to_string(),
            "bk > 0 && bn > 0",
        );
    }
    w.line("b_l1_q.EnQue(b_l1);");
    // ---- L1 -> L0A
    w.comment("L1 -> L0A (Zz: 16-row M blocks, each a row of K fractals)");
    w.line(format!("a_l1 = a_l1_q.DeQue<{t}>();"));
    w.line(format!(
        "LocalTensor<{t}> a_l0 = a_l0_q.AllocTensor<{t}>();"
    ));
    if a_k_contig {
        // NZ fractal (m block i, k group g) sits at g * Mp * C0 + i * 16 * C0.
        w.open(format!("for (int32_t i = 0; i < {}; ++i)", mp / 16));
        load2d(
            w,
            &format!("a_l0[i * {}]", kp * 16),
            &format!("a_l1[i * {}]", 16 * c0),
            kp / c0,
            mp / 16,
            false,
        );
        w.close();
    } else if f32 {
        w.comment("two 16 x 8 fractals (one 16 x 16 square of K x M) per repeat, transposed into two Zz fractals");
        w.open(format!("for (int32_t i = 0; i < {}; ++i)", mp / 16));
        w.line("LoadData2dTransposeParams ldt;");
        w.line("ldt.startIndex = 0;");
        w.line(format!("ldt.repeatTimes = {};", kp / 16));
        w.line(format!("ldt.srcStride = {};", mp / 16));
        w.line("ldt.dstGap = 1;");
        w.line("ldt.dstFracGap = 0;");
        w.line(format!(
            "LoadDataWithTranspose(a_l0[i * {}], a_l1[i * 256], ldt);",
            kp * 16
        ));
        w.close();
    } else {
        w.comment("each 16 x 16 fractal of A^T transposed on the way");
        w.open(format!("for (int32_t i = 0; i < {}; ++i)", mp / 16));
        load2d(
            w,
            &format!("a_l0[i * {}]", kp * 16),
            &format!("a_l1[i * {}]", kp * 16),
            kp / 16,
            1,
            true,
        );
        w.close();
    }
    w.line("a_l0_q.EnQue(a_l0);");
    w.line("a_l1_q.FreeTensor(a_l1);");
    // ---- L1 -> L0B
    w.comment("L1 -> L0B (Zn: K groups outer, N blocks inner, K contiguous inside a fractal)");
    w.line(format!("b_l1 = b_l1_q.DeQue<{t}>();"));
    w.line(format!(
        "LocalTensor<{t}> b_l0 = b_l0_q.AllocTensor<{t}>();"
    ));
    if b_k_contig {
        w.open(format!("for (int32_t g = 0; g < {}; ++g)", kp / c0));
        load2d(
            w,
            &format!("b_l0[g * {}]", np * c0),
            &format!("b_l1[g * {}]", np * c0),
            np / 16,
            1,
            false,
        );
        w.close();
    } else if f32 {
        w.comment("two 16 x 8 fractals (one 16 x 16 square of K x N) per repeat, transposed into two Zn fractals");
        w.open(format!("for (int32_t j = 0; j < {}; ++j)", kp / 16));
        w.line("LoadData2dTransposeParams ldt;");
        w.line("ldt.startIndex = 0;");
        w.line(format!("ldt.repeatTimes = {};", np / 16));
        w.line("ldt.srcStride = 1;");
        w.line("ldt.dstGap = 0;");
        w.line(format!("ldt.dstFracGap = {};", np / 16 - 1));
        w.line(format!(
            "LoadDataWithTranspose(b_l0[j * {}], b_l1[j * {}], ldt);",
            np * 16,
            16 * np
        ));
        w.close();
    } else {
        w.comment("each 16 x 16 fractal of B transposed on the way");
        w.open(format!("for (int32_t j = 0; j < {}; ++j)", kp / 16));
        load2d(
            w,
            &format!("b_l0[j * {}]", np * 16),
            "b_l1[j * 256]",
            np / 16,
            kp / 16,
            true,
        );
        w.close();
    }
    w.line("b_l0_q.EnQue(b_l0);");
    w.line("b_l1_q.FreeTensor(b_l1);");
    // ---- Mmad
    w.comment("c += a @ b on the cube unit (float accumulation in L0C)");
    w.line(format!("a_l0 = a_l0_q.DeQue<{t}>();"));
    w.line(format!("b_l0 = b_l0_q.DeQue<{t}>();"));
    w.line("MmadParams mm;");
    w.line(format!("mm.m = {mp};"));
    w.line(format!("mm.n = {np};"));
    w.line(format!("mm.k = {kp};"));
    w.line("mm.cmatrixInitVal = k_first;");
    w.line("mm.cmatrixSource = false;");
    w.line("Mmad(c_l0, a_l0, b_l0, mm);");
    if (mp / 16) * (np / 16) < 10 {
        w.line("PipeBarrier<PIPE_M>(); // small tiles: the next Mmad must see this one's result");
    }
    w.line("a_l0_q.FreeTensor(a_l0);");
    w.line("b_l0_q.FreeTensor(b_l0);");
    w.line("k_first = false;");
    Ok(())
}

/// Zero-fills a whole L1 tile from the workspace's zero region when `cond` holds.
fn zero_fill(w: &mut Writer, dst: &str, zero_var: &str, bytes: usize, cond: &str) {
    w.open(format!("if ({cond})"));
    w.comment("partial or padded tile: start from zeros so the padding adds nothing");
    w.line(format!(
        "DataCopy({dst}, {zero_var}, DataCopyParams{{1, {}, 0, 0}});",
        bytes / 32
    ));
    w.line("PipeBarrier<PIPE_MTE2>();");
    w.close();
}

/// `DataCopy(dst[off], src[base], Nd2NzParams{..})` guarded by `cond`.
#[allow(clippy::too_many_arguments)]
fn nd2nz(
    w: &mut Writer,
    dst: &str,
    dst_off: &str,
    src: &str,
    base: &str,
    nd: &str,
    n: &str,
    d: &str,
    src_d: &str,
    c0_stride: &str,
    cond: &str,
) {
    w.open(format!("if ({cond})"));
    w.line("Nd2NzParams nd;");
    w.line(format!("nd.ndNum = {nd};"));
    w.line(format!("nd.nValue = static_cast<uint16_t>({n});"));
    w.line(format!("nd.dValue = static_cast<uint16_t>({d});"));
    w.line("nd.srcNdMatrixStride = 0;");
    w.line(format!("nd.srcDValue = {src_d};"));
    w.line(format!("nd.dstNzC0Stride = {c0_stride};"));
    w.line("nd.dstNzNStride = 1;");
    w.line("nd.dstNzMatrixStride = 0;");
    let dst = if dst_off == "0" {
        dst.to_string()
    } else {
        format!("{dst}[{dst_off}]")
    };
    w.line(format!("DataCopy({dst}, {src}[{base}], nd);"));
    w.close();
}

fn load2d(w: &mut Writer, dst: &str, src: &str, repeat: usize, src_stride: usize, transpose: bool) {
    w.line("LoadData2DParams ld;");
    w.line("ld.startIndex = 0;");
    w.line(format!("ld.repeatTimes = {repeat};"));
    w.line(format!("ld.srcStride = {src_stride};"));
    w.line("ld.dstGap = 0;");
    w.line(format!("ld.ifTranspose = {transpose};"));
    w.line(format!("LoadData({dst}, {src}, ld);"));
}

/// Top-level values the cube side needs (transitively) for its loop bounds and loads.
fn needed_scalars(k: &TileKernel, cp: &CubePlan<'_>) -> HashSet<ValueId> {
    let mut roots = Vec::new();
    deep_uses(cp.top, &mut roots);
    for acc in [cp.a, cp.b] {
        roots.push(acc.base);
        roots.extend(acc.limits.iter().copied());
    }
    // Definitions of top-level values.
    let defs: HashMap<ValueId, &Inst> = k
        .body
        .insts
        .iter()
        .flat_map(|i| i.results.iter().map(move |r| (*r, i)))
        .collect();
    let mut needed = HashSet::new();
    while let Some(v) = roots.pop() {
        if !matches!(k.values[v.index()], Ty::Scalar(_)) || !needed.insert(v) {
            continue;
        }
        if let Some(d) = defs.get(&v) {
            roots.extend(operands(&d.kind));
        }
    }
    needed
}

/// Scalar code on the cube side.
struct Scalars {
    kname: String,
    map: HashMap<ValueId, String>,
}

impl Scalars {
    fn new(kname: &str) -> Self {
        Scalars {
            kname: kname.to_string(),
            map: HashMap::new(),
        }
    }

    fn get(&self, v: ValueId) -> R<String> {
        self.map
            .get(&v)
            .cloned()
            .ok_or_else(|| CompileError::Internal {
                stage: "ascendc",
                message: format!(
                    "kernel `{}`: cube side uses {v} before its definition",
                    self.kname
                ),
            })
    }

    fn emit(&mut self, w: &mut Writer, k: &TileKernel, inst: &Inst, gm: &[String]) -> R<()> {
        let Some(&r) = inst.results.first() else {
            return Ok(());
        };
        let expr = match &inst.kind {
            InstKind::ProgramId { axis } => {
                self.map.insert(r, format!("pid{axis}"));
                return Ok(());
            }
            InstKind::ConstIndex(v) => {
                self.map.insert(r, cpp::int_lit(*v));
                return Ok(());
            }
            InstKind::ConstFloat(v, d) => {
                self.map.insert(r, cpp::lit(*v, *d));
                return Ok(());
            }
            InstKind::Index { op, a, b } => {
                let (a, b) = (self.get(*a)?, self.get(*b)?);
                match op {
                    IndexOp::Add => format!("{a} + {b}"),
                    IndexOp::Sub => format!("{a} - {b}"),
                    IndexOp::Mul => format!("{a} * {b}"),
                    IndexOp::Div => format!("{a} / {b}"),
                    IndexOp::Rem => format!("{a} % {b}"),
                    IndexOp::Min => format!("({a} < {b} ? {a} : {b})"),
                    IndexOp::Max => format!("({a} > {b} ? {a} : {b})"),
                }
            }
            InstKind::Load { access, .. } if access.shape.is_empty() => {
                let p = &k.params[access.buffer];
                let e = format!("{}.GetValue({})", gm[access.buffer], self.get(access.base)?);
                if cpp::gm_type(p.dtype) == cpp::compute_type(p.dtype) {
                    e
                } else {
                    format!("static_cast<float>({e})")
                }
            }
            _ => {
                return Err(unsupported(
                    &self.kname,
                    format!("a tile value computing the matmul loop bound or operand address {r}"),
                ))
            }
        };
        let ctype = cpp::compute_type(k.values[r.index()].dtype());
        let name = format!("s{}", r.0);
        w.line(format!("const {ctype} {name} = {expr};"));
        self.map.insert(r, name);
        Ok(())
    }
}
