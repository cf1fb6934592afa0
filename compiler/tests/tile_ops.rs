//! Tile-IR `iota`, `expand` (both axes) and rank-2 `reduce` (sum / max along both axes):
//! hand-built kernels (`tests/support/tile_ops_kernels.rs`: row/column statistics,
//! softmax along either axis, position tiles, loop-carried row statistics, a
//! flash-attention forward with an online softmax and `P . V` from a computed tile) at
//! awkward shapes, run on the f32 tile interpreter and compared with values computed
//! here in f64; then lowered to SIMT for three workgroup shapes (16x16, 8x8 and the
//! non-square 4x8 thread grid), the WGSL validated by naga and the PTX assembled by
//! `ptxas` for sm_80 and sm_90 with zero spills. (Running the same kernels on a wgpu
//! device is `tests/tile_ops_wgpu.rs` in the root crate.)
//!
//! Tolerances (derived in `Case::expected`): `u = 2^-24` (f32 unit roundoff); an f32
//! sum of `n` terms in any order is off by at most `(n - 1) u sum|x_i|` (Higham 4.3,
//! first order); maxima and integer positions are exact.

use tessera_compiler as tc;

#[path = "../../tests/support/tile_ops_kernels.rs"]
mod kernels;
#[path = "../../tests/support/ptxas.rs"]
mod ptxas_support;

use kernels::Case;
use tc::backend::{ptx, wgsl};
use tc::simt::{self, SimtKernel, Stmt};
use tc::tile::TileKernel;
use tc::Target;

/// Interprets every case of a family and checks each written buffer against the f64
/// values and tolerances of `Case::expected`.
fn interp_family(family: fn(&Case) -> bool) {
    let cases: Vec<Case> = kernels::all().into_iter().filter(family).collect();
    assert!(!cases.is_empty());
    for c in cases {
        let k = c.kernel();
        let mut bufs = c.buffers(&k, 1);
        tc::interp::tile::run_kernel(&k, &mut bufs)
            .unwrap_or_else(|e| panic!("interpreting `{}`: {e}", k.name));
        for e in c.expected(&bufs) {
            let name = format!("{} `{}`", k.name, k.params[e.buffer].name);
            kernels::check(&name, &bufs[e.buffer], &e.want, &e.tol);
        }
    }
}

#[test]
fn interp_row_col_stats() {
    interp_family(|c| matches!(c, Case::Stats(..)));
}

#[test]
fn interp_softmax_both_axes() {
    interp_family(|c| matches!(c, Case::Softmax(..)));
}

#[test]
fn interp_iota_and_expand() {
    interp_family(|c| matches!(c, Case::Iota(..)));
}

#[test]
fn interp_loop_carried_row_statistics() {
    interp_family(|c| matches!(c, Case::RowLoop(..)));
}

#[test]
fn interp_flash_attention() {
    interp_family(|c| matches!(c, Case::Attention(..)));
}

// ---------------------------------------------------------------- SIMT

/// The targets lowered for: the WGSL record (16x16 threads), and smaller workgroups:
/// 64 threads (8x8) and 32 threads (a 4x8 thread grid, rows != columns).
fn wgsl_targets() -> Vec<Target> {
    vec![
        Target::wgsl(),
        Target {
            max_workgroup_size: 64,
            ..Target::wgsl()
        },
        Target {
            max_workgroup_size: 32,
            ..Target::wgsl()
        },
    ]
}

fn lower(k: &TileKernel, t: &Target) -> SimtKernel {
    simt::lower_kernel(k, t).unwrap_or_else(|e| panic!("lowering `{}`: {e}", k.name))
}

fn count(body: &[Stmt], f: &dyn Fn(&Stmt) -> bool) -> usize {
    body.iter()
        .map(|s| {
            let inner = match s {
                Stmt::If { then, els, .. } => count(then, f) + count(els, f),
                Stmt::Loop { body, .. } => count(body, f),
                _ => 0,
            };
            inner + f(s) as usize
        })
        .sum()
}

#[test]
fn wgsl_validates() {
    for k in kernels::all().iter().map(Case::kernel) {
        for t in wgsl_targets() {
            let s = lower(&k, &t);
            let text = wgsl::print_kernel(&s);
            if let Err(e) = wgsl::validate(&text, &s.name, &t) {
                panic!(
                    "{} at {} threads: {e}\n--- module ---\n{text}",
                    k.name, s.workgroup_size
                );
            }
        }
    }
}

#[test]
fn ptx_assembles_without_spills() {
    let ptxas = ptxas_support::find_ptxas();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("tile_ops_ptx");
    let mut entries = Vec::new();
    // The PTX record (256 threads, 16x16) and a 64-thread (8x8) workgroup. (At 32
    // threads the [32, 64] attention tiles need over 255 registers per thread: a
    // workgroup that small is not what the PTX target uses.)
    let small = Target {
        max_workgroup_size: 64,
        ..Target::ptx()
    };
    for k in kernels::all().iter().map(Case::kernel) {
        for (target, tag) in [(Target::ptx(), ""), (small.clone(), "_t64")] {
            let s = lower(&k, &target);
            let file = format!("{}{tag}", k.name);
            for sm in [80, 90] {
                let text = ptx::print_kernel(&s, sm).unwrap_or_else(|e| panic!("{file}: {e}"));
                let info = ptxas_support::assemble(&ptxas, &dir, &file, &text, sm)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    (info.spill_stores, info.spill_loads),
                    (0, 0),
                    "{file} spills on sm_{sm}: {info:?}"
                );
                entries.push(ptxas_support::ReportEntry::new(
                    "tile_ops", &file, sm, &info,
                ));
            }
        }
    }
    ptxas_support::write_report("ptxas-report-tile-ops.json", &entries)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The row statistics of the attention loop stay in the row layout: per key block
/// exactly two barriers per `dot` (after staging, after the k-loop) and two per
/// row reduction (max, sum), none for moving values between layouts; the final
/// `expand` of the row sum needs none either.
#[test]
fn attention_needs_no_layout_moves() {
    for (m, n, d, bm, bn, causal) in [(7, 33, 32, 16, 32, false), (33, 33, 80, 16, 16, true)] {
        let k = kernels::attention(m, n, d, bm, bn, causal);
        for t in wgsl_targets() {
            let s = lower(&k, &t);
            let barriers = count(&s.body, &|s| matches!(s, Stmt::Barrier));
            assert_eq!(barriers, 8, "{} at {} threads", k.name, s.workgroup_size);
        }
    }
}

/// A loop-carried statistic whose initial value is loaded and whose update is a row
/// reduction lives in the row layout: the initial load is done in that layout, so the
/// only barriers are the two per row reduction.
#[test]
fn loaded_loop_carried_values_take_the_row_layout() {
    let k = kernels::row_loop(7, 100, 8, 32);
    let s = lower(&k, &Target::wgsl());
    let barriers = count(&s.body, &|s| matches!(s, Stmt::Barrier));
    assert_eq!(barriers, 4, "{}", k.name);
}

#[test]
fn interp_pairwise_mixed_layouts() {
    interp_family(|c| matches!(c, Case::Pairwise(..)));
}

/// A vector needed both in the row and the column layout is moved through shared memory
/// (two barriers per move: into rows, into columns, and the bool vector into rows).
#[test]
fn mixed_layouts_are_moved_through_shared_memory() {
    let k = kernels::pairwise(33, 40);
    let s = lower(&k, &Target::wgsl());
    let barriers = count(&s.body, &|s| matches!(s, Stmt::Barrier));
    // 3 moves (6) + the row reduction (2) + the column reduction (2) + the total: a move
    // of the row sums into the linear layout (2) and the tree over the 64 threads that
    // hold the 40 elements (1 + 6 + 1).
    assert_eq!(barriers, 20, "{}", k.name);
}
