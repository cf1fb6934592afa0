//! Element types and static tensor types of the graph IR.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16 (8-bit exponent, 7-bit mantissa).
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// Boolean (stored as one 32-bit word per element on devices).
    Bool,
}

impl DType {
    /// All dtypes, in declaration order.
    pub const ALL: [DType; 6] = [
        DType::F32,
        DType::F16,
        DType::BF16,
        DType::I32,
        DType::U32,
        DType::Bool,
    ];

    /// Bytes one element occupies in a device buffer.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 | DType::U32 | DType::Bool => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16 | DType::BF16)
    }

    /// True for the integer types (not bool).
    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::U32)
    }

    /// The lowercase name used in JSON and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The most elements a tensor type may have (2^53, so that every element count and
/// index is exact in an f64 too): graph construction refuses larger shapes, counting the
/// non-zero extents of an empty one, by [`TensorType::checked_numel`]. Each target has
/// its own, smaller limits on what it compiles.
pub const MAX_ELEMENTS: usize = 1 << 53;

/// A static tensor type: shape (row-major, outermost first) and element type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorType {
    /// Extent of each axis; empty for a scalar.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
}

impl TensorType {
    /// A tensor type from a shape and a dtype.
    pub fn new(shape: impl Into<Vec<usize>>, dtype: DType) -> Self {
        TensorType {
            shape: shape.into(),
            dtype,
        }
    }

    /// The element count of `shape` (1 for a scalar), or `None` when the product of its
    /// non-zero extents exceeds [`MAX_ELEMENTS`]. Every type in a [`crate::Graph`] passes
    /// this check, so no product of some of its extents overflows.
    pub fn checked_numel(shape: &[usize]) -> Option<usize> {
        let mut nonzero: usize = 1;
        for &e in shape.iter().filter(|&&e| e != 0) {
            nonzero = nonzero.checked_mul(e).filter(|&n| n <= MAX_ELEMENTS)?;
        }
        Some(if shape.contains(&0) { 0 } else { nonzero })
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Bytes of a dense row-major buffer holding this tensor.
    pub fn size_bytes(&self) -> usize {
        self.numel() * self.dtype.size_bytes()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", self.dtype, self.shape)
    }
}

/// Row-major (contiguous) strides of a shape, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// `v` with the low 32 bits of its mantissa folded into one sticky bit (bit 32), so that
/// `half`'s f64 -> f16 / bf16 conversions round to nearest even correctly: they drop the
/// low 32 mantissa bits before rounding (a value just above a tie, e.g. an f32 one ulp
/// above a bf16 midpoint, would round as a tie), and on x86 with F16C go through `f32`
/// (which holds the 21 high mantissa bits plus the sticky bit exactly). Rounding to odd
/// at 21 bits before rounding to 7 or 10 bits is exact.
fn sticky_low_bits(v: f64) -> f64 {
    let b = v.to_bits();
    if v.is_finite() && b & 0xFFFF_FFFF != 0 {
        f64::from_bits((b | (1 << 32)) & !0xFFFF_FFFF)
    } else {
        v
    }
}

/// `v` rounded to the nearest f16 (ties to even), correctly for every f64.
pub fn f16_from_f64(v: f64) -> half::f16 {
    half::f16::from_f64(sticky_low_bits(v))
}

/// `v` rounded to the nearest bf16 (ties to even), correctly for every f64.
pub fn bf16_from_f64(v: f64) -> half::bf16 {
    half::bf16::from_f64(sticky_low_bits(v))
}

#[cfg(test)]
mod rounding_tests {
    use super::*;

    #[test]
    fn half_precision_rounding_is_correct_just_above_ties() {
        // 0.798828125 is the bf16 midpoint between 0.796875 and 0.80078125: one f32 ulp
        // above it rounds up; the tie itself rounds to even.
        let above = 0.798828125 + 2f64.powi(-24);
        assert_eq!(bf16_from_f64(above).to_bits(), 0x3F4D);
        assert_eq!(bf16_from_f64(0.798828125).to_bits(), 0x3F4C);
        // f16: 1 + 2^-11 is the midpoint between 1 and 1 + 2^-10.
        let mid = 1.0 + 2f64.powi(-11);
        assert_eq!(f16_from_f64(mid).to_bits(), 0x3C00);
        assert_eq!(f16_from_f64(mid + 2f64.powi(-40)).to_bits(), 0x3C01);
        assert!(bf16_from_f64(f64::NAN).is_nan());
        assert_eq!(bf16_from_f64(f64::INFINITY).to_f64(), f64::INFINITY);
    }
}
