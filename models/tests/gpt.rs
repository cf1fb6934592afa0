//! The GPT graph (`tessera_models::gpt`) on the f64 interpreter against an independent,
//! loop-by-loop f64 GPT written here; initialisation statistics; the initial loss of an
//! untrained model; config validation; parameter naming and count.

use std::collections::HashMap;
use tessera_compiler::graph::DType;
use tessera_compiler::interp::{run_graph, Tensor};
use tessera_models::data::{Dataset, Split};
use tessera_models::gpt::{gpt_forward, GptConfig, GptError, GptOutput, LN_EPS};
use tessera_models::nn::Init;
use tessera_models::rng::Rng;

fn tiny() -> GptConfig {
    GptConfig {
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        block_size: 8,
        vocab_size: 11,
    }
}

/// Parameters with O(1) random values (weights uniform in [-0.5, 0.5), norm gains
/// 1 + U[-0.5, 0.5), biases U[-0.5, 0.5)): every parameter visibly changes the output,
/// unlike the 0.02-scale GPT-2 initialisation, so a wrong layout cannot hide.
fn random_params(cfg: &GptConfig, seed: u64) -> HashMap<String, Tensor> {
    let specs = cfg.param_specs().unwrap();
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut t = Tensor::random(&s.shape, s.dtype, seed * 1000 + i as u64);
            let shift = if s.init == Init::Ones { 1.0 } else { 0.0 };
            t.data.iter_mut().for_each(|x| *x = shift + 0.5 * *x);
            (s.name.clone(), t)
        })
        .collect()
}

fn ids(shape: &[usize], vocab: usize, rng: &mut Rng) -> Tensor {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| rng.below(vocab as u64) as f64).collect();
    Tensor::from_vec(shape, DType::I32, data).unwrap()
}

// ---------------------------------------------------------------------------------------
// The independent reference: plain loops over row-major f64 vectors.

fn p<'a>(params: &'a HashMap<String, Tensor>, name: &str) -> &'a [f64] {
    &params[name].data
}

/// `x [n, k] @ w [k, m] + b [m]`.
fn linear(x: &[f64], n: usize, k: usize, w: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut y = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            let mut acc = b[j];
            for l in 0..k {
                acc += x[i * k + l] * w[l * m + j];
            }
            y[i * m + j] = acc;
        }
    }
    y
}

fn layer_norm(x: &[f64], c: usize, g: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for (row, out) in x.chunks(c).zip(y.chunks_mut(c)) {
        let mean = row.iter().sum::<f64>() / c as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / c as f64;
        let r = 1.0 / (var + LN_EPS).sqrt();
        for j in 0..c {
            out[j] = (row[j] - mean) * r * g[j] + b[j];
        }
    }
    y
}

/// Logits `[B*T, V]` and the mean cross-entropy.
fn reference(
    cfg: &GptConfig,
    params: &HashMap<String, Tensor>,
    tokens: &Tensor,
    targets: &Tensor,
) -> (Vec<f64>, f64) {
    let (bsz, t) = (tokens.shape[0], tokens.shape[1]);
    let (c, h, vsz) = (cfg.n_embd, cfg.n_head, cfg.vocab_size);
    let d = c / h;
    let n = bsz * t;
    let wte = p(params, "wte.weight");
    let wpe = p(params, "wpe.weight");
    let mut x = vec![0.0; n * c];
    for i in 0..n {
        let tok = tokens.data[i] as usize;
        let pos = i % t;
        for j in 0..c {
            x[i * c + j] = wte[tok * c + j] + wpe[pos * c + j];
        }
    }
    for l in 0..cfg.n_layer {
        let q = |s: &str| format!("h.{l}.{s}");
        let a = layer_norm(
            &x,
            c,
            p(params, &q("ln_1.weight")),
            p(params, &q("ln_1.bias")),
        );
        let qkv = linear(
            &a,
            n,
            c,
            p(params, &q("attn.qkv.weight")),
            p(params, &q("attn.qkv.bias")),
            3 * c,
        );
        let mut y = vec![0.0; n * c];
        let scale = 1.0 / (d as f64).sqrt();
        for b in 0..bsz {
            for hh in 0..h {
                for ti in 0..t {
                    let row = |tt: usize| (b * t + tt) * 3 * c;
                    // Causal: keys 0..=ti.
                    let scores: Vec<f64> = (0..=ti)
                        .map(|s| {
                            (0..d)
                                .map(|e| qkv[row(ti) + hh * d + e] * qkv[row(s) + c + hh * d + e])
                                .sum::<f64>()
                                * scale
                        })
                        .collect();
                    let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let ex: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                    let z: f64 = ex.iter().sum();
                    for e in 0..d {
                        y[(b * t + ti) * c + hh * d + e] = (0..=ti)
                            .map(|s| ex[s] / z * qkv[row(s) + 2 * c + hh * d + e])
                            .sum();
                    }
                }
            }
        }
        let y = linear(
            &y,
            n,
            c,
            p(params, &q("attn.proj.weight")),
            p(params, &q("attn.proj.bias")),
            c,
        );
        x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
        let m = layer_norm(
            &x,
            c,
            p(params, &q("ln_2.weight")),
            p(params, &q("ln_2.bias")),
        );
        let hdn = linear(
            &m,
            n,
            c,
            p(params, &q("mlp.fc.weight")),
            p(params, &q("mlp.fc.bias")),
            4 * c,
        );
        let hdn: Vec<f64> = hdn
            .iter()
            .map(|&v| 0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2)))
            .collect();
        let y = linear(
            &hdn,
            n,
            4 * c,
            p(params, &q("mlp.proj.weight")),
            p(params, &q("mlp.proj.bias")),
            c,
        );
        x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
    }
    let xf = layer_norm(&x, c, p(params, "ln_f.weight"), p(params, "ln_f.bias"));
    let mut logits = vec![0.0; n * vsz];
    for i in 0..n {
        for v in 0..vsz {
            logits[i * vsz + v] = (0..c).map(|j| xf[i * c + j] * wte[v * c + j]).sum();
        }
    }
    let mut loss = 0.0;
    for i in 0..n {
        let row = &logits[i * vsz..(i + 1) * vsz];
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = mx + row.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        loss += lse - row[targets.data[i] as usize];
    }
    (logits, loss / n as f64)
}

// ---------------------------------------------------------------------------------------

/// Both f64, the only difference is summation order: logits of magnitude O(10) after two
/// blocks of O(1) weights agree to ~1e-13; 1e-9 leaves margin and still catches any
/// layout error (those change logits by O(1)).
const REF_TOL: f64 = 1e-9;

fn check_against_reference(cfg: &GptConfig, batch: usize, seq: usize, seed: u64) {
    let built = gpt_forward(cfg, batch, seq, GptOutput::LogitsAndLoss).unwrap();
    let mut feed = random_params(cfg, seed);
    let mut rng = Rng::new(seed);
    let tokens = ids(&[batch, seq], cfg.vocab_size, &mut rng);
    let targets = ids(&[batch, seq], cfg.vocab_size, &mut rng);
    feed.insert("tokens".into(), tokens.clone());
    feed.insert("targets".into(), targets.clone());
    let out = run_graph(&built.graph, &feed).unwrap();
    let (ref_logits, ref_loss) = reference(cfg, &feed, &tokens, &targets);
    let logits = &out["logits"];
    assert_eq!(logits.shape, vec![batch, seq, cfg.vocab_size]);
    let dl = tessera_compiler::interp::max_abs_diff(&logits.data, &ref_logits);
    let loss = out["loss"].data[0];
    eprintln!("{cfg:?} B={batch} T={seq}: loss {loss:.6} (ref {ref_loss:.6}), max |dlogit| {dl:e}");
    assert!(dl <= REF_TOL, "logits differ by {dl:e}");
    assert!(
        (loss - ref_loss).abs() <= REF_TOL,
        "loss {loss} vs {ref_loss}"
    );
    // The reference is sensitive: the loss is far from the uniform ln V here.
    assert!((ref_loss - (cfg.vocab_size as f64).ln()).abs() > 0.1);
}

#[test]
fn forward_matches_independent_reference_short_sequence() {
    // seq < block_size: the position table is sliced.
    check_against_reference(&tiny(), 2, 5, 1);
}

#[test]
fn forward_matches_independent_reference_full_context() {
    let cfg = GptConfig {
        n_layer: 1,
        n_head: 4,
        n_embd: 8,
        block_size: 6,
        vocab_size: 7,
    };
    check_against_reference(&cfg, 3, 6, 2);
}

#[test]
fn output_modes() {
    let cfg = tiny();
    let g = gpt_forward(&cfg, 2, 3, GptOutput::Logits).unwrap();
    assert!(g.targets.is_none() && g.loss.is_none());
    let names: Vec<&str> = g
        .graph
        .outputs()
        .iter()
        .map(|&o| g.graph.node(o).name.as_str())
        .collect();
    assert_eq!(names, ["logits"]);
    assert!(g.graph.find("targets").is_none());
    let g = gpt_forward(&cfg, 2, 3, GptOutput::Loss).unwrap();
    let names: Vec<&str> = g
        .graph
        .outputs()
        .iter()
        .map(|&o| g.graph.node(o).name.as_str())
        .collect();
    assert_eq!(names, ["loss"]);
    assert!(g.graph.ty(g.loss.unwrap()).shape.is_empty());
    assert_eq!(g.graph.ty(g.targets.unwrap()).dtype, DType::I32);
    assert_eq!(g.graph.ty(g.tokens).shape, vec![2, 3]);
}

#[test]
fn parameter_names_shapes_and_count() {
    let cfg = GptConfig {
        n_layer: 3,
        n_head: 2,
        n_embd: 8,
        block_size: 5,
        vocab_size: 13,
    };
    let specs = cfg.param_specs().unwrap();
    let by_name: HashMap<&str, &Vec<usize>> =
        specs.iter().map(|s| (s.name.as_str(), &s.shape)).collect();
    assert_eq!(by_name.len(), specs.len(), "duplicate names");
    assert_eq!(by_name["wte.weight"], &vec![13, 8]);
    assert_eq!(by_name["wpe.weight"], &vec![5, 8]);
    assert_eq!(by_name["h.2.attn.qkv.weight"], &vec![8, 24]);
    assert_eq!(by_name["h.0.attn.qkv.bias"], &vec![24]);
    assert_eq!(by_name["h.1.attn.proj.weight"], &vec![8, 8]);
    assert_eq!(by_name["h.1.mlp.fc.weight"], &vec![8, 32]);
    assert_eq!(by_name["h.1.mlp.proj.weight"], &vec![32, 8]);
    assert_eq!(by_name["h.0.ln_2.weight"], &vec![8]);
    assert_eq!(by_name["ln_f.bias"], &vec![8]);
    assert!(!by_name.contains_key("h.3.ln_1.weight"));
    // V C + T C + L (12 C^2 + 13 C) + 2 C: the tied head adds nothing.
    let (v, t, l, c) = (13, 5, 3, 8);
    assert_eq!(
        cfg.num_params().unwrap(),
        v * c + t * c + l * (12 * c * c + 13 * c) + 2 * c
    );
    // Decay exactly on matrices and embeddings.
    for s in &specs {
        assert_eq!(s.decay, s.shape.len() == 2, "{}", s.name);
    }
}

#[test]
fn initialisation_statistics_and_determinism() {
    let cfg = GptConfig {
        n_layer: 4,
        n_head: 4,
        n_embd: 64,
        block_size: 32,
        vocab_size: 65,
    };
    let a = cfg.init_params(7).unwrap();
    let b = cfg.init_params(7).unwrap();
    let c = cfg.init_params(8).unwrap();
    assert_eq!(a, b, "same seed, same parameters");
    assert_ne!(a["wte.weight"], c["wte.weight"]);
    let std = |t: &Tensor| {
        let n = t.data.len() as f64;
        let mean = t.data.iter().sum::<f64>() / n;
        let var = t.data.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var.sqrt(), n)
    };
    // Sample std of n normal samples has relative standard error 1/sqrt(2n); the mean
    // has standard error std/sqrt(n). Allow 5 standard errors.
    let check = |name: &str, want: f64| {
        let (mean, s, n) = std(&a[name]);
        assert!(
            (s / want - 1.0).abs() < 5.0 / (2.0 * n).sqrt(),
            "{name}: std {s} want {want}"
        );
        assert!(mean.abs() < 5.0 * want / n.sqrt(), "{name}: mean {mean}");
    };
    check("wte.weight", 0.02);
    check("wpe.weight", 0.02);
    check("h.0.attn.qkv.weight", 0.02);
    check("h.3.mlp.fc.weight", 0.02);
    check("h.1.attn.proj.weight", 0.02 / 8f64.sqrt());
    check("h.2.mlp.proj.weight", 0.02 / 8f64.sqrt());
    assert!(a["h.0.attn.qkv.bias"].data.iter().all(|&x| x == 0.0));
    assert!(a["h.0.ln_1.weight"].data.iter().all(|&x| x == 1.0));
    assert!(a["ln_f.bias"].data.iter().all(|&x| x == 0.0));
    // Values are exactly representable in f32 (every backend starts from the same values).
    for t in a.values() {
        assert!(t.data.iter().all(|&x| x as f32 as f64 == x));
    }
    // Each tensor has its declared shape.
    for s in cfg.param_specs().unwrap() {
        assert_eq!(a[&s.name].shape, s.shape);
    }
}

#[test]
fn initial_loss_is_close_to_ln_vocab() {
    // Untrained GPT-2 initialisation on real tiny-shakespeare batches (V = 65).
    //
    // Tolerance: ln_f outputs rows with ||x||^2 = C (gain 1, bias 0), so each logit
    // x . wte[v] with wte ~ N(0, 0.02^2) is ~N(0, s^2), s = 0.02 sqrt(C) = 0.113 for C = 32.
    // Per token, loss = logsumexp(z) - z_target has mean ln V + s^2/2 (= +0.0064) and
    // standard deviation ~s; over N = 64 tokens (some sharing targets: take an effective
    // N >= 16) the mean's standard error is <= 0.113/4 = 0.028. The tied head gives the
    // input token's own logit ~ C * 0.02^2 / (0.02 sqrt 2) = 0.45, which lowers the loss
    // only where the target repeats the input (a few % of characters): <= 0.02.
    // |loss - ln V| <= 0.0064 + 0.02 + 4 * 0.028 = 0.14 -> tolerance 0.15. A wrong init
    // scale (std 1: logits ~N(0, 32)) or an untied/unnormalised head misses it by far.
    let data = Dataset::tiny_shakespeare().unwrap();
    let cfg = GptConfig {
        n_layer: 2,
        n_head: 4,
        n_embd: 32,
        block_size: 16,
        vocab_size: data.tokenizer().vocab_size(),
    };
    let built = gpt_forward(&cfg, 4, 16, GptOutput::Loss).unwrap();
    let mut feed = cfg.init_params(1234).unwrap();
    let mut rng = Rng::new(99);
    let batch = data.batch(Split::Train, 4, 16, &mut rng).unwrap();
    feed.insert("tokens".into(), batch.tokens);
    feed.insert("targets".into(), batch.targets);
    let loss = run_graph(&built.graph, &feed).unwrap()["loss"].data[0];
    let ln_v = (cfg.vocab_size as f64).ln();
    eprintln!(
        "initial loss {loss:.5}, ln V = {ln_v:.5}, diff {:.5}",
        loss - ln_v
    );
    assert!((loss - ln_v).abs() < 0.15, "loss {loss} vs ln V {ln_v}");
}

#[test]
fn config_validation_errors() {
    let ok = tiny();
    assert!(ok.validate().is_ok());
    let field = |cfg: GptConfig| match cfg.validate() {
        Err(GptError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(
        field(GptConfig {
            n_embd: 15,
            ..tiny()
        }),
        "n_embd"
    );
    assert_eq!(
        field(GptConfig {
            n_layer: 0,
            ..tiny()
        }),
        "n_layer"
    );
    assert_eq!(
        field(GptConfig {
            n_head: 0,
            ..tiny()
        }),
        "n_head"
    );
    assert_eq!(
        field(GptConfig {
            n_layer: tessera_models::gpt::MAX_LAYERS + 1,
            ..tiny()
        }),
        "n_layer"
    );
    // batch x sequence length overflowing usize is a typed error, not a panic.
    assert!(matches!(
        gpt_forward(&tiny(), usize::MAX / 2 + 1, 2, GptOutput::Loss),
        Err(GptError::InvalidShape { .. })
    ));
    assert_eq!(
        field(GptConfig {
            vocab_size: 0,
            ..tiny()
        }),
        "vocab_size"
    );
    assert_eq!(
        field(GptConfig {
            block_size: 0,
            ..tiny()
        }),
        "block_size"
    );
    let err = GptConfig {
        n_embd: 15,
        ..tiny()
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("multiple of n_head"), "{err}");
    // The graph builder validates too, and checks the shapes asked of it.
    assert!(matches!(
        gpt_forward(
            &GptConfig {
                n_embd: 15,
                ..tiny()
            },
            1,
            1,
            GptOutput::Logits
        ),
        Err(GptError::InvalidConfig { .. })
    ));
    assert!(matches!(
        gpt_forward(&ok, 1, 9, GptOutput::Logits),
        Err(GptError::InvalidShape { .. })
    ));
    assert!(matches!(
        gpt_forward(&ok, 0, 4, GptOutput::Logits),
        Err(GptError::InvalidShape { .. })
    ));
    assert!(matches!(
        gpt_forward(&ok, 1, 0, GptOutput::Logits),
        Err(GptError::InvalidShape { .. })
    ));
}

#[test]
fn config_serde_round_trip() {
    let cfg = tiny();
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(json.contains("\"n_embd\":16"), "{json}");
    let back: GptConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
    // A config read from disk is checked by validate().
    let bad: GptConfig = serde_json::from_str(
        r#"{"n_layer":1,"n_head":3,"n_embd":8,"block_size":4,"vocab_size":5}"#,
    )
    .unwrap();
    assert!(bad.validate().is_err());
    assert!(serde_json::from_str::<GptConfig>(r#"{"n_layer":1}"#).is_err());
}
