//! Typed errors of the reference interpreters: bad inputs supplied by the caller, invalid
//! graphs, and malformed tile kernels or plans (which are compiler bugs the interpreter
//! exists to catch: an out-of-bounds unmasked access names the kernel, buffer and offset).

use crate::graph::{DType, GraphError};

/// A failure of [`crate::interp`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InterpError {
    /// A graph input or parameter (or plan input) was not supplied.
    #[error("no value supplied for `{name}`")]
    MissingInput {
        /// Node name of the input or parameter.
        name: String,
    },
    /// A supplied tensor has the wrong shape.
    #[error("`{name}`: expected shape {expected:?}, got {got:?}")]
    InputShape {
        /// Node name.
        name: String,
        /// Shape the graph declares.
        expected: Vec<usize>,
        /// Shape supplied.
        got: Vec<usize>,
    },
    /// A supplied tensor has the wrong dtype.
    #[error("`{name}`: expected dtype {expected}, got {got}")]
    InputDType {
        /// Node name.
        name: String,
        /// Dtype the graph declares.
        expected: DType,
        /// Dtype supplied.
        got: DType,
    },
    /// Data length does not match a shape (tensor construction, byte conversion).
    #[error("{what}: shape {shape:?} needs {expected} elements/bytes, got {got}")]
    DataLength {
        /// What was being built.
        what: &'static str,
        /// The shape.
        shape: Vec<usize>,
        /// Length the shape needs.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The graph is invalid (its type rules fail during evaluation).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Integer division by zero in a graph node.
    #[error("`{node}`: integer division by zero")]
    DivisionByZero {
        /// Node (or kernel) name.
        node: String,
    },
    /// An index operand (gather / scatter-add id, cross-entropy target) outside the range
    /// the op allows.
    #[error("`{node}`: {what} {index} is outside 0..{len}")]
    IndexOutOfRange {
        /// Node name.
        node: String,
        /// What the index is (`"gather id"`, `"scatter_add id"`, `"target"`).
        what: &'static str,
        /// The offending value.
        index: i64,
        /// Exclusive upper bound of the valid range `0..len`.
        len: usize,
    },
    /// A value would take the bytes the interpreter holds at once past its bound
    /// ([`super::Limits::max_bytes`]).
    #[error(
        "`{node}`{}: a value of shape {shape:?} needs {needed} bytes beside the {held} already held, over the interpreter's limit of {limit} bytes (`Limits::max_bytes`)",
        .within.as_ref().map(|w| format!(" (node `{w}` of its decomposition)")).unwrap_or_default()
    )]
    MemoryLimit {
        /// Node name (for the tile interpreter, `"plan storage"`).
        node: String,
        /// The node of a composite's decomposition that needed the memory, when `node` is
        /// a composite.
        within: Option<String>,
        /// Shape of the value (for the tile interpreter, the storage slot lengths' sum).
        shape: Vec<usize>,
        /// Bytes the value needs.
        needed: u64,
        /// Bytes already held.
        held: u64,
        /// The bound.
        limit: u64,
    },
    /// An unmasked tile element addresses memory outside its buffer.
    #[error("kernel `{kernel}`: access to buffer `{buffer}` at element offset {offset} is out of bounds (length {len}), program id {program:?}")]
    OutOfBounds {
        /// Kernel name.
        kernel: String,
        /// Buffer (parameter) name.
        buffer: String,
        /// The offending element offset.
        offset: i64,
        /// Buffer length in elements.
        len: usize,
        /// The program instance that made the access.
        program: [u32; 3],
    },
    /// A tile kernel that breaks the tile IR's rules (undefined value, wrong operand kind,
    /// shape mismatch, non-positive loop step, index overflow...).
    #[error("kernel `{kernel}`: {message}")]
    BadKernel {
        /// Kernel name.
        kernel: String,
        /// What is wrong.
        message: String,
    },
    /// A plan that is inconsistent (bad buffer or kernel index, argument mismatch,
    /// storage slot too small...).
    #[error("plan: {message}")]
    BadPlan {
        /// What is wrong.
        message: String,
    },
}
