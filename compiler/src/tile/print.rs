//! The readable text form of the tile IR (`--emit tile`).

use super::TileKernel;

/// Prints a kernel as text.
pub fn print_kernel(kernel: &TileKernel) -> String {
    format!("kernel {} grid={:?}\n", kernel.name, kernel.grid)
}
