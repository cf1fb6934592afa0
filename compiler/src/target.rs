//! What each target offers: limits, dtypes and memory sizes, as data. Lowerings read
//! these records; a kernel that would break a limit is re-tiled or rejected with an
//! error naming the limit.

use crate::graph::DType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The code generators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// WebGPU shading language, run through wgpu.
    Wgsl,
    /// Nvidia PTX, assembled by ptxas and run through the CUDA driver.
    Ptx,
    /// Ascend C kernels plus AscendCL host code.
    AscendC,
}

impl TargetKind {
    /// All targets.
    pub const ALL: [TargetKind; 3] = [TargetKind::Wgsl, TargetKind::Ptx, TargetKind::AscendC];

    /// Whether this target's matrix unit reads, in place, a matmul operand whose
    /// matrices have the strides `[rows, columns]` (in elements). Ascend's cube copies an
    /// operand from global memory row by row (`DataCopy` ND -> NZ): one of the two axes
    /// must be contiguous, neither broadcast (stride 0), and the other's stride (the
    /// leading dimension) within the copy's 1..=65535 elements. The SIMT targets load
    /// any strided view. The scheduler copies an operand its target refuses into a
    /// contiguous buffer first (`schedule::fuse`); the Ascend C backend checks the same
    /// rule on the kernels it is given.
    pub fn reads_dot_operand(self, strides: [i64; 2]) -> bool {
        match self {
            TargetKind::AscendC => {
                let [rows, columns] = strides;
                let ld = if columns == 1 { rows } else { columns };
                strides.iter().all(|&s| s >= 1) && strides.contains(&1) && ld <= 65535
            }
            TargetKind::Wgsl | TargetKind::Ptx => true,
        }
    }

    /// Lowercase name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Wgsl => "wgsl",
            TargetKind::Ptx => "ptx",
            TargetKind::AscendC => "ascendc",
        }
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown target name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown target `{0}` (expected wgsl, ptx or ascendc)")]
pub struct UnknownTarget(pub String);

impl FromStr for TargetKind {
    type Err = UnknownTarget;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wgsl" => Ok(TargetKind::Wgsl),
            "ptx" => Ok(TargetKind::Ptx),
            "ascendc" | "ascend-c" | "ascend" => Ok(TargetKind::AscendC),
            _ => Err(UnknownTarget(s.to_string())),
        }
    }
}

/// A target's capability record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// Which code generator.
    pub kind: TargetKind,
    /// Maximum threads per workgroup / CTA (SIMT targets).
    pub max_workgroup_size: u32,
    /// Threads per workgroup the SIMT lowering builds kernels for (the largest power of
    /// two not above this and `max_workgroup_size` is used). A tuning choice, not a limit:
    /// 256 on GPUs, 64 on CPU adapters (see [`Target::for_cpu_adapter`]).
    #[serde(default = "default_workgroup_size")]
    pub workgroup_size: u32,
    /// Matmul tile `[BM, BN, BK]`: output rows and columns per program instance and the
    /// contraction step (see `tile::build::tile_sizes`).
    #[serde(default = "default_matmul_tile")]
    pub matmul_tile: [usize; 3],
    /// Largest query / key block of the attention kernels (SIMT targets): blocks are
    /// the powers of two covering the sequence lengths up to this, halved while their
    /// staging does not fit `shared_memory_bytes` (`tile::ops::attention`). A tuning
    /// choice: 32 on GPUs, 64 on CPU adapters.
    #[serde(default = "default_attention_block")]
    pub attention_block: usize,
    /// Whether a `Dot` stages its operands in workgroup memory (SIMT targets): on GPUs the
    /// threads of a workgroup share every element loaded (true); on CPU adapters
    /// (false), a `Dot` whose operands are both block loads has each thread read its own
    /// rows and columns straight from the buffers, with no shared memory and no barrier
    /// (`simt::lower`; lavapipe runs a kernel that has any barrier as coroutines, about
    /// 2.4x slower for a 512^3 matmul). Operands computed in registers are staged either
    /// way.
    #[serde(default = "default_true")]
    pub stage_dot_operands: bool,
    /// The size of the device's subgroups when the SIMT lowering may exchange registers
    /// within them (subgroup shuffles; WGSL only): every subgroup is that many
    /// consecutive invocations of a workgroup, starting at a multiple of it. `None`
    /// (the default, and every built-in record): no subgroup operations. Set by
    /// `WgpuDevice::wgsl_target` after checking the device (lavapipe: 8). Used where it
    /// equals the thread grid's column count (8 for 64-thread workgroups): a row of
    /// the thread grid is then one subgroup, and row reductions and `Dot` operands
    /// computed in registers (attention's `P`) move by shuffles instead of through
    /// shared memory, without barriers (`simt::lower`).
    #[serde(default)]
    pub subgroup_size: Option<u32>,
    /// Maximum workgroups per grid axis.
    pub max_grid_dim: u32,
    /// Bytes of workgroup / shared memory per workgroup.
    pub shared_memory_bytes: usize,
    /// Storage buffers one kernel may bind (WebGPU default 8).
    pub max_storage_buffers: usize,
    /// Warp / subgroup width.
    pub warp_size: u32,
    /// Unified Buffer bytes usable by kernels (Ascend; 192 KiB minus 8 KiB API scratch).
    pub ub_bytes: usize,
    /// L1 buffer bytes (Ascend).
    pub l1_bytes: usize,
    /// L0A / L0B bytes each (Ascend).
    pub l0ab_bytes: usize,
    /// L0C bytes (Ascend).
    pub l0c_bytes: usize,
    /// Vector cores launched per kernel (Ascend blockDim for vector kernels).
    pub vector_cores: u32,
    /// Cube cores (Ascend blockDim for matmul kernels).
    pub cube_cores: u32,
    /// Dtypes the target can compute in (others are storage-only or unsupported).
    pub arithmetic_dtypes: Vec<DType>,
    /// Dtypes the target can store in buffers.
    pub storage_dtypes: Vec<DType>,
}

fn default_workgroup_size() -> u32 {
    256
}

fn default_matmul_tile() -> [usize; 3] {
    [32, 32, 8]
}

fn default_attention_block() -> usize {
    32
}

fn default_true() -> bool {
    true
}

impl Target {
    /// WebGPU with default limits (software Vulkan included).
    pub fn wgsl() -> Target {
        Target {
            kind: TargetKind::Wgsl,
            max_workgroup_size: 256,
            workgroup_size: 256,
            matmul_tile: [32, 32, 8],
            attention_block: 32,
            stage_dot_operands: true,
            subgroup_size: None,
            max_grid_dim: 65535,
            shared_memory_bytes: 16 * 1024,
            max_storage_buffers: 8,
            warp_size: 32,
            ub_bytes: 0,
            l1_bytes: 0,
            l0ab_bytes: 0,
            l0c_bytes: 0,
            vector_cores: 0,
            cube_cores: 0,
            arithmetic_dtypes: vec![DType::F32, DType::I32, DType::U32, DType::Bool],
            storage_dtypes: vec![DType::F32, DType::I32, DType::U32, DType::Bool],
        }
    }

    /// WebGPU on a device that has the `shader-f16` feature (`wgpu::Features::SHADER_F16`,
    /// WGSL `enable f16;`): [`Target::wgsl`] plus f16 storage (`array<f16>`); f16 values
    /// are computed in f32 and rounded when stored.
    pub fn wgsl_f16() -> Target {
        let mut t = Target::wgsl();
        t.storage_dtypes.push(DType::F16);
        t
    }

    /// Why this target cannot store `dtype`, naming the missing capability (`None` when
    /// it can): on WGSL f16 needs the `shader-f16` feature.
    pub fn missing_storage(&self, dtype: DType) -> Option<String> {
        if self.storage_dtypes.contains(&dtype) {
            return None;
        }
        Some(match (self.kind, dtype) {
            (TargetKind::Wgsl, DType::F16) => "f16 storage without the WebGPU feature \
                `shader-f16` (wgpu::Features::SHADER_F16; see Target::wgsl_f16)"
                .to_string(),
            _ => format!("{dtype} storage"),
        })
    }

    /// Whether this target reads a matmul operand in place: see
    /// [`TargetKind::reads_dot_operand`].
    pub fn reads_dot_operand(&self, strides: [i64; 2]) -> bool {
        self.kind.reads_dot_operand(strides)
    }

    /// The record tuned for a CPU adapter running WGSL (lavapipe / llvmpipe: each
    /// workgroup runs on one CPU thread, 8 invocations per SIMD instruction, shared and
    /// storage loads with per-invocation addresses done lane by lane): 64-thread
    /// workgroups (8 x 8 thread grid) and matmul tiles of up to 128 x 64, so each
    /// invocation accumulates a micro-tile of up to 16 x 8 (the more outputs per shared
    /// load, the faster the loop: 16 loads per 64 FMAs at 8 x 8, 24 per 128 at 16 x 8).
    /// The tile shrinks for small matmuls so that their grids keep a few workgroups
    /// (`tile::build::matmul_tile`). Measured on lavapipe (2 cores): 64 x 64 tiles instead
    /// of 256 threads and 32 x 32 made a 2-layer GPT's training step about 3x faster
    /// (`examples/profile_gpt`). Larger tiles run matmuls faster still (512^3: 4.6 GFLOP/s
    /// at 64 x 64, 5.8 at 128 x 64, 10.2 at 256 x 128) but the micro-tile is unrolled, so
    /// kernels grow with it and lavapipe compiles them slowly: loading that GPT step's 58
    /// kernels took 1.9 s at 64 x 64, 5.4 s at 128 x 64, 17 s at 128 x 128 and 60 s at
    /// 256 x 128, for steps 9%, 8% and 17% faster than at 64 x 64. Attention blocks of up
    /// to 64 x 64 (32 on GPUs; with subgroups, 128 x 32 for sequences longer than 64:
    /// `tile::ops::attention::block_caps`): with the 32 KiB of workgroup memory lavapipe offers
    /// (`WgpuDevice::wgsl_target` raises the limit to the device's on CPU adapters),
    /// causal attention at T = 256, head dim 64 ran 1.3x faster forward and backward
    /// than 32 x 32 blocks (which the 16 KiB WebGPU default still gets). Limits are
    /// unchanged.
    pub fn for_cpu_adapter(mut self) -> Target {
        self.workgroup_size = 64;
        self.matmul_tile = [128, 64, 8];
        self.attention_block = 64;
        self.stage_dot_operands = false;
        self
    }

    /// Nvidia sm_80 / sm_90 (PTX).
    pub fn ptx() -> Target {
        Target {
            kind: TargetKind::Ptx,
            max_workgroup_size: 1024,
            workgroup_size: 256,
            matmul_tile: [32, 32, 8],
            attention_block: 32,
            stage_dot_operands: true,
            subgroup_size: None,
            max_grid_dim: 65535,
            shared_memory_bytes: 48 * 1024,
            max_storage_buffers: 64,
            warp_size: 32,
            ub_bytes: 0,
            l1_bytes: 0,
            l0ab_bytes: 0,
            l0c_bytes: 0,
            vector_cores: 0,
            cube_cores: 0,
            arithmetic_dtypes: vec![DType::F32, DType::F16, DType::I32, DType::U32, DType::Bool],
            storage_dtypes: DType::ALL.to_vec(),
        }
    }

    /// Ascend 910B (Atlas A2): 192 KiB UB of which the top 8 KiB are API scratch.
    pub fn ascend_910b() -> Target {
        Target {
            kind: TargetKind::AscendC,
            max_workgroup_size: 1,
            workgroup_size: 1,
            matmul_tile: [64, 64, 32],
            attention_block: 32,
            stage_dot_operands: true,
            subgroup_size: None,
            max_grid_dim: 65535,
            shared_memory_bytes: 0,
            max_storage_buffers: 64,
            warp_size: 1,
            ub_bytes: 184 * 1024,
            l1_bytes: 512 * 1024,
            l0ab_bytes: 64 * 1024,
            l0c_bytes: 128 * 1024,
            vector_cores: 48,
            cube_cores: 24,
            arithmetic_dtypes: vec![DType::F32, DType::F16, DType::I32],
            storage_dtypes: DType::ALL.to_vec(),
        }
    }

    /// Alternatives to this record's tuning choices for a benchmark sweep, each with a
    /// label: other matmul tiles (`64x64x8`, `64x64x16`, `128x64x8`, `128x128x8`), `Dot`
    /// operands read in place instead of staged ([`Target::stage_dot_operands`]) and
    /// attention blocks (64), every other field as in this record; the ones equal to it
    /// are left out. Empty for Ascend C (its tiles are the cube unit's shape). The GPU
    /// check (`examples/gpu_check.rs sweep`) times them beside the record, so one run on
    /// a GPU gives the figures a tuning change needs; `tests/ptx_tuning.rs` runs each on
    /// the PTX VM.
    pub fn tuning_variants(&self) -> Vec<(String, Target)> {
        if self.kind == TargetKind::AscendC {
            return Vec::new();
        }
        let mut out = Vec::new();
        for tile in [[64, 64, 8], [64, 64, 16], [128, 64, 8], [128, 128, 8]] {
            if tile != self.matmul_tile {
                let label = format!("tile {}x{}x{}", tile[0], tile[1], tile[2]);
                let t = Target {
                    matmul_tile: tile,
                    ..self.clone()
                };
                out.push((label, t));
            }
        }
        if self.stage_dot_operands {
            let t = Target {
                stage_dot_operands: false,
                ..self.clone()
            };
            out.push(("dot operands in place".to_string(), t));
        }
        for block in [64] {
            if block != self.attention_block {
                let t = Target {
                    attention_block: block,
                    ..self.clone()
                };
                out.push((format!("attention block {block}"), t));
            }
        }
        out
    }

    /// The default record for a target kind.
    pub fn of(kind: TargetKind) -> Target {
        match kind {
            TargetKind::Wgsl => Target::wgsl(),
            TargetKind::Ptx => Target::ptx(),
            TargetKind::AscendC => Target::ascend_910b(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simt::lower::ThreadGrid;
    use crate::tile::build::tile_sizes;

    #[test]
    fn matmul_tiles_shrink_for_small_problems_on_cpu_adapters_only() {
        use crate::tile::build::matmul_tile;
        let cpu = Target::wgsl().for_cpu_adapter();
        let s = tile_sizes(&cpu);
        let tile = |m, n, b| matmul_tile(&cpu, &s, (m, n, b)).unwrap();
        // Big enough: the record's tile (4 x 8 = 32 workgroups).
        assert_eq!(tile(512, 512, 1), (128, 64));
        assert_eq!(tile(1024, 64, 1), (128, 64));
        // Clamped to the problem, then halved (larger side first) to 4 workgroups.
        assert_eq!(tile(128, 128, 1), (64, 64));
        assert_eq!(tile(64, 64, 1), (32, 32));
        // Never below 2 x 2 outputs per thread (8 x 8 threads: 16 x 16).
        assert_eq!(tile(8, 8, 1), (16, 16));
        assert_eq!(tile(1, 1000, 1), (16, 64));
        // A batch counts: 8 matrices of 64 x 64 are 8 workgroups already.
        assert_eq!(tile(64, 64, 8), (64, 64));
        // GPU records and Ascend C keep their tile whatever the size.
        for t in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
            let s = tile_sizes(&t);
            for (m, n, b) in [(1, 1, 1), (8, 8, 1), (64, 64, 1), (4096, 4096, 4)] {
                assert_eq!(
                    matmul_tile(&t, &s, (m, n, b)).unwrap(),
                    (s.bm, s.bn),
                    "{} {m}x{n}x{b}",
                    t.kind
                );
            }
        }
    }

    #[test]
    fn tuning_variants_change_one_choice_each() {
        let ptx = Target::ptx();
        let v = ptx.tuning_variants();
        let labels: Vec<&str> = v.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            labels,
            [
                "tile 64x64x8",
                "tile 64x64x16",
                "tile 128x64x8",
                "tile 128x128x8",
                "dot operands in place",
                "attention block 64"
            ]
        );
        for (label, t) in &v {
            assert_ne!(t, &ptx, "{label}");
            let tuning_only = Target {
                matmul_tile: ptx.matmul_tile,
                attention_block: ptx.attention_block,
                stage_dot_operands: ptx.stage_dot_operands,
                ..t.clone()
            };
            assert_eq!(tuning_only, ptx, "{label}");
        }
        // Choices equal to the record's are left out (the CPU record's 128 x 64 tile, 64
        // block and in-place operands).
        let cpu = Target::wgsl().for_cpu_adapter();
        let labels: Vec<String> = cpu.tuning_variants().into_iter().map(|v| v.0).collect();
        assert_eq!(labels, ["tile 64x64x8", "tile 64x64x16", "tile 128x128x8"]);
        assert!(Target::ascend_910b().tuning_variants().is_empty());
    }

    #[test]
    fn cpu_adapter_record_changes_tuning_only() {
        let gpu = Target::wgsl();
        let cpu = Target::wgsl().for_cpu_adapter();
        assert_eq!(
            Target {
                workgroup_size: gpu.workgroup_size,
                matmul_tile: gpu.matmul_tile,
                attention_block: gpu.attention_block,
                stage_dot_operands: gpu.stage_dot_operands,
                ..cpu.clone()
            },
            gpu
        );
        let g = ThreadGrid::for_target(&cpu).unwrap();
        assert_eq!((g.threads, g.rows, g.cols), (64, 8, 8));
        let s = tile_sizes(&cpu);
        assert_eq!((s.bm, s.bn, s.bk), (128, 64, 8));
        // GPU records are unchanged: 256 threads (16 x 16), 32 x 32 tiles.
        for t in [Target::wgsl(), Target::ptx()] {
            let g = ThreadGrid::for_target(&t).unwrap();
            assert_eq!((g.threads, g.rows, g.cols), (256, 16, 16));
            let s = tile_sizes(&t);
            assert_eq!((s.bm, s.bn, s.bk), (32, 32, 8));
        }
        // A record without the tuning fields (older JSON) gets the GPU defaults.
        let mut v = serde_json::to_value(Target::wgsl()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("workgroup_size");
        o.remove("matmul_tile");
        o.remove("attention_block");
        o.remove("stage_dot_operands");
        let back: Target = serde_json::from_value(v).unwrap();
        assert_eq!(back, Target::wgsl());
    }
}
