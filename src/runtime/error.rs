//! Typed errors of the runtime: bad inputs and parameters supplied by the caller, no
//! usable device, compilation failures, and failures reported by a device API.

use tessera_compiler::graph::DType;
use tessera_compiler::interp::InterpError;
use tessera_compiler::CompileError;

/// A runtime failure.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No wgpu adapter could be found.
    #[error("no wgpu adapter found ({tried}); on Linux without a GPU install Mesa's software Vulkan driver (lavapipe): `apt-get install -y mesa-vulkan-drivers libvulkan1`")]
    NoAdapter {
        /// What was tried.
        tried: String,
    },
    /// The adapter refused to create a device.
    #[error("wgpu adapter `{adapter}` could not create a device: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// Compilation of the graph failed.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A graph input was not supplied to [`crate::runtime::Executable::run`].
    #[error("missing input `{name}`")]
    MissingInput {
        /// Input name.
        name: String,
    },
    /// A tensor was supplied under a name that is not an input of the executable.
    #[error("`{name}` is not an input of this executable (inputs: {known:?})")]
    UnknownInput {
        /// The name supplied.
        name: String,
        /// The executable's input names.
        known: Vec<String>,
    },
    /// A parameter name that the executable does not have.
    #[error("`{name}` is not a parameter of this executable (parameters: {known:?})")]
    UnknownParam {
        /// The name given.
        name: String,
        /// The executable's parameter names.
        known: Vec<String>,
    },
    /// A parameter was never set before a run.
    #[error("parameter `{name}` was never set (call `set_param` before `run`)")]
    ParamNotSet {
        /// Parameter name.
        name: String,
    },
    /// A supplied tensor has the wrong shape.
    #[error("`{name}`: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Input or parameter name.
        name: String,
        /// Declared shape.
        expected: Vec<usize>,
        /// Supplied shape.
        got: Vec<usize>,
    },
    /// A supplied tensor has the wrong dtype.
    #[error("`{name}`: expected dtype {expected}, got {got}")]
    DTypeMismatch {
        /// Input or parameter name.
        name: String,
        /// Declared dtype.
        expected: DType,
        /// Supplied dtype.
        got: DType,
    },
    /// A supplied tensor's data length does not match its own shape.
    #[error("`{name}`: shape {shape:?} needs {expected} values, the tensor holds {got}")]
    DataLength {
        /// Input or parameter name.
        name: String,
        /// The tensor's shape.
        shape: Vec<usize>,
        /// Values the shape needs.
        expected: usize,
        /// Values held.
        got: usize,
    },
    /// The plan or the emitted artifact is inconsistent with itself (a compiler bug),
    /// detected before anything is launched.
    #[error("invalid plan: {message}")]
    InvalidPlan {
        /// What is wrong.
        message: String,
    },
    /// The plan needs more than the device offers.
    #[error("{what}: needs {needed}, the device offers {available}")]
    DeviceLimit {
        /// Which limit, and for what.
        what: String,
        /// What the plan needs.
        needed: u64,
        /// What the device offers.
        available: u64,
    },
    /// wgpu reported an error (validation, out of memory, device lost, mapping).
    #[error("wgpu error while {during}: {message}")]
    Wgpu {
        /// What the runtime was doing.
        during: &'static str,
        /// wgpu's message.
        message: String,
    },
    /// The PTX virtual machine refused a module or a launch faulted (out of bounds, a
    /// data race, barrier divergence ...); the message names kernel, thread and PTX line.
    #[error("PTX VM: {0}")]
    PtxVm(#[from] tessera_compiler::ptxvm::VmError),
    /// A reference interpreter failed.
    #[error(transparent)]
    Interp(#[from] InterpError),
    /// A backend that is not available in this build or on this machine.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The Ascend C CPU build failed (compilation, the host program, file I/O).
    #[error(transparent)]
    AscendCpu(#[from] super::ascend_cpu::AscendCpuError),
    /// A parameter-update binding ([`crate::runtime::Executable::bind_update`]) or an
    /// output to discard that does not fit the executable.
    #[error("cannot update parameter `{param}` from output `{output}`: {reason}")]
    InvalidUpdate {
        /// The output.
        output: String,
        /// The parameter (empty when discarding an output).
        param: String,
        /// What is wrong.
        reason: String,
    },
    /// The device does not support an optional operation (e.g. per-launch profiling).
    #[error("{operation} is not supported on {device}")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
        /// The device's name.
        device: String,
    },
    /// No usable CUDA driver or device for `CudaDevice` (feature `cuda`): no `libcuda`,
    /// a driver without the needed entry points, or a driver that finds no device. (A GPU
    /// older than sm_80 is [`RuntimeError::Unavailable`]; an ordinal past the devices
    /// there is [`RuntimeError::InvalidSetting`]; a build without the `cuda` feature has
    /// no `CudaDevice` at all.)
    #[error("no CUDA driver: {reason}")]
    NoCudaDriver {
        /// What was missing, in words.
        reason: String,
    },
    /// A setting (an environment variable such as `TESSERA_CUDA_DEVICE`) holds a value
    /// that cannot be used: a mistake to correct, not a missing device.
    #[error("invalid setting {setting}={value:?}: {reason}")]
    InvalidSetting {
        /// The setting's name.
        setting: &'static str,
        /// The value found.
        value: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// The CUDA driver reported an error (module load, allocation, copy, launch).
    #[error("CUDA error while {during}: {message}")]
    Cuda {
        /// What the runtime was doing.
        during: String,
        /// The driver's error.
        message: String,
    },
}

/// Shorthand for runtime results.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
