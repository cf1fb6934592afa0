//! Code generators: WGSL and PTX print the shared SIMT program; Ascend C lowers the
//! tile IR to vector/cube instructions and emits AscendCL host code.

pub mod ascendc;
pub mod ptx;
pub mod wgsl;

use crate::error::CompileError;
use crate::schedule::plan::Plan;
use crate::target::{Target, TargetKind};
use serde::{Deserialize, Serialize};

/// One emitted source file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFile {
    /// File name (relative, no directories), e.g. `matmul_bias_tanh_0.wgsl`.
    pub name: String,
    /// The text.
    pub contents: String,
}

/// Launch facts of one emitted kernel, for the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelInfo {
    /// Kernel / entry-point name.
    pub name: String,
    /// File holding it.
    pub file: String,
    /// Buffer parameter names in binding order.
    pub params: Vec<String>,
    /// Workgroups / CTAs / Ascend program instances per grid axis.
    pub grid: [u32; 3],
    /// Threads per workgroup (SIMT) or blockDim (Ascend cores launched).
    pub block: u32,
}

/// Everything emitted for one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The target.
    pub target: TargetKind,
    /// Source files (kernels, and host code / headers for Ascend C).
    pub files: Vec<SourceFile>,
    /// One entry per kernel of the plan, in plan order.
    pub kernels: Vec<KernelInfo>,
}

/// Emits all kernels of a plan for a target.
pub fn emit(plan: &Plan, target: &Target) -> Result<Artifact, CompileError> {
    match target.kind {
        TargetKind::Wgsl => wgsl::emit_plan(plan, target),
        TargetKind::Ptx => ptx::emit_plan(plan, target),
        TargetKind::AscendC => ascendc::emit_plan(plan, target),
    }
}

/// `text` (a user's node name) made safe inside a `//` comment of any emitted language:
/// printable ASCII is kept, anything else (a non-ASCII letter, which `ptxas` refuses
/// anywhere in a file; a newline, which would end the comment; a backslash, which would
/// splice a C++ comment with the next line) becomes `<U+XXXX>`.
pub(crate) fn comment_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (' '..='~').contains(&c) && c != '\\' {
            out.push(c);
        } else {
            out.push_str(&format!("<U+{:04X}>", c as u32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn comment_text_is_printable_ascii() {
        assert_eq!(super::comment_safe("w_q.1 [x]"), "w_q.1 [x]");
        assert_eq!(
            super::comment_safe("größe\n\\"),
            "gr<U+00F6><U+00DF>e<U+000A><U+005C>"
        );
    }
}
