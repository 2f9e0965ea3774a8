//! `freezelab sweep`: the same budget under progressively deeper freezing (and, with `--modes`,
//! the modes between frozen and free), as a table and a plot.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::Device;
use freezelab_core::cache::PrefixCache;
use freezelab_core::freeze::{FreezePlan, Mode};
use freezelab_core::metrics::results_front;
use freezelab_core::train::{RunSummary, TrainConfig};
use plotters::prelude::*;
use serde::Serialize;

use crate::host::CliHost;
use crate::run_args::{run_once, RunArgs};

/// Which plans a sweep trains.
pub enum Plans {
    /// Train all, freeze embeddings, bottom 2, 4, …, head only.
    Depths,
    /// The depths, then BitFit and LLRD 0.9 on the whole encoder.
    Modes,
    /// Plan specs separated by ';'.
    List(String),
}

impl Plans {
    fn plans(&self, layers: usize) -> Result<Vec<FreezePlan>> {
        Ok(match self {
            Plans::Depths => FreezePlan::sweep(layers),
            Plans::Modes => FreezePlan::sweep_modes(layers),
            Plans::List(list) => {
                list.split(';').map(|spec| FreezePlan::parse(spec, layers)).collect::<Result<_, _>>()?
            }
        })
    }
}

#[derive(Serialize)]
pub struct Row {
    pub freeze: String,
    /// `freeze` (the boxes alone), `bitfit`, `lora`, `llrd` or `gradual`.
    pub mode: &'static str,
    /// The encoder's learning rate.
    pub lr: f64,
    pub trainable_params: usize,
    pub computed_memory_bytes: u64,
    pub measured_peak_bytes: Option<u64>,
    pub train_seconds: f64,
    pub wall_seconds: f64,
    pub examples_per_second: f64,
    pub val_accuracy: f64,
    pub macro_f1: f64,
    /// Always answering the majority label, and whether the run clears it by the margin.
    pub baseline_accuracy: f64,
    pub beats_baseline: bool,
    /// On the Pareto front of accuracy against trainable parameters, and against training time
    /// (runs that do not beat the baseline never are), as the page's sweep marks them.
    pub front_params: bool,
    pub front_time: bool,
}

impl From<&RunSummary> for Row {
    fn from(s: &RunSummary) -> Self {
        Row {
            freeze: s.freeze.clone(),
            mode: s.config.freeze.mode.id(),
            lr: s.config.lr,
            trainable_params: s.trainable_params,
            computed_memory_bytes: s.memory.computed_total,
            measured_peak_bytes: s.memory.measured_peak_bytes,
            train_seconds: s.train_seconds,
            wall_seconds: s.wall_seconds,
            examples_per_second: s.examples_per_second,
            val_accuracy: s.val_accuracy,
            macro_f1: s.macro_f1,
            baseline_accuracy: s.baseline.accuracy,
            beats_baseline: s.baseline.beaten_by(s.val_accuracy),
            front_params: false,
            front_time: false,
        }
    }
}

/// Marks each row's place on the two fronts.
fn mark_fronts(rows: &mut [Row]) {
    let front = |cost: fn(&Row) -> f64, rows: &[Row]| {
        results_front(&rows.iter().map(|r| (cost(r), r.val_accuracy, r.beats_baseline)).collect::<Vec<_>>())
    };
    let by_params = front(|r| r.trainable_params as f64, rows);
    let by_time = front(|r| r.train_seconds, rows);
    for ((row, p), t) in rows.iter_mut().zip(by_params).zip(by_time) {
        row.front_params = p;
        row.front_time = t;
    }
}

pub async fn run(args: &RunArgs, which: &Plans, out_dir: &Path, device: &Device) -> Result<Vec<RunSummary>> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let loaded = args.load()?;
    let layers = freezelab_core::config::BertConfig::from_json(&loaded.dir.config)?.num_hidden_layers;
    let plans = which.plans(layers)?;
    let mut cache = PrefixCache::new();
    let mut summaries = Vec::new();
    for plan in plans {
        // Each mode at its suggested encoder rate (BitFit's is higher); `--lr` for the rest.
        let lr = plan.mode.suggested_lr(args.lr);
        let cfg = TrainConfig { lr, ..args.config(plan.clone(), args.cache) };
        let mut host = CliHost::new(&plan.label(), false);
        let (_, summary) = run_once(&loaded, &cfg, device, &mut cache, &mut host).await?;
        eprintln!(
            "{:>12}: accuracy {:.3}, macro-F1 {:.3}, {} trainable, {:.1} ex/s, {:.0} s",
            summary.freeze,
            summary.val_accuracy,
            summary.macro_f1,
            summary.trainable_params,
            summary.examples_per_second,
            summary.wall_seconds
        );
        summaries.push(summary);
        write(out_dir, &summaries)?;
    }
    Ok(summaries)
}

/// Writes sweep.csv, sweep.json and sweep.svg (rewritten after every run, so partial sweeps
/// leave results).
fn write(out_dir: &Path, summaries: &[RunSummary]) -> Result<()> {
    let mut rows: Vec<Row> = summaries.iter().map(Row::from).collect();
    mark_fronts(&mut rows);
    let mut csv = csv::Writer::from_path(out_dir.join("sweep.csv"))?;
    for row in &rows {
        csv.serialize(row)?;
    }
    csv.flush()?;
    std::fs::write(out_dir.join("sweep.json"), serde_json::to_vec_pretty(summaries)?)?;
    plot(&out_dir.join("sweep.svg"), &rows)
}

fn plot(path: &Path, rows: &[Row]) -> Result<()> {
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(480);
    let max_params = rows.iter().map(|r| r.trainable_params).max().unwrap_or(1) as f64 / 1e6;
    let max_time = rows.iter().map(|r| r.train_seconds).fold(1.0, f64::max);
    // The y-axis fits the accuracies and the baseline, so a few points of difference show.
    let baseline = rows.first().map_or(0.0, |r| r.baseline_accuracy);
    let lowest = rows.iter().map(|r| r.val_accuracy).fold(baseline, f64::min);
    let highest = rows.iter().map(|r| r.val_accuracy).fold(baseline, f64::max);
    let y_range = (lowest - 0.05).max(0.0)..(highest + 0.05).min(1.0);
    type Axis = (&'static str, f64, fn(&Row) -> f64, fn(&Row) -> bool);
    let panels: [Axis; 2] = [
        ("trainable parameters (millions)", max_params, |r| r.trainable_params as f64 / 1e6, |r| r.front_params),
        ("training time (s)", max_time, |r| r.train_seconds, |r| r.front_time),
    ];
    for (area, (x_label, x_max, x_of, on_front)) in [&left, &right].into_iter().zip(panels) {
        let mut chart = ChartBuilder::on(area)
            .caption(format!("validation accuracy vs {x_label}"), ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..x_max * 1.1, y_range.clone())?;
        chart.configure_mesh().x_desc(x_label).y_desc("accuracy").draw()?;
        let points: Vec<(f64, f64)> = rows.iter().map(|r| (x_of(r), r.val_accuracy)).collect();
        // The freeze depths joined in sweep order; the other modes stand alone.
        let depths = rows.iter().zip(&points).filter(|(r, _)| r.mode == Mode::Freeze.id()).map(|(_, &p)| p);
        chart.draw_series(LineSeries::new(depths, &BLUE))?;
        // The Pareto front in green; a run below the baseline as a grey cross, as in the page.
        let mut front: Vec<(f64, f64)> =
            rows.iter().zip(&points).filter(|(r, _)| on_front(r)).map(|(_, &p)| p).collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(front.clone(), GREEN.stroke_width(2)))?;
        chart.draw_series(rows.iter().zip(&points).map(|(r, &p)| {
            let style = if on_front(r) { GREEN.filled() } else { BLUE.filled() };
            EmptyElement::at(p)
                + match (r.beats_baseline, r.mode) {
                    (false, _) => Cross::new((0, 0), 4, RGBColor(128, 128, 128).stroke_width(2)).into_dyn(),
                    (true, "bitfit") => TriangleMarker::new((0, 0), 5, style).into_dyn(),
                    (true, "llrd") => Rectangle::new([(-4, -4), (4, 4)], style).into_dyn(),
                    (true, "lora") => Rectangle::new([(-6, -2), (6, 2)], style).into_dyn(),
                    (true, "gradual") => {
                        Circle::new((0, 0), 6, ShapeStyle { filled: false, stroke_width: 2, ..style }).into_dyn()
                    }
                    (true, _) => Circle::new((0, 0), 4, style).into_dyn(),
                }
        }))?;
        let offset = (y_range.end - y_range.start) / 25.0;
        chart.draw_series(
            rows.iter()
                .zip(&points)
                .map(|(r, &p)| Text::new(r.freeze.clone(), (p.0, p.1 - offset), ("sans-serif", 11))),
        )?;
        chart.draw_series([Text::new(
            "green: Pareto front · ▲ BitFit · ▬ LoRA · ■ LLRD · ◯ gradual · grey ×: not above the majority class",
            (x_max * 0.25, y_range.end - offset),
            ("sans-serif", 11).into_font().color(&RGBColor(60, 60, 60)),
        )])?;
        let red = RED.stroke_width(1);
        chart.draw_series(LineSeries::new([(0.0, baseline), (x_max * 1.1, baseline)], red))?;
        chart.draw_series([Text::new(
            format!("majority class {:.1}%", 100.0 * baseline),
            (0.0, baseline + offset / 2.0),
            ("sans-serif", 11).into_font().color(&RED),
        )])?;
    }
    root.present()?;
    Ok(())
}
