//! `tessera demo`: the MLP block `y = sum(tanh(x @ w + b), axis 1)` compiled for every
//! target, run on wgpu (lavapipe without a GPU) and on the Ascend C CPU build, and compared
//! with the f64 interpreter; the PTX is assembled by `ptxas` when one is at hand.

use super::DemoArgs;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tessera::runtime::ascend_cpu::run_plan_ascend_cpu;
use tessera::runtime::{Tensor, WgpuDevice};
use tessera_compiler::backend::Artifact;
use tessera_compiler::graph::DType;
use tessera_compiler::interp::run_graph;
use tessera_compiler::{Graph, Plan, Target, TargetKind};

/// Largest accepted `|device - oracle|` on `y`. Each `y` is a sum of `d_hidden` tanh
/// values of f32 dot products of length `d_in`; with inputs in [-1, 1) and `w` scaled by
/// 1/16 the rounding error of f32 accumulation is about `sqrt(d_in * d_hidden) * 2^-24 *
/// |terms|`, around 1e-5 for the default sizes, plus the device's tanh error (WGSL allows
/// a few ulp). 1e-3 leaves a wide margin while still catching any indexing or fusion bug,
/// which gives errors of order 1.
const TOLERANCE: f64 = 1e-3;

/// The scale applied to the random `w` (a power of two, so it stays exact in f32).
const W_SCALE: f64 = 1.0 / 16.0;

/// Runs `tessera demo`.
pub fn run(args: &DemoArgs) -> Result<()> {
    let graph = tessera_models::mlp::mlp_block(args.batch, args.d_in, args.d_hidden)
        .context("building the MLP block")?;
    println!(
        "tessera demo: y = sum(tanh(x @ w + b), axis 1) with x [{}, {}], w [{}, {}], b [{}]",
        args.batch, args.d_in, args.d_in, args.d_hidden, args.d_hidden
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
