//! The CLI's side of a training run: wall clock, JSON lines on stdout, a progress bar on stderr.

use std::io::Write;
use std::time::Instant;

use freezelab_core::train::{Host, TrainEvent};
use indicatif::{ProgressBar, ProgressStyle};

pub struct CliHost {
    start: Instant,
    bar: ProgressBar,
    /// Print events as JSON lines on stdout.
    pub json: bool,
    pub label: String,
}

impl CliHost {
    pub fn new(label: &str, json: bool) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} steps {msg} (ETA {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        CliHost { start: Instant::now(), bar, json, label: label.to_string() }
    }
}

impl Host for CliHost {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn emit(&mut self, event: &TrainEvent) {
        if self.json {
            let line = serde_json::to_string(event).expect("events serialise");
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
        match event {
            TrainEvent::Started { total_steps, .. } => self.bar.set_length(*total_steps as u64),
            TrainEvent::Step { step, loss, examples_per_second, .. } => {
                self.bar.set_position(*step as u64);
                self.bar.set_message(format!("loss {loss:.4}, {examples_per_second:.1} ex/s"));
            }
            TrainEvent::Eval { metrics, .. } => {
                self.bar.println(format!("{}: validation accuracy {:.3}", self.label, metrics.accuracy));
            }
            TrainEvent::Finished { .. } => self.bar.finish_and_clear(),
            TrainEvent::Drift { .. } | TrainEvent::Examples { .. } => {}
        }
    }
}
