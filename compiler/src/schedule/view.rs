//! Strided and factored views: how movement ops (broadcast, reshape, permute, slice) are
//! folded into indexing.
//!
//! A [`StridedView`] reads a materialized, dense row-major buffer through a shape, a
//! stride per axis (in elements; 0 broadcasts) and an element offset: the form every tile
//! block access takes. Strides alone cannot express every chain of movement ops: merging
//! two axes that a permute separated (`[A, B] -> permute -> [B, A] -> reshape [B * A]`)
//! makes the offset a mixed-radix function of the merged index.
//!
//! A [`FactoredView`] is the exact form of any chain: each logical axis is a mixed-radix
//! number whose *digits* each carry their own stride. Permutes and broadcasts move and add
//! axes; a reshape flattens the digits, merges neighbours laid out alike, and cuts digits
//! at the new axis boundaries. The only reshape it cannot express is one whose boundary
//! falls inside a digit at a non-divisible place (`[3, 2]` with unrelated strides read as
//! `[2, 3]`): no iteration order makes that offset affine, and the scheduler materializes
//! the reshape's input. Otherwise a kernel iterates a *refinement* of its index space
//! ([`Refinement`]: each axis split into the digits its operands need) over which every
//! factored view is a plain [`StridedView`] ([`FactoredView::refine`]).
//!
//! A slice moves the offset by `start` strides and shortens its axis: free on a strided
//! axis, and on a merged axis whenever the range is aligned to its digits
//! ([`FactoredView::slice`]); otherwise the scheduler materializes the slice's input.
//! Slices therefore fuse into every kernel kind (elementwise operands, reduction bodies
//! and epilogues, matmul and standalone-op operands) with no copy.
//!
//! An `iota` leaf is a view too, of no buffer: the view of a tensor whose element offset
//! is its index along the counted axis (stride 1 there, 0 elsewhere); after the movement
//! ops its "offset" is the value, computed by index arithmetic
//! ([`crate::schedule::kernel::Expr::Iota`], [`iota_view`]).

use crate::graph::{contiguous_strides, NodeId, Op};
use serde::{Deserialize, Serialize};

/// One movement op, as applied to a view.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViewOp {
    /// NumPy-style broadcast to a shape.
    Broadcast(Vec<usize>),
    /// Same elements in row-major order, new shape.
    Reshape(Vec<usize>),
    /// Output axis `i` is input axis `perm[i]`.
    Permute(Vec<usize>),
    /// `x[.., start..start + len, ..]` along `axis`.
    Slice {
        /// The sliced axis.
        axis: usize,
        /// First index kept.
        start: usize,
        /// Number of indices kept.
        len: usize,
    },
}

impl ViewOp {
    /// The movement op of a graph op, or `None` when the op is not a view.
    pub fn of(op: &Op) -> Option<ViewOp> {
        match op {
            Op::Broadcast { shape } => Some(ViewOp::Broadcast(shape.clone())),
            Op::Reshape { shape } => Some(ViewOp::Reshape(shape.clone())),
            Op::Permute { perm } => Some(ViewOp::Permute(perm.clone())),
            Op::Slice { axis, start, len } => Some(ViewOp::Slice {
                axis: *axis,
                start: *start,
                len: *len,
            }),
            _ => None,
        }
    }

    /// True for the ops that map every element of the input to exactly one element of
    /// the output (permute, reshape): a value can be *stored* through their inverse.
    pub fn is_bijective(&self) -> bool {
        matches!(self, ViewOp::Reshape(_) | ViewOp::Permute(_))
    }
}

/// A view of the buffer holding a graph node's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StridedView {
    /// The materialized node whose buffer is read.
    pub node: NodeId,
    /// Logical shape of the view.
    pub shape: Vec<usize>,
    /// Element stride per axis (0 for broadcast axes).
    pub strides: Vec<i64>,
    /// Element offset of index `(0, .., 0)`.
    pub offset: i64,
}

impl StridedView {
    /// The whole buffer of `node`, a dense row-major tensor of `shape`.
    pub fn contiguous(node: NodeId, shape: &[usize]) -> StridedView {
        StridedView {
            node,
            shape: shape.to_vec(),
            strides: contiguous_strides(shape)
                .iter()
                .map(|&s| s as i64)
                .collect(),
            offset: 0,
        }
    }

    /// Number of elements of the view.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the view reads the buffer densely in row-major order from its start.
    pub fn is_contiguous(&self) -> bool {
        if self.offset != 0 {
            return false;
        }
        let want = contiguous_strides(&self.shape);
        self.shape
            .iter()
            .zip(self.strides.iter().zip(want))
            .all(|(&d, (&s, w))| d == 1 || s == w as i64)
    }

    /// Element offset in the buffer of a logical index (one entry per axis).
    pub fn element_offset(&self, index: &[usize]) -> i64 {
        self.offset
            + index
                .iter()
                .zip(&self.strides)
                .map(|(&i, &s)| i as i64 * s)
                .sum::<i64>()
    }

    /// Applies a movement op; `None` when the result is not expressible with strides (or
    /// the op does not fit the view's shape).
    pub fn apply(&self, op: &ViewOp) -> Option<StridedView> {
        match op {
            ViewOp::Broadcast(shape) => self.broadcast(shape),
            ViewOp::Reshape(shape) => self.reshape(shape),
            ViewOp::Permute(perm) => self.permute(perm),
            ViewOp::Slice { axis, start, len } => self.slice(*axis, *start, *len),
        }
    }

    /// `[.., start..start + len, ..]` along `axis`: the offset moves by `start` strides,
    /// the strides stay. `None` when the range does not fit the axis.
    pub fn slice(&self, axis: usize, start: usize, len: usize) -> Option<StridedView> {
        let &d = self.shape.get(axis)?;
        if start.checked_add(len)? > d {
            return None;
        }
        let mut shape = self.shape.clone();
        shape[axis] = len;
        Some(StridedView {
            node: self.node,
            shape,
            strides: self.strides.clone(),
            offset: self.offset + start as i64 * self.strides[axis],
        })
    }

    /// NumPy-style broadcast: axes are aligned from the right; new leading axes and
    /// extent-1 axes that grow get stride 0.
    pub fn broadcast(&self, shape: &[usize]) -> Option<StridedView> {
        let rank = self.shape.len();
        if shape.len() < rank {
            return None;
        }
        let lead = shape.len() - rank;
        let mut strides = vec![0i64; shape.len()];
        for (i, &t) in shape.iter().enumerate().skip(lead) {
            let (d, s) = (self.shape[i - lead], self.strides[i - lead]);
            strides[i] = if d == t {
                s
            } else if d == 1 {
                0
            } else {
                return None;
            };
        }
        Some(StridedView {
            node: self.node,
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Axis permutation: output axis `i` is axis `perm[i]` of this view.
    pub fn permute(&self, perm: &[usize]) -> Option<StridedView> {
        let rank = self.shape.len();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || !perm
                .iter()
                .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true))
        {
            return None;
        }
        Some(StridedView {
            node: self.node,
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }

    /// Reshape without copying (torch's `view` rule): expressible when every new axis
    /// lies within one run of axes laid out like one contiguous chunk
    /// (`stride[i] == stride[i+1] * shape[i+1]`); a new axis may not straddle two chunks.
    pub fn reshape(&self, shape: &[usize]) -> Option<StridedView> {
        FactoredView::from(self).reshape(shape)?.to_strided()
    }
}

/// The view an `iota` leaf of `shape` counting along `axis` starts from: element offset
/// `idx[axis]` (stride 1 along `axis`, 0 elsewhere). Movement ops apply to it as to a
/// buffer view; the value at an index is the resulting view's element offset.
pub fn iota_view(node: NodeId, shape: &[usize], axis: usize) -> FactoredView {
    FactoredView::from(&StridedView {
        node,
        shape: shape.to_vec(),
        strides: (0..shape.len()).map(|a| i64::from(a == axis)).collect(),
        offset: 0,
    })
}

/// One digit of a factored axis: `(extent, stride)`.
pub type Digit = (usize, i64);

/// A view of a materialized buffer whose axes are mixed-radix numbers.
///
/// Axis `a` of extent `shape[a]` is the number written with the digits `digits[a]`
/// (outermost first): index `i` has digit values `i_0 .. i_k` with
/// `i = (..(i_0 * e_1 + i_1) * e_2 ..) + i_k`, and reads element
/// `offset + sum_a sum_j i_j * stride_j`. Digits of extent 1 are left out, except that an
/// axis of extent 1 may keep one `(1, stride)` digit recording the stride it had (it never
/// moves the offset; it only keeps strided forms stable); neighbouring digits laid out
/// alike are merged by [`Self::reshape`]; a view with no elements has one digit per axis
/// (nothing is ever addressed). A view with at most one digit per axis is a
/// [`StridedView`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FactoredView {
    /// The materialized node whose buffer is read.
    pub node: NodeId,
    /// Logical shape of the view.
    pub shape: Vec<usize>,
    /// Per axis, its digits, outermost first.
    pub digits: Vec<Vec<Digit>>,
    /// Element offset of index `(0, .., 0)`.
    pub offset: i64,
}

impl From<&StridedView> for FactoredView {
    fn from(v: &StridedView) -> FactoredView {
        FactoredView {
            node: v.node,
            shape: v.shape.clone(),
            digits: v
                .shape
                .iter()
                .zip(&v.strides)
                .map(|(&d, &s)| vec![(d, s)])
                .collect(),
            offset: v.offset,
        }
        .normalized()
    }
}

impl FactoredView {
    /// The whole buffer of `node`, a dense row-major tensor of `shape`.
    pub fn contiguous(node: NodeId, shape: &[usize]) -> FactoredView {
        FactoredView::from(&StridedView::contiguous(node, shape))
    }

    /// Number of elements of the view.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// An empty view gets one digit per axis of extent > 1 (its strides never matter).
    fn normalized(mut self) -> FactoredView {
        if self.numel() == 0 {
            self.digits = self
                .shape
                .iter()
                .map(|&d| if d == 1 { vec![] } else { vec![(d, 0)] })
                .collect();
        }
        self
    }

    /// True when every axis has at most one digit (the view is strided).
    pub fn is_strided(&self) -> bool {
        self.digits.iter().all(|d| d.len() <= 1)
    }

    /// The strided form, when every axis has at most one digit.
    pub fn to_strided(&self) -> Option<StridedView> {
        let pieces: Vec<Vec<usize>> = self.shape.iter().map(|&d| vec![d]).collect();
        self.refine(&pieces)
    }

    /// Element offset of a logical index (one entry per axis).
    pub fn element_offset(&self, index: &[usize]) -> i64 {
        let mut off = self.offset;
        for (&i, ds) in index.iter().zip(&self.digits) {
            let mut rest = i;
            for &(e, s) in ds.iter().rev() {
                if e == 0 {
                    continue;
                }
                off += (rest % e) as i64 * s;
                rest /= e;
            }
        }
        off
    }

    /// Applies a movement op; `None` when the op does not fit the view's shape or the
    /// reshape cuts a digit at a non-divisible place.
    pub fn apply(&self, op: &ViewOp) -> Option<FactoredView> {
        match op {
            ViewOp::Broadcast(shape) => self.broadcast(shape),
            ViewOp::Reshape(shape) => self.reshape(shape),
            ViewOp::Permute(perm) => self.permute(perm),
            ViewOp::Slice { axis, start, len } => self.slice(*axis, *start, *len),
        }
    }

    /// `[.., start..start + len, ..]` along `axis`. An axis of one digit keeps its
    /// stride and moves the offset. An axis of several digits `e_0 .. e_k` (a merge of
    /// axes a permute or a broadcast separated) is sliced digit-wise: a range aligned to
    /// the inner digits' product slices the outer digits (recursively), and a range within
    /// one value of the outer digits becomes a range of the innermost digit. Any other
    /// range is not affine in any iteration order that the rest of the view allows
    /// (`None`: the scheduler materializes the slice's input, which any slice then views
    /// with plain strides). `None` also when the range does not fit the axis.
    pub fn slice(&self, axis: usize, start: usize, len: usize) -> Option<FactoredView> {
        let &d = self.shape.get(axis)?;
        if start.checked_add(len)? > d {
            return None;
        }
        let mut out = self.clone();
        out.shape[axis] = len;
        if len == 0 {
            return Some(out.normalized());
        }
        if len == d {
            return Some(out);
        }
        let (digits, offset) = slice_digits(&self.digits[axis], start, len)?;
        out.digits[axis] = digits.into_iter().filter(|&(e, _)| e != 1).collect();
        out.offset += offset;
        Some(out)
    }

    /// NumPy-style broadcast: axes are aligned from the right; new leading axes and
    /// extent-1 axes that grow get one stride-0 digit.
    pub fn broadcast(&self, shape: &[usize]) -> Option<FactoredView> {
        let rank = self.shape.len();
        if shape.len() < rank {
            return None;
        }
        let lead = shape.len() - rank;
        let mut digits = Vec::with_capacity(shape.len());
        for (i, &t) in shape.iter().enumerate() {
            let kept = i
                .checked_sub(lead)
                .map(|j| (self.shape[j], &self.digits[j]));
            digits.push(match kept {
                Some((d, ds)) if d == t => ds.clone(),
                Some((d, _)) if d != 1 => return None,
                _ => vec![(t, 0)],
            });
        }
        Some(
            FactoredView {
                node: self.node,
                shape: shape.to_vec(),
                digits,
                offset: self.offset,
            }
            .normalized(),
        )
    }

    /// Axis permutation: output axis `i` is axis `perm[i]` of this view.
    pub fn permute(&self, perm: &[usize]) -> Option<FactoredView> {
        let rank = self.shape.len();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || !perm
                .iter()
                .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true))
        {
            return None;
        }
        Some(FactoredView {
            node: self.node,
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            digits: perm.iter().map(|&p| self.digits[p].clone()).collect(),
            offset: self.offset,
        })
    }

    /// Same elements in row-major order, new shape. The digits of all axes, in order,
    /// form one mixed-radix number; neighbours with `stride_outer == stride_inner *
    /// extent_inner` merge; the new axes take digits from the innermost, cutting a digit
    /// `(e, s)` into `(e / f, s * f), (f, s)` where a new axis boundary falls inside it.
    /// `None` when the element counts differ or a boundary cuts a digit at a factor `f`
    /// that does not divide `e`.
    pub fn reshape(&self, shape: &[usize]) -> Option<FactoredView> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return None;
        }
        let mut out = FactoredView {
            node: self.node,
            shape: shape.to_vec(),
            digits: vec![Vec::new(); shape.len()],
            offset: self.offset,
        };
        if numel == 0 {
            return Some(out.normalized());
        }
        let mut pool: Vec<Digit> = Vec::new();
        for &(e, s) in self.digits.iter().flatten().filter(|d| d.0 != 1) {
            match pool.last_mut() {
                Some(last) if last.1 == s * e as i64 => *last = (last.0 * e, s),
                _ => pool.push((e, s)),
            }
        }
        for a in (0..shape.len()).rev() {
            let mut rem = shape[a];
            let mut ds = Vec::new();
            while rem > 1 {
                let (e, s) = pool.pop()?;
                if rem.is_multiple_of(e) {
                    ds.push((e, s));
                    rem /= e;
                } else if e.is_multiple_of(rem) {
                    ds.push((rem, s));
                    pool.push((e / rem, s * rem as i64));
                    rem = 1;
                } else {
                    return None;
                }
            }
            ds.reverse();
            out.digits[a] = ds;
        }
        pool.is_empty().then_some(out)
    }

    /// The strided view over a refinement of the index space: axis `a` is split into
    /// the axes `pieces[a]` (outermost first, multiplying to `shape[a]`), and the result
    /// has the concatenated shape. `None` when a piece straddles two digits or does not
    /// divide its digit. Extent-1 and extent-0 axes (which never move the offset) get
    /// the stride of the next inner axis times its extent (1 for trailing ones).
    pub fn refine(&self, pieces: &[Vec<usize>]) -> Option<StridedView> {
        if pieces.len() != self.shape.len() {
            return None;
        }
        let mut shape = Vec::new();
        let mut strides = Vec::new();
        for ((p, &d), ds) in pieces.iter().zip(&self.shape).zip(&self.digits) {
            if p.iter().product::<usize>() != d {
                return None;
            }
            // Pieces of extent 0 or 1 get their stride below.
            let mut st = vec![0i64; p.len()];
            if d > 1 {
                let mut digits = ds.clone();
                let mut q = 1usize;
                for (i, &f) in p.iter().enumerate().rev() {
                    if f == 1 {
                        continue;
                    }
                    let &(e, s) = digits.last()?;
                    if !e.is_multiple_of(q * f) {
                        return None;
                    }
                    st[i] = s * q as i64;
                    q *= f;
                    if q == e {
                        digits.pop();
                        q = 1;
                    }
                }
                if !digits.is_empty() || q != 1 {
                    return None;
                }
            }
            shape.extend_from_slice(p);
            strides.extend(st);
        }
        // Extent-1 axes never move the offset (an extent-0 axis has no element to
        // reach); give them the stride a contiguous layout would (the next inner axis'
        // stride times its extent), whatever stride a permute left them, so that
        // contiguous views keep their contiguous strides and a matrix with one row or
        // column is contiguous along it (`[1, 2, 4]` permuted `[2, 1, 0]` reads its
        // `[2, 1]` matrices with strides `[4, 1]`, not `[4, 8]`).
        let mut next = 1i64;
        let strides = shape
            .iter()
            .zip(strides)
            .rev()
            .map(|(&d, st)| {
                let st = if d <= 1 { next } else { st };
                next = st * d.max(1) as i64;
                st
            })
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Some(StridedView {
            node: self.node,
            shape,
            strides,
            offset: self.offset,
        })
    }
}

/// The digits (outermost first) of the indices `start..start + len` of a mixed-radix
/// axis with digits `ds`, and the offset of index `start`; `None` when that range is not
/// one mixed-radix number of (sub-)digits (see [`FactoredView::slice`]).
fn slice_digits(ds: &[Digit], start: usize, len: usize) -> Option<(Vec<Digit>, i64)> {
    let total: usize = ds.iter().map(|d| d.0).product();
    if start == 0 && len == total {
        return Some((ds.to_vec(), 0));
    }
    let (&(e, s), rest) = ds.split_last()?;
    if rest.is_empty() {
        return Some((vec![(len, s)], start as i64 * s));
    }
    if start.is_multiple_of(e) && len.is_multiple_of(e) {
        let (mut outer, off) = slice_digits(rest, start / e, len / e)?;
        outer.push((e, s));
        return Some((outer, off));
    }
    if start / e == (start + len - 1) / e {
        // Within one value of the outer digits: their offset, then a range of this one.
        let (_, off) = slice_digits(rest, start / e, 1)?;
        return Some((vec![(len, s)], off + (start % e) as i64 * s));
    }
    None
}

/// A refinement of an index space: each axis split into sub-axes so that every view
/// admitted into it is strided over the refined space.
///
/// A view whose axis has digits `e_0 .. e_k` needs *cuts* of that axis at the inner
/// products `e_k`, `e_k * e_(k-1)`, ..; the refinement keeps the union of the cuts of every
/// admitted view and splits the axis at them. A union is valid when each cut divides the
/// next (a mixed radix); a view whose cuts would break that (say `6 = 2 x 3` against
/// `6 = 3 x 2`) is refused, as is one that needs a *fixed* axis split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refinement {
    extents: Vec<usize>,
    fixed: Vec<bool>,
    cuts: Vec<Vec<usize>>,
}

impl Refinement {
    /// No cuts yet over an index space of `extents`.
    pub fn new(extents: &[usize]) -> Refinement {
        Refinement {
            extents: extents.to_vec(),
            fixed: vec![false; extents.len()],
            cuts: vec![Vec::new(); extents.len()],
        }
    }

    /// Forbids splitting `axis` (a reduced axis, a matmul tile axis).
    pub fn fix(&mut self, axis: usize) {
        self.fixed[axis] = true;
    }

    /// Adds the cuts `view` needs, where view axis `a` is iterated as axis `map[a]` of
    /// the space (`None`: an axis of extent 1 outside the space). Returns false, changing
    /// nothing, when the view cannot be strided over any refinement compatible with the
    /// views admitted so far.
    pub fn admit(&mut self, view: &FactoredView, map: &[Option<usize>]) -> bool {
        let mut next = self.cuts.clone();
        for (a, ds) in view.digits.iter().enumerate() {
            if ds.len() <= 1 {
                continue;
            }
            let Some(g) = map.get(a).copied().flatten() else {
                return false;
            };
            if self.fixed[g] || self.extents[g] != view.shape[a] {
                return false;
            }
            let mut p = 1usize;
            for &(e, _) in ds.iter().skip(1).rev() {
                p *= e;
                if let Err(i) = next[g].binary_search(&p) {
                    next[g].insert(i, p);
                }
            }
            let mut prev = 1usize;
            for &c in next[g].iter().chain(std::iter::once(&self.extents[g])) {
                if !c.is_multiple_of(prev) {
                    return false;
                }
                prev = c;
            }
        }
        self.cuts = next;
        true
    }

    /// The sub-axes of `axis`, outermost first (one piece, the extent, when uncut).
    pub fn pieces(&self, axis: usize) -> Vec<usize> {
        let d = self.extents[axis];
        let mut out = Vec::new();
        let mut prev = 1usize;
        for &c in self.cuts[axis].iter().chain(std::iter::once(&d)) {
            out.push(c / prev);
            prev = c;
        }
        out.reverse();
        out
    }

    /// Pieces for each axis of a view iterated through `map` (unmapped axes: whole).
    pub fn view_pieces(&self, shape: &[usize], map: &[Option<usize>]) -> Vec<Vec<usize>> {
        shape
            .iter()
            .enumerate()
            .map(|(a, &d)| match map.get(a).copied().flatten() {
                Some(g) => self.pieces(g),
                None => vec![d],
            })
            .collect()
    }

    /// The refined shape of the whole space.
    pub fn shape(&self) -> Vec<usize> {
        (0..self.extents.len())
            .flat_map(|a| self.pieces(a))
            .collect()
    }

    /// Index of the first sub-axis of `axis` in [`Self::shape`].
    pub fn first_piece(&self, axis: usize) -> usize {
        (0..axis).map(|a| self.pieces(a).len()).sum()
    }
}

/// How a refinement `refined` of `shape` groups its axes: for each axis of `shape`, the
/// range of `refined` axes it was split into (an axis of extent 0 or 1 is one axis of the
/// same extent, a larger axis is split into axes of extent > 1, as [`Refinement`] does).
/// `None` when `refined` is not such a refinement.
pub fn piece_groups(shape: &[usize], refined: &[usize]) -> Option<Vec<std::ops::Range<usize>>> {
    let mut out = Vec::with_capacity(shape.len());
    let mut j = 0;
    for &d in shape {
        let start = j;
        if d <= 1 {
            if refined.get(j) != Some(&d) {
                return None;
            }
            j += 1;
        } else {
            let mut p = 1usize;
            while p < d {
                let f = *refined.get(j)?;
                if f <= 1 {
                    return None;
                }
                p = p.checked_mul(f)?;
                j += 1;
            }
            if p != d {
                return None;
            }
        }
        out.push(start..j);
    }
    (j == refined.len()).then_some(out)
}

/// The *store view* of a value written through a chain of bijective movement ops.
///
/// For `v = op_k(..op_1(s))` where every op is a permute or a reshape, returns the view
/// of `v`'s dense row-major buffer (node `v_node`, shape `v_shape`) in `s`'s index space:
/// storing `s[j]` at that view's offset of `j` lays out `v` contiguously. `chain` lists the
/// ops outermost first (`op_k` first), each with the shape of its input. `None` when an op
/// is a broadcast or a slice (not bijections) or a reshape of the inverse cuts a digit at
/// a non-divisible place. The view may need a refinement of `s`'s axes to be strided.
pub fn store_view(
    v_node: NodeId,
    v_shape: &[usize],
    chain: &[(ViewOp, Vec<usize>)],
) -> Option<FactoredView> {
    let mut view = FactoredView::contiguous(v_node, v_shape);
    for (op, input_shape) in chain {
        view = match op {
            ViewOp::Broadcast(_) | ViewOp::Slice { .. } => return None,
            ViewOp::Reshape(_) => view.reshape(input_shape)?,
            ViewOp::Permute(perm) => {
                let mut inv = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    *inv.get_mut(p)? = i;
                }
                view.permute(&inv)?
            }
        };
        if view.shape != *input_shape {
            return None;
        }
    }
    Some(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(shape: &[usize]) -> StridedView {
        StridedView::contiguous(NodeId(0), shape)
    }

    /// Every logical index of a view, row-major.
    fn offsets(view: &StridedView) -> Vec<i64> {
        let n = view.numel();
        let mut out = Vec::with_capacity(n);
        let mut idx = vec![0usize; view.shape.len()];
        for _ in 0..n {
            out.push(view.element_offset(&idx));
            for a in (0..idx.len()).rev() {
                idx[a] += 1;
                if idx[a] < view.shape[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        out
    }

    #[test]
    fn contiguous_reshape_keeps_order() {
        let r = v(&[2, 3, 4]).reshape(&[6, 4]).expect("expressible");
        assert_eq!(r.strides, vec![4, 1]);
        assert_eq!(offsets(&r), (0..24).collect::<Vec<_>>());
        let r = v(&[2, 3, 4]).reshape(&[1, 24, 1]).expect("expressible");
        assert_eq!(offsets(&r), (0..24).collect::<Vec<_>>());
    }

    #[test]
    fn permuted_reshape_rules() {
        // [2,3,4] permuted to [4,2,3]: merging the last two axes is fine (they stay one
        // chunk), merging the first two is not.
        let p = v(&[2, 3, 4]).permute(&[2, 0, 1]).expect("valid");
        let ok = p.reshape(&[4, 6]).expect("merge of one chunk");
        assert_eq!(ok.strides, vec![1, 4]);
        assert_eq!(offsets(&ok), offsets(&p));
        assert!(p.reshape(&[8, 3]).is_none());
        assert!(v(&[3, 5])
            .permute(&[1, 0])
            .unwrap()
            .reshape(&[15])
            .is_none());
        // Splitting a permuted axis is fine.
        let s = v(&[6, 5])
            .permute(&[1, 0])
            .unwrap()
            .reshape(&[5, 2, 3])
            .unwrap();
        assert_eq!(s.strides, vec![1, 15, 5]);
    }

    #[test]
    fn extent_one_axes_take_contiguous_strides() {
        // [1, 2, 4] permuted [2, 1, 0]: the extent-1 axis, last now, would keep stride 8;
        // it never moves the offset, so it reads as stride 1 (a matmul operand whose
        // matrices are [2, 1] then has a unit-stride axis, which Ascend's cube needs).
        let f = FactoredView::contiguous(NodeId(0), &[1, 2, 4])
            .permute(&[2, 1, 0])
            .expect("valid");
        let s = f.to_strided().expect("strided");
        assert_eq!(s.shape, vec![4, 2, 1]);
        assert_eq!(s.strides, vec![1, 4, 1]);
        assert_eq!(
            offsets(&s),
            offsets(&v(&[1, 2, 4]).permute(&[2, 1, 0]).unwrap())
        );
    }

    #[test]
    fn broadcast_strides() {
        let b = v(&[3, 1]).broadcast(&[2, 3, 4]).expect("valid");
        assert_eq!(b.strides, vec![0, 1, 0]);
        assert!(v(&[3, 2]).broadcast(&[3, 4]).is_none());
        // A broadcast row is not mergeable with a real axis.
        assert!(b.reshape(&[24]).is_none());
        assert!(b.reshape(&[6, 4]).is_none());
    }

    #[test]
    fn store_views_invert_bijective_chains() {
        // v = reshape(permute(s, [1, 0]), [6]) for s: [2, 3].
        let chain = vec![
            (ViewOp::Reshape(vec![6]), vec![3, 2]),
            (ViewOp::Permute(vec![1, 0]), vec![2, 3]),
        ];
        let sv = store_view(NodeId(1), &[6], &chain)
            .expect("expressible")
            .to_strided()
            .expect("strided");
        assert_eq!(sv.shape, vec![2, 3]);
        // s[i][j] = v[j * 2 + i].
        assert_eq!(sv.strides, vec![1, 2]);
        let b = vec![(ViewOp::Broadcast(vec![2, 3]), vec![1, 3])];
        assert!(store_view(NodeId(1), &[2, 3], &b).is_none());
    }

    #[test]
    fn slices_move_offsets_and_cut_digits() {
        // A strided slice: offset by start strides.
        let s = v(&[4, 5]).slice(1, 2, 3).unwrap();
        assert_eq!(
            (s.shape.clone(), s.strides.clone(), s.offset),
            (vec![4, 3], vec![5, 1], 2)
        );
        assert_eq!(offsets(&s), vec![2, 3, 4, 7, 8, 9, 12, 13, 14, 17, 18, 19]);
        assert!(v(&[4, 5]).slice(1, 3, 3).is_none());
        // A merged axis [3, 2] -> permute -> [2, 3] -> [6]: digits (3, 1), (2, 3).
        let m = FactoredView::from(&v(&[2, 3]))
            .permute(&[1, 0])
            .unwrap()
            .reshape(&[6])
            .unwrap();
        // Aligned to the inner digit: slices the outer one.
        let a = m.slice(0, 2, 4).unwrap();
        assert_eq!(
            (a.digits.clone(), a.offset),
            (vec![vec![(2, 1), (2, 3)]], 1)
        );
        // Within one outer value: a range of the inner digit.
        let b = m.slice(0, 4, 2).unwrap();
        assert_eq!((b.digits.clone(), b.offset), (vec![vec![(2, 3)]], 2));
        let c = m.slice(0, 3, 1).unwrap();
        assert_eq!(
            (c.digits.clone(), c.offset, c.shape.clone()),
            (vec![vec![]], 4, vec![1])
        );
        // Straddling two outer values at an odd place: refused.
        assert!(m.slice(0, 1, 2).is_none());
        // Empty slices have nothing to address.
        assert_eq!(m.slice(0, 6, 0).unwrap().numel(), 0);
    }

    #[test]
    fn iota_views_count_along_their_axis() {
        let i = iota_view(NodeId(3), &[2, 3], 1);
        let s = i.to_strided().unwrap();
        assert_eq!(offsets(&s), vec![0, 1, 2, 0, 1, 2]);
        let t = i.permute(&[1, 0]).unwrap().slice(0, 1, 2).unwrap();
        assert_eq!(offsets(&t.to_strided().unwrap()), vec![1, 1, 2, 2]);
        // [3, 2] counting along axis 0 read as [2, 3]: [[0, 0, 1], [1, 2, 2]] is not
        // affine in any order (the scheduler gives such an iota a buffer).
        assert!(iota_view(NodeId(3), &[3, 2], 0).reshape(&[2, 3]).is_none());
    }

    #[test]
    fn contiguity() {
        assert!(v(&[2, 3]).is_contiguous());
        assert!(!v(&[2, 3]).permute(&[1, 0]).unwrap().is_contiguous());
        assert!(v(&[1, 3]).permute(&[1, 0]).unwrap().is_contiguous());
    }

    /// Brute-force model of a view: its shape and the buffer offset of every element in
    /// row-major order.
    #[derive(Clone, Debug)]
    struct Model {
        shape: Vec<usize>,
        offsets: Vec<i64>,
    }

    fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
        let mut idx = vec![0; shape.len()];
        for a in (0..shape.len()).rev() {
            idx[a] = i % shape[a];
            i /= shape[a];
        }
        idx
    }

    fn ravel(idx: &[usize], shape: &[usize]) -> usize {
        idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
    }

    impl Model {
        fn apply(&self, op: &ViewOp) -> Model {
            match op {
                ViewOp::Reshape(s) => Model {
                    shape: s.clone(),
                    offsets: self.offsets.clone(),
                },
                ViewOp::Permute(perm) => {
                    let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
                    let n: usize = shape.iter().product();
                    let offsets = (0..n)
                        .map(|i| {
                            let idx = unravel(i, &shape);
                            let mut src = vec![0; perm.len()];
                            for (k, &p) in perm.iter().enumerate() {
                                src[p] = idx[k];
                            }
                            self.offsets[ravel(&src, &self.shape)]
                        })
                        .collect();
                    Model { shape, offsets }
                }
                ViewOp::Broadcast(shape) => {
                    let lead = shape.len() - self.shape.len();
                    let n: usize = shape.iter().product();
                    let offsets = (0..n)
                        .map(|i| {
                            let idx = unravel(i, shape);
                            let src: Vec<usize> = (0..self.shape.len())
                                .map(|a| if self.shape[a] == 1 { 0 } else { idx[a + lead] })
                                .collect();
                            self.offsets[ravel(&src, &self.shape)]
                        })
                        .collect();
                    Model {
                        shape: shape.clone(),
                        offsets,
                    }
                }
                ViewOp::Slice { axis, start, len } => {
                    let mut shape = self.shape.clone();
                    shape[*axis] = *len;
                    let n: usize = shape.iter().product();
                    let offsets = (0..n)
                        .map(|i| {
                            let mut idx = unravel(i, &shape);
                            idx[*axis] += start;
                            self.offsets[ravel(&idx, &self.shape)]
                        })
                        .collect();
                    Model { shape, offsets }
                }
            }
        }
    }

    /// splitmix64.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) % n as u64) as usize
        }
    }

    /// A random movement op valid for `shape`.
    fn random_op(r: &mut Rng, shape: &[usize]) -> ViewOp {
        let rank = shape.len();
        match r.below(4) {
            3 if rank >= 1 => {
                let axis = r.below(rank);
                let d = shape[axis];
                let len = 1 + r.below(d);
                let start = r.below(d - len + 1);
                ViewOp::Slice { axis, start, len }
            }
            0 if rank >= 2 => {
                let mut perm: Vec<usize> = (0..rank).collect();
                for i in (1..rank).rev() {
                    perm.swap(i, r.below(i + 1));
                }
                ViewOp::Permute(perm)
            }
            1 if rank < 4 => {
                let mut s: Vec<usize> = shape
                    .iter()
                    .map(|&d| if d == 1 { 1 + r.below(3) } else { d })
                    .collect();
                if r.below(2) == 0 {
                    s.insert(0, 1 + r.below(3));
                }
                ViewOp::Broadcast(s)
            }
            _ => {
                // Merge a run of axes, or split an axis into two factors.
                let mut s = shape.to_vec();
                if rank >= 2 && r.below(2) == 0 {
                    let i = r.below(rank - 1);
                    let len = 2 + r.below(rank - i - 1);
                    let m: usize = s[i..i + len].iter().product();
                    s.splice(i..i + len, [m]);
                } else if rank > 0 && rank < 5 {
                    let i = r.below(rank);
                    let d = s[i];
                    let fs: Vec<usize> = (1..=d).filter(|&f| d.is_multiple_of(f)).collect();
                    let f = fs[r.below(fs.len())];
                    s.splice(i..i + 1, [f, d / f]);
                }
                ViewOp::Reshape(s)
            }
        }
    }

    /// Distinct orderings of the prime factors of `d` (each a refinement of an axis of
    /// extent `d` into prime pieces, outermost first).
    fn prime_orderings(d: usize) -> Vec<Vec<usize>> {
        let mut primes = Vec::new();
        let (mut n, mut p) = (d, 2);
        while n > 1 {
            while n.is_multiple_of(p) {
                primes.push(p);
                n /= p;
            }
            p += 1;
        }
        fn rec(rest: &mut Vec<usize>, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if rest.is_empty() {
                out.push(cur.clone());
                return;
            }
            let mut tried = Vec::new();
            for i in 0..rest.len() {
                if tried.contains(&rest[i]) {
                    continue;
                }
                tried.push(rest[i]);
                let x = rest.remove(i);
                cur.push(x);
                rec(rest, cur, out);
                cur.pop();
                rest.insert(i, x);
            }
        }
        let mut out = Vec::new();
        rec(&mut primes, &mut Vec::new(), &mut out);
        out
    }

    /// Whether a model's offsets are affine over some refinement of its axes: if any
    /// refinement works, one into prime pieces does (splitting a strided axis keeps it
    /// strided), so every ordering of every axis' prime factors is tried.
    fn affine_in_some_refinement(m: &Model) -> bool {
        let per_axis: Vec<Vec<Vec<usize>>> = m.shape.iter().map(|&d| prime_orderings(d)).collect();
        let total: usize = per_axis.iter().map(Vec::len).product();
        assert!(
            total <= 20_000,
            "too many refinements to enumerate: {total}"
        );
        for k in 0..total {
            let mut rest = k;
            let mut shape = Vec::new();
            for choices in &per_axis {
                shape.extend(&choices[rest % choices.len()]);
                rest /= choices.len();
            }
            let base = m.offsets[0];
            let strides: Vec<i64> = (0..shape.len())
                .map(|a| {
                    let mut idx = vec![0; shape.len()];
                    idx[a] = 1;
                    m.offsets[ravel(&idx, &shape)] - base
                })
                .collect();
            let affine = m.offsets.iter().enumerate().all(|(i, &o)| {
                let idx = unravel(i, &shape);
                o == base
                    + idx
                        .iter()
                        .zip(&strides)
                        .map(|(&x, &s)| x as i64 * s)
                        .sum::<i64>()
            });
            if affine {
                return true;
            }
        }
        false
    }

    /// Offsets of a strided view in row-major order.
    fn strided_offsets(v: &StridedView) -> Vec<i64> {
        offsets(v)
    }

    #[test]
    fn factored_views_match_brute_force_and_refine_to_strides() {
        let dims = [1usize, 2, 3, 4, 6];
        let (mut refused, mut multi) = (0, 0);
        let (mut sliced_multi, mut sliced_refused) = (0, 0);
        for seed in 0..6000u64 {
            let mut r = Rng(seed);
            let rank = 1 + r.below(3);
            let shape: Vec<usize> = (0..rank).map(|_| dims[r.below(dims.len())]).collect();
            let n: usize = shape.iter().product();
            let mut model = Model {
                shape: shape.clone(),
                offsets: (0..n as i64).collect(),
            };
            let mut fv = FactoredView::contiguous(NodeId(0), &shape);
            let mut sv = Some(StridedView::contiguous(NodeId(0), &shape));
            for _ in 0..1 + r.below(5) {
                let op = random_op(&mut r, &model.shape);
                let next = model.apply(&op);
                sv = sv.and_then(|v| v.apply(&op));
                match fv.apply(&op) {
                    Some(f) => {
                        if let ViewOp::Slice { axis, len, .. } = op {
                            if fv.digits[axis].len() >= 2 && len < fv.shape[axis] {
                                sliced_multi += 1;
                            }
                        }
                        fv = f
                    }
                    None if matches!(op, ViewOp::Slice { .. }) => {
                        // Only a slice of a merged axis at a place its digits do not
                        // allow is refused; the scheduler materializes the slice's input.
                        let ViewOp::Slice { axis, .. } = op else {
                            unreachable!()
                        };
                        assert!(fv.digits[axis].len() >= 2, "seed {seed}: {op:?} of {fv:?}");
                        sliced_refused += 1;
                        fv = FactoredView::contiguous(NodeId(0), &next.shape);
                        sv = Some(StridedView::contiguous(NodeId(0), &next.shape));
                        model = Model {
                            shape: next.shape.clone(),
                            offsets: (0..next.offsets.len() as i64).collect(),
                        };
                        continue;
                    }
                    None => {
                        refused += 1;
                        assert!(
                            !affine_in_some_refinement(&next),
                            "seed {seed}: {op:?} refused but {next:?} is affine"
                        );
                        // The model is not affine in any refinement: the scheduler
                        // materializes here. Restart from a contiguous buffer.
                        assert!(matches!(op, ViewOp::Reshape(_)), "{op:?} refused");
                        fv = FactoredView::contiguous(NodeId(0), &next.shape);
                        sv = Some(StridedView::contiguous(NodeId(0), &next.shape));
                        model = Model {
                            shape: next.shape.clone(),
                            offsets: (0..next.offsets.len() as i64).collect(),
                        };
                        continue;
                    }
                }
                model = next;
                assert_eq!(fv.shape, model.shape, "seed {seed}");
                // Exact addressing.
                for (i, &want) in model.offsets.iter().enumerate() {
                    let idx = unravel(i, &model.shape);
                    assert_eq!(fv.element_offset(&idx), want, "seed {seed} {fv:?}");
                }
                // Strided exactly when the torch view rule (or a broadcast) allows it.
                if let Some(s) = &sv {
                    assert!(fv.is_strided(), "seed {seed}: {s:?} vs {fv:?}");
                    assert_eq!(strided_offsets(s), model.offsets, "seed {seed}");
                }
                if !fv.is_strided() {
                    multi += 1;
                }
                // Over its own refinement, the view is strided and reads the same
                // elements in the same (row-major) order.
                let mut refinement = Refinement::new(&fv.shape);
                let map: Vec<Option<usize>> = (0..fv.shape.len()).map(Some).collect();
                assert!(refinement.admit(&fv, &map), "seed {seed}");
                let rv = fv
                    .refine(&refinement.view_pieces(&fv.shape, &map))
                    .expect("refinable");
                assert_eq!(rv.shape, refinement.shape());
                assert_eq!(strided_offsets(&rv), model.offsets, "seed {seed}");
            }
        }
        // The generator exercises both outcomes.
        assert!(
            refused > 5 && multi > 200 && sliced_multi > 5 && sliced_refused > 5,
            "refused {refused}, multi {multi}, slices of merged axes {sliced_multi} \
             (refused {sliced_refused})"
        );
    }

    #[test]
    fn piece_groups_recover_refinements() {
        assert_eq!(
            piece_groups(&[6, 1, 5], &[2, 3, 1, 5]),
            Some(vec![0..2, 2..3, 3..4])
        );
        assert_eq!(piece_groups(&[0, 4], &[0, 2, 2]), Some(vec![0..1, 1..3]));
        assert_eq!(piece_groups(&[6], &[4]), None);
        assert_eq!(piece_groups(&[6], &[2, 3, 1]), None);
        assert_eq!(piece_groups(&[1, 6], &[6]), None);
        let mut r = Refinement::new(&[12, 1, 7]);
        let f = FactoredView::from(&v(&[4, 3, 7]))
            .permute(&[1, 0, 2])
            .unwrap()
            .reshape(&[12, 1, 7])
            .unwrap();
        assert!(r.admit(&f, &[Some(0), Some(1), Some(2)]));
        assert_eq!(
            piece_groups(&[12, 1, 7], &r.shape()),
            Some(vec![0..2, 2..3, 3..4])
        );
    }

    #[test]
    fn refinements_merge_cuts_or_refuse() {
        // [A, B] permuted and merged: cut at A. [B, A] permuted and merged: cut at B.
        let a = v(&[2, 3]).permute(&[1, 0]).unwrap();
        let fa = FactoredView::from(&v(&[2, 3])).permute(&[1, 0]).unwrap();
        assert_eq!(a.shape, fa.shape);
        let fa = fa.reshape(&[6]).unwrap();
        assert_eq!(fa.digits, vec![vec![(3, 1), (2, 3)]]);
        let fb = FactoredView::from(&v(&[3, 2]))
            .permute(&[1, 0])
            .unwrap()
            .reshape(&[6])
            .unwrap();
        let mut r = Refinement::new(&[6]);
        assert!(r.admit(&fa, &[Some(0)]));
        assert_eq!(r.pieces(0), vec![3, 2]);
        // 6 = 3 x 2 and 6 = 2 x 3 have no common refinement.
        assert!(!r.admit(&fb, &[Some(0)]));
        assert_eq!(r.pieces(0), vec![3, 2], "a refused view changes nothing");
        // Cuts 2 and 4 of 12 chain (2 | 4 | 12): pieces [3, 2, 2].
        let mut r = Refinement::new(&[12]);
        let f = |outer: usize, inner: usize| {
            FactoredView::from(&v(&[outer, inner]))
                .permute(&[1, 0])
                .unwrap()
                .reshape(&[outer * inner])
                .unwrap()
        };
        assert!(r.admit(&f(2, 6), &[Some(0)]));
        assert!(r.admit(&f(4, 3), &[Some(0)]));
        assert_eq!(r.pieces(0), vec![3, 2, 2]);
        let s = f(4, 3).refine(&[r.pieces(0)]).unwrap();
        assert_eq!(s.strides, vec![1, 6, 3]);
        // A fixed axis is never split; an unmapped axis must not need a split.
        let mut r = Refinement::new(&[6]);
        r.fix(0);
        assert!(!r.admit(&fa, &[Some(0)]));
        assert!(!Refinement::new(&[6]).admit(&fa, &[None]));
        // A reshape cutting a digit at a non-divisible place is refused.
        assert!(FactoredView::from(&v(&[2, 3]))
            .permute(&[1, 0])
            .unwrap()
            .reshape(&[2, 3])
            .is_none());
        // Broadcast then merge: the stride-0 digit stays a digit of its own.
        let b = FactoredView::from(&v(&[5]))
            .broadcast(&[3, 5])
            .unwrap()
            .permute(&[1, 0])
            .unwrap()
            .reshape(&[15])
            .unwrap();
        assert_eq!(b.digits, vec![vec![(5, 1), (3, 0)]]);
    }
}
