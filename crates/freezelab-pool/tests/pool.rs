//! The pool's scheduling, event by event, with an edge that starts every worker it is asked for
//! at once (as the page's does): A and B at once, a sweep over K workers, data-parallel
//! replicas, a replica's failure, Stop, WebGPU's lone lead, a worker dying mid-run and the
//! restart, downloads and predictions routed to the workers holding the runs; the equal-time
//! race's B.

use std::collections::VecDeque;

use freezelab_pool::race::{self, Outcome, Race, RACE_MAX_EPOCHS};
use freezelab_pool::{Effect, Page, Pool, Queued, Status};
use freezelab_protocol::memory::DeviceLimits;
use freezelab_protocol::messages::{
    BackendChoice, BackendInfo, BackendKind, Column, DataSource, DatasetInfo, FromWorker, ModelSource, Origin, Request,
    Share, ToWorker,
};
use freezelab_protocol::run::{RunSummary, TrainConfig, TrainEvent};

/// A pool, the page it sees, and every effect it asked for.
struct Harness {
    pool: Pool,
    page: Page,
}

impl Harness {
    /// A pool of at most `size` workers whose lead is up (no WebGPU adapter).
    fn new(size: usize) -> Self {
        let mut h = Self::before_the_lead(size);
        h.run(|p, _| p.start());
        h.run(|p, page| p.adapter_found(page, None));
        h
    }

    fn before_the_lead(size: usize) -> Self {
        Self { pool: Pool::default(), page: Page { size, choice: BackendChoice::Cpu, on_gpu: false, alive: true } }
    }

    /// One event; every `Spawn` it leads to is answered at once and its effects performed before
    /// the rest, as the edge does. Returns every effect, in the order performed.
    fn run(&mut self, event: impl FnOnce(&mut Pool, &Page) -> Vec<Effect>) -> Vec<Effect> {
        let page = self.page;
        let mut pending: VecDeque<Effect> = event(&mut self.pool, &page).into();
        let mut performed = Vec::new();
        while let Some(effect) = pending.pop_front() {
            if let Effect::Spawn { gpu } = effect {
                for next in self.pool.spawned(&page, gpu).into_iter().rev() {
                    pending.push_front(next);
                }
            }
            performed.push(effect);
        }
        performed
    }

    fn request(&mut self, message: ToWorker) -> Vec<Effect> {
        self.run(|p, page| p.on_request(page, message))
    }

    fn said(&mut self, worker: usize, message: FromWorker) -> Vec<Effect> {
        self.run(|p, page| p.on_message(page, worker, message))
    }

    fn train(&mut self, run_id: u32, origin: Origin, workers: usize) -> Vec<Effect> {
        self.run(|p, page| p.train(page, Queued { run_id, origin, config: TrainConfig::default(), workers }))
    }

    /// Worker `worker` finished run `run_id` and is free again.
    fn finish(&mut self, worker: usize, run_id: u32) -> Vec<Effect> {
        let summary = Box::new(RunSummary::default());
        let mut out = self.said(worker, FromWorker::Run { run_id, event: TrainEvent::Finished { summary } });
        out.extend(self.said(worker, FromWorker::Handled { request: Request::Train, heap_bytes: 1 << 20 }));
        out
    }

    fn status(&self) -> Status {
        match self.pool.status() {
            Effect::Status(s) => s,
            other => panic!("{other:?}"),
        }
    }
}

/// The runs handed out among `effects`: (workers, run id, replica shares).
fn trains(effects: &[Effect]) -> Vec<(Vec<usize>, u32, Vec<Option<Share>>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Train { workers, messages } => {
                let run = match &messages[0] {
                    ToWorker::Train { run_id, .. } => *run_id,
                    other => panic!("{other:?}"),
                };
                let shares = messages
                    .iter()
                    .map(|m| match m {
                        ToWorker::Train { replica, .. } => *replica,
                        other => panic!("{other:?}"),
                    })
                    .collect();
                Some((workers.clone(), run, shares))
            }
            _ => None,
        })
        .collect()
}

/// What `effects` post to `worker`.
fn posts(effects: &[Effect], worker: usize) -> Vec<ToWorker> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Post { worker: w, message } if *w == worker => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn spawns(effects: &[Effect]) -> usize {
    effects.iter().filter(|e| matches!(e, Effect::Spawn { .. })).count()
}

fn errors(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Error(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn data(id: &str) -> DataSource {
    DataSource::Prepared { id: id.into(), train: format!("{id}/train"), validation: format!("{id}/val"), stage: None }
}

fn loaded(shared: Option<DataSource>) -> FromWorker {
    let info = DatasetInfo {
        name: "spam".into(),
        labels: vec!["ham".into(), "spam".into()],
        train_counts: vec![1, 1],
        validation_counts: vec![1, 1],
    };
    FromWorker::DatasetLoaded { info, shared }
}

fn model() -> ToWorker {
    let source =
        ModelSource::Prepared { id: "minilm".into(), base: "models/minilm".into(), weights: "w".into(), stage: None };
    ToWorker::LoadModel { source, share: false }
}

const A: Origin = Origin::Column(Column::A);
const B: Origin = Origin::Column(Column::B);

#[test]
fn a_and_b_train_at_once_and_the_second_worker_loads_the_leads_shared_bytes() {
    let mut h = Harness::before_the_lead(2);
    h.run(|p, _| p.start());
    // Asked before the lead is up: held by the pool, told to the lead when it starts.
    assert!(h
        .request(ToWorker::Start { choice: BackendChoice::Cpu })
        .iter()
        .all(|e| !matches!(e, Effect::Post { .. })));
    h.request(ToWorker::LoadDataset { source: data("spam"), share: false });
    let up = h.run(|p, page| p.adapter_found(page, None));
    assert_eq!(up[0], Effect::Spawn { gpu: false });
    assert_eq!(
        posts(&up, 0),
        [ToWorker::Start { choice: BackendChoice::Cpu }, ToWorker::LoadDataset { source: data("spam"), share: true }]
    );
    // The lead shares what it loaded; there is no other worker to tell yet.
    assert!(posts(&h.said(0, loaded(Some(data("blob")))), 1).is_empty());
    let a = h.train(1, A, 1);
    assert_eq!(trains(&a), [(vec![0], 1, vec![None])]);
    assert_eq!(spawns(&a), 0);
    // B finds no free worker: a second one starts, hears the choice and the shared bytes, trains B.
    let b = h.train(2, B, 1);
    assert_eq!(spawns(&b), 1);
    assert_eq!(
        posts(&b, 1),
        [ToWorker::Start { choice: BackendChoice::Cpu }, ToWorker::LoadDataset { source: data("blob"), share: false }]
    );
    assert_eq!(trains(&b), [(vec![1], 2, vec![None])]);
    assert_eq!(h.status(), Status { up: 2, busy: 2, queued: 0, heap_bytes: 0 });
}

#[test]
fn a_sweep_takes_turns_on_k_workers() {
    let mut h = Harness::new(3);
    let mut handed = Vec::new();
    for run in 1..=5 {
        handed.extend(trains(&h.train(run, Origin::Sweep, 1)));
    }
    assert_eq!(handed, [(vec![0], 1, vec![None]), (vec![1], 2, vec![None]), (vec![2], 3, vec![None])]);
    assert_eq!(h.status(), Status { up: 3, busy: 3, queued: 2, heap_bytes: 0 });
    // Whichever worker frees first takes the oldest waiting run.
    assert_eq!(trains(&h.finish(1, 2)), [(vec![1], 4, vec![None])]);
    assert_eq!(trains(&h.finish(0, 1)), [(vec![0], 5, vec![None])]);
    assert!(trains(&h.finish(2, 3)).is_empty());
    assert_eq!(h.status(), Status { up: 3, busy: 2, queued: 0, heap_bytes: 3 << 20 });
}

#[test]
fn a_data_parallel_run_takes_free_workers_as_replicas_and_the_first_answers_for_it() {
    let mut h = Harness::new(3);
    h.train(1, A, 1);
    // Two replicas wanted, none free: two more workers start, then the run goes to both.
    let run = h.train(2, B, 2);
    assert_eq!(spawns(&run), 2);
    let shares = vec![Some(Share { index: 0, count: 2 }), Some(Share { index: 1, count: 2 })];
    assert_eq!(trains(&run), [(vec![1, 2], 2, shares)]);
    let step = |loss| FromWorker::Run {
        run_id: 2,
        event: TrainEvent::Step { step: 1, epoch: 0, loss, lr: 1e-4, examples_per_second: 8.0, elapsed_seconds: 1.0 },
    };
    assert!(matches!(h.said(1, step(0.5))[..], [Effect::Page(_)]), "the first replica's events reach the page");
    assert!(h.said(2, step(0.5)).is_empty(), "the second replica's do not");
    // Stop: every worker hears it, and the replicas that their run ended.
    let stop = h.request(ToWorker::Stop);
    for worker in 0..3 {
        assert_eq!(posts(&stop, worker)[0], ToWorker::Stop);
    }
    assert_eq!(posts(&stop, 1)[1..], [ToWorker::RunEnded { run_id: 2 }]);
    assert_eq!(posts(&stop, 2)[1..], [ToWorker::RunEnded { run_id: 2 }]);
    assert!(posts(&stop, 0)[1..].is_empty());
}

#[test]
fn a_run_asks_for_at_most_the_pools_size() {
    let mut h = Harness::new(2);
    let run = h.train(1, A, 5);
    assert_eq!(
        trains(&run),
        [(vec![0, 1], 1, vec![Some(Share { index: 0, count: 2 }), Some(Share { index: 1, count: 2 })])]
    );
}

#[test]
fn a_replicas_failure_ends_the_run_on_the_others_and_is_told_once() {
    let mut h = Harness::new(2);
    h.train(7, A, 2);
    let failed = |m: &str| FromWorker::RunFailed { run_id: 7, message: m.into(), retry_on_cpu: false };
    let first = h.said(1, failed("out of memory"));
    assert_eq!(posts(&first, 0), [ToWorker::RunEnded { run_id: 7 }]);
    assert_eq!(posts(&first, 1), [ToWorker::RunEnded { run_id: 7 }]);
    assert!(first.contains(&Effect::Page(failed("out of memory"))));
    assert!(h.said(0, failed("the run ended")).is_empty(), "the second failure is not told");
}

#[test]
fn stop_drops_the_queued_runs() {
    let mut h = Harness::new(1);
    h.train(1, A, 1);
    h.train(2, B, 1);
    assert_eq!(h.status().queued, 1);
    h.request(ToWorker::Stop);
    assert_eq!(h.status().queued, 0);
    assert!(trains(&h.finish(0, 1)).is_empty(), "run 2 was dropped");
}

#[test]
fn on_webgpu_the_lead_trains_alone() {
    let mut h = Harness::new(2);
    h.train(1, A, 1);
    h.train(2, B, 1);
    let info = BackendInfo {
        kind: BackendKind::Webgpu,
        adapter: Some("an adapter".into()),
        fallback: false,
        note: None,
        limits: DeviceLimits::default(),
    };
    let told = h.said(0, FromWorker::Backend { info: info.clone() });
    assert_eq!(told[0], Effect::Terminate { from: 1 });
    assert!(matches!(&told[1], Effect::FailRun { run_id: 2, .. }));
    assert_eq!(told.last(), Some(&Effect::Page(FromWorker::Backend { info })));
    h.page.on_gpu = true;
    h.finish(0, 1);
    // A data-parallel run is one worker's there, and no worker starts.
    let run = h.train(3, A, 2);
    assert_eq!((spawns(&run), trains(&run)), (0, vec![(vec![0], 3, vec![None])]));
}

#[test]
fn a_choice_that_needs_webgpu_replaces_a_lead_without_it() {
    let mut h = Harness::before_the_lead(2);
    h.run(|p, _| p.start());
    // A hardware adapter, but the CPU chosen: the lead loads the CPU bundle.
    assert_eq!(h.run(|p, page| p.adapter_found(page, Some(false)))[0], Effect::Spawn { gpu: false });
    h.request(ToWorker::LoadDataset { source: data("spam"), share: false });
    h.said(0, loaded(None));
    h.page.choice = BackendChoice::AnyGpu;
    let replaced = h.request(ToWorker::Start { choice: BackendChoice::AnyGpu });
    assert_eq!(replaced[..3], [Effect::WorkersLost, Effect::Terminate { from: 0 }, Effect::FindAdapter]);
    let up = h.run(|p, page| p.adapter_found(page, Some(false)));
    assert_eq!(up[0], Effect::Spawn { gpu: true });
    assert_eq!(
        posts(&up, 0),
        [
            ToWorker::Start { choice: BackendChoice::AnyGpu },
            ToWorker::LoadDataset { source: data("spam"), share: true }
        ]
    );
}

#[test]
fn a_worker_dying_mid_run_restarts_the_pool_once_with_what_had_loaded() {
    let mut h = Harness::new(2);
    h.request(ToWorker::Start { choice: BackendChoice::Cpu });
    h.request(ToWorker::LoadDataset { source: data("spam"), share: false });
    h.said(0, loaded(None));
    h.train(1, A, 1);
    // A model the lead died on: dropped with its message, never asked again.
    h.request(model());
    let died = h.run(|p, page| p.on_worker_error(page));
    assert!(died.contains(&Effect::Page(FromWorker::Error {
        context: Request::Model,
        message: "the training worker stopped while loading this; the previous one is kept".into(),
    })));
    assert_eq!(
        errors(&died),
        ["a training worker stopped with an error; the workers were restarted and finished runs are kept"]
    );
    assert!(died.contains(&Effect::WorkersLost) && died.contains(&Effect::Terminate { from: 0 }));
    assert!(died.contains(&Effect::FindAdapter));
    assert_eq!(h.status(), Status::default());
    let up = h.run(|p, page| p.adapter_found(page, None));
    assert_eq!(
        posts(&up, 0),
        [ToWorker::Start { choice: BackendChoice::Cpu }, ToWorker::LoadDataset { source: data("spam"), share: true }]
    );
    // A second death before anything succeeded: no third start.
    gives_up(&mut h, "stopped again after a restart");
}

/// A worker dies and the pool does not start again: no new lead, and the page is told `why`.
fn gives_up(h: &mut Harness, why: &str) {
    let died = h.run(|p, page| p.on_worker_error(page));
    assert!(!died.contains(&Effect::FindAdapter), "{died:?}");
    assert!(errors(&died)[0].contains(why), "{died:?}");
}

#[test]
fn after_a_success_a_later_death_restarts_again() {
    let mut h = Harness::new(1);
    h.run(|p, page| p.on_worker_error(page));
    h.run(|p, page| p.adapter_found(page, None));
    h.train(1, A, 1);
    h.finish(0, 1);
    assert!(h.run(|p, page| p.on_worker_error(page)).contains(&Effect::FindAdapter));
}

#[test]
fn a_lead_that_never_started_is_not_restarted() {
    let mut h = Harness::new(1);
    h.page.alive = false;
    gives_up(&mut h, "could not start");
}

#[test]
fn predictions_and_downloads_go_to_the_workers_holding_the_runs() {
    let mut h = Harness::new(2);
    h.train(1, A, 1);
    h.train(2, B, 1);
    h.finish(0, 1);
    h.finish(1, 2);
    let asked = h.request(ToWorker::Predict { text: "hi".into(), runs: vec![(Column::A, 1), (Column::B, 2)] });
    assert_eq!(asked[0], Effect::Predicting { text: "hi".into(), gone: vec![] });
    assert_eq!(posts(&asked, 0), [ToWorker::Predict { text: "hi".into(), runs: vec![(Column::A, 1)] }]);
    assert_eq!(posts(&asked, 1), [ToWorker::Predict { text: "hi".into(), runs: vec![(Column::B, 2)] }]);
    assert_eq!(posts(&h.request(ToWorker::Export { run_id: 2 }), 1), [ToWorker::Export { run_id: 2 }]);
    // A worker keeps one run per column: A's next run replaces run 1 there.
    h.train(3, A, 1);
    h.finish(0, 3);
    assert!(errors(&h.request(ToWorker::Export { run_id: 1 }))[0].contains("no longer in memory"));
    // Asked about it anyway (pinned to A again), the page hears that it is gone.
    let asked = h.request(ToWorker::Predict { text: "hi".into(), runs: vec![(Column::A, 1), (Column::B, 2)] });
    assert_eq!(asked[0], Effect::Predicting { text: "hi".into(), gone: vec![(Column::A, 1)] });
    assert!(posts(&asked, 0).is_empty());
    assert_eq!(posts(&asked, 1), [ToWorker::Predict { text: "hi".into(), runs: vec![(Column::B, 2)] }]);
}

#[test]
fn the_races_b_starts_once_its_a_is_done_with_as_train_time() {
    let mut race = Race::after(Some(7));
    assert_eq!(race.awaits(), Some(7));
    assert_eq!(race.heard(7, Outcome::Running), None);
    // Another run's end is not A's.
    assert_eq!(race.heard(8, Outcome::Done { train_seconds: 3.0 }), None);
    assert_eq!(race.heard(7, Outcome::Done { train_seconds: 2.5 }), Some(2.5));
    assert_eq!(race, Race::Idle);
    // Heard again (the page's effect reruns): B is not queued twice.
    assert_eq!(race.heard(7, Outcome::Done { train_seconds: 2.5 }), None);

    let mut config = TrainConfig::default();
    race::b_settings(&mut config, 2.5);
    assert_eq!((config.time_budget_seconds, config.epochs), (Some(2.5), RACE_MAX_EPOCHS));
}

#[test]
fn the_races_b_is_dropped_when_a_fails_or_is_stopped_or_never_started() {
    let mut failed = Race::after(Some(3));
    assert_eq!(failed.heard(3, Outcome::Ended), None);
    assert_eq!(failed, Race::Idle);

    let mut stopped = Race::after(Some(3));
    stopped.stop();
    assert_eq!(stopped.heard(3, Outcome::Done { train_seconds: 1.0 }), None);

    assert_eq!(Race::after(None), Race::Idle);
    // An A that trained for no measurable time still gives B a budget it can run under.
    assert_eq!(Race::after(Some(1)).heard(1, Outcome::Done { train_seconds: 0.0 }), Some(1e-3));
}
