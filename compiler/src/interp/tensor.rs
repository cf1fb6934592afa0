//! Host tensors for the interpreters and the tests: a shape, a dtype and row-major values
//! held as `f64` whatever the dtype (every dtype's values are exactly representable in
//! f64). Conversion to and from the little-endian bytes of a device buffer, a
//! deterministic random generator, and error metrics.

use super::InterpError;
use crate::graph::{bf16_from_f64, f16_from_f64, DType, TensorType};
use half::{bf16, f16};

/// Values below this magnitude are compared in absolute terms by [`max_rel_diff`]:
/// `rel = |a - b| / max(|b|, REL_DIFF_FLOOR)`. Results that cancel to (nearly) zero, such
/// as the difference of two close values, would otherwise show an unbounded relative error
/// although the absolute error is at the rounding level of the operands.
pub const REL_DIFF_FLOOR: f64 = 1e-3;

/// A dense row-major tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Extent of each axis (empty for a scalar).
    pub shape: Vec<usize>,
    /// Element type the values stand for.
    pub dtype: DType,
    /// Row-major values, `shape.iter().product()` of them.
    pub data: Vec<f64>,
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full(shape, dtype, 0.0)
    }

    /// A tensor filled with `value` (rounded to the dtype, see [`round_to_dtype`]).
    pub fn full(shape: &[usize], dtype: DType, value: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor {
            shape: shape.to_vec(),
            dtype,
            data: vec![round_to_dtype(value, dtype); n],
        }
    }

    /// A tensor from row-major values; the length must match the shape. Values are kept
    /// as given (not rounded to the dtype).
    pub fn from_vec(shape: &[usize], dtype: DType, data: Vec<f64>) -> Result<Tensor, InterpError> {
        // A shape of more than `MAX_ELEMENTS` holds more than any `Vec` could.
        let n = TensorType::checked_numel(shape).unwrap_or(usize::MAX);
        if data.len() != n {
            return Err(InterpError::DataLength {
                what: "Tensor::from_vec",
                shape: shape.to_vec(),
                expected: n,
                got: data.len(),
            });
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype,
            data,
        })
    }

    /// A tensor from `f32` values (as read back from a device or the tile interpreter).
    pub fn from_f32(shape: &[usize], dtype: DType, data: &[f32]) -> Result<Tensor, InterpError> {
        Tensor::from_vec(shape, dtype, data.iter().map(|&v| v as f64).collect())
    }

    /// The values as `f32`, each rounded to the dtype first (what a device buffer holds,
    /// widened to f32).
    pub fn to_f32(&self) -> Vec<f32> {
        self.data
            .iter()
            .map(|&v| round_to_dtype(v, self.dtype) as f32)
            .collect()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The static type of this tensor.
    pub fn ty(&self) -> TensorType {
        TensorType::new(self.shape.clone(), self.dtype)
    }

    /// Little-endian device bytes: f32/f16/bf16 rounded to nearest, i32/u32 truncated
    /// toward zero and wrapped modulo 2^32, bool as a u32 0 or 1 (any non-zero is true).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.numel() * self.dtype.size_bytes());
        for &v in &self.data {
            match self.dtype {
                DType::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
                DType::F16 => out.extend_from_slice(&f16_from_f64(v).to_le_bytes()),
                DType::BF16 => out.extend_from_slice(&bf16_from_f64(v).to_le_bytes()),
                DType::I32 => out.extend_from_slice(&(wrap_i32(v) as i32).to_le_bytes()),
                DType::U32 => out.extend_from_slice(&(wrap_u32(v) as u32).to_le_bytes()),
                DType::Bool => out.extend_from_slice(&u32::from(v != 0.0).to_le_bytes()),
            }
        }
        out
    }

    /// A tensor from little-endian device bytes (the inverse of [`Tensor::to_bytes`]); a
    /// bool word that is not 0 reads as 1.
    pub fn from_bytes(shape: &[usize], dtype: DType, bytes: &[u8]) -> Result<Tensor, InterpError> {
        let size = dtype.size_bytes();
        let expected = TensorType::checked_numel(shape)
            .and_then(|n| n.checked_mul(size))
            .unwrap_or(usize::MAX);
        if bytes.len() != expected {
            return Err(InterpError::DataLength {
                what: "Tensor::from_bytes",
                shape: shape.to_vec(),
                expected,
                got: bytes.len(),
            });
        }
        let data = bytes
            .chunks_exact(size)
            .map(|c| match dtype {
                DType::F32 => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                DType::F16 => f16::from_le_bytes([c[0], c[1]]).to_f64(),
                DType::BF16 => bf16::from_le_bytes([c[0], c[1]]).to_f64(),
                DType::I32 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                DType::U32 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64,
                DType::Bool => f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) != 0),
            })
            .collect();
        Ok(Tensor {
            shape: shape.to_vec(),
            dtype,
            data,
        })
    }

    /// Deterministic pseudo-random values (splitmix64 seeded with `seed`): floats uniform
    /// in `[-1, 1)` and exactly representable in the dtype (so every backend and the f64
    /// oracle see the same inputs); i32 uniform integers in `[-16, 16)`, u32 in `[0, 32)`,
    /// bool 0 or 1.
    pub fn random(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
        let n: usize = shape.iter().product();
        let mut rng = SplitMix64::new(seed);
        let data = (0..n)
            .map(|_| {
                let bits = rng.next_u64();
                match dtype {
                    DType::F32 | DType::F16 | DType::BF16 => {
                        // 53 random bits -> [0, 1) -> [-1, 1), then rounded to the dtype;
                        // a value that rounds up to 1 becomes the largest one below 1.
                        let u = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                        let v = round_to_dtype(2.0 * u - 1.0, dtype);
                        if v >= 1.0 {
                            largest_below_one(dtype)
                        } else {
                            v
                        }
                    }
                    DType::I32 => (bits >> 59) as f64 - 16.0,
                    DType::U32 => (bits >> 59) as f64,
                    DType::Bool => (bits >> 63) as f64,
                }
            })
            .collect();
        Tensor {
            shape: shape.to_vec(),
            dtype,
            data,
        }
    }

    /// Largest `|self - reference|` (see [`max_abs_diff`]); infinite if shapes differ.
    pub fn max_abs_diff(&self, reference: &Tensor) -> f64 {
        if self.shape != reference.shape {
            return f64::INFINITY;
        }
        max_abs_diff(&self.data, &reference.data)
    }

    /// Largest relative difference to `reference` (see [`max_rel_diff`]); infinite if
    /// shapes differ.
    pub fn max_rel_diff(&self, reference: &Tensor) -> f64 {
        if self.shape != reference.shape {
            return f64::INFINITY;
        }
        max_rel_diff(&self.data, &reference.data)
    }
}

/// Largest `|a[i] - b[i]|`. Infinite when the lengths differ or one side is NaN and the
/// other is not; two NaNs, or two equal infinities, count as equal.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(&x, &y)| elem_diff(x, y))
        .fold(0.0, f64::max)
}

/// Largest `|a[i] - reference[i]| / max(|reference[i]|, REL_DIFF_FLOOR)` (see
/// [`REL_DIFF_FLOOR`]). Same conventions for lengths, NaNs and infinities as
/// [`max_abs_diff`].
pub fn max_rel_diff(a: &[f64], reference: &[f64]) -> f64 {
    if a.len() != reference.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(reference)
        .map(|(&x, &y)| elem_diff(x, y) / y.abs().max(REL_DIFF_FLOOR))
        .fold(0.0, f64::max)
}

fn elem_diff(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        if x.is_nan() && y.is_nan() {
            0.0
        } else {
            f64::INFINITY
        }
    } else if x == y {
        // Also covers equal infinities, whose difference would be NaN.
        0.0
    } else {
        (x - y).abs()
    }
}

/// Rounds a value to what the dtype can hold: nearest f32/f16/bf16; i32/u32 truncated
/// toward zero and wrapped modulo 2^32 (NaN becomes 0); bool 0 or 1.
pub fn round_to_dtype(v: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F32 => v as f32 as f64,
        DType::F16 => f16_from_f64(v).to_f64(),
        DType::BF16 => bf16_from_f64(v).to_f64(),
        DType::I32 => wrap_i32(v),
        DType::U32 => wrap_u32(v),
        DType::Bool => f64::from(v != 0.0),
    }
}

/// Truncates toward zero, then wraps into the i32 range (NaN -> 0, +-inf saturate to the
/// i64 range first, which wraps to -1 / 0).
fn wrap_i32(v: f64) -> f64 {
    (v as i64) as i32 as f64
}

/// Truncates toward zero, then wraps into the u32 range (negative values wrap).
fn wrap_u32(v: f64) -> f64 {
    (v as i64) as u32 as f64
}

fn largest_below_one(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => 1.0 - 2f64.powi(-11),
        DType::BF16 => 1.0 - 2f64.powi(-8),
        _ => 1.0 - 2f64.powi(-24),
    }
}

/// The splitmix64 generator (Steele, Lea, Flood 2014): tiny, fast, deterministic.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_every_dtype() {
        for dtype in DType::ALL {
            let t = Tensor::random(&[3, 5], dtype, 7);
            let back = Tensor::from_bytes(&[3, 5], dtype, &t.to_bytes()).unwrap();
            assert_eq!(back, t, "{dtype}");
        }
    }

    #[test]
    fn random_is_deterministic_and_in_range() {
        let a = Tensor::random(&[1000], DType::F32, 1);
        assert_eq!(a, Tensor::random(&[1000], DType::F32, 1));
        assert_ne!(a, Tensor::random(&[1000], DType::F32, 2));
        assert!(a.data.iter().all(|&v| (-1.0..1.0).contains(&v)));
        let h = Tensor::random(&[1000], DType::BF16, 3);
        assert!(h.data.iter().all(|&v| round_to_dtype(v, DType::BF16) == v));
    }

    #[test]
    fn int_wrapping() {
        assert_eq!(round_to_dtype(-1.7, DType::I32), -1.0);
        assert_eq!(round_to_dtype(2f64.powi(31), DType::I32), -(2f64.powi(31)));
        assert_eq!(round_to_dtype(-1.0, DType::U32), u32::MAX as f64);
        assert_eq!(round_to_dtype(f64::NAN, DType::I32), 0.0);
    }

    #[test]
    fn diffs() {
        assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
        assert!((max_rel_diff(&[2.2], &[2.0]) - 0.1).abs() < 1e-12);
        assert_eq!(max_rel_diff(&[1e-4], &[0.0]), 1e-4 / REL_DIFF_FLOOR);
        assert_eq!(max_abs_diff(&[f64::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(max_abs_diff(&[f64::INFINITY], &[f64::INFINITY]), 0.0);
        assert_eq!(max_abs_diff(&[1.0], &[1.0, 2.0]), f64::INFINITY);
    }
}
