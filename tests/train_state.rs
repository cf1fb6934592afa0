//! Device-resident training state: [`Executable::bind_update`] makes an output replace a
//! parameter after every run, on the device.
//!
//! The graph is one step of gradient descent on `0.5 |p - target|^2`:
//! `p_new = p - lr * (p - target)`, plus `loss = sum((p - target)^2)` of the value before
//! the step. After `k` runs with `p_new -> p` bound, `p_k = target + (1 - lr)^k (p_0 -
//! target)` exactly (closed form computed in f64 on the host), and the `k`-th returned
//! loss is `(1 - lr)^(2(k-1)) sum((p_0 - target)^2)`.
//!
//! Tolerance: each f32 step rounds `p - target`, the product and the difference (3
//! roundings, relative error u = 2^-24 each, on values of magnitude <= 4); over 5 steps
//! the error is below 5 * 3 * 4 * u = 3.6e-6 absolute; the loss (a sum of 7 squares of
//! values <= 4, each with that error) is within 7 * 2 * 4 * 3.6e-6 + 7 * 16 * 8u = 2.5e-4
//! absolute. We check 1e-5 on the parameter and 5e-4 on the loss; a missing update (the
//! parameter stuck at p_0) misses by >= 0.1.

use std::collections::HashMap;
use std::sync::OnceLock;
use tessera::compiler::interp::Tensor;
use tessera::compiler::{DType, Graph};
use tessera::runtime::{AscendCpuDevice, CpuDevice, Device, RuntimeError, WgpuDevice};

const N: usize = 7;
const LR: f64 = 0.25;
const STEPS: usize = 5;

fn wgpu() -> &'static WgpuDevice {
    static DEVICE: OnceLock<Result<WgpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| WgpuDevice::new().map_err(|e| e.to_string())) {
        Ok(d) => d,
        Err(e) => panic!("no wgpu device, so the wgpu tests cannot run: {e}"),
    }
}

fn step_graph() -> Graph {
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
    g.mark_output(loss).unwrap();
    g.mark_output(p_new).unwrap();
    g
}

/// Values exactly representable in f32 so the closed form starts from the stored p_0.
fn p0() -> Vec<f64> {
    (0..N).map(|i| (i as f64 - 3.0) * 0.75).collect()
}

fn target() -> Vec<f64> {
    (0..N).map(|i| 1.0 - (i as f64) * 0.25).collect()
}

fn check_device(device: &dyn Device) {
    let mut exe = device.load(&step_graph()).unwrap();
    exe.set_param("p", &Tensor::from_vec(&[N], DType::F32, p0()).unwrap())
        .unwrap();
    exe.bind_update("p_new", "p").unwrap();
    assert_eq!(exe.fetched_outputs(), vec!["loss"]);
    let inputs = HashMap::from([
        (
            "target".to_string(),
            Tensor::from_vec(&[N], DType::F32, target()).unwrap(),
        ),
        (
            "lr".to_string(),
            Tensor::from_vec(&[], DType::F32, vec![LR]).unwrap(),
        ),
    ]);
    let (p0, t) = (p0(), target());
    let sq0: f64 = p0.iter().zip(&t).map(|(a, b)| (a - b) * (a - b)).sum();
    for k in 1..=STEPS {
        let out = exe.run(&inputs).unwrap();
        assert!(
            !out.contains_key("p_new"),
            "a bound output must not be read back"
        );
        let loss = out["loss"].data[0];
        let want = (1.0 - LR).powi(2 * (k as i32 - 1)) * sq0;
        assert!(
            (loss - want).abs() <= 5e-4,
            "{}: step {k}: loss {loss}, closed form {want}",
            device.name()
        );
    }
    let p = exe.get_param("p").unwrap();
    let decay = (1.0 - LR).powi(STEPS as i32);
    for i in 0..N {
        let want = t[i] + decay * (p0[i] - t[i]);
        assert!(
            (p.data[i] - want).abs() <= 1e-5,
            "{}: p[{i}] = {} after {STEPS} steps, closed form {want}",
            device.name(),
            p.data[i]
        );
    }
}

#[test]
fn updates_stay_on_wgpu() {
    check_device(wgpu());
}

#[test]
fn updates_stay_on_cpu_tile() {
    check_device(&CpuDevice::tile());
}

#[test]
fn updates_stay_on_cpu_reference() {
    check_device(&CpuDevice::reference());
}

/// One process run per step on the Ascend C CPU build, state passed in and out.
#[test]
fn updates_stay_on_ascend_cpu() {
    check_device(&AscendCpuDevice::new());
}

#[test]
fn bad_bindings_are_typed_errors() {
    let mut exe = CpuDevice::reference().load(&step_graph()).unwrap();
    let is_invalid =
        |r: Result<(), RuntimeError>| matches!(r, Err(RuntimeError::InvalidUpdate { .. }));
    // `loss` is [] but `p` is [7].
    assert!(is_invalid(exe.bind_update("loss", "p")));
    assert!(is_invalid(exe.bind_update("nope", "p")));
    assert!(matches!(
        exe.bind_update("p_new", "q"),
        Err(RuntimeError::UnknownParam { .. })
    ));
    exe.bind_update("p_new", "p").unwrap();
    assert!(is_invalid(exe.bind_update("p_new", "p")));
    assert_eq!(exe.updates(), &[("p_new".to_string(), "p".to_string())]);
}

#[test]
fn discarded_outputs_are_not_returned() {
    let mut exe = wgpu().load(&step_graph()).unwrap();
    exe.set_param("p", &Tensor::from_vec(&[N], DType::F32, p0()).unwrap())
        .unwrap();
    exe.discard_output("p_new").unwrap();
    let inputs = HashMap::from([
        (
            "target".to_string(),
            Tensor::from_vec(&[N], DType::F32, target()).unwrap(),
        ),
        (
            "lr".to_string(),
            Tensor::from_vec(&[], DType::F32, vec![LR]).unwrap(),
        ),
    ]);
    let out = exe.run(&inputs).unwrap();
    assert_eq!(out.keys().collect::<Vec<_>>(), vec!["loss"]);
    // Not bound: the parameter keeps its value.
    assert_eq!(exe.get_param("p").unwrap().data, p0());
}
