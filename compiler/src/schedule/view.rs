//! Strided views: how movement ops (broadcast, reshape, permute) are folded into indexing.
//!
//! A [`StridedView`] reads a materialized, dense row-major buffer through a shape, a
//! stride per axis (in elements; 0 broadcasts) and an element offset. Movement ops compose
//! on views without touching memory. A reshape follows torch's view rule: it is expressible
//! when every group of merged or split axes is laid out with compatible strides; when it is
//! not ([`StridedView::reshape`] returns `None`), the scheduler materializes the reshaped
//! value contiguously first.

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
}

impl ViewOp {
    /// The movement op of a graph op, or `None` when the op is not a view.
    pub fn of(op: &Op) -> Option<ViewOp> {
        match op {
            Op::Broadcast { shape } => Some(ViewOp::Broadcast(shape.clone())),
            Op::Reshape { shape } => Some(ViewOp::Reshape(shape.clone())),
            Op::Permute { perm } => Some(ViewOp::Permute(perm.clone())),
            _ => None,
        }
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
        }
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

    /// Reshape without copying (torch's `view` rule). Each maximal run of input axes that
    /// is laid out like one contiguous chunk (`stride[i] == stride[i+1] * shape[i+1]`) may
    /// be merged and re-split freely; a new axis may not straddle two chunks.
    pub fn reshape(&self, shape: &[usize]) -> Option<StridedView> {
        let numel: usize = shape.iter().product();
        if numel != self.numel() {
            return None;
        }
        let mut out = StridedView {
            node: self.node,
            shape: shape.to_vec(),
            strides: vec![0; shape.len()],
            offset: self.offset,
        };
        if numel == 0 {
            out.strides = contiguous_strides(shape)
                .iter()
                .map(|&s| s as i64)
                .collect();
            return Some(out);
        }
        // Extent-1 axes do not affect addressing: drop them from the source.
        let (old_shape, old_strides): (Vec<usize>, Vec<i64>) = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&d, _)| d != 1)
            .map(|(&d, &s)| (d, s))
            .unzip();
        if old_shape.is_empty() {
            // One element: every new axis has extent 1.
            return Some(out);
        }
        // Walk the source chunks from the innermost; assign new axes to each chunk.
        let mut view_d = shape.len() as isize - 1;
        let mut chunk_base_stride = *old_strides.last().expect("non-empty");
        let mut tensor_numel: usize = 1;
        let mut view_numel: usize = 1;
        for tensor_d in (0..old_shape.len()).rev() {
            tensor_numel *= old_shape[tensor_d];
            let chunk_ends = tensor_d == 0
                || old_strides[tensor_d - 1] != tensor_numel as i64 * chunk_base_stride;
            if chunk_ends {
                while view_d >= 0 && (view_numel < tensor_numel || shape[view_d as usize] == 1) {
                    out.strides[view_d as usize] = view_numel as i64 * chunk_base_stride;
                    view_numel *= shape[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if tensor_d > 0 {
                    chunk_base_stride = old_strides[tensor_d - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        // Remaining new axes can only be leading extent-1 axes.
        while view_d >= 0 {
            if shape[view_d as usize] != 1 {
                return None;
            }
            out.strides[view_d as usize] = 0;
            view_d -= 1;
        }
        Some(out)
    }
}

/// The *store view* of a value written through a chain of bijective movement ops.
///
/// For `v = op_k(..op_1(s))` where every op is a permute or a reshape, returns the view
/// of `v`'s dense row-major buffer (node `v_node`, shape `v_shape`) in `s`'s index space:
/// storing `s[j]` at that view's offset of `j` lays out `v` contiguously. `chain` lists the
/// ops outermost first (`op_k` first), each with the shape of its input. `None` when an op
/// is a broadcast (not a bijection) or the inverse is not expressible with strides.
pub fn store_view(
    v_node: NodeId,
    v_shape: &[usize],
    chain: &[(ViewOp, Vec<usize>)],
) -> Option<StridedView> {
    let mut view = StridedView::contiguous(v_node, v_shape);
    for (op, input_shape) in chain {
        view = match op {
            ViewOp::Broadcast(_) => return None,
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
        let sv = store_view(NodeId(1), &[6], &chain).expect("expressible");
        assert_eq!(sv.shape, vec![2, 3]);
        // s[i][j] = v[j * 2 + i].
        assert_eq!(sv.strides, vec![1, 2]);
        let b = vec![(ViewOp::Broadcast(vec![2, 3]), vec![1, 3])];
        assert!(store_view(NodeId(1), &[2, 3], &b).is_none());
    }

    #[test]
    fn contiguity() {
        assert!(v(&[2, 3]).is_contiguous());
        assert!(!v(&[2, 3]).permute(&[1, 0]).unwrap().is_contiguous());
        assert!(v(&[1, 3]).permute(&[1, 0]).unwrap().is_contiguous());
    }
}
