//! The tile IR: hardware-neutral block-level kernels in the style of Triton.
//!
//! A [`TileKernel`] runs as a grid of *program instances*. Each instance executes the
//! kernel body once, working on *tiles* (small static-shape arrays of rank 1 or 2) and
//! uniform *scalars*. Values are in SSA form: every instruction defines at most one
//! [`ValueId`], whose type is recorded in [`TileKernel::values`].
//!
//! Memory access is through *block accesses* (Triton's block pointers): a tile of shape
//! `[s0, s1]` at `base + i*stride0 + j*stride1`, where element `(i, j)` is valid iff
//! `i < limit0 && j < limit1`. Strides are compile-time constants (shapes are static);
//! `base` and the limits are scalar values. Invalid elements read `other` and are not
//! written. Every backend can lower this: GPUs compute one address per element, Ascend
//! moves whole rows with `DataCopyPad`.
//!
//! The tile IR is built by [`crate::tile::build`] from scheduled kernels, executed by
//! [`crate::interp::tile`] in f32, lowered by [`crate::simt`] (WGSL, PTX) and by
//! [`crate::backend::ascendc`].

pub mod build;
pub mod ops;
mod print;

pub use crate::graph::{BinaryOp, CompareOp, DType, ReduceOp, UnaryOp};
pub use print::{print_kernel, print_plan};

use serde::{Deserialize, Serialize};
use std::fmt;

/// Handle of an SSA value within one [`TileKernel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub u32);

impl ValueId {
    /// Index into [`TileKernel::values`].
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// The type of a tile-IR value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ty {
    /// A uniform scalar (the same in the whole program instance).
    Scalar(DType),
    /// A tile of static shape (rank 1 or 2).
    Tile(Vec<usize>, DType),
}

impl Ty {
    /// Element dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Ty::Scalar(d) | Ty::Tile(_, d) => *d,
        }
    }

    /// Tile shape, or `None` for a scalar.
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            Ty::Scalar(_) => None,
            Ty::Tile(s, _) => Some(s),
        }
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape().map_or(1, |s| s.iter().product())
    }
}

/// Whether a kernel buffer parameter is read, written or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Only loaded from.
    Read,
    /// Only stored to.
    Write,
    /// Loaded and stored.
    ReadWrite,
}

/// A kernel parameter: a device buffer of elements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferParam {
    /// Name (a graph node name or a generated one), used by printers.
    pub name: String,
    /// Element dtype in memory.
    pub dtype: DType,
    /// Element count of the buffer (static).
    pub len: usize,
    /// Access mode.
    pub access: Access,
}

/// Integer / index arithmetic on i32 scalars (address and loop computations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IndexOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (operands non-negative)
    Div,
    /// `a % b` (operands non-negative)
    Rem,
    /// `min(a, b)`
    Min,
    /// `max(a, b)`
    Max,
}

impl IndexOp {
    /// Semantics on i64 (the interpreter's index type).
    pub fn eval(self, a: i64, b: i64) -> i64 {
        match self {
            IndexOp::Add => a + b,
            IndexOp::Sub => a - b,
            IndexOp::Mul => a * b,
            IndexOp::Div => a / b,
            IndexOp::Rem => a % b,
            IndexOp::Min => a.min(b),
            IndexOp::Max => a.max(b),
        }
    }

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            IndexOp::Add => "iadd",
            IndexOp::Sub => "isub",
            IndexOp::Mul => "imul",
            IndexOp::Div => "idiv",
            IndexOp::Rem => "irem",
            IndexOp::Min => "imin",
            IndexOp::Max => "imax",
        }
    }
}

/// A block access: which elements of a buffer a tile (or scalar) covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockAccess {
    /// Index of the buffer in [`TileKernel::params`].
    pub buffer: usize,
    /// Element offset of tile element `(0, ..)` (an i32 scalar value).
    pub base: ValueId,
    /// Element stride per tile axis (0 broadcasts along that axis). Empty for a scalar.
    pub strides: Vec<i64>,
    /// Number of valid elements per tile axis, counted from the tile origin (i32 scalar
    /// values; may exceed the tile extent, meaning all valid). Empty for a scalar.
    pub limits: Vec<ValueId>,
    /// Static tile shape (empty for a scalar access).
    pub shape: Vec<usize>,
}

impl BlockAccess {
    /// The access of one scalar element of `buffer` at element offset `base`.
    pub fn scalar(buffer: usize, base: ValueId) -> BlockAccess {
        BlockAccess {
            buffer,
            base,
            strides: vec![],
            limits: vec![],
            shape: vec![],
        }
    }
}

/// One instruction. Its result, if any, is `Inst::result`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InstKind {
    /// Index of this program instance along a grid axis (i32 scalar).
    ProgramId {
        /// Grid axis 0, 1 or 2.
        axis: u8,
    },
    /// An i32 scalar constant.
    ConstIndex(i64),
    /// A float scalar constant of the given dtype.
    ConstFloat(f64, DType),
    /// Index arithmetic on i32 scalars.
    Index {
        /// Which op.
        op: IndexOp,
        /// Left operand.
        a: ValueId,
        /// Right operand.
        b: ValueId,
    },
    /// Elementwise unary op on a tile or scalar.
    Unary {
        /// Which op.
        op: UnaryOp,
        /// Operand.
        x: ValueId,
    },
    /// Elementwise binary op; operands are tiles of one shape, or a tile and a scalar
    /// (the scalar is broadcast), or two scalars.
    Binary {
        /// Which op.
        op: BinaryOp,
        /// Left operand.
        a: ValueId,
        /// Right operand.
        b: ValueId,
    },
    /// Elementwise comparison (bool result); operands as for [`InstKind::Binary`], of
    /// one dtype. On floats it is ordered: false when an operand is NaN.
    Compare {
        /// Which comparison.
        op: CompareOp,
        /// Left operand.
        a: ValueId,
        /// Right operand.
        b: ValueId,
    },
    /// Elementwise `cond ? a : b`; `cond` is bool, `a` and `b` share a dtype; tiles of
    /// one shape and scalars (broadcast) mix as for [`InstKind::Binary`].
    Select {
        /// Bool condition.
        cond: ValueId,
        /// Value where true.
        a: ValueId,
        /// Value where false.
        b: ValueId,
    },
    /// Conversion of every element to another dtype.
    Cast {
        /// Operand.
        x: ValueId,
        /// Target dtype.
        to: DType,
    },
    /// A tile of the given shape filled with a scalar.
    Splat {
        /// The scalar.
        x: ValueId,
        /// Tile shape.
        shape: Vec<usize>,
    },
    /// An `i32` tile of the given shape whose element `idx` is `idx[axis]` (the position
    /// within the tile along one axis: add a scalar for a global index).
    Iota {
        /// Tile shape.
        shape: Vec<usize>,
        /// The counted axis.
        axis: usize,
    },
    /// A rank-1 tile `[n]` repeated along a new axis of extent `size`: `[size, n]` with
    /// `axis` 0, `[n, size]` with `axis` 1 (the inverse of a rank-2 `Reduce` along `axis`).
    Expand {
        /// The rank-1 operand.
        x: ValueId,
        /// The new axis (0 or 1).
        axis: usize,
        /// Its extent.
        size: usize,
    },
    /// Loads a tile (or, with an empty shape, a scalar) from a buffer; masked-off
    /// elements read `other`. The result dtype is the buffer's dtype.
    Load {
        /// Where.
        access: BlockAccess,
        /// Value of masked-off elements.
        other: f64,
    },
    /// Stores a tile (or scalar) to a buffer; masked-off elements are not written.
    Store {
        /// Where.
        access: BlockAccess,
        /// What (same shape as the access; dtype converted to the buffer's dtype).
        value: ValueId,
    },
    /// Reduces a tile: a rank-1 tile to a scalar (`axis` 0), or a rank-2 tile along
    /// `axis` to a rank-1 tile. `Mean` is not a reduce kind here (sum, then scale).
    Reduce {
        /// Sum or max.
        op: ReduceOp,
        /// Operand.
        x: ValueId,
        /// Axis reduced.
        axis: usize,
    },
    /// `acc + a @ b` for tiles `a: [M, K]`, `b: [K, N]`, `acc: [M, N]` (f32 accumulation).
    Dot {
        /// Left tile.
        a: ValueId,
        /// Right tile.
        b: ValueId,
        /// Accumulator.
        acc: ValueId,
    },
    /// A counted loop `for iv in (start..end).step_by(step)` with loop-carried values.
    /// The body's [`Block::args`] are `[iv, carried...]` and its [`Block::yields`] give the
    /// next carried values; the instruction's results are the final carried values.
    For {
        /// First induction value (i32 scalar).
        start: ValueId,
        /// Exclusive bound (i32 scalar).
        end: ValueId,
        /// Positive static step.
        step: i64,
        /// Initial carried values.
        init: Vec<ValueId>,
        /// The body.
        body: Block,
    },
}

/// One instruction and the values it defines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inst {
    /// Values defined: none (store), one (most), several (`For`).
    pub results: Vec<ValueId>,
    /// The operation.
    pub kind: InstKind,
}

/// A straight-line sequence of instructions with block arguments and yielded values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Block {
    /// Values bound on entry (loop bodies: induction variable, then carried values).
    pub args: Vec<ValueId>,
    /// Instructions in order.
    pub insts: Vec<Inst>,
    /// Values passed to the next iteration (loop bodies only).
    pub yields: Vec<ValueId>,
}

/// A whole tile kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TileKernel {
    /// Kernel (entry point) name; says what it computes.
    pub name: String,
    /// Buffer parameters in binding order.
    pub params: Vec<BufferParam>,
    /// Number of program instances along each grid axis.
    pub grid: [u32; 3],
    /// Type of every value, indexed by [`ValueId`].
    pub values: Vec<Ty>,
    /// The body, run once per program instance.
    pub body: Block,
}

impl TileKernel {
    /// Type of a value.
    pub fn ty(&self, v: ValueId) -> &Ty {
        &self.values[v.index()]
    }

    /// Total number of program instances.
    pub fn num_programs(&self) -> u64 {
        self.grid.iter().map(|&g| g as u64).product()
    }
}

/// A helper to build a [`TileKernel`] body with fresh SSA values.
#[derive(Debug, Default)]
pub struct TileBuilder {
    values: Vec<Ty>,
    blocks: Vec<Block>,
}

impl TileBuilder {
    /// A builder with an empty top-level block.
    pub fn new() -> Self {
        TileBuilder {
            values: Vec::new(),
            blocks: vec![Block::default()],
        }
    }

    fn fresh(&mut self, ty: Ty) -> ValueId {
        self.values.push(ty);
        ValueId(self.values.len() as u32 - 1)
    }

    /// Type of a value built so far.
    pub fn ty(&self, v: ValueId) -> &Ty {
        &self.values[v.index()]
    }

    fn emit(&mut self, kind: InstKind, result_ty: Option<Ty>) -> Option<ValueId> {
        let r = result_ty.map(|t| self.fresh(t));
        let block = self.blocks.last_mut().expect("a block is open");
        block.insts.push(Inst {
            results: r.into_iter().collect(),
            kind,
        });
        r
    }

    fn emit1(&mut self, kind: InstKind, ty: Ty) -> ValueId {
        self.emit(kind, Some(ty)).expect("has a result")
    }

    /// `program_id(axis)`
    pub fn program_id(&mut self, axis: u8) -> ValueId {
        self.emit1(InstKind::ProgramId { axis }, Ty::Scalar(DType::I32))
    }

    /// i32 constant.
    pub fn index(&mut self, v: i64) -> ValueId {
        self.emit1(InstKind::ConstIndex(v), Ty::Scalar(DType::I32))
    }

    /// Float constant.
    pub fn float(&mut self, v: f64, dtype: DType) -> ValueId {
        self.emit1(InstKind::ConstFloat(v, dtype), Ty::Scalar(dtype))
    }

    /// Index arithmetic.
    pub fn iop(&mut self, op: IndexOp, a: ValueId, b: ValueId) -> ValueId {
        self.emit1(InstKind::Index { op, a, b }, Ty::Scalar(DType::I32))
    }

    /// Elementwise unary.
    pub fn unary(&mut self, op: UnaryOp, x: ValueId) -> ValueId {
        let ty = self.ty(x).clone();
        self.emit1(InstKind::Unary { op, x }, ty)
    }

    /// Elementwise binary (a tile operand's shape wins over a scalar's).
    pub fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> ValueId {
        let ty = match (self.ty(a), self.ty(b)) {
            (Ty::Scalar(_), t @ Ty::Tile(..)) => t.clone(),
            (t, _) => t.clone(),
        };
        self.emit1(InstKind::Binary { op, a, b }, ty)
    }

    /// Elementwise comparison (bool result; a tile operand's shape wins).
    pub fn compare(&mut self, op: CompareOp, a: ValueId, b: ValueId) -> ValueId {
        let ty = match (self.ty(a), self.ty(b)) {
            (Ty::Tile(s, _), _) | (Ty::Scalar(_), Ty::Tile(s, _)) => {
                Ty::Tile(s.clone(), DType::Bool)
            }
            _ => Ty::Scalar(DType::Bool),
        };
        self.emit1(InstKind::Compare { op, a, b }, ty)
    }

    /// Elementwise select (the dtype of `a`; a tile operand's shape wins).
    pub fn select(&mut self, cond: ValueId, a: ValueId, b: ValueId) -> ValueId {
        let d = self.ty(a).dtype();
        let shape = [cond, a, b]
            .iter()
            .find_map(|&v| self.ty(v).shape().map(<[usize]>::to_vec));
        let ty = match shape {
            Some(s) => Ty::Tile(s, d),
            None => Ty::Scalar(d),
        };
        self.emit1(InstKind::Select { cond, a, b }, ty)
    }

    /// Dtype conversion.
    pub fn cast(&mut self, x: ValueId, to: DType) -> ValueId {
        let ty = match self.ty(x) {
            Ty::Scalar(_) => Ty::Scalar(to),
            Ty::Tile(s, _) => Ty::Tile(s.clone(), to),
        };
        self.emit1(InstKind::Cast { x, to }, ty)
    }

    /// Scalar to tile.
    pub fn splat(&mut self, x: ValueId, shape: &[usize]) -> ValueId {
        let d = self.ty(x).dtype();
        self.emit1(
            InstKind::Splat {
                x,
                shape: shape.to_vec(),
            },
            Ty::Tile(shape.to_vec(), d),
        )
    }

    /// `i32` position tile along `axis`.
    pub fn iota(&mut self, shape: &[usize], axis: usize) -> ValueId {
        self.emit1(
            InstKind::Iota {
                shape: shape.to_vec(),
                axis,
            },
            Ty::Tile(shape.to_vec(), DType::I32),
        )
    }

    /// Rank-1 tile repeated along a new axis `axis` of extent `size`.
    pub fn expand(&mut self, x: ValueId, axis: usize, size: usize) -> ValueId {
        let (n, d) = match self.ty(x) {
            Ty::Tile(s, d) => (s.first().copied().unwrap_or(1), *d),
            Ty::Scalar(d) => (1, *d),
        };
        let shape = if axis == 0 {
            vec![size, n]
        } else {
            vec![n, size]
        };
        self.emit1(InstKind::Expand { x, axis, size }, Ty::Tile(shape, d))
    }

    /// Block load; `dtype` is the buffer's dtype.
    pub fn load(&mut self, access: BlockAccess, dtype: DType, other: f64) -> ValueId {
        let ty = if access.shape.is_empty() {
            Ty::Scalar(dtype)
        } else {
            Ty::Tile(access.shape.clone(), dtype)
        };
        self.emit1(InstKind::Load { access, other }, ty)
    }

    /// Block store.
    pub fn store(&mut self, access: BlockAccess, value: ValueId) {
        self.emit(InstKind::Store { access, value }, None);
    }

    /// Reduction of a tile along an axis.
    pub fn reduce(&mut self, op: ReduceOp, x: ValueId, axis: usize) -> ValueId {
        let (shape, d) = match self.ty(x) {
            Ty::Tile(s, d) => (s.clone(), *d),
            Ty::Scalar(d) => (vec![], *d),
        };
        let mut rest = shape;
        if axis < rest.len() {
            rest.remove(axis);
        }
        let ty = if rest.is_empty() {
            Ty::Scalar(d)
        } else {
            Ty::Tile(rest, d)
        };
        self.emit1(InstKind::Reduce { op, x, axis }, ty)
    }

    /// `acc + a @ b`.
    pub fn dot(&mut self, a: ValueId, b: ValueId, acc: ValueId) -> ValueId {
        let ty = self.ty(acc).clone();
        self.emit1(InstKind::Dot { a, b, acc }, ty)
    }

    /// Opens a loop body: returns `[iv, carried...]` block arguments. Close it with
    /// [`TileBuilder::end_for`].
    pub fn begin_for(&mut self, init: &[ValueId]) -> Vec<ValueId> {
        let iv = self.fresh(Ty::Scalar(DType::I32));
        let mut args = vec![iv];
        for &v in init {
            let t = self.ty(v).clone();
            args.push(self.fresh(t));
        }
        self.blocks.push(Block {
            args: args.clone(),
            insts: vec![],
            yields: vec![],
        });
        args
    }

    /// Closes the innermost loop body, yielding `yields`; returns the loop's results.
    pub fn end_for(
        &mut self,
        start: ValueId,
        end: ValueId,
        step: i64,
        init: &[ValueId],
        yields: &[ValueId],
    ) -> Vec<ValueId> {
        let mut body = self.blocks.pop().expect("begin_for opened a block");
        body.yields = yields.to_vec();
        let results: Vec<ValueId> = init
            .iter()
            .map(|&v| {
                let t = self.ty(v).clone();
                self.fresh(t)
            })
            .collect();
        let block = self.blocks.last_mut().expect("an enclosing block");
        block.insts.push(Inst {
            results: results.clone(),
            kind: InstKind::For {
                start,
                end,
                step,
                init: init.to_vec(),
                body,
            },
        });
        results
    }

    /// Finishes the kernel.
    pub fn finish(mut self, name: String, params: Vec<BufferParam>, grid: [u32; 3]) -> TileKernel {
        let body = self.blocks.swap_remove(0);
        TileKernel {
            name,
            params,
            grid,
            values: self.values,
            body,
        }
    }
}
