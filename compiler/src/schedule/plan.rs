//! The execution plan: which kernels run in which order on which buffers, and the memory
//! plan that lets temporaries share storage by lifetime.

use crate::graph::{DType, NodeId};
use crate::tile::TileKernel;
use serde::{Deserialize, Serialize};

/// Handle of a logical buffer in a [`Plan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BufferId(pub u32);

/// What a buffer holds and who provides it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BufferRole {
    /// A graph input, uploaded before each run.
    Input {
        /// Node name.
        name: String,
    },
    /// A parameter, kept on the device across runs.
    Param {
        /// Node name.
        name: String,
    },
    /// A constant, filled once when the executable is created.
    Constant {
        /// The fill value.
        value: f64,
    },
    /// A graph output (read back after a run). A node that is both an input/param and an
    /// output keeps its input/param role and is also listed in [`Plan::outputs`].
    Output {
        /// Node name.
        name: String,
    },
    /// An intermediate result between kernels.
    Temp,
}

/// A logical buffer: a dense row-major tensor in device memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BufferInfo {
    /// Its handle.
    pub id: BufferId,
    /// The graph node whose value it holds.
    pub node: NodeId,
    /// Element dtype.
    pub dtype: DType,
    /// Logical shape.
    pub shape: Vec<usize>,
    /// Element count.
    pub len: usize,
    /// Role.
    pub role: BufferRole,
    /// Index into [`Plan::storage`]: buffers with disjoint lifetimes share a slot.
    pub storage: usize,
}

/// One kernel launch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// Index into [`Plan::kernels`].
    pub kernel: usize,
    /// One buffer per kernel parameter, in parameter order.
    pub args: Vec<BufferId>,
}

/// A storage slot of the memory plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StorageSlot {
    /// Bytes (the largest buffer placed in it).
    pub bytes: usize,
}

/// A compiled graph: kernels in tile IR, the launch sequence and the memory plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Kernels, each used by one or more launches.
    pub kernels: Vec<TileKernel>,
    /// Logical buffers.
    pub buffers: Vec<BufferInfo>,
    /// Launches in execution order.
    pub launches: Vec<Launch>,
    /// Storage slots.
    pub storage: Vec<StorageSlot>,
    /// Graph outputs: node name and the buffer holding it, in graph output order.
    pub outputs: Vec<(String, BufferId)>,
}

impl Plan {
    /// The buffer behind a handle.
    pub fn buffer(&self, id: BufferId) -> &BufferInfo {
        &self.buffers[id.0 as usize]
    }

    /// Buffers that are graph inputs, with their names.
    pub fn inputs(&self) -> impl Iterator<Item = (&str, &BufferInfo)> {
        self.buffers.iter().filter_map(|b| match &b.role {
            BufferRole::Input { name } => Some((name.as_str(), b)),
            _ => None,
        })
    }

    /// Buffers that are parameters, with their names.
    pub fn params(&self) -> impl Iterator<Item = (&str, &BufferInfo)> {
        self.buffers.iter().filter_map(|b| match &b.role {
            BufferRole::Param { name } => Some((name.as_str(), b)),
            _ => None,
        })
    }
}
