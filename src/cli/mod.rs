//! The `tessera` CLI: argument parsing (clap), error reporting and dispatch.
//!
//! Every failure is reported as a single `error: ...` line on stderr; a panic (a bug) is
//! reported the same way through a panic hook, never as a backtrace, unless
//! `RUST_BACKTRACE` asks for one.

mod compile;
mod demo;
mod embed;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_compiler::TargetKind;

/// Exit code of a failed command (bad input, failed compilation, failed run).
const EXIT_FAILURE: u8 = 1;
/// Exit code of a command line that does not parse.
const EXIT_USAGE: u8 = 2;

/// Tessera: one model definition, compiled to WGSL, PTX and Ascend C.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a graph (JSON file) or a bundled model for one target.
    Compile(CompileArgs),
    /// Compile a GPT training step for every target, train a small GPT on wgpu, report
    /// its validation loss and print a sample (`--mlp`: the MLP block on every target,
    /// checked against the f64 interpreter).
    Demo(DemoArgs),
    /// Sentence embeddings (JSON) from a pretrained BERT sentence encoder folder, e.g.
    /// all-MiniLM-L6-v2 as `cargo xtask setup` installs it into `.cache/minilm/`.
    Embed(EmbedArgs),
}

/// What `compile` prints or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// One file per kernel (plus host code for Ascend C) and `manifest.json`, into `--out`.
    Source,
    /// The tile IR of the plan, printed on stdout (nothing is written).
    Tile,
}

/// A model bundled with Tessera (`tessera_models`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// The demo MLP block `sum(tanh(x @ w + b), axis 1)` with batch 64, d_in 128,
    /// d_hidden 256 (kernels in `shaders/mlp/`).
    Mlp,
    /// A one-layer GPT forward pass with its loss: token + position embeddings, one
    /// pre-LN transformer block (causal multi-head attention + GELU MLP), final layer norm,
    /// tied LM head and mean cross-entropy; batch 4, 64 tokens, width 128, 4 heads,
    /// vocabulary 65 (kernels in `shaders/gpt/`).
    Gpt,
    /// The training step of the `gpt` model above (same size and batch): forward,
    /// reverse-mode autodiff backward and the AdamW update of every parameter and moment,
    /// one graph (kernels in `shaders/gpt-train/`).
    GptTrain,
    /// The sentence-transformers all-MiniLM-L6-v2 encoder (BERT, 6 layers, width 384,
    /// padding attention mask, mean pooling, L2 normalisation) for 2 sentences of 32
    /// tokens; the structure only, no weights needed (kernels in `shaders/minilm/`).
    Minilm,
}

/// Arguments of `tessera compile`.
#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The graph, in Tessera's JSON form.
    #[arg(value_name = "GRAPH.json", required_unless_present = "model")]
    pub graph: Option<PathBuf>,
    /// Compile a bundled model instead of a graph file.
    #[arg(long, value_enum, conflicts_with = "graph")]
    pub model: Option<Model>,
    /// The target: wgsl, ptx or ascendc.
    #[arg(long, short, value_parser = parse_target)]
    pub target: TargetKind,
    /// Output directory (created if needed); required unless `--emit tile`.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to produce.
    #[arg(long, value_enum, default_value_t = Emit::Source)]
    pub emit: Emit,
}

/// Arguments of `tessera demo`.
///
/// By default: the GPT training step (forward, backward, AdamW) compiled for every target
/// into `--out/<target>/`, a demo-size GPT trained on tiny-shakespeare on wgpu, its
/// validation loss, a checkpoint, the loss curve and a text sample. `--mlp` runs the
/// MLP-block cross-target check instead.
#[derive(Debug, clap::Args)]
// `--lr -1` is a value (refused with its reason), not an unknown flag `-1`.
#[command(allow_negative_numbers = true)]
pub struct DemoArgs {
    /// Run the MLP block `sum(tanh(x @ w + b), axis 1)` on every target against the f64
    /// interpreter instead of training a GPT.
    #[arg(long)]
    pub mlp: bool,
    /// MLP demo: batch rows of `x`.
    #[arg(long, default_value_t = 64, requires = "mlp")]
    pub mlp_batch: usize,
    /// MLP demo: input features (the matmul's K).
    #[arg(long, default_value_t = 128, requires = "mlp")]
    pub d_in: usize,
    /// MLP demo: hidden features (the matmul's N, reduced by the row sum).
    #[arg(long, default_value_t = 256, requires = "mlp")]
    pub d_hidden: usize,
    /// GPT: transformer blocks.
    #[arg(long, default_value_t = demo::DEFAULT_LAYERS, conflicts_with = "mlp")]
    pub layers: usize,
    /// GPT: attention heads per block.
    #[arg(long, default_value_t = demo::DEFAULT_HEADS, conflicts_with = "mlp")]
    pub heads: usize,
    /// GPT: width of the residual stream.
    #[arg(long, default_value_t = demo::DEFAULT_WIDTH, conflicts_with = "mlp")]
    pub width: usize,
    /// GPT: context length (tokens per training sequence).
    #[arg(long, default_value_t = demo::DEFAULT_CONTEXT, conflicts_with = "mlp")]
    pub context: usize,
    /// GPT: sequences per batch.
    #[arg(long, default_value_t = demo::DEFAULT_BATCH, conflicts_with = "mlp")]
    pub batch: usize,
    /// GPT: optimizer steps (the learning-rate schedule spans them).
    #[arg(long, default_value_t = demo::DEFAULT_STEPS, conflicts_with = "mlp")]
    pub steps: u64,
    /// GPT: stop training after this many seconds even if steps remain (the cosine
    /// decay is then cut short); 0: no limit.
    #[arg(long, value_name = "SECONDS", default_value_t = demo::DEFAULT_SECONDS, conflicts_with = "mlp")]
    pub seconds: f64,
    /// GPT: peak learning rate (linear warmup over 10% of the steps, cosine to 10%).
    #[arg(long, default_value_t = demo::DEFAULT_LR, conflicts_with = "mlp")]
    pub lr: f64,
    /// GPT: seed of the initial weights, of the batches and of the sampling.
    #[arg(long, default_value_t = 1234, conflicts_with = "mlp")]
    pub seed: u64,
    /// GPT: output folder: `<target>/` kernels with `manifest.json`,
    /// `checkpoint.safetensors`, `loss.png`, `loss.csv`.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "target/demo",
        conflicts_with = "mlp"
    )]
    pub out: PathBuf,
    /// GPT: characters to generate after training (0: none).
    #[arg(long, default_value_t = 200, conflicts_with = "mlp")]
    pub sample: usize,
    /// GPT: the text the sample continues (characters of tiny-shakespeare only).
    #[arg(long, default_value = "ROMEO:", conflicts_with = "mlp")]
    pub prompt: String,
    /// GPT: sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.8, conflicts_with = "mlp")]
    pub temperature: f64,
    /// GPT: sample only from the k most likely characters.
    #[arg(long, conflicts_with = "mlp")]
    pub top_k: Option<usize>,
}

/// Where `tessera embed` runs the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EmbedDevice {
    /// The f64 graph interpreter (the reference).
    Cpu,
    /// The emitted WGSL on a wgpu adapter.
    Wgpu,
    /// The emitted Ascend C on its CPU build.
    AscendCpu,
    /// The emitted PTX on the host CPU (the PTX VM: slow, checks every access).
    PtxVm,
    /// The emitted PTX on an Nvidia GPU (builds with the `cuda` feature).
    #[cfg(feature = "cuda")]
    Cuda,
}

/// Bytes in a GiB.
pub(crate) const GIB: f64 = (1u64 << 30) as f64;

/// A positive, finite number of GiB that converts to at least one byte.
fn parse_gib(text: &str) -> Result<f64, String> {
    let gib: f64 = text
        .parse()
        .map_err(|e| format!("not a number of GiB ({e})"))?;
    if !gib.is_finite() || gib * GIB < 1.0 {
        return Err(format!("must be a positive number of GiB, got {text}"));
    }
    Ok(gib)
}

/// Arguments of `tessera embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// The model folder: config.json, sentence_bert_config.json, tokenizer.json and
    /// model.safetensors (e.g. `.cache/minilm` after `cargo xtask setup`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The device the encoder runs on.
    #[arg(long, value_enum, default_value_t = EmbedDevice::Cpu)]
    pub device: EmbedDevice,
    /// Print the matrix of cosine similarities instead of the embeddings.
    #[arg(long)]
    pub similarity: bool,
    /// `--device cpu`: the most memory the interpreter's values may hold at once, in GiB
    /// (values are f64; past it the run stops with an error naming the node).
    #[arg(long, value_name = "GIB", default_value_t = 8.0, value_parser = parse_gib)]
    pub max_memory: f64,
    /// The sentences (one batch, padded to the longest).
    #[arg(value_name = "TEXT", required = true)]
    pub text: Vec<String>,
}

fn parse_target(s: &str) -> Result<TargetKind, String> {
    s.parse::<TargetKind>().map_err(|e| e.to_string())
}

/// Parses the command line, runs the command and maps failures to one-line errors.
pub fn main() -> ExitCode {
    install_panic_hook();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return report_clap_error(e),
    };
    let result = match cli.command {
        Command::Compile(args) => compile::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Embed(args) => embed::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Help and version go to stdout as clap renders them; parse errors become one line.
fn report_clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let text = e.to_string();
            let msg: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .filter(|l| !l.starts_with("Usage:"))
                .collect();
            let msg = msg.join(" ");
            let msg = msg.strip_prefix("error:").unwrap_or(&msg).trim();
            eprintln!("error: {msg} (see `tessera --help`)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Collapses a possibly multi-line message into one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A panic is a bug in Tessera: report it as one line (a backtrace only on request).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown cause".to_string()
        };
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "error: internal error (a bug in tessera, please report it): {}{at}",
            one_line(&msg)
        );
        if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
            let _ = writeln!(err, "{}", std::backtrace::Backtrace::force_capture());
        }
    }));
}
