//! Test support shared by `compiler/tests/ptx.rs` and `tests/conformance.rs` (included in
//! both with `#[path]`): finding NVIDIA's `ptxas`, assembling one PTX module with
//! `ptxas -arch=sm_XX -v`, reading the register / spill counts it prints, and writing
//! them to a JSON report under the cargo target directory.
//!
//! `ptxas` is looked up in `$TESSERA_PTXAS`, then `<repo>/.cache/ptxas/bin/ptxas` (where
//! `cargo xtask setup` installs it), then `PATH`; a missing `ptxas` fails the test that
//! asked for it, telling to run `cargo xtask setup`.

// Each including test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `ptxas -v` reported for one kernel.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PtxasInfo {
    /// Registers per thread.
    pub registers: u32,
    /// Bytes of spill stores.
    pub spill_stores: u32,
    /// Bytes of spill loads.
    pub spill_loads: u32,
    /// Bytes of stack frame.
    pub stack_frame: u32,
}

/// The workspace root: the nearest ancestor of the including crate's manifest directory
/// whose `Cargo.toml` declares `[workspace]`.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .map(|s| s.contains("[workspace]"))
                .unwrap_or(false)
        })
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The cargo target directory (`CARGO_TARGET_TMPDIR` is `<target>/tmp`).
pub fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// `$TESSERA_PTXAS`, then `<repo>/.cache/ptxas/bin/ptxas`, then `ptxas` on `PATH`;
/// panics (failing the test) when none is there.
pub fn find_ptxas() -> PathBuf {
    if let Some(p) = std::env::var_os("TESSERA_PTXAS").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "TESSERA_PTXAS={} is not a file; unset it or run `cargo xtask setup`",
            p.display()
        );
        return p;
    }
    let cached = repo_root().join(".cache/ptxas/bin/ptxas");
    if cached.is_file() {
        return cached;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("ptxas");
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "ptxas not found (looked in $TESSERA_PTXAS, {}, PATH): run `cargo xtask setup` \
         (or scripts/install-ptxas.sh) to install it from the nvidia-cuda-nvcc-cu12 wheel",
        cached.display()
    );
}

/// Parses the `ptxas -v` lines of a module with one entry.
pub fn parse_ptxas_v(log: &str) -> Option<PtxasInfo> {
    let number_before = |line: &str, key: &str| -> Option<u32> {
        let at = line.find(key)?;
        line[..at].split_whitespace().last()?.parse().ok()
    };
    let mut registers = None;
    let mut spills = None;
    for line in log.lines() {
        if line.contains("spill stores") {
            spills = Some((
                number_before(line, "bytes stack frame")?,
                number_before(line, "bytes spill stores")?,
                number_before(line, "bytes spill loads")?,
            ));
        }
        if line.contains("Used") && line.contains("registers") {
            let at = line.find("Used")? + "Used".len();
            registers = line[at..].split_whitespace().next()?.parse().ok();
        }
    }
    let (stack_frame, spill_stores, spill_loads) = spills?;
    Some(PtxasInfo {
        registers: registers?,
        spill_stores,
        spill_loads,
        stack_frame,
    })
}

/// Writes `text` to `<dir>/<name>.sm_<sm>.ptx` and assembles it with
/// `<ptxas> -arch=sm_<sm> -v`; `name` must be a plain file name (no `/`).
pub fn assemble(
    ptxas: &Path,
    dir: &Path,
    name: &str,
    text: &str,
    sm: u32,
) -> Result<PtxasInfo, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let file = dir.join(format!("{name}.sm_{sm}.ptx"));
    let cubin = dir.join(format!("{name}.sm_{sm}.cubin"));
    std::fs::write(&file, text).map_err(|e| format!("write {}: {e}", file.display()))?;
    let out = Command::new(ptxas)
        .arg(format!("-arch=sm_{sm}"))
        .arg("-v")
        .arg(&file)
        .arg("-o")
        .arg(&cubin)
        .output()
        .map_err(|e| format!("run {}: {e}", ptxas.display()))?;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return Err(format!(
            "ptxas rejected {} ({}):\n{log}",
            file.display(),
            out.status
        ));
    }
    parse_ptxas_v(&log).ok_or_else(|| format!("cannot parse ptxas -v output:\n{log}"))
}

/// One line of a ptxas report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReportEntry {
    /// What the kernel belongs to (a conformance case, a test graph), or empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub case: String,
    /// The kernel (PTX entry) name.
    pub kernel: String,
    /// `sm_80`, `sm_90`.
    pub arch: String,
    /// Registers per thread.
    pub registers: u32,
    /// Bytes of spill stores.
    pub spill_stores: u32,
    /// Bytes of spill loads.
    pub spill_loads: u32,
    /// Bytes of stack frame.
    pub stack_frame: u32,
}

impl ReportEntry {
    /// An entry from what ptxas reported.
    pub fn new(case: &str, kernel: &str, sm: u32, info: &PtxasInfo) -> ReportEntry {
        ReportEntry {
            case: case.to_string(),
            kernel: kernel.to_string(),
            arch: format!("sm_{sm}"),
            registers: info.registers,
            spill_stores: info.spill_stores,
            spill_loads: info.spill_loads,
            stack_frame: info.stack_frame,
        }
    }
}

/// Writes `entries` as pretty JSON to `<target>/<file_name>`; returns the path.
pub fn write_report(file_name: &str, entries: &[ReportEntry]) -> Result<PathBuf, String> {
    let path = target_dir().join(file_name);
    let json = serde_json::to_string_pretty(entries).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path)
}
