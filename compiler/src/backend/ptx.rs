//! PTX printer of the shared SIMT program.
//!
//! [`print_kernel`] prints one [`SimtKernel`] as a PTX module with one `.entry`; one CTA
//! runs one program instance, `%tid.x` is [`Special::LocalId`] and `%ctaid.{x,y,z}` is
//! [`Special::GroupId`]. [`emit_plan`] lowers every kernel of a plan with
//! [`crate::simt::lower_kernel`] and prints one `<kernel>.ptx` per kernel.
//!
//! Choices, and why:
//! - `.version 7.8`: the oldest PTX ISA that knows `sm_90`, so the same text serves
//!   `sm_80` and `sm_90` and loads on every driver from CUDA 11.8 on (the `ptxas` of the
//!   `nvidia-cuda-nvcc-cu12` 12.9 wheel accepts ISA 7.0 ..= 8.8; 7.0 lacks `sm_90`).
//! - [`emit_plan`] prints for `sm_80` only ([`EMIT_SM`]): the driver JIT-compiles `sm_80`
//!   PTX for any newer GPU, sm_90 included. The two printings differ only in the
//!   `.target` line; the tests assemble both with `ptxas`.
//! - Registers: one PTX register per SIMT register (`%f` f32, `%h` f16 bits, `%r` i32,
//!   `%u` u32, `%p` predicates) plus fresh temporaries (`%rd` for 64-bit addresses);
//!   `ptxas` allocates the real registers.
//! - Each entry carries `.reqntid <workgroup_size>, 1, 1` so that `ptxas` budgets registers
//!   for the real block size (a launch with another block size fails loudly).
//! - Global memory: element address = `cvta.to.global(param) + index * elemsize` with
//!   `mul.wide.s32`. f16 and bf16 are storage types loaded as 16 bits; bf16 is widened to
//!   f32 by a 16-bit shift (exact; `cvt.f32.bf16` needs sm_90) and narrowed with
//!   `cvt.rn.bf16.f32` (sm_80). Bool is stored as one u32 word (0 or 1). A bf16
//!   `Cast` in registers is the lowering's integer sequence on the f32 bits (`Bitcast`
//!   is `mov.b32`; `and.b32`, `or.b32`, `shl.b32`, `shr.u32`), shared with WGSL.
//! - Float arithmetic uses explicit `.rn` rounding so that `ptxas` does not contract a
//!   multiply and an add into an fma behind the program's back; `max`/`min` use the
//!   `.NaN` variants (sm_80) so that a NaN operand gives NaN, like
//!   [`BinaryOp::eval`]. f16 arithmetic other than neg/add/sub/mul/max/fma is computed in
//!   f32 and rounded once to f16.
//! - Math accuracy (f32, normal range; see `ptx/math.rs`): `sqrt` is `sqrt.rn`
//!   (correctly rounded), `rsqrt` is `rcp.rn(sqrt.rn(x))` (two correctly rounded steps,
//!   < 1.5 ulp), division is `div.rn` (correctly rounded), `exp` about 3 ulp
//!   (`ex2.approx.f32` on a two-part `x*log2(e)`), `log` under 1 ulp (range reduction and
//!   an atanh series in f32 with `div.rn`; not `lg2.approx`, which has large relative
//!   error near 1), `tanh` below 5e-7 relative error (a polynomial for |x| < 0.625,
//!   `1 - 2/(e^2|x|+1)` above; not `tanh.approx.f32`, which is only about 2^-11
//!   accurate).
//! - Integer division by zero is whatever the hardware gives (PTX leaves it
//!   unspecified); the lowering masks out-of-range indices before they reach memory.

mod math;

use super::{Artifact, KernelInfo, SourceFile};
use crate::error::CompileError;
use crate::graph::{BinaryOp, DType, UnaryOp};
use crate::schedule::plan::Plan;
use crate::simt::{wrap_int, IntOp, Operand, Reg, SType, SimtKernel, Special, Stmt};
use crate::target::{Target, TargetKind};
use std::fmt::Write as _;

/// The PTX ISA version printed in `.version`.
pub const PTX_ISA_VERSION: &str = "7.8";

/// The SM architectures [`print_kernel`] accepts (ISA 7.8 and the instructions used:
/// `max.NaN`, `cvt.rn.bf16.f32` need sm_80; `.version 7.8` stops at sm_90).
pub const SUPPORTED_SM: [u32; 5] = [80, 86, 87, 89, 90];

/// The architecture [`emit_plan`] prints for.
pub const EMIT_SM: u32 = 80;

/// Prints one SIMT kernel as a PTX module for `sm_<sm>`.
///
/// Errors: an `sm` outside [`SUPPORTED_SM`] or a kernel name that is not a PTX identifier
/// gives [`CompileError::Unsupported`]; an ill-typed program (a lowering bug: a register
/// of the wrong type, a bad buffer or shared-array index, a non-positive loop step)
/// gives [`CompileError::Internal`].
pub fn print_kernel(k: &SimtKernel, sm: u32) -> Result<String, CompileError> {
    if !SUPPORTED_SM.contains(&sm) {
        return Err(CompileError::Unsupported {
            target: "ptx".into(),
            kernel: k.name.clone(),
            what: format!("architecture sm_{sm} (supported: sm_80, sm_86, sm_87, sm_89, sm_90)"),
        });
    }
    if !is_identifier(&k.name) {
        return Err(CompileError::Unsupported {
            target: "ptx".into(),
            kernel: k.name.clone(),
            what: "a kernel name that is not a PTX identifier".into(),
        });
    }
    Printer::new(k)?.print(sm)
}

/// Emits every kernel of a plan: one `<kernel>.ptx` file per kernel, for `sm_80`.
pub fn emit_plan(plan: &Plan, target: &Target) -> Result<Artifact, CompileError> {
    let mut files = Vec::with_capacity(plan.kernels.len());
    let mut kernels = Vec::with_capacity(plan.kernels.len());
    for tile in &plan.kernels {
        let k = crate::simt::lower_kernel(tile, target)?;
        check_limits(&k, target)?;
        let file = format!("{}.ptx", k.name);
        if files.iter().any(|f: &SourceFile| f.name == file) {
            return Err(CompileError::Internal {
                stage: "ptx",
                message: format!("two kernels of the plan are both named `{}`", k.name),
            });
        }
        files.push(SourceFile {
            name: file.clone(),
            contents: print_kernel(&k, EMIT_SM)?,
        });
        kernels.push(KernelInfo {
            name: k.name.clone(),
            file,
            params: k.buffers.iter().map(|b| b.name.clone()).collect(),
            grid: k.grid,
            block: k.workgroup_size,
        });
    }
    Ok(Artifact {
        target: TargetKind::Ptx,
        files,
        kernels,
    })
}

/// Checks block size, grid and static shared memory against the target record.
fn check_limits(k: &SimtKernel, target: &Target) -> Result<(), CompileError> {
    let limit = |limit: &'static str, needed: usize, available: usize| {
        if needed > available {
            Err(CompileError::Limit {
                kernel: k.name.clone(),
                target: "ptx".into(),
                limit,
                needed,
                available,
            })
        } else {
            Ok(())
        }
    };
    limit(
        "max_workgroup_size",
        k.workgroup_size as usize,
        target.max_workgroup_size as usize,
    )?;
    for g in k.grid {
        limit("max_grid_dim", g as usize, target.max_grid_dim as usize)?;
    }
    let shared: usize = k.shared.iter().map(|a| a.len * shared_elem(a.ty).1).sum();
    limit("shared_memory_bytes", shared, target.shared_memory_bytes)
}

/// Whether `s` is a PTX identifier that the printer may use as a name.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    let ok_rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => chars.all(ok_rest),
        Some('_') | Some('$') => {
            let rest: Vec<char> = chars.collect();
            !rest.is_empty() && rest.into_iter().all(ok_rest)
        }
        _ => false,
    }
}

/// A buffer name turned into a PTX identifier (parameter `p<i>_<name>`).
fn param_name(i: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("p{i}_{clean}")
}

/// PTX register classes (one `.reg` declaration each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Pred,
    B16,
    F32,
    S32,
    U32,
    U64,
}

impl Class {
    const ALL: [Class; 6] = [
        Class::Pred,
        Class::B16,
        Class::F32,
        Class::S32,
        Class::U32,
        Class::U64,
    ];

    fn of(t: SType) -> Class {
        match t {
            SType::F32 => Class::F32,
            SType::F16 => Class::B16,
            SType::I32 => Class::S32,
            SType::U32 => Class::U32,
            SType::Bool => Class::Pred,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn decl(self) -> &'static str {
        match self {
            Class::Pred => ".pred",
            Class::B16 => ".b16",
            Class::F32 => ".f32",
            Class::S32 => ".s32",
            Class::U32 => ".u32",
            Class::U64 => ".u64",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Class::Pred => "%p",
            Class::B16 => "%h",
            Class::F32 => "%f",
            Class::S32 => "%r",
            Class::U32 => "%u",
            Class::U64 => "%rd",
        }
    }
}

/// Single-instruction operations, spelled per type by [`mnemonic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mn {
    Mov,
    Neg,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Min,
    Max,
    Fma,
    Lt,
    Le,
    Eq,
    Gt,
    Ge,
    And,
    Or,
    Shl,
    Shr,
    Sqrt,
    Rcp,
    Selp,
}

/// The PTX spelling of every single-instruction op, per register type; `None` when the
/// type has no such instruction (the printer then computes in f32 or rejects).
fn mnemonic(op: Mn, ty: SType) -> Option<&'static str> {
    use SType::{Bool, F16, F32, I32, U32};
    Some(match (op, ty) {
        (Mn::Mov, F32) => "mov.f32",
        (Mn::Mov, F16) => "mov.b16",
        (Mn::Mov, I32) => "mov.s32",
        (Mn::Mov, U32) => "mov.u32",
        (Mn::Mov, Bool) => "mov.pred",
        (Mn::Neg, F32) => "neg.f32",
        (Mn::Neg, F16) => "neg.f16",
        (Mn::Neg, I32 | U32) => "neg.s32",
        (Mn::Add, F32) => "add.rn.f32",
        (Mn::Add, F16) => "add.rn.f16",
        (Mn::Add, I32) => "add.s32",
        (Mn::Add, U32) => "add.u32",
        (Mn::Sub, F32) => "sub.rn.f32",
        (Mn::Sub, F16) => "sub.rn.f16",
        (Mn::Sub, I32) => "sub.s32",
        (Mn::Sub, U32) => "sub.u32",
        (Mn::Mul, F32) => "mul.rn.f32",
        (Mn::Mul, F16) => "mul.rn.f16",
        (Mn::Mul, I32) => "mul.lo.s32",
        (Mn::Mul, U32) => "mul.lo.u32",
        (Mn::Div, F32) => "div.rn.f32",
        (Mn::Div, I32) => "div.s32",
        (Mn::Div, U32) => "div.u32",
        (Mn::Rem, I32) => "rem.s32",
        (Mn::Rem, U32) => "rem.u32",
        (Mn::Min, F32) => "min.NaN.f32",
        (Mn::Min, F16) => "min.NaN.f16",
        (Mn::Min, I32) => "min.s32",
        (Mn::Min, U32) => "min.u32",
        (Mn::Max, F32) => "max.NaN.f32",
        (Mn::Max, F16) => "max.NaN.f16",
        (Mn::Max, I32) => "max.s32",
        (Mn::Max, U32) => "max.u32",
        (Mn::Fma, F32) => "fma.rn.f32",
        (Mn::Fma, F16) => "fma.rn.f16",
        (Mn::Fma, I32) => "mad.lo.s32",
        (Mn::Fma, U32) => "mad.lo.u32",
        (Mn::Lt, F32) => "setp.lt.f32",
        (Mn::Lt, F16) => "setp.lt.f16",
        (Mn::Lt, I32) => "setp.lt.s32",
        (Mn::Lt, U32) => "setp.lt.u32",
        (Mn::Le, F32) => "setp.le.f32",
        (Mn::Le, F16) => "setp.le.f16",
        (Mn::Le, I32) => "setp.le.s32",
        (Mn::Le, U32) => "setp.le.u32",
        (Mn::Eq, F32) => "setp.eq.f32",
        (Mn::Eq, F16) => "setp.eq.f16",
        (Mn::Eq, I32) => "setp.eq.s32",
        (Mn::Eq, U32) => "setp.eq.u32",
        (Mn::Gt, F32) => "setp.gt.f32",
        (Mn::Gt, F16) => "setp.gt.f16",
        (Mn::Gt, I32) => "setp.gt.s32",
        (Mn::Gt, U32) => "setp.gt.u32",
        (Mn::Ge, F32) => "setp.ge.f32",
        (Mn::Ge, F16) => "setp.ge.f16",
        (Mn::Ge, I32) => "setp.ge.s32",
        (Mn::Ge, U32) => "setp.ge.u32",
        (Mn::And, Bool) => "and.pred",
        (Mn::And, I32 | U32) => "and.b32",
        (Mn::Or, I32 | U32) => "or.b32",
        (Mn::Shl, I32 | U32) => "shl.b32",
        (Mn::Shr, I32) => "shr.s32",
        (Mn::Shr, U32) => "shr.u32",
        (Mn::Sqrt, F32) => "sqrt.rn.f32",
        (Mn::Rcp, F32) => "rcp.rn.f32",
        (Mn::Selp, F32) => "selp.f32",
        (Mn::Selp, F16) => "selp.b16",
        (Mn::Selp, I32) => "selp.s32",
        (Mn::Selp, U32) => "selp.u32",
        _ => return None,
    })
}

/// The conversion instruction between two distinct, non-bool register types.
fn cvt_spelling(from: SType, to: SType) -> Option<&'static str> {
    use SType::{F16, F32, I32, U32};
    Some(match (from, to) {
        (F32, F16) => "cvt.rn.f16.f32",
        (F16, F32) => "cvt.f32.f16",
        (F32, I32) => "cvt.rzi.s32.f32",
        (F32, U32) => "cvt.rzi.u32.f32",
        (F16, I32) => "cvt.rzi.s32.f16",
        (F16, U32) => "cvt.rzi.u32.f16",
        (I32, F32) => "cvt.rn.f32.s32",
        (U32, F32) => "cvt.rn.f32.u32",
        (I32, F16) => "cvt.rn.f16.s32",
        (U32, F16) => "cvt.rn.f16.u32",
        (I32, U32) | (U32, I32) => "mov.b32",
        _ => return None,
    })
}

/// The PTX type suffix and register type of a 16-byte vector access of a buffer dtype
/// (`ld.global.v4` / `st.global.v4`): f32, s32 or u32; `None` for other dtypes.
fn vector_elem(d: DType) -> Option<(&'static str, SType)> {
    match d {
        DType::F32 => Some(("f32", SType::F32)),
        DType::I32 => Some(("s32", SType::I32)),
        DType::U32 => Some(("u32", SType::U32)),
        _ => None,
    }
}

/// Shared-memory element spelling and size for a register type (bool as a u32 word).
fn shared_elem(t: SType) -> (&'static str, usize) {
    match t {
        SType::F32 => (".f32", 4),
        SType::F16 => (".b16", 2),
        SType::I32 => (".s32", 4),
        SType::U32 | SType::Bool => (".u32", 4),
    }
}

/// Whether a value of type `have` may stand where `want` is expected (i32 and u32 are
/// both 32-bit integer registers to PTX).
fn compatible(have: SType, want: SType) -> bool {
    have == want
        || matches!(
            (have, want),
            (SType::I32, SType::U32) | (SType::U32, SType::I32)
        )
}

/// An f32 immediate in PTX's exact hexadecimal form.
fn f32_imm(v: f64) -> String {
    format!("0f{:08X}", (v as f32).to_bits())
}

/// The printer's state for one kernel.
struct Printer<'k> {
    k: &'k SimtKernel,
    /// Names of the SIMT registers.
    regs: Vec<String>,
    /// Registers declared per class.
    counts: [u32; 6],
    /// Global base address register of each buffer.
    globals: Vec<String>,
    /// Base address register of each shared array.
    shareds: Vec<String>,
    body: String,
    depth: usize,
    labels: u32,
}

type Res<T> = Result<T, CompileError>;

impl<'k> Printer<'k> {
    fn new(k: &'k SimtKernel) -> Res<Self> {
        let mut p = Printer {
            k,
            regs: Vec::with_capacity(k.regs.len()),
            counts: [0; 6],
            globals: Vec::new(),
            shareds: Vec::new(),
            body: String::new(),
            depth: 0,
            labels: 0,
        };
        for &t in &k.regs {
            let name = p.fresh(Class::of(t));
            p.regs.push(name);
        }
        for (i, a) in k.shared.iter().enumerate() {
            if a.len == 0 {
                return Err(p.bug(format!("shared array {i} has no elements")));
            }
        }
        if k.workgroup_size == 0 {
            return Err(p.bug("workgroup size 0".into()));
        }
        Ok(p)
    }

    /// An internal error naming the kernel.
    fn bug(&self, message: String) -> CompileError {
        CompileError::Internal {
            stage: "ptx",
            message: format!("kernel `{}`: {message}", self.k.name),
        }
    }

    /// A new register of a class.
    fn fresh(&mut self, c: Class) -> String {
        let n = &mut self.counts[c.index()];
        let name = format!("{}{}", c.prefix(), n);
        *n += 1;
        name
    }

    /// Appends one instruction (the `;` is added).
    fn ins(&mut self, text: &str) {
        self.body.push('\t');
        for _ in 0..self.depth {
            self.body.push_str("  ");
        }
        self.body.push_str(text);
        self.body.push_str(";\n");
    }

    /// Appends a label line.
    fn label(&mut self, name: &str) {
        self.body.push_str(name);
        self.body.push_str(":\n");
    }

    /// Appends a comment line.
    fn comment(&mut self, text: &str) {
        self.body.push('\t');
        for _ in 0..self.depth {
            self.body.push_str("  ");
        }
        self.body.push_str("// ");
        self.body.push_str(text);
        self.body.push('\n');
    }

    fn new_label(&mut self, what: &str) -> String {
        self.labels += 1;
        format!("$L_{what}{}", self.labels)
    }

    fn reg_type(&self, r: Reg) -> Res<SType> {
        self.k
            .regs
            .get(r.0 as usize)
            .copied()
            .ok_or_else(|| self.bug(format!("register r{} is not declared", r.0)))
    }

    /// Destination register name and type.
    fn dst(&self, r: Reg) -> Res<(String, SType)> {
        let t = self.reg_type(r)?;
        Ok((self.regs[r.0 as usize].clone(), t))
    }

    /// The type an operand carries by itself (`None` for untyped integer immediates).
    fn operand_type(&self, o: &Operand) -> Res<Option<SType>> {
        Ok(match o {
            Operand::Reg(r) => Some(self.reg_type(*r)?),
            Operand::Int(_) => None,
            Operand::Float(_, t) => Some(*t),
            Operand::Bool(_) => Some(SType::Bool),
        })
    }

    /// An operand as text for comments.
    fn describe(&self, o: &Operand) -> String {
        match *o {
            Operand::Reg(r) => self
                .regs
                .get(r.0 as usize)
                .cloned()
                .unwrap_or_else(|| format!("r{}", r.0)),
            Operand::Int(v) => v.to_string(),
            Operand::Float(v, _) => v.to_string(),
            Operand::Bool(b) => b.to_string(),
        }
    }

    /// A register holding a predicate constant.
    fn pred_const(&mut self, b: bool) -> String {
        let p = self.fresh(Class::Pred);
        self.ins(&format!("setp.ne.u32 {p}, {}, 0", u32::from(b)));
        p
    }

    /// A register holding an f16 constant (rounded once from f32 by `cvt.rn`, which
    /// `ptxas` folds).
    fn f16_const(&mut self, v: f64) -> String {
        let f = self.fresh(Class::F32);
        let h = self.fresh(Class::B16);
        self.ins(&format!("mov.f32 {f}, {}", f32_imm(v)));
        self.ins(&format!("cvt.rn.f16.f32 {h}, {f}"));
        h
    }

    /// An operand as an instruction source of type `ty`: a register name, or an
    /// immediate where PTX takes one (f32, i32, u32); f16 and predicate constants are
    /// materialised in registers.
    fn src(&mut self, o: &Operand, ty: SType) -> Res<String> {
        match *o {
            Operand::Reg(r) => {
                let t = self.reg_type(r)?;
                if !compatible(t, ty) {
                    return Err(self.bug(format!(
                        "register r{} has type {t:?} where {ty:?} is expected",
                        r.0
                    )));
                }
                Ok(self.regs[r.0 as usize].clone())
            }
            Operand::Int(v) => match ty {
                SType::I32 | SType::U32 => Ok(wrap_int(v, ty).to_string()),
                SType::F32 => Ok(f32_imm(v as f64)),
                SType::F16 => Ok(self.f16_const(v as f64)),
                SType::Bool => Ok(self.pred_const(v != 0)),
            },
            Operand::Float(v, _) => match ty {
                SType::F32 => Ok(f32_imm(v)),
                SType::F16 => Ok(self.f16_const(v)),
                _ => Err(self.bug(format!("float immediate {v} where {ty:?} is expected"))),
            },
            Operand::Bool(b) => match ty {
                SType::Bool => Ok(self.pred_const(b)),
                SType::I32 | SType::U32 => Ok(u32::from(b).to_string()),
                _ => Err(self.bug(format!("bool immediate where {ty:?} is expected"))),
            },
        }
    }

    /// Like [`Printer::src`] but always a register.
    fn src_reg(&mut self, o: &Operand, ty: SType) -> Res<String> {
        let s = self.src(o, ty)?;
        if s.starts_with('%') {
            return Ok(s);
        }
        let r = self.fresh(Class::of(ty));
        let mov = self.op(Mn::Mov, ty)?;
        self.ins(&format!("{mov} {r}, {s}"));
        Ok(r)
    }

    /// The spelling of a single-instruction op, or an internal error.
    fn op(&self, op: Mn, ty: SType) -> Res<&'static str> {
        mnemonic(op, ty).ok_or_else(|| self.bug(format!("{op:?} is not defined on {ty:?}")))
    }

    /// Writes `dst = convert(val)` from type `from` to type `to`.
    fn convert_into(&mut self, dst: &str, val: &str, from: SType, to: SType) -> Res<()> {
        use SType::{Bool, F16, F32};
        if from == to {
            let mov = self.op(Mn::Mov, to)?;
            self.ins(&format!("{mov} {dst}, {val}"));
            return Ok(());
        }
        match (from, to) {
            (Bool, F32) => self.ins(&format!("selp.f32 {dst}, 0f3F800000, 0f00000000, {val}")),
            (Bool, F16) => {
                let one = self.f16_const(1.0);
                let zero = self.f16_const(0.0);
                self.ins(&format!("selp.b16 {dst}, {one}, {zero}, {val}"));
            }
            (Bool, _) => self.ins(&format!("selp.u32 {dst}, 1, 0, {val}")),
            (F32, Bool) => self.ins(&format!("setp.neu.f32 {dst}, {val}, 0f00000000")),
            (F16, Bool) => {
                let zero = self.f16_const(0.0);
                self.ins(&format!("setp.neu.f16 {dst}, {val}, {zero}"));
            }
            (_, Bool) => self.ins(&format!("setp.ne.u32 {dst}, {val}, 0")),
            _ => {
                let cvt = cvt_spelling(from, to)
                    .ok_or_else(|| self.bug(format!("no conversion {from:?} -> {to:?}")))?;
                self.ins(&format!("{cvt} {dst}, {val}"));
            }
        }
        Ok(())
    }

    /// A register holding `val` converted from `from` to `to` (`val` itself if no
    /// conversion is needed).
    fn convert(&mut self, val: String, from: SType, to: SType) -> Res<String> {
        if compatible(from, to) {
            return Ok(val);
        }
        let r = self.fresh(Class::of(to));
        self.convert_into(&r, &val, from, to)?;
        Ok(r)
    }

    /// A memory operand `[base + index * size]`.
    fn address(&mut self, base: &str, index: &Operand, size: usize) -> Res<String> {
        if let Operand::Int(v) = *index {
            let off = v
                .checked_mul(size as i64)
                .filter(|o| i32::try_from(*o).is_ok())
                .ok_or_else(|| self.bug(format!("element index {v} out of range")))?;
            return Ok(if off == 0 {
                format!("[{base}]")
            } else {
                format!("[{base}+{off}]")
            });
        }
        let t = match self.operand_type(index)? {
            Some(t @ (SType::I32 | SType::U32)) => t,
            other => {
                return Err(self.bug(format!("element index of type {other:?}")));
            }
        };
        let idx = self.src(index, t)?;
        let off = self.fresh(Class::U64);
        let addr = self.fresh(Class::U64);
        let wide = if t == SType::I32 {
            "mul.wide.s32"
        } else {
            "mul.wide.u32"
        };
        self.ins(&format!("{wide} {off}, {idx}, {size}"));
        self.ins(&format!("add.s64 {addr}, {base}, {off}"));
        Ok(format!("[{addr}]"))
    }

    fn buffer(&self, i: usize) -> Res<(DType, String)> {
        match (self.k.buffers.get(i), self.globals.get(i)) {
            (Some(b), Some(g)) => Ok((b.dtype, g.clone())),
            _ => Err(self.bug(format!("buffer {i} is not a kernel parameter"))),
        }
    }

    fn shared(&self, i: usize) -> Res<(SType, String)> {
        match (self.k.shared.get(i), self.shareds.get(i)) {
            (Some(a), Some(s)) => Ok((a.ty, s.clone())),
            _ => Err(self.bug(format!("shared array {i} is not declared"))),
        }
    }

    /// The whole module.
    fn print(mut self, sm: u32) -> Res<String> {
        let k = self.k;
        // Prologue: global base addresses and shared base addresses.
        for (i, b) in k.buffers.iter().enumerate() {
            let param = param_name(i, &b.name);
            let raw = self.fresh(Class::U64);
            let g = self.fresh(Class::U64);
            self.ins(&format!("ld.param.u64 {raw}, [{param}]"));
            self.ins(&format!("cvta.to.global.u64 {g}, {raw}"));
            self.globals.push(g);
        }
        for i in 0..k.shared.len() {
            let s = self.fresh(Class::U64);
            self.ins(&format!("mov.u64 {s}, smem{i}"));
            self.shareds.push(s);
        }
        self.block(&k.body)?;
        self.ins("ret");

        let mut out = String::new();
        let w = &mut out;
        // `write!` to a String cannot fail.
        let _ = writeln!(w, "//");
        let _ = writeln!(
            w,
            "// Generated by Tessera {} from the SIMT program of kernel `{}`.",
            env!("CARGO_PKG_VERSION"),
            k.name
        );
        let _ = writeln!(
            w,
            "// Launch: grid [{}, {}, {}], block [{}, 1, 1].",
            k.grid[0], k.grid[1], k.grid[2], k.workgroup_size
        );
        let _ = writeln!(w, "//");
        let _ = writeln!(w, ".version {PTX_ISA_VERSION}");
        let _ = writeln!(w, ".target sm_{sm}");
        let _ = writeln!(w, ".address_size 64");
        let _ = writeln!(w);
        for (i, b) in k.buffers.iter().enumerate() {
            let _ = writeln!(
                w,
                "// {}: {} {}[{}] ({})",
                param_name(i, &b.name),
                super::comment_safe(&b.name),
                b.dtype,
                b.len,
                if b.writable {
                    "read-write"
                } else {
                    "read-only"
                }
            );
        }
        let _ = write!(w, ".visible .entry {}(", k.name);
        for (i, b) in k.buffers.iter().enumerate() {
            let sep = if i + 1 < k.buffers.len() { "," } else { "" };
            let _ = write!(w, "\n\t.param .u64 {}{sep}", param_name(i, &b.name));
        }
        let _ = writeln!(w, "\n)");
        let _ = writeln!(w, ".reqntid {}, 1, 1", k.workgroup_size);
        let _ = writeln!(w, "{{");
        for c in Class::ALL {
            let n = self.counts[c.index()];
            if n > 0 {
                let _ = writeln!(w, "\t.reg {} {}<{n}>;", c.decl(), c.prefix());
            }
        }
        for (i, a) in k.shared.iter().enumerate() {
            let (ty, _) = shared_elem(a.ty);
            let _ = writeln!(w, "\t.shared .align 16 {ty} smem{i}[{}];", a.len);
        }
        let _ = writeln!(w);
        out.push_str(&self.body);
        out.push_str("}\n");
        Ok(out)
    }

    fn block(&mut self, stmts: &[Stmt]) -> Res<()> {
        for s in stmts {
            self.stmt(s)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt) -> Res<()> {
        match s {
            Stmt::Special { dst, which } => {
                let (d, t) = self.dst(*dst)?;
                let sreg = match *which {
                    Special::LocalId => "%tid.x",
                    Special::GroupId(0) => "%ctaid.x",
                    Special::GroupId(1) => "%ctaid.y",
                    Special::GroupId(2) => "%ctaid.z",
                    Special::GroupId(a) => return Err(self.bug(format!("grid axis {a}"))),
                };
                if !compatible(t, SType::U32) {
                    return Err(self.bug(format!("special register into {t:?}")));
                }
                self.ins(&format!("mov.u32 {d}, {sreg}"));
            }
            Stmt::Mov { dst, src } => {
                let (d, t) = self.dst(*dst)?;
                if let (SType::Bool, Operand::Bool(b)) = (t, src) {
                    self.ins(&format!("setp.ne.u32 {d}, {}, 0", u32::from(*b)));
                } else {
                    let s = self.src(src, t)?;
                    let mov = self.op(Mn::Mov, t)?;
                    self.ins(&format!("{mov} {d}, {s}"));
                }
            }
            Stmt::Unary { dst, op, x } => self.unary(*dst, *op, x)?,
            Stmt::Binary { dst, op, a, b } => {
                let mn = match op {
                    BinaryOp::Add => Mn::Add,
                    BinaryOp::Sub => Mn::Sub,
                    BinaryOp::Mul => Mn::Mul,
                    BinaryOp::Div => Mn::Div,
                    BinaryOp::Max => Mn::Max,
                    BinaryOp::Min => Mn::Min,
                    BinaryOp::Pow => {
                        return Err(self.bug("pow is composed by the SIMT lowering".into()))
                    }
                };
                self.arith(*dst, mn, a, b)?;
            }
            Stmt::Int { dst, op, a, b } => self.int(*dst, *op, a, b)?,
            Stmt::Fma { dst, a, b, c } => {
                let (d, t) = self.dst(*dst)?;
                let fma = self.op(Mn::Fma, t)?;
                let a = self.src(a, t)?;
                let b = self.src(b, t)?;
                let c = self.src(c, t)?;
                self.ins(&format!("{fma} {d}, {a}, {b}, {c}"));
            }
            Stmt::Cast { dst, src } => {
                let (d, to) = self.dst(*dst)?;
                let from = self.operand_type(src)?.unwrap_or(SType::I32);
                let v = self.src_reg(src, from)?;
                self.convert_into(&d, &v, from, to)?;
            }
            Stmt::Bitcast { dst, src } => {
                let (d, to) = self.dst(*dst)?;
                let from = self.operand_type(src)?.unwrap_or(to);
                let both_32 = |t: SType| matches!(t, SType::F32 | SType::I32 | SType::U32);
                if !both_32(from) || !both_32(to) {
                    return Err(self.bug(format!("bitcast {from:?} -> {to:?}")));
                }
                let v = self.src_reg(src, from)?;
                self.ins(&format!("mov.b32 {d}, {v}"));
            }
            Stmt::Select { dst, cond, a, b } => {
                let (d, t) = self.dst(*dst)?;
                let c = self.src(cond, SType::Bool)?;
                if t == SType::Bool {
                    let a = self.src(a, t)?;
                    let b = self.src(b, t)?;
                    self.ins(&format!("@{c} mov.pred {d}, {a}"));
                    self.ins(&format!("@!{c} mov.pred {d}, {b}"));
                } else {
                    let selp = self.op(Mn::Selp, t)?;
                    let a = self.src(a, t)?;
                    let b = self.src(b, t)?;
                    self.ins(&format!("{selp} {d}, {a}, {b}, {c}"));
                }
            }
            Stmt::LoadGlobal { dst, buffer, index } => {
                let (d, t) = self.dst(*dst)?;
                let (dtype, base) = self.buffer(*buffer)?;
                let addr = self.address(&base, index, dtype.size_bytes())?;
                self.load_global(&d, t, dtype, &addr)?;
            }
            Stmt::StoreGlobal {
                buffer,
                index,
                value,
            } => {
                let (dtype, base) = self.buffer(*buffer)?;
                let vt = self.operand_type(value)?.unwrap_or(SType::of(dtype));
                let v = self.src_reg(value, vt)?;
                let addr = self.address(&base, index, dtype.size_bytes())?;
                self.store_global(dtype, &addr, v, vt)?;
            }
            Stmt::LoadGlobal4 { dst, buffer, index } => {
                let (dtype, base) = self.buffer(*buffer)?;
                let (spelling, mem) = vector_elem(dtype)
                    .ok_or_else(|| self.bug(format!("a vector load of a {dtype} buffer")))?;
                let addr = self.address(&base, index, 4)?;
                let mut ds = Vec::with_capacity(4);
                for r in dst {
                    let (d, t) = self.dst(*r)?;
                    if !compatible(mem, t) {
                        return Err(self.bug(format!("a vector load of {dtype} into {t:?}")));
                    }
                    ds.push(d);
                }
                self.ins(&format!(
                    "ld.global.v4.{spelling} {{{}}}, {addr}",
                    ds.join(", ")
                ));
            }
            Stmt::StoreGlobal4 {
                buffer,
                index,
                values,
            } => {
                let (dtype, base) = self.buffer(*buffer)?;
                let (spelling, mem) = vector_elem(dtype)
                    .ok_or_else(|| self.bug(format!("a vector store to a {dtype} buffer")))?;
                let mut vs = Vec::with_capacity(4);
                for value in values {
                    let vt = self.operand_type(value)?.unwrap_or(mem);
                    let v = self.src_reg(value, vt)?;
                    vs.push(self.convert(v, vt, mem)?);
                }
                let addr = self.address(&base, index, 4)?;
                self.ins(&format!(
                    "st.global.v4.{spelling} {addr}, {{{}}}",
                    vs.join(", ")
                ));
            }
            Stmt::LoadShared { dst, array, index } => {
                let (d, t) = self.dst(*dst)?;
                let (at, base) = self.shared(*array)?;
                let (spelling, size) = shared_elem(at);
                let addr = self.address(&base, index, size)?;
                // Load in the array's memory form, then convert to the destination.
                let mem = if at == SType::Bool { SType::U32 } else { at };
                let v = if compatible(mem, t) {
                    d.clone()
                } else {
                    self.fresh(Class::of(mem))
                };
                self.ins(&format!("ld.shared{spelling} {v}, {addr}"));
                if !compatible(mem, t) {
                    self.convert_into(&d, &v, mem, t)?;
                }
            }
            Stmt::StoreShared {
                array,
                index,
                value,
            } => {
                let (at, base) = self.shared(*array)?;
                let (spelling, size) = shared_elem(at);
                let vt = self.operand_type(value)?.unwrap_or(at);
                let v = self.src_reg(value, vt)?;
                let v = self.convert(v, vt, at)?;
                let v = if at == SType::Bool {
                    self.convert(v, SType::Bool, SType::U32)?
                } else {
                    v
                };
                let addr = self.address(&base, index, size)?;
                self.ins(&format!("st.shared{spelling} {addr}, {v}"));
            }
            Stmt::Barrier => self.ins("bar.sync 0"),
            Stmt::Shuffle { .. } => {
                return Err(self.bug(
                    "a subgroup shuffle: the PTX printer has none (PTX records have no \
                     `subgroup_size`)"
                        .to_string(),
                ))
            }
            Stmt::If { cond, then, els } => self.if_(cond, then, els)?,
            Stmt::Loop {
                var,
                start,
                end,
                step,
                body,
            } => self.loop_(*var, start, end, *step, body)?,
        }
        Ok(())
    }

    fn unary(&mut self, dst: Reg, op: UnaryOp, x: &Operand) -> Res<()> {
        let (d, t) = self.dst(dst)?;
        if op == UnaryOp::Neg {
            let neg = self.op(Mn::Neg, t)?;
            let x = self.src(x, t)?;
            self.ins(&format!("{neg} {d}, {x}"));
            return Ok(());
        }
        match t {
            SType::F32 => {
                let x = self.src_reg(x, t)?;
                self.unary_f32(&d, op, &x)
            }
            SType::F16 => {
                // Computed in f32, rounded once to f16.
                let x = self.src_reg(x, t)?;
                let xf = self.convert(x, SType::F16, SType::F32)?;
                let r = self.fresh(Class::F32);
                self.unary_f32(&r, op, &xf)?;
                self.convert_into(&d, &r, SType::F32, SType::F16)
            }
            _ => Err(self.bug(format!("{} on {t:?}", op.name()))),
        }
    }

    fn unary_f32(&mut self, d: &str, op: UnaryOp, x: &str) -> Res<()> {
        match op {
            UnaryOp::Neg => {
                let neg = self.op(Mn::Neg, SType::F32)?;
                self.ins(&format!("{neg} {d}, {x}"));
            }
            UnaryOp::Exp => math::exp(self, d, x),
            UnaryOp::Log => math::log(self, d, x),
            UnaryOp::Sqrt => {
                let sqrt = self.op(Mn::Sqrt, SType::F32)?;
                self.ins(&format!("{sqrt} {d}, {x}"));
            }
            UnaryOp::Rsqrt => {
                // Two correctly rounded steps (< 1.5 ulp), not rsqrt.approx.
                let sqrt = self.op(Mn::Sqrt, SType::F32)?;
                let rcp = self.op(Mn::Rcp, SType::F32)?;
                let s = self.fresh(Class::F32);
                self.ins(&format!("{sqrt} {s}, {x}"));
                self.ins(&format!("{rcp} {d}, {s}"));
            }
            UnaryOp::Tanh => math::tanh(self, d, x),
            UnaryOp::Erf
            | UnaryOp::Sigmoid
            | UnaryOp::Reciprocal
            | UnaryOp::Abs
            | UnaryOp::Relu => {
                return Err(self.bug(format!("{} is composed by the SIMT lowering", op.name())))
            }
        }
        Ok(())
    }

    /// `dst = a <op> b` for the arithmetic ops shared by `Binary` and `Int`.
    fn arith(&mut self, dst: Reg, mn: Mn, a: &Operand, b: &Operand) -> Res<()> {
        let (d, t) = self.dst(dst)?;
        if t == SType::F16 && mn == Mn::Div {
            // No f16 division instruction: divide in f32 (correctly rounded) and round
            // to f16; f32 has more than 2*11+2 bits, so the double rounding is exact.
            let a = self.src_reg(a, t)?;
            let b = self.src_reg(b, t)?;
            let af = self.convert(a, SType::F16, SType::F32)?;
            let bf = self.convert(b, SType::F16, SType::F32)?;
            let q = self.fresh(Class::F32);
            self.ins(&format!("div.rn.f32 {q}, {af}, {bf}"));
            return self.convert_into(&d, &q, SType::F32, SType::F16);
        }
        let ins = self.op(mn, t)?;
        let a = self.src(a, t)?;
        let b = self.src(b, t)?;
        self.ins(&format!("{ins} {d}, {a}, {b}"));
        Ok(())
    }

    fn int(&mut self, dst: Reg, op: IntOp, a: &Operand, b: &Operand) -> Res<()> {
        let mn = match op {
            IntOp::Add => Mn::Add,
            IntOp::Sub => Mn::Sub,
            IntOp::Mul => Mn::Mul,
            IntOp::Div => Mn::Div,
            IntOp::Rem => Mn::Rem,
            IntOp::Min => Mn::Min,
            IntOp::Max => Mn::Max,
            IntOp::Lt | IntOp::Le | IntOp::Eq | IntOp::Gt | IntOp::Ge => {
                let cmp = match op {
                    IntOp::Le => Mn::Le,
                    IntOp::Eq => Mn::Eq,
                    IntOp::Gt => Mn::Gt,
                    IntOp::Ge => Mn::Ge,
                    _ => Mn::Lt,
                };
                let (d, t) = self.dst(dst)?;
                if t != SType::Bool {
                    return Err(self.bug(format!("comparison into {t:?}")));
                }
                let ot = match (self.operand_type(a)?, self.operand_type(b)?) {
                    (Some(t), _) | (None, Some(t)) => t,
                    (None, None) => SType::I32,
                };
                let setp = self.op(cmp, ot)?;
                let a = self.src_reg(a, ot)?;
                let b = self.src(b, ot)?;
                self.ins(&format!("{setp} {d}, {a}, {b}"));
                return Ok(());
            }
            IntOp::And => Mn::And,
            IntOp::Or => Mn::Or,
            IntOp::Shl => Mn::Shl,
            IntOp::Shr => Mn::Shr,
        };
        self.arith(dst, mn, a, b)
    }

    fn load_global(&mut self, d: &str, t: SType, dtype: DType, addr: &str) -> Res<()> {
        // (instruction, register type it loads into)
        let (ld, mem) = match dtype {
            DType::F32 => ("ld.global.f32", SType::F32),
            DType::F16 => ("ld.global.b16", SType::F16),
            DType::I32 => ("ld.global.s32", SType::I32),
            DType::U32 | DType::Bool => ("ld.global.u32", SType::U32),
            // Zero-extended into a 32-bit register, then shifted into place below.
            DType::BF16 => ("ld.global.u16", SType::U32),
        };
        let value_type = SType::of(dtype);
        let direct = compatible(mem, t) && value_type == mem;
        let v = if direct {
            d.to_string()
        } else {
            self.fresh(Class::of(mem))
        };
        self.ins(&format!("{ld} {v}, {addr}"));
        if direct {
            return Ok(());
        }
        let (v, vt) = match dtype {
            DType::BF16 => {
                // bf16 is the top half of an f32: widen exactly by a shift.
                let bits = self.fresh(Class::U32);
                let f = self.fresh(Class::F32);
                self.ins(&format!("shl.b32 {bits}, {v}, 16"));
                self.ins(&format!("mov.b32 {f}, {bits}"));
                (f, SType::F32)
            }
            DType::Bool => {
                let p = self.fresh(Class::Pred);
                self.ins(&format!("setp.ne.u32 {p}, {v}, 0"));
                (p, SType::Bool)
            }
            _ => (v, mem),
        };
        self.convert_into(d, &v, vt, t)
    }

    fn store_global(&mut self, dtype: DType, addr: &str, v: String, vt: SType) -> Res<()> {
        let st = SType::of(dtype);
        let v = self.convert(v, vt, st)?;
        match dtype {
            DType::F32 => self.ins(&format!("st.global.f32 {addr}, {v}")),
            DType::F16 => self.ins(&format!("st.global.b16 {addr}, {v}")),
            DType::BF16 => {
                let h = self.fresh(Class::B16);
                self.ins(&format!("cvt.rn.bf16.f32 {h}, {v}"));
                self.ins(&format!("st.global.b16 {addr}, {h}"));
            }
            DType::I32 => self.ins(&format!("st.global.s32 {addr}, {v}")),
            DType::U32 => self.ins(&format!("st.global.u32 {addr}, {v}")),
            DType::Bool => {
                let w = self.fresh(Class::U32);
                self.ins(&format!("selp.u32 {w}, 1, 0, {v}"));
                self.ins(&format!("st.global.u32 {addr}, {w}"));
            }
        }
        Ok(())
    }

    fn if_(&mut self, cond: &Operand, then: &[Stmt], els: &[Stmt]) -> Res<()> {
        if let Operand::Bool(b) = *cond {
            // A constant condition: print the taken branch only.
            return self.block(if b { then } else { els });
        }
        let c = self.src(cond, SType::Bool)?;
        let else_label = self.new_label("else");
        let end_label = self.new_label("endif");
        let skip = if els.is_empty() {
            &end_label
        } else {
            &else_label
        };
        self.ins(&format!("@!{c} bra {skip}"));
        self.depth += 1;
        self.block(then)?;
        self.depth -= 1;
        if !els.is_empty() {
            self.ins(&format!("bra {end_label}"));
            self.label(&else_label);
            self.depth += 1;
            self.block(els)?;
            self.depth -= 1;
        }
        self.label(&end_label);
        Ok(())
    }

    fn loop_(
        &mut self,
        var: Reg,
        start: &Operand,
        end: &Operand,
        step: i64,
        body: &[Stmt],
    ) -> Res<()> {
        let (v, t) = self.dst(var)?;
        if !matches!(t, SType::I32 | SType::U32) {
            return Err(self.bug(format!("loop variable of type {t:?}")));
        }
        if step <= 0 || i32::try_from(step).is_err() {
            return Err(self.bug(format!("loop step {step}")));
        }
        let head = self.new_label("loop");
        let exit = self.new_label("endloop");
        let (sd, ed) = (self.describe(start), self.describe(end));
        self.comment(&format!("for {v} = {sd}; {v} < {ed}; {v} += {step}"));
        let s = self.src(start, t)?;
        let mov = self.op(Mn::Mov, t)?;
        self.ins(&format!("{mov} {v}, {s}"));
        self.label(&head);
        let e = self.src(end, t)?;
        let p = self.fresh(Class::Pred);
        let setp = self.op(Mn::Lt, t)?;
        self.ins(&format!("{setp} {p}, {v}, {e}"));
        self.ins(&format!("@!{p} bra {exit}"));
        self.depth += 1;
        self.block(body)?;
        let add = self.op(Mn::Add, t)?;
        self.ins(&format!("{add} {v}, {v}, {step}"));
        self.ins(&format!("bra {head}"));
        self.depth -= 1;
        self.label(&exit);
        Ok(())
    }
}
