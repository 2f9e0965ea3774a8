//! The page's end of the worker: starts it, sends requests, and hands every reply to
//! `Lab::apply`. Requests made before the worker's wasm is running are held back until it says
//! it is alive: a worker drops messages that arrive before it has a handler.

use std::cell::RefCell;

use freezelab_protocol::messages::{FromWorker, ToWorker};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::state::Lab;

/// Trunk writes this loader next to the worker's wasm (web/index.html, data-loader-shim).
const WORKER_SCRIPT: &str = "./freezelab-worker_loader.js";

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
    /// Requests waiting for the worker; `None` once it is alive.
    static PENDING: RefCell<Option<Vec<JsValue>>> = const { RefCell::new(Some(Vec::new())) };
}

fn deliver(worker: &Worker, value: &JsValue) {
    // Posting only fails for values that cannot be cloned; ours are plain objects.
    let _ = worker.post_message(value);
}

/// Starts the training worker; its messages update `lab`.
pub fn spawn(lab: Lab) {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Classic);
    let worker = match Worker::new_with_options(WORKER_SCRIPT, &options) {
        Ok(worker) => worker,
        Err(e) => return lab.error(format!("the training worker could not start: {e:?}")),
    };
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        match serde_wasm_bindgen::from_value::<FromWorker>(event.data()) {
            Ok(message) => {
                if message == FromWorker::Alive {
                    let held = PENDING.with(|p| p.borrow_mut().take()).unwrap_or_default();
                    WORKER.with(|w| w.borrow().iter().for_each(|worker| held.iter().for_each(|v| deliver(worker, v))));
                }
                lab.apply(message)
            }
            Err(e) => lab.error(format!("unreadable message from the worker: {e}")),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        // A worker that dies after starting (a panic, a lost device) is replaced once per
        // start, with the same backend choice and the page's model and data; one that never
        // started is not retried in a loop.
        let was_alive = lab.worker_alive.get_untracked();
        lab.worker_lost();
        if let Some(old) = WORKER.with(|w| w.borrow_mut().take()) {
            old.terminate();
        }
        if !was_alive {
            return lab.error("the training worker could not start (see the browser console)".into());
        }
        lab.error("the training worker stopped with an error and was restarted; finished runs are kept".into());
        PENDING.with(|p| *p.borrow_mut() = Some(Vec::new()));
        spawn(lab);
        send(&ToWorker::Start { choice: lab.backend_choice.get_untracked() });
        if let Some(manifest) = lab.manifest.get_untracked() {
            crate::setup::load_defaults(lab, &manifest);
        }
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
}

/// Sends a request; without a worker (component tests) it is dropped.
pub fn send(message: &ToWorker) {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    let value = serde::Serialize::serialize(message, &serializer).expect("protocol messages serialise");
    let value = PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some(held) => {
            held.push(value);
            None
        }
        None => Some(value),
    });
    if let Some(value) = value {
        WORKER.with(|w| w.borrow().iter().for_each(|worker| deliver(worker, &value)));
    }
}
