//! The vector side of a kernel: the tile-IR body lowered to AIV code.
//!
//! Tiles live in the Unified Buffer. A loaded tile comes from its own `TQue<VECIN>`
//! (`AllocTensor` + `DataCopyPad` + `EnQue`, then `DeQue` before use); a stored tile goes
//! through its own `TQue<VECOUT>`; every other tile value lives in a `TBuf<VECCALC>`
//! *slot*. Slots are assigned like registers: a slot is reused once the value in it is
//! dead, so a kernel needs as many slots as tiles are simultaneously live. Elementwise
//! ops, casts, splats and reductions are vector instructions in count form over whole
//! tiles; uniform scalars are plain C++ locals (transcendental scalar ops go through a
//! one-block scratch tile on the vector unit).
//!
//! UB layout of a tile: a rank-1 tile of `n` elements is contiguous; a rank-2 tile
//! `[rows, cols]` is row-major with a row pitch of `cols` rounded up to a whole 32-byte
//! block, so each row starts block aligned and `DataCopyPad` can move all rows at once.
//! The pitch is the same for every dtype of a kernel (16 elements granularity when a
//! 16-bit dtype is involved, else 8), so casts between dtypes keep the layout.
//!
//! Bool tiles are bit masks in UB (`LocalTensor<uint8_t>`): bit `i % 8` of byte `i / 8` is
//! element `i` of the count-form layout (padding columns included), which is what
//! `Compare` / `CompareScalar` write and `Select` reads. Compares run over whole 256-byte
//! repeats, so in a kernel with bool tiles every tile allocation is padded to 64
//! elements (the padding bits are never read). In GM a bool is a 0/1 32-bit word; loads
//! turn words into masks (`CompareScalar(.., NE, 0)`), stores masks into words (`Select`
//! of 1/0, then `Cast`). Bool scalars are `uint32_t` 0/1.

use super::cpp::{self, round_up, Writer, BLOCK_BYTES};
use crate::error::CompileError;
use crate::graph::{BinaryOp, CompareOp, DType, ReduceOp, UnaryOp};
use crate::target::Target;
use crate::tile::{Block, BlockAccess, IndexOp, Inst, InstKind, TileKernel, Ty, ValueId};
use std::collections::{HashMap, HashSet};

/// Elements of 32-bit data per `Compare` repeat: count-form compares must cover a
/// multiple of 256 bytes.
const COMPARE_GRANULE: usize = 64;

/// Bytes of UB of a bit mask covering `count` elements (whole 256-byte compare repeats).
fn mask_bytes(count: usize) -> usize {
    round_up(round_up(count.max(1), COMPARE_GRANULE) / 8, BLOCK_BYTES)
}

/// The `CMPMODE` of a comparison.
fn cmp_mode(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Lt => "CMPMODE::LT",
        CompareOp::Le => "CMPMODE::LE",
        CompareOp::Eq => "CMPMODE::EQ",
        CompareOp::Gt => "CMPMODE::GT",
        CompareOp::Ge => "CMPMODE::GE",
    }
}

/// `b op' a` equivalent to `a op b`.
fn mirror(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Eq => CompareOp::Eq,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
    }
}

/// The C++ operator of a comparison.
fn cmp_sym(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Eq => "==",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    }
}

/// Where a tile value lives in UB.
#[derive(Clone, Debug, PartialEq)]
enum Loc {
    /// A `TBuf<VECCALC>` slot.
    Slot(usize),
    /// The tensor dequeued from a VECIN queue (freed with `FreeTensor`).
    InQ(usize),
    /// A tensor allocated from a VECOUT queue (consumed by its store).
    OutQ(usize),
    /// A fixed scratch buffer (`reduce_buf`, `scalar_buf`): hazard tracking only.
    Fixed(&'static str),
}

/// A tile value while it is live.
#[derive(Clone, Debug)]
struct TileVal {
    loc: Loc,
    /// The C++ `LocalTensor` variable.
    var: String,
    /// Elements covered by a count-form op over the whole tile (rows * pitch for rank 2).
    count: usize,
}

/// A `TBuf<VECCALC>` slot.
#[derive(Clone, Debug)]
struct Slot {
    name: String,
    bytes: usize,
    /// Tile-IR values placed in it (for the comment next to `InitBuffer`).
    users: Vec<String>,
}

/// A `TQue` of one load or store site.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub(crate) name: String,
    /// `VECIN` or `VECOUT`.
    pub(crate) position: &'static str,
    pub(crate) bytes: usize,
    /// What it carries (comment).
    pub(crate) what: String,
}

/// Replaces the Dot loop of a MIX kernel on the vector side: the accumulator after the
/// loop is read back from the workspace the cube side wrote.
#[derive(Clone, Debug)]
pub(crate) struct CubeResult {
    /// The instruction (a `For` or a top-level `Dot`) whose result comes from the cube.
    pub(crate) inst_result: ValueId,
    /// The accumulator's initial value (added on the vector side unless a zero splat).
    pub(crate) init: ValueId,
    /// True when `init` is a splat of the constant 0 (no add needed).
    pub(crate) init_is_zero: bool,
    /// Loop bounds (for an empty K loop the product is zero): `(start, end)`.
    pub(crate) bounds: Option<(ValueId, ValueId)>,
    /// Rows of the accumulator tile.
    pub(crate) rows: usize,
    /// Row pitch in the workspace (elements).
    pub(crate) pitch: usize,
    /// The GM tensor variable of the workspace accumulator region.
    pub(crate) ws_var: String,
}

/// Everything the vector side of a kernel produced.
#[derive(Debug)]
pub(crate) struct VectorCode {
    /// Declarations + `InitBuffer` calls (to put before the program loop).
    pub(crate) setup: String,
    /// The program body (inside the program loop, with `pid0..2` defined).
    pub(crate) body: String,
    /// Bytes of UB the setup reserves.
    pub(crate) ub_bytes: usize,
}

/// Hazards between vector instructions: which UB storages were read / written since the
/// last `PipeBarrier<PIPE_V>()`.
#[derive(Clone, Debug, Default)]
struct VHazards {
    read: HashSet<String>,
    written: HashSet<String>,
    /// Unknown state (loop entry/exit): the next vector op gets a barrier.
    unknown: bool,
}

/// The vector-side emitter of one kernel.
pub(crate) struct VectorEmitter<'k> {
    k: &'k TileKernel,
    kname: String,
    target: &'k Target,
    /// Elements per row-pitch granule (8 or 16).
    granule: usize,
    /// The kernel has bool tiles: every tile allocation is padded to 64 elements (256
    /// bytes of float), the granule of `Compare` / `CompareScalar`.
    pad64: bool,
    /// GM tensor variable per kernel parameter.
    gm: Vec<String>,
    /// Uses of each value over the whole kernel.
    uses: Vec<u32>,
    /// Scalars: C++ expression / variable of each scalar value.
    scalars: HashMap<ValueId, String>,
    tiles: HashMap<ValueId, TileVal>,
    slots: Vec<Slot>,
    free_slots: Vec<usize>,
    /// Values whose slot was handed to a loop-carried slot (not freed at last use).
    moved: HashSet<ValueId>,
    /// Slots holding loop-carried state of loops being emitted (never freed meanwhile).
    pinned: HashSet<usize>,
    pub(crate) queues: Vec<Queue>,
    /// Queue serving each load / store instruction, keyed by the instruction's address.
    site_queue: HashMap<*const Inst, usize>,
    /// Staging queue for strided (gather / scatter) accesses, per instruction.
    stage_queue: HashMap<*const Inst, usize>,
    /// Preferred destination of a value (a loop-carried slot or a store's output tensor).
    prefer: HashMap<ValueId, Preferred>,
    haz: VHazards,
    /// Bytes of the reduction scratch buffer (0 = none).
    reduce_bytes: usize,
    /// Bytes of the scalar scratch buffer (0 = none).
    scalar_scratch_bytes: usize,
    cube: Option<CubeResult>,
    /// Values that only feed the cube side (not emitted on the vector side).
    skip: HashSet<ValueId>,
    /// Counter for fresh helper names.
    fresh: usize,
    /// Indentation of the setup code (the body is one level deeper).
    setup_indent: usize,
}

#[derive(Clone, Debug)]
enum Preferred {
    /// Compute directly into this slot (loop-carried state).
    Slot(usize),
    /// Compute directly into a fresh tensor of this VECOUT queue (sole use is a store).
    Out(usize),
}

type R<T> = Result<T, CompileError>;

fn unsupported(kernel: &str, what: impl Into<String>) -> CompileError {
    CompileError::Unsupported {
        target: "ascendc".into(),
        kernel: kernel.to_string(),
        what: what.into(),
    }
}

fn internal(message: impl Into<String>) -> CompileError {
    CompileError::Internal {
        stage: "ascendc",
        message: message.into(),
    }
}

/// Values an instruction reads (directly; nested bodies not included).
pub(crate) fn operands(kind: &InstKind) -> Vec<ValueId> {
    match kind {
        InstKind::ProgramId { .. }
        | InstKind::ConstIndex(_)
        | InstKind::ConstFloat(..)
        | InstKind::Iota { .. } => vec![],
        InstKind::Expand { x, .. } => vec![*x],
        InstKind::Index { a, b, .. }
        | InstKind::Binary { a, b, .. }
        | InstKind::Compare { a, b, .. } => vec![*a, *b],
        InstKind::Select { cond, a, b } => vec![*cond, *a, *b],
        InstKind::Unary { x, .. } | InstKind::Cast { x, .. } | InstKind::Splat { x, .. } => {
            vec![*x]
        }
        InstKind::Load { access, .. } => access_operands(access),
        InstKind::Store { access, value } => {
            let mut v = access_operands(access);
            v.push(*value);
            v
        }
        InstKind::Reduce { x, .. } => vec![*x],
        InstKind::Dot { a, b, acc } => vec![*a, *b, *acc],
        InstKind::For {
            start, end, init, ..
        } => {
            let mut v = vec![*start, *end];
            v.extend(init.iter().copied());
            v
        }
    }
}

fn access_operands(a: &BlockAccess) -> Vec<ValueId> {
    let mut v = vec![a.base];
    v.extend(a.limits.iter().copied());
    v
}

/// All values used by an instruction, including uses inside nested bodies (and their
/// yields), excluding values defined inside those bodies.
pub(crate) fn deep_uses(inst: &Inst, out: &mut Vec<ValueId>) {
    out.extend(operands(&inst.kind));
    if let InstKind::For { body, .. } = &inst.kind {
        for i in &body.insts {
            deep_uses(i, out);
        }
        out.extend(body.yields.iter().copied());
    }
}

/// Use counts of every value of a kernel (each operand occurrence and each yield).
pub(crate) fn use_counts(k: &TileKernel) -> Vec<u32> {
    fn walk(b: &Block, uses: &mut Vec<u32>) {
        for inst in &b.insts {
            for v in operands(&inst.kind) {
                if let Some(u) = uses.get_mut(v.index()) {
                    *u += 1;
                }
            }
            if let InstKind::For { body, .. } = &inst.kind {
                walk(body, uses);
            }
        }
        for v in &b.yields {
            if let Some(u) = uses.get_mut(v.index()) {
                *u += 1;
            }
        }
    }
    let mut uses = vec![0u32; k.values.len()];
    walk(&k.body, &mut uses);
    uses
}

/// Last position (instruction index; `insts.len()` for yields) at which each value is used
/// within `block`, counting uses in nested bodies at the nesting instruction.
fn last_uses(block: &Block) -> HashMap<ValueId, usize> {
    let mut last = HashMap::new();
    for (i, inst) in block.insts.iter().enumerate() {
        let mut u = Vec::new();
        deep_uses(inst, &mut u);
        for v in u {
            last.insert(v, i);
        }
    }
    for &v in &block.yields {
        last.insert(v, block.insts.len());
    }
    last
}

/// True when the instruction writes a tile through a vector op that can target any
/// destination (and reads its operands before writing it).
fn is_vector_def(kind: &InstKind) -> bool {
    matches!(
        kind,
        InstKind::Unary { .. }
            | InstKind::Binary { .. }
            | InstKind::Cast { .. }
            | InstKind::Splat { .. }
            | InstKind::Iota { .. }
    )
}

impl<'k> VectorEmitter<'k> {
    /// A vector emitter for `k`; `gm` names the GM tensor of each parameter.
    pub(crate) fn new(
        k: &'k TileKernel,
        kname: &str,
        target: &'k Target,
        gm: Vec<String>,
        cube: Option<CubeResult>,
        skip: HashSet<ValueId>,
    ) -> Self {
        let granule = pitch_granule(k);
        let pad64 = k
            .values
            .iter()
            .any(|t| matches!(t, Ty::Tile(_, DType::Bool)));
        VectorEmitter {
            k,
            kname: kname.to_string(),
            target,
            granule,
            pad64,
            gm,
            uses: use_counts(k),
            scalars: HashMap::new(),
            tiles: HashMap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            moved: HashSet::new(),
            pinned: HashSet::new(),
            queues: Vec::new(),
            site_queue: HashMap::new(),
            stage_queue: HashMap::new(),
            prefer: HashMap::new(),
            haz: VHazards::default(),
            reduce_bytes: 0,
            scalar_scratch_bytes: 0,
            cube,
            skip,
            fresh: 0,
            setup_indent: 1,
        }
    }

    fn unsupported(&self, what: impl Into<String>) -> CompileError {
        unsupported(&self.kname, what)
    }

    fn ty(&self, v: ValueId) -> R<&'k Ty> {
        self.k
            .values
            .get(v.index())
            .ok_or_else(|| internal(format!("kernel `{}`: value {v} has no type", self.kname)))
    }

    /// Row pitch (elements) of a rank-2 tile with `cols` columns.
    fn pitch(&self, cols: usize) -> usize {
        round_up(cols.max(1), self.granule)
    }

    /// Count-form element count and UB bytes (at `elem` bytes per element) of a tile shape.
    fn tile_extent(&self, shape: &[usize], elem: usize) -> (usize, usize) {
        let count = match shape {
            [] => 1,
            [n] => *n,
            [r, c] => r * self.pitch(*c),
            _ => shape.iter().product(),
        };
        let alloc = match shape {
            [r, c] => r * self.pitch(*c),
            _ => round_up(count.max(1), self.granule),
        };
        let alloc = if self.pad64 {
            round_up(alloc, COMPARE_GRANULE)
        } else {
            alloc
        };
        (count, round_up(alloc * elem, BLOCK_BYTES))
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh)
    }

    /// The C++ spelling of a scalar value.
    fn scalar(&self, v: ValueId) -> R<String> {
        self.scalars.get(&v).cloned().ok_or_else(|| {
            internal(format!(
                "kernel `{}`: scalar {v} used before its definition",
                self.kname
            ))
        })
    }

    fn tile(&self, v: ValueId) -> R<TileVal> {
        self.tiles.get(&v).cloned().ok_or_else(|| {
            internal(format!(
                "kernel `{}`: tile {v} used before its definition (or after it was freed)",
                self.kname
            ))
        })
    }

    // ----- storage ------------------------------------------------------------------

    fn alloc_slot(&mut self, bytes: usize, user: String) -> usize {
        // Prefer a free slot already large enough, else the largest free one.
        let pick = self
            .free_slots
            .iter()
            .enumerate()
            .filter(|(_, &s)| self.slots[s].bytes >= bytes)
            .min_by_key(|(_, &s)| self.slots[s].bytes)
            .map(|(i, _)| i)
            .or_else(|| {
                self.free_slots
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, &s)| self.slots[s].bytes)
                    .map(|(i, _)| i)
            });
        let s = match pick {
            Some(i) => self.free_slots.swap_remove(i),
            None => {
                self.slots.push(Slot {
                    name: format!("tmp{}", self.slots.len()),
                    bytes: 0,
                    users: Vec::new(),
                });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[s];
        slot.bytes = slot.bytes.max(bytes);
        slot.users.push(user);
        s
    }

    fn free_slot(&mut self, s: usize) {
        if !self.pinned.contains(&s) && !self.free_slots.contains(&s) {
            self.free_slots.push(s);
        }
    }

    fn add_queue(&mut self, position: &'static str, bytes: usize, what: String) -> usize {
        let prefix = if position == "VECIN" { "in_q" } else { "out_q" };
        let n = self
            .queues
            .iter()
            .filter(|q| q.position == position)
            .count();
        self.queues.push(Queue {
            name: format!("{prefix}{n}"),
            position,
            bytes: round_up(bytes.max(1), BLOCK_BYTES),
            what,
        });
        self.queues.len() - 1
    }

    fn storage_name(&self, loc: &Loc) -> String {
        match loc {
            Loc::Slot(s) => self.slots[*s].name.clone(),
            Loc::InQ(q) | Loc::OutQ(q) => self.queues[*q].name.clone(),
            Loc::Fixed(n) => n.to_string(),
        }
    }

    /// Frees a dead tile value.
    fn release(&mut self, w: &mut Writer, v: ValueId) {
        if self.moved.remove(&v) {
            self.tiles.remove(&v);
            return;
        }
        if let Some(t) = self.tiles.remove(&v) {
            match t.loc {
                Loc::Slot(s) => {
                    // A loop-carried slot may hold several values; free it only when no
                    // live value still uses it.
                    if !self.tiles.values().any(|o| o.loc == Loc::Slot(s)) {
                        self.free_slot(s);
                    }
                }
                Loc::InQ(q) => {
                    w.line(format!("{}.FreeTensor({});", self.queues[q].name, t.var));
                }
                Loc::OutQ(_) | Loc::Fixed(_) => {}
            }
        }
    }

    // ----- vector instruction hazards -------------------------------------------------

    /// Emits a vector instruction, preceded by `PipeBarrier<PIPE_V>()` when it depends
    /// on (or overwrites what is read by) an earlier vector instruction.
    fn vop(&mut self, w: &mut Writer, text: String, reads: &[&Loc], writes: &[&Loc]) {
        let reads: Vec<String> = reads.iter().map(|l| self.storage_name(l)).collect();
        let writes: Vec<String> = writes.iter().map(|l| self.storage_name(l)).collect();
        let conflict = self.haz.unknown
            || reads
                .iter()
                .chain(writes.iter())
                .any(|s| self.haz.written.contains(s))
            || writes.iter().any(|s| self.haz.read.contains(s));
        if conflict {
            w.line("PipeBarrier<PIPE_V>();");
            self.haz = VHazards::default();
        }
        self.haz.read.extend(reads);
        self.haz.written.extend(writes);
        w.line(text);
    }

    /// Forgets hazard state (the next vector op gets a barrier): loop boundaries.
    fn haz_unknown(&mut self) {
        self.haz.unknown = true;
    }

    /// Waits for the vector unit before the scalar unit reads UB.
    fn v_to_s(&mut self, w: &mut Writer) {
        w.line("SetFlag<HardEvent::V_S>(EVENT_ID0);");
        w.line("WaitFlag<HardEvent::V_S>(EVENT_ID0);");
    }

    // ----- entry ----------------------------------------------------------------------

    /// Emits the program body (the kernel's top-level block) and returns the code.
    pub(crate) fn emit(mut self, setup_indent: usize) -> R<VectorCode> {
        self.setup_indent = setup_indent;
        let mut w = Writer::new(setup_indent + 1);
        self.assign_store_queues(&self.k.body)?;
        self.emit_block(&mut w, &self.k.body, &[])?;
        let body = w.finish();
        let (setup, ub_bytes) = self.setup()?;
        Ok(VectorCode {
            setup,
            body,
            ub_bytes,
        })
    }

    /// Creates the queue of every load / store site (walks nested bodies too).
    fn assign_store_queues(&mut self, block: &'k Block) -> R<()> {
        for inst in &block.insts {
            if let Some(r) = inst.results.first() {
                if self.skip.contains(r) {
                    continue;
                }
            }
            if let Some(c) = &self.cube {
                if inst.results.contains(&c.inst_result) {
                    continue;
                }
            }
            match &inst.kind {
                InstKind::Load { access, .. } if !access.shape.is_empty() => {
                    let p = self.param(access.buffer)?;
                    let (_, bytes) = self.tile_extent(&access.shape, p.dtype.size_bytes());
                    let strides = &access.strides;
                    let inner = strides.last().copied().unwrap_or(1);
                    let uses_queue = inner == 1 || (inner != 0 && inner > 1);
                    if uses_queue {
                        let what = format!(
                            "{} = load {} {:?}",
                            inst.results
                                .first()
                                .map(|v| v.to_string())
                                .unwrap_or_default(),
                            p.name,
                            access.shape
                        );
                        if inner == 1 {
                            let q = self.add_queue("VECIN", bytes, what);
                            self.site_queue.insert(inst as *const Inst, q);
                        } else {
                            // Strided gather: each element lands in its own 32-byte block
                            // of a staging tensor (one row at a time), then a vector
                            // reduction compacts the blocks.
                            let cols = *access.shape.last().unwrap_or(&1);
                            let q = self.add_queue("VECIN", cols * BLOCK_BYTES, what);
                            self.stage_queue.insert(inst as *const Inst, q);
                        }
                    }
                }
                InstKind::Store { access, value } => {
                    let p = self.param(access.buffer)?;
                    let what = format!("store {} -> {} {:?}", value, p.name, access.shape);
                    let inner = access.strides.last().copied().unwrap_or(1);
                    let bytes = if access.shape.is_empty() {
                        BLOCK_BYTES
                    } else {
                        self.tile_extent(&access.shape, p.dtype.size_bytes()).1
                    };
                    let q = self.add_queue("VECOUT", bytes, what.clone());
                    self.site_queue.insert(inst as *const Inst, q);
                    if !access.shape.is_empty() && inner != 1 {
                        let cols = *access.shape.last().unwrap_or(&1);
                        let sq = self.add_queue("VECOUT", cols * BLOCK_BYTES, what);
                        self.stage_queue.insert(inst as *const Inst, sq);
                    }
                }
                InstKind::For { body, .. } => self.assign_store_queues(body)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn param(&self, i: usize) -> R<&'k crate::tile::BufferParam> {
        self.k.params.get(i).ok_or_else(|| {
            internal(format!(
                "kernel `{}`: access to missing parameter {i}",
                self.kname
            ))
        })
    }

    /// Declarations and `InitBuffer` calls for everything the body used.
    fn setup(&self) -> R<(String, usize)> {
        let ub = self.target.ub_bytes;
        // Double-buffer every queue if it fits (and the per-position buffer count of 8
        // allows it), else single-buffer.
        let queue_bytes: usize = self.queues.iter().map(|q| q.bytes).sum();
        let slot_bytes: usize = self
            .slots
            .iter()
            .map(|s| round_up(s.bytes, BLOCK_BYTES))
            .sum();
        let extra = round_up(self.reduce_bytes, BLOCK_BYTES)
            + round_up(self.scalar_scratch_bytes, BLOCK_BYTES);
        let per_pos = |pos: &str| self.queues.iter().filter(|q| q.position == pos).count();
        let (n_in, n_out) = (per_pos("VECIN"), per_pos("VECOUT"));
        const MAX_PER_POSITION: usize = 8;
        for (n, pos) in [(n_in, "VECIN"), (n_out, "VECOUT")] {
            if n > MAX_PER_POSITION {
                return Err(CompileError::Limit {
                    kernel: format!(
                        "{} ({n} {pos} queues: {})",
                        self.kname,
                        cpp::join(
                            self.queues
                                .iter()
                                .filter(|q| q.position == pos)
                                .map(|q| format!("{} [{}]", q.name, q.what)),
                            ", "
                        )
                    ),
                    target: "ascendc".into(),
                    limit: if pos == "VECIN" {
                        "VECIN queue buffers (8 per position)"
                    } else {
                        "VECOUT queue buffers (8 per position)"
                    },
                    needed: n,
                    available: MAX_PER_POSITION,
                });
            }
        }
        let double = 2 * queue_bytes + slot_bytes + extra <= ub
            && 2 * n_in <= MAX_PER_POSITION
            && 2 * n_out <= MAX_PER_POSITION;
        let depth = if double { 2 } else { 1 };
        let total = depth * queue_bytes + slot_bytes + extra;
        if total > ub {
            // Name the buffers, largest first.
            let mut all: Vec<(usize, String)> = self
                .queues
                .iter()
                .map(|q| (q.bytes, format!("{} [{}] {} B", q.name, q.what, q.bytes)))
                .chain(self.slots.iter().map(|s| {
                    (
                        s.bytes,
                        format!(
                            "{} [{}] {} B",
                            s.name,
                            cpp::join(s.users.clone(), ", "),
                            s.bytes
                        ),
                    )
                }))
                .collect();
            all.sort_by_key(|b| std::cmp::Reverse(b.0));
            return Err(CompileError::Limit {
                kernel: format!(
                    "{} (Unified Buffer: {})",
                    self.kname,
                    cpp::join(all.into_iter().map(|(_, s)| s), "; ")
                ),
                target: "ascendc".into(),
                limit: "ub_bytes",
                needed: total,
                available: ub,
            });
        }
        let mut w = Writer::new(self.setup_indent);
        w.comment(format!(
            "Unified Buffer: {} queue(s) x {} buffer(s), {} scratch buffer(s): {} of {} bytes.",
            self.queues.len(),
            depth,
            self.slots.len()
                + usize::from(self.reduce_bytes > 0)
                + usize::from(self.scalar_scratch_bytes > 0),
            total,
            ub
        ));
        for q in &self.queues {
            w.line(format!(
                "TQue<TPosition::{}, 1> {}; // {}",
                q.position, q.name, q.what
            ));
            w.line(format!(
                "pipe.InitBuffer({}, {}, {});",
                q.name, depth, q.bytes
            ));
        }
        for s in &self.slots {
            w.line(format!(
                "TBuf<TPosition::VECCALC> {}; // {}",
                s.name,
                cpp::join(s.users.clone(), ", ")
            ));
            w.line(format!(
                "pipe.InitBuffer({}, {});",
                s.name,
                round_up(s.bytes, BLOCK_BYTES)
            ));
        }
        if self.reduce_bytes > 0 {
            w.line("TBuf<TPosition::VECCALC> reduce_buf; // reduction result + work area");
            w.line(format!(
                "pipe.InitBuffer(reduce_buf, {});",
                round_up(self.reduce_bytes, BLOCK_BYTES)
            ));
        }
        if self.scalar_scratch_bytes > 0 {
            w.line("TBuf<TPosition::VECCALC> scalar_buf; // one-block tiles for scalar math");
            w.line(format!(
                "pipe.InitBuffer(scalar_buf, {});",
                round_up(self.scalar_scratch_bytes, BLOCK_BYTES)
            ));
        }
        Ok((w.finish(), total))
    }

    // ----- blocks -----------------------------------------------------------------------

    /// Emits a block whose arguments are already bound; `carried[j]` is the slot of
    /// loop-carried tile argument `j` (None for scalars), for in-place yields.
    fn emit_block(&mut self, w: &mut Writer, block: &'k Block, carried: &[Option<usize>]) -> R<()> {
        let last = last_uses(block);
        // Preferred destinations: yielded values computed in place into their carried
        // slot; values whose only use is a store, computed into the store's tensor.
        let mut def_pos: HashMap<ValueId, usize> = HashMap::new();
        for (i, inst) in block.insts.iter().enumerate() {
            for &r in &inst.results {
                def_pos.insert(r, i);
            }
        }
        let mut local_prefer: Vec<ValueId> = Vec::new();
        for (j, &y) in block.yields.iter().enumerate() {
            let Some(Some(slot)) = carried.get(j) else {
                continue;
            };
            let Some(&i) = def_pos.get(&y) else { continue };
            if !is_vector_def(&block.insts[i].kind) {
                continue;
            }
            let arg = block.args[j + 1];
            let arg_last = last.get(&arg).copied().unwrap_or(0);
            let yielded_once = block.yields.iter().filter(|&&o| o == y).count() == 1;
            if arg_last <= i && yielded_once && !self.prefer.contains_key(&y) {
                self.prefer.insert(y, Preferred::Slot(*slot));
                local_prefer.push(y);
            }
        }
        for inst in &block.insts {
            if let InstKind::Store { access, value } = &inst.kind {
                if access.shape.is_empty() || self.uses[value.index()] != 1 {
                    continue;
                }
                let Some(&i) = def_pos.get(value) else {
                    continue;
                };
                if !is_vector_def(&block.insts[i].kind) || self.prefer.contains_key(value) {
                    continue;
                }
                let p = self.param(access.buffer)?;
                let vt = self.ty(*value)?;
                let inner = access.strides.last().copied().unwrap_or(1);
                if inner == 1 && cpp::compute_type(vt.dtype()) == cpp::gm_type(p.dtype) {
                    if let Some(&q) = self.site_queue.get(&(inst as *const Inst)) {
                        self.prefer.insert(*value, Preferred::Out(q));
                        local_prefer.push(*value);
                    }
                }
            }
        }

        for (i, inst) in block.insts.iter().enumerate() {
            self.emit_inst(w, inst)?;
            // Free values defined in this block (or its arguments) that are now dead.
            let mut dead: Vec<ValueId> = Vec::new();
            for (&v, &p) in &last {
                if p == i && (def_pos.contains_key(&v) || block.args.contains(&v)) {
                    dead.push(v);
                }
            }
            for &r in &inst.results {
                if !last.contains_key(&r) {
                    dead.push(r);
                }
            }
            dead.sort();
            for v in dead {
                if block.args.first() == Some(&v) {
                    continue;
                }
                if let Some(j) = block.args.iter().position(|&a| a == v) {
                    // Loop-carried argument: its slot belongs to the loop.
                    if j >= 1 && carried.get(j - 1).copied().flatten().is_some() {
                        self.tiles.remove(&v);
                        continue;
                    }
                }
                self.release(w, v);
            }
        }
        for v in local_prefer {
            self.prefer.remove(&v);
        }
        Ok(())
    }

    /// Binds a scalar result to a new C++ local.
    fn def_scalar(&mut self, w: &mut Writer, r: ValueId, ctype: &str, expr: String, what: &str) {
        let name = format!("s{}", r.0);
        w.line(format!("const {ctype} {name} = {expr}; // {r} = {what}"));
        self.scalars.insert(r, name);
    }

    /// Chooses the destination of a new tile value (its preferred storage, else a slot).
    fn def_tile(&mut self, w: &mut Writer, r: ValueId) -> R<TileVal> {
        let ty = self.ty(r)?;
        let shape = ty.shape().unwrap_or(&[]).to_vec();
        let ctype = cpp::compute_type(ty.dtype());
        let (count, bytes) = self.tile_extent(&shape, cpp::compute_size(ty.dtype()));
        let var = format!("v{}", r.0);
        let tv = match self.prefer.get(&r).cloned() {
            Some(Preferred::Slot(s)) => {
                w.line(format!(
                    "LocalTensor<{ctype}> {var} = {}.Get<{ctype}>(); // in place of the loop-carried value",
                    self.slots[s].name
                ));
                self.slots[s].users.push(r.to_string());
                TileVal {
                    loc: Loc::Slot(s),
                    var,
                    count,
                }
            }
            Some(Preferred::Out(q)) => {
                w.line(format!(
                    "LocalTensor<{ctype}> {var} = {}.AllocTensor<{ctype}>(); // computed straight into the store's tensor",
                    self.queues[q].name
                ));
                TileVal {
                    loc: Loc::OutQ(q),
                    var,
                    count,
                }
            }
            None => {
                let s = self.alloc_slot(bytes, r.to_string());
                w.line(format!(
                    "LocalTensor<{ctype}> {var} = {}.Get<{ctype}>();",
                    self.slots[s].name
                ));
                TileVal {
                    loc: Loc::Slot(s),
                    var,
                    count,
                }
            }
        };
        self.tiles.insert(r, tv.clone());
        Ok(tv)
    }

    /// A scratch tile for the duration of one lowering (free it with `free_slot`).
    fn scratch(
        &mut self,
        w: &mut Writer,
        ctype: &str,
        bytes: usize,
        what: &str,
    ) -> (usize, String) {
        let s = self.alloc_slot(bytes, format!("scratch: {what}"));
        let var = self.fresh("scratch");
        w.line(format!(
            "LocalTensor<{ctype}> {var} = {}.Get<{ctype}>();",
            self.slots[s].name
        ));
        (s, var)
    }

    fn emit_inst(&mut self, w: &mut Writer, inst: &'k Inst) -> R<()> {
        let r0 = inst.results.first().copied();
        if let Some(r) = r0 {
            if self.skip.contains(&r) {
                return Ok(());
            }
            // Pure instructions whose result nobody uses are not emitted.
            let pure = !matches!(inst.kind, InstKind::For { .. } | InstKind::Store { .. });
            if pure && inst.results.iter().all(|v| self.uses[v.index()] == 0) {
                return Ok(());
            }
            if let Some(cube) = self.cube.clone() {
                if inst.results.contains(&cube.inst_result) {
                    return self.emit_cube_result(w, inst, &cube);
                }
            }
        }
        match &inst.kind {
            InstKind::Iota { shape, axis } => {
                let r = r0.ok_or_else(|| internal("iota without result"))?;
                self.emit_iota(w, r, shape, *axis)?;
            }
            InstKind::Expand { x, axis, size } => {
                let r = r0.ok_or_else(|| internal("expand without result"))?;
                self.emit_expand(w, r, *x, *axis, *size)?;
            }
            InstKind::ProgramId { axis } => {
                let r = r0.ok_or_else(|| internal("program_id without result"))?;
                if *axis > 2 {
                    return Err(self.unsupported(format!("program_id axis {axis}")));
                }
                self.scalars.insert(r, format!("pid{axis}"));
            }
            InstKind::ConstIndex(v) => {
                let r = r0.ok_or_else(|| internal("constant without result"))?;
                if *v < i32::MIN as i64 || *v > i32::MAX as i64 {
                    return Err(self.unsupported(format!("index constant {v} outside i32")));
                }
                self.scalars.insert(r, cpp::int_lit(*v));
            }
            InstKind::ConstFloat(v, d) => {
                let r = r0.ok_or_else(|| internal("constant without result"))?;
                self.scalars.insert(r, cpp::lit(*v, *d));
            }
            InstKind::Index { op, a, b } => {
                let r = r0.ok_or_else(|| internal("index op without result"))?;
                let (a, b) = (self.scalar(*a)?, self.scalar(*b)?);
                let expr = match op {
                    IndexOp::Add => format!("{a} + {b}"),
                    IndexOp::Sub => format!("{a} - {b}"),
                    IndexOp::Mul => format!("{a} * {b}"),
                    IndexOp::Div => format!("{a} / {b}"),
                    IndexOp::Rem => format!("{a} % {b}"),
                    IndexOp::Min => format!("({a} < {b} ? {a} : {b})"),
                    IndexOp::Max => format!("({a} > {b} ? {a} : {b})"),
                };
                self.def_scalar(w, r, "int32_t", expr, op.name());
            }
            InstKind::Unary { op, x } => {
                let r = r0.ok_or_else(|| internal("unary without result"))?;
                self.emit_unary(w, r, *op, *x)?;
            }
            InstKind::Binary { op, a, b } => {
                let r = r0.ok_or_else(|| internal("binary without result"))?;
                self.emit_binary(w, r, *op, *a, *b)?;
            }
            InstKind::Compare { op, a, b } => {
                let r = r0.ok_or_else(|| internal("compare without result"))?;
                self.emit_compare(w, r, *op, *a, *b)?;
            }
            InstKind::Select { cond, a, b } => {
                let r = r0.ok_or_else(|| internal("select without result"))?;
                self.emit_select(w, r, *cond, *a, *b)?;
            }
            InstKind::Cast { x, to } => {
                let r = r0.ok_or_else(|| internal("cast without result"))?;
                self.emit_cast(w, r, *x, *to)?;
            }
            InstKind::Splat { x, .. } if self.is_mask(r0.unwrap_or(*x))? => {
                let r = r0.ok_or_else(|| internal("splat without result"))?;
                let s = self.scalar(*x)?;
                w.comment(format!("{r} = splat {x} (bit mask)"));
                let d = self.def_mask(w, r)?;
                let words = round_up(d.count.max(1), COMPARE_GRANULE) / 16;
                self.vop(
                    w,
                    format!(
                        "Duplicate({}.ReinterpretCast<uint16_t>(), static_cast<uint16_t>(({s}) != 0 ? 0xFFFFu : 0u), {words});",
                        d.var
                    ),
                    &[],
                    &[&d.loc],
                );
            }
            InstKind::Splat { x, .. } => {
                let r = r0.ok_or_else(|| internal("splat without result"))?;
                let s = self.scalar(*x)?;
                let ctype = cpp::compute_type(self.ty(r)?.dtype());
                w.comment(format!("{r} = splat {x}"));
                let d = self.def_tile(w, r)?;
                self.vop(
                    w,
                    format!(
                        "Duplicate({}, static_cast<{ctype}>({s}), {});",
                        d.var, d.count
                    ),
                    &[],
                    &[&d.loc],
                );
            }
            InstKind::Load { access, other } => {
                let r = r0.ok_or_else(|| internal("load without result"))?;
                self.emit_load(w, inst, r, access, *other)?;
                if self.is_mask(r)? {
                    self.words_to_mask(w, r)?;
                }
            }
            InstKind::Store { access, value } => {
                self.emit_store(w, inst, access, *value)?;
            }
            InstKind::Reduce { op, x, axis } => {
                let r = r0.ok_or_else(|| internal("reduce without result"))?;
                self.emit_reduce(w, r, *op, *x, *axis)?;
            }
            InstKind::Dot { .. } => {
                return Err(self.unsupported(
                    "a `dot` outside the recognised matmul pattern (one dot per kernel whose operands are loads, accumulated in a loop)",
                ));
            }
            InstKind::For {
                start,
                end,
                step,
                init,
                body,
            } => self.emit_for(w, inst, *start, *end, *step, init, body)?,
        }
        Ok(())
    }

    // ----- scalars and elementwise ----------------------------------------------------

    fn is_tile(&self, v: ValueId) -> R<bool> {
        Ok(matches!(self.ty(v)?, Ty::Tile(..)))
    }

    /// `erf` of a float tile from vector instructions: Abramowitz-Stegun 7.1.26,
    /// `erf(|x|) = 1 - t (a1 + a2 t + .. + a5 t^4) e^(-x^2)` with `t = 1 / (1 + p|x|)`
    /// (max absolute error 1.5e-7) for |x| > 0.5, as the SIMT lowering; below, the
    /// Maclaurin series to x^13 (blended by an arithmetic 0/1 mask, no compare/select
    /// needed); the A-S branch is multiplied by the sign `x / (|x| + 1e-30)` (exactly
    /// +-1 for |x| > 1e-22; below, erf(|x|) is under 1.5e-7 anyway). The sign is taken
    /// before the destination is written, so it may share a slot with `x`.
    fn emit_erf(&mut self, w: &mut Writer, r: ValueId, x: ValueId, dtype: DType) -> R<()> {
        if dtype != DType::F32 {
            return Err(self.unsupported(format!("erf of a {dtype} tile")));
        }
        const P: f64 = 0.327_591_1;
        const A: [f64; 5] = [
            0.254_829_592,
            -0.284_496_736,
            1.421_413_741,
            -1.453_152_027,
            1.061_405_429,
        ];
        let xt = self.tile(x)?;
        w.comment(format!(
            "{r} = erf {x} (Abramowitz-Stegun 7.1.26, 1.5e-7 absolute)"
        ));
        let (_, bytes) = self.tile_extent(self.ty(r)?.shape().unwrap_or(&[]), 4);
        let (k1, s1) = self.scratch(w, "float", bytes, &format!("{r} erf |x|"));
        let (k2, s2) = self.scratch(w, "float", bytes, &format!("{r} erf t"));
        let (k3, s3) = self.scratch(w, "float", bytes, &format!("{r} erf sign"));
        let (l1, l2, l3) = (Loc::Slot(k1), Loc::Slot(k2), Loc::Slot(k3));
        let n = xt.count;
        let lit = |v: f64| format!("{v:e}f");
        self.vop(
            w,
            format!("Abs({s1}, {}, {n});", xt.var),
            &[&xt.loc],
            &[&l1],
        );
        self.vop(w, format!("Adds({s3}, {s1}, 1e-30f, {n});"), &[&l1], &[&l3]);
        self.vop(
            w,
            format!("Div({s3}, {}, {s3}, {n});", xt.var),
            &[&xt.loc, &l3],
            &[&l3],
        );
        // Below |x| = 0.5 the Maclaurin series to x^13 (truncation below 5e-10 relative)
        // keeps the relative accuracy that `1 - q e^(-x^2)` cancels away. s4 = series of
        // clamp(x, -0.5, 0.5); s5 = 0 for |x| <= 0.5, 1 above (arithmetic only: no
        // |x| - 0.5 in (0, 1e-30) exists in f32); at the end d = s4 + s5 (d - s4).
        let (k4, s4) = self.scratch(w, "float", bytes, &format!("{r} erf series"));
        let (k5, s5) = self.scratch(w, "float", bytes, &format!("{r} erf mask"));
        let (l4, l5) = (Loc::Slot(k4), Loc::Slot(k5));
        self.vop(
            w,
            format!("Mins({s4}, {}, 0.5f, {n});", xt.var),
            &[&xt.loc],
            &[&l4],
        );
        self.vop(w, format!("Maxs({s4}, {s4}, -0.5f, {n});"), &[&l4], &[&l4]);
        self.vop(w, format!("Adds({s5}, {s1}, -0.5f, {n});"), &[&l1], &[&l5]);
        self.vop(w, format!("Muls({s5}, {s5}, 1e30f, {n});"), &[&l5], &[&l5]);
        self.vop(w, format!("Mins({s5}, {s5}, 1.0f, {n});"), &[&l5], &[&l5]);
        self.vop(w, format!("Maxs({s5}, {s5}, 0.0f, {n});"), &[&l5], &[&l5]);
        let d = self.def_tile(w, r)?;
        let dv = d.var.clone();
        // Series: 2/sqrt(pi) * xc * sum_k (-1)^k z^k / (k! (2k+1)), z = xc^2 (z in s2).
        self.vop(w, format!("Mul({s2}, {s4}, {s4}, {n});"), &[&l4], &[&l2]);
        let coef = |k: u32| {
            let fact: f64 = (1..=k).map(f64::from).product();
            let sign = if k.is_multiple_of(2) { 1.0 } else { -1.0 };
            sign / (fact * f64::from(2 * k + 1))
        };
        self.vop(
            w,
            format!("Muls({dv}, {s2}, {}, {n});", lit(coef(6))),
            &[&l2],
            &[&d.loc],
        );
        for k in (1..6).rev() {
            self.vop(
                w,
                format!("Adds({dv}, {dv}, {}, {n});", lit(coef(k))),
                &[&d.loc],
                &[&d.loc],
            );
            self.vop(
                w,
                format!("Mul({dv}, {dv}, {s2}, {n});"),
                &[&d.loc, &l2],
                &[&d.loc],
            );
        }
        self.vop(
            w,
            format!("Adds({dv}, {dv}, 1.0f, {n});"),
            &[&d.loc],
            &[&d.loc],
        );
        self.vop(
            w,
            format!("Mul({s4}, {dv}, {s4}, {n});"),
            &[&d.loc, &l4],
            &[&l4],
        );
        let two_over_sqrt_pi = std::f64::consts::FRAC_2_SQRT_PI;
        self.vop(
            w,
            format!("Muls({s4}, {s4}, {}, {n});", lit(two_over_sqrt_pi)),
            &[&l4],
            &[&l4],
        );
        self.vop(
            w,
            format!("Muls({s2}, {s1}, {}, {n});", lit(P)),
            &[&l1],
            &[&l2],
        );
        self.vop(w, format!("Adds({s2}, {s2}, 1.0f, {n});"), &[&l2], &[&l2]);
        self.vop(w, format!("Duplicate({dv}, 1.0f, {n});"), &[], &[&d.loc]);
        self.vop(
            w,
            format!("Div({s2}, {dv}, {s2}, {n});"),
            &[&d.loc, &l2],
            &[&l2],
        );
        self.vop(
            w,
            format!("Muls({dv}, {s2}, {}, {n});", lit(A[4])),
            &[&l2],
            &[&d.loc],
        );
        for a in A[..4].iter().rev() {
            self.vop(
                w,
                format!("Adds({dv}, {dv}, {}, {n});", lit(*a)),
                &[&d.loc],
                &[&d.loc],
            );
            self.vop(
                w,
                format!("Mul({dv}, {dv}, {s2}, {n});"),
                &[&d.loc, &l2],
                &[&d.loc],
            );
        }
        self.vop(w, format!("Mul({s1}, {s1}, {s1}, {n});"), &[&l1], &[&l1]);
        self.vop(w, format!("Muls({s1}, {s1}, -1.0f, {n});"), &[&l1], &[&l1]);
        self.vop(w, format!("Exp({s1}, {s1}, {n});"), &[&l1], &[&l1]);
        self.vop(
            w,
            format!("Mul({dv}, {dv}, {s1}, {n});"),
            &[&d.loc, &l1],
            &[&d.loc],
        );
        self.vop(
            w,
            format!("Muls({dv}, {dv}, -1.0f, {n});"),
            &[&d.loc],
            &[&d.loc],
        );
        self.vop(
            w,
            format!("Adds({dv}, {dv}, 1.0f, {n});"),
            &[&d.loc],
            &[&d.loc],
        );
        self.vop(
            w,
            format!("Mul({dv}, {dv}, {s3}, {n});"),
            &[&d.loc, &l3],
            &[&d.loc],
        );
        self.vop(
            w,
            format!("Sub({dv}, {dv}, {s4}, {n});"),
            &[&d.loc, &l4],
            &[&d.loc],
        );
        self.vop(
            w,
            format!("Mul({dv}, {dv}, {s5}, {n});"),
            &[&d.loc, &l5],
            &[&d.loc],
        );
        self.vop(
            w,
            format!("Add({dv}, {dv}, {s4}, {n});"),
            &[&d.loc, &l4],
            &[&d.loc],
        );
        self.free_slot(k4);
        self.free_slot(k5);
        self.free_slot(k1);
        self.free_slot(k2);
        self.free_slot(k3);
        Ok(())
    }

    fn emit_unary(&mut self, w: &mut Writer, r: ValueId, op: UnaryOp, x: ValueId) -> R<()> {
        let dtype = self.ty(r)?.dtype();
        if !self.is_tile(x)? {
            let xs = self.scalar(x)?;
            let ctype = cpp::compute_type(dtype);
            if op == UnaryOp::Neg {
                self.def_scalar(w, r, ctype, format!("-{xs}"), "neg");
                return Ok(());
            }
            if !dtype.is_float() || op == UnaryOp::Erf {
                return Err(self.unsupported(format!("{} of a {dtype} scalar", op.name())));
            }
            // The scalar unit has no transcendental functions: use a one-block tile.
            self.scalar_scratch_bytes = self.scalar_scratch_bytes.max(3 * BLOCK_BYTES);
            w.comment(format!(
                "{r} = {} {x} (scalar, on the vector unit)",
                op.name()
            ));
            w.line(format!(
                "LocalTensor<float> sx{0} = scalar_buf.Get<float>(); LocalTensor<float> sy{0} = scalar_buf.Get<float>()[8]; LocalTensor<float> sz{0} = scalar_buf.Get<float>()[16];",
                r.0
            ));
            let sx = format!("sx{}", r.0);
            let sy = format!("sy{}", r.0);
            let sz = format!("sz{}", r.0);
            let sl = Loc::Fixed("scalar_buf");
            self.vop(w, format!("Duplicate({sx}, {xs}, 1);"), &[], &[&sl]);
            self.unary_op_with(w, op, &sy, &sl, &sx, &sl, 1, "float", Some(&sz), Some(&sl))?;
            self.v_to_s(w);
            let name = format!("s{}", r.0);
            w.line(format!("const float {name} = {sy}.GetValue(0);"));
            self.scalars.insert(r, name);
            return Ok(());
        }
        let xt = self.tile(x)?;
        if op == UnaryOp::Erf {
            return self.emit_erf(w, r, x, dtype);
        }
        if !dtype.is_float() && op != UnaryOp::Neg {
            return Err(self.unsupported(format!("{} of a {dtype} tile", op.name())));
        }
        if dtype == DType::U32 || dtype == DType::Bool {
            return Err(self.unsupported(format!("{} of a {dtype} tile", op.name())));
        }
        let ctype = cpp::compute_type(dtype);
        w.comment(format!("{r} = {} {x}", op.name()));
        let d = self.def_tile(w, r)?;
        let (_, bytes) = self.tile_extent(self.ty(r)?.shape().unwrap_or(&[]), 4);
        let scratch = if matches!(op, UnaryOp::Tanh | UnaryOp::Sigmoid) {
            Some(self.scratch(w, ctype, bytes, &format!("{} {x}", op.name())))
        } else {
            None
        };
        let scratch_var = scratch.as_ref().map(|(_, v)| v.clone());
        let scratch_loc = scratch.as_ref().map(|(s, _)| Loc::Slot(*s));
        self.unary_op_with(
            w,
            op,
            &d.var,
            &d.loc,
            &xt.var,
            &xt.loc,
            d.count,
            ctype,
            scratch_var.as_deref(),
            scratch_loc.as_ref(),
        )?;
        if let Some((s, _)) = scratch {
            self.free_slot(s);
        }
        Ok(())
    }

    /// `dst = op(src)` over `count` elements. Tanh needs a scratch tile; `dst` is written
    /// only after `src` was last read, so `dst` may alias `src`.
    #[allow(clippy::too_many_arguments)]
    fn unary_op_with(
        &mut self,
        w: &mut Writer,
        op: UnaryOp,
        dst: &str,
        dloc: &Loc,
        src: &str,
        sloc: &Loc,
        count: usize,
        ctype: &str,
        scratch: Option<&str>,
        scratch_loc: Option<&Loc>,
    ) -> R<()> {
        // Ops that are one vector instruction of the same meaning.
        let single = match op {
            UnaryOp::Exp => Some("Exp"),
            UnaryOp::Log => Some("Ln"),
            UnaryOp::Sqrt => Some("Sqrt"),
            UnaryOp::Rsqrt => Some("Rsqrt"),
            UnaryOp::Abs => Some("Abs"),
            UnaryOp::Relu => Some("Relu"),
            UnaryOp::Reciprocal => Some("Reciprocal"),
            _ => None,
        };
        if let Some(f) = single {
            self.vop(w, format!("{f}({dst}, {src}, {count});"), &[sloc], &[dloc]);
            return Ok(());
        }
        match op {
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Abs
            | UnaryOp::Relu
            | UnaryOp::Reciprocal => {
                return Err(internal("single-instruction unary ops are handled above"))
            }
            UnaryOp::Neg => {
                let m1 = if ctype == "float" {
                    "-1.0f"
                } else {
                    "(int32_t)(-1)"
                };
                self.vop(
                    w,
                    format!("Muls({dst}, {src}, {m1}, {count});"),
                    &[sloc],
                    &[dloc],
                );
            }
            UnaryOp::Tanh => {
                let (t, tl) = match (scratch, scratch_loc) {
                    (Some(t), Some(l)) => (t.to_string(), l.clone()),
                    _ => return Err(internal("tanh lowering without a scratch tile")),
                };
                // tanh(x) = 2 / (1 + exp(-2x)) - 1: exp overflows to +inf for very
                // negative x, giving 2/inf - 1 = -1 (never inf/inf = NaN); absolute error
                // a few ulp of 1 everywhere.
                w.comment(
                    "tanh(x) = 2 / (1 + exp(-2x)) - 1 (no tanh instruction on the vector unit)",
                );
                self.vop(
                    w,
                    format!("Muls({t}, {src}, -2.0f, {count});"),
                    &[sloc],
                    &[&tl],
                );
                self.vop(w, format!("Exp({t}, {t}, {count});"), &[&tl], &[&tl]);
                self.vop(w, format!("Adds({t}, {t}, 1.0f, {count});"), &[&tl], &[&tl]);
                self.vop(w, format!("Duplicate({dst}, 2.0f, {count});"), &[], &[dloc]);
                self.vop(
                    w,
                    format!("Div({dst}, {dst}, {t}, {count});"),
                    &[dloc, &tl],
                    &[dloc],
                );
                self.vop(
                    w,
                    format!("Adds({dst}, {dst}, -1.0f, {count});"),
                    &[dloc],
                    &[dloc],
                );
            }
            UnaryOp::Sigmoid => {
                let (t, tl) = match (scratch, scratch_loc) {
                    (Some(t), Some(l)) => (t.to_string(), l.clone()),
                    _ => return Err(internal("sigmoid lowering without a scratch tile")),
                };
                // sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|)): both exponents <= 0 (no
                // overflow), full relative accuracy on both sides.
                w.comment("sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|))");
                self.vop(w, format!("Abs({t}, {src}, {count});"), &[sloc], &[&tl]);
                self.vop(
                    w,
                    format!("Muls({t}, {t}, -1.0f, {count});"),
                    &[&tl],
                    &[&tl],
                );
                self.vop(w, format!("Exp({t}, {t}, {count});"), &[&tl], &[&tl]);
                self.vop(w, format!("Adds({t}, {t}, 1.0f, {count});"), &[&tl], &[&tl]);
                self.vop(
                    w,
                    format!("Mins({dst}, {src}, 0.0f, {count});"),
                    &[sloc],
                    &[dloc],
                );
                self.vop(w, format!("Exp({dst}, {dst}, {count});"), &[dloc], &[dloc]);
                self.vop(
                    w,
                    format!("Div({dst}, {dst}, {t}, {count});"),
                    &[dloc, &tl],
                    &[dloc],
                );
            }
            UnaryOp::Erf => return Err(internal("erf reached the Ascend unary lowering")),
        }
        Ok(())
    }

    /// `pow(a, b) = Exp(b * Ln(a))` on float tiles (NaN for a < 0, as the reference; the
    /// relative error is about |b ln a| times Ln's relative error plus Exp's). The chain
    /// runs in a scratch tile so that the destination may share a slot with an operand.
    fn emit_pow(
        &mut self,
        w: &mut Writer,
        r: ValueId,
        a: ValueId,
        b: ValueId,
        at: bool,
        bt: bool,
    ) -> R<()> {
        let dtype = self.ty(r)?.dtype();
        if dtype != DType::F32 {
            return Err(self.unsupported(format!("pow on {dtype} tiles")));
        }
        w.comment(format!("{r} = pow {a}, {b} = exp({b} * ln({a}))"));
        let (_, bytes) = self.tile_extent(self.ty(r)?.shape().unwrap_or(&[]), 4);
        let (slot, t) = self.scratch(w, "float", bytes, &format!("{r} pow"));
        let tl = Loc::Slot(slot);
        let d = self.def_tile(w, r)?;
        let n = d.count;
        if at {
            let x = self.tile(a)?;
            self.vop(w, format!("Ln({t}, {}, {n});", x.var), &[&x.loc], &[&tl]);
        } else {
            let s = format!("static_cast<float>({})", self.scalar(a)?);
            self.vop(w, format!("Duplicate({t}, {s}, {n});"), &[], &[&tl]);
            self.vop(w, format!("Ln({t}, {t}, {n});"), &[&tl], &[&tl]);
        }
        if bt {
            let y = self.tile(b)?;
            self.vop(
                w,
                format!("Mul({t}, {t}, {}, {n});", y.var),
                &[&tl, &y.loc],
                &[&tl],
            );
        } else {
            let s = format!("static_cast<float>({})", self.scalar(b)?);
            self.vop(w, format!("Muls({t}, {t}, {s}, {n});"), &[&tl], &[&tl]);
        }
        self.vop(w, format!("Exp({}, {t}, {n});", d.var), &[&tl], &[&d.loc]);
        self.free_slot(slot);
        Ok(())
    }

    fn emit_binary(
        &mut self,
        w: &mut Writer,
        r: ValueId,
        op: BinaryOp,
        a: ValueId,
        b: ValueId,
    ) -> R<()> {
        let dtype = self.ty(r)?.dtype();
        let ctype = cpp::compute_type(dtype);
        let (at, bt) = (self.is_tile(a)?, self.is_tile(b)?);
        if !at && !bt {
            let (x, y) = (self.scalar(a)?, self.scalar(b)?);
            let expr = match op {
                BinaryOp::Add => format!("{x} + {y}"),
                BinaryOp::Sub => format!("{x} - {y}"),
                BinaryOp::Mul => format!("{x} * {y}"),
                BinaryOp::Div => format!("{x} / {y}"),
                // NaN-propagating max, like the reference semantics.
                BinaryOp::Max if dtype.is_float() => {
                    format!("(({x}) > ({y}) || ({x}) != ({x}) ? ({x}) : ({y}))")
                }
                BinaryOp::Max => format!("(({x}) > ({y}) ? ({x}) : ({y}))"),
                BinaryOp::Min if dtype.is_float() => {
                    format!("(({x}) < ({y}) || ({x}) != ({x}) ? ({x}) : ({y}))")
                }
                BinaryOp::Min => format!("(({x}) < ({y}) ? ({x}) : ({y}))"),
                BinaryOp::Pow => {
                    return Err(self.unsupported("pow of scalars on the Ascend scalar unit"))
                }
            };
            self.def_scalar(w, r, ctype, expr, op.name());
            return Ok(());
        }
        if matches!(dtype, DType::U32 | DType::Bool) {
            return Err(self.unsupported(format!("{} on {dtype} tiles", op.name())));
        }
        if dtype == DType::I32 && op == BinaryOp::Div {
            return Err(self.unsupported(
                "integer division of tiles (the A2 vector unit divides half/float only)",
            ));
        }
        if op == BinaryOp::Pow {
            return self.emit_pow(w, r, a, b, at, bt);
        }
        w.comment(format!("{r} = {} {a}, {b}", op.name()));
        let d = self.def_tile(w, r)?;
        let n = d.count;
        let name = match op {
            BinaryOp::Add => "Add",
            BinaryOp::Sub => "Sub",
            BinaryOp::Mul => "Mul",
            BinaryOp::Div => "Div",
            BinaryOp::Max => "Max",
            BinaryOp::Min => "Min",
            BinaryOp::Pow => return Err(internal("pow reached the Ascend vector lowering")),
        };
        // Commutative ops with one scalar operand: one `<Op>s` instruction, whichever side
        // the scalar is on.
        let scalar_form = match op {
            BinaryOp::Add => Some("Adds"),
            BinaryOp::Mul => Some("Muls"),
            BinaryOp::Max => Some("Maxs"),
            BinaryOp::Min => Some("Mins"),
            _ => None,
        };
        match (at, bt) {
            (true, false) | (false, true) if scalar_form.is_some() => {
                let (tile, scalar) = if at { (a, b) } else { (b, a) };
                let x = self.tile(tile)?;
                let s = format!("static_cast<{ctype}>({})", self.scalar(scalar)?);
                let f = scalar_form.unwrap_or_default();
                self.vop(
                    w,
                    format!("{f}({}, {}, {s}, {n});", d.var, x.var),
                    &[&x.loc],
                    &[&d.loc],
                );
            }
            (true, true) => {
                let (x, y) = (self.tile(a)?, self.tile(b)?);
                self.vop(
                    w,
                    format!("{name}({}, {}, {}, {n});", d.var, x.var, y.var),
                    &[&x.loc, &y.loc],
                    &[&d.loc],
                );
            }
            (true, false) => {
                let x = self.tile(a)?;
                let s = format!("static_cast<{ctype}>({})", self.scalar(b)?);
                match op {
                    BinaryOp::Add | BinaryOp::Mul | BinaryOp::Max | BinaryOp::Min => {
                        return Err(internal("commutative scalar forms are handled above"))
                    }
                    BinaryOp::Pow => {
                        return Err(internal("pow reached the Ascend vector lowering"))
                    }
                    BinaryOp::Sub => self.vop(
                        w,
                        format!("Adds({}, {}, -{s}, {n});", d.var, x.var),
                        &[&x.loc],
                        &[&d.loc],
                    ),
                    BinaryOp::Div => {
                        // x / s exactly: broadcast s into a tile, then divide.
                        let (_, bytes) = self.tile_extent(self.ty(r)?.shape().unwrap_or(&[]), 4);
                        let (slot, t) = self.scratch(w, ctype, bytes, &format!("{r} divisor"));
                        let tl = Loc::Slot(slot);
                        self.vop(w, format!("Duplicate({t}, {s}, {n});"), &[], &[&tl]);
                        self.vop(
                            w,
                            format!("Div({}, {}, {t}, {n});", d.var, x.var),
                            &[&x.loc, &tl],
                            &[&d.loc],
                        );
                        self.free_slot(slot);
                    }
                }
            }
            (false, true) => {
                let y = self.tile(b)?;
                let s = format!("static_cast<{ctype}>({})", self.scalar(a)?);
                match op {
                    BinaryOp::Add | BinaryOp::Mul | BinaryOp::Max | BinaryOp::Min => {
                        return Err(internal("commutative scalar forms are handled above"))
                    }
                    BinaryOp::Pow => {
                        return Err(internal("pow reached the Ascend vector lowering"))
                    }
                    BinaryOp::Sub => {
                        // s - y = (-y) + s, exactly.
                        let m1 = if ctype == "float" {
                            "-1.0f"
                        } else {
                            "(int32_t)(-1)"
                        };
                        self.vop(
                            w,
                            format!("Muls({}, {}, {m1}, {n});", d.var, y.var),
                            &[&y.loc],
                            &[&d.loc],
                        );
                        self.vop(
                            w,
                            format!("Adds({0}, {0}, {s}, {n});", d.var),
                            &[&d.loc],
                            &[&d.loc],
                        );
                    }
                    BinaryOp::Div => {
                        let (_, bytes) = self.tile_extent(self.ty(r)?.shape().unwrap_or(&[]), 4);
                        let (slot, t) = self.scratch(w, ctype, bytes, &format!("{r} dividend"));
                        let tl = Loc::Slot(slot);
                        self.vop(w, format!("Duplicate({t}, {s}, {n});"), &[], &[&tl]);
                        self.vop(
                            w,
                            format!("Div({}, {t}, {}, {n});", d.var, y.var),
                            &[&tl, &y.loc],
                            &[&d.loc],
                        );
                        self.free_slot(slot);
                    }
                }
            }
            (false, false) => unreachable!("handled above"),
        }
        Ok(())
    }

    fn emit_cast(&mut self, w: &mut Writer, r: ValueId, x: ValueId, to: DType) -> R<()> {
        let from = self.ty(x)?.dtype();
        if !self.is_tile(x)? {
            let xs = self.scalar(x)?;
            let expr = match (from.is_float(), to) {
                (_, DType::F32) => format!("static_cast<float>({xs})"),
                (_, DType::F16) => {
                    format!("static_cast<float>(static_cast<half>(static_cast<float>({xs})))")
                }
                (_, DType::BF16) => {
                    format!("static_cast<float>(static_cast<bfloat16_t>(static_cast<float>({xs})))")
                }
                (_, DType::I32) => format!("static_cast<int32_t>({xs})"),
                (_, DType::U32) => format!("static_cast<uint32_t>({xs})"),
                (_, DType::Bool) => format!("static_cast<uint32_t>(({xs}) != 0)"),
            };
            self.def_scalar(w, r, cpp::compute_type(to), expr, &format!("cast to {to}"));
            return Ok(());
        }
        let xt = self.tile(x)?;
        w.comment(format!("{r} = cast {x} to {to}"));
        let d = self.def_tile(w, r)?;
        let n = d.count;
        match (from, to) {
            (f, t) if f.is_float() && t == DType::F32 => {
                self.vop(
                    w,
                    format!("Muls({}, {}, 1.0f, {n}); // copy", d.var, xt.var),
                    &[&xt.loc],
                    &[&d.loc],
                );
            }
            (f, t) if f.is_float() && matches!(t, DType::F16 | DType::BF16) => {
                self.round_through(w, &d, &xt, t)?;
            }
            (f, DType::I32) if f.is_float() => {
                self.vop(
                    w,
                    format!("Cast({}, {}, RoundMode::CAST_TRUNC, {n});", d.var, xt.var),
                    &[&xt.loc],
                    &[&d.loc],
                );
            }
            (DType::I32, t) if t.is_float() => {
                self.vop(
                    w,
                    format!("Cast({}, {}, RoundMode::CAST_NONE, {n});", d.var, xt.var),
                    &[&xt.loc],
                    &[&d.loc],
                );
                if t != DType::F32 {
                    let dd = d.clone();
                    self.round_through(w, &dd, &dd, t)?;
                }
            }
            (DType::I32, DType::I32) => {
                self.vop(
                    w,
                    format!("Muls({}, {}, (int32_t)1, {n}); // copy", d.var, xt.var),
                    &[&xt.loc],
                    &[&d.loc],
                );
            }
            (f, t) => {
                return Err(self.unsupported(format!("cast of a {f} tile to {t}")));
            }
        }
        Ok(())
    }

    /// `dst = (float)(T)src` for T = f16/bf16: rounds float values to T's precision.
    fn round_through(&mut self, w: &mut Writer, d: &TileVal, x: &TileVal, t: DType) -> R<()> {
        let n = d.count;
        let narrow = cpp::gm_type(t);
        let (slot, tmp) = self.scratch(
            w,
            narrow,
            round_up(n * 2, BLOCK_BYTES),
            &format!("round to {t}"),
        );
        let tl = Loc::Slot(slot);
        self.vop(
            w,
            format!("Cast({tmp}, {}, RoundMode::CAST_RINT, {n});", x.var),
            &[&x.loc],
            &[&tl],
        );
        self.vop(
            w,
            format!("Cast({}, {tmp}, RoundMode::CAST_NONE, {n});", d.var),
            &[&tl],
            &[&d.loc],
        );
        self.free_slot(slot);
        Ok(())
    }

    // ----- iota and expand ------------------------------------------------------------

    /// Copies (or, with `add != 0`, offsets) rows `[0, m)` of a rank-2 tile onto rows
    /// `[m, 2m)`, doubling until `rows` rows are written: `ceil(log2(rows))` count-form
    /// instructions, each `Adds(d[m * pitch], d, m * add, ..)` (rows start block aligned).
    fn double_rows(
        &mut self,
        w: &mut Writer,
        d: &TileVal,
        rows: usize,
        pitch: usize,
        add: i64,
        ctype: &str,
    ) {
        let mut m = 1;
        while m < rows {
            let n = m.min(rows - m);
            let k = if ctype == "float" {
                format!("{}.0f", m as i64 * add)
            } else {
                format!("static_cast<int32_t>({})", m as i64 * add)
            };
            let text = if add == 0 && ctype == "float" {
                format!(
                    "Muls({0}[{1}], {0}, 1.0f, {2}); // rows [{m}, {3}) = rows [0, {n})",
                    d.var,
                    m * pitch,
                    n * pitch,
                    m + n
                )
            } else {
                format!(
                    "Adds({0}[{1}], {0}, {k}, {2}); // rows [{m}, {3}) = rows [0, {n}) + {4}",
                    d.var,
                    m * pitch,
                    n * pitch,
                    m + n,
                    m as i64 * add
                )
            };
            self.vop(w, text, &[&d.loc], &[&d.loc]);
            m *= 2;
        }
    }

    /// `iota`: rank 1 is one `CreateVecIndex`; rank 2 builds row 0 (`CreateVecIndex` of
    /// the column index along axis 1, zeros along axis 0) and doubles the rows (adding the
    /// row offset along axis 0). Padding columns hold garbage-free indices too.
    fn emit_iota(&mut self, w: &mut Writer, r: ValueId, shape: &[usize], axis: usize) -> R<()> {
        w.comment(format!("{r} = iota {shape:?} along axis {axis}"));
        match (shape, axis) {
            ([n], 0) => {
                let d = self.def_tile(w, r)?;
                self.vop(
                    w,
                    format!(
                        "CreateVecIndex({}, static_cast<int32_t>(0), {});",
                        d.var,
                        (*n).max(1)
                    ),
                    &[],
                    &[&d.loc],
                );
            }
            ([rows, cols], 0 | 1) => {
                let (rows, p) = (*rows, self.pitch(*cols));
                let d = self.def_tile(w, r)?;
                if axis == 1 {
                    self.vop(
                        w,
                        format!("CreateVecIndex({}, static_cast<int32_t>(0), {p});", d.var),
                        &[],
                        &[&d.loc],
                    );
                } else {
                    self.vop(
                        w,
                        format!("Duplicate({}, static_cast<int32_t>(0), {p});", d.var),
                        &[],
                        &[&d.loc],
                    );
                }
                let add = if axis == 0 { 1 } else { 0 };
                self.double_rows(w, &d, rows, p, add, "int32_t");
            }
            _ => {
                return Err(self.unsupported(format!("`iota` of shape {shape:?} along axis {axis}")))
            }
        }
        Ok(())
    }

    /// `expand`: `[n] -> [size, n]` copies `x` into row 0 and doubles the rows;
    /// `[n] -> [n, size]` spreads element `i` over row `i` with `Brcb` (8 rows per repeat,
    /// one call per 32-byte column block; the destination holds the rows rounded up to 8).
    fn emit_expand(
        &mut self,
        w: &mut Writer,
        r: ValueId,
        x: ValueId,
        axis: usize,
        size: usize,
    ) -> R<()> {
        if self.is_mask(x)? || !self.is_tile(x)? {
            return Err(self.unsupported("`expand` of a bool tile or a scalar"));
        }
        let xty = self.ty(x)?;
        let ctype = cpp::compute_type(xty.dtype());
        if !matches!(ctype, "float" | "int32_t") {
            return Err(self.unsupported(format!("`expand` of a {} tile", xty.dtype())));
        }
        let n = match xty.shape() {
            Some([n]) => *n,
            s => return Err(self.unsupported(format!("`expand` of a tile of shape {s:?}"))),
        };
        let xt = self.tile(x)?;
        w.comment(format!("{r} = expand {x} along new axis {axis} ({size})"));
        if axis == 0 {
            let p = self.pitch(n);
            let d = self.def_tile(w, r)?;
            let one = if ctype == "float" {
                "1.0f"
            } else {
                "static_cast<int32_t>(1)"
            };
            self.vop(
                w,
                format!("Muls({}, {}, {one}, {p}); // row 0", d.var, xt.var),
                &[&xt.loc],
                &[&d.loc],
            );
            self.double_rows(w, &d, size, p, 0, ctype);
            return Ok(());
        }
        if axis != 1 {
            return Err(self.unsupported(format!("`expand` along axis {axis}")));
        }
        let p = self.pitch(size);
        let rows8 = round_up(n, 8);
        let (count, bytes) = self.tile_extent(&[n, size], 4);
        let bytes = bytes.max(rows8 * p * 4);
        let s = self.alloc_slot(bytes, r.to_string());
        let var = format!("v{}", r.0);
        w.line(format!(
            "LocalTensor<{ctype}> {var} = {}.Get<{ctype}>(); // rows rounded up to 8 for Brcb",
            self.slots[s].name
        ));
        let d = TileVal {
            loc: Loc::Slot(s),
            var,
            count,
        };
        self.tiles.insert(r, d.clone());
        let blocks = p / 8;
        // Brcb repeats are a uint8_t: at most 255 groups of 8 rows per call.
        let mut text = String::new();
        let mut r0 = 0;
        while r0 < rows8 {
            let reps = ((rows8 - r0) / 8).min(255);
            text.push_str(&format!(
                "for (int32_t cb = 0; cb < {blocks}; ++cb) {{ Brcb({}[{} + cb * 8], {}[{r0}], {reps}, BrcbRepeatParams({blocks}, {p})); }} ",
                d.var,
                r0 * p,
                xt.var
            ));
            r0 += reps * 8;
        }
        self.vop(w, text.trim_end().to_string(), &[&xt.loc], &[&d.loc]);
        Ok(())
    }

    // ----- bool tiles: bit masks ----------------------------------------------------

    /// True when `v` is a bool tile (a bit mask in UB).
    fn is_mask(&self, v: ValueId) -> R<bool> {
        Ok(matches!(self.ty(v)?, Ty::Tile(_, DType::Bool)))
    }

    /// A new bit-mask tile for `r`: bit `i % 8` of byte `i / 8` is element `i` of the
    /// tile's count-form layout (rank 2: `row * pitch + col`), the layout `Compare`
    /// writes and `Select` reads. The mask covers the count rounded up to 64 elements.
    fn def_mask(&mut self, w: &mut Writer, r: ValueId) -> R<TileVal> {
        let ty = self.ty(r)?;
        let (count, _) = self.tile_extent(ty.shape().unwrap_or(&[]), 4);
        let s = self.alloc_slot(mask_bytes(count), format!("{r} (bit mask)"));
        let var = format!("v{}", r.0);
        w.line(format!(
            "LocalTensor<uint8_t> {var} = {}.Get<uint8_t>(); // bit mask",
            self.slots[s].name
        ));
        let tv = TileVal {
            loc: Loc::Slot(s),
            var,
            count,
        };
        self.tiles.insert(r, tv.clone());
        Ok(tv)
    }

    /// Turns the 32-bit words just loaded for bool tile `r` (0 = false, else true) into a
    /// bit mask: int32 -> float (exactly 0 only for 0), then `CompareScalar(.., NE, 0)`.
    fn words_to_mask(&mut self, w: &mut Writer, r: ValueId) -> R<()> {
        let t = self.tile(r)?;
        self.tiles.remove(&r);
        let (_, bytes) = self.tile_extent(self.ty(r)?.shape().unwrap_or(&[]), 4);
        let n64 = round_up(t.count.max(1), COMPARE_GRANULE);
        w.comment(format!("{r}: bool words -> bit mask"));
        let (fs, f) = self.scratch(w, "float", bytes, &format!("{r} bool words as float"));
        let fl = Loc::Slot(fs);
        self.vop(
            w,
            format!(
                "Cast({f}, {}.ReinterpretCast<int32_t>(), RoundMode::CAST_NONE, {n64});",
                t.var
            ),
            &[&t.loc],
            &[&fl],
        );
        match t.loc {
            Loc::InQ(q) => w.line(format!("{}.FreeTensor({});", self.queues[q].name, t.var)),
            Loc::Slot(s) => self.free_slot(s),
            Loc::OutQ(_) | Loc::Fixed(_) => {}
        }
        let d = self.def_mask(w, r)?;
        self.vop(
            w,
            format!("CompareScalar({}, {f}, 0.0f, CMPMODE::NE, {n64});", d.var),
            &[&fl],
            &[&d.loc],
        );
        self.free_slot(fs);
        Ok(())
    }

    /// Materialises operand `v` (tile or scalar, compute type `ctype`) as a tile of
    /// `count` elements: a tile is used as is, a scalar is broadcast into a scratch slot
    /// (returned for freeing).
    fn tile_operand(
        &mut self,
        w: &mut Writer,
        v: ValueId,
        ctype: &str,
        shape: &[usize],
        count: usize,
        what: &str,
    ) -> R<(String, Loc, Option<usize>)> {
        if self.is_tile(v)? {
            let t = self.tile(v)?;
            return Ok((t.var, t.loc, None));
        }
        let s = self.scalar(v)?;
        let (_, bytes) = self.tile_extent(shape, 4);
        let (slot, var) = self.scratch(w, ctype, bytes, what);
        let loc = Loc::Slot(slot);
        self.vop(
            w,
            format!("Duplicate({var}, static_cast<{ctype}>({s}), {count});"),
            &[],
            &[&loc],
        );
        Ok((var, loc, Some(slot)))
    }

    /// `a op b` into a bit mask (tiles) or a `uint32_t` 0/1 (scalars). Float operands:
    /// one `Compare` (two tiles) or `CompareScalar` (a scalar on either side, mirrored),
    /// over the count rounded up to 64 (the padding bits are never read). i32 operands:
    /// `EQ` is native; the orderings, which A2 compares only on half/float, go through an
    /// exact float key with the sign of `a - b`: `fa - fb` where the rounded operands
    /// differ (rounding is monotone and the difference of distinct floats is non-zero),
    /// else the int32 difference (then |a - b| < 256, no overflow, exact in float).
    fn emit_compare(
        &mut self,
        w: &mut Writer,
        r: ValueId,
        op: CompareOp,
        a: ValueId,
        b: ValueId,
    ) -> R<()> {
        let dtype = self.ty(a)?.dtype();
        let (at, bt) = (self.is_tile(a)?, self.is_tile(b)?);
        if !at && !bt {
            let (x, y) = (self.scalar(a)?, self.scalar(b)?);
            self.def_scalar(
                w,
                r,
                "uint32_t",
                format!("static_cast<uint32_t>(({x}) {} ({y}))", cmp_sym(op)),
                op.name(),
            );
            return Ok(());
        }
        let ctype = match dtype {
            d if d.is_float() => "float",
            DType::I32 => "int32_t",
            d => {
                return Err(self.unsupported(format!("the `{}` comparison of {d} tiles", op.name())))
            }
        };
        // The tile on the left.
        let (x, y, op) = if at { (a, b, op) } else { (b, a, mirror(op)) };
        let xt = self.tile(x)?;
        let shape = self.ty(r)?.shape().unwrap_or(&[]).to_vec();
        let n64 = round_up(xt.count.max(1), COMPARE_GRANULE);
        let mode = cmp_mode(op);
        w.comment(format!("{r} = {} {a}, {b} (bit mask)", op.name()));
        if ctype == "float" || op == CompareOp::Eq {
            let yt = if self.is_tile(y)? {
                Some(self.tile(y)?)
            } else {
                None
            };
            let d = self.def_mask(w, r)?;
            match yt {
                Some(yt) => self.vop(
                    w,
                    format!("Compare({}, {}, {}, {mode}, {n64});", d.var, xt.var, yt.var),
                    &[&xt.loc, &yt.loc],
                    &[&d.loc],
                ),
                None => {
                    let s = self.scalar(y)?;
                    self.vop(
                        w,
                        format!(
                            "CompareScalar({}, {}, static_cast<{ctype}>({s}), {mode}, {n64});",
                            d.var, xt.var
                        ),
                        &[&xt.loc],
                        &[&d.loc],
                    );
                }
            }
            return Ok(());
        }
        // i32 ordering through an exact float key.
        w.comment("i32 ordering: key = fa != fb ? fa - fb : float(a - b), compared with 0");
        let (yv, yl, yslot) =
            self.tile_operand(w, y, "int32_t", &shape, n64, "i32 compare operand")?;
        let (_, bytes) = self.tile_extent(&shape, 4);
        let (k1, t1) = self.scratch(w, "float", bytes, &format!("{r} key"));
        let (k2, t2) = self.scratch(w, "float", bytes, &format!("{r} int difference"));
        let (km, me) = self.scratch(w, "uint8_t", mask_bytes(n64), &format!("{r} fa == fb"));
        let (l1, l2, lm) = (Loc::Slot(k1), Loc::Slot(k2), Loc::Slot(km));
        self.vop(
            w,
            format!("Cast({t1}, {}, RoundMode::CAST_RINT, {n64});", xt.var),
            &[&xt.loc],
            &[&l1],
        );
        self.vop(
            w,
            format!("Cast({t2}, {yv}, RoundMode::CAST_RINT, {n64});"),
            &[&yl],
            &[&l2],
        );
        self.vop(
            w,
            format!("Compare({me}, {t1}, {t2}, CMPMODE::EQ, {n64});"),
            &[&l1, &l2],
            &[&lm],
        );
        self.vop(
            w,
            format!("Sub({t1}, {t1}, {t2}, {n64});"),
            &[&l1, &l2],
            &[&l1],
        );
        self.vop(
            w,
            format!(
                "Sub({t2}.ReinterpretCast<int32_t>(), {}, {yv}, {n64});",
                xt.var
            ),
            &[&xt.loc, &yl],
            &[&l2],
        );
        self.vop(
            w,
            format!("Cast({t2}, {t2}.ReinterpretCast<int32_t>(), RoundMode::CAST_NONE, {n64});"),
            &[&l2],
            &[&l2],
        );
        self.vop(
            w,
            format!("Select({t1}, {me}, {t2}, {t1}, SELMODE::VSEL_TENSOR_TENSOR_MODE, {n64});"),
            &[&lm, &l1, &l2],
            &[&l1],
        );
        let d = self.def_mask(w, r)?;
        self.vop(
            w,
            format!("CompareScalar({}, {t1}, 0.0f, {mode}, {n64});", d.var),
            &[&l1],
            &[&d.loc],
        );
        for s in [Some(k1), Some(k2), Some(km), yslot].into_iter().flatten() {
            self.free_slot(s);
        }
        Ok(())
    }

    /// `cond ? a : b`. A bit-mask `cond`: one `Select` (`VSEL_TENSOR_TENSOR_MODE`, or
    /// `VSEL_TENSOR_SCALAR_MODE` for a scalar `b`); a scalar `a` is broadcast first. Select
    /// moves half/float only: i32 tiles are selected as the same bits seen as float. A
    /// scalar `cond` picks one of the two copies at run time.
    fn emit_select(
        &mut self,
        w: &mut Writer,
        r: ValueId,
        cond: ValueId,
        a: ValueId,
        b: ValueId,
    ) -> R<()> {
        let dtype = self.ty(r)?.dtype();
        let (ct, at, bt) = (self.is_tile(cond)?, self.is_tile(a)?, self.is_tile(b)?);
        let ctype = cpp::compute_type(dtype);
        if !ct && !at && !bt {
            let (c, x, y) = (self.scalar(cond)?, self.scalar(a)?, self.scalar(b)?);
            self.def_scalar(
                w,
                r,
                ctype,
                format!("({c}) != 0 ? static_cast<{ctype}>({x}) : static_cast<{ctype}>({y})"),
                "select",
            );
            return Ok(());
        }
        if !matches!(ctype, "float" | "int32_t") {
            return Err(self.unsupported(format!("`select` of {dtype} tiles")));
        }
        let shape = self.ty(r)?.shape().unwrap_or(&[]).to_vec();
        w.comment(format!("{r} = select {cond}, {a}, {b}"));
        if !ct {
            // Scalar condition: copy one side.
            let c = self.scalar(cond)?;
            let d = self.def_tile(w, r)?;
            let n = d.count;
            let one = if ctype == "float" {
                "1.0f"
            } else {
                "(int32_t)1"
            };
            w.open(format!("if (({c}) != 0)"));
            for (i, v) in [a, b].into_iter().enumerate() {
                if i == 1 {
                    w.close();
                    w.open("else");
                }
                w.line("PipeBarrier<PIPE_V>();");
                if self.is_tile(v)? {
                    let t = self.tile(v)?;
                    w.line(format!("Muls({}, {}, {one}, {n}); // copy", d.var, t.var));
                } else {
                    let s = self.scalar(v)?;
                    w.line(format!(
                        "Duplicate({}, static_cast<{ctype}>({s}), {n});",
                        d.var
                    ));
                }
            }
            w.close();
            self.haz_unknown();
            return Ok(());
        }
        let m = self.tile(cond)?;
        let count = m.count;
        let (av, al, aslot) = self.tile_operand(w, a, ctype, &shape, count, "select operand")?;
        let (bscalar, bv, bl, bslot) = if ctype == "float" && !bt {
            (Some(self.scalar(b)?), String::new(), None, None)
        } else {
            let (v, l, s) = self.tile_operand(w, b, ctype, &shape, count, "select operand")?;
            (None, v, Some(l), s)
        };
        let d = self.def_tile(w, r)?;
        let as_f = |v: &str| {
            if ctype == "float" {
                v.to_string()
            } else {
                format!("{v}.ReinterpretCast<float>()")
            }
        };
        match (bscalar, bl) {
            (Some(s), _) => self.vop(
                w,
                format!(
                    "Select({}, {}, {av}, static_cast<float>({s}), SELMODE::VSEL_TENSOR_SCALAR_MODE, {count});",
                    d.var, m.var
                ),
                &[&m.loc, &al],
                &[&d.loc],
            ),
            (None, Some(bl)) => self.vop(
                w,
                format!(
                    "Select({}, {}, {}, {}, SELMODE::VSEL_TENSOR_TENSOR_MODE, {count});",
                    as_f(&d.var),
                    m.var,
                    as_f(&av),
                    as_f(&bv)
                ),
                &[&m.loc, &al, &bl],
                &[&d.loc],
            ),
            (None, None) => return Err(internal("select without a second operand")),
        }
        for s in [aslot, bslot].into_iter().flatten() {
            self.free_slot(s);
        }
        Ok(())
    }

    /// Converts bit mask `m` into the VECOUT tensor `ot` of a `dtype` buffer: 1 / 0 as
    /// float (`Select` against a tile of ones and the scalar 0), then cast (0/1 words for
    /// bool / u32 buffers, as the SIMT targets store them).
    fn mask_to_out(
        &mut self,
        w: &mut Writer,
        m: &TileVal,
        shape: &[usize],
        ot: &str,
        ol: &Loc,
        dtype: DType,
    ) -> R<()> {
        let count = m.count;
        let (_, bytes) = self.tile_extent(shape, 4);
        let (fs, f) = self.scratch(w, "float", bytes, "bool as 0/1");
        let fl = Loc::Slot(fs);
        self.vop(w, format!("Duplicate({f}, 1.0f, {count});"), &[], &[&fl]);
        self.vop(
            w,
            format!(
                "Select({f}, {}, {f}, 0.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, {count});",
                m.var
            ),
            &[&m.loc, &fl],
            &[&fl],
        );
        let text = match dtype {
            DType::Bool | DType::U32 => {
                format!(
                    "Cast({ot}.ReinterpretCast<int32_t>(), {f}, RoundMode::CAST_RINT, {count});"
                )
            }
            DType::I32 | DType::F16 | DType::BF16 => {
                format!("Cast({ot}, {f}, RoundMode::CAST_RINT, {count});")
            }
            DType::F32 => format!("Muls({ot}, {f}, 1.0f, {count}); // copy"),
        };
        self.vop(w, text, &[&fl], &[ol]);
        self.free_slot(fs);
        Ok(())
    }

    // ----- reductions ---------------------------------------------------------------

    fn emit_reduce(
        &mut self,
        w: &mut Writer,
        r: ValueId,
        op: ReduceOp,
        x: ValueId,
        axis: usize,
    ) -> R<()> {
        let xt = self.tile(x)?;
        let xty = self.ty(x)?;
        let dtype = xty.dtype();
        if !dtype.is_float() {
            return Err(self.unsupported(format!(
                "reduction of a {dtype} tile (the vector unit reduces half/float only)"
            )));
        }
        let shape = xty.shape().unwrap_or(&[]).to_vec();
        let (fname, wname) = match op {
            ReduceOp::Sum => ("ReduceSum", "WholeReduceSum"),
            ReduceOp::Max => ("ReduceMax", "WholeReduceMax"),
            ReduceOp::Mean => {
                return Err(self.unsupported("`mean` as a tile reduce (expected sum, then a scale)"))
            }
        };
        match (shape.as_slice(), axis) {
            ([n], 0) => {
                let n = *n;
                // Work area: 2 x (first-round repeats) elements, block aligned (the
                // documented minimum for ReduceMax; ReduceSum needs no more).
                let repeats = n.div_ceil(64).max(1);
                let work = round_up(2 * repeats, 8) * 4;
                self.reduce_bytes = self.reduce_bytes.max(BLOCK_BYTES + work);
                let rl = Loc::Fixed("reduce_buf");
                w.comment(format!("{r} = {} {x} (whole tile -> scalar)", op.name()));
                let red = format!("red{}", r.0);
                w.line(format!(
                    "LocalTensor<float> {red} = reduce_buf.Get<float>(); LocalTensor<float> {red}_work = reduce_buf.Get<float>()[8];"
                ));
                self.vop(
                    w,
                    format!("{fname}<float>({red}, {}, {red}_work, {n});", xt.var),
                    &[&xt.loc],
                    &[&rl],
                );
                self.v_to_s(w);
                let name = format!("s{}", r.0);
                w.line(format!("const float {name} = {red}.GetValue(0);"));
                self.scalars.insert(r, name);
            }
            ([rows, cols], 0) => {
                let (rows, p) = (*rows, self.pitch(*cols));
                let d = self.def_tile(w, r)?;
                w.comment(format!(
                    "{r} = {} {x} over rows (fold the rows pairwise into one)",
                    op.name()
                ));
                let f = if op == ReduceOp::Sum { "Add" } else { "Max" };
                if rows == 1 {
                    self.vop(
                        w,
                        format!("Muls({}, {}, 1.0f, {p}); // copy", d.var, xt.var),
                        &[&xt.loc],
                        &[&d.loc],
                    );
                } else {
                    self.vop(
                        w,
                        format!("{f}({}, {}, {}[{p}], {p});", d.var, xt.var, xt.var),
                        &[&xt.loc],
                        &[&d.loc],
                    );
                    if rows > 2 {
                        w.open(format!("for (int32_t row = 2; row < {rows}; ++row)"));
                        w.line("PipeBarrier<PIPE_V>();");
                        w.line(format!(
                            "{f}({0}, {0}, {1}[row * {p}], {p});",
                            d.var, xt.var
                        ));
                        w.close();
                        self.haz_unknown();
                    }
                }
            }
            ([rows, cols], 1) => {
                let (rows, cols, p) = (*rows, *cols, self.pitch(*cols));
                if p / 8 > 255 {
                    return Err(self.unsupported(format!(
                        "row reduction of rows wider than 2040 elements ({cols})"
                    )));
                }
                let d = self.def_tile(w, r)?;
                w.comment(format!(
                    "{r} = {} {x} within each row: one repeat per row, 64 columns at a time",
                    op.name()
                ));
                let (_, bytes) = self.tile_extent(&[rows], 4);
                let (slot, part) = self.scratch(w, "float", bytes, &format!("{r} partial"));
                let pl = Loc::Slot(slot);
                let order = if op == ReduceOp::Max {
                    ", ReduceOrder::ORDER_ONLY_VALUE"
                } else {
                    ""
                };
                let f = if op == ReduceOp::Sum { "Add" } else { "Max" };
                let mut c0 = 0;
                while c0 < cols {
                    let cnt = (cols - c0).min(64);
                    let mut r0 = 0;
                    while r0 < rows {
                        let rn = (rows - r0).min(248);
                        let dst = if c0 == 0 { &d.var } else { &part };
                        let dl = if c0 == 0 { d.loc.clone() } else { pl.clone() };
                        self.vop(
                            w,
                            format!(
                                "{wname}({dst}[{r0}], {}[{}], {cnt}, {rn}, 1, 1, {}{order});",
                                xt.var,
                                r0 * p + c0,
                                p / 8
                            ),
                            &[&xt.loc],
                            &[&dl],
                        );
                        r0 += rn;
                    }
                    if c0 > 0 {
                        self.vop(
                            w,
                            format!("{f}({0}, {0}, {part}, {rows});", d.var),
                            &[&d.loc, &pl],
                            &[&d.loc],
                        );
                    }
                    c0 += cnt;
                }
                self.free_slot(slot);
            }
            _ => {
                return Err(
                    self.unsupported(format!("reduction of a {:?} tile along axis {axis}", shape))
                )
            }
        }
        Ok(())
    }

    // ----- loops ----------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn emit_for(
        &mut self,
        w: &mut Writer,
        inst: &'k Inst,
        start: ValueId,
        end: ValueId,
        step: i64,
        init: &[ValueId],
        body: &'k Block,
    ) -> R<()> {
        if step <= 0 {
            return Err(self.unsupported(format!("a loop with step {step}")));
        }
        if body.args.len() != init.len() + 1 || body.yields.len() != init.len() {
            return Err(internal(format!(
                "kernel `{}`: malformed loop ({} args, {} init, {} yields)",
                self.kname,
                body.args.len(),
                init.len(),
                body.yields.len()
            )));
        }
        // A yield that is another position's carried argument would be overwritten
        // before it is read.
        for (j, y) in body.yields.iter().enumerate() {
            if let Some(p) = body.args.iter().skip(1).position(|a| a == y) {
                if p != j && self.is_tile(*y)? {
                    return Err(self.unsupported("a loop that permutes its carried tiles"));
                }
            }
        }
        for &v in init {
            if self.is_mask(v)? {
                return Err(self.unsupported("a loop carrying a bool tile"));
            }
        }
        let (s, e) = (self.scalar(start)?, self.scalar(end)?);
        let iv = body.args[0];
        let ivn = format!("i{}", iv.0);
        w.comment(format!(
            "{} = for {iv} in [{start}, {end}) step {step}",
            cpp::join(inst.results.iter().map(|v| v.to_string()), ", ")
        ));
        // Carried state.
        let mut carried: Vec<Option<usize>> = Vec::new();
        let mut scalar_vars: Vec<Option<String>> = Vec::new();
        let mut transferred: HashSet<ValueId> = HashSet::new();
        for (j, &iv0) in init.iter().enumerate() {
            let arg = body.args[j + 1];
            if self.is_tile(iv0)? {
                let t = self.tile(iv0)?;
                let last_use_here = self.uses[iv0.index()] == 1;
                let slot = match t.loc {
                    Loc::Slot(s)
                        if last_use_here
                            && !transferred.contains(&iv0)
                            && !self.pinned.contains(&s) =>
                    {
                        // The loop takes over the initial value's slot.
                        transferred.insert(iv0);
                        self.moved.insert(iv0);
                        w.comment(format!("carried {arg} starts in {}'s buffer", iv0));
                        s
                    }
                    _ => {
                        let ty = self.ty(iv0)?;
                        let (count, bytes) = self
                            .tile_extent(ty.shape().unwrap_or(&[]), cpp::compute_size(ty.dtype()));
                        let s = self.alloc_slot(bytes, format!("carried {arg}"));
                        let ctype = cpp::compute_type(ty.dtype());
                        let var = format!("init{}", arg.0);
                        w.line(format!(
                            "LocalTensor<{ctype}> {var} = {}.Get<{ctype}>();",
                            self.slots[s].name
                        ));
                        let one = if ctype == "float" {
                            "1.0f".to_string()
                        } else {
                            format!("({ctype})1")
                        };
                        self.vop(
                            w,
                            format!(
                                "Muls({var}, {}, {one}, {count}); // copy the initial value",
                                t.var
                            ),
                            &[&t.loc],
                            &[&Loc::Slot(s)],
                        );
                        s
                    }
                };
                self.slots[slot].users.push(format!("carried {arg}"));
                carried.push(Some(slot));
                scalar_vars.push(None);
            } else {
                let ty = self.ty(iv0)?;
                let ctype = if ty.dtype() == DType::I32 {
                    "int32_t"
                } else {
                    cpp::compute_type(ty.dtype())
                };
                let var = format!("c{}", arg.0);
                w.line(format!("{ctype} {var} = {};", self.scalar(iv0)?));
                carried.push(None);
                scalar_vars.push(Some(var));
            }
        }
        for s in carried.iter().flatten() {
            self.pinned.insert(*s);
        }
        w.open(format!(
            "for (int32_t {ivn} = {s}; {ivn} < {e}; {ivn} += {step})"
        ));
        self.scalars.insert(iv, ivn.clone());
        for (j, &arg) in body.args.iter().skip(1).enumerate() {
            if let Some(slot) = carried[j] {
                let ty = self.ty(arg)?;
                let ctype = cpp::compute_type(ty.dtype());
                let (count, _) = self.tile_extent(ty.shape().unwrap_or(&[]), 4);
                let var = format!("v{}", arg.0);
                w.line(format!(
                    "LocalTensor<{ctype}> {var} = {}.Get<{ctype}>(); // carried {arg}",
                    self.slots[slot].name
                ));
                self.tiles.insert(
                    arg,
                    TileVal {
                        loc: Loc::Slot(slot),
                        var,
                        count,
                    },
                );
            } else if let Some(var) = &scalar_vars[j] {
                self.scalars.insert(arg, var.clone());
            }
        }
        self.haz_unknown();
        self.emit_block(w, body, &carried)?;
        // Yields.
        let mut scalar_updates = Vec::new();
        for (j, &y) in body.yields.iter().enumerate() {
            if let Some(slot) = carried[j] {
                let yt = self.tile(y)?;
                if yt.loc != Loc::Slot(slot) {
                    let ty = self.ty(y)?;
                    let ctype = cpp::compute_type(ty.dtype());
                    let one = if ctype == "float" {
                        "1.0f".to_string()
                    } else {
                        format!("({ctype})1")
                    };
                    let dst = format!("v{}", body.args[j + 1].0);
                    self.vop(
                        w,
                        format!(
                            "Muls({dst}, {}, {one}, {}); // carry {y} to the next iteration",
                            yt.var, yt.count
                        ),
                        &[&yt.loc],
                        &[&Loc::Slot(slot)],
                    );
                }
                // A yielded value defined in the body is dead after the yield.
                if body.insts.iter().any(|i| i.results.contains(&y)) {
                    self.release(w, y);
                }
            } else if let Some(var) = &scalar_vars[j] {
                scalar_updates.push((var.clone(), self.scalar(y)?));
            }
        }
        if scalar_updates.len() == 1 {
            let (var, val) = &scalar_updates[0];
            if var != val {
                w.line(format!("{var} = {val};"));
            }
        } else if !scalar_updates.is_empty() {
            let tmp: Vec<String> = scalar_updates
                .iter()
                .enumerate()
                .map(|(i, (var, val))| {
                    let t = format!("next{}_{i}", self.fresh);
                    w.line(format!("const auto {t} = {val}; // next {var}"));
                    t
                })
                .collect();
            for ((var, _), t) in scalar_updates.iter().zip(tmp) {
                w.line(format!("{var} = {t};"));
            }
        }
        w.close();
        self.haz_unknown();
        for arg in body.args.iter().skip(1) {
            self.tiles.remove(arg);
        }
        for s in carried.iter().flatten() {
            self.pinned.remove(s);
        }
        // Results.
        for (j, &res) in inst.results.iter().enumerate() {
            if let Some(slot) = carried[j] {
                let ty = self.ty(res)?;
                let ctype = cpp::compute_type(ty.dtype());
                let (count, _) = self.tile_extent(ty.shape().unwrap_or(&[]), 4);
                let var = format!("v{}", res.0);
                w.line(format!(
                    "LocalTensor<{ctype}> {var} = {}.Get<{ctype}>(); // {res}: final carried value",
                    self.slots[slot].name
                ));
                self.tiles.insert(
                    res,
                    TileVal {
                        loc: Loc::Slot(slot),
                        var,
                        count,
                    },
                );
            } else if let Some(var) = &scalar_vars[j] {
                self.scalars.insert(res, var.clone());
            }
        }
        Ok(())
    }

    // ----- loads and stores -----------------------------------------------------------

    fn clamp_expr(&self, limit: &str, extent: usize) -> String {
        format!("({limit} < 0 ? 0 : ({limit} > {extent} ? {extent} : {limit}))")
    }

    fn emit_load(
        &mut self,
        w: &mut Writer,
        inst: &'k Inst,
        r: ValueId,
        a: &BlockAccess,
        other: f64,
    ) -> R<()> {
        let p = self.param(a.buffer)?;
        let gm = self.gm[a.buffer].clone();
        let base = self.scalar(a.base)?;
        let raw = cpp::gm_type(p.dtype);
        let ctype = cpp::compute_type(p.dtype);
        if a.shape.is_empty() {
            let expr = if ctype == raw {
                format!("{gm}.GetValue({base})")
            } else {
                format!("static_cast<float>({gm}.GetValue({base}))")
            };
            self.def_scalar(w, r, ctype, expr, &format!("load {}[{base}]", p.name));
            return Ok(());
        }
        if a.strides.len() != a.shape.len() || a.limits.len() != a.shape.len() || a.shape.len() > 2
        {
            return Err(self.unsupported(format!(
                "a load of rank {} (tiles are rank 1 or 2)",
                a.shape.len()
            )));
        }
        let limits: Vec<String> = a.limits.iter().map(|&l| self.scalar(l)).collect::<R<_>>()?;
        let (rows, cols, s_row, s_col, lim_r, lim_c) = if a.shape.len() == 1 {
            (
                1usize,
                a.shape[0],
                0i64,
                a.strides[0],
                "1".to_string(),
                limits[0].clone(),
            )
        } else {
            (
                a.shape[0],
                a.shape[1],
                a.strides[0],
                a.strides[1],
                limits[0].clone(),
                limits[1].clone(),
            )
        };
        let rank2 = a.shape.len() == 2;
        let p_elems = if rank2 { self.pitch(cols) } else { cols };
        let count = rows * p_elems;
        let esz = p.dtype.size_bytes();
        let other_raw = cpp::lit(other, p.dtype);
        w.comment(format!(
            "{r} = load {}{:?} at {base}, strides {:?}, valid {} (others read {})",
            p.name,
            a.shape,
            a.strides,
            cpp::join(limits.iter().cloned(), " x "),
            other
        ));
        let vr = format!("vr{}", r.0);
        let vc = format!("vc{}", r.0);
        if rank2 {
            w.line(format!(
                "const int32_t {vr} = {};",
                self.clamp_expr(&lim_r, rows)
            ));
        }
        w.line(format!(
            "const int32_t {vc} = {};",
            self.clamp_expr(&lim_c, cols)
        ));
        let vr_e = if rank2 { vr.clone() } else { "1".to_string() };

        if s_col == 0 && rank2 {
            return self.emit_column_broadcast(w, r, a, other, rows, cols, s_row, &vr, &vc);
        }
        if s_col == 0 {
            // Every element reads the same GM element: one scalar, filled with Duplicate.
            let d = self.def_tile(w, r)?;
            let tv = d.var.clone();
            let scalar = format!("{gm}.GetValue({base})");
            let scalar = if ctype == raw {
                scalar
            } else {
                format!("static_cast<float>({scalar})")
            };
            let other_c = cpp::lit(other, p.dtype);
            w.line(format!(
                "const {ctype} b{0} = {vc} > 0 ? {scalar} : static_cast<{ctype}>({other_c});",
                r.0
            ));
            self.vop(
                w,
                format!("Duplicate({tv}, static_cast<{ctype}>({other_c}), {cols});"),
                &[],
                &[&d.loc],
            );
            self.vop(
                w,
                format!("Duplicate({tv}, b{}, {vc});", r.0),
                &[],
                &[&d.loc],
            );
            return Ok(());
        }

        if s_col != 1 {
            if s_col < 0 {
                return Err(self.unsupported(format!("a load with negative stride {s_col}")));
            }
            return self.emit_gather_load(
                w, inst, r, a, other, rows, cols, s_row, s_col, &vr_e, &vc, rank2,
            );
        }

        // Contiguous rows: DataCopyPad moves whole rows into a VECIN tensor.
        let q = *self
            .site_queue
            .get(&(inst as *const Inst))
            .ok_or_else(|| internal("load site without a queue"))?;
        let qn = self.queues[q].name.clone();
        let lt = format!("ld{}", r.0);
        let e_per_block = BLOCK_BYTES / esz;
        w.line(format!(
            "LocalTensor<{raw}> {lt} = {qn}.AllocTensor<{raw}>();"
        ));
        // Pad the partial last block of each row with `other`.
        w.line(format!(
            "const uint8_t pad{0} = static_cast<uint8_t>(({e_per_block} - {vc} % {e_per_block}) % {e_per_block});",
            r.0
        ));
        let pad = format!(
            "DataCopyPadExtParams<{raw}>{{true, 0, pad{}, static_cast<{raw}>({other_raw})}}",
            r.0
        );
        let blocks_per_row = p_elems * esz / BLOCK_BYTES;
        // One DataCopyPad for all rows when consecutive rows do not overlap in GM (row
        // stride >= valid columns; decided at run time when the valid width is dynamic),
        // else one per row.
        let emit_single = |w: &mut Writer| {
            let src_gap = if rank2 {
                format!(
                    "static_cast<uint32_t>(({} - {vc}) * {esz})",
                    cpp::int_lit(s_row)
                )
            } else {
                "0".to_string()
            };
            let dst_gap = if rank2 {
                format!(
                    "static_cast<uint32_t>({blocks_per_row} - ({vc} * {esz} + {}) / {BLOCK_BYTES})",
                    BLOCK_BYTES - 1
                )
            } else {
                "0".to_string()
            };
            w.open(if rank2 {
                format!("if ({vr_e} > 0 && {vc} > 0)")
            } else {
                format!("if ({vc} > 0)")
            });
            w.line(format!(
                "DataCopyPad({lt}, {gm}[{base}], DataCopyExtParams{{static_cast<uint16_t>({vr_e}), static_cast<uint32_t>({vc} * {esz}), {src_gap}, {dst_gap}, 0}}, {pad});"
            ));
            w.close();
        };
        let emit_rows = |w: &mut Writer| {
            w.open(format!(
                "for (int32_t row = 0; row < {vr_e} && {vc} > 0; ++row)"
            ));
            w.line(format!(
                "DataCopyPad({lt}[row * {p_elems}], {gm}[{base} + row * {}], DataCopyExtParams{{1, static_cast<uint32_t>({vc} * {esz}), 0, 0, 0}}, {pad});",
                cpp::int_lit(s_row)
            ));
            w.close();
        };
        match row_copy_mode(rank2, s_row, rows, cols) {
            RowCopy::Single => emit_single(w),
            RowCopy::PerRow => emit_rows(w),
            RowCopy::Runtime => {
                w.open(format!("if ({} >= {vc})", cpp::int_lit(s_row)));
                emit_single(w);
                w.close();
                w.open("else");
                emit_rows(w);
                w.close();
            }
        }
        w.line(format!("{qn}.EnQue({lt});"));
        w.line(format!("{lt} = {qn}.DeQue<{raw}>();"));
        let raw_loc = Loc::InQ(q);
        self.haz_unknown();
        // Fill the masked-off tail with `other` (the padded block is already done).
        let aligned = format!(
            "((({vc}) + {m}) / {e}) * {e}",
            m = e_per_block - 1,
            e = e_per_block
        );
        w.open(if rank2 {
            format!("if ({aligned} < {p_elems} && {vr_e} > 0)")
        } else {
            format!("if ({aligned} < {p_elems})")
        });
        if rank2 {
            w.open(format!("for (int32_t row = 0; row < {vr_e}; ++row)"));
            w.line("PipeBarrier<PIPE_V>();");
            w.line(format!(
                "Duplicate({lt}[row * {p_elems} + {aligned}], static_cast<{raw}>({other_raw}), {p_elems} - {aligned});"
            ));
            w.close();
        } else {
            w.line(format!(
                "Duplicate({lt}[{aligned}], static_cast<{raw}>({other_raw}), {cols} - {aligned});"
            ));
        }
        w.close();
        if rank2 {
            w.open(format!("if ({vr_e} < {rows})"));
            w.line("PipeBarrier<PIPE_V>();");
            w.line(format!(
                "Duplicate({lt}[{vr_e} * {p_elems}], static_cast<{raw}>({other_raw}), ({rows} - {vr_e}) * {p_elems});"
            ));
            w.close();
        }
        if ctype == raw {
            self.tiles.insert(
                r,
                TileVal {
                    loc: raw_loc,
                    var: lt,
                    count,
                },
            );
        } else {
            // f16 / bf16 data are widened to float for the vector math.
            let d = self.def_tile(w, r)?;
            self.vop(
                w,
                format!(
                    "Cast({}, {lt}, RoundMode::CAST_NONE, {count}); // widen {raw} to float",
                    d.var
                ),
                &[&raw_loc],
                &[&d.loc],
            );
            w.line(format!("{qn}.FreeTensor({lt});"));
        }
        Ok(())
    }

    /// A rank-2 load broadcast along the columns (column stride 0): element `(i, j)` is
    /// `x[base + i * s_row]` where `i < vr && j < vc`, else `other`. No scalar work per
    /// row: the column goes GM -> UB with one `DataCopyPad` (contiguous, or one element
    /// per 32-byte block compacted by `WholeReduceSum` when `s_row > 1`), then `Brcb`
    /// writes element `i` into every 32-byte block of row `i` (8 rows per repeat, one call
    /// per column block). Masked-off columns (`vc < cols`, edge tiles only) are refilled
    /// per row with vector instructions. The tile's slot holds the rows rounded up to 8
    /// (Brcb writes whole groups of 8 rows).
    #[allow(clippy::too_many_arguments)]
    fn emit_column_broadcast(
        &mut self,
        w: &mut Writer,
        r: ValueId,
        a: &BlockAccess,
        other: f64,
        rows: usize,
        cols: usize,
        s_row: i64,
        vr: &str,
        vc: &str,
    ) -> R<()> {
        let p = self.param(a.buffer)?;
        let gm = self.gm[a.buffer].clone();
        let base = self.scalar(a.base)?;
        let raw = cpp::gm_type(p.dtype);
        let ctype = cpp::compute_type(p.dtype);
        let esz = p.dtype.size_bytes();
        let csz = cpp::compute_size(p.dtype);
        if csz != 4 || BLOCK_BYTES / csz != 8 {
            return Err(internal("column broadcast of a non-32-bit compute type"));
        }
        let pitch = self.pitch(cols);
        let blocks_per_row = pitch / 8;
        let rows8 = round_up(rows, 8);
        // Column length in UB: whole 32-byte blocks of the raw and the compute type.
        let rows_q = round_up(rows, 16);
        let other_raw = cpp::lit(other, p.dtype);
        let other_c = format!("static_cast<{ctype}>({})", cpp::lit(other, p.dtype));
        if s_row == 0 {
            // Every row reads the same element: one scalar, no per-row work but the
            // masked-off column tail.
            let scalar = format!("{gm}.GetValue({base})");
            let scalar = if ctype == raw {
                scalar
            } else {
                format!("static_cast<float>({scalar})")
            };
            let d = self.def_tile(w, r)?;
            let tv = d.var.clone();
            w.line(format!(
                "const {ctype} b{0} = ({vr} > 0 && {vc} > 0) ? {scalar} : {other_c};",
                r.0
            ));
            self.vop(
                w,
                format!("Duplicate({tv}, b{}, {});", r.0, rows * pitch),
                &[],
                &[&d.loc],
            );
            w.open(format!("if ({vr} < {rows})"));
            w.line("PipeBarrier<PIPE_V>();");
            w.line(format!(
                "Duplicate({tv}[{vr} * {pitch}], {other_c}, ({rows} - {vr}) * {pitch});"
            ));
            w.close();
            w.open(format!("if ({vc} < {cols} && {vr} > 0)"));
            w.line(format!("const int32_t a{} = ({vc} / 8) * 8;", r.0));
            w.open(format!("for (int32_t row = 0; row < {vr}; ++row)"));
            w.line("PipeBarrier<PIPE_V>();");
            w.line(format!(
                "Duplicate({tv}[row * {pitch} + a{0}], {other_c}, {pitch} - a{0});",
                r.0
            ));
            w.open(format!("if ({vc} > a{})", r.0));
            w.line("PipeBarrier<PIPE_V>();");
            w.line(format!(
                "Duplicate({tv}[row * {pitch} + a{0}], b{0}, {vc} - a{0});",
                r.0
            ));
            w.close();
            w.close();
            w.close();
            self.haz_unknown();
            return Ok(());
        }
        if s_row < 0 {
            return Err(
                self.unsupported(format!("a column-broadcast load with row stride {s_row}"))
            );
        }
        let gather = s_row > 1;
        if gather && !matches!(p.dtype, DType::F32 | DType::F16) {
            return Err(self.unsupported(format!(
                "a column-broadcast load of {} data with row stride {s_row} (compaction needs float/half)",
                p.dtype
            )));
        }
        // 1. The column, GM -> UB (raw type).
        let stage_bytes = if gather {
            rows * BLOCK_BYTES
        } else {
            rows_q * esz
        };
        let q = self.add_queue(
            "VECIN",
            stage_bytes,
            format!(
                "{r} = column of {} (broadcast along the tile's rows)",
                p.name
            ),
        );
        let qn = self.queues[q].name.clone();
        let qloc = Loc::InQ(q);
        let st = format!("cb{}", r.0);
        w.line(format!(
            "LocalTensor<{raw}> {st} = {qn}.AllocTensor<{raw}>();"
        ));
        let epb = BLOCK_BYTES / esz;
        let mut scratch_slots = Vec::new();
        // The compacted column in the raw type (the staging tensor itself when contiguous).
        let (col_raw, col_raw_loc) = if gather {
            w.open(format!("if ({vr} > 0)"));
            w.line(format!(
                "DataCopyPad({st}, {gm}[{base}], DataCopyExtParams{{static_cast<uint16_t>({vr}), {esz}, {}, 0, 0}}, DataCopyPadExtParams<{raw}>{{true, 0, {}, static_cast<{raw}>(-0.0f)}});",
                (s_row as usize - 1) * esz,
                epb - 1
            ));
            w.close();
            w.line(format!("{qn}.EnQue({st});"));
            w.line(format!("{st} = {qn}.DeQue<{raw}>();"));
            self.haz_unknown();
            let (s, var) = self.scratch(w, raw, rows_q * esz, &format!("{r} column"));
            scratch_slots.push(s);
            let loc = Loc::Slot(s);
            self.vop(
                w,
                format!("Duplicate({var}, static_cast<{raw}>({other_raw}), {rows_q});"),
                &[],
                &[&loc],
            );
            w.comment(
                "one element per 32-byte block (padded with -0.0), compacted by WholeReduceSum",
            );
            w.open(format!("for (int32_t c0 = 0; c0 < {vr}; c0 += 240)"));
            w.line("PipeBarrier<PIPE_V>();");
            w.line(format!(
                "WholeReduceSum({var}[c0], {st}[c0 * {epb}], {epb}, ({vr} - c0) < 240 ? ({vr} - c0) : 240, 1, 1, 1);"
            ));
            w.close();
            self.haz_unknown();
            (var, loc)
        } else {
            w.line(format!(
                "const uint8_t pad{0} = static_cast<uint8_t>(({epb} - {vr} % {epb}) % {epb});",
                r.0
            ));
            w.open(format!("if ({vr} > 0)"));
            w.line(format!(
                "DataCopyPad({st}, {gm}[{base}], DataCopyExtParams{{1, static_cast<uint32_t>({vr} * {esz}), 0, 0, 0}}, DataCopyPadExtParams<{raw}>{{true, 0, pad{}, static_cast<{raw}>({other_raw})}});",
                r.0
            ));
            w.close();
            w.line(format!("{qn}.EnQue({st});"));
            w.line(format!("{st} = {qn}.DeQue<{raw}>();"));
            self.haz_unknown();
            w.line(format!(
                "const int32_t ca{0} = (({vr} + {m}) / {epb}) * {epb};",
                r.0,
                m = epb - 1
            ));
            w.open(format!("if (ca{} < {rows_q})", r.0));
            w.line("PipeBarrier<PIPE_V>();");
            w.line(format!(
                "Duplicate({st}[ca{0}], static_cast<{raw}>({other_raw}), {rows_q} - ca{0});",
                r.0
            ));
            w.close();
            (st.clone(), qloc.clone())
        };
        // 2. The column in the compute type.
        let (col, col_loc) = if ctype == raw {
            (col_raw, col_raw_loc)
        } else {
            let (s, var) = self.scratch(w, ctype, rows_q * csz, &format!("{r} column, widened"));
            scratch_slots.push(s);
            let loc = Loc::Slot(s);
            self.vop(
                w,
                format!(
                    "Cast({var}, {col_raw}, RoundMode::CAST_NONE, {rows_q}); // widen {raw} to float"
                ),
                &[&col_raw_loc],
                &[&loc],
            );
            (var, loc)
        };
        // 3. The tile: element i of the column into every 32-byte block of row i.
        let slot = self.alloc_slot(rows8 * pitch * csz, r.to_string());
        let tv = format!("v{}", r.0);
        w.line(format!(
            "LocalTensor<{ctype}> {tv} = {}.Get<{ctype}>(); // {rows} rows (+ {} for Brcb's groups of 8) x {pitch}",
            self.slots[slot].name,
            rows8 - rows
        ));
        let tloc = Loc::Slot(slot);
        let _ = col_loc; // the loop below starts every Brcb with a barrier
                         // `dst[dst_off + ...] <- Brcb(col)`; Brcb takes at most 255 repeats (2040 rows)
                         // per call. `row_elems`: elements of `dst` per row.
        let brcb = |w: &mut Writer,
                    dst: &str,
                    dst_off: &str,
                    dst_blk: usize,
                    dst_rep: usize,
                    row_elems: usize| {
            let groups = rows8 / 8;
            let mut g0 = 0;
            while g0 < groups {
                let n = (groups - g0).min(255);
                let d_off = g0 * 8 * row_elems;
                let dst_at = match (dst_off, d_off) {
                    ("", 0) => dst.to_string(),
                    ("", o) => format!("{dst}[{o}]"),
                    (e, 0) => format!("{dst}[{e}]"),
                    (e, o) => format!("{dst}[{e} + {o}]"),
                };
                let src_at = if g0 == 0 {
                    col.clone()
                } else {
                    format!("{col}[{}]", g0 * 8)
                };
                w.line(format!(
                    "Brcb({dst_at}, {src_at}, {n}, BrcbRepeatParams({dst_blk}, {dst_rep}));"
                ));
                g0 += n;
            }
        };
        w.open(format!("for (int32_t j = 0; j < {blocks_per_row}; ++j)"));
        w.line("PipeBarrier<PIPE_V>();");
        brcb(w, &tv, "j * 8", blocks_per_row, pitch, pitch);
        w.close();
        // 4. Masked-off columns (edge tiles): `other` from column vc on.
        w.open(format!("if ({vc} < {cols})"));
        let (bs, blk) = self.scratch(w, ctype, rows8 * BLOCK_BYTES, &format!("{r} row blocks"));
        scratch_slots.push(bs);
        w.line("PipeBarrier<PIPE_V>();");
        w.comment("blk[8 i .. 8 i + 8) = column[i]");
        brcb(w, &blk, "", 1, 8, 8);
        w.line(format!("const int32_t a{} = ({vc} / 8) * 8;", r.0));
        let (mt, mv, mb) = if ctype == "uint32_t" {
            // Muls has no uint32 form: copy the bits as int32 (x * 1 is exact).
            w.line(format!(
                "LocalTensor<int32_t> {tv}_i = {tv}.ReinterpretCast<int32_t>();"
            ));
            w.line(format!(
                "LocalTensor<int32_t> {blk}_i = {blk}.ReinterpretCast<int32_t>();"
            ));
            ("int32_t", format!("{tv}_i"), format!("{blk}_i"))
        } else {
            (ctype, tv.clone(), blk.clone())
        };
        let one = if mt == "float" { "1.0f" } else { "1" };
        w.open(format!("for (int32_t row = 0; row < {rows}; ++row)"));
        w.line("PipeBarrier<PIPE_V>();");
        w.line(format!(
            "Duplicate({tv}[row * {pitch} + a{0}], {other_c}, {pitch} - a{0});",
            r.0
        ));
        w.open(format!("if ({vc} > a{})", r.0));
        w.line("PipeBarrier<PIPE_V>();");
        w.line(format!(
            "Muls({mv}[row * {pitch} + a{0}], {mb}[row * 8], static_cast<{mt}>({one}), {vc} - a{0}); // copy the valid part of the partial block",
            r.0
        ));
        w.close();
        w.close();
        w.close();
        self.haz_unknown();
        w.line(format!("{qn}.FreeTensor({st});"));
        for s in scratch_slots {
            self.free_slot(s);
        }
        self.tiles.insert(
            r,
            TileVal {
                loc: tloc,
                var: tv,
                count: rows * pitch,
            },
        );
        Ok(())
    }

    /// [`Self::emit_gather_load`] for bf16 data, which the vector unit cannot add: each
    /// element is copied into its own 32-byte block (padded with -0.0), the blocks of a
    /// row are widened to float (`Cast`, exact: 16 floats = two blocks per element), and
    /// `WholeReduceSum` over the 16 floats of each element compacts them straight into the
    /// float tile (x + -0.0 + ... = x exactly).
    #[allow(clippy::too_many_arguments)]
    fn emit_gather_load_bf16(
        &mut self,
        w: &mut Writer,
        inst: &'k Inst,
        r: ValueId,
        a: &BlockAccess,
        other: f64,
        rows: usize,
        cols: usize,
        s_row: i64,
        s_col: i64,
        vr: &str,
        vc: &str,
        rank2: bool,
    ) -> R<()> {
        let p = self.param(a.buffer)?;
        let gm = self.gm[a.buffer].clone();
        let base = self.scalar(a.base)?;
        let raw = cpp::gm_type(p.dtype);
        let esz = p.dtype.size_bytes();
        let epb = BLOCK_BYTES / esz;
        let sq = *self
            .stage_queue
            .get(&(inst as *const Inst))
            .ok_or_else(|| internal("strided load without a staging queue"))?;
        let qn = self.queues[sq].name.clone();
        let p_elems = if rank2 { self.pitch(cols) } else { cols };
        let d = self.def_tile(w, r)?;
        let (ws, wide) = self.scratch(w, "float", cols * epb * 4, &format!("{r} blocks widened"));
        let other_c = cpp::lit(other, DType::F32);
        w.comment(
            "strided bf16 gather: one element per 32-byte block, widened to float, compacted by WholeReduceSum",
        );
        self.vop(
            w,
            format!("Duplicate({}, {other_c}, {});", d.var, rows * p_elems),
            &[],
            &[&d.loc],
        );
        w.open(format!(
            "for (int32_t row = 0; row < {vr} && {vc} > 0; ++row)"
        ));
        let st = format!("st{}", r.0);
        w.line(format!(
            "LocalTensor<{raw}> {st} = {qn}.AllocTensor<{raw}>();"
        ));
        w.line(format!(
            "DataCopyPad({st}, {gm}[{base} + row * {}], DataCopyExtParams{{static_cast<uint16_t>({vc}), {esz}, {}, 0, 0}}, DataCopyPadExtParams<{raw}>{{true, 0, {}, static_cast<{raw}>(-0.0f)}});",
            cpp::int_lit(s_row),
            (s_col as usize - 1) * esz,
            epb - 1
        ));
        w.line(format!("{qn}.EnQue({st});"));
        w.line(format!("{st} = {qn}.DeQue<{raw}>();"));
        w.line("PipeBarrier<PIPE_V>();");
        w.line(format!(
            "Cast({wide}, {st}, RoundMode::CAST_NONE, {vc} * {epb});"
        ));
        w.open(format!("for (int32_t c0 = 0; c0 < {vc}; c0 += 240)"));
        w.line("PipeBarrier<PIPE_V>();");
        w.line(format!(
            "WholeReduceSum({}[row * {p_elems} + c0], {wide}[c0 * {epb}], {epb}, ({vc} - c0) < 240 ? ({vc} - c0) : 240, 1, 1, 2);",
            d.var
        ));
        w.close();
        w.line(format!("{qn}.FreeTensor({st});"));
        w.close();
        self.haz_unknown();
        self.free_slot(ws);
        Ok(())
    }

    /// A load whose columns are `s_col > 1` elements apart: each element is copied into
    /// its own 32-byte block (padded with -0.0) and `WholeReduceSum` over the first
    /// `32 / size` elements of each block compacts them (x + -0.0 + ... = x exactly).
    #[allow(clippy::too_many_arguments)]
    fn emit_gather_load(
        &mut self,
        w: &mut Writer,
        inst: &'k Inst,
        r: ValueId,
        a: &BlockAccess,
        other: f64,
        rows: usize,
        cols: usize,
        s_row: i64,
        s_col: i64,
        vr: &str,
        vc: &str,
        rank2: bool,
    ) -> R<()> {
        let p = self.param(a.buffer)?;
        if p.dtype == DType::BF16 {
            return self.emit_gather_load_bf16(
                w, inst, r, a, other, rows, cols, s_row, s_col, vr, vc, rank2,
            );
        }
        if !matches!(p.dtype, DType::F32 | DType::F16) {
            return Err(self.unsupported(format!(
                "a strided (stride {s_col}) load of {} data (compaction needs float/half)",
                p.dtype
            )));
        }
        let gm = self.gm[a.buffer].clone();
        let base = self.scalar(a.base)?;
        let raw = cpp::gm_type(p.dtype);
        let esz = p.dtype.size_bytes();
        let epb = BLOCK_BYTES / esz;
        let sq = *self
            .stage_queue
            .get(&(inst as *const Inst))
            .ok_or_else(|| internal("strided load without a staging queue"))?;
        let qn = self.queues[sq].name.clone();
        let p_elems = if rank2 { self.pitch(cols) } else { cols };
        // Destination: the raw-typed tile (converted to float afterwards when needed).
        let ctype = cpp::compute_type(p.dtype);
        let (raw_var, raw_loc, widen_slot) = if ctype == raw {
            let d = self.def_tile(w, r)?;
            (d.var.clone(), d.loc.clone(), None)
        } else {
            let (_, bytes) = self.tile_extent(&a.shape, esz);
            let (s, var) = self.scratch(w, raw, bytes, &format!("{r} raw"));
            (var, Loc::Slot(s), Some(s))
        };
        let other_raw = cpp::lit(other, p.dtype);
        w.comment(
            "strided gather: one element per 32-byte block, then compacted by WholeReduceSum",
        );
        self.vop(
            w,
            format!(
                "Duplicate({raw_var}, static_cast<{raw}>({other_raw}), {});",
                rows * p_elems
            ),
            &[],
            &[&raw_loc],
        );
        w.open(format!(
            "for (int32_t row = 0; row < {vr} && {vc} > 0; ++row)"
        ));
        let st = format!("st{}", r.0);
        w.line(format!(
            "LocalTensor<{raw}> {st} = {qn}.AllocTensor<{raw}>();"
        ));
        w.line(format!(
            "DataCopyPad({st}, {gm}[{base} + row * {}], DataCopyExtParams{{static_cast<uint16_t>({vc}), {esz}, {}, 0, 0}}, DataCopyPadExtParams<{raw}>{{true, 0, {}, static_cast<{raw}>(-0.0f)}});",
            cpp::int_lit(s_row),
            (s_col as usize - 1) * esz,
            epb - 1
        ));
        w.line(format!("{qn}.EnQue({st});"));
        w.line(format!("{st} = {qn}.DeQue<{raw}>();"));
        w.open(format!("for (int32_t c0 = 0; c0 < {vc}; c0 += 240)"));
        w.line("PipeBarrier<PIPE_V>();");
        w.line(format!(
            "WholeReduceSum({raw_var}[row * {p_elems} + c0], {st}[c0 * {epb}], {epb}, ({vc} - c0) < 240 ? ({vc} - c0) : 240, 1, 1, 1);"
        ));
        w.close();
        w.line(format!("{qn}.FreeTensor({st});"));
        w.close();
        self.haz_unknown();
        if let Some(s) = widen_slot {
            let d = self.def_tile(w, r)?;
            self.vop(
                w,
                format!(
                    "Cast({}, {raw_var}, RoundMode::CAST_NONE, {}); // widen to float",
                    d.var,
                    rows * p_elems
                ),
                &[&raw_loc],
                &[&d.loc],
            );
            self.free_slot(s);
        }
        Ok(())
    }

    fn emit_store(
        &mut self,
        w: &mut Writer,
        inst: &'k Inst,
        a: &BlockAccess,
        value: ValueId,
    ) -> R<()> {
        let p = self.param(a.buffer)?;
        let gm = self.gm[a.buffer].clone();
        let base = self.scalar(a.base)?;
        let raw = cpp::gm_type(p.dtype);
        let esz = p.dtype.size_bytes();
        let q = *self
            .site_queue
            .get(&(inst as *const Inst))
            .ok_or_else(|| internal("store site without a queue"))?;
        let qn = self.queues[q].name.clone();
        let vdt = self.ty(value)?.dtype();
        if a.shape.is_empty() {
            // Scalar store: one element through a one-block VECOUT tensor.
            let s = self.scalar(value)?;
            let ot = self.fresh("so");
            w.comment(format!("store {value} -> {}[{base}]", p.name));
            w.line(format!(
                "LocalTensor<{raw}> {ot} = {qn}.AllocTensor<{raw}>();"
            ));
            let conv = match p.dtype {
                DType::F16 | DType::BF16 => format!("static_cast<{raw}>(static_cast<float>({s}))"),
                _ => format!("static_cast<{raw}>({s})"),
            };
            let ql = Loc::OutQ(q);
            self.vop(
                w,
                format!("Duplicate({ot}, {conv}, {});", BLOCK_BYTES / esz),
                &[],
                &[&ql],
            );
            w.line(format!("{qn}.EnQue({ot});"));
            w.line(format!("{ot} = {qn}.DeQue<{raw}>();"));
            w.line(format!(
                "DataCopyPad({gm}[{base}], {ot}, DataCopyExtParams{{1, {esz}, 0, 0, 0}});"
            ));
            w.line(format!("{qn}.FreeTensor({ot});"));
            self.haz_unknown();
            return Ok(());
        }
        if a.strides.len() != a.shape.len() || a.limits.len() != a.shape.len() || a.shape.len() > 2
        {
            return Err(self.unsupported(format!("a store of rank {}", a.shape.len())));
        }
        let vt = self.tile(value)?;
        let limits: Vec<String> = a.limits.iter().map(|&l| self.scalar(l)).collect::<R<_>>()?;
        let rank2 = a.shape.len() == 2;
        let (rows, cols, s_row, s_col, lim_r, lim_c) = if rank2 {
            (
                a.shape[0],
                a.shape[1],
                a.strides[0],
                a.strides[1],
                limits[0].clone(),
                limits[1].clone(),
            )
        } else {
            (
                1usize,
                a.shape[0],
                0i64,
                a.strides[0],
                "1".to_string(),
                limits[0].clone(),
            )
        };
        let p_elems = if rank2 { self.pitch(cols) } else { cols };
        let count = rows * p_elems;
        // Column stride 0: every column writes one address, which is only meaningful with
        // at most one valid column (e.g. a trailing axis of extent 1): stored as a
        // contiguous store of min(valid, 1) columns (several valid columns are a write
        // race on every target; here the first one wins).
        let (s_col, col_extent) = if s_col == 0 { (1, 1) } else { (s_col, cols) };
        w.comment(format!(
            "store {value} -> {}{:?} at {base}, strides {:?}, valid {}",
            p.name,
            a.shape,
            a.strides,
            cpp::join(limits.iter().cloned(), " x ")
        ));
        let id = self.fresh("");
        let vr = format!("svr{id}");
        let vc = format!("svc{id}");
        if rank2 {
            w.line(format!(
                "const int32_t {vr} = {};",
                self.clamp_expr(&lim_r, rows)
            ));
        }
        w.line(format!(
            "const int32_t {vc} = {};",
            self.clamp_expr(&lim_c, col_extent)
        ));
        let vr_e = if rank2 { vr.clone() } else { "1".to_string() };
        // The value in a VECOUT tensor of the buffer's dtype.
        let ot = if vt.loc == Loc::OutQ(q) {
            vt.var.clone()
        } else {
            let ot = format!("st_out{id}");
            w.line(format!(
                "LocalTensor<{raw}> {ot} = {qn}.AllocTensor<{raw}>();"
            ));
            let ol = Loc::OutQ(q);
            let vctype = cpp::compute_type(vdt);
            if vdt == DType::Bool {
                self.mask_to_out(w, &vt, &a.shape, &ot, &ol, p.dtype)?;
            } else if vctype == raw {
                let one = if raw == "float" {
                    "1.0f".to_string()
                } else {
                    format!("({raw})1")
                };
                self.vop(
                    w,
                    format!("Muls({ot}, {}, {one}, {count}); // copy", vt.var),
                    &[&vt.loc],
                    &[&ol],
                );
            } else {
                let mode = match (vctype, p.dtype) {
                    ("float", DType::F16) | ("float", DType::BF16) => "CAST_RINT",
                    ("float", DType::I32) => "CAST_TRUNC",
                    ("int32_t", DType::F32) => "CAST_NONE",
                    _ => {
                        return Err(self.unsupported(format!(
                            "storing a {vdt} tile into a {} buffer",
                            p.dtype
                        )))
                    }
                };
                self.vop(
                    w,
                    format!("Cast({ot}, {}, RoundMode::{mode}, {count});", vt.var),
                    &[&vt.loc],
                    &[&ol],
                );
            }
            ot
        };
        w.line(format!("{qn}.EnQue({ot});"));
        w.line(format!("{ot} = {qn}.DeQue<{raw}>();"));
        self.haz_unknown();
        let blocks_per_row = p_elems * esz / BLOCK_BYTES;
        if s_col == 1 {
            let emit_single = |w: &mut Writer| {
                let src_gap = if rank2 {
                    format!(
                        "static_cast<uint32_t>({blocks_per_row} - ({vc} * {esz} + {}) / {BLOCK_BYTES})",
                        BLOCK_BYTES - 1
                    )
                } else {
                    "0".to_string()
                };
                let dst_gap = if rank2 {
                    format!(
                        "static_cast<uint32_t>(({} - {vc}) * {esz})",
                        cpp::int_lit(s_row)
                    )
                } else {
                    "0".to_string()
                };
                w.open(if rank2 {
                    format!("if ({vr_e} > 0 && {vc} > 0)")
                } else {
                    format!("if ({vc} > 0)")
                });
                w.line(format!(
                    "DataCopyPad({gm}[{base}], {ot}, DataCopyExtParams{{static_cast<uint16_t>({vr_e}), static_cast<uint32_t>({vc} * {esz}), {src_gap}, {dst_gap}, 0}});"
                ));
                w.close();
            };
            let emit_rows = |w: &mut Writer| {
                w.open(format!(
                    "for (int32_t row = 0; row < {vr_e} && {vc} > 0; ++row)"
                ));
                w.line(format!(
                    "DataCopyPad({gm}[{base} + row * {}], {ot}[row * {p_elems}], DataCopyExtParams{{1, static_cast<uint32_t>({vc} * {esz}), 0, 0, 0}});",
                    cpp::int_lit(s_row)
                ));
                w.close();
            };
            match row_copy_mode(rank2, s_row, rows, cols) {
                RowCopy::Single => emit_single(w),
                RowCopy::PerRow => emit_rows(w),
                RowCopy::Runtime => {
                    w.open(format!("if ({} >= {vc})", cpp::int_lit(s_row)));
                    emit_single(w);
                    w.close();
                    w.open("else");
                    emit_rows(w);
                    w.close();
                }
            }
        } else if s_col > 1 {
            // Scatter: Brcb spreads each element over its own 32-byte block, then one
            // DataCopyPad writes one element per block with the column stride as gap.
            if esz != 4 && esz != 2 {
                return Err(self.unsupported("a strided store of 1-byte data"));
            }
            let sq = *self
                .stage_queue
                .get(&(inst as *const Inst))
                .ok_or_else(|| internal("strided store without a staging queue"))?;
            let sqn = self.queues[sq].name.clone();
            let epb = BLOCK_BYTES / esz;
            let sl = Loc::OutQ(sq);
            let _ = epb;
            w.open(format!(
                "for (int32_t row = 0; row < {vr_e} && {vc} > 0; ++row)"
            ));
            let stg = format!("sc{id}");
            w.line(format!(
                "LocalTensor<{raw}> {stg} = {sqn}.AllocTensor<{raw}>();"
            ));
            w.open(format!("for (int32_t c0 = 0; c0 < {vc}; c0 += 1920)"));
            w.line(format!(
                "const int32_t n8 = ((({vc} - c0) < 1920 ? ({vc} - c0) : 1920) + 7) / 8;"
            ));
            w.line(format!(
                "Brcb({stg}[c0 * {epb}], {ot}[row * {p_elems} + c0], static_cast<uint8_t>(n8), BrcbRepeatParams(1, 8));"
            ));
            w.close();
            w.line(format!("{sqn}.EnQue({stg});"));
            w.line(format!("{stg} = {sqn}.DeQue<{raw}>();"));
            w.line(format!(
                "DataCopyPad({gm}[{base} + row * {}], {stg}, DataCopyExtParams{{static_cast<uint16_t>({vc}), {esz}, 0, {}, 0}});",
                cpp::int_lit(s_row),
                (s_col as usize - 1) * esz
            ));
            w.line(format!("{sqn}.FreeTensor({stg});"));
            w.close();
            let _ = sl;
        } else {
            return Err(self.unsupported(format!("a store with column stride {s_col}")));
        }
        w.line(format!("{qn}.FreeTensor({ot});"));
        if vt.loc == Loc::OutQ(q) {
            self.tiles.remove(&value);
        }
        Ok(())
    }

    // ----- the cube result (MIX kernels) ---------------------------------------------

    fn emit_cube_result(&mut self, w: &mut Writer, inst: &'k Inst, cube: &CubeResult) -> R<()> {
        let r = cube.inst_result;
        let (rows, p) = (cube.rows, cube.pitch);
        let count = rows * p;
        w.comment(format!(
            "{r} = the matmul accumulator, computed by the cube unit and read back from the workspace"
        ));
        let alloc = if self.pad64 {
            round_up(count, COMPARE_GRANULE)
        } else {
            count
        };
        let q = self.add_queue(
            "VECIN",
            alloc * 4,
            format!("{r} = accumulator from the cube"),
        );
        let qn = self.queues[q].name.clone();
        let lt = format!("acc{}", r.0);
        w.line(format!(
            "LocalTensor<float> {lt} = {qn}.AllocTensor<float>();"
        ));
        let guard = match cube.bounds {
            Some((s, e)) => Some(format!("{} < {}", self.scalar(s)?, self.scalar(e)?)),
            None => None,
        };
        if let Some(g) = &guard {
            w.open(format!("if ({g})"));
        }
        w.line(format!(
            "DataCopy({lt}, {}[static_cast<int64_t>(pid) * {count}], {count});",
            cube.ws_var
        ));
        if guard.is_some() {
            w.close();
        }
        w.line(format!("{qn}.EnQue({lt});"));
        w.line(format!("{lt} = {qn}.DeQue<float>();"));
        self.haz_unknown();
        let ql = Loc::InQ(q);
        if let Some(g) = &guard {
            // An empty K loop leaves the product at zero.
            w.open(format!("if (!({g}))"));
            w.line(format!("Duplicate({lt}, 0.0f, {count});"));
            w.close();
        }
        let _ = inst;
        if cube.init_is_zero {
            self.tiles.insert(
                r,
                TileVal {
                    loc: ql,
                    var: lt,
                    count,
                },
            );
        } else {
            let init = self.tile(cube.init)?;
            let d = self.def_tile(w, r)?;
            self.vop(
                w,
                format!(
                    "Add({}, {lt}, {}, {count}); // initial accumulator + product",
                    d.var, init.var
                ),
                &[&ql, &init.loc],
                &[&d.loc],
            );
            w.line(format!("{qn}.FreeTensor({lt});"));
        }
        Ok(())
    }
}

/// How the rows of a rank-2 GM <-> UB copy are moved.
enum RowCopy {
    /// One DataCopyPad for all rows (row stride >= tile width).
    Single,
    /// One DataCopyPad per row (overlapping or broadcast rows, or too many rows).
    PerRow,
    /// Single when the valid width fits in the row stride, else per row.
    Runtime,
}

fn row_copy_mode(rank2: bool, s_row: i64, rows: usize, cols: usize) -> RowCopy {
    if !rank2 {
        RowCopy::Single
    } else if rows > 4095 || s_row <= 0 {
        RowCopy::PerRow
    } else if s_row >= cols as i64 {
        RowCopy::Single
    } else {
        RowCopy::Runtime
    }
}

/// Row-pitch granule of a kernel: 16 elements when any 16-bit buffer is involved (so a
/// half row and a float row have the same pitch), else 8 (one 32-byte block of float).
fn pitch_granule(k: &TileKernel) -> usize {
    if k.params
        .iter()
        .any(|p| matches!(p.dtype, DType::F16 | DType::BF16))
        || k.values
            .iter()
            .any(|t| matches!(t.dtype(), DType::F16 | DType::BF16))
    {
        16
    } else {
        8
    }
}

/// The row pitch (elements) used for rank-2 tiles with `cols` columns in kernel `k`.
pub(crate) fn kernel_pitch(k: &TileKernel, cols: usize) -> usize {
    round_up(cols.max(1), pitch_granule(k))
}

/// Whether `kernel`'s vector side fits one Ascend C kernel on `target`: at most 8 VECIN
/// and 8 VECOUT queues, and queues, scratch slots and scratch buffers within the Unified
/// Buffer (`ub_bytes`). `Err` is the [`CompileError`] emitting the kernel would report
/// (a [`CompileError::Limit`] naming the buffers, or whatever else the vector or cube
/// lowering rejects). Pure: runs the vector lowering (slot assignment included, as
/// [`super::emit_kernel_named`] does) and discards the code. Always `Ok` for a target
/// that is not Ascend C. The scheduler calls it on multi-output kernels, whose
/// resource needs are only known once lowered, to take apart a merge that does not fit.
pub fn fits(kernel: &TileKernel, target: &Target) -> Result<(), CompileError> {
    if target.kind != crate::target::TargetKind::AscendC {
        return Ok(());
    }
    let name = &kernel.name;
    let pitch = kernel_pitch(kernel, super::kernel_acc_cols(kernel));
    let plan = super::cube::plan(kernel, name, pitch, "acc_ws")?;
    let gm = (0..kernel.params.len())
        .map(|i| format!("p{i}_gm"))
        .collect();
    lower_vector_side(kernel, name, target, gm, plan.as_ref())?;
    Ok(())
}

/// The vector side of `kernel` beside its cube plan, if any (the cube's result is an
/// input of the vector code, the nodes the cube computes are skipped, and a MIX kernel's
/// setup sits one level deeper): what [`super::emit_kernel_named`] writes out and
/// [`fits`] only checks.
pub(crate) fn lower_vector_side(
    kernel: &TileKernel,
    name: &str,
    target: &Target,
    gm: Vec<String>,
    plan: Option<&super::cube::CubePlan>,
) -> R<VectorCode> {
    let (cube_result, skip) = match plan {
        Some(p) => (Some(p.result.clone()), p.vector_skip.clone()),
        None => (None, HashSet::new()),
    };
    let setup_indent = if plan.is_some() { 2 } else { 1 };
    VectorEmitter::new(kernel, name, target, gm, cube_result, skip).emit(setup_indent)
}
