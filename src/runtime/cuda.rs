//! The CUDA device (cargo feature `cuda`): runs the emitted PTX on an Nvidia GPU.
//!
//! Built on `cudarc` with dynamic loading: the driver library (`libcuda.so.1`) is opened
//! at run time, so a build with the feature links and runs on machines without CUDA.
//! cudarc resolves each driver entry point on first use and panics when the library or a
//! symbol is missing, so [`CudaDevice::new`] checks both first ([`probe`]) and returns
//! [`RuntimeError::NoCudaDriver`] instead; nothing here panics on a machine without a GPU.
//!
//! Loading a plan compiles it for [`Target::ptx`] (clamped to the device's limits; on
//! sm_80/sm_90 parts the record is unchanged, so the PTX is the one `shaders/` holds and the
//! conformance suite assembles with `ptxas`), loads one module per emitted `.ptx` file
//! (`cuModuleLoadData`: the driver JIT-compiles the `sm_80` text for the GPU at hand; a
//! refusal is reported with the JIT's error log),
//! allocates one zeroed device buffer per storage slot of the memory plan (buffers sharing
//! a slot share the allocation; its size is the largest buffer placed there, rounded up to
//! 16 bytes), fills the constants once, and keeps the parameters on the device until set
//! again.
//!
//! Kernel ABI (see `tessera_compiler::backend::ptx`): one `.param .u64` global pointer per
//! kernel buffer, in the kernel's parameter order (= the launch's `args`); shared memory is
//! static (`.shared` arrays in the module), so launches pass no dynamic shared memory; the
//! block is `[KernelInfo::block, 1, 1]` (each entry declares `.reqntid` with that size)
//! and the grid is the plan's.
//!
//! A run, all on the executable's own stream: upload the inputs, launch every launch of
//! the plan in order, copy each output bound by [`Executable::bind_update`] into its
//! parameter (device to device), copy the remaining outputs back, and synchronise once.
//! Launch failures (a fault inside a kernel) surface at that synchronisation as
//! [`RuntimeError::Cuda`].

use super::error::{Result, RuntimeError};
use super::executable::{Executable, Program, Signature};
use super::plan_io::{self, OutputInfo, PlanSlots};
use super::{Device, DeviceKind};
use cudarc::driver::{
    sys, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DriverError,
    LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use tessera_compiler::backend::{self, Artifact};
use tessera_compiler::interp::Tensor;
use tessera_compiler::schedule::plan::Plan;
use tessera_compiler::{Graph, Target, TargetKind, TensorType};

/// Driver entry points this device uses (directly or through cudarc), checked before any
/// is called: cudarc panics on a missing one. All exist since CUDA 11.4.
const REQUIRED_SYMBOLS: &[&str] = &[
    "cuInit",
    "cuDriverGetVersion",
    "cuGetErrorName",
    "cuGetErrorString",
    "cuDeviceGetCount",
    "cuDeviceGet",
    "cuDeviceGetName",
    "cuDeviceGetAttribute",
    "cuDeviceTotalMem_v2",
    "cuDevicePrimaryCtxRetain",
    "cuDevicePrimaryCtxRelease_v2",
    "cuCtxGetCurrent",
    "cuCtxSetCurrent",
    "cuCtxSynchronize",
    "cuStreamCreate",
    "cuStreamDestroy_v2",
    "cuStreamSynchronize",
    "cuModuleLoadData",
    "cuModuleLoadDataEx",
    "cuModuleGetFunction",
    "cuModuleUnload",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuMemAllocAsync",
    "cuMemFreeAsync",
    "cuMemsetD8Async",
    "cuMemcpyHtoDAsync_v2",
    "cuMemcpyDtoHAsync_v2",
    "cuMemcpyDtoDAsync_v2",
    "cuLaunchKernel",
];

/// The oldest GPU the emitted PTX runs on (`.target sm_80`, see
/// `tessera_compiler::backend::ptx::EMIT_SM`).
pub const MIN_COMPUTE_CAPABILITY: (i32, i32) = (8, 0);

/// What [`probe`] found about one GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CudaInfo {
    /// Device ordinal.
    pub ordinal: usize,
    /// Device name, e.g. `NVIDIA H200`.
    pub name: String,
    /// Compute capability `(major, minor)`, e.g. `(9, 0)`.
    pub compute_capability: (i32, i32),
    /// The driver's CUDA version as `cuDriverGetVersion` reports it (12040 = 12.4).
    pub driver_version: i32,
    /// Device memory, bytes.
    pub total_memory: usize,
    /// Devices the driver reports.
    pub device_count: usize,
}

impl fmt::Display for CudaInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (sm_{}{}, {:.0} GiB, driver CUDA {}.{})",
            self.name,
            self.compute_capability.0,
            self.compute_capability.1,
            self.total_memory as f64 / (1u64 << 30) as f64,
            self.driver_version / 1000,
            (self.driver_version % 1000) / 10
        )
    }
}

fn no_driver(reason: impl Into<String>) -> RuntimeError {
    RuntimeError::NoCudaDriver {
        reason: reason.into(),
    }
}

/// A [`RuntimeError::Cuda`] from a driver error.
fn cuda_err(during: impl Into<String>) -> impl FnOnce(DriverError) -> RuntimeError {
    let during = during.into();
    move |e| RuntimeError::Cuda {
        during,
        message: e.to_string(),
    }
}

/// Checks that a CUDA driver library loads and has every entry point this device uses,
/// without calling into it. `Err` says what is missing.
pub fn driver_library() -> Result<()> {
    // SAFETY: `is_culib_present` only dlopens the candidate names of the driver library
    // (running the vendor library's initialisers, as any CUDA program does).
    if !unsafe { sys::is_culib_present() } {
        return Err(no_driver(format!(
            "the CUDA driver library could not be loaded (tried {}); install the Nvidia \
             driver or add the folder holding libcuda.so.1 to LD_LIBRARY_PATH",
            {
                let mut names = cudarc::get_lib_name_candidates("cuda");
                names.sort();
                names.dedup();
                names.join(", ")
            }
        )));
    }
    // SAFETY: the library is present (checked above), so `culib` loads it instead of
    // panicking; looking symbols up calls nothing.
    let lib = unsafe { sys::culib() };
    let missing: Vec<&str> = REQUIRED_SYMBOLS
        .iter()
        .copied()
        .filter(|name| unsafe { lib.get::<*const ()>(name.as_bytes()) }.is_err())
        .collect();
    if !missing.is_empty() {
        return Err(no_driver(format!(
            "the CUDA driver library lacks {} (the driver is too old: CUDA 11.4 or newer \
             is needed)",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Looks for a usable GPU at `ordinal`: the driver library ([`driver_library`]), at
/// least one device, and a compute capability of at least
/// [`MIN_COMPUTE_CAPABILITY`]. Creates (and releases) the device's primary context.
pub fn probe(ordinal: usize) -> Result<CudaInfo> {
    let (_, info) = open(ordinal)?;
    Ok(info)
}

fn open(ordinal: usize) -> Result<(Arc<CudaContext>, CudaInfo)> {
    driver_library()?;
    let count = CudaContext::device_count()
        .map_err(|e| no_driver(format!("the driver found no usable GPU (cuInit: {e})")))?;
    let device_count = usize::try_from(count).unwrap_or(0);
    if device_count == 0 {
        return Err(no_driver("the CUDA driver reports no device"));
    }
    if ordinal >= device_count {
        // GPUs are there, the choice is wrong: a mistake to correct, not a missing device.
        return Err(RuntimeError::InvalidSetting {
            setting: "CUDA device ordinal (TESSERA_CUDA_DEVICE)",
            value: ordinal.to_string(),
            reason: format!(
                "the driver reports {device_count} device(s): 0..={}",
                device_count - 1
            ),
        });
    }
    let ctx = CudaContext::new(ordinal).map_err(cuda_err("creating the CUDA context"))?;
    let name = ctx.name().map_err(cuda_err("reading the device name"))?;
    let compute_capability = ctx
        .compute_capability()
        .map_err(cuda_err("reading the compute capability"))?;
    let total_memory = ctx
        .total_mem()
        .map_err(cuda_err("reading the memory size"))?;
    let mut driver_version = 0i32;
    // SAFETY: the symbol exists (checked by `driver_library`); the pointer is valid.
    unsafe { sys::cuDriverGetVersion(&mut driver_version) }
        .result()
        .map_err(cuda_err("reading the driver version"))?;
    let info = CudaInfo {
        ordinal,
        name,
        compute_capability,
        driver_version,
        total_memory,
        device_count,
    };
    if compute_capability < MIN_COMPUTE_CAPABILITY {
        return Err(RuntimeError::Unavailable(format!(
            "CUDA device {info}: Tessera's PTX needs sm_{}{} or newer",
            MIN_COMPUTE_CAPABILITY.0, MIN_COMPUTE_CAPABILITY.1
        )));
    }
    Ok((ctx, info))
}

/// Device limits that the compile target is clamped to.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_threads_per_block: u32,
    max_grid: [u32; 3],
    max_shared_per_block: usize,
}

/// An Nvidia GPU driven through the CUDA driver API. Cheap to clone.
#[derive(Clone)]
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    info: CudaInfo,
    limits: Limits,
}

impl fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaDevice")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The environment variable that picks the GPU of [`CudaDevice::new`].
const ORDINAL_ENV: &str = "TESSERA_CUDA_DEVICE";

/// The device ordinal that [`ORDINAL_ENV`] asks for: 0 when unset or blank, the number
/// (surrounding spaces allowed) otherwise; anything else is [`RuntimeError::InvalidSetting`].
fn ordinal_setting(value: Option<&std::ffi::OsStr>) -> Result<usize> {
    let invalid = |value: String| RuntimeError::InvalidSetting {
        setting: ORDINAL_ENV,
        value,
        reason: "not a device ordinal (0, 1, ...); unset it for the first GPU".into(),
    };
    let Some(raw) = value else { return Ok(0) };
    let text = raw
        .to_str()
        .ok_or_else(|| invalid(raw.to_string_lossy().into_owned()))?;
    match text.trim() {
        "" => Ok(0),
        t => t.parse::<usize>().map_err(|_| invalid(text.to_string())),
    }
}

impl CudaDevice {
    /// The first GPU (ordinal 0, or `TESSERA_CUDA_DEVICE` when set). Without a driver,
    /// a device or an sm_80+ GPU, a typed error ([`RuntimeError::NoCudaDriver`] or
    /// [`RuntimeError::Unavailable`]) saying which; a `TESSERA_CUDA_DEVICE` that is not
    /// an ordinal is [`RuntimeError::InvalidSetting`]. Never a panic.
    pub fn new() -> Result<CudaDevice> {
        let setting = std::env::var_os(ORDINAL_ENV);
        CudaDevice::with_ordinal(ordinal_setting(setting.as_deref())?)
    }

    /// The GPU with the given ordinal.
    pub fn with_ordinal(ordinal: usize) -> Result<CudaDevice> {
        let (ctx, info) = open(ordinal)?;
        let attr = |a: sys::CUdevice_attribute, what: &str| -> Result<u32> {
            let v = ctx
                .attribute(a)
                .map_err(cuda_err(format!("reading the device's {what}")))?;
            Ok(u32::try_from(v).unwrap_or(0))
        };
        use sys::CUdevice_attribute as A;
        let limits = Limits {
            max_threads_per_block: attr(
                A::CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                "max threads per block",
            )?,
            max_grid: [
                attr(A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, "max grid x")?,
                attr(A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y, "max grid y")?,
                attr(A::CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z, "max grid z")?,
            ],
            max_shared_per_block: attr(
                A::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK,
                "static shared memory per block",
            )? as usize,
        };
        // SAFETY: every executable does all its work (allocation, copies, launches, frees)
        // on one stream of its own, so cudarc's cross-stream event tracking is not needed.
        unsafe { ctx.disable_event_tracking() };
        log::info!("CUDA device: {info}");
        Ok(CudaDevice { ctx, info, limits })
    }

    /// What the GPU is.
    pub fn info(&self) -> &CudaInfo {
        &self.info
    }

    /// [`Target::ptx`] clamped to this device's limits (unchanged on sm_80 / sm_90 parts).
    pub fn ptx_target(&self) -> Target {
        let mut t = Target::ptx();
        let l = &self.limits;
        t.max_workgroup_size = t.max_workgroup_size.min(l.max_threads_per_block);
        // One limit for every axis: the smallest (y and z allow 65535).
        let grid = l.max_grid.iter().copied().min().unwrap_or(0);
        t.max_grid_dim = t.max_grid_dim.min(grid);
        t.shared_memory_bytes = t.shared_memory_bytes.min(l.max_shared_per_block);
        t
    }

    /// Loads an already compiled plan and its emitted PTX (from
    /// `tessera_compiler::backend::emit` for a PTX target).
    pub fn load_plan(&self, plan: Plan, artifact: Artifact) -> Result<Executable> {
        let signature = Signature::of_plan(&plan)?;
        let program = CudaProgram::new(&self.ctx, &self.limits, &plan, &artifact)?;
        Ok(Executable::from_parts(
            signature,
            Some(plan),
            Some(artifact),
            self.name(),
            Box::new(program),
        ))
    }
}

impl Device for CudaDevice {
    fn name(&self) -> String {
        format!("cuda: {}", self.info)
    }

    fn kind(&self) -> DeviceKind {
        DeviceKind::Cuda
    }

    fn target(&self) -> Option<Target> {
        Some(self.ptx_target())
    }

    fn load(&self, graph: &Graph) -> Result<Executable> {
        let target = self.ptx_target();
        let plan = tessera_compiler::compile(graph, &target)?;
        let artifact = backend::emit(&plan, &target)?;
        self.load_plan(plan, artifact)
    }
}

/// One launch: the kernel and one device pointer per kernel parameter.
struct Launch {
    kernel: usize,
    args: Vec<u64>,
}

struct Kernel {
    function: CudaFunction,
    name: String,
    grid: [u32; 3],
    block: u32,
}

/// A plan loaded on a GPU.
struct CudaProgram {
    stream: Arc<CudaStream>,
    /// One allocation per storage slot (freed on drop, on `stream`).
    storage: Vec<CudaSlice<u8>>,
    /// The device address of each slot.
    ptrs: Vec<u64>,
    kernels: Vec<Kernel>,
    /// Kept alive while the functions are used.
    _modules: Vec<Arc<CudaModule>>,
    launches: Vec<Launch>,
    inputs: HashMap<String, usize>,
    params: HashMap<String, usize>,
    outputs: Vec<OutputInfo>,
    /// `(source slot, parameter slot, bytes)` copied after the last launch of a run.
    updates: Vec<(usize, usize, usize)>,
}

impl CudaProgram {
    fn new(
        ctx: &Arc<CudaContext>,
        limits: &Limits,
        plan: &Plan,
        artifact: &Artifact,
    ) -> Result<CudaProgram> {
        check_plan(plan, artifact)?;
        let stream = ctx
            .new_stream()
            .map_err(cuda_err("creating a CUDA stream"))?;

        // Storage slots: the largest buffer placed in each, rounded up to 16 bytes, zeroed.
        let slot_sizes = plan_io::slot_sizes(plan);
        let mut storage = Vec::with_capacity(slot_sizes.len());
        let mut ptrs = Vec::with_capacity(slot_sizes.len());
        for (i, &size) in slot_sizes.iter().enumerate() {
            let slice = stream.alloc_zeros::<u8>(size).map_err(cuda_err(format!(
                "allocating storage slot {i} ({size} bytes)"
            )))?;
            // No event tracking (see `CudaDevice::with_ordinal`): the guard records nothing.
            let ptr = {
                let (ptr, _sync) = slice.device_ptr(&stream);
                ptr
            };
            ptrs.push(ptr);
            storage.push(slice);
        }

        // Modules: one per PTX file; one function per kernel.
        let mut modules: HashMap<&str, Arc<CudaModule>> = HashMap::new();
        let mut kernels = Vec::with_capacity(plan.kernels.len());
        for (kernel, info) in plan.kernels.iter().zip(&artifact.kernels) {
            let invalid = |message: String| RuntimeError::InvalidPlan {
                message: format!("kernel `{}`: {message}", info.name),
            };
            let file = artifact
                .files
                .iter()
                .find(|f| f.name == info.file)
                .ok_or_else(|| invalid(format!("names file `{}`, which is missing", info.file)))?;
            if info.grid != kernel.grid {
                return Err(invalid(format!(
                    "the plan's grid is {:?}, the emitted kernel's {:?}",
                    kernel.grid, info.grid
                )));
            }
            if info.params.len() != kernel.params.len() {
                return Err(invalid(format!(
                    "the PTX entry takes {} pointers, the plan's kernel {} buffers",
                    info.params.len(),
                    kernel.params.len()
                )));
            }
            if info.block == 0 || info.block > limits.max_threads_per_block {
                return Err(RuntimeError::DeviceLimit {
                    what: format!("kernel `{}`: threads per block", info.name),
                    needed: u64::from(info.block),
                    available: u64::from(limits.max_threads_per_block),
                });
            }
            for (axis, (&g, &max)) in info.grid.iter().zip(&limits.max_grid).enumerate() {
                if g > max {
                    return Err(RuntimeError::DeviceLimit {
                        what: format!("kernel `{}`: blocks along grid axis {axis}", info.name),
                        needed: u64::from(g),
                        available: u64::from(max),
                    });
                }
            }
            let module = match modules.get(file.name.as_str()) {
                Some(m) => m.clone(),
                None => {
                    if file.contents.contains('\0') {
                        return Err(invalid(format!("`{}` contains a NUL byte", file.name)));
                    }
                    let m = ctx
                        .load_module(Ptx::from_src(file.contents.clone()))
                        .map_err(|e| RuntimeError::Cuda {
                            during: format!("loading PTX module `{}` (driver JIT)", file.name),
                            message: format!(
                                "{e}; the JIT's log: {}",
                                jit_log(ctx, &file.contents)
                            ),
                        })?;
                    modules.insert(file.name.as_str(), m.clone());
                    m
                }
            };
            if info.name.contains('\0') {
                return Err(invalid("the kernel name contains a NUL byte".into()));
            }
            let function = module.load_function(&info.name).map_err(cuda_err(format!(
                "finding kernel `{}` in `{}`",
                info.name, file.name
            )))?;
            kernels.push(Kernel {
                function,
                name: info.name.clone(),
                grid: info.grid,
                block: info.block,
            });
        }

        let launches = plan
            .launches
            .iter()
            .map(|l| Launch {
                kernel: l.kernel,
                args: l
                    .args
                    .iter()
                    .map(|a| ptrs[plan.buffer(*a).storage])
                    .collect(),
            })
            .collect();

        // Constants: filled once. Inputs and parameters: their slots by name.
        let PlanSlots {
            inputs,
            params,
            constants,
            outputs,
        } = PlanSlots::of(plan);
        let mut program = CudaProgram {
            stream,
            storage,
            ptrs,
            kernels,
            _modules: modules.into_values().collect(),
            launches,
            inputs,
            params,
            outputs,
            updates: Vec::new(),
        };
        for (slot, bytes) in constants {
            program.upload(slot, &bytes, "filling a constant")?;
        }
        program
            .stream
            .synchronize()
            .map_err(cuda_err("loading the plan"))?;
        Ok(program)
    }

    /// Copies `bytes` to the start of storage slot `slot` (asynchronously on the stream;
    /// the driver has staged pageable host memory when this returns).
    fn upload(&mut self, slot: usize, bytes: &[u8], during: &str) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let dst = self
            .storage
            .get_mut(slot)
            .ok_or_else(|| RuntimeError::InvalidPlan {
                message: format!("storage slot {slot} does not exist"),
            })?;
        let len = dst.len();
        let mut view =
            dst.try_slice_mut(0..bytes.len())
                .ok_or_else(|| RuntimeError::InvalidPlan {
                    message: format!(
                        "{during}: {} bytes do not fit storage slot {slot} ({len} bytes)",
                        bytes.len()
                    ),
                })?;
        self.stream
            .memcpy_htod(bytes, &mut view)
            .map_err(cuda_err(during.to_string()))
    }

    /// Enqueues a copy of the first `bytes` bytes of slot `slot` into a new host vector;
    /// valid only after the stream is synchronised.
    fn download(&self, slot: usize, bytes: usize, during: &str) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let src = self
            .storage
            .get(slot)
            .and_then(|s| s.try_slice(0..bytes))
            .ok_or_else(|| RuntimeError::InvalidPlan {
                message: format!("{during}: storage slot {slot} holds fewer than {bytes} bytes"),
            })?;
        let mut host = vec![0u8; bytes];
        self.stream
            .memcpy_dtoh(&src, &mut host)
            .map_err(cuda_err(during.to_string()))?;
        Ok(host)
    }

    fn sync(&self, during: &str) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(cuda_err(during.to_string()))
    }
}

/// Why the driver's JIT refused `ptx` (its error log, from a second load with a log
/// buffer), for the error of a failed module load: `cuModuleLoadData` returns only a code
/// such as `CUDA_ERROR_INVALID_PTX`.
fn jit_log(ctx: &Arc<CudaContext>, ptx: &str) -> String {
    const LEN: usize = 16 * 1024;
    let Ok(text) = std::ffi::CString::new(ptx) else {
        return "(the PTX holds a NUL byte)".into();
    };
    if ctx.bind_to_thread().is_err() {
        return "(none: the context could not be bound)".into();
    }
    let mut log = vec![0u8; LEN];
    let mut options = [
        sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER,
        sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
    ];
    // The size option's value is the integer itself, passed in the pointer's place.
    let mut values: [*mut std::ffi::c_void; 2] = [log.as_mut_ptr().cast(), LEN as *mut _];
    let mut module: sys::CUmodule = std::ptr::null_mut();
    // SAFETY: `cuModuleLoadDataEx` exists (`REQUIRED_SYMBOLS`); `text` is NUL-terminated;
    // the two options and values arrays have two entries; the log buffer holds `LEN`
    // bytes; the context is current on this thread.
    let loaded = unsafe {
        sys::cuModuleLoadDataEx(
            &mut module,
            text.as_ptr().cast(),
            2,
            options.as_mut_ptr(),
            values.as_mut_ptr(),
        )
    };
    if loaded == sys::CUresult::CUDA_SUCCESS {
        // SAFETY: `module` was just loaded and is used by nothing else.
        unsafe { sys::cuModuleUnload(module) };
        return "(none: a second load succeeded)".into();
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(LEN);
    match String::from_utf8_lossy(&log[..end]).trim() {
        "" => "(empty)".into(),
        text => text.to_string(),
    }
}

/// Consistency checks of a plan and its artifact, so that no launch reads or writes
/// outside its buffers ([`plan_io::check_plan`]).
fn check_plan(plan: &Plan, artifact: &Artifact) -> Result<()> {
    plan_io::check_plan(plan, artifact, TargetKind::Ptx, "CUDA device")
}

impl Program for CudaProgram {
    fn set_param(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let slot = plan_io::param_slot(&self.params, name)?;
        self.upload(slot, &value.to_bytes(), "uploading a parameter")
    }

    fn get_param(&self, name: &str, ty: &TensorType) -> Result<Tensor> {
        let slot = plan_io::param_slot(&self.params, name)?;
        let bytes = self.download(slot, ty.size_bytes(), "reading a parameter back")?;
        self.sync("reading a parameter back")?;
        Ok(Tensor::from_bytes(&ty.shape, ty.dtype, &bytes)?)
    }

    fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
        // The raw device-to-device copies below need the context current on this thread.
        self.stream
            .context()
            .bind_to_thread()
            .map_err(cuda_err("binding the CUDA context"))?;
        let slots: Vec<(String, usize)> =
            self.inputs.iter().map(|(n, &s)| (n.clone(), s)).collect();
        for (name, slot) in slots {
            let t = inputs
                .get(&name)
                .ok_or_else(|| RuntimeError::MissingInput { name: name.clone() })?;
            self.upload(slot, &t.to_bytes(), "uploading an input")?;
        }
        for l in &self.launches {
            let k = &self.kernels[l.kernel];
            if k.grid.contains(&0) {
                continue;
            }
            let mut builder = self.stream.launch_builder(&k.function);
            for a in &l.args {
                builder.arg(a);
            }
            let cfg = LaunchConfig {
                grid_dim: (k.grid[0], k.grid[1], k.grid[2]),
                block_dim: (k.block, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: the arguments are one device pointer per `.param .u64` of the entry,
            // in order, each to an allocation at least as large as the kernel's parameter
            // (`check_plan`); the block size is the entry's `.reqntid` and the grid is
            // within the device's limits (checked at load); shared memory is static.
            unsafe { builder.launch(cfg) }
                .map_err(cuda_err(format!("launching kernel `{}`", k.name)))?;
        }
        for &(src, dst, bytes) in &self.updates {
            // SAFETY: both pointers are live allocations of this program holding at least
            // `bytes` bytes (the parameter's size); the copy is ordered on the stream.
            unsafe {
                cudarc::driver::result::memcpy_dtod_async(
                    self.ptrs[dst],
                    self.ptrs[src],
                    bytes,
                    self.stream.cu_stream(),
                )
            }
            .map_err(cuda_err("updating a parameter"))?;
        }
        let mut host = Vec::with_capacity(self.outputs.len());
        for o in &self.outputs {
            host.push(self.download(o.storage, o.bytes, "reading an output back")?);
        }
        self.sync("running the plan")?;
        let mut out = HashMap::with_capacity(self.outputs.len());
        for (o, b) in self.outputs.iter().zip(host) {
            out.insert(o.name.clone(), o.tensor(&b)?);
        }
        Ok(out)
    }

    fn bind_update(&mut self, output: &str, param: &str) -> Result<()> {
        plan_io::bind_update(
            &mut self.outputs,
            &mut self.updates,
            &self.params,
            output,
            param,
        )
    }

    fn discard_output(&mut self, output: &str) -> Result<()> {
        self.outputs.retain(|o| o.name != output);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a GPU this is the typed error; with one, a device whose target is the PTX
    /// record. Never a panic.
    #[test]
    fn new_is_a_device_or_a_typed_error() {
        match CudaDevice::new() {
            Ok(d) => {
                assert_eq!(d.kind(), DeviceKind::Cuda);
                assert_eq!(d.ptx_target().kind, TargetKind::Ptx);
            }
            Err(RuntimeError::NoCudaDriver { reason }) => assert!(!reason.is_empty()),
            Err(RuntimeError::Unavailable(reason)) => assert!(reason.contains("sm_")),
            Err(e) => panic!("unexpected error kind: {e}"),
        }
    }

    /// `TESSERA_CUDA_DEVICE` (passed in, not read from the shared environment): unset or
    /// blank is GPU 0, a number is that GPU, anything else a typed configuration error
    /// (not `NoCudaDriver`, which tests treat as "no GPU here, skip").
    #[test]
    fn the_device_ordinal_setting_is_parsed_or_refused() {
        use std::ffi::OsStr;
        let ok = |v: Option<&str>| ordinal_setting(v.map(OsStr::new)).unwrap();
        assert_eq!(ok(None), 0);
        assert_eq!(ok(Some("")), 0);
        assert_eq!(ok(Some("  ")), 0);
        assert_eq!(ok(Some("0")), 0);
        assert_eq!(ok(Some(" 3 ")), 3);
        for bad in ["abc", "-1", "1.5", "0x1", "1,2", "GPU-0"] {
            match ordinal_setting(Some(OsStr::new(bad))) {
                Err(RuntimeError::InvalidSetting {
                    setting,
                    value,
                    reason,
                }) => {
                    assert_eq!(setting, "TESSERA_CUDA_DEVICE");
                    assert_eq!(value, bad);
                    assert!(reason.contains("ordinal"), "{reason}");
                }
                other => panic!("{bad:?}: expected InvalidSetting, got {other:?}"),
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let not_utf8 = OsStr::from_bytes(b"\xff1");
            assert!(matches!(
                ordinal_setting(Some(not_utf8)),
                Err(RuntimeError::InvalidSetting { .. })
            ));
        }
    }

    #[test]
    fn a_wgsl_artifact_is_refused() {
        let graph = tessera_models::mlp::mlp_block(2, 3, 4).unwrap();
        let target = Target::wgsl();
        let plan = tessera_compiler::compile(&graph, &target).unwrap();
        let artifact = backend::emit(&plan, &target).unwrap();
        match check_plan(&plan, &artifact) {
            Err(RuntimeError::InvalidPlan { message }) => assert!(message.contains("ptx")),
            other => panic!("expected InvalidPlan, got {other:?}"),
        }
        let target = Target::ptx();
        let plan = tessera_compiler::compile(&graph, &target).unwrap();
        let artifact = backend::emit(&plan, &target).unwrap();
        assert!(check_plan(&plan, &artifact).is_ok());
    }
}
