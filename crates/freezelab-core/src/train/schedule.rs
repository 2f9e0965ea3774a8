//! Learning-rate schedule, exactly as Hugging Face's `get_linear_schedule_with_warmup` with the
//! `Trainer`'s warm-up count: the first update runs at lr 0 when there is a warm-up.

use super::TrainConfig;

/// A run's optimizer steps: in all (its step budget, or every epoch's), per epoch, and how
/// many of them warm up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub total: usize,
    pub per_epoch: usize,
    pub warmup: usize,
}

impl Schedule {
    /// The schedule of a run on `train_examples` examples under `cfg`.
    pub fn new(train_examples: usize, cfg: &TrainConfig) -> Self {
        let per_epoch = train_examples.div_ceil(cfg.batch_size);
        let total = cfg.max_steps.map_or(per_epoch * cfg.epochs, |m| m.min(per_epoch * cfg.epochs.max(1)));
        Schedule { total, per_epoch, warmup: warmup_steps(total, cfg.warmup_fraction) }
    }

    /// The learning-rate multiplier after `step` steps and `seconds` of training: by time where
    /// `cfg` sets a time budget, else by step.
    pub fn lr_factor(&self, step: usize, seconds: f64, cfg: &TrainConfig) -> f64 {
        match cfg.time_budget_seconds {
            Some(budget) => lr_factor_by_time(seconds / budget, cfg.warmup_fraction),
            None => lr_factor(step, self.total, self.warmup),
        }
    }
}

/// Warm-up steps for a fraction of `total`: `ceil(total × fraction)`, as `TrainingArguments`.
pub fn warmup_steps(total: usize, fraction: f64) -> usize {
    (total as f64 * fraction).ceil() as usize
}

/// Multiplier of the base learning rate at `step` (0-based) of `total`.
pub fn lr_factor(step: usize, total: usize, warmup: usize) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    (total.saturating_sub(step) as f64 / total.saturating_sub(warmup).max(1) as f64).max(0.0)
}

/// [`lr_factor`] over a time budget: `fraction` of it used, warm-up over its first `warmup`.
pub fn lr_factor_by_time(fraction: f64, warmup: f64) -> f64 {
    if fraction < warmup {
        return fraction / warmup;
    }
    ((1.0 - fraction) / (1.0 - warmup).max(1e-12)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_time_the_same_shape() {
        assert_eq!(lr_factor_by_time(0.0, 0.1), 0.0);
        assert!((lr_factor_by_time(0.05, 0.1) - 0.5).abs() < 1e-12);
        assert_eq!(lr_factor_by_time(0.1, 0.1), 1.0);
        assert!((lr_factor_by_time(0.55, 0.1) - 0.5).abs() < 1e-12);
        assert_eq!(lr_factor_by_time(1.2, 0.1), 0.0);
        assert_eq!(lr_factor_by_time(0.0, 0.0), 1.0);
    }

    #[test]
    fn warms_up_from_zero_then_decays_to_zero() {
        // HF, 10 steps, warm-up 2: 0, 0.5, then (10 - s) / 8.
        let f: Vec<f64> = (0..10).map(|s| lr_factor(s, 10, 2)).collect();
        assert_eq!(f[0], 0.0);
        assert_eq!(f[1], 0.5);
        assert_eq!(f[2], 1.0);
        assert!(f.windows(2).skip(2).all(|w| w[1] < w[0]));
        assert!((f[9] - 1.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn no_warmup_starts_at_full_rate() {
        assert_eq!(lr_factor(0, 4, 0), 1.0);
        assert_eq!(lr_factor(3, 4, 0), 0.25);
    }

    #[test]
    fn warmup_rounds_up() {
        assert_eq!(warmup_steps(16, 0.1), 2);
        assert_eq!(warmup_steps(10, 0.1), 1);
        assert_eq!(warmup_steps(10, 0.0), 0);
    }
}
