//! A sweep's plots, the page's and the CLI's alike: each run's accuracy against what its plan
//! cost (trainable parameters, measured peak memory, wall time), the Pareto front marked.

use freezelab_protocol::metrics::{results_front, Baseline};
use freezelab_protocol::run::RunSummary;

use crate::{Chart, Point};

/// A cost axis: its name, unit, and how to read it off a summary.
pub struct Axis {
    pub id: &'static str,
    pub title: &'static str,
    pub cost: fn(&RunSummary) -> Option<f64>,
}

/// Trainable parameters, measured peak memory, wall time.
pub static AXES: [Axis; 3] = [
    Axis { id: "params", title: "trainable parameters (millions)", cost: |s| Some(s.trainable_params as f64 / 1e6) },
    Axis {
        id: "memory",
        title: "measured peak memory (MB)",
        cost: |s| s.memory.measured_peak_bytes.map(|b| b as f64 / 1e6),
    },
    Axis { id: "time", title: "wall time (s)", cost: |s| Some(s.wall_seconds) },
];

/// The runs' points on `axis` (those with a cost there) and which are on its Pareto front. A
/// run that does not clear its baseline is plotted but kept off the front: it is not a result
/// to trade against.
pub fn points<'a>(runs: impl IntoIterator<Item = &'a RunSummary>, axis: &Axis) -> (Vec<Point>, Vec<bool>) {
    let points: Vec<Point> = runs
        .into_iter()
        .filter_map(|s| {
            Some(Point {
                label: s.config.freeze.label(),
                mode: s.config.freeze.mode,
                x: (axis.cost)(s)?,
                y: s.val_accuracy,
                beats_baseline: s.baseline.beaten_by(s.val_accuracy),
            })
        })
        .collect();
    let front = results_front(&points.iter().map(|p| (p.x, p.y, p.beats_baseline)).collect::<Vec<_>>());
    (points, front)
}

impl Axis {
    /// The scatter of `points` (with their front) on this axis, `baselines` across it.
    pub fn chart(&self, (points, front): (Vec<Point>, Vec<bool>), baselines: Vec<Baseline>) -> Chart {
        Chart::Scatter {
            title: format!("accuracy vs {}", self.title),
            x_label: self.title.into(),
            points,
            front,
            baselines,
        }
    }
}
