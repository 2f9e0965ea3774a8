//! Message plumbing: a queue so requests run one after another, and Stop, which must act at
//! once. Stop bumps a generation counter; each queued request carries the generation it arrived
//! in, so a run in progress sees the change and runs queued before the Stop are dropped.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use freezelab_protocol::messages::{FromWorker, Request, ToWorker};
use futures_channel::mpsc;
use futures_util::StreamExt;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::session::Session;

pub fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

thread_local! {
    /// When set, posted messages are kept here instead of going to the page: tests drive a
    /// `Session` inside the worker, where nothing would receive them.
    static DIVERTED: RefCell<Option<Vec<FromWorker>>> = const { RefCell::new(None) };
}

/// From now on, keep posted messages for [`take_posted`] instead of sending them.
pub fn divert_posts() {
    DIVERTED.with(|d| *d.borrow_mut() = Some(Vec::new()));
}

/// The messages kept since the last call (after [`divert_posts`]).
pub fn take_posted() -> Vec<FromWorker> {
    DIVERTED.with(|d| d.borrow_mut().as_mut().map(std::mem::take).unwrap_or_default())
}

/// Posts a message to the page. Serialisation of our own types cannot fail.
pub fn post(message: &FromWorker) {
    let kept = DIVERTED.with(|d| d.borrow_mut().as_mut().map(|kept| kept.push(message.clone())).is_some());
    if kept {
        return;
    }
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    let value = serde::Serialize::serialize(message, &serializer).expect("protocol messages serialise");
    // A closed page has no one to tell.
    let _ = scope().post_message(&value);
}

pub fn start() {
    console_error_panic_hook::set_once();
    let (sender, mut queue) = mpsc::unbounded::<(ToWorker, u32)>();
    let generation = Rc::new(Cell::new(0u32));
    let on_message = {
        let generation = generation.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match serde_wasm_bindgen::from_value::<ToWorker>(event.data()) {
                Ok(ToWorker::Stop) => generation.set(generation.get().wrapping_add(1)),
                Ok(message) => {
                    let _ = sender.unbounded_send((message, generation.get()));
                }
                Err(e) => post(&FromWorker::Error { context: Request::Message, message: e.to_string() }),
            }
        })
    };
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The worker lives as long as the page: the handler is never dropped.
    on_message.forget();
    wasm_bindgen_futures::spawn_local(async move {
        let mut session = Session::new(generation);
        post(&FromWorker::Alive);
        while let Some((message, arrived_in)) = queue.next().await {
            session.handle(message, arrived_in).await;
        }
    });
}
