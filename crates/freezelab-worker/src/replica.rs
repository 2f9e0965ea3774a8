//! The worker's end of a data-parallel run. The page links a run's replicas with
//! `MessagePort`s when it hands the run out: the first replica holds a port to each other one,
//! each other replica one to the first. Every step, each other replica transfers its gradients
//! (a `Float32Array`, moved, not copied) to the first, which adds them in replica order, its own
//! first, and transfers the sum back to each in the buffer that replica sent: every replica
//! applies the same bits, and nothing passes through the page's thread. The buffers go back and
//! forth from step to step: filling a buffer already in use costs a send far less than a fresh
//! one of that size (BENCHMARKS.md). The page only says when a run ended (stopped, or a replica
//! failed), so that no replica waits for the others for ever.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Poll, Waker};

use freezelab_core::train::replica::add_replica_values;
use freezelab_core::train::Reducer;
use freezelab_core::CoreError;
use js_sys::{Array, ArrayBuffer, Float32Array};
use wasm_bindgen::prelude::*;
use web_sys::MessageEvent;

use crate::host::seconds;

#[wasm_bindgen]
extern "C" {
    /// A `MessagePort`, bound here rather than through a web-sys feature: a new web-sys feature
    /// would change the feature set Burn's wasm build sees, and compile Burn again.
    pub type Port;
    #[wasm_bindgen(method, js_name = postMessage)]
    fn post(this: &Port, message: &JsValue, transfer: &Array);
    #[wasm_bindgen(method, setter)]
    fn set_onmessage(this: &Port, handler: Option<&js_sys::Function>);
    #[wasm_bindgen(method)]
    fn close(this: &Port);
}

/// A replica: its run and its index in it.
type Who = (u32, usize);

#[derive(Default)]
struct Links {
    /// Ports the page handed over with a replica's Train request, until its run starts.
    ports: HashMap<Who, Vec<Port>>,
    /// Values that arrived for a replica: (replica, step, port) → values.
    arrived: HashMap<(Who, usize, usize), Vec<f32>>,
    /// The buffer that last came in through each port, to send through it again:
    /// (replica, port) → buffer.
    buffers: HashMap<(Who, usize), ArrayBuffer>,
    /// Runs the page ended (run ids are never reused within a page).
    ended: HashSet<u32>,
    waiting: Vec<Waker>,
}

thread_local! {
    /// One per worker: the Train request leaves the ports here, and the run's reducer, deep in
    /// the core's training loop, finds them by run id.
    static LINKS: RefCell<Links> = RefCell::new(Links::default());
}

/// Keeps the ports of replica `index` of `run_id` for its run.
pub fn link(run_id: u32, index: usize, ports: Vec<Port>) {
    LINKS.with(|l| l.borrow_mut().ports.insert((run_id, index), ports));
}

/// Drops the ports of a run that will not train (it was queued before a Stop).
pub fn unlink(run_id: u32, index: usize) {
    let ports = LINKS.with(|l| l.borrow_mut().ports.remove(&(run_id, index)));
    ports.into_iter().flatten().for_each(|port| port.close());
}

/// The page ended `run_id`: its replicas stop waiting.
pub fn end(run_id: u32) {
    let waiting = LINKS.with(|l| {
        let mut links = l.borrow_mut();
        links.ended.insert(run_id);
        std::mem::take(&mut links.waiting)
    });
    waiting.into_iter().for_each(Waker::wake);
}

/// Moves `values` for `step` through `port`: one copy out of the wasm heap into `buffer` (a new
/// one when it is missing or too small), then transferred.
fn send(port: &Port, step: usize, values: &[f32], buffer: Option<ArrayBuffer>) {
    let len = values.len() as u32;
    let buffer = match buffer {
        Some(b) if b.byte_length() >= 4 * len => b,
        // Headroom: a step's count of word-embedding rows differs a little from the last one's.
        _ => ArrayBuffer::new(4 * (len + len / 8)),
    };
    let array = Float32Array::new_with_byte_offset_and_length(&buffer, 0, len);
    array.copy_from(values);
    port.post(&Array::of2(&JsValue::from(step as u32), &array), &Array::of1(&buffer));
}

/// The buffer that last came in through `port` of replica `who`.
fn last_buffer(who: Who, port: usize) -> Option<ArrayBuffer> {
    LINKS.with(|l| l.borrow_mut().buffers.remove(&(who, port)))
}

/// Sums over the ports the page linked this replica with.
pub struct PortReducer {
    who: Who,
    ports: Vec<Port>,
    /// Kept alive while the ports may deliver.
    _handlers: Vec<Closure<dyn FnMut(MessageEvent)>>,
    waited: f64,
}

impl PortReducer {
    /// Takes replica `index` of `run_id`'s ports and listens on them. A replica the page did
    /// not link has none, and its first sum fails.
    pub fn new(run_id: u32, index: usize) -> Self {
        let who = (run_id, index);
        let ports = LINKS.with(|l| l.borrow_mut().ports.remove(&who)).unwrap_or_default();
        let handlers = ports
            .iter()
            .enumerate()
            .map(|(from, port)| {
                let handler = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                    let message: Array = event.data().unchecked_into();
                    let step = message.get(0).as_f64().unwrap_or(f64::NAN) as usize;
                    let array = message.get(1).unchecked_into::<Float32Array>();
                    let values = array.to_vec();
                    let waiting = LINKS.with(|l| {
                        let mut links = l.borrow_mut();
                        links.arrived.insert((who, step, from), values);
                        links.buffers.insert((who, from), array.buffer());
                        std::mem::take(&mut links.waiting)
                    });
                    waiting.into_iter().for_each(Waker::wake);
                });
                port.set_onmessage(Some(handler.as_ref().unchecked_ref()));
                handler
            })
            .collect();
        PortReducer { who, ports, _handlers: handlers, waited: 0.0 }
    }
}

impl Drop for PortReducer {
    fn drop(&mut self) {
        for port in &self.ports {
            port.set_onmessage(None);
            port.close();
        }
        let who = self.who;
        LINKS.with(|l| {
            let mut links = l.borrow_mut();
            links.arrived.retain(|(w, _, _), _| *w != who);
            links.buffers.retain(|(w, _), _| *w != who);
        });
    }
}

impl Reducer for PortReducer {
    fn sum(
        &mut self,
        step: usize,
        values: Vec<f32>,
    ) -> Pin<Box<dyn Future<Output = freezelab_core::Result<Vec<f32>>> + '_>> {
        let handed_in = seconds();
        let (run_id, index) = self.who;
        // Another replica's values are sent now and not held while it waits (about 45 MB a step
        // training all of MiniLM).
        let mut own = match self.ports.first() {
            Some(first) if index > 0 => {
                send(first, step, &values, last_buffer(self.who, 0));
                None
            }
            _ => Some(values),
        };
        Box::pin(poll_fn(move |cx| {
            let who = self.who;
            let got = LINKS.with(|l| {
                let mut links = l.borrow_mut();
                if links.ended.contains(&run_id) {
                    return Some(Err(CoreError::Invalid("the run's other workers stopped".into())));
                }
                if self.ports.is_empty() {
                    return Some(Err(CoreError::Invalid("this replica was not linked to the others".into())));
                }
                let present = (0..self.ports.len()).all(|from| links.arrived.contains_key(&(who, step, from)));
                if !present {
                    links.waiting.push(cx.waker().clone());
                    return None;
                }
                let parts: Vec<Vec<f32>> = (0..self.ports.len())
                    .map(|from| links.arrived.remove(&(who, step, from)).expect("present"))
                    .collect();
                Some(Ok(parts))
            });
            let Some(got) = got else { return Poll::Pending };
            let sum = got.and_then(|parts| {
                let mut parts = parts.into_iter();
                if index > 0 {
                    // The first replica's sum, over the one port.
                    return Ok(parts.next().expect("one port"));
                }
                let mut sum = own.take().expect("summed once");
                parts.try_for_each(|part| add_replica_values(&mut sum, &part))?;
                for (from, port) in self.ports.iter().enumerate() {
                    send(port, step, &sum, last_buffer(who, from));
                }
                Ok(sum)
            });
            self.waited += seconds() - handed_in;
            Poll::Ready(sum)
        }))
    }

    fn waited(&self) -> f64 {
        self.waited
    }
}
