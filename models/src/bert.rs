//! A BERT sentence encoder loaded from pretrained files: sentence-transformers
//! all-MiniLM-L6-v2 (issue 5), or any folder with the same files.
//!
//! # Files read from the model folder
//! | file | use |
//! |---|---|
//! | `config.json` | [`BertConfig`] (Hugging Face `BertModel` config) |
//! | `sentence_bert_config.json` | `max_seq_length`: the truncation length of the pipeline |
//! | `tokenizer.json` | the WordPiece tokenizer (`tokenizers` crate) |
//! | `model.safetensors` | the weights, under their Hugging Face names |
//!
//! # Tokenization
//! The sentence-transformers pipeline is followed, not `tokenizer.json`'s own defaults
//! (that file truncates and pads every input to 128 tokens): the file's padding is
//! disabled, truncation is set to `max_seq_length` from `sentence_bert_config.json` (256
//! for MiniLM; the count includes `[CLS]` and `[SEP]`), and a batch is padded to its
//! longest sentence with `[PAD]` (id 0) and attention mask 0. Token type ids are all 0 (one
//! segment). An empty string is a valid input: it tokenizes to `[CLS] [SEP]` and has the
//! embedding of that two-token sequence (a unit vector like any other).
//!
//! # Graph
//! Inputs `input_ids [B, T]` and `attention_mask [B, T]` (`i32`; mask 1 = a real token),
//! output `embeddings [B, C]` (`f32`, `C = hidden_size`):
//! ```text
//! x = word_embeddings[input_ids] + position_embeddings[0..T] + token_type_embeddings[0]
//! x = LayerNorm(x)                                                   (eps = layer_norm_eps)
//! per layer (post-LN; Linear weights are [out, in], applied as x @ W^T + b):
//!   q, k, v = query(x), key(x), value(x) as [B, H, T, D]
//!   a = attention(q, k, v, padding mask = attention_mask, scale 1/sqrt(D))
//!   x = LayerNorm(x + attention.output.dense(a))
//!   x = LayerNorm(x + output.dense(gelu_erf(intermediate.dense(x))))
//! e = sum_t(x[b, t] * mask[b, t]) / max(sum_t mask[b, t], 1e-9)      (mean pooling)
//! embeddings = e / max(||e||_2, 1e-12)                               (L2 normalisation)
//! ```
//! The graph uses the `attention`, `layer_norm` and `gelu` composites, so the same graph
//! runs on the f64 interpreter ([`MiniLm::embed_interp`]) and on every device backend
//! that lowers those composites.
//!
//! # Parameters
//! Graph parameters carry the Hugging Face tensor names of `model.safetensors`
//! (`embeddings.word_embeddings.weight`, `encoder.layer.{i}.attention.self.query.weight`,
//! ...; see [`BertConfig::param_shapes`]). Loading checks every expected tensor: a missing
//! one, one of another shape, one of a non-float dtype, or an unexpected extra tensor is a
//! [`BertError`] naming it. Tensors that `BertModel` checkpoints carry but the sentence
//! embedding does not use are accepted and left out: `embeddings.position_ids` (a buffer)
//! and the `pooler.dense` weights ([`UNUSED_TENSORS`]). F16 and BF16 weights are widened
//! exactly to the graph's `f32`.

use crate::gpt::MAX_LAYERS;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tessera_compiler::graph::{DType, Graph, GraphError, NodeId};
use tessera_compiler::interp::{run_graph, InterpError, Tensor};

/// Name of the token-id input of the encoder graph.
pub const INPUT_IDS: &str = "input_ids";
/// Name of the attention-mask input of the encoder graph.
pub const ATTENTION_MASK: &str = "attention_mask";
/// Name of the output of the encoder graph: `[B, hidden_size]` unit vectors.
pub const EMBEDDINGS: &str = "embeddings";

/// Lower bound of the token count in mean pooling (as sentence-transformers' `Pooling`).
pub const POOL_COUNT_MIN: f64 = 1e-9;
/// Lower bound of the norm in L2 normalisation (as `torch.nn.functional.normalize`).
pub const NORMALIZE_EPS: f64 = 1e-12;

/// Tensors of a `BertModel` checkpoint that the sentence embedding does not use: accepted
/// when present (and left out of the parameters), never required.
pub const UNUSED_TENSORS: [&str; 3] = [
    "embeddings.position_ids",
    "pooler.dense.weight",
    "pooler.dense.bias",
];

/// Errors of loading a BERT model folder, tokenizing, building or running the encoder.
#[derive(Debug, thiserror::Error)]
pub enum BertError {
    /// A required file of the model folder is absent.
    #[error("model folder {dir} has no {file}")]
    MissingFile {
        /// The model folder.
        dir: PathBuf,
        /// The missing file's name.
        file: &'static str,
    },
    /// A file exists but could not be read.
    #[error("reading {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// A JSON file of the folder does not parse or lacks a field.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What is wrong (serde's message names the field).
        message: String,
    },
    /// A configuration value is outside what this encoder supports.
    #[error("unsupported BERT config: {field} = {value}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// `model.safetensors` is not a valid safetensors file (for example truncated).
    #[error("{path} is not a valid safetensors file (truncated or corrupt?): {reason}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The safetensors crate's error.
        reason: String,
    },
    /// A tensor the encoder needs is not in the checkpoint.
    #[error("model.safetensors has no tensor `{name}` (expected shape {shape:?})")]
    MissingTensor {
        /// Its Hugging Face name.
        name: String,
        /// The shape it should have.
        shape: Vec<usize>,
    },
    /// The checkpoint has a tensor the encoder does not know.
    #[error("model.safetensors has an unexpected tensor `{name}` of shape {shape:?}")]
    ExtraTensor {
        /// Its name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A tensor has another shape than the config implies.
    #[error("tensor `{name}` has shape {got:?}, the config implies {expected:?}")]
    WrongShape {
        /// Its name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        got: Vec<usize>,
    },
    /// A tensor has a dtype other than F32, F16 or BF16.
    #[error("tensor `{name}` has dtype {dtype}; F32, F16 or BF16 expected")]
    WrongDtype {
        /// Its name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// A tensor holds a NaN or an infinity (a corrupt or diverged checkpoint).
    #[error(
        "tensor `{name}` holds {value} at element {index}: the checkpoint is corrupt or diverged"
    )]
    NonFinite {
        /// Its name.
        name: String,
        /// The first non-finite element (row-major).
        index: usize,
        /// Its value (`NaN`, `inf` or `-inf`).
        value: f64,
    },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizers crate's message.
        reason: String,
    },
    /// No sentences were given.
    #[error("no input sentences")]
    EmptyBatch,
    /// A batch or sequence length the graph cannot take.
    #[error("invalid encoder input shape: {what}")]
    InvalidShape {
        /// What is wrong.
        what: String,
    },
    /// Graph construction failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The interpreter failed.
    #[error(transparent)]
    Interp(#[from] InterpError),
}

/// The fields of a Hugging Face `BertModel` `config.json` that define the encoder (other
/// fields, such as dropout rates, are ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Width of the hidden states `C`.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (must divide `hidden_size`).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Rows of the position embedding: the longest sequence.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding (row 0 is used).
    pub type_vocab_size: usize,
    /// Rows of the word embedding.
    pub vocab_size: usize,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
    /// Feed-forward activation: only `"gelu"` (the exact erf form) is supported.
    pub hidden_act: String,
    /// Position embedding type: absent or `"absolute"`.
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

impl BertConfig {
    /// The configuration of sentence-transformers all-MiniLM-L6-v2 (its `config.json`),
    /// for compiling the encoder graph without the model files (e.g. to emit its kernels).
    pub fn all_minilm_l6_v2() -> BertConfig {
        BertConfig {
            hidden_size: 384,
            num_hidden_layers: 6,
            num_attention_heads: 12,
            intermediate_size: 1536,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            vocab_size: 30522,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".to_string(),
            position_embedding_type: Some("absolute".to_string()),
        }
    }

    /// Parses a `config.json` text and checks it ([`BertConfig::validate`]).
    pub fn from_json(path: &Path, text: &str) -> Result<BertConfig, BertError> {
        let cfg: BertConfig = serde_json::from_str(text).map_err(|e| BertError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that every size is positive, the heads divide the width, the activation is
    /// the exact GELU and the positions are absolute.
    pub fn validate(&self) -> Result<(), BertError> {
        let bad = |field: &'static str, value: String, reason: &str| BertError::Config {
            field,
            value,
            reason: reason.to_string(),
        };
        for (field, v) in [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
            ("vocab_size", self.vocab_size),
        ] {
            if v == 0 {
                return Err(bad(field, v.to_string(), "must be at least 1"));
            }
        }
        if self.num_hidden_layers > MAX_LAYERS {
            return Err(bad(
                "num_hidden_layers",
                self.num_hidden_layers.to_string(),
                &format!("must be at most {MAX_LAYERS}"),
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(bad(
                "num_attention_heads",
                self.num_attention_heads.to_string(),
                &format!("must divide hidden_size {}", self.hidden_size),
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(bad(
                "layer_norm_eps",
                self.layer_norm_eps.to_string(),
                "must be positive and finite",
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(bad(
                "hidden_act",
                self.hidden_act.clone(),
                "only \"gelu\" (the exact erf GELU) is supported",
            ));
        }
        if let Some(p) = &self.position_embedding_type {
            if p != "absolute" {
                return Err(bad(
                    "position_embedding_type",
                    p.clone(),
                    "only \"absolute\" is supported",
                ));
            }
        }
        Ok(())
    }

    /// Width of one attention head `D = hidden_size / num_attention_heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// Every parameter of the encoder: its Hugging Face name and shape, in graph order.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (c, f) = (self.hidden_size, self.intermediate_size);
        let mut out = vec![
            (
                "embeddings.word_embeddings.weight".to_string(),
                vec![self.vocab_size, c],
            ),
            (
                "embeddings.position_embeddings.weight".to_string(),
                vec![self.max_position_embeddings, c],
            ),
            (
                "embeddings.token_type_embeddings.weight".to_string(),
                vec![self.type_vocab_size, c],
            ),
            ("embeddings.LayerNorm.weight".to_string(), vec![c]),
            ("embeddings.LayerNorm.bias".to_string(), vec![c]),
        ];
        for i in 0..self.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            for (name, out_f, in_f) in [
                ("attention.self.query", c, c),
                ("attention.self.key", c, c),
                ("attention.self.value", c, c),
                ("attention.output.dense", c, c),
                ("intermediate.dense", f, c),
                ("output.dense", c, f),
            ] {
                out.push((format!("{p}.{name}.weight"), vec![out_f, in_f]));
                out.push((format!("{p}.{name}.bias"), vec![out_f]));
                if name == "attention.output.dense" || name == "output.dense" {
                    let ln = name.trim_end_matches("dense");
                    out.push((format!("{p}.{ln}LayerNorm.weight"), vec![c]));
                    out.push((format!("{p}.{ln}LayerNorm.bias"), vec![c]));
                }
            }
        }
        out
    }
}

/// Builds the encoder graph for `batch` sentences of `seq` tokens (see the module docs).
/// Parameters are `f32` graph params named as in [`BertConfig::param_shapes`].
pub fn bert_encoder(cfg: &BertConfig, batch: usize, seq: usize) -> Result<Graph, BertError> {
    cfg.validate()?;
    if batch == 0 {
        return Err(BertError::InvalidShape {
            what: "batch must be at least 1".into(),
        });
    }
    if seq == 0 || seq > cfg.max_position_embeddings {
        return Err(BertError::InvalidShape {
            what: format!(
                "sequence length {seq} must be in 1..={} (max_position_embeddings)",
                cfg.max_position_embeddings
            ),
        });
    }
    let (b, t, c) = (batch, seq, cfg.hidden_size);
    let (h, d) = (cfg.num_attention_heads, cfg.head_dim());
    let n = b * t;
    let eps = cfg.layer_norm_eps;
    let mut g = Graph::new();
    let mut params: HashMap<String, NodeId> = HashMap::new();
    for (name, shape) in cfg.param_shapes() {
        let id = g.param(&name, &shape, DType::F32)?;
        params.insert(name, id);
    }
    // `param_shapes` names every parameter used below; a typo would be a bug here, reported
    // as a graph error rather than a panic.
    let p = |name: &str| -> Result<NodeId, BertError> {
        params.get(name).copied().ok_or_else(|| {
            BertError::Graph(GraphError::UnknownInput {
                node: "bert".into(),
                input: name.to_string(),
            })
        })
    };

    let ids = g.input(INPUT_IDS, &[b, t], DType::I32)?;
    let mask = g.input(ATTENTION_MASK, &[b, t], DType::I32)?;

    // Embeddings: [B, T, C] + [T, C] + [1, C] (NumPy broadcasting).
    let word = g.gather(p("embeddings.word_embeddings.weight")?, ids, 0)?;
    let pos_table = p("embeddings.position_embeddings.weight")?;
    let pos = if t == cfg.max_position_embeddings {
        pos_table
    } else {
        g.slice(pos_table, 0, 0, t)?
    };
    let ty = g.slice(p("embeddings.token_type_embeddings.weight")?, 0, 0, 1)?;
    let x = g.add(word, pos)?;
    let x = g.add(x, ty)?;
    let x = g.reshape(x, &[n, c])?;
    let mut x = layer_norm(&mut g, &p, "embeddings.LayerNorm", x, eps)?;

    for i in 0..cfg.num_hidden_layers {
        let pre = format!("encoder.layer.{i}");
        let mut heads = [x; 3];
        for (hd, name) in heads.iter_mut().zip(["query", "key", "value"]) {
            let y = linear(&mut g, &p, &format!("{pre}.attention.self.{name}"), x)?;
            let y = g.reshape(y, &[b, t, h, d])?;
            *hd = g.permute(y, &[0, 2, 1, 3])?;
        }
        let a = g.attention(heads[0], heads[1], heads[2], Some(mask), false, None)?;
        let a = g.permute(a, &[0, 2, 1, 3])?;
        let a = g.reshape(a, &[n, c])?;
        let a = linear(&mut g, &p, &format!("{pre}.attention.output.dense"), a)?;
        let r = g.add(x, a)?;
        x = layer_norm(
            &mut g,
            &p,
            &format!("{pre}.attention.output.LayerNorm"),
            r,
            eps,
        )?;

        let m = linear(&mut g, &p, &format!("{pre}.intermediate.dense"), x)?;
        let m = g.gelu(m, false)?;
        let m = linear(&mut g, &p, &format!("{pre}.output.dense"), m)?;
        let r = g.add(x, m)?;
        x = layer_norm(&mut g, &p, &format!("{pre}.output.LayerNorm"), r, eps)?;
    }

    // Mean pooling over the attention mask.
    let x = g.reshape(x, &[b, t, c])?;
    let maskf = g.cast(mask, DType::F32)?;
    let mask3 = g.reshape(maskf, &[b, t, 1])?;
    let masked = g.mul(x, mask3)?;
    let summed = g.sum(masked, 1, false)?;
    let count = g.sum(maskf, 1, true)?;
    let floor = g.constant(POOL_COUNT_MIN, &[b, 1], DType::F32)?;
    let count = g.max(count, floor)?;
    let mean = g.div(summed, count)?;
    // L2 normalisation.
    let sq = g.mul(mean, mean)?;
    let ss = g.sum(sq, 1, true)?;
    let norm = g.sqrt(ss)?;
    let floor = g.constant(NORMALIZE_EPS, &[b, 1], DType::F32)?;
    let norm = g.max(norm, floor)?;
    let out = g.div(mean, norm)?;
    g.set_name(out, EMBEDDINGS)?;
    g.mark_output(out)?;
    g.validate()?;
    Ok(g)
}

/// `x @ W^T + b` with the Hugging Face `[out, in]` weight `{name}.weight`.
fn linear(
    g: &mut Graph,
    p: &impl Fn(&str) -> Result<NodeId, BertError>,
    name: &str,
    x: NodeId,
) -> Result<NodeId, BertError> {
    let w = p(&format!("{name}.weight"))?;
    let bias = p(&format!("{name}.bias"))?;
    let y = g.matmul_t(x, w, false, true)?;
    Ok(g.add(y, bias)?)
}

/// Layer norm with the affine `{name}.weight`, `{name}.bias`.
fn layer_norm(
    g: &mut Graph,
    p: &impl Fn(&str) -> Result<NodeId, BertError>,
    name: &str,
    x: NodeId,
    eps: f64,
) -> Result<NodeId, BertError> {
    let gamma = p(&format!("{name}.weight"))?;
    let beta = p(&format!("{name}.bias"))?;
    Ok(g.layer_norm(x, Some((gamma, beta)), eps)?)
}

/// Reads the encoder's parameters from the bytes of a `model.safetensors` file (`path` is
/// only used in errors), checking names, shapes and dtypes against the config.
pub fn load_safetensors(
    cfg: &BertConfig,
    path: &Path,
    bytes: &[u8],
) -> Result<HashMap<String, Tensor>, BertError> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| BertError::Safetensors {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let expected = cfg.param_shapes();
    let known: HashSet<&str> = expected
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(UNUSED_TENSORS)
        .collect();
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    if let Some(extra) = names.iter().find(|n| !known.contains(**n)) {
        let shape = st
            .tensor(extra)
            .map(|v| v.shape().to_vec())
            .unwrap_or_default();
        return Err(BertError::ExtraTensor {
            name: extra.to_string(),
            shape,
        });
    }
    let mut out = HashMap::with_capacity(expected.len());
    for (name, shape) in expected {
        let view = match st.tensor(&name) {
            Ok(v) => v,
            Err(_) => return Err(BertError::MissingTensor { name, shape }),
        };
        if view.shape() != shape.as_slice() {
            return Err(BertError::WrongShape {
                name,
                expected: shape,
                got: view.shape().to_vec(),
            });
        }
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            other => {
                return Err(BertError::WrongDtype {
                    name,
                    dtype: format!("{other:?}"),
                })
            }
        };
        let mut t = Tensor::from_bytes(&shape, dtype, view.data())?;
        if let Some((index, &value)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(BertError::NonFinite { name, index, value });
        }
        // F16 and BF16 values are exact in f32: the graph's parameters are f32.
        t.dtype = DType::F32;
        out.insert(name, t);
    }
    Ok(out)
}

/// The contents of `sentence_bert_config.json` that matter here.
#[derive(Clone, Debug, Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

/// A tokenized batch, padded to its longest sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBatch {
    /// Token ids of each sentence, unpadded (with `[CLS]` and `[SEP]`).
    pub ids: Vec<Vec<u32>>,
    /// `input_ids [B, T]` (`i32`): ids padded with the pad id 0.
    pub input_ids: Tensor,
    /// `attention_mask [B, T]` (`i32`): 1 for real tokens, 0 for padding.
    pub attention_mask: Tensor,
}

impl TokenBatch {
    /// Number of sentences `B`.
    pub fn batch(&self) -> usize {
        self.ids.len()
    }

    /// Padded length `T` (the longest sentence's token count).
    pub fn seq(&self) -> usize {
        self.ids.iter().map(Vec::len).max().unwrap_or(0)
    }
}

/// A pretrained BERT sentence encoder (all-MiniLM-L6-v2 or a folder with the same files):
/// config, tokenizer and weights.
pub struct MiniLm {
    dir: PathBuf,
    config: BertConfig,
    max_seq_length: usize,
    tokenizer: tokenizers::Tokenizer,
    params: HashMap<String, Tensor>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("max_seq_length", &self.max_seq_length)
            .field("params", &self.params.len())
            .finish()
    }
}

/// `dir/file`, or [`BertError::MissingFile`] (or [`BertError::Io`] when `dir` is a file
/// or `dir/file` is a folder).
fn require(dir: &Path, file: &'static str) -> Result<PathBuf, BertError> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else if dir.exists() && !dir.is_dir() {
        Err(BertError::Io {
            path: dir.to_path_buf(),
            message: "this is a file, not a model folder (give the folder that holds \
                      config.json, tokenizer.json and model.safetensors)"
                .into(),
        })
    } else if path.exists() {
        Err(BertError::Io {
            path,
            message: "not a regular file (a folder?)".into(),
        })
    } else {
        Err(BertError::MissingFile {
            dir: dir.to_path_buf(),
            file,
        })
    }
}

fn read_text(path: &Path) -> Result<String, BertError> {
    std::fs::read_to_string(path).map_err(|e| BertError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl MiniLm {
    /// Loads a model folder (see the module docs for the files it must hold). Every file
    /// is checked before the weights are read, so a missing file is reported by name.
    pub fn load(dir: impl AsRef<Path>) -> Result<MiniLm, BertError> {
        let dir = dir.as_ref();
        let config_path = require(dir, "config.json")?;
        let sbert_path = require(dir, "sentence_bert_config.json")?;
        let tokenizer_path = require(dir, "tokenizer.json")?;
        let weights_path = require(dir, "model.safetensors")?;

        let config = BertConfig::from_json(&config_path, &read_text(&config_path)?)?;
        let sbert: SentenceBertConfig =
            serde_json::from_str(&read_text(&sbert_path)?).map_err(|e| BertError::Json {
                path: sbert_path.clone(),
                message: e.to_string(),
            })?;
        let max_seq_length = sbert.max_seq_length;
        if max_seq_length > config.max_position_embeddings {
            return Err(BertError::Config {
                field: "max_seq_length",
                value: max_seq_length.to_string(),
                reason: format!(
                    "exceeds max_position_embeddings {}",
                    config.max_position_embeddings
                ),
            });
        }

        let mut tokenizer = tokenizers::Tokenizer::from_file(&tokenizer_path).map_err(|e| {
            BertError::Tokenizer {
                reason: format!("loading {}: {e}", tokenizer_path.display()),
            }
        })?;
        let added = tokenizer
            .get_post_processor()
            .map(|p| tokenizers::PostProcessor::added_tokens(p, false))
            .unwrap_or(0);
        // Every id the tokenizer can produce must have a row in the word embeddings.
        if let Some((token, &id)) = tokenizer
            .get_vocab(true)
            .iter()
            .max_by_key(|(_, &id)| id)
            .filter(|(_, &id)| id as usize >= config.vocab_size)
        {
            return Err(BertError::Tokenizer {
                reason: format!(
                    "{} maps `{token}` to id {id}, but config.json's vocab_size is {}: the \
                     tokenizer does not belong to this model",
                    tokenizer_path.display(),
                    config.vocab_size
                ),
            });
        }
        if max_seq_length <= added {
            return Err(BertError::Config {
                field: "max_seq_length",
                value: max_seq_length.to_string(),
                reason: format!("must exceed the {added} special tokens the tokenizer adds"),
            });
        }
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_seq_length,
                ..Default::default()
            }))
            .map_err(|e| BertError::Tokenizer {
                reason: format!("setting truncation to {max_seq_length}: {e}"),
            })?;

        let bytes = std::fs::read(&weights_path).map_err(|e| BertError::Io {
            path: weights_path.clone(),
            message: e.to_string(),
        })?;
        let params = load_safetensors(&config, &weights_path, &bytes)?;
        Ok(MiniLm {
            dir: dir.to_path_buf(),
            config,
            max_seq_length,
            tokenizer,
            params,
        })
    }

    /// The folder the model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model's configuration.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The truncation length (tokens, `[CLS]` and `[SEP]` included).
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Width of an embedding.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// The weights by Hugging Face name (the graph's parameter names).
    pub fn params(&self) -> &HashMap<String, Tensor> {
        &self.params
    }

    /// Tokenizes sentences and pads them to the longest (see the module docs).
    pub fn tokenize(&self, texts: &[&str]) -> Result<TokenBatch, BertError> {
        if texts.is_empty() {
            return Err(BertError::EmptyBatch);
        }
        let mut ids = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let enc = self
                .tokenizer
                .encode(*text, true)
                .map_err(|e| BertError::Tokenizer {
                    reason: format!("sentence {i}: {e}"),
                })?;
            ids.push(enc.get_ids().to_vec());
        }
        let b = ids.len();
        let t = ids.iter().map(Vec::len).max().unwrap_or(0);
        if t == 0 {
            return Err(BertError::Tokenizer {
                reason: "the tokenizer produced no tokens".into(),
            });
        }
        let mut input = vec![0.0; b * t];
        let mut mask = vec![0.0; b * t];
        for (row, s) in ids.iter().enumerate() {
            for (j, &id) in s.iter().enumerate() {
                input[row * t + j] = f64::from(id);
                mask[row * t + j] = 1.0;
            }
        }
        Ok(TokenBatch {
            input_ids: Tensor::from_vec(&[b, t], DType::I32, input)?,
            attention_mask: Tensor::from_vec(&[b, t], DType::I32, mask)?,
            ids,
        })
    }

    /// The encoder graph for `batch` sentences padded to `seq` tokens.
    pub fn graph(&self, batch: usize, seq: usize) -> Result<Graph, BertError> {
        bert_encoder(&self.config, batch, seq)
    }

    /// Every graph input for a tokenized batch: the weights and `input_ids`,
    /// `attention_mask` (a copy of the weights: the interpreter takes one map).
    pub fn graph_inputs(&self, tokens: &TokenBatch) -> HashMap<String, Tensor> {
        let mut inputs = self.params.clone();
        inputs.insert(INPUT_IDS.to_string(), tokens.input_ids.clone());
        inputs.insert(ATTENTION_MASK.to_string(), tokens.attention_mask.clone());
        inputs
    }

    /// Splits an `embeddings [B, C]` output into one vector per sentence.
    pub fn split_embeddings(&self, out: &Tensor) -> Result<Vec<Vec<f64>>, BertError> {
        let c = self.config.hidden_size;
        if out.shape.len() != 2 || out.shape[1] != c || out.data.len() != out.shape[0] * c {
            return Err(BertError::InvalidShape {
                what: format!(
                    "embeddings output of shape {:?}, expected [B, {c}]",
                    out.shape
                ),
            });
        }
        Ok(out.data.chunks(c).map(<[f64]>::to_vec).collect())
    }

    /// Sentence embeddings computed by the f64 graph interpreter (the oracle): one unit
    /// vector of [`MiniLm::dim`] values per sentence.
    pub fn embed_interp(&self, texts: &[&str]) -> Result<Vec<Vec<f64>>, BertError> {
        let tokens = self.tokenize(texts)?;
        let graph = self.graph(tokens.batch(), tokens.seq())?;
        let mut out = run_graph(&graph, &self.graph_inputs(&tokens))?;
        let emb = out
            .remove(EMBEDDINGS)
            .ok_or_else(|| BertError::InvalidShape {
                what: format!("the graph has no `{EMBEDDINGS}` output"),
            })?;
        self.split_embeddings(&emb)
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}
