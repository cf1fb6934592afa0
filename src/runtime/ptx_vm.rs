//! The PTX VM device: runs the emitted PTX on the host CPU through
//! [`tessera_compiler::ptxvm`], with the CUDA device's plan handling, so the PTX path is
//! executed and checked (numbers, bounds, races, barriers) on machines without a GPU.
//!
//! It compiles for the same record as [`CudaDevice`](super) on an sm_80/sm_90 GPU
//! ([`Target::ptx`] unclamped), so it runs the very PTX text that `shaders/` holds and
//! the CUDA driver would load, with the same kernel ABI: one pointer per kernel buffer in
//! the kernel's parameter order, a block of `KernelInfo::block` threads (checked against
//! the entry's `.reqntid`), the plan's grid. Storage is one zeroed host buffer per storage
//! slot of the memory plan; each kernel argument is bounded by its own buffer's size, so
//! an access past a buffer is an error even where the slot is larger.
//!
//! Slow (an interpreter: about 10^8 instructions per second) and exact about what it
//! checks; see the compiler module for what it does not model.

use super::error::{Result, RuntimeError};
use super::executable::{Executable, Program, Signature};
use super::plan_io::{self, OutputInfo, PlanSlots};
use super::{Device, DeviceKind};
use std::collections::HashMap;
use tessera_compiler::backend::{self, Artifact};
use tessera_compiler::interp::Tensor;
use tessera_compiler::ptxvm::{self, Arg, Machine};
use tessera_compiler::schedule::plan::Plan;
use tessera_compiler::{Graph, Target, TargetKind, TensorType};

/// The PTX virtual machine as a device. Cheap to create; holds no state.
#[derive(Clone, Debug, Default)]
pub struct PtxVmDevice {
    check_races: bool,
    approx_ulps: u32,
}

impl PtxVmDevice {
    /// The device, with race checking on and exactly rounded approximate instructions.
    pub fn new() -> PtxVmDevice {
        PtxVmDevice {
            check_races: true,
            approx_ulps: 0,
        }
    }

    /// The device without the data-race checker (about 1.4x as fast, no shadow memory
    /// (16 bytes per 2 bytes of each buffer); bounds, alignment, barrier and
    /// definedness checks stay on).
    pub fn without_race_checks() -> PtxVmDevice {
        PtxVmDevice {
            check_races: false,
            approx_ulps: 0,
        }
    }

    /// This device with up to `ulps` f32 ulps of error added to every approximate
    /// instruction (`ex2`, `lg2`, `rsqrt`, `rcp.approx`, `sqrt.approx`; see
    /// `tessera_compiler::ptxvm::Machine::approx_ulps`), as a GPU's would be.
    pub fn with_approx_error(self, ulps: u32) -> PtxVmDevice {
        PtxVmDevice {
            approx_ulps: ulps,
            ..self
        }
    }

    /// Loads an already compiled plan and its emitted PTX.
    pub fn load_plan(&self, plan: Plan, artifact: Artifact) -> Result<Executable> {
        let signature = Signature::of_plan(&plan)?;
        let program = VmProgram::new(&plan, &artifact, self.check_races, self.approx_ulps)?;
        Ok(Executable::from_parts(
            signature,
            Some(plan),
            Some(artifact),
            self.name(),
            Box::new(program),
        ))
    }
}

impl Device for PtxVmDevice {
    fn name(&self) -> String {
        "ptx-vm: the emitted PTX on the host CPU".into()
    }

    fn kind(&self) -> DeviceKind {
        DeviceKind::PtxVm
    }

    fn target(&self) -> Option<Target> {
        Some(Target::ptx())
    }

    fn load(&self, graph: &Graph) -> Result<Executable> {
        let target = Target::ptx();
        let plan = tessera_compiler::compile(graph, &target)?;
        let artifact = backend::emit(&plan, &target)?;
        self.load_plan(plan, artifact)
    }
}

struct VmKernel {
    kernel: ptxvm::Kernel,
    grid: [u32; 3],
    block: u32,
}

struct VmLaunch {
    kernel: usize,
    args: Vec<Arg>,
}

/// A plan loaded into the VM.
struct VmProgram {
    machine: Machine,
    kernels: Vec<VmKernel>,
    launches: Vec<VmLaunch>,
    inputs: HashMap<String, usize>,
    params: HashMap<String, usize>,
    outputs: Vec<OutputInfo>,
    /// `(source slot, parameter slot, bytes)` copied after the last launch of a run.
    updates: Vec<(usize, usize, usize)>,
}

impl VmProgram {
    fn new(
        plan: &Plan,
        artifact: &Artifact,
        check_races: bool,
        approx_ulps: u32,
    ) -> Result<VmProgram> {
        plan_io::check_plan(plan, artifact, TargetKind::Ptx, "PTX VM")?;
        let mut machine = Machine::new(&plan_io::slot_sizes(plan));
        machine.check_races = check_races;
        machine.approx_ulps = approx_ulps;
        let mut modules: HashMap<&str, ptxvm::Module> = HashMap::new();
        let mut kernels = Vec::with_capacity(plan.kernels.len());
        for (kernel, info) in plan.kernels.iter().zip(&artifact.kernels) {
            let invalid = |message: String| RuntimeError::InvalidPlan {
                message: format!("kernel `{}`: {message}", info.name),
            };
            if info.grid != kernel.grid {
                return Err(invalid(format!(
                    "the plan's grid is {:?}, the emitted kernel's {:?}",
                    kernel.grid, info.grid
                )));
            }
            if !modules.contains_key(info.file.as_str()) {
                let file = artifact
                    .files
                    .iter()
                    .find(|f| f.name == info.file)
                    .ok_or_else(|| {
                        invalid(format!("names file `{}`, which is missing", info.file))
                    })?;
                let module = ptxvm::parse(&file.contents)
                    .map_err(|e| invalid(format!("`{}`: {e}", file.name)))?;
                modules.insert(info.file.as_str(), module);
            }
            let entry = modules[info.file.as_str()]
                .kernel(&info.name)
                .ok_or_else(|| invalid(format!("`{}` has no entry of that name", info.file)))?;
            if entry.params.len() != kernel.params.len() {
                return Err(invalid(format!(
                    "the PTX entry takes {} pointers, the plan's kernel {} buffers",
                    entry.params.len(),
                    kernel.params.len()
                )));
            }
            kernels.push(VmKernel {
                kernel: entry.clone(),
                grid: info.grid,
                block: info.block,
            });
        }
        let launches = plan
            .launches
            .iter()
            .map(|l| VmLaunch {
                kernel: l.kernel,
                args: l
                    .args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        let b = plan.buffer(*a);
                        let names = &artifact.kernels[l.kernel].params;
                        Arg {
                            slot: b.storage,
                            bytes: (b.len * b.dtype.size_bytes()) as u64,
                            name: names.get(i).cloned().unwrap_or_else(|| format!("p{i}")),
                        }
                    })
                    .collect(),
            })
            .collect();
        let PlanSlots {
            inputs,
            params,
            constants,
            outputs,
        } = PlanSlots::of(plan);
        let mut program = VmProgram {
            machine,
            kernels,
            launches,
            inputs,
            params,
            outputs,
            updates: Vec::new(),
        };
        for (slot, bytes) in constants {
            program.upload(slot, &bytes, "filling a constant")?;
        }
        Ok(program)
    }

    fn upload(&mut self, slot: usize, bytes: &[u8], during: &str) -> Result<()> {
        let dst = self
            .machine
            .memory
            .slot_mut(slot)
            .ok_or_else(|| RuntimeError::InvalidPlan {
                message: format!("{during}: storage slot {slot} does not exist"),
            })?;
        let len = dst.len();
        dst.get_mut(..bytes.len())
            .ok_or_else(|| RuntimeError::InvalidPlan {
                message: format!(
                    "{during}: {} bytes do not fit storage slot {slot} ({len} bytes)",
                    bytes.len()
                ),
            })?
            .copy_from_slice(bytes);
        Ok(())
    }

    fn download(&self, slot: usize, bytes: usize, during: &str) -> Result<Vec<u8>> {
        self.machine
            .memory
            .slot(slot)
            .and_then(|s| s.get(..bytes))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| RuntimeError::InvalidPlan {
                message: format!("{during}: storage slot {slot} holds fewer than {bytes} bytes"),
            })
    }
}

impl Program for VmProgram {
    fn set_param(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let slot = plan_io::param_slot(&self.params, name)?;
        self.upload(slot, &value.to_bytes(), "uploading a parameter")
    }

    fn get_param(&self, name: &str, ty: &TensorType) -> Result<Tensor> {
        let slot = plan_io::param_slot(&self.params, name)?;
        let bytes = self.download(slot, ty.size_bytes(), "reading a parameter back")?;
        Ok(Tensor::from_bytes(&ty.shape, ty.dtype, &bytes)?)
    }

    fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
        let slots: Vec<(String, usize)> =
            self.inputs.iter().map(|(n, &s)| (n.clone(), s)).collect();
        for (name, slot) in slots {
            let t = inputs
                .get(&name)
                .ok_or_else(|| RuntimeError::MissingInput { name: name.clone() })?;
            self.upload(slot, &t.to_bytes(), "uploading an input")?;
        }
        let VmProgram {
            machine,
            kernels,
            launches,
            ..
        } = self;
        let start = std::time::Instant::now();
        let mut instructions = 0u64;
        for l in launches.iter() {
            let k = &kernels[l.kernel];
            if k.grid.contains(&0) {
                continue;
            }
            instructions += machine
                .launch(&k.kernel, k.grid, k.block, &l.args)?
                .instructions;
        }
        let secs = start.elapsed().as_secs_f64();
        log::debug!(
            "PTX VM: {} launches, {instructions} instructions in {secs:.2} s ({:.0} M/s)",
            launches.len(),
            instructions as f64 / secs.max(1e-9) / 1e6
        );
        for (src, dst, bytes) in self.updates.clone() {
            let value = self.download(src, bytes, "updating a parameter")?;
            self.upload(dst, &value, "updating a parameter")?;
        }
        let mut out = HashMap::with_capacity(self.outputs.len());
        for o in &self.outputs {
            let bytes = self.download(o.storage, o.bytes, "reading an output back")?;
            out.insert(o.name.clone(), o.tensor(&bytes)?);
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
