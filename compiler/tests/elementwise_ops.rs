//! The elementwise ops of issue 3 in the graph IR and the f64 interpreter: type rules,
//! reference values checked against known results, and the typed error the compiler gives
//! for the ops it does not lower yet.

use std::collections::HashMap;
use tessera_compiler::graph::{CompareOp, UnaryOp};
use tessera_compiler::interp::{run_graph, Tensor};
use tessera_compiler::{compile, CompileError, DType, Graph, Target};

fn run1(g: &Graph, inputs: &[(&str, Tensor)], out: &str) -> Tensor {
    let map: HashMap<String, Tensor> = inputs
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    run_graph(g, &map)
        .expect("runs")
        .remove(out)
        .expect("output")
}

#[test]
fn unary_reference_values() {
    // Known values: erf from tables (15 digits), sigmoid(0) = 1/2, and the stable sigmoid
    // at |x| = 800 where a naive 1/(1+e^-x) would overflow e^800.
    let erf = [
        (0.5, 0.520_499_877_813_047),
        (1.0, 0.842_700_792_949_715),
        (-2.0, -0.995_322_265_018_953),
    ];
    for (x, want) in erf {
        assert!((UnaryOp::Erf.eval(x) - want).abs() < 1e-14, "erf({x})");
    }
    assert_eq!(UnaryOp::Sigmoid.eval(0.0), 0.5);
    assert_eq!(UnaryOp::Sigmoid.eval(800.0), 1.0);
    assert!(UnaryOp::Sigmoid.eval(-800.0) >= 0.0 && UnaryOp::Sigmoid.eval(-800.0) < 1e-300);
    assert!((UnaryOp::Sigmoid.eval(-30.0) / (-30f64).exp() - 1.0).abs() < 1e-12);
    assert_eq!(UnaryOp::Reciprocal.eval(4.0), 0.25);
    assert_eq!(UnaryOp::Abs.eval(-3.0), 3.0);
    assert_eq!(UnaryOp::Relu.eval(-3.0), 0.0);
    assert!(UnaryOp::Relu.eval(f64::NAN).is_nan());
}

#[test]
fn graph_ops_through_the_interpreter() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3], DType::F32).unwrap();
    let y = g.input("y", &[2, 3], DType::F32).unwrap();
    let lt = g.compare(CompareOp::Lt, x, y).unwrap();
    assert_eq!(g.ty(lt).dtype, DType::Bool);
    let sel = g.select(lt, x, y).unwrap(); // min(x, y)
    let mn = g.min(x, y).unwrap();
    let cl = g.clamp(x, -1.0, 1.5).unwrap();
    let ci = g.cast(x, DType::I32).unwrap();
    let ch = g.cast(x, DType::BF16).unwrap();
    let io = g.iota(&[2, 3], 1, DType::I32).unwrap();
    let pw = g.pow(y, x).unwrap();
    for (n, name) in [
        (sel, "sel"),
        (mn, "mn"),
        (cl, "cl"),
        (ci, "ci"),
        (ch, "ch"),
        (io, "io"),
        (pw, "pw"),
        (lt, "lt"),
    ] {
        g.set_name(n, name).unwrap();
        g.mark_output(n).unwrap();
    }
    let xs = [-2.7, 0.5, 1.0, 3.9, -0.0, 1.001];
    let ys = [1.0, 0.25, 1.0, 2.0, 4.0, 9.0];
    let xt = Tensor::from_vec(&[2, 3], DType::F32, xs.to_vec()).unwrap();
    let yt = Tensor::from_vec(&[2, 3], DType::F32, ys.to_vec()).unwrap();
    let inputs = [("x", xt), ("y", yt)];
    let get = |n: &str| run1(&g, &inputs, n).data;
    assert_eq!(get("lt"), vec![1.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
    assert_eq!(get("sel"), get("mn"));
    assert_eq!(get("cl"), vec![-1.0, 0.5, 1.0, 1.5, 0.0, 1.001]);
    // Truncation toward zero.
    assert_eq!(get("ci"), vec![-2.0, 0.0, 1.0, 3.0, 0.0, 1.0]);
    // bf16 has 8 significant bits: 3.9 -> 3.90625, 1.001 -> 1.0.
    assert_eq!(get("ch")[3], 3.906_25);
    assert_eq!(get("ch")[5], 1.0);
    assert_eq!(get("io"), vec![0.0, 1.0, 2.0, 0.0, 1.0, 2.0]);
    let pw = get("pw");
    assert!((pw[0] - 1.0).abs() < 1e-15);
    assert!((pw[5] - 9f64.powf(1.001)).abs() < 1e-12);
}

#[test]
fn type_rules() {
    let mut g = Graph::new();
    let x = g.input("x", &[4], DType::F32).unwrap();
    let i = g.input("i", &[4], DType::I32).unwrap();
    assert!(g.pow(i, i).is_err(), "pow is float only");
    assert!(g.compare(CompareOp::Eq, x, i).is_err(), "dtype mismatch");
    let c = g.compare(CompareOp::Ge, i, i).unwrap();
    assert!(g.select(x, x, x).is_err(), "cond must be bool");
    assert!(g.select(c, x, i).is_err(), "branches of one dtype");
    assert!(g.cast(c, DType::F32).is_err(), "no casts from bool");
    assert!(g.iota(&[4], 1, DType::I32).is_err(), "axis out of range");
    assert!(g.iota(&[4], 0, DType::F16).is_err(), "i32 or f32 only");
    assert!(g.clamp(x, 2.0, 1.0).is_err(), "lo > hi");
    assert!(g.abs(i).is_ok() && g.relu(i).is_ok() && g.min(i, i).is_ok());
    assert!(g.erf(i).is_err());
}

#[test]
fn unlowered_ops_are_typed_errors() {
    // iota is scheduled on every target (its values are checked by the conformance
    // suite); a cast to bf16 is rounded in registers on every target, but WGSL has no
    // bf16 storage for the output (a typed error naming bf16).
    let mut g = Graph::new();
    let io = g.iota(&[4], 0, DType::I32).unwrap();
    g.mark_output(io).unwrap();
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        assert!(compile(&g, &target).is_ok(), "iota on {}", target.kind);
    }
    let mut g = Graph::new();
    let x = g.input("x", &[4], DType::F32).unwrap();
    let c = g.cast(x, DType::BF16).unwrap();
    g.mark_output(c).unwrap();
    match compile(&g, &Target::wgsl()) {
        Err(CompileError::Unsupported { what, .. }) => assert!(what.contains("bf16")),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(compile(&g, &Target::ptx()).is_ok());
    assert!(compile(&g, &Target::ascend_910b()).is_ok());
}

/// Compare and select fused into one elementwise kernel: the compiled plan on the f32 tile
/// interpreter equals the f64 graph interpreter exactly (comparisons and selects do no
/// arithmetic), bool outputs included, with NaN (ordered comparisons: false) and ties.
#[test]
fn compare_and_select_are_fused_and_exact() {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 5], DType::F32).unwrap();
    let y = g.input("y", &[3, 5], DType::F32).unwrap();
    let mut outs = Vec::new();
    for op in CompareOp::ALL {
        let c = g.compare(op, x, y).unwrap();
        let s = g.select(c, x, y).unwrap();
        let e = g.exp(s).unwrap();
        g.set_name(c, &format!("c_{}", op.name())).unwrap();
        g.set_name(e, &format!("s_{}", op.name())).unwrap();
        g.mark_output(c).unwrap();
        g.mark_output(e).unwrap();
        outs.push(format!("c_{}", op.name()));
        outs.push(format!("s_{}", op.name()));
    }
    let xs: Vec<f64> = (0..15).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
    let mut ys: Vec<f64> = (0..15).map(|i| ((i * 3) % 4) as f64 - 1.5).collect();
    ys[3] = xs[3];
    ys[9] = xs[9];
    ys[11] = f64::NAN;
    let inputs: HashMap<String, Tensor> = [
        (
            "x".to_string(),
            Tensor::from_vec(&[3, 5], DType::F32, xs).unwrap(),
        ),
        (
            "y".to_string(),
            Tensor::from_vec(&[3, 5], DType::F32, ys).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let want = run_graph(&g, &inputs).unwrap();
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        let plan = compile(&g, &target).expect("compiles");
        // One kernel per output at most (compare, select and exp fused).
        assert!(plan.kernels.len() <= outs.len(), "{:?}", target.kind);
        let got = tessera_compiler::interp::run_plan(&plan, &inputs).unwrap();
        for name in &outs {
            let (w, o) = (&want[name].data, &got[name].data);
            for (a, b) in w.iter().zip(o) {
                let same = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * a.abs();
                assert!(same, "{name}: {w:?} vs {o:?}");
            }
        }
    }
    // A single output: the compare, the select and the exp fuse into one kernel.
    let mut h = Graph::new();
    let (x, y) = (
        h.input("x", &[3, 5], DType::F32).unwrap(),
        h.input("y", &[3, 5], DType::F32).unwrap(),
    );
    let c = h.compare(CompareOp::Gt, x, y).unwrap();
    let s = h.select(c, x, y).unwrap();
    let e = h.exp(s).unwrap();
    h.mark_output(e).unwrap();
    for target in [Target::wgsl(), Target::ptx(), Target::ascend_910b()] {
        assert_eq!(compile(&h, &target).unwrap().kernels.len(), 1);
    }
    // Code generation: WGSL (validated by naga) and PTX.
    for target in [Target::wgsl(), Target::ptx()] {
        let plan = compile(&g, &target).unwrap();
        tessera_compiler::backend::emit(&plan, &target).expect("emits");
    }
}
