//! `tessera embed`: sentence embeddings from a pretrained BERT sentence encoder folder
//! (sentence-transformers all-MiniLM-L6-v2, as `cargo xtask setup` installs it into
//! `.cache/minilm/`, or any folder with the same files, e.g. a Hugging Face snapshot).
//!
//! The sentences are tokenized as one batch (padded to the longest), the encoder graph of
//! `tessera_models::bert` runs on the chosen device, and the result is printed as JSON:
//! the embeddings (unit vectors, on one line), or with `--similarity` the matrix of cosine
//! similarities (pretty-printed). Devices: `cpu` (the f64 graph interpreter), `wgpu` (the emitted WGSL on
//! any adapter), `ascend-cpu` (the emitted Ascend C on its CPU build). Whatever a device
//! cannot compile or run is reported as its own error. The interpreter's memory is bounded
//! by `--max-memory` (GiB, 8 by default).

use super::{EmbedArgs, EmbedDevice};
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::HashMap;
use tessera::runtime::ascend_cpu::run_plan_ascend_cpu;
use tessera::runtime::RuntimeError;
use tessera::runtime::{CpuDevice, Device, Tensor, WgpuDevice};
use tessera_compiler::interp::{InterpError, Limits};
use tessera_compiler::Target;
use tessera_models::bert::{cosine, MiniLm, EMBEDDINGS};

/// Runs `tessera embed`.
pub fn run(args: &EmbedArgs) -> Result<()> {
    let model = MiniLm::load(&args.model)
        .with_context(|| format!("loading the model folder {}", args.model.display()))?;
    let texts: Vec<&str> = args.text.iter().map(String::as_str).collect();
    let tokens = model.tokenize(&texts).context("tokenizing")?;
    let graph = model
        .graph(tokens.batch(), tokens.seq())
        .context("building the encoder graph")?;
    let (device_name, out) = match args.device {
        EmbedDevice::Cpu => {
            // `as` saturates: a huge value is no bound.
            let max_bytes = (args.max_memory * super::GIB) as u64;
            let device = CpuDevice::reference().with_limits(Limits { max_bytes });
            run_device(&device, &model, &graph, &tokens).map_err(|e| {
                let past_bound = e.chain().any(|c| {
                    matches!(
                        c.downcast_ref::<RuntimeError>(),
                        Some(RuntimeError::Interp(InterpError::MemoryLimit { .. }))
                    )
                });
                if past_bound {
                    e.context(format!(
                        "the interpreter's values would pass --max-memory {} GiB (fewer or \
                         shorter sentences, or a larger --max-memory)",
                        args.max_memory
                    ))
                } else {
                    e
                }
            })?
        }
        EmbedDevice::Wgpu => {
            let device = WgpuDevice::new().context("opening a wgpu adapter")?;
            run_device(&device, &model, &graph, &tokens)?
        }
        EmbedDevice::PtxVm => run_device(
            &tessera::runtime::PtxVmDevice::new(),
            &model,
            &graph,
            &tokens,
        )?,
        #[cfg(feature = "cuda")]
        EmbedDevice::Cuda => {
            let device = tessera::runtime::CudaDevice::new().context("opening the CUDA device")?;
            run_device(&device, &model, &graph, &tokens)?
        }
        EmbedDevice::AscendCpu => {
            let target = Target::ascend_910b();
            let (plan, artifact) = tessera_compiler::compile_and_emit(&graph, &target)
                .context("compiling the encoder for Ascend C")?;
            let mut out = run_plan_ascend_cpu(&plan, &artifact, &model.graph_inputs(&tokens))
                .context("running the encoder on the Ascend C CPU build")?;
            let emb = out
                .remove(EMBEDDINGS)
                .context("the Ascend C run returned no embeddings")?;
            ("ascend-cpu: Ascend C CPU build".to_string(), emb)
        }
    };
    let embeddings = model.split_embeddings(&out)?;
    let doc = if args.similarity {
        let sim: Vec<Vec<f64>> = embeddings
            .iter()
            .map(|a| embeddings.iter().map(|b| cosine(a, b)).collect())
            .collect();
        json!({
            "model": args.model.display().to_string(),
            "device": device_name,
            "texts": texts,
            "similarity": sim,
        })
    } else {
        let items: Vec<_> = texts
            .iter()
            .zip(&tokens.ids)
            .zip(&embeddings)
            .map(|((text, ids), e)| {
                json!({
                    "text": text,
                    "tokens": ids.len(),
                    // f32 precision: what the model's weights carry.
                    "embedding": e.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
                })
            })
            .collect();
        json!({
            "model": args.model.display().to_string(),
            "device": device_name,
            "dim": model.dim(),
            "embeddings": items,
        })
    };
    // The similarity matrix is for reading (pretty); embeddings are for programs (one line).
    let text = if args.similarity {
        serde_json::to_string_pretty(&doc)?
    } else {
        serde_json::to_string(&doc)?
    };
    println!("{text}");
    Ok(())
}

/// Loads the graph on a [`Device`], uploads the weights, runs once; returns the device's
/// name and the `embeddings` output.
fn run_device(
    device: &dyn Device,
    model: &MiniLm,
    graph: &tessera_compiler::Graph,
    tokens: &tessera_models::bert::TokenBatch,
) -> Result<(String, Tensor)> {
    let name = device.name();
    let mut exe = device
        .load(graph)
        .with_context(|| format!("compiling the encoder for {name}"))?;
    for (param, value) in model.params() {
        exe.set_param(param, value)
            .with_context(|| format!("uploading {param} to {name}"))?;
    }
    let inputs = HashMap::from([
        (
            tessera_models::bert::INPUT_IDS.to_string(),
            tokens.input_ids.clone(),
        ),
        (
            tessera_models::bert::ATTENTION_MASK.to_string(),
            tokens.attention_mask.clone(),
        ),
    ]);
    let mut out = exe
        .run(&inputs)
        .with_context(|| format!("running the encoder on {name}"))?;
    let emb = out
        .remove(EMBEDDINGS)
        .with_context(|| format!("{name} returned no embeddings"))?;
    Ok((name, emb))
}
