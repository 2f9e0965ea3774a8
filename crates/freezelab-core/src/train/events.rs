//! What a run tells its caller while it trains, and the summary it ends with. Serde types: the
//! CLI prints them as JSON lines, the page's worker posts them to the page.

use serde::{Deserialize, Serialize};

use super::metrics::Metrics;
use super::TrainConfig;
use crate::memory::{ComputedMemory, MeasureSource};

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
    /// Tensors of AdamW state held at the end: only trainable parameters have any.
    pub optimizer_state_tensors: usize,
    pub memory: MemoryReport,
    pub config: TrainConfig,
}

/// The caller's side of a run: a clock (the core reads none), an event sink, a stop flag.
pub trait Host {
    /// Seconds since any fixed origin.
    fn now(&self) -> f64;
    fn emit(&mut self, event: &TrainEvent);
    /// Checked between steps.
    fn cancelled(&self) -> bool {
        false
    }
}
