//! The training loop's core: one compiled graph per training step, with parameters,
//! gradients and AdamW moments kept on the device.
//!
//! # The training graph
//! [`build_training_graph`] takes a forward graph with a scalar loss and the parameters to
//! train, builds the gradients with [`tessera_compiler::autodiff::grad`], and hands them
//! to [`training_graph_from_grads`] — which also accepts any graph that already computes
//! its gradients (hand-written ones, or another differentiation). That adds:
//! - per parameter `p`, two parameters [`MOMENT_M_PREFIX`]`p` and [`MOMENT_V_PREFIX`]`p`
//!   (same type, start at zero);
//! - the input of [`AdamWInputs`] named [`ADAMW_INPUT_PREFIX`]`step` (`[lr, bc1, bc2]`),
//!   filled per step by [`AdamW::step_values`];
//! - the AdamW update ([`AdamW::step`]), whose outputs are named [`new_name`]`(p)`
//!   (`new/<p>`, `new/adamw.m/<p>`, `new/adamw.v/<p>`);
//! - outputs: the loss, then every new value. Gradients are intermediate values, not
//!   outputs.
//!
//! # The trainer
//! [`Trainer::new`] loads the graph on a device and binds every `new/x` output to its
//! parameter `x` ([`crate::runtime::Executable::bind_update`]): a step uploads the batch
//! and the three AdamW scalars, runs every kernel (one submission on wgpu, the updates copied in
//! the same command encoder) and reads back the loss alone. Evaluation runs a separate
//! forward executable whose parameters are refreshed from the training executable (a
//! read-back) before each evaluation. Checkpoints hold every parameter of the training
//! executable (model parameters and moments), the step, the data RNG state and the model
//! config.
//!
//! On the Ascend C CPU build a step is a whole process run (see
//! [`crate::runtime::ascend_cpu`]): parameters go in and out through files each step.

use super::checkpoint::{Checkpoint, MOMENT_M_PREFIX, MOMENT_V_PREFIX};
use super::schedule::LrSchedule;
use super::TrainError;
use crate::runtime::{Device, Executable, Profile};
use std::collections::HashMap;
use std::path::Path;
use tessera_compiler::graph::{Graph, NodeId};
use tessera_compiler::interp::Tensor;
use tessera_compiler::optim::{AdamW, AdamWInputs, ParamState};
use tessera_models::data::{Batch, Dataset, Split};
use tessera_models::gpt::{gpt_forward, GptConfig, GptOutput};
use tessera_models::rng::Rng;

/// Prefix of the AdamW per-step input (`adamw.step`: `[lr, bc1, bc2]`).
pub const ADAMW_INPUT_PREFIX: &str = "adamw.";

/// Name of the output holding the updated value of parameter `name`.
pub fn new_name(name: &str) -> String {
    format!("new/{name}")
}

/// A training graph and what the trainer needs to know about it.
#[derive(Clone, Debug)]
pub struct TrainGraph {
    /// The graph: forward, backward, update (see the module docs).
    pub graph: Graph,
    /// Name of the loss output.
    pub loss: String,
    /// Trained model parameters: name and whether weight decay applies.
    pub params: Vec<(String, bool)>,
    /// `(output, parameter)` bindings: every parameter and moment to its new value.
    pub updates: Vec<(String, String)>,
    /// The optimizer hyper-parameters built into the graph.
    pub adamw: AdamW,
}

impl TrainGraph {
    /// The names of the data inputs (graph inputs other than the AdamW scalars).
    pub fn data_inputs(&self) -> Vec<String> {
        self.graph
            .inputs()
            .into_iter()
            .map(|id| self.graph.node(id).name.clone())
            .filter(|n| !n.starts_with(ADAMW_INPUT_PREFIX))
            .collect()
    }
}

/// Forward graph + loss + trained parameters (`(name, decay)`) → training graph, the
/// gradients built by reverse-mode autodiff.
pub fn build_training_graph(
    forward: &Graph,
    loss: NodeId,
    params: &[(String, bool)],
    adamw: &AdamW,
) -> Result<TrainGraph, TrainError> {
    let mut wrt = Vec::with_capacity(params.len());
    for (name, _) in params {
        let id = forward
            .find(name)
            .ok_or_else(|| TrainError::Invalid(format!("no parameter `{name}` in the graph")))?;
        wrt.push(id);
    }
    let gg = tessera_compiler::grad(forward, loss, &wrt)?;
    let triples: Vec<(NodeId, NodeId, bool)> = wrt
        .iter()
        .zip(&gg.grads)
        .zip(params)
        .map(|((&p, &g), (_, decay))| (p, g, *decay))
        .collect();
    training_graph_from_grads(&gg.graph, gg.loss, &triples, adamw)
}

/// A graph that already computes the loss and the gradient of each parameter
/// (`(param, grad, decay)` triples) → training graph. The graph's own outputs are
/// dropped; its nodes are copied with the same ids.
pub fn training_graph_from_grads(
    graph: &Graph,
    loss: NodeId,
    params: &[(NodeId, NodeId, bool)],
    adamw: &AdamW,
) -> Result<TrainGraph, TrainError> {
    let mut g = Graph::new();
    for node in graph.nodes() {
        let leaf = node.op.is_leaf().then(|| node.ty.clone());
        g.push(node.op.clone(), node.inputs.clone(), leaf, Some(&node.name))?;
    }
    let loss_name = graph
        .get(loss)
        .map(|n| n.name.clone())
        .ok_or_else(|| TrainError::Invalid("the loss is not a node of the graph".into()))?;
    let inputs = AdamWInputs::add(&mut g, ADAMW_INPUT_PREFIX)?;
    let mut states = Vec::with_capacity(params.len());
    let mut names = Vec::with_capacity(params.len());
    for &(p, grad, decay) in params {
        let node = graph
            .get(p)
            .ok_or_else(|| TrainError::Invalid(format!("parameter {p:?} is not in the graph")))?;
        if !matches!(node.op, tessera_compiler::graph::Op::Param) {
            return Err(TrainError::Invalid(format!(
                "`{}` is not a parameter node",
                node.name
            )));
        }
        if graph.get(grad).is_none() {
            return Err(TrainError::Invalid(format!(
                "the gradient {grad:?} of `{}` is not a node of the graph",
                node.name
            )));
        }
        let name = node.name.clone();
        let ty = node.ty.clone();
        let m = g.param(&format!("{MOMENT_M_PREFIX}{name}"), &ty.shape, ty.dtype)?;
        let v = g.param(&format!("{MOMENT_V_PREFIX}{name}"), &ty.shape, ty.dtype)?;
        states.push(ParamState {
            param: p,
            grad,
            m,
            v,
            decay,
        });
        names.push((name, decay));
    }
    let new = adamw.step(&mut g, &inputs, &states)?;
    g.mark_output(loss)?;
    let mut updates = Vec::with_capacity(3 * new.len());
    for ((name, _), u) in names.iter().zip(&new) {
        for (id, target) in [
            (u.param, name.clone()),
            (u.m, format!("{MOMENT_M_PREFIX}{name}")),
            (u.v, format!("{MOMENT_V_PREFIX}{name}")),
        ] {
            let out = new_name(&target);
            g.set_name(id, &out)?;
            g.mark_output(id)?;
            updates.push((out, target));
        }
    }
    g.validate()?;
    Ok(TrainGraph {
        graph: g,
        loss: loss_name,
        params: names,
        updates,
        adamw: *adamw,
    })
}

/// What a [`Trainer`] needs besides the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerOptions {
    /// Learning rate per step.
    pub schedule: LrSchedule,
    /// Seed of the data RNG (stream `"data"`).
    pub seed: u64,
    /// The model config, stored in checkpoints (JSON).
    pub config: serde_json::Value,
}

/// A training graph loaded on a device, with its state (see the module docs).
#[derive(Debug)]
pub struct Trainer {
    exe: Executable,
    eval: Option<(Executable, String)>,
    tg: TrainGraph,
    options: TrainerOptions,
    step: u64,
    rng: Rng,
    losses: Vec<(u64, f64)>,
}

impl Trainer {
    /// Loads `tg` on `device`, sets every model parameter from `init` (each must be
    /// there), zeroes the moments, binds the updates and seeds the data RNG.
    pub fn new(
        device: &dyn Device,
        tg: TrainGraph,
        init: &HashMap<String, Tensor>,
        options: TrainerOptions,
    ) -> Result<Trainer, TrainError> {
        let exe = device.load(&tg.graph)?;
        Trainer::with_executable(exe, tg, init, options)
    }

    /// [`Trainer::new`] for `tg.graph` already loaded as `exe` (say, from a plan compiled
    /// and emitted separately, to time or inspect those stages): sets the parameters from
    /// `init`, zeroes the moments, binds the updates and seeds the data RNG.
    pub fn with_executable(
        mut exe: Executable,
        tg: TrainGraph,
        init: &HashMap<String, Tensor>,
        options: TrainerOptions,
    ) -> Result<Trainer, TrainError> {
        for (name, _) in &tg.params {
            let t = init
                .get(name)
                .ok_or_else(|| TrainError::Invalid(format!("no initial value for `{name}`")))?;
            exe.set_param(name, t)?;
        }
        let sig = exe.signature().clone();
        for (name, ty) in &sig.params {
            if name.starts_with(MOMENT_M_PREFIX) || name.starts_with(MOMENT_V_PREFIX) {
                exe.set_param(name, &Tensor::zeros(&ty.shape, ty.dtype))?;
            }
        }
        for (out, param) in &tg.updates {
            exe.bind_update(out, param)?;
        }
        let rng = Rng::for_stream(options.seed, "data");
        Ok(Trainer {
            exe,
            eval: None,
            tg,
            options,
            step: 0,
            rng,
            losses: Vec::new(),
        })
    }

    /// Loads `tg` on `device` and takes its whole state from `ck` (saved on any device):
    /// every parameter and moment, the step (so the learning-rate schedule and the bias
    /// corrections continue where they were) and the data RNG. The checkpoint must hold
    /// exactly the executable's parameters (every mismatch reported at once) and its
    /// config must equal `options.config`; `options.seed` is not used (the RNG state
    /// comes from the checkpoint).
    pub fn from_checkpoint(
        device: &dyn Device,
        tg: TrainGraph,
        ck: &Checkpoint,
        options: TrainerOptions,
    ) -> Result<Trainer, TrainError> {
        // Checked before compiling (which takes minutes on some devices).
        let expected = crate::runtime::Signature::of_graph(&tg.graph).params;
        check_checkpoint(ck, &expected, &options.config)?;
        let mut exe = device.load(&tg.graph)?;
        for (out, param) in &tg.updates {
            exe.bind_update(out, param)?;
        }
        let rng = Rng::for_stream(options.seed, "data");
        let mut tr = Trainer {
            exe,
            eval: None,
            tg,
            options,
            step: 0,
            rng,
            losses: Vec::new(),
        };
        // `restore` checks every tensor and the config before it sets anything; the
        // tensors then cover every parameter of the executable.
        tr.restore(ck)?;
        Ok(tr)
    }

    /// [`Trainer::from_checkpoint`] from a file, loaded with every mismatch against the
    /// training graph's parameters reported (checked before the graph is compiled).
    pub fn resume(
        device: &dyn Device,
        tg: TrainGraph,
        path: impl AsRef<Path>,
        options: TrainerOptions,
    ) -> Result<Trainer, TrainError> {
        let expected = crate::runtime::Signature::of_graph(&tg.graph).params;
        let ck = Checkpoint::load_checked(path, &expected)?;
        Trainer::from_checkpoint(device, tg, &ck, options)
    }

    /// Adds a forward graph (same parameter names, a subset) for [`Trainer::evaluate`],
    /// whose output `loss` is the evaluation loss.
    pub fn with_eval_graph(
        mut self,
        device: &dyn Device,
        graph: &Graph,
        loss: &str,
    ) -> Result<Trainer, TrainError> {
        let exe = device.load(graph)?;
        if !exe.signature().outputs.iter().any(|(n, _)| n == loss) {
            return Err(TrainError::Invalid(format!(
                "the evaluation graph has no output `{loss}`"
            )));
        }
        self.eval = Some((exe, loss.to_string()));
        Ok(self)
    }

    /// One optimizer step on `batch` (the data inputs by name): returns the loss of the
    /// batch before the update.
    pub fn step(&mut self, batch: &HashMap<String, Tensor>) -> Result<f64, TrainError> {
        let t = self.next_step()?;
        let out = self.exe.run(&self.step_inputs(batch, t))?;
        let loss = out
            .get(&self.tg.loss)
            .and_then(|l| l.data.first().copied())
            .ok_or_else(|| TrainError::Invalid(format!("no `{}` output", self.tg.loss)))?;
        self.step = t;
        self.losses.push((t, loss));
        Ok(loss)
    }

    /// One optimizer step on `batch`, exactly as [`Trainer::step`], run with
    /// [`Executable::profile`]: every launch timed on its own. The step counts (the
    /// schedule and the bias corrections move on), but its loss is not read back, so it
    /// is not in [`Trainer::losses`]. Devices that cannot time launches refuse
    /// ([`crate::runtime::RuntimeError::Unsupported`]) and the step is not taken.
    pub fn profile_step(&mut self, batch: &HashMap<String, Tensor>) -> Result<Profile, TrainError> {
        let t = self.next_step()?;
        let profile = self.exe.profile(&self.step_inputs(batch, t))?;
        self.step = t;
        Ok(profile)
    }

    /// The number of the next step (an error past `u64::MAX` steps, which only a
    /// checkpoint's `step` metadata can reach).
    fn next_step(&self) -> Result<u64, TrainError> {
        self.step
            .checked_add(1)
            .ok_or_else(|| TrainError::Invalid(format!("no step follows step {}", self.step)))
    }

    /// `batch` plus the AdamW scalars of step `t`.
    fn step_inputs(&self, batch: &HashMap<String, Tensor>, t: u64) -> HashMap<String, Tensor> {
        let lr = self.options.schedule.lr(t);
        let mut inputs = batch.clone();
        inputs.extend(self.tg.adamw.step_values(ADAMW_INPUT_PREFIX, t, lr));
        inputs
    }

    /// Mean loss of the evaluation graph over `batches` with the current parameters.
    pub fn evaluate(&mut self, batches: &[HashMap<String, Tensor>]) -> Result<f64, TrainError> {
        let Some((eval, loss)) = &mut self.eval else {
            return Err(TrainError::Invalid(
                "no evaluation graph (see Trainer::with_eval_graph)".into(),
            ));
        };
        if batches.is_empty() {
            return Err(TrainError::Invalid("no evaluation batches".into()));
        }
        let names: Vec<String> = eval
            .signature()
            .params
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        for n in &names {
            let v = self.exe.get_param(n)?;
            eval.set_param(n, &v)?;
        }
        let mut total = 0.0;
        for b in batches {
            let out = eval.run(b)?;
            total += out
                .get(loss.as_str())
                .and_then(|l| l.data.first().copied())
                .ok_or_else(|| TrainError::Invalid(format!("no `{loss}` output")))?;
        }
        Ok(total / batches.len() as f64)
    }

    /// Optimizer steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// The data RNG (draw batches from it so that checkpoints resume the same stream).
    pub fn rng_mut(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// `(step, loss)` of every step since creation or the last restore.
    pub fn losses(&self) -> &[(u64, f64)] {
        &self.losses
    }

    /// The recorded losses as a plot series named `name` (for
    /// [`super::plot::plot_loss_curve`]).
    pub fn loss_series(&self, name: &str) -> super::plot::Series {
        super::plot::Series {
            name: name.to_string(),
            points: self.losses.iter().map(|&(s, l)| (s as f64, l)).collect(),
        }
    }

    /// The training graph.
    pub fn train_graph(&self) -> &TrainGraph {
        &self.tg
    }

    /// The training executable.
    pub fn executable(&self) -> &Executable {
        &self.exe
    }

    /// The model parameters, read back from the device.
    pub fn params(&self) -> Result<HashMap<String, Tensor>, TrainError> {
        let mut out = HashMap::new();
        for (name, _) in &self.tg.params {
            out.insert(name.clone(), self.exe.get_param(name)?);
        }
        Ok(out)
    }

    /// The whole state as a checkpoint (parameters and moments read back).
    pub fn checkpoint(&self) -> Result<Checkpoint, TrainError> {
        let mut ck = Checkpoint {
            step: self.step,
            rng_state: self.rng.state(),
            config: self.options.config.clone(),
            ..Checkpoint::default()
        };
        for (name, _) in &self.exe.signature().params {
            ck.tensors.insert(name.clone(), self.exe.get_param(name)?);
        }
        Ok(ck)
    }

    /// Saves the state atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        Ok(self.checkpoint()?.save(path)?)
    }

    /// Restores a checkpoint: its tensors must match the executable's parameters exactly
    /// (every mismatch reported at once) and its config must equal this trainer's.
    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(), TrainError> {
        check_checkpoint(ck, &self.exe.signature().params, &self.options.config)?;
        for (name, t) in &ck.tensors {
            self.exe.set_param(name, t)?;
        }
        self.step = ck.step;
        self.rng = Rng::from_state(ck.rng_state);
        self.losses.clear();
        Ok(())
    }

    /// Loads (checked against the executable's parameters) and restores a checkpoint.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<(), TrainError> {
        let expected = self.exe.signature().params.clone();
        let ck = Checkpoint::load_checked(path, &expected)?;
        self.restore(&ck)
    }
}

/// A checkpoint fits a training executable when its tensors are exactly the executable's
/// parameters (every mismatch reported at once) and its model config equals `config`.
fn check_checkpoint(
    ck: &Checkpoint,
    expected: &[(String, tessera_compiler::TensorType)],
    config: &serde_json::Value,
) -> Result<(), TrainError> {
    let problems = ck.mismatches(expected);
    if !problems.is_empty() {
        return Err(super::CheckpointError::Mismatch {
            path: Default::default(),
            problems,
        }
        .into());
    }
    if ck.config != *config {
        return Err(TrainError::Invalid(format!(
            "the checkpoint's model config {} differs from this trainer's {}",
            ck.config, config
        )));
    }
    Ok(())
}

/// The GPT training graph for `batch x seq` token batches and the matching forward
/// (loss-only) graph for evaluation.
pub fn gpt_training_graph(
    cfg: &GptConfig,
    batch: usize,
    seq: usize,
    adamw: &AdamW,
) -> Result<(TrainGraph, Graph), TrainError> {
    let fwd = gpt_forward(cfg, batch, seq, GptOutput::Loss)?;
    let loss = fwd
        .loss
        .ok_or_else(|| TrainError::Invalid("the GPT graph has no loss".into()))?;
    let params: Vec<(String, bool)> = fwd
        .params
        .iter()
        .map(|p| (p.name.clone(), p.decay))
        .collect();
    let tg = build_training_graph(&fwd.graph, loss, &params, adamw)?;
    Ok((tg, fwd.graph))
}

/// The GPT data inputs (`tokens`, `targets`) of a batch.
pub fn gpt_inputs(b: &Batch) -> HashMap<String, Tensor> {
    HashMap::from([
        ("tokens".to_string(), b.tokens.clone()),
        ("targets".to_string(), b.targets.clone()),
    ])
}

/// `n` evaluation batches of `batch x seq` from `split`, at evenly spaced fixed offsets
/// (the same batches every call, so evaluations are comparable).
pub fn gpt_eval_batches(
    data: &Dataset,
    split: Split,
    batch: usize,
    seq: usize,
    n: usize,
) -> Result<Vec<HashMap<String, Tensor>>, TrainError> {
    let len = data.ids(split).len();
    let starts = len.saturating_sub(seq);
    let total = (batch * n).max(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let offsets: Vec<usize> = (0..batch)
            .map(|j| (i * batch + j) * starts / total)
            .collect();
        out.push(gpt_inputs(&data.batch_at(split, seq, &offsets)?));
    }
    Ok(out)
}
