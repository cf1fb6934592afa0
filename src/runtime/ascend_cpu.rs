//! Runs a plan's Ascend C artifact on the CPU build of the Ascend C API: the emitted
//! kernels and AscendCL host program are compiled with `g++` against the headers in
//! `compiler/ascendc/include` (which check what the hardware would punish: UB capacity,
//! alignment, queue discipline, bounds) and run as a separate process.
//!
//! Binaries are cached under `$TESSERA_CACHE` (or `<temp dir>/tessera-ascend-cpu/`), keyed
//! by a hash of the sources, the compiler command and the headers, so a plan compiles once.
//! Each run writes the inputs and parameters as raw little-endian files into a fresh
//! directory, runs `host <dir>` and reads the outputs back (file names from
//! [`tessera_compiler::backend::ascendc::host_io`]).
//!
//! Environment: `CXX` (compiler, default `g++`), `TESSERA_ASCENDC_INCLUDE` (header
//! directory, default the one in this repository), `TESSERA_CACHE`,
//! `TESSERA_ASCEND_CPU_TIMEOUT` (seconds per run, default 600).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tessera_compiler::backend::ascendc::host_io;
use tessera_compiler::backend::Artifact;
use tessera_compiler::interp::Tensor;
use tessera_compiler::{Plan, TargetKind};

/// Why a plan could not be run on the Ascend C CPU build.
#[derive(Debug, thiserror::Error)]
pub enum AscendCpuError {
    /// The artifact was emitted for another target.
    #[error("the artifact targets {0}, not ascendc")]
    WrongTarget(TargetKind),
    /// The artifact lacks `host.cpp`.
    #[error("the artifact has no `host.cpp`")]
    NoHost,
    /// An input or parameter of the plan was not supplied.
    #[error("missing input `{name}`")]
    MissingInput {
        /// Node name.
        name: String,
    },
    /// A supplied tensor does not match the plan's buffer.
    #[error("input `{name}`: the plan expects {expected}, got {got}")]
    InputType {
        /// Node name.
        name: String,
        /// The buffer's type.
        expected: String,
        /// The tensor's type.
        got: String,
    },
    /// A file could not be written or read.
    #[error("{what} `{}`: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The C++ compiler could not be started.
    #[error("cannot run the C++ compiler `{compiler}`: {source}")]
    NoCompiler {
        /// The command.
        compiler: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The emitted sources did not compile against the CPU headers.
    #[error("the emitted Ascend C did not compile ({status}); sources in {}:\n{stderr}", dir.display())]
    Compile {
        /// Exit status.
        status: String,
        /// Where the sources are.
        dir: PathBuf,
        /// The compiler's messages.
        stderr: String,
    },
    /// The host program failed: an AscendCL error, or the CPU build aborted a kernel
    /// (its `[TESSERA-ASCEND-CPU ERROR]` message is in `stderr`).
    #[error("the Ascend C host program failed ({status}):\n{stderr}")]
    Run {
        /// Exit status (or "timed out").
        status: String,
        /// Standard error (and the tail of standard output).
        stderr: String,
    },
    /// An output file did not have the expected size.
    #[error("output `{name}`: {message}")]
    Output {
        /// Node name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// The header directory of the CPU build.
pub fn include_dir() -> PathBuf {
    match std::env::var_os("TESSERA_ASCENDC_INCLUDE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/ascendc/include"),
    }
}

fn cache_root() -> PathBuf {
    match std::env::var_os("TESSERA_CACHE") {
        Some(p) => PathBuf::from(p).join("ascend-cpu"),
        None => std::env::temp_dir().join("tessera-ascend-cpu"),
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AscendCpuError {
    let path = path.to_path_buf();
    move |source| AscendCpuError::Io { what, path, source }
}

/// 64-bit FNV-1a, fed with length-prefixed chunks.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in (b.len() as u64).to_le_bytes().iter().chain(b) {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Hashes every file under `dir` (sorted by path) into `h`.
fn hash_dir(h: &mut Fnv, dir: &Path) -> Result<(), AscendCpuError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err("reading the header directory", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            hash_dir(h, &p)?;
        } else {
            h.bytes(p.to_string_lossy().as_bytes());
            h.bytes(&std::fs::read(&p).map_err(io_err("reading header", &p))?);
        }
    }
    Ok(())
}

fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "g++".to_string())
}

const FLAGS: [&str; 4] = ["-std=c++17", "-O1", "-DASCENDC_CPU_DEBUG", "-pthread"];

/// Compiles the artifact (or finds it in the cache) and returns the host binary's path.
pub fn build(artifact: &Artifact) -> Result<PathBuf, AscendCpuError> {
    if artifact.target != TargetKind::AscendC {
        return Err(AscendCpuError::WrongTarget(artifact.target));
    }
    if !artifact.files.iter().any(|f| f.name == "host.cpp") {
        return Err(AscendCpuError::NoHost);
    }
    let include = include_dir();
    let cxx = compiler();
    let mut h = Fnv::new();
    h.bytes(cxx.as_bytes());
    for f in FLAGS {
        h.bytes(f.as_bytes());
    }
    for f in &artifact.files {
        h.bytes(f.name.as_bytes());
        h.bytes(f.contents.as_bytes());
    }
    hash_dir(&mut h, &include)?;
    let root = cache_root();
    let dir = root.join(format!("{:016x}", h.0));
    let bin = dir.join("host");
    if bin.is_file() {
        return Ok(bin);
    }
    std::fs::create_dir_all(&root).map_err(io_err("creating the cache directory", &root))?;
    // Build in a private directory, then move it into place (parallel builds of the same
    // sources race harmlessly: the first rename wins).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = root.join(format!("{:016x}.tmp-{}-{nanos}", h.0, std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(io_err("creating a build directory", &tmp))?;
    let mut unity = String::from("// All kernels and the host program in one translation unit.\n");
    for f in &artifact.files {
        let p = tmp.join(&f.name);
        std::fs::write(&p, &f.contents).map_err(io_err("writing source", &p))?;
        if f.name.ends_with(".cpp") && f.name != "host.cpp" {
            unity.push_str(&format!("#include \"{}\"\n", f.name));
        }
    }
    unity.push_str("#include \"host.cpp\"\n");
    let up = tmp.join("tessera_unity.cpp");
    std::fs::write(&up, unity).map_err(io_err("writing source", &up))?;
    let out = Command::new(&cxx)
        .args(FLAGS)
        .arg("-I")
        .arg(&include)
        .arg("tessera_unity.cpp")
        .arg("-o")
        .arg("host")
        .current_dir(&tmp)
        .output()
        .map_err(|source| AscendCpuError::NoCompiler {
            compiler: cxx.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(AscendCpuError::Compile {
            status: out.status.to_string(),
            dir: tmp,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => {}
        Err(_) if dir.join("host").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(io_err("moving the build into the cache", &dir)(e)),
    }
    Ok(bin)
}

fn timeout() -> Duration {
    let secs = std::env::var("TESSERA_ASCEND_CPU_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

/// Runs `plan` (emitted as `artifact`) on the CPU build: `inputs` holds every input and
/// parameter by node name; returns the outputs by node name.
pub fn run_plan_ascend_cpu(
    plan: &Plan,
    artifact: &Artifact,
    inputs: &HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>, AscendCpuError> {
    let io = host_io(plan);
    // Check the inputs before compiling anything.
    for f in &io.inputs {
        let b = plan.buffer(f.buffer);
        let t = inputs
            .get(&f.name)
            .ok_or_else(|| AscendCpuError::MissingInput {
                name: f.name.clone(),
            })?;
        if t.shape != b.shape || t.dtype != b.dtype || t.data.len() != b.len {
            return Err(AscendCpuError::InputType {
                name: f.name.clone(),
                expected: format!("{}{:?}", b.dtype, b.shape),
                got: format!("{}{:?} ({} values)", t.dtype, t.shape, t.data.len()),
            });
        }
    }
    let bin = build(artifact)?;
    let run_dir = tempfile::Builder::new()
        .prefix("tessera-ascend-run-")
        .tempdir()
        .map_err(io_err("creating a run directory", &std::env::temp_dir()))?;
    for f in &io.inputs {
        let p = run_dir.path().join(&f.file);
        std::fs::write(&p, inputs[&f.name].to_bytes()).map_err(io_err("writing input", &p))?;
    }
    let stdout_path = run_dir.path().join("stdout.txt");
    let stderr_path = run_dir.path().join("stderr.txt");
    let so = std::fs::File::create(&stdout_path).map_err(io_err("creating", &stdout_path))?;
    let se = std::fs::File::create(&stderr_path).map_err(io_err("creating", &stderr_path))?;
    let mut child = Command::new(&bin)
        .arg(run_dir.path())
        .stdin(Stdio::null())
        .stdout(so)
        .stderr(se)
        .spawn()
        .map_err(io_err("starting the host program", &bin))?;
    let start = Instant::now();
    let limit = timeout();
    let status = loop {
        match child
            .try_wait()
            .map_err(io_err("waiting for the host program", &bin))?
        {
            Some(s) => break Some(s),
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let failed_msg = stderr.contains("[TESSERA-ASCEND-CPU ERROR]")
        || stdout.contains("[TESSERA-ASCEND-CPU ERROR]");
    match status {
        Some(s) if s.success() && !failed_msg => {}
        other => {
            let tail: String = {
                let lines: Vec<&str> = stdout.lines().collect();
                lines[lines.len().saturating_sub(40)..].join("\n")
            };
            return Err(AscendCpuError::Run {
                status: match other {
                    Some(s) => s.to_string(),
                    None => format!("timed out after {} s", limit.as_secs()),
                },
                stderr: if tail.is_empty() {
                    stderr
                } else {
                    format!("{stderr}\n--- stdout (tail) ---\n{tail}")
                },
            });
        }
    }
    let mut outputs = HashMap::new();
    for f in &io.outputs {
        let b = plan.buffer(f.buffer);
        let p = run_dir.path().join(&f.file);
        let bytes = std::fs::read(&p).map_err(io_err("reading output", &p))?;
        let t =
            Tensor::from_bytes(&b.shape, b.dtype, &bytes).map_err(|e| AscendCpuError::Output {
                name: f.name.clone(),
                message: e.to_string(),
            })?;
        outputs.insert(f.name.clone(), t);
    }
    Ok(outputs)
}

/// The Ascend C CPU build behind the [`crate::runtime::Device`] interface: graphs are
/// compiled for [`tessera_compiler::Target::ascend_910b`], emitted as Ascend C + AscendCL
/// host code and built with `g++` once at load time (cached as [`build`] says); every
/// [`crate::runtime::Executable::run`] is one process run of the host program, with the
/// inputs and the parameters written to files and the outputs read back. Parameters are
/// therefore held in host memory between runs (rounded to their dtype, as a device
/// buffer would hold them), and bound updates
/// ([`crate::runtime::Executable::bind_update`]) move an output into its parameter after
/// the run: a training step is one process run with its state passed in and out.
#[derive(Clone, Debug, PartialEq)]
pub struct AscendCpuDevice {
    target: tessera_compiler::Target,
}

impl Default for AscendCpuDevice {
    fn default() -> Self {
        AscendCpuDevice::new()
    }
}

impl AscendCpuDevice {
    /// The CPU build of the Ascend 910B target record.
    pub fn new() -> AscendCpuDevice {
        AscendCpuDevice {
            target: tessera_compiler::Target::ascend_910b(),
        }
    }

    /// Loads an already compiled plan and its Ascend C artifact (builds it with g++).
    pub fn load_plan(
        &self,
        plan: Plan,
        artifact: Artifact,
    ) -> crate::runtime::Result<crate::runtime::Executable> {
        if artifact.target != TargetKind::AscendC {
            return Err(AscendCpuError::WrongTarget(artifact.target).into());
        }
        build(&artifact)?;
        let signature = crate::runtime::Signature::of_plan(&plan)?;
        Ok(crate::runtime::Executable::from_parts(
            signature,
            Some(plan.clone()),
            Some(artifact.clone()),
            crate::runtime::Device::name(self),
            Box::new(AscendCpuProgram {
                plan,
                artifact,
                params: HashMap::new(),
                updates: Vec::new(),
                discarded: Vec::new(),
            }),
        ))
    }
}

impl crate::runtime::Device for AscendCpuDevice {
    fn name(&self) -> String {
        "ascend-cpu: Ascend C CPU build (g++)".to_string()
    }

    fn kind(&self) -> crate::runtime::DeviceKind {
        crate::runtime::DeviceKind::AscendCpu
    }

    fn target(&self) -> Option<tessera_compiler::Target> {
        Some(self.target.clone())
    }

    fn load(
        &self,
        graph: &tessera_compiler::Graph,
    ) -> crate::runtime::Result<crate::runtime::Executable> {
        let plan = tessera_compiler::compile(graph, &self.target)?;
        let artifact = tessera_compiler::backend::emit(&plan, &self.target)?;
        self.load_plan(plan, artifact)
    }
}

/// A plan on the Ascend C CPU build, with its parameters in host memory.
struct AscendCpuProgram {
    plan: Plan,
    artifact: Artifact,
    params: HashMap<String, Tensor>,
    updates: Vec<(String, String)>,
    discarded: Vec<String>,
}

impl crate::runtime::executable::Program for AscendCpuProgram {
    fn set_param(&mut self, name: &str, value: &Tensor) -> crate::runtime::Result<()> {
        let mut stored = value.clone();
        for v in &mut stored.data {
            *v = tessera_compiler::interp::round_to_dtype(*v, stored.dtype);
        }
        self.params.insert(name.to_string(), stored);
        Ok(())
    }

    fn get_param(
        &self,
        name: &str,
        ty: &tessera_compiler::TensorType,
    ) -> crate::runtime::Result<Tensor> {
        Ok(self
            .params
            .get(name)
            .cloned()
            .unwrap_or_else(|| Tensor::zeros(&ty.shape, ty.dtype)))
    }

    fn run(
        &mut self,
        inputs: &HashMap<String, Tensor>,
    ) -> crate::runtime::Result<HashMap<String, Tensor>> {
        let mut all = inputs.clone();
        for (k, v) in &self.params {
            all.insert(k.clone(), v.clone());
        }
        let mut out = run_plan_ascend_cpu(&self.plan, &self.artifact, &all)?;
        for (o, p) in &self.updates {
            if let Some(t) = out.remove(o) {
                self.params.insert(p.clone(), t);
            }
        }
        for o in &self.discarded {
            out.remove(o);
        }
        Ok(out)
    }

    fn bind_update(&mut self, output: &str, param: &str) -> crate::runtime::Result<()> {
        self.updates.push((output.to_string(), param.to_string()));
        Ok(())
    }

    fn discard_output(&mut self, output: &str) -> crate::runtime::Result<()> {
        self.discarded.push(output.to_string());
        Ok(())
    }
}
