//! `shaders/` must hold exactly what the compiler emits now for the bundled models (`mlp`,
//! the demo block, and `gpt`, one transformer block with the cross-entropy head) on every
//! target, in `shaders/<model>/<target>/`: this test regenerates them into a temporary
//! directory with the CLI and compares file by file. When it fails, run `cargo xtask shaders` and commit
//! the result, so that every compiler change shows its effect on real kernels in review.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: [&str; 3] = ["wgsl", "ptx", "ascendc"];
const MODELS: [&str; 2] = ["mlp", "gpt"];

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
