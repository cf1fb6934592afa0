//! PTX text -> decoded kernels: directives, register declarations, shared arrays, labels
//! and instructions, each instruction decoded once into an [`Inst`] with resolved
//! register indices and branch targets (so execution does no string work).
//!
//! The accepted language is the subset Tessera's PTX printer writes (one statement per
//! line, `//` comments); anything else is a [`VmError::Parse`] or
//! [`VmError::Unsupported`] naming the line, never a guess.

use super::error::VmError;
use std::collections::HashMap;

/// A value type named by an instruction suffix (`.f32`, `.s32`, `.b16` ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Pred,
    B16,
    U16,
    S16,
    F16,
    Bf16,
    B32,
    U32,
    S32,
    F32,
    B64,
    U64,
    S64,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "pred" => Ty::Pred,
            "b16" => Ty::B16,
            "u16" => Ty::U16,
            "s16" => Ty::S16,
            "f16" => Ty::F16,
            "bf16" => Ty::Bf16,
            "b32" => Ty::B32,
            "u32" => Ty::U32,
            "s32" => Ty::S32,
            "f32" => Ty::F32,
            "b64" => Ty::B64,
            "u64" => Ty::U64,
            "s64" => Ty::S64,
            _ => return None,
        })
    }

    /// Size in bytes in memory (predicates have none).
    pub(crate) fn bytes(self) -> u64 {
        match self {
            Ty::Pred => 0,
            Ty::B16 | Ty::U16 | Ty::S16 | Ty::F16 | Ty::Bf16 => 2,
            Ty::B32 | Ty::U32 | Ty::S32 | Ty::F32 => 4,
            Ty::B64 | Ty::U64 | Ty::S64 => 8,
        }
    }

    fn is_signed(self) -> bool {
        matches!(self, Ty::S16 | Ty::S32 | Ty::S64)
    }

    fn is_float(self) -> bool {
        matches!(self, Ty::F16 | Ty::Bf16 | Ty::F32)
    }
}

/// Float binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FBin {
    Add,
    Sub,
    Mul,
    Div,
    /// `max` / `min`; `nan`: the `.NaN` variant (a NaN operand gives NaN).
    Max {
        nan: bool,
    },
    Min {
        nan: bool,
    },
    /// `copysign d, a, b`: `|b|` with the sign of `a` (PTX operand order).
    Copysign,
}

/// Float unary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FUn {
    Neg,
    Abs,
    /// `sqrt.rn` (correctly rounded).
    Sqrt,
    /// The approximate ones ([`FUn::is_approx`]): `sqrt.approx`, `rsqrt.approx`,
    /// `rcp.approx`, `ex2.approx`, `lg2.approx`.
    SqrtApprox,
    Rsqrt,
    /// `rcp.rn` (correctly rounded).
    Rcp,
    RcpApprox,
    Ex2,
    Lg2,
}

impl FUn {
    /// Whether PTX specifies the operation as approximate (only error bounds).
    pub(crate) fn is_approx(self) -> bool {
        matches!(
            self,
            FUn::SqrtApprox | FUn::Rsqrt | FUn::RcpApprox | FUn::Ex2 | FUn::Lg2
        )
    }
}

/// Integer binary operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IBin {
    Add,
    Sub,
    MulLo,
    MulHi,
    Div,
    Rem,
    Min,
    Max,
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

/// Comparison of `setp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// The unordered forms (`equ`, `neu`, `ltu` ...): true when either operand is NaN.
    Equ,
    Neu,
    Ltu,
    Leu,
    Gtu,
    Geu,
    Num,
    Nan,
}

impl Cmp {
    fn parse(s: &str) -> Option<Cmp> {
        Some(match s {
            "eq" => Cmp::Eq,
            "ne" => Cmp::Ne,
            "lt" | "lo" => Cmp::Lt,
            "le" | "ls" => Cmp::Le,
            "gt" | "hi" => Cmp::Gt,
            "ge" | "hs" => Cmp::Ge,
            "equ" => Cmp::Equ,
            "neu" => Cmp::Neu,
            "ltu" => Cmp::Ltu,
            "leu" => Cmp::Leu,
            "gtu" => Cmp::Gtu,
            "geu" => Cmp::Geu,
            "num" => Cmp::Num,
            "nan" => Cmp::Nan,
            _ => return None,
        })
    }
}

/// Rounding of a `cvt` (float results) or its integer rounding (`.rzi`, `.rni` ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rnd {
    /// No rounding modifier (exact conversions, integer widening).
    None,
    Rn,
    Rzi,
    Rni,
    Rmi,
    Rpi,
}

/// A memory state space of `ld` / `st`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Space {
    Global,
    Shared,
}

/// A special register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    Tid(u8),
    Ntid(u8),
    Ctaid(u8),
    Nctaid(u8),
}

/// The operation of one decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    /// `mov`: copies the source's bits (masked to the type's width).
    Mov(Ty),
    /// Fast paths of the commonest instructions (the general forms below give the same
    /// results): 32-bit integer add and low multiply, 64-bit add, f32 `add.rn`,
    /// `mul.rn`, `fma.rn` (no `.ftz`), `setp` on s32.
    AddI32,
    MulLoI32,
    AddI64,
    AddF32,
    MulF32,
    FmaF32,
    SetpS32(Cmp),
    FBin(FBin, Ty, bool),
    FFma(Ty, bool),
    FUn(FUn, Ty, bool),
    IBin(IBin, Ty),
    /// `mad.lo`: `a * b + c`, low half.
    IMadLo(Ty),
    /// `mul.wide.{s32,u32}`: 32 x 32 -> 64 bits.
    MulWide {
        signed: bool,
    },
    INeg(Ty),
    IAbs(Ty),
    Not(Ty),
    Setp(Cmp, Ty),
    /// `and.pred` / `or.pred` / `xor.pred`.
    PredBin(IBin),
    Selp(Ty),
    Cvt {
        dst: Ty,
        src: Ty,
        rnd: Rnd,
        ftz: bool,
    },
    /// `ld.param.u64`: the launch argument of parameter `param`.
    LdParam {
        param: usize,
    },
    /// `cvta.to.global.u64`: identity on the VM's addresses.
    Cvta,
    Ld(Space, Ty),
    St(Space, Ty),
    /// Checks that the address `[srcs[0] + offset]` is a multiple of this many bytes
    /// (the first instruction of an `ld` / `st` `.v4`, which is decoded as this check
    /// and one scalar access per element).
    Align(u64),
    Bra {
        target: usize,
    },
    Bar,
    Ret,
}

/// A source operand: a register index. Immediates and symbols are registers too, each
/// holding its constant (filled when a block starts: [`Kernel::consts`]), so reading an
/// operand never branches on its kind.
pub(crate) type Src = u32;

/// One decoded instruction.
#[derive(Clone, Debug)]
pub(crate) struct Inst {
    pub op: Op,
    /// `@%p` / `@!%p`: the predicate register and whether it is negated.
    pub guard: Option<(u32, bool)>,
    /// Destination register (`st`: none).
    pub dst: Option<u32>,
    /// Sources; an address operand `[reg+off]` is `srcs[0]` = reg, `offset` = off.
    pub srcs: [Src; 3],
    pub offset: i64,
    /// The source line (1-based) in the module text, for diagnostics.
    pub line: u32,
}

/// One `.shared` array.
#[derive(Clone, Debug)]
pub(crate) struct SharedArray {
    pub name: String,
    pub bytes: u64,
    pub align: u64,
}

/// One decoded `.entry`.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The entry's name.
    pub name: String,
    /// Parameter names, in order (each a `.u64` pointer).
    pub params: Vec<String>,
    /// `.reqntid` x (the only block size the entry may be launched with), if declared.
    pub reqntid: Option<u32>,
    /// Number of registers (declared ones, then one per special register read).
    pub(crate) regs: usize,
    /// Width in bits of each register (1 for predicates): loads and conversions into a
    /// wider register are extended to it.
    pub(crate) reg_bits: Vec<u8>,
    pub(crate) shared: Vec<SharedArray>,
    pub(crate) code: Vec<Inst>,
    /// Register indices of the special registers the code reads, with what they hold.
    pub(crate) specials: Vec<(u32, Special)>,
    /// Register indices holding the immediates and symbol addresses, with their bits.
    pub(crate) consts: Vec<(u32, u64)>,
    /// The module text's lines, for messages.
    pub(crate) lines: std::sync::Arc<Vec<String>>,
}

impl Kernel {
    /// The source text of line `line` (1-based), trimmed.
    pub(crate) fn line_text(&self, line: u32) -> String {
        self.lines
            .get(line.saturating_sub(1) as usize)
            .map(|l| l.trim().to_string())
            .unwrap_or_default()
    }

    /// Total static shared memory, bytes (arrays laid out in order, each aligned).
    pub fn shared_bytes(&self) -> u64 {
        self.shared.iter().map(|a| a.bytes).sum()
    }
}

/// A parsed PTX module: its entries.
#[derive(Clone, Debug)]
pub struct Module {
    /// `.version` as written.
    pub version: String,
    /// `.target` as written (e.g. `sm_80`).
    pub target: String,
    /// The entries, in order.
    pub kernels: Vec<Kernel>,
}

impl Module {
    /// The entry named `name`.
    pub fn kernel(&self, name: &str) -> Option<&Kernel> {
        self.kernels.iter().find(|k| k.name == name)
    }
}

/// Shared-array addresses are `SHARED_TAG | (index + 1) << REGION_SHIFT | offset`;
/// parameter `i`'s pointer is `(i + 1) << REGION_SHIFT`.
pub(crate) const REGION_SHIFT: u32 = 40;
pub(crate) const SHARED_TAG: u64 = 1 << 63;

/// Registers one kernel may declare (the hardware has 255 per thread; PTX's virtual
/// registers are more, but not millions).
const MAX_REGISTERS: usize = 1 << 20;
/// Static shared memory one kernel may declare (sm_90 offers 227 KiB per block).
const MAX_SHARED_BYTES: u64 = 1 << 20;

/// Instruction modifiers this machine implements (besides types and, for `setp`, the
/// comparison); any other (`.sat`, `.rz`, `.rm`, `.rp`, `.relu`, `.cc`, `.volatile` ...)
/// is refused rather than ignored.
const KNOWN_MODIFIERS: &[&str] = &[
    "rn", "ftz", "NaN", "wide", "lo", "hi", "approx", "rzi", "rni", "rmi", "rpi", "to", "global",
    "shared", "param", "sync", "uni", "cta", "v4",
];

/// Parses a PTX module.
pub fn parse(text: &str) -> Result<Module, VmError> {
    let lines: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new(text.lines().map(str::to_string).collect());
    let mut version = String::new();
    let mut target = String::new();
    let mut kernels = Vec::new();
    let mut i = 0;
    let n = lines.len();
    while i < n {
        let line = strip(&lines[i]);
        let lineno = i as u32 + 1;
        i += 1;
        if line.is_empty() {
            continue;
        }
        if let Some(v) = line.strip_prefix(".version") {
            version = v.trim().to_string();
        } else if let Some(t) = line.strip_prefix(".target") {
            target = t.trim().to_string();
        } else if line.starts_with(".address_size") {
            if line.split_whitespace().nth(1) != Some("64") {
                return Err(parse_err(lineno, "only `.address_size 64` is supported"));
            }
        } else if line.starts_with(".visible .entry") || line.starts_with(".entry") {
            let (kernel, next) = parse_entry(&lines, i - 1)?;
            kernels.push(kernel);
            i = next;
        } else {
            return Err(VmError::Unsupported {
                line: lineno,
                text: line.to_string(),
                what: "a module-level statement other than .version, .target, \
                       .address_size or an .entry"
                    .into(),
            });
        }
    }
    if kernels.is_empty() {
        return Err(parse_err(0, "the module has no .entry"));
    }
    Ok(Module {
        version,
        target,
        kernels,
    })
}

fn parse_err(line: u32, message: impl Into<String>) -> VmError {
    VmError::Parse {
        line,
        message: message.into(),
    }
}

/// The line without its `//` comment, trimmed.
fn strip(line: &str) -> &str {
    match line.find("//") {
        Some(p) => line[..p].trim(),
        None => line.trim(),
    }
}

/// Parses one entry starting at line index `start`; returns it and the index after its `}`.
fn parse_entry(
    lines: &std::sync::Arc<Vec<String>>,
    start: usize,
) -> Result<(Kernel, usize), VmError> {
    // Header: `.visible .entry NAME(` then `.param .u64 p,` lines then `)`.
    let head = strip(&lines[start]);
    let after = head
        .split(".entry")
        .nth(1)
        .ok_or_else(|| parse_err(start as u32 + 1, "no entry name"))?;
    let name = after.split('(').next().unwrap_or("").trim().to_string();
    if name.is_empty() {
        return Err(parse_err(start as u32 + 1, "no entry name"));
    }
    let mut header = after.split_once('(').map(|x| x.1).unwrap_or("").to_string();
    let mut i = start + 1;
    while !header.contains(')') {
        let l = lines
            .get(i)
            .ok_or_else(|| parse_err(start as u32 + 1, "the parameter list never closes"))?;
        header.push(' ');
        header.push_str(strip(l));
        i += 1;
    }
    let list = header.split(')').next().unwrap_or("");
    let mut params = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let words: Vec<&str> = p.split_whitespace().collect();
        match words.as_slice() {
            [".param", ".u64", name] | [".param", ".b64", name] => params.push(name.to_string()),
            _ => {
                return Err(VmError::Unsupported {
                    line: start as u32 + 1,
                    text: p.to_string(),
                    what: "a kernel parameter other than `.param .u64 name`".into(),
                })
            }
        }
    }
    // Performance directives, then the body.
    let mut reqntid = None;
    loop {
        let l = strip(
            lines
                .get(i)
                .ok_or_else(|| parse_err(i as u32, "no entry body"))?,
        );
        i += 1;
        if l.is_empty() {
            continue;
        }
        if let Some(rest) = l.strip_prefix(".reqntid") {
            let x = rest
                .trim()
                .trim_end_matches(';')
                .split(',')
                .next()
                .unwrap_or("");
            reqntid = Some(
                x.trim()
                    .parse::<u32>()
                    .map_err(|_| parse_err(i as u32, "bad .reqntid"))?,
            );
            if rest
                .split(',')
                .skip(1)
                .any(|d| d.trim().trim_end_matches(';') != "1")
            {
                return Err(VmError::Unsupported {
                    line: i as u32,
                    text: l.to_string(),
                    what: "a multi-dimensional block".into(),
                });
            }
            continue;
        }
        if l == "{" {
            break;
        }
        return Err(VmError::Unsupported {
            line: i as u32,
            text: l.to_string(),
            what: "an entry directive other than .reqntid".into(),
        });
    }

    let mut b = BodyBuilder {
        regs: 0,
        reg_bits: Vec::new(),
        reg_index: HashMap::new(),
        shared: Vec::new(),
        params: params.clone(),
        specials: Vec::new(),
        consts: Vec::new(),
        const_index: HashMap::new(),
        labels: HashMap::new(),
        pending: Vec::new(),
        code: Vec::new(),
    };
    let mut end = None;
    while i < lines.len() {
        let lineno = i as u32 + 1;
        let l = strip(&lines[i]);
        i += 1;
        if l.is_empty() {
            continue;
        }
        if l == "}" {
            end = Some(i);
            break;
        }
        if let Some(label) = l.strip_suffix(':') {
            if b.labels.insert(label.to_string(), b.code.len()).is_some() {
                return Err(parse_err(lineno, format!("label `{label}` defined twice")));
            }
            continue;
        }
        let stmt = l
            .strip_suffix(';')
            .ok_or_else(|| parse_err(lineno, format!("`{l}` does not end with `;`")))?
            .trim();
        if stmt.starts_with(".reg") {
            b.declare_regs(stmt, lineno)?;
        } else if stmt.starts_with(".shared") {
            b.declare_shared(stmt, lineno)?;
        } else {
            b.instruction(stmt, lineno)?;
        }
    }
    let end =
        end.ok_or_else(|| parse_err(start as u32 + 1, format!("entry `{name}` never closes")))?;
    // Branch targets.
    for (at, label, line) in std::mem::take(&mut b.pending) {
        let target = *b
            .labels
            .get(&label)
            .ok_or_else(|| parse_err(line, format!("branch to undefined label `{label}`")))?;
        b.code[at].op = Op::Bra { target };
    }
    Ok((
        Kernel {
            name,
            params,
            reqntid,
            regs: b.regs,
            reg_bits: b.reg_bits,
            shared: b.shared,
            code: b.code,
            specials: b.specials,
            consts: b.consts,
            lines: lines.clone(),
        },
        end,
    ))
}

struct BodyBuilder {
    regs: usize,
    reg_bits: Vec<u8>,
    reg_index: HashMap<String, u32>,
    shared: Vec<SharedArray>,
    params: Vec<String>,
    specials: Vec<(u32, Special)>,
    consts: Vec<(u32, u64)>,
    const_index: HashMap<u64, u32>,
    labels: HashMap<String, usize>,
    /// Branches whose label is resolved at the end: (instruction, label, line).
    pending: Vec<(usize, String, u32)>,
    code: Vec<Inst>,
}

impl BodyBuilder {
    fn add_reg(&mut self, name: String, bits: u8, line: u32) -> Result<u32, VmError> {
        if self.regs >= MAX_REGISTERS {
            return Err(parse_err(
                line,
                format!("more than {MAX_REGISTERS} registers in one kernel"),
            ));
        }
        let idx = self.regs as u32;
        if self.reg_index.insert(name.clone(), idx).is_some() {
            return Err(parse_err(line, format!("register `{name}` declared twice")));
        }
        self.regs += 1;
        self.reg_bits.push(bits);
        Ok(idx)
    }

    /// `.reg .f32 %f<35>` or `.reg .f32 %f0, %f1`.
    fn declare_regs(&mut self, stmt: &str, line: u32) -> Result<(), VmError> {
        let mut words = stmt.split_whitespace();
        words.next();
        let ty = words
            .next()
            .and_then(|t| t.strip_prefix('.'))
            .and_then(Ty::parse)
            .ok_or_else(|| parse_err(line, format!("bad register type in `{stmt}`")))?;
        let bits = match ty {
            Ty::Pred => 1,
            t => (t.bytes() * 8) as u8,
        };
        let rest: String = words.collect::<Vec<_>>().join(" ");
        for decl in rest.split(',').map(str::trim) {
            if let Some((prefix, count)) = decl.split_once('<') {
                let count: usize = count
                    .trim_end_matches('>')
                    .parse()
                    .map_err(|_| parse_err(line, format!("bad register count in `{decl}`")))?;
                if count > MAX_REGISTERS {
                    return Err(parse_err(
                        line,
                        format!("more than {MAX_REGISTERS} registers in one kernel"),
                    ));
                }
                for k in 0..count {
                    self.add_reg(format!("{prefix}{k}"), bits, line)?;
                }
            } else {
                self.add_reg(decl.to_string(), bits, line)?;
            }
        }
        Ok(())
    }

    /// `.shared .align 16 .f32 smem0[256]`.
    fn declare_shared(&mut self, stmt: &str, line: u32) -> Result<(), VmError> {
        let words: Vec<&str> = stmt.split_whitespace().collect();
        let (align, ty, decl) = match words.as_slice() {
            [".shared", ".align", a, ty, decl] => (
                a.parse::<u64>()
                    .map_err(|_| parse_err(line, "bad .align"))?,
                *ty,
                *decl,
            ),
            [".shared", ty, decl] => (1, *ty, *decl),
            _ => return Err(parse_err(line, format!("bad shared declaration `{stmt}`"))),
        };
        let ty = ty
            .strip_prefix('.')
            .and_then(Ty::parse)
            .ok_or_else(|| parse_err(line, format!("bad shared element type in `{stmt}`")))?;
        let (name, len) = decl
            .split_once('[')
            .ok_or_else(|| parse_err(line, "a shared declaration without [length]"))?;
        let len: u64 = len
            .trim_end_matches(']')
            .parse()
            .map_err(|_| parse_err(line, "bad shared array length"))?;
        if !align.is_power_of_two() || align > 1024 {
            return Err(parse_err(
                line,
                format!(".align {align}: not a power of two up to 1024"),
            ));
        }
        let total = self.shared.iter().map(|a| a.bytes + a.align).sum::<u64>();
        let bytes = len
            .checked_mul(ty.bytes().max(1))
            .filter(|b| b.saturating_add(total) <= MAX_SHARED_BYTES)
            .ok_or_else(|| {
                parse_err(
                    line,
                    format!("more than {MAX_SHARED_BYTES} bytes of shared memory"),
                )
            })?;
        self.shared.push(SharedArray {
            name: name.to_string(),
            bytes,
            align: align.max(ty.bytes()),
        });
        Ok(())
    }

    /// The register holding constant `bits` (one per distinct value).
    fn constant(&mut self, bits: u64) -> u32 {
        if let Some(&r) = self.const_index.get(&bits) {
            return r;
        }
        let r = self.regs as u32;
        self.regs += 1;
        self.reg_bits.push(64);
        self.consts.push((r, bits));
        self.const_index.insert(bits, r);
        r
    }

    fn reg(&self, tok: &str, line: u32) -> Result<u32, VmError> {
        self.reg_index
            .get(tok)
            .copied()
            .ok_or_else(|| parse_err(line, format!("undeclared register `{tok}`")))
    }

    /// A source operand: register, special register, immediate or symbol.
    fn src(&mut self, tok: &str, ty: Option<Ty>, line: u32) -> Result<Src, VmError> {
        let tok = tok.trim();
        if let Some(special) = parse_special(tok) {
            if let Some(&(r, _)) = self.specials.iter().find(|(_, s)| *s == special) {
                return Ok(r);
            }
            let r = self.add_reg(tok.to_string(), 32, line)?;
            self.specials.push((r, special));
            return Ok(r);
        }
        if tok.starts_with('%') {
            return self.reg(tok, line);
        }
        if let Some(hex) = tok.strip_prefix("0f").or_else(|| tok.strip_prefix("0F")) {
            let bits = u32::from_str_radix(hex, 16)
                .map_err(|_| parse_err(line, format!("bad f32 immediate `{tok}`")))?;
            return Ok(self.constant(u64::from(bits)));
        }
        if tok.starts_with("0d") || tok.starts_with("0D") {
            // A 0d constant is converted to the instruction's float type; no instruction
            // here takes f64, and the printer writes 0f constants.
            return Err(VmError::Unsupported {
                line,
                text: tok.to_string(),
                what: "a 0d (f64) immediate".into(),
            });
        }
        if let Some(i) = self.shared.iter().position(|a| a.name == tok) {
            return Ok(self.constant(SHARED_TAG | (i as u64 + 1) << REGION_SHIFT));
        }
        let (neg, digits) = match tok.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, tok),
        };
        let digits = digits.trim_end_matches('U');
        let v = if let Some(h) = digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            u64::from_str_radix(h, 16)
        } else if let Some(b) = digits
            .strip_prefix("0b")
            .or_else(|| digits.strip_prefix("0B"))
        {
            u64::from_str_radix(b, 2)
        } else if digits.len() > 1 && digits.starts_with('0') {
            // PTX, like C: a leading zero means octal.
            u64::from_str_radix(&digits[1..], 8)
        } else {
            digits.parse::<u64>()
        }
        .map_err(|_| parse_err(line, format!("bad operand `{tok}`")))?;
        let v = if neg { v.wrapping_neg() } else { v };
        if ty.is_some_and(Ty::is_float) {
            return Err(VmError::Unsupported {
                line,
                text: tok.to_string(),
                what: "a decimal immediate for a float operand (PTX float immediates are 0f...)"
                    .into(),
            });
        }
        Ok(self.constant(v))
    }

    /// `[%rd5]`, `[%rd5+8]`, `[name]`: (base, offset).
    fn address(&mut self, tok: &str, line: u32) -> Result<(Src, i64), VmError> {
        let inner = tok
            .trim()
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(|| parse_err(line, format!("`{tok}` is not an address [..]")))?
            .trim();
        let (base, off) = match inner.find(['+', '-']) {
            Some(p) if p > 0 => {
                let off: i64 = inner[p..]
                    .replace(' ', "")
                    .trim_start_matches('+')
                    .parse()
                    .map_err(|_| parse_err(line, format!("bad address offset in `{tok}`")))?;
                (inner[..p].trim(), off)
            }
            _ => (inner, 0),
        };
        Ok((self.src(base, None, line)?, off))
    }

    /// `ld.global.v4.T {a, b, c, d}, [addr]` / `st.global.v4.T [addr], {a, b, c, d}`
    /// (`ops` split at commas, so the braces are on the first and last register):
    /// decoded as an alignment check of the address to the vector's size, then one
    /// scalar access per element at offsets of the element size. `inst` carries the
    /// guard and the line.
    fn vector_access(
        &mut self,
        load: bool,
        ty: Ty,
        ops: &[&str],
        inst: Inst,
    ) -> Result<(), VmError> {
        let line = inst.line;
        let [first, rest @ ..] = ops else {
            return Err(parse_err(line, "a vector access without operands"));
        };
        let (addr, regs) = if load {
            (
                ops.last().copied().unwrap_or(""),
                &ops[..ops.len().saturating_sub(1)],
            )
        } else {
            (*first, rest)
        };
        let joined = regs.join(",");
        let inner = joined
            .trim()
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| parse_err(line, format!("`{joined}` is not a vector {{..}}")))?;
        let regs: Vec<&str> = inner.split(',').map(str::trim).collect();
        if regs.len() != 4 || ops.len() != 5 {
            return Err(parse_err(
                line,
                "a .v4 access takes four registers and an address",
            ));
        }
        let (a, off) = self.address(addr, line)?;
        let size = ty.bytes();
        if size != 4 {
            return Err(parse_err(
                line,
                "a .v4 access of other than 32-bit elements",
            ));
        }
        let mut check = inst.clone();
        check.srcs[0] = a;
        check.offset = off;
        check.op = Op::Align(4 * size);
        self.code.push(check);
        for (i, r) in regs.iter().enumerate() {
            let mut e = inst.clone();
            e.srcs[0] = a;
            e.offset = off + (i as u64 * size) as i64;
            if load {
                let d = self.reg(r, line)?;
                if d == a {
                    // The decoded loads would read the later addresses from it.
                    return Err(parse_err(line, "a .v4 load into its own address register"));
                }
                e.dst = Some(d);
                e.op = Op::Ld(Space::Global, ty);
            } else {
                e.srcs[1] = self.src(r, Some(ty), line)?;
                e.op = Op::St(Space::Global, ty);
            }
            self.code.push(e);
        }
        Ok(())
    }

    fn instruction(&mut self, stmt: &str, line: u32) -> Result<(), VmError> {
        let unsupported = |what: &str| VmError::Unsupported {
            line,
            text: stmt.to_string(),
            what: what.to_string(),
        };
        let mut rest = stmt;
        let mut guard = None;
        if let Some(g) = rest.strip_prefix('@') {
            let (p, r) = g
                .split_once(char::is_whitespace)
                .ok_or_else(|| parse_err(line, "a guard without an instruction"))?;
            let (neg, p) = match p.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, p),
            };
            guard = Some((self.reg(p, line)?, neg));
            rest = r.trim();
        }
        let (opcode, operands) = match rest.split_once(char::is_whitespace) {
            Some((o, a)) => (o, a.trim()),
            None => (rest, ""),
        };
        let ops: Vec<&str> = if operands.is_empty() {
            Vec::new()
        } else {
            operands.split(',').map(str::trim).collect()
        };
        let parts: Vec<&str> = opcode.split('.').collect();
        let base = parts[0];
        let mods = &parts[1..];
        let has = |m: &str| mods.contains(&m);
        if let Some(m) = mods.iter().find(|m| {
            !KNOWN_MODIFIERS.contains(m)
                && Ty::parse(m).is_none()
                && !(base == "setp" && Cmp::parse(m).is_some())
        }) {
            return Err(VmError::Unsupported {
                line,
                text: stmt.to_string(),
                what: format!("the modifier `.{m}`"),
            });
        }
        let last_ty = || mods.last().and_then(|t| Ty::parse(t));
        let need = |n: usize| -> Result<(), VmError> {
            if ops.len() == n {
                Ok(())
            } else {
                Err(parse_err(
                    line,
                    format!("`{opcode}` takes {n} operands, `{stmt}` has {}", ops.len()),
                ))
            }
        };
        let zero = self.constant(0);
        let mut inst = Inst {
            op: Op::Ret,
            guard,
            dst: None,
            srcs: [zero; 3],
            offset: 0,
            line,
        };
        let ftz = has("ftz");
        if has("v4") && !matches!(base, "ld" | "st") {
            return Err(unsupported("`.v4` outside ld / st"));
        }
        match base {
            "ret" | "exit" => inst.op = Op::Ret,
            "bra" => {
                need(1)?;
                self.pending
                    .push((self.code.len(), ops[0].to_string(), line));
                inst.op = Op::Bra { target: 0 };
            }
            "bar" | "barrier" => {
                if !(has("sync") || has("cta") || mods.is_empty())
                    || ops.len() != 1
                    || ops[0] != "0"
                {
                    return Err(unsupported("a barrier other than `bar.sync 0`"));
                }
                inst.op = Op::Bar;
            }
            "ld" | "st" => {
                let ty = last_ty().ok_or_else(|| unsupported("a load/store without a type"))?;
                if ty == Ty::Pred {
                    return Err(unsupported("a predicate load or store"));
                }

                if has("v4") {
                    if !has("global") {
                        return Err(unsupported("a vector access outside .global"));
                    }
                    return self.vector_access(base == "ld", ty, &ops, inst);
                }
                need(2)?;
                if has("param") {
                    if base != "ld" {
                        return Err(unsupported("st.param"));
                    }
                    let name = ops[1].trim_start_matches('[').trim_end_matches(']').trim();
                    let param =
                        self.params.iter().position(|p| p == name).ok_or_else(|| {
                            parse_err(line, format!("unknown parameter `{name}`"))
                        })?;
                    inst.dst = Some(self.reg(ops[0], line)?);
                    inst.op = Op::LdParam { param };
                } else {
                    let space = if has("global") {
                        Space::Global
                    } else if has("shared") {
                        Space::Shared
                    } else {
                        return Err(unsupported("a load/store outside .global and .shared"));
                    };
                    if base == "ld" {
                        inst.dst = Some(self.reg(ops[0], line)?);
                        let (a, off) = self.address(ops[1], line)?;
                        inst.srcs[0] = a;
                        inst.offset = off;
                        inst.op = Op::Ld(space, ty);
                    } else {
                        let (a, off) = self.address(ops[0], line)?;
                        inst.srcs[0] = a;
                        inst.offset = off;
                        inst.srcs[1] = self.src(ops[1], Some(ty), line)?;
                        inst.op = Op::St(space, ty);
                    }
                }
            }
            "cvta" => {
                need(2)?;
                if !has("to") || !has("global") {
                    return Err(unsupported("cvta other than cvta.to.global"));
                }
                inst.dst = Some(self.reg(ops[0], line)?);
                inst.srcs[0] = self.src(ops[1], None, line)?;
                inst.op = Op::Cvta;
            }
            "cvt" => {
                need(2)?;
                let tys: Vec<Ty> = mods.iter().filter_map(|m| Ty::parse(m)).collect();
                let [dst, src] = tys[..] else {
                    return Err(parse_err(line, "cvt needs a destination and a source type"));
                };
                let rnd = if has("rn") {
                    Rnd::Rn
                } else if has("rzi") {
                    Rnd::Rzi
                } else if has("rni") {
                    Rnd::Rni
                } else if has("rmi") {
                    Rnd::Rmi
                } else if has("rpi") {
                    Rnd::Rpi
                } else {
                    Rnd::None
                };
                let narrowing_float = dst.is_float()
                    && (!src.is_float() || dst.bytes() < src.bytes())
                    && !matches!(src, Ty::Pred);
                let int_rounding = matches!(rnd, Rnd::Rzi | Rnd::Rni | Rnd::Rmi | Rnd::Rpi);
                if narrowing_float && rnd != Rnd::Rn && !(int_rounding && dst == src) {
                    return Err(unsupported("a rounding float conversion other than .rn"));
                }
                if has("sat") {
                    return Err(unsupported("cvt.sat"));
                }
                if src.is_float()
                    && !dst.is_float()
                    && !matches!(rnd, Rnd::Rzi | Rnd::Rni | Rnd::Rmi | Rnd::Rpi)
                {
                    return Err(unsupported(
                        "a float-to-integer conversion without an integer rounding",
                    ));
                }
                inst.dst = Some(self.reg(ops[0], line)?);
                inst.srcs[0] = self.src(ops[1], Some(src), line)?;
                inst.op = Op::Cvt { dst, src, rnd, ftz };
            }
            "setp" => {
                need(3)?;
                let cmp = mods
                    .first()
                    .and_then(|m| Cmp::parse(m))
                    .ok_or_else(|| unsupported("this setp comparison"))?;
                let ty = last_ty().ok_or_else(|| unsupported("setp without a type"))?;
                if ops[0].contains('|') {
                    return Err(unsupported("setp with two destinations"));
                }
                inst.dst = Some(self.reg(ops[0], line)?);
                inst.srcs[0] = self.src(ops[1], Some(ty), line)?;
                inst.srcs[1] = self.src(ops[2], Some(ty), line)?;
                inst.op = if ty == Ty::S32 {
                    Op::SetpS32(cmp)
                } else {
                    Op::Setp(cmp, ty)
                };
            }
            "selp" => {
                need(4)?;
                let ty = last_ty().ok_or_else(|| unsupported("selp without a type"))?;
                inst.dst = Some(self.reg(ops[0], line)?);
                inst.srcs[0] = self.src(ops[1], Some(ty), line)?;
                inst.srcs[1] = self.src(ops[2], Some(ty), line)?;
                inst.srcs[2] = self.src(ops[3], Some(Ty::Pred), line)?;
                inst.op = Op::Selp(ty);
            }
            "mov" => {
                need(2)?;
                let ty = last_ty().ok_or_else(|| unsupported("mov without a type"))?;
                inst.dst = Some(self.reg(ops[0], line)?);
                inst.srcs[0] = self.src(ops[1], Some(ty), line)?;
                inst.op = Op::Mov(ty);
            }
            _ => {
                let ty = last_ty().ok_or_else(|| unsupported("an instruction without a type"))?;
                let (op, n) = if ty.is_float() {
                    let fb = |f| (Op::FBin(f, ty, ftz), 3);
                    let fu = |f| (Op::FUn(f, ty, ftz), 2);
                    match base {
                        "add" => fb(FBin::Add),
                        "sub" => fb(FBin::Sub),
                        "mul" => fb(FBin::Mul),
                        "div" if has("approx") => return Err(unsupported("div.approx")),
                        "div" => fb(FBin::Div),
                        "max" => fb(FBin::Max { nan: has("NaN") }),
                        "min" => fb(FBin::Min { nan: has("NaN") }),
                        "copysign" => fb(FBin::Copysign),
                        "fma" | "mad" => (Op::FFma(ty, ftz), 4),
                        "neg" => fu(FUn::Neg),
                        "abs" => fu(FUn::Abs),
                        "sqrt" if has("approx") => fu(FUn::SqrtApprox),
                        "sqrt" => fu(FUn::Sqrt),
                        "rsqrt" => fu(FUn::Rsqrt),
                        "rcp" if has("approx") => fu(FUn::RcpApprox),
                        "rcp" => fu(FUn::Rcp),
                        "ex2" => fu(FUn::Ex2),
                        "lg2" => fu(FUn::Lg2),
                        _ => return Err(unsupported("this float instruction")),
                    }
                } else if ty == Ty::Pred {
                    match base {
                        "and" => (Op::PredBin(IBin::And), 3),
                        "or" => (Op::PredBin(IBin::Or), 3),
                        "xor" => (Op::PredBin(IBin::Xor), 3),
                        "not" => (Op::Not(Ty::Pred), 2),
                        _ => return Err(unsupported("this predicate instruction")),
                    }
                } else {
                    let ib = |f| (Op::IBin(f, ty), 3);
                    match base {
                        "add" => ib(IBin::Add),
                        "sub" => ib(IBin::Sub),
                        "mul" if has("wide") => {
                            if !matches!(ty, Ty::S32 | Ty::U32) {
                                return Err(unsupported("mul.wide other than .s32 / .u32"));
                            }
                            (
                                Op::MulWide {
                                    signed: ty.is_signed(),
                                },
                                3,
                            )
                        }
                        "mul" if has("hi") => ib(IBin::MulHi),
                        "mul" if has("lo") => ib(IBin::MulLo),
                        "mad" if has("lo") => (Op::IMadLo(ty), 4),
                        "div" => ib(IBin::Div),
                        "rem" => ib(IBin::Rem),
                        "min" => ib(IBin::Min),
                        "max" => ib(IBin::Max),
                        "and" => ib(IBin::And),
                        "or" => ib(IBin::Or),
                        "xor" => ib(IBin::Xor),
                        "shl" => ib(IBin::Shl),
                        "shr" => ib(IBin::Shr),
                        "neg" => (Op::INeg(ty), 2),
                        "abs" => (Op::IAbs(ty), 2),
                        "not" => (Op::Not(ty), 2),
                        _ => return Err(unsupported("this integer instruction")),
                    }
                };
                need(n)?;
                let op = fast_path(op);
                inst.dst = Some(self.reg(ops[0], line)?);
                // Shift amounts are u32 whatever the shifted type.
                for (k, o) in ops[1..].iter().enumerate() {
                    inst.srcs[k] = self.src(o, Some(ty), line)?;
                }
                inst.op = op;
            }
        }
        self.code.push(inst);
        Ok(())
    }
}

/// The fast-path form of an operation, where there is one.
fn fast_path(op: Op) -> Op {
    let int32 = |ty| matches!(ty, Ty::S32 | Ty::U32 | Ty::B32);
    let int64 = |ty| matches!(ty, Ty::S64 | Ty::U64 | Ty::B64);
    match op {
        Op::IBin(IBin::Add, ty) if int32(ty) => Op::AddI32,
        Op::IBin(IBin::MulLo, ty) if int32(ty) => Op::MulLoI32,
        Op::IBin(IBin::Add, ty) if int64(ty) => Op::AddI64,
        Op::FBin(FBin::Add, Ty::F32, false) => Op::AddF32,
        Op::FBin(FBin::Mul, Ty::F32, false) => Op::MulF32,
        Op::FFma(Ty::F32, false) => Op::FmaF32,
        other => other,
    }
}

fn parse_special(tok: &str) -> Option<Special> {
    let (name, axis) = tok.strip_prefix('%')?.split_once('.')?;
    let axis = match axis {
        "x" => 0,
        "y" => 1,
        "z" => 2,
        _ => return None,
    };
    Some(match name {
        "tid" => Special::Tid(axis),
        "ntid" => Special::Ntid(axis),
        "ctaid" => Special::Ctaid(axis),
        "nctaid" => Special::Nctaid(axis),
        _ => return None,
    })
}
