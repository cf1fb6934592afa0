//! The CPU device: the reference interpreters behind the [`Device`] interface.
//!
//! [`CpuDevice::reference`] evaluates the graph itself in f64 with
//! `tessera_compiler::interp::run_graph` (the oracle; nothing is compiled, so it works for
//! any valid graph). [`CpuDevice::tile`] compiles the graph for a target record (WGSL's by
//! default) and runs the plan's tile kernels in f32 with `tessera_compiler::interp::run_plan`,
//! memory plan included: the compiled kernels without any device in the way. Both bound
//! the memory a run holds ([`interp::Limits`], 8 GiB by default; [`CpuDevice::with_limits`]):
//! past it a run is an error naming the node, not an allocation the system kills.

use super::error::Result;
use super::executable::{Executable, Program, Signature};
use super::{Device, DeviceKind};
use std::collections::HashMap;
use tessera_compiler::interp::{self, Tensor};
use tessera_compiler::schedule::plan::Plan;
use tessera_compiler::{Graph, Target, TensorType};

/// Which interpreter a [`CpuDevice`] runs.
#[derive(Clone, Debug, PartialEq)]
pub enum CpuMode {
    /// The graph interpreter in f64 (the oracle).
    Reference,
    /// The tile interpreter in f32 over the plan compiled for this target record.
    Tile(Target),
}

/// A device that runs graphs on the host CPU with the reference interpreters.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuDevice {
    mode: CpuMode,
    limits: interp::Limits,
}

impl CpuDevice {
    /// The f64 graph interpreter (no compilation).
    pub fn reference() -> CpuDevice {
        CpuDevice {
            mode: CpuMode::Reference,
            limits: interp::Limits::default(),
        }
    }

    /// The f32 tile interpreter over the plan compiled for the WGSL target record.
    pub fn tile() -> CpuDevice {
        CpuDevice::tile_for(Target::wgsl())
    }

    /// The f32 tile interpreter over the plan compiled for `target`.
    pub fn tile_for(target: Target) -> CpuDevice {
        CpuDevice {
            mode: CpuMode::Tile(target),
            limits: interp::Limits::default(),
        }
    }

    /// The same interpreter under another memory bound (for executables loaded after).
    pub fn with_limits(self, limits: interp::Limits) -> CpuDevice {
        CpuDevice { limits, ..self }
    }

    /// The memory bound of this device's runs.
    pub fn limits(&self) -> interp::Limits {
        self.limits
    }

    /// Which interpreter this is.
    pub fn mode(&self) -> &CpuMode {
        &self.mode
    }
}

impl Device for CpuDevice {
    fn name(&self) -> String {
        match &self.mode {
            CpuMode::Reference => "cpu: graph interpreter (f64)".to_string(),
            CpuMode::Tile(t) => format!("cpu: tile interpreter (f32, {} plan)", t.kind),
        }
    }

    fn kind(&self) -> DeviceKind {
        DeviceKind::Cpu
    }

    fn target(&self) -> Option<Target> {
        match &self.mode {
            CpuMode::Reference => None,
            CpuMode::Tile(t) => Some(t.clone()),
        }
    }

    fn load(&self, graph: &Graph) -> Result<Executable> {
        match &self.mode {
            CpuMode::Reference => {
                graph
                    .validate()
                    .map_err(tessera_compiler::CompileError::from)?;
                Ok(Executable::from_parts(
                    Signature::of_graph(graph),
                    None,
                    None,
                    self.name(),
                    Box::new(CpuProgram {
                        what: What::Graph(graph.clone()),
                        limits: self.limits,
                        params: HashMap::new(),
                        updates: Vec::new(),
                        discarded: Vec::new(),
                    }),
                ))
            }
            CpuMode::Tile(target) => {
                let plan = tessera_compiler::compile(graph, target)?;
                Ok(self.load_plan_tile(plan)?)
            }
        }
    }
}

impl CpuDevice {
    /// Loads an already compiled plan on the tile interpreter.
    pub fn load_plan(&self, plan: Plan) -> Result<Executable> {
        self.load_plan_tile(plan)
    }

    fn load_plan_tile(&self, plan: Plan) -> Result<Executable> {
        let signature = Signature::of_plan(&plan)?;
        Ok(Executable::from_parts(
            signature,
            Some(plan.clone()),
            None,
            self.name(),
            Box::new(CpuProgram {
                what: What::Plan(plan),
                limits: self.limits,
                params: HashMap::new(),
                updates: Vec::new(),
                discarded: Vec::new(),
            }),
        ))
    }
}

enum What {
    Graph(Graph),
    Plan(Plan),
}

/// Graph or plan plus the parameter values ("on the device" = in host memory).
struct CpuProgram {
    what: What,
    limits: interp::Limits,
    params: HashMap<String, Tensor>,
    /// `(output, param)`: after a run the output's value becomes the parameter's.
    updates: Vec<(String, String)>,
    /// Outputs not returned.
    discarded: Vec<String>,
}

impl Program for CpuProgram {
    fn set_param(&mut self, name: &str, value: &Tensor) -> Result<()> {
        // What a device buffer would hold: the values rounded to the dtype.
        let mut stored = value.clone();
        for v in &mut stored.data {
            *v = interp::round_to_dtype(*v, stored.dtype);
        }
        self.params.insert(name.to_string(), stored);
        Ok(())
    }

    fn get_param(&self, name: &str, ty: &TensorType) -> Result<Tensor> {
        Ok(self
            .params
            .get(name)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(&ty.shape, ty.dtype)))
    }

    fn run(&mut self, inputs: &HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
        let mut all = inputs.clone();
        for (k, v) in &self.params {
            all.insert(k.clone(), v.clone());
        }
        let mut out = match &self.what {
            What::Graph(g) => interp::run_graph_with(g, &all, &self.limits)?,
            What::Plan(p) => interp::run_plan_with(p, &all, &self.limits)?,
        };
        // Every update reads this run's outputs, so the order of the moves is irrelevant.
        for (o, p) in &self.updates {
            if let Some(mut t) = out.remove(o) {
                for v in &mut t.data {
                    *v = interp::round_to_dtype(*v, t.dtype);
                }
                self.params.insert(p.clone(), t);
            }
        }
        for o in &self.discarded {
            out.remove(o);
        }
        Ok(out)
    }

    fn bind_update(&mut self, output: &str, param: &str) -> Result<()> {
        self.updates.push((output.to_string(), param.to_string()));
        Ok(())
    }

    fn discard_output(&mut self, output: &str) -> Result<()> {
        self.discarded.push(output.to_string());
        Ok(())
    }
}
