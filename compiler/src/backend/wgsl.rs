//! WGSL printer of the shared SIMT program, and in-process validation with naga.
//!
//! One module per kernel (`<kernel>.wgsl`), entry point = kernel name,
//! `@workgroup_size(T)`, buffers bound as `@group(0) @binding(i)` in parameter order
//! (`var<storage, read>` when the kernel only reads them, `read_write` otherwise; bool
//! buffers hold one `u32` per element). f16 buffers are `array<f16>` (`enable f16;`,
//! only for a target with f16 storage: a device with `shader-f16`). WGSL has no bf16
//! type: a bf16 buffer is an `array<u32>` of element pairs (element `i` in bits
//! `16 (i & 1)` of word `i >> 1`, the little-endian layout of the host's bf16 bytes),
//! loaded by shifting the element's bits into the top of an f32 (exact); when the
//! kernel writes it, it is an `array<atomic<u32>>` and a store (of a value the lowering
//! has rounded to bf16, [`crate::simt::lower`]) is an `atomicAnd` clearing the element's
//! half and an `atomicOr` setting it: neighbouring elements written by other threads
//! share the word, and each atomic touches disjoint bits, so no write is lost (loads of
//! such a buffer use `atomicLoad`). bf16 values are computed in f32 registers, as f16
//! ones. A buffer the program moves four elements at a time
//! ([`crate::simt::SimtBuffer::vector`]) is an `array<vec4<T>>`: a vector statement
//! reads or writes `b[i >> 2]` whole, an element access `b[i >> 2][i & 3]`.
//! Registers become function-scope `var`s, shared
//! arrays `var<workgroup>` arrays. Every module is parsed and validated by naga before
//! it is returned: a failure is a [`CompileError::Validation`].

use super::{Artifact, KernelInfo, SourceFile};
use crate::error::CompileError;
use crate::graph::{BinaryOp, DType, UnaryOp};
use crate::schedule::plan::Plan;
use crate::simt::{lower_kernel, wrap_int, IntOp, Operand, SType, SimtKernel, Special, Stmt};
use crate::target::{Target, TargetKind};
use crate::tile::TileKernel;
use std::collections::HashSet;
use std::fmt::Write;

/// Emits every kernel of a plan: one validated `.wgsl` module per kernel.
pub fn emit_plan(plan: &Plan, target: &Target) -> Result<Artifact, CompileError> {
    let mut files = Vec::with_capacity(plan.kernels.len());
    let mut kernels = Vec::with_capacity(plan.kernels.len());
    let mut names = HashSet::new();
    for k in &plan.kernels {
        let (file, info) = emit_kernel(k, target)?;
        if !names.insert(file.name.clone()) {
            return Err(CompileError::Internal {
                stage: "wgsl",
                message: format!("two kernels are named `{}`", k.name),
            });
        }
        files.push(file);
        kernels.push(info);
    }
    Ok(Artifact {
        target: TargetKind::Wgsl,
        files,
        kernels,
    })
}

/// Lowers, prints and validates one tile kernel.
pub fn emit_kernel(
    kernel: &TileKernel,
    target: &Target,
) -> Result<(SourceFile, KernelInfo), CompileError> {
    let simt = lower_kernel(kernel, target)?;
    let text = print_kernel(&simt);
    validate(&text, &simt.name, target)?;
    let file = format!("{}.wgsl", simt.name);
    Ok((
        SourceFile {
            name: file.clone(),
            contents: text,
        },
        KernelInfo {
            name: simt.name.clone(),
            file,
            params: simt.buffers.iter().map(|b| b.name.clone()).collect(),
            grid: simt.grid,
            block: simt.workgroup_size,
        },
    ))
}

/// naga capabilities a target record allows (f16 only where it stores f16, subgroup
/// operations only where it has a `subgroup_size`).
pub fn capabilities(target: &Target) -> naga::valid::Capabilities {
    use naga::valid::Capabilities;
    let mut caps = Capabilities::empty();
    if target.storage_dtypes.contains(&DType::F16) {
        caps |= Capabilities::SHADER_FLOAT16;
    }
    if target.subgroup_size.is_some() {
        caps |= Capabilities::SUBGROUP;
    }
    caps
}

/// Parses and validates a WGSL module with naga (all validation flags).
pub fn validate(source: &str, kernel: &str, target: &Target) -> Result<naga::Module, CompileError> {
    let fail = |message: String| CompileError::Validation {
        target: TargetKind::Wgsl.name().to_string(),
        kernel: kernel.to_string(),
        message,
    };
    let module =
        naga::front::wgsl::parse_str(source).map_err(|e| fail(e.emit_to_string(source)))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities(target))
        .validate(&module)
        .map_err(|e| fail(e.emit_to_string(source)))?;
    Ok(module)
}

/// The WGSL type of a buffer element as stored.
fn storage_type(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::I32 => "i32",
        DType::U32 | DType::Bool => "u32",
        // Two elements per word (element i in bits 16 (i & 1) ..), `atomic<u32>` when
        // written (see the module doc).
        DType::BF16 => "u32",
    }
}

/// The WGSL type of a register.
fn reg_type(t: SType) -> &'static str {
    match t {
        SType::F32 => "f32",
        SType::F16 => "f16",
        SType::I32 => "i32",
        SType::U32 => "u32",
        SType::Bool => "bool",
    }
}

/// A buffer's identifier: `b<i>_` plus the parameter name made an identifier.
fn buffer_ident(i: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("b{i}_{clean}")
}

fn float_lit(v: f64, t: SType) -> String {
    let f = v as f32;
    let s = if f.is_nan() {
        "bitcast<f32>(0x7fc00000u)".to_string()
    } else if f.is_infinite() {
        if f > 0.0 {
            "bitcast<f32>(0x7f800000u)".to_string()
        } else {
            "bitcast<f32>(0xff800000u)".to_string()
        }
    } else if f.is_sign_negative() {
        format!("(-{:?}f)", -f)
    } else {
        format!("{f:?}f")
    };
    match t {
        SType::F16 => format!("f16({s})"),
        _ => s,
    }
}

fn int_lit(v: i64, t: SType) -> String {
    match t {
        SType::U32 => format!("{}u", wrap_int(v, t)),
        _ => {
            let v = wrap_int(v, SType::I32);
            if v == i32::MIN as i64 {
                "(-2147483647i - 1i)".to_string()
            } else if v < 0 {
                format!("({v}i)")
            } else {
                format!("{v}i")
            }
        }
    }
}

struct Printer<'a> {
    k: &'a SimtKernel,
    bufs: Vec<String>,
    out: String,
}

impl Printer<'_> {
    /// The natural type of an operand.
    fn type_of(&self, o: Operand) -> SType {
        match o {
            Operand::Reg(r) => self.k.regs.get(r.0 as usize).copied().unwrap_or(SType::I32),
            Operand::Int(_) => SType::I32,
            Operand::Float(_, t) => t,
            Operand::Bool(_) => SType::Bool,
        }
    }

    /// An operand printed as a value of type `t` (immediates are typed accordingly).
    fn op(&self, o: Operand, t: SType) -> String {
        match (o, t) {
            (Operand::Reg(r), _) => {
                let own = self.type_of(o);
                if own == t {
                    format!("r{}", r.0)
                } else {
                    format!("{}(r{})", reg_type(t), r.0)
                }
            }
            (Operand::Int(v), SType::F32 | SType::F16) => float_lit(v as f64, t),
            (Operand::Int(v), SType::Bool) => (v != 0).to_string(),
            (Operand::Int(v), _) => int_lit(v, t),
            (Operand::Float(v, _), SType::F32 | SType::F16) => float_lit(v, t),
            (Operand::Float(v, _), SType::Bool) => (v != 0.0).to_string(),
            (Operand::Float(v, _), _) => int_lit(v as i64, t),
            (Operand::Bool(b), SType::Bool) => b.to_string(),
            (Operand::Bool(b), SType::F32 | SType::F16) => float_lit(b as u8 as f64, t),
            (Operand::Bool(b), _) => int_lit(b as i64, t),
        }
    }

    fn reg_t(&self, r: crate::simt::Reg) -> SType {
        self.type_of(Operand::Reg(r))
    }

    /// Whether a buffer is written by the kernel.
    fn writable(&self, i: usize) -> bool {
        self.k.buffers.get(i).is_some_and(|b| b.writable)
    }

    /// The u32 word holding bf16 element `i` (printed index) of a buffer.
    fn bf16_word(&self, buffer: usize, i: &str) -> String {
        format!("{}[({i}) >> 1u]", self.buf(buffer))
    }

    /// Element `index` of a buffer as a WGSL reference: `b[i]`, or `b[i >> 2][i & 3]` in
    /// a buffer bound as vectors.
    fn element(&self, buffer: usize, index: Operand) -> String {
        let i = self.op(index, SType::I32);
        if self.k.buffers.get(buffer).is_some_and(|b| b.vector) {
            format!("{}[({i}) >> 2u][({i}) & 3i]", self.buf(buffer))
        } else {
            format!("{}[{i}]", self.buf(buffer))
        }
    }

    fn buf(&self, i: usize) -> &str {
        self.bufs.get(i).map_or("missing_buffer", |s| s.as_str())
    }

    fn line(&mut self, depth: usize, s: &str) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn block(&mut self, stmts: &[Stmt], depth: usize) {
        for s in stmts {
            self.stmt(s, depth);
        }
    }

    fn stmt(&mut self, s: &Stmt, depth: usize) {
        let line = match s {
            Stmt::Special { dst, which } => {
                let src = match which {
                    Special::LocalId => "lid.x".to_string(),
                    Special::GroupId(a) => format!("wid.{}", ["x", "y", "z"][(*a as usize).min(2)]),
                };
                match self.reg_t(*dst) {
                    SType::U32 => format!("r{} = {src};", dst.0),
                    t => format!("r{} = {}({src});", dst.0, reg_type(t)),
                }
            }
            Stmt::Mov { dst, src } => format!("r{} = {};", dst.0, self.op(*src, self.reg_t(*dst))),
            Stmt::Unary { dst, op, x } => {
                let t = self.reg_t(*dst);
                format!(
                    "r{} = {};",
                    dst.0,
                    spell(Op::Unary(*op), &self.op(*x, t), "", t)
                )
            }
            Stmt::Binary { dst, op, a, b } => {
                let t = self.reg_t(*dst);
                let (a, b) = (self.op(*a, t), self.op(*b, t));
                format!("r{} = {};", dst.0, spell(Op::Binary(*op), &a, &b, t))
            }
            Stmt::Int { dst, op, a, b } => {
                let t = match op {
                    // Logical on bool, bitwise on integers: the destination's type.
                    IntOp::And => self.reg_t(*dst),
                    // The shift amount is a u32 in WGSL.
                    IntOp::Shl | IntOp::Shr => {
                        let t = self.reg_t(*dst);
                        let (a, b) = (self.op(*a, t), self.op(*b, SType::U32));
                        let line = format!("r{} = {};", dst.0, spell(Op::Int(*op), &a, &b, t));
                        self.line(depth, &line);
                        return;
                    }
                    c if c.is_comparison() => match (a, b) {
                        (Operand::Reg(_), _) => self.type_of(*a),
                        (_, Operand::Reg(_)) => self.type_of(*b),
                        _ => SType::I32,
                    },
                    _ => self.reg_t(*dst),
                };
                let (a, b) = (self.op(*a, t), self.op(*b, t));
                format!("r{} = {};", dst.0, spell(Op::Int(*op), &a, &b, t))
            }
            Stmt::Fma { dst, a, b, c } => {
                let t = self.reg_t(*dst);
                format!(
                    "r{} = fma({}, {}, {});",
                    dst.0,
                    self.op(*a, t),
                    self.op(*b, t),
                    self.op(*c, t)
                )
            }
            Stmt::Cast { dst, src } => {
                let (t, from) = (self.reg_t(*dst), self.type_of(*src));
                format!("r{} = {}({});", dst.0, reg_type(t), self.op(*src, from))
            }
            Stmt::Bitcast { dst, src } => {
                let (t, from) = (self.reg_t(*dst), self.type_of(*src));
                format!(
                    "r{} = bitcast<{}>({});",
                    dst.0,
                    reg_type(t),
                    self.op(*src, from)
                )
            }
            Stmt::Select { dst, cond, a, b } => {
                let t = self.reg_t(*dst);
                format!(
                    "r{} = select({}, {}, {});",
                    dst.0,
                    self.op(*b, t),
                    self.op(*a, t),
                    self.op(*cond, SType::Bool)
                )
            }
            Stmt::LoadGlobal { dst, buffer, index } => {
                let t = self.reg_t(*dst);
                let d = self.k.buffers.get(*buffer).map_or(DType::F32, |b| b.dtype);
                if d == DType::BF16 {
                    // The element's 16 bits, shifted into the top of an f32 (exact).
                    let i = self.op(*index, SType::I32);
                    let word = self.bf16_word(*buffer, &i);
                    let w = if self.writable(*buffer) {
                        format!("atomicLoad(&{word})")
                    } else {
                        word
                    };
                    let f = format!("bitcast<f32>(({w} >> ((u32({i}) & 1u) * 16u)) << 16u)");
                    let v = if t == SType::F32 {
                        f
                    } else {
                        format!("{}({f})", reg_type(t))
                    };
                    let line = format!("r{} = {v};", dst.0);
                    self.line(depth, &line);
                    return;
                }
                let x = self.element(*buffer, *index);
                let v = match (d, t) {
                    (DType::Bool, SType::Bool) => format!("({x} != 0u)"),
                    _ if storage_type(d) == reg_type(t) => x,
                    _ => format!("{}({x})", reg_type(t)),
                };
                format!("r{} = {v};", dst.0)
            }
            Stmt::StoreGlobal {
                buffer,
                index,
                value,
            } => {
                let d = self.k.buffers.get(*buffer).map_or(DType::F32, |b| b.dtype);
                if d == DType::BF16 {
                    // The value is bf16-exact (rounded by the lowering): its top 16 bits
                    // replace this element's half of the word. Two atomics, each on
                    // disjoint bits, so the neighbour's half is never clobbered.
                    let i = self.op(*index, SType::I32);
                    let v = self.op(*value, SType::F32);
                    let word = self.bf16_word(*buffer, &i);
                    let line = format!(
                        "{{ let bf_sh = (u32({i}) & 1u) * 16u; \
                         atomicAnd(&{word}, ~(0xffffu << bf_sh)); \
                         atomicOr(&{word}, (bitcast<u32>({v}) >> 16u) << bf_sh); }}"
                    );
                    self.line(depth, &line);
                    return;
                }
                let vt = match value {
                    Operand::Reg(_) => self.type_of(*value),
                    _ => crate::simt::lower::register_type(d),
                };
                let v = self.op(*value, vt);
                let v = match (d, vt) {
                    (DType::Bool, SType::Bool) => format!("select(0u, 1u, {v})"),
                    _ if storage_type(d) == reg_type(vt) => v,
                    _ => format!("{}({v})", storage_type(d)),
                };
                format!("{} = {v};", self.element(*buffer, *index))
            }
            Stmt::LoadGlobal4 { dst, buffer, index } => {
                // One vector of the buffer's element type, into registers of that type
                // (the lowering only moves f32, i32 and u32 buffers this way).
                let i = self.op(*index, SType::I32);
                let mut line = format!("{{ let v4 = {}[({i}) >> 2u];", self.buf(*buffer));
                for (r, c) in dst.iter().zip(["x", "y", "z", "w"]) {
                    let _ = write!(line, " r{} = v4.{c};", r.0);
                }
                line.push_str(" }");
                line
            }
            Stmt::StoreGlobal4 {
                buffer,
                index,
                values,
            } => {
                let d = self.k.buffers.get(*buffer).map_or(DType::F32, |b| b.dtype);
                let t = crate::simt::lower::register_type(d);
                let vs: Vec<String> = values.iter().map(|v| self.op(*v, t)).collect();
                let i = self.op(*index, SType::I32);
                format!(
                    "{}[({i}) >> 2u] = vec4<{}>({});",
                    self.buf(*buffer),
                    storage_type(d),
                    vs.join(", ")
                )
            }
            Stmt::LoadShared { dst, array, index } => {
                format!("r{} = sh{array}[{}];", dst.0, self.op(*index, SType::I32))
            }
            Stmt::StoreShared {
                array,
                index,
                value,
            } => {
                let t = self.k.shared.get(*array).map_or(SType::F32, |a| a.ty);
                format!(
                    "sh{array}[{}] = {};",
                    self.op(*index, SType::I32),
                    self.op(*value, t)
                )
            }
            Stmt::Barrier => "workgroupBarrier();".to_string(),
            Stmt::Shuffle { dst, src, lane } => format!(
                "r{} = subgroupShuffle({}, {});",
                dst.0,
                self.op(*src, self.reg_t(*dst)),
                self.op(*lane, SType::U32)
            ),
            Stmt::If { cond, then, els } => {
                let c = self.op(*cond, SType::Bool);
                self.line(depth, &format!("if ({c}) {{"));
                self.block(then, depth + 1);
                if !els.is_empty() {
                    self.line(depth, "} else {");
                    self.block(els, depth + 1);
                }
                "}".to_string()
            }
            Stmt::Loop {
                var,
                start,
                end,
                step,
                body,
            } => {
                let v = format!("r{}", var.0);
                let (s, e) = (self.op(*start, SType::I32), self.op(*end, SType::I32));
                let st = int_lit(*step, SType::I32);
                self.line(
                    depth,
                    &format!("for ({v} = {s}; {v} < {e}; {v} = {v} + {st}) {{"),
                );
                self.block(body, depth + 1);
                "}".to_string()
            }
        };
        self.line(depth, &line);
    }
}

/// An operation to spell.
#[derive(Clone, Copy)]
enum Op {
    Unary(UnaryOp),
    Binary(BinaryOp),
    Int(IntOp),
}

/// The WGSL spelling of every op, on already printed operands of type `t`
/// (`b` is unused by unary ops).
///
/// `tanh` clamps its argument to [-15, 15]: some drivers evaluate `tanh` as a quotient
/// of exponentials that gives NaN (inf/inf) for large |x|; tanh(±15) is ±1 in f32.
fn spell(op: Op, a: &str, b: &str, t: SType) -> String {
    match op {
        Op::Unary(u) => match u {
            UnaryOp::Neg => format!("-({a})"),
            UnaryOp::Exp => format!("exp({a})"),
            UnaryOp::Log => format!("log({a})"),
            UnaryOp::Sqrt => format!("sqrt({a})"),
            UnaryOp::Rsqrt => format!("inverseSqrt({a})"),
            UnaryOp::Tanh => format!(
                "tanh(clamp({a}, {}, {}))",
                float_lit(-15.0, t),
                float_lit(15.0, t)
            ),
            // Composed by the SIMT lowering (`simt::lower`) from the primitives above; these
            // spellings are never reached from lowered kernels.
            UnaryOp::Abs => format!("abs({a})"),
            UnaryOp::Relu => format!("max({a}, {})", float_lit(0.0, t)),
            UnaryOp::Reciprocal => format!("{} / ({a})", float_lit(1.0, t)),
            UnaryOp::Sigmoid | UnaryOp::Erf => {
                format!("/* {} is composed by the lowering */ {a}", u.name())
            }
        },
        Op::Binary(BinaryOp::Add) | Op::Int(IntOp::Add) => format!("{a} + {b}"),
        Op::Binary(BinaryOp::Sub) | Op::Int(IntOp::Sub) => format!("{a} - {b}"),
        Op::Binary(BinaryOp::Mul) | Op::Int(IntOp::Mul) => format!("{a} * {b}"),
        Op::Binary(BinaryOp::Div) | Op::Int(IntOp::Div) => format!("{a} / {b}"),
        Op::Binary(BinaryOp::Max) | Op::Int(IntOp::Max) => format!("max({a}, {b})"),
        Op::Binary(BinaryOp::Min) | Op::Int(IntOp::Min) => format!("min({a}, {b})"),
        // Composed by the SIMT lowering from the primitives above; never printed.
        Op::Binary(BinaryOp::Pow) => format!("pow({a}, {b})"),
        Op::Int(IntOp::Rem) => format!("{a} % {b}"),
        Op::Int(IntOp::Lt) => format!("{a} < {b}"),
        Op::Int(IntOp::And) => format!("{a} & {b}"),
        Op::Int(IntOp::Le) => format!("{a} <= {b}"),
        Op::Int(IntOp::Eq) => format!("{a} == {b}"),
        Op::Int(IntOp::Gt) => format!("{a} > {b}"),
        Op::Int(IntOp::Ge) => format!("{a} >= {b}"),
        Op::Int(IntOp::Or) => format!("{a} | {b}"),
        Op::Int(IntOp::Shl) => format!("{a} << {b}"),
        Op::Int(IntOp::Shr) => format!("{a} >> {b}"),
    }
}

/// Prints a SIMT kernel as a WGSL module (not validated: see [`validate`]).
pub fn print_kernel(k: &SimtKernel) -> String {
    let bufs: Vec<String> = k
        .buffers
        .iter()
        .enumerate()
        .map(|(i, b)| buffer_ident(i, &b.name))
        .collect();
    let mut p = Printer {
        k,
        bufs,
        out: String::new(),
    };
    let o = &mut p.out;
    let _ = writeln!(
        o,
        "// Tessera kernel `{}` (generated; do not edit).",
        k.name
    );
    let _ = writeln!(
        o,
        "// grid {:?} workgroups of {} threads.",
        k.grid, k.workgroup_size
    );
    let uses_f16 = k.regs.contains(&SType::F16)
        || k.shared.iter().any(|a| a.ty == SType::F16)
        || k.buffers.iter().any(|b| b.dtype == DType::F16);
    if uses_f16 {
        let _ = writeln!(o, "enable f16;");
    }
    let _ = writeln!(o);
    for (i, b) in k.buffers.iter().enumerate() {
        let mode = if b.writable { "read_write" } else { "read" };
        let elem = match b.dtype {
            DType::BF16 if b.writable => "atomic<u32>".to_string(),
            d if b.vector => format!("vec4<{}>", storage_type(d)),
            d => storage_type(d).to_string(),
        };
        let _ = writeln!(
            o,
            "@group(0) @binding({i}) var<storage, {mode}> {}: array<{}>; // {}: {}[{}]",
            p.bufs[i],
            elem,
            super::comment_safe(&b.name),
            b.dtype,
            b.len
        );
    }
    for (i, a) in k.shared.iter().enumerate() {
        let _ = writeln!(
            o,
            "var<workgroup> sh{i}: array<{}, {}>;",
            reg_type(a.ty),
            a.len.max(1)
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "@compute @workgroup_size({})", k.workgroup_size);
    let _ = writeln!(
        o,
        "fn {}(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {{",
        k.name
    );
    for (i, t) in k.regs.iter().enumerate() {
        let _ = writeln!(o, "    var r{i}: {};", reg_type(*t));
    }
    p.block(&k.body, 1);
    p.out.push_str("}\n");
    p.out
}
