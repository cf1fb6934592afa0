//! The per-thread (SIMT) program shared by the WGSL and PTX printers.
//!
//! One program instance of a tile kernel becomes one workgroup / CTA. The program is a
//! structured list of statements over typed virtual registers (mutable scalars: every
//! tile has been split into per-thread registers by the lowering). Printers map each
//! register to a WGSL `var` or a PTX register and each statement to a few lines.

use crate::graph::{BinaryOp, DType, UnaryOp};
use serde::{Deserialize, Serialize};

/// The float unary ops that [`Stmt::Unary`] may carry: the printers spell these; every
/// other [`UnaryOp`] is composed from them by the lowering ([`crate::simt::lower`]).
pub const PRINTED_UNARY: [UnaryOp; 6] = [
    UnaryOp::Neg,
    UnaryOp::Exp,
    UnaryOp::Log,
    UnaryOp::Sqrt,
    UnaryOp::Rsqrt,
    UnaryOp::Tanh,
];

/// The binary ops that [`Stmt::Binary`] may carry (`pow` is composed by the lowering).
pub const PRINTED_BINARY: [BinaryOp; 6] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Max,
    BinaryOp::Min,
];

/// A virtual register (a mutable per-thread scalar).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reg(pub u32);

/// Scalar types of registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SType {
    /// 32-bit float.
    F32,
    /// 16-bit float (storage and arithmetic where the target has it).
    F16,
    /// 32-bit signed integer (indices).
    I32,
    /// 32-bit unsigned integer (thread/workgroup ids).
    U32,
    /// Predicate.
    Bool,
}

impl SType {
    /// The register type holding elements of a graph dtype in arithmetic (bf16 is
    /// computed in f32; bool as bool).
    pub fn of(d: DType) -> SType {
        match d {
            DType::F32 | DType::BF16 => SType::F32,
            DType::F16 => SType::F16,
            DType::I32 => SType::I32,
            DType::U32 => SType::U32,
            DType::Bool => SType::Bool,
        }
    }
}

/// An operand: a register or an immediate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Operand {
    /// A register.
    Reg(Reg),
    /// An integer immediate of type I32 (or U32 where the context needs it).
    Int(i64),
    /// A float immediate of the given float type.
    Float(f64, SType),
    /// A boolean immediate.
    Bool(bool),
}

/// An integer immediate as a value of `ty`: wrapped modulo 2^32 into the u32 or i32
/// range, as the graph's integer ops wrap (`interp::round_to_dtype`). Both SIMT printers
/// write immediates through this, so a folded `neg` of a u32 constant 70000 is
/// 4294897296 on every target (WGSL clamped it to 0; PTX refused it).
pub fn wrap_int(v: i64, ty: SType) -> i64 {
    match ty {
        SType::U32 => v as u32 as i64,
        SType::I32 => v as i32 as i64,
        _ => v,
    }
}

/// Built-in per-thread values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Special {
    /// Thread index within the workgroup (x), `local_invocation_id.x` / `%tid.x`.
    LocalId,
    /// Workgroup index along a grid axis, `workgroup_id` / `%ctaid`.
    GroupId(u8),
}

/// Integer and comparison ops on registers (beyond the graph's float ops).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IntOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a % b`
    Rem,
    /// `min(a, b)`
    Min,
    /// `max(a, b)`
    Max,
    /// `a < b` (result Bool)
    Lt,
    /// `a & b`: logical on Bool, bitwise on I32 / U32 (the destination's type).
    And,
    /// `a <= b` (result Bool)
    Le,
    /// `a == b` (result Bool)
    Eq,
    /// `a > b` (result Bool)
    Gt,
    /// `a >= b` (result Bool)
    Ge,
    /// `a | b` (bitwise, on I32 / U32).
    Or,
    /// `a << b` (on I32 / U32; `b` below 32).
    Shl,
    /// `a >> b` (logical on U32, arithmetic on I32; `b` below 32).
    Shr,
}

impl IntOp {
    /// True for the comparisons (result Bool, operands of any one register type; on
    /// floats they are ordered: false when an operand is NaN).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            IntOp::Lt | IntOp::Le | IntOp::Eq | IntOp::Gt | IntOp::Ge
        )
    }
}

/// One statement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Stmt {
    /// `dst = special`
    Special {
        /// Destination (U32 or I32).
        dst: Reg,
        /// Which built-in.
        which: Special,
    },
    /// `dst = src`
    Mov {
        /// Destination.
        dst: Reg,
        /// Source.
        src: Operand,
    },
    /// `dst = op(x)` on floats.
    Unary {
        /// Destination.
        dst: Reg,
        /// Which op.
        op: UnaryOp,
        /// Operand.
        x: Operand,
    },
    /// `dst = op(a, b)` on floats (or ints for add/sub/mul/max).
    Binary {
        /// Destination.
        dst: Reg,
        /// Which op.
        op: BinaryOp,
        /// Left.
        a: Operand,
        /// Right.
        b: Operand,
    },
    /// `dst = op(a, b)` on integers / predicates.
    Int {
        /// Destination.
        dst: Reg,
        /// Which op.
        op: IntOp,
        /// Left.
        a: Operand,
        /// Right.
        b: Operand,
    },
    /// `dst = a * b + c` (fused multiply-add on floats).
    Fma {
        /// Destination.
        dst: Reg,
        /// Factor.
        a: Operand,
        /// Factor.
        b: Operand,
        /// Addend.
        c: Operand,
    },
    /// `dst = convert(src)` to the destination register's type.
    Cast {
        /// Destination.
        dst: Reg,
        /// Source.
        src: Operand,
    },
    /// `dst = bits of src` reinterpreted as the destination register's type (both
    /// 32-bit: F32, I32 or U32).
    Bitcast {
        /// Destination.
        dst: Reg,
        /// Source (a register or an immediate of a 32-bit type).
        src: Operand,
    },
    /// `dst = cond ? a : b`
    Select {
        /// Destination.
        dst: Reg,
        /// Predicate.
        cond: Operand,
        /// Value if true.
        a: Operand,
        /// Value if false.
        b: Operand,
    },
    /// `dst = buffer[index]` (element index; converts from the buffer's dtype).
    LoadGlobal {
        /// Destination.
        dst: Reg,
        /// Kernel parameter index.
        buffer: usize,
        /// Element index (I32).
        index: Operand,
    },
    /// `buffer[index] = value` (converts to the buffer's dtype).
    StoreGlobal {
        /// Kernel parameter index.
        buffer: usize,
        /// Element index (I32).
        index: Operand,
        /// Value.
        value: Operand,
    },
    /// `dst[i] = buffer[index + i]` for `i` in `0..4`: one 16-byte load. `index` is a
    /// multiple of 4 and all four elements lie inside the buffer (the lowering guards
    /// the statement); the buffer holds a 32-bit dtype (f32, i32 or u32, loaded into
    /// registers of that type) and is bound as 4-element vectors
    /// ([`SimtBuffer::vector`]).
    LoadGlobal4 {
        /// Destinations, in element order.
        dst: [Reg; 4],
        /// Kernel parameter index.
        buffer: usize,
        /// Element index of the first element (I32, a multiple of 4).
        index: Operand,
    },
    /// `buffer[index + i] = values[i]` for `i` in `0..4`: one 16-byte store, under the
    /// conditions of [`Stmt::LoadGlobal4`] (values converted to the buffer's dtype).
    StoreGlobal4 {
        /// Kernel parameter index.
        buffer: usize,
        /// Element index of the first element (I32, a multiple of 4).
        index: Operand,
        /// Values, in element order.
        values: [Operand; 4],
    },
    /// `dst = shared[array][index]`
    LoadShared {
        /// Destination.
        dst: Reg,
        /// Shared array index in [`SimtKernel::shared`].
        array: usize,
        /// Element index (I32).
        index: Operand,
    },
    /// `shared[array][index] = value`
    StoreShared {
        /// Shared array index.
        array: usize,
        /// Element index (I32).
        index: Operand,
        /// Value.
        value: Operand,
    },
    /// Workgroup barrier (also orders shared-memory accesses).
    Barrier,
    /// `dst = src` as held by invocation `lane` of this invocation's subgroup (a
    /// subgroup shuffle; 32-bit types). Only emitted for a target whose
    /// `Target::subgroup_size` is the thread grid's column count, in uniform control
    /// flow (every invocation of the subgroup executes it).
    Shuffle {
        /// Destination (F32, I32 or U32).
        dst: Reg,
        /// The value each invocation offers (the destination's type).
        src: Operand,
        /// Index of the invocation read, within the subgroup (I32, below the subgroup
        /// size).
        lane: Operand,
    },
    /// Structured conditional.
    If {
        /// Predicate (Bool).
        cond: Operand,
        /// Taken when true.
        then: Vec<Stmt>,
        /// Taken when false.
        els: Vec<Stmt>,
    },
    /// `for var = start; var < end; var += step { body }` (I32, step > 0).
    Loop {
        /// Induction register (I32).
        var: Reg,
        /// Start.
        start: Operand,
        /// Exclusive end.
        end: Operand,
        /// Step.
        step: i64,
        /// Body.
        body: Vec<Stmt>,
    },
}

/// A buffer parameter as the printers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimtBuffer {
    /// Name.
    pub name: String,
    /// Element dtype in memory.
    pub dtype: DType,
    /// Element count.
    pub len: usize,
    /// Written by the kernel.
    pub writable: bool,
    /// Bound as 4-element vectors (`array<vec4<T>>` in WGSL) because the program moves
    /// some of its elements four at a time ([`Stmt::LoadGlobal4`],
    /// [`Stmt::StoreGlobal4`]); element accesses still index single elements. The
    /// buffer's binding must then be a multiple of 16 bytes (the runtimes round every
    /// storage slot up to that).
    #[serde(default)]
    pub vector: bool,
}

/// A workgroup-shared array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedArray {
    /// Element type.
    pub ty: SType,
    /// Element count.
    pub len: usize,
}

/// A per-thread program for one workgroup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimtKernel {
    /// Entry point name.
    pub name: String,
    /// Buffers in binding order.
    pub buffers: Vec<SimtBuffer>,
    /// Threads per workgroup (1-D).
    pub workgroup_size: u32,
    /// Workgroups per grid axis.
    pub grid: [u32; 3],
    /// Register types, indexed by [`Reg`].
    pub regs: Vec<SType>,
    /// Shared arrays.
    pub shared: Vec<SharedArray>,
    /// The program.
    pub body: Vec<Stmt>,
}
