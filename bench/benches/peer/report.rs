//! The ratio table: each case's two medians, read back from Criterion's estimates
//! (`<target>/criterion/<case>/<side>/new/estimates.json`, written by this run), printed
//! and written to `target/bench/peer.md` and `peer.json`.

use crate::Case;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use tessera::runtime::AdapterSummary;

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    /// Nanoseconds per iteration.
    point_estimate: f64,
}

/// The cargo target directory (as Criterion finds it: `CARGO_TARGET_DIR`, else the
/// workspace's `target/`).
fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.parent().unwrap_or(manifest).join("target"))
}

/// The median of `<case>/<side>` in ms, if this run wrote it (estimates older than
/// `since` belong to an earlier run and are not reported).
fn median_ms(criterion: &Path, case: &str, side: &str, since: SystemTime) -> Result<Option<f64>> {
    let path = criterion.join(case).join(side).join("new/estimates.json");
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if meta.modified().is_ok_and(|m| m < since) {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let e: Estimates =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(e.median.point_estimate / 1e6))
}

/// Prints the table of this run's cases and writes it to `target/bench/`.
pub fn write(cases: &[Case], adapter: &AdapterSummary, since: SystemTime) -> Result<()> {
    let target = target_dir();
    let criterion = target.join("criterion");
    let mut md = String::new();
    let mut rows = Vec::new();
    writeln!(
        md,
        "| case | computation | Tessera ms | Burn ms | Burn / Tessera | Tessera GFLOP/s | Burn GFLOP/s | agreement |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    for c in cases {
        let (Some(t), Some(b)) = (
            median_ms(&criterion, &c.name, "tessera", since)?,
            median_ms(&criterion, &c.name, "burn", since)?,
        ) else {
            continue;
        };
        let gflops = |ms: f64| {
            c.flops
                .map_or_else(|| "-".to_string(), |f| format!("{:.1}", f / ms / 1e6))
        };
        writeln!(
            md,
            "| `{}` | {} | {t:.2} | {b:.2} | **{:.2}** | {} | {} | {} |",
            c.name,
            c.what,
            b / t,
            gflops(t),
            gflops(b),
            c.agreement
        )?;
        rows.push(serde_json::json!({
            "case": c.name, "what": c.what, "tessera_ms": t, "burn_ms": b,
            "burn_over_tessera": b / t, "flops": c.flops, "agreement": c.agreement,
        }));
    }
    if rows.is_empty() {
        println!("no estimates from this run (Criterion in test or list mode, or every case filtered out)");
        return Ok(());
    }
    let header = format!(
        "Tessera vs Burn (wgpu backend, fusion + autotune) on {adapter}; medians of Criterion's \
         samples; Burn / Tessera > 1 means Tessera is faster.\n\n"
    );
    println!("\n{header}{md}");
    let out = target.join("bench");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("peer.md"), format!("{header}{md}"))?;
    let json = serde_json::json!({ "adapter": adapter.to_string(), "cases": rows });
    std::fs::write(out.join("peer.json"), serde_json::to_string_pretty(&json)?)?;
    println!("written: {}", out.join("peer.md").display());
    Ok(())
}
