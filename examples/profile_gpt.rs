//! Where a GPT training step's time goes on wgpu: builds the training graph (forward,
//! autodiff backward, AdamW) of a GPT of 2 layers, width 64, context 64, batch 16 (larger
//! than the demo's default), loads it (timing compilation, WGSL emission and the shader/pipeline creation of loading), runs warm-up steps, then
//! profiles steps launch by launch and prints the kernels sorted by total time.
//!
//! ```sh
//! cargo run --release --example profile_gpt
//! cargo run --release --example profile_gpt -- --steps 3 --top 50
//! ```

use anyhow::{Context, Result};
use clap::Parser;
use std::collections::HashMap;
use std::time::Instant;
use tessera::compiler::optim::AdamW;
use tessera::models::data::{Dataset, Split};
use tessera::models::gpt::GptConfig;
use tessera::runtime::{Device, Profile, Tensor, WgpuDevice};
use tessera::train::trainer::{gpt_inputs, gpt_training_graph};
use tessera::train::{LrSchedule, Trainer, TrainerOptions};

/// Profile one GPT training step on wgpu, kernel by kernel.
#[derive(Debug, Parser)]
struct Args {
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Attention heads per block.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Width of the residual stream.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Context length (tokens per sequence).
    #[arg(long, default_value_t = 64)]
    context: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Profiled steps (their launch times are averaged).
    #[arg(long, default_value_t = 2)]
    steps: usize,
    /// Unprofiled warm-up steps before them.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Rows of the kernel table (0: all).
    #[arg(long, default_value_t = 40)]
    top: usize,
    /// Also write the emitted WGSL files into this folder.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    env_logger::init();
    let args = Args::parse();
    let data = Dataset::tiny_shakespeare().context("loading the embedded text")?;
    let cfg = GptConfig {
        n_layer: args.layers,
        n_head: args.heads,
        n_embd: args.width,
        block_size: args.context,
        vocab_size: data.tokenizer().vocab_size(),
    };
    cfg.validate().context("invalid model size")?;
    let device = WgpuDevice::new().context("opening a wgpu adapter")?;
    let (b, t) = (args.batch, args.context);
    println!(
        "GPT: {} layers, {} heads, width {}, context {}, batch {}, vocab {} on {}",
        cfg.n_layer,
        cfg.n_head,
        cfg.n_embd,
        cfg.block_size,
        b,
        cfg.vocab_size,
        device.name()
    );

    let t0 = Instant::now();
    let adamw = AdamW::default();
    let (tg, _eval) = gpt_training_graph(&cfg, b, t, &adamw)?;
    let graph_s = t0.elapsed().as_secs_f64();
    let target = device.wgsl_target();
    let t0 = Instant::now();
    let plan = tessera::compiler::compile(&tg.graph, &target)?;
    let compile_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let artifact = tessera::compiler::backend::emit(&plan, &target)?;
    let emit_s = t0.elapsed().as_secs_f64();
    if let Some(dir) = &args.dump {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for f in &artifact.files {
            let path = dir.join(&f.name);
            std::fs::write(&path, &f.contents)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    let (n_kernels, n_launches) = (plan.kernels.len(), plan.launches.len());
    let t0 = Instant::now();
    let exe = device.load_plan(plan, artifact)?;
    let load_s = t0.elapsed().as_secs_f64();

    let options = TrainerOptions {
        schedule: LrSchedule::constant(1e-3),
        seed: 1234,
        config: serde_json::to_value(&cfg)?,
    };
    let mut trainer = Trainer::with_executable(exe, tg, &cfg.init_params(1234)?, options)?;
    let next_batch = |trainer: &mut Trainer| -> Result<HashMap<String, Tensor>> {
        Ok(gpt_inputs(&data.batch(
            Split::Train,
            b,
            t,
            trainer.rng_mut(),
        )?))
    };
    let mut run_s = Vec::new();
    let mut run_cpu_s = Vec::new();
    // The first step is profiled too: each kernel's first launch includes the driver's
    // first-use work (lavapipe compiles a pipeline's machine code at its first dispatch).
    let batch = next_batch(&mut trainer)?;
    let cold = trainer.profile_step(&batch)?;
    let cold_s = cold.launch_seconds() + cold.run_phases.iter().map(|p| p.1).sum::<f64>();
    let mut first_launch: HashMap<usize, f64> = HashMap::new();
    for l in &cold.launches {
        first_launch.entry(l.kernel).or_insert(l.seconds);
    }
    let mut timed_step = |trainer: &mut Trainer| -> Result<()> {
        let batch = next_batch(trainer)?;
        let (t0, c0) = (Instant::now(), cpu_seconds());
        trainer.step(&batch)?;
        run_s.push(t0.elapsed().as_secs_f64());
        run_cpu_s.push(cpu_seconds() - c0);
        Ok(())
    };
    for _ in 0..args.warmup {
        timed_step(&mut trainer)?;
    }
    let mut profiles: Vec<Profile> = Vec::new();
    for _ in 0..args.steps.max(1) {
        let batch = next_batch(&mut trainer)?;
        profiles.push(trainer.profile_step(&batch)?);
        // A normal step after each profile: the step time without per-launch waits.
        timed_step(&mut trainer)?;
    }

    println!(
        "\nload: graph + autodiff {graph_s:.2} s, compile {compile_s:.2} s, emit {emit_s:.2} s, \
         wgpu load {load_s:.2} s ({n_kernels} kernels, {n_launches} launches)"
    );
    for (what, s) in &profiles[0].load_phases {
        println!("  {what:<40} {:>9.1} ms", s * 1e3);
    }

    // Kernels by total time: per launch the least time over the profiled steps (robust
    // to other load on the machine), summed over the launches of each kernel.
    let n = profiles.len() as f64;
    let mut best: Vec<f64> = profiles[0].launches.iter().map(|l| l.seconds).collect();
    for p in &profiles[1..] {
        for (b, l) in best.iter_mut().zip(&p.launches) {
            *b = b.min(l.seconds);
        }
    }
    let mut rows: HashMap<usize, (String, usize, f64, u64)> = HashMap::new();
    for (l, &s) in profiles[0].launches.iter().zip(&best) {
        let r = rows
            .entry(l.kernel)
            .or_insert_with(|| (l.name.clone(), 0, 0.0, l.threads));
        r.1 += 1;
        r.2 += s;
    }
    let first_total: f64 = first_launch.values().sum();
    let mut rows: Vec<(usize, String, f64, f64, u64)> = rows
        .into_iter()
        .map(|(k, (name, launches, s, threads))| (k, name, launches as f64, s, threads))
        .collect();
    rows.sort_by(|a, b| b.3.total_cmp(&a.3));
    let total: f64 = rows.iter().map(|r| r.3).sum();
    println!(
        "\n{:<4} {:<48} {:>8} {:>10} {:>10} {:>7} {:>8} {:>9}",
        "#", "kernel", "launches", "total ms", "ms/launch", "share", "threads", "first ms"
    );
    let shown = if args.top == 0 {
        rows.len()
    } else {
        args.top.min(rows.len())
    };
    for (i, (k, name, launches, s, threads)) in rows.iter().take(shown).enumerate() {
        println!(
            "{:<4} {:<48} {:>8} {:>10.2} {:>10.3} {:>6.1}% {:>8} {:>9.1}",
            i + 1,
            truncate(name, 48),
            launches,
            s * 1e3,
            s * 1e3 / launches,
            100.0 * s / total,
            threads,
            first_launch.get(k).copied().unwrap_or(0.0) * 1e3
        );
    }
    if shown < rows.len() {
        let rest: f64 = rows[shown..].iter().map(|r| r.3).sum();
        println!(
            "     ({} more kernels: {:.2} ms, {:.1}%)",
            rows.len() - shown,
            rest * 1e3,
            100.0 * rest / total
        );
    }
    let launches: usize = profiles[0].launches.len();
    println!(
        "\nsum of {launches} launch times (each the least over {} profiled steps, submitted alone): {:.1} ms per step",
        profiles.len(),
        total * 1e3
    );
    for (what, _) in &profiles[0].run_phases {
        let s: f64 = profiles
            .iter()
            .flat_map(|p| p.run_phases.iter())
            .filter(|(w, _)| w == what)
            .map(|(_, s)| s)
            .sum::<f64>()
            / n;
        println!("  {what:<40} {:>9.1} ms", s * 1e3);
    }
    println!(
        "first step (profiled, cold): {:.1} ms, of which the first launches of the {} kernels {:.1} ms",
        cold_s * 1e3,
        first_launch.len(),
        first_total * 1e3
    );
    let mean = run_s.iter().sum::<f64>() / run_s.len().max(1) as f64;
    println!(
        "step time (normal run, one submission): {:.1} ms mean over {} runs: {:.0} tokens/s",
        mean * 1e3,
        run_s.len(),
        (b * t) as f64 / mean
    );
    if !run_cpu_s.is_empty() && cpu_seconds() > 0.0 {
        println!(
            "process CPU time per step (all threads; less sensitive to other load): {:.1} ms",
            run_cpu_s.iter().sum::<f64>() / run_cpu_s.len() as f64 * 1e3
        );
    }
    Ok(())
}

/// CPU time (user + system, all threads) of this process so far, in seconds, from
/// `/proc/self/stat` (0 where that is unavailable).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may contain spaces):
    // utime and stime are fields 14 and 15 of the whole line, in clock ticks (100 Hz).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// `s` cut to at most `n` characters (with an ellipsis when cut).
fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}
