//! Tile kernels of the first three steps of a sorted scatter-add: the ranks of the ids
//! ([`CompositeOp::ScatterRanks`]), their inverse, the sorted order
//! ([`CompositeOp::ScatterOrder`]), and where each output row's segment of it starts
//! ([`CompositeOp::ScatterStarts`]). The last step, the sums, is [`super::index`]'s
//! scatter-add given the order and the starts.
//!
//! None has reductions or barriers: one program per tile of outputs (one output per
//! lane), a loop over inputs with a uniform scalar load each, and a few exact f32 tile
//! ops per step (ids clamped into `-1..=size` and positions are integers below 2^24).
//! Every read is a scalar load, so any strided view of the ids costs the same on every
//! target (an `i32` tile of strided ids is a gather Ascend C does not have).
//!
//! - **ranks** (`rank[n] = #{m : c[m] < c[n]} + #{m < n : c[m] == c[n]}`): a program
//!   owns positions `n0..n0 + len`. A first loop over its own positions reads their ids
//!   into a tile (`own`, lane `n - n0` picks `c[m]` where `m == n`). The main loop runs
//!   over the other `N - len` ids: id `m` counts for a lane when `c[m] < own` (`m` after
//!   the tile) or `c[m] <= own` (before it), that is `min(max(own - c[m] + [m < n0],
//!   0), 1)` on integers: 4 tile ops per id. A last loop over the tile's own ids adds
//!   the same with `[m < n]` per lane.
//! - **order** (`order[r] = n` where `rank[n] == r`): a program owns ranks `r0..r0 +
//!   len`; for every `n`, the lane `rank[n] - r0`, if any, adds `n`: `n * max(1 - |r -
//!   rank[n]|, 0)`, 5 tile ops per id.
//!
//! Ranks and order loop over all `N` inputs per program: quadratic in `N`.
//!
//! - **starts** (`starts[r] = #{n : c[n] < r}`, `size + 1` of them): linear, not
//!   quadratic. A program owns rows `r0..r0 + tile`, whose ids lie at the sorted
//!   positions `lo..hi` (`lo`, `hi` the first positions whose ids reach `r0` and `r0 +
//!   tile`: one loop of two binary searches in index math, reading `c[order[p]]`); a
//!   loop over `lo..hi` adds `min(max(r - c, 0), 1)` per lane, and the lane's start is
//!   `lo` plus that count. All programs together take `~(size / tile) log N + N` steps.

use super::index::coalesce;
use super::{params, unsupported};
use crate::error::CompileError;
use crate::graph::{BinaryOp, CompositeOp, DType, UnaryOp};
use crate::schedule::kernel::KernelSpec;
use crate::schedule::view::StridedView;
use crate::target::Target;
use crate::tile::build::{programs, tile_sizes, Em, Ix};
use crate::tile::{BlockAccess, IndexOp, TileKernel, ValueId};

/// Builds the kernel of a ranks, order or starts composite over its operands.
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
    let (buffer, view) = operands
        .first()
        .ok_or_else(|| internal("missing operand".into()))?;
    if spec.buffers.get(*buffer).map(|b| b.dtype) != Some(DType::I32)
        || view.strides.len() != view.shape.len()
    {
        return Err(internal("the operand is not an i32 view".into()));
    }
    let n: usize = view.shape.iter().product();
    // Outputs: one per id (ranks, order) or per row and one more (starts).
    let outputs = match c {
        CompositeOp::ScatterStarts { size } => size.saturating_add(1),
        _ => n,
    };
    let st = &spec.store;
    if st.shape != [outputs] || st.strides.len() != 1 {
        return Err(internal(format!(
            "store view of shape {:?} for {outputs} outputs",
            st.shape
        )));
    }
    let (dims, strides) = coalesce(&view.shape, &[&view.strides]);
    let mut k = Sort {
        em: Em::new(),
        input: Input {
            buffer: *buffer,
            offset: view.offset,
            dims,
            strides: strides.into_iter().next().unwrap_or_default(),
        },
        n,
        tile: tile_sizes(target)
            .block
            .min(outputs.max(1).next_power_of_two()),
    };
    let programs_n = outputs.div_ceil(k.tile).max(1);
    let (grid, pids) = programs(&mut k.em, target, name, &[programs_n as u64])?;
    let first = k.em.mul(pids[0], k.tile as i64);
    let first = Ix::V(k.em.val(first));
    // Outputs of this program: min(tile, outputs - first).
    let left = k.em.op(IndexOp::Sub, Ix::C(outputs as i64), first);
    let len = k.em.op(IndexOp::Min, left, Ix::C(k.tile as i64));
    let len = Ix::V(k.em.val(len));
    let out = match c {
        CompositeOp::ScatterRanks { size } => k.ranks(first, len, *size as i64),
        CompositeOp::ScatterOrder => k.order(first),
        CompositeOp::ScatterStarts { size } => {
            let (ob, order) = operands
                .get(1)
                .ok_or_else(|| internal("missing order operand".into()))?;
            if spec.buffers.get(*ob).map(|b| b.dtype) != Some(DType::I32)
                || order.shape != [n]
                || order.strides.len() != 1
            {
                return Err(internal(format!(
                    "order of shape {:?} for {n} ids",
                    order.shape
                )));
            }
            let order = Order {
                buffer: *ob,
                offset: order.offset,
                stride: order.strides[0],
            };
            k.starts(first, &order, *size as i64)
        }
        other => {
            return Err(unsupported(
                spec,
                target,
                format!("`{}` as a sort kernel", other.name()),
            ))
        }
    };
    let t = k.em.mul(first, st.strides[0]);
    let base = k.em.add(Ix::C(st.offset), t);
    let access = BlockAccess {
        buffer: spec.out,
        base: k.em.val(base),
        strides: vec![st.strides[0]],
        limits: vec![k.em.val(len)],
        shape: vec![k.tile],
    };
    // Exact: integers below 2^24 in f32.
    let out = k.em.b.cast(out, DType::I32);
    k.em.b.store(access, out);
    Ok(k.em.b.finish(name.to_string(), params(spec), grid))
}

/// The operand, read one element at a time: element `m` (row-major) is at `offset +
/// unravel(m, dims) . strides`.
struct Input {
    buffer: usize,
    offset: i64,
    dims: Vec<usize>,
    strides: Vec<i64>,
}

/// The sorted order of the ids (`[N]`, [`CompositeOp::ScatterOrder`]): element `p` is at
/// `offset + p * stride`.
struct Order {
    buffer: usize,
    offset: i64,
    stride: i64,
}

struct Sort {
    em: Em,
    input: Input,
    /// Elements of the (first) operand: the ids, or the ranks.
    n: usize,
    /// Outputs per program (lanes).
    tile: usize,
}

impl Sort {
    /// A scalar `i32` load of operand element `m`.
    fn element(&mut self, m: Ix) -> Ix {
        let Sort { em, input, .. } = self;
        let idx = em.unravel(m, &input.dims);
        let at = em.offset(input.offset, &idx, &input.strides);
        let base = em.val(at);
        let v =
            em.b.load(BlockAccess::scalar(input.buffer, base), DType::I32, 0.0);
        Ix::V(v)
    }

    /// Operand element `m` clamped into `-1..=size`.
    fn id(&mut self, m: Ix, size: i64) -> Ix {
        let v = self.element(m);
        self.clamp(v, -1, size)
    }

    /// `max(min(x, hi), lo)` in index math.
    fn clamp(&mut self, x: Ix, lo: i64, hi: i64) -> Ix {
        let t = self.em.op(IndexOp::Min, x, Ix::C(hi));
        self.em.op(IndexOp::Max, t, Ix::C(lo))
    }

    /// An index value as an f32 scalar.
    fn float(&mut self, x: Ix) -> ValueId {
        let v = self.em.val(x);
        self.em.b.cast(v, DType::F32)
    }

    /// `min(max(x, 0), 1)` of a tile.
    fn unit(&mut self, x: ValueId) -> ValueId {
        let zero = self.em.b.float(0.0, DType::F32);
        let one = self.em.b.float(1.0, DType::F32);
        let x = self.em.b.binary(BinaryOp::Max, x, zero);
        self.em.b.binary(BinaryOp::Min, x, one)
    }

    /// The positions of the program's lanes, `first + lane`, as an f32 tile.
    fn positions(&mut self, first: Ix) -> ValueId {
        let iota = self.em.b.iota(&[self.tile], 0);
        let f = self.em.val(first);
        let ft = self.em.b.splat(f, &[self.tile]);
        let pos = self.em.b.binary(BinaryOp::Add, iota, ft);
        self.em.b.cast(pos, DType::F32)
    }

    /// The ranks of the program's positions `first..first + len` (f32 tile).
    fn ranks(&mut self, first: Ix, len: Ix, size: i64) -> ValueId {
        let f = DType::F32;
        let t = self.tile;
        let pos = self.positions(first);
        let zero = self.em.b.float(0.0, f);
        let zt = self.em.b.splat(zero, &[t]);
        let lo = self.em.val(first);
        let hi = self.em.add(first, len);
        let hi = self.em.val(hi);

        // The lanes' own ids: lane n - first takes c[m] where m == n.
        let args = self.em.begin_for(&[zt]);
        let (m, own) = (args[0], args[1]);
        let c = self.id(Ix::V(m), size);
        let c = self.float(c);
        let mf = self.em.b.cast(m, f);
        let d = self.em.b.binary(BinaryOp::Sub, pos, mf);
        let d = self.em.b.unary(UnaryOp::Abs, d);
        let miss = self.unit(d);
        let one = self.em.b.float(1.0, f);
        let hit = self.em.b.binary(BinaryOp::Sub, one, miss);
        let pick = self.em.b.binary(BinaryOp::Mul, hit, c);
        let own_n = self.em.b.binary(BinaryOp::Add, own, pick);
        let own = self.em.end_for(lo, hi, 1, &[zt], &[own_n])[0];

        // Every other id m: k in 0..N - len, m = k past the tile's positions.
        let start = self.em.val(Ix::C(0));
        let others = self.em.op(IndexOp::Sub, Ix::C(self.n as i64), len);
        let others = self.em.val(others);
        let args = self.em.begin_for(&[zt]);
        let (kv, rank) = (Ix::V(args[0]), args[1]);
        // after = [k >= first] = clamp(k - first + 1, 0, 1).
        let d = self.em.op(IndexOp::Sub, kv, first);
        let d = self.em.add(d, Ix::C(1));
        let d = self.em.op(IndexOp::Max, d, Ix::C(0));
        let after = self.em.op(IndexOp::Min, d, Ix::C(1));
        let skip = self.em.op(IndexOp::Mul, after, len);
        let m = self.em.add(kv, skip);
        let c = self.id(m, size);
        // c[m] - [m before the tile] = c[m] - 1 + after.
        let key = self.em.add(c, after);
        let key = self.em.op(IndexOp::Sub, key, Ix::C(1));
        let key = self.float(key);
        let d = self.em.b.binary(BinaryOp::Sub, own, key);
        let lt = self.unit(d);
        let rank_n = self.em.b.binary(BinaryOp::Add, rank, lt);
        let rank = self.em.end_for(start, others, 1, &[zt], &[rank_n])[0];

        // The tile's own ids: c[m] < own, or c[m] == own and m < n.
        let args = self.em.begin_for(&[rank]);
        let (m, rank_i) = (args[0], args[1]);
        let c = self.id(Ix::V(m), size);
        let c = self.float(c);
        let mf = self.em.b.cast(m, f);
        let d = self.em.b.binary(BinaryOp::Sub, pos, mf);
        let before = self.unit(d);
        let s = self.em.b.binary(BinaryOp::Add, own, before);
        let d = self.em.b.binary(BinaryOp::Sub, s, c);
        let lt = self.unit(d);
        let rank_n = self.em.b.binary(BinaryOp::Add, rank_i, lt);
        self.em.end_for(lo, hi, 1, &[rank], &[rank_n])[0]
    }

    /// The inverse permutation at the program's ranks `first..` (f32 tile): the sum of
    /// the positions `n` whose rank is the lane's.
    fn order(&mut self, first: Ix) -> ValueId {
        let f = DType::F32;
        let t = self.tile;
        let pos = self.positions(first);
        let zero = self.em.b.float(0.0, f);
        let zt = self.em.b.splat(zero, &[t]);
        let start = self.em.val(Ix::C(0));
        let stop = self.em.val(Ix::C(self.n as i64));
        let args = self.em.begin_for(&[zt]);
        let (nv, acc) = (args[0], args[1]);
        let r = self.element(Ix::V(nv));
        let rf = self.float(r);
        let d = self.em.b.binary(BinaryOp::Sub, pos, rf);
        let d = self.em.b.unary(UnaryOp::Abs, d);
        let one = self.em.b.float(1.0, f);
        let zero = self.em.b.float(0.0, f);
        let hit = self.em.b.binary(BinaryOp::Sub, one, d);
        let hit = self.em.b.binary(BinaryOp::Max, hit, zero);
        let nf = self.em.b.cast(nv, f);
        let add = self.em.b.binary(BinaryOp::Mul, hit, nf);
        let acc_n = self.em.b.binary(BinaryOp::Add, acc, add);
        self.em.end_for(start, stop, 1, &[zt], &[acc_n])[0]
    }

    /// The id at sorted position `p` (`p` and `order[p]` clamped into `0..N`, so that no
    /// read leaves the buffers whatever they hold), clamped into `-1..=size`.
    fn sorted_id(&mut self, p: Ix, order: &Order, size: i64) -> Ix {
        let last = self.n as i64 - 1;
        let p = self.clamp(p, 0, last);
        let t = self.em.mul(p, order.stride);
        let at = self.em.add(Ix::C(order.offset), t);
        let base = self.em.val(at);
        let m = self
            .em
            .b
            .load(BlockAccess::scalar(order.buffer, base), DType::I32, 0.0);
        let m = self.clamp(Ix::V(m), 0, last);
        self.id(m, size)
    }

    /// The segment starts of the program's rows `first..first + tile` (f32 tile):
    /// `lo`, `hi`, the first sorted positions whose ids are at least `first` and
    /// `first + tile`, by one binary-search loop (two searches of `ceil(log2(N + 1))`
    /// steps, in index math), then for every sorted position in `lo..hi` (ids of the
    /// program's rows) the lanes past its id count it: `lo + #{p in lo..hi : c < r}`.
    fn starts(&mut self, first: Ix, order: &Order, size: i64) -> ValueId {
        let f = DType::F32;
        let t = self.tile;
        let n = self.n as i64;
        let rows = self.positions(first);
        let end = self.em.add(first, Ix::C(t as i64));
        let end = Ix::V(self.em.val(end));
        let zero = self.em.val(Ix::C(0));
        let all = self.em.val(Ix::C(n));
        let steps = (usize::BITS - self.n.leading_zeros()) as i64;
        let step0 = self.em.val(Ix::C(0));
        let steps = self.em.val(Ix::C(steps));
        let init = [zero, all, zero, all];
        let args = self.em.begin_for(&init);
        let mut next = Vec::new();
        for (half, target) in [(0, first), (1, end)] {
            let (lo, hi) = (Ix::V(args[1 + 2 * half]), Ix::V(args[2 + 2 * half]));
            // The first sorted position whose id is >= target, while lo < hi.
            let w = self.em.op(IndexOp::Sub, hi, lo);
            let active = self.em.op(IndexOp::Min, w, Ix::C(1));
            let s = self.em.add(lo, hi);
            let mid = self.em.op(IndexOp::Div, s, Ix::C(2));
            let id = self.sorted_id(mid, order, size);
            // less = [id < target] = clamp(target - id, 0, 1).
            let d = self.em.op(IndexOp::Sub, target, id);
            let less = self.clamp(d, 0, 1);
            let go = self.em.op(IndexOp::Mul, active, less);
            let stay = self.em.op(IndexOp::Sub, active, go);
            // lo' = lo + go (mid + 1 - lo), hi' = hi - stay (hi - mid).
            let up = self.em.add(mid, Ix::C(1));
            let up = self.em.op(IndexOp::Sub, up, lo);
            let up = self.em.op(IndexOp::Mul, go, up);
            let lo_n = self.em.add(lo, up);
            let down = self.em.op(IndexOp::Sub, hi, mid);
            let down = self.em.op(IndexOp::Mul, stay, down);
            let hi_n = self.em.op(IndexOp::Sub, hi, down);
            next.push(self.em.val(lo_n));
            next.push(self.em.val(hi_n));
        }
        let bounds = self.em.end_for(step0, steps, 1, &init, &next);
        let (lo, hi) = (bounds[0], bounds[2]);

        let zf = self.em.b.float(0.0, f);
        let zt = self.em.b.splat(zf, &[t]);
        let args = self.em.begin_for(&[zt]);
        let (p, acc) = (Ix::V(args[0]), args[1]);
        let id = self.sorted_id(p, order, size);
        let c = self.float(id);
        let d = self.em.b.binary(BinaryOp::Sub, rows, c);
        let below = self.unit(d);
        let acc_n = self.em.b.binary(BinaryOp::Add, acc, below);
        let count = self.em.end_for(lo, hi, 1, &[zt], &[acc_n])[0];
        let lo = self.em.b.cast(lo, f);
        let lo = self.em.b.splat(lo, &[t]);
        self.em.b.binary(BinaryOp::Add, lo, count)
    }
}
