//! A deterministic clock (one tick per reading) that records a run's events: the `Host` of the
//! training tests, natively and in the browser (tests/wasm.rs includes this file alone).

use std::cell::Cell;

use freezelab_core::train::{Host, TrainEvent};

#[derive(Default)]
pub struct Recorder {
    ticks: Cell<f64>,
    pub events: Vec<TrainEvent>,
}

impl Host for Recorder {
    fn now(&self) -> f64 {
        self.ticks.set(self.ticks.get() + 1.0);
        self.ticks.get()
    }
    fn emit(&mut self, event: &TrainEvent) {
        self.events.push(event.clone());
    }
}

impl Recorder {
    pub fn losses(&self) -> Vec<f64> {
        self.events
            .iter()
            .filter_map(|e| if let TrainEvent::Step { loss, .. } = e { Some(*loss) } else { None })
            .collect()
    }
}
