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
#[serde(deny_unknown_fields)]
pub struct GraphJson {
    /// The nodes, in any order.
    pub nodes: Vec<NodeJson>,
    /// Names of the output nodes.
    pub outputs: Vec<String>,
}

impl Graph {
    /// Parses and validates a graph from JSON text.
    ///
    /// Keys the format does not have are errors, not ignored (a misspelt `keep_dims`
    /// would otherwise silently keep its default), and so are `shape` and `dtype` on a
    /// node that does not read them.
    pub fn from_json(text: &str) -> Result<Graph, GraphError> {
        let json_err = |e: serde_json::Error| GraphError::Json(e.to_string());
        // Parsed from the text (not from the `Value`) so that a type error keeps its line
        // and column; the `Value` gives the keys as written.
        let spec: GraphJson = serde_json::from_str(text).map_err(json_err)?;
        let raw: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
        if let Some(nodes) = raw.get("nodes").and_then(|n| n.as_array()) {
            for (node, given) in spec.nodes.iter().zip(nodes) {
                check_keys(node, given)?;
            }
        }
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
        let mut listed = std::collections::HashSet::new();
        for o in &spec.outputs {
            if !listed.insert(o.as_str()) {
                return Err(GraphError::Invalid {
                    op: "output",
                    node: o.clone(),
                    reason: "listed twice in `outputs`".into(),
                });
            }
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

/// Refuses a key of the JSON object `given` that its parsed form `node` does not have
/// (serde ignores unknown keys of a struct with a flattened enum), and `shape` / `dtype`
/// where the op does not read them (`shape` on leaves, broadcast and reshape; `dtype` on
/// leaves).
fn check_keys(node: &NodeJson, given: &serde_json::Value) -> Result<(), GraphError> {
    let Some(given) = given.as_object() else {
        return Ok(());
    };
    let known = serde_json::to_value(node).map_err(|e| GraphError::Json(e.to_string()))?;
    let known: Vec<&str> = known
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let op = &node.op;
    let invalid = |reason: String| GraphError::Invalid {
        op: op.name(),
        node: node.name.clone(),
        reason,
    };
    let reads_shape = op.is_leaf() || matches!(op, Op::Broadcast { .. } | Op::Reshape { .. });
    for key in given.keys() {
        match key.as_str() {
            "shape" if !reads_shape => {
                return Err(invalid(
                    "`shape` is only for leaves (input, param, constant, iota), broadcast and \
                     reshape; the type of this node follows from its inputs"
                        .into(),
                ))
            }
            "dtype" if !op.is_leaf() => {
                return Err(invalid(
                    "`dtype` is only for leaves (input, param, constant, iota); use a `cast` \
                     node to change a dtype"
                        .into(),
                ))
            }
            "inputs" | "shape" | "dtype" => {}
            k if known.contains(&k) => {}
            k => {
                let mut keys = known.clone();
                let optional = [
                    ("inputs", !op.is_leaf()),
                    ("shape", reads_shape),
                    ("dtype", op.is_leaf()),
                ];
                for (extra, applies) in optional {
                    if applies && !keys.contains(&extra) {
                        keys.push(extra);
                    }
                }
                return Err(invalid(format!(
                    "unknown key `{k}` (the keys of this node: {})",
                    keys.join(", ")
                )));
            }
        }
    }
    Ok(())
}
