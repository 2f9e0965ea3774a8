//! Live charts, A and B on the same axes, drawn by plotters into SVG text.

use freezelab_protocol::freeze::Mode;
use freezelab_protocol::messages::Column;
use freezelab_protocol::metrics::Baseline;
use leptos::prelude::*;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::export;
use crate::state::{Lab, RunView, INTERIM_EVAL_EXAMPLES};

const COLORS: [RGBColor; 2] = [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0xd6, 0x27, 0x28)];
/// BitFit's marker, pointing up, in pixels around its point.
const TRIANGLE: [(i32, i32); 3] = [(0, -5), (4, 3), (-4, 3)];

type Axes<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// SVG text of a chart on white axes from 0 to `x_max` and `y_min` to `y_max`, labelled, with
/// `draw` adding the data. A drawing error becomes a short note in place of the chart.
fn svg_chart(
    size: (u32, u32),
    title: &str,
    (x_desc, x_max): (&str, f64),
    (y_desc, y_min, y_max): (&str, f64, f64),
    draw: impl FnOnce(&mut Axes<'_, '_>) -> DrawResult,
) -> String {
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let result = (|| {
            root.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(&root)
                .caption(title, (FontFamily::SansSerif, 15))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(46)
                .build_cartesian_2d(0f64..x_max, y_min..y_max)?;
            chart.configure_mesh().x_desc(x_desc).y_desc(y_desc).light_line_style(WHITE.mix(0.0)).draw()?;
            draw(&mut chart)?;
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
            (FontFamily::SansSerif, 11).into_font().color(&grey),
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
    svg_chart((560, 260), title, (x_label, x_max), (y_label, y_min, y_max), |chart| {
        draw_baselines(chart, baselines, x_max)?;
        let drawn: Vec<_> = series.iter().enumerate().filter(|(_, (_, p))| !p.is_empty()).collect();
        for &(i, (_, pts)) in &drawn {
            let color = COLORS[i % COLORS.len()];
            chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        let entries: Vec<_> = drawn.iter().map(|&(i, (name, _))| (name.as_str(), COLORS[i % COLORS.len()])).collect();
        let rules: Vec<_> = baselines.iter().map(|b| [(0.0, b.accuracy), (x_max, b.accuracy)]).collect();
        let lines: Vec<&[(f64, f64)]> =
            drawn.iter().map(|(_, (_, pts))| pts.as_slice()).chain(rules.iter().map(|r| &r[..])).collect();
        draw_legend(chart, &entries, &lines)
    })
}

/// A legend box, a line in each series' colour and its name, in the corner of the plot that the
/// lines (and the baselines) cross least. Drawn here rather than by plotters' series labels, whose
/// default font is named by a string that plotters lowercases: that pulled Unicode's case tables
/// into the page (8 kB gzipped).
fn draw_legend(chart: &Axes<'_, '_>, entries: &[(&str, RGBColor)], lines: &[&[(f64, f64)]]) -> DrawResult {
    const ROW: i32 = 16;
    const MARGIN: i32 = 8;
    if entries.is_empty() {
        return Ok(());
    }
    let area = chart.plotting_area().strip_coord_spec();
    let font = TextStyle::from((FontFamily::SansSerif, 12)).pos(Pos::new(HPos::Left, VPos::Center));
    let mut text_width = 0;
    for (name, _) in entries {
        text_width = text_width.max(area.estimate_text_size(name, &font)?.0 as i32);
    }
    let (w, h) = (text_width + 32, entries.len() as i32 * ROW + 8);
    // Points along every line, in the plot's pixels: the count in a corner is what it would hide.
    let along: Vec<(i32, i32)> = lines
        .iter()
        .flat_map(|line| {
            let px: Vec<_> = line.iter().map(|p| pixel(chart, p)).collect();
            let segments = px.windows(2).flat_map(|s| (0..16).map(move |k| lerp(s[0], s[1], k, 16)));
            segments.chain(px.last().copied()).collect::<Vec<_>>()
        })
        .collect();
    let (width, height) = area.dim_in_pixel();
    let (right, bottom) = (width as i32 - w - MARGIN, height as i32 - h - MARGIN);
    let corners = [(right, MARGIN), (right, bottom), (MARGIN, bottom), (MARGIN, MARGIN)];
    let hidden = |&(x, y): &(i32, i32)| {
        along.iter().filter(|(px, py)| (x..=x + w).contains(px) && (y..=y + h).contains(py)).count()
    };
    let (x, y) = corners.into_iter().min_by_key(hidden).unwrap_or(corners[0]);
    area.draw(&Rectangle::new([(x, y), (x + w, y + h)], WHITE.mix(0.9).filled()))?;
    area.draw(&Rectangle::new([(x, y), (x + w, y + h)], BLACK.mix(0.3)))?;
    for (row, &(name, color)) in entries.iter().enumerate() {
        let mid = y + 4 + ROW / 2 + row as i32 * ROW;
        area.draw(&PathElement::new(vec![(x + 6, mid), (x + 22, mid)], color.stroke_width(2)))?;
        area.draw(&Text::new(name, (x + 26, mid), font.clone()))?;
    }
    Ok(())
}

/// Where a data point lies in the plot, in pixels from the plot's top left.
fn pixel(chart: &Axes<'_, '_>, p: &(f64, f64)) -> (i32, i32) {
    let (x, y) = chart.backend_coord(p);
    let (base_x, base_y) = chart.plotting_area().get_base_pixel();
    (x - base_x, y - base_y)
}

/// Pixels two boxes (left, top, right, bottom) share.
fn overlap(a: (i32, i32, i32, i32), b: (i32, i32, i32, i32)) -> i32 {
    let w = a.2.min(b.2) - a.0.max(b.0);
    let h = a.3.min(b.3) - a.1.max(b.1);
    w.max(0) * h.max(0)
}

/// Writes each label beside its point, on the first side (right below, right above, left below,
/// left above) inside the plot that covers no marker and no label written before, or that covers
/// least: a sweep's points often share a cost (train all and LLRD) or crowd the axis.
fn draw_labels(chart: &Axes<'_, '_>, labels: &[(&str, (f64, f64))]) -> DrawResult {
    const GAP: i32 = 6;
    let area = chart.plotting_area().strip_coord_spec();
    let font = TextStyle::from((FontFamily::SansSerif, 11));
    let (width, height) = area.dim_in_pixel();
    let at: Vec<_> = labels.iter().map(|(_, p)| pixel(chart, p)).collect();
    let mut taken: Vec<_> = at.iter().map(|&(x, y)| (x - GAP, y - GAP, x + GAP, y + GAP)).collect();
    for (&(text, _), &(x, y)) in labels.iter().zip(&at) {
        let (w, h) = area.estimate_text_size(text, &font)?;
        let (w, h) = (w as i32, h as i32);
        let sides = [(x + GAP, y), (x + GAP, y - h), (x - GAP - w, y), (x - GAP - w, y - h)];
        let cost = |&(left, top): &(i32, i32)| {
            let outside = left < 0 || top < 0 || left + w > width as i32 || top + h > height as i32;
            (outside, taken.iter().map(|&t| overlap((left, top, left + w, top + h), t)).sum::<i32>())
        };
        let (left, top) = sides.into_iter().min_by_key(cost).unwrap_or(sides[0]);
        taken.push((left, top, left + w, top + h));
        area.draw(&Text::new(text, (left, top), font.clone()))?;
    }
    Ok(())
}

/// The point `k / n` of the way from `a` to `b`.
fn lerp(a: (i32, i32), b: (i32, i32), k: i32, n: i32) -> (i32, i32) {
    (a.0 + (b.0 - a.0) * k / n, a.1 + (b.1 - a.1) * k / n)
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
    svg_chart((420, 260), title, (x_label, x_max), ("accuracy", y_min, y_max), |chart| {
        draw_baselines(chart, baselines, x_max)?;
        let color = COLORS[0];
        let mut on_front: Vec<(f64, f64)> =
            points.iter().zip(front).filter(|(_, &f)| f).map(|(p, _)| (p.x, p.y)).collect();
        on_front.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        chart.draw_series(LineSeries::new(on_front, color.stroke_width(1)))?;
        for (p, &f) in points.iter().zip(front) {
            if p.beats_baseline {
                let style = if f { color.filled() } else { color.stroke_width(1) };
                let marker = EmptyElement::at((p.x, p.y))
                    + match p.mode {
                        Mode::Freeze => Circle::new((0, 0), 4, style).into_dyn(),
                        // Not plotters' TriangleMarker: its corners come from sin and cos,
                        // which bring libm's trigonometry into the page (3 kB gzipped).
                        Mode::Bitfit if f => Polygon::new(TRIANGLE, style).into_dyn(),
                        Mode::Bitfit => PathElement::new([&TRIANGLE[..], &TRIANGLE[..1]].concat(), style).into_dyn(),
                        Mode::Llrd { .. } => Rectangle::new([(-4, -4), (4, 4)], style).into_dyn(),
                        Mode::Lora { .. } => Rectangle::new([(-6, -2), (6, 2)], style).into_dyn(),
                        Mode::Gradual { .. } => Circle::new((0, 0), 6, color.stroke_width(2)).into_dyn(),
                    };
                chart.draw_series([marker])?;
            } else {
                chart.draw_series([Cross::new((p.x, p.y), 4, RGBColor(0x90, 0x90, 0x90).stroke_width(1))])?;
            }
        }
        let labels: Vec<_> = points.iter().map(|p| (p.label.as_str(), (p.x, p.y))).collect();
        draw_labels(chart, &labels)
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
