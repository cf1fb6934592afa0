//! `cargo bench -p tessera-bench` (or `cargo xtask bench`): Tessera side by side with
//! Burn's wgpu backend on the same wgpu adapter.
//!
//! Every case runs one computation both ways: Tessera's compiled plan on its wgpu device,
//! and Burn 0.22's wgpu backend (WGSL through wgpu 30, with Burn's kernel fusion and
//! autotuning, as `burn-wgpu` enables them by default). Before anything is timed, both
//! results are read back and compared: a case whose two sides disagree stops the run, so
//! a ratio is never reported for two different computations.
//!
//! Criterion times each side (`<case>/tessera`, `<case>/burn`: one iteration = the
//! computation submitted and waited for, inputs already on the device). At the end the
//! medians are read back from Criterion's estimates and printed as a table of ratios
//! (`burn / tessera`: above 1 means Tessera is faster), also written to
//! `target/bench/peer.md` and `target/bench/peer.json`.
//!
//! Arguments after `--` are Criterion's (`cargo bench -p tessera-bench -- matmul` runs
//! the matmul cases only). `TESSERA_BENCH_QUICK=1` shortens warm-up and measurement.

mod gpt_step;
mod ops;
mod report;

use anyhow::{Context, Result};
use criterion::{Criterion, SamplingMode};
use std::time::Duration;
use tessera::runtime::WgpuDevice;

/// One benchmark: the same computation on both sides, already checked to agree.
pub struct Case {
    /// Criterion group name (`matmul_f32_512`, ...).
    pub name: String,
    /// What is computed, for the table.
    pub what: String,
    /// Floating-point operations of one run, when meaningful (for GFLOP/s).
    pub flops: Option<f64>,
    /// Worst disagreement of the two sides, as the check measured it (for the table).
    pub agreement: String,
    /// One Tessera run (submitted and waited for).
    pub tessera: Box<dyn FnMut() -> Result<()>>,
    /// One Burn run (submitted and synchronised).
    pub burn: Box<dyn FnMut() -> Result<()>>,
}

fn main() -> Result<()> {
    let start = std::time::SystemTime::now();
    let quick = std::env::var_os("TESSERA_BENCH_QUICK").is_some_and(|v| v != "0");
    let (warm_up, measure) = if quick {
        (Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (Duration::from_secs(2), Duration::from_secs(6))
    };
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(warm_up)
        .measurement_time(measure)
        .without_plots()
        .configure_from_args();

    let device = WgpuDevice::new().context("opening Tessera's wgpu adapter")?;
    let adapter = device.adapter().clone();
    println!("Tessera: wgpu adapter {adapter}");
    let burn_device = burn::tensor::Device::wgpu(Default::default());
    println!("Burn: {burn_device:?}\n");

    let mut cases = Vec::new();
    cases.extend(ops::cases(&device, &burn_device)?);
    cases.extend(gpt_step::cases(&device, &burn_device)?);

    for case in &mut cases {
        let mut group = criterion.benchmark_group(&case.name);
        group.sampling_mode(SamplingMode::Flat);
        let mut failed = None;
        group.bench_function("tessera", |b| {
            b.iter(|| {
                if let Err(e) = (case.tessera)() {
                    failed.get_or_insert(e);
                }
            })
        });
        group.bench_function("burn", |b| {
            b.iter(|| {
                if let Err(e) = (case.burn)() {
                    failed.get_or_insert(e);
                }
            })
        });
        group.finish();
        if let Some(e) = failed {
            return Err(e.context(format!("running case {}", case.name)));
        }
    }
    criterion.final_summary();

    report::write(&cases, &adapter, start)
}
