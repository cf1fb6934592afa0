//! [`Executable::profile`]: one timing per launch of the plan, in plan order, under the
//! plan's kernel names; a profiled run is a real run (bound parameter updates applied);
//! devices without per-launch timing refuse with [`RuntimeError::Unsupported`].
//!
//! The graph is one gradient-descent step `p_new = p - lr * (p - target)` with
//! `p_new -> p` bound, plus a matmul and a loss, so the plan has several kernels. After
//! two profiled runs and one normal run, `p = target + (1 - lr)^3 (p_0 - target)`
//! (closed form in f64). Tolerance: each f32 step rounds three times on values <= 4
//! (error <= 3 * 4 * 2^-24 per step), far below the 1e-5 checked; a profile that skipped
//! the update would leave `p` off by >= 0.1.

use std::collections::HashMap;
use std::sync::OnceLock;
use tessera::compiler::interp::Tensor;
use tessera::compiler::{DType, Graph};
use tessera::runtime::{CpuDevice, Device, RuntimeError, WgpuDevice};

const N: usize = 8;
const LR: f64 = 0.25;

fn wgpu() -> &'static WgpuDevice {
    static DEVICE: OnceLock<Result<WgpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| WgpuDevice::new().map_err(|e| e.to_string())) {
        Ok(d) => d,
        Err(e) => panic!("no wgpu device, so the wgpu tests cannot run: {e}"),
    }
}

fn graph() -> Graph {
    let mut g = Graph::new();
    let p = g.param("p", &[N], DType::F32).unwrap();
    let target = g.input("target", &[N], DType::F32).unwrap();
    let lr = g.input("lr", &[], DType::F32).unwrap();
    let d = g.sub(p, target).unwrap();
    let step = g.mul(d, lr).unwrap();
    let p_new = g.sub(p, step).unwrap();
    g.set_name(p_new, "p_new").unwrap();
    let sq = g.mul(d, d).unwrap();
    let loss = g.sum(sq, 0, false).unwrap();
    g.set_name(loss, "loss").unwrap();
    // A matmul on its own inputs, so the plan has a matmul kernel too.
    let a = g.input("a", &[16, 8], DType::F32).unwrap();
    let b = g.input("b", &[8, 16], DType::F32).unwrap();
    let c = g.matmul(a, b).unwrap();
    g.set_name(c, "c").unwrap();
    g.mark_output(loss).unwrap();
    g.mark_output(p_new).unwrap();
    g.mark_output(c).unwrap();
    g
}

fn p0() -> Vec<f64> {
    (0..N).map(|i| (i as f64 - 3.0) * 0.75).collect()
}

fn target() -> Vec<f64> {
    (0..N).map(|i| 1.0 - (i as f64) * 0.25).collect()
}

fn inputs() -> HashMap<String, Tensor> {
    let t = |shape: &[usize], v: Vec<f64>| Tensor::from_vec(shape, DType::F32, v).unwrap();
    HashMap::from([
        ("target".to_string(), t(&[N], target())),
        ("lr".to_string(), t(&[], vec![LR])),
        (
            "a".to_string(),
            t(&[16, 8], (0..128).map(|i| (i % 7) as f64 * 0.5).collect()),
        ),
        (
            "b".to_string(),
            t(&[8, 16], (0..128).map(|i| (i % 5) as f64 - 2.0).collect()),
        ),
    ])
}

#[test]
fn wgpu_profiles_every_launch_and_applies_updates() {
    let mut exe = wgpu().load(&graph()).unwrap();
    exe.set_param("p", &Tensor::from_vec(&[N], DType::F32, p0()).unwrap())
        .unwrap();
    exe.bind_update("p_new", "p").unwrap();
    let inputs = inputs();
    let plan = exe.plan().expect("wgpu compiles a plan").clone();
    assert!(plan.kernels.len() >= 2, "{} kernels", plan.kernels.len());
    for _ in 0..2 {
        let prof = exe.profile(&inputs).unwrap();
        let expected: Vec<(usize, usize, &str)> = plan
            .launches
            .iter()
            .enumerate()
            .filter(|(_, l)| !plan.kernels[l.kernel].grid.contains(&0))
            .map(|(i, l)| (i, l.kernel, plan.kernels[l.kernel].name.as_str()))
            .collect();
        let got: Vec<(usize, usize, &str)> = prof
            .launches
            .iter()
            .map(|l| (l.launch, l.kernel, l.name.as_str()))
            .collect();
        assert_eq!(got, expected);
        for l in &prof.launches {
            assert!(l.seconds > 0.0 && l.seconds.is_finite(), "{l:?}");
            assert!(l.threads > 0, "{l:?}");
        }
        // Grouping by kernel keeps every launch and sorts by time.
        let by = prof.by_kernel();
        assert_eq!(
            by.iter().map(|k| k.launches).sum::<usize>(),
            prof.launches.len()
        );
        assert!(by.windows(2).all(|w| w[0].seconds >= w[1].seconds));
        assert!((prof.launch_seconds() - by.iter().map(|k| k.seconds).sum::<f64>()).abs() < 1e-9);
        assert!(!prof.load_phases.is_empty());
    }
    // A normal run after the two profiled ones: the third update.
    exe.run(&inputs).unwrap();
    let p = exe.get_param("p").unwrap();
    let f = (1.0 - LR).powi(3);
    for ((got, p0), t) in p.data.iter().zip(p0()).zip(target()) {
        let want = t + f * (p0 - t);
        assert!((got - want).abs() < 1e-5, "p = {got}, expected {want}");
    }
}

#[test]
fn profiling_checks_inputs_like_run() {
    let mut exe = wgpu().load(&graph()).unwrap();
    exe.set_param("p", &Tensor::from_vec(&[N], DType::F32, p0()).unwrap())
        .unwrap();
    let mut inputs = inputs();
    inputs.remove("lr");
    match exe.profile(&inputs) {
        Err(RuntimeError::MissingInput { name }) => assert_eq!(name, "lr"),
        other => panic!("expected MissingInput, got {other:?}"),
    }
}

#[test]
fn reference_device_does_not_profile() {
    let dev = CpuDevice::reference();
    let mut exe = dev.load(&graph()).unwrap();
    exe.set_param("p", &Tensor::from_vec(&[N], DType::F32, p0()).unwrap())
        .unwrap();
    match exe.profile(&inputs()) {
        Err(RuntimeError::Unsupported { device, .. }) => assert_eq!(device, dev.name()),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
