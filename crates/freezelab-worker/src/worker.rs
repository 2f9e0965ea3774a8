//! The worker's message loop: a queue so requests run one after another, and Stop, which must
//! act at once. Stop bumps a generation counter; each queued request carries the generation it
//! arrived in, so a run in progress sees the change and runs queued before the Stop are dropped.
//! A probe's cancel acts at once too, on the probe alone.

use std::cell::Cell;
use std::rc::Rc;

use freezelab_protocol::messages::{FromWorker, Request, ToWorker};
use futures_channel::mpsc;
use futures_util::StreamExt;
use wasm_bindgen::prelude::*;
use web_sys::MessageEvent;

use crate::outbox::{post, scope};
use crate::replica;
use crate::session::{self, Session};

pub fn start() {
    console_error_panic_hook::set_once();
    let (sender, mut queue) = mpsc::unbounded::<(ToWorker, u32)>();
    let generation = Rc::new(Cell::new(0u32));
    let mut session = Session::new(generation.clone());
    let cancelled_probes = session.cancelled_probes();
    let on_message = {
        let generation = generation.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match serde_wasm_bindgen::from_value::<ToWorker>(event.data()) {
                Ok(ToWorker::Stop) => generation.set(generation.get().wrapping_add(1)),
                // A probe in progress hears this between batches.
                Ok(ToWorker::CancelProbe { probe_id }) => session::cancel_probe(&cancelled_probes, probe_id),
                // A replica waits for this inside its Train request: it cannot queue behind it.
                Ok(ToWorker::RunEnded { run_id }) => replica::end(run_id),
                Ok(message) => {
                    // A replica's links to the others come beside its Train request.
                    if let ToWorker::Train { run_id, replica: Some(share), .. } = &message {
                        let ports = event.ports().iter().map(JsCast::unchecked_into).collect();
                        replica::link(*run_id, share.index, ports);
                    }
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
        post(&FromWorker::Alive);
        while let Some((message, arrived_in)) = queue.next().await {
            session.handle(message, arrived_in).await;
        }
    });
}
