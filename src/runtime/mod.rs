//! Devices and executables: run compiled plans on wgpu, the CPU interpreter, and the
//! Ascend C CPU build.
