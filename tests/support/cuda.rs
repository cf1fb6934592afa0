//! The CUDA device for tests (issue 6), and how a test without one reports itself.
//!
//! Rust's test harness has no "skipped" outcome, so a CUDA test that finds no usable GPU
//! (no `cuda` feature in this build, no driver library, no device) does two things instead
//! of passing silently:
//! - it writes `SKIPPED: <test> (no CUDA driver: <reason>)` straight to the process's
//!   stderr (not through `eprintln!`, which the harness captures and hides for passing
//!   tests), so the line shows in every `cargo test` log;
//! - with `TESSERA_REQUIRE_CUDA=1` in the environment (set by `scripts/gpu-check.sh`), it
//!   fails instead: on a machine that is meant to have a GPU, a skip is an error.
//!
//! An error that is a mistake rather than a missing GPU (a `TESSERA_CUDA_DEVICE` that is
//! not a device ordinal: `RuntimeError::InvalidSetting`) fails the test in any case.
#![allow(dead_code)]

use std::io::Write as _;

/// When this environment variable is `1`, a missing CUDA device fails the test.
pub const REQUIRE_ENV: &str = "TESSERA_REQUIRE_CUDA";

/// Whether a missing CUDA device must fail the test ([`REQUIRE_ENV`]).
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Reports `test` as skipped for `reason` (see the module docs); panics instead when
/// [`REQUIRE_ENV`] asks for a GPU.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED: {test} (no CUDA driver: {reason})");
    assert!(!required(), "{line}, but {REQUIRE_ENV}=1");
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// What a test does when `CudaDevice::new` fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// This machine has no usable GPU: report the test as skipped for this reason.
    Skip(String),
    /// Something to fix (e.g. a `TESSERA_CUDA_DEVICE` that is not an ordinal, or an
    /// unexpected error): fail the test with this message, even without
    /// [`REQUIRE_ENV`].
    Fail(String),
}

/// Sorts an error of `CudaDevice::new`: no driver or device
/// ([`tessera::runtime::RuntimeError::NoCudaDriver`]), a GPU older than sm_80
/// ([`tessera::runtime::RuntimeError::Unavailable`]) or a driver failure while opening it
/// ([`tessera::runtime::RuntimeError::Cuda`]) is a skip; anything else, such as an invalid
/// setting, a failure.
pub fn outcome(e: &tessera::runtime::RuntimeError) -> Outcome {
    use tessera::runtime::RuntimeError as E;
    match e {
        E::NoCudaDriver { reason } | E::Unavailable(reason) => Outcome::Skip(reason.clone()),
        E::Cuda { .. } => Outcome::Skip(e.to_string()),
        other => Outcome::Fail(format!("CudaDevice::new failed: {other}")),
    }
}

/// The shared CUDA device, or `None` after reporting `test` as skipped; panics when the
/// error is one to fix ([`outcome`]).
#[cfg(feature = "cuda")]
pub fn device(test: &str) -> Option<&'static tessera::runtime::CudaDevice> {
    use std::sync::OnceLock;
    use tessera::runtime::CudaDevice;
    static DEVICE: OnceLock<Result<CudaDevice, Outcome>> = OnceLock::new();
    let found = DEVICE.get_or_init(|| CudaDevice::new().map_err(|e| outcome(&e)));
    match found {
        Ok(d) => Some(d),
        Err(Outcome::Skip(reason)) => {
            skip(test, reason);
            None
        }
        Err(Outcome::Fail(message)) => panic!("{test}: {message}"),
    }
}

/// This build has no CUDA device: reports `test` as skipped and returns `None`.
#[cfg(not(feature = "cuda"))]
pub fn device(test: &str) -> Option<std::convert::Infallible> {
    skip(
        test,
        "this build has no CUDA device (built without the `cuda` feature: \
         `cargo test --features cuda`)",
    );
    None
}
