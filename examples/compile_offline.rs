//! A model author compiling a model ahead of time: the MLP block of `tessera-models`
//! compiled for every target, each into its own directory with its launch facts.
//!
//! ```text
//! cargo run --example compile_offline -- [OUT_DIR]     (default: target/compile_offline)
//! ```
//!
//! The `tessera compile` CLI does the same for a graph in a JSON file, and also writes the
//! execution and memory plan into `manifest.json`.

use std::path::PathBuf;
use tessera::compiler::{compile_and_emit, Target, TargetKind};
use tessera::models::mlp::mlp_block;

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/compile_offline")
        });

    // One model definition: a pure graph, no device.
    let graph = mlp_block(64, 128, 256)?;

    for kind in TargetKind::ALL {
        // Each target is a capability record; the compiler tiles for its limits.
        let target = Target::of(kind);
        let (plan, artifact) = compile_and_emit(&graph, &target)?;

        let dir = out.join(kind.name());
        std::fs::create_dir_all(&dir)?;
        for file in &artifact.files {
            std::fs::write(dir.join(&file.name), &file.contents)?;
        }
        // The launch facts a host program needs: kernel, file, grid, block, bindings.
        std::fs::write(
            dir.join("kernels.json"),
            serde_json::to_string_pretty(&artifact.kernels)?,
        )?;

        println!(
            "{kind}: {} kernels, {} launches, {} storage slots ({} bytes) -> {}",
            artifact.kernels.len(),
            plan.launches.len(),
            plan.storage.len(),
            plan.storage.iter().map(|s| s.bytes).sum::<usize>(),
            dir.display()
        );
        for k in &artifact.kernels {
            println!(
                "  {} in {}: grid {:?}, block {}, params {:?}",
                k.name, k.file, k.grid, k.block, k.params
            );
        }
    }
    Ok(())
}
