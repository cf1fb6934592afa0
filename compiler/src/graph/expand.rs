//! Expansion of composite ops into their decompositions ([`CompositeOp::decompose`]): the
//! graph the f64 interpreter effectively evaluates, and the form in which the scheduler
//! fuses the elementwise composites (GELU, SiLU, SwiGLU) into their neighbours.

use super::{CompositeOp, Graph, GraphError, NodeId, Op};
use std::collections::HashSet;

/// Decompositions may hold composites (then expanded in turn) at most this deep.
const MAX_DEPTH: usize = 8;

impl Graph {
    /// The same graph with every composite op replaced by its decomposition into primitive
    /// ops, recursively. Inputs, parameters and outputs keep their names (and their order);
    /// each composite's node name goes to the node holding its result, so outputs and
    /// later users find it under the same name. The decomposition's intermediate nodes are
    /// named `<composite node>_<op>_<k>` (made unique against every name of `self`).
    pub fn expand_composites(&self) -> Result<Graph, GraphError> {
        Ok(self.expand_composites_where(|_| true)?.0)
    }

    /// Like [`Graph::expand_composites`], but only for the composites `pred` accepts
    /// (others stay as they are). Also returns, for each node of the new graph, the
    /// [`CompositeOp::name`] of the composite it was expanded from (`None` for nodes
    /// copied from `self`), e.g. so that kernel names can say `gelu_...`. A node expanded
    /// from a composite nested in another decomposition carries the outermost name.
    pub fn expand_composites_where(
        &self,
        pred: impl Fn(&CompositeOp) -> bool,
    ) -> Result<(Graph, Vec<Option<&'static str>>), GraphError> {
        let mut g = self.clone();
        let mut origin = vec![None; g.len()];
        for _ in 0..=MAX_DEPTH {
            let pending = g
                .nodes()
                .iter()
                .any(|n| matches!(&n.op, Op::Composite(c) if pred(c)));
            if !pending {
                return Ok((g, origin));
            }
            (g, origin) = expand_once(&g, &origin, &pred)?;
        }
        Err(GraphError::Invalid {
            op: "composite",
            node: String::new(),
            reason: format!("composite decompositions nest deeper than {MAX_DEPTH} levels"),
        })
    }
}

/// One pass: every composite `pred` accepts is replaced by its decomposition.
fn expand_once(
    src: &Graph,
    origin: &[Option<&'static str>],
    pred: &impl Fn(&CompositeOp) -> bool,
) -> Result<(Graph, Vec<Option<&'static str>>), GraphError> {
    let reserved: HashSet<&str> = src.nodes().iter().map(|n| n.name.as_str()).collect();
    let mut g = Graph::new();
    let mut tags: Vec<Option<&'static str>> = Vec::with_capacity(src.len());
    let mut map: Vec<NodeId> = Vec::with_capacity(src.len());
    for (i, node) in src.nodes().iter().enumerate() {
        let inputs: Vec<NodeId> = node
            .inputs
            .iter()
            .map(|&j| {
                map.get(j.index()).copied().ok_or(GraphError::Cycle {
                    node: node.name.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        let id = match &node.op {
            Op::Composite(c) if pred(c) => {
                let first = g.len();
                let mut r = c
                    .decompose(&mut g, &inputs)
                    .map_err(|e| at_node(e, &node.name))?;
                if r.index() < first {
                    // The result is an existing node: an identity view carries the name.
                    let shape = g.ty(r).shape.clone();
                    r = g.push(Op::Reshape { shape }, vec![r], None, None)?;
                }
                for k in first..g.len() {
                    let id = NodeId(k as u32);
                    if id == r {
                        continue;
                    }
                    let base = format!("{}_{}", node.name, g.node(id).name);
                    let mut name = base.clone();
                    let mut n = 1;
                    while reserved.contains(name.as_str()) || g.find(&name).is_some() {
                        name = format!("{base}_{n}");
                        n += 1;
                    }
                    g.set_name(id, &name)?;
                }
                g.set_name(r, &node.name)?;
                let tag = origin.get(i).copied().flatten().unwrap_or(c.name());
                tags.resize(g.len(), Some(tag));
                r
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
            .ok_or(GraphError::UnknownInput {
                node: "outputs".into(),
                input: o.to_string(),
            })?;
        g.mark_output(id)?;
    }
    Ok((g, tags))
}

/// An error of a decomposition, reported against the composite's node.
fn at_node(e: GraphError, node: &str) -> GraphError {
    match e {
        GraphError::Invalid { op, reason, .. } => GraphError::Invalid {
            op,
            node: node.to_string(),
            reason,
        },
        other => other,
    }
}
