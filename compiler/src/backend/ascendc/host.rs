//! AscendCL host code for a whole plan (`host.cpp`) and the CMake project that builds it
//! with CANN (`CMakeLists.txt`).
//!
//! The host program is run as `host <data-dir>`. It allocates one device buffer per
//! storage slot of the memory plan (`aclrtMalloc`), reads every input and parameter from
//! `<data-dir>/<file>` (raw little-endian elements of the buffer's dtype, file names from
//! [`host_io`]), fills constants, launches the kernels in plan order, and writes every
//! output to `<data-dir>/<file>`. Any AscendCL error, or a missing / short data file,
//! exits with a non-zero status and a message on stderr.
//!
//! Kernel launches: under `ASCENDC_CPU_DEBUG` (the CPU build) with `ICPU_RUN_KF`, else
//! through the `<kernel>_do(blockDim, stream, args...)` launcher that each kernel file
//! defines with `kernel<<<blockDim, nullptr, stream>>>(...)` (the CANN 8.x kernel-launch
//! sample convention: the triple chevron only compiles in sources built by the Ascend
//! compiler, which the kernel files are and `host.cpp` is not).

use super::cpp::{self, round_up, Writer};
use super::{EmittedKernel, KernelKind};
use crate::error::CompileError;
use crate::graph::DType;
use crate::schedule::plan::{BufferId, BufferRole, Plan};
use std::collections::HashSet;

/// One data file of the host program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFile {
    /// Graph node name (input, parameter or output).
    pub name: String,
    /// File name inside the data directory.
    pub file: String,
    /// The buffer it fills or comes from.
    pub buffer: BufferId,
}

/// The data files a plan's host program reads and writes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HostIo {
    /// Inputs and parameters, read before the launches.
    pub inputs: Vec<HostFile>,
    /// Outputs, written after the launches (graph output order).
    pub outputs: Vec<HostFile>,
}

/// File names of the data files of `plan`'s host program: `in_<name>.bin` for inputs,
/// `param_<name>.bin` for parameters, `out_<name>.bin` for outputs (names sanitised to
/// `[A-Za-z0-9_]`, made unique with a numeric suffix).
pub fn host_io(plan: &Plan) -> HostIo {
    let mut used = HashSet::new();
    let mut file = |prefix: &str, name: &str| {
        let base = format!("{prefix}_{}", cpp::ident(name));
        let mut f = format!("{base}.bin");
        let mut i = 1;
        while !used.insert(f.clone()) {
            f = format!("{base}_{i}.bin");
            i += 1;
        }
        f
    };
    let mut io = HostIo::default();
    for b in &plan.buffers {
        match &b.role {
            BufferRole::Input { name } => io.inputs.push(HostFile {
                name: name.clone(),
                file: file("in", name),
                buffer: b.id,
            }),
            BufferRole::Param { name } => io.inputs.push(HostFile {
                name: name.clone(),
                file: file("param", name),
                buffer: b.id,
            }),
            _ => {}
        }
    }
    for (name, id) in &plan.outputs {
        io.outputs.push(HostFile {
            name: name.clone(),
            file: file("out", name),
            buffer: *id,
        });
    }
    io
}

fn bad_plan(message: String) -> CompileError {
    CompileError::Internal {
        stage: "ascendc host",
        message,
    }
}

/// Little-endian bytes of one element of `dtype` holding `v` (the device representation).
fn element_bits(v: f64, dtype: DType) -> (u32, usize) {
    match dtype {
        DType::F32 => ((v as f32).to_bits(), 4),
        DType::F16 => (u32::from(crate::graph::f16_from_f64(v).to_bits()), 2),
        DType::BF16 => (u32::from(crate::graph::bf16_from_f64(v).to_bits()), 2),
        DType::I32 => {
            let i = if v.is_finite() { v.trunc() as i64 } else { 0 };
            (i as i32 as u32, 4)
        }
        DType::U32 => {
            let i = if v.is_finite() { v.trunc() as i64 } else { 0 };
            (i as u32, 4)
        }
        DType::Bool => (u32::from(v != 0.0), 4),
    }
}

/// `host.cpp` for a plan whose kernels were emitted as `kernels` (plan order).
pub fn host_source(plan: &Plan, kernels: &[EmittedKernel]) -> Result<String, CompileError> {
    let io = host_io(plan);
    let slot_var = |s: usize| format!("slot{s}");
    let buffer = |id: BufferId| {
        plan.buffers
            .get(id.0 as usize)
            .ok_or_else(|| bad_plan(format!("buffer {} is not in the plan", id.0)))
    };
    let staging = plan
        .buffers
        .iter()
        .map(|b| b.len * b.dtype.size_bytes())
        .max()
        .unwrap_or(0)
        .max(32);
    let workspace = kernels.iter().map(|k| k.workspace_bytes).max().unwrap_or(0);
    // Every kernel's zero prefix lies in the shared zero region at the start of the
    // workspace, which no kernel writes: zero-filling the longest prefix once serves all
    // launches. The accumulators are left as allocated (uninitialised on the device) - a
    // kernel reads only accumulators its cube core wrote in the same launch.
    let zero_prefix = kernels
        .iter()
        .map(|k| k.workspace_zero_bytes)
        .max()
        .unwrap_or(0);
    for k in kernels {
        if k.workspace_bytes > 0 && k.workspace_zero_bytes > k.workspace_bytes {
            return Err(bad_plan(format!(
                "kernel `{}` needs {} zero bytes in a {}-byte workspace",
                k.name, k.workspace_zero_bytes, k.workspace_bytes
            )));
        }
    }

    let mut w = Writer::new(0);
    w.comment("Generated by Tessera: AscendCL host program running the whole plan.");
    w.comment(
        "Usage: host <data-dir>. Reads inputs/parameters from <data-dir>/{in,param}_<name>.bin,",
    );
    w.comment("writes outputs to <data-dir>/out_<name>.bin (raw little-endian elements).");
    w.line("#include <cstdint>");
    w.line("#include <cstdio>");
    w.line("#include <cstdlib>");
    w.line("#include <cstring>");
    w.line("#include <string>");
    w.line("#include \"acl/acl.h\"");
    w.line("#ifdef ASCENDC_CPU_DEBUG");
    w.line("#include \"kernel_operator.h\"");
    w.line("#if __has_include(\"tikicpulib.h\")");
    w.line("#include \"tikicpulib.h\"");
    w.line("#endif");
    for k in kernels {
        let params: Vec<String> = k.args.iter().map(|a| format!("GM_ADDR {a}")).collect();
        w.line(format!(
            "extern \"C\" __global__ __aicore__ void {}({});",
            k.name,
            params.join(", ")
        ));
    }
    w.line("#else");
    w.comment("launchers defined beside each kernel (`<kernel><<<blockDim, nullptr, stream>>>`)");
    for k in kernels {
        let params: Vec<String> = k.args.iter().map(|a| format!("uint8_t* {a}")).collect();
        w.line(format!(
            "extern \"C\" void {}_do(uint32_t blockDim, void* stream, {});",
            k.name,
            params.join(", ")
        ));
    }
    w.line("#endif");
    w.line("");
    w.line("#define CHECK_ACL(expr)                                                                  \\");
    w.line("    do {                                                                                 \\");
    w.line("        const aclError tessera_err = (expr);                                             \\");
    w.line("        if (tessera_err != ACL_SUCCESS) {                                                \\");
    w.line("            std::fprintf(stderr, \"tessera host: %s failed with AscendCL error %d (line %d)\\n\", \\");
    w.line("                #expr, static_cast<int>(tessera_err), __LINE__);                          \\");
    w.line("            std::exit(2);                                                                \\");
    w.line("        }                                                                                \\");
    w.line("    } while (0)");
    w.line("");
    w.open("static void ReadInput(const std::string& path, void* dst, size_t bytes)");
    w.line("std::FILE* f = std::fopen(path.c_str(), \"rb\");");
    w.open("if (f == nullptr)");
    w.line("std::fprintf(stderr, \"tessera host: cannot open input %s\\n\", path.c_str());");
    w.line("std::exit(3);");
    w.close();
    w.line("const size_t got = std::fread(dst, 1, bytes, f);");
    w.line("const int extra = std::fgetc(f);");
    w.line("std::fclose(f);");
    w.open("if (got != bytes || extra != EOF)");
    w.line("std::fprintf(stderr, \"tessera host: input %s must hold exactly %zu bytes\\n\", path.c_str(), bytes);");
    w.line("std::exit(3);");
    w.close();
    w.close();
    w.line("");
    w.open("static void WriteOutput(const std::string& path, const void* src, size_t bytes)");
    w.line("std::FILE* f = std::fopen(path.c_str(), \"wb\");");
    w.open("if (f == nullptr || std::fwrite(src, 1, bytes, f) != bytes)");
    w.line("std::fprintf(stderr, \"tessera host: cannot write output %s\\n\", path.c_str());");
    w.line("std::exit(4);");
    w.close();
    w.line("std::fclose(f);");
    w.close();
    w.line("");
    w.open("static void Fill(void* dst, size_t count, uint32_t bits, size_t elem_bytes)");
    w.line("uint8_t* p = static_cast<uint8_t*>(dst);");
    w.open("for (size_t i = 0; i < count; ++i)");
    w.line("std::memcpy(p + i * elem_bytes, &bits, elem_bytes); // little-endian host");
    w.close();
    w.close();
    w.line("");
    w.open("int main(int argc, char** argv)");
    w.line("const std::string dir = argc > 1 ? argv[1] : \".\";");
    w.line("CHECK_ACL(aclInit(nullptr));");
    w.line("CHECK_ACL(aclrtSetDevice(0));");
    w.line("aclrtStream stream = nullptr;");
    w.line("CHECK_ACL(aclrtCreateStream(&stream));");
    w.comment("Device memory: one allocation per storage slot of the memory plan.");
    for (i, s) in plan.storage.iter().enumerate() {
        let users: Vec<String> = plan
            .buffers
            .iter()
            .filter(|b| b.storage == i)
            .map(|b| match &b.role {
                BufferRole::Input { name }
                | BufferRole::Param { name }
                | BufferRole::Output { name } => name.clone(),
                BufferRole::Constant { value } => format!("const {value}"),
                BufferRole::Temp => format!("temp {}", b.id.0),
            })
            .collect();
        w.line(format!(
            "uint8_t* {} = nullptr; // {}",
            slot_var(i),
            cpp::join(users, ", ")
        ));
        w.line(format!(
            "CHECK_ACL(aclrtMalloc(reinterpret_cast<void**>(&{}), {}, ACL_MEM_MALLOC_HUGE_FIRST));",
            slot_var(i),
            round_up(s.bytes.max(1), 32)
        ));
    }
    if workspace > 0 {
        w.comment(format!(
            "Workspace shared by the matmul kernels: a zero region every kernel reads its padding from ([0, {zero_prefix}) used, no kernel writes it), then each kernel's accumulators."
        ));
        w.line("uint8_t* workspace = nullptr;");
        w.line(format!(
            "CHECK_ACL(aclrtMalloc(reinterpret_cast<void**>(&workspace), {workspace}, ACL_MEM_MALLOC_HUGE_FIRST));"
        ));
        w.line(format!(
            "CHECK_ACL(aclrtMemset(workspace, {workspace}, 0, {zero_prefix}));"
        ));
    }
    w.line("void* host_buf = nullptr;");
    w.line(format!("CHECK_ACL(aclrtMallocHost(&host_buf, {staging}));"));
    w.comment("Inputs and parameters.");
    for f in &io.inputs {
        let b = buffer(f.buffer)?;
        let bytes = b.len * b.dtype.size_bytes();
        if bytes == 0 {
            continue;
        }
        w.line(format!(
            "ReadInput(dir + \"/{}\", host_buf, {bytes}); // {} : {}{:?}",
            f.file, f.name, b.dtype, b.shape
        ));
        w.line(format!(
            "CHECK_ACL(aclrtMemcpy({}, {bytes}, host_buf, {bytes}, ACL_MEMCPY_HOST_TO_DEVICE));",
            slot_var(b.storage)
        ));
    }
    let consts: Vec<_> = plan
        .buffers
        .iter()
        .filter_map(|b| match b.role {
            BufferRole::Constant { value } => Some((b, value)),
            _ => None,
        })
        .collect();
    if !consts.is_empty() {
        w.comment("Constants.");
    }
    for (b, value) in consts {
        let bytes = b.len * b.dtype.size_bytes();
        if bytes == 0 {
            continue;
        }
        let (bits, size) = element_bits(value, b.dtype);
        w.line(format!(
            "Fill(host_buf, {}, 0x{bits:08x}u, {size}); // {value} as {}",
            b.len, b.dtype
        ));
        w.line(format!(
            "CHECK_ACL(aclrtMemcpy({}, {bytes}, host_buf, {bytes}, ACL_MEMCPY_HOST_TO_DEVICE));",
            slot_var(b.storage)
        ));
    }
    w.comment("Launches, in plan order.");
    for (li, l) in plan.launches.iter().enumerate() {
        let k = kernels
            .get(l.kernel)
            .ok_or_else(|| bad_plan(format!("launch {li} uses missing kernel {}", l.kernel)))?;
        let mut args = Vec::new();
        for &a in &l.args {
            args.push(slot_var(buffer(a)?.storage));
        }
        if k.workspace_bytes > 0 {
            args.push("workspace".into());
        }
        if args.len() != k.args.len() {
            return Err(bad_plan(format!(
                "launch {li} passes {} buffers to kernel `{}` which takes {}",
                args.len(),
                k.name,
                k.args.len()
            )));
        }
        w.comment(format!(
            "launch {li}: {} on {} core(s)",
            k.name, k.block_dim
        ));
        w.line("#ifdef ASCENDC_CPU_DEBUG");
        if k.workspace_bytes > k.workspace_acc_offset && k.kind == KernelKind::Mix {
            // CPU build only: poison the accumulator region (NaN in every float type), so
            // a kernel reading an accumulator its cube did not write in this launch fails
            // loudly instead of picking up an earlier launch's results.
            let off = k.workspace_acc_offset;
            w.line(format!(
                "CHECK_ACL(aclrtMemset(workspace + {off}, {}, 0xFF, {}));",
                workspace - off,
                k.workspace_bytes - off
            ));
        }
        w.line(match k.kind {
            KernelKind::Vector => "AscendC::SetKernelMode(KernelMode::AIV_MODE);",
            KernelKind::Mix => "AscendC::SetKernelMode(KernelMode::MIX_MODE);",
        });
        w.line(format!(
            "ICPU_RUN_KF({}, {}, {});",
            k.name,
            k.block_dim,
            args.join(", ")
        ));
        w.line("#else");
        let npu_args: Vec<String> = args.iter().map(|a| format!("(uint8_t*){a}")).collect();
        w.line(format!(
            "{}_do({}, stream, {});",
            k.name,
            k.block_dim,
            npu_args.join(", ")
        ));
        w.line("#endif");
        w.line("CHECK_ACL(aclrtSynchronizeStream(stream));");
    }
    w.comment("Outputs.");
    for f in &io.outputs {
        let b = buffer(f.buffer)?;
        let bytes = b.len * b.dtype.size_bytes();
        if bytes > 0 {
            w.line(format!(
                "CHECK_ACL(aclrtMemcpy(host_buf, {bytes}, {}, {bytes}, ACL_MEMCPY_DEVICE_TO_HOST));",
                slot_var(b.storage)
            ));
        }
        w.line(format!(
            "WriteOutput(dir + \"/{}\", host_buf, {bytes}); // {} : {}{:?}",
            f.file, f.name, b.dtype, b.shape
        ));
    }
    w.line("CHECK_ACL(aclrtFreeHost(host_buf));");
    if workspace > 0 {
        w.line("CHECK_ACL(aclrtFree(workspace));");
    }
    for i in 0..plan.storage.len() {
        w.line(format!("CHECK_ACL(aclrtFree({}));", slot_var(i)));
    }
    w.line("CHECK_ACL(aclrtDestroyStream(stream));");
    w.line("CHECK_ACL(aclrtResetDevice(0));");
    w.line("CHECK_ACL(aclFinalize());");
    w.line("return 0;");
    w.close();
    Ok(w.finish())
}

/// `CMakeLists.txt` building the kernels and the host program with CANN:
/// `cmake -B build -DSOC_VERSION=Ascend910B1 -DRUN_MODE=npu|cpu
/// -DASCEND_CANN_PACKAGE_PATH=/usr/local/Ascend/ascend-toolkit/latest`.
pub fn cmake_lists(kernels: &[EmittedKernel]) -> String {
    let files: Vec<String> = kernels.iter().map(|k| k.file.name.clone()).collect();
    let mut s = String::new();
    s.push_str(
        "# Generated by Tessera: builds the Ascend C kernels and the AscendCL host program with CANN.\n\
         #   cmake -B build -DSOC_VERSION=Ascend910B1 -DRUN_MODE=npu   (or cpu for the CANN CPU-debug build)\n\
         #   cmake --build build && ./build/tessera_host <data-dir>\n\
         cmake_minimum_required(VERSION 3.16)\n\
         project(tessera_ascend LANGUAGES C CXX)\n\
         \n\
         set(SOC_VERSION \"Ascend910B1\" CACHE STRING \"SoC version, e.g. Ascend910B1\")\n\
         set(RUN_MODE \"npu\" CACHE STRING \"npu | cpu\")\n\
         if(DEFINED ENV{ASCEND_HOME_PATH})\n\
         \x20   set(ASCEND_CANN_PACKAGE_PATH_DEFAULT $ENV{ASCEND_HOME_PATH})\n\
         else()\n\
         \x20   set(ASCEND_CANN_PACKAGE_PATH_DEFAULT /usr/local/Ascend/ascend-toolkit/latest)\n\
         endif()\n\
         set(ASCEND_CANN_PACKAGE_PATH ${ASCEND_CANN_PACKAGE_PATH_DEFAULT} CACHE PATH \"CANN installation\")\n\
         set(CMAKE_CXX_STANDARD 17)\n\
         \n",
    );
    s.push_str(&format!(
        "set(KERNEL_FILES\n    {}\n)\n\n",
        files.join("\n    ")
    ));
    s.push_str(
        "if(RUN_MODE STREQUAL \"cpu\")\n\
         \x20   # CPU debug build: kernels compiled by the host compiler against tikicpulib.\n\
         \x20   list(APPEND CMAKE_PREFIX_PATH ${ASCEND_CANN_PACKAGE_PATH}/tools/tikicpulib/lib/cmake)\n\
         \x20   find_package(tikicpulib REQUIRED)\n\
         \x20   add_library(tessera_kernels SHARED ${KERNEL_FILES})\n\
         \x20   target_link_libraries(tessera_kernels PUBLIC tikicpulib::${SOC_VERSION})\n\
         \x20   target_compile_options(tessera_kernels PRIVATE -g -O2 -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=0)\n\
         \x20   add_executable(tessera_host host.cpp)\n\
         \x20   target_compile_options(tessera_host PRIVATE -g -O2 -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=0)\n\
         \x20   target_link_libraries(tessera_host PRIVATE tessera_kernels ascendcl tikicpulib::${SOC_VERSION})\n\
         else()\n\
         \x20   # NPU build: ascendc_library compiles the kernels with the Ascend compiler and\n\
         \x20   # generates aclrtlaunch_<kernel>.h launch wrappers for the host program.\n\
         \x20   if(EXISTS ${ASCEND_CANN_PACKAGE_PATH}/compiler/tikcpp/ascendc_kernel_cmake)\n\
         \x20       set(ASCENDC_CMAKE_DIR ${ASCEND_CANN_PACKAGE_PATH}/compiler/tikcpp/ascendc_kernel_cmake)\n\
         \x20   elseif(EXISTS ${ASCEND_CANN_PACKAGE_PATH}/tools/tikcpp/ascendc_kernel_cmake)\n\
         \x20       set(ASCENDC_CMAKE_DIR ${ASCEND_CANN_PACKAGE_PATH}/tools/tikcpp/ascendc_kernel_cmake)\n\
         \x20   else()\n\
         \x20       message(FATAL_ERROR \"ascendc_kernel_cmake not found under ${ASCEND_CANN_PACKAGE_PATH}\")\n\
         \x20   endif()\n\
         \x20   include(${ASCENDC_CMAKE_DIR}/ascendc.cmake)\n\
         \x20   ascendc_library(tessera_kernels STATIC ${KERNEL_FILES})\n\
         \x20   add_executable(tessera_host host.cpp)\n\
         \x20   # tessera_kernels exports the aclrtlaunch_*.h include directory and links AscendCL;\n\
         \x20   # host_intf_pub (from ascendc.cmake) carries CANN's host compile / link options.\n\
         \x20   target_link_libraries(tessera_host PRIVATE $<BUILD_INTERFACE:host_intf_pub> tessera_kernels)\n\
         endif()\n",
    );
    s
}

#[cfg(test)]
mod rounding_tests {
    use super::*;

    #[test]
    fn half_and_bfloat16_constants_round_to_nearest_even() {
        // 0.798828125 is the bf16 midpoint between 0.796875 and 0.80078125; one f32 ulp
        // (2^-24) above it must round up (`half::bf16::from_f64` alone rounds it down).
        let above = 0.798828125 + 2f64.powi(-24);
        assert_eq!(element_bits(above, DType::BF16).0, 0x3F4D);
        assert_eq!(element_bits(0.798828125, DType::BF16).0, 0x3F4C); // tie: to even
        let below = 0.798828125 - 2f64.powi(-24);
        assert_eq!(element_bits(below, DType::BF16).0, 0x3F4C);
        // f16: 1 + 2^-11 is the tie between 1 and 1 + 2^-10; 2^-40 above it rounds up.
        assert_eq!(element_bits(1.0 + 2f64.powi(-11), DType::F16).0, 0x3C00);
        assert_eq!(
            element_bits(1.0 + 2f64.powi(-11) + 2f64.powi(-40), DType::F16).0,
            0x3C01
        );
    }
}
