//! The `tessera` command-line tool: `tessera compile` (graph JSON or a bundled model in,
//! a directory of kernels plus `manifest.json` out, or the tile IR on stdout) and
//! `tessera demo` (the MLP block compiled for every target and run on wgpu and on the
//! Ascend C CPU build, compared with the interpreter).
//!
//! Errors are one line, `error: ...`, on stderr: exit code 2 for bad usage, 1 for
//! everything else. Set `RUST_LOG=info` for progress messages.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
