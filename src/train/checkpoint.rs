//! Training checkpoints in safetensors: every parameter and optimizer moment, the step,
//! the data RNG state and the model config, in one file that any device can load.
//!
//! # Layout
//! - Tensors: each under its executable parameter name. Model parameters keep their
//!   graph names (`wte.weight`, ...), AdamW moments are the parameters named
//!   [`MOMENT_M_PREFIX`]`<param>` and [`MOMENT_V_PREFIX`]`<param>` (see
//!   [`crate::train::trainer`]). Values are stored in the dtype's little-endian device
//!   bytes (`f32`, `f16`, `bf16`, `i32`, `u32`; bool tensors are refused).
//! - Metadata (safetensors' string map): `format` = [`FORMAT`], `step` and `rng_state`
//!   (decimal `u64`), `config` (the model config as JSON), plus any extra entries.
//!
//! # Atomic save
//! [`Checkpoint::save`] writes the whole file to a temporary file in the same directory,
//! `fsync`s it, renames it over the destination (atomic on POSIX file systems) and
//! `fsync`s the directory. A failure at any point before the rename (full disk, a crash,
//! an injected error: see [`atomic_write`]) removes the temporary file and leaves the
//! previous checkpoint untouched.
//!
//! # Checked load
//! [`Checkpoint::load_checked`] compares the file's tensors against the names, shapes and
//! dtypes an executable expects and reports every difference at once
//! ([`CheckpointError::Mismatch`]), not only the first.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_compiler::interp::Tensor;
use tessera_compiler::{DType, TensorType};

/// Value of the `format` metadata entry.
pub const FORMAT: &str = "tessera-checkpoint/1";
/// Name prefix of AdamW first moments.
pub const MOMENT_M_PREFIX: &str = "adamw.m/";
/// Name prefix of AdamW second moments.
pub const MOMENT_V_PREFIX: &str = "adamw.v/";

/// One difference between a checkpoint file and what the loader expects.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// An expected tensor is not in the file.
    Missing {
        /// Tensor name.
        name: String,
        /// The expected type.
        expected: TensorType,
    },
    /// The file holds a tensor nobody expects.
    Unexpected {
        /// Tensor name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
        /// Its dtype in the file (safetensors' spelling).
        dtype: String,
    },
    /// Same name, different shape.
    Shape {
        /// Tensor name.
        name: String,
        /// Expected shape.
        expected: Vec<usize>,
        /// Shape in the file.
        got: Vec<usize>,
    },
    /// Same name, different dtype.
    DType {
        /// Tensor name.
        name: String,
        /// Expected dtype.
        expected: DType,
        /// Dtype in the file (safetensors' spelling).
        got: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Missing { name, expected } => {
                write!(f, "`{name}`: missing (expected {expected})")
            }
            Mismatch::Unexpected { name, shape, dtype } => {
                write!(f, "`{name}`: not expected ({dtype}{shape:?} in the file)")
            }
            Mismatch::Shape {
                name,
                expected,
                got,
            } => write!(
                f,
                "`{name}`: shape {got:?} in the file, expected {expected:?}"
            ),
            Mismatch::DType {
                name,
                expected,
                got,
            } => write!(f, "`{name}`: dtype {got} in the file, expected {expected}"),
        }
    }
}

/// A failure to save or load a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file system operation failed.
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
    /// The file is not a valid safetensors file or its metadata is malformed.
    #[error("`{}` is not a valid tessera checkpoint: {message}", path.display())]
    Format {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor of a dtype that checkpoints do not store.
    #[error("tensor `{name}`: dtype {dtype} cannot be stored in a checkpoint")]
    UnsupportedDType {
        /// Tensor name.
        name: String,
        /// Its dtype.
        dtype: DType,
    },
    /// A tensor whose data length does not match its shape.
    #[error("tensor `{name}`: shape {shape:?} needs {expected} values, it holds {got}")]
    DataLength {
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
        /// Values the shape needs.
        expected: usize,
        /// Values held.
        got: usize,
    },
    /// The file's tensors differ from the expected ones: every difference is listed.
    #[error("checkpoint `{}` does not match the model ({} problems):\n  {}", path.display(), problems.len(), problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Mismatch {
        /// The path.
        path: PathBuf,
        /// Every difference, sorted by tensor name.
        problems: Vec<Mismatch>,
    },
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Io { what, path, source }
}

/// The whole training state.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Checkpoint {
    /// Parameters and optimizer moments by name (see the module docs).
    pub tensors: BTreeMap<String, Tensor>,
    /// Optimizer steps taken.
    pub step: u64,
    /// State of the data RNG ([`tessera_models::rng::Rng::state`]).
    pub rng_state: u64,
    /// The model config as JSON (`null` when none).
    pub config: serde_json::Value,
    /// Further metadata entries (not `format`, `step`, `rng_state` or `config`).
    pub extra: BTreeMap<String, String>,
}

fn to_st_dtype(name: &str, d: DType) -> Result<safetensors::Dtype, CheckpointError> {
    Ok(match d {
        DType::F32 => safetensors::Dtype::F32,
        DType::F16 => safetensors::Dtype::F16,
        DType::BF16 => safetensors::Dtype::BF16,
        DType::I32 => safetensors::Dtype::I32,
        DType::U32 => safetensors::Dtype::U32,
        DType::Bool => {
            return Err(CheckpointError::UnsupportedDType {
                name: name.to_string(),
                dtype: d,
            })
        }
    })
}

fn from_st_dtype(d: safetensors::Dtype) -> Option<DType> {
    Some(match d {
        safetensors::Dtype::F32 => DType::F32,
        safetensors::Dtype::F16 => DType::F16,
        safetensors::Dtype::BF16 => DType::BF16,
        safetensors::Dtype::I32 => DType::I32,
        safetensors::Dtype::U32 => DType::U32,
        _ => return None,
    })
}

/// Writes a file atomically: `write` fills a temporary file in the directory of `path`,
/// which is then `fsync`ed and renamed over `path` (and the directory `fsync`ed). If
/// `write` or any later step fails, the temporary file is removed and `path` keeps its
/// previous content. Tests inject failures through `write`.
pub fn atomic_write(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), CheckpointError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CheckpointError::Io {
            what: "saving to",
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"),
        })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(io_err("creating a temporary file in", &dir))?;
    // On any error below, dropping `tmp` deletes the temporary file.
    write(tmp.as_file_mut()).map_err(io_err("writing", tmp.path()))?;
    tmp.as_file_mut()
        .flush()
        .map_err(io_err("flushing", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("syncing", tmp.path()))?;
    tmp.persist(path).map_err(|e| CheckpointError::Io {
        what: "renaming the temporary file to",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    // Make the rename itself durable (best effort where directories cannot be opened).
    if let Ok(d) = std::fs::File::open(&dir) {
        d.sync_all()
            .map_err(io_err("syncing the directory", &dir))?;
    }
    Ok(())
}

impl Checkpoint {
    /// Model parameters: the tensors that are not optimizer moments.
    pub fn params(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.tensors
            .iter()
            .filter(|(n, _)| !n.starts_with(MOMENT_M_PREFIX) && !n.starts_with(MOMENT_V_PREFIX))
    }

    /// The safetensors bytes of this checkpoint.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut bytes: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, t) in &self.tensors {
            let dtype = to_st_dtype(name, t.dtype)?;
            let n: usize = t.shape.iter().product();
            if t.data.len() != n {
                return Err(CheckpointError::DataLength {
                    name: name.clone(),
                    shape: t.shape.clone(),
                    expected: n,
                    got: t.data.len(),
                });
            }
            bytes.push((name.clone(), dtype, t.shape.clone(), t.to_bytes()));
        }
        let mut views = Vec::with_capacity(bytes.len());
        for (name, dtype, shape, data) in &bytes {
            let v =
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).map_err(|e| {
                    CheckpointError::Format {
                        path: PathBuf::new(),
                        message: format!("tensor `{name}`: {e}"),
                    }
                })?;
            views.push((name.as_str(), v));
        }
        let mut meta: HashMap<String, String> = self
            .extra
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("rng_state".into(), self.rng_state.to_string());
        meta.insert("config".into(), self.config.to_string());
        safetensors::serialize(views, Some(meta)).map_err(|e| CheckpointError::Format {
            path: PathBuf::new(),
            message: e.to_string(),
        })
    }

    /// Saves atomically to `path` (see the module docs).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CheckpointError> {
        let bytes = self.to_bytes()?;
        atomic_write(path.as_ref(), |f| f.write_all(&bytes))
    }

    /// Parses safetensors bytes (`path` only names the source in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, CheckpointError> {
        let format = |message: String| CheckpointError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        match meta.get("format") {
            Some(f) if f == FORMAT => {}
            Some(f) => return Err(format(format!("format `{f}`, expected `{FORMAT}`"))),
            None => return Err(format("no `format` metadata entry".into())),
        }
        let num = |key: &str| -> Result<u64, CheckpointError> {
            let v = meta
                .get(key)
                .ok_or_else(|| format(format!("no `{key}` metadata entry")))?;
            v.parse::<u64>()
                .map_err(|e| format(format!("metadata `{key}` = `{v}`: {e}")))
        };
        let step = num("step")?;
        let rng_state = num("rng_state")?;
        let config = match meta.get("config") {
            Some(c) => serde_json::from_str(c)
                .map_err(|e| format(format!("metadata `config` is not JSON: {e}")))?,
            None => serde_json::Value::Null,
        };
        let extra = meta
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "format" | "step" | "rng_state" | "config"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut tensors = BTreeMap::new();
        for (name, view) in st.iter() {
            let dtype = from_st_dtype(view.dtype()).ok_or_else(|| {
                format(format!(
                    "tensor `{name}` has dtype {:?}, which tessera does not store",
                    view.dtype()
                ))
            })?;
            let t = Tensor::from_bytes(view.shape(), dtype, view.data())
                .map_err(|e| format(format!("tensor `{name}`: {e}")))?;
            tensors.insert(name.to_string(), t);
        }
        Ok(Checkpoint {
            tensors,
            step,
            rng_state,
            config,
            extra,
        })
    }

    /// Loads a checkpoint without checking its tensors against anything.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, CheckpointError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(io_err("reading", path))?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// Loads a checkpoint and checks that it holds exactly the `expected` tensors (names,
    /// shapes, dtypes); every difference is reported in one [`CheckpointError::Mismatch`].
    pub fn load_checked(
        path: impl AsRef<Path>,
        expected: &[(String, TensorType)],
    ) -> Result<Checkpoint, CheckpointError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(io_err("reading", path))?;
        let st =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        // Compare the header first, so that tensors of foreign dtypes are reported as
        // mismatches rather than as a format error.
        let mut found: BTreeMap<String, (Vec<usize>, Result<DType, String>)> = BTreeMap::new();
        for (name, view) in st.iter() {
            let d = from_st_dtype(view.dtype()).ok_or_else(|| st_dtype_name(view.dtype()));
            found.insert(name.to_string(), (view.shape().to_vec(), d));
        }
        let problems = compare(&found, expected);
        if !problems.is_empty() {
            return Err(CheckpointError::Mismatch {
                path: path.to_path_buf(),
                problems,
            });
        }
        Checkpoint::from_bytes(&bytes, path)
    }
}

fn st_dtype_name(d: safetensors::Dtype) -> String {
    match from_st_dtype(d) {
        Some(t) => t.to_string(),
        None => format!("{d:?}").to_lowercase(),
    }
}

impl Checkpoint {
    /// Every difference between this checkpoint's tensors and the `expected` ones
    /// (empty when they match exactly), sorted by name.
    pub fn mismatches(&self, expected: &[(String, TensorType)]) -> Vec<Mismatch> {
        let found = self
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), (t.shape.clone(), Ok(t.dtype))))
            .collect();
        compare(&found, expected)
    }
}

fn dtype_label(d: &Result<DType, String>) -> String {
    match d {
        Ok(t) => t.to_string(),
        Err(s) => s.clone(),
    }
}

/// Every difference between the tensors of a file and the expected ones, by name.
fn compare(
    found: &BTreeMap<String, (Vec<usize>, Result<DType, String>)>,
    expected: &[(String, TensorType)],
) -> Vec<Mismatch> {
    let mut problems = Vec::new();
    let want: BTreeMap<&str, &TensorType> = expected.iter().map(|(n, t)| (n.as_str(), t)).collect();
    for (name, ty) in &want {
        match found.get(*name) {
            None => problems.push(Mismatch::Missing {
                name: name.to_string(),
                expected: (*ty).clone(),
            }),
            Some((shape, dtype)) => {
                if *shape != ty.shape {
                    problems.push(Mismatch::Shape {
                        name: name.to_string(),
                        expected: ty.shape.clone(),
                        got: shape.clone(),
                    });
                }
                if *dtype != Ok(ty.dtype) {
                    problems.push(Mismatch::DType {
                        name: name.to_string(),
                        expected: ty.dtype,
                        got: dtype_label(dtype),
                    });
                }
            }
        }
    }
    for (name, (shape, dtype)) in found {
        if !want.contains_key(name.as_str()) {
            problems.push(Mismatch::Unexpected {
                name: name.clone(),
                shape: shape.clone(),
                dtype: dtype_label(dtype),
            });
        }
    }
    problems.sort_by(|a, b| mismatch_name(a).cmp(mismatch_name(b)));
    problems
}

fn mismatch_name(m: &Mismatch) -> &str {
    match m {
        Mismatch::Missing { name, .. }
        | Mismatch::Unexpected { name, .. }
        | Mismatch::Shape { name, .. }
        | Mismatch::DType { name, .. } => name,
    }
}
