//! The `cuda` backend of the conformance table (issue 6): every case compiled for the
//! CUDA device's PTX target, loaded through the CUDA driver and run on the GPU, compared
//! with the f64 interpreter under the same tolerances as every other backend.
//!
//! Without a usable GPU (or in a build without the `cuda` feature) the test reports
//! `SKIPPED: conformance_cuda (no CUDA driver: <reason>)` on stderr and passes, unless
//! `TESSERA_REQUIRE_CUDA=1` (then it fails): see `tests/support/cuda.rs`.

use super::cuda_support;

/// Runs the whole table on the CUDA device, or reports the skip.
pub(super) fn run() {
    #[cfg(feature = "cuda")]
    if let Some(device) = cuda_support::device("conformance_cuda") {
        use tessera::runtime::Device as _;
        println!("cuda device: {}", device.name());
        // Cases are independent and each executable has its own stream: one worker per
        // core (at most 8) overlaps the host-side compilation and reference runs.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        super::conformance("cuda", threads, &|c, i| super::run_on_device(device, c, i));
    }
    #[cfg(not(feature = "cuda"))]
    let _ = cuda_support::device("conformance_cuda");
}
