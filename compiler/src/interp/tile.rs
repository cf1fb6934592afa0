//! Executes tile kernels, and whole plans, on the CPU in `f32`.
//!
//! Every program instance of the grid runs in turn (axis 0 fastest), executing the body
//! with the semantics the tile IR documents:
//! - index scalars (`program_id`, index constants, `Index` ops, loop induction values) are
//!   `i64` here; a value outside the i32 range the devices use is an error, as is a
//!   division by zero;
//! - float scalars and tile elements are `f32`; each elementwise result is computed in
//!   f64 from the f32 operands and rounded once to f32 (bit-identical to f32 arithmetic
//!   for add/sub/mul/div, correctly rounded for the transcendental ops), then rounded
//!   to the result's dtype (f16 and bf16 round through `half`, i32/u32 truncate and wrap);
//! - integer and bool buffers and tiles hold their (exact, small) integer values as f32,
//!   so integers beyond 2^24 in magnitude are not represented exactly;
//! - loads and stores address `base + sum(idx[a] * stride[a])`; an element is valid iff
//!   `idx[a] < limit[a]` on every axis; invalid elements load `other` and are not
//!   stored. A *valid* element whose address lies outside its buffer is an
//!   [`InterpError::OutOfBounds`] naming the kernel, the buffer and the offset;
//! - `Reduce` and `Dot` accumulate sequentially in f32 (Dot starts from the accumulator);
//!   a rank-2 `Reduce` combines each row (axis 1) or column (axis 0) in index order;
//! - `Iota` holds each element's position along its axis; `Expand` repeats a rank-1
//!   tile along the new axis (both rounded to the result dtype, exact for i32 / f32);
//! - `For` loops run `start, start+step, .. < end` carrying values through block args.
//!
//! [`run_plan`] allocates one f32 vector per storage slot of the memory plan, so buffers
//! that share a slot share memory and a wrong memory plan yields wrong results. Slots start
//! filled with NaN, so reading memory nobody wrote shows up in the results.

use super::graph::{bytes_of, Limits};
use super::tensor::{round_to_dtype, Tensor};
use super::InterpError;
use crate::graph::{BinaryOp, CompareOp, DType, ReduceOp, TensorType};
use crate::schedule::plan::{BufferRole, Plan};
use crate::tile::{Block, BlockAccess, IndexOp, Inst, InstKind, TileKernel, Ty, ValueId};
use std::collections::HashMap;

/// Runs every program instance of `kernel` over `buffers`: one vector per kernel
/// parameter, in parameter order, holding the elements converted to f32.
pub fn run_kernel(kernel: &TileKernel, buffers: &mut [Vec<f32>]) -> Result<(), InterpError> {
    if buffers.len() != kernel.params.len() {
        return Err(InterpError::BadKernel {
            kernel: kernel.name.clone(),
            message: format!(
                "{} buffers given for {} parameters",
                buffers.len(),
                kernel.params.len()
            ),
        });
    }
    let slots: Vec<usize> = (0..buffers.len()).collect();
    exec_kernel(kernel, buffers, &slots)
}

/// Runs a plan: allocates its storage, fills inputs and parameters (looked up by node
/// name in `inputs`, each of the buffer's shape and dtype) and constants, runs the
/// launches in order and returns the outputs by node name. Memory is bounded by
/// [`Limits::default`].
pub fn run_plan(
    plan: &Plan,
    inputs: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, InterpError> {
    run_plan_with(plan, inputs, &Limits::default())
}

/// [`run_plan`] under the given memory bound: the plan's storage (4 bytes an element) and
/// the f64 outputs it returns (8) must fit in [`Limits::max_bytes`] together.
pub fn run_plan_with(
    plan: &Plan,
    inputs: &HashMap<String, Tensor>,
    limits: &Limits,
) -> Result<HashMap<String, Tensor>, InterpError> {
    let bad = |message: String| InterpError::BadPlan { message };
    // Storage: one vector per slot, as long as the longest buffer placed in it.
    let mut lens = vec![0usize; plan.storage.len()];
    for (i, b) in plan.buffers.iter().enumerate() {
        let slot = plan.storage.get(b.storage).ok_or_else(|| {
            bad(format!(
                "buffer {i} uses missing storage slot {}",
                b.storage
            ))
        })?;
        if TensorType::checked_numel(&b.shape) != Some(b.len) {
            return Err(bad(format!(
                "buffer {i} has len {} but shape {:?}",
                b.len, b.shape
            )));
        }
        // Compiled buffers are indexed with i32 (`CompileError::Limit`); a plan with a
        // larger one was not made by the compiler.
        if b.len > i32::MAX as usize {
            return Err(bad(format!(
                "buffer {i} has {} elements, more than i32 indices reach",
                b.len
            )));
        }
        let needs = b.len * b.dtype.size_bytes();
        if slot.bytes < needs {
            return Err(bad(format!(
                "storage slot {} has {} bytes, buffer {i} needs {needs}",
                b.storage, slot.bytes
            )));
        }
        lens[b.storage] = lens[b.storage].max(b.len);
    }
    let stored: usize = lens.iter().fold(0usize, |a, &n| a.saturating_add(n));
    let returned: usize = plan
        .outputs
        .iter()
        .filter_map(|(_, id)| plan.buffers.get(id.0 as usize))
        .fold(0usize, |a, b| a.saturating_add(b.len));
    let needed = bytes_of(stored, 4).saturating_add(bytes_of(returned, 8));
    if needed > limits.max_bytes {
        return Err(InterpError::MemoryLimit {
            node: "plan storage".into(),
            within: None,
            shape: vec![stored],
            needed,
            held: 0,
            limit: limits.max_bytes,
        });
    }
    let mut storage: Vec<Vec<f32>> = lens.iter().map(|&n| vec![f32::NAN; n]).collect();
    for b in &plan.buffers {
        let dst = &mut storage[b.storage][..b.len];
        match &b.role {
            BufferRole::Input { name } | BufferRole::Param { name } => {
                let t = inputs
                    .get(name)
                    .ok_or_else(|| InterpError::MissingInput { name: name.clone() })?;
                if t.shape != b.shape {
                    return Err(InterpError::InputShape {
                        name: name.clone(),
                        expected: b.shape.clone(),
                        got: t.shape.clone(),
                    });
                }
                if t.dtype != b.dtype {
                    return Err(InterpError::InputDType {
                        name: name.clone(),
                        expected: b.dtype,
                        got: t.dtype,
                    });
                }
                if t.data.len() != b.len {
                    return Err(InterpError::DataLength {
                        what: "plan input",
                        shape: t.shape.clone(),
                        expected: b.len,
                        got: t.data.len(),
                    });
                }
                for (d, &v) in dst.iter_mut().zip(&t.data) {
                    *d = round_to_dtype(v, b.dtype) as f32;
                }
            }
            BufferRole::Constant { value } => {
                dst.fill(round_to_dtype(*value, b.dtype) as f32);
            }
            BufferRole::Output { .. } | BufferRole::Temp => {}
        }
    }
    for (li, launch) in plan.launches.iter().enumerate() {
        let kernel = plan.kernels.get(launch.kernel).ok_or_else(|| {
            bad(format!(
                "launch {li} names missing kernel {}",
                launch.kernel
            ))
        })?;
        if launch.args.len() != kernel.params.len() {
            return Err(bad(format!(
                "launch {li} of `{}` passes {} buffers for {} parameters",
                kernel.name,
                launch.args.len(),
                kernel.params.len()
            )));
        }
        let mut slots = Vec::with_capacity(launch.args.len());
        for (p, &arg) in kernel.params.iter().zip(&launch.args) {
            let b = plan
                .buffers
                .get(arg.0 as usize)
                .ok_or_else(|| bad(format!("launch {li} passes missing buffer {}", arg.0)))?;
            if b.len != p.len || b.dtype != p.dtype {
                return Err(bad(format!(
                    "launch {li} of `{}`: parameter `{}` is {}[{}] but buffer {} is {}[{}]",
                    kernel.name, p.name, p.dtype, p.len, arg.0, b.dtype, b.len
                )));
            }
            slots.push(b.storage);
        }
        exec_kernel(kernel, &mut storage, &slots)?;
    }
    let mut out = HashMap::new();
    for (name, id) in &plan.outputs {
        let b = plan
            .buffers
            .get(id.0 as usize)
            .ok_or_else(|| bad(format!("output `{name}` names missing buffer {}", id.0)))?;
        let t = Tensor::from_f32(&b.shape, b.dtype, &storage[b.storage][..b.len])?;
        out.insert(name.clone(), t);
    }
    Ok(out)
}

/// A runtime value of the tile IR.
#[derive(Clone, Debug)]
enum Val {
    /// An i32 (or u32 / bool) scalar, held as i64.
    Int(i64),
    /// A float scalar.
    Float(f32),
    /// A tile: static shape and row-major elements.
    Tile(Vec<usize>, Vec<f32>),
}

impl Val {
    fn kind(&self) -> String {
        match self {
            Val::Int(_) => "an integer scalar".into(),
            Val::Float(_) => "a float scalar".into(),
            Val::Tile(s, _) => format!("a tile {s:?}"),
        }
    }
}

/// A scalar of a dtype from an f64 value (rounded to the dtype).
fn scalar(dtype: DType, v: f64) -> Val {
    let r = round_to_dtype(v, dtype);
    if dtype.is_float() {
        Val::Float(r as f32)
    } else {
        Val::Int(r as i64)
    }
}

/// Runs every program of a kernel; parameter `p` lives in `storage[slots[p]]`.
fn exec_kernel(
    kernel: &TileKernel,
    storage: &mut [Vec<f32>],
    slots: &[usize],
) -> Result<(), InterpError> {
    let mut ex = Exec {
        kernel,
        env: vec![None; kernel.values.len()],
        storage,
        slots,
        program: [0; 3],
    };
    for z in 0..kernel.grid[2] {
        for y in 0..kernel.grid[1] {
            for x in 0..kernel.grid[0] {
                ex.program = [x, y, z];
                ex.env.iter_mut().for_each(|v| *v = None);
                ex.block(&kernel.body)?;
            }
        }
    }
    Ok(())
}

struct Exec<'a> {
    kernel: &'a TileKernel,
    env: Vec<Option<Val>>,
    storage: &'a mut [Vec<f32>],
    slots: &'a [usize],
    program: [u32; 3],
}

impl Exec<'_> {
    fn err(&self, message: impl Into<String>) -> InterpError {
        InterpError::BadKernel {
            kernel: self.kernel.name.clone(),
            message: message.into(),
        }
    }

    fn get(&self, v: ValueId) -> Result<&Val, InterpError> {
        self.env
            .get(v.index())
            .and_then(Option::as_ref)
            .ok_or_else(|| self.err(format!("{v} is used before it is defined")))
    }

    fn set(&mut self, v: ValueId, val: Val) -> Result<(), InterpError> {
        let slot = self
            .env
            .get_mut(v.index())
            .ok_or_else(|| InterpError::BadKernel {
                kernel: self.kernel.name.clone(),
                message: format!("{v} has no type in the value table"),
            })?;
        *slot = Some(val);
        Ok(())
    }

    fn ty(&self, v: ValueId) -> Result<&Ty, InterpError> {
        self.kernel
            .values
            .get(v.index())
            .ok_or_else(|| self.err(format!("{v} has no type in the value table")))
    }

    fn index(&self, v: ValueId) -> Result<i64, InterpError> {
        match self.get(v)? {
            Val::Int(i) => Ok(*i),
            other => Err(self.err(format!("{v} is {}, expected an index scalar", other.kind()))),
        }
    }

    fn scalar_f64(&self, v: ValueId) -> Result<f64, InterpError> {
        match self.get(v)? {
            Val::Int(i) => Ok(*i as f64),
            Val::Float(f) => Ok(*f as f64),
            Val::Tile(s, _) => Err(self.err(format!("{v} is a tile {s:?}, expected a scalar"))),
        }
    }

    fn check_i32(&self, v: i64, what: &str) -> Result<i64, InterpError> {
        if i32::try_from(v).is_ok() {
            Ok(v)
        } else {
            Err(self.err(format!("{what}: index value {v} overflows i32")))
        }
    }

    fn block(&mut self, block: &Block) -> Result<(), InterpError> {
        for inst in &block.insts {
            self.inst(inst)?;
        }
        Ok(())
    }

    fn one_result(&self, inst: &Inst) -> Result<(ValueId, DType), InterpError> {
        match inst.results.as_slice() {
            [r] => Ok((*r, self.ty(*r)?.dtype())),
            rs => Err(self.err(format!(
                "{:?} defines {} values, expected 1",
                inst.kind,
                rs.len()
            ))),
        }
    }

    fn inst(&mut self, inst: &Inst) -> Result<(), InterpError> {
        match &inst.kind {
            InstKind::Iota { shape, axis } => {
                let (r, d) = self.one_result(inst)?;
                let v = self.iota(shape, *axis, d)?;
                self.set(r, v)
            }
            InstKind::Expand { x, axis, size } => {
                let (r, d) = self.one_result(inst)?;
                let v = self.expand(*x, *axis, *size, d)?;
                self.set(r, v)
            }
            InstKind::ProgramId { axis } => {
                let (r, _) = self.one_result(inst)?;
                let p = *self
                    .program
                    .get(*axis as usize)
                    .ok_or_else(|| self.err(format!("program_id axis {axis} (must be 0..3)")))?;
                self.set(r, Val::Int(p as i64))
            }
            InstKind::ConstIndex(v) => {
                let (r, _) = self.one_result(inst)?;
                let v = self.check_i32(*v, "constant")?;
                self.set(r, Val::Int(v))
            }
            InstKind::ConstFloat(v, d) => {
                let (r, _) = self.one_result(inst)?;
                self.set(r, scalar(*d, *v))
            }
            InstKind::Index { op, a, b } => {
                let (r, _) = self.one_result(inst)?;
                let (x, y) = (self.index(*a)?, self.index(*b)?);
                let v = match op {
                    IndexOp::Add => x.checked_add(y),
                    IndexOp::Sub => x.checked_sub(y),
                    IndexOp::Mul => x.checked_mul(y),
                    IndexOp::Div => x.checked_div(y),
                    IndexOp::Rem => x.checked_rem(y),
                    IndexOp::Min | IndexOp::Max => Some(op.eval(x, y)),
                }
                .ok_or_else(|| self.err(format!("{r} = {} {x}, {y}: undefined", op.name())))?;
                let v = self.check_i32(v, &format!("{r} = {} {x}, {y}", op.name()))?;
                self.set(r, Val::Int(v))
            }
            InstKind::Unary { op, x } => {
                let (r, d) = self.one_result(inst)?;
                let op = *op;
                let v = self.map(*x, d, |v| op.eval(v))?;
                self.set(r, v)
            }
            InstKind::Binary { op, a, b } => {
                let (r, d) = self.one_result(inst)?;
                let v = self.binary(*op, *a, *b, d)?;
                self.set(r, v)
            }
            InstKind::Compare { op, a, b } => {
                let (r, _) = self.one_result(inst)?;
                let op: CompareOp = *op;
                let v = self.nary(r, &[*a, *b], |x| f64::from(u8::from(op.eval(x[0], x[1]))))?;
                self.set(r, v)
            }
            InstKind::Select { cond, a, b } => {
                let (r, _) = self.one_result(inst)?;
                let v = self.nary(
                    r,
                    &[*cond, *a, *b],
                    |x| if x[0] != 0.0 { x[1] } else { x[2] },
                )?;
                self.set(r, v)
            }
            InstKind::Cast { x, to } => {
                let (r, _) = self.one_result(inst)?;
                let to = *to;
                let v = self.map(*x, to, move |v| crate::graph::cast_value(v, to))?;
                self.set(r, v)
            }
            InstKind::Splat { x, shape } => {
                let (r, d) = self.one_result(inst)?;
                let v = round_to_dtype(self.scalar_f64(*x)?, d) as f32;
                let n = shape.iter().product();
                self.set(r, Val::Tile(shape.clone(), vec![v; n]))
            }
            InstKind::Load { access, other } => {
                let (r, d) = self.one_result(inst)?;
                let v = self.load(access, *other, d)?;
                self.set(r, v)
            }
            InstKind::Store { access, value } => self.store(access, *value),
            InstKind::Reduce { op, x, axis } => {
                let (r, d) = self.one_result(inst)?;
                let v = self.reduce(*op, *x, *axis, d)?;
                self.set(r, v)
            }
            InstKind::Dot { a, b, acc } => {
                let (r, d) = self.one_result(inst)?;
                let v = self.dot(*a, *b, *acc, d)?;
                self.set(r, v)
            }
            InstKind::For {
                start,
                end,
                step,
                init,
                body,
            } => self.for_loop(inst, *start, *end, *step, init, body),
        }
    }

    /// Applies `f` elementwise (in f64) and rounds to `d`.
    fn map(&self, x: ValueId, d: DType, f: impl Fn(f64) -> f64) -> Result<Val, InterpError> {
        Ok(match self.get(x)? {
            Val::Int(i) => scalar(d, f(*i as f64)),
            Val::Float(v) => scalar(d, f(*v as f64)),
            Val::Tile(s, data) => Val::Tile(
                s.clone(),
                data.iter()
                    .map(|&v| round_to_dtype(f(v as f64), d) as f32)
                    .collect(),
            ),
        })
    }

    /// An elementwise op over operands that are tiles of the result's shape or scalars
    /// (broadcast); the result has `r`'s type.
    fn nary(
        &self,
        r: ValueId,
        xs: &[ValueId],
        f: impl Fn(&[f64]) -> f64,
    ) -> Result<Val, InterpError> {
        let ty = self.ty(r)?.clone();
        let d = ty.dtype();
        let n = ty.numel();
        let mut cols = Vec::with_capacity(xs.len());
        for &x in xs {
            cols.push(match self.get(x)? {
                Val::Tile(s, data) => {
                    if Some(s.as_slice()) != ty.shape() {
                        return Err(self.err(format!("{x}: tile {s:?} where {ty:?} is computed")));
                    }
                    data.iter().map(|&v| v as f64).collect::<Vec<f64>>()
                }
                _ => vec![self.scalar_f64(x)?; n],
            });
        }
        let out: Vec<f64> = (0..n)
            .map(|i| {
                let args: Vec<f64> = cols.iter().map(|c| c[i]).collect();
                round_to_dtype(f(&args), d)
            })
            .collect();
        Ok(match ty {
            Ty::Tile(s, _) => Val::Tile(s, out.iter().map(|&v| v as f32).collect()),
            Ty::Scalar(_) => scalar(d, out[0]),
        })
    }

    fn binary(&self, op: BinaryOp, a: ValueId, b: ValueId, d: DType) -> Result<Val, InterpError> {
        let int = !d.is_float();
        let f = |x: f64, y: f64| -> Result<f64, InterpError> {
            if int && op == BinaryOp::Div && y == 0.0 {
                return Err(self.err(format!("integer division by zero in {op:?}")));
            }
            Ok(round_to_dtype(op.eval(x, y), d))
        };
        let (va, vb) = (self.get(a)?, self.get(b)?);
        let tile = |s: &Vec<usize>, data: Vec<f32>| Val::Tile(s.clone(), data);
        Ok(match (va, vb) {
            (Val::Tile(sa, da), Val::Tile(sb, db)) => {
                if sa != sb {
                    return Err(self.err(format!(
                        "{op:?} of tiles of different shapes {sa:?} and {sb:?}"
                    )));
                }
                let data = da
                    .iter()
                    .zip(db)
                    .map(|(&x, &y)| f(x as f64, y as f64).map(|v| v as f32))
                    .collect::<Result<_, _>>()?;
                tile(sa, data)
            }
            (Val::Tile(sa, da), _) => {
                let y = self.scalar_f64(b)?;
                let data = da
                    .iter()
                    .map(|&x| f(x as f64, y).map(|v| v as f32))
                    .collect::<Result<_, _>>()?;
                tile(sa, data)
            }
            (_, Val::Tile(sb, db)) => {
                let x = self.scalar_f64(a)?;
                let data = db
                    .iter()
                    .map(|&y| f(x, y as f64).map(|v| v as f32))
                    .collect::<Result<_, _>>()?;
                tile(sb, data)
            }
            _ => scalar(d, f(self.scalar_f64(a)?, self.scalar_f64(b)?)?),
        })
    }

    /// Checks an access's shape against its strides and limits and returns the base and
    /// the limits.
    fn access_parts(&self, access: &BlockAccess) -> Result<(i64, Vec<i64>), InterpError> {
        if access.buffer >= self.kernel.params.len() || access.buffer >= self.slots.len() {
            return Err(self.err(format!("access to missing buffer {}", access.buffer)));
        }
        let rank = access.shape.len();
        if access.strides.len() != rank || access.limits.len() != rank {
            return Err(self.err(format!(
                "access to `{}`: shape {:?} with {} strides and {} limits",
                self.kernel.params[access.buffer].name,
                access.shape,
                access.strides.len(),
                access.limits.len()
            )));
        }
        let base = self.index(access.base)?;
        let limits = access
            .limits
            .iter()
            .map(|&l| self.index(l))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((base, limits))
    }

    /// Visits every element of an access in row-major order with its flat tile index and
    /// its address, or `None` when masked off. Valid addresses are bounds-checked.
    fn for_each_elem(
        &self,
        access: &BlockAccess,
        mut f: impl FnMut(usize, Option<usize>),
    ) -> Result<(), InterpError> {
        let (base, limits) = self.access_parts(access)?;
        let param = &self.kernel.params[access.buffer];
        let len = param.len.min(self.storage[self.slots[access.buffer]].len());
        let shape = &access.shape;
        let n: usize = shape.iter().product();
        let mut idx = vec![0usize; shape.len()];
        for flat in 0..n {
            let valid = idx.iter().zip(&limits).all(|(&i, &l)| (i as i64) < l);
            if valid {
                let off = idx
                    .iter()
                    .zip(&access.strides)
                    .try_fold(base, |acc, (&i, &s)| {
                        acc.checked_add((i as i64).checked_mul(s)?)
                    });
                match off {
                    Some(o) if o >= 0 && (o as usize) < len => f(flat, Some(o as usize)),
                    _ => {
                        return Err(InterpError::OutOfBounds {
                            kernel: self.kernel.name.clone(),
                            buffer: param.name.clone(),
                            offset: off.unwrap_or(i64::MAX),
                            len: param.len,
                            program: self.program,
                        })
                    }
                }
            } else {
                f(flat, None);
            }
            for a in (0..shape.len()).rev() {
                idx[a] += 1;
                if idx[a] < shape[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        Ok(())
    }

    fn load(&self, access: &BlockAccess, other: f64, d: DType) -> Result<Val, InterpError> {
        let slot = self
            .slots
            .get(access.buffer)
            .copied()
            .filter(|&s| s < self.storage.len())
            .ok_or_else(|| self.err(format!("access to missing buffer {}", access.buffer)))?;
        let buf = &self.storage[slot];
        let n: usize = access.shape.iter().product();
        // Buffers hold f32: an i32 near i32::MAX is stored rounded up to 2^31, which
        // saturates back to i32::MAX here rather than wrapping to i32::MIN.
        let stored = |v: f32| match d {
            DType::I32 => f64::from(v).clamp(f64::from(i32::MIN), f64::from(i32::MAX)),
            _ => f64::from(v),
        };
        let other = round_to_dtype(other, d);
        let mut data = vec![other; n];
        self.for_each_elem(access, |i, addr| {
            if let Some(a) = addr {
                data[i] = round_to_dtype(stored(buf[a]), d);
            }
        })?;
        if access.shape.is_empty() {
            // An integer scalar keeps all its bits (index math is exact on i64).
            Ok(scalar(d, data[0]))
        } else {
            let data = data.into_iter().map(|v| v as f32).collect();
            Ok(Val::Tile(access.shape.clone(), data))
        }
    }

    fn store(&mut self, access: &BlockAccess, value: ValueId) -> Result<(), InterpError> {
        let data: Vec<f32> = match self.get(value)? {
            Val::Tile(s, data) if *s == access.shape => data.clone(),
            Val::Int(i) if access.shape.is_empty() => vec![*i as f32],
            Val::Float(f) if access.shape.is_empty() => vec![*f],
            v => {
                return Err(self.err(format!(
                    "store of {} to an access of shape {:?}",
                    v.kind(),
                    access.shape
                )))
            }
        };
        let d = self
            .kernel
            .params
            .get(access.buffer)
            .ok_or_else(|| self.err(format!("access to missing buffer {}", access.buffer)))?
            .dtype;
        let mut writes = Vec::with_capacity(data.len());
        self.for_each_elem(access, |i, addr| {
            if let Some(a) = addr {
                writes.push((a, round_to_dtype(data[i] as f64, d) as f32));
            }
        })?;
        let buf = &mut self.storage[self.slots[access.buffer]];
        for (a, v) in writes {
            buf[a] = v;
        }
        Ok(())
    }

    /// `Iota`: element `idx` holds `idx[axis]` (rounded to `d`, normally i32).
    fn iota(&self, shape: &[usize], axis: usize, d: DType) -> Result<Val, InterpError> {
        if shape.is_empty() || shape.len() > 2 || axis >= shape.len() {
            return Err(self.err(format!("iota of shape {shape:?} along axis {axis}")));
        }
        let cols = if shape.len() == 2 { shape[1] } else { 1 };
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|flat| {
                let pos = if shape.len() == 1 || axis == 0 {
                    flat / cols
                } else {
                    flat % cols
                };
                round_to_dtype(pos as f64, d) as f32
            })
            .collect();
        Ok(Val::Tile(shape.to_vec(), data))
    }

    /// `Expand`: a rank-1 tile `[n]` repeated along a new axis: `[size, n]` (axis 0) or
    /// `[n, size]` (axis 1).
    fn expand(&self, x: ValueId, axis: usize, size: usize, d: DType) -> Result<Val, InterpError> {
        let data = match self.get(x)? {
            Val::Tile(s, data) if s.len() == 1 && axis < 2 => data,
            v => return Err(self.err(format!("expand of {} along axis {axis}", v.kind()))),
        };
        let n = data.len();
        let r = |v: f32| round_to_dtype(v as f64, d) as f32;
        Ok(if axis == 0 {
            let mut out = Vec::with_capacity(size * n);
            for _ in 0..size {
                out.extend(data.iter().map(|&v| r(v)));
            }
            Val::Tile(vec![size, n], out)
        } else {
            let mut out = Vec::with_capacity(size * n);
            for &v in data {
                out.extend(std::iter::repeat_n(r(v), size));
            }
            Val::Tile(vec![n, size], out)
        })
    }

    fn reduce(&self, op: ReduceOp, x: ValueId, axis: usize, d: DType) -> Result<Val, InterpError> {
        let combine = |vals: &mut dyn Iterator<Item = f32>| -> f32 {
            let mut acc = op.identity() as f32;
            let mut n = 0usize;
            for v in vals {
                acc = op.combiner().eval(acc as f64, v as f64) as f32;
                n += 1;
            }
            if op == ReduceOp::Mean {
                acc / n as f32
            } else {
                acc
            }
        };
        match self.get(x)? {
            Val::Tile(s, data) if s.len() == 1 && axis == 0 => {
                Ok(scalar(d, combine(&mut data.iter().copied()) as f64))
            }
            Val::Tile(s, data) if s.len() == 2 && axis < 2 => {
                let (rows, cols) = (s[0], s[1]);
                let out: Vec<f32> = if axis == 0 {
                    (0..cols)
                        .map(|j| combine(&mut (0..rows).map(|i| data[i * cols + j])))
                        .collect()
                } else {
                    (0..rows)
                        .map(|i| combine(&mut data[i * cols..(i + 1) * cols].iter().copied()))
                        .collect()
                };
                let out = out
                    .into_iter()
                    .map(|v| round_to_dtype(v as f64, d) as f32)
                    .collect();
                Ok(Val::Tile(vec![if axis == 0 { cols } else { rows }], out))
            }
            v => Err(self.err(format!("reduce of {} along axis {axis}", v.kind()))),
        }
    }

    fn dot(&self, a: ValueId, b: ValueId, acc: ValueId, d: DType) -> Result<Val, InterpError> {
        match (self.get(a)?, self.get(b)?, self.get(acc)?) {
            (Val::Tile(sa, da), Val::Tile(sb, db), Val::Tile(sc, dc))
                if sa.len() == 2
                    && sb.len() == 2
                    && sa[1] == sb[0]
                    && *sc == vec![sa[0], sb[1]] =>
            {
                let (m, k, n) = (sa[0], sa[1], sb[1]);
                let mut out = dc.clone();
                for i in 0..m {
                    for j in 0..n {
                        let mut s = out[i * n + j];
                        for kk in 0..k {
                            s += da[i * k + kk] * db[kk * n + j];
                        }
                        out[i * n + j] = round_to_dtype(s as f64, d) as f32;
                    }
                }
                Ok(Val::Tile(sc.clone(), out))
            }
            (x, y, z) => Err(self.err(format!(
                "dot of {}, {} into {}",
                x.kind(),
                y.kind(),
                z.kind()
            ))),
        }
    }

    fn for_loop(
        &mut self,
        inst: &Inst,
        start: ValueId,
        end: ValueId,
        step: i64,
        init: &[ValueId],
        body: &Block,
    ) -> Result<(), InterpError> {
        if step <= 0 {
            return Err(self.err(format!("for loop with step {step}")));
        }
        if body.args.len() != init.len() + 1
            || body.yields.len() != init.len()
            || inst.results.len() != init.len()
        {
            return Err(self.err(format!(
                "for loop with {} initial values, {} block args, {} yields, {} results",
                init.len(),
                body.args.len(),
                body.yields.len(),
                inst.results.len()
            )));
        }
        let (mut iv, end) = (self.index(start)?, self.index(end)?);
        let mut carried = init
            .iter()
            .map(|&v| self.get(v).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        while iv < end {
            self.set(body.args[0], Val::Int(iv))?;
            for (&arg, v) in body.args[1..].iter().zip(carried.drain(..)) {
                self.set(arg, v)?;
            }
            self.block(body)?;
            carried = body
                .yields
                .iter()
                .map(|&v| self.get(v).cloned())
                .collect::<Result<Vec<_>, _>>()?;
            iv = iv
                .checked_add(step)
                .filter(|v| i32::try_from(*v).is_ok())
                .ok_or_else(|| {
                    self.err(format!("loop induction value {iv} + {step} overflows i32"))
                })?;
        }
        for (&r, v) in inst.results.iter().zip(carried) {
            self.set(r, v)?;
        }
        Ok(())
    }
}
