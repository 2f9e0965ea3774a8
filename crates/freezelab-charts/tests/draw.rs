//! The charts as SVG text: axes, baselines, markers, legends and labels where a reader can see
//! them. Natively: the charts worker runs the same code in the browser.

use freezelab_charts::{accuracy_range, line_chart, scatter_chart, Chart, Point};
use freezelab_protocol::freeze::Mode;
use freezelab_protocol::metrics::Baseline;

fn ham(accuracy: f64) -> Baseline {
    Baseline { label: "ham".into(), accuracy, macro_f1: 0.4 }
}

/// What the page posts comes back whole, and an accuracy chart's axis fits its points.
#[test]
fn a_chart_travels_as_bytes_and_draws_as_asked() {
    let series = vec![("A · #1 none".to_string(), vec![(1.0, 0.72), (2.0, f64::NAN)])];
    let chart = Chart::Line {
        title: "validation accuracy".into(),
        x_label: "step".into(),
        y_label: "accuracy".into(),
        series: series.clone(),
        accuracy: true,
        baselines: vec![ham(0.68)],
    };
    let back = Chart::decode(&chart.encode()).expect("decodes");
    assert_eq!(back.encode(), chart.encode());
    let range = accuracy_range([0.72], &[ham(0.68)]);
    assert_eq!(
        back.draw(),
        line_chart(("validation accuracy", "step", "accuracy"), &series, Some(range), &[ham(0.68)])
    );
    assert!(Chart::decode(&chart.encode()[..3]).is_err());
}

/// Accuracy charts fit their y-axis to the runs and the baseline, so a few points show.
#[test]
fn the_accuracy_axis_fits_the_data_and_the_baseline() {
    // Runs at 0.72–0.73 over a 0.68 baseline: the axis spans 0.60–0.80, not 0–1.
    assert_eq!(accuracy_range([0.72, 0.73], &[ham(0.68)]), (0.6, 0.8));
    // A baseline below every run still shows.
    assert!(accuracy_range([0.95], &[ham(0.5)]).0 <= 0.45);
    // Clamped to 0–1, and 0–1 with nothing to show.
    assert_eq!(accuracy_range([0.02, 0.99], &[]), (0.0, 1.0));
    assert_eq!(accuracy_range([], &[]), (0.0, 1.0));
}

#[test]
fn charts_draw_the_labelled_baseline() {
    let svg =
        line_chart(("validation accuracy", "step", "accuracy"), &[("A".into(), vec![(1.0, 0.7)])], None, &[ham(0.68)]);
    assert!(svg.contains("majority class: always ‘ham’ 68.0%"), "{svg}");
    let point = Point { label: "head-only".into(), mode: Mode::Freeze, x: 1.0, y: 0.55, beats_baseline: false };
    assert!(scatter_chart("accuracy vs time", "s", std::slice::from_ref(&point), &[false], &[ham(0.68)])
        .contains("always ‘ham’"));
    // Each mode its marker: BitFit a triangle, LLRD a square, the freeze depths a circle.
    let at = |mode, x| Point { mode, x, y: 0.9, beats_baseline: true, ..point.clone() };
    let count = |points: &[Point], tag: &str| scatter_chart("t", "x", points, &[true, false], &[]).matches(tag).count();
    let modes = [at(Mode::Bitfit, 1.0), at(Mode::Llrd { decay: 0.9 }, 2.0)];
    let circles = [at(Mode::Freeze, 1.0), at(Mode::Freeze, 2.0)];
    assert_eq!((count(&modes, "<polygon"), count(&modes, "<circle")), (1, 0));
    assert_eq!(count(&modes, "<rect"), count(&circles, "<rect") + 1);
    // Off the front the triangle is hollow: an outline, no filled polygon.
    let hollow = [at(Mode::Llrd { decay: 0.9 }, 1.0), at(Mode::Bitfit, 2.0)];
    assert_eq!(count(&hollow, "<polygon"), 0);
    assert_eq!(count(&hollow, "<polyline"), count(&circles, "<polyline") + 1);
}

#[test]
fn the_legend_names_each_drawn_series_in_its_colour() {
    let series = |b: Vec<(f64, f64)>| {
        vec![("A · #1 none".to_string(), vec![(1.0, 0.7), (2.0, 0.8)]), ("B · #2 head-only".to_string(), b)]
    };
    let both = line_chart(("loss", "step", "loss"), &series(vec![(1.0, 0.6)]), None, &[]);
    for (name, colour) in [("A · #1 none", "#1F77B4"), ("B · #2 head-only", "#D62728")] {
        assert_eq!(both.matches(name).count(), 1, "{both}");
        assert!(both.contains(&format!("stroke=\"{colour}\"")), "{both}");
    }
    // A series without points is neither drawn nor named; with none there is no legend box.
    let only_a = line_chart(("loss", "step", "loss"), &series(vec![]), None, &[]);
    assert!(only_a.contains("A · #1 none") && !only_a.contains("B · #2"), "{only_a}");
    let empty = line_chart(("loss", "step", "loss"), &[("A".into(), vec![])], None, &[]);
    assert_eq!(empty.matches("<rect").count() + 2, only_a.matches("<rect").count(), "{empty}");
}

#[test]
fn scatter_labels_of_points_in_one_place_do_not_overwrite_each_other() {
    // Where the SVG writes `label`: its text element's x and y.
    let written_at = |svg: &str, label: &str| -> (i32, i32) {
        let tag = svg.split("<text").find(|t| t.contains(&format!(">\n{label}\n"))).expect(svg);
        let attr =
            |name: &str| tag.split(&format!(" {name}=\"")).nth(1).and_then(|v| v.split('"').next()?.parse().ok());
        (attr("x").expect(tag), attr("y").expect(tag))
    };
    let at = |label: &str, x: f64| Point { label: label.into(), mode: Mode::Freeze, x, y: 0.9, beats_baseline: true };
    // Train all and LLRD share a cost; head only sits on the axis.
    let points = [at("none", 10.0), at("llrd-0.9", 10.0), at("lora-8", 10.0), at("bitfit", 10.0), at("head-only", 0.0)];
    let svg = scatter_chart("t", "x", &points, &[false; 5], &[]);
    let places: Vec<_> = points.iter().map(|p| written_at(&svg, &p.label)).collect();
    for (i, a) in places.iter().enumerate() {
        assert!(places[i + 1..].iter().all(|b| b != a), "{places:?}");
    }
    // Four sides for four labels: each beside the point, two to its left and two to its right.
    let left = places[..4].iter().filter(|p| p.0 < places[0].0).count();
    assert_eq!(left, 2, "{places:?}");
    // On the axis the label goes right, inside the plot.
    assert!(written_at(&svg, "head-only").0 > 46 + 8, "{svg}");
}

#[test]
fn the_legend_sits_in_a_corner_the_lines_leave_free() {
    // The legend's background: its one rectangle at opacity 0.9, read as (x, y).
    let legend_at = |svg: &str| -> (f64, f64) {
        let tag = svg.split("<rect").find(|t| t.contains("opacity=\"0.9\"")).expect(svg);
        let attr =
            |name: &str| tag.split(&format!(" {name}=\"")).nth(1).and_then(|v| v.split('"').next()?.parse().ok());
        (attr("x").expect(tag), attr("y").expect(tag))
    };
    let chart =
        |points: Vec<(f64, f64)>| line_chart(("t", "step", "y"), &[("A".into(), points)], Some((0.0, 1.0)), &[]);
    let line = |from: f64, to: f64| (0..=10).map(|i| (i as f64, from + (to - from) * i as f64 / 10.0)).collect();
    // A falling loss leaves the upper right free, a rising accuracy the lower right.
    let (falling, rising) = (legend_at(&chart(line(0.9, 0.1))), legend_at(&chart(line(0.1, 0.9))));
    assert!(falling.0 > 280.0 && falling.1 < 130.0, "{falling:?}");
    assert!(rising.0 > 280.0 && rising.1 > 130.0, "{rising:?}");
    // Flat along the top: the bottom.
    assert!(legend_at(&chart(line(0.95, 0.95))).1 > 130.0);
}
