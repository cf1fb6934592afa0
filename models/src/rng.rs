//! A small, self-contained, deterministic random number generator (splitmix64) used for
//! parameter initialisation and batch sampling.
//!
//! The whole state is one `u64` ([`Rng::state`] / [`Rng::from_state`]), so a checkpoint
//! can store it and a resumed run draws exactly the batches an uninterrupted run would.
//! The streams are fixed by this file alone (no dependency whose algorithm could change
//! between versions), so seeds reproduce across builds and machines.

/// splitmix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by a Weyl sequence
/// and finalised by a bijective mixer; passes BigCrush, ample for initialisation and data
/// sampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator for the stream named `name` under `seed`: the name is hashed (FNV-1a)
    /// into the seed, so each named stream (one per parameter) is independent of the order
    /// in which streams are created.
    pub fn for_stream(seed: u64, name: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut mix = Rng::new(seed ^ h.rotate_left(17));
        Rng::new(mix.next_u64())
    }

    /// The generator's whole state (store it to resume the stream).
    pub fn state(&self) -> u64 {
        self.state
    }

    /// A generator resuming from a state given by [`Rng::state`].
    pub fn from_state(state: u64) -> Rng {
        Rng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (Lemire's multiply-shift; the bias is below `n / 2^64`).
    /// Returns 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A standard normal sample (Box-Muller; one uniform pair per sample, the second
    /// variate is discarded so that the stream position depends only on the sample count).
    pub fn normal(&mut self) -> f64 {
        // 1 - u lies in (0, 1]: the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}
