//! Every message the worker sends to the page leaves through [`post`]. Tests drive a `Session`
//! inside a worker where nothing would receive them, so posts can be diverted and read back.

use std::cell::RefCell;

use freezelab_protocol::messages::FromWorker;
use wasm_bindgen::prelude::*;
use web_sys::DedicatedWorkerGlobalScope;

pub fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

thread_local! {
    /// When set, posted messages are kept here instead of going to the page (the browser tests'
    /// hook: `post` is called from everywhere in the worker, so the switch is global).
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

/// Posts a message to the page, as its bytes.
pub fn post(message: &FromWorker) {
    let kept = DIVERTED.with(|d| d.borrow_mut().as_mut().map(|kept| kept.push(message.clone())).is_some());
    if kept {
        return;
    }
    let bytes = js_sys::Uint8Array::from(&message.encode()[..]);
    // A closed page has no one to tell.
    let _ = scope().post_message(&bytes);
}
