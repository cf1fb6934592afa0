//! Multi-output elementwise kernels (`schedule::fuse::merge_elementwise`): AdamW's
//! `m'`, `v'` and `p'` of one parameter stored by one kernel (two on WGSL with clipping,
//! over its 8 storage buffers), elementwise graphs with several outputs (shared
//! subexpressions, one output consuming another) fused into one kernel storing each, and
//! the limit respected when the merged kernel would exceed it. Every plan is run by the
//! f32 tile interpreter and compared with the f64 graph interpreter.
//!
//! Tolerances: the tile kernels compute in f32, each op rounded once (2^-24 relative);
//! the graphs here are a few ops deep on inputs in [-1, 1) (positive where divided by
//! or rooted), so `|got - want| <= 1e-6 + 1e-5 |want|` (about 100 ulps) holds with a wide
//! margin while a wrong or missing term is off by O(1e-2) or more. AdamW: one step with
//! `lr = 1e-2` moves `p` by at most ~`lr`; `m'`, `v'` are two-term sums; the bias
//! corrections of step 1 (`1/(1 - 0.9) = 10`, `1/(1 - 0.999) = 1000`) amplify the f32
//! rounding of `m'`, `v'` into `m' bc1 / sqrt(v' bc2)`, whose ratio stays O(1): the
//! update's error is `lr * O(1e-6)`.

use std::collections::HashMap;
use tessera_compiler::graph::{DType, Graph, NodeId, UnaryOp};
use tessera_compiler::interp::{round_to_dtype, run_graph, run_plan, Tensor};
use tessera_compiler::optim::{AdamW, AdamWInputs, ParamState};
use tessera_compiler::schedule::fuse;
use tessera_compiler::schedule::plan::Plan;
use tessera_compiler::tile::{Access, Block, InstKind, TileKernel};
use tessera_compiler::{backend, compile, Target};

const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-5;

fn targets() -> Vec<Target> {
    vec![Target::wgsl(), Target::ptx(), Target::ascend_910b()]
}

fn output(g: &mut Graph, n: NodeId, name: &str) {
    g.set_name(n, name).unwrap();
    g.mark_output(n).unwrap();
}

/// Random inputs in [-1, 1) (`positive`: in [0.25, 1.25)), by node name.
fn inputs_for(g: &Graph, seed: u64, positive: &[&str]) -> HashMap<String, Tensor> {
    let mut out = HashMap::new();
    for (i, n) in g.inputs().into_iter().chain(g.params()).enumerate() {
        let node = g.node(n);
        let mut t = Tensor::random(&node.ty.shape, node.ty.dtype, seed * 1000 + i as u64);
        if positive.contains(&node.name.as_str()) {
            for v in &mut t.data {
                *v = round_to_dtype(v.abs() + 0.25, node.ty.dtype);
            }
        }
        out.insert(node.name.clone(), t);
    }
    out
}

fn kernel_names(plan: &Plan) -> Vec<String> {
    plan.launches
        .iter()
        .map(|l| plan.kernels[l.kernel].name.clone())
        .collect()
}

fn count_stores(block: &Block) -> usize {
    block
        .insts
        .iter()
        .map(|i| match &i.kind {
            InstKind::Store { .. } => 1,
            InstKind::For { body, .. } => count_stores(body),
            _ => 0,
        })
        .sum()
}

fn written(k: &TileKernel) -> usize {
    k.params.iter().filter(|p| p.access != Access::Read).count()
}

/// Compiles for `target` (and emits its sources), checks the buffer limit, runs the plan
/// on the tile interpreter and compares every output with the graph interpreter.
fn check(g: &Graph, target: &Target, inputs: &HashMap<String, Tensor>) -> Plan {
    check_stores(g, target, inputs, true)
}

/// [`check`]; `one_store_each`: every kernel has one store site per written buffer (true
/// of elementwise kernels, not of row kernels such as softmax that store per chunk).
fn check_stores(
    g: &Graph,
    target: &Target,
    inputs: &HashMap<String, Tensor>,
    one_store_each: bool,
) -> Plan {
    let plan = compile(g, target).unwrap_or_else(|e| panic!("{:?}: {e}", target.kind));
    backend::emit(&plan, target).unwrap_or_else(|e| panic!("{:?} emit: {e}", target.kind));
    for k in &plan.kernels {
        assert!(
            k.params.len() <= target.max_storage_buffers,
            "{:?}: {} binds {} buffers",
            target.kind,
            k.name,
            k.params.len()
        );
        if one_store_each {
            assert_eq!(count_stores(&k.body), written(k), "{}", k.name);
        }
    }
    let want = run_graph(g, inputs).expect("graph interpreter");
    let got = run_plan(&plan, inputs).unwrap_or_else(|e| panic!("{:?}: {e}", target.kind));
    assert_eq!(want.len(), got.len());
    for (name, w) in &want {
        let t = &got[name];
        assert_eq!(t.shape, w.shape, "output {name}");
        for (i, (&a, &b)) in t.data.iter().zip(&w.data).enumerate() {
            assert!(
                (a - b).abs() <= ATOL + RTOL * b.abs(),
                "{:?}: {name}[{i}] = {a}, want {b}; kernels {:?}",
                target.kind,
                kernel_names(&plan)
            );
        }
    }
    plan
}

/// Parameters `p{i}` of the given shapes (gradients `g{i}`, moments `m{i}`, `v{i}`) with
/// their AdamW update; outputs `p{i}.new`, `m{i}.new`, `v{i}.new`.
fn adamw_graph(opt: &AdamW, shapes: &[&[usize]], decay: bool) -> Graph {
    let mut g = Graph::new();
    let mut states = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let p = g.param(&format!("p{i}"), shape, DType::F32).unwrap();
        let grad = g.input(&format!("g{i}"), shape, DType::F32).unwrap();
        let m = g.param(&format!("m{i}"), shape, DType::F32).unwrap();
        let v = g.param(&format!("v{i}"), shape, DType::F32).unwrap();
        states.push(ParamState {
            param: p,
            grad,
            m,
            v,
            decay,
        });
    }
    let inputs = AdamWInputs::add(&mut g, "adamw.").unwrap();
    let ups = opt.step(&mut g, &inputs, &states).unwrap();
    for (i, u) in ups.iter().enumerate() {
        output(&mut g, u.param, &format!("p{i}.new"));
        output(&mut g, u.m, &format!("m{i}.new"));
        output(&mut g, u.v, &format!("v{i}.new"));
    }
    g.validate().unwrap();
    g
}

fn adamw_inputs(g: &Graph, n_params: usize) -> HashMap<String, Tensor> {
    let v: Vec<String> = (0..n_params).map(|i| format!("v{i}")).collect();
    let positive: Vec<&str> = v.iter().map(String::as_str).collect();
    let mut inputs = inputs_for(g, 7, &positive);
    inputs.extend(AdamW::default().step_values("adamw.", 1, 1e-2));
    inputs
}

/// Launches writing some graph output (the update kernels of an AdamW graph).
fn output_launches(plan: &Plan) -> usize {
    let outs: Vec<_> = plan.outputs.iter().map(|(_, b)| *b).collect();
    plan.launches
        .iter()
        .filter(|l| {
            let k = &plan.kernels[l.kernel];
            l.args
                .iter()
                .zip(&k.params)
                .any(|(a, p)| p.access != Access::Read && outs.contains(a))
        })
        .count()
}

#[test]
fn adamw_of_one_parameter_is_one_kernel_where_the_buffers_fit() {
    for decay in [true, false] {
        for shape in [&[7][..], &[257, 3], &[1000]] {
            let g = adamw_graph(&AdamW::default(), &[shape], decay);
            let inputs = adamw_inputs(&g, 1);
            for t in targets() {
                let plan = check(&g, &t, &inputs);
                let names = kernel_names(&plan);
                // p, g, m, v and the step scalars `[lr, bc1, bc2]` read, m', v', p'
                // written: 8 buffers, within every target's limit (WGSL's is 8).
                assert_eq!(names.len(), 1, "{:?}: {names:?}", t.kind);
                let k = &plan.kernels[0];
                assert_eq!((k.params.len(), written(k)), (8, 3), "{}", k.name);
                assert!(k.name.ends_with("_x3_0"), "{}", k.name);
            }
        }
    }
}

#[test]
fn adamw_with_clipping_over_many_parameters_respects_the_limit() {
    let opt = AdamW {
        max_grad_norm: Some(0.5),
        ..AdamW::default()
    };
    let shapes: [&[usize]; 3] = [&[7], &[257], &[4, 33]];
    let g = adamw_graph(&opt, &shapes, true);
    let inputs = adamw_inputs(&g, shapes.len());
    for t in targets() {
        let plan = check(&g, &t, &inputs);
        // The update kernels: reading the clip scale as well (6 reads, 3 writes), one
        // per parameter where 9 buffers fit, two on WGSL (8).
        let per_param = if t.max_storage_buffers >= 9 { 1 } else { 2 };
        assert_eq!(
            output_launches(&plan),
            per_param * shapes.len(),
            "{:?}: {:?}",
            t.kind,
            kernel_names(&plan)
        );
    }
}

/// Outputs sharing a subexpression, one consuming another: one kernel, the shared value
/// computed once, each buffer loaded once.
#[test]
fn outputs_share_subexpressions_and_reuse_stored_values() {
    for n in [7, 257, 1000] {
        let mut g = Graph::new();
        let x = g.input("x", &[n], DType::F32).unwrap();
        let y = g.input("y", &[n], DType::F32).unwrap();
        let xy = g.mul(x, y).unwrap();
        let e = g.exp(xy).unwrap();
        let a = g.add(e, x).unwrap();
        let b = g.mul(e, y).unwrap();
        let c = g.sub(a, b).unwrap();
        output(&mut g, a, "a");
        output(&mut g, b, "b");
        output(&mut g, c, "c");
        let inputs = inputs_for(&g, 3, &[]);
        for t in targets() {
            let plan = check(&g, &t, &inputs);
            assert_eq!(
                kernel_names(&plan),
                ["mul_exp_add_sub_x3_0"],
                "{:?}",
                t.kind
            );
            let k = &plan.kernels[0];
            let mut exps = 0;
            let mut loads = 0;
            for i in &k.body.insts {
                match &i.kind {
                    InstKind::Unary {
                        op: UnaryOp::Exp, ..
                    } => exps += 1,
                    InstKind::Load { .. } => loads += 1,
                    _ => {}
                }
            }
            assert_eq!((exps, loads), (1, 2), "{:?}", t.kind);
        }
    }
}

/// More related outputs than one WGSL kernel can bind: merged kernels up to the limit.
#[test]
fn merged_kernels_stay_within_the_storage_buffer_limit() {
    let mut g = Graph::new();
    let b = g.input("b", &[3, 257], DType::F32).unwrap();
    for i in 0..7 {
        let a = g.input(&format!("a{i}"), &[3, 257], DType::F32).unwrap();
        let o = g.mul(a, b).unwrap();
        output(&mut g, o, &format!("o{i}"));
    }
    let inputs = inputs_for(&g, 5, &[]);
    for t in targets() {
        let plan = check(&g, &t, &inputs);
        let launches = plan.launches.len();
        // Every kernel reads `b`: stores are capped at 4 (PTX, Ascend C), WGSL's 8
        // buffers allow 3 stores (3 + 1 + 3 = 7; 4 stores would need 9).
        let want = if t.max_storage_buffers >= 9 { 2 } else { 3 };
        assert_eq!(launches, want, "{:?}: {:?}", t.kind, kernel_names(&plan));
    }
}

/// A value read through a reduction of another output, and an output read through a
/// view: neither is merged (no launch order / no in-register reuse across indices).
#[test]
fn dependent_or_viewed_outputs_stay_apart() {
    let mut g = Graph::new();
    let x = g.input("x", &[5, 5], DType::F32).unwrap();
    let one = g.constant(1.0, &[], DType::F32).unwrap();
    let o1 = g.add(x, one).unwrap();
    let r = g.sum(o1, 1, true).unwrap();
    let rb = g.broadcast(r, &[5, 5]).unwrap();
    let o2 = g.mul(x, rb).unwrap();
    let o1t = g.permute(o1, &[1, 0]).unwrap();
    let o3 = g.add(o1t, x).unwrap();
    output(&mut g, o1, "o1");
    output(&mut g, o2, "o2");
    output(&mut g, o3, "o3");
    let inputs = inputs_for(&g, 11, &[]);
    for t in targets() {
        let plan = check(&g, &t, &inputs);
        let names = kernel_names(&plan);
        // o1, its row sums, then o2 and o3 in one kernel (both read x, neither reads
        // the other); o1 is stored alone.
        let w: Vec<usize> = plan
            .launches
            .iter()
            .map(|l| written(&plan.kernels[l.kernel]))
            .collect();
        assert_eq!(w, [1, 1, 2], "{:?}: {names:?}", t.kind);
    }
}

#[test]
fn scheduling_is_deterministic() {
    let opt = AdamW {
        max_grad_norm: Some(1.0),
        ..AdamW::default()
    };
    let g = adamw_graph(&opt, &[&[7], &[257], &[31, 3]], true);
    for t in targets() {
        let a = compile(&g, &t).unwrap();
        let b = compile(&g, &t).unwrap();
        assert_eq!(a, b, "{:?}", t.kind);
    }
}

/// `n` values of eight inputs `a0..a7` with many distinct intermediates shared by four
/// outputs: `t_i = sigmoid(a_i a_{i+1})` and `u_i = exp(a_i - a_{i+3})` (indices mod 8),
/// `o0 = sum t_i`, `o1 = sum t_i u_i`, `o2 = sum u_i / (t_i + 1)`,
/// `o3 = sum sqrt(t_i + u_i)`. All four read the same eight buffers, so they are merged;
/// in one kernel every `t_i` and `u_i` stays live from its first to its last use (16
/// tiles at once), which on Ascend C (8 KiB tiles, 184 KiB of Unified Buffer besides 12
/// queues) does not fit, while each output alone does. Every term is positive: the sums
/// do not cancel (the tolerance of [`check`] holds for 30-op-deep sums).
fn many_intermediates(n: usize) -> Graph {
    let mut g = Graph::new();
    let a: Vec<NodeId> = (0..8)
        .map(|i| g.input(&format!("a{i}"), &[n], DType::F32).unwrap())
        .collect();
    let one = g.constant(1.0, &[], DType::F32).unwrap();
    let one = g.broadcast(one, &[n]).unwrap();
    let mut sums: [Option<NodeId>; 4] = [None; 4];
    for (k, acc) in sums.iter_mut().enumerate() {
        for i in 0..8 {
            // Built afresh for each output: no node is shared between the outputs (which
            // would materialize it), but the merged kernel's expression arena computes
            // each `t_i`, `u_i` once and keeps it live for the later outputs.
            let p = g.mul(a[i], a[(i + 1) % 8]).unwrap();
            let t = g.sigmoid(p).unwrap();
            let d = g.sub(a[i], a[(i + 3) % 8]).unwrap();
            let u = g.exp(d).unwrap();
            let term = match k {
                0 => t,
                1 => g.mul(t, u).unwrap(),
                2 => {
                    let t1 = g.add(t, one).unwrap();
                    g.div(u, t1).unwrap()
                }
                _ => {
                    let s = g.add(t, u).unwrap();
                    g.sqrt(s).unwrap()
                }
            };
            *acc = Some(match *acc {
                None => term,
                Some(x) => g.add(x, term).unwrap(),
            });
        }
    }
    for (k, s) in sums.into_iter().enumerate() {
        output(&mut g, s.unwrap(), &format!("o{k}"));
    }
    g.validate().unwrap();
    g
}

/// A merged kernel over an Ascend C per-kernel resource (Unified Buffer bytes here) is
/// taken apart by the scheduler: compiling and emitting succeeds where the unmerged
/// kernels fit, and the results match the graph interpreter. On PTX (no such limit) the
/// four outputs stay one kernel, which shows the graph does provoke the merge.
#[test]
fn merged_kernels_over_ascend_resources_are_taken_apart() {
    for n in [4096, 1000] {
        let g = many_intermediates(n);
        let inputs = inputs_for(&g, 13, &[]);
        for t in targets() {
            let plan = check(&g, &t, &inputs);
            let names = kernel_names(&plan);
            if t.kind == tessera_compiler::TargetKind::Ptx {
                assert_eq!(names.len(), 1, "{names:?}");
                assert_eq!(written(&plan.kernels[0]), 4, "{names:?}");
            }
            if t.kind == tessera_compiler::TargetKind::AscendC {
                // Every kernel emits (`check` emitted the whole plan). With 2048-element
                // tiles (8 KiB) the four-output kernel needs 248 KiB of UB: the outputs
                // are spread over more than one kernel but fewer than four (the last
                // roots are peeled off until the rest fits; some merge remains).
                tessera_compiler::compile_and_emit(&g, &t)
                    .unwrap_or_else(|e| panic!("ascend_910b: {e}"));
                if n == 4096 {
                    assert!(names.len() > 1 && names.len() < 4, "ascend_910b: {names:?}");
                } else {
                    // 1024-element tiles (4 KiB): 16 live values and 12 queues fit, the
                    // merge stays.
                    assert_eq!(names.len(), 1, "ascend_910b: {names:?}");
                }
            }
        }
    }
}

/// The pieces of a GPT training step at small size: `gelu(x W1 + b1)`, a layer norm with
/// gain and bias, logits `h W2`, mean cross-entropy, its gradients ([`tessera_compiler::grad`])
/// and an AdamW step with gradient clipping over every parameter. Compiled and emitted
/// for every target with multi-output kernels on; the loss, gradients and updates match
/// the graph interpreter within [`check`]'s tolerance (a couple of matmuls and norms deep
/// in f32 on O(1) values: errors of O(1e-6) relative).
#[test]
fn gpt_training_step_pieces_compile_and_emit_everywhere() {
    let (n, d, h, v) = (16, 32, 64, 10);
    let mut g = Graph::new();
    let x = g.input("x", &[n, d], DType::F32).unwrap();
    let targets_in = g.input("targets", &[n], DType::I32).unwrap();
    let w1 = g.param("w1", &[d, h], DType::F32).unwrap();
    let b1 = g.param("b1", &[h], DType::F32).unwrap();
    let gamma = g.param("gamma", &[h], DType::F32).unwrap();
    let beta = g.param("beta", &[h], DType::F32).unwrap();
    let w2 = g.param("w2", &[h, v], DType::F32).unwrap();
    let xw = g.matmul(x, w1).unwrap();
    let bb = g.broadcast(b1, &[n, h]).unwrap();
    let pre = g.add(xw, bb).unwrap();
    let act = g.gelu(pre, true).unwrap();
    let ln = g.layer_norm(act, Some((gamma, beta)), 1e-5).unwrap();
    let logits = g.matmul(ln, w2).unwrap();
    let loss = g.cross_entropy(logits, targets_in, -1).unwrap();
    output(&mut g, loss, "loss");
    let params = [w1, b1, gamma, beta, w2];
    let gg = tessera_compiler::grad(&g, loss, &params).unwrap();
    let mut g = gg.graph;
    let mut states = Vec::new();
    for (i, (&p, &grad)) in params.iter().zip(&gg.grads).enumerate() {
        let shape = g.ty(p).shape.clone();
        let m = g.param(&format!("m{i}"), &shape, DType::F32).unwrap();
        let vv = g.param(&format!("v{i}"), &shape, DType::F32).unwrap();
        states.push(ParamState {
            param: p,
            grad,
            m,
            v: vv,
            decay: i % 2 == 0,
        });
    }
    let opt = AdamW {
        max_grad_norm: Some(1.0),
        ..AdamW::default()
    };
    let adamw_in = AdamWInputs::add(&mut g, "adamw.").unwrap();
    let ups = opt.step(&mut g, &adamw_in, &states).unwrap();
    for (i, u) in ups.iter().enumerate() {
        output(&mut g, u.param, &format!("p{i}.new"));
        output(&mut g, u.m, &format!("m{i}.new"));
        output(&mut g, u.v, &format!("v{i}.new"));
    }
    g.validate().unwrap();
    let positive: Vec<String> = (0..params.len()).map(|i| format!("v{i}")).collect();
    let positive: Vec<&str> = positive.iter().map(String::as_str).collect();
    let mut inputs = inputs_for(&g, 17, &positive);
    let ids: Vec<f64> = (0..n).map(|i| ((i * 7 + 3) % v) as f64).collect();
    inputs.insert(
        "targets".into(),
        Tensor::from_vec(&[n], DType::I32, ids).unwrap(),
    );
    inputs.extend(AdamW::default().step_values("adamw.", 1, 1e-2));
    for t in targets() {
        let plan = check_stores(&g, &t, &inputs, false);
        assert!(
            plan.kernels.iter().any(|k| written(k) > 1),
            "{:?}: no multi-output kernel in {:?}",
            t.kind,
            kernel_names(&plan)
        );
        tessera_compiler::compile_and_emit(&g, &t).unwrap_or_else(|e| panic!("{:?}: {e}", t.kind));
    }
}

/// A constant with a buffer of its own (a graph output) read by elementwise outputs: the
/// kernels compute it inline (`Expr::Const`), never load it, so the merge's read count
/// (`group_reads`) rightly leaves it out. Four outputs each reading all eight inputs
/// merge into one kernel reading exactly [`fuse::MAX_MERGED_READS`] buffers; counting the
/// constant would have refused the merge, binding it would exceed the reads.
#[test]
fn buffered_constants_are_computed_inline_by_merged_kernels() {
    let n = 1000;
    let mut g = Graph::new();
    let a: Vec<NodeId> = (0..8)
        .map(|i| g.input(&format!("a{i}"), &[n], DType::F32).unwrap())
        .collect();
    let c = g.constant(0.5, &[n], DType::F32).unwrap();
    output(&mut g, c, "c");
    for k in 0..4 {
        let mut acc = None;
        for (i, &x) in a.iter().enumerate() {
            let y = if (i + k) % 2 == 0 {
                g.mul(x, c)
            } else {
                g.add(x, c)
            }
            .unwrap();
            acc = Some(match acc {
                None => y,
                Some(s) => g.add(s, y).unwrap(),
            });
        }
        output(&mut g, acc.unwrap(), &format!("o{k}"));
    }
    g.validate().unwrap();
    let inputs = inputs_for(&g, 19, &[]);
    for t in targets() {
        let plan = check(&g, &t, &inputs);
        let merged: Vec<&TileKernel> = plan.kernels.iter().filter(|k| written(k) > 1).collect();
        for k in &merged {
            assert!(
                k.params.iter().all(|p| p.name != "c"),
                "{:?}: {} binds the constant",
                t.kind,
                k.name
            );
        }
        if t.max_storage_buffers >= 12 {
            assert_eq!(merged.len(), 1, "{:?}: {:?}", t.kind, kernel_names(&plan));
            let k = merged[0];
            assert_eq!(
                (k.params.len(), written(k)),
                (fuse::MAX_MERGED_READS + 4, 4),
                "{}",
                k.name
            );
        }
    }
}
