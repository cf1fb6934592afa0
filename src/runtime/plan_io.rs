//! Device-independent bookkeeping shared by the devices that run a compiled [`Plan`] with
//! one device buffer per storage slot (wgpu, CUDA and the PTX VM).
//!
//! - [`slot_sizes`]: the size of each storage slot's allocation (the largest buffer
//!   placed in the slot, rounded up to 16 bytes).
//! - [`check_plan`]: the consistency checks of a plan against its emitted kernels that
//!   keep every launch inside its buffers (a device adds its own limits).
//! - [`PlanSlots`]: which slot each input, parameter and output lives in, and the bytes
//!   each constant slot is filled with once.
//! - [`resolve_update`]: the slot-level half of `Program::bind_update` (which output is
//!   bound, and which device-to-device copy applies it after each run), and
//!   [`bind_update`], the whole of it for devices that keep a list of read-back outputs
//!   and of copies (wgpu, CUDA, the PTX VM).

use super::error::{Result, RuntimeError};
use std::collections::HashMap;
use tessera_compiler::backend::Artifact;
use tessera_compiler::interp::Tensor;
use tessera_compiler::schedule::plan::{BufferRole, Plan};
use tessera_compiler::{TargetKind, TensorType};

/// `n` rounded up to a multiple of 4, at least 4 (allocations are never empty, and
/// wgpu copies in 4-byte units).
pub(crate) fn round4(n: usize) -> usize {
    n.div_ceil(4).max(1) * 4
}

/// The allocation size of every storage slot of `plan`: the largest of the slot's
/// planned size and the buffers placed in it, rounded up to 16 bytes (at least 16): a
/// kernel may bind a buffer as 4-element vectors
/// ([`tessera_compiler::simt::SimtBuffer::vector`]), whose last vector must lie inside
/// the binding. `plan` must have passed [`check_plan`] (every buffer's slot exists).
pub(crate) fn slot_sizes(plan: &Plan) -> Vec<usize> {
    let mut bytes: Vec<usize> = plan.storage.iter().map(|s| s.bytes).collect();
    for b in &plan.buffers {
        bytes[b.storage] = bytes[b.storage].max(b.len * b.dtype.size_bytes());
    }
    bytes
        .into_iter()
        .map(|b| b.div_ceil(16).max(1) * 16)
        .collect()
}

/// Consistency checks of a plan and its artifact for a device that runs `runs` code
/// (`device` names it in the message), so that no launch reads or writes outside its
/// buffers: the artifact's target and kernel count, buffer ids, slots and lengths,
/// parameters and constants owning their slot, outputs that exist, and every launch's
/// kernel, argument count, dtypes and sizes.
pub(crate) fn check_plan(
    plan: &Plan,
    artifact: &Artifact,
    runs: TargetKind,
    device: &str,
) -> Result<()> {
    let invalid = |message: String| Err(RuntimeError::InvalidPlan { message });
    if artifact.target != runs {
        return invalid(format!(
            "the artifact is for target {}, the {device} runs {runs}",
            artifact.target
        ));
    }
    if artifact.kernels.len() != plan.kernels.len() {
        return invalid(format!(
            "{} kernels in the plan, {} in the artifact",
            plan.kernels.len(),
            artifact.kernels.len()
        ));
    }
    for (i, b) in plan.buffers.iter().enumerate() {
        if b.id.0 as usize != i {
            return invalid(format!("buffer {i} has id {}", b.id.0));
        }
        if b.storage >= plan.storage.len() {
            return invalid(format!(
                "buffer {i} is in storage slot {} of {}",
                b.storage,
                plan.storage.len()
            ));
        }
        if TensorType::checked_numel(&b.shape) != Some(b.len) || b.len > i32::MAX as usize {
            return invalid(format!("buffer {i}: shape {:?} but len {}", b.shape, b.len));
        }
    }
    // Parameters and constants must own their slot: anything else placed there would
    // overwrite them between runs.
    for b in &plan.buffers {
        if matches!(
            b.role,
            BufferRole::Param { .. } | BufferRole::Constant { .. }
        ) {
            if let Some(other) = plan
                .buffers
                .iter()
                .find(|o| o.id != b.id && o.storage == b.storage)
            {
                return invalid(format!(
                    "{:?} buffer {} shares storage slot {} with buffer {}: it would be overwritten",
                    b.role, b.id.0, b.storage, other.id.0
                ));
            }
        }
    }
    for (name, id) in &plan.outputs {
        if id.0 as usize >= plan.buffers.len() {
            return invalid(format!("output `{name}` refers to missing buffer {}", id.0));
        }
    }
    for (li, launch) in plan.launches.iter().enumerate() {
        let Some(kernel) = plan.kernels.get(launch.kernel) else {
            return invalid(format!("launch {li} runs missing kernel {}", launch.kernel));
        };
        if launch.args.len() != kernel.params.len() {
            return invalid(format!(
                "launch {li} of `{}` passes {} buffers for {} parameters",
                kernel.name,
                launch.args.len(),
                kernel.params.len()
            ));
        }
        for (arg, param) in launch.args.iter().zip(&kernel.params) {
            let Some(b) = plan.buffers.get(arg.0 as usize) else {
                return invalid(format!("launch {li} passes missing buffer {}", arg.0));
            };
            if b.dtype != param.dtype {
                return invalid(format!(
                    "launch {li} of `{}`: parameter `{}` is {} but buffer {} is {}",
                    kernel.name, param.name, param.dtype, arg.0, b.dtype
                ));
            }
            let slot = plan.storage[b.storage]
                .bytes
                .max(b.len * b.dtype.size_bytes());
            if param.len * param.dtype.size_bytes() > round4(slot) {
                return invalid(format!(
                    "launch {li} of `{}`: parameter `{}` needs {} elements, buffer {} has {}",
                    kernel.name, param.name, param.len, arg.0, b.len
                ));
            }
        }
    }
    Ok(())
}

/// One graph output of a plan: where it lives and how many bytes are read back.
#[derive(Clone, Debug)]
pub(crate) struct OutputInfo {
    /// The output's name.
    pub(crate) name: String,
    /// Its type (what the bytes read back decode to).
    pub(crate) ty: TensorType,
    /// The storage slot holding it.
    pub(crate) storage: usize,
    /// Its size in bytes (unpadded).
    pub(crate) bytes: usize,
}

impl AsRef<OutputInfo> for OutputInfo {
    fn as_ref(&self) -> &OutputInfo {
        self
    }
}

impl OutputInfo {
    /// Decodes the bytes read back from the output's slot.
    pub(crate) fn tensor(&self, bytes: &[u8]) -> Result<Tensor> {
        Ok(Tensor::from_bytes(&self.ty.shape, self.ty.dtype, bytes)?)
    }
}

/// Which storage slot each named buffer of a plan lives in, and what constants hold.
#[derive(Clone, Debug, Default)]
pub(crate) struct PlanSlots {
    /// Input name -> storage slot.
    pub(crate) inputs: HashMap<String, usize>,
    /// Parameter name -> storage slot.
    pub(crate) params: HashMap<String, usize>,
    /// `(storage slot, bytes)` of every constant buffer: filled once at load.
    pub(crate) constants: Vec<(usize, Vec<u8>)>,
    /// The plan's outputs, in plan order.
    pub(crate) outputs: Vec<OutputInfo>,
}

impl PlanSlots {
    /// The slots of `plan`, which must have passed [`check_plan`].
    pub(crate) fn of(plan: &Plan) -> PlanSlots {
        let mut slots = PlanSlots::default();
        for b in &plan.buffers {
            match &b.role {
                BufferRole::Constant { value } => {
                    let bytes = Tensor::full(&b.shape, b.dtype, *value).to_bytes();
                    slots.constants.push((b.storage, bytes));
                }
                BufferRole::Input { name } => {
                    slots.inputs.insert(name.clone(), b.storage);
                }
                BufferRole::Param { name } => {
                    slots.params.insert(name.clone(), b.storage);
                }
                BufferRole::Output { .. } | BufferRole::Temp => {}
            }
        }
        slots.outputs = plan
            .outputs
            .iter()
            .map(|(name, id)| {
                let b = plan.buffer(*id);
                OutputInfo {
                    name: name.clone(),
                    ty: TensorType::new(b.shape.clone(), b.dtype),
                    storage: b.storage,
                    bytes: b.len * b.dtype.size_bytes(),
                }
            })
            .collect();
        slots
    }
}

/// The storage slot of parameter `name`.
pub(crate) fn param_slot(params: &HashMap<String, usize>, name: &str) -> Result<usize> {
    params
        .get(name)
        .copied()
        .ok_or_else(|| RuntimeError::InvalidPlan {
            message: format!("parameter `{name}` has no buffer"),
        })
}

/// How a bound parameter update ([`resolve_update`]) is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotUpdate {
    /// Index of the bound output in the device's list of read-back outputs: the device
    /// removes it there (a bound output is no longer returned).
    pub(crate) output: usize,
    /// `(source slot, parameter slot)` copied after the last launch of every run, or
    /// `None` when the output already lives in the parameter's slot.
    pub(crate) copy: Option<(usize, usize)>,
}

/// The device-independent part of binding `output` to replace parameter `param` after
/// every run, on a device that keeps parameters in `params` (name -> slot) and reads back
/// `outputs` (`(name, slot)` in its order). The executable has checked names, types and
/// double bindings already; this fails with [`RuntimeError::InvalidUpdate`] when either
/// has no buffer, or when the output is another parameter unchanged (an earlier copy of
/// the same run could overwrite it before it is read).
pub(crate) fn resolve_update<'a>(
    output: &str,
    param: &str,
    params: &HashMap<String, usize>,
    outputs: impl IntoIterator<Item = (&'a str, usize)>,
) -> Result<SlotUpdate> {
    let invalid = |reason: &str| RuntimeError::InvalidUpdate {
        output: output.to_string(),
        param: param.to_string(),
        reason: reason.to_string(),
    };
    let dst = *params
        .get(param)
        .ok_or_else(|| invalid("the parameter has no buffer"))?;
    let (index, src) = outputs
        .into_iter()
        .enumerate()
        .find(|(_, (name, _))| *name == output)
        .map(|(i, (_, slot))| (i, slot))
        .ok_or_else(|| invalid("the output has no buffer"))?;
    if src != dst && params.values().any(|&s| s == src) {
        return Err(invalid(
            "the output is another parameter unchanged; compute a new value",
        ));
    }
    Ok(SlotUpdate {
        output: index,
        // An output that is the parameter itself needs no copy.
        copy: (src != dst).then_some((src, dst)),
    })
}

/// `Program::bind_update` of a device that reads back `outputs` (anything holding an
/// [`OutputInfo`]) and applies `updates`, `(source slot, parameter slot, bytes)` copies,
/// after every run: [`resolve_update`], then the bound output stops being read back and
/// its copy (if it needs one) joins `updates`.
pub(crate) fn bind_update<O: AsRef<OutputInfo>>(
    outputs: &mut Vec<O>,
    updates: &mut Vec<(usize, usize, usize)>,
    params: &HashMap<String, usize>,
    output: &str,
    param: &str,
) -> Result<()> {
    let update = resolve_update(
        output,
        param,
        params,
        outputs
            .iter()
            .map(|o| (o.as_ref().name.as_str(), o.as_ref().storage)),
    )?;
    let o = outputs.remove(update.output);
    if let Some((src, dst)) = update.copy {
        updates.push((src, dst, o.as_ref().bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_four_bytes() {
        assert_eq!(round4(0), 4);
        assert_eq!(round4(1), 4);
        assert_eq!(round4(4), 4);
        assert_eq!(round4(5), 8);
        assert_eq!(round4(8), 8);
    }

    #[test]
    fn slots_hold_their_largest_buffer() {
        let graph = tessera_models::mlp::mlp_block(2, 3, 5).unwrap();
        let target = tessera_compiler::Target::wgsl();
        let plan = tessera_compiler::compile(&graph, &target).unwrap();
        let sizes = slot_sizes(&plan);
        assert_eq!(sizes.len(), plan.storage.len());
        for b in &plan.buffers {
            assert!(sizes[b.storage] >= b.len * b.dtype.size_bytes());
        }
        for (s, slot) in sizes.iter().zip(&plan.storage) {
            // Whole 16-byte vectors: a kernel may bind any buffer as `array<vec4<T>>`.
            assert_eq!(s % 16, 0);
            assert!(*s >= slot.bytes);
        }
    }

    #[test]
    fn updates_resolve_to_slot_copies() {
        let params = HashMap::from([("p".to_string(), 0), ("q".to_string(), 1)]);
        let outputs = [("loss", 2), ("p_new", 3), ("q_same", 1)];
        let u = resolve_update("p_new", "p", &params, outputs).unwrap();
        assert_eq!(
            u,
            SlotUpdate {
                output: 1,
                copy: Some((3, 0))
            }
        );
        let u = resolve_update("q_same", "q", &params, outputs).unwrap();
        assert_eq!(
            u,
            SlotUpdate {
                output: 2,
                copy: None
            }
        );
        let reason = |r: Result<SlotUpdate>| match r {
            Err(RuntimeError::InvalidUpdate { reason, .. }) => reason,
            other => panic!("expected InvalidUpdate, got {other:?}"),
        };
        assert!(reason(resolve_update("q_same", "p", &params, outputs)).contains("unchanged"));
        assert!(reason(resolve_update("nope", "p", &params, outputs)).contains("output"));
        assert!(reason(resolve_update("p_new", "r", &params, outputs)).contains("parameter"));
    }
}
