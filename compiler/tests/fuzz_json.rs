//! Random JSON graphs, valid or not, never crash the compiler: `Graph::from_json` either
//! returns a typed error or a graph, and a graph compiles and emits for every target (the
//! WGSL, PTX and Ascend C records, and the WGSL target of a CPU adapter such as lavapipe:
//! subgroups, in-place dots, f16 and bf16 storage) or returns a typed error, without a
//! panic or an internal compiler error. Where a compiled plan is small, the tile
//! interpreter runs it on random inputs too (an error is fine, a panic or a malformed
//! plan is not).
//!
//! The graphs are drawn by proptest from every op and composite of the JSON format, with
//! attributes near the edges: extents 0, 1, small, 2^31 and 2^53 (the element limit),
//! axes in range and just past it, `usize::MAX`, every dtype, any number of inputs,
//! named by earlier nodes or by the node itself (a cycle). Most graphs fail a type rule,
//! so each is also tried with the nodes its type rules refuse left out; the test
//! requires that a share of them get through to the compiler, so that it keeps testing
//! the compiler and not only the parser. A failure prints the shrunk graph's JSON.
//! `TESSERA_FUZZ_CASES` and `TESSERA_FUZZ_SEED` draw more or other graphs;
//! `TESSERA_FUZZ_PRINT=1` prints every graph that compiled. (With the scatter-add axis
//! overflow put back, 30000 graphs find it; 120000 graphs of four other seeds pass.)

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use tessera_compiler::graph::{
    AttentionWrt, BinaryOp, CompareOp, CompositeOp, DType, Graph, GraphJson, NodeJson, Op,
    ReduceOp, UnaryOp,
};
use tessera_compiler::interp::{run_plan, InterpError, Tensor};
use tessera_compiler::{backend, compile, CompileError, Target};

/// Extents drawn for shapes: mostly small, sometimes empty or huge.
const EXTENTS: [usize; 12] = [1, 2, 3, 4, 5, 8, 1, 2, 3, 0, 1 << 31, 1 << 53];
/// Axes and other small integer attributes: in range, just past it, absurd.
const AXES: [usize; 8] = [0, 1, 2, 0, 1, 3, 7, usize::MAX];
/// The shape most leaves take a prefix of.
const BASE_SHAPE: [usize; 4] = [3, 4, 5, 8];
/// Plans whose buffers hold at most this many elements in all are also run.
const RUN_LIMIT: usize = 1 << 16;

/// One node of a random graph, as raw choices read by [`node`].
#[derive(Clone, Debug)]
struct Raw {
    op: u8,
    attrs: [u16; 4],
    inputs: Vec<u16>,
    shape: Vec<u8>,
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        any::<u8>(),
        any::<[u16; 4]>(),
        prop::collection::vec(any::<u16>(), 0..=4),
        prop::collection::vec(any::<u8>(), 0..=4),
    )
        .prop_map(|(op, attrs, inputs, shape)| Raw {
            op,
            attrs,
            inputs,
            shape,
        })
}

fn pick<T: Copy>(from: &[T], i: u16) -> T {
    from[i as usize % from.len()]
}

fn flag(x: u16) -> bool {
    x % 2 == 1
}

/// The op a raw node stands for.
fn op(r: &Raw) -> Op {
    let [a, b, c, d] = r.attrs;
    let eps = [1e-5, 0.0, -1.0, f64::MIN_POSITIVE][d as usize % 4];
    let scale = [0.125, 1.0, 0.0, -2.0][d as usize % 4];
    let shape: Vec<usize> = r.shape.iter().map(|&e| pick(&EXTENTS, e.into())).collect();
    let wrt = [AttentionWrt::Q, AttentionWrt::K, AttentionWrt::V][c as usize % 3];
    match r.op % 40 {
        0..=3 => Op::Input,
        4 => Op::Param,
        5 => Op::Constant {
            value: [0.5, -3.0, 1e30, 70000.0][a as usize % 4],
        },
        6 | 7 => Op::Unary {
            op: pick(&UnaryOp::ALL, a),
        },
        8 | 9 => Op::Binary {
            op: pick(&BinaryOp::ALL, a),
        },
        10 | 11 => Op::Reduce {
            op: pick(&ReduceOp::ALL, a),
            axis: pick(&AXES, b),
            keep_dims: flag(c),
        },
        12 | 13 => Op::MatMul {
            transpose_a: flag(a),
            transpose_b: flag(b),
        },
        14 => Op::Broadcast { shape },
        15 => Op::Reshape { shape },
        16 => Op::Permute {
            perm: r.shape.iter().map(|&p| pick(&AXES, p.into())).collect(),
        },
        17 => Op::Compare {
            op: pick(&CompareOp::ALL, a),
        },
        18 => Op::Select,
        19 => Op::Cast {
            to: pick(&DType::ALL, a),
        },
        20 => Op::Iota {
            axis: pick(&AXES, a),
        },
        21 => Op::Slice {
            axis: pick(&AXES, a),
            start: pick(&AXES, b),
            len: pick(&EXTENTS, c),
        },
        22 => Op::Concat {
            axis: pick(&AXES, a),
        },
        23 => Op::Gather {
            axis: pick(&AXES, a),
        },
        24 => Op::ScatterAdd {
            axis: pick(&AXES, a),
            size: pick(&EXTENTS, b),
        },
        k => Op::Composite(match k {
            25 => CompositeOp::Softmax,
            26 => CompositeOp::LogSoftmax,
            27 => CompositeOp::LayerNorm {
                eps,
                affine: flag(a),
            },
            28 => CompositeOp::RmsNorm {
                eps,
                affine: flag(a),
            },
            29 => CompositeOp::Gelu { tanh: flag(a) },
            30 => CompositeOp::Silu,
            31 => CompositeOp::SwiGlu,
            32 => CompositeOp::Rope {
                interleaved: flag(a),
            },
            33 => CompositeOp::Attention {
                causal: flag(a),
                padding: flag(b),
                scale,
            },
            34 => CompositeOp::CrossEntropy {
                ignore_index: [-1, 0, i64::MAX][a as usize % 3],
            },
            35 => CompositeOp::AttentionStats {
                causal: flag(a),
                padding: flag(b),
                scale,
            },
            36 => CompositeOp::AttentionGrad {
                causal: flag(a),
                padding: flag(b),
                scale,
                wrt,
            },
            37 => CompositeOp::TokenCrossEntropy {
                ignore_index: [-1, 0, i64::MAX][a as usize % 3],
            },
            38 => match a % 3 {
                0 => CompositeOp::ScatterRanks {
                    size: pick(&EXTENTS, b),
                },
                1 => CompositeOp::ScatterOrder,
                _ => CompositeOp::ScatterStarts {
                    size: pick(&EXTENTS, b),
                },
            },
            _ => CompositeOp::SortedScatterAdd {
                axis: pick(&AXES, a),
                size: pick(&EXTENTS, b),
            },
        }),
    }
}

/// The JSON text of a random graph: node `i` is named `n{i}`; its inputs name earlier
/// nodes (an index past them names no node); leaves get a shape and a dtype; the last
/// node and one more are the outputs.
fn graph_json(nodes: &[Raw], extra_output: u16) -> String {
    let mut spec = GraphJson {
        nodes: Vec::new(),
        outputs: Vec::new(),
    };
    for (i, r) in nodes.iter().enumerate() {
        let op = op(r);
        let leaf = op.is_leaf();
        // The op's own number of inputs (concat: two), unless the first raw input says
        // otherwise; mostly the node just before, so that graphs form chains.
        let arity = match op.arity() {
            _ if r.inputs.first().is_some_and(|&k| k % 16 == 0) => r.inputs.len(),
            Some(n) => n,
            None => 2,
        };
        let inputs = if leaf {
            Vec::new()
        } else {
            (0..arity)
                .map(|k| {
                    let choice = r.inputs.get(k).copied().unwrap_or(1);
                    let j = if choice % 3 == 0 || i == 0 {
                        choice as usize % (i + 1)
                    } else {
                        i - 1
                    };
                    format!("n{j}")
                })
                .collect()
        };
        // Leaf shapes: mostly a prefix of one base shape (so that elementwise operands
        // agree), sometimes drawn from the edge extents.
        let shape = leaf.then(|| {
            if r.attrs[2] % 5 == 0 {
                r.shape.iter().map(|&e| pick(&EXTENTS, e.into())).collect()
            } else {
                BASE_SHAPE[..r.shape.len()].to_vec()
            }
        });
        let dtype = leaf.then(|| {
            if r.attrs[3] % 2 == 0 {
                DType::F32
            } else {
                pick(&DType::ALL, r.attrs[3] / 2)
            }
        });
        spec.nodes.push(NodeJson {
            name: format!("n{i}"),
            op,
            inputs,
            shape,
            dtype,
        });
    }
    let n = nodes.len();
    spec.outputs.push(format!("n{}", n - 1));
    let other = format!("n{}", extra_output as usize % n);
    if !spec.outputs.contains(&other) {
        spec.outputs.push(other);
    }
    serde_json::to_string_pretty(&spec).unwrap_or_default()
}

/// The graph of [`graph_json`] with every node its type rule refuses left out (inputs
/// naming a left-out node name the latest kept one instead), as JSON: graphs that get
/// through to the compiler, whose nodes still carry the edge attributes.
fn valid_graph_json(text: &str) -> Option<String> {
    let spec: GraphJson = serde_json::from_str(text).ok()?;
    let mut g = Graph::new();
    let mut kept: HashMap<String, tessera_compiler::NodeId> = HashMap::new();
    let mut last = None;
    for n in &spec.nodes {
        let inputs = n
            .inputs
            .iter()
            .filter_map(|i| kept.get(i).copied().or(last))
            .collect();
        let leaf_ty = n
            .shape
            .as_ref()
            .map(|s| tessera_compiler::TensorType::new(s.clone(), n.dtype.unwrap_or(DType::F32)));
        if let Ok(id) = g.push(n.op.clone(), inputs, leaf_ty, Some(&n.name)) {
            kept.insert(n.name.clone(), id);
            last = Some(id);
        }
    }
    // The latest computed node is an output (leaves alone compile to nothing), and the
    // outputs the spec names that were kept.
    if let Some(id) = g.ids().filter(|&id| !g.node(id).op.is_leaf()).last() {
        g.mark_output(id).ok()?;
    }
    for o in &spec.outputs {
        if let Some(&id) = kept.get(o) {
            g.mark_output(id).ok()?;
        }
    }
    if g.outputs().is_empty() {
        g.mark_output(last?).ok()?;
    }
    Some(g.to_json())
}

/// What happened to one graph.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// `from_json` refused it (a typed error).
    Refused,
    /// It compiled to at least one kernel and emitted for at least one target (others
    /// may have refused it).
    Compiled,
}

/// The WGSL target the wgpu device picks on lavapipe (a CPU adapter: f16 and bf16
/// storage, 32 KiB of workgroup memory, subgroups of 8, dots read in place).
fn cpu_adapter() -> Target {
    let mut t = Target::wgsl_f16();
    t.storage_dtypes.push(DType::BF16);
    t = t.for_cpu_adapter();
    t.shared_memory_bytes = 32 * 1024;
    t.subgroup_size = Some(8);
    t
}

/// Parses, compiles and emits a graph for every target, and runs small plans on the
/// tile interpreter; any panic is returned as an error.
fn exercise(text: &str) -> Result<Outcome, String> {
    let graph = match Graph::from_json(text) {
        Ok(g) => g,
        Err(e) => {
            // The error's message must render (it names op, node and shapes).
            let _ = e.to_string();
            return Ok(Outcome::Refused);
        }
    };
    let mut outcome = Outcome::Refused;
    for target in [
        Target::wgsl(),
        cpu_adapter(),
        Target::ptx(),
        Target::ascend_910b(),
    ] {
        let kind = target.kind;
        let step = catch_unwind(AssertUnwindSafe(|| {
            let plan = compile(&graph, &target)?;
            backend::emit(&plan, &target)?;
            Ok::<_, CompileError>(plan)
        }))
        .map_err(|p| format!("{kind}: panicked while compiling: {}", message(&p)))?;
        let plan = match step {
            Ok(plan) => plan,
            // An internal error is a compiler bug as much as a panic is.
            Err(e @ CompileError::Internal { .. }) => {
                return Err(format!("{kind}: internal compiler error: {e}"))
            }
            Err(_) => continue,
        };
        if std::env::var_os("TESSERA_FUZZ_PRINT").is_some() {
            println!("COMPILED {kind} {} kernels\n{text}", plan.kernels.len());
        }
        if !plan.kernels.is_empty() {
            outcome = Outcome::Compiled;
        }
        let total: usize = plan.buffers.iter().map(|b| b.len).sum();
        if total <= RUN_LIMIT {
            let inputs: HashMap<String, Tensor> = graph
                .inputs()
                .into_iter()
                .chain(graph.params())
                .enumerate()
                .map(|(i, n)| {
                    let ty = graph.ty(n);
                    let node = graph.node(n);
                    (
                        node.name.clone(),
                        Tensor::random(&ty.shape, ty.dtype, i as u64),
                    )
                })
                .collect();
            let ran = catch_unwind(AssertUnwindSafe(|| run_plan(&plan, &inputs)))
                .map_err(|p| format!("{kind}: the tile interpreter panicked: {}", message(&p)))?;
            // A plan the compiler made must be one the interpreter accepts.
            if let Err(e @ InterpError::BadPlan { .. }) = ran {
                return Err(format!("{kind}: the compiled plan is malformed: {e}"));
            }
        }
    }
    Ok(outcome)
}

fn message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_json_graphs_never_panic() {
    let cases = env_u64("TESSERA_FUZZ_CASES").map_or(5000, |n| n as u32);
    let seed = env_u64("TESSERA_FUZZ_SEED").unwrap_or(0x15_0e);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 1024,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    // Panics are caught and reported with the graph; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let compiled = AtomicUsize::new(0);
    let result = runner.run(
        &(prop::collection::vec(raw(), 1..=12), any::<u16>()),
        |(nodes, extra)| {
            let text = graph_json(&nodes, extra);
            let valid = valid_graph_json(&text);
            for text in std::iter::once(text).chain(valid) {
                match exercise(&text) {
                    Ok(Outcome::Compiled) => {
                        compiled.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Outcome::Refused) => {}
                    Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
                }
            }
            Ok(())
        },
    );
    let _ = std::panic::take_hook();
    let compiled = compiled.into_inner();
    println!("{cases} random JSON graphs (seed {seed:#x}): {compiled} compiled to kernels for some target");
    if let Err(e) = result {
        panic!("a random JSON graph crashed the compiler (seed {seed:#x}):\n{e}");
    }
    // Enough graphs must reach the compiler for the test to test it.
    assert!(
        compiled * 20 >= cases as usize,
        "only {compiled} of {cases} random graphs compiled: the generator no longer reaches the compiler"
    );
}
