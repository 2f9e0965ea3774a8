//! The caller's side of a run. The events and summary it receives are serde types of the
//! protocol crate: the CLI prints them as JSON lines, the page's worker posts them to the page.

use std::future::Future;
use std::pin::Pin;

pub use freezelab_protocol::run::{MemoryReport, RunSummary, TrainEvent};

/// The caller's side of a run: a clock (the core reads none), an event sink, a stop flag.
pub trait Host {
    /// Seconds since any fixed origin.
    fn now(&self) -> f64;
    fn emit(&mut self, event: &TrainEvent);
    /// Checked between steps.
    fn cancelled(&self) -> bool {
        false
    }
    /// Awaited between steps: a browser worker yields to its event loop here, so a Stop
    /// message can arrive while training runs.
    fn breathe(&self) -> Pin<Box<dyn Future<Output = ()>>> {
        Box::pin(std::future::ready(()))
    }
}
