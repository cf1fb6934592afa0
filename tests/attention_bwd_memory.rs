//! The flash-attention backward kernels' memory grows linearly in the sequence length.
//!
//! The backward of a causal, padded attention (`q, k, v, out, d_out [1, 2, T, 64]`, a
//! mask `[1, T]`; `out` and `d_out` are graph inputs, so the plan is the backward alone:
//! [`Graph::attention_backward`]) is compiled at T = 256, 512, 1024 and 2048 for WGSL, PTX
//! and Ascend C (whose vector-unit form streams the same way). Checked for each:
//! - the plan has four kernels (statistics, dq, dk, dv), named `attention_bwd_*`;
//! - no buffer has `T * T` elements or more, and the total bytes of the memory plan's
//!   storage slots double when T doubles (a materialised `[T, T]` score or probability
//!   matrix would quadruple them);
//! - the largest tile of every kernel and (SIMT targets) the workgroup memory of its
//!   SIMT lowering are the same at every T: nothing per program grows with T either.

use tessera::compiler::backend;
use tessera::compiler::schedule::plan::Plan;
use tessera::compiler::simt::lower::lower_kernel;
use tessera::compiler::{compile, DType, Graph, GraphError, Target, TargetKind};

const SIZES: [usize; 4] = [256, 512, 1024, 2048];
const HEADS: usize = 2;
const D: usize = 64;

/// `[dq, dk, dv]` of `attention(q, k, v, mask, causal)` on `[1, HEADS, t, D]`.
fn graph(t: usize) -> Graph {
    let mut g = Graph::new();
    let build = |g: &mut Graph| -> Result<(), GraphError> {
        let s = [1, HEADS, t, D];
        let q = g.input("q", &s, DType::F32)?;
        let k = g.input("k", &s, DType::F32)?;
        let v = g.input("v", &s, DType::F32)?;
        let out = g.input("out", &s, DType::F32)?;
        let d_out = g.input("d_out", &s, DType::F32)?;
        let mask = g.input("mask", &[1, t], DType::I32)?;
        let scale = 1.0 / (D as f64).sqrt();
        let grads =
            g.attention_backward(q, k, v, out, d_out, Some(mask), true, scale, [true; 3])?;
        for x in grads.into_iter().flatten() {
            g.mark_output(x)?;
        }
        Ok(())
    };
    if let Err(e) = build(&mut g) {
        panic!("attention backward graph at T = {t}: {e}");
    }
    g
}

fn plan(t: usize, target: &Target) -> Plan {
    let p = compile(&graph(t), target)
        .unwrap_or_else(|e| panic!("attention backward at T = {t} on {}: {e}", target.kind));
    if let Err(e) = backend::emit(&p, target) {
        panic!(
            "attention backward at T = {t}: emitting {}: {e}",
            target.kind
        );
    }
    p
}

#[test]
fn attention_backward_memory_grows_linearly() {
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        let mut rows = Vec::new();
        for t in SIZES {
            let p = plan(t, &target);
            let mut names: Vec<String> = p
                .kernels
                .iter()
                .map(|k| {
                    k.name
                        .trim_end_matches(|c: char| c.is_ascii_digit())
                        .to_string()
                })
                .collect();
            names.sort();
            assert_eq!(
                names,
                [
                    "attention_bwd_dk_",
                    "attention_bwd_dq_",
                    "attention_bwd_dv_",
                    "attention_bwd_stats_"
                ],
                "T = {t}: kernels"
            );
            for b in &p.buffers {
                assert!(
                    b.len < t * t,
                    "T = {t}: buffer of shape {:?} has {} >= T*T elements",
                    b.shape,
                    b.len
                );
            }
            let largest: Vec<usize> = p
                .kernels
                .iter()
                .map(|k| k.values.iter().map(|v| v.numel()).max().unwrap_or(0))
                .collect();
            let shared: Vec<usize> = p
                .kernels
                .iter()
                .filter(|_| target.kind != TargetKind::AscendC)
                .map(|k| {
                    lower_kernel(k, &target)
                        .unwrap_or_else(|e| panic!("T = {t}: SIMT lowering of {}: {e}", k.name))
                        .shared
                        .iter()
                        .map(|a| a.len * 4)
                        .sum()
                })
                .collect();
            let bytes: usize = p.storage.iter().map(|s| s.bytes).sum();
            // At most: 5 inputs and 3 gradients of HEADS * t * D f32, the stats
            // [HEADS, t, 2] f32 and the i32 mask (storage may be shared, never more).
            let linear = 8 * HEADS * t * D * 4 + HEADS * t * 2 * 4 + t * 4;
            assert!(bytes <= linear, "T = {t}: {bytes} storage bytes > {linear}");
            rows.push((t, bytes, largest, shared));
        }
        println!(
            "{}: (T, storage bytes, largest tile per kernel, shared bytes per kernel): {rows:?}",
            target.kind
        );
        for w in rows.windows(2) {
            let (t0, b0, l0, s0) = &w[0];
            let (t1, b1, l1, s1) = &w[1];
            assert_eq!(*t1, 2 * t0);
            assert_eq!(*b1, 2 * b0, "storage must double from T = {t0} to {t1}");
            assert_eq!(l1, l0, "largest tiles grow from T = {t0} to {t1}");
            assert_eq!(s1, s0, "workgroup memory grows from T = {t0} to {t1}");
        }
    }
}
