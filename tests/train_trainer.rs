//! The trainer on a problem with an independent answer: linear regression
//! `pred = x w + b`, loss `mean((pred - y)^2)`, trained with AdamW (weight decay on `w`
//! only), compared step by step with the same algorithm written out in f64 on the host
//! (PyTorch's AdamW formulas). The gradients come once from a hand-written gradient graph
//! ([`training_graph_from_grads`]) and once from reverse-mode autodiff
//! ([`build_training_graph`]).
//!
//! Tolerances: the devices store parameters and moments in f32 (relative rounding
//! u = 2^-24 per stored value per step) and compute the loss in f32 over 16 rows of 3
//! products; the host keeps f64. After 6 steps the parameters differ by a few ulp of
//! their magnitude (< 4), i.e. < 1e-5 absolute, and the loss (about 10 down to 1)
//! relatively by < 1e-5. We check 2e-5 relative on the loss and 1e-5 absolute on the
//! parameters; the learning rate 0.05 moves the parameters by ~0.05 per step, so a step
//! skipped or applied twice misses by 1000x the tolerance.

use std::collections::HashMap;
use std::sync::OnceLock;
use tessera::compiler::interp::Tensor;
use tessera::compiler::optim::AdamW;
use tessera::compiler::{DType, Graph, NodeId};
use tessera::runtime::{AscendCpuDevice, CpuDevice, Device, WgpuDevice};
use tessera::train::trainer::{build_training_graph, training_graph_from_grads, TrainGraph};
use tessera::train::{LrSchedule, Trainer, TrainerOptions};

const N: usize = 16;
const D: usize = 3;
const STEPS: usize = 6;
const LR: f64 = 0.05;

fn wgpu() -> &'static WgpuDevice {
    static DEVICE: OnceLock<Result<WgpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| WgpuDevice::new().map_err(|e| e.to_string())) {
        Ok(d) => d,
        Err(e) => panic!("no wgpu device, so the wgpu tests cannot run: {e}"),
    }
}

fn adamw() -> AdamW {
    AdamW {
        weight_decay: 0.1,
        ..AdamW::default()
    }
}

/// Data exactly representable in f32: x in multiples of 1/8, y = x (1, -2, 0.5) + 3 with
/// a small deterministic "noise" in multiples of 1/16.
fn data() -> (Vec<f64>, Vec<f64>) {
    let mut x = Vec::with_capacity(N * D);
    let mut y = Vec::with_capacity(N);
    for i in 0..N {
        let row: Vec<f64> = (0..D)
            .map(|j| (((i * 7 + j * 5) % 17) as f64 - 8.0) / 8.0)
            .collect();
        let noise = ((i * 3) % 5) as f64 / 16.0 - 0.125;
        y.push(row[0] - 2.0 * row[1] + 0.5 * row[2] + 3.0 + noise);
        x.extend(row);
    }
    (x, y)
}

/// Forward graph: returns (graph, loss, w, b, diff) with diff = pred - y as [N, 1].
fn forward() -> (Graph, NodeId, NodeId, NodeId, NodeId) {
    let mut g = Graph::new();
    let x = g.input("x", &[N, D], DType::F32).unwrap();
    let y = g.input("y", &[N, 1], DType::F32).unwrap();
    let w = g.param("w", &[D, 1], DType::F32).unwrap();
    let b = g.param("b", &[1], DType::F32).unwrap();
    let xw = g.matmul(x, w).unwrap();
    let pred = g.add(xw, b).unwrap();
    let diff = g.sub(pred, y).unwrap();
    let flat = g.reshape(diff, &[N]).unwrap();
    let sq = g.mul(flat, flat).unwrap();
    let loss = g.mean(sq, 0, false).unwrap();
    g.set_name(loss, "loss").unwrap();
    (g, loss, w, b, diff)
}

fn hand_written() -> TrainGraph {
    let (mut g, loss, w, b, diff) = forward();
    // d loss / d pred = 2 diff / N; grad w = x^T r, grad b = sum(r).
    let x = g.find("x").unwrap();
    let k = g.constant(2.0 / N as f64, &[], DType::F32).unwrap();
    let r = g.mul(diff, k).unwrap();
    let gw = g.matmul_t(x, r, true, false).unwrap();
    let rf = g.reshape(r, &[N]).unwrap();
    let gb = g.sum(rf, 0, true).unwrap();
    training_graph_from_grads(&g, loss, &[(w, gw, true), (b, gb, false)], &adamw()).unwrap()
}

fn by_autodiff() -> TrainGraph {
    let (g, loss, _, _, _) = forward();
    build_training_graph(
        &g,
        loss,
        &[("w".to_string(), true), ("b".to_string(), false)],
        &adamw(),
    )
    .unwrap()
}

fn init() -> HashMap<String, Tensor> {
    HashMap::from([
        (
            "w".to_string(),
            Tensor::from_vec(&[D, 1], DType::F32, vec![0.5, 0.25, -0.5]).unwrap(),
        ),
        (
            "b".to_string(),
            Tensor::from_vec(&[1], DType::F32, vec![0.0]).unwrap(),
        ),
    ])
}

fn batch() -> HashMap<String, Tensor> {
    let (x, y) = data();
    HashMap::from([
        (
            "x".to_string(),
            Tensor::from_vec(&[N, D], DType::F32, x).unwrap(),
        ),
        (
            "y".to_string(),
            Tensor::from_vec(&[N, 1], DType::F32, y).unwrap(),
        ),
    ])
}

/// The host reference: losses of each step and the final (w, b).
fn reference() -> (Vec<f64>, Vec<f64>) {
    let (x, y) = data();
    let opt = adamw();
    let mut p = vec![0.5, 0.25, -0.5, 0.0]; // w0, w1, w2, b
    let decay = [true, true, true, false];
    let (mut m, mut v) = (vec![0.0; 4], vec![0.0; 4]);
    let mut losses = Vec::new();
    for t in 1..=STEPS {
        let mut grad = [0.0; 4];
        let mut loss = 0.0;
        for i in 0..N {
            let pred: f64 = (0..D).map(|j| x[i * D + j] * p[j]).sum::<f64>() + p[3];
            let d = pred - y[i];
            loss += d * d / N as f64;
            for j in 0..D {
                grad[j] += 2.0 * d * x[i * D + j] / N as f64;
            }
            grad[3] += 2.0 * d / N as f64;
        }
        losses.push(loss);
        let bc1 = 1.0 / (1.0 - opt.beta1.powi(t as i32));
        let bc2 = 1.0 / (1.0 - opt.beta2.powi(t as i32));
        for k in 0..4 {
            m[k] = opt.beta1 * m[k] + (1.0 - opt.beta1) * grad[k];
            v[k] = opt.beta2 * v[k] + (1.0 - opt.beta2) * grad[k] * grad[k];
            let wd = if decay[k] { opt.weight_decay } else { 0.0 };
            p[k] = p[k] * (1.0 - LR * wd) - LR * (m[k] * bc1) / ((v[k] * bc2).sqrt() + opt.eps);
        }
    }
    (losses, p)
}

fn options() -> TrainerOptions {
    TrainerOptions {
        schedule: LrSchedule::constant(LR),
        seed: 7,
        config: serde_json::json!({"model": "linear", "d": D}),
    }
}

fn check(device: &dyn Device, tg: TrainGraph) {
    let mut tr = Trainer::new(device, tg, &init(), options()).unwrap();
    let (want_losses, want_p) = reference();
    let b = batch();
    for (k, want) in want_losses.iter().enumerate() {
        let loss = tr.step(&b).unwrap();
        let rel = (loss - want).abs() / want.abs();
        assert!(
            rel <= 2e-5,
            "{}: step {}: loss {loss}, reference {want} (rel {rel:.2e})",
            device.name(),
            k + 1
        );
    }
    assert_eq!(tr.step_count(), STEPS as u64);
    let p = tr.params().unwrap();
    let got: Vec<f64> = p["w"].data.iter().chain(&p["b"].data).copied().collect();
    for (k, (g, w)) in got.iter().zip(&want_p).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5,
            "{}: parameter {k} = {g}, reference {w}",
            device.name()
        );
    }
    // The loss fell.
    assert!(tr.losses().last().unwrap().1 < tr.losses()[0].1);
    let series = tr.loss_series("train");
    assert_eq!(series.points.len(), STEPS);
    assert_eq!(series.points[0].0, 1.0);
}

#[test]
fn hand_written_gradients_on_cpu_reference() {
    check(&CpuDevice::reference(), hand_written());
}

#[test]
fn hand_written_gradients_on_cpu_tile() {
    check(&CpuDevice::tile(), hand_written());
}

#[test]
fn hand_written_gradients_on_wgpu() {
    check(wgpu(), hand_written());
}

#[test]
fn hand_written_gradients_on_ascend_cpu() {
    check(&AscendCpuDevice::new(), hand_written());
}

#[test]
fn autodiff_gradients_on_cpu_reference() {
    check(&CpuDevice::reference(), by_autodiff());
}

#[test]
fn autodiff_gradients_on_wgpu() {
    check(wgpu(), by_autodiff());
}

/// Save after 3 steps (on wgpu), resume on another device for 3 more: the losses equal
/// those of 6 uninterrupted steps there; a checkpoint of another model is refused.
#[test]
fn checkpoint_resumes_on_another_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("linear.safetensors");
    let b = batch();
    let mut first = Trainer::new(wgpu(), hand_written(), &init(), options()).unwrap();
    for _ in 0..3 {
        first.step(&b).unwrap();
    }
    // Advance the data RNG so its state is not the seed's.
    let drawn = first.rng_mut().next_u64();
    first.save(&path).unwrap();

    let cpu = CpuDevice::reference();
    let mut whole = Trainer::new(&cpu, hand_written(), &init(), options()).unwrap();
    let all: Vec<f64> = (0..STEPS).map(|_| whole.step(&b).unwrap()).collect();

    let mut resumed = Trainer::new(&cpu, hand_written(), &init(), options()).unwrap();
    resumed.load(&path).unwrap();
    assert_eq!(resumed.step_count(), 3);
    let mut fresh = Trainer::new(&cpu, hand_written(), &init(), options()).unwrap();
    assert_eq!(fresh.rng_mut().next_u64(), drawn, "same seed, same stream");
    let after = resumed.rng_mut().next_u64();
    assert_eq!(
        after,
        fresh.rng_mut().next_u64(),
        "the RNG resumes where it was saved"
    );
    for (k, want) in all.iter().enumerate().skip(3) {
        let got = resumed.step(&b).unwrap();
        // Both f32 paths from the same f32 state: same tolerance as against the host.
        assert!(
            (got - want).abs() / want <= 2e-5,
            "step {}: resumed {got}, uninterrupted {want}",
            k + 1
        );
    }

    // Another model's config is refused; so is a checkpoint with different tensors.
    let mut other = options();
    other.config = serde_json::json!({"model": "other"});
    let mut tr = Trainer::new(&cpu, hand_written(), &init(), other).unwrap();
    assert!(tr.load(&path).is_err());
    let mut ck = tessera::train::Checkpoint::load(&path).unwrap();
    ck.tensors.remove("adamw.v/b");
    let msg = resumed.restore(&ck).unwrap_err().to_string();
    assert!(msg.contains("adamw.v/b"), "{msg}");
}

/// A trainer built from an executable loaded separately ([`Trainer::with_executable`])
/// whose odd steps are profiled ([`Trainer::profile_step`]) trains exactly like
/// [`check`]'s: the profiled steps are real steps (the plain steps' losses and the final
/// parameters match the host reference), each profile times the plan's launches, and
/// only the plain steps' losses are recorded.
#[test]
fn profiled_steps_are_real_steps() {
    let tg = hand_written();
    let exe = wgpu().load(&tg.graph).unwrap();
    let launches = exe.plan().map(|p| p.launches.len()).unwrap();
    let mut tr = Trainer::with_executable(exe, tg, &init(), options()).unwrap();
    let (want_losses, want_p) = reference();
    let b = batch();
    for (k, want) in want_losses.iter().enumerate() {
        if k % 2 == 0 {
            let profile = tr.profile_step(&b).unwrap();
            assert!(!profile.launches.is_empty() && profile.launches.len() <= launches);
            assert!(profile.launch_seconds() > 0.0);
        } else {
            let loss = tr.step(&b).unwrap();
            let rel = (loss - want).abs() / want.abs();
            assert!(rel <= 2e-5, "step {}: loss {loss}, reference {want}", k + 1);
        }
    }
    assert_eq!(tr.step_count(), STEPS as u64);
    let steps: Vec<u64> = tr.losses().iter().map(|(s, _)| *s).collect();
    assert_eq!(steps, vec![2, 4, 6]);
    let p = tr.params().unwrap();
    let got: Vec<f64> = p["w"].data.iter().chain(&p["b"].data).copied().collect();
    for (k, (g, w)) in got.iter().zip(&want_p).enumerate() {
        assert!((g - w).abs() <= 1e-5, "parameter {k} = {g}, reference {w}");
    }
    // A device that cannot time launches refuses, and the step is not taken.
    let cpu = CpuDevice::reference();
    let mut on_cpu = Trainer::new(&cpu, hand_written(), &init(), options()).unwrap();
    assert!(on_cpu.profile_step(&b).is_err());
    assert_eq!(on_cpu.step_count(), 0);
}

#[test]
fn gradients_that_are_not_nodes_of_the_graph_are_refused() {
    let (g, loss, w, _, _) = forward();
    let err = training_graph_from_grads(&g, loss, &[(w, NodeId(999_999), true)], &adamw())
        .expect_err("a gradient id outside the graph");
    assert!(err.to_string().contains("not a node of the graph"), "{err}");
}
