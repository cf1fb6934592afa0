//! Tests of the CPU build of the Ascend C API subset (`compiler/ascendc/include`).
//!
//! Every program in `compiler/ascendc/tests/*.cpp` is a small kernel plus AscendCL host code
//! written like a CANN 8.x sample. Each is compiled with
//! `g++ -std=c++17 -DASCENDC_CPU_DEBUG -I compiler/ascendc/include` (plus `-Wall -Wextra
//! -Wpedantic -Wshadow -Werror`, so the headers stay warning-free) into a temporary directory
//! and run:
//! correct kernels must print `PASS` (they compare their results with host references
//! themselves, tolerances stated in each program), and every misuse case must abort with
//! `[TESSERA-ASCEND-CPU ERROR]` and a message naming the problem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The include directory of the CPU build.
fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ascendc")
        .join("include")
}

/// The directory of the C++ test programs.
fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ascendc")
        .join("tests")
}

/// A compiled test program (the temporary directory lives as long as it).
struct Program {
    _dir: tempfile::TempDir,
    exe: PathBuf,
    name: String,
}

/// Compiles `compiler/ascendc/tests/<name>.cpp`; panics with the compiler output on failure.
fn build(name: &str) -> Program {
    let dir = tempfile::tempdir().expect("cannot create a temporary directory");
    let exe = dir.path().join(name);
    let src = tests_dir().join(format!("{name}.cpp"));
    let out = Command::new("g++")
        .args([
            "-std=c++17",
            "-DASCENDC_CPU_DEBUG",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Wshadow",
            "-Werror",
            "-O1",
        ])
        .arg("-I")
        .arg(include_dir())
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("g++ not found: the Ascend C CPU build tests need g++ (cargo xtask setup checks for it)");
    assert!(
        out.status.success(),
        "g++ failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Program {
        _dir: dir,
        exe,
        name: name.to_string(),
    }
}

impl Program {
    fn run(&self, case: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.exe);
        if let Some(c) = case {
            cmd.arg(c);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.exe.display()))
    }

    /// Runs a case that must succeed and print PASS.
    fn pass(&self, case: Option<&str>) {
        let out = self.run(case);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("PASS"),
            "{} {:?} should pass but exited with {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.name,
            case,
            out.status
        );
    }

    /// Runs a case that must abort with the CPU build's error prefix and every `expected` text.
    fn abort(&self, case: &str, expected: &[&str]) {
        let out = self.run(Some(case));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && !stdout.contains("PASS"),
            "{} {case} should abort but exited with {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.name,
            out.status
        );
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(6),
                "{} {case} should end with SIGABRT (std::abort), got {:?}\nstderr:\n{stderr}",
                self.name,
                out.status
            );
        }
        assert!(
            stderr.contains("[TESSERA-ASCEND-CPU ERROR]"),
            "{} {case}: no [TESSERA-ASCEND-CPU ERROR] on stderr:\n{stderr}",
            self.name
        );
        for e in expected {
            assert!(
                stderr.contains(e),
                "{} {case}: stderr lacks {e:?}:\n{stderr}",
                self.name
            );
        }
    }
}

#[test]
fn add_kernel_double_buffered_with_pad_tails() {
    build("add_custom").pass(None);
}

#[test]
fn row_reductions() {
    build("reduce_rows").pass(None);
}

#[test]
fn vector_subset() {
    build("vector_ops").pass(None);
}

#[test]
fn cube_matmul_nd2nz_loaddata_mmad_fixpipe() {
    build("matmul_cube").pass(None);
}

#[test]
fn alternative_api_spellings() {
    build("api_spellings").pass(None);
}

#[test]
fn cross_core_sync_and_kernel_mode() {
    let p = build("sync_cores");
    p.pass(Some("ok"));
    p.abort(
        "deadlock",
        &[
            "deadlock in kernel mix_kernel",
            "waits in CrossCoreWaitFlag(3)",
        ],
    );
    p.abort(
        "kernel_mode",
        &[
            "declares KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY)",
            "KernelMode::MIX_MODE",
        ],
    );
}

#[test]
fn local_buffer_capacity() {
    let p = build("fail_capacity");
    p.pass(Some("ub_ok"));
    p.abort(
        "ub",
        &[
            "Unified Buffer over capacity",
            "limit 188416 bytes",
            "8 KiB reserved",
        ],
    );
    p.abort("l1", &["L1 Buffer over capacity", "limit 524288 bytes"]);
    p.abort("l0a", &["L0A Buffer over capacity", "limit 65536 bytes"]);
    p.abort("l0b", &["L0B Buffer over capacity", "limit 65536 bytes"]);
    p.abort("l0c", &["L0C Buffer over capacity", "limit 131072 bytes"]);
}

#[test]
fn datacopy_length_not_32_byte_multiple() {
    let p = build("fail_datacopy_len");
    p.pass(Some("ok"));
    p.abort(
        "gm2ub",
        &["count=7 x float", "28 bytes is not a multiple of 32 bytes"],
    );
    p.abort(
        "ub2gm",
        &["count=12 x float", "48 bytes is not a multiple of 32 bytes"],
    );
}

#[test]
fn unaligned_local_operands() {
    let p = build("fail_unaligned");
    p.pass(Some("ok"));
    p.abort(
        "vector",
        &["Add dst", "local address 12", "not 32-byte aligned"],
    );
    p.abort(
        "copy",
        &["DataCopy", "local address 16", "not 32-byte aligned"],
    );
}

#[test]
fn unbalanced_queue_use() {
    let p = build("fail_queue");
    p.pass(Some("ok"));
    p.abort("deque_empty", &["DeQue on queue #0", "the queue is empty"]);
    p.abort("enque_depth", &["EnQue on queue #0", "its depth is 1"]);
    p.abort(
        "alloc_exhausted",
        &[
            "AllocTensor on queue #0",
            "all 2 buffers are already allocated",
        ],
    );
    p.abort(
        "leak_alloc",
        &[
            "returned with queue tensors still held",
            "allocated by AllocTensor",
        ],
    );
    p.abort(
        "leak_enque",
        &[
            "returned with queue tensors still held",
            "EnQue'd but never DeQue'd",
        ],
    );
    p.abort(
        "leak_deque",
        &[
            "returned with queue tensors still held",
            "DeQue'd but never FreeTensor'd",
        ],
    );
    p.abort("double_free", &["double FreeTensor"]);
    p.abort("use_after_free", &["used after FreeTensor"]);
    p.abort("use_while_enqueued", &["between EnQue and DeQue"]);
}

#[test]
fn local_tensor_out_of_bounds() {
    let p = build("fail_local_oob");
    p.pass(Some("ok"));
    p.abort(
        "getvalue",
        &[
            "LocalTensor::GetValue(64): out of bounds",
            "holds 64 elements",
        ],
    );
    p.abort("setvalue", &["LocalTensor::SetValue(100): out of bounds"]);
    p.abort(
        "vector",
        &[
            "Add src0: out of bounds",
            "touches 288 bytes",
            "holds 256 bytes",
        ],
    );
    p.abort(
        "index",
        &[
            "Add dst: out of bounds",
            "touches 64 bytes",
            "holds 32 bytes",
        ],
    );
    p.abort("tbuf_get", &["TBuf<VECCALC>::Get(129)"]);
    p.abort("scalar_l1", &["scalar access to a tensor at TPosition::A1"]);
}

#[test]
fn global_tensor_out_of_bounds() {
    let p = build("fail_global_oob");
    p.pass(Some("ok"));
    p.abort(
        "sized",
        &[
            "bytes [128, 384)",
            "outside the 64 elements (256 bytes) given to SetGlobalBuffer",
        ],
    );
    p.abort(
        "alloc",
        &["runs past the end of its aclrtMalloc allocation of 512 bytes by 32 bytes"],
    );
    p.abort("scalar", &["GlobalTensor::GetValue", "elements [64, 65)"]);
    p.abort(
        "host",
        &["is not inside any AscendC::GmAlloc / aclrtMalloc allocation"],
    );
    p.abort(
        "gmalloc",
        &["runs past the end of its AscendC::GmAlloc allocation of 16 bytes"],
    );
}

#[test]
fn bf16_arithmetic_rejected() {
    let p = build("fail_bf16");
    p.pass(Some("ok"));
    for (case, api) in [("add", "Add"), ("exp", "Exp"), ("reduce", "ReduceSum")] {
        p.abort(
            case,
            &[&format!("{api}: bfloat16_t arithmetic is not supported")],
        );
    }
}

#[test]
fn more_than_eight_queue_buffers_per_position() {
    let p = build("fail_queue_positions");
    p.pass(Some("ok"));
    p.abort(
        "vecin",
        &["more than 8 queue buffers at TPosition::VECIN (9)"],
    );
}

#[test]
fn compare_scalar_and_vector_index() {
    let p = build("cmp_index");
    p.pass(Some("ok"));
    p.abort(
        "cmp_count",
        &[
            "Compare(count=100 x float)",
            "400 bytes is not a multiple of 256 bytes",
        ],
    );
    p.abort(
        "cmps_int_lt",
        &["CompareScalar: int32_t operands only support CMPMODE::EQ"],
    );
    p.abort(
        "cmps_dst",
        &["CompareScalar: dst dtype int8_t is not supported"],
    );
    p.abort(
        "mask_small",
        &[
            "Compare dst: out of bounds",
            "touches 16 bytes",
            "holds 8 bytes",
        ],
    );
    p.abort(
        "index_block",
        &[
            "CreateVecIndex dst: out of bounds",
            "touches 32 bytes",
            "holds 16 bytes",
        ],
    );
    p.abort(
        "index_dtype",
        &["CreateVecIndex: dtype uint32_t is not supported"],
    );
}
