//! Tile-IR `iota`, `expand` and rank-2 `reduce` on the wgpu device: the hand-built
//! kernels of `tests/support/tile_ops_kernels.rs` (row/column statistics, softmax along
//! either axis, position tiles, loop-carried row statistics, flash attention, a vector
//! needed in both the row and the column layout) are each
//! wrapped in a one-launch plan, emitted as WGSL for three workgroup shapes (16x16, 8x8
//! and the non-square 4x8 thread grid), run through [`WgpuDevice::load_plan`], and
//! compared with values computed in f64 (within the tolerances derived in
//! `Case::expected` for an f32 computation in any order) and with the tile interpreter
//! running the same plan (within twice those: both are within them of the f64 values).
//!
//! The tests need a wgpu adapter: without one they fail with the reason (install lavapipe
//! with `apt-get install -y mesa-vulkan-drivers libvulkan1`), they never pass silently.

use std::collections::HashMap;
use tessera::compiler as tc;
use tessera::runtime::WgpuDevice;

#[path = "support/tile_ops_kernels.rs"]
mod kernels;
#[path = "support/wgpu_thread.rs"]
mod wgpu_thread;

use kernels::Case;
use tc::backend::wgsl;
use tc::interp::Tensor;
use tc::schedule::plan::{BufferId, BufferInfo, BufferRole, Launch, Plan, StorageSlot};
use tc::tile::{Access, TileKernel};
use tc::{NodeId, Target};

/// This test thread's device (`support/wgpu_thread.rs`: the tests' kernel compiles then
/// run side by side instead of in line).
fn wgpu() -> &'static WgpuDevice {
    wgpu_thread::device_of_this_thread("the wgpu tile-op tests")
}

/// A plan running `k` once: one buffer (and storage slot) per parameter, read
/// parameters as inputs and written ones as outputs, named after the parameters.
fn one_kernel_plan(k: &TileKernel) -> Plan {
    let mut buffers = Vec::new();
    let mut storage = Vec::new();
    let mut outputs = Vec::new();
    for (i, p) in k.params.iter().enumerate() {
        let role = match p.access {
            Access::Read => BufferRole::Input {
                name: p.name.clone(),
            },
            _ => {
                outputs.push((p.name.clone(), BufferId(i as u32)));
                BufferRole::Output {
                    name: p.name.clone(),
                }
            }
        };
        buffers.push(BufferInfo {
            id: BufferId(i as u32),
            node: NodeId(i as u32),
            dtype: p.dtype,
            shape: vec![p.len],
            len: p.len,
            role,
            storage: i,
        });
        storage.push(StorageSlot {
            bytes: p.len * p.dtype.size_bytes(),
        });
    }
    Plan {
        kernels: vec![k.clone()],
        buffers,
        launches: vec![Launch {
            kernel: 0,
            args: (0..k.params.len() as u32).map(BufferId).collect(),
        }],
        storage,
        outputs,
    }
}

/// Runs every case of a family on the device at each workgroup shape.
fn run_family(family: fn(&Case) -> bool) {
    let dev = wgpu();
    let cases: Vec<Case> = kernels::all().into_iter().filter(family).collect();
    assert!(!cases.is_empty());
    // With the device's subgroups (lavapipe: 8, the column count of the 8x8 and 4x8
    // grids, so row reductions and register `Dot` operands move by shuffles) and
    // without (through workgroup memory): the same operations in the same order, so
    // the outputs must agree to the bit.
    let own = dev.wgsl_target().subgroup_size;
    let mut variants = vec![own];
    if own.is_some() {
        variants.push(None);
    }
    let mut first: HashMap<(String, u32), Vec<u32>> = HashMap::new();
    for (threads, subgroup_size) in [256, 64, 32]
        .into_iter()
        .flat_map(|t| variants.iter().map(move |&s| (t, s)))
    {
        // Both the preferred and the largest size: on a CPU adapter `wgsl_target()`
        // prefers 64 threads, which would otherwise hide the 256-thread shape.
        let target = Target {
            max_workgroup_size: threads,
            workgroup_size: threads,
            subgroup_size,
            ..dev.wgsl_target()
        };
        for c in &cases {
            let k = c.kernel();
            let plan = one_kernel_plan(&k);
            let bufs = c.buffers(&k, 7);
            let mut inputs = HashMap::new();
            for (p, data) in k.params.iter().zip(&bufs) {
                if p.access == Access::Read {
                    let t = Tensor::from_f32(&[p.len], p.dtype, data)
                        .unwrap_or_else(|e| panic!("input `{}`: {e}", p.name));
                    inputs.insert(p.name.clone(), t);
                }
            }
            let artifact = wgsl::emit_plan(&plan, &target)
                .unwrap_or_else(|e| panic!("{} at {threads} threads: {e}", k.name));
            let mut exe = dev
                .load_plan(plan.clone(), artifact)
                .unwrap_or_else(|e| panic!("{}: {e}", k.name));
            let got = exe
                .run(&inputs)
                .unwrap_or_else(|e| panic!("{} on wgpu: {e}", k.name));
            let interp = tc::interp::run_plan(&plan, &inputs)
                .unwrap_or_else(|e| panic!("{} on the interpreter: {e}", k.name));
            for e in c.expected(&bufs) {
                let name = &k.params[e.buffer].name;
                let what = format!("{} `{name}` @{threads} subgroups {subgroup_size:?}", k.name);
                let dv = got
                    .get(name)
                    .unwrap_or_else(|| panic!("{what}: no output"))
                    .to_f32();
                let bits: Vec<u32> = dv.iter().map(|v| v.to_bits()).collect();
                match first.entry((
                    what.split(" subgroups").next().unwrap_or("").to_string(),
                    threads,
                )) {
                    std::collections::hash_map::Entry::Occupied(o) => {
                        if let Some(i) = (0..bits.len()).find(|&i| bits[i] != o.get()[i]) {
                            panic!(
                                "{what}: element {i} is {} with subgroups {own:?} and {} \
                                 without (must be bit-identical)",
                                f32::from_bits(o.get()[i]),
                                dv[i]
                            );
                        }
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(bits);
                    }
                }
                kernels::check(&format!("{what} wgpu vs f64"), &dv, &e.want, &e.tol);
                let iv: Vec<f64> = interp
                    .get(name)
                    .unwrap_or_else(|| panic!("{what}: no interpreter output"))
                    .to_f32()
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let tol2: Vec<f64> = e.tol.iter().map(|t| 2.0 * t).collect();
                kernels::check(&format!("{what} wgpu vs interpreter"), &dv, &iv, &tol2);
            }
        }
    }
}

#[test]
fn row_col_stats_run() {
    run_family(|c| matches!(c, Case::Stats(..)));
}

#[test]
fn softmax_both_axes_runs() {
    run_family(|c| matches!(c, Case::Softmax(..)));
}

#[test]
fn iota_and_expand_run() {
    run_family(|c| matches!(c, Case::Iota(..)));
}

#[test]
fn loop_carried_row_statistics_run() {
    run_family(|c| matches!(c, Case::RowLoop(..)));
}

#[test]
fn flash_attention_runs() {
    run_family(|c| matches!(c, Case::Attention(..)));
}

#[test]
fn pairwise_mixed_layouts_run() {
    run_family(|c| matches!(c, Case::Pairwise(..)));
}
