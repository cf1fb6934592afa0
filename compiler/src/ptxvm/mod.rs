//! A PTX virtual machine: runs the PTX text Tessera emits on the host CPU, instruction
//! by instruction, and checks what a GPU would not tell you.
//!
//! Why: `ptxas` proves the emitted PTX assembles, not that it computes the right numbers,
//! and a GPU is not always at hand. This machine executes the very text the CUDA driver
//! would load (parsed by [`parse`], run by [`Machine::launch`]), so a slip in the PTX
//! printer (a wrong operand order, a missing conversion, an address off by one element)
//! shows up in the same conformance tests that check WGSL on lavapipe. On top of the
//! numbers it checks, per access: bounds against the kernel's own buffer (not just its
//! allocation) and shared array, alignment, data races between threads of a block in
//! one barrier interval and between blocks of a launch, reads of shared memory no
//! thread wrote, and barriers reached in divergent control flow.
//!
//! What it is not: a model of the hardware. It runs blocks one after another and the
//! threads of a block one at a time between barriers; `.approx` instructions
//! (`ex2`, `lg2`, `rcp.approx`) are computed in f64 and rounded once, so they are more
//! accurate here than on a GPU, unless [`Machine::approx_ulps`] adds a GPU-sized error
//! to each; a NaN result has
//! the host's sign and payload, which may differ from a GPU's (NaN-ness does not); no
//! warps, no timing, no caches. The language is the subset Tessera's printer writes (see
//! `backend::ptx`): 64-bit addresses, `.u64` pointer parameters, static `.shared`
//! arrays, `bar.sync 0`, scalar loads and stores, and the modifiers it implements
//! (`.rn`, `.ftz`, `.NaN`, `.approx`, integer roundings of `cvt` ...). Anything else
//! (`.sat`, `.rz`, vector or volatile accesses, `0d` immediates ...) is refused by name
//! ([`VmError::Unsupported`]) rather than run with other semantics.
//!
//! Stricter than the hardware, on purpose: every thread of a block must reach the same
//! `bar.sync` instruction, and none may have exited while others wait (sm_70+ GPUs count
//! only non-exited threads and accept different `bar.sync 0` sites); Tessera's kernels
//! keep every barrier in uniform control flow, and this check holds them to it. Integer
//! division by zero (or `MIN / -1`), unspecified in PTX, gives an undefined value, an
//! error only where undefined values are.
//!
//! Addresses: parameter `i` points to `(i + 1) << 40`, shared array `j` lives at
//! `1 << 63 | (j + 1) << 40`; the region of an address tells which buffer it may touch.

mod error;
mod exec;
mod parse;

pub use error::{At, VmError};
pub use exec::{Arg, LaunchStats, Machine, Memory};
pub use parse::{parse, Kernel, Module};

#[cfg(test)]
mod tests;
