//! The wgpu device: runs the emitted WGSL on any wgpu adapter (software Vulkan included).
//!
//! Loading a plan creates one shader module per emitted WGSL file, one compute pipeline per
//! kernel (with an explicit bind-group layout reflected from the WGSL's storage bindings:
//! `@group(0) @binding(i)` is kernel parameter `i`), one wgpu buffer per storage slot of the
//! memory plan (buffers that share a slot share the wgpu buffer; its size is the largest
//! buffer placed in it, rounded up to 16 bytes), one bind group per launch, and one staging
//! buffer per output. Constants are filled once; parameters stay on the device until set
//! again. A run uploads the inputs, encodes every launch (one compute pass each, dispatched
//! over the kernel's grid) and the output copies into one command encoder, submits once,
//! and maps the staging buffers.
//!
//! [`Executable::profile`] runs the same step with every launch in its own submission,
//! waited for with a blocking poll, and returns each launch's wall time (plus the times
//! loading spent on shader modules, pipelines and bind groups); `examples/profile_gpt.rs`
//! prints it per kernel. On a CPU adapter (lavapipe) plans are compiled with the
//! CPU-tuned record ([`Target::for_cpu_adapter`]).
//!
//! Every wgpu call is wrapped in error scopes, and the device's uncaptured-error handler
//! records instead of panicking, so validation errors come back as
//! [`RuntimeError::Wgpu`].

use super::error::{Result, RuntimeError};
use super::executable::{Executable, LaunchTiming, Profile, Program, Signature};
use super::plan_io::{self, round4, OutputInfo, PlanSlots};
use super::{Device, DeviceKind};
use std::collections::HashMap;
use std::fmt;
use std::sync::{mpsc, Arc, Mutex};
use tessera_compiler::backend::{self, Artifact};
use tessera_compiler::interp::Tensor;
use tessera_compiler::schedule::plan::Plan;
use tessera_compiler::simt::lower::ThreadGrid;
use tessera_compiler::{Graph, Target, TargetKind, TensorType};
use wgpu::naga;

/// How [`WgpuDevice::with_options`] picks an adapter.
#[derive(Clone, Debug)]
pub struct WgpuOptions {
    /// Backends to consider. Default: `WGPU_BACKEND` from the environment; when that is
    /// unset (`None`), the primary backends (Vulkan, Metal, DX12) first, then every real
    /// backend (adding OpenGL, whose probing is noisy on headless machines; never the
    /// no-op backend, which executes nothing).
    pub backends: Option<wgpu::Backends>,
    /// Preferred power profile for the first request. Default: high performance.
    pub power_preference: wgpu::PowerPreference,
    /// Ask for the fallback (software) adapter first. Default: false.
    pub force_fallback_adapter: bool,
    /// Only adapters whose name contains this (case-insensitive). Default:
    /// `WGPU_ADAPTER_NAME` from the environment, else none.
    pub adapter_name: Option<String>,
}

impl Default for WgpuOptions {
    fn default() -> Self {
        WgpuOptions {
            backends: wgpu::Backends::from_env(),
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            adapter_name: std::env::var("WGPU_ADAPTER_NAME")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }
}

/// What the chosen adapter is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name, e.g. `llvmpipe (LLVM 15.0.7, 256 bits)`.
    pub name: String,
    /// Backend, e.g. `Vulkan`.
    pub backend: String,
    /// Device type, e.g. `Cpu` for software rasterisers.
    pub device_type: String,
    /// Driver name and info.
    pub driver: String,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)
    }
}

/// The wgpu objects shared by a device and its executables.
struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    limits: wgpu::Limits,
    summary: AdapterSummary,
    /// The device was created with `shader-f16` (WGSL `enable f16;`, f16 storage).
    shader_f16: bool,
    /// The adapter is a CPU (lavapipe / llvmpipe): kernels get CPU-tuned tiles.
    cpu_adapter: bool,
    /// The subgroup size kernels may shuffle within (`Target::subgroup_size`): set when
    /// the device has the `subgroups` feature, one fixed subgroup size, and
    /// [`Context::probe_subgroups`] found the layout the lowering assumes.
    subgroup_size: Option<u32>,
    /// Errors that escaped every error scope (recorded instead of panicking).
    uncaptured: Arc<Mutex<Vec<String>>>,
}

impl Context {
    /// Runs `f` inside validation, out-of-memory and internal error scopes and turns any
    /// captured (or uncaptured) error into [`RuntimeError::Wgpu`].
    fn scoped<T>(&self, during: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let internal = self.device.push_error_scope(wgpu::ErrorFilter::Internal);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let errors: Vec<wgpu::Error> = [validation.pop(), oom.pop(), internal.pop()]
            .into_iter()
            .filter_map(pollster::block_on)
            .collect();
        let mut messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        if let Ok(mut u) = self.uncaptured.lock() {
            messages.append(&mut u);
        }
        if !messages.is_empty() {
            return Err(RuntimeError::Wgpu {
                during,
                message: messages.join("; "),
            });
        }
        out
    }

    /// The WGSL target record for this device (see [`WgpuDevice::wgsl_target`]).
    fn wgsl_target(&self) -> Target {
        let l = &self.limits;
        let mut t = if self.shader_f16 {
            Target::wgsl_f16()
        } else {
            Target::wgsl()
        };
        t.storage_dtypes.push(tessera_compiler::DType::BF16);
        if self.cpu_adapter {
            t = t.for_cpu_adapter();
            // The device was opened with the adapter's limits; on a CPU adapter workgroup
            // memory is ordinary memory, and lavapipe's 32 KiB (instead of WebGPU's
            // default 16 KiB) lets attention use 64 x 64 blocks (128 x 32 with subgroups,
            // for sequences longer than 64).
            t.shared_memory_bytes = l.max_compute_workgroup_storage_size as usize;
        }
        t.max_workgroup_size = t
            .max_workgroup_size
            .min(l.max_compute_invocations_per_workgroup)
            .min(l.max_compute_workgroup_size_x);
        t.max_grid_dim = t.max_grid_dim.min(l.max_compute_workgroups_per_dimension);
        t.shared_memory_bytes = t
            .shared_memory_bytes
            .min(l.max_compute_workgroup_storage_size as usize);
        t.subgroup_size = self.subgroup_size;
        t.max_storage_buffers = t
            .max_storage_buffers
            .min(l.max_storage_buffers_per_shader_stage as usize);
        t
    }

    /// Whether every subgroup of a `threads`-invocation workgroup is `size` consecutive
    /// invocations starting at a multiple of `size`, and `subgroupShuffle` reads the lane
    /// asked for: the layout `Target::subgroup_size` promises the lowering (thread-grid
    /// rows as subgroups). One dispatch of a probe kernel.
    fn probe_subgroups(&self, size: u32, threads: u32) -> Result<bool> {
        if size < 2 || threads == 0 || !threads.is_multiple_of(size) {
            return Ok(false);
        }
        let source = format!(
            "@group(0) @binding(0) var<storage, read_write> ok: array<u32>;\n\
             @compute @workgroup_size({threads})\n\
             fn probe(@builtin(local_invocation_index) li: u32,\n\
                      @builtin(subgroup_invocation_id) lane: u32,\n\
                      @builtin(subgroup_size) size: u32) {{\n\
                 let first = subgroupShuffle(li, 0u);\n\
                 let last = subgroupShuffle(li, {last}u);\n\
                 ok[li] = select(0u, 1u, size == {size}u && lane == li % {size}u\n\
                     && first == li - lane && last == first + {last}u);\n\
             }}\n",
            last = size - 1
        );
        let bytes = threads as usize * 4;
        let buffer = self.scoped("probing subgroups", || {
            let module = self
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("tessera subgroup probe"),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
            let pipeline = self
                .device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some("tessera subgroup probe"),
                    layout: None,
                    module: &module,
                    entry_point: Some("probe"),
                    compilation_options: Default::default(),
                    cache: None,
                });
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tessera subgroup probe"),
                size: bytes as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("tessera subgroup probe"),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &[wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buffer.as_entire_binding(),
                }],
            });
            let mut encoder = self
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("tessera subgroup probe"),
                });
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("tessera subgroup probe"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(1, 1, 1);
            }
            self.queue.submit([encoder.finish()]);
            Ok(buffer)
        })?;
        let out = self.read_buffer(&buffer, bytes)?;
        Ok(out.len() == bytes
            && out
                .chunks_exact(4)
                .all(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) == 1))
    }

    /// Blocks until all submitted work is done.
    fn wait(&self, during: &'static str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| RuntimeError::Wgpu {
                during,
                message: e.to_string(),
            })
    }

    /// Copies the first `bytes` bytes of `src` back to the host (one submission).
    fn read_buffer(&self, src: &wgpu::Buffer, bytes: usize) -> Result<Vec<u8>> {
        let padded = round4(bytes) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tessera readback"),
            size: padded,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("tessera readback"),
            });
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, padded);
        self.queue.submit([encoder.finish()]);
        let mut out = map_read(self, &[(&staging, bytes)])?;
        Ok(out.pop().unwrap_or_default())
    }
}

/// Maps staging buffers after the last submission and returns their first `len` bytes.
fn map_read(ctx: &Context, buffers: &[(&wgpu::Buffer, usize)]) -> Result<Vec<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    for (i, (buf, _)) in buffers.iter().enumerate() {
        let tx = tx.clone();
        buf.map_async(wgpu::MapMode::Read, .., move |r| {
            // The receiver outlives the wait below; a send error cannot happen.
            let _ = tx.send((i, r));
        });
    }
    drop(tx);
    // On every path, buffers that did map are unmapped again, so a failed run leaves the
    // staging buffers usable by the next one.
    let waited = ctx.wait("waiting for the GPU");
    let mut mapped = vec![false; buffers.len()];
    let mut error = waited.err();
    // When several threads share the device, another thread's poll may be the one that
    // runs our map callbacks, and it may still be running them when our wait returns: so
    // collect every callback's report (polling again meanwhile), with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut reported = 0;
    while reported < buffers.len() {
        match rx.recv_timeout(std::time::Duration::from_millis(5)) {
            Ok((i, r)) => {
                reported += 1;
                match r {
                    Ok(()) => mapped[i] = true,
                    Err(e) => {
                        error.get_or_insert(RuntimeError::Wgpu {
                            during: "mapping a staging buffer",
                            message: e.to_string(),
                        });
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if std::time::Instant::now() < deadline => {
                if let Err(e) = ctx.wait("waiting for the GPU") {
                    error.get_or_insert(e);
                    break;
                }
            }
            Err(_) => break,
        }
    }
    if error.is_none() {
        if let Some(i) = mapped.iter().position(|&m| !m) {
            error = Some(RuntimeError::Wgpu {
                during: "mapping a staging buffer",
                message: format!("staging buffer {i} was not mapped after the wait"),
            });
        }
    }
    let mut out = Vec::with_capacity(buffers.len());
    for ((buf, len), &m) in buffers.iter().zip(&mapped) {
        if !m {
            continue;
        }
        if error.is_none() {
            match buf.get_mapped_range(..) {
                Ok(view) => out.push(view[..*len].to_vec()),
                Err(e) => {
                    error = Some(RuntimeError::Wgpu {
                        during: "reading a staging buffer",
                        message: e.to_string(),
                    })
                }
            }
        }
        buf.unmap();
    }
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `bytes` padded with zeros to a multiple of 4 (wgpu's copy alignment).
fn pad4(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.resize(round4(bytes.len()), 0);
    bytes
}

/// A wgpu adapter and device. Cheap to clone (the wgpu objects are shared).
#[derive(Clone)]
pub struct WgpuDevice {
    ctx: Arc<Context>,
}

impl fmt::Debug for WgpuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WgpuDevice")
            .field("adapter", &self.ctx.summary)
            .finish_non_exhaustive()
    }
}

fn summarize(info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info)
            .trim()
            .to_string(),
    }
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl WgpuDevice {
    /// The best adapter available: a high-performance one if the system offers it, else
    /// the fallback (software) adapter, else any adapter at all. Fails with
    /// [`RuntimeError::NoAdapter`] when there is none.
    pub fn new() -> Result<WgpuDevice> {
        WgpuDevice::with_options(&WgpuOptions::default())
    }

    /// An adapter picked as `options` say (see [`WgpuOptions`]).
    pub fn with_options(options: &WgpuOptions) -> Result<WgpuDevice> {
        let candidates = match options.backends {
            Some(b) => vec![b],
            None => vec![
                wgpu::Backends::PRIMARY,
                wgpu::Backends::all().difference(wgpu::Backends::NOOP),
            ],
        };
        let mut failures = Vec::new();
        let mut found = None;
        for backends in candidates {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
            desc.backends = backends;
            let instance = wgpu::Instance::new(desc);
            match pick_adapter(&instance, backends, options) {
                Ok(a) => {
                    found = Some(a);
                    break;
                }
                Err(e) => failures.push(e),
            }
        }
        let adapter = match found {
            Some(a) => a,
            None => {
                let tried = failures
                    .into_iter()
                    .map(|e| match e {
                        RuntimeError::NoAdapter { tried } => tried,
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" | ");
                return Err(RuntimeError::NoAdapter { tried });
            }
        };
        let info = adapter.get_info();
        let summary = summarize(&info);
        let limits = adapter.limits();
        // f16 storage in WGSL needs `shader-f16`: requested whenever the adapter offers it
        // (lavapipe does), and reported by `wgsl_target`.
        let shader_f16 = adapter.features().contains(wgpu::Features::SHADER_F16);
        // Subgroup shuffles (row reductions and attention's `P @ V` without barriers)
        // need the `subgroups` feature and one fixed subgroup size.
        let subgroups = adapter.features().contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == info.subgroup_max_size
            && info.subgroup_min_size > 1;
        let mut required_features = wgpu::Features::empty();
        if shader_f16 {
            required_features |= wgpu::Features::SHADER_F16;
        }
        if subgroups {
            required_features |= wgpu::Features::SUBGROUP;
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tessera"),
            required_features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| RuntimeError::RequestDevice {
            adapter: summary.to_string(),
            message: e.to_string(),
        })?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            log::error!("uncaptured wgpu error: {e}");
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        log::info!("wgpu adapter: {summary}");
        let mut ctx = Context {
            device,
            queue,
            limits,
            summary,
            shader_f16,
            cpu_adapter: info.device_type == wgpu::DeviceType::Cpu,
            subgroup_size: None,
            uncaptured,
        };
        if subgroups {
            let size = info.subgroup_min_size;
            let threads = ThreadGrid::for_target(&ctx.wgsl_target())
                .map(|g| g.threads)
                .unwrap_or(0);
            match ctx.probe_subgroups(size, threads) {
                Ok(true) => ctx.subgroup_size = Some(size),
                Ok(false) => log::info!(
                    "subgroups of {size} are not consecutive invocations: kernels use no \
                     subgroup operations"
                ),
                Err(e) => log::info!("subgroup probe failed ({e}): no subgroup operations"),
            }
        }
        Ok(WgpuDevice { ctx: Arc::new(ctx) })
    }

    /// What the chosen adapter is.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.ctx.summary
    }

    /// The device's limits (all the adapter offers).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.ctx.limits
    }

    /// Whether the device was created with the `shader-f16` feature (then
    /// [`WgpuDevice::wgsl_target`] stores f16).
    pub fn has_shader_f16(&self) -> bool {
        self.ctx.shader_f16
    }

    /// The WGSL target record clamped to this device's limits, tuned for CPUs on a CPU
    /// adapter such as lavapipe ([`Target::for_cpu_adapter`]: 64-thread workgroups,
    /// matmul tiles of up to 128x64, attention blocks of up to 64, and all the workgroup
    /// memory the device has rather than WebGPU's default 16 KiB), with f16 storage when
    /// the device has `shader-f16` ([`Target::wgsl_f16`]), bf16 storage (element pairs in
    /// u32 words, written with atomics: see `tessera_compiler::backend::wgsl`; this
    /// runtime binds buffers by bytes, so the packing is the host's bf16 layout), and the
    /// subgroup size when the device has subgroups of one fixed size laid out as the
    /// lowering assumes (checked by a probe kernel when the device is opened; lavapipe:
    /// 8, see `Target::subgroup_size`).
    pub fn wgsl_target(&self) -> Target {
        self.ctx.wgsl_target()
    }

    /// Loads an already compiled plan and its emitted WGSL (from
    /// `tessera_compiler::backend::emit` for a WGSL target).
    pub fn load_plan(&self, plan: Plan, artifact: Artifact) -> Result<Executable> {
        let signature = Signature::of_plan(&plan)?;
        let program = WgpuProgram::new(self.ctx.clone(), &plan, &artifact)?;
        Ok(Executable::from_parts(
            signature,
            Some(plan),
            Some(artifact),
            self.name(),
            Box::new(program),
        ))
    }
}

fn pick_adapter(
    instance: &wgpu::Instance,
    backends: wgpu::Backends,
    options: &WgpuOptions,
) -> Result<wgpu::Adapter> {
    let all = pollster::block_on(instance.enumerate_adapters(backends));
    if let Some(filter) = &options.adapter_name {
        let f = filter.to_lowercase();
        let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
        return all
            .into_iter()
            .filter(|a| a.get_info().name.to_lowercase().contains(&f))
            .min_by_key(|a| type_rank(a.get_info().device_type))
            .ok_or_else(|| RuntimeError::NoAdapter {
                tried: format!(
                    "no adapter name contains `{filter}` (backends {backends:?}; adapters found: {names:?})"
                ),
            });
    }
    let request = |force_fallback_adapter| {
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: options.power_preference,
            force_fallback_adapter,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
    };
    let mut attempts = Vec::new();
    match request(options.force_fallback_adapter) {
        Ok(a) => return Ok(a),
        Err(e) => attempts.push(format!(
            "{:?} (force_fallback_adapter = {}): {e}",
            options.power_preference, options.force_fallback_adapter
        )),
    }
    if !options.force_fallback_adapter {
        match request(true) {
            Ok(a) => return Ok(a),
            Err(e) => attempts.push(format!("fallback adapter: {e}")),
        }
    }
    let n = all.len();
    all.into_iter()
        .min_by_key(|a| type_rank(a.get_info().device_type))
        .ok_or_else(|| RuntimeError::NoAdapter {
            tried: format!(
                "backends {backends:?}: {}; {n} adapters enumerated",
                attempts.join("; ")
            ),
        })
}

impl Device for WgpuDevice {
    fn name(&self) -> String {
        format!("wgpu: {}", self.ctx.summary)
    }

    fn kind(&self) -> DeviceKind {
        DeviceKind::Wgpu
    }

    fn target(&self) -> Option<Target> {
        Some(self.wgsl_target())
    }

    fn load(&self, graph: &Graph) -> Result<Executable> {
        let target = self.wgsl_target();
        let plan = tessera_compiler::compile(graph, &target)?;
        let artifact = backend::emit(&plan, &target)?;
        self.load_plan(plan, artifact)
    }
}

/// One storage binding a kernel's WGSL declares.
#[derive(Clone, Copy, Debug)]
struct Binding {
    binding: u32,
    read_only: bool,
}

/// What the runtime needs to know about one emitted WGSL kernel.
#[derive(Clone, Debug)]
struct Reflection {
    /// Storage bindings of group 0, sorted by binding number.
    bindings: Vec<Binding>,
    /// The entry point's `@workgroup_size`.
    workgroup_size: [u32; 3],
}

/// The storage bindings of group 0 in a WGSL module and the entry point's workgroup
/// size, checking the entry point exists.
fn reflect(source: &str, file: &str, entry: &str, num_params: usize) -> Result<Reflection> {
    let invalid = |message: String| RuntimeError::InvalidPlan {
        message: format!("WGSL file `{file}`, kernel `{entry}`: {message}"),
    };
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| invalid(format!("does not parse: {}", e.emit_to_string(source))))?;
    let Some(ep) = module
        .entry_points
        .iter()
        .find(|ep| ep.name == entry && ep.stage == naga::ShaderStage::Compute)
    else {
        return Err(invalid("no compute entry point of that name".into()));
    };
    let workgroup_size = ep.workgroup_size;
    let mut out: Vec<Binding> = Vec::new();
    for (_, var) in module.global_variables.iter() {
        let Some(rb) = &var.binding else { continue };
        let naga::AddressSpace::Storage { access } = var.space else {
            return Err(invalid(format!(
                "binding ({}, {}) is not a storage buffer ({:?})",
                rb.group, rb.binding, var.space
            )));
        };
        if rb.group != 0 {
            return Err(invalid(format!(
                "binding in group {} (only group 0 is used)",
                rb.group
            )));
        }
        if rb.binding as usize >= num_params {
            return Err(invalid(format!(
                "binding {} but the kernel has {num_params} parameters",
                rb.binding
            )));
        }
        if out.iter().any(|b| b.binding == rb.binding) {
            return Err(invalid(format!("binding {} declared twice", rb.binding)));
        }
        out.push(Binding {
            binding: rb.binding,
            read_only: !access.contains(naga::StorageAccess::STORE),
        });
    }
    out.sort_by_key(|b| b.binding);
    Ok(Reflection {
        bindings: out,
        workgroup_size,
    })
}

struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    bindings: Vec<Binding>,
    grid: [u32; 3],
    /// Threads per workgroup.
    block: u32,
}

struct LaunchObjects {
    pipeline: usize,
    bind_group: wgpu::BindGroup,
    name: String,
}

struct OutputSlot {
    info: OutputInfo,
    /// Mappable copy of the output, reused by every run.
    staging: wgpu::Buffer,
}

impl AsRef<OutputInfo> for OutputSlot {
    fn as_ref(&self) -> &OutputInfo {
        &self.info
    }
}

/// A plan loaded on a wgpu device.
struct WgpuProgram {
    ctx: Arc<Context>,
    /// One per storage slot.
    storage: Vec<wgpu::Buffer>,
    pipelines: Vec<Pipeline>,
    launches: Vec<LaunchObjects>,
    /// Plan kernel index and name of each launch (for profiles).
    launch_kernels: Vec<(usize, String)>,
    /// Seconds spent in each phase of loading (see [`Profile::load_phases`]).
    load_phases: Vec<(String, f64)>,
    /// Name -> storage slot, for inputs and parameters.
    inputs: HashMap<String, usize>,
    params: HashMap<String, usize>,
    outputs: Vec<OutputSlot>,
    /// Parameter updates bound by `bind_update`: `(source slot, parameter slot, bytes)`,
    /// copied after the last launch of every run, in the run's command encoder.
    updates: Vec<(usize, usize, usize)>,
}

impl WgpuProgram {
    fn new(ctx: Arc<Context>, plan: &Plan, artifact: &Artifact) -> Result<WgpuProgram> {
        check_plan(plan, artifact)?;
        let c = ctx.clone();
        c.scoped("loading the plan", move || Self::build(ctx, plan, artifact))
    }

    fn build(ctx: Arc<Context>, plan: &Plan, artifact: &Artifact) -> Result<WgpuProgram> {
        let limits = &ctx.limits;
        let device = &ctx.device;
        let started = std::time::Instant::now();
        let (mut module_s, mut pipeline_s) = (0.0, 0.0);

        // Storage slots: the largest buffer placed in each, rounded up to 16 bytes
        // (`plan_io::slot_sizes`).
        let slot_sizes = plan_io::slot_sizes(plan);
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let mut storage = Vec::with_capacity(slot_sizes.len());
        for (i, &size) in slot_sizes.iter().enumerate() {
            let size = size as u64;
            if size > max_binding {
                return Err(RuntimeError::DeviceLimit {
                    what: format!("storage slot {i} (max storage buffer binding size)"),
                    needed: size,
                    available: max_binding,
                });
            }
            storage.push(device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("tessera slot {i}")),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }));
        }

        // Pipelines: one shader module per file, one pipeline per kernel.
        let mut modules: HashMap<&str, wgpu::ShaderModule> = HashMap::new();
        let mut pipelines = Vec::with_capacity(plan.kernels.len());
        for (kernel, info) in plan.kernels.iter().zip(&artifact.kernels) {
            let file = artifact
                .files
                .iter()
                .find(|f| f.name == info.file)
                .ok_or_else(|| RuntimeError::InvalidPlan {
                    message: format!(
                        "kernel `{}` names file `{}`, which the artifact lacks",
                        info.name, info.file
                    ),
                })?;
            // The emitted kernel's manifest must agree with the plan and with its WGSL:
            // dispatch uses the manifest's grid, the WGSL fixes the workgroup size.
            if info.grid != kernel.grid {
                return Err(RuntimeError::InvalidPlan {
                    message: format!(
                        "kernel `{}`: the plan's grid is {:?}, the emitted kernel's {:?}",
                        info.name, kernel.grid, info.grid
                    ),
                });
            }
            let n = kernel.params.len() as u64;
            if n > u64::from(limits.max_storage_buffers_per_shader_stage) {
                return Err(RuntimeError::DeviceLimit {
                    what: format!("kernel `{}`: storage buffers per shader stage", info.name),
                    needed: n,
                    available: u64::from(limits.max_storage_buffers_per_shader_stage),
                });
            }
            for (axis, &g) in info.grid.iter().enumerate() {
                if g > limits.max_compute_workgroups_per_dimension {
                    return Err(RuntimeError::DeviceLimit {
                        what: format!("kernel `{}`: workgroups along grid axis {axis}", info.name),
                        needed: u64::from(g),
                        available: u64::from(limits.max_compute_workgroups_per_dimension),
                    });
                }
            }
            let Reflection {
                bindings,
                workgroup_size,
            } = reflect(&file.contents, &file.name, &info.name, kernel.params.len())?;
            let threads: u64 = workgroup_size.iter().map(|&w| u64::from(w)).product();
            if threads != u64::from(info.block) {
                return Err(RuntimeError::InvalidPlan {
                    message: format!(
                        "kernel `{}`: the manifest says {} threads per workgroup, the WGSL declares @workgroup_size{:?}",
                        info.name, info.block, workgroup_size
                    ),
                });
            }
            if threads > u64::from(limits.max_compute_invocations_per_workgroup) {
                return Err(RuntimeError::DeviceLimit {
                    what: format!("kernel `{}`: invocations per workgroup", info.name),
                    needed: threads,
                    available: u64::from(limits.max_compute_invocations_per_workgroup),
                });
            }
            let t0 = std::time::Instant::now();
            let module = modules.entry(file.name.as_str()).or_insert_with(|| {
                device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(&file.name),
                    source: wgpu::ShaderSource::Wgsl(file.contents.as_str().into()),
                })
            });
            module_s += t0.elapsed().as_secs_f64();
            let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
                .iter()
                .map(|b| wgpu::BindGroupLayoutEntry {
                    binding: b.binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: b.read_only,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                })
                .collect();
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(&info.name),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(&info.name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            let t0 = std::time::Instant::now();
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&info.name),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(&info.name),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            });
            pipeline_s += t0.elapsed().as_secs_f64();
            pipelines.push(Pipeline {
                pipeline,
                layout,
                bindings,
                grid: info.grid,
                block: info.block,
            });
        }
        let before_bind_groups = std::time::Instant::now();

        // Bind groups: one per launch, parameter i at binding i.
        let mut launches = Vec::with_capacity(plan.launches.len());
        for (li, launch) in plan.launches.iter().enumerate() {
            let p = &pipelines[launch.kernel];
            let entries: Vec<wgpu::BindGroupEntry> = p
                .bindings
                .iter()
                .map(|b| {
                    let buf = plan.buffer(launch.args[b.binding as usize]);
                    wgpu::BindGroupEntry {
                        binding: b.binding,
                        resource: storage[buf.storage].as_entire_binding(),
                    }
                })
                .collect();
            let name = format!("launch {li} ({})", artifact.kernels[launch.kernel].name);
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&name),
                layout: &p.layout,
                entries: &entries,
            });
            launches.push(LaunchObjects {
                pipeline: launch.kernel,
                bind_group,
                name,
            });
        }

        let bind_group_s = before_bind_groups.elapsed().as_secs_f64();
        let launch_kernels = plan
            .launches
            .iter()
            .map(|l| (l.kernel, artifact.kernels[l.kernel].name.clone()))
            .collect();

        // Constants: filled once. Inputs and parameters: their slots by name.
        let PlanSlots {
            inputs,
            params,
            constants,
            outputs: output_infos,
        } = PlanSlots::of(plan);
        for (slot, bytes) in constants {
            ctx.queue.write_buffer(&storage[slot], 0, &pad4(bytes));
        }

        // Outputs: one staging buffer each, reused by every run.
        let outputs = output_infos
            .into_iter()
            .map(|info| OutputSlot {
                staging: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("tessera output {}", info.name)),
                    size: round4(info.bytes) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                info,
            })
            .collect();
        ctx.queue.submit([]);
        let total_s = started.elapsed().as_secs_f64();
        let load_phases = vec![
            (format!("{} shader modules", modules.len()), module_s),
            (format!("{} compute pipelines", pipelines.len()), pipeline_s),
            (format!("{} bind groups", launches.len()), bind_group_s),
            (
                "buffers, constants, staging".to_string(),
                (total_s - module_s - pipeline_s - bind_group_s).max(0.0),
            ),
        ];
        Ok(WgpuProgram {
            ctx,
            storage,
            pipelines,
            launches,
            launch_kernels,
            load_phases,
            inputs,
            params,
            outputs,
            updates: Vec::new(),
        })
    }
}

/// Consistency checks of a plan and its artifact, so that nothing fails inside wgpu: the
/// shared checks ([`plan_io::check_plan`]) and WebGPU's aliasing rule.
fn check_plan(plan: &Plan, artifact: &Artifact) -> Result<()> {
    plan_io::check_plan(plan, artifact, TargetKind::Wgsl, "wgpu device")?;
    // WebGPU forbids binding one buffer writable and bound again in the same dispatch.
    for (li, launch) in plan.launches.iter().enumerate() {
        let kernel = &plan.kernels[launch.kernel];
        for (i, (a, pa)) in launch.args.iter().zip(&kernel.params).enumerate() {
            for (b, pb) in launch.args.iter().zip(&kernel.params).skip(i + 1) {
                let (sa, sb) = (plan.buffer(*a).storage, plan.buffer(*b).storage);
                let writes = |p: &tessera_compiler::tile::BufferParam| {
                    p.access != tessera_compiler::tile::Access::Read
                };
                if sa == sb && (writes(pa) || writes(pb)) {
                    return Err(RuntimeError::InvalidPlan {
                        message: format!(
                            "launch {li} of `{}` binds storage slot {sa} as `{}` and `{}`, and one is written",
                            kernel.name, pa.name, pb.name
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The steps of a run, shared by [`Program::run`] (one command encoder, one submission)
/// and [`Program::profile`] (one submission per step, each waited for).
impl WgpuProgram {
    /// A new command encoder.
    fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Writes every input into its storage slot (queued; the next submission sees it).
    fn upload_inputs(&self, inputs: &HashMap<String, Tensor>) -> Result<()> {
        for (name, &slot) in &self.inputs {
            let t = inputs
                .get(name)
                .ok_or_else(|| RuntimeError::MissingInput { name: name.clone() })?;
            self.ctx
                .queue
                .write_buffer(&self.storage[slot], 0, &pad4(t.to_bytes()));
        }
        Ok(())
    }

    /// The launches that dispatch anything, in plan order: `(launch index, launch, its
    /// pipeline)`. Launches with an empty grid are skipped.
    fn live_launches(&self) -> impl Iterator<Item = (usize, &LaunchObjects, &Pipeline)> {
        self.launches
            .iter()
            .enumerate()
            .map(|(li, l)| (li, l, &self.pipelines[l.pipeline]))
            .filter(|(_, _, p)| !p.grid.contains(&0))
    }

    /// Encodes one launch as its own compute pass, dispatched over the kernel's grid.
    fn encode_launch(encoder: &mut wgpu::CommandEncoder, l: &LaunchObjects, p: &Pipeline) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&l.name),
            timestamp_writes: None,
        });
        pass.set_pipeline(&p.pipeline);
        pass.set_bind_group(0, &l.bind_group, &[]);
        pass.dispatch_workgroups(p.grid[0], p.grid[1], p.grid[2]);
    }

    /// Encodes the parameter-update copies bound by `bind_update`.
    fn encode_updates(&self, encoder: &mut wgpu::CommandEncoder) {
        for &(src, dst, bytes) in &self.updates {
            encoder.copy_buffer_to_buffer(
                &self.storage[src],
                0,
                &self.storage[dst],
                0,
                round4(bytes) as u64,
            );
        }
    }

    /// Encodes the copies of the read-back outputs into their staging buffers.
    fn encode_readback(&self, encoder: &mut wgpu::CommandEncoder) {
        for o in &self.outputs {
            encoder.copy_buffer_to_buffer(
                &self.storage[o.info.storage],
                0,
                &o.staging,
                0,
                round4(o.info.bytes) as u64,
            );
        }
    }

    /// Maps the staging buffers after the submission holding [`Self::encode_readback`]'s
    /// copies: each read-back output's bytes, in `self.outputs` order.
    fn read_outputs(&self) -> Result<Vec<Vec<u8>>> {
        let staging: Vec<(&wgpu::Buffer, usize)> = self
            .outputs
            .iter()
            .map(|o| (&o.staging, o.info.bytes))
            .collect();
        map_read(&self.ctx, &staging)
    }
}

impl Program for WgpuProgram {
    fn set_param(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let slot = plan_io::param_slot(&self.params, name)?;
        let ctx = self.ctx.clone();
        ctx.scoped("uploading a parameter", || {
            ctx.queue
                .write_buffer(&self.storage[slot], 0, &pad4(value.to_bytes()));
            ctx.queue.submit([]);
            Ok(())
        })
    }

    fn get_param(&self, name: &str, ty: &TensorType) -> Result<Tensor> {
        let slot = plan_io::param_slot(&self.params, name)?;
        let bytes = self.ctx.scoped("reading a parameter back", || {
            self.ctx.read_buffer(&self.storage[slot], ty.size_bytes())
        })?;
        Ok(Tensor::from_bytes(&ty.shape, ty.dtype, &bytes)?)
    }

    fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
        let ctx = self.ctx.clone();
        let bytes = ctx.scoped("running the plan", || {
            self.upload_inputs(inputs)?;
            let mut encoder = self.encoder("tessera run");
            for (_, l, p) in self.live_launches() {
                Self::encode_launch(&mut encoder, l, p);
            }
            self.encode_updates(&mut encoder);
            self.encode_readback(&mut encoder);
            ctx.queue.submit([encoder.finish()]);
            self.read_outputs()
        })?;
        let mut out = HashMap::with_capacity(self.outputs.len());
        for (o, b) in self.outputs.iter().zip(bytes) {
            out.insert(o.info.name.clone(), o.info.tensor(&b)?);
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
        self.outputs.retain(|o| o.info.name != output);
        Ok(())
    }

    fn profile(&mut self, inputs: &HashMap<String, Tensor>) -> Result<Profile> {
        let ctx = self.ctx.clone();
        ctx.scoped("profiling the plan", || {
            let mut profile = Profile {
                load_phases: self.load_phases.clone(),
                ..Profile::default()
            };
            // Everything earlier (parameter uploads) finishes before the first timing.
            ctx.wait("waiting for the GPU")?;
            let t0 = std::time::Instant::now();
            self.upload_inputs(inputs)?;
            ctx.queue.submit([]);
            ctx.wait("uploading the inputs")?;
            profile
                .run_phases
                .push(("input upload".into(), t0.elapsed().as_secs_f64()));
            for (li, l, p) in self.live_launches() {
                let (kernel, name) = &self.launch_kernels[li];
                let t0 = std::time::Instant::now();
                let mut encoder = self.encoder("tessera profile");
                Self::encode_launch(&mut encoder, l, p);
                ctx.queue.submit([encoder.finish()]);
                ctx.wait("running a launch")?;
                let threads =
                    p.grid.iter().map(|&g| u64::from(g)).product::<u64>() * u64::from(p.block);
                profile.launches.push(LaunchTiming {
                    launch: li,
                    kernel: *kernel,
                    name: name.clone(),
                    threads,
                    seconds: t0.elapsed().as_secs_f64(),
                });
            }
            let t0 = std::time::Instant::now();
            let mut encoder = self.encoder("tessera profile");
            self.encode_updates(&mut encoder);
            ctx.queue.submit([encoder.finish()]);
            ctx.wait("copying parameter updates")?;
            profile.run_phases.push((
                format!("{} parameter-update copies", self.updates.len()),
                t0.elapsed().as_secs_f64(),
            ));
            let t0 = std::time::Instant::now();
            let mut encoder = self.encoder("tessera profile");
            self.encode_readback(&mut encoder);
            ctx.queue.submit([encoder.finish()]);
            self.read_outputs()?;
            profile.run_phases.push((
                format!("{} output readbacks", self.outputs.len()),
                t0.elapsed().as_secs_f64(),
            ));
            Ok(profile)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pad_to_four() {
        assert_eq!(pad4(vec![]), vec![0, 0, 0, 0]);
        assert_eq!(pad4(vec![1, 2]), vec![1, 2, 0, 0]);
        assert_eq!(pad4(vec![1, 2, 3, 4]), vec![1, 2, 3, 4]);
    }

    const SRC: &str = "
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@compute @workgroup_size(64)
fn k(@builtin(global_invocation_id) gid: vec3<u32>) {
    y[gid.x] = x[gid.x];
}
";

    #[test]
    fn subgroup_probe_accepts_only_the_real_layout() {
        let dev = WgpuDevice::new().unwrap_or_else(|e| panic!("no wgpu device: {e}"));
        let ctx = &dev.ctx;
        if dev.adapter().name.contains("llvmpipe") {
            // lavapipe: subgroups of 8 consecutive invocations, the 8 x 8 grid's rows.
            assert_eq!(ctx.subgroup_size, Some(8));
            assert_eq!(dev.wgsl_target().subgroup_size, Some(8));
        }
        let Some(size) = ctx.subgroup_size else {
            panic!(
                "adapter `{}` has no usable subgroups: this test needs one that has (lavapipe)",
                dev.adapter()
            );
        };
        assert!(ctx.probe_subgroups(size, 64).unwrap());
        assert!(ctx.probe_subgroups(size, 8 * size).unwrap());
        // A wrong size, or a workgroup that is not whole subgroups, is refused.
        assert!(!ctx.probe_subgroups(size / 2, 64).unwrap());
        assert!(!ctx.probe_subgroups(size * 2, 64).unwrap());
        assert!(!ctx.probe_subgroups(size, 60).unwrap());
    }

    #[test]
    fn bindings_are_reflected_from_wgsl() {
        let r = reflect(SRC, "k.wgsl", "k", 2).unwrap();
        assert_eq!(r.workgroup_size, [64, 1, 1]);
        let b = r.bindings;
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].binding, b[0].read_only), (0, true));
        assert_eq!((b[1].binding, b[1].read_only), (1, false));
    }

    #[test]
    fn reflection_rejects_mismatches() {
        let err = |r: Result<Reflection>| match r {
            Err(RuntimeError::InvalidPlan { message }) => message,
            other => panic!("expected InvalidPlan, got {other:?}"),
        };
        assert!(err(reflect(SRC, "k.wgsl", "other", 2)).contains("entry point"));
        assert!(err(reflect(SRC, "k.wgsl", "k", 1)).contains("binding 1"));
        assert!(err(reflect("fn (", "k.wgsl", "k", 1)).contains("parse"));
        let uniform = SRC.replace("var<storage, read> x", "var<uniform> x");
        let uniform = uniform.replace("array<f32>;\n@compute", "vec4<f32>;\n@compute");
        assert!(err(reflect(&uniform, "k.wgsl", "k", 2)).contains("not a storage"));
    }
}
