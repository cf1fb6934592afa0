//! Construction of tile kernels from scheduled kernels.
