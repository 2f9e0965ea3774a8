//! The hyperparameters the page exposes, with the defaults each backend gets, and what they
//! imply before a run: its steps, the plan at its last step, its computed memory.

use freezelab_protocol::freeze::FreezePlan;
use freezelab_protocol::memory::{self, ComputedMemory};
use freezelab_protocol::messages::{BackendKind, DatasetInfo, ModelInfo};
use freezelab_protocol::run::TrainConfig;

/// The prefix cache's limit in the tab: a wasm32 heap holds at most 4 GiB, shared with the
/// model, its gradients and the optimizer.
pub const CACHE_LIMIT_BYTES: u64 = 512 << 20;

/// Validation examples the evaluations before a run's last one use.
pub const INTERIM_EVAL_EXAMPLES: usize = 32;

/// The hyperparameters the page exposes (the rest keep the core's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Hyper {
    pub train_size: usize,
    pub eval_size: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub max_len: usize,
    pub lr: f64,
    pub seed: u64,
    pub cache: bool,
}

impl Hyper {
    /// Defaults sized to the backend. On the CPU: the largest budget tried at which "Train both"
    /// (A all, B head only, on two workers) ends within a minute in a 2-core machine's tab
    /// (BENCHMARKS.md, "The demo budget"); there train all reaches the reference recipe's
    /// accuracy and the sweep shows the known order: short texts (32 tokens), two epochs (a lone
    /// head needs the second to beat the majority class), and a learning rate raised to 1e-4
    /// for so few steps.
    pub fn for_backend(kind: BackendKind) -> Self {
        match kind {
            BackendKind::Webgpu => Hyper {
                train_size: 512,
                eval_size: 400,
                epochs: 2,
                batch_size: 16,
                max_len: 128,
                lr: 5e-5,
                seed: 0,
                cache: true,
            },
            BackendKind::Cpu => Hyper {
                train_size: 384,
                eval_size: 100,
                epochs: 2,
                batch_size: 16,
                max_len: 32,
                lr: 1e-4,
                seed: 0,
                cache: true,
            },
        }
    }

    /// A batch never holds more than the training examples: what memory estimates use.
    pub fn effective_batch(&self) -> usize {
        self.batch_size.min(self.train_size)
    }

    /// Optimizer steps of a run at these settings (on `dataset`, whose training split may hold
    /// fewer examples than asked).
    pub fn steps(&self, dataset: Option<&DatasetInfo>) -> usize {
        let train = dataset.map_or(self.train_size, |d| self.train_size.min(d.train_counts.iter().sum()));
        train.div_ceil(self.batch_size.max(1)) * self.epochs
    }

    /// The blocks that train at the schedule's peak: the plan itself, but under gradual
    /// unfreezing only those open by the run's last step (as the core reports it).
    pub fn peak(&self, plan: &FreezePlan, dataset: Option<&DatasetInfo>) -> FreezePlan {
        plan.at_step(self.steps(dataset).saturating_sub(1))
    }

    /// Computed memory of `plan` at these settings, at its schedule's peak, the prefix cache
    /// included where it is used: every training and validation example at the max length (an
    /// upper bound: padding is not cached), within the cache's limit.
    pub fn planned(&self, model: &ModelInfo, dataset: Option<&DatasetInfo>, plan: &FreezePlan) -> ComputedMemory {
        let plan = &self.peak(plan, dataset);
        let cache = if self.cache && plan.cache_line().is_some() {
            let available = |counts: &[usize], asked: usize| asked.min(counts.iter().sum());
            let (train, eval) = dataset.map_or((self.train_size, self.eval_size), |d| {
                (available(&d.train_counts, self.train_size), available(&d.validation_counts, self.eval_size))
            });
            memory::cache_bytes(model.shape.hidden_size, ((train + eval) * self.max_len) as u64, CACHE_LIMIT_BYTES)
        } else {
            0
        };
        memory::computed(&model.shape, &model.params, plan, (self.effective_batch(), self.max_len), cache)
    }

    /// The protocol's range checks (the CLI's too) on the run these settings would make.
    pub fn validate(&self) -> Result<(), String> {
        self.config(FreezePlan::none(0)).validate()
    }

    /// The settings of a run of `freeze`, at its mode's suggested encoder rate (BitFit's is
    /// higher than the page's).
    pub fn config(&self, freeze: FreezePlan) -> TrainConfig {
        // About four points on the accuracy curve per run: those before the last on a fixed
        // sample of the validation set (cheap), the last on all of it.
        let steps = self.steps(None);
        let lr = freeze.mode.suggested_lr(self.lr);
        TrainConfig {
            eval_every: (steps >= 4).then_some(steps / 4),
            interim_eval_size: Some(INTERIM_EVAL_EXAMPLES.min(self.eval_size.max(1))),
            freeze,
            train_size: self.train_size,
            eval_size: Some(self.eval_size),
            epochs: self.epochs,
            batch_size: self.batch_size,
            max_len: self.max_len,
            lr,
            seed: self.seed,
            cache: self.cache,
            cache_limit_bytes: CACHE_LIMIT_BYTES,
            ..TrainConfig::default()
        }
    }
}
