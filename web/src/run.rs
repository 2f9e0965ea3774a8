//! One run as the page knows it, from request to summary, and how a worker's event changes it.
//! Finished runs are saved as they are (`store`), so the fields are serde.

use freezelab_protocol::memory::ComputedMemory;
use freezelab_protocol::messages::Origin;
use freezelab_protocol::metrics::Baseline;
use freezelab_protocol::run::{RunSummary, TrainConfig, TrainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    Queued,
    Running,
    Done,
    Stopped,
    Failed { message: String, retry_on_cpu: bool },
}

impl RunStatus {
    /// The state's name, as the CSV export writes it.
    pub fn name(&self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::Running => "Running",
            RunStatus::Done => "Done",
            RunStatus::Stopped => "Stopped",
            RunStatus::Failed { .. } => "Failed",
        }
    }
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
    /// A run requested now, not started yet; what it trains on comes with [`RunView::on`].
    pub fn queued(id: u32, origin: Origin, config: TrainConfig) -> Self {
        RunView {
            id,
            origin,
            config,
            model: String::new(),
            dataset: String::new(),
            backend: String::new(),
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

    /// The run, named for the model, the dataset and the backend it trains on.
    pub fn on(self, model: String, dataset: String, backend: String) -> Self {
        RunView { model, dataset, backend, ..self }
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

pub fn apply_event(run: &mut RunView, event: TrainEvent) {
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
        TrainEvent::Examples { map } => {
            if let Some(summary) = run.summary.as_mut() {
                summary.examples = Some(map);
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
