//! A run: its settings ([`TrainConfig`]), what it reports while it trains ([`TrainEvent`]),
//! and the summary it ends with ([`RunSummary`]).

use serde::{Deserialize, Serialize};

use crate::freeze::FreezePlan;
use crate::memory::{ComputedMemory, MeasureSource};
use crate::metrics::{Baseline, Metrics};
use crate::readout::ExampleMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub freeze: FreezePlan,
    /// Training examples: the first N of a seeded, stratified shuffle.
    pub train_size: usize,
    /// Validation examples used for evaluation (seeded, stratified); `None`: all.
    pub eval_size: Option<usize>,
    pub epochs: usize,
    /// Stop after this many steps (overrides epochs when smaller).
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub max_len: usize,
    /// Learning rate of the pretrained encoder.
    pub lr: f64,
    /// Learning rate of the new, randomly initialised head.
    pub head_lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Fraction of steps spent warming up linearly, before linear decay to 0.
    pub warmup_fraction: f64,
    /// Clip all gradients together to this global L2 norm (HF's `max_grad_norm`).
    pub grad_clip_norm: Option<f64>,
    /// Also evaluate every this many steps (always at the end of each epoch).
    pub eval_every: Option<usize>,
    /// Evaluations before the final one use only the first N validation examples (a fixed,
    /// seeded sample): cheaper points on the curve. The final evaluation always uses all.
    pub interim_eval_size: Option<usize>,
    pub seed: u64,
    /// Reuse the frozen prefix's outputs across epochs and for validation.
    pub cache: bool,
    /// Beyond this the cache stops growing and the rest is recomputed.
    pub cache_limit_bytes: u64,
    /// Train until the training steps have taken this many seconds of the host's clock (within
    /// `epochs`), the learning rate warming up and decaying over that time instead of over the
    /// steps: the equal-time race, where a cheaper plan gets the time a dearer one took.
    #[serde(default)]
    pub time_budget_seconds: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            freeze: FreezePlan::none(0),
            train_size: 512,
            eval_size: Some(400),
            epochs: 2,
            max_steps: None,
            batch_size: 16,
            max_len: 64,
            lr: 5e-5,
            head_lr: 1e-3,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            warmup_fraction: 0.1,
            grad_clip_norm: Some(1.0),
            eval_every: None,
            interim_eval_size: None,
            seed: 0,
            cache: false,
            cache_limit_bytes: 1 << 30,
            time_budget_seconds: None,
        }
    }
}

/// The largest seed: the page's messages carry numbers as JavaScript numbers, exact up to 2^53 − 1,
/// and the CLI takes the same range so that a run is reproducible in both.
pub const MAX_SEED: u64 = (1 << 53) - 1;

impl TrainConfig {
    /// Refuses a setting outside the range the training loop can use, naming it as the CLI's
    /// flag and the page's field do (`max_len` is `--max-len`). The model's own limits (its
    /// layers, its positions) are checked where the model is known.
    pub fn validate(&self) -> Result<(), String> {
        fn check(ok: bool, setting: &str, rule: &str, got: impl std::fmt::Display) -> Result<(), String> {
            if ok {
                Ok(())
            } else {
                Err(format!("setting {setting}: must be {rule} (got {got})"))
            }
        }
        let rate = |x: f64| x.is_finite() && x > 0.0 && x <= 1.0;
        let unit = |x: f64| x.is_finite() && (0.0..1.0).contains(&x);
        check(self.train_size >= 1, "train_size", "at least 1", self.train_size)?;
        if let Some(n) = self.eval_size {
            check(n >= 1, "eval_size", "at least 1 (leave it unset for all)", n)?;
        }
        check(self.epochs >= 1, "epochs", "at least 1", self.epochs)?;
        if let Some(n) = self.max_steps {
            check(n >= 1, "max_steps", "at least 1", n)?;
        }
        check(self.batch_size >= 1, "batch_size", "at least 1", self.batch_size)?;
        check(self.max_len >= 2, "max_len", "at least 2 ([CLS] and [SEP])", self.max_len)?;
        check(rate(self.lr), "lr", "a number in (0, 1]", self.lr)?;
        check(rate(self.head_lr), "head_lr", "a number in (0, 1]", self.head_lr)?;
        check(unit(self.weight_decay), "weight_decay", "a number in [0, 1)", self.weight_decay)?;
        check(unit(self.beta1), "beta1", "a number in [0, 1)", self.beta1)?;
        check(unit(self.beta2), "beta2", "a number in [0, 1)", self.beta2)?;
        check(
            self.warmup_fraction.is_finite() && (0.0..=1.0).contains(&self.warmup_fraction),
            "warmup_fraction",
            "a fraction in [0, 1]",
            self.warmup_fraction,
        )?;
        if let Some(n) = self.grad_clip_norm {
            check(n.is_finite() && n > 0.0, "max_grad_norm", "a positive number (or off)", n)?;
        }
        if let Some(n) = self.eval_every {
            check(n >= 1, "eval_every", "at least 1 step", n)?;
        }
        if let Some(n) = self.interim_eval_size {
            check(n >= 1, "interim_eval_size", "at least 1 (leave it unset for all)", n)?;
        }
        check(self.seed <= MAX_SEED, "seed", "at most 2^53 − 1 = 9007199254740991", self.seed)?;
        if let Some(s) = self.time_budget_seconds {
            check(s.is_finite() && s > 0.0, "time_budget", "a positive number of seconds", s)?;
        }
        self.freeze.mode.validate()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainEvent {
    Started {
        total_steps: usize,
        train_examples: usize,
        validation_examples: usize,
        trainable_params: usize,
        total_params: usize,
        freeze: String,
        /// Planned memory at the configured batch size and max length.
        computed_memory: ComputedMemory,
        /// What always answering the validation set's majority label scores.
        #[serde(default)]
        baseline: Baseline,
    },
    Step {
        step: usize,
        epoch: usize,
        loss: f64,
        lr: f64,
        examples_per_second: f64,
        elapsed_seconds: f64,
    },
    Eval {
        step: usize,
        epoch: usize,
        val_loss: f64,
        metrics: Metrics,
        /// Validation examples it used: all of them for the final evaluation, the interim
        /// subset for earlier ones when `interim_eval_size` is set.
        #[serde(default)]
        examples: usize,
    },
    Finished {
        summary: Box<RunSummary>,
    },
    /// After `Finished`: how far training moved each block from where it started.
    Drift {
        blocks: Vec<BlockDrift>,
    },
    /// After `Drift`, for a column's run: the validation examples on the trained model's map,
    /// with its answers.
    Examples {
        map: ExampleMap,
    },
}

/// Validation examples whose hidden states the representation change (CKA) compares.
pub const DRIFT_PROBE_EXAMPLES: usize = 16;

/// How far training moved one block: ‖W_after − W_before‖ / ‖W_before‖ over all its parameters
/// together (exactly 0 for a frozen block), and the same per part of an encoder layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockDrift {
    /// `emb`, `layer-0` … `layer-N`, `head` (the page's `data-block`).
    pub block: String,
    pub relative_change: f64,
    /// Encoder layers: `attention` (query, key, value, output), `feed-forward`, `layer-norm`.
    pub parts: Vec<(String, f64)>,
    /// Linear CKA between the block's output before and after training on a fixed validation
    /// batch (1: the same representation up to rotation and scale); none for the head.
    #[serde(default)]
    pub cka: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Computed at the batch size and the longest padded batch actually run.
    pub computed: ComputedMemory,
    pub computed_total: u64,
    /// Peak bytes live during any training step (absolute: weights included).
    pub measured_peak_bytes: Option<u64>,
    pub measured_source: Option<MeasureSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub freeze: String,
    pub labels: Vec<String>,
    pub trainable_params: usize,
    pub total_params: usize,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub steps: usize,
    pub val_loss: f64,
    pub val_accuracy: f64,
    pub best_val_accuracy: f64,
    pub macro_f1: f64,
    pub confusion: Vec<Vec<usize>>,
    /// Always answering the validation set's majority label (absent in runs saved before it).
    #[serde(default)]
    pub baseline: Baseline,
    /// From the start of the first step to the end of the last evaluation.
    pub wall_seconds: f64,
    /// Training steps only (forward, backward, optimizer).
    pub train_seconds: f64,
    pub examples_per_second: f64,
    /// A data-parallel replica's seconds in the gradient exchange (part of `train_seconds`);
    /// `None` for a run on one worker.
    #[serde(default)]
    pub exchange_seconds: Option<f64>,
    pub cache_used: bool,
    pub cache_over_limit: bool,
    pub cancelled: bool,
    /// Tensors of AdamW state held at the end: only trainable parameters have any. `None` on a
    /// GPU in a browser, where Burn can only list the optimizer's state with a blocking read.
    pub optimizer_state_tensors: Option<usize>,
    /// Per block, from bottom to head (empty until measured: the CLI and the page fill it in).
    #[serde(default)]
    pub drift: Vec<BlockDrift>,
    /// The validation examples as the trained model sees them (a column's run; none for the
    /// sweep's, the CLI's without `--map`, or runs saved before maps).
    #[serde(default)]
    pub examples: Option<ExampleMap>,
    pub memory: MemoryReport,
    pub config: TrainConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One bad value per setting: each is refused, and the message names that setting.
    #[test]
    fn every_setting_is_range_checked() {
        type Spoil = fn(&mut TrainConfig);
        let bad: Vec<(&str, Spoil)> = vec![
            ("train_size", |c| c.train_size = 0),
            ("eval_size", |c| c.eval_size = Some(0)),
            ("epochs", |c| c.epochs = 0),
            ("max_steps", |c| c.max_steps = Some(0)),
            ("batch_size", |c| c.batch_size = 0),
            ("max_len", |c| c.max_len = 1),
            ("lr", |c| c.lr = 0.0),
            ("lr", |c| c.lr = f64::NAN),
            ("lr", |c| c.lr = 3.0),
            ("head_lr", |c| c.head_lr = -1e-3),
            ("weight_decay", |c| c.weight_decay = -0.1),
            ("beta1", |c| c.beta1 = 1.0),
            ("beta2", |c| c.beta2 = -0.5),
            ("warmup_fraction", |c| c.warmup_fraction = 1.5),
            ("max_grad_norm", |c| c.grad_clip_norm = Some(0.0)),
            ("eval_every", |c| c.eval_every = Some(0)),
            ("interim_eval_size", |c| c.interim_eval_size = Some(0)),
            ("time_budget", |c| c.time_budget_seconds = Some(0.0)),
            ("seed", |c| c.seed = MAX_SEED + 1),
            ("llrd_decay", |c| c.freeze.mode = crate::freeze::Mode::Llrd { decay: 1.5 }),
        ];
        assert_eq!(TrainConfig::default().validate(), Ok(()));
        for (setting, spoil) in bad {
            let mut cfg = TrainConfig::default();
            spoil(&mut cfg);
            let message = cfg.validate().expect_err(setting);
            assert!(message.starts_with(&format!("setting {setting}: must be")), "{setting}: {message}");
        }
        // The edges that are allowed.
        let edges = TrainConfig {
            weight_decay: 0.0,
            beta1: 0.0,
            warmup_fraction: 1.0,
            grad_clip_norm: None,
            lr: 1.0,
            max_len: 2,
            seed: MAX_SEED,
            ..TrainConfig::default()
        };
        assert_eq!(edges.validate(), Ok(()));
    }
}
