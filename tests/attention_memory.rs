//! The fused attention kernel's memory grows linearly in the sequence length.
//!
//! Attention graphs (`q, k, v [1, 2, T, 64]`, a padding mask `[1, T]`, causal) are
//! compiled at T = 256, 512, 1024 and 2048 for every target (WGSL, PTX, Ascend C).
//! Checked for each (the kernels are emitted for the target too):
//! - the plan has exactly one kernel and one launch (the whole attention is one fused
//!   kernel, with and without masks);
//! - no buffer has `T * T` elements or more, and the total bytes of the memory plan's
//!   storage slots double when T doubles (linear: inputs, mask and output only; a
//!   materialised score matrix would quadruple);
//! - the kernel's largest tile and, on the SIMT targets, its workgroup memory (the shared
//!   arrays of the SIMT lowering) are the same at every T: nothing per program grows
//!   with T either.

use tessera::compiler::backend;
use tessera::compiler::schedule::plan::Plan;
use tessera::compiler::simt::lower::lower_kernel;
use tessera::compiler::{compile, DType, Graph, NodeId, Target, TargetKind};

const SIZES: [usize; 4] = [256, 512, 1024, 2048];
const HEADS: usize = 2;
const D: usize = 64;

/// `attention(q, k, v, mask)` on `[1, HEADS, t, D]`, as the only op of the graph.
fn graph(t: usize, causal: bool, padding: bool) -> Graph {
    let mut g = Graph::new();
    let build = |g: &mut Graph| -> Result<NodeId, tessera::compiler::GraphError> {
        let q = g.input("q", &[1, HEADS, t, D], DType::F32)?;
        let k = g.input("k", &[1, HEADS, t, D], DType::F32)?;
        let v = g.input("v", &[1, HEADS, t, D], DType::F32)?;
        let mask = if padding {
            Some(g.input("mask", &[1, t], DType::I32)?)
        } else {
            None
        };
        let y = g.attention(q, k, v, mask, causal, None)?;
        g.mark_output(y)?;
        Ok(y)
    };
    if let Err(e) = build(&mut g) {
        panic!("attention graph at T = {t}: {e}");
    }
    g
}

/// The compiled plan, after checking that its kernels emit for the target.
fn plan(t: usize, causal: bool, padding: bool, target: &Target) -> Plan {
    let p = compile(&graph(t, causal, padding), target)
        .unwrap_or_else(|e| panic!("attention at T = {t} on {}: {e}", target.kind));
    if let Err(e) = backend::emit(&p, target) {
        panic!("attention at T = {t}: emitting {}: {e}", target.kind);
    }
    p
}

fn storage_bytes(p: &Plan) -> usize {
    p.storage.iter().map(|s| s.bytes).sum()
}

/// Elements of the largest tile value of the plan's (only) kernel.
fn largest_tile(p: &Plan) -> usize {
    p.kernels
        .iter()
        .flat_map(|k| k.values.iter().map(|t| t.numel()))
        .max()
        .unwrap_or(0)
}

#[test]
fn attention_is_one_kernel() {
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        for (causal, padding) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = plan(7, causal, padding, &target);
            assert_eq!(
                (p.kernels.len(), p.launches.len()),
                (1, 1),
                "{}: causal {causal} padding {padding}: kernels {:?}",
                target.kind,
                p.kernels.iter().map(|k| &k.name).collect::<Vec<_>>()
            );
            // Kernel names say what they compute (issue 3): the forward pass.
            assert!(
                p.kernels[0].name.starts_with("attention_fwd_"),
                "{}: kernel named {}",
                target.kind,
                p.kernels[0].name
            );
        }
    }
}

#[test]
fn attention_memory_grows_linearly() {
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        let mut rows = Vec::new();
        for t in SIZES {
            let p = plan(t, true, true, &target);
            assert_eq!(p.kernels.len(), 1, "T = {t}: one kernel");
            for b in &p.buffers {
                assert!(
                    b.len < t * t,
                    "T = {t}: buffer of shape {:?} has {} >= T*T elements",
                    b.shape,
                    b.len
                );
            }
            let shared: usize = if target.kind == TargetKind::AscendC {
                0
            } else {
                lower_kernel(&p.kernels[0], &target)
                    .unwrap_or_else(|e| panic!("T = {t}: SIMT lowering: {e}"))
                    .shared
                    .iter()
                    .map(|a| a.len * 4)
                    .sum()
            };
            let bytes = storage_bytes(&p);
            // Inputs q, k, v and the output: 4 * HEADS * t * D f32, plus the i32 mask.
            let expected = 4 * HEADS * t * D * 4 + t * 4;
            assert_eq!(bytes, expected, "T = {t}: storage bytes");
            rows.push((t, bytes, largest_tile(&p), shared));
        }
        println!(
            "{}: (T, storage bytes, largest tile, shared bytes): {rows:?}",
            target.kind
        );
        for w in rows.windows(2) {
            let ((t0, b0, l0, s0), (t1, b1, l1, s1)) = (w[0], w[1]);
            assert_eq!(t1, 2 * t0);
            assert_eq!(b1, 2 * b0, "storage must double from T = {t0} to {t1}");
            assert_eq!(l1, l0, "largest tile grows from T = {t0} to {t1}");
            assert_eq!(s1, s0, "workgroup memory grows from T = {t0} to {t1}");
        }
    }
}
