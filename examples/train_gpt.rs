//! Trains a small GPT on the embedded tiny-shakespeare text on one device: forward,
//! autodiff backward and AdamW compiled into one graph, parameters and optimizer state kept
//! on the device, then a checkpoint, the loss curve (PNG + CSV) and the validation loss.
//!
//! ```sh
//! cargo run --release --example train_gpt -- --device wgpu --steps 50
//! cargo run --release --example train_gpt -- --device cpu --layers 1 --width 32 --steps 5
//! ```

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use tessera::compiler::optim::AdamW;
use tessera::models::data::{Dataset, Split};
use tessera::models::gpt::GptConfig;
use tessera::runtime::{AscendCpuDevice, CpuDevice, Device, WgpuDevice};
use tessera::train::plot::{plot_loss_curve, write_loss_csv};
use tessera::train::progress::Progress;
use tessera::train::trainer::{gpt_eval_batches, gpt_inputs, gpt_training_graph};
use tessera::train::{LrSchedule, Trainer, TrainerOptions};

/// Where the training runs.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceArg {
    /// The emitted WGSL on a wgpu adapter (software Vulkan works).
    Wgpu,
    /// The f64 graph interpreter (the reference; slow).
    Cpu,
    /// The f32 tile interpreter running the compiled plan.
    Tile,
    /// The emitted Ascend C on its CPU build (one g++ build, one process per step).
    AscendCpu,
}

/// Train a small GPT on tiny-shakespeare.
#[derive(Debug, Parser)]
struct Args {
    /// The device.
    #[arg(long, value_enum, default_value = "wgpu")]
    device: DeviceArg,
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
    /// Optimizer steps.
    #[arg(long, default_value_t = 50)]
    steps: u64,
    /// Peak learning rate (warmup over the first 10% of the steps, then cosine to 10%).
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Seed of the initial weights and of the batches.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Output folder: `checkpoint.safetensors`, `loss.png`, `loss.csv`.
    #[arg(long, default_value = "target/train_gpt")]
    out: PathBuf,
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
    let device: Box<dyn Device> = match args.device {
        DeviceArg::Wgpu => Box::new(WgpuDevice::new().context("opening a wgpu adapter")?),
        DeviceArg::Cpu => Box::new(CpuDevice::reference()),
        DeviceArg::Tile => Box::new(CpuDevice::tile()),
        DeviceArg::AscendCpu => Box::new(AscendCpuDevice::new()),
    };
    println!(
        "GPT: {} layers, {} heads, width {}, context {}, vocab {} ({} parameters) on {}",
        cfg.n_layer,
        cfg.n_head,
        cfg.n_embd,
        cfg.block_size,
        cfg.vocab_size,
        cfg.num_params()?,
        device.name()
    );
    let (b, t) = (args.batch, args.context);
    let (tg, eval) = gpt_training_graph(&cfg, b, t, &AdamW::default())?;
    let warmup = (args.steps / 10).max(1);
    let options = TrainerOptions {
        schedule: LrSchedule::new(args.lr, args.lr / 10.0, warmup, args.steps)?,
        seed: args.seed,
        config: serde_json::to_value(&cfg)?,
    };
    let init = cfg.init_params(args.seed)?;
    let mut trainer = Trainer::new(device.as_ref(), tg, &init, options)?.with_eval_graph(
        device.as_ref(),
        &eval,
        "loss",
    )?;
    let val_batches = gpt_eval_batches(&data, Split::Val, b, t, 4)?;
    let mut progress = Progress::new(args.steps);
    for _ in 0..args.steps {
        let batch = data.batch(Split::Train, b, t, trainer.rng_mut())?;
        let loss = trainer.step(&gpt_inputs(&batch))?;
        progress.step(loss, (b * t) as u64);
    }
    progress.finish();
    let val = trainer.evaluate(&val_batches)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let ckpt = args.out.join("checkpoint.safetensors");
    trainer.save(&ckpt)?;
    let series = [trainer.loss_series("train loss")];
    plot_loss_curve(args.out.join("loss.png"), &series, 800, 500)?;
    write_loss_csv(args.out.join("loss.csv"), &series)?;
    println!(
        "{} steps, {:.0} tokens/s; validation loss {val:.4} nats/char; checkpoint {}, loss curve {}",
        args.steps,
        progress.tokens_per_second(),
        ckpt.display(),
        args.out.join("loss.png").display()
    );
    Ok(())
}
