//! The scheduler's pre-pass over composite ops: the graph rewritten into the form whose
//! kernels the scheduler builds, with the composite each new node came from (for kernel
//! names).
//!
//! - The elementwise composites (GELU in both forms, SiLU, SwiGLU) are replaced by their
//!   decompositions ([`Graph::expand_composites_where`]): their primitive ops then fuse
//!   like any elementwise chain, into neighbouring elementwise kernels or into a matmul's
//!   epilogue. Kernels holding them are named after the composite (`gelu_3`,
//!   `matmul_bias_gelu_0`, `swiglu_5`).
//! - Mean cross-entropy ([`CompositeOp::CrossEntropy`]) becomes the per-token losses
//!   ([`CompositeOp::TokenCrossEntropy`], one row kernel: `cross_entropy_tokens_*`), the
//!   number of counted tokens (a reduction over the targets: `cross_entropy_count_*`) and
//!   the mean (the sum of the losses divided by `max(count, 1)`: `cross_entropy_mean_*`),
//!   three kernels. A token is counted when `0 <= t < V` and `t != ignore_index`, as the
//!   row kernel zeroes the others' losses; the count is computed in f32 from `t` as
//!   `clamp(t + 1, 0, 1) * clamp(V - t, 0, 1) [* min(|t - ignore_index|, 1)]` (the last
//!   factor only when `ignore_index` lies in `0..V`), exact for `|t|` and `V` below 2^24,
//!   without comparisons or selects.
//! - A scatter-add of up to `4096 + 10 size` ids (and fewer than 2^24 ids and rows:
//!   `sorts_scatter`) becomes the ranks of its ids ([`CompositeOp::ScatterRanks`],
//!   `scatter_ranks_*`), their inverse, the stable sorted order
//!   ([`CompositeOp::ScatterOrder`], `scatter_order_*`), where each output row's
//!   segment of that order starts ([`CompositeOp::ScatterStarts`], `scatter_starts_*`),
//!   and the sums per output row over its segment ([`CompositeOp::SortedScatterAdd`],
//!   `scatter_add_*`): four kernels costing `~N^2` in all instead of `~size * N`,
//!   the same bits (each row still sums its matches in increasing position).
//!   Scatter-adds of the same ids into the same number of rows share their ranks,
//!   order and starts.
//! - The other composites stay: the row-wise ones, RoPE and attention are standalone
//!   kernels of their own ([`crate::tile::ops`]).

use crate::error::CompileError;
use crate::graph::{CompositeOp, DType, Graph, NodeId, Op, SORT_LIMIT};
use std::collections::{HashMap, HashSet};

/// Kernel-name tag of the per-token losses of a mean cross-entropy.
pub const CE_TOKENS: &str = "cross_entropy_tokens";
/// Kernel-name tag of the count of counted tokens of a mean cross-entropy.
pub const CE_COUNT: &str = "cross_entropy_count";
/// Kernel-name tag of the final mean of a mean cross-entropy.
pub const CE_MEAN: &str = "cross_entropy_mean";
/// Kernel-name tag of the ranks of a sorted scatter-add's ids.
pub const SCATTER_RANKS: &str = "scatter_ranks";
/// Kernel-name tag of the sorted order of a sorted scatter-add's ids.
pub const SCATTER_ORDER: &str = "scatter_order";
/// Kernel-name tag of the segment starts of a sorted scatter-add's output rows.
pub const SCATTER_STARTS: &str = "scatter_starts";
/// Kernel-name tag of a sorted scatter-add's sums.
pub const SCATTER_ADD: &str = "scatter_add";

/// True for the composites lowered as one row kernel each ([`crate::tile::ops::rows`]).
pub fn lowered_as_rows(c: &CompositeOp) -> bool {
    matches!(
        c,
        CompositeOp::Softmax
            | CompositeOp::LogSoftmax
            | CompositeOp::LayerNorm { .. }
            | CompositeOp::RmsNorm { .. }
            | CompositeOp::TokenCrossEntropy { .. }
    )
}

/// True for the composites the scheduler lowers as they are, each to a standalone kernel
/// of [`crate::tile::ops`] (the others are rewritten first by [`lower_composites`]).
pub fn scheduled(c: &CompositeOp) -> bool {
    lowered_as_rows(c)
        || matches!(
            c,
            CompositeOp::Rope { .. }
                | CompositeOp::Attention { .. }
                | CompositeOp::AttentionStats { .. }
                | CompositeOp::AttentionGrad { .. }
                | CompositeOp::ScatterRanks { .. }
                | CompositeOp::ScatterOrder
                | CompositeOp::ScatterStarts { .. }
                | CompositeOp::SortedScatterAdd { .. }
        )
}

/// The graph the scheduler fuses, and for each of its nodes the name of the composite it
/// was expanded from (`None` for nodes of the original graph).
pub fn lower_composites(graph: &Graph) -> Result<(Graph, Vec<Option<&'static str>>), CompileError> {
    let any = |g: &Graph, f: &dyn Fn(&CompositeOp) -> bool| {
        g.nodes()
            .iter()
            .any(|n| matches!(&n.op, Op::Composite(c) if f(c)))
    };
    let (g, origins) = if any(graph, &|c| c.is_elementwise()) {
        graph.expand_composites_where(|c| c.is_elementwise())?
    } else {
        (graph.clone(), vec![None; graph.len()])
    };
    let splits = g.nodes().iter().any(|n| {
        matches!(n.op, Op::Composite(CompositeOp::CrossEntropy { .. }))
            || sorts_scatter(&g, &n.op, &n.inputs)
    });
    if !splits {
        return Ok((g, origins));
    }
    Ok(split(&g, &origins)?)
}

/// Ids a sorted scatter-add takes whatever its rows ([`sorts_scatter`]).
const SORT_IDS: usize = 4096;
/// Further ids a sorted scatter-add takes per output row ([`sorts_scatter`]).
const SORT_IDS_PER_ROW: usize = 10;

/// True for a scatter-add the scheduler lowers through the sorted order of its ids
/// (ranks, order, segment starts, then per output row a sum over its segment):
/// ids and rows below 2^24 (the rank kernels compare in f32), and `N <= 4096 + 10 size`
/// ids. The sort costs `~N^2` (its two rank kernels), the walk of
/// [`crate::tile::ops::index`] `~size * N / 1024` chunk steps plus one step per id, so
/// many ids into few rows walk. Measured on lavapipe, sorted against walked, rows of 64:
/// 4096 ids into 8192 rows 10.0 against 180 ms, into 50,257 rows 19.8 against 1074 ms;
/// 8192 ids into 65 rows 29.9 against 15.0 ms, into 512 rows 28.5 against 32.1 ms;
/// 16,384 ids into 1024 rows 106 against 103 ms, into 2048 rows 110 against 188 ms. The
/// costs fitted to these (`0.41 N^2` ns sorted, `4.6 size N + 1500 N` ns walked) cross
/// near `N = 3660 + 11.2 size`.
fn sorts_scatter(g: &Graph, op: &Op, inputs: &[NodeId]) -> bool {
    let Op::ScatterAdd { size, .. } = op else {
        return false;
    };
    let n = inputs.get(1).map_or(0, |&i| g.ty(i).numel());
    n < SORT_LIMIT
        && *size < SORT_LIMIT
        && n <= SORT_IDS.saturating_add(SORT_IDS_PER_ROW.saturating_mul(*size))
}

/// Replaces every mean cross-entropy by token losses, a count and the mean, and every
/// sorted scatter-add ([`sorts_scatter`]) by its ranks, order, segment starts and sorted sum.
fn split(
    src: &Graph,
    origin: &[Option<&'static str>],
) -> Result<(Graph, Vec<Option<&'static str>>), crate::graph::GraphError> {
    let reserved: HashSet<&str> = src.nodes().iter().map(|n| n.name.as_str()).collect();
    let mut g = Graph::new();
    let mut tags: Vec<Option<&'static str>> = Vec::with_capacity(src.len());
    let mut map: Vec<NodeId> = Vec::with_capacity(src.len());
    // The order and starts built for each (ids, size), shared by the scatter-adds of the
    // same ids into the same number of rows.
    let mut sorts: HashMap<(NodeId, usize), (NodeId, NodeId)> = HashMap::new();
    for (i, node) in src.nodes().iter().enumerate() {
        let inputs: Vec<NodeId> = node
            .inputs
            .iter()
            .map(|&j| {
                map.get(j.index())
                    .copied()
                    .ok_or(crate::graph::GraphError::Cycle {
                        node: node.name.clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        let id = match &node.op {
            Op::Composite(CompositeOp::CrossEntropy { ignore_index }) => {
                let (logits, targets) = (inputs[0], inputs[1]);
                let first = g.len();
                let lt = g.ty(logits).clone();
                let (v, dt) = (lt.shape[1], lt.dtype);
                let loss = g.composite(
                    CompositeOp::TokenCrossEntropy {
                        ignore_index: *ignore_index,
                    },
                    &[logits, targets],
                )?;
                tags.resize(g.len(), Some(CE_TOKENS));
                let f = DType::F32;
                let tf = g.cast(targets, f)?;
                let one = g.constant(1.0, &[], f)?;
                let a = g.add(tf, one)?;
                let lo = g.clamp(a, 0.0, 1.0)?;
                let vc = g.constant(v as f64, &[], f)?;
                let b = g.sub(vc, tf)?;
                let hi = g.clamp(b, 0.0, 1.0)?;
                let mut keep = g.mul(lo, hi)?;
                if (0..v as i64).contains(ignore_index) {
                    let ic = g.constant(*ignore_index as f64, &[], f)?;
                    let d = g.sub(tf, ic)?;
                    let d = g.abs(d)?;
                    let one = g.constant(1.0, &[], f)?;
                    let ni = g.min(d, one)?;
                    keep = g.mul(keep, ni)?;
                }
                let mut count = g.sum(keep, 0, false)?;
                if dt != f {
                    count = g.cast(count, dt)?;
                }
                tags.resize(g.len(), Some(CE_COUNT));
                let total = g.sum(loss, 0, false)?;
                let one = g.constant(1.0, &[], dt)?;
                let denom = g.max(count, one)?;
                let mean = g.div(total, denom)?;
                tags.resize(g.len(), Some(CE_MEAN));
                for k in first..g.len() {
                    let id = NodeId(k as u32);
                    if id == mean {
                        continue;
                    }
                    let name = fresh(&g, &reserved, &format!("{}_{}", node.name, g.node(id).name));
                    g.set_name(id, &name)?;
                }
                g.set_name(mean, &node.name)?;
                mean
            }
            Op::ScatterAdd { axis, size } if sorts_scatter(src, &node.op, &node.inputs) => {
                let (x, ids) = (inputs[0], inputs[1]);
                let (order, starts) = match sorts.get(&(ids, *size)) {
                    Some(&built) => built,
                    None => {
                        let ranks =
                            g.composite(CompositeOp::ScatterRanks { size: *size }, &[ids])?;
                        tags.resize(g.len(), Some(SCATTER_RANKS));
                        let order = g.composite(CompositeOp::ScatterOrder, &[ranks])?;
                        tags.resize(g.len(), Some(SCATTER_ORDER));
                        let starts =
                            g.composite(CompositeOp::ScatterStarts { size: *size }, &[ids, order])?;
                        tags.resize(g.len(), Some(SCATTER_STARTS));
                        for (id, part) in [(ranks, "ranks"), (order, "order"), (starts, "starts")] {
                            let name = fresh(&g, &reserved, &format!("{}_{part}", node.name));
                            g.set_name(id, &name)?;
                        }
                        sorts.insert((ids, *size), (order, starts));
                        (order, starts)
                    }
                };
                let sorted = CompositeOp::SortedScatterAdd {
                    axis: *axis,
                    size: *size,
                };
                let out = g.composite(sorted, &[x, ids, order, starts])?;
                tags.resize(g.len(), Some(SCATTER_ADD));
                g.set_name(out, &node.name)?;
                out
            }
            _ => {
                let leaf = node.op.is_leaf().then(|| node.ty.clone());
                let id = g.push(node.op.clone(), inputs, leaf, Some(&node.name))?;
                tags.push(origin.get(i).copied().flatten());
                id
            }
        };
        map.push(id);
    }
    for &o in src.outputs() {
        let id = map
            .get(o.index())
            .copied()
            .ok_or(crate::graph::GraphError::UnknownInput {
                node: "outputs".into(),
                input: o.to_string(),
            })?;
        g.mark_output(id)?;
    }
    Ok((g, tags))
}

/// `base`, or `base_<k>` for the first `k` that names no node of `g` or of the source
/// graph (`reserved`).
fn fresh(g: &Graph, reserved: &HashSet<&str>, base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 1;
    while reserved.contains(name.as_str()) || g.find(&name).is_some() {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::DType;

    #[test]
    fn cross_entropy_splits_into_three_tagged_parts() {
        let mut g = Graph::new();
        let l = g.input("logits", &[4, 10], DType::F32).unwrap();
        let t = g.input("targets", &[4], DType::I32).unwrap();
        let ce = g.cross_entropy(l, t, 3).unwrap();
        g.set_name(ce, "loss").unwrap();
        g.mark_output(ce).unwrap();
        let (lg, tags) = lower_composites(&g).unwrap();
        assert_eq!(tags.len(), lg.len());
        let out = lg.outputs()[0];
        assert_eq!(lg.node(out).name, "loss");
        assert_eq!(tags[out.index()], Some(CE_MEAN));
        let token = lg
            .ids()
            .find(|&n| {
                matches!(
                    lg.node(n).op,
                    Op::Composite(CompositeOp::TokenCrossEntropy { ignore_index: 3 })
                )
            })
            .unwrap();
        assert_eq!(tags[token.index()], Some(CE_TOKENS));
        assert!(!lg
            .nodes()
            .iter()
            .any(|n| matches!(n.op, Op::Composite(CompositeOp::CrossEntropy { .. }))));
        assert!(lg.find("logits").is_some() && lg.find("targets").is_some());
    }

    #[test]
    fn gelu_is_expanded_and_tagged() {
        let mut g = Graph::new();
        let x = g.input("x", &[8], DType::F32).unwrap();
        let y = g.gelu(x, true).unwrap();
        g.mark_output(y).unwrap();
        let (lg, tags) = lower_composites(&g).unwrap();
        assert!(!lg.nodes().iter().any(|n| matches!(n.op, Op::Composite(_))));
        assert_eq!(tags[lg.outputs()[0].index()], Some("gelu_tanh"));
    }

    /// Kernel names of a schedule, without their `_<index>` suffix.
    fn kernel_names(g: &Graph) -> Vec<String> {
        let plan = crate::schedule::schedule(g, &crate::target::Target::wgsl()).unwrap();
        plan.kernels
            .iter()
            .map(|k| {
                k.name
                    .rsplit_once('_')
                    .map_or(k.name.clone(), |(b, _)| b.to_string())
            })
            .collect()
    }

    #[test]
    fn scatter_adds_sort_up_to_the_crossover() {
        let names = |n: usize, size: usize| {
            let mut g = Graph::new();
            let src = g.input("src", &[n, 8], DType::F32).unwrap();
            let ids = g.input("ids", &[n], DType::I32).unwrap();
            let s = g.scatter_add(src, ids, 0, size).unwrap();
            g.set_name(s, "grad").unwrap();
            g.mark_output(s).unwrap();
            let (lg, _) = lower_composites(&g).unwrap();
            assert_eq!(lg.node(lg.outputs()[0]).name, "grad");
            kernel_names(&g)
        };
        let sorted = [SCATTER_RANKS, SCATTER_ORDER, SCATTER_STARTS, SCATTER_ADD];
        assert_eq!(names(1000, 50), sorted);
        // 4096 + 10 * 10 ids into 10 rows sort, one more walks.
        assert_eq!(names(4196, 10), sorted);
        assert_eq!(names(4197, 10), ["scatter_add"]);
    }

    #[test]
    fn scatter_adds_of_the_same_ids_share_their_sort() {
        let mut g = Graph::new();
        let ids = g.input("ids", &[100], DType::I32).unwrap();
        let other = g.input("other", &[100], DType::I32).unwrap();
        for (k, (i, size)) in [(ids, 50), (ids, 50), (ids, 60), (other, 50)]
            .into_iter()
            .enumerate()
        {
            let src = g.input(&format!("src{k}"), &[100, 8], DType::F32).unwrap();
            let s = g.scatter_add(src, i, 0, size).unwrap();
            g.mark_output(s).unwrap();
        }
        let (lg, _) = lower_composites(&g).unwrap();
        let count = |f: &dyn Fn(&CompositeOp) -> bool| {
            lg.nodes()
                .iter()
                .filter(|n| matches!(&n.op, Op::Composite(c) if f(c)))
                .count()
        };
        // One sort per (ids, size): three, and four sums.
        let ranks = count(&|c| matches!(c, CompositeOp::ScatterRanks { .. }));
        let orders = count(&|c| matches!(c, CompositeOp::ScatterOrder));
        let starts = count(&|c| matches!(c, CompositeOp::ScatterStarts { .. }));
        let sums = count(&|c| matches!(c, CompositeOp::SortedScatterAdd { .. }));
        assert_eq!((ranks, orders, starts, sums), (3, 3, 3, 4));
        // Each sum reads the sort of its own ids and size.
        for n in lg.nodes() {
            if let Op::Composite(CompositeOp::SortedScatterAdd { size, .. }) = &n.op {
                let starts = lg.node(n.inputs[3]);
                assert_eq!(
                    starts.op,
                    Op::Composite(CompositeOp::ScatterStarts { size: *size })
                );
                assert_eq!(starts.inputs[0], n.inputs[1], "the same ids");
                assert_eq!(starts.inputs[1], n.inputs[2], "the same order");
            }
        }
    }

    #[test]
    fn kernels_are_named_after_the_composites() {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 8], DType::F32).unwrap();
        let w = g.param("w", &[8, 16], DType::F32).unwrap();
        let b = g.param("b", &[16], DType::F32).unwrap();
        let h = g.matmul(x, w).unwrap();
        let h = g.add(h, b).unwrap();
        let h = g.gelu(h, false).unwrap();
        let s = g.softmax(h).unwrap();
        let l = g.layer_norm(s, None, 1e-5).unwrap();
        let r = g.rms_norm(l, None, 1e-5).unwrap();
        let y = g.silu(r).unwrap();
        let u = g.swiglu(y, r).unwrap();
        g.mark_output(u).unwrap();
        let t = g.input("t", &[4], DType::I32).unwrap();
        let ce = g.cross_entropy(h, t, -100).unwrap();
        g.mark_output(ce).unwrap();
        let names = kernel_names(&g);
        for want in [
            "matmul_bias_gelu",
            "softmax",
            "layer_norm",
            "rms_norm",
            "silu_swiglu",
            CE_TOKENS,
            CE_COUNT,
            CE_MEAN,
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "no {want} kernel in {names:?}"
            );
        }
        // One kernel per row composite, three for the mean cross-entropy.
        assert_eq!(names.len(), 8, "{names:?}");
    }
}
