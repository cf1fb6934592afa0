//! Ascend C backend: tile IR -> Ascend C kernels (vector unit over whole tiles, Cube unit
//! for matmul) plus AscendCL host code and a CMake project for CANN.
//!
//! Mapping (see `docs/ascend-c.md` §10):
//! - one program instance = one iteration of
//!   `for (pid = GetBlockIdx(); pid < programs; pid += GetBlockNum())`, `pid` unflattened
//!   to the three grid axes (axis 0 fastest); `blockDim` = min(programs, vector cores) for
//!   vector kernels, min(programs, cube cores) for kernels with a `dot`;
//! - tiles are `LocalTensor`s in the Unified Buffer (`vector`): loads and stores are
//!   `DataCopyPad` between GM and UB through `TQue`s, other tiles live in `TBuf<VECCALC>`
//!   slots, elementwise ops and reductions are vector instructions in count form;
//! - a `dot` makes the kernel MIX (`cube`): the AIC runs the matmul loop on the Cube
//!   unit and writes each accumulator to a GM workspace, then releases the AIVs with a
//!   cross-core flag; the AIVs run the rest of the program (the epilogue) on it;
//! - the workspace (a MIX kernel's last argument, one GM buffer the host shares between
//!   all matmul kernels of a plan) starts with a zero region of
//!   [`workspace_zero_region`] bytes, the same for every kernel of a target and written by
//!   none: the cube pads partial tiles from there. The accumulators follow it. The host
//!   zero-fills the region once; since no launch writes it, every launch finds zeros
//!   whatever ran before (each kernel's size is in its source, see [`kernel_workspace`]);
//! - UB, L1, L0A/L0B and L0C budgets are checked at emit time against the [`Target`]
//!   record: a kernel that would overflow is a [`CompileError::Limit`] naming its buffers.
//!
//! Files of an [`Artifact`]: one `<kernel>.cpp` per kernel, `host.cpp` (the AscendCL
//! program running the whole plan, see [`host`]) and `CMakeLists.txt`.

mod cpp;
mod cube;
pub mod host;
mod vector;

use super::{Artifact, KernelInfo, SourceFile};
use crate::error::CompileError;
use crate::schedule::plan::Plan;
use crate::target::{Target, TargetKind};
use crate::tile::TileKernel;
use cpp::Writer;
use std::collections::HashSet;

pub use host::{host_io, HostFile, HostIo};
pub use vector::fits;

/// How a kernel uses the AI cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// Vector cores only (`KERNEL_TYPE_AIV_ONLY`).
    Vector,
    /// Cube + vector (`KERNEL_TYPE_MIX_AIC_1_2`): the kernel has a matmul.
    Mix,
}

/// One emitted kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmittedKernel {
    /// Entry-point name (a C identifier, unique in its plan).
    pub name: String,
    /// The `<name>.cpp` source.
    pub file: SourceFile,
    /// Vector-only or MIX.
    pub kind: KernelKind,
    /// Cores launched (`blockDim`; AIC/AIV groups for MIX kernels).
    pub block_dim: u32,
    /// Bytes of GM workspace the kernel takes as its last argument (0: no workspace
    /// argument). Layout: [`workspace_zero_region`] bytes of zeros (shared by every
    /// matmul kernel, written by none), then the kernel's accumulators.
    pub workspace_bytes: usize,
    /// Bytes at the start of the workspace that must hold zeros when the kernel runs
    /// (a prefix of the shared zero region; 0 without a workspace). The host zero-fills
    /// the region once, before the first launch.
    pub workspace_zero_bytes: usize,
    /// Byte offset of the accumulators in the workspace ([`workspace_zero_region`]; 0
    /// without a workspace). The kernel writes `[offset, workspace_bytes)` before it reads
    /// it back.
    pub workspace_acc_offset: usize,
    /// Kernel argument names in order (buffer parameters, then `workspace` if any).
    pub args: Vec<String>,
    /// Bytes of Unified Buffer the vector side reserves.
    pub ub_bytes: usize,
}

fn unsupported(kernel: &str, what: impl Into<String>) -> CompileError {
    CompileError::Unsupported {
        target: "ascendc".into(),
        kernel: kernel.to_string(),
        what: what.into(),
    }
}

/// Names that generated code uses for itself; a parameter with one of these names gets a
/// `_buf` suffix.
fn reserved(name: &str) -> bool {
    let generated_prefix = [
        "v", "s", "i", "c", "tmp", "in_q", "out_q", "ld", "st", "so", "sc", "acc", "red", "init",
        "pad", "vr", "vc", "svr", "svc", "b", "scratch", "next", "pid", "st_out",
    ];
    let fixed = [
        "pid",
        "pipe",
        "workspace",
        "group",
        "sub",
        "local",
        "kPrograms",
        "kCubeDone",
        "row",
        "c0",
        "n8",
        "reduce_buf",
        "scalar_buf",
        "acc_ws",
        "zero_ws",
        "am",
        "ak",
        "bk",
        "bn",
        "kb",
        "rows",
        "mm",
        "fp",
        "nd",
        "ld",
        "ldt",
        "a_l1",
        "b_l1",
        "a_l0",
        "b_l0",
        "c_l0",
        "a_l1_q",
        "b_l1_q",
        "a_l0_q",
        "b_l0_q",
        "c_l0_q",
        "k_first",
        "g",
        "j",
    ];
    if fixed.contains(&name) || name.ends_with("_gm") {
        return true;
    }
    generated_prefix.iter().any(|p| {
        name.strip_prefix(p).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '_')
        })
    })
}

/// Emits one kernel. `name` is its (already unique) entry-point name.
pub fn emit_kernel_named(
    kernel: &TileKernel,
    name: &str,
    target: &Target,
) -> Result<EmittedKernel, CompileError> {
    if target.kind != TargetKind::AscendC {
        return Err(unsupported(
            name,
            format!("emitting Ascend C for a {} target record", target.kind),
        ));
    }
    let programs = kernel.num_programs();
    if programs > i32::MAX as u64 {
        return Err(CompileError::Limit {
            kernel: name.to_string(),
            target: "ascendc".into(),
            limit: "program instances (i32)",
            needed: programs as usize,
            available: i32::MAX as usize,
        });
    }
    // Argument names: sanitised, unique, clear of generated names.
    let mut seen = HashSet::new();
    let mut args = Vec::new();
    for p in &kernel.params {
        let mut a = cpp::ident(&p.name);
        if reserved(&a) {
            a.push_str("_buf");
        }
        while !seen.insert(a.clone()) {
            a.push('_');
        }
        args.push(a);
    }
    let gm: Vec<String> = args.iter().map(|a| format!("{a}_gm")).collect();

    // A dot makes the kernel MIX.
    let acc_cols = kernel_acc_cols(kernel);
    let pitch = vector::kernel_pitch(kernel, acc_cols);
    let plan = cube::plan(kernel, name, pitch, "acc_ws")?;
    let kind = if plan.is_some() {
        KernelKind::Mix
    } else {
        KernelKind::Vector
    };
    let cores = match kind {
        KernelKind::Vector => target.vector_cores,
        KernelKind::Mix => target.cube_cores,
    };
    if cores == 0 {
        return Err(unsupported(
            name,
            "a target record without vector / cube cores",
        ));
    }
    let block_dim = (programs.min(cores as u64)).max(1) as u32;

    let vcode = vector::lower_vector_side(kernel, name, target, gm.clone(), plan.as_ref())?;

    let [g0, g1, g2] = kernel.grid;
    let unflatten = vec![
        format!("const int32_t pid0 = pid % {};", g0.max(1)),
        format!(
            "const int32_t pid1 = (pid / {}) % {};",
            g0.max(1),
            g1.max(1)
        ),
        format!(
            "const int32_t pid2 = pid / {};",
            (g0.max(1) as u64) * (g1.max(1) as u64)
        ),
        "(void)pid0; (void)pid1; (void)pid2;".to_string(),
    ];
    let _ = g2;

    // Workspace of a MIX kernel. Layout shared by every MIX kernel of every plan for this
    // target: a zero region at [0, zero_region) that no kernel writes (each kernel reads a
    // prefix of it), then this kernel's accumulators. The host zero-fills the region once
    // and every matmul launch can rely on it, whatever ran before.
    let zero_region = workspace_zero_region(target);
    let (mut workspace_bytes, mut workspace_zero_bytes, mut acc_bytes) = (0, 0, 0);
    if let Some(cp) = &plan {
        if cp.zero_bytes() > zero_region {
            return Err(CompileError::Limit {
                kernel: format!("{name} (workspace zero region)"),
                target: "ascendc".into(),
                limit: "l0ab_bytes",
                needed: cp.zero_bytes(),
                available: zero_region,
            });
        }
        acc_bytes = programs as usize * cp.bm * pitch * 4;
        workspace_bytes = zero_region + acc_bytes;
        workspace_zero_bytes = cp.zero_bytes();
    }
    let mut w = Writer::new(0);
    w.comment(format!(
        "Generated by Tessera from tile kernel `{}`.",
        kernel.name
    ));
    w.comment(format!(
        "grid {:?} = {programs} program instance(s), run on blockDim = {block_dim} {}.",
        kernel.grid,
        match kind {
            KernelKind::Vector => "vector core(s)",
            KernelKind::Mix => "AI core group(s) (1 cube + 2 vector cores each)",
        }
    ));
    w.comment("Program instance `pid` is one iteration of the loop over GetBlockIdx(), GetBlockIdx() + GetBlockNum(), ...");
    if plan.is_some() {
        w.comment(format!(
            "{WORKSPACE_TAG} {workspace_bytes} bytes, zero prefix {workspace_zero_bytes} bytes (the last argument; its first {workspace_zero_bytes} bytes must hold zeros, which the host writes once: no kernel writes below byte {zero_region})"
        ));
    }
    w.line("#include \"kernel_operator.h\"");
    w.line("");
    let mut sig: Vec<String> = args.iter().map(|a| format!("GM_ADDR {a}")).collect();
    if plan.is_some() {
        sig.push("GM_ADDR workspace".to_string());
    }
    w.line(format!(
        "extern \"C\" __global__ __aicore__ void {name}({})",
        sig.join(", ")
    ));
    w.open("");
    w.line(match kind {
        KernelKind::Vector => "KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);",
        KernelKind::Mix => "KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);",
    });
    w.line("using namespace AscendC;");
    w.comment("Global memory: the kernel's buffers.");
    for ((p, a), g) in kernel.params.iter().zip(&args).zip(&gm) {
        let t = cpp::gm_type(p.dtype);
        w.line(format!(
            "GlobalTensor<{t}> {g}; // {} : {}[{}], {:?}",
            p.name, p.dtype, p.len, p.access
        ));
        w.line(format!("{g}.SetGlobalBuffer((__gm__ {t}*){a}, {});", p.len));
    }
    w.line("TPipe pipe;");
    w.line(format!("constexpr int32_t kPrograms = {programs};"));
    match &plan {
        None => {
            w.raw(&vcode.setup);
            w.open("for (int32_t pid = GetBlockIdx(); pid < kPrograms; pid += GetBlockNum())");
            for l in &unflatten {
                w.line(l);
            }
            w.raw(&vcode.body);
            w.close();
        }
        Some(cp) => {
            let t = cpp::gm_type(cp.dtype);
            w.comment(format!(
                "Workspace ({workspace_bytes} bytes): [0, {zero_region}) zeros shared by every matmul kernel (this one reads the first {} bytes, none writes them), then {acc_bytes} bytes of accumulators (one [{} x {pitch}] float tile per program).",
                cp.zero_bytes(),
                cp.bm,
            ));
            w.line(format!("GlobalTensor<{t}> zero_ws;"));
            w.line(format!(
                "zero_ws.SetGlobalBuffer((__gm__ {t}*)workspace, {});",
                cp.zero_bytes() / cp.dtype.size_bytes()
            ));
            w.line("GlobalTensor<float> acc_ws;");
            w.line(format!(
                "acc_ws.SetGlobalBuffer((__gm__ float*)(workspace + {zero_region}), {});",
                programs as usize * cp.bm * pitch
            ));
            w.line("constexpr uint16_t kCubeDone = 0; // cross-core flag: cube results are in the workspace");
            let aic = cube::emit_aic(
                kernel,
                name,
                cp,
                target,
                &gm,
                "zero_ws",
                "for (int32_t pid = GetBlockIdx(); pid < kPrograms; pid += GetBlockNum())",
                &unflatten,
                "kCubeDone",
            )?;
            w.raw(&aic);
            w.open("if ASCEND_IS_AIV");
            w.raw(&vcode.setup);
            w.comment("wait until this group's cube core has written every accumulator");
            w.line("CrossCoreWaitFlag<2, PIPE_S>(kCubeDone);");
            w.comment("the two vector cores of a group take turns over the group's programs");
            w.line("const int32_t group = GetBlockIdx() / GetTaskRation();");
            w.line("const int32_t sub = GetSubBlockIdx();");
            w.line("int32_t local = 0;");
            w.open("for (int32_t pid = group; pid < kPrograms; pid += GetBlockNum(), ++local)");
            w.open("if (local % GetTaskRation() != sub)");
            w.line("continue;");
            w.close();
            for l in &unflatten {
                w.line(l);
            }
            w.raw(&vcode.body);
            w.close();
            w.close();
        }
    }
    w.close();
    let mut all_args = args.clone();
    if plan.is_some() {
        all_args.push("workspace".into());
    }
    // Host-side launcher in the CANN 8.x kernel-launch style: the Ascend compiler builds this
    // file and understands the triple chevron; the CPU build (g++) skips it and the host
    // program uses ICPU_RUN_KF instead.
    w.line("");
    w.line("#ifndef ASCENDC_CPU_DEBUG");
    let launcher_params: Vec<String> = all_args.iter().map(|a| format!("uint8_t* {a}")).collect();
    w.open(format!(
        "extern \"C\" void {name}_do(uint32_t blockDim, void* stream, {})",
        launcher_params.join(", ")
    ));
    w.line(format!(
        "{name}<<<blockDim, nullptr, stream>>>({});",
        all_args.join(", ")
    ));
    w.close();
    w.line("#endif");
    Ok(EmittedKernel {
        name: name.to_string(),
        file: SourceFile {
            name: format!("{name}.cpp"),
            contents: w.finish(),
        },
        kind,
        block_dim,
        workspace_bytes,
        workspace_zero_bytes,
        workspace_acc_offset: if plan.is_some() { zero_region } else { 0 },
        args: all_args,
        ub_bytes: vcode.ub_bytes,
    })
}

/// Start of the comment line of a MIX kernel source that states its workspace size:
/// `// tessera-workspace: <bytes> bytes, zero prefix <bytes> bytes (...)`. The manifest
/// ([`KernelInfo`]) names the argument (`workspace`, last in `params`); its size is read
/// back from the source with [`kernel_workspace`].
pub const WORKSPACE_TAG: &str = "tessera-workspace:";

/// Workspace of an emitted kernel source: `(bytes, zero prefix bytes)` from its
/// [`WORKSPACE_TAG`] line, or `None` for a kernel without a workspace argument.
pub fn kernel_workspace(source: &str) -> Option<(usize, usize)> {
    let line = source.lines().find_map(|l| {
        l.trim_start()
            .strip_prefix("//")?
            .trim_start()
            .strip_prefix(WORKSPACE_TAG)
    })?;
    let mut words = line.split_whitespace();
    let bytes = words.next()?.parse().ok()?;
    let zero = words.skip_while(|w| *w != "prefix").nth(1)?.parse().ok()?;
    Some((bytes, zero))
}

/// Bytes at the start of every matmul kernel's GM workspace reserved for zeros (the cube
/// copies from there into L1 to pad partial tiles). It is the same for every kernel of a
/// target - the L0A/L0B capacity rounded up to 512 bytes bounds every L1 operand tile - so
/// kernels of one plan sharing one workspace never write where another one reads zeros.
pub fn workspace_zero_region(target: &Target) -> usize {
    cpp::round_up(target.l0ab_bytes.max(1), 512)
}

/// Emits one kernel under its own (sanitised) name.
pub fn emit_kernel(kernel: &TileKernel, target: &Target) -> Result<EmittedKernel, CompileError> {
    emit_kernel_named(kernel, &entry_name(&kernel.name), target)
}

/// A C identifier for a kernel entry point that cannot clash with a C library function
/// (kernels are `extern "C"` and share one binary with the host program).
fn entry_name(name: &str) -> String {
    const LIBC: [&str; 24] = [
        "exp", "log", "sqrt", "tanh", "abs", "fabs", "max", "min", "sin", "cos", "pow", "floor",
        "ceil", "round", "main", "free", "malloc", "exit", "printf", "memcpy", "memset", "erf",
        "rsqrt", "div",
    ];
    let id = cpp::ident(name);
    if LIBC.contains(&id.as_str()) || id.starts_with("acl") || id.starts_with("__") {
        format!("{id}_kernel")
    } else {
        id
    }
}

/// Columns of the kernel's dot accumulator (0 without a dot): the workspace pitch.
fn kernel_acc_cols(k: &TileKernel) -> usize {
    fn find(b: &crate::tile::Block, k: &TileKernel) -> Option<usize> {
        for i in &b.insts {
            match &i.kind {
                crate::tile::InstKind::Dot { acc, .. } => {
                    return k.ty(*acc).shape().and_then(|s| s.get(1).copied());
                }
                crate::tile::InstKind::For { body, .. } => {
                    if let Some(c) = find(body, k) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        None
    }
    find(&k.body, k).unwrap_or(0)
}

/// Unique entry-point names for the kernels of a plan (C identifiers; a repeated name gets
/// a `_v<n>` suffix).
pub fn kernel_names(plan: &Plan) -> Vec<String> {
    let mut used: HashSet<String> = HashSet::new();
    plan.kernels
        .iter()
        .map(|k| {
            let base = entry_name(&k.name);
            let mut name = base.clone();
            let mut n = 1;
            while !used.insert(name.clone()) {
                name = format!("{base}_v{n}");
                n += 1;
            }
            name
        })
        .collect()
}

/// Emits every kernel of a plan plus host code (`host.cpp`) and `CMakeLists.txt`.
pub fn emit_plan(plan: &Plan, target: &Target) -> Result<Artifact, CompileError> {
    let names = kernel_names(plan);
    let mut kernels = Vec::with_capacity(plan.kernels.len());
    for (k, n) in plan.kernels.iter().zip(&names) {
        kernels.push(emit_kernel_named(k, n, target)?);
    }
    let host_cpp = host::host_source(plan, &kernels)?;
    let cmake = host::cmake_lists(&kernels);
    let mut files: Vec<SourceFile> = kernels.iter().map(|k| k.file.clone()).collect();
    files.push(SourceFile {
        name: "host.cpp".into(),
        contents: host_cpp,
    });
    files.push(SourceFile {
        name: "CMakeLists.txt".into(),
        contents: cmake,
    });
    let infos = plan
        .kernels
        .iter()
        .zip(&kernels)
        .map(|(k, e)| KernelInfo {
            name: e.name.clone(),
            file: e.file.name.clone(),
            params: e.args.clone(),
            grid: k.grid,
            block: e.block_dim,
        })
        .collect();
    Ok(Artifact {
        target: TargetKind::AscendC,
        files,
        kernels: infos,
    })
}
