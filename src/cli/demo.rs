//! `tessera demo`: a GPT trained end to end by Tessera-compiled kernels.
//!
//! 1. The training step of a demo-size GPT (forward, reverse-mode autodiff backward and
//!    AdamW, one graph: [`gpt_training_graph`]) is compiled for every target into
//!    `--out/<target>/` (kernel files and `manifest.json`, as `tessera compile` writes
//!    them). The PTX is assembled by `ptxas` for sm_80 and sm_90 when one is found
//!    (`TESSERA_PTXAS`, `.cache/ptxas/bin/ptxas`, `PATH`); the Ascend C kernels and host
//!    program are checked by `g++ -fsyntax-only` against the CPU build of the Ascend C API
//!    (a full `-O1` build of every kernel takes minutes on two cores; the tests build and
//!    run the Ascend C of small training steps).
//! 2. The GPT is trained on the embedded tiny-shakespeare text on wgpu (software Vulkan
//!    works) with a progress bar, warmup + cosine learning rate.
//! 3. The validation loss (nats per character) is measured on fixed validation batches, a
//!    checkpoint and the loss curve (PNG and CSV) are written into `--out`, and a sample
//!    of `--sample` characters is generated from the trained weights.
//!
//! `tessera demo --mlp` is the earlier cross-target check: the MLP block
//! `y = sum(tanh(x @ w + b), axis 1)` compiled for every target, run on wgpu and on the
//! Ascend C CPU build, and compared with the f64 interpreter; the PTX assembled by
//! `ptxas`.

use super::compile::write_artifact;
use super::DemoArgs;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tessera::compiler::optim::AdamW;
use tessera::models::data::{Dataset, Split};
use tessera::models::gpt::GptConfig;
use tessera::runtime::ascend_cpu::run_plan_ascend_cpu;
use tessera::runtime::{Device, Tensor, WgpuDevice};
use tessera::train::plot::{plot_loss_curve, write_loss_csv};
use tessera::train::progress::Progress;
use tessera::train::sample::{SampleOptions, Sampler};
use tessera::train::trainer::{gpt_eval_batches, gpt_inputs, gpt_training_graph};
use tessera::train::{LrSchedule, Trainer, TrainerOptions};
use tessera_compiler::backend::Artifact;
use tessera_compiler::graph::DType;
use tessera_compiler::interp::run_graph;
use tessera_compiler::{Graph, Plan, Target, TargetKind};

// The defaults: chosen for the validation loss reached in a demo of a few minutes on two
// CPU cores (lavapipe). At 153k training tokens (lr 1e-2, warmup + cosine), measured:
// 2 layers, context 64, batch 16 x 150 steps: 2.77; batch 8 x 300: 2.62; batch 4 x 600:
// 2.61; context 32, batch 16 x 300: 2.58; context 32, batch 8 x 600: 2.56; 1 layer,
// context 32, batch 16 x 300: 2.59 (lr 2e-2 was worse: 2.83). With 230k tokens (context
// 32, batch 8, 900 steps): 1 layer 2.36 at ~2070 tokens/s, 2 layers 2.44 at ~1260: many
// small steps of a 1-layer model learn fastest per second. 1500 steps (384k tokens) reach
// 2.26; the default 2500 steps (640k tokens) reach 1.99 in about 130 s of training at
// ~4900 tokens/s (with the fused AdamW and CPU-adapter tiling).

/// Default transformer blocks of the demo GPT.
pub const DEFAULT_LAYERS: usize = 1;
/// Default attention heads per block.
pub const DEFAULT_HEADS: usize = 4;
/// Default width of the residual stream.
pub const DEFAULT_WIDTH: usize = 64;
/// Default context length.
pub const DEFAULT_CONTEXT: usize = 32;
/// Default sequences per batch.
pub const DEFAULT_BATCH: usize = 8;
/// Default optimizer steps.
pub const DEFAULT_STEPS: u64 = 2500;
/// Default cap on the training time in seconds, so that the whole demo stays within five
/// minutes on a slow or busy machine (the default steps take a little over two minutes on
/// two cores).
pub const DEFAULT_SECONDS: f64 = 200.0;
/// Default peak learning rate.
pub const DEFAULT_LR: f64 = 1e-2;
/// Most characters `--sample` may ask for (one forward pass each).
const MAX_SAMPLE: usize = 1_000_000;
/// Validation batches averaged for the reported loss (fixed offsets, see
/// [`gpt_eval_batches`]).
const EVAL_BATCHES: usize = 32;

/// Runs `tessera demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    if args.mlp {
        run_mlp(args)
    } else {
        run_gpt(args)
    }
}

/// The GPT demo (see the module docs).
fn run_gpt(args: &DemoArgs) -> Result<()> {
    let start = Instant::now();
    let data = Dataset::tiny_shakespeare().context("loading the embedded tiny-shakespeare")?;
    let cfg = GptConfig {
        n_layer: args.layers,
        n_head: args.heads,
        n_embd: args.width,
        block_size: args.context,
        vocab_size: data.tokenizer().vocab_size(),
    };
    cfg.validate().context("invalid model size")?;
    if args.batch == 0 || args.steps == 0 {
        bail!("--batch and --steps must be at least 1");
    }
    if !(args.seconds.is_finite() && args.seconds >= 0.0) {
        bail!(
            "--seconds must be a number of seconds (0: no limit), got {}",
            args.seconds
        );
    }
    let cap = (args.seconds > 0.0).then_some(args.seconds);
    let warmup = (args.steps / 10).max(1);
    let schedule =
        LrSchedule::new(args.lr, args.lr / 10.0, warmup, args.steps).context("invalid --lr")?;
    let opts = SampleOptions {
        temperature: args.temperature,
        top_k: args.top_k,
        seed: args.seed,
    };
    opts.validate()?;
    if args.sample > MAX_SAMPLE {
        bail!(
            "--sample must be at most {MAX_SAMPLE} characters, got {}",
            args.sample
        );
    }
    if args.sample > 0 {
        if args.prompt.is_empty() {
            bail!("--prompt must not be empty");
        }
        data.tokenizer()
            .encode(&args.prompt)
            .context("--prompt cannot be encoded")?;
    }
    let (b, t) = (args.batch, args.context);
    println!(
        "tessera demo: a GPT with {} layer(s), {} heads, width {}, context {}, vocabulary {} \
         ({} parameters), batch {b} x {t} tokens of tiny-shakespeare",
        cfg.n_layer,
        cfg.n_head,
        cfg.n_embd,
        cfg.block_size,
        cfg.vocab_size,
        cfg.num_params()?
    );
    let (tg, eval) =
        gpt_training_graph(&cfg, b, t, &AdamW::default()).context("building the training graph")?;
    println!(
        "training step: forward + autodiff backward + AdamW, one graph of {} nodes\n",
        tg.graph.len()
    );

    // 1. Every target.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut failures = Vec::new();
    for kind in TargetKind::ALL {
        if let Err(e) = emit_target(&tg.graph, kind, &args.out) {
            report_failure(&e);
            failures.push(kind.name());
        }
    }
    println!();
    if failures.contains(&TargetKind::Wgsl.name()) {
        bail!(
            "the training step failed for wgsl (above), so it cannot train on wgpu; the demo \
             failed for: {}",
            failures.join(", ")
        );
    }

    // 2. Training on wgpu.
    let device = WgpuDevice::new().context("opening a wgpu adapter")?;
    println!("training on {}", device.name());
    let options = TrainerOptions {
        schedule,
        seed: args.seed,
        config: serde_json::to_value(&cfg)?,
    };
    let init = cfg.init_params(args.seed)?;
    let mut trainer = Trainer::new(&device, tg, &init, options)
        .context("loading the training step on wgpu")?
        .with_eval_graph(&device, &eval, "loss")
        .context("loading the evaluation graph on wgpu")?;
    let val_batches = gpt_eval_batches(&data, Split::Val, b, t, EVAL_BATCHES)?;
    let train_start = Instant::now();
    let mut progress = Progress::new(args.steps);
    // indicatif draws nothing when stderr is not a terminal: print ten lines instead.
    let lines = !std::io::stderr().is_terminal();
    let every = (args.steps / 10).max(1);
    for step in 1..=args.steps {
        let batch = data.batch(Split::Train, b, t, trainer.rng_mut())?;
        let loss = trainer.step(&gpt_inputs(&batch))?;
        if !loss.is_finite() {
            progress.finish();
            bail!("the training loss is {loss} at step {step} (diverged; try a lower --lr)");
        }
        progress.step(loss, (b * t) as u64);
        if lines && (step % every == 0 || step == args.steps) {
            println!("  step {step}/{}: {}", args.steps, progress.message());
        }
        if cap.is_some_and(|s| train_start.elapsed().as_secs_f64() >= s) && step < args.steps {
            let note = format!(
                "--seconds {} reached after {step} of {} steps",
                args.seconds, args.steps
            );
            progress.println(&note);
            if lines {
                println!("  {note}");
            }
            break;
        }
    }
    progress.finish();
    let train_secs = train_start.elapsed().as_secs_f64();
    let steps = trainer.step_count();
    println!(
        "trained {steps} steps in {train_secs:.1} s ({:.0} tokens/s)",
        progress.tokens_per_second()
    );

    // 3. Validation loss, checkpoint, loss curve, sample.
    let val = trainer.evaluate(&val_batches)?;
    let ckpt = args.out.join("checkpoint.safetensors");
    trainer.save(&ckpt)?;
    let series = [trainer.loss_series("train loss")];
    let png = args.out.join("loss.png");
    let csv = args.out.join("loss.csv");
    plot_loss_curve(&png, &series, 800, 500)?;
    write_loss_csv(&csv, &series)?;
    println!(
        "checkpoint {}; loss curve {} and {}",
        ckpt.display(),
        png.display(),
        csv.display()
    );
    if args.sample > 0 {
        let mut sampler = Sampler::new(&device, &cfg, &trainer.params()?, data.tokenizer().clone())
            .context("loading the sampler on wgpu")?;
        let text = sampler
            .generate(&args.prompt, args.sample, &opts)
            .context("sampling")?;
        println!(
            "\nsample ({} characters, temperature {}{}):\n{}{}\n",
            args.sample,
            args.temperature,
            args.top_k
                .map(|k| format!(", top-k {k}"))
                .unwrap_or_default(),
            args.prompt,
            text
        );
    }
    println!(
        "validation loss {val:.4} nats/char after {steps} steps ({EVAL_BATCHES} batches of \
         {b} x {t} tokens); wall time {:.1} s",
        start.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        bail!(
            "emitting the training step failed for: {}",
            failures.join(", ")
        )
    }
}

/// Compiles the training step for `kind` into `out/<target>/` and checks what the
/// machine can check (ptxas, g++ syntax).
fn emit_target(graph: &Graph, kind: TargetKind, out: &Path) -> Result<()> {
    let target = Target::of(kind);
    let (plan, artifact) = tessera_compiler::compile_and_emit(graph, &target)
        .with_context(|| format!("compiling for {kind}"))?;
    let dir = out.join(kind.name());
    if dir.exists() {
        // Only an earlier demo's output (it has a manifest) is replaced: a folder of the
        // same name that is something else is left alone.
        let ours = dir.join("manifest.json").is_file();
        let empty = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !ours && !empty {
            bail!(
                "{} exists and is not the output of an earlier demo (no manifest.json): \
                 choose another --out",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    write_artifact(&dir, &plan, &artifact)?;
    println!(
        "{kind}: {} kernels, {} launches, {} files and manifest.json in {}",
        artifact.kernels.len(),
        plan.launches.len(),
        artifact.files.len(),
        dir.display()
    );
    match kind {
        TargetKind::Wgsl => println!("  run below on wgpu"),
        TargetKind::Ptx => match find_ptxas() {
            Some(ptxas) => {
                for arch in ["sm_80", "sm_90"] {
                    let summary = assemble_all(&ptxas, &artifact, arch)?;
                    println!("  ptxas -arch={arch}: ok ({summary})");
                }
            }
            None => println!(
                "  ptxas not found (set TESSERA_PTXAS or run `cargo xtask setup`): not assembled"
            ),
        },
        TargetKind::AscendC => {
            syntax_check_ascendc(&dir, &artifact)?;
            println!(
                "  g++ -fsyntax-only against the Ascend C CPU headers: ok (kernels and host program)"
            );
        }
    }
    Ok(())
}

/// `g++ -std=c++17 -fsyntax-only` of every kernel and the host program in one
/// translation unit, against the CPU build's headers.
fn syntax_check_ascendc(dir: &Path, artifact: &Artifact) -> Result<()> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let mut unity = String::new();
    let mut host = false;
    for f in artifact.files.iter().filter(|f| f.name.ends_with(".cpp")) {
        if f.name == "host.cpp" {
            host = true;
        } else {
            unity.push_str(&format!("#include \"{}\"\n", f.name));
        }
    }
    if !host {
        bail!("the Ascend C artifact has no host.cpp");
    }
    unity.push_str("#include \"host.cpp\"\n");
    let src = tmp.path().join("tessera_unity.cpp");
    std::fs::write(&src, unity).with_context(|| format!("writing {}", src.display()))?;
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".to_string());
    let out = Command::new(&cxx)
        .args([
            "-std=c++17",
            "-fsyntax-only",
            "-DASCENDC_CPU_DEBUG",
            "-pthread",
        ])
        .arg("-I")
        .arg(dir)
        .arg("-I")
        .arg(tessera::runtime::ascend_cpu::include_dir())
        .arg(&src)
        .output()
        .with_context(|| format!("running {cxx} (needed to check the Ascend C)"))?;
    if !out.status.success() {
        bail!(
            "{cxx} -fsyntax-only rejected the Ascend C:\n{}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Prints a failure: its first line, then up to 24 more.
fn report_failure(e: &anyhow::Error) {
    let text = format!("{e:#}");
    let mut lines = text.lines();
    println!("  FAILED: {}", lines.next().unwrap_or_default());
    // A compiler's diagnostics can run long: show the start of them.
    const MAX_LINES: usize = 24;
    let rest: Vec<&str> = lines.collect();
    for line in rest.iter().take(MAX_LINES) {
        println!("    {line}");
    }
    if rest.len() > MAX_LINES {
        println!("    ... ({} more lines)", rest.len() - MAX_LINES);
    }
}

/// Largest accepted `|device - oracle|` on `y`. Each `y` is a sum of `d_hidden` tanh
/// values of f32 dot products of length `d_in`; with inputs in [-1, 1) and `w` scaled by
/// 1/16 the rounding error of f32 accumulation is about `sqrt(d_in * d_hidden) * 2^-24 *
/// |terms|`, around 1e-5 for the default sizes, plus the device's tanh error (WGSL allows
/// a few ulp). 1e-3 leaves a wide margin while still catching any indexing or fusion bug,
/// which gives errors of order 1.
const TOLERANCE: f64 = 1e-3;

/// The scale applied to the random `w` (a power of two, so it stays exact in f32).
const W_SCALE: f64 = 1.0 / 16.0;

/// `tessera demo --mlp`: the MLP block on every target against the f64 interpreter.
fn run_mlp(args: &DemoArgs) -> Result<()> {
    let (batch, d_in, d_hidden) = (args.mlp_batch, args.d_in, args.d_hidden);
    if batch == 0 || d_in == 0 || d_hidden == 0 {
        bail!("--mlp-batch, --d-in and --d-hidden must be at least 1 (got {batch}, {d_in}, {d_hidden})");
    }
    // The demo fills x and w with random values in host memory before any target runs,
    // and the f64 interpreter holds the hidden activations.
    const MAX_DEMO_ELEMENTS: usize = 1 << 28;
    for (what, n) in [
        ("x [mlp-batch, d-in]", batch.checked_mul(d_in)),
        ("w [d-in, d-hidden]", d_in.checked_mul(d_hidden)),
        (
            "the hidden layer [mlp-batch, d-hidden]",
            batch.checked_mul(d_hidden),
        ),
    ] {
        if n.is_none_or(|n| n > MAX_DEMO_ELEMENTS) {
            bail!("{what} would have more than 2^28 elements: choose smaller sizes for the demo");
        }
    }
    let graph =
        tessera_models::mlp::mlp_block(batch, d_in, d_hidden).context("building the MLP block")?;
    println!(
        "tessera demo --mlp: y = sum(tanh(x @ w + b), axis 1) with x [{batch}, {d_in}], w \
         [{d_in}, {d_hidden}], b [{d_hidden}]"
    );
    let inputs = demo_inputs(&graph)?;
    let reference = run_graph(&graph, &inputs).context("running the f64 interpreter")?;
    let y_ref = reference
        .get("y")
        .context("the interpreter returned no output `y`")?;
    println!("reference: f64 interpreter; tolerance on max |y - y_ref|: {TOLERANCE:e}\n");

    let mut failures = Vec::new();
    for kind in TargetKind::ALL {
        let outcome = match kind {
            TargetKind::Wgsl => demo_wgsl(&graph, &inputs, y_ref),
            TargetKind::Ptx => demo_ptx(&graph),
            TargetKind::AscendC => demo_ascendc(&graph, &inputs, y_ref),
        };
        if let Err(e) = outcome {
            report_failure(&e);
            failures.push(kind.name());
        }
        println!();
    }
    if failures.is_empty() {
        println!("demo passed on every target");
        Ok(())
    } else {
        bail!("the demo failed for: {}", failures.join(", "))
    }
}

/// Deterministic inputs and parameters, by node name.
fn demo_inputs(graph: &Graph) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for (seed, name) in [(1u64, "x"), (2, "w"), (3, "b")] {
        let id = graph
            .find(name)
            .with_context(|| format!("the MLP block has no node `{name}`"))?;
        let ty = graph.ty(id);
        let mut t = Tensor::random(&ty.shape, DType::F32, seed);
        if name == "w" {
            t.data.iter_mut().for_each(|v| *v *= W_SCALE);
        }
        out.insert(name.to_string(), t);
    }
    Ok(out)
}

/// Compiles and emits for a target record, printing the kernels.
fn compile_for(graph: &Graph, target: &Target) -> Result<(Plan, Artifact)> {
    let (plan, artifact) = tessera_compiler::compile_and_emit(graph, target)
        .with_context(|| format!("compiling for {}", target.kind))?;
    let names: Vec<&str> = artifact.kernels.iter().map(|k| k.name.as_str()).collect();
    println!(
        "{}: {} kernels ({}), {} files emitted",
        target.kind,
        names.len(),
        names.join(", "),
        artifact.files.len()
    );
    Ok((plan, artifact))
}

/// Prints the error of `y` against the oracle and checks it.
fn check(label: &str, outputs: &HashMap<String, Tensor>, y_ref: &Tensor) -> Result<()> {
    let y = outputs.get("y").context("no output `y`")?;
    let abs = y.max_abs_diff(y_ref);
    let rel = y.max_rel_diff(y_ref);
    let ok = abs <= TOLERANCE;
    println!(
        "  {label}: max abs error {abs:.3e}, max rel error {rel:.3e}: {}",
        if ok { "ok" } else { "TOO LARGE" }
    );
    if !ok {
        bail!("{label}: max abs error {abs:e} exceeds {TOLERANCE:e}");
    }
    Ok(())
}

fn demo_wgsl(graph: &Graph, inputs: &HashMap<String, Tensor>, y_ref: &Tensor) -> Result<()> {
    let device = WgpuDevice::new().context("opening a wgpu device")?;
    let (plan, artifact) = compile_for(graph, &device.wgsl_target())?;
    let mut exe = device
        .load_plan(plan, artifact)
        .context("loading the WGSL kernels")?;
    for name in ["w", "b"] {
        exe.set_param(name, &inputs[name])
            .with_context(|| format!("uploading `{name}`"))?;
    }
    let batch = HashMap::from([("x".to_string(), inputs["x"].clone())]);
    let outputs = exe.run(&batch).context("running on wgpu")?;
    check(&format!("wgpu ({})", device.adapter()), &outputs, y_ref)
}

fn demo_ptx(graph: &Graph) -> Result<()> {
    let (_plan, artifact) = compile_for(graph, &Target::ptx())?;
    match find_ptxas() {
        Some(ptxas) => {
            for arch in ["sm_80", "sm_90"] {
                let summary = assemble_all(&ptxas, &artifact, arch)?;
                println!("  ptxas -arch={arch}: ok ({summary})");
            }
        }
        None => println!(
            "  ptxas not found (set TESSERA_PTXAS or run `cargo xtask setup`): not assembled"
        ),
    }
    println!("  not run: executing PTX needs an Nvidia GPU");
    Ok(())
}

fn demo_ascendc(graph: &Graph, inputs: &HashMap<String, Tensor>, y_ref: &Tensor) -> Result<()> {
    let (plan, artifact) = compile_for(graph, &Target::ascend_910b())?;
    let outputs = run_plan_ascend_cpu(&plan, &artifact, inputs)
        .context("running on the Ascend C CPU build")?;
    check("Ascend C CPU build (g++)", &outputs, y_ref)
}

/// `TESSERA_PTXAS`, else the copy `cargo xtask setup` installs, else `ptxas` on PATH.
fn find_ptxas() -> Option<PathBuf> {
    let runs = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let candidates = [
        std::env::var_os("TESSERA_PTXAS").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/ptxas/bin/ptxas")),
        Some(PathBuf::from("ptxas")),
    ];
    candidates.into_iter().flatten().find(|p| runs(p))
}

/// Assembles every `.ptx` file of the artifact for `arch`; returns a resource summary.
fn assemble_all(ptxas: &Path, artifact: &Artifact, arch: &str) -> Result<String> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let mut max_regs = 0u32;
    let mut spills = 0u64;
    let mut modules = 0;
    for f in artifact.files.iter().filter(|f| f.name.ends_with(".ptx")) {
        let src = dir.path().join(&f.name);
        std::fs::write(&src, &f.contents).with_context(|| format!("writing {}", src.display()))?;
        let out = Command::new(ptxas)
            .arg(format!("-arch={arch}"))
            .arg("-v")
            .arg("-o")
            .arg(dir.path().join(format!("{}.cubin", f.name)))
            .arg(&src)
            .output()
            .with_context(|| format!("running {}", ptxas.display()))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("ptxas -arch={arch} rejected {}: {}", f.name, log.trim());
        }
        for line in log.lines() {
            if let Some(n) = number_before(line, " registers") {
                max_regs = max_regs.max(n as u32);
            }
            spills += number_before(line, " bytes spill stores").unwrap_or(0);
            spills += number_before(line, " bytes spill loads").unwrap_or(0);
        }
        modules += 1;
    }
    Ok(format!(
        "{modules} modules, at most {max_regs} registers per thread, {spills} bytes of spills"
    ))
}

/// The integer right before `suffix` in `line` (ptxas's `-v` lines: `Used 32 registers`).
fn number_before(line: &str, suffix: &str) -> Option<u64> {
    let end = line.find(suffix)?;
    let head = &line[..end];
    let start = head
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    head[start..].parse().ok()
}
