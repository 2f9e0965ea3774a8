//! What the page's controls ask of the workers, the one place components reach the pool from:
//! the backend, the model and the data, runs (checked against the device first), the
//! equal-time race's second run, Stop, predictions, model downloads and the layers' probe.

use freezelab_protocol::freeze::FreezePlan;
use freezelab_protocol::memory;
use freezelab_protocol::messages::{BackendChoice, Column, DataSource, ModelSource, Origin, ToWorker, UserFile};
use freezelab_protocol::run::TrainConfig;
use leptos::prelude::*;

use crate::pool;
use crate::state::{Lab, RunStatus, RunView};

/// Queues a run of `column`'s plan with the current settings (the column's learning rate) and
/// pins it to that column.
pub fn train(lab: Lab, column: Column) -> Option<u32> {
    let lr = untrack(|| lab.column_lr(column));
    queue_with(lab, column.into(), lab.plan(column).get_untracked(), None, |c| c.lr = lr)
}

/// The most epochs B gets in the equal-time race: with the prefix cache a head-only epoch costs
/// milliseconds, and thousands of them would flood the page with events.
pub const RACE_MAX_EPOCHS: usize = 50;

/// "Train both": A, then B; in the equal-time race B starts once A is done, with A's training
/// time as its budget (`race_to_b` queues it).
pub fn train_both(lab: Lab) {
    let a = train(lab, Column::A);
    if lab.race.get_untracked() {
        lab.race_after.set(a);
    } else {
        train(lab, Column::B);
    }
}

/// Queues B once the run it races has finished, with that run's training time; drops the race
/// when that run failed or was stopped.
pub fn race_to_b(lab: Lab) {
    let Some(a) = lab.race_after.get() else { return };
    let Some((status, seconds)) = lab.runs.get(a).map(|r| (r.status, r.summary.map(|s| s.train_seconds))) else {
        return lab.race_after.set(None);
    };
    match (status, seconds) {
        (RunStatus::Done, Some(seconds)) => {
            lab.race_after.set(None);
            let lr = untrack(|| lab.column_lr(Column::B));
            let race = |c: &mut TrainConfig| {
                c.time_budget_seconds = Some(seconds.max(1e-3));
                c.epochs = RACE_MAX_EPOCHS;
                c.lr = lr;
            };
            queue_with(lab, Column::B.into(), lab.plan(Column::B).get_untracked(), None, race);
        }
        (RunStatus::Failed { .. } | RunStatus::Stopped, _) => lab.race_after.set(None),
        _ => {}
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
    let (Some(model), Some(dataset)) = (lab.model.get_untracked(), lab.dataset.get_untracked()) else {
        lab.error("load a model and a dataset first".into());
        return None;
    };
    let hyper = lab.hyper.get_untracked();
    let mut config = hyper.config(plan.clone());
    adjust(&mut config);
    if let Err(e) = config.validate() {
        lab.error(format!("{} not started: {e}", plan.label()));
        return None;
    }
    let backend = lab.backend.get_untracked();
    let limits = backend.as_ref().map(|b| b.limits).unwrap_or_default();
    let estimate = hyper.planned(&model, Some(&dataset), &plan);
    let largest = memory::largest_tensor_bytes(&model.shape, hyper.effective_batch(), hyper.max_len);
    if let Err(e) = memory::check_fits(&estimate, largest, &limits) {
        lab.error(format!("{} not started: {e}", plan.label()));
        return None;
    }
    let id = lab.new_run_id();
    let backend = backend.map(|b| b.kind).unwrap_or_default().name().to_string();
    let mut run = RunView::queued(id, origin, config.clone()).on(model.name, dataset.name, backend);
    run.sweep = sweep;
    // A time budget is one clock's: the race runs on one worker.
    let workers = if config.time_budget_seconds.is_some() { 1 } else { lab.run_workers.get_untracked() };
    run.workers = workers.min(lab.pool_size.get_untracked()).max(1);
    lab.runs.push(run);
    if let Some(column) = origin.column() {
        lab.pin(column, id);
    }
    pool::train(lab, id, origin, config, workers);
    Some(id)
}

/// Stops the running run and drops the queued ones (and a race's B, not yet queued).
pub fn stop(lab: Lab) {
    lab.race_after.set(None);
    pool::send(&ToWorker::Stop);
    lab.runs.update_where(|r| r.status == RunStatus::Queued, |run| run.status = RunStatus::Stopped);
}

/// Picks the backend: every worker hears it (a lead without WebGPU makes way for one with it).
pub fn choose_backend(lab: Lab, choice: BackendChoice) {
    lab.backend_choice.set(choice);
    pool::send(&ToWorker::Start { choice });
}

/// Loads a model in the lead worker (then in the others).
pub fn load_model(lab: Lab, source: ModelSource) {
    lab.model_busy.set(true);
    pool::send(&ToWorker::LoadModel { source, share: false });
}

/// Loads a dataset in the lead worker (then in the others).
pub fn load_dataset(lab: Lab, source: DataSource) {
    lab.dataset_busy.set(true);
    pool::send(&ToWorker::LoadDataset { source, share: false });
}

/// The columns and first rows of an uploaded file, before its columns are picked.
pub fn inspect(file: UserFile) {
    pool::send(&ToWorker::Inspect { file });
}

/// Classifies `text` with the runs pinned to the columns.
pub fn predict(lab: Lab, text: String) {
    let runs = Column::BOTH.iter().filter_map(|&c| lab.pinned.with_untracked(|p| p[c as usize]).map(|id| (c, id)));
    pool::send(&ToWorker::Predict { text, runs: runs.collect() });
}

/// Probes each block of the loaded model on the examples the page's settings pick (A's
/// learning settings play no part: nothing is trained).
pub fn probe(lab: Lab) {
    if lab.model.get_untracked().is_none() || lab.dataset.get_untracked().is_none() {
        return lab.error("probe: load a model and a dataset first".into());
    }
    let config = lab.hyper.get_untracked().config(lab.plan_a.get_untracked());
    if let Err(e) = config.validate() {
        return lab.error(format!("probe: {e}"));
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
