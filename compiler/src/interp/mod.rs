//! Reference execution on the CPU: graphs in f64 (the oracle), tile kernels in f32.
