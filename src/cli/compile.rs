//! `tessera compile`: a graph (JSON file or bundled model) in; kernel sources plus a
//! `manifest.json`, or the tile IR, out.

use super::{CompileArgs, Emit, Model};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs;
use std::io::Write;
use std::path::{Component, Path};
use tessera_compiler::backend::{Artifact, KernelInfo};
use tessera_compiler::graph::DType;
use tessera_compiler::schedule::plan::{BufferId, BufferInfo, Launch, Plan, StorageSlot};
use tessera_compiler::tile::Access;
use tessera_compiler::{Graph, Target, TargetKind};

/// Shape of the bundled `mlp` model: the demo graph, whose kernels `shaders/` holds.
pub const MLP_SHAPE: (usize, usize, usize) = (64, 128, 256);

/// Configuration of the bundled `gpt` model (one transformer block and the
/// cross-entropy head: the forward kernels kept in `shaders/gpt/`) and of its training
/// step `gpt-train` (forward, backward and AdamW: `shaders/gpt-train/`).
pub const GPT_CONFIG: tessera_models::gpt::GptConfig = tessera_models::gpt::GptConfig {
    n_layer: 1,
    n_head: 4,
    n_embd: 128,
    block_size: 64,
    vocab_size: 65,
};

/// Batch and sequence length of the bundled `gpt` and `gpt-train` models.
pub const GPT_SHAPE: (usize, usize) = (4, 64);

/// Batch and sequence length of the bundled `minilm` encoder.
pub const MINILM_SHAPE: (usize, usize) = (2, 32);

/// Runs `tessera compile`.
pub fn run(args: &CompileArgs) -> Result<()> {
    let graph = load_graph(args)?;
    let target = Target::of(args.target);
    log::info!("compiling {} nodes for {}", graph.len(), args.target);
    match args.emit {
        Emit::Tile => {
            if let Some(out) = &args.out {
                bail!(
                    "--emit tile prints the tile IR and writes no files: drop --out {} (or \
                     use --emit source to write the kernels there)",
                    out.display()
                );
            }
            let plan = tessera_compiler::compile(&graph, &target)
                .with_context(|| format!("compiling for {}", args.target))?;
            let text = tessera_compiler::tile::print_plan(&plan);
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                // A reader that stops early (`| head`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(e).context("writing the tile IR to stdout")
                }
                _ => Ok(()),
            }
        }
        Emit::Source => {
            let Some(out) = &args.out else {
                bail!("--out DIR is required (or use --emit tile to print the tile IR)");
            };
            let (plan, artifact) = tessera_compiler::compile_and_emit(&graph, &target)
                .with_context(|| format!("compiling for {}", args.target))?;
            write_artifact(out, &plan, &artifact)?;
            println!(
                "{}: {} kernels, {} files and manifest.json written to {}",
                args.target,
                artifact.kernels.len(),
                artifact.files.len(),
                out.display()
            );
            Ok(())
        }
    }
}

/// The graph named on the command line.
fn load_graph(args: &CompileArgs) -> Result<Graph> {
    if let Some(model) = args.model {
        return bundled_model(model);
    }
    let Some(path) = &args.graph else {
        bail!("give a GRAPH.json file or --model");
    };
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read graph file {}", path.display()))?;
    Graph::from_json(&text).with_context(|| format!("invalid graph in {}", path.display()))
}

/// Builds a bundled model's graph.
pub fn bundled_model(model: Model) -> Result<Graph> {
    match model {
        Model::Mlp => {
            let (batch, d_in, d_hidden) = MLP_SHAPE;
            tessera_models::mlp::mlp_block(batch, d_in, d_hidden)
                .context("building the bundled mlp model")
        }
        Model::Gpt => {
            let (batch, seq) = GPT_SHAPE;
            let gpt = tessera_models::gpt::gpt_forward(
                &GPT_CONFIG,
                batch,
                seq,
                tessera_models::gpt::GptOutput::Loss,
            )
            .context("building the bundled gpt model")?;
            Ok(gpt.graph)
        }
        Model::GptTrain => {
            let (batch, seq) = GPT_SHAPE;
            let (tg, _eval) = tessera::train::trainer::gpt_training_graph(
                &GPT_CONFIG,
                batch,
                seq,
                &tessera_compiler::optim::AdamW::default(),
            )
            .context("building the bundled gpt-train model")?;
            Ok(tg.graph)
        }
        Model::Minilm => {
            let (batch, seq) = MINILM_SHAPE;
            tessera_models::bert::bert_encoder(
                &tessera_models::bert::BertConfig::all_minilm_l6_v2(),
                batch,
                seq,
            )
            .context("building the bundled minilm model")
        }
    }
}

/// A kernel buffer parameter in the manifest.
#[derive(Debug, Serialize)]
pub struct ParamEntry {
    /// Parameter name (binding order is the list order).
    pub name: String,
    /// Element dtype (absent for a parameter the backend adds, e.g. Ascend's workspace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dtype: Option<DType>,
    /// Element count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<usize>,
    /// Read, write or read_write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
}

/// One kernel in the manifest: what to launch and how.
#[derive(Debug, Serialize)]
pub struct KernelEntry {
    /// Entry-point name.
    pub name: String,
    /// File holding it.
    pub file: String,
    /// Program instances (workgroups, CTAs, Ascend loop iterations) per grid axis.
    pub grid: [u32; 3],
    /// Threads per workgroup / CTA, or Ascend blockDim.
    pub block: u32,
    /// Buffer parameters in binding order.
    pub params: Vec<ParamEntry>,
}

/// `manifest.json`: the kernels, their launch geometry and the plan (without the tile
/// bodies, which `--emit tile` prints).
#[derive(Debug, Serialize)]
pub struct Manifest<'a> {
    /// Target name.
    pub target: TargetKind,
    /// Every file written beside the manifest.
    pub files: Vec<&'a str>,
    /// Kernels in plan order (`launches[i].kernel` indexes this list).
    pub kernels: Vec<KernelEntry>,
    /// Logical buffers (inputs, parameters, constants, outputs, temporaries).
    pub buffers: &'a [BufferInfo],
    /// Launches in execution order: kernel index and one buffer per parameter.
    pub launches: &'a [Launch],
    /// Storage slots of the memory plan (buffers with disjoint lifetimes share one).
    pub storage: &'a [StorageSlot],
    /// Graph outputs: node name and buffer.
    pub outputs: &'a [(String, BufferId)],
}

/// Builds the manifest of a compiled plan.
pub fn manifest<'a>(plan: &'a Plan, artifact: &'a Artifact) -> Manifest<'a> {
    let kernels = artifact
        .kernels
        .iter()
        .enumerate()
        .map(|(i, k)| kernel_entry(k, plan.kernels.get(i).map(|t| t.params.as_slice())))
        .collect();
    Manifest {
        target: artifact.target,
        files: artifact.files.iter().map(|f| f.name.as_str()).collect(),
        kernels,
        buffers: &plan.buffers,
        launches: &plan.launches,
        storage: &plan.storage,
        outputs: &plan.outputs,
    }
}

fn kernel_entry(
    k: &KernelInfo,
    tile_params: Option<&[tessera_compiler::tile::BufferParam]>,
) -> KernelEntry {
    let params = k
        .params
        .iter()
        .enumerate()
        .map(|(j, name)| {
            // The tile kernel's parameter of the same name carries dtype, length, access.
            let p = tile_params.and_then(|ps| {
                ps.get(j)
                    .filter(|p| &p.name == name)
                    .or_else(|| ps.iter().find(|p| &p.name == name))
            });
            ParamEntry {
                name: name.clone(),
                dtype: p.map(|p| p.dtype),
                len: p.map(|p| p.len),
                access: p.map(|p| p.access),
            }
        })
        .collect();
    KernelEntry {
        name: k.name.clone(),
        file: k.file.clone(),
        grid: k.grid,
        block: k.block,
        params,
    }
}

/// Writes every emitted file and `manifest.json` into `out` (created if needed).
pub fn write_artifact(out: &Path, plan: &Plan, artifact: &Artifact) -> Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("--out {} is a file, not a folder", out.display());
    }
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for f in &artifact.files {
        let mut comps = Path::new(&f.name).components();
        let plain = matches!(comps.next(), Some(Component::Normal(_))) && comps.next().is_none();
        if !plain || f.name == "manifest.json" {
            bail!(
                "emitted file name `{}` is not a plain file name (a compiler bug)",
                f.name
            );
        }
        let path = out.join(&f.name);
        fs::write(&path, &f.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
        log::info!("wrote {}", path.display());
    }
    let mut json = serde_json::to_string_pretty(&manifest(plan, artifact))
        .context("serialising manifest.json")?;
    json.push('\n');
    let path = out.join("manifest.json");
    fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
