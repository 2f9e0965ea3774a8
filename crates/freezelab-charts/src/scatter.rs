//! Scatter charts: a sweep's accuracy against what each plan costs, its Pareto front joined.

use freezelab_protocol::freeze::Mode;
use freezelab_protocol::metrics::Baseline;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::axes::{accuracy_range, draw_baselines, pixel, svg_chart, Axes, DrawResult, COLORS};

/// BitFit's marker, pointing up, in pixels around its point.
const TRIANGLE: [(i32, i32); 3] = [(0, -5), (4, 3), (-4, 3)];

/// One labelled point of a scatter chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
