//! Test support shared by `tests/conformance.rs` and `tests/tile_ops_wgpu.rs` (included in
//! both with `#[path]`): a wgpu device for each test thread.
//!
//! lavapipe compiles a kernel's LLVM code at its first dispatch, on the one queue thread of
//! the device it runs on, so threads sharing a device wait in line for each other's
//! compiles. With Mesa's shader cache empty (a fresh machine, as in CI) those compiles are
//! most of the wgpu tests' time; a device per thread spreads them over the cores.
//! Measured on 2 cores, one device against one per thread: `conformance_wgpu`'s 4
//! `matmul/ta*` cases 56.1 -> 27.6 s with an empty cache (`MESA_SHADER_CACHE_DIR` set to
//! an empty folder), its whole table 152 -> 81 s with a full one; `tile_ops_wgpu`
//! 226 -> 176 s with an empty cache. (`conformance_wgpu` alone took 2066 s on an empty
//! cache with one device.)

use std::cell::OnceCell;
use tessera::runtime::WgpuDevice;

/// The calling thread's own wgpu device, made on its first use and kept for the process;
/// `what` names the tests in the panic when there is no device.
pub fn device_of_this_thread(what: &str) -> &'static WgpuDevice {
    thread_local! {
        static DEVICE: OnceCell<&'static WgpuDevice> = const { OnceCell::new() };
    }
    DEVICE.with(|d| {
        *d.get_or_init(|| match WgpuDevice::new() {
            Ok(device) => Box::leak(Box::new(device)),
            Err(e) => panic!("no wgpu device, so {what} cannot run: {e}"),
        })
    })
}
