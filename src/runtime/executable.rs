//! [`Executable`]: a compiled graph loaded on a device, with its parameters.
//!
//! The executable checks everything a caller supplies (names, shapes, dtypes, data
//! lengths, parameters set) before the device sees it, so every backend gets the same
//! typed errors; the backend-specific part is a `Program` (one per device kind).

use super::error::{Result, RuntimeError};
use super::Device;
use std::collections::{HashMap, HashSet};
use std::fmt;
use tessera_compiler::backend::Artifact;
use tessera_compiler::interp::Tensor;
use tessera_compiler::schedule::plan::{BufferRole, Plan};
use tessera_compiler::{Graph, TensorType};

/// The names and types an executable takes and returns.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Signature {
    /// Run-time inputs, uploaded on every [`Executable::run`].
    pub inputs: Vec<(String, TensorType)>,
    /// Parameters, kept on the device across runs.
    pub params: Vec<(String, TensorType)>,
    /// Outputs returned by [`Executable::run`], in graph output order.
    pub outputs: Vec<(String, TensorType)>,
}

impl Signature {
    /// The signature of a graph: its `input` and `param` nodes and its outputs.
    pub fn of_graph(graph: &Graph) -> Signature {
        let leaf = |id| {
            let n = graph.node(id);
            (n.name.clone(), n.ty.clone())
        };
        Signature {
            inputs: graph.inputs().into_iter().map(leaf).collect(),
            params: graph.params().into_iter().map(leaf).collect(),
            outputs: graph.outputs().iter().map(|&id| leaf(id)).collect(),
        }
    }

    /// The signature of a plan: its input and parameter buffers and its outputs.
    pub fn of_plan(plan: &Plan) -> Result<Signature> {
        let mut sig = Signature::default();
        for b in &plan.buffers {
            let ty = TensorType::new(b.shape.clone(), b.dtype);
            match &b.role {
                BufferRole::Input { name } => sig.inputs.push((name.clone(), ty)),
                BufferRole::Param { name } => sig.params.push((name.clone(), ty)),
                _ => {}
            }
        }
        for (name, id) in &plan.outputs {
            let b = plan
                .buffers
                .get(id.0 as usize)
                .ok_or_else(|| RuntimeError::InvalidPlan {
                    message: format!("output `{name}` refers to missing buffer {}", id.0),
                })?;
            sig.outputs
                .push((name.clone(), TensorType::new(b.shape.clone(), b.dtype)));
        }
        Ok(sig)
    }

    fn input(&self, name: &str) -> Option<&TensorType> {
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    fn param(&self, name: &str) -> Option<&TensorType> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// The backend-specific half of an [`Executable`]. Tensors it receives have been checked
/// against the [`Signature`] already.
pub(crate) trait Program: Send + Sync {
    /// Stores a parameter's value (on the device).
    fn set_param(&mut self, name: &str, value: &Tensor) -> Result<()>;
    /// Reads a parameter back (from the device).
    fn get_param(&self, name: &str, ty: &TensorType) -> Result<Tensor>;
    /// Runs once: all inputs present and checked, all parameters set. Outputs bound by
    /// [`Program::bind_update`] or dropped by [`Program::discard_output`] are not returned.
    fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>>;
    /// After every later run, the value of `output` replaces parameter `param` on the
    /// device (types checked equal, neither bound before); `output` is no longer returned.
    fn bind_update(&mut self, output: &str, param: &str) -> Result<()>;
    /// `output` is still computed but no longer read back by later runs.
    fn discard_output(&mut self, output: &str) -> Result<()>;
    /// Runs once like [`Program::run`] (bound updates applied, outputs read back and
    /// dropped), timing every launch on its own. Devices that cannot time launches keep
    /// this default, which fails with [`RuntimeError::Unsupported`].
    fn profile(&mut self, inputs: &HashMap<String, Tensor>) -> Result<Profile> {
        let _ = inputs;
        Err(RuntimeError::Unsupported {
            operation: "per-launch profiling",
            device: "this device".into(),
        })
    }
}

/// The measured time of one launch of a plan ([`Executable::profile`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchTiming {
    /// Index of the launch in the plan's launch order.
    pub launch: usize,
    /// Index of the plan kernel it runs (several launches may share one kernel).
    pub kernel: usize,
    /// The kernel's name.
    pub name: String,
    /// Threads per workgroup times workgroups: the launch's total thread count.
    pub threads: u64,
    /// Wall time from submission to completion, in seconds (on wgpu: the launch alone
    /// in one submission, waited for with a blocking poll, so it includes the
    /// submission overhead of a few tens of microseconds).
    pub seconds: f64,
}

/// Per-launch timings of one run and what else the run and the load spent time on.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Profile {
    /// Every launch, in plan order (launches with an empty grid are skipped).
    pub launches: Vec<LaunchTiming>,
    /// Other phases of the profiled run (uploads, parameter-update copies, readback),
    /// `(what, seconds)`.
    pub run_phases: Vec<(String, f64)>,
    /// Phases of loading the executable (shader modules, pipelines, bind groups),
    /// `(what, seconds)`, as measured when it was loaded.
    pub load_phases: Vec<(String, f64)>,
}

/// Timings of the launches of one kernel, summed ([`Profile::by_kernel`]).
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTiming {
    /// Index of the plan kernel.
    pub kernel: usize,
    /// The kernel's name.
    pub name: String,
    /// How many launches ran it.
    pub launches: usize,
    /// Their summed wall time in seconds.
    pub seconds: f64,
}

impl Profile {
    /// Summed wall time of the launches, in seconds.
    pub fn launch_seconds(&self) -> f64 {
        self.launches.iter().map(|l| l.seconds).sum()
    }

    /// The launches grouped by plan kernel, the most expensive kernel first.
    pub fn by_kernel(&self) -> Vec<KernelTiming> {
        let mut out: Vec<KernelTiming> = Vec::new();
        for l in &self.launches {
            match out.iter_mut().find(|k| k.kernel == l.kernel) {
                Some(k) => {
                    k.launches += 1;
                    k.seconds += l.seconds;
                }
                None => out.push(KernelTiming {
                    kernel: l.kernel,
                    name: l.name.clone(),
                    launches: 1,
                    seconds: l.seconds,
                }),
            }
        }
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        out
    }
}

/// A compiled graph on a device: kernels, buffers (with the memory plan's storage
/// sharing) and parameters that stay on the device across runs.
pub struct Executable {
    signature: Signature,
    plan: Option<Plan>,
    artifact: Option<Artifact>,
    device_name: String,
    params_set: HashSet<String>,
    /// `(output, param)` pairs bound by [`Executable::bind_update`], in binding order.
    updates: Vec<(String, String)>,
    /// Outputs computed but not read back ([`Executable::discard_output`]).
    discarded: HashSet<String>,
    program: Box<dyn Program>,
}

impl fmt::Debug for Executable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executable")
            .field("device", &self.device_name)
            .field("signature", &self.signature)
            .field("kernels", &self.plan.as_ref().map(|p| p.kernels.len()))
            .field("launches", &self.plan.as_ref().map(|p| p.launches.len()))
            .finish_non_exhaustive()
    }
}

impl Executable {
    /// Compiles `graph` for `device` and loads it there (same as `device.load(graph)`).
    pub fn new(graph: &Graph, device: &dyn Device) -> Result<Executable> {
        device.load(graph)
    }

    pub(crate) fn from_parts(
        signature: Signature,
        plan: Option<Plan>,
        artifact: Option<Artifact>,
        device_name: String,
        program: Box<dyn Program>,
    ) -> Executable {
        Executable {
            signature,
            plan,
            artifact,
            device_name,
            params_set: HashSet::new(),
            updates: Vec::new(),
            discarded: HashSet::new(),
            program,
        }
    }

    /// Inputs, parameters and outputs.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The execution plan, when the device compiled the graph.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// The emitted kernels, when the device runs emitted code.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.artifact.as_ref()
    }

    /// Name of the device it was loaded on.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Whether a parameter has been set.
    pub fn is_param_set(&self, name: &str) -> bool {
        self.params_set.contains(name)
    }

    fn unknown_param(&self, name: &str) -> RuntimeError {
        RuntimeError::UnknownParam {
            name: name.to_string(),
            known: self
                .signature
                .params
                .iter()
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }

    /// Uploads a parameter; it stays on the device until set again.
    pub fn set_param(&mut self, name: &str, value: &Tensor) -> Result<()> {
        let ty = self
            .signature
            .param(name)
            .ok_or_else(|| self.unknown_param(name))?;
        check_tensor(name, ty, value)?;
        self.program.set_param(name, value)?;
        self.params_set.insert(name.to_string());
        Ok(())
    }

    /// Reads a parameter back from the device.
    pub fn get_param(&self, name: &str) -> Result<Tensor> {
        let ty = self
            .signature
            .param(name)
            .ok_or_else(|| self.unknown_param(name))?;
        if !self.params_set.contains(name) {
            return Err(RuntimeError::ParamNotSet {
                name: name.to_string(),
            });
        }
        self.program.get_param(name, ty)
    }

    /// Declares that after every run the value of graph output `output` replaces the
    /// parameter `param`, on the device: the training-state convention. A training
    /// graph computes `p_new` from `p` (and gradients, optimizer moments, ...); binding
    /// `p_new -> p` makes the next run see the updated value without it ever leaving the
    /// device. On wgpu the copies are encoded after the last launch of the run, in the
    /// same command encoder, so a whole step stays one submission; on the CPU devices the
    /// value is moved into the stored parameter. A bound output is no longer returned by
    /// [`Executable::run`] (read the parameter with [`Executable::get_param`]).
    ///
    /// Errors: an unknown output or parameter, different types, an output or parameter
    /// bound twice ([`RuntimeError::InvalidUpdate`]).
    pub fn bind_update(&mut self, output: &str, param: &str) -> Result<()> {
        let invalid = |reason: String| RuntimeError::InvalidUpdate {
            output: output.to_string(),
            param: param.to_string(),
            reason,
        };
        let out_ty = self
            .signature
            .outputs
            .iter()
            .find(|(n, _)| n == output)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| {
                invalid(format!(
                    "no such output (outputs: {:?})",
                    self.signature
                        .outputs
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                ))
            })?;
        let param_ty = self
            .signature
            .param(param)
            .cloned()
            .ok_or_else(|| self.unknown_param(param))?;
        if out_ty != param_ty {
            return Err(invalid(format!(
                "the output is {out_ty}, the parameter {param_ty}"
            )));
        }
        if let Some((o, _)) = self.updates.iter().find(|(_, p)| p == param) {
            return Err(invalid(format!(
                "the parameter is already updated from `{o}`"
            )));
        }
        if let Some((_, p)) = self.updates.iter().find(|(o, _)| o == output) {
            return Err(invalid(format!("the output already updates `{p}`")));
        }
        if self.discarded.contains(output) {
            return Err(invalid("the output was discarded".into()));
        }
        self.program.bind_update(output, param)?;
        self.updates.push((output.to_string(), param.to_string()));
        Ok(())
    }

    /// The `(output, param)` pairs bound by [`Executable::bind_update`], in binding order.
    pub fn updates(&self) -> &[(String, String)] {
        &self.updates
    }

    /// Stops reading `output` back after runs (it is still computed, e.g. because the
    /// graph needs it as an intermediate value): saves a device-to-host copy per run.
    pub fn discard_output(&mut self, output: &str) -> Result<()> {
        if !self.signature.outputs.iter().any(|(n, _)| n == output) {
            return Err(RuntimeError::InvalidUpdate {
                output: output.to_string(),
                param: String::new(),
                reason: "cannot discard: no such output".into(),
            });
        }
        if self.discarded.contains(output) || self.updates.iter().any(|(o, _)| o == output) {
            return Ok(());
        }
        self.program.discard_output(output)?;
        self.discarded.insert(output.to_string());
        Ok(())
    }

    /// The outputs [`Executable::run`] returns: the graph's outputs less the bound and
    /// discarded ones, in graph output order.
    pub fn fetched_outputs(&self) -> Vec<&str> {
        self.signature
            .outputs
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !self.discarded.contains(*n) && !self.updates.iter().any(|(o, _)| o == n))
            .collect()
    }

    /// Uploads the inputs, runs every launch of the plan, applies the bound parameter
    /// updates ([`Executable::bind_update`]) and returns the other outputs by name.
    /// Every input must be supplied (and nothing else); every parameter must be set.
    pub fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
        self.check_run_inputs(inputs)?;
        self.program.run(inputs)
    }

    /// The checks of [`Executable::run`]: every input supplied and well-typed, nothing
    /// else supplied, every parameter set.
    fn check_run_inputs(&self, inputs: &HashMap<String, Tensor>) -> Result<()> {
        for (name, ty) in &self.signature.inputs {
            let t = inputs
                .get(name)
                .ok_or_else(|| RuntimeError::MissingInput { name: name.clone() })?;
            check_tensor(name, ty, t)?;
        }
        if let Some(extra) = inputs.keys().find(|k| self.signature.input(k).is_none()) {
            let mut known: Vec<String> = self
                .signature
                .inputs
                .iter()
                .map(|(n, _)| n.clone())
                .collect();
            known.sort();
            return Err(RuntimeError::UnknownInput {
                name: extra.clone(),
                known,
            });
        }
        if let Some((name, _)) = self
            .signature
            .params
            .iter()
            .find(|(n, _)| !self.params_set.contains(n))
        {
            return Err(RuntimeError::ParamNotSet { name: name.clone() });
        }
        Ok(())
    }
}

impl Executable {
    /// Runs once, like [`Executable::run`] (same checks; bound parameter updates are
    /// applied, so this is a real step of a training graph), timing each launch on its
    /// own: on wgpu every launch is submitted alone and waited for, so the sum of the
    /// launch times exceeds a normal run's time by the per-submission overhead. The
    /// outputs are read back and dropped. Devices that cannot time launches fail with
    /// [`RuntimeError::Unsupported`].
    pub fn profile(&mut self, inputs: &HashMap<String, Tensor>) -> Result<Profile> {
        self.check_run_inputs(inputs)?;
        self.program.profile(inputs).map_err(|e| match e {
            RuntimeError::Unsupported { operation, .. } => RuntimeError::Unsupported {
                operation,
                device: self.device_name.clone(),
            },
            other => other,
        })
    }
}

/// Checks a supplied tensor against a declared type.
pub(crate) fn check_tensor(name: &str, ty: &TensorType, t: &Tensor) -> Result<()> {
    if t.shape != ty.shape {
        return Err(RuntimeError::ShapeMismatch {
            name: name.to_string(),
            expected: ty.shape.clone(),
            got: t.shape.clone(),
        });
    }
    if t.dtype != ty.dtype {
        return Err(RuntimeError::DTypeMismatch {
            name: name.to_string(),
            expected: ty.dtype,
            got: t.dtype,
        });
    }
    let n = ty.numel();
    if t.data.len() != n {
        return Err(RuntimeError::DataLength {
            name: name.to_string(),
            shape: t.shape.clone(),
            expected: n,
            got: t.data.len(),
        });
    }
    Ok(())
}
