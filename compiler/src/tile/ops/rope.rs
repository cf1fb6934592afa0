//! The tile kernel of rotary position embedding (interleaved and half-split layouts).
//!
//! `x [.., T, D]` with `cos`, `sin` `[T, D/2]`: the pair of frequency `i` is `(a, b)` =
//! `(x[i], x[i + D/2])` (half-split) or `(x[2i], x[2i + 1])` (interleaved), and it
//! rotates to `(a cos - b sin, b cos + a sin)` with the `cos` / `sin` of row `t`.
//!
//! One kernel, no loops: one program per (chunk of `C` frequencies, block of `R`
//! consecutive positions, leading index). Each program loads `[R, C]` tiles of the two
//! halves of its pairs with two block loads (half-split: bases `0` and `D/2` along the last
//! axis, column stride 1; interleaved: bases `0` and `1`, column stride 2), the `[R, C]`
//! tiles of `cos` and `sin` at rows `t0..t0 + R`, computes in f32 and stores the two
//! results with the same two access patterns. Every operand is read through its own strided
//! view (any permute / broadcast / slice the scheduler folded into it: the row stride is the
//! `T` axis' stride of the view, the column stride the `D` axis' stride, times 2 when
//! interleaved), and the output is written through the kernel's store view. Masking: rows
//! past `T`, columns past `D/2`.
//!
//! Tile shapes (see `tiling`): on the SIMT targets `[16, C]` with `C` the frequencies
//! rounded up to a multiple of 16 and at most 64 (every thread of the 16 x 16 thread grid
//! holds at most 4 elements per tile), or, below 16 frequencies (`D < 32`), rank-1 tiles of
//! up to 256 rows, one per frequency; on Ascend `[R, C]` with `C` a multiple of 8 (a 32-byte
//! UB block of f32) and `R * C` up to the 2048-element block. At `T = 1` (one decoding
//! step) the tile rows run over the axis before `T` (heads) instead, all at position 0, so
//! that a decoding step still fills the tiles.

use super::{params, unsupported};
use crate::error::CompileError;
use crate::graph::{BinaryOp, CompositeOp, DType};
use crate::schedule::kernel::KernelSpec;
use crate::schedule::view::StridedView;
use crate::simt::lower::ThreadGrid;
use crate::target::{Target, TargetKind};
use crate::tile::build::{compute_dtype, programs, tile_sizes, Em, Ix};
use crate::tile::{BlockAccess, IndexOp, TileKernel, ValueId};

/// Builds the kernel of `c` over its operands (`(buffer index, view)` per node input).
pub fn build(
    spec: &KernelSpec,
    name: &str,
    c: &CompositeOp,
    operands: &[(usize, StridedView)],
    target: &Target,
) -> Result<TileKernel, CompileError> {
    let CompositeOp::Rope { interleaved } = *c else {
        return Err(internal(name, format!("`{}` is not rope", c.name())));
    };
    let [(xb, xv), (cb, cv), (sb, sv)] = operands else {
        return Err(internal(
            name,
            format!("rope takes 3 operands, got {}", operands.len()),
        ));
    };
    let rank = xv.shape.len();
    if rank < 2 || xv.strides.len() != rank {
        return Err(internal(name, format!("x view of shape {:?}", xv.shape)));
    }
    let (t, d) = (xv.shape[rank - 2], xv.shape[rank - 1]);
    if d % 2 != 0 {
        return Err(internal(name, format!("odd last axis {d}")));
    }
    let half = d / 2;
    for v in [cv, sv] {
        if v.shape != [t, half] || v.strides.len() != 2 {
            return Err(internal(
                name,
                format!("cos/sin view of shape {:?}, want [{t}, {half}]", v.shape),
            ));
        }
    }
    let store = &spec.store;
    if store.shape != xv.shape || store.strides.len() != rank {
        return Err(internal(
            name,
            format!(
                "store view of shape {:?} for an output of shape {:?}",
                store.shape, xv.shape
            ),
        ));
    }
    let out_dtype = spec.buffers[spec.out].dtype;
    let x_dtype = spec.buffers[*xb].dtype;
    if !x_dtype.is_float() || !out_dtype.is_float() {
        return Err(unsupported(
            spec,
            target,
            format!("rope on {x_dtype} data (float only)"),
        ));
    }

    // The tile's row axis: the positions, or, at T = 1 (one decoding step), the axis
    // before them (heads), whose rows all use position 0 (cos / sin row stride 0).
    let ra = if t == 1 && rank >= 3 {
        rank - 3
    } else {
        rank - 2
    };
    let n_rows = xv.shape[ra];
    let trig_row_stride = |v: &StridedView| if ra == rank - 2 { v.strides[0] } else { 0 };
    let tl = tiling(target, n_rows, half)?;
    let col_chunks = tl.cols.map_or(1, |c| half.div_ceil(c));
    let row_blocks = n_rows.div_ceil(tl.rows);
    // Leading axes: all but the row axis and D (the T axis of extent 1 is harmless).
    let lead_axes: Vec<usize> = (0..rank - 1).filter(|&a| a != ra).collect();
    let lead_dims: Vec<usize> = lead_axes.iter().map(|&a| xv.shape[a]).collect();
    let lead: usize = lead_dims.iter().product();

    let mut em = Em::new();
    let (grid, pids) = programs(
        &mut em,
        target,
        name,
        &[col_chunks as u64, row_blocks as u64, lead as u64],
    )?;
    let c0 = em.mul(pids[0], tl.cols.unwrap_or(0) as i64);
    let r0 = em.mul(pids[1], tl.rows as i64);
    let lead_idx = em.unravel(pids[2], &lead_dims);
    let lim_r = em.op(IndexOp::Sub, Ix::C(n_rows as i64), r0);
    let lim_r = em.val(lim_r);
    let lim_c = em.op(IndexOp::Sub, Ix::C(half as i64), c0);
    let lim_c = em.val(lim_c);
    let s = Shared {
        spec,
        rank,
        ra,
        half,
        interleaved,
        lead_axes,
        lead_idx,
        r0,
        lim_r,
        lim_c,
    };
    let trig = [(*cb, cv), (*sb, sv)].map(|(buffer, v)| {
        let row_stride = trig_row_stride(v);
        let row = em.mul(r0, row_stride);
        let base = em.add(Ix::C(v.offset), row);
        (buffer, base, row_stride, v.strides[1])
    });
    match tl.cols {
        Some(cols) => s.rotate(&mut em, (*xb, xv), trig, c0, Some(cols), tl.rows),
        None => {
            // Rank-1 tiles along the rows, one frequency after the other.
            for j in 0..half {
                s.rotate(&mut em, (*xb, xv), trig, Ix::C(j as i64), None, tl.rows);
            }
        }
    }
    Ok(em.b.finish(name.to_string(), params(spec), grid))
}

/// How one program's tiles cover its block of (rows, frequencies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tiling {
    /// Rows per program (tile axis 0).
    rows: usize,
    /// `Some(c)`: rank-2 `[rows, c]` tiles over `c` frequencies per program; `None`:
    /// rank-1 `[rows]` tiles, one per frequency, all `D/2` in every program.
    cols: Option<usize>,
}

/// The tiling for `n_rows` rows of `half` frequencies.
///
/// SIMT targets run a rank-2 tile on a `TM x TN` thread grid (16 x 16 for 256 threads;
/// [`ThreadGrid`]): `[min(rows, TM), C]` with `C` = the frequencies rounded up to a
/// multiple of `TN`, at most `4 TN` (a thread holds at most 4 elements of each tile, no
/// thread idles unless `T` or `D/2` is short). With fewer than `TN` frequencies (`D < 32`)
/// most thread columns would idle, so the rows become rank-1 tiles of up to one
/// elementwise block, one per frequency. Ascend: `C` = the frequencies rounded up to a
/// multiple of 8 (a 32-byte UB block of f32), at most one block, and as many rows as fill
/// the elementwise block (2048 f32).
fn tiling(target: &Target, n_rows: usize, half: usize) -> Result<Tiling, CompileError> {
    let block = tile_sizes(target).block.max(1);
    let n_rows = n_rows.max(1);
    if target.kind == TargetKind::AscendC {
        let cols = half.max(1).next_multiple_of(8).min(block);
        let rows = (block / cols).max(1).min(n_rows);
        return Ok(Tiling {
            rows,
            cols: Some(cols),
        });
    }
    let g = ThreadGrid::for_target(target)?;
    let (tm, tn) = (g.rows as usize, g.cols as usize);
    if half < tn {
        return Ok(Tiling {
            rows: n_rows.min(block),
            cols: None,
        });
    }
    Ok(Tiling {
        rows: n_rows.min(tm),
        cols: Some(half.next_multiple_of(tn).min(4 * tn)),
    })
}

/// What every tile group of one program shares.
struct Shared<'a> {
    spec: &'a KernelSpec,
    rank: usize,
    /// The tile's row axis in x.
    ra: usize,
    half: usize,
    interleaved: bool,
    lead_axes: Vec<usize>,
    lead_idx: Vec<Ix>,
    /// First row of the program.
    r0: Ix,
    lim_r: ValueId,
    lim_c: ValueId,
}

impl Shared<'_> {
    /// The two halves of the pairs at frequency `c0` in a view of x (or of the output):
    /// (base of a, base of b, row stride, column stride).
    fn pairs(&self, em: &mut Em, v: &StridedView, c0: Ix) -> (Ix, Ix, i64, i64) {
        let s_d = v.strides[self.rank - 1];
        let lead_strides: Vec<i64> = self.lead_axes.iter().map(|&a| v.strides[a]).collect();
        let lead_off = em.offset(v.offset, &self.lead_idx, &lead_strides);
        let s_r = v.strides[self.ra];
        let row = em.mul(self.r0, s_r);
        let row_base = em.add(lead_off, row);
        let (col_stride, b_shift) = if self.interleaved {
            (2 * s_d, s_d)
        } else {
            (s_d, self.half as i64 * s_d)
        };
        let col = em.mul(c0, col_stride);
        let a = em.add(row_base, col);
        let b = em.add(a, Ix::C(b_shift));
        (a, b, s_r, col_stride)
    }

    fn access(
        &self,
        em: &mut Em,
        buffer: usize,
        base: Ix,
        strides: (i64, i64),
        cols: Option<usize>,
        rows: usize,
    ) -> BlockAccess {
        let base = em.val(base);
        match cols {
            Some(c) => BlockAccess {
                buffer,
                base,
                strides: vec![strides.0, strides.1],
                limits: vec![self.lim_r, self.lim_c],
                shape: vec![rows, c],
            },
            None => BlockAccess {
                buffer,
                base,
                strides: vec![strides.0],
                limits: vec![self.lim_r],
                shape: vec![rows],
            },
        }
    }

    fn load(&self, em: &mut Em, a: BlockAccess) -> ValueId {
        let dt = self.spec.buffers[a.buffer].dtype;
        let v = em.b.load(a, dt, 0.0);
        if compute_dtype(dt) != dt {
            em.b.cast(v, compute_dtype(dt))
        } else {
            v
        }
    }

    /// Loads, rotates and stores the pairs of the frequencies from `c0` (`cols` of them
    /// in rank-2 tiles, or one in rank-1 tiles), rows `r0..r0 + rows`. `trig`: per table
    /// (cos, sin) its buffer, the base of row `r0`, its row and column strides.
    fn rotate(
        &self,
        em: &mut Em,
        (xb, xv): (usize, &StridedView),
        trig: [(usize, Ix, i64, i64); 2],
        c0: Ix,
        cols: Option<usize>,
        rows: usize,
    ) {
        let (xa, xbb, s_r, s_c) = self.pairs(em, xv, c0);
        let acc = self.access(em, xb, xa, (s_r, s_c), cols, rows);
        let a = self.load(em, acc);
        let acc = self.access(em, xb, xbb, (s_r, s_c), cols, rows);
        let b = self.load(em, acc);
        let [cos, sin] = trig.map(|(buffer, base, s_r, s_c)| {
            let col = em.mul(c0, s_c);
            let base = em.add(base, col);
            let acc = self.access(em, buffer, base, (s_r, s_c), cols, rows);
            self.load(em, acc)
        });

        // (a, b) -> (a cos - b sin, b cos + a sin), in f32.
        let ac = em.b.binary(BinaryOp::Mul, a, cos);
        let bs = em.b.binary(BinaryOp::Mul, b, sin);
        let out_a = em.b.binary(BinaryOp::Sub, ac, bs);
        let bc = em.b.binary(BinaryOp::Mul, b, cos);
        let as_ = em.b.binary(BinaryOp::Mul, a, sin);
        let out_b = em.b.binary(BinaryOp::Add, bc, as_);

        let spec = self.spec;
        let out_dtype = spec.buffers[spec.out].dtype;
        let (oa, ob, o_r, o_c) = self.pairs(em, &spec.store, c0);
        for (base, v) in [(oa, out_a), (ob, out_b)] {
            let v = if out_dtype != DType::F32 {
                em.b.cast(v, out_dtype)
            } else {
                v
            };
            let acc = self.access(em, spec.out, base, (o_r, o_c), cols, rows);
            em.b.store(acc, v);
        }
    }
}

fn internal(name: &str, message: String) -> CompileError {
    CompileError::Internal {
        stage: "tile",
        message: format!("rope kernel `{name}`: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{DType, Graph};
    use crate::target::{Target, TargetKind};
    use crate::tile::{InstKind, Ty};

    /// `x [2, T, 3, D]` permuted to `[2, 3, T, D]`, roped: one kernel per target, named
    /// after what it computes, with tiles of at most one elementwise block (plus the
    /// Ascend row padding) and no loop.
    #[test]
    fn one_kernel_per_target() {
        for (t, d) in [(1, 2), (7, 80), (257, 128)] {
            for interleaved in [false, true] {
                let mut g = Graph::new();
                let x = g.input("x", &[2, t, 3, d], DType::F32).expect("x");
                let x = g.permute(x, &[0, 2, 1, 3]).expect("permute");
                let c = g.input("c", &[t, d / 2], DType::F32).expect("cos");
                let s = g.input("s", &[t, d / 2], DType::F32).expect("sin");
                let y = g.rope(x, c, s, interleaved).expect("rope");
                g.mark_output(y).expect("output");
                for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
                    let plan = crate::compile(&g, &target).expect("compiles");
                    assert_eq!(plan.kernels.len(), 1, "{}: {t} x {d}", target.kind);
                    let k = &plan.kernels[0];
                    assert!(k.name.starts_with("rope_"), "{}", k.name);
                    for v in &k.values {
                        if let Ty::Tile(shape, _) = v {
                            if target.kind == TargetKind::AscendC {
                                let padded = shape[0] * shape.get(1).map_or(1, |&c| c.max(8));
                                assert!(padded <= 2048, "{shape:?} on {}", target.kind);
                            } else {
                                // At most 4 slots per thread of the 16 x 16 grid (rank 2),
                                // one per thread of 256 (rank 1).
                                let slots = match shape[..] {
                                    [r, c] => r.div_ceil(16) * c.div_ceil(16),
                                    [n] => n.div_ceil(256),
                                    _ => usize::MAX,
                                };
                                assert!(slots <= 4, "{shape:?} on {}", target.kind);
                            }
                        }
                    }
                    assert!(k
                        .body
                        .insts
                        .iter()
                        .all(|i| !matches!(i.kind, InstKind::For { .. })));
                }
            }
        }
    }
}
