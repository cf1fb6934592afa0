//! The `tessera` binary end to end: compiling a JSON graph for every target (files and
//! manifest written), `--emit tile`, and bad input, which must give exactly one
//! `error: ...` line on stderr and a non-zero exit, never a panic or a backtrace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tessera_compiler::{Graph, TargetKind};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// `tessera compile tests/data/mlp.json ARGS..`.
fn compile_mlp(args: &[&str]) -> Output {
    let graph = fixture("mlp.json");
    let mut all = vec!["compile", graph.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    tessera(&all)
}

/// Runs the binary with `RUST_BACKTRACE` unset (so a panic would show only our hook's
/// single line, which the checks below also reject) and `RUST_LOG` unset.
fn tessera(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .output()
        .expect("the tessera binary runs")
}

/// Asserts a failed run with exactly one `error:` line on stderr; returns that line.
fn assert_one_line_error(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what}: expected failure, got success; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let code = out.status.code();
    assert!(
        matches!(code, Some(1) | Some(2)),
        "{what}: exit code {code:?} (1 or 2 expected); stderr: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: stderr is not one line:\n{stderr}");
    let line = lines[0];
    assert!(
        line.starts_with("error: "),
        "{what}: no `error: ` prefix: {line}"
    );
    let lower = line.to_lowercase();
    for bad in ["panicked", "backtrace", "internal error"] {
        assert!(
            !lower.contains(bad),
            "{what}: stderr mentions `{bad}`: {line}"
        );
    }
    line.to_string()
}

#[test]
fn fixture_is_the_mlp_block() {
    let text = std::fs::read_to_string(fixture("mlp.json")).unwrap();
    let g = Graph::from_json(&text).expect("tests/data/mlp.json is a valid graph");
    let y = g.find("y").expect("output y");
    assert_eq!(g.outputs(), &[y]);
    assert_eq!(g.ty(y).shape, vec![7]);
    assert_eq!(g.ty(g.find("xw").unwrap()).shape, vec![7, 65]);
    assert_eq!(g.inputs().len(), 1);
    assert_eq!(g.params().len(), 2);
}

#[test]
fn compiles_the_fixture_for_every_target() {
    for kind in TargetKind::ALL {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("out");
        let out = tessera(&[
            "compile",
            fixture("mlp.json").to_str().unwrap(),
            "--target",
            kind.name(),
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{kind}: compile failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["target"], kind.name());
        let kernels = manifest["kernels"].as_array().unwrap();
        assert!(!kernels.is_empty(), "{kind}: no kernels in the manifest");
        for k in kernels {
            let file = k["file"].as_str().unwrap();
            assert!(out_dir.join(file).is_file(), "{kind}: {file} not written");
            assert!(k["name"].as_str().is_some_and(|n| !n.is_empty()));
            let grid = k["grid"].as_array().unwrap();
            assert_eq!(grid.len(), 3);
            assert!(grid.iter().all(|g| g.as_u64().unwrap() >= 1));
            assert!(!k["params"].as_array().unwrap().is_empty());
        }
        for f in manifest["files"].as_array().unwrap() {
            let f = f.as_str().unwrap();
            assert!(out_dir.join(f).is_file(), "{kind}: listed file {f} missing");
        }
        // The plan: launches index the kernels, outputs name y.
        let launches = manifest["launches"].as_array().unwrap();
        assert!(!launches.is_empty());
        for l in launches {
            assert!((l["kernel"].as_u64().unwrap() as usize) < kernels.len());
        }
        assert_eq!(manifest["outputs"][0][0], "y");
        assert!(!manifest["buffers"].as_array().unwrap().is_empty());
    }
}

#[test]
fn bundled_model_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(&[
        "compile",
        "--model",
        "mlp",
        "--target",
        "wgsl",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("manifest.json").is_file());
}

#[test]
fn emit_tile_prints_the_tile_ir() {
    let out = tessera(&[
        "compile",
        fixture("mlp.json").to_str().unwrap(),
        "--target",
        "wgsl",
        "--emit",
        "tile",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("kernel "), "no kernel in:\n{text}");
    assert!(text.contains("store "), "no store in:\n{text}");
}

#[test]
fn missing_file_is_one_line_error() {
    let out = tessera(&[
        "compile",
        "/nonexistent/graph.json",
        "--target",
        "wgsl",
        "--out",
        "/tmp/x",
    ]);
    let line = assert_one_line_error(&out, "missing file");
    assert!(line.contains("/nonexistent/graph.json"), "{line}");
    assert_eq!(out.status.code(), Some(1));
}

/// Writes `text` to a temp file and compiles it for wgsl; returns the error line.
fn compile_text_fails(text: &str, what: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.json");
    std::fs::write(&path, text).unwrap();
    let out_dir = dir.path().join("out");
    let out = tessera(&[
        "compile",
        path.to_str().unwrap(),
        "--target",
        "wgsl",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let line = assert_one_line_error(&out, what);
    assert_eq!(out.status.code(), Some(1), "{what}");
    assert!(
        !out_dir.exists(),
        "{what}: output written despite the error"
    );
    line
}

#[test]
fn invalid_json_is_one_line_error() {
    let line = compile_text_fails("{ \"nodes\": [ {\"name\": \"x\", ", "truncated JSON");
    assert!(line.contains("JSON"), "{line}");
    compile_text_fails("", "empty file");
    compile_text_fails("[1, 2, 3]", "not a graph object");
    compile_text_fails(
        r#"{"nodes": [{"name": "x", "op": "frobnicate", "shape": [2]}], "outputs": ["x"]}"#,
        "unknown op",
    );
}

#[test]
fn invalid_graphs_are_one_line_errors() {
    let add_mismatch = r#"{"nodes": [
        {"name": "a", "op": "input", "shape": [2, 3]},
        {"name": "b", "op": "input", "shape": [3, 2]},
        {"name": "c", "op": "binary", "fn": "add", "inputs": ["a", "b"]}
    ], "outputs": ["c"]}"#;
    let line = compile_text_fails(add_mismatch, "add shape mismatch");
    assert!(
        line.contains("shape mismatch") && line.contains("`c`"),
        "{line}"
    );

    let matmul_mismatch = r#"{"nodes": [
        {"name": "a", "op": "input", "shape": [2, 3]},
        {"name": "b", "op": "param", "shape": [4, 5]},
        {"name": "c", "op": "matmul", "inputs": ["a", "b"]}
    ], "outputs": ["c"]}"#;
    let line = compile_text_fails(matmul_mismatch, "matmul inner mismatch");
    assert!(line.contains("matmul") && line.contains("`c`"), "{line}");

    let bad_axis = r#"{"nodes": [
        {"name": "a", "op": "input", "shape": [2, 3]},
        {"name": "s", "op": "reduce", "fn": "sum", "axis": 2, "inputs": ["a"]}
    ], "outputs": ["s"]}"#;
    let line = compile_text_fails(bad_axis, "reduce over a missing axis");
    assert!(line.contains("axis 2"), "{line}");

    let cycle = r#"{"nodes": [
        {"name": "a", "op": "unary", "fn": "exp", "inputs": ["b"]},
        {"name": "b", "op": "unary", "fn": "exp", "inputs": ["a"]}
    ], "outputs": ["a"]}"#;
    let line = compile_text_fails(cycle, "cycle");
    assert!(line.contains("cycle"), "{line}");

    let unknown_input = r#"{"nodes": [
        {"name": "a", "op": "unary", "fn": "exp", "inputs": ["nope"]}
    ], "outputs": ["a"]}"#;
    let line = compile_text_fails(unknown_input, "unknown input");
    assert!(line.contains("nope"), "{line}");
}

#[test]
fn unknown_target_is_one_line_error() {
    let out = compile_mlp(&["--target", "cuda-sass", "--out", "/tmp/never-written"]);
    let line = assert_one_line_error(&out, "unknown target");
    assert!(line.contains("cuda-sass"), "{line}");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn usage_errors_are_one_line() {
    // No --out and no --emit tile.
    let out = compile_mlp(&["--target", "wgsl"]);
    let line = assert_one_line_error(&out, "missing --out");
    assert!(line.contains("--out"), "{line}");
    // No graph at all.
    let out = tessera(&["compile", "--target", "wgsl", "--out", "/tmp/never-written"]);
    assert_one_line_error(&out, "missing graph");
    // Unknown flag.
    let out = tessera(&["compile", "--frobnicate"]);
    assert_one_line_error(&out, "unknown flag");
    // Unknown subcommand.
    let out = tessera(&["launch-rockets"]);
    assert_one_line_error(&out, "unknown subcommand");
    // --out with --emit tile (which writes nothing).
    let out = compile_mlp(&[
        "--target",
        "wgsl",
        "--emit",
        "tile",
        "--out",
        "/tmp/never-written",
    ]);
    let line = assert_one_line_error(&out, "--out with --emit tile");
    assert!(line.contains("--emit source"), "{line}");
    // --out naming a file.
    let file = fixture("mlp.json");
    let out = compile_mlp(&["--target", "wgsl", "--out", file.to_str().unwrap()]);
    let line = assert_one_line_error(&out, "--out is a file");
    assert!(line.contains("is a file, not a folder"), "{line}");
}

#[test]
fn help_succeeds() {
    let out = tessera(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("compile") && text.contains("demo"), "{text}");
}

#[test]
fn demo_help_lists_the_training_and_mlp_flags() {
    let out = tessera(&["demo", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--mlp",
        "--steps",
        "--seconds",
        "--lr",
        "--sample",
        "--prompt",
        "--out",
    ] {
        assert!(text.contains(flag), "`demo --help` lacks {flag}:\n{text}");
    }
}

/// Bad demo arguments fail before anything is compiled or trained, in one line.
#[test]
fn demo_rejects_bad_arguments_in_one_line() {
    // GPT flags do not mix with the MLP check (a usage error).
    let out = tessera(&["demo", "--mlp", "--steps", "5"]);
    assert_one_line_error(&out, "--mlp with --steps");
    assert_eq!(out.status.code(), Some(2));
    // MLP sizes need --mlp.
    let out = tessera(&["demo", "--d-in", "8"]);
    assert_one_line_error(&out, "--d-in without --mlp");
    assert_eq!(out.status.code(), Some(2));
    // A prompt character outside tiny-shakespeare's vocabulary is named.
    let out = tessera(&["demo", "--prompt", "caf\u{e9}"]);
    let line = assert_one_line_error(&out, "prompt outside the vocabulary");
    assert!(line.contains('\u{e9}'), "{line}");
    assert_eq!(out.status.code(), Some(1));
    // A negative learning rate written with a space is a value, not an unknown flag.
    let out = tessera(&["demo", "--lr", "-1"]);
    let line = assert_one_line_error(&out, "negative learning rate");
    assert!(line.contains("--lr"), "{line}");
    assert_eq!(out.status.code(), Some(1));
    // A negative temperature.
    let out = tessera(&["demo", "--temperature=-1"]);
    let line = assert_one_line_error(&out, "negative temperature");
    assert!(line.contains("temperature"), "{line}");
    // An invalid model size.
    let out = tessera(&["demo", "--width", "30", "--heads", "4"]);
    let line = assert_one_line_error(&out, "width not a multiple of heads");
    assert!(line.contains("n_embd"), "{line}");
    // MLP sizes of zero, and too large to fill in host memory (not an allocation abort).
    let out = tessera(&["demo", "--mlp", "--mlp-batch", "0"]);
    let line = assert_one_line_error(&out, "zero MLP batch");
    assert!(line.contains("--mlp-batch"), "{line}");
    let out = tessera(&[
        "demo",
        "--mlp",
        "--mlp-batch",
        "1000000",
        "--d-in",
        "1000000",
    ]);
    let line = assert_one_line_error(&out, "huge MLP input");
    assert!(line.contains("2^28"), "{line}");
    // ... or a hidden layer too large for the f64 interpreter to hold.
    let out = tessera(&[
        "demo",
        "--mlp",
        "--mlp-batch",
        "67108864",
        "--d-in",
        "1",
        "--d-hidden",
        "67108864",
    ]);
    let line = assert_one_line_error(&out, "huge MLP hidden layer");
    assert!(line.contains("hidden"), "{line}");
    // A sample longer than the limit, or absurdly many layers.
    let out = tessera(&["demo", "--sample", "18446744073709551615"]);
    let line = assert_one_line_error(&out, "huge sample");
    assert!(line.contains("--sample"), "{line}");
    let out = tessera(&["demo", "--layers", "100000000"]);
    let line = assert_one_line_error(&out, "too many layers");
    assert!(line.contains("n_layer"), "{line}");
    // A GPT too large for every target stops before its 120 billion parameters are
    // allocated (the per-target failures are on stdout).
    let dir = tempfile::tempdir().unwrap();
    let out = tessera(&[
        "demo",
        "--out",
        dir.path().to_str().unwrap(),
        "--width",
        "100000",
        "--heads",
        "1",
        "--steps",
        "2",
        "--sample",
        "0",
    ]);
    let line = assert_one_line_error(&out, "GPT too large for wgsl");
    assert!(line.contains("cannot train on wgpu"), "{line}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("i32 element index range"), "{stdout}");
}
