//! Devices and executables: run compiled plans on wgpu, the CPU interpreter, and the
//! Ascend C CPU build.
//!
//! A [`Device`] turns a [`Graph`] into an [`Executable`]: it compiles the graph for its
//! target (`tessera_compiler::compile` + `backend::emit`), allocates its buffers and keeps
//! the parameters. The trait is object safe: pick a device at run time as a
//! `Box<dyn Device>` (see [`default_device`]) or use a concrete type. Backends:
//!
//! - [`WgpuDevice`] (the default): any wgpu adapter, software Vulkan (Mesa lavapipe)
//!   included. Kernels are the emitted WGSL; one wgpu buffer per storage slot of the
//!   memory plan; parameters and constants stay on the device across runs; every launch of
//!   a run is encoded into one command encoder and submitted once.
//! - [`CpuDevice`]: the reference interpreters, exact and slow. [`CpuDevice::reference`]
//!   evaluates the graph in f64 (the oracle; no compilation), [`CpuDevice::tile`] runs the
//!   compiled plan's tile kernels in f32.
//! - [`AscendCpuDevice`]: the emitted Ascend C + AscendCL host code built with g++
//!   against the CPU headers; each run is one process run (parameters pass through files).
//! - `CudaDevice` (cargo feature `cuda`): the emitted PTX on an Nvidia GPU through the
//!   CUDA driver (loaded at run time: without one, `CudaDevice::new` returns
//!   [`RuntimeError::NoCudaDriver`]). One device buffer per storage slot, launches in
//!   order on one stream per executable.
//! - [`PtxVmDevice`]: the same PTX, the same plan handling, run on the host CPU by the
//!   PTX virtual machine (`tessera_compiler::ptxvm`), which also checks every access's
//!   bounds, data races and barrier convergence: the PTX path tested without a GPU.
//!
//! Training state stays on the device: [`Executable::bind_update`] declares that a graph
//! output (e.g. `p_new`) replaces a parameter (`p`) after every run, so parameters,
//! optimizer moments and gradients never cross to the host between steps (on wgpu the
//! copies join the run's single submission); [`Executable::get_param`] reads a parameter
//! back for checkpoints.
//!
//! Tensors cross the host/device boundary as [`Tensor`] (values held as `f64`, converted
//! to and from the dtype's device bytes; bool is a u32 0/1 per element).
//!
//! ```no_run
//! use std::collections::HashMap;
//! use tessera::runtime::{default_device, Tensor};
//! use tessera::compiler::DType;
//!
//! let graph = tessera::models::mlp::mlp_block(4, 8, 16)?;
//! let device = default_device()?;
//! let mut exe = device.load(&graph)?;
//! exe.set_param("w", &Tensor::random(&[8, 16], DType::F32, 1))?;
//! exe.set_param("b", &Tensor::random(&[16], DType::F32, 2))?;
//! let inputs = HashMap::from([("x".to_string(), Tensor::random(&[4, 8], DType::F32, 3))]);
//! let outputs = exe.run(&inputs)?;
//! println!("y = {:?}", outputs["y"].data);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod ascend_cpu;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod error;
pub mod executable;
pub(crate) mod plan_io;
pub mod ptx_vm;
pub mod wgpu_device;

pub use ascend_cpu::AscendCpuDevice;
pub use cpu::{CpuDevice, CpuMode};
#[cfg(feature = "cuda")]
pub use cuda::CudaDevice;
pub use error::{Result, RuntimeError};
pub use executable::{Executable, KernelTiming, LaunchTiming, Profile, Signature};
pub use ptx_vm::PtxVmDevice;
pub use tessera_compiler::interp::Tensor;
pub use wgpu_device::{AdapterSummary, WgpuDevice, WgpuOptions};

use std::fmt;
use tessera_compiler::{Graph, Target};

/// Which implementation a [`Device`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// A wgpu adapter running the emitted WGSL.
    Wgpu,
    /// The reference interpreters on the host CPU.
    Cpu,
    /// The Ascend C CPU build ([`ascend_cpu::AscendCpuDevice`]): emitted Ascend C run
    /// through g++ against the CPU headers.
    AscendCpu,
    /// An Nvidia GPU running the emitted PTX through the CUDA driver (feature `cuda`).
    Cuda,
    /// The emitted PTX run on the host CPU by the PTX virtual machine
    /// ([`ptx_vm::PtxVmDevice`]).
    PtxVm,
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceKind::Wgpu => "wgpu",
            DeviceKind::Cpu => "cpu",
            DeviceKind::AscendCpu => "ascend-cpu",
            DeviceKind::Cuda => "cuda",
            DeviceKind::PtxVm => "ptx-vm",
        })
    }
}

/// A device that compiled graphs run on. Object safe: `Box<dyn Device>` works, and
/// `Send + Sync` so one device can be shared by threads (e.g. in a `OnceLock`).
pub trait Device: Send + Sync + fmt::Debug {
    /// A human-readable name, e.g. `wgpu: llvmpipe (LLVM 15.0.7, 256 bits) (Vulkan)`.
    fn name(&self) -> String;

    /// Which implementation this is.
    fn kind(&self) -> DeviceKind;

    /// The capability record kernels are compiled for (clamped to the device's limits),
    /// or `None` for a device that runs the graph without compiling it.
    fn target(&self) -> Option<Target>;

    /// Compiles a graph for this device and allocates its buffers. Parameters start
    /// unset: call [`Executable::set_param`] for each before [`Executable::run`].
    fn load(&self, graph: &Graph) -> Result<Executable>;
}

/// The default device: a [`WgpuDevice`] on the best adapter found.
pub fn default_device() -> Result<Box<dyn Device>> {
    Ok(Box::new(WgpuDevice::new()?))
}
