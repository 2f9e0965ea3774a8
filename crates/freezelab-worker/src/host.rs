//! The worker's side of a training run: the browser clock, events posted to the page, the stop
//! flag, and a yield to the event loop between steps so a Stop message gets through.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use freezelab_core::train::{Host, TrainEvent};
use freezelab_protocol::messages::FromWorker;
use wasm_bindgen::prelude::*;

use crate::outbox::{post, scope};

/// The worker's clock, in seconds.
pub fn seconds() -> f64 {
    scope().performance().map_or(0.0, |p| p.now() / 1000.0)
}

pub struct WorkerHost {
    pub run_id: u32,
    /// The stop generation now, and the one the run was requested in.
    pub generation: Rc<Cell<u32>>,
    pub requested_in: u32,
}

impl Host for WorkerHost {
    fn now(&self) -> f64 {
        seconds()
    }

    fn emit(&mut self, event: &TrainEvent) {
        post(&FromWorker::Run { run_id: self.run_id, event: event.clone() });
    }

    fn cancelled(&self) -> bool {
        self.generation.get() != self.requested_in
    }

    fn breathe(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(next_task())
    }
}

/// Resolves on a fresh macrotask (setTimeout 0), after queued messages have been handled.
pub async fn next_task() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Bytes of the wasm linear memory.
pub fn heap_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}
