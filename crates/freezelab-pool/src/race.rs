//! The equal-time race beside the pool: "Train both" starts A, and B waits for A's end to train
//! for as long as A trained. web/src/actions.rs tells it what became of A and queues B when told.

use freezelab_protocol::run::TrainConfig;

/// The most epochs B gets: with the prefix cache a head-only epoch costs milliseconds, and
/// thousands of them would flood the page with events.
pub const RACE_MAX_EPOCHS: usize = 50;

/// Where the race's B stands.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum Race {
    /// No B waits.
    #[default]
    Idle,
    /// B waits for run `a` to end.
    Waiting { a: u32 },
}

/// What became of the run B waits for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Queued or training.
    Running,
    /// Finished, after this many seconds of training.
    Done { train_seconds: f64 },
    /// Failed, stopped, or gone from the page.
    Ended,
}

impl Race {
    /// "Train both" in the race: B waits for A (none where A was refused, so B never runs).
    pub fn after(a: Option<u32>) -> Race {
        a.map_or(Race::Idle, |a| Race::Waiting { a })
    }

    /// The run B waits for.
    pub fn awaits(&self) -> Option<u32> {
        match *self {
            Race::Waiting { a } => Some(a),
            Race::Idle => None,
        }
    }

    /// Hears what became of run `run`: B's time budget in seconds once its A is done (the race
    /// is then over); an A that ended otherwise drops B.
    pub fn heard(&mut self, run: u32, outcome: Outcome) -> Option<f64> {
        if self.awaits() != Some(run) {
            return None;
        }
        match outcome {
            Outcome::Running => None,
            Outcome::Done { train_seconds } => {
                *self = Race::Idle;
                Some(train_seconds.max(1e-3))
            }
            Outcome::Ended => {
                *self = Race::Idle;
                None
            }
        }
    }

    /// Stop: a B not yet queued is dropped.
    pub fn stop(&mut self) {
        *self = Race::Idle;
    }
}

/// B's settings: `budget` seconds of training, at most [`RACE_MAX_EPOCHS`] epochs.
pub fn b_settings(config: &mut TrainConfig, budget: f64) {
    config.time_budget_seconds = Some(budget);
    config.epochs = RACE_MAX_EPOCHS;
}
