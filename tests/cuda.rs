//! The CUDA device (issue 6).
//!
//! Without a GPU (or without the `cuda` feature): `CudaDevice::new()` returns a typed
//! error, never a panic, and every test that needs the GPU reports itself as
//! `SKIPPED: <test> (no CUDA driver: <reason>)` on stderr (a failure under
//! `TESSERA_REQUIRE_CUDA=1`; see `tests/support/cuda.rs`). A `TESSERA_CUDA_DEVICE` that
//! is not a device ordinal fails those tests instead of skipping them.
//!
//! With a GPU:
//! - the MLP block's forward matches the f64 interpreter (tolerance: `y` is a sum of
//!   `d_hidden` tanh terms; f32 accumulation over 16 terms of magnitude <= 1 stays below
//!   16 * 2 * 2^-24 ~ 2e-6, the PTX tanh below 5e-7 relative per term: 1e-5 absolute);
//! - three training steps of a tiny GPT (forward, autodiff backward, AdamW; parameters and
//!   moments kept on the device via `bind_update`) give the f64 interpreter's per-step
//!   losses and validation loss within 1e-4 relative (the cross-backend criterion of
//!   `tests/train_gpt.rs`, met there by wgpu, the tile interpreter and the Ascend C build);
//! - a checkpoint saved after two steps on the GPU and loaded into a fresh GPU trainer
//!   continues with the losses of the uninterrupted run (within 2e-5 relative, as in
//!   `tests/train_trainer.rs`: scatter-add gradients may sum in another order).

#[path = "support/cuda.rs"]
mod cuda_support;

/// Without a driver the typed error; with one, a device. Never a panic.
#[test]
fn cuda_device_new_is_a_device_or_a_typed_error() {
    #[cfg(feature = "cuda")]
    {
        use tessera::runtime::{CudaDevice, Device, DeviceKind, RuntimeError};
        match CudaDevice::new() {
            Ok(d) => {
                assert_eq!(d.kind(), DeviceKind::Cuda);
                assert!(d.name().starts_with("cuda: "), "{}", d.name());
                eprintln!("CUDA device: {}", d.name());
            }
            Err(e @ RuntimeError::NoCudaDriver { .. }) => {
                let msg = e.to_string();
                assert!(msg.starts_with("no CUDA driver: "), "{msg}");
                let RuntimeError::NoCudaDriver { reason } = e else {
                    unreachable!()
                };
                assert!(!reason.is_empty());
                cuda_support::skip("cuda_device_new_is_a_device_or_a_typed_error", &reason);
            }
            Err(RuntimeError::Unavailable(reason)) => {
                assert!(reason.contains("sm_80"), "{reason}");
                cuda_support::skip("cuda_device_new_is_a_device_or_a_typed_error", &reason);
            }
            Err(e) => panic!("CudaDevice::new: unexpected error kind: {e:?}"),
        }
    }
    #[cfg(not(feature = "cuda"))]
    let _ = cuda_support::device("cuda_device_new_is_a_device_or_a_typed_error");
}

/// A mistake in the setup is not a missing GPU: `CudaDevice::new`'s invalid-setting error
/// fails a CUDA test (even without `TESSERA_REQUIRE_CUDA=1`) while the no-driver, old-GPU
/// and driver-failure errors skip it.
#[test]
fn a_bad_device_setting_fails_while_a_missing_gpu_skips() {
    use cuda_support::{outcome, Outcome};
    use tessera::runtime::RuntimeError;
    let bad = RuntimeError::InvalidSetting {
        setting: "TESSERA_CUDA_DEVICE",
        value: "abc".into(),
        reason: "not a device ordinal".into(),
    };
    match outcome(&bad) {
        Outcome::Fail(message) => {
            assert!(message.contains("TESSERA_CUDA_DEVICE=\"abc\""), "{message}")
        }
        other => panic!("an invalid setting must fail, got {other:?}"),
    }
    let no_driver = RuntimeError::NoCudaDriver {
        reason: "no libcuda".into(),
    };
    assert_eq!(outcome(&no_driver), Outcome::Skip("no libcuda".into()));
    let old = RuntimeError::Unavailable("sm_75: Tessera's PTX needs sm_80".into());
    assert!(matches!(outcome(&old), Outcome::Skip(r) if r.contains("sm_80")));
    let busy = RuntimeError::Cuda {
        during: "creating the CUDA context".into(),
        message: "CUDA_ERROR_DEVICE_UNAVAILABLE".into(),
    };
    assert!(matches!(outcome(&busy), Outcome::Skip(r) if r.contains("context")));
    let other = RuntimeError::ParamNotSet { name: "w".into() };
    assert!(matches!(outcome(&other), Outcome::Fail(_)));
}

/// End to end: this test binary rerun on one GPU test with `TESSERA_CUDA_DEVICE=abc` (and
/// without `TESSERA_REQUIRE_CUDA`, so a skip would pass) fails, naming the setting, on a
/// machine with or without a GPU (the setting is refused before the driver is touched).
#[cfg(feature = "cuda")]
#[test]
fn a_typo_in_tessera_cuda_device_fails_the_gpu_tests() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args(["mlp_forward_matches_the_interpreter_on_cuda", "--exact"])
        .env("TESSERA_CUDA_DEVICE", "abc")
        .env_remove(cuda_support::REQUIRE_ENV)
        .output()
        .expect("rerunning the test binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "the rerun passed:\n{text}");
    assert!(text.contains("1 failed"), "{text}");
    assert!(
        text.contains("invalid setting TESSERA_CUDA_DEVICE=\"abc\""),
        "{text}"
    );
    assert!(!text.contains("SKIPPED:"), "{text}");
}

#[cfg(feature = "cuda")]
mod gpu {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    use tessera::compiler::interp::run_graph;
    use tessera::compiler::optim::AdamW;
    use tessera::compiler::DType;
    use tessera::models::data::{Dataset, Split};
    use tessera::models::gpt::GptConfig;
    use tessera::runtime::{CpuDevice, Device, Tensor};
    use tessera::train::trainer::{gpt_eval_batches, gpt_inputs, gpt_training_graph};
    use tessera::train::{LrSchedule, Trainer, TrainerOptions};

    pub const STEPS: usize = 3;

    fn data() -> &'static Dataset {
        static DATA: OnceLock<Dataset> = OnceLock::new();
        DATA.get_or_init(|| Dataset::tiny_shakespeare().expect("embedded text"))
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

    fn options() -> TrainerOptions {
        TrainerOptions {
            schedule: LrSchedule::constant(1e-2),
            seed: 1,
            config: serde_json::to_value(config()).expect("config json"),
        }
    }

    fn trainer(device: &dyn Device) -> Trainer {
        let cfg = config();
        let (tg, eval) = gpt_training_graph(&cfg, 2, 8, &AdamW::default()).expect("graph");
        let init = cfg.init_params(1234).expect("init");
        Trainer::new(device, tg, &init, options())
            .expect("trainer")
            .with_eval_graph(device, &eval, "loss")
            .expect("eval graph")
    }

    fn batch(tr: &mut Trainer) -> HashMap<String, Tensor> {
        gpt_inputs(
            &data()
                .batch(Split::Train, 2, 8, tr.rng_mut())
                .expect("batch"),
        )
    }

    /// Per-step losses and the validation loss after [`STEPS`] steps on `device`.
    pub fn train(device: &dyn Device) -> (Vec<f64>, f64) {
        let mut tr = trainer(device);
        let inputs = batch(&mut tr);
        let losses: Vec<f64> = (0..STEPS)
            .map(|_| tr.step(&inputs).expect("step"))
            .collect();
        let val = gpt_eval_batches(data(), Split::Val, 2, 8, 2).expect("val batches");
        let v = tr.evaluate(&val).expect("evaluate");
        eprintln!("{}: losses {losses:?}, val {v}", device.name());
        (losses, v)
    }

    pub fn reference() -> (Vec<f64>, f64) {
        train(&CpuDevice::reference())
    }

    /// Losses of steps 3.. after saving at step 2 and resuming on a fresh trainer, and
    /// those of the uninterrupted run.
    pub fn resumed(device: &dyn Device) -> (Vec<f64>, Vec<f64>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gpt.safetensors");
        let mut whole = trainer(device);
        let b = batch(&mut whole);
        let all: Vec<f64> = (0..4).map(|_| whole.step(&b).expect("step")).collect();
        let mut first = trainer(device);
        let _ = batch(&mut first);
        for _ in 0..2 {
            first.step(&b).expect("step");
        }
        first.save(&path).expect("save");
        let mut second = trainer(device);
        second.load(&path).expect("load");
        assert_eq!(second.step_count(), 2);
        let after: Vec<f64> = (0..2).map(|_| second.step(&b).expect("step")).collect();
        (after, all[2..].to_vec())
    }

    /// Max |device - f64 interpreter| of the MLP block's output.
    pub fn mlp_error(device: &dyn Device) -> f64 {
        let graph = tessera::models::mlp::mlp_block(4, 8, 16).expect("mlp");
        let mut exe = device.load(&graph).expect("load");
        let w = Tensor::random(&[8, 16], DType::F32, 1);
        let b = Tensor::random(&[16], DType::F32, 2);
        let x = Tensor::random(&[4, 8], DType::F32, 3);
        exe.set_param("w", &w).expect("w");
        exe.set_param("b", &b).expect("b");
        let inputs = HashMap::from([("x".to_string(), x.clone())]);
        let got = exe.run(&inputs).expect("run");
        let all = HashMap::from([
            ("x".to_string(), x),
            ("w".to_string(), w),
            ("b".to_string(), b),
        ]);
        let want = run_graph(&graph, &all).expect("reference");
        let (g, r) = (&got["y"], &want["y"]);
        assert_eq!(g.shape, r.shape);
        g.data
            .iter()
            .zip(&r.data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }
}

#[test]
fn mlp_forward_matches_the_interpreter_on_cuda() {
    #[cfg(feature = "cuda")]
    if let Some(d) = cuda_support::device("mlp_forward_matches_the_interpreter_on_cuda") {
        let err = gpu::mlp_error(d);
        eprintln!("mlp on cuda: max abs error {err:.3e}");
        assert!(err <= 1e-5, "max abs error {err:e}");
    }
    #[cfg(not(feature = "cuda"))]
    let _ = cuda_support::device("mlp_forward_matches_the_interpreter_on_cuda");
}

#[test]
fn gpt_training_steps_match_the_interpreter_on_cuda() {
    #[cfg(feature = "cuda")]
    if let Some(d) = cuda_support::device("gpt_training_steps_match_the_interpreter_on_cuda") {
        let (reference, ref_val) = gpu::reference();
        let (losses, val) = gpu::train(d);
        assert_eq!(losses.len(), gpu::STEPS);
        for (k, (a, r)) in losses.iter().zip(&reference).enumerate() {
            let rel = (a - r).abs() / r.abs();
            assert!(
                rel <= 1e-4,
                "step {}: cuda loss {a}, f64 reference {r} (rel {rel:.2e})",
                k + 1
            );
        }
        let rel = (val - ref_val).abs() / ref_val.abs();
        assert!(rel <= 1e-4, "val {val} vs {ref_val} (rel {rel:.2e})");
    }
    #[cfg(not(feature = "cuda"))]
    let _ = cuda_support::device("gpt_training_steps_match_the_interpreter_on_cuda");
}

#[test]
fn gpt_checkpoint_resumes_on_cuda() {
    #[cfg(feature = "cuda")]
    if let Some(d) = cuda_support::device("gpt_checkpoint_resumes_on_cuda") {
        let (after, want) = gpu::resumed(d);
        for (k, (a, w)) in after.iter().zip(&want).enumerate() {
            assert!(
                (a - w).abs() / w.abs() <= 2e-5,
                "step {}: resumed {a}, uninterrupted {w}",
                k + 3
            );
        }
    }
    #[cfg(not(feature = "cuda"))]
    let _ = cuda_support::device("gpt_checkpoint_resumes_on_cuda");
}
