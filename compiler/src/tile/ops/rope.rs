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
//! Tile shape: `C` is the smallest power of two `>= D/2` (at most the target's elementwise
//! block), `R` fills the block with rows (a power of two, at most `T` rounded up). On Ascend a
//! UB row is padded to 32 bytes (8 f32), so `R * max(C, 8)` is what fills the block there.

use super::{params, unsupported};
use crate::error::CompileError;
use crate::graph::{BinaryOp, CompositeOp, DType};
use crate::schedule::kernel::KernelSpec;
use crate::schedule::view::StridedView;
use crate::target::{Target, TargetKind};
use crate::tile::build::{compute_dtype, tile_sizes, Em, Ix};
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

    // Tile shape [R, C].
    let block = tile_sizes(target).block.max(1);
    let cols = block.min(half.max(1).next_power_of_two());
    let row_width = if target.kind == TargetKind::AscendC {
        cols.max(8)
    } else {
        cols
    };
    let rows = (block / row_width).max(1).min(t.max(1).next_power_of_two());
    let col_chunks = half.div_ceil(cols);
    let row_blocks = t.div_ceil(rows);
    let lead_dims = &xv.shape[..rank - 2];
    let lead: usize = lead_dims.iter().product();

    let mut em = Em::new();
    let (grid, pids) = programs(
        &mut em,
        target,
        name,
        &[col_chunks as u64, row_blocks as u64, lead as u64],
    )?;
    let c0 = em.mul(pids[0], cols as i64);
    let t0 = em.mul(pids[1], rows as i64);
    let lead_idx = em.unravel(pids[2], lead_dims);
    let lim_r = em.op(IndexOp::Sub, Ix::C(t as i64), t0);
    let lim_r = em.val(lim_r);
    let lim_c = em.op(IndexOp::Sub, Ix::C(half as i64), c0);
    let lim_c = em.val(lim_c);
    let shape = vec![rows, cols];

    // The two halves of the pairs in a view of x (or of the output): (base of a, base of b,
    // column stride).
    let pair_access = |em: &mut Em, v: &StridedView| -> (Ix, Ix, i64) {
        let (s_t, s_d) = (v.strides[rank - 2], v.strides[rank - 1]);
        let lead_off = em.offset(v.offset, &lead_idx, &v.strides[..rank - 2]);
        let row = em.mul(t0, s_t);
        let row_base = em.add(lead_off, row);
        let (col_stride, b_shift) = if interleaved {
            (2 * s_d, s_d)
        } else {
            (s_d, half as i64 * s_d)
        };
        let col = em.mul(c0, col_stride);
        let a = em.add(row_base, col);
        let b = em.add(a, Ix::C(b_shift));
        (a, b, col_stride)
    };
    let access = |em: &mut Em, buffer: usize, base: Ix, s_row: i64, s_col: i64| BlockAccess {
        buffer,
        base: em.val(base),
        strides: vec![s_row, s_col],
        limits: vec![lim_r, lim_c],
        shape: shape.clone(),
    };
    let load = |em: &mut Em, a: BlockAccess| -> ValueId {
        let dt = spec.buffers[a.buffer].dtype;
        let v = em.b.load(a, dt, 0.0);
        if compute_dtype(dt) != dt {
            em.b.cast(v, compute_dtype(dt))
        } else {
            v
        }
    };

    let s_t = xv.strides[rank - 2];
    let (xa, xbb, xcol) = pair_access(&mut em, xv);
    let acc_a = access(&mut em, *xb, xa, s_t, xcol);
    let a = load(&mut em, acc_a);
    let acc_b = access(&mut em, *xb, xbb, s_t, xcol);
    let b = load(&mut em, acc_b);
    let mut trig = Vec::new();
    for (buffer, v) in [(*cb, cv), (*sb, sv)] {
        let row = em.mul(t0, v.strides[0]);
        let base = em.add(Ix::C(v.offset), row);
        let col = em.mul(c0, v.strides[1]);
        let base = em.add(base, col);
        let acc = access(&mut em, buffer, base, v.strides[0], v.strides[1]);
        trig.push(load(&mut em, acc));
    }
    let (cos, sin) = (trig[0], trig[1]);

    // (a, b) -> (a cos - b sin, b cos + a sin), in f32.
    let ac = em.b.binary(BinaryOp::Mul, a, cos);
    let bs = em.b.binary(BinaryOp::Mul, b, sin);
    let out_a = em.b.binary(BinaryOp::Sub, ac, bs);
    let bc = em.b.binary(BinaryOp::Mul, b, cos);
    let as_ = em.b.binary(BinaryOp::Mul, a, sin);
    let out_b = em.b.binary(BinaryOp::Add, bc, as_);

    let (oa, ob, ocol) = pair_access(&mut em, store);
    let o_t = store.strides[rank - 2];
    for (base, v) in [(oa, out_a), (ob, out_b)] {
        let v = if out_dtype != DType::F32 {
            em.b.cast(v, out_dtype)
        } else {
            v
        };
        let acc = access(&mut em, spec.out, base, o_t, ocol);
        em.b.store(acc, v);
    }
    Ok(em.b.finish(name.to_string(), params(spec), grid))
}

fn internal(name: &str, message: String) -> CompileError {
    CompileError::Internal {
        stage: "tile",
        message: format!("rope kernel `{name}`: {message}"),
    }
}

/// Maps logical program indices (extents, first fastest) to the grid: one grid axis per
/// extent when each fits `max_grid_dim`, else the linear program index spread over up to
/// three axes (surplus programs redo the last one: same values, same place).
fn programs(
    em: &mut Em,
    target: &Target,
    name: &str,
    extents: &[u64],
) -> Result<([u32; 3], Vec<Ix>), CompileError> {
    let max = u64::from(target.max_grid_dim.max(1));
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
        scale *= i64::from(g);
    }
    if g0 * g1 * g2 > total {
        lin = em.op(IndexOp::Min, lin, Ix::C(total as i64 - 1));
    }
    let dims: Vec<usize> = extents.iter().rev().map(|&e| e as usize).collect();
    let mut idx = em.unravel(lin, &dims);
    idx.reverse();
    Ok((grid, idx))
}

#[cfg(test)]
mod tests {
    use crate::graph::{DType, Graph};
    use crate::target::Target;
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
                    let block = crate::tile::build::tile_sizes(&target).block;
                    for v in &k.values {
                        if let Ty::Tile(shape, _) = v {
                            let padded = shape[0] * shape[1].max(8);
                            assert!(padded <= block.max(8), "{shape:?} on {}", target.kind);
                        }
                    }
                    assert!(k
                        .body
                        .insts
                        .iter()
                        .all(|i| !matches!(i.kind, InstKind::For { .. })));
                    // Programs cover every (frequency chunk, position block, head).
                    let programs: u64 = k.num_programs();
                    assert!(programs >= 6, "{programs} programs");
                }
            }
        }
    }
}
