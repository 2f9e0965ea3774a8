//! What every chart shares: white axes with labels, the baselines across them, and where a data
//! point falls in the plot's pixels.

use freezelab_protocol::metrics::Baseline;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

pub(crate) const COLORS: [RGBColor; 2] = [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0xd6, 0x27, 0x28)];

pub(crate) type Axes<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
pub(crate) type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// SVG text of a chart on white axes from 0 to `x_max` and `y_min` to `y_max`, labelled, with
/// `draw` adding the data. A drawing error becomes a short note in place of the chart.
pub(crate) fn svg_chart(
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
pub(crate) fn draw_baselines(chart: &mut Axes<'_, '_>, baselines: &[Baseline], x_max: f64) -> DrawResult {
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

/// Where a data point lies in the plot, in pixels from the plot's top left.
pub(crate) fn pixel(chart: &Axes<'_, '_>, p: &(f64, f64)) -> (i32, i32) {
    let (x, y) = chart.backend_coord(p);
    let (base_x, base_y) = chart.plotting_area().get_base_pixel();
    (x - base_x, y - base_y)
}
