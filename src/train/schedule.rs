//! Learning-rate schedules: linear warmup then cosine decay (nanoGPT's / GPT-3's).
//!
//! Steps count optimizer updates from 1 (as [`tessera_compiler::optim::AdamW`]'s bias
//! corrections do): with `W` warmup steps and `T` total steps,
//! ```text
//! lr(t) = max_lr * t / W                                            1 <= t <= W
//! lr(t) = min_lr + (max_lr - min_lr) (1 + cos(pi (t - W) / (T - W))) / 2    W < t <= T
//! lr(t) = min_lr                                                    t > T
//! ```
//! (`t = 0` is treated as 1). Without warmup (`W = 0`) the decay starts on step 1:
//! `lr(1) = min_lr + (max_lr - min_lr)(1 + cos(pi / T)) / 2`, and `T = W` means
//! warmup then constant `min_lr`.

/// Invalid schedule parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid learning-rate schedule: {0}")]
pub struct ScheduleError(pub String);

/// Linear warmup to `max_lr`, then cosine decay to `min_lr` at `total_steps`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrSchedule {
    /// Peak learning rate, reached at the end of warmup.
    pub max_lr: f64,
    /// Final learning rate, from `total_steps` on.
    pub min_lr: f64,
    /// Steps of linear warmup.
    pub warmup_steps: u64,
    /// Step at which the decay reaches `min_lr`.
    pub total_steps: u64,
}

impl LrSchedule {
    /// A checked schedule: rates finite with `0 <= min_lr <= max_lr`, and
    /// `warmup_steps <= total_steps`, `total_steps >= 1`.
    pub fn new(
        max_lr: f64,
        min_lr: f64,
        warmup_steps: u64,
        total_steps: u64,
    ) -> Result<LrSchedule, ScheduleError> {
        if !(max_lr.is_finite() && min_lr.is_finite() && min_lr >= 0.0 && min_lr <= max_lr) {
            return Err(ScheduleError(format!(
                "need finite 0 <= min_lr <= max_lr, got min_lr = {min_lr}, max_lr = {max_lr}"
            )));
        }
        if total_steps == 0 || warmup_steps > total_steps {
            return Err(ScheduleError(format!(
                "need 1 <= total_steps and warmup_steps <= total_steps, got warmup {warmup_steps}, total {total_steps}"
            )));
        }
        Ok(LrSchedule {
            max_lr,
            min_lr,
            warmup_steps,
            total_steps,
        })
    }

    /// A constant learning rate.
    pub fn constant(lr: f64) -> LrSchedule {
        LrSchedule {
            max_lr: lr,
            min_lr: lr,
            warmup_steps: 0,
            total_steps: 1,
        }
    }

    /// The learning rate of update `step` (1-based; see the module docs).
    pub fn lr(&self, step: u64) -> f64 {
        let t = step.max(1);
        if t <= self.warmup_steps {
            return self.max_lr * t as f64 / self.warmup_steps as f64;
        }
        if t >= self.total_steps {
            return self.min_lr;
        }
        let span = (self.total_steps - self.warmup_steps) as f64;
        let progress = (t - self.warmup_steps) as f64 / span;
        self.min_lr
            + (self.max_lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_linear_and_cosine_ends_at_min() {
        let s = LrSchedule::new(1e-3, 1e-4, 10, 110).unwrap();
        // Linear warmup: 1/10, 5/10, 10/10 of max_lr.
        assert!((s.lr(1) - 1e-4).abs() < 1e-18);
        assert!((s.lr(5) - 5e-4).abs() < 1e-18);
        assert!((s.lr(10) - 1e-3).abs() < 1e-18);
        // Halfway through the decay (step 60 of 10..110): cos(pi/2) = 0, the midpoint.
        assert!((s.lr(60) - 5.5e-4).abs() < 1e-15);
        // A quarter of the way: min + (max - min) (1 + cos(pi/4)) / 2.
        let q = 1e-4 + 9e-4 * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0;
        assert!((s.lr(35) - q).abs() < 1e-15);
        assert_eq!(s.lr(110), 1e-4);
        assert_eq!(s.lr(1000), 1e-4);
        // Monotone decreasing after warmup.
        for t in 11..110 {
            assert!(s.lr(t + 1) <= s.lr(t), "step {t}");
        }
        assert_eq!(s.lr(0), s.lr(1));
    }

    #[test]
    fn constant_and_invalid() {
        let c = LrSchedule::constant(3e-4);
        assert_eq!(c.lr(1), 3e-4);
        assert_eq!(c.lr(99), 3e-4);
        assert!(LrSchedule::new(1e-3, 1e-2, 0, 10).is_err());
        assert!(LrSchedule::new(f64::NAN, 0.0, 0, 10).is_err());
        assert!(LrSchedule::new(1e-3, 0.0, 11, 10).is_err());
        assert!(LrSchedule::new(1e-3, 0.0, 0, 0).is_err());
        // No warmup: decay from the first step.
        let s = LrSchedule::new(1.0, 0.0, 0, 4).unwrap();
        let want = 0.5 * (1.0 + (std::f64::consts::PI / 4.0).cos());
        assert!((s.lr(1) - want).abs() < 1e-15);
    }
}
