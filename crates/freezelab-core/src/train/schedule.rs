//! Learning-rate schedule: linear warm-up from 0, then linear decay to 0 at the last step.

/// Multiplier of the base learning rate at `step` (0-based) of `total`.
pub fn lr_factor(step: usize, total: usize, warmup: usize) -> f64 {
    if total == 0 {
        return 0.0;
    }
    if step < warmup {
        return (step + 1) as f64 / warmup as f64;
    }
    let remaining = total.saturating_sub(step) as f64;
    let span = total.saturating_sub(warmup).max(1) as f64;
    (remaining / span).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_zero() {
        let f: Vec<f64> = (0..10).map(|s| lr_factor(s, 10, 2)).collect();
        assert_eq!(f[0], 0.5);
        assert_eq!(f[1], 1.0);
        assert_eq!(f[2], 1.0);
        assert!(f.windows(2).skip(2).all(|w| w[1] < w[0]));
        assert!((f[9] - 1.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn no_warmup_starts_at_full_rate() {
        assert_eq!(lr_factor(0, 4, 0), 1.0);
    }
}
