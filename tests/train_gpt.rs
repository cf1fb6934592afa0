//! A real training step of a tiny GPT (forward + autodiff backward + AdamW, one graph)
//! on the f64 graph interpreter, the f32 tile interpreter and wgpu.
//!
//! Checks, each independent of the trainer's own arithmetic:
//! - the first loss is the loss of a near-uniform prediction: with N(0, 0.02) weights the
//!   logits have standard deviation about 0.02 * sqrt(n_embd) = 0.08 on layer-normed
//!   rows, so the mean cross-entropy is ln(V) + O(0.08^2) = 4.174 + 0.003 for V = 65;
//!   we allow 0.05;
//! - repeated steps on one batch lower its loss (lr 1e-2: AdamW's first steps move every
//!   weight by ~lr along the sign of its gradient);
//! - the f32 devices agree with the f64 interpreter step by step within 1e-4 relative
//!   (the cross-backend criterion; f32 forward/backward of a 1-layer model
//!   differs from f64 by ~1e-6 relative on the loss, AdamW's sign-like first step keeps
//!   parameter differences at the same scale).

use std::sync::OnceLock;
use tessera::compiler::optim::AdamW;
use tessera::models::data::{Dataset, Split};
use tessera::models::gpt::GptConfig;
use tessera::runtime::{AscendCpuDevice, CpuDevice, Device, WgpuDevice};
use tessera::train::trainer::{gpt_eval_batches, gpt_inputs, gpt_training_graph};
use tessera::train::{LrSchedule, Trainer, TrainerOptions};

const STEPS: usize = 3;

fn wgpu() -> &'static WgpuDevice {
    static DEVICE: OnceLock<Result<WgpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| WgpuDevice::new().map_err(|e| e.to_string())) {
        Ok(d) => d,
        Err(e) => panic!("no wgpu device, so the wgpu tests cannot run: {e}"),
    }
}

fn data() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(|| Dataset::tiny_shakespeare().unwrap())
}

fn config() -> GptConfig {
    GptConfig {
        n_layer: 1,
        n_head: 2,
        n_embd: 16,
        block_size: 8,
        vocab_size: data().tokenizer().vocab_size(),
    }
}

/// Per-step losses and the validation loss after training, on `device`.
fn run(device: &dyn Device) -> (Vec<f64>, f64) {
    let cfg = config();
    let (b, t) = (2, 8);
    let (tg, eval) = gpt_training_graph(&cfg, b, t, &AdamW::default()).unwrap();
    let init = cfg.init_params(1234).unwrap();
    let options = TrainerOptions {
        schedule: LrSchedule::constant(1e-2),
        seed: 1,
        config: serde_json::to_value(&cfg).unwrap(),
    };
    let mut tr = Trainer::new(device, tg, &init, options)
        .unwrap()
        .with_eval_graph(device, &eval, "loss")
        .unwrap();
    let batch = data().batch(Split::Train, b, t, tr.rng_mut()).unwrap();
    let inputs = gpt_inputs(&batch);
    let losses: Vec<f64> = (0..STEPS).map(|_| tr.step(&inputs).unwrap()).collect();
    let val = gpt_eval_batches(data(), Split::Val, b, t, 2).unwrap();
    let v = tr.evaluate(&val).unwrap();
    eprintln!("{}: losses {losses:?}, val {v}", device.name());
    (losses, v)
}

fn reference() -> &'static (Vec<f64>, f64) {
    static REF: OnceLock<(Vec<f64>, f64)> = OnceLock::new();
    REF.get_or_init(|| run(&CpuDevice::reference()))
}

fn check_against_reference(d: &dyn Device) {
    let (reference, ref_val) = reference();
    let (losses, val) = run(d);
    for (k, (a, r)) in losses.iter().zip(reference).enumerate() {
        let rel = (a - r).abs() / r.abs();
        assert!(
            rel <= 1e-4,
            "{}: step {}: loss {a}, f64 reference {r} (rel {rel:.2e})",
            d.name(),
            k + 1
        );
    }
    assert!(
        (val - ref_val).abs() / ref_val <= 1e-4,
        "{}: val {val} vs {ref_val}",
        d.name()
    );
}

/// Each step is one process run of the g++-built host program.
#[test]
fn tiny_gpt_trains_alike_on_ascend_cpu() {
    check_against_reference(&AscendCpuDevice::new());
}

#[test]
fn tiny_gpt_learns_on_the_f64_interpreter() {
    let (reference, ref_val) = reference();
    let v = config().vocab_size as f64;
    assert!(
        (reference[0] - v.ln()).abs() < 0.05,
        "first loss {} vs ln(V) = {}",
        reference[0],
        v.ln()
    );
    for w in reference.windows(2) {
        assert!(w[1] < w[0], "loss did not fall: {reference:?}");
    }
    assert!(ref_val.is_finite() && (ref_val - v.ln()).abs() < 0.5);
}

#[test]
fn tiny_gpt_trains_alike_on_the_tile_interpreter() {
    check_against_reference(&CpuDevice::tile());
}

#[test]
fn tiny_gpt_trains_alike_on_wgpu() {
    check_against_reference(wgpu());
}
