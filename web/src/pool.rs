//! The page's end of the training workers: dedicated Web Workers, one run each at a time, so the
//! tab trains on several cores (wasm threads would need a nightly toolchain). What runs where,
//! replicas, failures and restarts are decided by [`freezelab_pool::Pool`], a state machine
//! tested natively; this edge performs its effects (starts, posts to and terminates workers,
//! links replicas by `MessageChannel`s, updates the page) and feeds it the page's requests and
//! the workers' messages.
//! Requests made before a worker's wasm runs are held here: a worker drops what arrives before
//! it has a handler.
//! Two worker bundles: every CPU worker loads the CPU-only one; the lead loads the one with
//! WebGPU when the backend choice would train on the adapter the page found ([`adapter`]).

use std::cell::RefCell;

use freezelab_pool::{Effect, Page, Pool, Queued};
use freezelab_protocol::messages::{BackendKind, FromWorker, Origin, ToWorker};
use freezelab_protocol::run::TrainConfig;
use js_sys::Array;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::{MessageChannel, MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::state::{Lab, RunStatus};
use crate::{adapter, download, json};

/// The loaders Trunk writes next to the workers' wasm (web/index.html, data-loader-shim): the
/// bundle with every backend, and the CPU-only one.
const GPU_WORKER: &str = "./freezelab-worker_loader.js";
const CPU_WORKER: &str = "./freezelab-worker-cpu_loader.js";

struct Handle {
    worker: Worker,
    /// Requests (and what they transfer) held until its wasm says it is alive; `None` once it is.
    held: Option<Vec<(JsValue, Array)>>,
}

#[derive(Default)]
struct Edge {
    lab: Option<Lab>,
    pool: Pool,
    /// The pool's workers, in its order.
    workers: Vec<Handle>,
}

thread_local! {
    /// One per page: the workers' event handlers, which the browser calls, reach it from here.
    static EDGE: RefCell<Edge> = RefCell::new(Edge::default());
}

fn encode(message: &ToWorker) -> JsValue {
    json::to_value(message).expect("protocol messages serialise")
}

/// What the pool reads of the page with each event.
fn page(lab: Lab) -> Page {
    Page {
        size: lab.ui.pool_size.get_untracked(),
        choice: lab.setup.backend_choice.get_untracked(),
        on_gpu: lab.setup.backend.with_untracked(|b| b.as_ref().is_some_and(|b| b.kind == BackendKind::Webgpu)),
        alive: lab.ui.worker_alive.get_untracked(),
    }
}

/// Gives the pool one event, then performs what it decided (outside the borrow: performing
/// may start workers, whose answers come back here).
fn step(lab: Lab, event: impl FnOnce(&mut Pool, &Page) -> Vec<Effect>) {
    let page = page(lab);
    let effects = EDGE.with(|e| event(&mut e.borrow_mut().pool, &page));
    perform(lab, effects);
}

/// Starts the lead worker, once the page knows which bundle it needs; the workers' messages
/// update `lab`. What is sent meanwhile reaches it when it starts.
pub fn spawn(lab: Lab) {
    EDGE.with(|e| e.borrow_mut().lab = Some(lab));
    step(lab, |pool, _| pool.start());
}

/// Sends a request where the pool routes it. Without workers (component tests) it is dropped.
pub fn send(message: &ToWorker) {
    let Some(lab) = EDGE.with(|e| e.borrow().lab) else { return };
    step(lab, |pool, page| pool.on_request(page, message.clone()));
}

/// Queues a run on `workers` workers at once (data-parallel when more than one).
pub fn train(lab: Lab, run_id: u32, origin: Origin, config: TrainConfig, workers: usize) {
    step(lab, |pool, page| pool.train(page, Queued { run_id, origin, config, workers }));
}

fn perform(lab: Lab, effects: Vec<Effect>) {
    for effect in effects {
        match effect {
            Effect::FindAdapter => leptos::task::spawn_local(async move {
                let found = adapter::webgpu().await;
                step(lab, |pool, page| pool.adapter_found(page, found));
            }),
            Effect::Spawn { gpu } => match start_worker(lab, gpu) {
                Ok(()) => step(lab, |pool, page| pool.spawned(page, gpu)),
                Err(e) => step(lab, |pool, _| pool.spawn_failed(e)),
            },
            Effect::Post { worker, message } => deliver(worker, encode(&message), Array::new()),
            Effect::Train { workers, messages } => {
                for ((worker, message), ports) in workers.iter().zip(&messages).zip(replica_ports(workers.len())) {
                    deliver(*worker, encode(message), ports);
                }
            }
            Effect::Terminate { from } => {
                let gone: Vec<Handle> = EDGE.with(|e| e.borrow_mut().workers.drain(from..).collect());
                gone.iter().for_each(|h| h.worker.terminate());
            }
            Effect::Page(message) => lab.apply(message),
            Effect::Error(message) => lab.ui.error(message),
            Effect::Download { name, url } => download::url(&name, &url),
            Effect::WorkersLost => lab.worker_lost(),
            Effect::FailRun { run_id, message } => {
                lab.results.runs.update(run_id, |run| run.status = RunStatus::Failed { message, retry_on_cpu: false })
            }
            Effect::Predicting { text, gone } => {
                lab.results.predictions.set(Some(crate::state::Asked { text, answers: Vec::new(), gone }))
            }
            Effect::Status(now) => lab.ui.pool.set(now),
        }
    }
}

/// Posts to worker `index`, or holds it until that worker is alive.
fn deliver(index: usize, value: JsValue, transfer: Array) {
    EDGE.with(|e| {
        let mut edge = e.borrow_mut();
        let Some(handle) = edge.workers.get_mut(index) else { return };
        match handle.held.as_mut() {
            Some(held) => held.push((value, transfer)),
            // Posting only fails for values that cannot be cloned; ours are plain objects and ports.
            None => drop(handle.worker.post_message_with_transfer(&value, &transfer)),
        }
    })
}

/// Starts worker number `workers.len()` (from the bundle with WebGPU when `gpu`); its messages
/// and errors go to the pool.
fn start_worker(lab: Lab, gpu: bool) -> Result<(), String> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Classic);
    let worker = Worker::new_with_options(if gpu { GPU_WORKER } else { CPU_WORKER }, &options)
        .map_err(|e| format!("a training worker could not start: {e:?}"))?;
    let index = EDGE.with(|e| e.borrow().workers.len());
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        match FromWorker::decode(&js_sys::Uint8Array::new(&event.data()).to_vec()) {
            Ok(message) => {
                if message == FromWorker::Alive {
                    release_held(index);
                }
                step(lab, |pool, page| pool.on_message(page, index, message));
            }
            Err(e) => lab.ui.error(format!("unreadable message from a training worker: {e}")),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error =
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| step(lab, |pool, page| pool.on_worker_error(page)));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    EDGE.with(|e| e.borrow_mut().workers.push(Handle { worker, held: Some(Vec::new()) }));
    Ok(())
}

/// Worker `index` is alive: what was held for it is posted.
fn release_held(index: usize) {
    EDGE.with(|e| {
        if let Some(handle) = e.borrow_mut().workers.get_mut(index) {
            for (value, transfer) in handle.held.take().into_iter().flatten() {
                drop(handle.worker.post_message_with_transfer(&value, &transfer));
            }
        }
    })
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
