//! Text generation from a trained GPT, on any [`Device`].
//!
//! [`Sampler::new`] compiles the GPT forward graph ([`gpt_forward`] with
//! [`GptOutput::Logits`]) for batch 1 and the model's whole context (`block_size`
//! tokens), loads it on a device and sets every parameter (e.g. from
//! [`super::Trainer::params`] or a checkpoint). One generated token is one run:
//!
//! - the last `block_size` tokens of the text so far (`L` of them) go to positions
//!   `0..L`; the positions after them are padded with token 0. The attention is causal,
//!   so position `L - 1` sees positions `0..L` only and the padding changes nothing;
//! - the logits at position `L - 1` are divided by the temperature, cut to the `top_k`
//!   largest (optional), and a token is drawn from their softmax with a seeded
//!   [`Rng`] (stream `"sample"` of [`SampleOptions::seed`]): the same seed gives the
//!   same text. Temperature 0 is greedy decoding (the argmax; ties go to the smaller id).
//!
//! ```no_run
//! # use tessera::train::sample::{Sampler, SampleOptions};
//! # fn demo(device: &dyn tessera::runtime::Device, trainer: &tessera::train::Trainer,
//! #         cfg: &tessera::models::gpt::GptConfig,
//! #         tok: tessera::models::tokenizer::CharTokenizer) -> Result<(), Box<dyn std::error::Error>> {
//! let mut sampler = Sampler::new(device, cfg, &trainer.params()?, tok)?;
//! let text = sampler.generate("ROMEO:", 200, &SampleOptions::default())?;
//! println!("ROMEO:{text}");
//! # Ok(()) }
//! ```

use crate::runtime::{Device, Executable, RuntimeError};
use std::collections::HashMap;
use tessera_compiler::graph::DType;
use tessera_compiler::interp::Tensor;
use tessera_models::gpt::{gpt_forward, GptConfig, GptError, GptOutput};
use tessera_models::rng::Rng;
use tessera_models::tokenizer::{CharTokenizer, TokenizerError};

/// Name of the RNG stream sampling draws from (under [`SampleOptions::seed`]).
pub const SAMPLE_STREAM: &str = "sample";

/// Token id written into the positions after the context (any valid id would do: the
/// causal mask hides them from the position that is read).
pub const PAD_TOKEN: i32 = 0;

/// A text-generation failure.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Generation needs at least one token to condition on.
    #[error("the prompt is empty: give at least one character to start from")]
    EmptyPrompt,
    /// A prompt character is not in the model's vocabulary.
    #[error("the prompt cannot be encoded: {0}")]
    Prompt(#[source] TokenizerError),
    /// A prompt token id is outside the vocabulary.
    #[error("prompt token {id} at position {position} is outside 0..{vocab_size}")]
    PromptId {
        /// The id.
        id: i32,
        /// Its index in the prompt.
        position: usize,
        /// Vocabulary size.
        vocab_size: usize,
    },
    /// The temperature is negative or not finite.
    #[error("the temperature must be finite and at least 0 (0 = greedy), got {0}")]
    Temperature(f64),
    /// `top_k` is 0.
    #[error("top_k must be at least 1 (or absent to keep every token)")]
    TopK,
    /// The tokenizer and the model disagree on the vocabulary size.
    #[error("the model's vocabulary has {model} tokens but the tokenizer's has {tokenizer}")]
    Vocabulary {
        /// `vocab_size` of the model config.
        model: usize,
        /// The tokenizer's vocabulary size.
        tokenizer: usize,
    },
    /// A model parameter was not given.
    #[error("no value for the model parameter `{0}`")]
    MissingParam(String),
    /// The model produced NaN or infinite logits (e.g. diverged training).
    #[error("the model produced a non-finite logit ({value}) for token {token}")]
    NonFinite {
        /// The token id.
        token: usize,
        /// The logit.
        value: f64,
    },
    /// The device returned no `logits` output of the expected shape.
    #[error("the device returned no `logits` output of shape [1, {context}, {vocab}]")]
    Logits {
        /// Context length.
        context: usize,
        /// Vocabulary size.
        vocab: usize,
    },
    /// A generated id could not be decoded (a bug if the vocabulary sizes agree).
    #[error("decoding the generated tokens failed: {0}")]
    Decode(#[source] TokenizerError),
    /// Building the forward graph failed (an invalid config).
    #[error(transparent)]
    Model(#[from] GptError),
    /// The device failed or rejected a tensor.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// How tokens are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleOptions {
    /// Softmax temperature: logits are divided by it; 0 means greedy (argmax).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens (`None`: all of them).
    pub top_k: Option<usize>,
    /// Seed of the sampling RNG (stream [`SAMPLE_STREAM`]).
    pub seed: u64,
}

impl Default for SampleOptions {
    /// Temperature 0.8, no top-k cut, seed 0.
    fn default() -> SampleOptions {
        SampleOptions {
            temperature: 0.8,
            top_k: None,
            seed: 0,
        }
    }
}

impl SampleOptions {
    /// Greedy decoding: temperature 0.
    pub fn greedy() -> SampleOptions {
        SampleOptions {
            temperature: 0.0,
            ..SampleOptions::default()
        }
    }

    /// Checks the temperature and `top_k`.
    pub fn validate(&self) -> Result<(), SampleError> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(SampleError::Temperature(self.temperature));
        }
        if self.top_k == Some(0) {
            return Err(SampleError::TopK);
        }
        Ok(())
    }
}

/// A GPT forward pass for batch 1 and the full context, loaded on a device with its
/// parameters set (see the module docs).
#[derive(Debug)]
pub struct Sampler {
    exe: Executable,
    cfg: GptConfig,
    tokenizer: CharTokenizer,
}

impl Sampler {
    /// Compiles the forward graph of `cfg` for batch 1 and `cfg.block_size` tokens on
    /// `device` and sets every model parameter from `params` (extra entries, such as
    /// optimizer moments, are ignored).
    pub fn new(
        device: &dyn Device,
        cfg: &GptConfig,
        params: &HashMap<String, Tensor>,
        tokenizer: CharTokenizer,
    ) -> Result<Sampler, SampleError> {
        cfg.validate()?;
        if tokenizer.vocab_size() != cfg.vocab_size {
            return Err(SampleError::Vocabulary {
                model: cfg.vocab_size,
                tokenizer: tokenizer.vocab_size(),
            });
        }
        let fwd = gpt_forward(cfg, 1, cfg.block_size, GptOutput::Logits)?;
        // Check the parameters before compiling anything.
        for p in &fwd.params {
            if !params.contains_key(&p.name) {
                return Err(SampleError::MissingParam(p.name.clone()));
            }
        }
        let mut exe = device.load(&fwd.graph)?;
        let names: Vec<String> = exe
            .signature()
            .params
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let value = params
                .get(&name)
                .ok_or_else(|| SampleError::MissingParam(name.clone()))?;
            exe.set_param(&name, value)?;
        }
        Ok(Sampler {
            exe,
            cfg: cfg.clone(),
            tokenizer,
        })
    }

    /// The model config.
    pub fn config(&self) -> &GptConfig {
        &self.cfg
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &CharTokenizer {
        &self.tokenizer
    }

    /// The logits of the token following `tokens` (only the last `block_size` of them
    /// are seen).
    pub fn next_logits(&mut self, tokens: &[i32]) -> Result<Vec<f64>, SampleError> {
        if tokens.is_empty() {
            return Err(SampleError::EmptyPrompt);
        }
        let (t, v) = (self.cfg.block_size, self.cfg.vocab_size);
        for (position, &id) in tokens.iter().enumerate() {
            if usize::try_from(id).map_or(true, |i| i >= v) {
                return Err(SampleError::PromptId {
                    id,
                    position,
                    vocab_size: v,
                });
            }
        }
        let window = &tokens[tokens.len().saturating_sub(t)..];
        let l = window.len();
        let mut data: Vec<f64> = window.iter().map(|&i| f64::from(i)).collect();
        data.resize(t, f64::from(PAD_TOKEN));
        let input = Tensor {
            shape: vec![1, t],
            dtype: DType::I32,
            data,
        };
        let out = self
            .exe
            .run(&HashMap::from([("tokens".to_string(), input)]))?;
        let bad = || SampleError::Logits {
            context: t,
            vocab: v,
        };
        let logits = out.get("logits").ok_or_else(bad)?;
        if logits.shape != [1, t, v] || logits.data.len() != t * v {
            return Err(bad());
        }
        Ok(logits.data[(l - 1) * v..l * v].to_vec())
    }

    /// `n` new token ids following `prompt` (ids), drawn as `opts` says.
    pub fn generate_ids(
        &mut self,
        prompt: &[i32],
        n: usize,
        opts: &SampleOptions,
    ) -> Result<Vec<i32>, SampleError> {
        opts.validate()?;
        if prompt.is_empty() {
            return Err(SampleError::EmptyPrompt);
        }
        let mut rng = Rng::for_stream(opts.seed, SAMPLE_STREAM);
        let mut tokens = prompt.to_vec();
        let mut out = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let logits = self.next_logits(&tokens)?;
            let next = choose_token(&logits, opts, &mut rng)?;
            // `next < vocab_size <= i32::MAX` (the config validated).
            let id = i32::try_from(next).map_err(|_| SampleError::PromptId {
                id: i32::MAX,
                position: tokens.len(),
                vocab_size: self.cfg.vocab_size,
            })?;
            tokens.push(id);
            out.push(id);
        }
        Ok(out)
    }

    /// `n` characters following `prompt`, drawn as `opts` says (the prompt itself is not
    /// repeated in the result).
    pub fn generate(
        &mut self,
        prompt: &str,
        n: usize,
        opts: &SampleOptions,
    ) -> Result<String, SampleError> {
        if prompt.is_empty() {
            return Err(SampleError::EmptyPrompt);
        }
        let ids = self.tokenizer.encode(prompt).map_err(SampleError::Prompt)?;
        let new = self.generate_ids(&ids, n, opts)?;
        self.tokenizer.decode(&new).map_err(SampleError::Decode)
    }
}

/// Draws one token id from `logits` as `opts` says (temperature, top-k), using `rng`
/// (untouched by greedy decoding). Non-finite logits are an error.
pub fn choose_token(
    logits: &[f64],
    opts: &SampleOptions,
    rng: &mut Rng,
) -> Result<usize, SampleError> {
    opts.validate()?;
    if let Some((token, &value)) = logits.iter().enumerate().find(|(_, l)| !l.is_finite()) {
        return Err(SampleError::NonFinite { token, value });
    }
    if logits.is_empty() {
        return Err(SampleError::Vocabulary {
            model: 0,
            tokenizer: 0,
        });
    }
    // Token ids by decreasing logit; the stable sort sends ties to the smaller id.
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if let Some(k) = opts.top_k {
        order.truncate(k);
    }
    if opts.temperature == 0.0 {
        return Ok(order[0]);
    }
    let top = logits[order[0]];
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((logits[i] - top) / opts.temperature).exp())
        .collect();
    // The first weight is exp(0) = 1, so the total is at least 1.
    let total: f64 = weights.iter().sum();
    let mut u = rng.next_f64() * total;
    for (&i, &w) in order.iter().zip(&weights) {
        if u < w {
            return Ok(i);
        }
        u -= w;
    }
    // Rounding left `u` just above the last weight: the last candidate.
    Ok(order[order.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{CpuDevice, WgpuDevice};
    use tessera_compiler::interp::run_graph;

    /// A vocabulary of 12 characters.
    const TEXT: &str = "abcdefgh ,.\n";

    fn tokenizer() -> CharTokenizer {
        CharTokenizer::from_text(TEXT).unwrap()
    }

    fn config() -> GptConfig {
        GptConfig {
            n_layer: 1,
            n_head: 2,
            n_embd: 16,
            block_size: 8,
            vocab_size: tokenizer().vocab_size(),
        }
    }

    /// GPT-2 initialisation with the embeddings scaled by 50 (std 1), so the logits
    /// spread over several units: the top two logits of a step differ by far more than
    /// the f32 rounding of the wgpu forward pass (~1e-6), and greedy decoding is the
    /// same on every device. The test asserts that margin where it depends on it.
    fn params() -> HashMap<String, Tensor> {
        let mut p = config().init_params(7).unwrap();
        for name in ["wte.weight", "wpe.weight"] {
            if let Some(t) = p.get_mut(name) {
                t.data.iter_mut().for_each(|v| *v *= 50.0);
            }
        }
        p
    }

    /// Greedy continuation of `prompt` computed directly with the f64 graph interpreter
    /// on a graph of exactly the context length (no padding), independently of the
    /// sampler; also returns the smallest gap between the best and second-best logit.
    fn reference_greedy(prompt: &[i32], n: usize) -> (Vec<i32>, f64) {
        let cfg = config();
        let p = params();
        let mut tokens = prompt.to_vec();
        let mut out = Vec::new();
        let mut min_gap = f64::INFINITY;
        for _ in 0..n {
            let start = tokens.len().saturating_sub(cfg.block_size);
            let window = &tokens[start..];
            let g = gpt_forward(&cfg, 1, window.len(), GptOutput::Logits)
                .unwrap()
                .graph;
            let mut inputs = p.clone();
            inputs.insert(
                "tokens".into(),
                Tensor::from_vec(
                    &[1, window.len()],
                    DType::I32,
                    window.iter().map(|&i| f64::from(i)).collect(),
                )
                .unwrap(),
            );
            let logits = &run_graph(&g, &inputs).unwrap()["logits"];
            let v = cfg.vocab_size;
            let last = &logits.data[(window.len() - 1) * v..];
            let mut best = 0;
            for (i, &l) in last.iter().enumerate() {
                if l > last[best] {
                    best = i;
                }
            }
            let second = last
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best)
                .map(|(_, &l)| l)
                .fold(f64::NEG_INFINITY, f64::max);
            min_gap = min_gap.min(last[best] - second);
            tokens.push(best as i32);
            out.push(best as i32);
        }
        (out, min_gap)
    }

    /// 12 tokens from a 3-token prompt: the context (8) fills up and then slides.
    const N: usize = 12;

    fn prompt() -> Vec<i32> {
        tokenizer().encode("ab ").unwrap()
    }

    #[test]
    fn greedy_on_the_interpreter_matches_an_independent_argmax() {
        let (expected, gap) = reference_greedy(&prompt(), N);
        let mut s =
            Sampler::new(&CpuDevice::reference(), &config(), &params(), tokenizer()).unwrap();
        let got = s
            .generate_ids(&prompt(), N, &SampleOptions::greedy())
            .unwrap();
        assert_eq!(got, expected, "smallest top-2 logit gap {gap}");
        // The prompt is not repeated and every char decodes.
        let text = s.generate("ab ", N, &SampleOptions::greedy()).unwrap();
        assert_eq!(text, tokenizer().decode(&expected).unwrap());
    }

    #[test]
    fn wgpu_greedy_text_equals_the_interpreter() {
        let (expected, gap) = reference_greedy(&prompt(), N);
        // f32 logits of this model differ from f64 by ~1e-5 at most; a gap of 1e-3
        // makes the argmax unambiguous (asserted, so that the comparison means
        // something).
        assert!(gap > 1e-3, "top-2 logit gap {gap} too small for the test");
        let device = WgpuDevice::new().expect("a wgpu adapter (lavapipe works)");
        let mut s = Sampler::new(&device, &config(), &params(), tokenizer()).unwrap();
        let got = s
            .generate_ids(&prompt(), N, &SampleOptions::greedy())
            .unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_same_seed_gives_the_same_text() {
        let mut s =
            Sampler::new(&CpuDevice::reference(), &config(), &params(), tokenizer()).unwrap();
        let opts = |seed| SampleOptions {
            temperature: 3.0,
            top_k: None,
            seed,
        };
        let a = s.generate("abc", N, &opts(1)).unwrap();
        let b = s.generate("abc", N, &opts(1)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.chars().count(), N);
        // Other seeds give other texts (12 draws at temperature 3 from logits spread
        // over a few units: that three seeds all agree would mean the seed is unused).
        let others: Vec<String> = (2..5)
            .map(|s2| s.generate("abc", N, &opts(s2)).unwrap())
            .collect();
        assert!(others.iter().any(|o| *o != a), "{a:?} {others:?}");
    }

    #[test]
    fn choose_token_respects_top_k_and_temperature() {
        let logits = [0.0, 3.0, 1.0, 2.9, -1.0];
        let mut rng = Rng::new(3);
        let greedy = SampleOptions::greedy();
        assert_eq!(choose_token(&logits, &greedy, &mut rng).unwrap(), 1);
        // Ties go to the smaller id.
        assert_eq!(
            choose_token(&[1.0, 2.0, 2.0], &greedy, &mut rng).unwrap(),
            1
        );
        // top_k = 2 only ever yields ids 1 and 3.
        let opts = SampleOptions {
            temperature: 5.0,
            top_k: Some(2),
            seed: 0,
        };
        let mut seen = [0usize; 5];
        for _ in 0..400 {
            seen[choose_token(&logits, &opts, &mut rng).unwrap()] += 1;
        }
        assert_eq!(seen[0] + seen[2] + seen[4], 0, "{seen:?}");
        // Nearly equal logits at high temperature: both drawn often (p = 0.505 / 0.495).
        assert!(seen[1] > 120 && seen[3] > 120, "{seen:?}");
    }

    #[test]
    fn bad_requests_are_typed_errors() {
        let mut s =
            Sampler::new(&CpuDevice::reference(), &config(), &params(), tokenizer()).unwrap();
        let g = SampleOptions::greedy();
        assert!(matches!(
            s.generate("", 3, &g),
            Err(SampleError::EmptyPrompt)
        ));
        let e = s.generate("abz", 3, &g).unwrap_err();
        assert!(
            matches!(
                e,
                SampleError::Prompt(TokenizerError::UnknownChar {
                    ch: 'z',
                    position: 2
                })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("'z'"), "{e}");
        let hot = SampleOptions {
            temperature: -1.0,
            ..g
        };
        assert!(matches!(
            s.generate("a", 3, &hot),
            Err(SampleError::Temperature(_))
        ));
        let k0 = SampleOptions {
            top_k: Some(0),
            ..g
        };
        assert!(matches!(s.generate("a", 3, &k0), Err(SampleError::TopK)));
        assert!(matches!(
            s.generate_ids(&[99], 1, &g),
            Err(SampleError::PromptId { id: 99, .. })
        ));
        let mut missing = params();
        missing.remove("ln_f.weight");
        assert!(matches!(
            Sampler::new(&CpuDevice::reference(), &config(), &missing, tokenizer()),
            Err(SampleError::MissingParam(n)) if n == "ln_f.weight"
        ));
        let wrong = CharTokenizer::from_text("xyz").unwrap();
        assert!(matches!(
            Sampler::new(&CpuDevice::reference(), &config(), &params(), wrong),
            Err(SampleError::Vocabulary { .. })
        ));
        let mut rng = Rng::new(0);
        assert!(matches!(
            choose_token(&[0.0, f64::NAN], &g, &mut rng),
            Err(SampleError::NonFinite { token: 1, .. })
        ));
    }
}
