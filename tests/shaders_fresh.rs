//! `shaders/` must hold exactly what the compiler emits now for the bundled models (`mlp`,
//! the demo block; `gpt`, one transformer block with the cross-entropy head; `gpt-train`,
//! its training step with backward and AdamW; `minilm`, the MiniLM encoder) on every
//! target, in `shaders/<model>/<target>/`: this test regenerates them into a temporary
//! directory with the CLI and compares file by file. When it fails, run `cargo xtask shaders` and commit
//! the result, so that every compiler change shows its effect on real kernels in review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: [&str; 3] = ["wgsl", "ptx", "ascendc"];
const MODELS: [&str; 4] = ["mlp", "gpt", "gpt-train", "minilm"];

/// Relative paths of the files under `dir`, recursively (empty if `dir` is absent).
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

#[test]
fn shaders_dir_is_fresh() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for (model, target) in MODELS
        .iter()
        .flat_map(|m| TARGETS.iter().map(move |t| (*m, *t)))
    {
        let fresh = tmp.path().join(model).join(target);
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["compile", "--model", model, "--target", target, "--out"])
            .arg(&fresh)
            .output()
            .expect("the tessera binary runs");
        assert!(
            out.status.success(),
            "tessera compile --model {model} --target {target} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let checked_in = repo.join("shaders").join(model).join(target);
        let a = files_under(&fresh);
        let b = files_under(&checked_in);
        for p in a.difference(&b) {
            problems.push(format!("shaders/{model}/{target}/{}: missing", p.display()));
        }
        for p in b.difference(&a) {
            problems.push(format!(
                "shaders/{model}/{target}/{}: no longer emitted",
                p.display()
            ));
        }
        for p in a.intersection(&b) {
            let x = std::fs::read_to_string(fresh.join(p)).unwrap();
            let y = std::fs::read_to_string(checked_in.join(p)).unwrap();
            if x != y {
                let line = x
                    .lines()
                    .zip(y.lines())
                    .position(|(l, r)| l != r)
                    .unwrap_or(x.lines().count().min(y.lines().count()));
                problems.push(format!(
                    "shaders/{model}/{target}/{}: differs from line {}",
                    p.display(),
                    line + 1
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "shaders/ is stale; run `cargo xtask shaders` and commit the result:\n  {}",
        problems.join("\n  ")
    );
}

// Finding ptxas and parsing `ptxas -v` (shared with the conformance suite).
#[path = "support/ptxas.rs"]
mod ptxas_support;

/// Every checked-in PTX module of `shaders/` (the MLP demo, the GPT block with its
/// cross-entropy head, its training step, the MiniLM encoder) assembles with `ptxas` for sm_80 and sm_90
/// with zero spill stores and loads.
#[test]
fn shaders_ptx_assembles_without_spills() {
    let ptxas = ptxas_support::find_ptxas();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shaders-ptx");
    let mut jobs = Vec::new();
    for model in MODELS {
        let dir = repo.join("shaders").join(model).join("ptx");
        for p in files_under(&dir) {
            if p.extension().is_some_and(|e| e == "ptx") {
                jobs.push((model, dir.join(&p)));
            }
        }
    }
    assert!(
        jobs.len() > 10,
        "too few PTX modules under shaders/: {}",
        jobs.len()
    );
    let problems = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((model, path)) = jobs.get(i) else {
                    break;
                };
                let text = std::fs::read_to_string(path).expect("readable PTX");
                let stem = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("kernel");
                let name = format!("{model}_{stem}");
                for sm in [80, 90] {
                    let r = ptxas_support::assemble(&ptxas, &out, &name, &text, sm);
                    let msg = match r {
                        Ok(info) if info.spill_stores == 0 && info.spill_loads == 0 => None,
                        Ok(info) => Some(format!(
                            "{}: sm_{sm}: {} bytes spill stores, {} bytes spill loads",
                            path.display(),
                            info.spill_stores,
                            info.spill_loads
                        )),
                        Err(e) => Some(format!("{}: sm_{sm}: {e}", path.display())),
                    };
                    if let Some(m) = msg {
                        problems.lock().unwrap().push(m);
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
