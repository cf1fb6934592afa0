//! The checks and timings of `scripts/gpu-check.sh` on an Nvidia GPU (issue 6; needs the
//! `cuda` feature). Each subcommand writes one JSON result file; `table` prints them all.
//!
//! ```sh
//! cargo run --release --features cuda --example gpu_check -- info
//! cargo run --release --features cuda --example gpu_check -- train --steps 20 --out r/train.json
//! cargo run --release --features cuda --example gpu_check -- minilm --model .cache/minilm \
//!     --reference models/tests/data/minilm-reference.json --out r/minilm.json
//! cargo run --release --features cuda --example gpu_check -- bench --out r/bench.json
//! cargo run --release --features cuda --example gpu_check -- table --results r
//! ```
//!
//! - `train`: the small GPT trained `--steps` steps on the device and, in parallel, on the
//!   f64 graph interpreter from the same initial weights and batches; passes when every
//!   per-step loss is within `--tol` (relative) of the interpreter's. `--device wgpu` or
//!   `tile` runs the same comparison elsewhere (how the tolerance was calibrated).
//! - `minilm`: all-MiniLM-L6-v2 embeddings of the reference sentences (one padded batch)
//!   against the reference file (PyTorch f32 with TF32 off); passes at max |diff| <= 1e-5
//!   per component (the tolerance of `tests/minilm.rs`). Tessera's PTX computes f32 with
//!   plain FMA/`.rn` instructions, never tensor cores, so there is no TF32 to turn off.
//! - `bench`: matmul 4096^3 in f32 and bf16, causal attention with T = 4096 (8 heads of
//!   64, f32): the median time of `--reps` runs (inputs already on the device, outputs
//!   left there), after one run whose output is checked on sampled elements against f64
//!   dot products / softmax rows computed here. `--sweep` times the PTX record's tuning
//!   alternatives instead (`Target::tuning_variants`: the matmuls at each other tile, the
//!   attention at each other block), as the `sweep` check.
//! - `--device ptx-vm` (`train`, `minilm`, `bench`): the same code on the host's PTX VM, a
//!   dry run without a GPU (the tests at the end of this file do it at small sizes).
//! - `plan`: the bench graphs compiled for PTX, kernels listed (no GPU needed).
//! - `slim-minilm`: a copy of the MiniLM folder whose word-embedding rows other than the
//!   reference sentences' tokens are zero, for the bundle (no GPU needed; see
//!   `scripts/gpu-check.sh bundle`).
//! - `table`: every `*.json` of a results folder as one table (checks, then timings with
//!   the PyTorch column when `torch.json` is there).

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera::compiler::optim::AdamW;
use tessera::compiler::{compile_and_emit, Target};
use tessera::compiler::{DType, Graph};
use tessera::models::bert::{MiniLm, EMBEDDINGS};
use tessera::models::data::{Dataset, Split};
use tessera::models::gpt::GptConfig;
use tessera::runtime::{
    CpuDevice, CudaDevice, Device, Executable, PtxVmDevice, Tensor, WgpuDevice,
};
use tessera::train::trainer::{gpt_inputs, gpt_training_graph};
use tessera::train::{LrSchedule, Trainer, TrainerOptions};

/// f32 unit roundoff, 2^-24.
const EPS: f64 = 1.0 / (1u64 << 24) as f64;

#[derive(Debug, Parser)]
#[command(about = "GPU checks and timings for scripts/gpu-check.sh")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// Where a check runs: the GPU, or elsewhere for a dry run of the same code (`ptx-vm`:
/// the emitted PTX on the host's PTX VM; `wgpu`, `tile`: `train` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeviceArg {
    Cuda,
    PtxVm,
    Wgpu,
    Tile,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the CUDA device (exit 1 with the reason when there is none).
    Info,
    /// Train the small GPT on the device and on the f64 interpreter; compare the losses.
    Train {
        #[arg(long, value_enum, default_value = "cuda")]
        device: DeviceArg,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Largest accepted relative difference of a step's loss: the cross-backend
        /// criterion of `tests/train_gpt.rs`. Measured with `--device wgpu` (lavapipe):
        /// 9.3e-8 at worst over the 20 steps.
        #[arg(long, default_value_t = 1e-4)]
        tol: f64,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// MiniLM embeddings on the GPU against the reference file.
    Minilm {
        #[arg(long, value_enum, default_value = "cuda")]
        device: DeviceArg,
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        reference: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Time matmul (f32, bf16) and attention on the GPU.
    Bench {
        #[arg(long, default_value_t = 4096)]
        size: usize,
        #[arg(long, default_value_t = 4096)]
        seq: usize,
        #[arg(long, default_value_t = 10)]
        reps: usize,
        /// Time the PTX record's tuning variants (`Target::tuning_variants`) instead of
        /// the record; the result is the `sweep` check.
        #[arg(long)]
        sweep: bool,
        /// `ptx-vm` runs the same code on the host's PTX VM (a dry run: small sizes).
        #[arg(long, value_enum, default_value = "cuda")]
        device: DeviceArg,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compile the bench graphs for PTX and print their kernels (no GPU needed).
    Plan {
        #[arg(long, default_value_t = 4096)]
        size: usize,
        #[arg(long, default_value_t = 4096)]
        seq: usize,
    },
    /// Copy a MiniLM folder with the word-embedding rows that the reference sentences
    /// do not use set to zero (no GPU needed): the same embeddings of those sentences,
    /// in a file that compresses to under half its size, so that it fits the bundle.
    SlimMinilm {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        reference: PathBuf,
        /// The folder to write (created; its `model.safetensors` is replaced).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the results folder as a table.
    Table {
        #[arg(long)]
        results: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Info => {
            let d = CudaDevice::new().context("opening the CUDA device")?;
            println!("{}", d.name());
            Ok(())
        }
        Cmd::Train {
            device,
            steps,
            tol,
            out,
        } => {
            let r = train(device, steps, tol);
            finish("train", r, out)
        }
        Cmd::Minilm {
            device,
            model,
            reference,
            out,
        } => finish("minilm", minilm(device, &model, &reference), out),
        Cmd::Bench {
            size,
            seq,
            reps,
            sweep,
            device,
            out,
        } => {
            let check = if sweep { "sweep" } else { "bench" };
            let r = bench(device, size, seq, reps, sweep, out.as_deref());
            finish(check, r, out)
        }
        Cmd::Plan { size, seq } => plan(size, seq),
        Cmd::SlimMinilm {
            model,
            reference,
            out,
        } => slim_minilm(&model, &reference, &out),
        Cmd::Table { results } => table(&results),
    }
}

/// Writes the result (or the error, as a failed result) and exits non-zero on failure.
fn finish(check: &str, r: Result<Value>, out: Option<PathBuf>) -> Result<()> {
    let v = match r {
        Ok(v) => v,
        Err(e) => json!({"check": check, "status": "fail", "detail": format!("{e:#}")}),
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if v["status"] != "pass" {
        bail!("{check}: {}", v["detail"].as_str().unwrap_or("failed"));
    }
    Ok(())
}

fn open(device: DeviceArg) -> Result<Box<dyn Device>> {
    Ok(match device {
        DeviceArg::Cuda => Box::new(CudaDevice::new().context("opening the CUDA device")?),
        DeviceArg::PtxVm => Box::new(PtxVmDevice::new()),
        DeviceArg::Wgpu => Box::new(WgpuDevice::new().context("opening a wgpu adapter")?),
        DeviceArg::Tile => Box::new(CpuDevice::tile()),
    })
}

// ------------------------------------------------------------------------------- train

/// The small GPT of the check: 2 layers, 4 heads, width 64, context 32, batch 4.
fn small_gpt(data: &Dataset) -> GptConfig {
    GptConfig {
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        block_size: 32,
        vocab_size: data.tokenizer().vocab_size(),
    }
}

/// Per-step losses of `steps` steps on `device` (batches drawn from the trainer's RNG, the
/// same sequence on every device), and the seconds taken.
fn losses(device: &dyn Device, data: &Dataset, steps: usize) -> Result<(Vec<f64>, f64)> {
    let cfg = small_gpt(data);
    let (b, t) = (4, cfg.block_size);
    let (tg, _) = gpt_training_graph(&cfg, b, t, &AdamW::default())?;
    let init = cfg.init_params(1234)?;
    let options = TrainerOptions {
        schedule: LrSchedule::new(3e-3, 3e-4, 2, steps as u64)?,
        seed: 7,
        config: serde_json::to_value(&cfg)?,
    };
    let mut tr = Trainer::new(device, tg, &init, options)?;
    let start = Instant::now();
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        let batch = data.batch(Split::Train, b, t, tr.rng_mut())?;
        out.push(tr.step(&gpt_inputs(&batch))?);
    }
    Ok((out, start.elapsed().as_secs_f64()))
}

fn train(device: DeviceArg, steps: usize, tol: f64) -> Result<Value> {
    let data = Dataset::tiny_shakespeare()?;
    let dev = open(device)?;
    let (reference, got) = std::thread::scope(|s| {
        let r =
            s.spawn(|| losses(&CpuDevice::reference(), &data, steps).map_err(|e| format!("{e:#}")));
        let got = losses(dev.as_ref(), &data, steps);
        (r.join(), got)
    });
    let (reference, ref_s) = match reference {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => bail!("the f64 interpreter failed: {e}"),
        Err(_) => bail!("the f64 interpreter thread panicked"),
    };
    let (got, dev_s) = got?;
    let mut worst = (0.0f64, 0usize);
    let mut rows = Vec::new();
    println!("{}", dev.name());
    for (k, (g, r)) in got.iter().zip(&reference).enumerate() {
        let rel = (g - r).abs() / r.abs();
        println!("step {:>3}: loss {g:.6}  f64 {r:.6}  rel {rel:.2e}", k + 1);
        if rel > worst.0 || rel.is_nan() {
            worst = (rel, k + 1);
        }
        rows.push(json!({"step": k + 1, "loss": g, "reference": r, "rel": rel}));
    }
    let falls = got.last() < got.first();
    let pass = worst.0 <= tol && falls && got.len() == steps;
    Ok(json!({
        "check": "train",
        "status": if pass { "pass" } else { "fail" },
        "device": dev.name(),
        "detail": format!(
            "small GPT {steps} steps: max rel loss diff vs f64 {:.2e} (step {}, tol {tol:.0e}); loss {:.4} -> {:.4}{}; {:.2} s on the device, {:.1} s f64",
            worst.0, worst.1,
            got.first().copied().unwrap_or(f64::NAN),
            got.last().copied().unwrap_or(f64::NAN),
            if falls { "" } else { " (did not fall)" },
            dev_s, ref_s
        ),
        "steps": rows,
    }))
}

// ------------------------------------------------------------------------------ minilm

/// The reference file's sentences and their embeddings.
fn reference_sentences(reference: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text = std::fs::read_to_string(reference)
        .with_context(|| format!("reading {}", reference.display()))?;
    let v: Value = serde_json::from_str(&text)?;
    let sentences = v["sentences"]
        .as_array()
        .context("the reference has no `sentences`")?;
    let mut texts = Vec::new();
    let mut want: Vec<Vec<f64>> = Vec::new();
    for s in sentences {
        texts.push(
            s["text"]
                .as_str()
                .context("a sentence without text")?
                .to_string(),
        );
        want.push(
            s["embedding"]
                .as_array()
                .context("a sentence without embedding")?
                .iter()
                .map(|x| x.as_f64().context("a non-number in an embedding"))
                .collect::<Result<_>>()?,
        );
    }
    Ok((texts, want))
}

fn minilm(device: DeviceArg, model_dir: &Path, reference: &Path) -> Result<Value> {
    const TOL: f64 = 1e-5;
    let (texts, want) = reference_sentences(reference)?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let model = MiniLm::load(model_dir)
        .with_context(|| format!("loading the model folder {}", model_dir.display()))?;
    let device = open(device)?;
    let tokens = model.tokenize(&texts)?;
    let graph = model.graph(tokens.batch(), tokens.seq())?;
    let start = Instant::now();
    let mut exe = device.load(&graph)?;
    for (name, value) in model.params() {
        exe.set_param(name, value)?;
    }
    let inputs: HashMap<String, Tensor> = model
        .graph_inputs(&tokens)
        .into_iter()
        .filter(|(n, _)| exe.signature().inputs.iter().any(|(i, _)| i == n))
        .collect();
    let out = exe.run(&inputs)?;
    let secs = start.elapsed().as_secs_f64();
    let got = model.split_embeddings(out.get(EMBEDDINGS).context("no embeddings output")?)?;
    let mut worst = 0.0f64;
    for (g, w) in got.iter().zip(&want) {
        if g.len() != w.len() {
            bail!(
                "embedding of {} values, the reference has {}",
                g.len(),
                w.len()
            );
        }
        for (a, b) in g.iter().zip(w) {
            // A NaN is kept as infinity: `f64::max` would let a later finite value hide it.
            let d = (a - b).abs();
            worst = if d.is_nan() {
                f64::INFINITY
            } else {
                worst.max(d)
            };
        }
    }
    let pass = got.len() == want.len() && worst <= TOL;
    Ok(json!({
        "check": "minilm",
        "status": if pass { "pass" } else { "fail" },
        "device": device.name(),
        "detail": format!(
            "{} sentences: max |diff| vs reference {worst:.2e} (tol {TOL:.0e}); compile + load + run {secs:.1} s",
            got.len()
        ),
    }))
}

/// The word-embedding table of the MiniLM weights file.
const WORD_EMBEDDINGS: &str = "embeddings.word_embeddings.weight";

/// Writes `out`: a copy of the MiniLM folder `model_dir` whose word-embedding rows are
/// zero except those of the reference sentences' tokens and of the padding id 0. The
/// graph reads no other row (a gather by token id), so the embeddings of those sentences
/// are the same bits; the zeros compress (`gzip`: 87 to ~40 MB).
fn slim_minilm(model_dir: &Path, reference: &Path, out: &Path) -> Result<()> {
    use safetensors::{tensor::TensorView, Dtype, SafeTensors};
    let (texts, _) = reference_sentences(reference)?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let model = MiniLm::load(model_dir)
        .with_context(|| format!("loading the model folder {}", model_dir.display()))?;
    let tokens = model.tokenize(&texts)?;
    let mut used: Vec<usize> = tokens.ids.iter().flatten().map(|&i| i as usize).collect();
    used.push(0);
    used.sort_unstable();
    used.dedup();

    let weights = model_dir.join("model.safetensors");
    let bytes =
        std::fs::read(&weights).with_context(|| format!("reading {}", weights.display()))?;
    let (_, metadata) = SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("reading the header of {}", weights.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("reading {}", weights.display()))?;
    let word = st
        .tensor(WORD_EMBEDDINGS)
        .with_context(|| format!("{} has no {WORD_EMBEDDINGS}", weights.display()))?;
    let (vocab, width) = match word.shape() {
        [v, c] if word.dtype() == Dtype::F32 => (*v, *c),
        shape => bail!(
            "{WORD_EMBEDDINGS} is {:?} {shape:?}, expected an F32 matrix",
            word.dtype()
        ),
    };
    let row = width * 4;
    let mut slim = vec![0u8; vocab * row];
    for &id in &used {
        let at = id * row..(id + 1) * row;
        let src = word
            .data()
            .get(at.clone())
            .with_context(|| format!("token id {id} is past the {vocab} rows"))?;
        slim[at].copy_from_slice(src);
    }
    let mut views = Vec::new();
    for (name, view) in st.tensors() {
        let view = if name == WORD_EMBEDDINGS {
            TensorView::new(Dtype::F32, vec![vocab, width], &slim)?
        } else {
            view
        };
        views.push((name, view));
    }

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    copy_folder(model_dir, out, Path::new("model.safetensors"))?;
    let path = out.join("model.safetensors");
    safetensors::serialize_to_file(views, metadata.metadata().clone(), &path)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "{}: {} of {vocab} word-embedding rows kept (the tokens of {} reference sentences \
         and the padding id)",
        out.display(),
        used.len(),
        texts.len()
    );
    Ok(())
}

/// Copies the files of `from` (recursively) into `to`, except `skip` (relative).
fn copy_folder(from: &Path, to: &Path, skip: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        if Path::new(&name) == skip {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dst)?;
            copy_folder(&src, &dst, Path::new(""))?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------- bench

/// A graph of parameters only (the timed runs upload nothing) with one output `y`.
fn param_graph(
    params: &[(&str, Vec<usize>, DType)],
    body: impl FnOnce(&mut Graph, &[tessera::compiler::NodeId]) -> Result<tessera::compiler::NodeId>,
) -> Result<Graph> {
    let mut g = Graph::new();
    let ids = params
        .iter()
        .map(|(n, s, d)| g.param(n, s, *d))
        .collect::<Result<Vec<_>, _>>()?;
    let y = body(&mut g, &ids)?;
    // `timed` reads the output by this name.
    g.set_name(y, "y")?;
    g.mark_output(y)?;
    Ok(g)
}

/// Loads `graph`, sets `values`, runs once (returned for checking), then discards the
/// output and times `reps` runs: (output, median ms, load seconds).
fn timed(
    runner: &Runner,
    target: &Target,
    graph: &Graph,
    values: &[(&str, &Tensor)],
    reps: usize,
) -> Result<(Tensor, f64, f64)> {
    let t0 = Instant::now();
    let mut exe = runner.load(graph, target)?;
    for (n, v) in values {
        exe.set_param(n, v)?;
    }
    let load_s = t0.elapsed().as_secs_f64();
    let none = HashMap::new();
    let y = exe.run(&none)?.remove("y").context("no output `y`")?;
    exe.discard_output("y")?;
    exe.run(&none)?; // warm-up
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        exe.run(&none)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    Ok((y, ms[ms.len() / 2], load_s))
}

/// Sampled `(row, col)` positions of an `n x m` result, deterministic.
fn samples(n: usize, m: usize, count: usize) -> Vec<(usize, usize)> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..count)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (s >> 33) as usize % n;
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (i, (s >> 33) as usize % m)
        })
        .collect()
}

/// `y = a @ b`, both `[n, n]` parameters of `dtype`.
fn matmul_graph(n: usize, dtype: DType) -> Result<Graph> {
    param_graph(
        &[("a", vec![n, n], dtype), ("b", vec![n, n], dtype)],
        |g, p| Ok(g.matmul(p[0], p[1])?),
    )
}

/// `y = attention(q, k, v)`, causal, all of `shape` `[1, H, T, D]` in f32.
fn attention_graph(shape: &[usize]) -> Result<Graph> {
    param_graph(
        &[
            ("q", shape.to_vec(), DType::F32),
            ("k", shape.to_vec(), DType::F32),
            ("v", shape.to_vec(), DType::F32),
        ],
        |g, p| Ok(g.attention(p[0], p[1], p[2], None, true, None)?),
    )
}

/// The bench graphs compiled for `Target::ptx()` without a GPU: kernels, grids, blocks.
fn plan(n: usize, t: usize) -> Result<()> {
    let graphs = [
        ("matmul f32", matmul_graph(n, DType::F32)?),
        ("matmul bf16", matmul_graph(n, DType::BF16)?),
        ("attention", attention_graph(&[1, 8, t, 64])?),
    ];
    for (name, g) in graphs {
        let (_, artifact) = compile_and_emit(&g, &Target::ptx())?;
        for k in &artifact.kernels {
            println!(
                "{name}: kernel {} grid {:?} block {}",
                k.name, k.grid, k.block
            );
        }
    }
    Ok(())
}

/// Where `bench` runs: the GPU, or the PTX VM (the same code on the host, for a dry run
/// at small sizes).
enum Runner {
    Cuda(CudaDevice),
    Vm(PtxVmDevice),
}

impl Runner {
    fn open(device: DeviceArg) -> Result<Runner> {
        Ok(match device {
            DeviceArg::Cuda => Runner::Cuda(CudaDevice::new().context("opening the CUDA device")?),
            DeviceArg::PtxVm => Runner::Vm(PtxVmDevice::new()),
            other => bail!("bench runs PTX: on cuda or ptx-vm, not {other:?}"),
        })
    }

    fn name(&self) -> String {
        match self {
            Runner::Cuda(d) => d.name(),
            Runner::Vm(d) => d.name(),
        }
    }

    /// The device's PTX record.
    fn target(&self) -> Target {
        match self {
            Runner::Cuda(d) => d.ptx_target(),
            Runner::Vm(_) => Target::ptx(),
        }
    }

    /// `graph` compiled for `target` and loaded.
    fn load(&self, graph: &Graph, target: &Target) -> Result<Executable> {
        let (plan, artifact) = compile_and_emit(graph, target)?;
        Ok(match self {
            Runner::Cuda(d) => d.load_plan(plan, artifact)?,
            Runner::Vm(d) => d.load_plan(plan, artifact)?,
        })
    }
}

/// One timing row and, when its sampled outputs missed the tolerance, why.
type Timing = (Value, Option<String>);

/// `n^3` matmul in `dtype` on `target`: median of `reps` runs, 64 sampled outputs checked
/// against f64 dot products. `label` names a tuning variant (in the row's name).
fn time_matmul(
    runner: &Runner,
    target: &Target,
    label: Option<&str>,
    n: usize,
    dtype: DType,
    reps: usize,
) -> Result<Timing> {
    let tag = if dtype == DType::F32 { "f32" } else { "bf16" };
    let name = row_name(format!("matmul_{tag}_{n}"), label);
    let graph = matmul_graph(n, dtype)?;
    let a = Tensor::random(&[n, n], dtype, 11);
    let b = Tensor::random(&[n, n], dtype, 12);
    let (y, ms, load_s) = timed(runner, target, &graph, &[("a", &a), ("b", &b)], reps)?;
    // Dot products of n terms uniform in [-1, 1): 2 n u absolute (the conformance
    // suite's `dot_tol`), plus the bf16 rounding of the result: bf16 has 8 significant
    // bits, so rounding to nearest is off by up to 2^-8 relative (2^-9 was too tight: a
    // dry run on the PTX VM showed correctly rounded results at 178% of it).
    let rtol = if dtype == DType::BF16 {
        1.0 / 256.0
    } else {
        0.0
    };
    let atol = 2.0 * n as f64 * EPS;
    let mut worst = 0.0f64;
    for (i, j) in samples(n, n, 64) {
        let want: f64 = (0..n).map(|k| a.data[i * n + k] * b.data[k * n + j]).sum();
        let got = y.data[i * n + j];
        let ratio = (got - want).abs() / (atol + rtol * want.abs());
        worst = if ratio.is_nan() {
            f64::INFINITY
        } else {
            worst.max(ratio)
        };
    }
    let flops = 2.0 * (n as f64).powi(3);
    println!("{name}: {ms:.3} ms ({:.1} TFLOP/s), 64 sampled outputs at {:.0}% of tolerance, load {load_s:.1} s", flops / ms / 1e9, worst * 100.0);
    let failure = (worst > 1.0).then(|| {
        format!(
            "{name}: sampled outputs at {:.0}% of tolerance",
            worst * 100.0
        )
    });
    let row = json!({"name": name, "ms": ms, "tflops": flops / ms / 1e9, "check": worst <= 1.0});
    Ok((row, failure))
}

/// Causal attention `[1, 8, t, 64]` (f32) on `target`: median of `reps` runs, 8 sampled
/// rows checked against f64 softmax rows.
fn time_attention(
    runner: &Runner,
    target: &Target,
    label: Option<&str>,
    t: usize,
    reps: usize,
) -> Result<Timing> {
    let (h, d) = (8usize, 64usize);
    let name = row_name(format!("attention_causal_f32_T{t}_H{h}_D{d}"), label);
    let shape = vec![1, h, t, d];
    let graph = attention_graph(&shape)?;
    let q = Tensor::random(&shape, DType::F32, 21);
    let k = Tensor::random(&shape, DType::F32, 22);
    let v = Tensor::random(&shape, DType::F32, 23);
    let values = [("q", &q), ("k", &k), ("v", &v)];
    let (y, ms, load_s) = timed(runner, target, &graph, &values, reps)?;
    let scale = 1.0 / (d as f64).sqrt();
    let mut worst = 0.0f64;
    for (hi, i) in samples(h, t, 8) {
        // Row i of head hi in f64: softmax over keys 0..=i (causal).
        let base = hi * t * d;
        let s: Vec<f64> = (0..=i)
            .map(|j| {
                scale
                    * (0..d)
                        .map(|c| q.data[base + i * d + c] * k.data[base + j * d + c])
                        .sum::<f64>()
            })
            .collect();
        let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let p: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let l: f64 = p.iter().sum();
        // The conformance suite's attention bound for i + 1 keys.
        let tk = i + 1;
        let smax = scale * d as f64;
        let tol = (42.0 * smax + 16.0 * tk.div_ceil(32) as f64 + 2.0 * tk as f64 + 18.0) * EPS;
        for c in 0..d {
            let want: f64 = p
                .iter()
                .enumerate()
                .map(|(j, pj)| pj * v.data[base + j * d + c])
                .sum::<f64>()
                / l;
            let got = y.data[base + i * d + c];
            let ratio = (got - want).abs() / tol;
            worst = if ratio.is_nan() {
                f64::INFINITY
            } else {
                worst.max(ratio)
            };
        }
    }
    // Causal: half of the T x T scores, 2 matmuls of 2 flops per multiply-add.
    let flops = 4.0 * (h * t * t * d) as f64 / 2.0;
    println!("{name}: {ms:.3} ms ({:.1} TFLOP/s), 8 sampled rows at {:.0}% of tolerance, load {load_s:.1} s", flops / ms / 1e9, worst * 100.0);
    let failure = (worst > 1.0)
        .then(|| format!("{name}: sampled rows at {:.0}% of tolerance", worst * 100.0));
    let row = json!({"name": name, "ms": ms, "tflops": flops / ms / 1e9, "check": worst <= 1.0});
    Ok((row, failure))
}

/// Targets to time a case on, each with its tuning variant's label (`None`: the record).
type Variants = Vec<(Option<String>, Target)>;

/// A timing row's name: the case, and the tuning variant in parentheses.
fn row_name(case: String, label: Option<&str>) -> String {
    match label {
        Some(l) => format!("{case} ({l})"),
        None => case,
    }
}

/// The timings of the record (`sweep` false: check `bench`) or of its tuning variants
/// (`Target::tuning_variants`; `sweep` true: check `sweep`): the matmuls on the variants
/// that keep the record's attention block (other tiles, operands in place), the attention
/// on the others. With `partial`, the result so far is written there after each timing,
/// so a run killed by its time limit still leaves its rows: as a failure for `bench`,
/// skipped (cut short, optional) for `sweep` unless a timing already failed.
fn bench(
    device: DeviceArg,
    n: usize,
    t: usize,
    reps: usize,
    sweep: bool,
    partial: Option<&Path>,
) -> Result<Value> {
    let runner = Runner::open(device)?;
    println!("{}", runner.name());
    let record = runner.target();
    let (matmuls, attentions): (Variants, Variants) = if sweep {
        let v = record.tuning_variants();
        let pick = |keep: &dyn Fn(&Target) -> bool| {
            v.iter()
                .filter(|(_, t)| keep(t))
                .map(|(l, t)| (Some(l.clone()), t.clone()))
                .collect::<Vec<_>>()
        };
        (
            pick(&|t| t.attention_block == record.attention_block),
            pick(&|t| t.attention_block != record.attention_block),
        )
    } else {
        (vec![(None, record.clone())], vec![(None, record.clone())])
    };
    let check = if sweep { "sweep" } else { "bench" };
    let total = 2 * matmuls.len() + attentions.len();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    // Timings finished (a timing may give both a row and a failure).
    let mut done = 0;
    let mut push = |r: Result<Timing>, what: String| -> Result<()> {
        done += 1;
        match r {
            Ok((row, failure)) => {
                rows.push(row);
                failures.extend(failure);
            }
            Err(e) => failures.push(format!("{what}: {e:#}")),
        }
        let Some(path) = partial else { return Ok(()) };
        if done >= total {
            return Ok(());
        }
        let status = if !failures.is_empty() || !sweep {
            "fail"
        } else {
            "skip"
        };
        let mut detail = format!("cut short after {done} of {total} timings");
        if !failures.is_empty() {
            detail = format!("{detail}: {}", failures.join("; "));
        }
        let v = json!({"check": check, "status": status, "device": runner.name(),
            "detail": detail, "rows": rows});
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))
    };
    for dtype in [DType::F32, DType::BF16] {
        for (label, target) in &matmuls {
            let r = time_matmul(&runner, target, label.as_deref(), n, dtype, reps);
            push(r, row_name(format!("matmul {dtype}"), label.as_deref()))?;
        }
    }
    for (label, target) in &attentions {
        let r = time_attention(&runner, target, label.as_deref(), t, reps);
        push(r, row_name("attention".into(), label.as_deref()))?;
    }
    Ok(json!({
        "check": check,
        "status": if failures.is_empty() { "pass" } else { "fail" },
        "device": runner.name(),
        "detail": if failures.is_empty() {
            format!("{} timings, sampled outputs within tolerance", rows.len())
        } else {
            failures.join("; ")
        },
        "rows": rows,
    }))
}

// ------------------------------------------------------------------------------- table

fn table(dir: &Path) -> Result<()> {
    print!("{}", render_table(dir)?);
    Ok(())
}

/// The table of every `*.json` result in `dir`, ending with the `overall:` line.
fn render_table(dir: &Path) -> Result<String> {
    use std::fmt::Write as _;
    let mut o = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut results = Vec::new();
    for f in &files {
        // Bytes, not `read_to_string`: a file that is not UTF-8 is one failed row below,
        // not the end of the table.
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        match serde_json::from_str::<Value>(&String::from_utf8_lossy(&bytes)) {
            Ok(v) => results.push(v),
            Err(e) => results.push(json!({
                "check": f.file_name().map(|n| n.to_string_lossy().into_owned()),
                "status": "fail",
                "detail": format!("unreadable result file: {e}"),
            })),
        }
    }
    let torch: HashMap<String, f64> = results
        .iter()
        .filter(|v| v["check"] == "torch")
        .flat_map(|v| v["rows"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), r["ms"].as_f64()?)))
        .collect();
    writeln!(o)?;
    writeln!(o, "{:<12} {:<6} detail", "check", "status")?;
    writeln!(o, "{}", "-".repeat(100))?;
    // `missing` is a check that could not run for want of input files (the MiniLM
    // model): the run is then incomplete, not failed.
    let (mut failed, mut missing) = (false, false);
    for v in &results {
        let status = v["status"].as_str().unwrap_or("?");
        // The PyTorch column and the tuning sweep may be skipped (no torch; no time).
        let optional = (v["check"] == "torch" || v["check"] == "sweep") && status == "skip";
        missing |= status == "missing";
        failed |= !(status == "pass" || status == "missing" || optional);
        writeln!(
            o,
            "{:<12} {:<6} {}",
            v["check"].as_str().unwrap_or("?"),
            status,
            v["detail"].as_str().unwrap_or("")
        )?;
    }
    let bench: Vec<Value> = results
        .iter()
        .filter(|v| v["check"] == "bench" || v["check"] == "sweep")
        .flat_map(|v| v["rows"].as_array().cloned().unwrap_or_default())
        .collect();
    if !bench.is_empty() {
        writeln!(o)?;
        writeln!(
            o,
            "{:<56} {:>12} {:>10} {:>12} {:>10}",
            "timing", "tessera ms", "TFLOP/s", "PyTorch ms", "ratio"
        )?;
        writeln!(o, "{}", "-".repeat(104))?;
        for r in &bench {
            let name = r["name"].as_str().unwrap_or("?");
            let ms = r["ms"].as_f64().unwrap_or(f64::NAN);
            let (tm, ratio) = match torch.get(name) {
                Some(t) => (format!("{t:.3}"), format!("{:.1}x", ms / t)),
                None => ("n/a".into(), "n/a".into()),
            };
            writeln!(
                o,
                "{name:<56} {ms:>12.3} {:>10.1} {tm:>12} {ratio:>10}",
                r["tflops"].as_f64().unwrap_or(f64::NAN)
            )?;
        }
    }
    writeln!(o)?;
    writeln!(
        o,
        "overall: {}",
        if failed || results.is_empty() {
            "FAIL"
        } else if missing {
            "INCOMPLETE (nothing failed; see the `missing` rows)"
        } else {
            "PASS"
        }
    )?;
    Ok(o)
}

/// Dry runs of the checks on the PTX VM: the code `scripts/gpu-check.sh` runs on a GPU,
/// at small sizes and without one, so that a GPU run (rare and short) is not the first to
/// execute it. (The first dry run found two faults a GPU run would have hit: the timed
/// graphs had no output named `y`, and the bf16 tolerance was half of bf16's rounding.)
/// `cargo xtask test` runs these: `cargo test -p tessera --features cuda --example
/// gpu_check`.
#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh results folder.
    fn results_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tessera-gpu-check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a results folder");
        dir
    }

    fn write(dir: &Path, v: &Value) {
        let name = v["check"].as_str().expect("a check name");
        std::fs::write(dir.join(format!("{name}.json")), v.to_string()).expect("written");
    }

    fn names(v: &Value) -> Vec<String> {
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["name"].as_str().expect("a name").to_string())
            .collect()
    }

    #[test]
    fn bench_sweep_and_train_pass_on_the_ptx_vm() {
        let dir = results_dir("vm");
        let partial = dir.join("partial.json");
        let read_partial = || -> Value {
            let v = serde_json::from_slice(&std::fs::read(&partial).expect("a partial result"))
                .expect("JSON");
            std::fs::remove_file(&partial).expect("removed");
            v
        };
        // With a partial path, the result so far is written after each timing but the last
        // (`finish` writes the whole): what a run killed before its end leaves, a failure
        // for the bench (required), skipped for the sweep (optional).
        let b = bench(DeviceArg::PtxVm, 96, 80, 1, false, Some(&partial)).expect("bench");
        assert_eq!(b["status"], "pass", "{b}");
        let cut = read_partial();
        assert_eq!(cut["status"], "fail", "{cut}");
        assert_eq!(cut["detail"], "cut short after 2 of 3 timings");
        assert_eq!(
            names(&b),
            [
                "matmul_f32_96",
                "matmul_bf16_96",
                "attention_causal_f32_T80_H8_D64"
            ]
        );
        let s = bench(DeviceArg::PtxVm, 96, 80, 1, true, Some(&partial)).expect("sweep");
        assert_eq!(s["status"], "pass", "{s}");
        let cut = read_partial();
        let total = names(&s).len();
        assert_eq!(cut["status"], "skip", "{cut}");
        assert_eq!(names(&cut), names(&s)[..total - 1]);
        assert_eq!(
            cut["detail"],
            format!("cut short after {} of {total} timings", total - 1)
        );
        let variants = Target::ptx().tuning_variants();
        let blocks = variants
            .iter()
            .filter(|(l, _)| l.starts_with("attention"))
            .count();
        let sweep_rows = names(&s);
        assert_eq!(sweep_rows.len(), 2 * (variants.len() - blocks) + blocks);
        assert!(sweep_rows.contains(&"matmul_f32_96 (dot operands in place)".to_string()));
        assert!(sweep_rows.contains(&"matmul_bf16_96 (tile 128x128x8)".to_string()));
        let t = train(DeviceArg::PtxVm, 2, 1e-4).expect("train");
        assert_eq!(t["status"], "pass", "{t}");
        for v in [&b, &s, &t] {
            write(&dir, v);
        }
        let table = render_table(&dir).expect("a table");
        assert!(table.ends_with("overall: PASS\n"), "{table}");
        assert!(table.contains("attention_causal_f32_T80_H8_D64 (attention block 64)"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The MiniLM folder of `tests/minilm.rs`: `TESSERA_MINILM_DIR`, else `minilm` in
    /// `TESSERA_CACHE` or `.cache` (`cargo xtask setup` fetches it); missing files fail
    /// the test, saying so.
    fn minilm_dir() -> PathBuf {
        let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = env("TESSERA_MINILM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                env("TESSERA_CACHE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache"))
                    .join("minilm")
            });
        assert!(
            dir.join("model.safetensors").is_file(),
            "the all-MiniLM-L6-v2 files are missing in {}: run `cargo xtask setup`",
            dir.display()
        );
        dir
    }

    /// The bundle's slim MiniLM gives the reference embeddings (on the tile interpreter)
    /// with all but a few dozen word-embedding rows zero; one slimmed for the first
    /// sentence alone fails on the others (the rows are really gone, and the check sees
    /// it).
    #[test]
    fn the_slim_minilm_gives_the_reference_embeddings() {
        let model = minilm_dir();
        let reference =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tests/data/minilm-reference.json");
        let dir = results_dir("slim");
        let slim = dir.join("minilm");
        slim_minilm(&model, &reference, &slim).expect("slimmed");
        let r = minilm(DeviceArg::Tile, &slim, &reference).expect("ran");
        assert_eq!(r["status"], "pass", "{r}");

        let bytes = std::fs::read(slim.join("model.safetensors")).expect("read");
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
        let word = st.tensor(WORD_EMBEDDINGS).expect("word embeddings");
        let row = word.shape()[1] * 4;
        let kept = word
            .data()
            .chunks(row)
            .filter(|r| r.iter().any(|&b| b != 0))
            .count();
        assert!((2..100).contains(&kept), "{kept} rows kept");
        let original = std::fs::read(model.join("model.safetensors")).expect("read");
        let original = safetensors::SafeTensors::deserialize(&original).expect("safetensors");
        for (name, view) in original.tensors() {
            if name != WORD_EMBEDDINGS {
                assert_eq!(
                    view.data(),
                    st.tensor(&name).expect("every tensor kept").data(),
                    "{name}"
                );
            }
        }

        let mut one: Value =
            serde_json::from_str(&std::fs::read_to_string(&reference).expect("read"))
                .expect("json");
        let first = one["sentences"][0].clone();
        one["sentences"] = json!([first]);
        let one_path = dir.join("one-sentence.json");
        std::fs::write(&one_path, one.to_string()).expect("written");
        let narrow = dir.join("narrow");
        slim_minilm(&model, &one_path, &narrow).expect("slimmed");
        let r = minilm(DeviceArg::Tile, &narrow, &one_path).expect("ran");
        assert_eq!(r["status"], "pass", "{r}");
        let r = minilm(DeviceArg::Tile, &narrow, &reference).expect("ran");
        assert_eq!(r["status"], "fail", "{r}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_table_fails_on_a_failed_check_and_is_incomplete_on_a_missing_one() {
        let dir = results_dir("table");
        write(
            &dir,
            &json!({"check": "device", "status": "pass", "detail": "x"}),
        );
        write(
            &dir,
            &json!({"check": "minilm", "status": "missing", "detail": "no files"}),
        );
        write(
            &dir,
            &json!({"check": "torch", "status": "skip", "detail": "no torch"}),
        );
        let t = render_table(&dir).expect("a table");
        assert!(t.contains("overall: INCOMPLETE"), "{t}");
        // A sweep the budget had no time for is optional, like the PyTorch column.
        write(
            &dir,
            &json!({"check": "sweep", "status": "skip", "detail": "no time"}),
        );
        let t = render_table(&dir).expect("a table");
        assert!(t.contains("overall: INCOMPLETE"), "{t}");
        write(
            &dir,
            &json!({"check": "sweep", "status": "fail", "detail": "wrong", "rows": []}),
        );
        let t = render_table(&dir).expect("a table");
        assert!(t.ends_with("overall: FAIL\n"), "{t}");
        std::fs::write(dir.join("broken.json"), b"{not json").expect("written");
        let t = render_table(&dir).expect("a table");
        assert!(t.contains("unreadable result file"), "{t}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
