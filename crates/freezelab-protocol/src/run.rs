//! A run: its settings ([`TrainConfig`]), what it reports while it trains ([`TrainEvent`]),
//! and the summary it ends with ([`RunSummary`]).

use serde::{Deserialize, Serialize};

use crate::freeze::FreezePlan;
use crate::memory::{ComputedMemory, MeasureSource};
use crate::metrics::Metrics;

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
    /// Clip each parameter's gradient to this L2 norm (Burn clips per tensor).
    pub grad_clip_norm: Option<f64>,
    /// Also evaluate every this many steps (always at the end of each epoch).
    pub eval_every: Option<usize>,
    pub seed: u64,
    /// Reuse the frozen prefix's outputs across epochs and for validation.
    pub cache: bool,
    /// Beyond this the cache stops growing and the rest is recomputed.
    pub cache_limit_bytes: u64,
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
            seed: 0,
            cache: false,
            cache_limit_bytes: 1 << 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
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
    },
    Finished {
        summary: Box<RunSummary>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Computed at the batch size and the longest padded batch actually run.
    pub computed: ComputedMemory,
    pub computed_total: u64,
    /// Peak bytes live during any training step (absolute: weights included).
    pub measured_peak_bytes: Option<u64>,
    pub measured_source: Option<MeasureSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// From the start of the first step to the end of the last evaluation.
    pub wall_seconds: f64,
    /// Training steps only (forward, backward, optimizer).
    pub train_seconds: f64,
    pub examples_per_second: f64,
    pub cache_used: bool,
    pub cache_over_limit: bool,
    pub cancelled: bool,
    /// Tensors of AdamW state held at the end: only trainable parameters have any. `None` on a
    /// GPU in a browser, where Burn can only list the optimizer's state with a blocking read.
    pub optimizer_state_tensors: Option<usize>,
    pub memory: MemoryReport,
    pub config: TrainConfig,
}
