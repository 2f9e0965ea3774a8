//! What the page's controls ask of the workers, the one place components reach the pool from:
//! the backend, the model and the data, runs (checked against the device first), the
//! equal-time race's second run, Stop, predictions, model downloads and the layers' probe.

use freezelab_protocol::freeze::FreezePlan;
use freezelab_protocol::memory;
use freezelab_protocol::messages::{BackendChoice, Column, DataSource, ModelSource, Origin, ToWorker, UserFile};
use freezelab_protocol::run::TrainConfig;
use leptos::prelude::*;

use freezelab_pool::race::{self, Outcome, Race};

use crate::pool;
use crate::state::{Lab, RunStatus, RunView};

/// Queues a run of `column`'s plan with the current settings (the column's learning rate) and
/// pins it to that column.
pub fn train(lab: Lab, column: Column) -> Option<u32> {
    let lr = untrack(|| lab.column_lr(column));
    queue_with(lab, column.into(), lab.columns.plan(column).get_untracked(), None, |c| c.lr = lr)
}

/// "Train both": A, then B; in the equal-time race B waits for A's end (`race_to_b` queues it).
pub fn train_both(lab: Lab) {
    let a = train(lab, Column::A);
    if lab.columns.equal_time.get_untracked() {
        lab.columns.race.set(Race::after(a));
    } else {
        train(lab, Column::B);
    }
}

/// Tells the race what became of the run its B waits for (tracked: the page calls this from an
/// effect), and queues B with A's training time when the race says so.
pub fn race_to_b(lab: Lab) {
    let Some(a) = lab.columns.race.with(Race::awaits) else { return };
    let outcome = match lab.results.runs.get(a) {
        Some(run) => match (run.status, run.summary) {
            (RunStatus::Done, Some(summary)) => Outcome::Done { train_seconds: summary.train_seconds },
            (RunStatus::Failed { .. } | RunStatus::Stopped, _) => Outcome::Ended,
            _ => Outcome::Running,
        },
        None => Outcome::Ended,
    };
    let mut now = lab.columns.race.get_untracked();
    let budget = now.heard(a, outcome);
    if now != lab.columns.race.get_untracked() {
        lab.columns.race.set(now);
    }
    if let Some(budget) = budget {
        let lr = untrack(|| lab.column_lr(Column::B));
        let settings = |c: &mut TrainConfig| {
            race::b_settings(c, budget);
            c.lr = lr;
        };
        queue_with(lab, Column::B.into(), lab.columns.plan(Column::B).get_untracked(), None, settings);
    }
}

/// Queues a run of `plan` with the current settings, unless the device cannot hold it (the
/// computed estimate is checked first; a refusal is reported in the page). Returns its id; a
/// column's run is pinned to that column.
pub fn queue(lab: Lab, origin: Origin, plan: FreezePlan, sweep: Option<u32>) -> Option<u32> {
    queue_with(lab, origin, plan, sweep, |_| {})
}

/// [`queue`], the settings adjusted by `adjust` first.
fn queue_with(
    lab: Lab,
    origin: Origin,
    plan: FreezePlan,
    sweep: Option<u32>,
    adjust: impl FnOnce(&mut TrainConfig),
) -> Option<u32> {
    let (Some(model), Some(dataset)) = (lab.setup.model.get_untracked(), lab.setup.dataset.get_untracked()) else {
        lab.ui.error("load a model and a dataset first".into());
        return None;
    };
    let hyper = lab.setup.hyper.get_untracked();
    let mut config = hyper.config(plan.clone());
    adjust(&mut config);
    if let Err(e) = config.validate() {
        lab.ui.error(format!("{} not started: {e}", plan.label()));
        return None;
    }
    let backend = lab.setup.backend.get_untracked();
    let limits = backend.as_ref().map(|b| b.limits).unwrap_or_default();
    let estimate = hyper.planned(&model, Some(&dataset), &plan);
    let largest = memory::largest_tensor_bytes(&model.shape, hyper.effective_batch(), hyper.max_len);
    if let Err(e) = memory::check_fits(&estimate, largest, &limits) {
        lab.ui.error(format!("{} not started: {e}", plan.label()));
        return None;
    }
    let id = lab.results.new_run_id();
    let backend = backend.map(|b| b.kind).unwrap_or_default().name().to_string();
    let mut run = RunView::queued(id, origin, config.clone()).on(model.name, dataset.name, backend);
    run.sweep = sweep;
    // A time budget is one clock's: the race runs on one worker.
    let workers = if config.time_budget_seconds.is_some() { 1 } else { lab.ui.run_workers.get_untracked() };
    run.workers = workers.min(lab.ui.pool_size.get_untracked()).max(1);
    lab.results.runs.push(run);
    if let Some(column) = origin.column() {
        lab.columns.pin(column, id);
    }
    pool::train(lab, id, origin, config, workers);
    Some(id)
}

/// Stops the running run and drops the queued ones (and a race's B, not yet queued).
pub fn stop(lab: Lab) {
    lab.columns.race.update(Race::stop);
    pool::send(&ToWorker::Stop);
    lab.results.runs.update_where(|r| r.status == RunStatus::Queued, |run| run.status = RunStatus::Stopped);
}

/// Picks the backend: every worker hears it (a lead without WebGPU makes way for one with it).
pub fn choose_backend(lab: Lab, choice: BackendChoice) {
    lab.setup.backend_choice.set(choice);
    pool::send(&ToWorker::Start { choice });
}

/// Loads a model in the lead worker (then in the others).
pub fn load_model(lab: Lab, source: ModelSource) {
    lab.setup.model_busy.set(true);
    pool::send(&ToWorker::LoadModel { source, share: false });
}

/// Loads a dataset in the lead worker (then in the others).
pub fn load_dataset(lab: Lab, source: DataSource) {
    lab.setup.dataset_busy.set(true);
    pool::send(&ToWorker::LoadDataset { source, share: false });
}

/// The columns and first rows of an uploaded file, before its columns are picked.
pub fn inspect(file: UserFile) {
    pool::send(&ToWorker::Inspect { file });
}

/// Classifies `text` with the runs pinned to the columns.
pub fn predict(lab: Lab, text: String) {
    let runs =
        Column::BOTH.iter().filter_map(|&c| lab.columns.pinned.with_untracked(|p| p[c as usize]).map(|id| (c, id)));
    pool::send(&ToWorker::Predict { text, runs: runs.collect() });
}

/// Probes each block of the loaded model on the examples the page's settings pick (A's
/// learning settings play no part: nothing is trained).
pub fn probe(lab: Lab) {
    if lab.setup.model.get_untracked().is_none() || lab.setup.dataset.get_untracked().is_none() {
        return lab.ui.error("probe: load a model and a dataset first".into());
    }
    let config = lab.setup.hyper.get_untracked().config(lab.columns.plan_a.get_untracked());
    if let Err(e) = config.validate() {
        return lab.ui.error(format!("probe: {e}"));
    }
    let probe_id = lab.probe.new_id();
    lab.probe.running.set(Some((probe_id, 0, 0)));
    pool::send(&ToWorker::Probe { probe_id, config });
}

/// Stops the probe in progress; the page forgets it at once.
pub fn cancel_probe(lab: Lab) {
    if let Some((probe_id, _, _)) = lab.probe.running.get_untracked() {
        lab.probe.running.set(None);
        pool::send(&ToWorker::CancelProbe { probe_id });
    }
}

/// Asks the worker holding `run_id` for its model folder as a zip.
pub fn export(run_id: u32) {
    pool::send(&ToWorker::Export { run_id });
}
