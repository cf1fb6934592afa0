//! The graph IR: an arena of nodes addressed by typed handles, with static shapes and
//! dtypes, a builder API that infers and checks types, validation and a JSON form.

mod builder;
mod composite;
mod error;
mod expand;
mod json;
mod op;
mod types;

pub use composite::{AttentionWrt, CompositeOp, SORT_LIMIT};
pub use error::GraphError;
pub use json::{GraphJson, NodeJson};
pub use op::{cast_value, matmul_dims, BinaryOp, CompareOp, MatMulDims, Op, ReduceOp, UnaryOp};
pub use types::{bf16_from_f64, contiguous_strides, f16_from_f64, DType, TensorType, MAX_ELEMENTS};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Handle of a node in a [`Graph`] (its index in the arena).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The arena index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// One node: an op, its inputs (earlier nodes), its inferred type and a unique name.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Operands, all earlier in the arena.
    pub inputs: Vec<NodeId>,
    /// The output type.
    pub ty: TensorType,
    /// Unique name (user-given or generated), used in errors, kernel names and I/O.
    pub name: String,
}

/// A dataflow graph in topological order (every input precedes its user).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    nodes: Vec<Node>,
    outputs: Vec<NodeId>,
    /// Every node by name (names are unique), so lookups and pushes stay O(1).
    names: std::collections::HashMap<String, NodeId>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// All nodes in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node behind a handle.
    ///
    /// # Panics
    /// If the handle does not belong to this graph (handles are only made by the graph).
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// The node behind a handle, if it exists.
    pub fn get(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index())
    }

    /// Handles of all nodes in order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len() as u32).map(NodeId)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The type of a node.
    pub fn ty(&self, id: NodeId) -> &TensorType {
        &self.nodes[id.index()].ty
    }

    /// The graph outputs, in order.
    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// Marks a node as a graph output (idempotent).
    pub fn mark_output(&mut self, id: NodeId) -> Result<(), GraphError> {
        self.check_id(id, "output")?;
        if !self.outputs.contains(&id) {
            self.outputs.push(id);
        }
        Ok(())
    }

    /// Looks a node up by name.
    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.names.get(name).copied()
    }

    /// Input nodes (`Op::Input`) in order.
    pub fn inputs(&self) -> Vec<NodeId> {
        self.ids()
            .filter(|&i| matches!(self.node(i).op, Op::Input))
            .collect()
    }

    /// Parameter nodes (`Op::Param`) in order.
    pub fn params(&self) -> Vec<NodeId> {
        self.ids()
            .filter(|&i| matches!(self.node(i).op, Op::Param))
            .collect()
    }

    /// For each node, the nodes that use it (with repetition if used twice).
    pub fn users(&self) -> Vec<Vec<NodeId>> {
        let mut users = vec![Vec::new(); self.nodes.len()];
        for id in self.ids() {
            for &i in &self.node(id).inputs {
                users[i.index()].push(id);
            }
        }
        users
    }

    /// `UnknownInput` (used by `user`) unless `id` is a node of this graph.
    pub(crate) fn check_id(&self, id: NodeId, user: &str) -> Result<(), GraphError> {
        if id.index() < self.nodes.len() {
            Ok(())
        } else {
            Err(GraphError::UnknownInput {
                node: user.to_string(),
                input: id.to_string(),
            })
        }
    }

    /// Appends a node after inferring its type; the low-level constructor behind the
    /// builder methods. Leaves (`input`, `param`, `constant`) need `leaf_ty`.
    pub fn push(
        &mut self,
        op: Op,
        inputs: Vec<NodeId>,
        leaf_ty: Option<TensorType>,
        name: Option<&str>,
    ) -> Result<NodeId, GraphError> {
        let name = match name {
            Some("") => {
                return Err(GraphError::Invalid {
                    op: op.name(),
                    node: String::new(),
                    reason: "a node name must not be empty".into(),
                })
            }
            Some(n) => {
                if self.find(n).is_some() {
                    return Err(GraphError::DuplicateName {
                        node: n.to_string(),
                    });
                }
                n.to_string()
            }
            None => {
                let mut k = self.nodes.len();
                loop {
                    let candidate = format!("{}_{}", op.name(), k);
                    if self.find(&candidate).is_none() {
                        break candidate;
                    }
                    k += 1;
                }
            }
        };
        for &i in &inputs {
            self.check_id(i, &name)?;
        }
        let ty = if op.is_leaf() {
            if !inputs.is_empty() {
                return Err(GraphError::Arity {
                    op: op.name(),
                    node: name,
                    expected: 0,
                    got: inputs.len(),
                });
            }
            let ty = leaf_ty.ok_or_else(|| GraphError::Invalid {
                op: op.name(),
                node: name.clone(),
                reason: "a leaf needs a type".into(),
            })?;
            op.check_leaf(&name, &ty)?;
            ty
        } else {
            let tys: Vec<&TensorType> = inputs.iter().map(|&i| self.ty(i)).collect();
            op.infer(&name, &tys)?
        };
        if TensorType::checked_numel(&ty.shape).is_none() {
            return Err(GraphError::TooLarge {
                op: op.name(),
                node: name,
                shape: ty.shape,
            });
        }
        let id = NodeId(self.nodes.len() as u32);
        self.names.insert(name.clone(), id);
        self.nodes.push(Node {
            op,
            inputs,
            ty,
            name,
        });
        Ok(id)
    }

    /// Re-checks the whole graph: topological order, arities, every type rule, outputs.
    pub fn validate(&self) -> Result<(), GraphError> {
        if self.outputs.is_empty() {
            return Err(GraphError::NoOutputs);
        }
        let mut names = std::collections::HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if !names.insert(node.name.as_str()) {
                return Err(GraphError::DuplicateName {
                    node: node.name.clone(),
                });
            }
            for &inp in &node.inputs {
                if inp.index() >= i {
                    return Err(GraphError::Cycle {
                        node: node.name.clone(),
                    });
                }
            }
            if node.op.is_leaf() {
                node.op.check_leaf(&node.name, &node.ty)?;
            } else {
                let tys: Vec<&TensorType> = node.inputs.iter().map(|&x| self.ty(x)).collect();
                let ty = node.op.infer(&node.name, &tys)?;
                if ty != node.ty {
                    return Err(GraphError::Invalid {
                        op: node.op.name(),
                        node: node.name.clone(),
                        reason: format!("recorded type {} differs from inferred {}", node.ty, ty),
                    });
                }
            }
        }
        for &o in &self.outputs {
            self.check_id(o, "output")?;
        }
        Ok(())
    }
}
