//! The playground's charts. The page says what a chart shows ([`Chart`]); a wasm module of its
//! own (`src/main.rs`), which the page imports after it has painted, draws it as SVG text with
//! plotters. Drawing would be a twelfth of the page's wasm, and none of it is needed to paint the
//! page (BENCHMARKS.md, "In the browser"). The CLI's sweep draws the same plots ([`sweep`]).

mod axes;
mod line;
mod scatter;
pub mod sweep;

use freezelab_protocol::metrics::Baseline;
use serde::{Deserialize, Serialize};

pub use axes::accuracy_range;
pub use line::line_chart;
pub use scatter::{scatter_chart, Point};

/// What a chart shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Chart {
    /// Named series of (x, y) points against the step or seconds, the baselines across them.
    Line {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<(String, Vec<(f64, f64)>)>,
        /// An accuracy: the y-axis fits the points and the baselines ([`accuracy_range`]).
        /// Otherwise it runs from 0 to the largest value.
        accuracy: bool,
        baselines: Vec<Baseline>,
    },
    /// Labelled points of accuracy against a cost, `front` marking the Pareto front's.
    Scatter { title: String, x_label: String, points: Vec<Point>, front: Vec<bool>, baselines: Vec<Baseline> },
}

/// The distinct baselines among `baselines`, in order (runs on the same data share one).
pub fn distinct<'a>(baselines: impl IntoIterator<Item = &'a Baseline>) -> Vec<Baseline> {
    let mut out: Vec<Baseline> = Vec::new();
    for b in baselines {
        if !out.contains(b) {
            out.push(b.clone());
        }
    }
    out
}

impl Chart {
    /// SVG text (a drawing error becomes a short HTML note in its place).
    pub fn draw(&self) -> String {
        match self {
            Chart::Line { title, x_label, y_label, series, accuracy, baselines } => {
                let range = accuracy
                    .then(|| accuracy_range(series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)), baselines));
                line_chart((title, x_label, y_label), series, range, baselines)
            }
            Chart::Scatter { title, x_label, points, front, baselines } => {
                scatter_chart(title, x_label, points, front, baselines)
            }
        }
    }

    /// The chart as the bytes the page hands the charts module.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("charts serialise")
    }

    /// The chart [`Chart::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }
}
