//! PTX backend: hand-built SIMT kernels covering every statement, every unary / binary /
//! integer op, every dtype's load and store, casts between all register types, shared
//! memory with barriers and nested control flow, plus the kernels of real plans; each is
//! printed for sm_80 and sm_90 and assembled by NVIDIA's `ptxas -v`, which must accept it
//! with zero spill stores and loads. Registers and spills go to
//! `target/ptxas-report.json`.
//!
//! `ptxas` is looked up in `$TESSERA_PTXAS`, then `<repo>/.cache/ptxas/bin/ptxas`, then
//! `PATH`; a missing `ptxas` fails the tests (run `cargo xtask setup`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tessera_compiler::backend::ptx::{self, print_kernel, EMIT_SM, PTX_ISA_VERSION};
use tessera_compiler::graph::{BinaryOp, UnaryOp};
use tessera_compiler::simt::{
    IntOp, Operand, Reg, SType, SharedArray, SimtBuffer, SimtKernel, Special, Stmt, PRINTED_BINARY,
    PRINTED_UNARY,
};
use tessera_compiler::{CompileError, DType, Graph, Target};

// The ptxas harness (finding ptxas, `ptxas -v` parsing, the JSON report) is shared with
// the conformance suite of the root crate.
#[path = "../../tests/support/ptxas.rs"]
mod ptxas_support;
use ptxas_support::{parse_ptxas_v, PtxasInfo, ReportEntry};

// ---------------------------------------------------------------------------------------
// ptxas harness
// ---------------------------------------------------------------------------------------

fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("ptx")
}

/// Writes `text` to a file and assembles it with `ptxas -arch=sm_<sm> -v`.
fn assemble(name: &str, text: &str, sm: u32) -> Result<PtxasInfo, String> {
    ptxas_support::assemble(&ptxas_support::find_ptxas(), &work_dir(), name, text, sm)
}

static REPORT: Mutex<BTreeMap<(String, u32), PtxasInfo>> = Mutex::new(BTreeMap::new());

/// Records one result and rewrites `target/ptxas-report.json` with everything this test
/// run has assembled so far.
fn record(kernel: &str, sm: u32, info: &PtxasInfo) {
    let mut report = REPORT.lock().unwrap_or_else(|e| e.into_inner());
    report.insert((kernel.to_string(), sm), info.clone());
    let entries: Vec<ReportEntry> = report
        .iter()
        .map(|((k, sm), i)| ReportEntry::new("", k, *sm, i))
        .collect();
    ptxas_support::write_report("ptxas-report.json", &entries).expect("write the report");
}

/// Assembles a module for one architecture, requires zero spills, records it.
fn assemble_checked(report_name: &str, text: &str, sm: u32) -> PtxasInfo {
    let info = assemble(report_name, text, sm).unwrap_or_else(|e| panic!("{e}"));
    record(report_name, sm, &info);
    assert_eq!(
        (info.spill_stores, info.spill_loads),
        (0, 0),
        "{report_name} spills on sm_{sm}: {info:?}"
    );
    info
}

/// Prints a kernel for sm_80 and sm_90 and assembles both; returns the sm_80 text.
fn print_and_assemble(k: &SimtKernel) -> String {
    let t80 = print_kernel(k, 80).unwrap_or_else(|e| panic!("print {}: {e}", k.name));
    let t90 = print_kernel(k, 90).unwrap_or_else(|e| panic!("print {}: {e}", k.name));
    assert_eq!(
        t80.replace(".target sm_80", ".target sm_90"),
        t90,
        "sm_80 and sm_90 printings differ beyond the .target line"
    );
    assert_eq!(
        print_kernel(k, 80).expect("prints twice"),
        t80,
        "printing is not deterministic"
    );
    assemble_checked(&k.name, &t80, 80);
    assemble_checked(&k.name, &t90, 90);
    t80
}

// ---------------------------------------------------------------------------------------
// Building SIMT kernels by hand
// ---------------------------------------------------------------------------------------

const BLOCK: u32 = 256;

/// A kernel under construction.
struct Kb {
    name: String,
    buffers: Vec<SimtBuffer>,
    regs: Vec<SType>,
    shared: Vec<SharedArray>,
    block: u32,
}

impl Kb {
    fn new(name: &str) -> Kb {
        Kb {
            name: name.into(),
            buffers: vec![],
            regs: vec![],
            shared: vec![],
            block: BLOCK,
        }
    }

    fn buf(&mut self, name: &str, dtype: DType, len: usize, writable: bool) -> usize {
        self.buffers.push(SimtBuffer {
            name: name.into(),
            dtype,
            len,
            writable,
            vector: false,
        });
        self.buffers.len() - 1
    }

    /// A buffer bound as 4-element vectors.
    fn vbuf(&mut self, name: &str, dtype: DType, len: usize, writable: bool) -> usize {
        let b = self.buf(name, dtype, len, writable);
        self.buffers[b].vector = true;
        b
    }

    fn reg(&mut self, t: SType) -> Reg {
        self.regs.push(t);
        Reg(self.regs.len() as u32 - 1)
    }

    fn smem(&mut self, ty: SType, len: usize) -> usize {
        self.shared.push(SharedArray { ty, len });
        self.shared.len() - 1
    }

    /// `i = ctaid.x * block + tid.x` (I32) and `ok = i < n`.
    fn global_index(&mut self, body: &mut Vec<Stmt>, n: usize) -> (Reg, Reg) {
        let tid = self.reg(SType::U32);
        let gid = self.reg(SType::U32);
        let tid_i = self.reg(SType::I32);
        let gid_i = self.reg(SType::I32);
        let i = self.reg(SType::I32);
        let ok = self.reg(SType::Bool);
        body.extend([
            Stmt::Special {
                dst: tid,
                which: Special::LocalId,
            },
            Stmt::Special {
                dst: gid,
                which: Special::GroupId(0),
            },
            Stmt::Cast {
                dst: tid_i,
                src: r(tid),
            },
            Stmt::Cast {
                dst: gid_i,
                src: r(gid),
            },
            Stmt::Fma {
                dst: i,
                a: r(gid_i),
                b: Operand::Int(self.block as i64),
                c: r(tid_i),
            },
            Stmt::Int {
                dst: ok,
                op: IntOp::Lt,
                a: r(i),
                b: Operand::Int(n as i64),
            },
        ]);
        (i, ok)
    }

    fn finish(self, grid: [u32; 3], body: Vec<Stmt>) -> SimtKernel {
        SimtKernel {
            name: self.name,
            buffers: self.buffers,
            workgroup_size: self.block,
            grid,
            regs: self.regs,
            shared: self.shared,
            body,
        }
    }
}

fn r(x: Reg) -> Operand {
    Operand::Reg(x)
}

fn f32c(v: f64) -> Operand {
    Operand::Float(v, SType::F32)
}

const N: usize = 1000;

fn grid_for(n: usize) -> [u32; 3] {
    [n.div_ceil(BLOCK as usize) as u32, 1, 1]
}

/// Every unary op on f32 and on f16 registers: out[op][i] = op(x[i]).
fn unary_kernel(t: SType) -> SimtKernel {
    let (name, dt) = match t {
        SType::F32 => ("unary_f32", DType::F32),
        _ => ("unary_f16", DType::F16),
    };
    let mut kb = Kb::new(name);
    let x = kb.buf("x", dt, N, false);
    let out = kb.buf("out", dt, N * PRINTED_UNARY.len(), true);
    let mut body = vec![];
    let (i, ok) = kb.global_index(&mut body, N);
    let v = kb.reg(t);
    let mut then = vec![Stmt::LoadGlobal {
        dst: v,
        buffer: x,
        index: r(i),
    }];
    for (k, op) in PRINTED_UNARY.into_iter().enumerate() {
        let y = kb.reg(t);
        let at = kb.reg(SType::I32);
        then.extend([
            Stmt::Unary {
                dst: y,
                op,
                x: r(v),
            },
            Stmt::Int {
                dst: at,
                op: IntOp::Add,
                a: r(i),
                b: Operand::Int((k * N) as i64),
            },
            Stmt::StoreGlobal {
                buffer: out,
                index: r(at),
                value: r(y),
            },
        ]);
    }
    body.push(Stmt::If {
        cond: r(ok),
        then,
        els: vec![],
    });
    kb.finish(grid_for(N), body)
}

/// Every binary op on every arithmetic register type, and every integer op on i32 and
/// u32 (plus `lt` on floats and `and` on predicates and integers).
fn binary_int_kernel() -> SimtKernel {
    let mut kb = Kb::new("binary_and_int_ops");
    let types = [
        (SType::F32, DType::F32),
        (SType::F16, DType::F16),
        (SType::I32, DType::I32),
        (SType::U32, DType::U32),
    ];
    let ins: Vec<usize> = types
        .iter()
        .map(|(_, d)| kb.buf(&format!("a_{d}"), *d, N, false))
        .collect();
    let outs: Vec<usize> = types
        .iter()
        .map(|(_, d)| kb.buf(&format!("out_{d}"), *d, N * 16, true))
        .collect();
    let flags = kb.buf("flags", DType::Bool, N * 8, true);
    let mut body = vec![];
    let (i, ok) = kb.global_index(&mut body, N);
    let mut then = vec![];
    let slot = |kb: &mut Kb, then: &mut Vec<Stmt>, buffer: usize, k: usize, v: Reg| {
        let at = kb.reg(SType::I32);
        then.push(Stmt::Int {
            dst: at,
            op: IntOp::Add,
            a: r(i),
            b: Operand::Int((k * N) as i64),
        });
        then.push(Stmt::StoreGlobal {
            buffer,
            index: r(at),
            value: r(v),
        });
    };
    for (ti, (t, _)) in types.iter().enumerate() {
        let a = kb.reg(*t);
        let b = kb.reg(*t);
        then.push(Stmt::LoadGlobal {
            dst: a,
            buffer: ins[ti],
            index: r(i),
        });
        // b = a + 1 (an immediate operand of the register's type).
        let one = match t {
            SType::F32 | SType::F16 => Operand::Float(1.0, *t),
            _ => Operand::Int(1),
        };
        then.push(Stmt::Binary {
            dst: b,
            op: BinaryOp::Add,
            a: r(a),
            b: one,
        });
        let mut k = 0;
        for op in PRINTED_BINARY {
            let y = kb.reg(*t);
            then.push(Stmt::Binary {
                dst: y,
                op,
                a: r(a),
                b: r(b),
            });
            slot(&mut kb, &mut then, outs[ti], k, y);
            k += 1;
        }
        let int_ops: &[IntOp] = match t {
            SType::I32 | SType::U32 => &[
                IntOp::Add,
                IntOp::Sub,
                IntOp::Mul,
                IntOp::Div,
                IntOp::Rem,
                IntOp::Min,
                IntOp::Max,
                IntOp::And,
            ],
            _ => &[IntOp::Add, IntOp::Sub, IntOp::Mul, IntOp::Min, IntOp::Max],
        };
        for &op in int_ops {
            let y = kb.reg(*t);
            then.push(Stmt::Int {
                dst: y,
                op,
                a: r(a),
                b: r(b),
            });
            slot(&mut kb, &mut then, outs[ti], k, y);
            k += 1;
        }
        // Comparison into a predicate, stored to a bool buffer; `and` of predicates.
        let lt = kb.reg(SType::Bool);
        let lt2 = kb.reg(SType::Bool);
        let both = kb.reg(SType::Bool);
        then.extend([
            Stmt::Int {
                dst: lt,
                op: IntOp::Lt,
                a: r(a),
                b: r(b),
            },
            Stmt::Int {
                dst: lt2,
                op: IntOp::Lt,
                a: Operand::Int(0),
                b: r(a),
            },
            Stmt::Int {
                dst: both,
                op: IntOp::And,
                a: r(lt),
                b: r(lt2),
            },
        ]);
        slot(&mut kb, &mut then, flags, ti, both);
    }
    body.push(Stmt::If {
        cond: r(ok),
        then,
        els: vec![],
    });
    kb.finish(grid_for(N), body)
}

/// Loads of every dtype into its own register type and into f32, stores of every
/// register type into every dtype.
fn dtype_io_kernel() -> SimtKernel {
    let mut kb = Kb::new("dtype_io");
    let ins: Vec<(usize, DType)> = DType::ALL
        .iter()
        .map(|d| (kb.buf(&format!("in_{d}"), *d, N, false), *d))
        .collect();
    let outs: Vec<(usize, DType)> = DType::ALL
        .iter()
        .map(|d| (kb.buf(&format!("out_{d}"), *d, N * 12, true), *d))
        .collect();
    let mut body = vec![];
    let (i, ok) = kb.global_index(&mut body, N);
    let mut then = vec![];
    let mut k = 0usize;
    for &(b, d) in &ins {
        let native = kb.reg(SType::of(d));
        then.push(Stmt::LoadGlobal {
            dst: native,
            buffer: b,
            index: r(i),
        });
        let as_f32 = kb.reg(SType::F32);
        then.push(Stmt::LoadGlobal {
            dst: as_f32,
            buffer: b,
            index: r(i),
        });
        for v in [native, as_f32] {
            for &(ob, _) in &outs {
                let at = kb.reg(SType::I32);
                then.push(Stmt::Int {
                    dst: at,
                    op: IntOp::Add,
                    a: r(i),
                    b: Operand::Int(((k % 12) * N) as i64),
                });
                then.push(Stmt::StoreGlobal {
                    buffer: ob,
                    index: r(at),
                    value: r(v),
                });
            }
            k += 1;
        }
    }
    // Stores of immediates (one per dtype) at constant indices.
    for &(ob, d) in &outs {
        let value = match d {
            DType::F32 | DType::BF16 => f32c(-2.5),
            DType::F16 => Operand::Float(0.5, SType::F16),
            DType::I32 => Operand::Int(-7),
            DType::U32 => Operand::Int(7),
            DType::Bool => Operand::Bool(true),
        };
        then.push(Stmt::StoreGlobal {
            buffer: ob,
            index: Operand::Int(3),
            value,
        });
    }
    body.push(Stmt::If {
        cond: r(ok),
        then,
        els: vec![],
    });
    kb.finish(grid_for(N), body)
}

/// 16-byte vector loads and stores of every 32-bit dtype (f32, i32, u32), a vector store
/// of immediates, and element accesses of a vector-bound buffer: `out[4i..4i+4] =
/// x[4i..4i+4]` per thread, guarded by `4i + 3 < n`.
fn vector_io_kernel() -> SimtKernel {
    let mut kb = Kb::new("vector_io");
    let mut body = vec![];
    let (i, _) = kb.global_index(&mut body, N);
    let i4 = kb.reg(SType::I32);
    let last = kb.reg(SType::I32);
    let ok = kb.reg(SType::Bool);
    body.extend([
        Stmt::Int {
            dst: i4,
            op: IntOp::Mul,
            a: r(i),
            b: Operand::Int(4),
        },
        Stmt::Int {
            dst: last,
            op: IntOp::Add,
            a: r(i4),
            b: Operand::Int(3),
        },
        Stmt::Int {
            dst: ok,
            op: IntOp::Lt,
            a: r(last),
            b: Operand::Int(N as i64),
        },
    ]);
    let mut then = vec![];
    for d in [DType::F32, DType::I32, DType::U32] {
        let x = kb.vbuf(&format!("x_{d}"), d, N, false);
        let out = kb.vbuf(&format!("out_{d}"), d, N, true);
        let dst: [Reg; 4] = std::array::from_fn(|_| kb.reg(SType::of(d)));
        then.push(Stmt::LoadGlobal4 {
            dst,
            buffer: x,
            index: r(i4),
        });
        then.push(Stmt::StoreGlobal4 {
            buffer: out,
            index: r(i4),
            values: dst.map(r),
        });
        // One element read and written singly through the vector binding.
        let e = kb.reg(SType::of(d));
        then.push(Stmt::LoadGlobal {
            dst: e,
            buffer: x,
            index: r(last),
        });
        then.push(Stmt::StoreGlobal {
            buffer: out,
            index: r(last),
            value: r(e),
        });
    }
    let f = kb.vbuf("imm_f32", DType::F32, N, true);
    then.push(Stmt::StoreGlobal4 {
        buffer: f,
        index: r(i4),
        values: [f32c(1.0), f32c(-2.5), Operand::Int(3), f32c(0.0)],
    });
    body.push(Stmt::If {
        cond: r(ok),
        then,
        els: vec![],
    });
    kb.finish(grid_for(N.div_ceil(4)), body)
}

const ALL_STYPES: [SType; 5] = [SType::F32, SType::F16, SType::I32, SType::U32, SType::Bool];

/// Casts between every pair of register types, `Mov` of registers and immediates of
/// every type, `Select` on every type, `Fma` on f32, f16 and i32.
fn cast_select_kernel() -> SimtKernel {
    let mut kb = Kb::new("cast_mov_select_fma");
    let x = kb.buf("x", DType::F32, N, false);
    let out = kb.buf("out", DType::F32, N * 64, true);
    let mut body = vec![];
    let (i, ok) = kb.global_index(&mut body, N);
    let mut then = vec![];
    let xf = kb.reg(SType::F32);
    then.push(Stmt::LoadGlobal {
        dst: xf,
        buffer: x,
        index: r(i),
    });
    // One source register per type, from x.
    let mut src = vec![];
    for t in ALL_STYPES {
        let v = kb.reg(t);
        then.push(Stmt::Cast { dst: v, src: r(xf) });
        src.push((t, v));
    }
    let mut k = 0usize;
    let mut store = |kb: &mut Kb, then: &mut Vec<Stmt>, v: Reg| {
        let at = kb.reg(SType::I32);
        then.push(Stmt::Int {
            dst: at,
            op: IntOp::Add,
            a: r(i),
            b: Operand::Int(((k % 64) * N) as i64),
        });
        then.push(Stmt::StoreGlobal {
            buffer: out,
            index: r(at),
            value: r(v),
        });
        k += 1;
    };
    for &(_, v) in &src {
        for to in ALL_STYPES {
            let d = kb.reg(to);
            then.push(Stmt::Cast { dst: d, src: r(v) });
            store(&mut kb, &mut then, d);
        }
    }
    // Casts of immediates.
    for (imm, to) in [
        (Operand::Int(3), SType::F32),
        (f32c(2.5), SType::I32),
        (Operand::Bool(true), SType::F16),
    ] {
        let d = kb.reg(to);
        then.push(Stmt::Cast { dst: d, src: imm });
        store(&mut kb, &mut then, d);
    }
    // Bitcasts between the 32-bit types and the bit ops on them (the SIMT lowering's
    // bf16 rounding sequence uses these).
    let bits = kb.reg(SType::U32);
    then.push(Stmt::Bitcast {
        dst: bits,
        src: r(xf),
    });
    let mut w = bits;
    for (op, b) in [
        (IntOp::Shr, 16),
        (IntOp::Shl, 16),
        (IntOp::Or, 0x0040_0000),
        (IntOp::And, 0xffff_0000),
    ] {
        let d = kb.reg(SType::U32);
        then.push(Stmt::Int {
            dst: d,
            op,
            a: r(w),
            b: Operand::Int(b),
        });
        w = d;
    }
    let sbits = kb.reg(SType::I32);
    then.push(Stmt::Bitcast {
        dst: sbits,
        src: r(w),
    });
    let shr = kb.reg(SType::I32);
    then.push(Stmt::Int {
        dst: shr,
        op: IntOp::Shr,
        a: r(sbits),
        b: Operand::Int(1),
    });
    for v in [w, shr] {
        let f = kb.reg(SType::F32);
        then.push(Stmt::Bitcast { dst: f, src: r(v) });
        store(&mut kb, &mut then, f);
    }
    // Mov of registers and immediates.
    let imms = [
        (SType::F32, f32c(f64::NEG_INFINITY)),
        (SType::F16, Operand::Float(-1.5, SType::F16)),
        (SType::I32, Operand::Int(-1)),
        (SType::U32, Operand::Int(u32::MAX as i64)),
        (SType::Bool, Operand::Bool(false)),
    ];
    for (t, imm) in imms {
        let a = kb.reg(t);
        let b = kb.reg(t);
        then.push(Stmt::Mov { dst: a, src: imm });
        let (_, s) = src.iter().find(|(st, _)| *st == t).copied().expect("typed");
        then.push(Stmt::Mov { dst: b, src: r(s) });
        // Select between them on a predicate from the data.
        let sel = kb.reg(t);
        let (_, p) = src[4];
        then.push(Stmt::Select {
            dst: sel,
            cond: r(p),
            a: r(a),
            b: r(b),
        });
        // And with an immediate arm.
        let sel2 = kb.reg(t);
        then.push(Stmt::Select {
            dst: sel2,
            cond: r(p),
            a: r(sel),
            b: imm,
        });
        store(&mut kb, &mut then, sel2);
    }
    // Fma on f32 (immediate addend), f16 and i32.
    for (t, c) in [
        (SType::F32, f32c(0.25)),
        (SType::F16, Operand::Float(0.25, SType::F16)),
        (SType::I32, Operand::Int(5)),
    ] {
        let (_, s) = src.iter().find(|(st, _)| *st == t).copied().expect("typed");
        let d = kb.reg(t);
        then.push(Stmt::Fma {
            dst: d,
            a: r(s),
            b: r(s),
            c,
        });
        store(&mut kb, &mut then, d);
    }
    body.push(Stmt::If {
        cond: r(ok),
        then,
        els: vec![],
    });
    kb.finish(grid_for(N), body)
}

/// A block-wide tree sum through shared memory (f32), plus shared arrays of every other
/// type written and read back around barriers; one program per row of `x: [rows, n]`.
fn shared_reduce_kernel() -> SimtKernel {
    const ROWS: usize = 64;
    const COLS: usize = 1000;
    let mut kb = Kb::new("shared_row_sum");
    let x = kb.buf("x", DType::F32, ROWS * COLS, false);
    let y = kb.buf("y", DType::F32, ROWS, true);
    let side = kb.buf("side", DType::I32, ROWS * 4, true);
    let s_f32 = kb.smem(SType::F32, BLOCK as usize);
    let s_f16 = kb.smem(SType::F16, BLOCK as usize);
    let s_i32 = kb.smem(SType::I32, BLOCK as usize);
    let s_u32 = kb.smem(SType::U32, BLOCK as usize);
    let s_bool = kb.smem(SType::Bool, BLOCK as usize);
    let tid = kb.reg(SType::U32);
    let tid_i = kb.reg(SType::I32);
    let row = kb.reg(SType::U32);
    let row_i = kb.reg(SType::I32);
    let base = kb.reg(SType::I32);
    let acc = kb.reg(SType::F32);
    let c = kb.reg(SType::I32);
    let at = kb.reg(SType::I32);
    let v = kb.reg(SType::F32);
    let in_row = kb.reg(SType::Bool);
    let mut body = vec![
        Stmt::Special {
            dst: tid,
            which: Special::LocalId,
        },
        Stmt::Cast {
            dst: tid_i,
            src: r(tid),
        },
        Stmt::Special {
            dst: row,
            which: Special::GroupId(0),
        },
        Stmt::Cast {
            dst: row_i,
            src: r(row),
        },
        Stmt::Int {
            dst: base,
            op: IntOp::Mul,
            a: r(row_i),
            b: Operand::Int(COLS as i64),
        },
        Stmt::Mov {
            dst: acc,
            src: f32c(0.0),
        },
        // for c = tid; c < COLS; c += BLOCK: acc += x[base + c] (masked by an If)
        Stmt::Loop {
            var: c,
            start: r(tid_i),
            end: Operand::Int(COLS as i64),
            step: BLOCK as i64,
            body: vec![
                Stmt::Int {
                    dst: in_row,
                    op: IntOp::Lt,
                    a: r(c),
                    b: Operand::Int(COLS as i64),
                },
                Stmt::If {
                    cond: r(in_row),
                    then: vec![
                        Stmt::Int {
                            dst: at,
                            op: IntOp::Add,
                            a: r(base),
                            b: r(c),
                        },
                        Stmt::LoadGlobal {
                            dst: v,
                            buffer: x,
                            index: r(at),
                        },
                        Stmt::Binary {
                            dst: acc,
                            op: BinaryOp::Add,
                            a: r(acc),
                            b: r(v),
                        },
                    ],
                    els: vec![],
                },
            ],
        },
        Stmt::StoreShared {
            array: s_f32,
            index: r(tid_i),
            value: r(acc),
        },
        Stmt::Barrier,
    ];
    // Tree: for k in 0..8: half = 128 >> k (as 128 / 2^k computed by division).
    let k = kb.reg(SType::I32);
    let half = kb.reg(SType::I32);
    let pow = kb.reg(SType::I32);
    let active = kb.reg(SType::Bool);
    let other = kb.reg(SType::I32);
    let a = kb.reg(SType::F32);
    let b = kb.reg(SType::F32);
    body.push(Stmt::Mov {
        dst: pow,
        src: Operand::Int(1),
    });
    body.push(Stmt::Loop {
        var: k,
        start: Operand::Int(0),
        end: Operand::Int(8),
        step: 1,
        body: vec![
            Stmt::Int {
                dst: half,
                op: IntOp::Div,
                a: Operand::Int(BLOCK as i64 / 2),
                b: r(pow),
            },
            Stmt::Int {
                dst: active,
                op: IntOp::Lt,
                a: r(tid_i),
                b: r(half),
            },
            Stmt::If {
                cond: r(active),
                then: vec![
                    Stmt::Int {
                        dst: other,
                        op: IntOp::Add,
                        a: r(tid_i),
                        b: r(half),
                    },
                    Stmt::LoadShared {
                        dst: a,
                        array: s_f32,
                        index: r(tid_i),
                    },
                    Stmt::LoadShared {
                        dst: b,
                        array: s_f32,
                        index: r(other),
                    },
                    Stmt::Binary {
                        dst: a,
                        op: BinaryOp::Add,
                        a: r(a),
                        b: r(b),
                    },
                    Stmt::StoreShared {
                        array: s_f32,
                        index: r(tid_i),
                        value: r(a),
                    },
                ],
                els: vec![],
            },
            Stmt::Barrier,
            Stmt::Int {
                dst: pow,
                op: IntOp::Mul,
                a: r(pow),
                b: Operand::Int(2),
            },
        ],
    });
    // Other shared types: each thread writes its slot, barrier, thread 0 reads slot 1.
    let h = kb.reg(SType::F16);
    let p = kb.reg(SType::Bool);
    body.extend([
        Stmt::Cast {
            dst: h,
            src: r(tid_i),
        },
        Stmt::StoreShared {
            array: s_f16,
            index: r(tid_i),
            value: r(h),
        },
        Stmt::StoreShared {
            array: s_i32,
            index: r(tid_i),
            value: r(tid_i),
        },
        Stmt::StoreShared {
            array: s_u32,
            index: r(tid_i),
            value: r(tid),
        },
        Stmt::Int {
            dst: p,
            op: IntOp::Lt,
            a: r(tid_i),
            b: Operand::Int(7),
        },
        Stmt::StoreShared {
            array: s_bool,
            index: r(tid_i),
            value: r(p),
        },
        Stmt::StoreShared {
            array: s_bool,
            index: Operand::Int(255),
            value: Operand::Bool(false),
        },
        Stmt::Barrier,
    ]);
    let is0 = kb.reg(SType::Bool);
    let total = kb.reg(SType::F32);
    let hi = kb.reg(SType::I32);
    let hh = kb.reg(SType::F16);
    let uu = kb.reg(SType::U32);
    let pp = kb.reg(SType::Bool);
    let ii = kb.reg(SType::I32);
    let side_at = kb.reg(SType::I32);
    body.extend([
        Stmt::Int {
            dst: is0,
            op: IntOp::Lt,
            a: r(tid_i),
            b: Operand::Int(1),
        },
        Stmt::If {
            cond: r(is0),
            then: vec![
                Stmt::LoadShared {
                    dst: total,
                    array: s_f32,
                    index: Operand::Int(0),
                },
                Stmt::StoreGlobal {
                    buffer: y,
                    index: r(row_i),
                    value: r(total),
                },
                Stmt::LoadShared {
                    dst: hh,
                    array: s_f16,
                    index: Operand::Int(1),
                },
                Stmt::Cast {
                    dst: hi,
                    src: r(hh),
                },
                Stmt::LoadShared {
                    dst: ii,
                    array: s_i32,
                    index: Operand::Int(2),
                },
                Stmt::LoadShared {
                    dst: uu,
                    array: s_u32,
                    index: Operand::Int(3),
                },
                Stmt::LoadShared {
                    dst: pp,
                    array: s_bool,
                    index: r(hi),
                },
                Stmt::Int {
                    dst: side_at,
                    op: IntOp::Mul,
                    a: r(row_i),
                    b: Operand::Int(4),
                },
                Stmt::StoreGlobal {
                    buffer: side,
                    index: r(side_at),
                    value: r(hi),
                },
                Stmt::StoreGlobal {
                    buffer: side,
                    index: r(side_at),
                    value: r(ii),
                },
                Stmt::StoreGlobal {
                    buffer: side,
                    index: r(side_at),
                    value: r(uu),
                },
                Stmt::StoreGlobal {
                    buffer: side,
                    index: r(side_at),
                    value: r(pp),
                },
            ],
            els: vec![],
        },
    ]);
    kb.finish([ROWS as u32, 1, 1], body)
}

/// Nested loops with ifs, an if/else chain, constant conditions, a loop whose bound is a
/// register, and all three grid axes.
fn control_flow_kernel() -> SimtKernel {
    let mut kb = Kb::new("nested_control");
    let out = kb.buf("out", DType::F32, 8 * 8 * 4, true);
    let gx = kb.reg(SType::U32);
    let gy = kb.reg(SType::I32);
    let gz = kb.reg(SType::I32);
    let i = kb.reg(SType::I32);
    let j = kb.reg(SType::I32);
    let end = kb.reg(SType::I32);
    let acc = kb.reg(SType::F32);
    let fi = kb.reg(SType::F32);
    let even = kb.reg(SType::Bool);
    let rem = kb.reg(SType::I32);
    let small = kb.reg(SType::Bool);
    let idx = kb.reg(SType::I32);
    let gxi = kb.reg(SType::I32);
    let body = vec![
        Stmt::Special {
            dst: gx,
            which: Special::GroupId(0),
        },
        Stmt::Special {
            dst: gy,
            which: Special::GroupId(1),
        },
        Stmt::Special {
            dst: gz,
            which: Special::GroupId(2),
        },
        Stmt::Cast {
            dst: gxi,
            src: r(gx),
        },
        Stmt::Int {
            dst: end,
            op: IntOp::Add,
            a: r(gy),
            b: Operand::Int(3),
        },
        Stmt::Mov {
            dst: acc,
            src: f32c(0.0),
        },
        Stmt::Loop {
            var: i,
            start: Operand::Int(0),
            end: r(end),
            step: 1,
            body: vec![Stmt::Loop {
                var: j,
                start: r(i),
                end: Operand::Int(17),
                step: 3,
                body: vec![
                    Stmt::Int {
                        dst: rem,
                        op: IntOp::Rem,
                        a: r(j),
                        b: Operand::Int(2),
                    },
                    Stmt::Int {
                        dst: even,
                        op: IntOp::Lt,
                        a: r(rem),
                        b: Operand::Int(1),
                    },
                    Stmt::Cast { dst: fi, src: r(j) },
                    Stmt::If {
                        cond: r(even),
                        then: vec![Stmt::Binary {
                            dst: acc,
                            op: BinaryOp::Add,
                            a: r(acc),
                            b: r(fi),
                        }],
                        els: vec![
                            Stmt::Int {
                                dst: small,
                                op: IntOp::Lt,
                                a: r(j),
                                b: Operand::Int(9),
                            },
                            Stmt::If {
                                cond: r(small),
                                then: vec![Stmt::Binary {
                                    dst: acc,
                                    op: BinaryOp::Sub,
                                    a: r(acc),
                                    b: r(fi),
                                }],
                                els: vec![Stmt::Fma {
                                    dst: acc,
                                    a: r(acc),
                                    b: f32c(0.5),
                                    c: r(fi),
                                }],
                            },
                        ],
                    },
                ],
            }],
        },
        Stmt::If {
            cond: Operand::Bool(true),
            then: vec![Stmt::Binary {
                dst: acc,
                op: BinaryOp::Mul,
                a: r(acc),
                b: f32c(2.0),
            }],
            els: vec![Stmt::Barrier],
        },
        Stmt::If {
            cond: Operand::Bool(false),
            then: vec![Stmt::Barrier],
            els: vec![Stmt::Binary {
                dst: acc,
                op: BinaryOp::Max,
                a: r(acc),
                b: f32c(-1.0),
            }],
        },
        // idx = (gz * 8 + gy) * 8 + gx
        Stmt::Fma {
            dst: idx,
            a: r(gz),
            b: Operand::Int(8),
            c: r(gy),
        },
        Stmt::Fma {
            dst: idx,
            a: r(idx),
            b: Operand::Int(8),
            c: r(gxi),
        },
        Stmt::StoreGlobal {
            buffer: out,
            index: r(idx),
            value: r(acc),
        },
    ];
    let mut k = kb.finish([8, 8, 4], body);
    k.workgroup_size = 32;
    k
}

/// The register-heavy shape of the matmul lowering: A and B tiles staged in shared
/// memory, an 8x8 f32 micro-tile of accumulators per thread, a K loop with barriers,
/// then a tanh epilogue. ptxas must fit it in 255 registers per thread without spilling.
fn micro_tile_matmul_kernel() -> SimtKernel {
    const M: usize = 128;
    const K: usize = 64;
    const NN: usize = 128;
    const BK: usize = 8;
    const TM: usize = 8;
    const TN: usize = 8;
    let mut kb = Kb::new("micro_tile_matmul");
    let a = kb.buf("a", DType::F32, M * K, false);
    let b = kb.buf("b", DType::F32, K * NN, false);
    let c = kb.buf("c", DType::F32, M * NN, true);
    let sa = kb.smem(SType::F32, M * BK);
    let sb = kb.smem(SType::F32, BK * NN);
    let tid = kb.reg(SType::U32);
    let t = kb.reg(SType::I32);
    let ty = kb.reg(SType::I32);
    let tx = kb.reg(SType::I32);
    let kk = kb.reg(SType::I32);
    let kin = kb.reg(SType::I32);
    let tmp = kb.reg(SType::I32);
    let tmp2 = kb.reg(SType::I32);
    let tmp3 = kb.reg(SType::I32);
    let v = kb.reg(SType::F32);
    let accs: Vec<Reg> = (0..TM * TN).map(|_| kb.reg(SType::F32)).collect();
    let av: Vec<Reg> = (0..TM).map(|_| kb.reg(SType::F32)).collect();
    let bv: Vec<Reg> = (0..TN).map(|_| kb.reg(SType::F32)).collect();
    let mut body = vec![
        Stmt::Special {
            dst: tid,
            which: Special::LocalId,
        },
        Stmt::Cast {
            dst: t,
            src: r(tid),
        },
        Stmt::Int {
            dst: ty,
            op: IntOp::Div,
            a: r(t),
            b: Operand::Int(16),
        },
        Stmt::Int {
            dst: tx,
            op: IntOp::Rem,
            a: r(t),
            b: Operand::Int(16),
        },
    ];
    for &acc in &accs {
        body.push(Stmt::Mov {
            dst: acc,
            src: f32c(0.0),
        });
    }
    let mut kloop = vec![];
    // Stage A[:, kk..kk+BK] and B[kk..kk+BK, :] : 1024 elements each, 4 per thread.
    for rep in 0..4i64 {
        kloop.extend([
            // e = t + rep*256; row = e / BK; col = e % BK; sa[e] = a[row*K + kk + col]
            Stmt::Int {
                dst: tmp,
                op: IntOp::Add,
                a: r(t),
                b: Operand::Int(rep * 256),
            },
            Stmt::Int {
                dst: tmp2,
                op: IntOp::Div,
                a: r(tmp),
                b: Operand::Int(BK as i64),
            },
            Stmt::Int {
                dst: tmp3,
                op: IntOp::Rem,
                a: r(tmp),
                b: Operand::Int(BK as i64),
            },
            Stmt::Fma {
                dst: tmp2,
                a: r(tmp2),
                b: Operand::Int(K as i64),
                c: r(kk),
            },
            Stmt::Int {
                dst: tmp2,
                op: IntOp::Add,
                a: r(tmp2),
                b: r(tmp3),
            },
            Stmt::LoadGlobal {
                dst: v,
                buffer: a,
                index: r(tmp2),
            },
            Stmt::StoreShared {
                array: sa,
                index: r(tmp),
                value: r(v),
            },
            // sb[e] = b[(kk + e / NN) * NN + e % NN] = b[kk*NN + e]
            Stmt::Fma {
                dst: tmp2,
                a: r(kk),
                b: Operand::Int(NN as i64),
                c: r(tmp),
            },
            Stmt::LoadGlobal {
                dst: v,
                buffer: b,
                index: r(tmp2),
            },
            Stmt::StoreShared {
                array: sb,
                index: r(tmp),
                value: r(v),
            },
        ]);
    }
    kloop.push(Stmt::Barrier);
    let mut inner = vec![];
    for (m, &avm) in av.iter().enumerate() {
        // av[m] = sa[(ty*TM + m) * BK + kin]
        inner.extend([
            Stmt::Fma {
                dst: tmp,
                a: r(ty),
                b: Operand::Int(TM as i64),
                c: Operand::Int(m as i64),
            },
            Stmt::Fma {
                dst: tmp,
                a: r(tmp),
                b: Operand::Int(BK as i64),
                c: r(kin),
            },
            Stmt::LoadShared {
                dst: avm,
                array: sa,
                index: r(tmp),
            },
        ]);
    }
    for (n, &bvn) in bv.iter().enumerate() {
        // bv[n] = sb[kin * NN + tx*TN + n]
        inner.extend([
            Stmt::Fma {
                dst: tmp,
                a: r(tx),
                b: Operand::Int(TN as i64),
                c: Operand::Int(n as i64),
            },
            Stmt::Fma {
                dst: tmp,
                a: r(kin),
                b: Operand::Int(NN as i64),
                c: r(tmp),
            },
            Stmt::LoadShared {
                dst: bvn,
                array: sb,
                index: r(tmp),
            },
        ]);
    }
    for m in 0..TM {
        for n in 0..TN {
            let acc = accs[m * TN + n];
            inner.push(Stmt::Fma {
                dst: acc,
                a: r(av[m]),
                b: r(bv[n]),
                c: r(acc),
            });
        }
    }
    kloop.push(Stmt::Loop {
        var: kin,
        start: Operand::Int(0),
        end: Operand::Int(BK as i64),
        step: 1,
        body: inner,
    });
    kloop.push(Stmt::Barrier);
    body.push(Stmt::Loop {
        var: kk,
        start: Operand::Int(0),
        end: Operand::Int(K as i64),
        step: BK as i64,
        body: kloop,
    });
    for m in 0..TM {
        for n in 0..TN {
            let acc = accs[m * TN + n];
            body.extend([
                Stmt::Unary {
                    dst: acc,
                    op: UnaryOp::Tanh,
                    x: r(acc),
                },
                // c[(ty*TM + m) * NN + tx*TN + n]
                Stmt::Fma {
                    dst: tmp,
                    a: r(ty),
                    b: Operand::Int(TM as i64),
                    c: Operand::Int(m as i64),
                },
                Stmt::Fma {
                    dst: tmp2,
                    a: r(tx),
                    b: Operand::Int(TN as i64),
                    c: Operand::Int(n as i64),
                },
                Stmt::Fma {
                    dst: tmp,
                    a: r(tmp),
                    b: Operand::Int(NN as i64),
                    c: r(tmp2),
                },
                Stmt::StoreGlobal {
                    buffer: c,
                    index: r(tmp),
                    value: r(acc),
                },
            ]);
        }
    }
    kb.finish([1, 1, 1], body)
}

fn all_hand_built() -> Vec<SimtKernel> {
    vec![
        unary_kernel(SType::F32),
        unary_kernel(SType::F16),
        binary_int_kernel(),
        dtype_io_kernel(),
        vector_io_kernel(),
        cast_select_kernel(),
        shared_reduce_kernel(),
        control_flow_kernel(),
        micro_tile_matmul_kernel(),
    ]
}

/// Every `Stmt` variant appears somewhere in the hand-built kernels.
#[test]
fn hand_built_kernels_cover_every_statement() {
    fn walk(stmts: &[Stmt], seen: &mut BTreeMap<&'static str, usize>) {
        for s in stmts {
            let name = match s {
                Stmt::Special { .. } => "Special",
                Stmt::Mov { .. } => "Mov",
                Stmt::Unary { .. } => "Unary",
                Stmt::Binary { .. } => "Binary",
                Stmt::Int { .. } => "Int",
                Stmt::Fma { .. } => "Fma",
                Stmt::Cast { .. } => "Cast",
                Stmt::Bitcast { .. } => "Bitcast",
                Stmt::Select { .. } => "Select",
                Stmt::LoadGlobal { .. } => "LoadGlobal",
                Stmt::StoreGlobal { .. } => "StoreGlobal",
                Stmt::LoadGlobal4 { .. } => "LoadGlobal4",
                Stmt::StoreGlobal4 { .. } => "StoreGlobal4",
                Stmt::LoadShared { .. } => "LoadShared",
                Stmt::StoreShared { .. } => "StoreShared",
                Stmt::Barrier => "Barrier",
                // WGSL only: the lowering refuses a PTX record with a `subgroup_size`
                // and the printer refuses the statement (tested below).
                Stmt::Shuffle { .. } => "Shuffle",
                Stmt::If { then, els, .. } => {
                    walk(then, seen);
                    walk(els, seen);
                    "If"
                }
                Stmt::Loop { body, .. } => {
                    walk(body, seen);
                    "Loop"
                }
            };
            *seen.entry(name).or_default() += 1;
        }
    }
    let mut seen = BTreeMap::new();
    for k in all_hand_built() {
        walk(&k.body, &mut seen);
    }
    assert_eq!(seen.len(), 18, "statements covered: {seen:?}");
}

#[test]
fn subgroup_shuffles_are_refused() {
    let mut k = unary_kernel(SType::F32);
    let dst = Reg(k.regs.len() as u32);
    k.regs.push(SType::F32);
    k.body.push(Stmt::Shuffle {
        dst,
        src: Operand::Float(1.0, SType::F32),
        lane: Operand::Int(0),
    });
    match print_kernel(&k, 80) {
        Err(e) => assert!(e.to_string().contains("shuffle"), "{e}"),
        Ok(_) => panic!("a shuffle printed as PTX"),
    }
}

#[test]
fn unary_ops_assemble() {
    for t in [SType::F32, SType::F16] {
        let text = print_and_assemble(&unary_kernel(t));
        // Accurate sequences, not the 2^-11 tanh.approx or a bare lg2.approx * ln2.
        assert!(!text.contains("tanh.approx"));
        assert!(text.contains("ex2.approx.f32"));
        assert!(text.contains("sqrt.rn.f32") && text.contains("rcp.rn.f32"));
        assert!(text.contains("div.rn.f32"));
        if t == SType::F16 {
            assert!(text.contains("cvt.f32.f16") && text.contains("cvt.rn.f16.f32"));
            assert!(text.contains("neg.f16"));
        }
    }
}

#[test]
fn binary_and_int_ops_assemble() {
    let text = print_and_assemble(&binary_int_kernel());
    for ins in [
        "add.rn.f32",
        "sub.rn.f32",
        "mul.rn.f32",
        "div.rn.f32",
        "max.NaN.f32",
        "min.NaN.f32",
        "add.rn.f16",
        "max.NaN.f16",
        "add.s32",
        "mul.lo.s32",
        "div.s32",
        "rem.s32",
        "min.s32",
        "max.s32",
        "div.u32",
        "rem.u32",
        "setp.lt.s32",
        "setp.lt.u32",
        "setp.lt.f32",
        "setp.lt.f16",
        "and.pred",
        "and.b32",
    ] {
        assert!(text.contains(ins), "missing {ins}");
    }
}

#[test]
fn every_dtype_loads_and_stores() {
    let text = print_and_assemble(&dtype_io_kernel());
    for ins in [
        "ld.global.f32",
        "ld.global.b16",
        "ld.global.u16",
        "ld.global.s32",
        "ld.global.u32",
        "st.global.f32",
        "st.global.b16",
        "st.global.s32",
        "st.global.u32",
        "cvt.rn.bf16.f32",
        "shl.b32",
        "mul.wide.s32",
        "cvta.to.global.u64",
    ] {
        assert!(text.contains(ins), "missing {ins}");
    }
}

#[test]
fn vector_loads_and_stores_assemble() {
    let text = print_and_assemble(&vector_io_kernel());
    for ins in [
        "ld.global.v4.f32",
        "ld.global.v4.s32",
        "ld.global.v4.u32",
        "st.global.v4.f32",
        "st.global.v4.s32",
        "st.global.v4.u32",
    ] {
        assert!(text.contains(ins), "missing {ins}");
    }
}

#[test]
fn casts_selects_and_fma_assemble() {
    let text = print_and_assemble(&cast_select_kernel());
    for ins in [
        "cvt.rzi.s32.f32",
        "cvt.rn.f32.s32",
        "cvt.rn.f32.u32",
        "cvt.rzi.u32.f16",
        "setp.neu.f32",
        "selp.f32",
        "selp.b16",
        "fma.rn.f32",
        "fma.rn.f16",
        "mad.lo.s32",
        "mov.pred",
    ] {
        assert!(text.contains(ins), "missing {ins}");
    }
}

#[test]
fn shared_memory_and_barriers_assemble() {
    let text = print_and_assemble(&shared_reduce_kernel());
    assert!(text.contains(".shared .align 16 .f32 smem0[256];"));
    assert!(text.contains(".shared .align 16 .b16 smem1[256];"));
    assert!(text.contains("bar.sync 0;"));
    assert!(text.contains("ld.shared.f32") && text.contains("st.shared.b16"));
    assert!(text.contains(".reqntid 256, 1, 1"));
}

#[test]
fn nested_control_flow_assembles() {
    let text = print_and_assemble(&control_flow_kernel());
    assert!(text.contains("%ctaid.y") && text.contains("%ctaid.z"));
    // The constant conditions are folded: the barriers in their dead arms are gone.
    assert!(!text.contains("bar.sync"));
    assert!(text.contains(".reqntid 32, 1, 1"));
}

#[test]
fn micro_tile_matmul_fits_in_registers() {
    let k = micro_tile_matmul_kernel();
    let text = print_kernel(&k, 80).expect("prints");
    for sm in [80, 90] {
        let t = text.replace(".target sm_80", &format!(".target sm_{sm}"));
        let info = assemble_checked(&k.name, &t, sm);
        // 64 accumulators + 16 operands + addressing: well above 64, below the 255 cap.
        assert!(info.registers >= 64 && info.registers <= 255, "{info:?}");
    }
}

#[test]
fn header_names_the_isa_target_and_parameters() {
    let k = unary_kernel(SType::F32);
    let text = print_kernel(&k, 90).expect("prints");
    assert!(text.contains(&format!(".version {PTX_ISA_VERSION}\n")));
    assert!(text.contains(".target sm_90\n"));
    assert!(text.contains(".address_size 64\n"));
    assert!(text.contains(".visible .entry unary_f32("));
    assert!(text.contains(".param .u64 p0_x,"));
    assert!(text.contains(".param .u64 p1_out\n"));
    assert_eq!(EMIT_SM, 80);
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

fn tiny(body: Vec<Stmt>, regs: Vec<SType>) -> SimtKernel {
    SimtKernel {
        name: "tiny".into(),
        buffers: vec![SimtBuffer {
            name: "x".into(),
            dtype: DType::F32,
            len: 4,
            writable: true,
            vector: false,
        }],
        workgroup_size: 32,
        grid: [1, 1, 1],
        regs,
        shared: vec![],
        body,
    }
}

#[test]
fn unsupported_architecture_and_bad_names_are_rejected() {
    let k = tiny(vec![], vec![]);
    assert!(print_kernel(&k, 80).is_ok());
    assert!(matches!(
        print_kernel(&k, 75),
        Err(CompileError::Unsupported { .. })
    ));
    assert!(matches!(
        print_kernel(&k, 100),
        Err(CompileError::Unsupported { .. })
    ));
    let mut bad = k.clone();
    bad.name = "not-an-identifier".into();
    assert!(matches!(
        print_kernel(&bad, 80),
        Err(CompileError::Unsupported { .. })
    ));
    // No buffers at all.
    let mut none = k.clone();
    none.buffers.clear();
    none.name = "no_buffers".into();
    let text = print_kernel(&none, 90).expect("prints");
    assemble_checked("no_buffers", &text, 90);
    // Buffer names are sanitised, never rejected.
    let mut odd = k;
    odd.buffers[0].name = "x.weight[0]".into();
    let text = print_kernel(&odd, 80).expect("prints");
    assert!(text.contains(".param .u64 p0_x_weight_0_"));
    assemble_checked("tiny_odd_names", &text, 80);
}

#[test]
fn ill_typed_programs_are_internal_errors() {
    let f = SType::F32;
    let cases: Vec<(&str, SimtKernel)> = vec![
        (
            "float register as an index",
            tiny(
                vec![Stmt::LoadGlobal {
                    dst: Reg(0),
                    buffer: 0,
                    index: r(Reg(0)),
                }],
                vec![f],
            ),
        ),
        (
            "undeclared register",
            tiny(
                vec![Stmt::Mov {
                    dst: Reg(3),
                    src: f32c(1.0),
                }],
                vec![f],
            ),
        ),
        (
            "missing buffer",
            tiny(
                vec![Stmt::LoadGlobal {
                    dst: Reg(0),
                    buffer: 1,
                    index: Operand::Int(0),
                }],
                vec![f],
            ),
        ),
        (
            "missing shared array",
            tiny(
                vec![Stmt::LoadShared {
                    dst: Reg(0),
                    array: 0,
                    index: Operand::Int(0),
                }],
                vec![f],
            ),
        ),
        (
            "zero loop step",
            tiny(
                vec![Stmt::Loop {
                    var: Reg(0),
                    start: Operand::Int(0),
                    end: Operand::Int(4),
                    step: 0,
                    body: vec![],
                }],
                vec![SType::I32],
            ),
        ),
        (
            "float loop variable",
            tiny(
                vec![Stmt::Loop {
                    var: Reg(0),
                    start: Operand::Int(0),
                    end: Operand::Int(4),
                    step: 1,
                    body: vec![],
                }],
                vec![f],
            ),
        ),
        (
            "exp of an integer",
            tiny(
                vec![Stmt::Unary {
                    dst: Reg(0),
                    op: UnaryOp::Exp,
                    x: Operand::Int(1),
                }],
                vec![SType::I32],
            ),
        ),
        (
            "mixing f32 and i32",
            tiny(
                vec![Stmt::Binary {
                    dst: Reg(0),
                    op: BinaryOp::Add,
                    a: r(Reg(0)),
                    b: r(Reg(1)),
                }],
                vec![f, SType::I32],
            ),
        ),
        (
            "grid axis 3",
            tiny(
                vec![Stmt::Special {
                    dst: Reg(0),
                    which: Special::GroupId(3),
                }],
                vec![SType::U32],
            ),
        ),
    ];
    for (what, k) in cases {
        match print_kernel(&k, 80) {
            Err(CompileError::Internal { stage: "ptx", .. }) => {}
            other => panic!("{what}: expected an internal error, got {other:?}"),
        }
    }
}

/// The harness can fail: ptxas rejects a corrupted module and the parser reads real
/// `-v` output.
#[test]
fn harness_detects_rejections_and_spills() {
    let text = print_kernel(&unary_kernel(SType::F32), 80).expect("prints");
    let broken = text.replacen("add.rn.f32", "add.rn.f33", 1);
    assert_ne!(broken, text);
    let err = assemble("broken_on_purpose", &broken, 80).expect_err("ptxas must reject it");
    assert!(err.contains("ptxas rejected"), "{err}");
    // Spills are seen: the 8x8 micro-tile with 1024 threads per block has at most 64
    // registers per thread for 64 accumulators and more.
    let mut k = micro_tile_matmul_kernel();
    k.workgroup_size = 1024;
    let text = print_kernel(&k, 80).expect("prints");
    let info = assemble("micro_tile_matmul_1024_threads", &text, 80).expect("assembles");
    assert!(info.registers <= 64, "{info:?}");
    assert!(info.spill_stores > 0 && info.spill_loads > 0, "{info:?}");
    let parsed = parse_ptxas_v(
        "ptxas info    : Function properties for k\n    8 bytes stack frame, 4 bytes spill \
         stores, 12 bytes spill loads\nptxas info    : Used 40 registers, used 1 barriers",
    );
    assert_eq!(
        parsed,
        Some(PtxasInfo {
            registers: 40,
            spill_stores: 4,
            spill_loads: 12,
            stack_frame: 8
        })
    );
}

// ---------------------------------------------------------------------------------------
// Real plans
// ---------------------------------------------------------------------------------------

/// The demo MLP block sum(tanh(x @ w + b), 1), built inline (no tessera-models).
fn mlp_graph(batch: usize, d_in: usize, d_hidden: usize) -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", &[batch, d_in], DType::F32).expect("x");
    let w = g.param("w", &[d_in, d_hidden], DType::F32).expect("w");
    let b = g.param("b", &[d_hidden], DType::F32).expect("b");
    let h = g.matmul(x, w).expect("matmul");
    let h = g.add(h, b).expect("add");
    let h = g.tanh(h).expect("tanh");
    let y = g.sum(h, 1, false).expect("sum");
    g.set_name(y, "y").expect("name");
    g.mark_output(y).expect("output");
    g
}

/// A few more shapes the scheduler produces: an elementwise chain of every unary and
/// binary op, reductions (max, mean) over either axis, transposed and batched matmul.
fn more_graphs() -> Vec<(&'static str, Graph)> {
    let mut out = vec![];

    let mut g = Graph::new();
    let x = g.input("x", &[7, 129], DType::F32).expect("x");
    let z = g.input("z", &[7, 129], DType::F32).expect("z");
    let mut h = g.sqrt(x).expect("sqrt");
    h = g.log(h).expect("log");
    h = g.exp(h).expect("exp");
    h = g.rsqrt(h).expect("rsqrt");
    h = g.neg(h).expect("neg");
    h = g.tanh(h).expect("tanh");
    h = g.add(h, z).expect("add");
    h = g.sub(h, z).expect("sub");
    h = g.mul(h, z).expect("mul");
    h = g.div(h, z).expect("div");
    h = g.max(h, z).expect("max");
    g.mark_output(h).expect("output");
    out.push(("elementwise_chain", g));

    let mut g = Graph::new();
    let x = g.input("x", &[33, 1000], DType::F32).expect("x");
    let m = g.reduce_max(x, 1, true).expect("max");
    let e = g.sub(x, m).expect("sub");
    let e = g.exp(e).expect("exp");
    let s = g.mean(e, 0, false).expect("mean");
    g.mark_output(s).expect("output");
    out.push(("reductions", g));

    let mut g = Graph::new();
    let a = g.input("a", &[64, 17], DType::F32).expect("a");
    let b = g.input("b", &[129, 64], DType::F32).expect("b");
    let c = g.matmul_t(a, b, true, true).expect("matmul");
    g.mark_output(c).expect("output");
    out.push(("matmul_transposed", g));

    let mut g = Graph::new();
    let a = g.input("a", &[3, 17, 64], DType::F32).expect("a");
    let b = g.input("b", &[3, 64, 33], DType::F32).expect("b");
    let c = g.matmul(a, b).expect("matmul");
    let p = g.permute(c, &[0, 2, 1]).expect("permute");
    let q = g.exp(p).expect("exp");
    g.mark_output(q).expect("output");
    out.push(("batched_matmul_permute", g));

    out
}

#[test]
fn plan_kernels_assemble_for_sm80_and_sm90() {
    let target = Target::ptx();
    let mut graphs = vec![("mlp_block", mlp_graph(4, 64, 129))];
    graphs.extend(more_graphs());
    for (gname, g) in graphs {
        let plan = tessera_compiler::compile(&g, &target)
            .unwrap_or_else(|e| panic!("{gname}: compile failed: {e}"));
        let artifact = tessera_compiler::backend::emit(&plan, &target)
            .unwrap_or_else(|e| panic!("{gname}: PTX emission failed: {e}"));
        assert_eq!(artifact.kernels.len(), plan.kernels.len());
        assert_eq!(artifact.files.len(), plan.kernels.len());
        for (tile, info) in plan.kernels.iter().zip(&artifact.kernels) {
            let file = artifact
                .files
                .iter()
                .find(|f| f.name == info.file)
                .unwrap_or_else(|| panic!("{gname}: no file {}", info.file));
            assert_eq!(info.file, format!("{}.ptx", info.name));
            assert!(file.contents.contains(".target sm_80"));
            let report_name = format!("{gname}/{}", info.name);
            assemble_checked(&report_name.replace('/', "__"), &file.contents, 80);
            // sm_90: the same kernel printed for sm_90.
            let simt = tessera_compiler::simt::lower_kernel(tile, &target).expect("lowers");
            let t90 = print_kernel(&simt, 90).expect("prints for sm_90");
            assert_eq!(
                t90,
                file.contents.replace(".target sm_80", ".target sm_90"),
                "{report_name}: sm_90 printing differs beyond the target line"
            );
            assemble_checked(&report_name.replace('/', "__"), &t90, 90);
        }
    }
}

/// `emit_plan` checks the target record's limits.
#[test]
fn emit_plan_respects_target_limits() {
    let g = mlp_graph(4, 64, 129);
    let mut target = Target::ptx();
    let plan =
        tessera_compiler::compile(&g, &target).unwrap_or_else(|e| panic!("compile failed: {e}"));
    // A target with no shared memory cannot take a staged matmul; the lowering or the
    // emitter must say so with a typed error, never emit.
    target.shared_memory_bytes = 0;
    match ptx::emit_plan(&plan, &target) {
        Err(CompileError::Limit { .. }) | Err(CompileError::Unsupported { .. }) => {}
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn node_names_stay_inside_comments() {
    // Node names appear in each kernel's header comments: a non-ASCII letter (which
    // ptxas refuses anywhere in a file), a newline and a trailing backslash must not
    // reach the file raw. The same graph goes through WGSL (validated by naga when
    // emitted) and Ascend C.
    let mut g = Graph::new();
    let x = g.input("größe", &[70], DType::F32).unwrap();
    let y = g.input("a\nexit;", &[70], DType::F32).unwrap();
    let s = g.add(x, y).unwrap();
    g.set_name(s, "sum\\").unwrap();
    g.mark_output(s).unwrap();
    for target in [Target::ptx(), Target::wgsl(), Target::ascend_910b()] {
        let (_, art) = tessera_compiler::compile_and_emit(&g, &target)
            .unwrap_or_else(|e| panic!("{:?}: {e}", target.kind));
        for f in &art.files {
            assert!(f.contents.is_ascii(), "{}: non-ASCII text", f.name);
            assert!(
                !f.contents.contains("\nexit;"),
                "{}: a name broke out",
                f.name
            );
            assert!(!f.contents.contains("sum\\"), "{}: a raw backslash", f.name);
            if target.kind == tessera_compiler::TargetKind::Ptx {
                assemble_checked(&f.name, &f.contents, 80);
            }
        }
    }
}
