//! Invalid graphs give the right typed `GraphError`, through the builder and through
//! `Graph::from_json`; valid graphs survive a JSON round trip unchanged.

use tessera_compiler::graph::{DType, Graph, GraphError, NodeId, Op, TensorType, UnaryOp};

fn json(nodes: &str, outputs: &str) -> Result<Graph, GraphError> {
    Graph::from_json(&format!(
        r#"{{"nodes": [{nodes}], "outputs": [{outputs}]}}"#
    ))
}

const X23: &str = r#"{"name": "x", "op": "input", "shape": [2, 3], "dtype": "f32"}"#;

#[test]
fn add_shape_mismatch() {
    let mut g = Graph::new();
    let a = g.input("a", &[2, 3], DType::F32).unwrap();
    let b = g.input("b", &[4, 3], DType::F32).unwrap();
    match g.add(a, b) {
        Err(GraphError::ShapeMismatch { op, lhs, rhs, .. }) => {
            assert_eq!(op, "add");
            assert_eq!(lhs, vec![2, 3]);
            assert_eq!(rhs, vec![4, 3]);
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    // JSON binary ops do not broadcast: [2,3] + [3] is a mismatch there.
    let r = json(
        &format!(
            r#"{X23}, {{"name": "b", "op": "input", "shape": [3]}},
               {{"name": "s", "op": "binary", "fn": "add", "inputs": ["x", "b"]}}"#
        ),
        r#""s""#,
    );
    match r {
        Err(GraphError::ShapeMismatch {
            op, node, lhs, rhs, ..
        }) => {
            assert_eq!((op, node.as_str()), ("add", "s"));
            assert_eq!((lhs, rhs), (vec![2, 3], vec![3]));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
}

#[test]
fn dtype_mismatch_and_unsupported_dtype() {
    let mut g = Graph::new();
    let a = g.input("a", &[2], DType::F32).unwrap();
    let b = g.input("b", &[2], DType::F16).unwrap();
    assert!(matches!(
        g.add(a, b),
        Err(GraphError::DTypeMismatch { op: "add", .. })
    ));
    let i = g.input("i", &[2], DType::I32).unwrap();
    assert!(matches!(
        g.exp(i),
        Err(GraphError::UnsupportedDType {
            op: "exp",
            dtype: DType::I32,
            ..
        })
    ));
    let r = json(
        r#"{"name": "i", "op": "input", "shape": [2], "dtype": "i32"},
           {"name": "e", "op": "unary", "fn": "tanh", "inputs": ["i"]}"#,
        r#""e""#,
    );
    assert!(matches!(r, Err(GraphError::UnsupportedDType { .. })));
}

#[test]
fn matmul_errors() {
    let mut g = Graph::new();
    let a = g.input("a", &[2, 3], DType::F32).unwrap();
    let b = g.input("b", &[4, 5], DType::F32).unwrap();
    match g.matmul(a, b) {
        Err(GraphError::MatMulInner { ka, kb, a, b, .. }) => {
            assert_eq!((ka, kb), (3, 4));
            assert_eq!((a, b), (vec![2, 3], vec![4, 5]));
        }
        other => panic!("expected MatMulInner, got {other:?}"),
    }
    // The transpose flag changes which axis is K: a^T is [3, 2], K = 2 != 4.
    assert!(matches!(
        g.matmul_t(a, b, true, false),
        Err(GraphError::MatMulInner { ka: 2, kb: 4, .. })
    ));
    let v = g.input("v", &[3], DType::F32).unwrap();
    assert!(matches!(g.matmul(v, a), Err(GraphError::MatMulRank { .. })));
    let b3 = g.input("b3", &[2, 3, 4], DType::F32).unwrap();
    let c3 = g.input("c3", &[3, 4, 5], DType::F32).unwrap();
    assert!(matches!(
        g.matmul(b3, c3),
        Err(GraphError::MatMulBatch { .. })
    ));
    let r = json(
        &format!(
            r#"{X23}, {{"name": "w", "op": "param", "shape": [2, 5]}},
               {{"name": "m", "op": "matmul", "inputs": ["x", "w"]}}"#
        ),
        r#""m""#,
    );
    match r {
        Err(GraphError::MatMulInner { node, ka, kb, .. }) => {
            assert_eq!((node.as_str(), ka, kb), ("m", 3, 2));
        }
        other => panic!("expected MatMulInner, got {other:?}"),
    }
    // With transpose_a the same operands are fine: [2,3]^T @ [2,5] = [3,5].
    let ok = json(
        &format!(
            r#"{X23}, {{"name": "w", "op": "param", "shape": [2, 5]}},
               {{"name": "m", "op": "matmul", "transpose_a": true, "inputs": ["x", "w"]}}"#
        ),
        r#""m""#,
    )
    .unwrap();
    assert_eq!(
        ok.ty(ok.find("m").unwrap()),
        &TensorType::new(vec![3, 5], DType::F32)
    );
}

#[test]
fn reduce_over_missing_axis() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3], DType::F32).unwrap();
    match g.sum(x, 2, false) {
        Err(GraphError::AxisOutOfRange {
            op, axis, shape, ..
        }) => {
            assert_eq!((op, axis, shape), ("reduce_sum", 2, vec![2, 3]));
        }
        other => panic!("expected AxisOutOfRange, got {other:?}"),
    }
    let r = json(
        &format!(
            r#"{X23}, {{"name": "r", "op": "reduce", "fn": "max", "axis": 5, "inputs": ["x"]}}"#
        ),
        r#""r""#,
    );
    assert!(matches!(r, Err(GraphError::AxisOutOfRange { axis: 5, .. })));
}

#[test]
fn reshape_to_a_different_element_count() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3], DType::F32).unwrap();
    assert_eq!(
        g.reshape(x, &[4, 2]),
        Err(GraphError::ReshapeElementCount {
            node: "reshape_1".into(),
            from: vec![2, 3],
            from_elements: 6,
            to: vec![4, 2],
            to_elements: 8,
        })
    );
    let r = json(
        &format!(r#"{X23}, {{"name": "r", "op": "reshape", "shape": [7], "inputs": ["x"]}}"#),
        r#""r""#,
    );
    assert!(matches!(
        r,
        Err(GraphError::ReshapeElementCount {
            from_elements: 6,
            to_elements: 7,
            ..
        })
    ));
}

#[test]
fn cycle_in_json() {
    let r = json(
        r#"{"name": "a", "op": "unary", "fn": "neg", "inputs": ["b"]},
           {"name": "b", "op": "unary", "fn": "exp", "inputs": ["a"]}"#,
        r#""a""#,
    );
    match r {
        Err(GraphError::Cycle { node }) => assert!(node == "a" || node == "b", "{node}"),
        other => panic!("expected Cycle, got {other:?}"),
    }
    // A self-loop.
    let r = json(
        r#"{"name": "a", "op": "binary", "fn": "add", "inputs": ["a", "a"]}"#,
        r#""a""#,
    );
    assert_eq!(r, Err(GraphError::Cycle { node: "a".into() }));
}

#[test]
fn unknown_input() {
    let r = json(
        &format!(r#"{X23}, {{"name": "n", "op": "unary", "fn": "neg", "inputs": ["nope"]}}"#),
        r#""n""#,
    );
    assert_eq!(
        r,
        Err(GraphError::UnknownInput {
            node: "n".into(),
            input: "nope".into()
        })
    );
    // An unknown output name.
    let r = json(X23, r#""y""#);
    assert!(matches!(r, Err(GraphError::UnknownInput { .. })));
    // Builder: a handle that does not belong to the graph.
    let mut g = Graph::new();
    g.input("x", &[2], DType::F32).unwrap();
    assert_eq!(
        g.push(
            Op::Unary { op: UnaryOp::Neg },
            vec![NodeId(99)],
            None,
            Some("n")
        ),
        Err(GraphError::UnknownInput {
            node: "n".into(),
            input: "%99".into()
        })
    );
    assert!(matches!(
        g.mark_output(NodeId(7)),
        Err(GraphError::UnknownInput { .. })
    ));
}

#[test]
fn duplicate_name() {
    let mut g = Graph::new();
    g.input("x", &[2], DType::F32).unwrap();
    assert_eq!(
        g.param("x", &[3], DType::F32),
        Err(GraphError::DuplicateName { node: "x".into() })
    );
    let x = g.find("x").unwrap();
    let n = g.neg(x).unwrap();
    assert_eq!(
        g.set_name(n, "x"),
        Err(GraphError::DuplicateName { node: "x".into() })
    );
    let r = json(
        &format!(r#"{X23}, {{"name": "x", "op": "param", "shape": [1]}}"#),
        r#""x""#,
    );
    assert_eq!(r, Err(GraphError::DuplicateName { node: "x".into() }));
}

#[test]
fn bad_permutation() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 4], DType::F32).unwrap();
    for perm in [&[0, 1][..], &[0, 0, 1], &[0, 1, 3], &[2, 1, 0, 3]] {
        match g.permute(x, perm) {
            Err(GraphError::BadPermutation { perm: p, shape, .. }) => {
                assert_eq!(p, perm.to_vec());
                assert_eq!(shape, vec![2, 3, 4]);
            }
            other => panic!("{perm:?}: expected BadPermutation, got {other:?}"),
        }
    }
    let r = json(
        &format!(r#"{X23}, {{"name": "p", "op": "permute", "perm": [1, 1], "inputs": ["x"]}}"#),
        r#""p""#,
    );
    assert!(matches!(r, Err(GraphError::BadPermutation { .. })));
}

#[test]
fn bad_broadcast() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3], DType::F32).unwrap();
    for to in [&[2, 4][..], &[3], &[3, 3]] {
        match g.broadcast(x, to) {
            Err(GraphError::BadBroadcast { from, to: t, .. }) => {
                assert_eq!(from, vec![2, 3]);
                assert_eq!(t, to.to_vec());
            }
            other => panic!("{to:?}: expected BadBroadcast, got {other:?}"),
        }
    }
    // Valid: new leading axes, and extent-1 axes stretched.
    let c = g.input("c", &[2, 1], DType::F32).unwrap();
    assert!(g.broadcast(c, &[5, 2, 7]).is_ok());
    let r = json(
        &format!(r#"{X23}, {{"name": "b", "op": "broadcast", "shape": [4, 3], "inputs": ["x"]}}"#),
        r#""b""#,
    );
    assert!(matches!(r, Err(GraphError::BadBroadcast { .. })));
}

#[test]
fn malformed_json_and_structural_errors() {
    assert!(matches!(Graph::from_json("{"), Err(GraphError::Json(_))));
    assert!(matches!(
        json(
            r#"{"name": "x", "op": "frobnicate", "shape": [1]}"#,
            r#""x""#
        ),
        Err(GraphError::Json(_))
    ));
    // A leaf without a shape.
    assert!(matches!(
        json(r#"{"name": "x", "op": "input"}"#, r#""x""#),
        Err(GraphError::Invalid { op: "input", .. })
    ));
    // Wrong arity.
    assert!(matches!(
        json(
            &format!(r#"{X23}, {{"name": "a", "op": "binary", "fn": "add", "inputs": ["x"]}}"#),
            r#""a""#
        ),
        Err(GraphError::Arity {
            expected: 2,
            got: 1,
            ..
        })
    ));
    // No outputs.
    assert_eq!(json(X23, ""), Err(GraphError::NoOutputs));
    assert_eq!(Graph::new().validate(), Err(GraphError::NoOutputs));
}

/// A graph using every op kind, built with the builder.
fn every_op_graph() -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", &[4, 8], DType::F32).unwrap();
    let w = g.param("w", &[8, 6], DType::F32).unwrap();
    let b = g.param("b", &[6], DType::F32).unwrap();
    let h = g.matmul(x, w).unwrap();
    let h = g.add(h, b).unwrap();
    let h = g.tanh(h).unwrap();
    let c = g.constant(0.5, &[4, 6], DType::F32).unwrap();
    let h = g.mul(h, c).unwrap();
    let e = g.exp(h).unwrap();
    let l = g.log(e).unwrap();
    let s = g.sqrt(e).unwrap();
    let r = g.rsqrt(e).unwrap();
    let n = g.neg(r).unwrap();
    let d = g.div(s, l).unwrap();
    let m = g.max(d, n).unwrap();
    let m = g.sub(m, h).unwrap();
    let p = g.permute(m, &[1, 0]).unwrap();
    let q = g.reshape(p, &[2, 3, 4]).unwrap();
    let a = g.mean(q, 2, true).unwrap();
    let mx = g.reduce_max(q, 0, false).unwrap();
    let bt = g.input("bt", &[2, 5, 4], DType::F32).unwrap();
    let mm = g.matmul_t(q, bt, false, true).unwrap();
    let y = g.sum(mm, 1, false).unwrap();
    g.set_name(y, "y").unwrap();
    for o in [y, a, mx] {
        g.mark_output(o).unwrap();
    }
    g
}

#[test]
fn json_round_trip() {
    let g = every_op_graph();
    g.validate().unwrap();
    let text = g.to_json();
    let back = Graph::from_json(&text).unwrap();
    assert_eq!(back, g);
    assert_eq!(back.to_json(), text);
    // The JSON form refers to inputs by name and carries op attributes.
    assert!(text.contains(r#""transpose_b": true"#), "{text}");
    assert!(text.contains(r#""keep_dims": true"#), "{text}");

    // Node order in the file does not matter: reversed, the graph loads and has the same
    // nodes (by name and type) and outputs.
    let mut spec = g.to_spec();
    spec.nodes.reverse();
    let shuffled = Graph::from_spec(&spec).unwrap();
    assert_eq!(shuffled.len(), g.len());
    for node in g.nodes() {
        let id = shuffled.find(&node.name).expect("node kept");
        assert_eq!(shuffled.node(id).ty, node.ty, "{}", node.name);
        assert_eq!(shuffled.node(id).op, node.op, "{}", node.name);
    }
    let names = |gr: &Graph| -> Vec<String> {
        gr.outputs()
            .iter()
            .map(|&o| gr.node(o).name.clone())
            .collect()
    };
    assert_eq!(names(&shuffled), names(&g));
}

/// Type-rule errors of the composite ops and of slice / concat / gather / scatter-add.
mod new_ops {
    use super::json;
    use tessera_compiler::graph::{CompositeOp, DType, Graph, GraphError};

    const F: DType = DType::F32;

    #[test]
    fn row_composites() {
        let mut g = Graph::new();
        let i = g.input("i", &[2, 8], DType::I32).unwrap();
        assert!(matches!(
            g.softmax(i),
            Err(GraphError::UnsupportedDType {
                op: "softmax",
                dtype: DType::I32,
                ..
            })
        ));
        let s = g.input("s", &[], F).unwrap();
        assert!(matches!(
            g.log_softmax(s),
            Err(GraphError::Invalid {
                op: "log_softmax",
                ..
            })
        ));
        let x = g.input("x", &[2, 8], F).unwrap();
        let g7 = g.param("g7", &[7], F).unwrap();
        let g8 = g.param("g8", &[8], F).unwrap();
        let h8 = g.param("h8", &[8], DType::F16).unwrap();
        match g.layer_norm(x, Some((g7, g8)), 1e-5) {
            Err(GraphError::ShapeMismatch { op, lhs, rhs, .. }) => {
                assert_eq!((op, lhs, rhs), ("layer_norm", vec![7], vec![8]));
            }
            other => panic!("expected ShapeMismatch, got {other:?}"),
        }
        assert!(matches!(
            g.rms_norm(x, Some(h8), 1e-5),
            Err(GraphError::DTypeMismatch {
                op: "rms_norm",
                lhs: DType::F16,
                rhs: DType::F32,
                ..
            })
        ));
        for eps in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                g.layer_norm(x, None, eps),
                Err(GraphError::Invalid {
                    op: "layer_norm",
                    ..
                })
            ));
            assert!(matches!(
                g.rms_norm(x, None, eps),
                Err(GraphError::Invalid { op: "rms_norm", .. })
            ));
        }
        // Wrong number of inputs for the affine form.
        assert!(matches!(
            g.composite(
                CompositeOp::LayerNorm {
                    eps: 1e-5,
                    affine: true
                },
                &[x, g8]
            ),
            Err(GraphError::Arity {
                op: "layer_norm",
                expected: 3,
                got: 2,
                ..
            })
        ));
    }

    #[test]
    fn elementwise_composites_and_rope() {
        let mut g = Graph::new();
        let x = g.input("x", &[2, 3, 4, 8], F).unwrap();
        let y = g.input("y", &[2, 3, 4, 7], F).unwrap();
        let i = g.input("i", &[4], DType::I32).unwrap();
        assert!(matches!(
            g.gelu(i, true),
            Err(GraphError::UnsupportedDType {
                op: "gelu_tanh",
                ..
            })
        ));
        assert!(matches!(
            g.silu(i),
            Err(GraphError::UnsupportedDType { op: "silu", .. })
        ));
        assert!(matches!(
            g.swiglu(x, y),
            Err(GraphError::ShapeMismatch { op: "swiglu", .. })
        ));
        let c = g.input("c", &[4, 4], F).unwrap();
        let c3 = g.input("c3", &[3, 4], F).unwrap();
        assert!(matches!(
            g.rope(y, c, c, false),
            Err(GraphError::Invalid { op: "rope", .. })
        ));
        match g.rope(x, c, c3, true) {
            Err(GraphError::ShapeMismatch { op, lhs, rhs, .. }) => {
                assert_eq!((op, lhs, rhs), ("rope", vec![3, 4], vec![4, 4]));
            }
            other => panic!("expected ShapeMismatch, got {other:?}"),
        }
        assert!(g.rope(x, c, c, true).is_ok());
    }

    #[test]
    fn attention_shapes() {
        let mut g = Graph::new();
        let q = g.input("q", &[2, 4, 5, 8], F).unwrap();
        let k = g.input("k", &[2, 2, 7, 8], F).unwrap();
        let v = g.input("v", &[2, 2, 7, 3], F).unwrap();
        let k3 = g.input("k3", &[2, 3, 7, 8], F).unwrap();
        let kd = g.input("kd", &[2, 2, 7, 6], F).unwrap();
        let q3 = g.input("q3", &[2, 5, 8], F).unwrap();
        let mask = g.input("mask", &[2, 7], DType::I32).unwrap();
        let maskf = g.input("maskf", &[2, 7], F).unwrap();
        let mask6 = g.input("mask6", &[2, 6], DType::I32).unwrap();
        let a = g.attention(q, k, v, Some(mask), true, None).unwrap();
        assert_eq!(g.ty(a).shape, vec![2, 4, 5, 3]);
        let inv = |r| {
            matches!(
                r,
                Err(GraphError::Invalid {
                    op: "attention",
                    ..
                })
            )
        };
        assert!(inv(g.attention(q3, k, v, None, false, None)));
        assert!(inv(g.attention(q, k3, k3, None, false, None)));
        assert!(inv(g.attention(q, k, v, None, false, Some(f64::NAN))));
        match g.attention(q, kd, v, None, false, None) {
            Err(GraphError::ShapeMismatch { op, lhs, rhs, .. }) => {
                assert_eq!(
                    (op, lhs, rhs),
                    ("attention", vec![2, 2, 7, 6], vec![2, 2, 7, 8])
                );
            }
            other => panic!("expected ShapeMismatch, got {other:?}"),
        }
        assert!(matches!(
            g.attention(q, k, v, Some(maskf), false, None),
            Err(GraphError::DTypeMismatch {
                op: "attention",
                lhs: DType::F32,
                rhs: DType::I32,
                ..
            })
        ));
        assert!(matches!(
            g.attention(q, k, v, Some(mask6), false, None),
            Err(GraphError::ShapeMismatch {
                op: "attention",
                ..
            })
        ));
    }

    #[test]
    fn cross_entropy_shapes() {
        let mut g = Graph::new();
        let l = g.input("l", &[6, 11], F).unwrap();
        let l3 = g.input("l3", &[2, 3, 11], F).unwrap();
        let t = g.input("t", &[6], DType::I32).unwrap();
        let tf = g.input("tf", &[6], F).unwrap();
        let t5 = g.input("t5", &[5], DType::I32).unwrap();
        let ce = g.cross_entropy(l, t, -100).unwrap();
        assert_eq!(g.ty(ce).shape, Vec::<usize>::new());
        let tok = g
            .composite(
                CompositeOp::TokenCrossEntropy { ignore_index: -100 },
                &[l, t],
            )
            .unwrap();
        assert_eq!(g.ty(tok).shape, vec![6]);
        assert!(matches!(
            g.cross_entropy(l3, t, -100),
            Err(GraphError::Invalid {
                op: "cross_entropy",
                ..
            })
        ));
        assert!(matches!(
            g.cross_entropy(l, tf, -100),
            Err(GraphError::DTypeMismatch {
                op: "cross_entropy",
                ..
            })
        ));
        assert!(matches!(
            g.cross_entropy(l, t5, -100),
            Err(GraphError::ShapeMismatch {
                op: "cross_entropy",
                ..
            })
        ));
    }

    #[test]
    fn indexing_ops() {
        let mut g = Graph::new();
        let x = g.input("x", &[3, 5], F).unwrap();
        let y = g.input("y", &[4, 5], F).unwrap();
        let h = g.input("h", &[3, 5], DType::F16).unwrap();
        let ids = g.input("ids", &[2, 2], DType::I32).unwrap();
        let fids = g.input("fids", &[2], F).unwrap();
        let xi = g.input("xi", &[2, 2, 5], DType::I32).unwrap();
        assert!(matches!(
            g.slice(x, 1, 3, 3),
            Err(GraphError::Invalid { op: "slice", .. })
        ));
        assert!(matches!(
            g.slice(x, 1, usize::MAX, 2),
            Err(GraphError::Invalid { op: "slice", .. })
        ));
        assert!(matches!(
            g.slice(x, 2, 0, 1),
            Err(GraphError::AxisOutOfRange {
                op: "slice",
                axis: 2,
                ..
            })
        ));
        let r = g.slice(x, 1, 3, 2).unwrap();
        assert_eq!(g.ty(r).shape, vec![3, 2]);
        assert!(matches!(
            g.concat(&[x, y], 1),
            Err(GraphError::ShapeMismatch { op: "concat", .. })
        ));
        assert!(matches!(
            g.concat(&[x, h], 0),
            Err(GraphError::DTypeMismatch { op: "concat", .. })
        ));
        assert!(matches!(
            g.concat(&[], 0),
            Err(GraphError::Arity { op: "concat", .. })
        ));
        let r = g.concat(&[x, y, x], 0).unwrap();
        assert_eq!(g.ty(r).shape, vec![10, 5]);
        assert!(matches!(
            g.gather(x, fids, 0),
            Err(GraphError::UnsupportedDType {
                op: "gather",
                dtype: DType::F32,
                ..
            })
        ));
        assert!(matches!(
            g.gather(x, ids, 2),
            Err(GraphError::AxisOutOfRange { op: "gather", .. })
        ));
        let r = g.gather(x, ids, 1).unwrap();
        assert_eq!(g.ty(r).shape, vec![3, 2, 2]);
        // scatter-add: the ids' shape must match src's axes from `axis`.
        assert!(matches!(
            g.scatter_add(x, ids, 0, 9),
            Err(GraphError::Invalid {
                op: "scatter_add",
                ..
            })
        ));
        assert!(matches!(
            g.scatter_add(xi, ids, 0, 9),
            Err(GraphError::UnsupportedDType {
                op: "scatter_add",
                dtype: DType::I32,
                ..
            })
        ));
    }

    #[test]
    fn composite_errors_through_json() {
        let x = r#"{"name": "x", "op": "input", "shape": [2, 8]}"#;
        // Unknown composite function.
        assert!(matches!(
            json(
                &format!(
                    r#"{x}, {{"name": "y", "op": "composite", "fn": "frobnicate", "inputs": ["x"]}}"#
                ),
                r#""y""#
            ),
            Err(GraphError::Json(_))
        ));
        // A missing attribute.
        assert!(matches!(
            json(
                &format!(
                    r#"{x}, {{"name": "y", "op": "composite", "fn": "layer_norm", "inputs": ["x"]}}"#
                ),
                r#""y""#
            ),
            Err(GraphError::Json(_))
        ));
        // A type error names the node.
        match json(
            &format!(
                r#"{x}, {{"name": "g", "op": "param", "shape": [7]}},
                {{"name": "y", "op": "composite", "fn": "rms_norm", "eps": 1e-6,
                  "affine": true, "inputs": ["x", "g"]}}"#
            ),
            r#""y""#,
        ) {
            Err(GraphError::ShapeMismatch { op, node, .. }) => {
                assert_eq!((op, node.as_str()), ("rms_norm", "y"));
            }
            other => panic!("expected ShapeMismatch, got {other:?}"),
        }
        // Slice out of range, through JSON.
        assert!(matches!(
            json(
                &format!(
                    r#"{x}, {{"name": "y", "op": "slice", "axis": 1, "start": 6, "len": 3, "inputs": ["x"]}}"#
                ),
                r#""y""#
            ),
            Err(GraphError::Invalid { op: "slice", .. })
        ));
    }
}

#[test]
fn shapes_whose_element_count_overflows_are_refused() {
    // 2^63 + 1 rows of 2 wrap to 2 elements in 64-bit arithmetic; 2^32 x 2^32 x 16
    // wraps to 0. Both are refused by name instead of compiling a 2- or 0-element
    // kernel.
    for shape in ["[9223372036854775809, 2]", "[4294967296, 4294967296, 16]"] {
        let r = json(
            &format!(
                r#"{{"name": "x", "op": "input", "shape": {shape}}},
                   {{"name": "y", "op": "unary", "fn": "exp", "inputs": ["x"]}}"#
            ),
            r#""y""#,
        );
        match r {
            Err(e @ GraphError::TooLarge { op: "input", .. }) => {
                assert!(e.to_string().contains("`x`"), "{e}")
            }
            other => panic!("{shape}: expected TooLarge, got {other:?}"),
        }
    }
    // An empty tensor's non-zero extents count: [2^40, 2^40, 0] has sub-products that
    // overflow.
    let mut g = Graph::new();
    assert!(matches!(
        g.input("e", &[1 << 40, 1 << 40, 0], DType::F32),
        Err(GraphError::TooLarge { .. })
    ));
    // The largest allowed count passes; a reshape (or broadcast) to a wrapping shape is
    // refused, not compared after wrapping.
    let x = g.input("x", &[2], DType::F32).unwrap();
    assert!(g.input("big", &[1 << 27, 1 << 26], DType::F32).is_ok());
    assert!(matches!(
        g.reshape(x, &[(1usize << 63) + 1, 2]),
        Err(GraphError::TooLarge { op: "reshape", .. })
    ));
    assert!(matches!(
        g.broadcast(x, &[1 << 52, 4, 2]),
        Err(GraphError::TooLarge {
            op: "broadcast",
            ..
        })
    ));
}

#[test]
fn unknown_json_keys_are_refused() {
    let reduce = |extra: &str| {
        json(
            &format!(
                r#"{X23}, {{"name": "r", "op": "reduce", "fn": "sum", "axis": 1{extra},
                   "inputs": ["x"]}}"#
            ),
            r#""r""#,
        )
    };
    // The real key works; a misspelt one is an error naming it and the node's keys.
    assert_eq!(
        reduce(r#", "keep_dims": true"#)
            .unwrap()
            .ty(NodeId(1))
            .shape,
        [2, 1]
    );
    match reduce(r#", "keepdims": true"#) {
        Err(
            e @ GraphError::Invalid {
                op: "reduce_sum", ..
            },
        ) => {
            let s = e.to_string();
            assert!(s.contains("`r`") && s.contains("`keepdims`"), "{s}");
            assert!(s.contains("keep_dims") && s.contains("inputs"), "{s}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // `dtype` misspelt on a leaf, `shape` / `dtype` on a node that does not read them,
    // a key at the top level.
    for (nodes, what) in [
        (
            r#"{"name": "x", "op": "input", "shape": [2], "dype": "i32"}"#.to_string(),
            "`dype`",
        ),
        (
            format!(
                r#"{X23}, {{"name": "e", "op": "unary", "fn": "exp", "inputs": ["x"], "shape": [9, 9]}}"#
            ),
            "`shape`",
        ),
        (
            format!(
                r#"{X23}, {{"name": "e", "op": "unary", "fn": "exp", "inputs": ["x"], "dtype": "i32"}}"#
            ),
            "`dtype`",
        ),
    ] {
        let out = if nodes.contains("\"e\"") {
            r#""e""#
        } else {
            r#""x""#
        };
        match json(&nodes, out) {
            Err(e @ GraphError::Invalid { .. }) => {
                assert!(e.to_string().contains(what), "{e}")
            }
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    assert!(matches!(
        Graph::from_json(&format!(
            r#"{{"nodes": [{X23}], "outputs": ["x"], "extra": 1}}"#
        )),
        Err(GraphError::Json(_))
    ));
    // `shape` stays the key of broadcast and reshape.
    let ok = json(
        &format!(r#"{X23}, {{"name": "r", "op": "reshape", "shape": [3, 2], "inputs": ["x"]}}"#),
        r#""r""#,
    );
    assert_eq!(ok.unwrap().ty(NodeId(1)).shape, [3, 2]);
}

#[test]
fn constants_must_fit_their_dtype() {
    let constant = |value: &str, dtype: &str| {
        json(
            &format!(
                r#"{{"name": "c", "op": "constant", "value": {value}, "shape": [2], "dtype": "{dtype}"}}"#
            ),
            r#""c""#,
        )
    };
    for (value, dtype) in [
        ("1.5", "i32"),
        ("1e20", "i32"),
        ("-3", "u32"),
        ("2", "bool"),
        ("1e300", "f32"),
        ("70000", "f16"),
    ] {
        match constant(value, dtype) {
            Err(e @ GraphError::Invalid { op: "constant", .. }) => {
                assert!(e.to_string().contains(dtype), "{e}")
            }
            other => panic!("{value} as {dtype}: expected Invalid, got {other:?}"),
        }
    }
    for (value, dtype) in [
        ("-7", "i32"),
        ("4294967295", "u32"),
        ("1", "bool"),
        ("0.1", "f16"),
        ("3e38", "f32"),
    ] {
        assert!(constant(value, dtype).is_ok(), "{value} as {dtype}");
    }
    // Infinities (the builder's masks) stay allowed.
    let mut g = Graph::new();
    assert!(g.constant(f64::NEG_INFINITY, &[2], DType::F32).is_ok());
}

#[test]
fn empty_names_and_twice_listed_outputs_are_refused() {
    let r = json(r#"{"name": "", "op": "input", "shape": [2]}"#, r#""""#);
    match r {
        Err(e @ GraphError::Invalid { .. }) => assert!(e.to_string().contains("empty"), "{e}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let mut g = Graph::new();
    let x = g.input("x", &[2], DType::F32).unwrap();
    assert!(matches!(g.set_name(x, ""), Err(GraphError::Invalid { .. })));
    match json(X23, r#""x", "x""#) {
        Err(e @ GraphError::Invalid { .. }) => {
            assert!(e.to_string().contains("listed twice"), "{e}")
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // Renaming keeps lookups right: the old name is free again, the new one found.
    let y = g.unary(UnaryOp::Exp, x).unwrap();
    g.set_name(y, "y").unwrap();
    g.set_name(x, "x2").unwrap();
    assert_eq!(
        (g.find("x2"), g.find("y"), g.find("x")),
        (Some(x), Some(y), None)
    );
    assert!(g.input("x", &[3], DType::F32).is_ok());
    assert!(matches!(
        g.set_name(y, "x2"),
        Err(GraphError::DuplicateName { .. })
    ));
}

#[test]
fn attributes_that_overflow_or_index_nothing_are_refused() {
    // A scatter-add whose ids start at axis usize::MAX (axis + ids rank overflows).
    let r = json(
        &format!(
            r#"{X23}, {{"name": "ids", "op": "input", "shape": [2], "dtype": "i32"}},
               {{"name": "y", "op": "scatteradd", "axis": 18446744073709551615, "size": 5,
                 "inputs": ["x", "ids"]}}"#
        ),
        r#""y""#,
    );
    assert!(
        matches!(&r, Err(GraphError::Invalid { op: "scatter_add", node, .. }) if node == "y"),
        "{r:?}"
    );
    // A concat whose extents sum past usize::MAX.
    let big = 1usize << 53;
    let mut nodes = format!(r#"{{"name": "x", "op": "input", "shape": [{big}]}}"#);
    let inputs = vec![r#""x""#; 2049].join(", ");
    nodes.push_str(&format!(
        r#", {{"name": "c", "op": "concat", "axis": 0, "inputs": [{inputs}]}}"#
    ));
    let r = json(&nodes, r#""c""#);
    assert!(
        matches!(
            &r,
            Err(GraphError::Invalid { op: "concat", .. } | GraphError::TooLarge { .. })
        ),
        "{r:?}"
    );
    // A gather from an empty axis: no id can be in range.
    let mut g = Graph::new();
    let table = g.input("table", &[0, 5], DType::F32).unwrap();
    let ids = g.input("ids", &[3], DType::I32).unwrap();
    assert!(matches!(
        g.gather(table, ids, 0),
        Err(GraphError::Invalid { op: "gather", .. })
    ));
    // ... while no ids from an empty axis is an empty result.
    let none = g.input("none", &[0], DType::I32).unwrap();
    let y = g.gather(table, none, 0).unwrap();
    assert_eq!(g.ty(y).shape, vec![0, 5]);
}

#[test]
fn builders_refuse_nodes_of_other_graphs() {
    let mut g = Graph::new();
    let x = g.input("x", &[2], DType::F32).unwrap();
    let foreign = NodeId(9);
    assert!(matches!(
        g.clamp(foreign, 0.0, 1.0),
        Err(GraphError::UnknownInput { .. })
    ));
    let c = g.input("c", &[2], DType::Bool).unwrap();
    assert!(matches!(
        g.select(foreign, x, x),
        Err(GraphError::UnknownInput { .. })
    ));
    assert!(g.select(c, x, x).is_ok());
}
