//! Live charts, A and B on the same axes, drawn by the charts module ([`crate::painter`]).

use freezelab_charts::Chart;
use freezelab_protocol::messages::Column;
use freezelab_protocol::metrics::Baseline;
use leptos::prelude::*;

use crate::state::{Lab, RunView, INTERIM_EVAL_EXAMPLES};
use crate::{export, painter};

/// Each column's pinned run's points, against steps, or against seconds in the equal-time race.
fn series(lab: Lab, pick: fn(&crate::state::RunView) -> Vec<(f64, f64)>) -> Vec<(String, Vec<(f64, f64)>)> {
    let seconds = lab.columns.equal_time.get();
    Column::BOTH
        .iter()
        .map(|&c| match lab.pinned_run(c) {
            Some(run) => {
                let points = if seconds { run.against_seconds(&pick(&run)) } else { pick(&run) };
                (format!("{} · #{} {}", c.name(), run.id, run.config.freeze.label()), points)
            }
            None => (c.name().to_string(), Vec::new()),
        })
        .collect()
}

/// The x-axis of the run charts.
fn x_label(lab: Lab) -> &'static str {
    if lab.columns.equal_time.get() {
        "seconds"
    } else {
        "step"
    }
}

/// The distinct baselines of `runs`, in order (runs on the same data share one).
pub fn baselines<'a>(runs: impl IntoIterator<Item = &'a RunView>) -> Vec<Baseline> {
    freezelab_charts::distinct(runs.into_iter().filter_map(|r| r.baseline.as_ref()))
}

/// A chart's download buttons: `{file}.svg` as drawn, `{file}.png` rasterised by the browser.
pub fn downloads(file: &str, testid: &str, svg: Memo<String>) -> impl IntoView {
    let (svg_name, png_name) = (format!("{file}.svg"), format!("{file}.png"));
    let lab = expect_context::<Lab>();
    view! {
        <button data-testid=testid.to_string() on:click=move |_| export::download(&svg_name, "image/svg+xml", &svg.get_untracked())>"Download SVG"</button>
        " "
        <button data-testid=format!("{testid}-png") on:click=move |_| export::download_png(lab, png_name.clone(), svg.get_untracked())>"PNG"</button>
    }
}

#[component]
pub fn Charts() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let loss = painter::drawn(move || Chart::Line {
        title: "training loss".into(),
        x_label: x_label(lab).into(),
        y_label: "loss".into(),
        series: series(lab, |r| r.losses.clone()),
        accuracy: false,
        baselines: Vec::new(),
    });
    // A memo: training steps do not change the accuracy points, so the chart is redrawn only
    // when an evaluation adds one.
    let accuracy_chart = Memo::new(move |_| {
        let pinned: Vec<RunView> = Column::BOTH.iter().filter_map(|&c| lab.pinned_run(c)).collect();
        Chart::Line {
            title: "validation accuracy".into(),
            x_label: x_label(lab).into(),
            y_label: "accuracy".into(),
            series: series(lab, |r| r.accuracy.clone()),
            accuracy: true,
            baselines: baselines(&pinned),
        }
    });
    let accuracy = painter::drawn(move || accuracy_chart.get());
    let points = move || series(lab, |r| r.losses.clone()).iter().map(|(_, p)| p.len()).sum::<usize>();
    view! {
        <section class="charts" aria-label="charts">
            <figure>
                <div class="chart" data-testid="chart-loss" data-points=move || points().to_string() inner_html=loss></div>
                {downloads("freezelab-loss", "download-chart-loss", loss)}
            </figure>
            <figure>
                <div class="chart" data-testid="chart-accuracy" inner_html=accuracy></div>
                <figcaption class="hint">{format!(
                    "Each run's points before its last are on {INTERIM_EVAL_EXAMPLES} fixed validation examples; its last point, and the tables, on all of them. The grey line: always answering the majority label."
                )}</figcaption>
                {downloads("freezelab-accuracy", "download-chart-accuracy", accuracy)}
            </figure>
        </section>
    }
}
