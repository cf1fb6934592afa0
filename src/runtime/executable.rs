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
    /// Runs once: all inputs present and checked, all parameters set.
    fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>>;
}

/// A compiled graph on a device: kernels, buffers (with the memory plan's storage
/// sharing) and parameters that stay on the device across runs.
pub struct Executable {
    signature: Signature,
    plan: Option<Plan>,
    artifact: Option<Artifact>,
    device_name: String,
    params_set: HashSet<String>,
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

    /// Uploads the inputs, runs every launch of the plan, and returns the outputs by name.
    /// Every input must be supplied (and nothing else); every parameter must be set.
    pub fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
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
        self.program.run(inputs)
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
