//! The worker's end of a data-parallel run: a replica's gradients go to the page's pool, which
//! adds every replica's in replica order and sends the sum back to each (or says the run ended).
//! Sums arrive beside the request queue (the replica is inside its Train request, waiting).

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Poll, Waker};

use freezelab_core::train::Reducer;
use freezelab_core::CoreError;
use freezelab_protocol::messages::{bytes_f32, f32_bytes, FromWorker};

use crate::outbox::post;

/// A sum the page sent: run, step and values; `None` values: the run ended.
type Sum = (u32, usize, Option<Vec<u8>>);

thread_local! {
    static SUMS: RefCell<Vec<Sum>> = const { RefCell::new(Vec::new()) };
    static WAITING: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Keeps a sum (or the end of a run) for the replica waiting on it.
pub fn deliver(run_id: u32, step: usize, values: Option<Vec<u8>>) {
    SUMS.with(|s| s.borrow_mut().push((run_id, step, values)));
    WAITING.with(|w| w.borrow_mut().drain(..).for_each(Waker::wake));
}

/// Sums through the page: posts this replica's values, waits for the sum.
pub struct PoolReducer {
    pub run_id: u32,
}

impl Reducer for PoolReducer {
    fn sum(
        &mut self,
        step: usize,
        values: Vec<f32>,
    ) -> Pin<Box<dyn Future<Output = freezelab_core::Result<Vec<f32>>> + '_>> {
        let run_id = self.run_id;
        post(&FromWorker::Gradients { run_id, step, values: f32_bytes(&values).into() });
        Box::pin(poll_fn(move |cx| {
            let found = SUMS.with(|s| {
                let mut sums = s.borrow_mut();
                let at = sums.iter().position(|(run, at, values)| *run == run_id && (*at == step || values.is_none()));
                at.map(|i| sums.remove(i).2)
            });
            match found {
                Some(Some(bytes)) => Poll::Ready(Ok(bytes_f32(&bytes))),
                Some(None) => Poll::Ready(Err(CoreError::Invalid("the run's other workers stopped".into()))),
                None => {
                    WAITING.with(|w| w.borrow_mut().push(cx.waker().clone()));
                    Poll::Pending
                }
            }
        }))
    }
}
