//! Errors of the PTX virtual machine: text it cannot read, and faults of a launch, each
//! naming the kernel, the block and thread, and the PTX line that caused it.

use thiserror::Error;

/// Where in a launch a fault happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    /// The kernel (entry) name.
    pub kernel: String,
    /// The block (`%ctaid`).
    pub block: [u32; 3],
    /// The thread (`%tid.x`).
    pub thread: u32,
    /// The PTX line (1-based) and its text.
    pub line: u32,
    /// The instruction's text.
    pub text: String,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kernel `{}`, block {:?}, thread {}, line {}: `{}`",
            self.kernel, self.block, self.thread, self.line, self.text
        )
    }
}

/// What went wrong, reading PTX or running it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum VmError {
    /// The text is not PTX this machine can read.
    #[error("PTX line {line}: {message}")]
    Parse {
        /// 1-based line (0: the module as a whole).
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// Valid PTX outside the subset this machine runs (the subset Tessera emits).
    #[error("PTX line {line}: `{text}`: {what} is not supported by the PTX VM")]
    Unsupported {
        /// 1-based line.
        line: u32,
        /// The statement.
        text: String,
        /// What is unsupported.
        what: String,
    },
    /// A launch that does not match the kernel (argument count, block size, grid).
    #[error("launching `{kernel}`: {message}")]
    Launch {
        /// The kernel.
        kernel: String,
        /// What does not match.
        message: String,
    },
    /// A load or store outside the buffer or shared array its address points into, or
    /// through an address that points into none.
    #[error("{at}: {space} access of {bytes} bytes at offset {offset} is outside {what}")]
    OutOfBounds {
        /// Where.
        at: Box<At>,
        /// `global` or `shared`.
        space: &'static str,
        /// Access size.
        bytes: u64,
        /// Offset from the start of the region (or the raw address when it is in none).
        offset: u64,
        /// The region, with its size.
        what: String,
    },
    /// An access whose address is not a multiple of its size.
    #[error("{at}: misaligned {space} access of {bytes} bytes at offset {offset}")]
    Misaligned {
        /// Where.
        at: Box<At>,
        /// `global` or `shared`.
        space: &'static str,
        /// Access size.
        bytes: u64,
        /// Offset in the region.
        offset: u64,
    },
    /// Two threads touched the same bytes without a barrier between them, at least one
    /// writing (or two blocks of one launch did, which no barrier can order).
    #[error("{at}: data race on {space} memory ({what}, offset {offset}) with {other}")]
    Race {
        /// The second access.
        at: Box<At>,
        /// `global` or `shared`.
        space: &'static str,
        /// The region.
        what: String,
        /// Byte offset in the region.
        offset: u64,
        /// The first access: its block and thread, and whether it was a write.
        other: String,
    },
    /// An undefined value (read from shared memory no thread of the block wrote, or a
    /// register never written) used where it matters: stored to global memory, as an
    /// address, or as a branch or guard predicate. (Undefined values computed and then
    /// discarded, e.g. by `selp` in padding lanes, are fine, as on a GPU.)
    #[error("{at}: {what} is undefined: it comes from {origin}")]
    Undefined {
        /// Where it was used.
        at: Box<At>,
        /// Which operand.
        what: &'static str,
        /// Where the undefined value came from.
        origin: String,
    },
    /// Threads of one block at different barriers, or some at a barrier and others
    /// finished: a barrier in divergent control flow.
    #[error("kernel `{kernel}`, block {block:?}: barrier divergence: {message}")]
    BarrierDivergence {
        /// The kernel.
        kernel: String,
        /// The block.
        block: [u32; 3],
        /// Which threads are where.
        message: String,
    },
    /// The launch ran more instructions than the limit (an endless loop).
    #[error("kernel `{kernel}`: stopped after {limit} instructions (endless loop?)")]
    StepLimit {
        /// The kernel.
        kernel: String,
        /// The limit.
        limit: u64,
    },
}
