//! The `tessera` command-line tool: `tessera compile` (graph JSON or a bundled model in,
//! a directory of kernels plus `manifest.json` out, or the tile IR on stdout),
//! `tessera demo` (the GPT training step compiled for every target, then trained on wgpu
//! with a checkpoint, a loss curve and a sample; `--mlp`: the MLP block checked against the
//! interpreter on every target) and `tessera embed` (MiniLM sentence embeddings).
//!
//! Errors are one line, `error: ...`, on stderr: exit code 2 for bad usage, 1 for
//! everything else. Set `RUST_LOG=info` for progress messages.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
