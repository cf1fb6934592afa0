//! Conformance cases of movement and indexing ops: slice, concat, gather, scatter-add, iota.
//!
//! Sizes: the axis under test takes n in {1, 7, 100, 257}; embedding tables have V in
//! {1, 7, 50257} rows of D in {1, 7, 100, 257} columns.
//!
//! - `slice/n*`: slices of every axis of rank-3 tensors, composed with permutes,
//!   broadcasts and reshapes (a slice of a merged axis aligned to its digits, and one that
//!   is not, which the scheduler materializes), fused into elementwise kernels, reduction
//!   bodies (reduced and kept axes), matmul operands (M, K and N axes, transposed), and a
//!   slice as an output (a copy). A slice only moves the offset: what follows is one add
//!   or mul (one rounding), an exp (`EXP_TOL`), a sum (`sum_tol`) or a dot product
//!   (`dot_tol`); copies are exact.
//! - `concat/n*`: 1, 2 and 3 operands along the first, middle and last axis of rank-3
//!   tensors (the joined extents n, 3 and 1), with a permuted and a sliced operand, and a
//!   concat feeding an add: data movement is exact; the add is one rounding.
//! - `gather/*`: embedding lookups `table[V, D][ids[B, T]]` (exact: rows are copied),
//!   along a middle axis (`[3, V, 5]`, ids `[n]`) and the last axis (`[4, V]`), from a
//!   transposed table, and a GPT-2 style embedding sum `wte[ids] + wpe[iota(T)]` (one
//!   rounding); an f16 table (with a concat of f16 values) on PTX and Ascend C, refused
//!   with a typed error on wgpu and the tile interpreter (no `shader-f16`), exact.
//! - `scatter_add/*`: the transpose of those gathers with ids drawn from few values, so
//!   that most rows receive several terms. Each output element is a sum of at most N
//!   (the number of ids) terms uniform in [-1, 1), in the fixed order of the ids:
//!   `sum_tol(N)`. Ids out of range cannot occur here (the oracle rejects them); see
//!   [`out_of_range_ids_are_clamped_or_dropped`].
//! - `iota/n*`: i32 and f32 iotas along each axis of `[n, 3, 5]`-like shapes (exact:
//!   integers below 2^24), permuted / sliced / broadcast, fused with an input (one
//!   rounding), inside a reduction (a sum of n products of exact integers times uniform
//!   values: the products are exact up to one rounding each; `dot_tol` covers that form
//!   with factors up to n: `dot_tol(n) * n`), and as a matmul operand (materialized).
//!
//! Separately: [`scatter_add_is_bitwise_deterministic`] runs a scatter-add with heavily
//! repeated ids twice on wgpu and on the tile interpreter and requires bitwise equal
//! results; [`out_of_range_ids_are_clamped_or_dropped`] checks the documented device
//! behaviour for ids outside the table (gather clamps into range, scatter-add drops them)
//! against values computed here, on wgpu, the tile interpreter and the Ascend C CPU build.

use super::{dot_tol, sum_tol, Case, Dist, Table, Tol, EPS, EXP_TOL, F};
use std::collections::HashMap;
use tessera::compiler::interp::Tensor;
use tessera::compiler::{DType, Graph};
use tessera::runtime::CpuDevice;

const NS: [usize; 4] = [1, 7, 100, 257];
const I32: DType = DType::I32;

/// Adds this family's cases to the table.
pub(super) fn add_cases(t: &mut Table) {
    slices(t);
    concats(t);
    gathers(t);
    scatter_adds(t);
    iotas(t);
}

fn slices(t: &mut Table) {
    for n in NS {
        t.case(format!("slice/n{n}"), &[], |g, o| {
            // Axis 0 of [n + 3, 7], then an add.
            let x = g.input("a0", &[n + 3, 7], F)?;
            let y = g.input("b0", &[n, 7], F)?;
            let s = g.slice(x, 0, 2, n)?;
            o.add("axis0_add", g.add(s, y)?, Tol::ONE_ROUNDING);
            // Axis 1 of [5, n + 4, 3], permuted to [n, 5, 3], then exp.
            let x = g.input("a1", &[5, n + 4, 3], F)?;
            let s = g.slice(x, 1, 1, n)?;
            let p = g.permute(s, &[1, 0, 2])?;
            o.add("axis1_permute_exp", g.exp(p)?, EXP_TOL);
            // Axis 2 of [2, 3, n + 2] after a permute (a strided axis), times an input.
            let x = g.input("a2", &[n + 2, 2, 3], F)?;
            let p = g.permute(x, &[1, 2, 0])?;
            let s = g.slice(p, 2, 2, n)?;
            let y = g.input("b2", &[2, 3, n], F)?;
            o.add("permute_axis2_mul", g.mul(s, y)?, Tol::ONE_ROUNDING);
            // A slice broadcast along a new axis: [n + 2] -> [1..n + 1] -> [3, n].
            let x = g.input("a3", &[n + 2], F)?;
            let s = g.slice(x, 0, 1, n)?;
            let y = g.input("b3", &[3, n], F)?;
            o.add("broadcast_mul", g.mul(s, y)?, Tol::ONE_ROUNDING);
            // Broadcast, then slice the broadcast axis and a real one.
            let x = g.input("a4", &[1, n + 1], F)?;
            let b = g.broadcast(x, &[6, n + 1])?;
            let s = g.slice(b, 0, 2, 3)?;
            let s = g.slice(s, 1, 1, n)?;
            let y = g.input("b4", &[3, n], F)?;
            o.add("broadcast_slice_add", g.add(s, y)?, Tol::ONE_ROUNDING);
            // A merged axis: [2, 3n] -> permute [3n, 2] -> [6n]; slices aligned to the
            // inner digit (free) and straddling it (the scheduler materializes).
            let x = g.input("a5", &[2, 3 * n], F)?;
            let p = g.permute(x, &[1, 0])?;
            let r = g.reshape(p, &[6 * n])?;
            let aligned = g.slice(r, 0, 2, 2 * n)?;
            let y = g.input("b5", &[2 * n], F)?;
            o.add("merged_aligned_add", g.add(aligned, y)?, Tol::ONE_ROUNDING);
            let odd = g.slice(r, 0, 1, 3)?;
            let y = g.input("c5", &[3], F)?;
            o.add("merged_straddling_add", g.add(odd, y)?, Tol::ONE_ROUNDING);
            // A slice of a fused elementwise value: slice(exp(x)) + y.
            let x = g.input("a6", &[n + 5, 4], F)?;
            let e = g.exp(x)?;
            let s = g.slice(e, 0, 5, n)?;
            let y = g.input("b6", &[n, 4], F)?;
            // exp's 10u relative, then one rounding of a sum of magnitude <= e + 1:
            // 10u |e^x| + u |want|; |e^x| <= |want| + 1: 11u relative + 10u absolute.
            o.add(
                "exp_slice_add",
                g.add(s, y)?,
                Tol::new(11.0 * EPS, 10.0 * EPS),
            );
            // Reductions: over the sliced axis and over a kept one.
            let x = g.input("a7", &[4, n + 5], F)?;
            let s = g.slice(x, 1, 3, n)?;
            o.add("reduce_sliced_axis", g.sum(s, 1, false)?, sum_tol(n));
            let s2 = g.slice(x, 0, 1, 3)?;
            o.add("reduce_kept_sliced", g.sum(s2, 0, true)?, sum_tol(3));
            // A slice in a reduction epilogue: sum(x, 1) * slice(z).
            let z = g.input("z7", &[6], F)?;
            let zs = g.slice(z, 0, 1, 4)?;
            let sm = g.sum(x, 1, false)?;
            // The sum's error sum_tol(n + 5) (absolute), times |z| < 1, plus one rounding
            // of the product.
            o.add(
                "reduce_epilogue_mul",
                g.mul(sm, zs)?,
                Tol::new(EPS, sum_tol(n + 5).atol),
            );
            // Matmul operands: A sliced along M and K, B (transposed) along N and K.
            let a = g.input("ma", &[n + 2, 20], F)?;
            let a = g.slice(a, 0, 1, n)?;
            let a = g.slice(a, 1, 3, 17)?;
            let b = g.input("mb", &[9, 19], F)?;
            let b = g.slice(b, 0, 2, 5)?;
            let b = g.slice(b, 1, 0, 17)?;
            o.add("matmul_sliced", g.matmul_t(a, b, false, true)?, dot_tol(17));
            // A slice as an output: a copy.
            let x = g.input("a8", &[3, n + 2, 2], F)?;
            o.add("output_copy", g.slice(x, 1, 2, n)?, Tol::EXACT);
            Ok(())
        });
    }
}

fn concats(t: &mut Table) {
    for n in NS {
        t.case(format!("concat/n{n}"), &[], |g, o| {
            // Joined extents n, 3, 1 along axis `axis` of [.., 4, 5]-like shapes.
            for axis in 0..3 {
                let other = [4usize, 5];
                for k in 1..=3 {
                    let mut xs = Vec::new();
                    for (i, l) in [n, 3, 1].into_iter().take(k).enumerate() {
                        let mut shape = other.to_vec();
                        shape.insert(axis, l);
                        xs.push(g.input(&format!("x{axis}_{k}_{i}"), &shape, F)?);
                    }
                    o.add(format!("axis{axis}_k{k}"), g.concat(&xs, axis)?, Tol::EXACT);
                }
            }
            // A permuted and a sliced operand (non-contiguous views), along the middle axis.
            let p = g.input("p", &[n, 3, 2], F)?;
            let p = g.permute(p, &[2, 0, 1])?; // [2, n, 3]
            let s = g.input("s", &[2, 9, 3], F)?;
            let s = g.slice(s, 1, 4, 5)?; // [2, 5, 3]
            o.add("views_axis1", g.concat(&[p, s], 1)?, Tol::EXACT);
            // Along the last axis with views, feeding an add (one rounding).
            let a = g.input("la", &[3, n + 1], F)?;
            let a = g.slice(a, 1, 1, n)?;
            let b = g.input("lb", &[2, 3], F)?;
            let b = g.permute(b, &[1, 0])?;
            let c = g.concat(&[a, b], 1)?;
            let y = g.input("ly", &[3, n + 2], F)?;
            o.add("last_axis_add", g.add(c, y)?, Tol::ONE_ROUNDING);
            Ok(())
        });
    }
}

/// Embedding shapes: (V, D, B, T).
const EMBEDDINGS: [(usize, usize, usize, usize); 7] = [
    (1, 1, 1, 1),
    (1, 257, 2, 7),
    (7, 7, 3, 100),
    (7, 100, 2, 7),
    (7, 257, 1, 257),
    (50257, 7, 2, 100),
    (50257, 100, 1, 7),
];

fn gathers(t: &mut Table) {
    for (v, d, b, tt) in EMBEDDINGS {
        t.case(
            format!("gather/embed_v{v}d{d}b{b}t{tt}"),
            &[("ids", Dist::Ids(v))],
            |g, o| {
                let table = g.param("wte", &[v, d], F)?;
                let ids = g.input("ids", &[b, tt], I32)?;
                o.add("lookup", g.gather(table, ids, 0)?, Tol::EXACT);
                Ok(())
            },
        );
    }
    // f16 tables (PTX and Ascend C; WGSL without `shader-f16` and the tile interpreter,
    // which runs the WGSL plan, refuse f16 storage): rows are copied, exact; a gather
    // feeding a concat of f16 values too.
    t.case(
        "gather/f16_v7d100".into(),
        &[("ids", Dist::Ids(7))],
        |g, o| {
            let table = g.param("wte", &[7, 100], DType::F16)?;
            let ids = g.input("ids", &[3, 5], I32)?;
            let e = g.gather(table, ids, 0)?;
            o.add("lookup", e, Tol::EXACT);
            let x = g.input("x", &[3, 2, 100], DType::F16)?;
            o.add("concat", g.concat(&[e, x], 1)?, Tol::EXACT);
            Ok(())
        },
    );
    // wgpu stores f16 when the device has `shader-f16` (lavapipe does).
    if let Some(c) = t.0.last_mut() {
        c.refused_by = &["tile_interp"];
    }
    for n in NS {
        let v = 7;
        t.case(
            format!("gather/axes_n{n}"),
            &[("ids", Dist::Ids(v)), ("ids_big", Dist::Ids(300))],
            |g, o| {
                let ids = g.input("ids", &[n], I32)?;
                // Middle axis: [3, V, 5] -> [3, n, 5].
                let x = g.input("mid", &[3, v, 5], F)?;
                o.add("middle_axis", g.gather(x, ids, 1)?, Tol::EXACT);
                // Last axis: [4, V] -> [4, n] (one element per row).
                let x = g.input("last", &[4, v], F)?;
                o.add("last_axis", g.gather(x, ids, 1)?, Tol::EXACT);
                // A transposed table: [D, V] read as [V, D].
                let x = g.input("tt", &[9, v], F)?;
                let xt = g.permute(x, &[1, 0])?;
                o.add("transposed_table", g.gather(xt, ids, 0)?, Tol::EXACT);
                // A sliced table (rows 2..302 of 310) with ids in 0..300, ids [n, 1].
                let big = g.input("big", &[310, 3], F)?;
                let sl = g.slice(big, 0, 2, 300)?;
                let ib = g.input("ids_big", &[n, 1], I32)?;
                o.add("sliced_table", g.gather(sl, ib, 0)?, Tol::EXACT);
                Ok(())
            },
        );
        t.case(
            format!("gather/positions_n{n}"),
            &[("ids", Dist::Ids(v))],
            |g, o| {
                let ids = g.input("ids", &[n], I32)?;
                // GPT-2 embeddings: wte[ids] + wpe[iota(n)]: one rounding.
                let wte = g.param("wte", &[v, 16], F)?;
                let wpe = g.param("wpe", &[n + 3, 16], F)?;
                let pos = g.iota(&[n], 0, I32)?;
                let tok = g.gather(wte, ids, 0)?;
                let pe = g.gather(wpe, pos, 0)?;
                o.add("token_plus_position", g.add(tok, pe)?, Tol::ONE_ROUNDING);
                Ok(())
            },
        );
    }
}

fn scatter_adds(t: &mut Table) {
    // (V, D, B, T): ids drawn from V values.
    for (v, d, b, tt) in [
        (1, 7, 2, 7),
        (7, 1, 1, 100),
        (7, 100, 3, 7),
        (50, 257, 2, 100),
    ] {
        let n = b * tt;
        t.case(
            format!("scatter_add/embed_v{v}d{d}b{b}t{tt}"),
            &[("ids", Dist::Ids(v))],
            |g, o| {
                let src = g.input("dy", &[b, tt, d], F)?;
                let ids = g.input("ids", &[b, tt], I32)?;
                o.add("grad_table", g.scatter_add(src, ids, 0, v)?, sum_tol(n));
                Ok(())
            },
        );
    }
    // Strided ids (every other column of a [n, 2] tensor): sorted, read in place.
    t.case(
        "scatter_add/strided_ids".to_string(),
        &[("ids", Dist::Ids(9))],
        |g, o| {
            let ids = g.input("ids", &[300, 2], I32)?;
            let ids = g.slice(ids, 1, 1, 1)?;
            let src = g.input("dy", &[300, 1, 33], F)?;
            o.add("grad_table", g.scatter_add(src, ids, 0, 9)?, sum_tol(300));
            Ok(())
        },
    );
    for n in NS {
        let v = 5;
        t.case(
            format!("scatter_add/axes_n{n}"),
            &[("ids", Dist::Ids(v))],
            |g, o| {
                let ids = g.input("ids", &[n], I32)?;
                // Middle axis: [3, n, 4] -> [3, V, 4].
                let x = g.input("mid", &[3, n, 4], F)?;
                o.add("middle_axis", g.scatter_add(x, ids, 1, v)?, sum_tol(n));
                // Last axis: [4, n] -> [4, V].
                let x = g.input("last", &[4, n], F)?;
                o.add("last_axis", g.scatter_add(x, ids, 1, v)?, sum_tol(n));
                // A transposed source: [4, n] read as [n, 4], into [V, 4], then scaled:
                // the sum's error times |s| < 1, plus one rounding.
                let x = g.input("tr", &[4, n], F)?;
                let xt = g.permute(x, &[1, 0])?;
                let sc = g.scatter_add(xt, ids, 0, v)?;
                let s = g.input("scale", &[v, 4], F)?;
                o.add(
                    "transposed_scaled",
                    g.mul(sc, s)?,
                    Tol::new(EPS, sum_tol(n).atol),
                );
                Ok(())
            },
        );
    }
}

fn iotas(t: &mut Table) {
    for n in NS {
        t.case(format!("iota/n{n}"), &[], |g, o| {
            let shapes = [[n, 3, 5], [3, n, 5], [3, 5, n]];
            for (s, shape) in shapes.iter().enumerate() {
                for axis in 0..3 {
                    for (dn, dt) in [("i32", I32), ("f32", F)] {
                        let i = g.iota(shape, axis, dt)?;
                        o.add(format!("{dn}_s{s}_axis{axis}"), i, Tol::EXACT);
                    }
                }
            }
            // Permuted, sliced and broadcast, then an f32 iota times an input (one
            // rounding of an exact product).
            let i = g.iota(&[n + 2, 4], 0, F)?;
            let p = g.permute(i, &[1, 0])?;
            let s = g.slice(p, 1, 2, n)?;
            let b = g.broadcast(s, &[2, 4, n])?;
            let x = g.input("x", &[2, 4, n], F)?;
            o.add("view_mul", g.mul(b, x)?, Tol::ONE_ROUNDING);
            // An i32 iota reshaped across axes ([3, n] along axis 1 -> [n, 3]: not
            // strided in any order for n > 1, so it gets a buffer), cast and added.
            let i = g.iota(&[3, n], 1, I32)?;
            let r = g.reshape(i, &[n, 3])?;
            let c = g.cast(r, F)?;
            let y = g.input("y", &[n, 3], F)?;
            o.add("reshape_cast_add", g.add(c, y)?, Tol::ONE_ROUNDING);
            // In a reduction body: sum_j j * z[r, j] over [4, n]. Each product of an
            // integer below n with |z| < 1 is rounded once (u n), then n terms bounded by
            // n are summed: dot_tol(n) scaled by the factor bound n.
            let i = g.iota(&[4, n], 1, F)?;
            let z = g.input("z", &[4, n], F)?;
            let m = g.mul(i, z)?;
            let tol = dot_tol(n);
            o.add(
                "reduce_weighted",
                g.sum(m, 1, false)?,
                Tol::new(0.0, tol.atol * n as f64),
            );
            // An operand of a matmul (materialized): [n, 3] rows 0..n times [3, 2]. The
            // dot products have 3 terms with one factor an integer below n: dot_tol(3) * n.
            let i = g.iota(&[n, 3], 0, F)?;
            let w = g.input("w", &[3, 2], F)?;
            o.add(
                "matmul_operand",
                g.matmul(i, w)?,
                Tol::new(0.0, dot_tol(3).atol * n as f64),
            );
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------------------

/// A case with explicit input values (the table's random inputs are not used).
fn fixed_case(name: &str, graph: Graph) -> Case {
    Case {
        name: name.to_string(),
        graph,
        dists: HashMap::new(),
        tols: HashMap::new(),
        refused_by: &[],
    }
}

fn tensor(shape: &[usize], dtype: DType, data: Vec<f64>) -> Tensor {
    Tensor {
        shape: shape.to_vec(),
        dtype,
        data,
    }
}

/// Runs a case on one backend.
type Run = Box<dyn Fn(&Case, &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>, String>>;

/// The backends that run plans here, by name (the Ascend C CPU build needs g++).
fn backends() -> Vec<(&'static str, Run)> {
    let tile = CpuDevice::tile();
    vec![
        (
            "wgpu",
            Box::new(|c: &Case, i: &HashMap<String, Tensor>| {
                super::run_on_device(super::wgpu(), c, i)
            }),
        ),
        (
            "tile_interp",
            Box::new(move |c: &Case, i: &HashMap<String, Tensor>| {
                super::run_on_device(&tile, c, i)
            }),
        ),
        ("ascend_cpu", Box::new(super::run_ascend_cpu)),
    ]
}

/// Device behaviour for ids outside the table, which the graph interpreter rejects:
/// gather clamps an id into `0..V` (negative ids read row 0, ids >= V row V - 1) and
/// scatter-add drops the terms of ids outside `0..size`. Checked against values computed
/// here from that rule.
#[test]
fn out_of_range_ids_are_clamped_or_dropped() {
    let (v, d) = (5usize, 4usize);
    // Beyond i32's f32-exact range too: 2^24 + 1 (16777216 as f32) and i32::MIN.
    let ids_v = [
        -7.0,
        0.0,
        4.0,
        5.0,
        123.0,
        2.0,
        -1.0,
        16_777_217.0,
        -2_147_483_648.0,
        3.0,
        // i32::MIN + 1 (its difference to row 1 is i32::MIN: the scan once matched it;
        // these few ids sort, `scatter_add_sort_walk_and_scan_agree_bitwise` has it for
        // the scan and the walk)
        // and i32::MAX.
        -2_147_483_647.0,
        2_147_483_647.0,
    ];
    let n = ids_v.len();
    let mut g = Graph::new();
    let table = g.input("table", &[v, d], F).expect("input");
    let ids = g.input("ids", &[n], I32).expect("input");
    let src = g.input("src", &[n, d], F).expect("input");
    let gathered = g.gather(table, ids, 0).expect("gather");
    let scattered = g.scatter_add(src, ids, 0, v).expect("scatter_add");
    // The same ids and rows as [n / 2, 2], the ids read through a transpose (sorted).
    let ids_t = g.input("ids_t", &[2, n / 2], I32).expect("input");
    let ids_2 = g.permute(ids_t, &[1, 0]).expect("permute");
    let src_2 = g.input("src_2", &[n / 2, 2, d], F).expect("input");
    let scanned = g.scatter_add(src_2, ids_2, 0, v).expect("scatter_add");
    g.set_name(gathered, "gathered").expect("name");
    g.set_name(scattered, "scattered").expect("name");
    g.set_name(scanned, "scanned").expect("name");
    g.mark_output(gathered).expect("output");
    g.mark_output(scattered).expect("output");
    g.mark_output(scanned).expect("output");
    // The oracle refuses these ids.
    let table_v: Vec<f64> = (0..v * d).map(|i| i as f64 * 0.5 - 3.0).collect();
    let src_v: Vec<f64> = (0..n * d).map(|i| 1.0 + i as f64 * 0.25).collect();
    let inputs = HashMap::from([
        ("table".to_string(), tensor(&[v, d], F, table_v.clone())),
        ("ids".to_string(), tensor(&[n], I32, ids_v.to_vec())),
        ("src".to_string(), tensor(&[n, d], F, src_v.clone())),
        (
            "ids_t".to_string(),
            tensor(
                &[2, n / 2],
                I32,
                (0..n)
                    .map(|i| ids_v[(i % (n / 2)) * 2 + i / (n / 2)])
                    .collect(),
            ),
        ),
        (
            "src_2".to_string(),
            tensor(&[n / 2, 2, d], F, src_v.clone()),
        ),
    ]);
    assert!(
        tessera::compiler::interp::run_graph(&g, &inputs).is_err(),
        "the graph interpreter must reject out-of-range ids"
    );
    let mut want_g = Vec::new();
    for &id in &ids_v {
        let row = (id as i64).clamp(0, v as i64 - 1) as usize;
        want_g.extend_from_slice(&table_v[row * d..(row + 1) * d]);
    }
    let mut want_s = vec![0.0; v * d];
    for (i, &id) in ids_v.iter().enumerate() {
        if (0.0..v as f64).contains(&id) {
            for c in 0..d {
                want_s[id as usize * d + c] += src_v[i * d + c];
            }
        }
    }
    let case = fixed_case("out_of_range_ids", g);
    for (name, run) in backends() {
        let got = run(&case, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got["gathered"].data, want_g, "{name}: gather clamps");
        // Sums of quarter-integers below 2^10: exact in f32.
        assert_eq!(got["scattered"].data, want_s, "{name}: scatter-add drops");
        assert_eq!(
            got["scanned"].data, want_s,
            "{name}: through a transpose too"
        );
    }
}

/// The three scatter-add lowerings give the same bits, out-of-range ids included. 4500
/// ids (the first of every three 0, the others in `0..5` or, at 41 places, out of
/// range: -1, the row count, 60, 2^24 + 1, i32::MIN + 1, i32::MAX) of `[m, k]` scatter
/// a source with a leading axis, read through a transpose (`[d, 2, m, k]` given,
/// permuted to `[2, m, k, d]`: strided columns), into 5 rows: as given the ids are too
/// many for 5 rows to sort (`schedule::composites`, `N > 4096 + 10 size`), so they walk
/// their matches (`tile::ops::index`, `scatter_walk`); read through the transpose of a
/// `[k, m]` input they scan every id (`scatter_scan`). Into 60 rows the same ids sort
/// (ranks, order, segment starts, then per row its segment), both contiguous and
/// transposed. Every form sums each output element's matches in increasing position:
/// rows `0..5` agree bit for bit on each backend, and every row is checked against the
/// f64 sum of its matches.
#[test]
fn scatter_add_sort_walk_and_scan_agree_bitwise() {
    let (m, k, d, v, wide) = (90usize, 50usize, 13usize, 5usize, 60usize);
    let n = m * k;
    let mut g = Graph::new();
    let src_in = g.input("src", &[d, 2, m, k], F).expect("input");
    let src = g.permute(src_in, &[1, 2, 3, 0]).expect("permute");
    let ids = g.input("ids", &[m, k], I32).expect("input");
    let ids_t = g.input("ids_t", &[k, m], I32).expect("input");
    let view = g.permute(ids_t, &[1, 0]).expect("permute");
    let outputs = [
        ("walked", ids, v),
        ("scanned", view, v),
        ("sorted", ids, wide),
        ("sorted_t", view, wide),
    ];
    for (name, i, size) in outputs {
        let s = g.scatter_add(src, i, 1, size).expect("scatter_add");
        g.set_name(s, name).expect("name");
        g.mark_output(s).expect("output");
    }
    let odd = [
        -1.0,
        5.0,
        60.0,
        16_777_217.0,
        -2_147_483_647.0,
        2_147_483_647.0,
    ];
    // Odd ids at i = 111 t + 1 (t = 0..41), each kind 6 or 7 times.
    let ids_v: Vec<f64> = (0..n)
        .map(|i| match i % 3 {
            0 => 0.0,
            1 if (i / 3) % 37 == 0 => odd[(i / 111) % odd.len()],
            _ => ((i * 7) % v) as f64,
        })
        .collect();
    for o in odd {
        assert!(ids_v.contains(&o), "id {o} is not used");
    }
    let ids_t_v: Vec<f64> = (0..k * m).map(|i| ids_v[(i % m) * k + i / m]).collect();
    let src_v = Tensor::random(&[d, 2, m, k], F, 7);
    // out[p, j, c] = sum over ids[i] == j of src[c, p, i].
    let want = |size: usize| {
        let mut w = vec![0.0; 2 * size * d];
        for p in 0..2 {
            for (i, &id) in ids_v.iter().enumerate() {
                if (0.0..size as f64).contains(&id) {
                    for c in 0..d {
                        w[(p * size + id as usize) * d + c] += src_v.data[(c * 2 + p) * n + i];
                    }
                }
            }
        }
        w
    };
    let inputs = HashMap::from([
        ("src".to_string(), src_v.clone()),
        ("ids".to_string(), tensor(&[m, k], I32, ids_v.clone())),
        ("ids_t".to_string(), tensor(&[k, m], I32, ids_t_v)),
    ]);
    // The kernels of each form: one walk (its loop over id chunks holds the loop over
    // the matches), one scan, two rankings (one per ids view), and four sums.
    use tessera::compiler::tile::{Block, InstKind};
    fn depth(b: &Block) -> usize {
        b.insts
            .iter()
            .map(|i| match &i.kind {
                InstKind::For { body, .. } => 1 + depth(body),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }
    let plan = tessera::compiler::compile(&g, &tessera::compiler::Target::wgsl()).expect("plan");
    let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
    let count = |p: &str| names.iter().filter(|n| n.starts_with(p)).count();
    assert_eq!(
        (count("scatter_ranks"), count("scatter_add")),
        (2, 4),
        "kernels: {names:?}"
    );
    assert!(count("scatter_order") >= 1, "kernels: {names:?}");
    assert_eq!(count("scatter_starts"), 2, "kernels: {names:?}");
    let nested = plan.kernels.iter().filter(|k| depth(&k.body) == 2).count();
    assert_eq!(nested, 1, "one walk: {names:?}");
    let case = fixed_case("scatter_add_sort_walk_scan", g);
    let bits = |t: &[f64]| t.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let tol = sum_tol(n).atol;
    for (name, run) in backends() {
        let got = run(&case, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (out, size) in [
            ("walked", v),
            ("scanned", v),
            ("sorted", wide),
            ("sorted_t", wide),
        ] {
            let want = want(size);
            assert_eq!(got[out].data.len(), want.len(), "{name}: {out}");
            for (x, y) in got[out].data.iter().zip(&want) {
                assert!((x - y).abs() <= tol, "{name}: {out}: {x} vs {y}");
            }
        }
        let walked = bits(&got["walked"].data);
        assert_eq!(walked, bits(&got["scanned"].data), "{name}: scan");
        for sorted in ["sorted", "sorted_t"] {
            // Rows 0..5 of each leading index.
            let rows = &got[sorted].data;
            let first: Vec<f64> = (0..2)
                .flat_map(|p| rows[p * wide * d..(p * wide + v) * d].to_vec())
                .collect();
            assert_eq!(walked, bits(&first), "{name}: {sorted}");
        }
    }
}

/// The sorted scatter-add's segment starts across many programs of rows: 1200 ids into
/// 2600 rows (2601 starts: the starts kernel's programs own 256 rows on wgpu, the tile
/// interpreter and PTX, 2048 on Ascend C, so every backend runs several), most rows
/// empty, one with 300 ids, ids on both sides of every multiple of 256 and of 2048 and
/// at both ends (`0`, `2599`), and dropped ones (`-1`, `2600`, `i32::MAX`). The source
/// holds quarter-integers, so every sum is exact: the result must equal, bit for bit, the
/// sum computed here (a missing, duplicated or misplaced id would show). A second
/// scatter-add of the same ids (of the negated source) shares the first one's ranks,
/// order and starts. Run on the PTX VM too.
#[test]
fn sorted_scatter_add_segments_span_programs() {
    let (n, d, size) = (1200usize, 3usize, 2600usize);
    let mut g = Graph::new();
    let src = g.input("src", &[n, d], F).expect("input");
    let ids = g.input("ids", &[n], I32).expect("input");
    let s = g.scatter_add(src, ids, 0, size).expect("scatter_add");
    g.set_name(s, "s").expect("name");
    g.mark_output(s).expect("output");
    // A second scatter-add of the same ids, which shares the first one's sort.
    let neg = g.neg(src).expect("neg");
    let s2 = g.scatter_add(neg, ids, 0, size).expect("scatter_add");
    g.set_name(s2, "s2").expect("name");
    g.mark_output(s2).expect("output");
    let mut edges = vec![0.0, 1.0, 2047.0, 2048.0, 2049.0, 2598.0, 2599.0];
    for k in 1..=10 {
        edges.extend([
            256.0 * k as f64 - 1.0,
            256.0 * k as f64,
            256.0 * k as f64 + 1.0,
        ]);
    }
    edges.extend([-1.0, 2600.0, 2_147_483_647.0]);
    let ids_v: Vec<f64> = (0..n)
        .map(|i| match i % 4 {
            0 => edges[(i / 4) % edges.len()],
            1 => 200.0,
            _ => ((i * 37) % 97 + (i % 3) * 700) as f64,
        })
        .collect();
    let src_v: Vec<f64> = (0..n * d)
        .map(|i| ((i * 13) % 41) as f64 * 0.25 - 5.0)
        .collect();
    let mut want = vec![0.0; size * d];
    for (i, &id) in ids_v.iter().enumerate() {
        if (0.0..size as f64).contains(&id) {
            for c in 0..d {
                want[id as usize * d + c] += src_v[i * d + c];
            }
        }
    }
    let plan = tessera::compiler::compile(&g, &tessera::compiler::Target::wgsl()).expect("plan");
    let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
    assert!(
        names.iter().any(|k| k.starts_with("scatter_starts")),
        "sorted: {names:?}"
    );
    let starts = plan
        .launches
        .iter()
        .filter(|l| plan.kernels[l.kernel].name.starts_with("scatter_starts"))
        .count();
    assert_eq!(starts, 1, "one shared sort: {names:?}");
    let inputs = HashMap::from([
        ("src".to_string(), tensor(&[n, d], F, src_v)),
        ("ids".to_string(), tensor(&[n], I32, ids_v)),
    ]);
    let case = fixed_case("sorted_scatter_add_segments", g);
    let mut runs = backends();
    let vm = tessera::runtime::PtxVmDevice::new();
    runs.push((
        "ptx_vm",
        Box::new(move |c: &Case, i: &HashMap<String, Tensor>| super::run_on_device(&vm, c, i)),
    ));
    for (name, run) in runs {
        let got = run(&case, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got["s"].data, want, "{name}");
        let negated: Vec<f64> = want.iter().map(|x| -x).collect();
        assert_eq!(got["s2"].data, negated, "{name}: the shared sort");
    }
}

/// A real vocabulary's embedding gradient (20,000 ids into 50,257 rows of 768: sorted)
/// and 20,000 ids into 100 rows (walked) compile for every target: the rank tiles and
/// the walk's chunk tiles fit an Ascend core's Unified Buffer.
#[test]
fn large_scatter_adds_compile_for_every_target() {
    use tessera::compiler::{compile_and_emit, Target};
    let mut g = Graph::new();
    let src = g.input("src", &[20_000, 768], F).expect("input");
    let ids = g.input("ids", &[20_000], I32).expect("input");
    for size in [50_257, 100] {
        let s = g.scatter_add(src, ids, 0, size).expect("scatter_add");
        g.mark_output(s).expect("output");
    }
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        if let Err(e) = compile_and_emit(&g, &target) {
            panic!("{:?}: {e}", target.kind);
        }
    }
}

/// A scatter-add whose 2000 ids all fall on 3 rows (about 670 terms per output element)
/// gives bitwise identical results on two runs, on each backend (no atomics: a fixed
/// summation order).
#[test]
fn scatter_add_is_bitwise_deterministic() {
    let (v, d, n) = (3usize, 37usize, 2000usize);
    let mut g = Graph::new();
    let src = g.input("src", &[n, d], F).expect("input");
    let ids = g.input("ids", &[n], I32).expect("input");
    let s = g.scatter_add(src, ids, 0, v).expect("scatter_add");
    g.set_name(s, "s").expect("name");
    g.mark_output(s).expect("output");
    let mut case = fixed_case("scatter_add_determinism", g);
    case.dists = HashMap::from([("ids".to_string(), Dist::Ids(v))]);
    let inputs = case.inputs();
    for (name, run) in backends() {
        let a = run(&case, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let b = run(&case, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bits = |t: &Tensor| t.data.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a["s"]), bits(&b["s"]), "{name}: two runs differ");
        // And the result is the sum (a sanity check against the oracle).
        let want = tessera::compiler::interp::run_graph(&case.graph, &inputs).expect("oracle");
        let tol = sum_tol(n).atol;
        for (x, y) in a["s"].data.iter().zip(&want["s"].data) {
            assert!((x - y).abs() <= tol, "{name}: {x} vs {y}");
        }
    }
}

/// Slices and iotas fuse: a slice feeding an elementwise op (two outputs: two kernels), a
/// reduction (body and epilogue) or a matmul adds no kernel, nor does an iota read by them; a slice that
/// straddles the digits of a merged axis costs one copy, and an iota that feeds a gather
/// one kernel of its own. Kernel counts of the compiled plans, on every target.
#[test]
fn slices_and_iotas_fuse_without_copies() {
    use tessera::compiler::{compile, Target};
    type Build = fn(&mut Graph) -> Result<(), tessera::compiler::GraphError>;
    let graphs: [(&str, usize, Build); 6] = [
        ("slice_add", 2, |g| {
            let x = g.input("x", &[10, 20], F)?;
            let y = g.input("y", &[4, 20], F)?;
            let s = g.slice(x, 0, 3, 4)?;
            let p = g.permute(s, &[1, 0])?;
            let s2 = g.slice(p, 1, 1, 2)?;
            let z = g.add(s, y)?;
            g.set_name(z, "z")?;
            g.mark_output(z)?;
            let e = g.exp(s2)?;
            g.set_name(e, "e")?;
            g.mark_output(e)
        }),
        ("slice_reduce", 1, |g| {
            let x = g.input("x", &[10, 20], F)?;
            let w = g.input("w", &[12], F)?;
            let s = g.slice(x, 1, 5, 7)?;
            let r = g.sum(s, 1, false)?;
            let ws = g.slice(w, 0, 2, 10)?;
            let y = g.mul(r, ws)?;
            g.set_name(y, "y")?;
            g.mark_output(y)
        }),
        ("slice_matmul_bias", 1, |g| {
            let a = g.input("a", &[9, 30], F)?;
            let b = g.input("b", &[30, 11], F)?;
            let c = g.input("c", &[20], F)?;
            let a = g.slice(a, 1, 2, 16)?;
            let b = g.slice(b, 0, 14, 16)?;
            let m = g.matmul(a, b)?;
            let c = g.slice(c, 0, 9, 11)?;
            let y = g.add(m, c)?;
            g.set_name(y, "y")?;
            g.mark_output(y)
        }),
        ("straddling_slice", 2, |g| {
            let x = g.input("x", &[2, 9], F)?;
            let p = g.permute(x, &[1, 0])?;
            let r = g.reshape(p, &[18])?;
            let s = g.slice(r, 0, 1, 3)?;
            let y = g.exp(s)?;
            g.set_name(y, "y")?;
            g.mark_output(y)
        }),
        ("iota_fused", 1, |g| {
            let x = g.input("x", &[6, 5], F)?;
            let i = g.iota(&[5, 8], 0, F)?;
            let i = g.permute(i, &[1, 0])?;
            let i = g.slice(i, 0, 1, 6)?;
            let y = g.mul(i, x)?;
            let r = g.sum(y, 1, false)?;
            g.set_name(r, "r")?;
            g.mark_output(r)
        }),
        ("iota_gather", 2, |g| {
            let t = g.input("t", &[9, 4], F)?;
            let i = g.iota(&[5], 0, I32)?;
            let y = g.gather(t, i, 0)?;
            g.set_name(y, "y")?;
            g.mark_output(y)
        }),
    ];
    for (name, kernels, build) in graphs {
        let mut g = Graph::new();
        build(&mut g).unwrap_or_else(|e| panic!("{name}: {e}"));
        for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
            let plan = compile(&g, &target).unwrap_or_else(|e| panic!("{name}: {e}"));
            let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
            assert_eq!(names.len(), kernels, "{name} on {}: {names:?}", target.kind);
        }
    }
}

/// A scatter-add of no ids is all zeros, on every backend (the scheduler sorts it: its
/// ranks, order and starts kernels have nothing to read).
#[test]
fn scatter_add_of_no_ids_is_zeros() {
    let mut g = Graph::new();
    let src = g.input("src", &[0, 3], F).expect("input");
    let ids = g.input("ids", &[0], I32).expect("input");
    let s = g.scatter_add(src, ids, 0, 5).expect("scatter_add");
    g.set_name(s, "s").expect("name");
    g.mark_output(s).expect("output");
    let plan = tessera::compiler::compile(&g, &tessera::compiler::Target::wgsl()).expect("plan");
    let names: Vec<&str> = plan.kernels.iter().map(|k| k.name.as_str()).collect();
    assert!(
        names.iter().any(|k| k.starts_with("scatter_starts")),
        "sorted: {names:?}"
    );
    let inputs = HashMap::from([
        ("src".to_string(), tensor(&[0, 3], F, vec![])),
        ("ids".to_string(), tensor(&[0], I32, vec![])),
    ]);
    let case = fixed_case("scatter_add_no_ids", g);
    for (name, run) in backends() {
        let got = run(&case, &inputs).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got["s"].data, vec![0.0; 15], "{name}");
    }
}
