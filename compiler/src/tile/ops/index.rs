//! Tile kernels of the indexing ops: gather, scatter-add, concat.
//!
//! Every operand is read through its strided view (so a permuted, broadcast or sliced
//! operand costs no copy) and the output is written through the spec's store view. The
//! axes of each kernel are split into groups (for gather: the table's leading axes, the
//! ids' axes, the trailing axes) and each group is coalesced where all the views laid over
//! it allow; the last trailing axis (the *column*) is cut into rank-1 tiles of
//! `tile_sizes(target).block` elements, every other axis is a *row* index computed by
//! scalar index math from the program index. Grid: (column blocks, rows).
//!
//! - **gather** (`out[p, s, q] = table[p, ids[s], q]`): one program per (p, s, trailing
//!   row, column block); the id is a scalar `i32` load, clamped into `0..V` with
//!   `max`/`min` (an out-of-range id reads the first or last row: the documented device
//!   behaviour of [`crate::graph::Op::Gather`]; the graph interpreter reports it as an
//!   error instead), then one block load and one block store. Exact: data is moved, never
//!   rounded (f16 / bf16 pass through f32 exactly).
//! - **scatter-add** (`out[p, j, q] = sum_{n: ids[n] == j} src[p, n, q]`): deterministic
//!   without atomics. One program per (p, output row j, trailing row, column block)
//!   sums its matches *in increasing `n`* in an f32 tile and stores it once. Each output
//!   element is written by exactly one program: bitwise identical results on every run
//!   and every target that rounds f32 additions alike. An id outside `0..size` matches
//!   no row and is dropped. Three loops give the same bits:
//!   - *sorted* ([`CompositeOp::SortedScatterAdd`], what the scheduler builds for up to
//!     `4096 + 10 size` ids, `schedule::composites`): given `order`, the positions of the
//!     ids in their stable sorted order, and `starts`, where each row's segment of it
//!     starts ([`super::sort`]), the loop over the row's segment adds the source rows,
//!     in increasing position.
//!     Measured on lavapipe (ranks, order and starts included), 4096 ids into 8192
//!     rows of 64: 10.0 ms against 180 ms for the walk (the sums 2.6 ms); into 50,257
//!     rows 19.8 against 1074 ms;
//!   - *walk* (more ids; contiguous ids, fewer than 2^24 ids and rows: a contiguous
//!     tensor or a contiguous slice of one): the ids are read in chunks of 1024 as a
//!     tile (converted to f32, exact for the comparison), the chunk's match mask and
//!     count are computed with tile arithmetic, and an inner loop runs once per match,
//!     taking the next match's position by a max-reduction and adding its source row.
//!     Cost per program: `N / 1024` chunk steps plus one step per match, each with
//!     one reduction: `size * N / 1024` chunk steps in all, linear in `N` (16,384 ids
//!     into 65 rows: 31 ms; 8192 ids into 65 rows 15.0 ms, against 29.9 ms sorted);
//!   - *scan* (any other ids view): every id in order, a scalar load of `ids[n]`
//!     clamped into `-1..=size`, `match = 1 - min(|ids[n] - j|, 1)` in index math, and a block load of the source
//!     row whose limit is multiplied by `match` (nothing is read unless the id
//!     matches): `size * N` steps per column block, quadratic.
//! - **concat** (`out = [x_0 | x_1 | ..]` along `axis`): one standalone kernel for all
//!   operands. When the joined axis is not the column axis, each program owns one output
//!   row `l` and, for every operand `i` in turn, loads and stores its tile with the
//!   limit multiplied by the index-math indicator `off_i <= l < off_i + L_i` (so exactly
//!   one operand moves data per program). When the joined axis is the column axis
//!   (concatenation along the last axis), a column block may straddle operands: operand
//!   `i` is loaded and stored through blocks shifted by `sh = clamp(off_i - col0, 0,
//!   tile)` lanes with the limit `clamp(min(L_i - (col0 + sh - off_i), tile - sh), 0,
//!   ..)`, both accesses using the same lane mapping. Exact. Every operand binds a storage
//!   buffer: a concat of more operands than the target's storage-buffer limit allows (minus
//!   the output) is refused by the scheduler with an error naming the limit.

use super::{params, unsupported};
use crate::error::CompileError;
use crate::graph::{CompositeOp, DType, Op, ReduceOp, UnaryOp};
use crate::schedule::kernel::KernelSpec;
use crate::schedule::view::StridedView;
use crate::target::Target;
use crate::tile::build::{compute_dtype, programs, tile_sizes, Em, Ix};
use crate::tile::{BinaryOp, BlockAccess, IndexOp, TileKernel, ValueId};

/// Builds the kernel of `c` over its operands (`(buffer index, view)` per node input).
pub fn build(
    spec: &KernelSpec,
    name: &str,
    c: &Op,
    operands: &[(usize, StridedView)],
    target: &Target,
) -> Result<TileKernel, CompileError> {
    let mut k = Index {
        em: Em::new(),
        spec,
        name,
        target,
        block: tile_sizes(target).block,
    };
    let grid = match c {
        Op::Gather { axis } => k.gather(*axis, operands)?,
        Op::ScatterAdd { axis, size }
        | Op::Composite(CompositeOp::SortedScatterAdd { axis, size }) => {
            k.scatter_add(*axis, *size, operands)?
        }
        Op::Concat { axis } => k.concat(*axis, operands)?,
        other => {
            return Err(unsupported(
                spec,
                target,
                format!("`{}` (not an indexing op)", other.name()),
            ))
        }
    };
    Ok(k.em.b.finish(name.to_string(), params(spec), grid))
}

/// Extents and one stride list per view, with extent-1 axes dropped and neighbours
/// merged where every list is laid out alike (`s[a] == s[a + 1] * d[a + 1]`).
pub(super) fn coalesce(extents: &[usize], lists: &[&[i64]]) -> (Vec<usize>, Vec<Vec<i64>>) {
    let mut dims: Vec<usize> = Vec::new();
    let mut strides: Vec<Vec<i64>> = vec![Vec::new(); lists.len()];
    for (a, &d) in extents.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let mergeable = !dims.is_empty()
            && lists
                .iter()
                .zip(&strides)
                .all(|(l, s)| s.last().is_some_and(|&p| p == l[a] * d as i64));
        if mergeable {
            if let Some(x) = dims.last_mut() {
                *x *= d;
            }
            for (l, s) in lists.iter().zip(strides.iter_mut()) {
                if let Some(x) = s.last_mut() {
                    *x = l[a];
                }
            }
        } else {
            dims.push(d);
            for (l, s) in lists.iter().zip(strides.iter_mut()) {
                s.push(l[a]);
            }
        }
    }
    (dims, strides)
}

/// Ids (and output rows) below which a scatter-add walks its matches
/// ([`Index::scatter_walk`]): positions and ids are compared in f32, exact below 2^24.
const MAX_WALK_IDS: usize = 1 << 24;

/// Ids per chunk of a scatter-add walk: each chunk costs a reduction (its match count)
/// besides one per match, so longer chunks cost fewer for rows with few matches.
/// Measured on lavapipe (scatter-add of 4096 ids into 8192 rows of 64): 466 ms with
/// chunks of 256, 183 ms with 1024, 157 ms with 2048. 1024 keeps a GPU thread at 4
/// elements per chunk tile, and an Ascend core's ~10 live chunk tiles at 40 KiB of its
/// Unified Buffer.
const WALK_CHUNK: usize = 1024;

/// Smallest power of two `>= n` (1 for 0).
fn pow2_at_least(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// The trailing axes of a kernel: row dims, the column extent, and per view its row
/// strides and its column stride.
struct Trailing {
    rows: Vec<usize>,
    col: usize,
    row_strides: Vec<Vec<i64>>,
    col_strides: Vec<i64>,
}

/// Splits coalesced trailing axes into rows and the last (column) axis; no axis at all
/// gives a column of extent 1.
fn trailing(dims: Vec<usize>, strides: Vec<Vec<i64>>) -> Trailing {
    let mut rows = dims;
    let mut row_strides = strides;
    match rows.pop() {
        Some(col) => {
            let col_strides = row_strides
                .iter_mut()
                .map(|s| s.pop().unwrap_or(0))
                .collect();
            Trailing {
                rows,
                col,
                row_strides,
                col_strides,
            }
        }
        None => Trailing {
            col: 1,
            col_strides: vec![0; row_strides.len()],
            rows,
            row_strides,
        },
    }
}

struct Index<'a> {
    em: Em,
    spec: &'a KernelSpec,
    name: &'a str,
    target: &'a Target,
    block: usize,
}

impl Index<'_> {
    fn internal(&self, message: String) -> CompileError {
        CompileError::Internal {
            stage: "tile",
            message: format!("kernel `{}`: {message}", self.name),
        }
    }

    fn dtype(&self, buffer: usize) -> Result<DType, CompileError> {
        self.spec
            .buffers
            .get(buffer)
            .map(|b| b.dtype)
            .ok_or_else(|| self.internal(format!("no buffer {buffer}")))
    }

    /// The store view, checked to be over the output's logical shape.
    fn store(&self, out_shape: &[usize]) -> Result<&StridedView, CompileError> {
        let st = &self.spec.store;
        if st.shape != out_shape || st.strides.len() != out_shape.len() {
            return Err(self.internal(format!(
                "store view of shape {:?} for an output of shape {out_shape:?}",
                st.shape
            )));
        }
        Ok(st)
    }

    /// An operand's view, checked to be of rank `rank`.
    fn operand<'o>(
        &self,
        operands: &'o [(usize, StridedView)],
        i: usize,
        what: &str,
    ) -> Result<(usize, &'o StridedView), CompileError> {
        let (b, v) = operands
            .get(i)
            .ok_or_else(|| self.internal(format!("missing operand {i} ({what})")))?;
        if v.strides.len() != v.shape.len() {
            return Err(self.internal(format!("malformed view of {what}")));
        }
        Ok((*b, v))
    }

    /// `base + sum idx * strides` where `base` is an index value.
    fn offset(&mut self, base: Ix, idx: &[Ix], strides: &[i64]) -> Ix {
        let mut acc = base;
        for (&i, &s) in idx.iter().zip(strides) {
            let t = self.em.mul(i, s);
            acc = self.em.add(acc, t);
        }
        acc
    }

    /// A rank-1 block access of `tile` elements.
    fn access(
        &mut self,
        buffer: usize,
        base: Ix,
        stride: i64,
        limit: Ix,
        tile: usize,
    ) -> BlockAccess {
        BlockAccess {
            buffer,
            base: self.em.val(base),
            strides: vec![stride],
            limits: vec![self.em.val(limit)],
            shape: vec![tile],
        }
    }

    /// Loads a tile, in its compute dtype.
    fn load(&mut self, access: BlockAccess, dtype: DType) -> ValueId {
        let v = self.em.b.load(access, dtype, 0.0);
        if compute_dtype(dtype) != dtype {
            self.em.b.cast(v, compute_dtype(dtype))
        } else {
            v
        }
    }

    /// Stores a tile to the output buffer (converted to its dtype first).
    fn store_tile(&mut self, access: BlockAccess, v: ValueId) -> Result<(), CompileError> {
        let out = self.dtype(self.spec.out)?;
        let v = if self.em.b.ty(v).dtype() != out {
            self.em.b.cast(v, out)
        } else {
            v
        };
        self.em.b.store(access, v);
        Ok(())
    }

    /// A scalar `i32` load of `ids` at `offset`.
    fn load_id(&mut self, buffer: usize, offset: Ix) -> Result<Ix, CompileError> {
        if self.dtype(buffer)? != DType::I32 {
            return Err(self.internal("ids are not i32".into()));
        }
        let base = self.em.val(offset);
        let v = self
            .em
            .b
            .load(BlockAccess::scalar(buffer, base), DType::I32, 0.0);
        Ok(Ix::V(v))
    }

    /// `max(min(x, hi), lo)`.
    fn clamp(&mut self, x: Ix, lo: i64, hi: i64) -> Ix {
        let t = self.em.op(IndexOp::Min, x, Ix::C(hi));
        self.em.op(IndexOp::Max, t, Ix::C(lo))
    }

    // ------------------------------------------------------------------ gather

    fn gather(
        &mut self,
        axis: usize,
        operands: &[(usize, StridedView)],
    ) -> Result<[u32; 3], CompileError> {
        let (tb, table) = self.operand(operands, 0, "table")?;
        let (ib, ids) = self.operand(operands, 1, "ids")?;
        let rank = table.shape.len();
        if axis >= rank {
            return Err(self.internal(format!("gather axis {axis} of rank {rank}")));
        }
        let v = table.shape[axis];
        let sr = ids.shape.len();
        let mut out_shape = table.shape[..axis].to_vec();
        out_shape.extend_from_slice(&ids.shape);
        out_shape.extend_from_slice(&table.shape[axis + 1..]);
        let st = self.store(&out_shape)?.clone();
        let (pd, ps) = coalesce(
            &table.shape[..axis],
            &[&table.strides[..axis], &st.strides[..axis]],
        );
        let (sd, ss) = coalesce(&ids.shape, &[&ids.strides, &st.strides[axis..axis + sr]]);
        let (qd, qs) = coalesce(
            &table.shape[axis + 1..],
            &[&table.strides[axis + 1..], &st.strides[axis + sr..]],
        );
        let q = trailing(qd, qs);
        let tile = self.block.min(pow2_at_least(q.col));
        let col_blocks = q.col.div_ceil(tile);
        let rows: usize = pd.iter().product::<usize>()
            * sd.iter().product::<usize>()
            * q.rows.iter().product::<usize>();
        let (grid, pids) = programs(
            &mut self.em,
            self.target,
            self.name,
            &[col_blocks as u64, rows as u64],
        )?;
        let col0 = self.em.mul(pids[0], tile as i64);
        // Row index: (p, s, trailing rows), last fastest.
        let mut row_dims = pd.clone();
        row_dims.extend_from_slice(&sd);
        row_dims.extend_from_slice(&q.rows);
        let idx = self.em.unravel(pids[1], &row_dims);
        let (pi, rest) = idx.split_at(pd.len());
        let (si, qi) = rest.split_at(sd.len());
        let id_off = self.offset(Ix::C(ids.offset), si, &ss[0]);
        let id = self.load_id(ib, id_off)?;
        let id = self.clamp(id, 0, v as i64 - 1);
        let t_base = self.offset(Ix::C(table.offset), pi, &ps[0]);
        let t_row = self.em.mul(id, table.strides[axis]);
        let t_base = self.em.add(t_base, t_row);
        let t_base = self.offset(t_base, qi, &q.row_strides[0]);
        let t_col = self.em.mul(col0, q.col_strides[0]);
        let t_base = self.em.add(t_base, t_col);
        let o_base = self.offset(Ix::C(st.offset), pi, &ps[1]);
        let o_base = self.offset(o_base, si, &ss[1]);
        let o_base = self.offset(o_base, qi, &q.row_strides[1]);
        let o_col = self.em.mul(col0, q.col_strides[1]);
        let o_base = self.em.add(o_base, o_col);
        let lim = self.em.op(IndexOp::Sub, Ix::C(q.col as i64), col0);
        let ta = self.access(tb, t_base, q.col_strides[0], lim, tile);
        let x = self.load(ta, self.dtype(tb)?);
        let oa = self.access(self.spec.out, o_base, q.col_strides[1], lim, tile);
        self.store_tile(oa, x)?;
        Ok(grid)
    }

    // ------------------------------------------------------------- scatter-add

    fn scatter_add(
        &mut self,
        axis: usize,
        size: usize,
        operands: &[(usize, StridedView)],
    ) -> Result<[u32; 3], CompileError> {
        let (xb, src) = self.operand(operands, 0, "src")?;
        let (ib, ids) = self.operand(operands, 1, "ids")?;
        let sr = ids.shape.len();
        let end = axis + sr;
        if end > src.shape.len() || src.shape[axis..end] != ids.shape[..] {
            return Err(self.internal(format!(
                "ids {:?} do not match axes {axis}.. of src {:?}",
                ids.shape, src.shape
            )));
        }
        let mut out_shape = src.shape[..axis].to_vec();
        out_shape.push(size);
        out_shape.extend_from_slice(&src.shape[end..]);
        let st = self.store(&out_shape)?.clone();
        let (pd, ps) = coalesce(
            &src.shape[..axis],
            &[&src.strides[..axis], &st.strides[..axis]],
        );
        let (sd, ss) = coalesce(&ids.shape, &[&ids.strides, &src.strides[axis..end]]);
        let (qd, qs) = coalesce(
            &src.shape[end..],
            &[&src.strides[end..], &st.strides[axis + 1..]],
        );
        let q = trailing(qd, qs);
        let n: usize = ids.shape.iter().product();
        let tile = self.block.min(pow2_at_least(q.col));
        let col_blocks = q.col.div_ceil(tile);
        let rows: usize = pd.iter().product::<usize>() * size * q.rows.iter().product::<usize>();
        let (grid, pids) = programs(
            &mut self.em,
            self.target,
            self.name,
            &[col_blocks as u64, rows as u64],
        )?;
        let col0 = self.em.mul(pids[0], tile as i64);
        let mut row_dims = pd.clone();
        row_dims.push(size);
        row_dims.extend_from_slice(&q.rows);
        let idx = self.em.unravel(pids[1], &row_dims);
        let (pi, rest) = idx.split_at(pd.len());
        let (j, qi) = (rest[0], &rest[1..]);
        let lim = self.em.op(IndexOp::Sub, Ix::C(q.col as i64), col0);
        let x_base = self.offset(Ix::C(src.offset), pi, &ps[0]);
        let x_base = self.offset(x_base, qi, &q.row_strides[0]);
        let x_col = self.em.mul(col0, q.col_strides[0]);
        let x_base = self.em.add(x_base, x_col);
        // Materialize the loop invariants before the loop (values defined outside it).
        let x_base = Ix::V(self.em.val(x_base));
        let lim = Ix::V(self.em.val(lim));
        let j = Ix::V(self.em.val(j));

        // Contiguous ids (a contiguous tensor or a contiguous slice of one): walk the
        // matches; otherwise scan every id (an i32 tile of strided ids is not a load
        // every target has: Ascend C gathers only float elements).
        let run = match (sd.as_slice(), ss[0].as_slice(), ss[1].as_slice()) {
            ([_], [1], [sx]) => Some((1, *sx)),
            ([], _, _) => Some((0, 0)),
            _ => None,
        };
        let sorted = match (operands.get(2), operands.get(3)) {
            (Some(_), Some(_)) => Some((
                self.operand(operands, 2, "order")?,
                self.operand(operands, 3, "starts")?,
            )),
            _ => None,
        };
        let res = match (sorted, run) {
            (Some(((ob, order), (tb, starts))), _) => {
                if order.shape != [n] || starts.shape != [size + 1] {
                    return Err(self.internal(format!(
                        "order of shape {:?} and starts of shape {:?} for {n} ids into {size} rows",
                        order.shape, starts.shape
                    )));
                }
                let order = (ob, order.offset, order.strides[0]);
                let starts = (tb, starts.offset, starts.strides[0]);
                let src_rows = (xb, x_base, &ss[1][..], q.col_strides[0], lim, tile);
                self.scatter_sorted(order, starts, (sd.as_slice(), n), src_rows, j)?
            }
            (None, Some((id_stride, x_stride))) if n < MAX_WALK_IDS && size < MAX_WALK_IDS => {
                let ids_run = (ib, ids.offset, id_stride, n);
                let src_rows = (xb, x_base, x_stride, q.col_strides[0], lim, tile);
                self.scatter_walk(ids_run, src_rows, j)?
            }
            (None, _) => {
                let ids_view = (ib, ids.offset, sd.as_slice(), &ss[0][..], n);
                let src_rows = (xb, x_base, &ss[1][..], q.col_strides[0], lim, tile);
                self.scatter_scan(ids_view, src_rows, (j, size))?
            }
        };

        let o_base = self.offset(Ix::C(st.offset), pi, &ps[1]);
        let o_row = self.em.mul(j, st.strides[axis]);
        let o_base = self.em.add(o_base, o_row);
        let o_base = self.offset(o_base, qi, &q.row_strides[1]);
        let o_col = self.em.mul(col0, q.col_strides[1]);
        let o_base = self.em.add(o_base, o_col);
        let oa = self.access(self.spec.out, o_base, q.col_strides[1], lim, tile);
        self.store_tile(oa, res)?;
        Ok(grid)
    }

    /// The sum of one output tile of a scatter-add by walking its matches: a loop over
    /// the ids in chunks of up to `WALK_CHUNK` (a tile load, converted to
    /// f32: exact below 2^24, and no id of 2^24 or more can equal a row index below
    /// `size`), the match mask `hit = 1 - min(|id - j|, 1)` and its count; for each
    /// match in the chunk, in
    /// increasing position, the next one is `2^24 - max((2^24 - pos) hit after)` (with
    /// `after = min(max(pos - cur, 0), 1)`, 1 past the previous match `cur`), and its
    /// source row is added. All of it is exact f32 arithmetic on integers below 2^24.
    /// Each output element sums its matches in increasing `n`, as
    /// [`Self::scatter_scan`] does, so the two give the same bits. `ids` is `(buffer,
    /// offset, stride, n)`, `src` is `(buffer, base of the output tile's source row at
    /// n = 0, stride along n, column stride, column limit, tile)`.
    fn scatter_walk(
        &mut self,
        (ib, id_offset, id_stride, n): (usize, i64, i64, usize),
        (xb, x_base, x_stride, col_stride, lim, tile): (usize, Ix, i64, i64, Ix, usize),
        j: Ix,
    ) -> Result<ValueId, CompileError> {
        let f = DType::F32;
        let chunk = WALK_CHUNK.min(pow2_at_least(n));
        let jv = self.em.val(j);
        let jf = self.em.b.cast(jv, f);
        let zero = self.em.b.float(0.0, f);
        let one = self.em.b.float(1.0, f);
        let big = self.em.b.float(MAX_WALK_IDS as f64, f);
        let minus_one = self.em.b.float(-1.0, f);
        let jt = self.em.b.splat(jf, &[chunk]);
        let zt = self.em.b.splat(zero, &[chunk]);
        let ot = self.em.b.splat(one, &[chunk]);
        let bt = self.em.b.splat(big, &[chunk]);
        let iota = self.em.b.iota(&[chunk], 0);
        let acc0 = self.em.b.splat(zero, &[tile]);
        let start = self.em.val(Ix::C(0));
        let stop = self.em.val(Ix::C(n as i64));

        let args = self.em.begin_for(&[acc0]);
        let (c, acc) = (Ix::V(args[0]), args[1]);
        let at = self.em.mul(c, id_stride);
        let id_base = self.em.add(Ix::C(id_offset), at);
        let left = self.em.op(IndexOp::Sub, Ix::C(n as i64), c);
        let ida = self.access(ib, id_base, id_stride, left, chunk);
        // Past the last id: -1, which matches no row.
        let idt = self.em.b.load(ida, DType::I32, -1.0);
        let idf = self.em.b.cast(idt, f);
        let d = self.em.b.binary(BinaryOp::Sub, idf, jt);
        let ad = self.em.b.unary(UnaryOp::Abs, d);
        let m = self.em.b.binary(BinaryOp::Min, ad, ot);
        let hit = self.em.b.binary(BinaryOp::Sub, ot, m);
        let count = self.em.b.reduce(ReduceOp::Sum, hit, 0);
        let count = self.em.b.cast(count, DType::I32);
        let cv = self.em.val(c);
        let ct = self.em.b.splat(cv, &[chunk]);
        let pos = self.em.b.binary(BinaryOp::Add, iota, ct);
        let pos = self.em.b.cast(pos, f);
        let rank = self.em.b.binary(BinaryOp::Sub, bt, pos);
        let score = self.em.b.binary(BinaryOp::Mul, rank, hit);
        let first = self.em.val(Ix::C(0));

        let inner = self.em.begin_for(&[acc, minus_one]);
        let (acc_i, cur) = (inner[1], inner[2]);
        let curt = self.em.b.splat(cur, &[chunk]);
        let past = self.em.b.binary(BinaryOp::Sub, pos, curt);
        let past = self.em.b.binary(BinaryOp::Max, past, zt);
        let after = self.em.b.binary(BinaryOp::Min, past, ot);
        let s = self.em.b.binary(BinaryOp::Mul, score, after);
        let best = self.em.b.reduce(ReduceOp::Max, s, 0);
        let next = self.em.b.binary(BinaryOp::Sub, big, best);
        let ni = self.em.b.cast(next, DType::I32);
        let row = self.em.mul(Ix::V(ni), x_stride);
        let xr = self.em.add(x_base, row);
        let xa = self.access(xb, xr, col_stride, lim, tile);
        // In f32 already: `src` is a float tensor, loaded in its compute dtype.
        let x = self.load(xa, self.dtype(xb)?);
        let acc_n = self.em.b.binary(BinaryOp::Add, acc_i, x);
        let walked = self
            .em
            .end_for(first, count, 1, &[acc, minus_one], &[acc_n, next]);
        let res = self
            .em
            .end_for(start, stop, chunk as i64, &[acc0], &[walked[0]]);
        Ok(res[0])
    }

    /// The sum of one output tile of a sorted scatter-add: with `order` the stable sorted
    /// order of the ids clamped into `-1..=size` (`order[r]` is the position of the
    /// `r`-th smallest) and `starts` where each row's segment of it starts
    /// ([`super::sort`]), the row's matches are the segment `starts[j]..starts[j + 1]`
    /// of `order` (two scalar loads, clamped into `0..=N`), summed in segment order,
    /// which is increasing position: the bits of [`Self::scatter_scan`]. Positions read
    /// from `order` are clamped into `0..N`, so no access leaves `src` whatever the
    /// buffers hold. `order` and `starts` are `(buffer, offset, stride)`, then the ids'
    /// coalesced dims and count; `src` as for [`Self::scatter_scan`].
    fn scatter_sorted(
        &mut self,
        (ob, o_offset, o_stride): (usize, i64, i64),
        (tb, t_offset, t_stride): (usize, i64, i64),
        (sd, n): (&[usize], usize),
        (xb, x_base, x_strides, col_stride, lim, tile): (usize, Ix, &[i64], i64, Ix, usize),
        j: Ix,
    ) -> Result<ValueId, CompileError> {
        let last = n.max(1) as i64 - 1;
        // The position of rank `r`, clamped into `0..N`.
        let position = |k: &mut Self, r: Ix| -> Result<Ix, CompileError> {
            let t = k.em.mul(r, o_stride);
            let at = k.em.add(Ix::C(o_offset), t);
            let p = k.load_id(ob, at)?;
            Ok(k.clamp(p, 0, last))
        };
        // The row's segment `starts[j]..starts[j + 1]`, clamped into `0..=N`.
        let bound = |k: &mut Self, r: Ix| -> Result<ValueId, CompileError> {
            let t = k.em.mul(r, t_stride);
            let at = k.em.add(Ix::C(t_offset), t);
            let b = k.load_id(tb, at)?;
            let b = k.clamp(b, 0, n as i64);
            Ok(k.em.val(b))
        };
        let lo = bound(self, j)?;
        let j1 = self.em.add(j, Ix::C(1));
        let hi = bound(self, j1)?;

        let zf = self.em.b.float(0.0, DType::F32);
        let acc0 = self.em.b.splat(zf, &[tile]);
        let args = self.em.begin_for(&[acc0]);
        let (r, acc) = (Ix::V(args[0]), args[1]);
        let p = position(self, r)?;
        let si = self.em.unravel(p, sd);
        let xr = self.offset(x_base, &si, x_strides);
        let xa = self.access(xb, xr, col_stride, lim, tile);
        // In f32 already: `src` is a float tensor, loaded in its compute dtype.
        let x = self.load(xa, self.dtype(xb)?);
        let acc_n = self.em.b.binary(BinaryOp::Add, acc, x);
        let res = self.em.end_for(lo, hi, 1, &[acc0], &[acc_n]);
        Ok(res[0])
    }

    /// The sum of one output tile of a scatter-add by scanning every id in order (the
    /// ids are not contiguous, or there are 2^24 ids or rows or more): a scalar load of
    /// `ids[n]`, clamped into `-1..=size`, `match = 1 - min(|ids[n] - j|, 1)` in index
    /// math, and a
    /// block load of the source row whose limit is multiplied by `match` (nothing is
    /// read unless the id matches), accumulated in increasing `n`. `ids` is `(buffer,
    /// offset, coalesced dims, strides, n)`, `src` as for [`Self::scatter_walk`] with
    /// the source strides along the ids' dims.
    fn scatter_scan(
        &mut self,
        (ib, id_offset, sd, id_strides, n): (usize, i64, &[usize], &[i64], usize),
        (xb, x_base, x_strides, col_stride, lim, tile): (usize, Ix, &[i64], i64, Ix, usize),
        (j, size): (Ix, usize),
    ) -> Result<ValueId, CompileError> {
        let zero = self.em.b.float(0.0, DType::F32);
        let acc0 = self.em.b.splat(zero, &[tile]);
        let start = self.em.val(Ix::C(0));
        let stop = self.em.val(Ix::C(n as i64));
        let args = self.em.begin_for(&[acc0]);
        let (nv, acc) = (Ix::V(args[0]), args[1]);
        let si = self.em.unravel(nv, sd);
        let id_off = self.offset(Ix::C(id_offset), &si, id_strides);
        let id = self.load_id(ib, id_off)?;
        // Clamped into -1..=size first, so that the difference below cannot wrap (an id
        // near i32::MIN would match some row); the clamped ends match no row.
        let id = self.clamp(id, -1, size as i64);
        // match = 1 - min(|id - j|, 1): 1 for the id of this output row, else 0.
        let d = self.em.op(IndexOp::Sub, id, j);
        let nd = self.em.op(IndexOp::Sub, Ix::C(0), d);
        let ad = self.em.op(IndexOp::Max, d, nd);
        let m = self.em.op(IndexOp::Min, ad, Ix::C(1));
        let hit = self.em.op(IndexOp::Sub, Ix::C(1), m);
        let l = self.em.op(IndexOp::Mul, lim, hit);
        let xb_n = self.offset(x_base, &si, x_strides);
        let xa = self.access(xb, xb_n, col_stride, l, tile);
        // In f32 already: `src` is a float tensor, loaded in its compute dtype.
        let x = self.load(xa, self.dtype(xb)?);
        let next = self.em.b.binary(BinaryOp::Add, acc, x);
        let res = self.em.end_for(start, stop, 1, &[acc0], &[next]);
        Ok(res[0])
    }

    // ------------------------------------------------------------------ concat

    fn concat(
        &mut self,
        axis: usize,
        operands: &[(usize, StridedView)],
    ) -> Result<[u32; 3], CompileError> {
        let (_, first) = self.operand(operands, 0, "the first operand")?;
        let rank = first.shape.len();
        if axis >= rank {
            return Err(self.internal(format!("concat axis {axis} of rank {rank}")));
        }
        let mut xs = Vec::new();
        let mut total = 0usize;
        for i in 0..operands.len() {
            let (b, x) = self.operand(operands, i, "an operand")?;
            let fits = x.shape.len() == rank
                && (0..rank).all(|a| a == axis || x.shape[a] == first.shape[a]);
            if !fits {
                return Err(self.internal(format!(
                    "concat operand {:?} does not fit {:?}",
                    x.shape, first.shape
                )));
            }
            xs.push((b, x, total));
            total += x.shape[axis];
        }
        let mut out_shape = first.shape.clone();
        out_shape[axis] = total;
        let st = self.store(&out_shape)?.clone();
        // View lists: every operand, then the store.
        let lists_of = |r: std::ops::Range<usize>| -> Vec<&[i64]> {
            xs.iter()
                .map(|(_, x, _)| &x.strides[r.clone()])
                .chain(std::iter::once(&st.strides[r.clone()]))
                .collect()
        };
        let (pd, ps) = coalesce(&first.shape[..axis], &lists_of(0..axis));
        let (qd, qs) = coalesce(&first.shape[axis + 1..], &lists_of(axis + 1..rank));
        let k = xs.len();
        let p_rows: usize = pd.iter().product();
        if qd.is_empty() {
            // Joined along the column axis: shifted blocks per operand.
            let tile = self.block.min(pow2_at_least(total));
            let col_blocks = total.div_ceil(tile);
            let (grid, pids) = programs(
                &mut self.em,
                self.target,
                self.name,
                &[col_blocks as u64, p_rows as u64],
            )?;
            let col0 = self.em.mul(pids[0], tile as i64);
            let pi = self.em.unravel(pids[1], &pd);
            let o_rows = self.offset(Ix::C(st.offset), &pi, &ps[k]);
            for (i, &(b, x, off)) in xs.iter().enumerate() {
                let len = x.shape[axis] as i64;
                if len == 0 {
                    continue;
                }
                let off = off as i64;
                // Lanes before operand i starts: sh = clamp(off - col0, 0, tile).
                let d = self.em.op(IndexOp::Sub, Ix::C(off), col0);
                let sh = self.clamp(d, 0, tile as i64);
                // Its first element in this block: start = col0 + sh - off.
                let c = self.em.add(col0, sh);
                let start = self.em.op(IndexOp::Sub, c, Ix::C(off));
                let left = self.em.op(IndexOp::Sub, Ix::C(len), start);
                let room = self.em.op(IndexOp::Sub, Ix::C(tile as i64), sh);
                let lim = self.em.op(IndexOp::Min, left, room);
                let lim = self.em.op(IndexOp::Max, lim, Ix::C(0));
                // Inactive operands keep their addresses in range.
                let start = self.clamp(start, 0, len - 1);
                let c = self.clamp(c, 0, total as i64 - 1);
                let x_rows = self.offset(Ix::C(x.offset), &pi, &ps[i]);
                let t = self.em.mul(start, x.strides[axis]);
                let x_base = self.em.add(x_rows, t);
                let t = self.em.mul(c, st.strides[axis]);
                let o_base = self.em.add(o_rows, t);
                let xa = self.access(b, x_base, x.strides[axis], lim, tile);
                let v = self.load(xa, self.dtype(b)?);
                let oa = self.access(self.spec.out, o_base, st.strides[axis], lim, tile);
                self.store_tile(oa, v)?;
            }
            return Ok(grid);
        }
        // Joined along a row axis: one output row per program, one active operand.
        let q = trailing(qd, qs);
        let tile = self.block.min(pow2_at_least(q.col));
        let col_blocks = q.col.div_ceil(tile);
        let rows = p_rows * total * q.rows.iter().product::<usize>();
        let (grid, pids) = programs(
            &mut self.em,
            self.target,
            self.name,
            &[col_blocks as u64, rows as u64],
        )?;
        let col0 = self.em.mul(pids[0], tile as i64);
        let mut row_dims = pd.clone();
        row_dims.push(total);
        row_dims.extend_from_slice(&q.rows);
        let idx = self.em.unravel(pids[1], &row_dims);
        let (pi, rest) = idx.split_at(pd.len());
        let (l, qi) = (rest[0], &rest[1..]);
        let lim = self.em.op(IndexOp::Sub, Ix::C(q.col as i64), col0);
        let o_base = self.offset(Ix::C(st.offset), pi, &ps[k]);
        let t = self.em.mul(l, st.strides[axis]);
        let o_base = self.em.add(o_base, t);
        let o_base = self.offset(o_base, qi, &q.row_strides[k]);
        let t = self.em.mul(col0, q.col_strides[k]);
        let o_base = self.em.add(o_base, t);
        for (i, &(b, x, off)) in xs.iter().enumerate() {
            let len = x.shape[axis] as i64;
            if len == 0 {
                continue;
            }
            let local = self.em.op(IndexOp::Sub, l, Ix::C(off as i64));
            // in = [0 <= local] * [local < len], each as min(max(., 0), 1).
            let lo = self.em.add(local, Ix::C(1));
            let lo = self.clamp(lo, 0, 1);
            let hi = self.em.op(IndexOp::Sub, Ix::C(len), local);
            let hi = self.clamp(hi, 0, 1);
            let active = self.em.op(IndexOp::Mul, lo, hi);
            let lim_i = self.em.op(IndexOp::Mul, lim, active);
            let local = self.clamp(local, 0, len - 1);
            let x_base = self.offset(Ix::C(x.offset), pi, &ps[i]);
            let t = self.em.mul(local, x.strides[axis]);
            let x_base = self.em.add(x_base, t);
            let x_base = self.offset(x_base, qi, &q.row_strides[i]);
            let t = self.em.mul(col0, q.col_strides[i]);
            let x_base = self.em.add(x_base, t);
            let xa = self.access(b, x_base, q.col_strides[i], lim_i, tile);
            let v = self.load(xa, self.dtype(b)?);
            let oa = self.access(self.spec.out, o_base, q.col_strides[k], lim_i, tile);
            self.store_tile(oa, v)?;
        }
        Ok(grid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_merges_alike_neighbours_only() {
        let (d, s) = coalesce(&[2, 3, 1, 4], &[&[12, 4, 4, 1], &[12, 4, 99, 1]]);
        assert_eq!(d, vec![24]);
        assert_eq!(s, vec![vec![1], vec![1]]);
        let (d, s) = coalesce(&[2, 3, 4], &[&[12, 4, 1], &[1, 8, 2]]);
        assert_eq!(d, vec![2, 12]);
        assert_eq!(s, vec![vec![12, 1], vec![1, 2]]);
        let (d, s) = coalesce(&[1, 1], &[&[5, 7]]);
        assert!(d.is_empty() && s == vec![Vec::<i64>::new()]);
        let t = trailing(vec![], vec![vec![], vec![]]);
        assert_eq!((t.col, t.col_strides), (1, vec![0, 0]));
    }
}
