//! Live charts, A and B on the same axes, drawn by plotters into SVG text.

use freezelab_protocol::freeze::Mode;
use freezelab_protocol::messages::Column;
use freezelab_protocol::metrics::Baseline;
use leptos::prelude::*;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::export;
use crate::state::{Lab, RunView, INTERIM_EVAL_EXAMPLES};

const COLORS: [RGBColor; 2] = [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0xd6, 0x27, 0x28)];

type Axes<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// SVG text of a chart on white axes from 0 to `x_max` and `y_min` to `y_max`, labelled, with
/// `draw` adding the data, and a legend of the labelled series when `legend`. A drawing error
/// becomes a short note in place of the chart.
fn svg_chart(
    size: (u32, u32),
    title: &str,
    (x_desc, x_max): (&str, f64),
    (y_desc, y_min, y_max): (&str, f64, f64),
    legend: bool,
    draw: impl FnOnce(&mut Axes<'_, '_>) -> DrawResult,
) -> String {
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let result = (|| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(46)
                .build_cartesian_2d(0f64..x_max, y_min..y_max)?;
            chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).light_line_style(WHITE.mix(0.0)).draw()?;
            draw(&mut chart)?;
            if legend {
                chart.configure_series_labels().border_style(BLACK.mix(0.3)).background_style(WHITE.mix(0.9)).draw()?;
            }
            root.present()
        })();
        result.map_err(|e| e.to_string())
    };
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p>chart unavailable: {}</p>", e.replace('<', "&lt;")),
    }
}

/// The y-range of an accuracy chart: the values and the baselines with a margin, on steps of
/// 0.05 within 0–1, so differences of a few points are visible (0–1 with nothing to show).
pub fn accuracy_range(values: impl IntoIterator<Item = f64>, baselines: &[Baseline]) -> (f64, f64) {
    let all = values.into_iter().chain(baselines.iter().map(|b| b.accuracy)).filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (0.0, 1.0);
    }
    let lo = (((lo - 0.05) * 20.0).floor() / 20.0).max(0.0);
    let hi = (((hi + 0.05) * 20.0).ceil() / 20.0).min(1.0);
    (lo, hi)
}

/// Draws each baseline as a labelled grey line across the chart.
fn draw_baselines(chart: &mut Axes<'_, '_>, baselines: &[Baseline], x_max: f64) -> DrawResult {
    let grey = RGBColor(0x70, 0x70, 0x70);
    for b in baselines {
        chart.draw_series(LineSeries::new([(0.0, b.accuracy), (x_max, b.accuracy)], grey.stroke_width(1)))?;
        let label = format!("majority class: always ‘{}’ {:.1}%", b.label, 100.0 * b.accuracy);
        chart.draw_series([Text::new(
            label,
            (x_max * 0.02, b.accuracy),
            ("sans-serif", 11).into_font().color(&grey),
        )])?;
    }
    Ok(())
}

/// An SVG line chart of the series (name, points) against the step, with `baselines` drawn
/// across it. Empty series are skipped. `y_range` fixes the y-axis; `None` fits it to the data
/// from 0.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    y_range: Option<(f64, f64)>,
    baselines: &[Baseline],
) -> String {
    let points = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let x_max = points().map(|(x, _)| x).fold(1.0, f64::max);
    let (y_min, y_max) = y_range.unwrap_or_else(|| {
        let (lo, hi) = points().fold((f64::MAX, f64::MIN), |(lo, hi), (_, y)| (lo.min(y), hi.max(y)));
        if lo > hi {
            (0.0, 1.0)
        } else {
            (lo.min(0.0), hi * 1.05 + 1e-9)
        }
    });
    let legend = series.iter().any(|(_, p)| !p.is_empty());
    svg_chart((560, 260), title, (x_label, x_max), (y_label, y_min, y_max), legend, |chart| {
        draw_baselines(chart, baselines, x_max)?;
        for (i, (name, pts)) in series.iter().enumerate().filter(|(_, (_, p))| !p.is_empty()) {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        Ok(())
    })
}

/// One labelled point of a scatter chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub label: String,
    /// The plan's mode, which picks the marker: ● freeze depths, ▲ BitFit, ▬ LoRA, ■ LLRD, ◯ gradual.
    pub mode: Mode,
    pub x: f64,
    pub y: f64,
    /// Whether the run clears its baseline: the others are drawn as grey crosses, off the front.
    pub beats_baseline: bool,
}

/// An SVG scatter of accuracy (y, fitted) against a cost (x), the baselines across it. Points
/// on the front are filled and joined left to right; the others are hollow; each mode has its
/// marker; runs that do not clear the baseline are grey crosses.
pub fn scatter_chart(title: &str, x_label: &str, points: &[Point], front: &[bool], baselines: &[Baseline]) -> String {
    let x_max = match points.iter().map(|p| p.x).fold(0.0, f64::max) {
        0.0 => 1.0,
        max => max * 1.15,
    };
    let (y_min, y_max) = accuracy_range(points.iter().map(|p| p.y), baselines);
    svg_chart((420, 260), title, (x_label, x_max), ("accuracy", y_min, y_max), false, |chart| {
        draw_baselines(chart, baselines, x_max)?;
        let color = COLORS[0];
        let mut on_front: Vec<(f64, f64)> =
            points.iter().zip(front).filter(|(_, &f)| f).map(|(p, _)| (p.x, p.y)).collect();
        on_front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(on_front, color.stroke_width(1)))?;
        for (p, &f) in points.iter().zip(front) {
            if p.beats_baseline {
                let style = if f { color.filled() } else { color.stroke_width(1) };
                let marker = EmptyElement::at((p.x, p.y))
                    + match p.mode {
                        Mode::Freeze => Circle::new((0, 0), 4, style).into_dyn(),
                        Mode::Bitfit => TriangleMarker::new((0, 0), 5, style).into_dyn(),
                        Mode::Llrd { .. } => Rectangle::new([(-4, -4), (4, 4)], style).into_dyn(),
                        Mode::Lora { .. } => Rectangle::new([(-6, -2), (6, 2)], style).into_dyn(),
                        Mode::Gradual { .. } => Circle::new((0, 0), 6, color.stroke_width(2)).into_dyn(),
                    };
                chart.draw_series([marker])?;
            } else {
                chart.draw_series([Cross::new((p.x, p.y), 4, RGBColor(0x90, 0x90, 0x90).stroke_width(1))])?;
            }
            chart.draw_series([Text::new(p.label.clone(), (p.x, p.y), ("sans-serif", 11))])?;
        }
        Ok(())
    })
}

/// Each column's pinned run's points, against steps, or against seconds in the equal-time race.
fn series(lab: Lab, pick: fn(&crate::state::RunView) -> Vec<(f64, f64)>) -> Vec<(String, Vec<(f64, f64)>)> {
    let seconds = lab.race.get();
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
    if lab.race.get() {
        "seconds"
    } else {
        "step"
    }
}

/// The distinct baselines of `runs`, in order (runs on the same data share one).
pub fn baselines<'a>(runs: impl IntoIterator<Item = &'a RunView>) -> Vec<Baseline> {
    let mut out: Vec<Baseline> = Vec::new();
    for b in runs.into_iter().filter_map(|r| r.baseline.as_ref()) {
        if !out.contains(b) {
            out.push(b.clone());
        }
    }
    out
}

/// A chart's download buttons: `{file}.svg` as drawn, `{file}.png` rasterised by the browser.
pub fn downloads(file: &str, testid: &str, svg: impl Fn() -> String + Copy + Send + Sync + 'static) -> impl IntoView {
    let (svg_name, png_name) = (format!("{file}.svg"), format!("{file}.png"));
    let lab = expect_context::<Lab>();
    view! {
        <button data-testid=testid.to_string() on:click=move |_| export::download(&svg_name, "image/svg+xml", &svg())>"Download SVG"</button>
        " "
        <button data-testid=format!("{testid}-png") on:click=move |_| export::download_png(lab, png_name.clone(), svg())>"PNG"</button>
    }
}

#[component]
pub fn Charts() -> impl IntoView {
    let lab = expect_context::<Lab>();
    let loss = move || line_chart("training loss", x_label(lab), "loss", &series(lab, |r| r.losses.clone()), None, &[]);
    // A memo: training steps do not change the accuracy points, so the chart is redrawn only
    // when an evaluation adds one.
    let accuracy_points = Memo::new(move |_| {
        let pinned: Vec<RunView> = Column::BOTH.iter().filter_map(|&c| lab.pinned_run(c)).collect();
        (series(lab, |r| r.accuracy.clone()), baselines(&pinned))
    });
    let accuracy = move || {
        let (series, baselines) = accuracy_points.get();
        let range = accuracy_range(series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y)), &baselines);
        line_chart("validation accuracy", x_label(lab), "accuracy", &series, Some(range), &baselines)
    };
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
