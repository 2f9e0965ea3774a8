//! The page's state: one `Lab` of signals in parts by owner (set-up, columns, results, the page's
//! own, the probe), each shared through context, and the reducer that folds worker messages into
//! it. Components read signals; only `apply` and user actions write them.
//! Each run has a signal of its own (`runs`), so a training step reaches only what shows that run.

use freezelab_protocol::freeze::FreezePlan;
use freezelab_protocol::messages::{
    BackendChoice, BackendInfo, BackendKind, Column, DatasetInfo, FilePreview, FromWorker, ModelInfo, Prediction,
    Request, UserFile,
};
use freezelab_protocol::readout::{ExampleMap, ProbeReport};
use leptos::prelude::*;

pub use crate::hyper::{Hyper, CACHE_LIMIT_BYTES, INTERIM_EVAL_EXAMPLES};
use crate::run::apply_event;
pub use crate::run::{RunStatus, RunView, IMPORTED};
use crate::runs::Runs;
use crate::share::Shared;
use freezelab_pool::race::Race;
use freezelab_protocol::manifest::Manifest;

/// The default pool: every core but the page's, at least two (a run each for A and B) and at
/// most four (each worker holds its own copy of the model and its training state).
fn default_pool_size() -> usize {
    let cores = web_sys::window().map_or(2.0, |w| w.navigator().hardware_concurrency()) as usize;
    cores.saturating_sub(1).clamp(2, 4)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub what: String,
    pub loaded: u64,
    pub total: Option<u64>,
}

/// The probe of each layer: the one in progress (id, examples pooled of all) and the latest
/// result; two signals, so progress does not redraw what shows the result.
#[derive(Clone, Copy)]
pub struct Probing {
    pub running: RwSignal<Option<(u32, usize, usize)>>,
    pub result: RwSignal<Option<(ProbeReport, ExampleMap)>>,
    next: RwSignal<u32>,
}

impl Probing {
    fn new() -> Self {
        Probing { running: RwSignal::new(None), result: RwSignal::new(None), next: RwSignal::new(1) }
    }

    /// The next probe's id (the worker cancels by it).
    pub fn new_id(&self) -> u32 {
        let id = self.next.get_untracked();
        self.next.set(id + 1);
        id
    }

    fn is(&self, probe_id: u32) -> bool {
        self.running.with_untracked(|r| r.is_some_and(|(id, _, _)| id == probe_id))
    }
}

/// What the set-up panel shows and the lead worker's answers fill: the assets on offer, the
/// backend, the model, the data and the settings.
#[derive(Clone, Copy)]
pub struct SetUp {
    pub manifest: RwSignal<Option<Manifest>>,
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
    pub download: RwSignal<Option<Download>>,
    /// A link's set-up whose freeze plans wait for the model to load.
    pub shared: RwSignal<Option<Shared>>,
}

/// Columns A and B: their plans and learning rates, the runs they show, and the race between.
#[derive(Clone, Copy)]
pub struct Columns {
    pub plan_a: RwSignal<FreezePlan>,
    pub plan_b: RwSignal<FreezePlan>,
    /// Column A's and B's encoder learning rate where the user set one; otherwise the mode's
    /// suggestion at the page's rate.
    pub lr_override: RwSignal<[Option<f64>; 2]>,
    /// The run shown in each column (A, B).
    pub pinned: RwSignal<[Option<u32>; 2]>,
    /// The equal-time race is on: B gets A's training time, the charts run against seconds.
    pub equal_time: RwSignal<bool>,
    /// The race's B, waiting for its A or not.
    pub race: RwSignal<Race>,
}

impl Columns {
    /// The editable plan of column A or B.
    pub fn plan(&self, column: Column) -> RwSignal<FreezePlan> {
        match column {
            Column::A => self.plan_a,
            Column::B => self.plan_b,
        }
    }

    /// The encoder learning rate `column` trains at: the user's, or its mode's suggestion at
    /// the page's rate `page_lr`.
    pub fn lr(&self, column: Column, page_lr: f64) -> f64 {
        let set = self.lr_override.with(|o| o[column as usize]);
        set.unwrap_or_else(|| self.plan(column).with(|p| p.mode.suggested_lr(page_lr)))
    }

    pub fn pin(&self, column: Column, id: u32) {
        self.pinned.update(|p| p[column as usize] = Some(id));
    }
}

/// Runs, past and present, and what was done with them: sweeps, downloads, kept models,
/// predictions.
#[derive(Clone, Copy)]
pub struct Results {
    pub runs: Runs,
    /// Whether a run is queued or training (a memo: a step does not wake its readers).
    busy: Memo<bool>,
    /// The sweep shown in the sweep panel (its first run id).
    pub sweep: RwSignal<Option<u32>>,
    /// The worker's latest model download: run id and `blob:` URL (valid until the next one).
    pub exported: RwSignal<Option<(u32, String)>>,
    /// Models kept in this browser: run id → bytes.
    pub kept: RwSignal<std::collections::HashMap<u32, u64>>,
    /// The next run's number.
    pub next_run: RwSignal<u32>,
    pub predictions: RwSignal<Option<Asked>>,
}

/// Try it's latest text and what came back for it.
#[derive(Clone)]
pub struct Asked {
    pub text: String,
    /// Each worker answers for the runs it holds: its answers add up here.
    pub answers: Vec<Prediction>,
    /// The runs asked about whose model no worker holds any more.
    pub gone: Vec<(Column, u32)>,
}

impl Results {
    /// The next run number.
    pub fn new_run_id(&self) -> u32 {
        let id = self.next_run.get_untracked();
        self.next_run.set(id + 1);
        id
    }

    pub fn busy(&self) -> bool {
        self.busy.get()
    }
}

/// The page's own: its errors, presentation mode, and the training workers' figures.
#[derive(Clone, Copy)]
pub struct Ui {
    pub errors: RwSignal<Vec<String>>,
    /// Presentation mode: advanced controls hidden, charts larger.
    pub presenting: RwSignal<bool>,
    pub worker_alive: RwSignal<bool>,
    /// The training workers: how many are up, training, waited for, and their heaps.
    pub pool: RwSignal<freezelab_pool::Status>,
    /// The most workers the pool may start (runs trained at once on the CPU).
    pub pool_size: RwSignal<usize>,
    /// Workers one run may use (data-parallel); 1: a run trains on one worker.
    pub run_workers: RwSignal<usize>,
}

impl Ui {
    pub fn error(&self, message: String) {
        self.errors.update(|e| e.push(message));
    }
}

/// The page's state, by owner. Every field is a signal, so each part is `Copy` and goes into
/// closures freely; [`Lab::provide`] puts each part in the context, so a component takes only
/// the parts it reads, or `Lab` where it calls actions (which take the whole state) or reads
/// across parts. What spans parts (the reducer, a link's set-up) is `Lab`'s.
#[derive(Clone, Copy)]
pub struct Lab {
    pub setup: SetUp,
    pub columns: Columns,
    pub results: Results,
    pub ui: Ui,
    pub probe: Probing,
}

impl Lab {
    pub fn new() -> Self {
        let runs = Runs::new();
        Lab {
            setup: SetUp {
                manifest: RwSignal::new(None),
                backend: RwSignal::new(None),
                backend_choice: RwSignal::new(BackendChoice::Auto),
                model: RwSignal::new(None),
                model_busy: RwSignal::new(false),
                dataset: RwSignal::new(None),
                dataset_busy: RwSignal::new(false),
                upload: RwSignal::new(None),
                preview: RwSignal::new(None),
                hyper: RwSignal::new(Hyper::for_backend(BackendKind::Cpu)),
                download: RwSignal::new(None),
                shared: RwSignal::new(None),
            },
            columns: Columns {
                plan_a: RwSignal::new(FreezePlan::none(0)),
                plan_b: RwSignal::new(FreezePlan::none(0)),
                lr_override: RwSignal::new([None, None]),
                pinned: RwSignal::new([None, None]),
                equal_time: RwSignal::new(false),
                race: RwSignal::new(Race::Idle),
            },
            results: Results {
                runs,
                busy: Memo::new(move |_| runs.any(|r| !r.finished())),
                sweep: RwSignal::new(None),
                exported: RwSignal::new(None),
                kept: RwSignal::new(Default::default()),
                next_run: RwSignal::new(1),
                predictions: RwSignal::new(None),
            },
            ui: Ui {
                errors: RwSignal::new(Vec::new()),
                presenting: RwSignal::new(false),
                worker_alive: RwSignal::new(false),
                pool: RwSignal::new(freezelab_pool::Status::default()),
                pool_size: RwSignal::new(default_pool_size()),
                run_workers: RwSignal::new(1),
            },
            probe: Probing::new(),
        }
    }

    /// Puts the state and each of its parts in the context.
    pub fn provide(self) {
        provide_context(self);
        provide_context(self.setup);
        provide_context(self.columns);
        provide_context(self.results);
        provide_context(self.ui);
        provide_context(self.probe);
    }

    /// The encoder learning rate column A or B trains at: the user's, or its mode's suggestion.
    pub fn column_lr(&self, column: Column) -> f64 {
        self.columns.lr(column, self.setup.hyper.with(|h| h.lr))
    }

    pub fn pinned_run(&self, column: Column) -> Option<RunView> {
        let id = self.columns.pinned.with(|p| p[column as usize])?;
        self.results.runs.get(id)
    }

    /// The set-up now, as a link holds it, if a model and dataset are loaded.
    pub fn link(&self) -> Option<Shared> {
        let (model, data) = (self.setup.model.get()?, self.setup.dataset.get()?);
        let h = self.setup.hyper.get();
        Some(Shared {
            model: model.name,
            data: data.name,
            train: h.train_size,
            eval: h.eval_size,
            epochs: h.epochs,
            batch: h.batch_size,
            len: h.max_len,
            lr: h.lr,
            seed: h.seed,
            cache: h.cache,
            plan_a: self.columns.plan_a.get().label(),
            plan_b: self.columns.plan_b.get().label(),
            present: self.ui.presenting.get(),
        })
    }

    /// The worker died: runs it had are failed, finished ones stay, and what it had loaded is
    /// gone (trained models for "Try it" included).
    pub fn worker_lost(&self) {
        self.ui.worker_alive.set(false);
        self.setup.model.set(None);
        self.setup.dataset.set(None);
        self.results.predictions.set(None);
        self.probe.running.set(None);
        let on_gpu = self.setup.backend.with_untracked(|b| b.as_ref().is_some_and(|b| b.kind == BackendKind::Webgpu));
        self.results.runs.update_where(
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
            FromWorker::Alive => self.ui.worker_alive.set(true),
            FromWorker::Backend { info } => {
                // Defaults follow the first backend, unless a link set them.
                if self.setup.backend.get_untracked().is_none() && self.setup.shared.get_untracked().is_none() {
                    self.setup.hyper.set(Hyper::for_backend(info.kind));
                }
                self.setup.backend.set(Some(info));
            }
            FromWorker::Progress { what, loaded, total } => {
                self.setup.download.set(Some(Download { what, loaded, total }))
            }
            FromWorker::ModelLoaded { info, .. } => {
                let n = info.num_layers();
                let linked = self.setup.shared.get_untracked().map(|s| s.plans(n));
                let (a, b) = match linked {
                    Some(Ok(plans)) => plans,
                    Some(Err(e)) => {
                        self.ui.error(format!("this link's freeze plans do not fit the model: {e}"));
                        (FreezePlan::none(n), FreezePlan::head_only(n))
                    }
                    None => (FreezePlan::none(n), FreezePlan::head_only(n)),
                };
                self.setup.shared.set(None);
                // A probe describes the model and data it ran on.
                self.probe.result.set(None);
                self.columns.plan_a.set(a);
                self.columns.plan_b.set(b);
                self.setup.model.set(Some(info));
                self.setup.model_busy.set(false);
                self.setup.download.set(None);
            }
            FromWorker::Inspected { preview } => self.setup.preview.set(Some(preview)),
            FromWorker::DatasetLoaded { info, .. } => {
                self.probe.result.set(None);
                self.setup.dataset.set(Some(info));
                self.setup.dataset_busy.set(false);
                self.setup.download.set(None);
            }
            FromWorker::Run { run_id, event, .. } => self.results.runs.update(run_id, |run| apply_event(run, event)),
            FromWorker::RunFailed { run_id, message, retry_on_cpu, .. } => {
                self.results.runs.update(run_id, |run| run.status = RunStatus::Failed { message, retry_on_cpu })
            }
            // The pool saves the file (a side effect, at the edge); here it is recorded.
            FromWorker::Exported { run_id, file, bytes } => {
                self.results.runs.update(run_id, |run| run.model_bytes = Some(bytes));
                self.results.exported.set(Some((run_id, file.url)));
            }
            FromWorker::Predictions { text, results } => self.results.predictions.update(|p| match p {
                Some(asked) if asked.text == text => asked.answers.extend(results),
                _ => *p = Some(Asked { text, answers: results, gone: Vec::new() }),
            }),
            FromWorker::Probing { probe_id, done, total } if self.probe.is(probe_id) => {
                self.probe.running.set(Some((probe_id, done, total)))
            }
            FromWorker::Probed { probe_id, report, map } if self.probe.is(probe_id) => {
                self.probe.running.set(None);
                self.probe.result.set(Some((report, map)));
            }
            // A cancelled probe's last words.
            FromWorker::Probing { .. } | FromWorker::Probed { .. } => {}
            // The pool keeps each worker's figures.
            FromWorker::Handled { .. } => {}
            FromWorker::Error { context, message } => {
                match context {
                    Request::Model => self.setup.model_busy.set(false),
                    Request::Dataset | Request::Upload => self.setup.dataset_busy.set(false),
                    Request::Probe => self.probe.running.set(None),
                    _ => {}
                }
                self.setup.download.set(None);
                self.ui.error(format!("{context}: {message}"));
            }
        }
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}
