//! The page's end of the training workers: a pool of dedicated Web Workers, one run each at a
//! time, so the tab trains on several cores (wasm threads would need a nightly toolchain).
//!
//! The first worker (the lead) answers everything about set-up: backend, downloads, previews.
//! It downloads a model and a dataset once and shares the bytes as `blob:` URLs; every other
//! worker loads from those. Runs wait in the page until a worker is free; a new worker is started
//! when all are busy and the pool is below `Lab::pool_size`. On WebGPU the pool is the lead
//! alone: the workers would share one adapter whose memory WebGPU does not report.
//! A data-parallel run takes several workers at once (replicas), linked by `MessageChannel`s the
//! pool hands out with the run: the first replica adds the others' gradients and sends back the
//! sum, worker to worker (crates/freezelab-worker/src/replica.rs), so the page's thread carries
//! none of it; the first replica answers for the run (its events, its model), the others only
//! train. The pool tells the replicas when a run ended, so none waits for ever.
//! Requests made before a worker's wasm runs are held: a worker drops what arrives before it
//! has a handler.
//! Two worker bundles: every CPU worker loads the CPU-only one; the lead loads the one with
//! WebGPU when the backend choice would train on the adapter the page found ([`adapter`]), and
//! the pool starts again from a new lead when a choice needs WebGPU the lead lacks.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};

use freezelab_protocol::messages::{BackendKind, Column, FromWorker, Origin, Request, Share, ToWorker};
use freezelab_protocol::run::{TrainConfig, TrainEvent};
use js_sys::Array;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::{MessageChannel, MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::state::{Lab, PoolStatus, RunStatus};
use crate::{adapter, download, json};

/// The loaders Trunk writes next to the workers' wasm (web/index.html, data-loader-shim): the
/// bundle with every backend, and the CPU-only one.
const GPU_WORKER: &str = "./freezelab-worker_loader.js";
const CPU_WORKER: &str = "./freezelab-worker-cpu_loader.js";

struct Slot {
    worker: Worker,
    /// Its bundle has the WebGPU backend.
    gpu: bool,
    /// Requests (and what they transfer) held until its wasm says it is alive; `None` once it is.
    pending: Option<Vec<(JsValue, Array)>>,
    /// The run it trains now: who asked for it, and which replica this worker is.
    running: Option<Running>,
    /// The run whose model it keeps for each origin (as its shelf does).
    trained: HashMap<Origin, u32>,
    heap_bytes: u64,
}

impl Slot {
    fn deliver(&mut self, value: JsValue) {
        self.deliver_with(value, Array::new());
    }

    /// Delivers `value` with objects it transfers (ports).
    fn deliver_with(&mut self, value: JsValue, transfer: Array) {
        match self.pending.as_mut() {
            Some(held) => held.push((value, transfer)),
            // Posting only fails for values that cannot be cloned; ours are plain objects and ports.
            None => drop(self.worker.post_message_with_transfer(&value, &transfer)),
        }
    }

    fn holds(&self, run_id: u32) -> bool {
        self.trained.values().any(|&id| id == run_id)
    }
}

#[derive(Clone, Copy)]
struct Running {
    run_id: u32,
    origin: Origin,
    replica: usize,
}

/// A run waiting for `workers` free workers.
struct Queued {
    run_id: u32,
    origin: Origin,
    config: TrainConfig,
    workers: usize,
}

#[derive(Default)]
struct Pool {
    lab: Option<Lab>,
    slots: Vec<Slot>,
    /// Runs waiting for free workers, oldest first.
    queue: VecDeque<Queued>,
    /// Data-parallel runs in flight.
    replicated: HashSet<u32>,
    /// Data-parallel runs a replica's failure ended (the others' failures are not told again).
    failed: HashSet<u32>,
    /// What a new worker is told before its first run: the backend choice, then the model and
    /// the dataset ([`MODEL`], [`DATA`]; from the lead's shared bytes once it has shared them).
    start: Option<ToWorker>,
    loads: [Option<ToWorker>; 2],
    /// The page's own model and data requests that the lead loaded, replayed when the workers
    /// are replaced (the shared bytes died with the lead).
    asked: [Option<ToWorker>; 2],
    /// Requests sent to the lead and not yet answered, oldest first: each becomes `asked` when
    /// the lead says it loaded, and is dropped when it refuses (or dies on) it. A request that
    /// killed a worker is so never replayed.
    unanswered: [VecDeque<ToWorker>; 2],
    /// The workers were replaced and no request has succeeded since: a second death now is not
    /// followed by a third start.
    restarted: bool,
    /// The WebGPU adapter the page found when it last started a lead: `Some(fallback)`.
    adapter: Option<bool>,
}

impl Pool {
    /// The requests no lead has answered, model ones first, each kind oldest first.
    fn take_unanswered(&mut self) -> Vec<ToWorker> {
        self.unanswered.iter_mut().flat_map(|q| q.drain(..)).collect()
    }
}

/// Places in `Pool::loads` and `Pool::asked`.
const MODEL: usize = 0;
const DATA: usize = 1;

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

fn encode(message: &ToWorker) -> JsValue {
    json::to_value(message).expect("protocol messages serialise")
}

/// Starts the lead worker, once the page knows which bundle it needs; the workers' messages
/// update `lab`. What is sent meanwhile reaches it when it starts (`Pool::start`, `Pool::loads`).
pub fn spawn(lab: Lab) {
    POOL.with(|p| p.borrow_mut().lab = Some(lab));
    leptos::task::spawn_local(async move {
        let found = adapter::webgpu().await;
        POOL.with(|p| p.borrow_mut().adapter = found);
        if let Err(e) = add_worker(lab, takes_gpu(lab)) {
            lab.error(e);
        }
    });
}

/// Whether the backend choice trains on the adapter the page found.
fn takes_gpu(lab: Lab) -> bool {
    let choice = lab.backend_choice.get_untracked();
    POOL.with(|p| p.borrow().adapter.is_some_and(|fallback| choice.takes_gpu(fallback)))
}

/// Starts one more worker (from the bundle with WebGPU when `gpu`) and tells it what the pool
/// was told so far.
fn add_worker(lab: Lab, gpu: bool) -> Result<usize, String> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Classic);
    let worker = Worker::new_with_options(if gpu { GPU_WORKER } else { CPU_WORKER }, &options)
        .map_err(|e| format!("a training worker could not start: {e:?}"))?;
    let index = POOL.with(|p| p.borrow().slots.len());
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        match FromWorker::decode(&js_sys::Uint8Array::new(&event.data()).to_vec()) {
            Ok(message) => received(lab, index, message),
            Err(e) => lab.error(format!("unreadable message from a training worker: {e}")),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| lost(lab));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        let mut slot =
            Slot { worker, gpu, pending: Some(Vec::new()), running: None, trained: HashMap::new(), heap_bytes: 0 };
        for message in std::iter::once(&pool.start).chain(&pool.loads).flatten() {
            slot.deliver(encode(message));
        }
        // A new lead also gets the requests no lead has answered (sent while there was none).
        if pool.slots.is_empty() {
            pool.unanswered.iter().flatten().for_each(|message| slot.deliver(encode(message)));
        }
        pool.slots.push(slot);
    });
    status(lab);
    Ok(index)
}

/// A worker died (a panic, a lost device): every worker goes, runs they had are failed,
/// finished runs stay, and the lead starts again with the same backend choice, model and data
/// (uploads included: their `blob:` URLs live as long as the page). One that never started is
/// not retried in a loop.
fn lost(lab: Lab) {
    let (again, dropped) = POOL.with(|p| {
        let mut pool = p.borrow_mut();
        (pool.restarted, pool.take_unanswered())
    });
    // What the worker was loading when it died is not asked of the new one: the last model and
    // data that loaded come back instead.
    for request in dropped {
        let context = Request::of(&request);
        lab.apply(FromWorker::Error {
            context,
            message: "the training worker stopped while loading this; the previous one is kept".into(),
        });
    }
    if !lab.worker_alive.get_untracked() || again {
        lab.worker_lost();
        stop_workers();
        status(lab);
        let what = if again { "stopped again after a restart" } else { "could not start" };
        return lab.error(format!("the training worker {what} (see the browser console); reload the page"));
    }
    lab.error("a training worker stopped with an error; the workers were restarted and finished runs are kept".into());
    POOL.with(|p| p.borrow_mut().restarted = true);
    restart(lab);
}

/// Every worker goes; a new lead (the bundle the backend choice needs) starts with what the
/// page asked for: the backend choice, the model and the data. Finished runs stay.
/// Requests the old lead had not answered yet are asked again, after what it had loaded (a lead
/// that died has had them dropped first, in [`lost`]).
fn restart(lab: Lab) {
    lab.worker_lost();
    let (start, asked, unanswered) = stop_workers();
    spawn(lab);
    for message in std::iter::once(start).chain(asked).flatten().chain(unanswered) {
        send(&message);
    }
}

/// Terminates every worker and forgets what they were doing: the backend choice, the page's own
/// model and data requests that loaded, and those not yet answered are what remains.
fn stop_workers() -> (Option<ToWorker>, [Option<ToWorker>; 2], Vec<ToWorker>) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        for slot in pool.slots.drain(..) {
            slot.worker.terminate();
        }
        pool.queue.clear();
        pool.replicated.clear();
        pool.loads = [None, None];
        (pool.start.clone(), pool.asked.clone(), pool.take_unanswered())
    })
}

/// Sends a request where it belongs: set-up to the lead (and the backend choice to all), a run
/// to a free worker (or the queue), Stop to all, a prediction or a download to the workers
/// holding those runs. Without workers (component tests) it is dropped.
pub fn send(message: &ToWorker) {
    let Some(lab) = POOL.with(|p| p.borrow().lab) else { return };
    let share = lab.pool_size.get_untracked() > 1;
    match message.clone() {
        ToWorker::Start { .. } => {
            let lead_lacks_gpu = POOL.with(|p| {
                let mut pool = p.borrow_mut();
                pool.start = Some(message.clone());
                pool.slots.first().is_some_and(|lead| !lead.gpu)
            });
            // A lead without WebGPU cannot take a choice that trains there: a new lead can.
            if lead_lacks_gpu && takes_gpu(lab) {
                return restart(lab);
            }
            POOL.with(|p| {
                for slot in &mut p.borrow_mut().slots {
                    slot.trained.clear();
                    slot.deliver(encode(message));
                }
            })
        }
        ToWorker::LoadModel { source, .. } => load(MODEL, ToWorker::LoadModel { source, share }),
        ToWorker::LoadDataset { source, .. } => load(DATA, ToWorker::LoadDataset { source, share }),
        // The lead holds the model and data as loaded; a probe's cancel goes where the probe went.
        ToWorker::Inspect { .. } | ToWorker::Probe { .. } | ToWorker::CancelProbe { .. } => to_lead(message),
        ToWorker::Train { run_id, origin, config, .. } => train(lab, run_id, origin, config, 1),
        // The pool ends replicated runs itself; a page never sends these.
        ToWorker::RunEnded { .. } => {}
        ToWorker::Stop => POOL.with(|p| {
            let mut pool = p.borrow_mut();
            pool.queue.clear();
            pool.slots.iter_mut().for_each(|slot| slot.deliver(encode(message)));
            // A replica waiting for the others' gradients hears that its run ended.
            let runs: Vec<u32> = pool.replicated.iter().copied().collect();
            runs.into_iter().for_each(|run_id| end_replicas(&mut pool, run_id));
        }),
        ToWorker::Predict { text, runs } => predict(lab, text, runs),
        ToWorker::Export { run_id } => {
            let sent = POOL.with(|p| {
                let mut pool = p.borrow_mut();
                pool.slots.iter_mut().find(|s| s.holds(run_id)).map(|slot| slot.deliver(encode(message))).is_some()
            });
            if !sent {
                lab.error(format!(
                    "download: run #{run_id}'s weights are no longer in memory: each worker keeps only its latest run of each column"
                ));
            }
        }
    }
}

/// Queues a run on `workers` workers at once (data-parallel when more than one; at most the
/// pool's size).
pub fn train(lab: Lab, run_id: u32, origin: Origin, config: TrainConfig, workers: usize) {
    let workers = workers.clamp(1, lab.pool_size.get_untracked().max(1));
    POOL.with(|p| p.borrow_mut().queue.push_back(Queued { run_id, origin, config, workers }));
    dispatch(lab);
}

/// Tells every replica of `run_id` that the run ended.
fn end_replicas(pool: &mut Pool, run_id: u32) {
    pool.replicated.remove(&run_id);
    let end = encode(&ToWorker::RunEnded { run_id });
    for slot in pool.slots.iter_mut().filter(|s| s.running.is_some_and(|r| r.run_id == run_id)) {
        slot.deliver(end.clone());
    }
}

/// A model or dataset request: the lead downloads it; once it has loaded, the pool keeps it for
/// workers to come ([`answered`]).
fn load(which: usize, message: ToWorker) {
    POOL.with(|p| p.borrow_mut().unanswered[which].push_back(message.clone()));
    to_lead(&message);
}

/// The lead answered the oldest request of its kind: loaded, it is what new and restarted
/// workers are told (the lead's shared copy when it shares one); refused, it is forgotten.
fn answered(which: usize, loaded: bool, shared: Option<ToWorker>) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        let Some(request) = pool.unanswered[which].pop_front() else { return };
        if loaded {
            pool.restarted = false;
            if shared.is_none() {
                pool.loads[which] = Some(request.clone());
            }
            pool.asked[which] = Some(request);
        }
    });
    if let Some(message) = shared {
        load_shared(which, message);
    }
}

/// What the lead loaded, from the bytes it shares: for every other worker, now and to come.
fn load_shared(which: usize, message: ToWorker) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        pool.slots.iter_mut().skip(1).for_each(|slot| slot.deliver(encode(&message)));
        pool.loads[which] = Some(message);
    });
}

fn to_lead(message: &ToWorker) {
    POOL.with(|p| p.borrow_mut().slots.first_mut().map(|lead| lead.deliver(encode(message))));
}

/// Each worker is asked about the runs it holds; runs none holds are left out.
fn predict(lab: Lab, text: String, runs: Vec<(Column, u32)>) {
    lab.predictions.set(Some((text.clone(), Vec::new())));
    POOL.with(|p| {
        for slot in &mut p.borrow_mut().slots {
            let mine: Vec<(Column, u32)> = runs.iter().copied().filter(|&(_, id)| slot.holds(id)).collect();
            if !mine.is_empty() {
                slot.deliver(encode(&ToWorker::Predict { text: text.clone(), runs: mine }));
            }
        }
    });
}

/// Hands the oldest queued run to as many free workers as it takes, starting workers while
/// the pool may grow (on the CPU), until the next run has to wait.
fn dispatch(lab: Lab) {
    loop {
        let (wanted, free, up) = POOL.with(|p| {
            let pool = p.borrow();
            let free: Vec<usize> = (0..pool.slots.len()).filter(|&i| pool.slots[i].running.is_none()).collect();
            (pool.queue.front().map(|q| q.workers), free, pool.slots.len())
        });
        let Some(wanted) = wanted else { break };
        let mut free = free;
        // On WebGPU the lead trains alone, a data-parallel run too.
        let wanted = if on_gpu(lab) { 1 } else { wanted };
        let mut up = up;
        while free.len() < wanted && up < lab.pool_size.get_untracked() && !on_gpu(lab) {
            match add_worker(lab, false) {
                Ok(slot) => free.push(slot),
                Err(e) => {
                    lab.error(e);
                    break;
                }
            }
            up += 1;
        }
        if free.len() < wanted {
            break;
        }
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            let Queued { run_id, origin, config, .. } = pool.queue.pop_front().expect("a queued run");
            if wanted > 1 {
                pool.replicated.insert(run_id);
            }
            let links = replica_ports(wanted);
            for ((index, &slot), ports) in free[..wanted].iter().enumerate().zip(links) {
                let replica = (wanted > 1).then_some(Share { index, count: wanted });
                let message = ToWorker::Train { run_id, origin, config: config.clone(), replica };
                pool.slots[slot].running = Some(Running { run_id, origin, replica: index });
                pool.slots[slot].deliver_with(encode(&message), ports);
            }
        });
    }
    status(lab);
}

/// The ports each of `count` replicas gets: a channel between the first replica and each
/// other one (the first holds one end of every channel, in replica order). One replica: none.
fn replica_ports(count: usize) -> Vec<Array> {
    let ports: Vec<Array> = (0..count).map(|_| Array::new()).collect();
    for other in 1..count {
        // A MessageChannel is created without fail outside a worklet.
        let channel = MessageChannel::new().expect("a MessageChannel");
        ports[0].push(&channel.port1());
        ports[other].push(&channel.port2());
    }
    ports
}

fn on_gpu(lab: Lab) -> bool {
    lab.backend.with_untracked(|b| b.as_ref().is_some_and(|b| b.kind == BackendKind::Webgpu))
}

/// Handles what worker `index` said: the lead's set-up answers go to the page, the others'
/// are dropped (their errors are told); runs and downloads from every worker go to the page.
fn received(lab: Lab, index: usize, message: FromWorker) {
    let lead = index == 0;
    let running = POOL.with(|p| p.borrow().slots.get(index).and_then(|s| s.running));
    // A replica other than the first only trains: the first answers for the run.
    let replica = running.map_or(0, |r| r.replica);
    match &message {
        FromWorker::Run { .. } if replica > 0 => return,
        FromWorker::RunFailed { run_id, .. } => {
            // The run's other replicas stop waiting; the first failure is the one told.
            let told = POOL.with(|p| {
                let mut pool = p.borrow_mut();
                if pool.replicated.contains(run_id) {
                    end_replicas(&mut pool, *run_id);
                    pool.failed.insert(*run_id);
                    false
                } else {
                    pool.failed.contains(run_id)
                }
            });
            if told {
                return;
            }
        }
        FromWorker::Alive => {
            let held = POOL.with(|p| p.borrow_mut().slots.get_mut(index).and_then(|s| s.pending.take()));
            POOL.with(|p| {
                if let Some(slot) = p.borrow().slots.get(index) {
                    held.into_iter()
                        .flatten()
                        .for_each(|(v, transfer)| drop(slot.worker.post_message_with_transfer(&v, &transfer)));
                }
            });
        }
        FromWorker::Backend { info } if lead && info.kind == BackendKind::Webgpu => shrink_to_lead(lab),
        FromWorker::ModelLoaded { shared, .. } if lead => {
            answered(MODEL, true, shared.clone().map(|source| ToWorker::LoadModel { source, share: false }))
        }
        FromWorker::DatasetLoaded { shared, .. } if lead => {
            answered(DATA, true, shared.clone().map(|source| ToWorker::LoadDataset { source, share: false }))
        }
        FromWorker::Error { context: Request::Model, .. } if lead => answered(MODEL, false, None),
        FromWorker::Error { context: Request::Dataset, .. } if lead => answered(DATA, false, None),
        FromWorker::Run { run_id, event: TrainEvent::Finished { .. } } => POOL.with(|p| {
            let mut pool = p.borrow_mut();
            pool.restarted = false;
            pool.replicated.remove(run_id);
            if let Some(slot) = pool.slots.get_mut(index) {
                if let Some(running) = slot.running.filter(|r| r.run_id == *run_id) {
                    slot.trained.insert(running.origin, *run_id);
                }
            }
        }),
        FromWorker::Handled { request, heap_bytes } => {
            POOL.with(|p| {
                if let Some(slot) = p.borrow_mut().slots.get_mut(index) {
                    slot.heap_bytes = *heap_bytes;
                    if *request == Request::Train {
                        slot.running = None;
                    }
                }
            });
            dispatch(lab);
            return;
        }
        _ => {}
    }
    let for_the_page = lead
        || matches!(
            message,
            FromWorker::Run { .. }
                | FromWorker::RunFailed { .. }
                | FromWorker::Predictions { .. }
                | FromWorker::Exported { .. }
                | FromWorker::Error { context: Request::Train | Request::TryIt | Request::Download, .. }
        );
    if let FromWorker::Exported { file, .. } = &message {
        download::url(&file.name, &file.url);
    }
    match message {
        _ if for_the_page => lab.apply(message),
        FromWorker::Error { context, message } => {
            lab.error(format!("worker {} of the pool: {context}: {message}", index + 1))
        }
        _ => {}
    }
}

/// On WebGPU only the lead trains: the others are stopped, and a run one of them had started
/// is failed with the reason (a backend change clears every worker's models anyway).
fn shrink_to_lead(lab: Lab) {
    let followers: Vec<Slot> = POOL.with(|p| {
        let mut pool = p.borrow_mut();
        match pool.slots.len() {
            0 | 1 => Vec::new(),
            _ => pool.slots.drain(1..).collect(),
        }
    });
    for slot in followers {
        slot.worker.terminate();
        if let Some(Running { run_id, .. }) = slot.running {
            let message = "the backend became WebGPU, where one worker trains; run it again".to_string();
            lab.runs.update(run_id, |run| run.status = RunStatus::Failed { message, retry_on_cpu: false });
        }
    }
    status(lab);
}

/// The pool's figures for the page: workers up and training, and their wasm heaps in total.
fn status(lab: Lab) {
    let now = POOL.with(|p| {
        let pool = p.borrow();
        PoolStatus {
            up: pool.slots.len(),
            busy: pool.slots.iter().filter(|s| s.running.is_some()).count(),
            queued: pool.queue.len(),
            heap_bytes: pool.slots.iter().map(|s| s.heap_bytes).sum(),
        }
    });
    lab.pool.set(now);
}
