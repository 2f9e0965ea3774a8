//! The page's state: one `Lab` of signals, shared through context, and the reducer that folds
//! worker messages into it. Components read signals; only `apply` and user actions write them.
//! Each run has a signal of its own (`runs`), so a training step reaches only what shows that run.

use freezelab_protocol::freeze::FreezePlan;
use freezelab_protocol::memory::{self, ComputedMemory, Kernels};
use freezelab_protocol::messages::{
    BackendChoice, BackendInfo, BackendKind, Column, DatasetInfo, FilePreview, FromWorker, ModelInfo, Origin,
    Prediction, Request, UserFile,
};
use freezelab_protocol::metrics::Baseline;
use freezelab_protocol::run::{RunSummary, TrainConfig, TrainEvent};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::runs::Runs;
use crate::share::Shared;

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
    /// Defaults sized to the backend. On the CPU: the largest budget at which "Train both" (A
    /// all, B head only) takes about a minute in a 2-core machine's tab and still shows the
    /// known order (BENCHMARKS.md, "The demo budget"): short texts, two epochs, and a learning
    /// rate raised to 1e-4 for so few steps.
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
                train_size: 256,
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
    pub fn planned(
        &self,
        model: &ModelInfo,
        dataset: Option<&DatasetInfo>,
        plan: &FreezePlan,
        kernels: Kernels,
    ) -> ComputedMemory {
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
        memory::computed(&model.shape, &model.params, plan, self.effective_batch(), self.max_len, cache, kernels)
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    Queued,
    Running,
    Done,
    Stopped,
    Failed { message: String, retry_on_cpu: bool },
}

/// What an imported run shows for its model, data and backend.
pub const IMPORTED: &str = "imported";

/// One run as the page knows it, from request to summary. Finished runs are saved as they are
/// (`store`), so the fields are serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub id: u32,
    /// Who asked for it; saved runs stored this as `column`.
    #[serde(alias = "column")]
    pub origin: Origin,
    pub config: TrainConfig,
    pub model: String,
    pub dataset: String,
    pub backend: String,
    pub status: RunStatus,
    pub total_steps: usize,
    pub step: usize,
    pub elapsed: f64,
    pub trainable: usize,
    pub planned: Option<ComputedMemory>,
    /// (step, training loss)
    pub losses: Vec<(f64, f64)>,
    /// (step, validation accuracy)
    pub accuracy: Vec<(f64, f64)>,
    pub summary: Option<RunSummary>,
    /// The sweep this run belongs to (the sweep's first run id).
    #[serde(default)]
    pub sweep: Option<u32>,
    /// Size of the model download, once made.
    #[serde(default)]
    pub model_bytes: Option<u64>,
    /// Always answering the validation set's majority label, known from the run's start.
    #[serde(default)]
    pub baseline: Option<Baseline>,
    /// Seconds since the run started, after each step: the x of the charts in the equal-time race.
    #[serde(default)]
    pub step_seconds: Vec<f64>,
    /// Training examples per second: so far, then the run's.
    #[serde(default)]
    pub examples_per_second: f64,
    /// Workers the run trains on (data-parallel when more than one).
    #[serde(default = "one")]
    pub workers: usize,
}

fn one() -> usize {
    1
}

impl RunView {
    /// A run requested now, not started yet.
    pub fn queued(
        id: u32,
        origin: Origin,
        config: TrainConfig,
        model: String,
        dataset: String,
        backend: String,
    ) -> Self {
        RunView {
            id,
            origin,
            config,
            model,
            dataset,
            backend,
            status: RunStatus::Queued,
            total_steps: 0,
            step: 0,
            elapsed: 0.0,
            trainable: 0,
            planned: None,
            losses: Vec::new(),
            accuracy: Vec::new(),
            summary: None,
            sweep: None,
            model_bytes: None,
            baseline: None,
            step_seconds: Vec::new(),
            examples_per_second: 0.0,
            workers: 1,
        }
    }

    /// `points` (step, y) with each step replaced by the seconds it was reached at (a step-0
    /// point at 0 s).
    pub fn against_seconds(&self, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
        let at = |step: f64| if step < 1.0 { Some(0.0) } else { self.step_seconds.get(step as usize - 1).copied() };
        points.iter().filter_map(|&(step, y)| Some((at(step)?, y))).collect()
    }

    /// Seconds left, from the pace so far.
    pub fn eta(&self) -> Option<f64> {
        (self.step > 0 && self.total_steps > self.step)
            .then(|| self.elapsed / self.step as f64 * (self.total_steps - self.step) as f64)
    }

    pub fn fraction(&self) -> f64 {
        match self.status {
            RunStatus::Done | RunStatus::Stopped => 1.0,
            _ if self.total_steps == 0 => 0.0,
            _ => self.step as f64 / self.total_steps as f64,
        }
    }

    /// Read from a results file (`export::import`), not trained in this browser.
    pub fn imported(&self) -> bool {
        self.backend == IMPORTED
    }

    pub fn finished(&self) -> bool {
        !matches!(self.status, RunStatus::Queued | RunStatus::Running)
    }

    /// The baseline's warning, for a finished run that does not clear it.
    pub fn below_baseline(&self) -> Option<String> {
        let summary = self.summary.as_ref()?;
        (!summary.baseline.beaten_by(summary.val_accuracy)).then(|| summary.baseline.warning())
    }
}

/// The pool of training workers, as the page shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolStatus {
    pub up: usize,
    pub busy: usize,
    pub queued: usize,
    pub heap_bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub what: String,
    pub loaded: u64,
    pub total: Option<u64>,
}

/// The page's state. Every field is a signal, so `Lab` is `Copy` and goes into closures freely.
#[derive(Clone, Copy)]
pub struct Lab {
    pub manifest: RwSignal<Option<Manifest>>,
    pub worker_alive: RwSignal<bool>,
    pub backend: RwSignal<Option<BackendInfo>>,
    pub backend_choice: RwSignal<BackendChoice>,
    pub model: RwSignal<Option<ModelInfo>>,
    pub model_busy: RwSignal<bool>,
    pub dataset: RwSignal<Option<DatasetInfo>>,
    pub dataset_busy: RwSignal<bool>,
    /// The uploaded file waiting for its columns to be picked.
    pub upload: RwSignal<Option<UserFile>>,
    pub preview: RwSignal<Option<FilePreview>>,
    pub hyper: RwSignal<Hyper>,
    pub plan_a: RwSignal<FreezePlan>,
    pub plan_b: RwSignal<FreezePlan>,
    /// Column A's and B's encoder learning rate where the user set one; otherwise the mode's
    /// suggestion at the page's rate.
    pub lr_override: RwSignal<[Option<f64>; 2]>,
    pub runs: Runs,
    /// Whether a run is queued or training (a memo: a step does not wake its readers).
    busy: Memo<bool>,
    /// The run shown in each column (A, B).
    pub pinned: RwSignal<[Option<u32>; 2]>,
    /// The sweep shown in the sweep panel (its first run id).
    pub sweep: RwSignal<Option<u32>>,
    /// The worker's latest model download: run id and `blob:` URL (valid until the next one).
    pub exported: RwSignal<Option<(u32, String)>>,
    /// Models kept in this browser: run id → bytes.
    pub kept: RwSignal<std::collections::HashMap<u32, u64>>,
    pub next_run: RwSignal<u32>,
    pub download: RwSignal<Option<Download>>,
    pub errors: RwSignal<Vec<String>>,
    pub predictions: RwSignal<Option<(String, Vec<Prediction>)>>,
    /// The training workers: how many are up, training, waited for, and their heaps.
    pub pool: RwSignal<PoolStatus>,
    /// The most workers the pool may start (runs trained at once on the CPU).
    pub pool_size: RwSignal<usize>,
    /// Workers one run may use (data-parallel); 1: a run trains on one worker.
    pub run_workers: RwSignal<usize>,
    /// A link's set-up whose freeze plans wait for the model to load.
    pub shared: RwSignal<Option<Shared>>,
    /// Presentation mode: advanced controls hidden, charts larger.
    pub presenting: RwSignal<bool>,
    /// The equal-time race is on: B gets A's training time, the charts run against seconds.
    pub race: RwSignal<bool>,
    /// The run whose end starts the race's B.
    pub race_after: RwSignal<Option<u32>>,
}

impl Lab {
    pub fn new() -> Self {
        let runs = Runs::new();
        Lab {
            manifest: RwSignal::new(None),
            worker_alive: RwSignal::new(false),
            backend: RwSignal::new(None),
            backend_choice: RwSignal::new(BackendChoice::Auto),
            model: RwSignal::new(None),
            model_busy: RwSignal::new(false),
            dataset: RwSignal::new(None),
            dataset_busy: RwSignal::new(false),
            upload: RwSignal::new(None),
            preview: RwSignal::new(None),
            hyper: RwSignal::new(Hyper::for_backend(BackendKind::Cpu)),
            plan_a: RwSignal::new(FreezePlan::none(0)),
            plan_b: RwSignal::new(FreezePlan::none(0)),
            lr_override: RwSignal::new([None, None]),
            runs,
            busy: Memo::new(move |_| runs.any(|r| !r.finished())),
            pinned: RwSignal::new([None, None]),
            sweep: RwSignal::new(None),
            exported: RwSignal::new(None),
            kept: RwSignal::new(Default::default()),
            next_run: RwSignal::new(1),
            download: RwSignal::new(None),
            errors: RwSignal::new(Vec::new()),
            predictions: RwSignal::new(None),
            pool: RwSignal::new(PoolStatus::default()),
            pool_size: RwSignal::new(crate::pool::default_size()),
            run_workers: RwSignal::new(1),
            shared: RwSignal::new(None),
            presenting: RwSignal::new(false),
            race: RwSignal::new(false),
            race_after: RwSignal::new(None),
        }
    }

    /// How the worker's backend runs element-wise work (what autodiff keeps depends on it);
    /// the CPU's fused kernels until a backend is known.
    pub fn kernels(&self) -> Kernels {
        self.backend.with(|b| b.as_ref().map_or(Kernels::Fused, |b| b.kind.into()))
    }

    /// The editable plan of column A or B.
    pub fn plan(&self, column: Column) -> RwSignal<FreezePlan> {
        match column {
            Column::A => self.plan_a,
            Column::B => self.plan_b,
        }
    }

    /// The encoder learning rate column A or B trains at: the user's, or its mode's suggestion.
    pub fn column_lr(&self, column: Column) -> f64 {
        let set = self.lr_override.with(|o| o[column as usize]);
        set.unwrap_or_else(|| self.plan(column).with(|p| p.mode.suggested_lr(self.hyper.with(|h| h.lr))))
    }

    pub fn pinned_run(&self, column: Column) -> Option<RunView> {
        let id = self.pinned.with(|p| p[column as usize])?;
        self.runs.get(id)
    }

    pub fn pin(&self, column: Column, id: u32) {
        self.pinned.update(|p| p[column as usize] = Some(id));
    }

    /// The next run number.
    pub fn new_run_id(&self) -> u32 {
        let id = self.next_run.get_untracked();
        self.next_run.set(id + 1);
        id
    }

    pub fn error(&self, message: String) {
        self.errors.update(|e| e.push(message));
    }

    pub fn busy(&self) -> bool {
        self.busy.get()
    }

    /// The worker died: runs it had are failed, finished ones stay, and what it had loaded is
    /// gone (trained models for "Try it" included).
    pub fn worker_lost(&self) {
        self.worker_alive.set(false);
        self.model.set(None);
        self.dataset.set(None);
        self.predictions.set(None);
        let on_gpu = self.backend.with_untracked(|b| b.as_ref().is_some_and(|b| b.kind == BackendKind::Webgpu));
        self.runs.update_where(
            |r| !r.finished(),
            |run| {
                let message = "the training worker stopped".to_string();
                run.status = RunStatus::Failed { message, retry_on_cpu: on_gpu };
            },
        );
    }

    /// Folds one worker message into the state.
    pub fn apply(&self, message: FromWorker) {
        match message {
            FromWorker::Alive => self.worker_alive.set(true),
            FromWorker::Backend { info } => {
                // Defaults follow the first backend, unless a link set them.
                if self.backend.get_untracked().is_none() && self.shared.get_untracked().is_none() {
                    self.hyper.set(Hyper::for_backend(info.kind));
                }
                self.backend.set(Some(info));
            }
            FromWorker::Progress { what, loaded, total } => self.download.set(Some(Download { what, loaded, total })),
            FromWorker::ModelLoaded { info, .. } => {
                let n = info.num_layers();
                let linked = self.shared.get_untracked().map(|s| s.plans(n));
                let (a, b) = match linked {
                    Some(Ok(plans)) => plans,
                    Some(Err(e)) => {
                        self.error(format!("this link's freeze plans do not fit the model: {e}"));
                        (FreezePlan::none(n), FreezePlan::head_only(n))
                    }
                    None => (FreezePlan::none(n), FreezePlan::head_only(n)),
                };
                self.shared.set(None);
                self.plan_a.set(a);
                self.plan_b.set(b);
                self.model.set(Some(info));
                self.model_busy.set(false);
                self.download.set(None);
            }
            FromWorker::Inspected { preview } => self.preview.set(Some(preview)),
            FromWorker::DatasetLoaded { info, .. } => {
                self.dataset.set(Some(info));
                self.dataset_busy.set(false);
                self.download.set(None);
            }
            FromWorker::Run { run_id, event, .. } => self.runs.update(run_id, |run| apply_event(run, event)),
            FromWorker::RunFailed { run_id, message, retry_on_cpu, .. } => {
                self.runs.update(run_id, |run| run.status = RunStatus::Failed { message, retry_on_cpu })
            }
            FromWorker::Exported { run_id, file, bytes } => {
                crate::export::download_url(&file.name, &file.url);
                self.runs.update(run_id, |run| run.model_bytes = Some(bytes));
                self.exported.set(Some((run_id, file.url)));
            }
            // Each worker answers for the runs it holds: answers to the same text add up.
            FromWorker::Predictions { text, results } => self.predictions.update(|p| match p {
                Some((asked, shown)) if *asked == text => shown.extend(results),
                _ => *p = Some((text, results)),
            }),
            // The pool keeps each worker's figures and adds the replicas' gradients.
            FromWorker::Handled { .. } | FromWorker::Gradients { .. } => {}
            FromWorker::Error { context, message } => {
                match context {
                    Request::Model => self.model_busy.set(false),
                    Request::Dataset | Request::Upload => self.dataset_busy.set(false),
                    _ => {}
                }
                self.download.set(None);
                self.error(format!("{context}: {message}"));
            }
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

fn apply_event(run: &mut RunView, event: TrainEvent) {
    match event {
        TrainEvent::Started { total_steps, trainable_params, computed_memory, baseline, .. } => {
            run.status = RunStatus::Running;
            run.baseline = Some(baseline);
            run.total_steps = total_steps;
            run.trainable = trainable_params;
            run.planned = Some(computed_memory);
        }
        TrainEvent::Step { step, loss, elapsed_seconds, examples_per_second, .. } => {
            run.step = step;
            run.examples_per_second = examples_per_second;
            run.elapsed = elapsed_seconds;
            run.losses.push((step as f64, loss));
            run.step_seconds.push(elapsed_seconds);
        }
        TrainEvent::Eval { step, metrics, .. } => run.accuracy.push((step as f64, metrics.accuracy)),
        TrainEvent::Drift { blocks } => {
            if let Some(summary) = run.summary.as_mut() {
                summary.drift = blocks;
            }
        }
        TrainEvent::Finished { summary } => {
            run.status = if summary.cancelled { RunStatus::Stopped } else { RunStatus::Done };
            run.elapsed = summary.wall_seconds;
            run.examples_per_second = summary.examples_per_second;
            run.summary = Some(*summary);
        }
    }
}
