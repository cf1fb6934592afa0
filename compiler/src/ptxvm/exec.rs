//! Running decoded kernels: memory, the block scheduler, the instruction semantics and
//! the checks (bounds, alignment, barrier convergence, data races, reads of shared
//! memory nobody wrote).
//!
//! A block runs one thread at a time up to its next `bar.sync` (or its end); when every
//! thread has arrived at the same barrier, the block's barrier epoch advances and they
//! continue. Blocks run one after another. Because the order is sequential, a program
//! that relies on an order the hardware does not guarantee would still give the "right"
//! numbers here; the race checker is what catches it: every 2-byte unit of memory
//! remembers the last writer and reader (launch, block, thread, epoch), and a conflicting
//! access by another thread of the same epoch, or by another block of the same launch,
//! is a [`VmError::Race`].

use super::error::{At, VmError};
use super::parse::{
    Cmp, FBin, FUn, IBin, Inst, Kernel, Op, Rnd, Space, Special, Src, Ty, REGION_SHIFT, SHARED_TAG,
};
use crate::graph::{bf16_from_f64, f16_from_f64};

/// One kernel argument: which storage slot the pointer points to and how many bytes of it
/// the kernel's buffer spans (accesses beyond are out of bounds even if the slot is
/// larger).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg {
    /// Storage slot of [`Memory`].
    pub slot: usize,
    /// Buffer size in bytes, from the slot's start.
    pub bytes: u64,
    /// The buffer's name, for messages.
    pub name: String,
}

/// The last access to a 2-byte unit of memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Shadow {
    /// Launch (global memory) or block run (shared memory) sequence number; 0 = never.
    seq: u32,
    /// Linear block index (global memory); [`MANY`] after readers in several blocks.
    block: u32,
    /// Thread; [`MANY`] after several readers.
    thread: u32,
    /// Barrier epoch within the block.
    epoch: u32,
}

const MANY: u32 = u32::MAX;

/// One register: its bits and its definedness (0 = defined, otherwise where the undefined
/// value came from: [`UNSET`] or the PTX line of a read of unwritten shared memory).
#[derive(Clone, Copy, Debug, Default)]
struct Cell {
    value: u64,
    undef: u32,
}

/// The origin of a register no instruction has written yet.
const UNSET: u32 = u32::MAX;
/// The origin of the result of an integer division by zero (or `MIN / -1`).
const DIV_ZERO: u32 = u32::MAX - 1;

/// Global memory: one byte vector per storage slot, with the race checker's shadows.
#[derive(Debug, Default)]
pub struct Memory {
    slots: Vec<Vec<u8>>,
    writes: Vec<Vec<Shadow>>,
    reads: Vec<Vec<Shadow>>,
}

impl Memory {
    /// Zeroed slots of the given sizes in bytes.
    pub fn new(sizes: &[usize]) -> Memory {
        Memory {
            slots: sizes.iter().map(|&n| vec![0u8; n]).collect(),
            writes: vec![Vec::new(); sizes.len()],
            reads: vec![Vec::new(); sizes.len()],
        }
    }

    /// The bytes of slot `i`.
    pub fn slot(&self, i: usize) -> Option<&[u8]> {
        self.slots.get(i).map(Vec::as_slice)
    }

    /// The bytes of slot `i`, writable.
    pub fn slot_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        self.slots.get_mut(i).map(Vec::as_mut_slice)
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// What a launch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaunchStats {
    /// Instructions executed (all threads).
    pub instructions: u64,
    /// Barriers passed (per block, summed).
    pub barriers: u64,
}

/// The machine: global memory plus the launch counter of the race checker.
#[derive(Debug)]
pub struct Machine {
    /// Global memory.
    pub memory: Memory,
    /// Check data races (on by default; costs 16 bytes of shadow per 2 bytes of memory).
    pub check_races: bool,
    /// Instructions one launch may execute before it is stopped as endless.
    pub step_limit: u64,
    /// Error added to the approximate instructions (`ex2`, `lg2`, `rsqrt`, `rcp.approx`,
    /// `sqrt.approx`), in f32 ulps: 0 (the default) computes them exactly rounded; `n`
    /// moves each result by a pseudo-random whole number of ulps in `-n..=n`, a
    /// deterministic function of the operation and its input, to test that a kernel's
    /// accuracy survives the hardware's documented error (about 2 ulp).
    pub approx_ulps: u32,
    launches: u32,
    blocks: u32,
}

impl Machine {
    /// A machine with zeroed slots of the given sizes, race checking on.
    pub fn new(slot_sizes: &[usize]) -> Machine {
        Machine {
            memory: Memory::new(slot_sizes),
            check_races: true,
            step_limit: 1 << 40,
            approx_ulps: 0,
            launches: 0,
            blocks: 0,
        }
    }

    /// Runs `kernel` over `grid` blocks of `block` threads with one argument per
    /// parameter.
    pub fn launch(
        &mut self,
        kernel: &Kernel,
        grid: [u32; 3],
        block: u32,
        args: &[Arg],
    ) -> Result<LaunchStats, VmError> {
        let bad = |message: String| VmError::Launch {
            kernel: kernel.name.clone(),
            message,
        };
        if args.len() != kernel.params.len() {
            return Err(bad(format!(
                "{} arguments for {} parameters",
                args.len(),
                kernel.params.len()
            )));
        }
        let blocks = grid.iter().map(|&g| u64::from(g)).product::<u64>();
        if blocks > u64::from(u32::MAX) {
            return Err(bad(format!("grid {grid:?}: more than 2^32 blocks")));
        }
        if block == 0 || block > 1024 {
            return Err(bad(format!("block size {block} (1..=1024)")));
        }
        if let Some(r) = kernel.reqntid {
            if r != block {
                return Err(bad(format!(
                    "block size {block}, but the entry declares .reqntid {r}"
                )));
            }
        }
        for a in args {
            let size = self.memory.slot(a.slot).map(<[u8]>::len);
            match size {
                None => return Err(bad(format!("argument `{}`: no slot {}", a.name, a.slot))),
                Some(n) if (n as u64) < a.bytes => {
                    return Err(bad(format!(
                        "argument `{}`: {} bytes in a slot of {n}",
                        a.name, a.bytes
                    )))
                }
                _ => {}
            }
        }
        if self.check_races {
            for a in args {
                let units = self.memory.slots[a.slot].len().div_ceil(2);
                if self.memory.writes[a.slot].len() != units {
                    self.memory.writes[a.slot] = vec![Shadow::default(); units];
                    self.memory.reads[a.slot] = vec![Shadow::default(); units];
                }
            }
        }
        self.launches = self.launches.wrapping_add(1).max(1);
        // Shared layout: arrays in order, each aligned.
        let mut shared_base = Vec::with_capacity(kernel.shared.len());
        let mut shared_len = 0u64;
        for a in &kernel.shared {
            shared_len = shared_len.next_multiple_of(a.align.max(1));
            shared_base.push(shared_len);
            shared_len += a.bytes;
        }
        let nregs = kernel.regs;
        let mut run = BlockRun {
            kernel,
            args,
            mem: &mut self.memory,
            check_races: self.check_races,
            launch: self.launches,
            block_seq: self.blocks,
            block_id: [0; 3],
            block_linear: 0,
            grid,
            ntid: block,
            epoch: 0,
            shared: vec![0u8; shared_len as usize],
            shared_base,
            shared_w: vec![Shadow::default(); (shared_len as usize).div_ceil(2)],
            shared_r: vec![Shadow::default(); (shared_len as usize).div_ceil(2)],
            regs: vec![Cell::default(); nregs * block as usize],
            shared_undef: vec![0; (shared_len as usize).div_ceil(2)],
            nregs,
            steps: 0,
            step_limit: self.step_limit,
            approx_ulps: self.approx_ulps,
            barriers: 0,
        };
        for z in 0..grid[2] {
            for y in 0..grid[1] {
                for x in 0..grid[0] {
                    run.block_id = [x, y, z];
                    run.block_linear = (z * grid[1] + y) * grid[0] + x;
                    run.run_block()?;
                }
            }
        }
        self.blocks = run.block_seq;
        Ok(LaunchStats {
            instructions: run.steps,
            barriers: run.barriers,
        })
    }
}

/// Where a thread stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// At the barrier of this instruction (the thread resumes after it).
    Barrier(usize),
    Exit,
}

struct BlockRun<'a> {
    kernel: &'a Kernel,
    args: &'a [Arg],
    mem: &'a mut Memory,
    check_races: bool,
    launch: u32,
    block_seq: u32,
    block_id: [u32; 3],
    block_linear: u32,
    grid: [u32; 3],
    ntid: u32,
    epoch: u32,
    shared: Vec<u8>,
    shared_base: Vec<u64>,
    shared_w: Vec<Shadow>,
    shared_r: Vec<Shadow>,
    /// Every thread's registers, thread after thread.
    regs: Vec<Cell>,
    /// The same per 2-byte unit of shared memory (set by stores of undefined values).
    shared_undef: Vec<u32>,
    nregs: usize,
    steps: u64,
    step_limit: u64,
    approx_ulps: u32,
    barriers: u64,
}

fn f32v(v: u64) -> f32 {
    f32::from_bits(v as u32)
}

fn put32(x: f32) -> u64 {
    u64::from(x.to_bits())
}

/// Flushes a subnormal f32 to zero of the same sign.
fn flush(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

/// A float register value of type `ty` as f64 (exact).
fn to_f64(v: u64, ty: Ty) -> f64 {
    match ty {
        Ty::F16 => f64::from(half::f16::from_bits(v as u16).to_f32()),
        Ty::Bf16 => f64::from(half::bf16::from_bits(v as u16).to_f32()),
        _ => f64::from(f32v(v)),
    }
}

/// `x` rounded once to the float type `ty`, as register bits.
fn from_f64(x: f64, ty: Ty) -> u64 {
    match ty {
        Ty::F16 => u64::from(f16_from_f64(x).to_bits()),
        Ty::Bf16 => u64::from(bf16_from_f64(x).to_bits()),
        _ => put32(x as f32),
    }
}

fn bits(ty: Ty) -> u32 {
    match ty {
        Ty::Pred => 1,
        _ => (ty.bytes() * 8) as u32,
    }
}

fn mask(ty: Ty) -> u64 {
    match bits(ty) {
        64 => u64::MAX,
        b => (1u64 << b) - 1,
    }
}

fn sext(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

fn signed(ty: Ty) -> bool {
    matches!(ty, Ty::S16 | Ty::S32 | Ty::S64)
}

/// An integer register value as i128, sign- or zero-extended by its type.
fn int(v: u64, ty: Ty) -> i128 {
    let b = bits(ty);
    if signed(ty) {
        i128::from(sext(v, b))
    } else {
        i128::from(v & mask(ty))
    }
}

impl BlockRun<'_> {
    fn at(&self, thread: u32, inst: &Inst) -> Box<At> {
        Box::new(At {
            kernel: self.kernel.name.clone(),
            block: self.block_id,
            thread,
            line: inst.line,
            text: self.kernel.line_text(inst.line),
        })
    }

    fn run_block(&mut self) -> Result<(), VmError> {
        self.block_seq = self.block_seq.wrapping_add(1).max(1);
        self.epoch = 0;
        self.shared.fill(0);
        let n = self.ntid as usize;
        self.regs.fill(Cell {
            value: 0,
            undef: UNSET,
        });
        self.shared_undef.fill(0);
        for t in 0..n {
            for &(r, bits) in &self.kernel.consts {
                self.regs[t * self.nregs + r as usize] = Cell {
                    value: bits,
                    undef: 0,
                };
            }
            for &(r, s) in &self.kernel.specials {
                let v = match s {
                    Special::Tid(0) => t as u32,
                    Special::Tid(_) => 0,
                    Special::Ntid(0) => self.ntid,
                    Special::Ntid(_) => 1,
                    Special::Ctaid(a) => self.block_id[a as usize],
                    Special::Nctaid(a) => self.grid[a as usize],
                };
                self.regs[t * self.nregs + r as usize] = Cell {
                    value: u64::from(v),
                    undef: 0,
                };
            }
        }
        let mut pcs = vec![0usize; n];
        let mut stops = vec![Stop::Exit; n];
        let mut live: Vec<usize> = (0..n).collect();
        loop {
            for &t in &live {
                stops[t] = self.run_thread(t, &mut pcs[t])?;
            }
            let first = stops[live[0]];
            let all_same = live.iter().all(|&t| stops[t] == first);
            match first {
                Stop::Exit if all_same => return Ok(()),
                Stop::Barrier(_) if all_same => {
                    self.epoch += 1;
                    self.barriers += 1;
                }
                _ => {
                    let describe = |s: Stop| match s {
                        Stop::Exit => "finished".to_string(),
                        Stop::Barrier(pc) => {
                            format!("at the barrier on line {}", self.kernel.code[pc].line)
                        }
                    };
                    let odd = live
                        .iter()
                        .copied()
                        .find(|&t| stops[t] != first)
                        .unwrap_or(0);
                    return Err(VmError::BarrierDivergence {
                        kernel: self.kernel.name.clone(),
                        block: self.block_id,
                        message: format!(
                            "thread {} is {}, thread {odd} is {}",
                            live[0],
                            describe(first),
                            describe(stops[odd])
                        ),
                    });
                }
            }
            live.retain(|&t| stops[t] != Stop::Exit);
        }
    }

    /// A `from`-bit value written to the destination register of `inst`: extended to
    /// the register's width, with the sign when the instruction's type is signed (PTX's
    /// rule for loads and conversions into wider registers).
    #[inline]
    fn widen(&self, inst: &Inst, v: u64, from: u32, is_signed: bool) -> u64 {
        let to = inst
            .dst
            .and_then(|d| self.kernel.reg_bits.get(d as usize))
            .map_or(64, |&b| u32::from(b));
        if to <= from || from == 0 || from >= 64 {
            return v;
        }
        let wide = if is_signed {
            sext(v, from) as u64
        } else {
            v & ((1u64 << from) - 1)
        };
        if to >= 64 {
            wide
        } else {
            wide & ((1u64 << to) - 1)
        }
    }

    #[inline]
    fn undef_of(&self, base: usize, s: Src) -> u32 {
        self.regs[base + s as usize].undef
    }

    /// The error for an undefined value used where it matters.
    fn undefined(&self, thread: u32, inst: &Inst, what: &'static str, origin: u32) -> VmError {
        let origin = if origin == UNSET {
            "a register no instruction wrote".to_string()
        } else if origin == DIV_ZERO {
            "an integer division by zero or overflow (unspecified in PTX)".to_string()
        } else {
            format!(
                "a read of shared memory no thread of the block wrote, on line {origin}: `{}`",
                self.kernel.line_text(origin)
            )
        };
        VmError::Undefined {
            at: self.at(thread, inst),
            what,
            origin,
        }
    }

    #[inline]
    fn val(&self, base: usize, s: Src) -> u64 {
        self.regs[base + s as usize].value
    }

    /// Runs thread `t` from `*pc` to its next barrier or its end.
    fn run_thread(&mut self, t: usize, pc: &mut usize) -> Result<Stop, VmError> {
        let base = t * self.nregs;
        let code = &self.kernel.code;
        loop {
            let Some(inst) = code.get(*pc) else {
                return Ok(Stop::Exit);
            };
            self.steps += 1;
            *pc += 1;
            if let Some((p, neg)) = inst.guard {
                let origin = self.regs[base + p as usize].undef;
                if origin != 0 {
                    return Err(self.undefined(t as u32, inst, "the guard predicate", origin));
                }
                if (self.regs[base + p as usize].value != 0) == neg {
                    continue;
                }
            }
            let a = self.val(base, inst.srcs[0]);
            let b = self.val(base, inst.srcs[1]);
            let c = self.val(base, inst.srcs[2]);
            let (ua, ub, uc) = (
                self.undef_of(base, inst.srcs[0]),
                self.undef_of(base, inst.srcs[1]),
                self.undef_of(base, inst.srcs[2]),
            );
            // Definedness of the result: the first undefined source's origin.
            let mut undef = if ua != 0 {
                ua
            } else if ub != 0 {
                ub
            } else {
                uc
            };
            let result: u64 = match inst.op {
                Op::Ret => return Ok(Stop::Exit),
                Op::Bar => return Ok(Stop::Barrier(*pc - 1)),
                Op::Bra { target } => {
                    // Only a branch can loop: the limit is checked here.
                    if self.steps > self.step_limit {
                        return Err(VmError::StepLimit {
                            kernel: self.kernel.name.clone(),
                            limit: self.step_limit,
                        });
                    }
                    *pc = target;
                    continue;
                }
                Op::AddI32 => u64::from((a as u32).wrapping_add(b as u32)),
                Op::MulLoI32 => u64::from((a as u32).wrapping_mul(b as u32)),
                Op::AddI64 => a.wrapping_add(b),
                Op::AddF32 => put32(f32v(a) + f32v(b)),
                Op::MulF32 => put32(f32v(a) * f32v(b)),
                Op::FmaF32 => put32(f32v(a).mul_add(f32v(b), f32v(c))),
                Op::SetpS32(cmp) => u64::from(setp(cmp, Ty::S32, a, b)),
                Op::Mov(ty) => a & mask(ty),
                Op::LdParam { param } => (param as u64 + 1) << REGION_SHIFT,
                Op::Cvta => a,
                Op::FBin(f, ty, ftz) => fbin(f, ty, ftz, a, b),
                Op::FFma(ty, ftz) => match ty {
                    Ty::F32 => {
                        let r = |v| if ftz { flush(f32v(v)) } else { f32v(v) };
                        let x = r(a).mul_add(r(b), r(c));
                        put32(if ftz { flush(x) } else { x })
                    }
                    _ => from_f64(to_f64(a, ty) * to_f64(b, ty) + to_f64(c, ty), ty),
                },
                Op::FUn(f, ty, ftz) => {
                    let r = fun(f, ty, ftz, a);
                    if self.approx_ulps > 0 && ty == Ty::F32 && f.is_approx() {
                        perturb(r, a, f as u64, self.approx_ulps)
                    } else {
                        r
                    }
                }
                Op::IBin(f, ty) => {
                    if matches!(f, IBin::Div | IBin::Rem)
                        && (int(b, ty) == 0
                            || (signed(ty)
                                && int(b, ty) == -1
                                && int(a, ty) == -(1i128 << (bits(ty) - 1))))
                    {
                        // PTX leaves the result unspecified: an undefined value (an error
                        // only if it reaches memory, an address or a branch).
                        undef = DIV_ZERO;
                    }
                    ibin(f, ty, a, b)
                }
                Op::IMadLo(ty) => {
                    (int(a, ty).wrapping_mul(int(b, ty)).wrapping_add(int(c, ty))) as u64 & mask(ty)
                }
                Op::MulWide { signed } => {
                    if signed {
                        (sext(a, 32) * sext(b, 32)) as u64
                    } else {
                        (a & 0xFFFF_FFFF) * (b & 0xFFFF_FFFF)
                    }
                }
                Op::INeg(ty) => (int(a, ty).wrapping_neg() as u64) & mask(ty),
                Op::IAbs(ty) => (int(a, ty).unsigned_abs() as u64) & mask(ty),
                Op::Not(ty) => match ty {
                    Ty::Pred => u64::from(a == 0),
                    _ => !a & mask(ty),
                },
                Op::PredBin(f) => {
                    let (x, y) = (a != 0, b != 0);
                    u64::from(match f {
                        IBin::And => x && y,
                        IBin::Or => x || y,
                        _ => x != y,
                    })
                }
                Op::Setp(cmp, ty) => u64::from(setp(cmp, ty, a, b)),
                Op::Selp(ty) => {
                    // Only the chosen operand's definedness matters (and the predicate's).
                    let chosen = if c != 0 { ua } else { ub };
                    undef = first_nonzero(&[uc, chosen]);
                    if c != 0 {
                        a & mask(ty)
                    } else {
                        b & mask(ty)
                    }
                }
                Op::Cvt { dst, src, rnd, ftz } => {
                    let v = cvt(dst, src, rnd, ftz, a);
                    self.widen(inst, v, bits(dst), signed(dst))
                }
                Op::Ld(space, ty) => {
                    if ua != 0 {
                        return Err(self.undefined(t as u32, inst, "the address", ua));
                    }
                    let addr = a.wrapping_add(inst.offset as u64);
                    let (raw, origin) =
                        self.access(t as u32, inst, space, addr, ty.bytes(), None)?;
                    undef = origin;
                    self.widen(inst, raw, bits(ty), signed(ty))
                }
                Op::Align(bytes) => {
                    if ua != 0 {
                        return Err(self.undefined(t as u32, inst, "the address", ua));
                    }
                    let addr = a.wrapping_add(inst.offset as u64);
                    let offset = addr & ((1u64 << REGION_SHIFT) - 1);
                    if !offset.is_multiple_of(bytes) {
                        return Err(VmError::Misaligned {
                            at: self.at(t as u32, inst),
                            space: "global",
                            bytes,
                            offset,
                        });
                    }
                    continue;
                }
                Op::St(space, ty) => {
                    if ua != 0 {
                        return Err(self.undefined(t as u32, inst, "the address", ua));
                    }
                    if ub != 0 && space == Space::Global {
                        return Err(self.undefined(t as u32, inst, "the stored value", ub));
                    }
                    let addr = a.wrapping_add(inst.offset as u64);
                    self.access(t as u32, inst, space, addr, ty.bytes(), Some((b, ub)))?;
                    continue;
                }
            };
            if let Some(d) = inst.dst {
                self.regs[base + d as usize] = Cell {
                    value: result,
                    undef,
                };
            }
        }
    }

    /// A load (`store` is `None`; returns the value and its definedness) or a store of
    /// `bytes` bytes (value and definedness).
    #[inline]
    fn access(
        &mut self,
        thread: u32,
        inst: &Inst,
        space: Space,
        addr: u64,
        bytes: u64,
        store: Option<(u64, u32)>,
    ) -> Result<(u64, u32), VmError> {
        let shared = addr & SHARED_TAG != 0;
        let region = ((addr & !SHARED_TAG) >> REGION_SHIFT) as usize;
        let offset = addr & ((1u64 << REGION_SHIFT) - 1);
        let (mem_start, limit) = match space {
            Space::Global if !shared && region >= 1 && region <= self.args.len() => {
                (0u64, self.args[region - 1].bytes)
            }
            Space::Shared if shared && region >= 1 && region <= self.kernel.shared.len() => (
                self.shared_base[region - 1],
                self.kernel.shared[region - 1].bytes,
            ),
            _ => return Err(self.bad_access(thread, inst, space, addr, bytes)),
        };
        let base_aligned = match space {
            Space::Shared => self.kernel.shared[region - 1].align >= bytes,
            Space::Global => true,
        };
        if offset + bytes > limit || !offset.is_multiple_of(bytes) || !base_aligned {
            return Err(self.bad_access(thread, inst, space, addr, bytes));
        }
        let start = (mem_start + offset) as usize;
        let end = start + bytes as usize;
        match space {
            Space::Global => {
                let slot = self.args[region - 1].slot;
                if self.check_races {
                    self.check_global(
                        thread,
                        inst,
                        slot,
                        start,
                        bytes,
                        store.is_some(),
                        region - 1,
                        offset,
                    )?;
                }
                Ok((
                    rw(&mut self.mem.slots[slot][start..end], store.map(|s| s.0)),
                    0,
                ))
            }
            Space::Shared => {
                let units = start / 2..end.div_ceil(2);
                let written = self.check_shared(
                    thread,
                    inst,
                    start,
                    bytes,
                    store.is_some(),
                    region - 1,
                    offset,
                )?;
                let origin = match store {
                    Some((_, u)) => {
                        self.shared_undef[units].fill(u);
                        0
                    }
                    None if !written => inst.line,
                    None => first_nonzero(&self.shared_undef[units]),
                };
                Ok((rw(&mut self.shared[start..end], store.map(|s| s.0)), origin))
            }
        }
    }

    /// The error of an access outside its region, into none, or misaligned.
    #[cold]
    fn bad_access(&self, thread: u32, inst: &Inst, space: Space, addr: u64, bytes: u64) -> VmError {
        let shared = addr & SHARED_TAG != 0;
        let region = ((addr & !SHARED_TAG) >> REGION_SHIFT) as usize;
        let offset = addr & ((1u64 << REGION_SHIFT) - 1);
        let space_name = space_name(space);
        let named = match space {
            Space::Global if !shared && region >= 1 && region <= self.args.len() => {
                let a = &self.args[region - 1];
                Some((a.name.clone(), a.bytes))
            }
            Space::Shared if shared && region >= 1 && region <= self.kernel.shared.len() => {
                let a = &self.kernel.shared[region - 1];
                Some((a.name.clone(), a.bytes))
            }
            _ => None,
        };
        let what = match named {
            Some((_, limit)) if offset + bytes <= limit => {
                return VmError::Misaligned {
                    at: self.at(thread, inst),
                    space: space_name,
                    bytes,
                    offset,
                };
            }
            Some((name, limit)) => format!("`{name}` ({limit} bytes)"),
            None if space == Space::Global => {
                format!("every kernel buffer (address {addr:#x} points into none)")
            }
            None => format!("every shared array (address {addr:#x} points into none)"),
        };
        VmError::OutOfBounds {
            at: self.at(thread, inst),
            space: space_name,
            bytes,
            offset,
            what,
        }
    }

    /// The name of global buffer argument `i` or shared array `i`, for messages.
    fn region_name(&self, space: Space, i: usize) -> String {
        match space {
            Space::Global => format!("`{}`", self.args[i].name),
            Space::Shared => format!("`{}`", self.kernel.shared[i].name),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_global(
        &mut self,
        thread: u32,
        inst: &Inst,
        slot: usize,
        start: usize,
        bytes: u64,
        write: bool,
        region: usize,
        offset: u64,
    ) -> Result<(), VmError> {
        let me = Shadow {
            seq: self.launch,
            block: self.block_linear,
            thread,
            epoch: self.epoch,
        };
        for u in start / 2..(start + bytes as usize).div_ceil(2) {
            let w = self.mem.writes[slot][u];
            let r = self.mem.reads[slot][u];
            let conflict = access_conflict(w, r, me, write);
            if let Some((other, was_write)) = conflict {
                return Err(VmError::Race {
                    at: self.at(thread, inst),
                    space: "global",
                    what: self.region_name(Space::Global, region),
                    offset,
                    other: describe_other(other, was_write, self.grid, true),
                });
            }
            if write {
                self.mem.writes[slot][u] = me;
            } else {
                self.mem.reads[slot][u] = merge_reader(r, me);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn check_shared(
        &mut self,
        thread: u32,
        inst: &Inst,
        start: usize,
        bytes: u64,
        write: bool,
        region: usize,
        offset: u64,
    ) -> Result<bool, VmError> {
        let mut written = true;
        let me = Shadow {
            seq: self.block_seq,
            block: 0,
            thread,
            epoch: self.epoch,
        };
        for u in start / 2..(start + bytes as usize).div_ceil(2) {
            let w = self.shared_w[u];
            if w.seq != me.seq {
                written = false;
            }
            if !self.check_races {
                continue;
            }
            let r = self.shared_r[u];
            let conflict = access_conflict(w, r, me, write);
            if let Some((other, was_write)) = conflict {
                return Err(VmError::Race {
                    at: self.at(thread, inst),
                    space: "shared",
                    what: self.region_name(Space::Shared, region),
                    offset,
                    other: describe_other(other, was_write, self.grid, false),
                });
            }
            if write {
                self.shared_w[u] = me;
            } else {
                self.shared_r[u] = merge_reader(r, me);
            }
        }
        if !self.check_races && write {
            for u in start / 2..(start + bytes as usize).div_ceil(2) {
                self.shared_w[u] = me;
            }
        }
        Ok(written)
    }
}

/// `r` (f32 bits) moved by a pseudo-random number of ulps in `-n..=n` chosen by hashing
/// the input bits and the operation; zeros, infinities and NaNs are left alone, and a
/// result never changes sign or becomes infinite.
fn perturb(r: u64, input: u64, op: u64, n: u32) -> u64 {
    let x = f32v(r);
    if x == 0.0 || !x.is_finite() {
        return r;
    }
    // SplitMix64 of (input, op).
    let mut z = (input ^ (op << 32)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let k = (z % (2 * u64::from(n) + 1)) as i64 - i64::from(n);
    let magnitude = i64::from(r as u32 & 0x7FFF_FFFF) + k;
    let magnitude = magnitude.clamp(1, 0x7F7F_FFFF) as u64;
    (r & 0x8000_0000) | magnitude
}

/// The first non-zero entry (0 when all are).
fn first_nonzero(v: &[u32]) -> u32 {
    v.iter().copied().find(|&x| x != 0).unwrap_or(0)
}

/// Whether an earlier access `prev` conflicts with `me` (same launch, and another block,
/// or another thread of the same block in the same barrier epoch).
fn conflicts(prev: Shadow, me: Shadow) -> Option<Shadow> {
    (prev.seq == me.seq
        && (prev.block != me.block || (prev.thread != me.thread && prev.epoch == me.epoch)))
        .then_some(prev)
}

/// The earlier access that `me` (a write when `write`) conflicts with, given the last
/// writer `w` and reader record `r` of a unit, and whether that access was a write. A
/// read conflicts only with a write; a write with either.
fn access_conflict(w: Shadow, r: Shadow, me: Shadow, write: bool) -> Option<(Shadow, bool)> {
    conflicts(w, me).map(|o| (o, true)).or_else(|| {
        write
            .then(|| conflicts(r, me))
            .flatten()
            .map(|o| (o, false))
    })
}

/// The reader record after `me` reads.
fn merge_reader(r: Shadow, me: Shadow) -> Shadow {
    if r.seq != me.seq || (r.block == me.block && r.epoch != me.epoch) {
        return me;
    }
    let mut out = r;
    if r.block != me.block {
        out.block = MANY;
    }
    if r.thread != me.thread {
        out.thread = MANY;
    }
    out
}

fn describe_other(o: Shadow, was_write: bool, grid: [u32; 3], global: bool) -> String {
    let kind = if was_write { "a write" } else { "a read" };
    let thread = if o.thread == MANY {
        "several threads".to_string()
    } else {
        format!("thread {}", o.thread)
    };
    if !global {
        return format!("{kind} by {thread} in the same barrier interval");
    }
    if o.block == MANY {
        return format!("{kind} by {thread} of several blocks of the same launch");
    }
    let x = o.block % grid[0].max(1);
    let y = (o.block / grid[0].max(1)) % grid[1].max(1);
    let z = o.block / (grid[0].max(1) * grid[1].max(1));
    format!("{kind} by {thread} of block [{x}, {y}, {z}] in the same launch")
}

fn space_name(space: Space) -> &'static str {
    match space {
        Space::Global => "global",
        Space::Shared => "shared",
    }
}

/// Reads (and, with `store`, then writes) little-endian bytes (2, 4 or 8 of them).
#[inline]
fn rw(mem: &mut [u8], store: Option<u64>) -> u64 {
    match (store, mem.len()) {
        (Some(v), 2) => mem.copy_from_slice(&(v as u16).to_le_bytes()),
        (Some(v), 4) => mem.copy_from_slice(&(v as u32).to_le_bytes()),
        (Some(v), _) => mem.copy_from_slice(&v.to_le_bytes()[..mem.len()]),
        (None, 2) => return u64::from(u16::from_le_bytes([mem[0], mem[1]])),
        (None, 4) => return u64::from(u32::from_le_bytes([mem[0], mem[1], mem[2], mem[3]])),
        (None, n) => {
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(mem);
            return u64::from_le_bytes(le);
        }
    }
    0
}

fn fbin(f: FBin, ty: Ty, ftz: bool, a: u64, b: u64) -> u64 {
    if ty == Ty::F32 {
        let r = |v| if ftz { flush(f32v(v)) } else { f32v(v) };
        let (x, y) = (r(a), r(b));
        let out = match f {
            FBin::Add => x + y,
            FBin::Sub => x - y,
            FBin::Mul => x * y,
            FBin::Div => x / y,
            FBin::Max { nan } => fmax(x.into(), y.into(), nan) as f32,
            FBin::Min { nan } => fmin(x.into(), y.into(), nan) as f32,
            FBin::Copysign => y.copysign(x),
        };
        return put32(if ftz { flush(out) } else { out });
    }
    let (x, y) = (to_f64(a, ty), to_f64(b, ty));
    let out = match f {
        FBin::Add => x + y,
        FBin::Sub => x - y,
        FBin::Mul => x * y,
        FBin::Div => x / y,
        FBin::Max { nan } => fmax(x, y, nan),
        FBin::Min { nan } => fmin(x, y, nan),
        FBin::Copysign => y.copysign(x),
    };
    from_f64(out, ty)
}

/// PTX `max`: with `.NaN` a NaN operand gives NaN, without it the other operand; +0 is
/// larger than -0.
fn fmax(x: f64, y: f64, nan: bool) -> f64 {
    if x.is_nan() || y.is_nan() {
        return if nan || (x.is_nan() && y.is_nan()) {
            f64::NAN
        } else if x.is_nan() {
            y
        } else {
            x
        };
    }
    if x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    x.max(y)
}

fn fmin(x: f64, y: f64, nan: bool) -> f64 {
    if x.is_nan() || y.is_nan() {
        return fmax(x, y, nan);
    }
    if x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    x.min(y)
}

fn fun(f: FUn, ty: Ty, ftz: bool, a: u64) -> u64 {
    let sign = 1u64 << (bits(ty) - 1);
    let a = if ftz && ty == Ty::F32 {
        put32(flush(f32v(a)))
    } else {
        a
    };
    match f {
        FUn::Neg => return a ^ sign,
        FUn::Abs => return a & !sign,
        _ => {}
    }
    let x = if ty == Ty::F32 && ftz {
        f64::from(flush(f32v(a)))
    } else {
        to_f64(a, ty)
    };
    let out = match f {
        FUn::Sqrt | FUn::SqrtApprox => x.sqrt(),
        FUn::Rsqrt => 1.0 / x.sqrt(),
        FUn::Rcp | FUn::RcpApprox => 1.0 / x,
        FUn::Ex2 => x.exp2(),
        FUn::Lg2 => x.log2(),
        FUn::Neg | FUn::Abs => unreachable!("handled above"),
    };
    if ty == Ty::F32 {
        let r = out as f32;
        put32(if ftz { flush(r) } else { r })
    } else {
        from_f64(out, ty)
    }
}

fn ibin(f: IBin, ty: Ty, a: u64, b: u64) -> u64 {
    let m = mask(ty);
    let w = bits(ty);
    let (x, y) = (int(a, ty), int(b, ty));
    let out: i128 = match f {
        IBin::Add => x.wrapping_add(y),
        IBin::Sub => x.wrapping_sub(y),
        IBin::MulLo => x.wrapping_mul(y),
        IBin::MulHi => x.wrapping_mul(y) >> w,
        // Division by zero: all ones (what Nvidia GPUs give); the remainder is the dividend.
        IBin::Div => {
            if y == 0 {
                -1
            } else {
                x / y
            }
        }
        IBin::Rem => {
            if y == 0 {
                x
            } else {
                x % y
            }
        }
        IBin::Min => x.min(y),
        IBin::Max => x.max(y),
        IBin::And => x & y,
        IBin::Or => x | y,
        IBin::Xor => x ^ y,
        // Shift amounts are unsigned and clamp at the width.
        IBin::Shl => {
            let s = b & 0xFFFF_FFFF;
            if s >= u64::from(w) {
                0
            } else {
                x << s
            }
        }
        IBin::Shr => {
            let s = (b & 0xFFFF_FFFF).min(u64::from(w));
            if signed(ty) {
                x >> s.min(u64::from(w) - 1)
            } else if s >= u64::from(w) {
                0
            } else {
                x >> s
            }
        }
    };
    (out as u64) & m
}

fn setp(cmp: Cmp, ty: Ty, a: u64, b: u64) -> bool {
    if matches!(ty, Ty::F32 | Ty::F16 | Ty::Bf16) {
        let (x, y) = (to_f64(a, ty), to_f64(b, ty));
        let unordered = x.is_nan() || y.is_nan();
        return match cmp {
            Cmp::Eq => x == y,
            Cmp::Ne => !unordered && x != y,
            Cmp::Lt => x < y,
            Cmp::Le => x <= y,
            Cmp::Gt => x > y,
            Cmp::Ge => x >= y,
            Cmp::Equ => unordered || x == y,
            Cmp::Neu => unordered || x != y,
            Cmp::Ltu => unordered || x < y,
            Cmp::Leu => unordered || x <= y,
            Cmp::Gtu => unordered || x > y,
            Cmp::Geu => unordered || x >= y,
            Cmp::Num => !unordered,
            Cmp::Nan => unordered,
        };
    }
    let (x, y) = (int(a, ty), int(b, ty));
    match cmp {
        Cmp::Eq | Cmp::Equ => x == y,
        Cmp::Ne | Cmp::Neu => x != y,
        Cmp::Lt | Cmp::Ltu => x < y,
        Cmp::Le | Cmp::Leu => x <= y,
        Cmp::Gt | Cmp::Gtu => x > y,
        Cmp::Ge | Cmp::Geu => x >= y,
        Cmp::Num => true,
        Cmp::Nan => false,
    }
}

fn cvt(dst: Ty, src: Ty, rnd: Rnd, ftz: bool, a: u64) -> u64 {
    let src_float = matches!(src, Ty::F32 | Ty::F16 | Ty::Bf16);
    let dst_float = matches!(dst, Ty::F32 | Ty::F16 | Ty::Bf16);
    match (src_float, dst_float) {
        (true, true) => {
            let mut x = to_f64(a, src);
            if ftz && src == Ty::F32 {
                x = f64::from(flush(x as f32));
            }
            // `cvt.rni.f32.f32` and friends: round to an integer, keep the float type.
            x = match rnd {
                Rnd::Rni => x.round_ties_even(),
                Rnd::Rzi => x.trunc(),
                Rnd::Rmi => x.floor(),
                Rnd::Rpi => x.ceil(),
                Rnd::None | Rnd::Rn => x,
            };
            let out = from_f64(x, dst);
            if ftz && dst == Ty::F32 {
                put32(flush(f32v(out)))
            } else {
                out
            }
        }
        (false, true) => {
            // Rust's integer-to-float `as` rounds once, to nearest even; through f64 a
            // 64-bit integer would round twice.
            match dst {
                Ty::F32 => put32(int(a, src) as f32),
                _ => from_f64(int(a, src) as f64, dst),
            }
        }
        (true, false) => {
            let x = to_f64(a, src);
            if x.is_nan() {
                return 0;
            }
            let r = match rnd {
                Rnd::Rni => x.round_ties_even(),
                Rnd::Rmi => x.floor(),
                Rnd::Rpi => x.ceil(),
                _ => x.trunc(),
            };
            let (lo, hi) = if signed(dst) {
                (-(1i128 << (bits(dst) - 1)), (1i128 << (bits(dst) - 1)) - 1)
            } else {
                (0, (1i128 << bits(dst)) - 1)
            };
            let v = if r <= lo as f64 {
                lo
            } else if r >= hi as f64 {
                hi
            } else {
                r as i128
            };
            (v as u64) & mask(dst)
        }
        (false, false) => (int(a, src) as u64) & mask(dst),
    }
}
