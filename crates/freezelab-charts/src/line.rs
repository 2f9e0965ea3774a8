//! Line charts: a run's loss or accuracy against steps (or seconds), A and B on the same axes.

use freezelab_protocol::metrics::Baseline;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::axes::{draw_baselines, pixel, svg_chart, Axes, DrawResult, COLORS};

/// An SVG line chart, titled and its axes labelled, of the series (name, points) against the
/// step, with `baselines` drawn across it. Empty series are skipped. `y_range` fixes the y-axis;
/// `None` fits it to the data from 0.
pub fn line_chart(
    (title, x_label, y_label): (&str, &str, &str),
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

/// The point `k / n` of the way from `a` to `b`.
fn lerp(a: (i32, i32), b: (i32, i32), k: i32, n: i32) -> (i32, i32) {
    (a.0 + (b.0 - a.0) * k / n, a.1 + (b.1 - a.1) * k / n)
}
