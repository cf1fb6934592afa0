//! `nn` helpers: build the usual layers as graph pieces with named parameters, and
//! initialise those parameters deterministically.
//!
//! A [`Nn`] wraps a [`Graph`] under construction and records a [`ParamSpec`] (name,
//! shape, initialiser, weight-decay flag) for every parameter a helper creates, so that
//! [`init_params`] can produce the initial values and an optimizer can tell which
//! parameters decay.
//!
//! # Naming
//! Each helper takes a `prefix` (a dotted path such as `h.0.attn.qkv`) and names its
//! parameters `{prefix}.weight` and `{prefix}.bias`:
//!
//! | helper | parameters | shapes |
//! |---|---|---|
//! | [`Nn::linear`] | `{p}.weight`, `{p}.bias` (optional) | `[d_in, d_out]`, `[d_out]` |
//! | [`Nn::embedding`] | `{p}.weight` | `[num, dim]` |
//! | [`Nn::layer_norm`] | `{p}.weight` (gain), `{p}.bias` (shift) | `[dim]`, `[dim]` |
//! | [`Nn::mlp`] | `{p}.fc.*`, `{p}.proj.*` (two linears) | `[d, h]`, `[h]`, `[h, d]`, `[d]` |
//!
//! Linear weights are stored `[d_in, d_out]` (input-major, as GPT-2's `Conv1D` and Burn's
//! `Linear`) so that a layer is `x @ weight + bias` with no transpose.

use crate::rng::Rng;
use std::collections::HashMap;
use tessera_compiler::graph::{DType, Graph, GraphError, NodeId};
use tessera_compiler::interp::Tensor;

/// How a parameter is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Independent samples of a normal distribution with mean 0 and this standard deviation
    /// (rounded to the parameter's dtype).
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
}

/// One parameter a helper created: its graph name, shape, initialiser and whether
/// (decoupled) weight decay applies to it (matrices and embeddings yes; biases and norm
/// gains no, as in GPT-2 / nanoGPT).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Node name of the parameter in the graph.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Initialiser.
    pub init: Init,
    /// Whether weight decay applies.
    pub decay: bool,
}

impl ParamSpec {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A graph under construction plus the specs of the parameters created so far.
#[derive(Clone, Debug)]
pub struct Nn {
    graph: Graph,
    params: Vec<ParamSpec>,
    dtype: DType,
}

impl Default for Nn {
    fn default() -> Self {
        Nn::new(DType::F32)
    }
}

impl Nn {
    /// An empty graph whose parameters have dtype `dtype`.
    pub fn new(dtype: DType) -> Nn {
        Nn {
            graph: Graph::new(),
            params: Vec::new(),
            dtype,
        }
    }

    /// The graph built so far.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph, to add nodes with the plain builder methods.
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Parameter dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Specs of the parameters created so far, in creation order.
    pub fn params(&self) -> &[ParamSpec] {
        &self.params
    }

    /// The graph and the parameter specs.
    pub fn finish(self) -> (Graph, Vec<ParamSpec>) {
        (self.graph, self.params)
    }

    /// A parameter node named `name` (unique in the graph) of the given shape, recorded
    /// with its initialiser and decay flag.
    pub fn param(
        &mut self,
        name: &str,
        shape: &[usize],
        init: Init,
        decay: bool,
    ) -> Result<NodeId, GraphError> {
        let id = self.graph.param(name, shape, self.dtype)?;
        self.params.push(ParamSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype: self.dtype,
            init,
            decay,
        });
        Ok(id)
    }

    /// `x @ weight (+ bias)` for `x [.., d_in]` → `[.., d_out]`; `weight [d_in, d_out]`
    /// initialised `Normal(0, std)` (decayed), `bias [d_out]` zeros (not decayed).
    pub fn linear(
        &mut self,
        prefix: &str,
        x: NodeId,
        d_in: usize,
        d_out: usize,
        bias: bool,
        std: f64,
    ) -> Result<NodeId, GraphError> {
        let w = self.param(
            &format!("{prefix}.weight"),
            &[d_in, d_out],
            Init::Normal { std },
            true,
        )?;
        let y = self.graph.matmul(x, w)?;
        if !bias {
            return Ok(y);
        }
        let b = self.param(&format!("{prefix}.bias"), &[d_out], Init::Zeros, false)?;
        self.graph.add(y, b)
    }

    /// Embedding lookup: `weight[ids]` for `ids` (`i32`, any shape) → `ids.shape ++ [dim]`,
    /// a `gather` along axis 0 of `weight [num, dim]` (initialised `Normal(0, std)`,
    /// decayed). Returns the output and the table (for weight tying).
    pub fn embedding(
        &mut self,
        prefix: &str,
        ids: NodeId,
        num: usize,
        dim: usize,
        std: f64,
    ) -> Result<(NodeId, NodeId), GraphError> {
        let w = self.param(
            &format!("{prefix}.weight"),
            &[num, dim],
            Init::Normal { std },
            true,
        )?;
        let y = self.graph.gather(w, ids, 0)?;
        Ok((y, w))
    }

    /// Affine layer norm over the last axis of `x [.., dim]`: gain `{prefix}.weight [dim]`
    /// (ones) and shift `{prefix}.bias [dim]` (zeros), neither decayed.
    pub fn layer_norm(
        &mut self,
        prefix: &str,
        x: NodeId,
        dim: usize,
        eps: f64,
    ) -> Result<NodeId, GraphError> {
        let g = self.param(&format!("{prefix}.weight"), &[dim], Init::Ones, false)?;
        let b = self.param(&format!("{prefix}.bias"), &[dim], Init::Zeros, false)?;
        self.graph.layer_norm(x, Some((g, b)), eps)
    }

    /// Two-layer perceptron `proj(gelu(fc(x)))` for `x [.., d]`: `{prefix}.fc` is
    /// `d → hidden` (weights `Normal(0, std)`), the exact (erf) GELU, then `{prefix}.proj`
    /// is `hidden → d` (weights `Normal(0, proj_std)`); both with biases.
    pub fn mlp(
        &mut self,
        prefix: &str,
        x: NodeId,
        d: usize,
        hidden: usize,
        std: f64,
        proj_std: f64,
    ) -> Result<NodeId, GraphError> {
        let h = self.linear(&format!("{prefix}.fc"), x, d, hidden, true, std)?;
        let h = self.graph.gelu(h, false)?;
        self.linear(&format!("{prefix}.proj"), h, hidden, d, true, proj_std)
    }
}

/// Initial values of parameters, by name. Each parameter draws from its own stream
/// ([`Rng::for_stream`] of `seed` and its name), so a value depends only on the seed, the
/// name and the shape, not on the order of the specs. Normal samples are rounded to the
/// parameter's dtype, so every backend starts from exactly the values the f64 oracle sees.
pub fn init_params(specs: &[ParamSpec], seed: u64) -> HashMap<String, Tensor> {
    specs
        .iter()
        .map(|s| {
            let t = match s.init {
                Init::Zeros => Tensor::zeros(&s.shape, s.dtype),
                Init::Ones => Tensor::full(&s.shape, s.dtype, 1.0),
                Init::Normal { std } => {
                    let mut rng = Rng::for_stream(seed, &s.name);
                    let data = (0..s.numel())
                        .map(|_| {
                            tessera_compiler::interp::round_to_dtype(std * rng.normal(), s.dtype)
                        })
                        .collect();
                    Tensor {
                        shape: s.shape.clone(),
                        dtype: s.dtype,
                        data,
                    }
                }
            };
            (s.name.clone(), t)
        })
        .collect()
}
