//! The PTX record's tuning alternatives (`Target::tuning_variants`: other matmul tiles,
//! larger attention blocks), which `examples/gpu_check.rs sweep` times on a GPU beside the
//! record, checked without one: for each, matmul (f32 and bf16) and causal attention
//! (forward and the gradients of q, k, v) at awkward sizes are compiled for PTX, every
//! kernel is assembled by `ptxas` for sm_80 and sm_90, and the plan runs on the PTX VM
//! (bounds, races, barriers, undefined values checked) within tolerance of the f64
//! interpreter. A variant that a GPU run shows to be faster can then become the record
//! without a correctness surprise.

#[path = "support/ptxas.rs"]
mod ptxas;

use std::collections::HashMap;
use tessera::compiler::{compile_and_emit, grad, DType, Graph, NodeId, Target};
use tessera::runtime::{CpuDevice, Device, Executable, PtxVmDevice, Tensor};

/// f32 unit roundoff, 2^-24.
const EPS: f64 = 1.0 / (1u64 << 24) as f64;

/// A graph of named f32/bf16 parameters and one output `y` (or several, for gradients).
struct Case {
    name: &'static str,
    graph: Graph,
    params: Vec<(&'static str, Tensor)>,
    /// Absolute and relative tolerance of every output element.
    tol: (f64, f64),
}

fn params(g: &mut Graph, specs: &[(&'static str, &[usize], DType)]) -> Vec<NodeId> {
    specs
        .iter()
        .map(|(n, s, d)| g.param(n, s, *d).expect("a parameter"))
        .collect()
}

fn values(specs: &[(&'static str, &[usize], DType)]) -> Vec<(&'static str, Tensor)> {
    specs
        .iter()
        .enumerate()
        .map(|(i, (n, s, d))| (*n, Tensor::random(s, *d, 100 + i as u64)))
        .collect()
}

/// `[m, k] @ [k, n]` in `dtype`.
fn matmul(name: &'static str, (m, k, n): (usize, usize, usize), dtype: DType) -> Case {
    let specs: [(&'static str, &[usize], DType); 2] =
        [("a", &[m, k], dtype), ("b", &[k, n], dtype)];
    let mut g = Graph::new();
    let p = params(&mut g, &specs);
    let y = g.matmul(p[0], p[1]).expect("matmul");
    g.mark_output(y).expect("output");
    // Dot products of k terms of |x| < 1: 2 k u; in bf16 both sides round the result,
    // to neighbouring values at worst: one bf16 ulp, 2^-7 relative.
    let rtol = if dtype == DType::BF16 {
        1.0 / 256.0
    } else {
        0.0
    };
    Case {
        name,
        graph: g,
        params: values(&specs),
        tol: (2.0 * k as f64 * EPS, rtol),
    }
}

/// Causal attention over `[b, h, t, d]`, and with `backward` the gradients of q, k, v of
/// `sum(y * w)` instead of `y`.
fn attention(name: &'static str, shape: [usize; 4], backward: bool) -> Case {
    let s: &[usize] = &shape;
    let all: [(&'static str, &[usize], DType); 4] = [
        ("q", s, DType::F32),
        ("k", s, DType::F32),
        ("v", s, DType::F32),
        ("w", s, DType::F32),
    ];
    let specs = &all[..if backward { 4 } else { 3 }];
    let mut g = Graph::new();
    let p = params(&mut g, specs);
    let y = g
        .attention(p[0], p[1], p[2], None, true, None)
        .expect("attention");
    let graph = if backward {
        let mut l = g.mul(y, p[3]).expect("mul");
        for _ in 0..4 {
            l = g.sum(l, 0, false).expect("sum");
        }
        g.mark_output(l).expect("output");
        grad(&g, l, &p[..3]).expect("gradients").graph
    } else {
        g.mark_output(y).expect("output");
        g
    };
    // A flat bound for t keys (the conformance suite's are per case): softmax-weighted
    // sums of |v| < 1 with the scores' rounding, 64 u per key block plus 4 u per key; the
    // gradients four times that.
    let t = shape[2] as f64;
    let atol = (64.0 * (t / 32.0).ceil() + 4.0 * t + 64.0) * EPS;
    Case {
        name,
        graph,
        params: values(specs),
        tol: (if backward { 4.0 * atol } else { atol }, 0.0),
    }
}

/// Runs `exe` with `params` set.
fn run(exe: &mut Executable, params: &[(&str, Tensor)]) -> Result<HashMap<String, Tensor>, String> {
    for (n, v) in params {
        exe.set_param(n, v).map_err(|e| format!("set {n}: {e}"))?;
    }
    exe.run(&HashMap::new()).map_err(|e| e.to_string())
}

#[test]
fn ptx_tuning_variants_run_correctly_on_the_ptx_vm() {
    let record = Target::ptx();
    let variants = record.tuning_variants();
    assert!(!variants.is_empty());
    let cases = [
        // Large enough for every variant's tile to be used whole (a grid of at least 4
        // tiles of 128 x 128: `tile::build::matmul_tile` shrinks tiles below that), with
        // ragged edges.
        matmul("matmul_f32_m257_k37_n260", (257, 37, 260), DType::F32),
        matmul("matmul_bf16_m300_k20_n259", (300, 20, 259), DType::BF16),
        attention("attention_causal_b1_h2_t100_d64", [1, 2, 100, 64], false),
        attention("attention_bwd_causal_b1_h2_t70_d32", [1, 2, 70, 32], true),
    ];
    let ptxas = ptxas::find_ptxas();
    let dir = ptxas::target_dir().join("ptx-tuning");
    let reference = CpuDevice::reference();
    let vm = PtxVmDevice::new();
    let mut entries = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let mut exe = reference.load(&case.graph).expect("the interpreter loads");
        let want = run(&mut exe, &case.params).expect("the interpreter runs");
        for (label, target) in &variants {
            let tag = format!("{} [{label}]", case.name);
            let (plan, artifact) = match compile_and_emit(&case.graph, target) {
                Ok(x) => x,
                Err(e) => {
                    failures.push(format!("{tag}: compile: {e}"));
                    continue;
                }
            };
            for f in &artifact.files {
                for sm in [80, 90] {
                    let stem = format!("{}_{}", label.replace(' ', "_"), f.name);
                    match ptxas::assemble(&ptxas, &dir, &stem, &f.contents, sm) {
                        Ok(info) => entries.push(ptxas::ReportEntry::new(&tag, &f.name, sm, &info)),
                        Err(e) => failures.push(format!("{tag}: {e}")),
                    }
                }
            }
            let got = vm
                .load_plan(plan, artifact)
                .map_err(|e| e.to_string())
                .and_then(|mut exe| run(&mut exe, &case.params));
            let got = match got {
                Ok(g) => g,
                Err(e) => {
                    failures.push(format!("{tag}: PTX VM: {e}"));
                    continue;
                }
            };
            let (atol, rtol) = case.tol;
            for (out, w) in &want {
                let Some(g) = got.get(out) else {
                    failures.push(format!("{tag}: no output {out}"));
                    continue;
                };
                let mut worst = 0.0f64;
                for (a, b) in g.data.iter().zip(&w.data) {
                    let r = (a - b).abs() / (atol + rtol * b.abs());
                    worst = if r.is_nan() {
                        f64::INFINITY
                    } else {
                        worst.max(r)
                    };
                }
                println!("{tag} {out}: {:.1}% of tolerance", worst * 100.0);
                if worst > 1.0 || g.data.len() != w.data.len() {
                    failures.push(format!("{tag} {out}: {:.1}% of tolerance", worst * 100.0));
                }
            }
        }
    }
    match ptxas::write_report("ptxas-report-tuning.json", &entries) {
        Ok(p) => println!("ptxas report: {}", p.display()),
        Err(e) => failures.push(e),
    }
    for e in &entries {
        if e.spill_stores > 0 {
            println!(
                "note: {} {} {}: {} registers, {} bytes spilled",
                e.case, e.kernel, e.arch, e.registers, e.spill_stores
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
