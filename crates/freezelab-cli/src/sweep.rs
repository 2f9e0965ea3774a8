//! `freezelab sweep`: the same budget under progressively deeper freezing (and, with `--modes`,
//! the modes between frozen and free), as a table and the page's three plots.

use std::path::Path;

use anyhow::{Context, Result};
use burn::tensor::Device;
use freezelab_charts::sweep::{self, Axis, AXES};
use freezelab_core::cache::PrefixCache;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::train::{RunSummary, TrainConfig};
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
    /// On the Pareto front of accuracy against trainable parameters, measured peak memory and
    /// wall time (runs that do not beat the baseline never are), as the page's sweep marks them.
    pub front_params: bool,
    pub front_memory: bool,
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
            front_memory: false,
            front_time: false,
        }
    }
}

/// Whether each run is on the Pareto front its axis's `front` marks (`front` lists only the
/// runs with a cost on that axis; the others are not on it).
fn on_front(summaries: &[RunSummary], axis: &Axis, front: &[bool]) -> Vec<bool> {
    let mut front = front.iter().copied();
    summaries.iter().map(|s| (axis.cost)(s).is_some() && front.next().unwrap_or(false)).collect()
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

/// Writes sweep.csv, sweep.json and the page's plots, sweep-params.svg, sweep-memory.svg and
/// sweep-time.svg (rewritten after every run, so partial sweeps leave results).
fn write(out_dir: &Path, summaries: &[RunSummary]) -> Result<()> {
    let mut rows: Vec<Row> = summaries.iter().map(Row::from).collect();
    let plotted = AXES.each_ref().map(|axis| sweep::points(summaries, axis));
    let [params, memory, time] = [0, 1, 2].map(|i| on_front(summaries, &AXES[i], &plotted[i].1));
    for (i, row) in rows.iter_mut().enumerate() {
        (row.front_params, row.front_memory, row.front_time) = (params[i], memory[i], time[i]);
    }
    let mut csv = csv::Writer::from_path(out_dir.join("sweep.csv"))?;
    for row in &rows {
        csv.serialize(row)?;
    }
    csv.flush()?;
    std::fs::write(out_dir.join("sweep.json"), serde_json::to_vec_pretty(summaries)?)?;
    let baselines = freezelab_charts::distinct(summaries.iter().map(|s| &s.baseline));
    for (axis, plotted) in AXES.iter().zip(plotted) {
        let svg = axis.chart(plotted, baselines.clone()).draw();
        std::fs::write(out_dir.join(format!("sweep-{}.svg", axis.id)), svg)?;
    }
    Ok(())
}
