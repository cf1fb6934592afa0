//! Typed errors of graph construction and validation. Each names the op, the node and
//! the shapes involved.

use super::types::DType;

/// An invalid graph, detected by type inference or validation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Operands of an elementwise op have different shapes.
    #[error("{op} `{node}`: shape mismatch: {lhs:?} vs {rhs:?}")]
    ShapeMismatch {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// Left operand shape.
        lhs: Vec<usize>,
        /// Right operand shape.
        rhs: Vec<usize>,
    },
    /// Operands have different dtypes.
    #[error("{op} `{node}`: dtype mismatch: {lhs} vs {rhs}")]
    DTypeMismatch {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// Left operand dtype.
        lhs: DType,
        /// Right operand dtype.
        rhs: DType,
    },
    /// The op is not defined for this dtype.
    #[error("{op} `{node}`: dtype {dtype} is not supported")]
    UnsupportedDType {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// Offending dtype.
        dtype: DType,
    },
    /// Axis outside the operand's rank.
    #[error("{op} `{node}`: axis {axis} out of range for shape {shape:?}")]
    AxisOutOfRange {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// The axis given.
        axis: usize,
        /// Operand shape.
        shape: Vec<usize>,
    },
    /// Matmul operands' contraction lengths differ.
    #[error("matmul `{node}`: inner dimensions differ: a {a:?} has k={ka}, b {b:?} has k={kb}")]
    MatMulInner {
        /// Node name.
        node: String,
        /// Shape of a.
        a: Vec<usize>,
        /// Shape of b.
        b: Vec<usize>,
        /// k of a.
        ka: usize,
        /// k of b.
        kb: usize,
    },
    /// Matmul operand of rank below 2.
    #[error("matmul `{node}`: operands must have rank >= 2, got a {a:?}, b {b:?}")]
    MatMulRank {
        /// Node name.
        node: String,
        /// Shape of a.
        a: Vec<usize>,
        /// Shape of b.
        b: Vec<usize>,
    },
    /// Matmul batch axes neither equal nor absent on one side.
    #[error("matmul `{node}`: batch axes differ: a {a:?}, b {b:?}")]
    MatMulBatch {
        /// Node name.
        node: String,
        /// Shape of a.
        a: Vec<usize>,
        /// Shape of b.
        b: Vec<usize>,
    },
    /// Reshape that changes the element count.
    #[error("reshape `{node}`: cannot reshape {from:?} ({from_elements} elements) to {to:?} ({to_elements} elements)")]
    ReshapeElementCount {
        /// Node name.
        node: String,
        /// Input shape.
        from: Vec<usize>,
        /// Input element count.
        from_elements: usize,
        /// Requested shape.
        to: Vec<usize>,
        /// Requested element count.
        to_elements: usize,
    },
    /// Broadcast to an incompatible shape.
    #[error("broadcast `{node}`: cannot broadcast {from:?} to {to:?}")]
    BadBroadcast {
        /// Node name.
        node: String,
        /// Input shape.
        from: Vec<usize>,
        /// Requested shape.
        to: Vec<usize>,
    },
    /// Permutation that is not a permutation of the operand's axes.
    #[error("permute `{node}`: {perm:?} is not a permutation of the axes of {shape:?}")]
    BadPermutation {
        /// Node name.
        node: String,
        /// The permutation given.
        perm: Vec<usize>,
        /// Operand shape.
        shape: Vec<usize>,
    },
    /// Wrong number of inputs.
    #[error("{op} `{node}`: expects {expected} inputs, got {got}")]
    Arity {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// Inputs expected.
        expected: usize,
        /// Inputs given.
        got: usize,
    },
    /// A reference to a node that does not exist.
    #[error("node `{node}`: input `{input}` does not exist")]
    UnknownInput {
        /// Node name.
        node: String,
        /// The missing input (name or index).
        input: String,
    },
    /// Two nodes share a name.
    #[error("node name `{node}` is used twice")]
    DuplicateName {
        /// The duplicated name.
        node: String,
    },
    /// The inputs form a cycle.
    #[error("cycle in the graph through node `{node}`")]
    Cycle {
        /// A node on the cycle.
        node: String,
    },
    /// A graph with no outputs.
    #[error("the graph has no outputs")]
    NoOutputs,
    /// A shape with more than [`super::MAX_ELEMENTS`] elements (counting only its
    /// non-zero extents).
    #[error(
        "{op} `{node}`: shape {shape:?} has more than 2^53 elements (the most a tensor may have)"
    )]
    TooLarge {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// The shape.
        shape: Vec<usize>,
    },
    /// Any other invalid construction.
    #[error("{op} `{node}`: {reason}")]
    Invalid {
        /// Op name.
        op: &'static str,
        /// Node name.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// Malformed JSON.
    #[error("graph JSON: {0}")]
    Json(String),
}
