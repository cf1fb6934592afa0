//! Conformance cases of rotary position embedding (interleaved and half-split layouts).

use super::Table;

/// Adds this family's cases to the table.
pub(super) fn add_cases(_t: &mut Table) {}
