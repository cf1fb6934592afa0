//! Tile IR -> per-thread (SIMT) program, shared by the WGSL and PTX printers.
//!
//! One program instance is one workgroup; tile elements are distributed over the
//! threads by a layout; reductions go through shared memory; `dot` stages tiles in
//! shared memory and gives each thread a register micro-tile.

pub mod ir;
pub mod lower;

pub use ir::*;
pub use lower::lower_kernel;
