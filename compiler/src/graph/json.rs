//! The JSON form of a graph, for the CLI: nodes refer to their inputs by name, in any
//! order; loading sorts them topologically (a cycle is a typed error) and re-infers types.

use super::{DType, Graph, GraphError, NodeId, Op, TensorType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One node in the JSON form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeJson {
    /// Unique node name.
    pub name: String,
    /// The op and its attributes (`"op": "add"`-style tag; see [`Op`]).
    #[serde(flatten)]
    pub op: Op,
    /// Names of the inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Shape, for leaves (input, param, constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Vec<usize>>,
    /// Dtype, for leaves (default f32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<DType>,
}

/// A whole graph in JSON form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GraphJson {
    /// The nodes, in any order.
    pub nodes: Vec<NodeJson>,
    /// Names of the output nodes.
    pub outputs: Vec<String>,
}

impl Graph {
    /// Parses and validates a graph from JSON text.
    pub fn from_json(text: &str) -> Result<Graph, GraphError> {
        let spec: GraphJson =
            serde_json::from_str(text).map_err(|e| GraphError::Json(e.to_string()))?;
        Graph::from_spec(&spec)
    }

    /// Builds a graph from its JSON form.
    pub fn from_spec(spec: &GraphJson) -> Result<Graph, GraphError> {
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for (i, n) in spec.nodes.iter().enumerate() {
            if by_name.insert(n.name.as_str(), i).is_some() {
                return Err(GraphError::DuplicateName {
                    node: n.name.clone(),
                });
            }
        }
        let mut deps = Vec::with_capacity(spec.nodes.len());
        for n in &spec.nodes {
            let mut d = Vec::new();
            for inp in &n.inputs {
                let &j = by_name
                    .get(inp.as_str())
                    .ok_or_else(|| GraphError::UnknownInput {
                        node: n.name.clone(),
                        input: inp.clone(),
                    })?;
                d.push(j);
            }
            deps.push(d);
        }
        // Depth-first topological sort with colours; a grey node reached again is a cycle.
        let mut state = vec![0u8; spec.nodes.len()];
        let mut order = Vec::with_capacity(spec.nodes.len());
        for root in 0..spec.nodes.len() {
            if state[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            state[root] = 1;
            while let Some(&mut (v, ref mut next)) = stack.last_mut() {
                if *next < deps[v].len() {
                    let w = deps[v][*next];
                    *next += 1;
                    match state[w] {
                        0 => {
                            state[w] = 1;
                            stack.push((w, 0));
                        }
                        1 => {
                            return Err(GraphError::Cycle {
                                node: spec.nodes[w].name.clone(),
                            });
                        }
                        _ => {}
                    }
                } else {
                    state[v] = 2;
                    order.push(v);
                    stack.pop();
                }
            }
        }
        let mut g = Graph::new();
        let mut ids: Vec<Option<NodeId>> = vec![None; spec.nodes.len()];
        for &i in &order {
            let n = &spec.nodes[i];
            let inputs: Vec<NodeId> = deps[i]
                .iter()
                .map(|&j| ids[j].expect("topological order"))
                .collect();
            let leaf_ty = if n.op.is_leaf() {
                let shape = n.shape.clone().ok_or_else(|| GraphError::Invalid {
                    op: n.op.name(),
                    node: n.name.clone(),
                    reason: "a leaf needs a `shape`".into(),
                })?;
                Some(TensorType::new(shape, n.dtype.unwrap_or(DType::F32)))
            } else {
                None
            };
            // The `shape` key of a broadcast or reshape node is read into `NodeJson::shape`
            // (it shadows the flattened op's own field): move it back into the op.
            let mut op = n.op.clone();
            if let (Op::Broadcast { shape } | Op::Reshape { shape }, Some(s)) = (&mut op, &n.shape)
            {
                shape.clone_from(s);
            }
            ids[i] = Some(g.push(op, inputs, leaf_ty, Some(&n.name))?);
        }
        for o in &spec.outputs {
            let &j = by_name
                .get(o.as_str())
                .ok_or_else(|| GraphError::UnknownInput {
                    node: "outputs".into(),
                    input: o.clone(),
                })?;
            g.mark_output(ids[j].expect("all nodes placed"))?;
        }
        g.validate()?;
        Ok(g)
    }

    /// The JSON form of this graph.
    pub fn to_spec(&self) -> GraphJson {
        GraphJson {
            nodes: self
                .nodes()
                .iter()
                .map(|n| NodeJson {
                    name: n.name.clone(),
                    op: n.op.clone(),
                    inputs: n
                        .inputs
                        .iter()
                        .map(|&i| self.node(i).name.clone())
                        .collect(),
                    shape: n.op.is_leaf().then(|| n.ty.shape.clone()),
                    dtype: n.op.is_leaf().then_some(n.ty.dtype),
                })
                .collect(),
            outputs: self
                .outputs()
                .iter()
                .map(|&o| self.node(o).name.clone())
                .collect(),
        }
    }

    /// Serialises to pretty JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_spec()).unwrap_or_default()
    }
}
