//! A GPT decoder (GPT-2 architecture) as a pure graph definition.
//!
//! `tokens [B, T]` (`i32`) → token embedding `wte` + learned position embedding `wpe` →
//! `n_layer` pre-LN blocks → final layer norm `ln_f` → LM head tied to `wte` (the logits
//! are `x @ wte^T`) → optionally the mean cross-entropy against `targets [B, T]` (`i32`).
//!
//! One block (residual stream `x [B*T, C]`, `C = n_embd`, `H = n_head`, `D = C / H`):
//! ```text
//! qkv = ln_1(x) @ attn.qkv.weight [C, 3C] + attn.qkv.bias          [B*T, 3C]
//! q, k, v = columns 0..C, C..2C, 2C..3C, each as [B, T, H, D] → [B, H, T, D]
//! y = causal_attention(q, k, v, scale 1/sqrt(D))                     [B, H, T, D]
//! x = x + (y as [B, T, H, D] → [B*T, C]) @ attn.proj.weight + attn.proj.bias
//! x = x + mlp.proj(gelu(mlp.fc(ln_2(x))))                            hidden 4C
//! ```
//!
//! # Parameters (all `f32`)
//! | name | shape | init | decay |
//! |---|---|---|---|
//! | `wte.weight` | `[vocab_size, n_embd]` | N(0, 0.02) | yes |
//! | `wpe.weight` | `[block_size, n_embd]` | N(0, 0.02) | yes |
//! | `h.{i}.ln_1.weight`, `.bias` | `[n_embd]` | 1, 0 | no |
//! | `h.{i}.attn.qkv.weight` | `[n_embd, 3 n_embd]` | N(0, 0.02) | yes |
//! | `h.{i}.attn.qkv.bias` | `[3 n_embd]` | 0 | no |
//! | `h.{i}.attn.proj.weight` | `[n_embd, n_embd]` | N(0, 0.02 / sqrt(2 n_layer)) | yes |
//! | `h.{i}.attn.proj.bias` | `[n_embd]` | 0 | no |
//! | `h.{i}.ln_2.weight`, `.bias` | `[n_embd]` | 1, 0 | no |
//! | `h.{i}.mlp.fc.weight` | `[n_embd, 4 n_embd]` | N(0, 0.02) | yes |
//! | `h.{i}.mlp.fc.bias` | `[4 n_embd]` | 0 | no |
//! | `h.{i}.mlp.proj.weight` | `[4 n_embd, n_embd]` | N(0, 0.02 / sqrt(2 n_layer)) | yes |
//! | `h.{i}.mlp.proj.bias` | `[n_embd]` | 0 | no |
//! | `ln_f.weight`, `.bias` | `[n_embd]` | 1, 0 | no |
//!
//! Layer norms use `eps = 1e-5` ([`LN_EPS`]); GELU is the exact erf form; there is no
//! dropout. Graph inputs are named `tokens` and `targets`, outputs `logits [B, T, V]`
//! and `loss []`.

use crate::nn::{init_params, Nn, ParamSpec};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tessera_compiler::graph::{DType, Graph, GraphError, NodeId};
use tessera_compiler::interp::Tensor;

/// Epsilon of every layer norm.
pub const LN_EPS: f64 = 1e-5;
/// Standard deviation of the normal initialisation (GPT-2).
pub const INIT_STD: f64 = 0.02;
/// Target value the loss ignores (never produced by the data loader; free for padding).
pub const IGNORE_INDEX: i64 = -1;

/// Most layers a [`GptConfig`] may have (a graph of 1024 blocks already holds tens of
/// thousands of nodes; more is a typo, not a model).
pub const MAX_LAYERS: usize = 1024;

/// Size of a GPT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GptConfig {
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block (must divide `n_embd`).
    pub n_head: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Context length: the longest sequence the model accepts (rows of `wpe`).
    pub block_size: usize,
    /// Vocabulary size (rows of `wte`).
    pub vocab_size: usize,
}

/// Errors of GPT configuration and graph construction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GptError {
    /// A configuration field is out of range.
    #[error("invalid GPT config: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// What is wrong.
        reason: String,
    },
    /// The batch or sequence length asked of the graph does not fit the config.
    #[error("invalid GPT input shape: {what}")]
    InvalidShape {
        /// What is wrong.
        what: String,
    },
    /// Building the graph failed (a bug of this module if the config validated).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

impl GptConfig {
    /// Checks every field: all positive, `n_embd` a multiple of `n_head`, `vocab_size`
    /// and `block_size` small enough for `i32` ids.
    pub fn validate(&self) -> Result<(), GptError> {
        let bad = |field, value, reason: &str| GptError::InvalidConfig {
            field,
            value,
            reason: reason.to_string(),
        };
        for (field, value) in [
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
            ("block_size", self.block_size),
            ("vocab_size", self.vocab_size),
        ] {
            if value == 0 {
                return Err(bad(field, value, "must be at least 1"));
            }
        }
        if self.n_layer > MAX_LAYERS {
            return Err(bad(
                "n_layer",
                self.n_layer,
                &format!("must be at most {MAX_LAYERS}"),
            ));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(bad(
                "n_embd",
                self.n_embd,
                &format!("must be a multiple of n_head = {}", self.n_head),
            ));
        }
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("block_size", self.block_size),
        ] {
            if value > i32::MAX as usize {
                return Err(bad(field, value, "ids must fit in i32"));
            }
        }
        Ok(())
    }

    /// Width of one attention head, `n_embd / n_head`.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }

    /// The parameter specs, in graph order (see the module docs for names and shapes).
    pub fn param_specs(&self) -> Result<Vec<ParamSpec>, GptError> {
        Ok(gpt_forward(self, 1, 1, GptOutput::Logits)?.params)
    }

    /// Total number of parameters (the tied LM head counts once).
    pub fn num_params(&self) -> Result<usize, GptError> {
        Ok(self.param_specs()?.iter().map(ParamSpec::numel).sum())
    }

    /// Deterministic GPT-2 initialisation from `seed` (see [`init_params`]): weights and
    /// embeddings N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 n_layer)), biases 0,
    /// layer-norm gains 1.
    pub fn init_params(&self, seed: u64) -> Result<HashMap<String, Tensor>, GptError> {
        Ok(init_params(&self.param_specs()?, seed))
    }
}

/// Which outputs the forward graph marks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptOutput {
    /// `logits [B, T, vocab]` only (inference, sampling); no `targets` input.
    Logits,
    /// The mean cross-entropy `loss []` only (training); `targets` is an input.
    Loss,
    /// Both `logits` and `loss`.
    LogitsAndLoss,
}

/// The built forward graph with handles to its interesting nodes.
#[derive(Clone, Debug)]
pub struct GptGraph {
    /// The graph (validated).
    pub graph: Graph,
    /// Parameter specs in creation order.
    pub params: Vec<ParamSpec>,
    /// `tokens [B, T]` input (`i32`).
    pub tokens: NodeId,
    /// `targets [B, T]` input (`i32`), present with a loss.
    pub targets: Option<NodeId>,
    /// The logits: the output `logits [B, T, vocab]`, or with [`GptOutput::Loss`] the
    /// unnamed `[B*T, vocab]` matmul feeding the loss (no dead reshape is left behind).
    pub logits: NodeId,
    /// Mean cross-entropy `[]`, present with a loss.
    pub loss: Option<NodeId>,
}

/// Builds the GPT forward graph for `batch` sequences of `seq` tokens (`1 <= seq <=
/// block_size`). See the module docs for the architecture and the parameter names.
pub fn gpt_forward(
    cfg: &GptConfig,
    batch: usize,
    seq: usize,
    output: GptOutput,
) -> Result<GptGraph, GptError> {
    cfg.validate()?;
    if batch == 0 {
        return Err(GptError::InvalidShape {
            what: "batch must be at least 1".into(),
        });
    }
    if seq == 0 || seq > cfg.block_size {
        return Err(GptError::InvalidShape {
            what: format!(
                "sequence length {seq} must be in 1..={} (block_size)",
                cfg.block_size
            ),
        });
    }
    let (b, t, c, h) = (batch, seq, cfg.n_embd, cfg.n_head);
    let d = cfg.head_dim();
    let n = b.checked_mul(t).ok_or_else(|| GptError::InvalidShape {
        what: format!("batch {b} x sequence length {t} tokens overflow"),
    })?;
    let proj_std = INIT_STD / ((2 * cfg.n_layer) as f64).sqrt();

    let mut nn = Nn::new(DType::F32);
    let tokens = nn.graph_mut().input("tokens", &[b, t], DType::I32)?;
    let (tok_emb, wte) = nn.embedding("wte", tokens, cfg.vocab_size, c, INIT_STD)?;
    let wpe = nn.param(
        "wpe.weight",
        &[cfg.block_size, c],
        crate::nn::Init::Normal { std: INIT_STD },
        true,
    )?;
    let g = nn.graph_mut();
    let pos = if t == cfg.block_size {
        wpe
    } else {
        g.slice(wpe, 0, 0, t)?
    };
    // [B, T, C] + [T, C] (broadcast over the batch).
    let x = g.add(tok_emb, pos)?;
    let mut x = g.reshape(x, &[n, c])?;

    for i in 0..cfg.n_layer {
        let p = format!("h.{i}");
        // Attention.
        let a = nn.layer_norm(&format!("{p}.ln_1"), x, c, LN_EPS)?;
        let qkv = nn.linear(&format!("{p}.attn.qkv"), a, c, 3 * c, true, INIT_STD)?;
        let g = nn.graph_mut();
        let mut heads = [qkv; 3];
        for (j, hd) in heads.iter_mut().enumerate() {
            let s = g.slice(qkv, 1, j * c, c)?;
            let s = g.reshape(s, &[b, t, h, d])?;
            *hd = g.permute(s, &[0, 2, 1, 3])?;
        }
        let y = g.attention(heads[0], heads[1], heads[2], None, true, None)?;
        let y = g.permute(y, &[0, 2, 1, 3])?;
        let y = g.reshape(y, &[n, c])?;
        let y = nn.linear(&format!("{p}.attn.proj"), y, c, c, true, proj_std)?;
        x = nn.graph_mut().add(x, y)?;
        // MLP.
        let m = nn.layer_norm(&format!("{p}.ln_2"), x, c, LN_EPS)?;
        let m = nn.mlp(&format!("{p}.mlp"), m, c, 4 * c, INIT_STD, proj_std)?;
        x = nn.graph_mut().add(x, m)?;
    }
    let x = nn.layer_norm("ln_f", x, c, LN_EPS)?;
    let g = nn.graph_mut();
    // Tied LM head: [N, C] x [V, C]^T.
    let logits2 = g.matmul_t(x, wte, false, true)?;
    let logits = if output == GptOutput::Loss {
        logits2
    } else {
        let l = g.reshape(logits2, &[b, t, cfg.vocab_size])?;
        g.set_name(l, "logits")?;
        g.mark_output(l)?;
        l
    };
    let (targets, loss) = match output {
        GptOutput::Logits => (None, None),
        GptOutput::Loss | GptOutput::LogitsAndLoss => {
            let targets = g.input("targets", &[b, t], DType::I32)?;
            let flat = g.reshape(targets, &[n])?;
            let loss = g.cross_entropy(logits2, flat, IGNORE_INDEX)?;
            g.set_name(loss, "loss")?;
            (Some(targets), Some(loss))
        }
    };
    if let Some(l) = loss {
        g.mark_output(l)?;
    }
    g.validate()?;
    let (graph, params) = nn.finish();
    Ok(GptGraph {
        graph,
        params,
        tokens,
        targets,
        logits,
        loss,
    })
}
