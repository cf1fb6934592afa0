//! A model author using a pretrained checkpoint: sentence-transformers all-MiniLM-L6-v2
//! loaded from its own files (config, tokenizer, safetensors weights), its encoder graph
//! run on a device, and the cosine similarities of a few sentences printed.
//!
//! ```text
//! cargo xtask setup                                   (downloads the model into .cache/minilm)
//! cargo run --example embed_minilm -- [MODEL_DIR] [cpu|wgpu]   (default: .cache/minilm, cpu)
//! ```
//!
//! `cpu` is the f64 graph interpreter (the reference); `wgpu` compiles the same graph to
//! WGSL and runs it on any wgpu adapter. `tessera embed` does the same from the command
//! line, and also runs on the Ascend C CPU build.

use anyhow::{bail, Context};
use std::collections::HashMap;
use std::path::PathBuf;
use tessera::models::bert::{cosine, MiniLm, ATTENTION_MASK, EMBEDDINGS, INPUT_IDS};
use tessera::runtime::{CpuDevice, Device, WgpuDevice};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/minilm"));
    let device: Box<dyn Device> = match args.next().as_deref() {
        None | Some("cpu") => Box::new(CpuDevice::reference()),
        Some("wgpu") => Box::new(WgpuDevice::new()?),
        Some(other) => bail!("unknown device `{other}` (cpu or wgpu)"),
    };

    // The pretrained model: config.json, sentence_bert_config.json, tokenizer.json and
    // model.safetensors, checked tensor by tensor against the config.
    let model = MiniLm::load(&dir)
        .with_context(|| format!("loading {} (run `cargo xtask setup`)", dir.display()))?;

    let sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "A fast brown fox leaps over a sleepy dog.",
        "One model definition trains everywhere.",
        "The same network runs on every accelerator.",
    ];
    // One batch, padded to the longest sentence with an attention mask.
    let tokens = model.tokenize(&sentences)?;
    let graph = model.graph(tokens.batch(), tokens.seq())?;
    let mut exe = device.load(&graph)?;
    for (name, weight) in model.params() {
        exe.set_param(name, weight)?;
    }
    let inputs = HashMap::from([
        (INPUT_IDS.to_string(), tokens.input_ids.clone()),
        (ATTENTION_MASK.to_string(), tokens.attention_mask.clone()),
    ]);
    let out = exe.run(&inputs)?;
    let embeddings = model.split_embeddings(&out[EMBEDDINGS])?;

    println!("{} on {}", dir.display(), device.name());
    for (i, a) in sentences.iter().enumerate() {
        for (j, b) in sentences.iter().enumerate().skip(i + 1) {
            let c = cosine(&embeddings[i], &embeddings[j]);
            println!("  {c:+.4}  {a:?} ~ {b:?}");
        }
    }
    Ok(())
}
