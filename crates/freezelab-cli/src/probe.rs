//! `freezelab probe`: what each block of the pretrained model already knows about the task, as
//! the accuracy of a linear probe on its pooled output (freezelab_core::probe), beside the
//! majority class; `--out` adds the map of the validation examples as the pretrained model sees
//! them (the page's "Map of the examples").

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::map::{self, disagreements, ExampleMap, DISAGREEMENTS_PER_KIND};
use freezelab_core::probe::{self, pooled_features, Features, ProbeReport};
use freezelab_core::train::RunSummary;
use serde::Serialize;

use crate::run_args::RunArgs;

fn texts(set: &[(String, usize)]) -> Vec<&str> {
    set.iter().map(|(t, _)| t.as_str()).collect()
}

/// What `--features-out` writes: every block's features of the examples the probe saw.
#[derive(Serialize)]
struct FeatureSet<'a> {
    labels: &'a [String],
    c: f64,
    train_labels: Vec<usize>,
    train: Vec<Features>,
    validation_labels: Vec<usize>,
    validation: Vec<Features>,
}

/// What `--out` writes: the report's fields, and the map.
#[derive(Serialize)]
struct Out<'a> {
    #[serde(flatten)]
    report: &'a ProbeReport,
    map: ExampleMap,
}

pub async fn run(run: &RunArgs, out: Option<&Path>, features_out: Option<&Path>, device: &Device) -> Result<()> {
    let loaded = run.load()?;
    let cfg = run.config(FreezePlan::none(0), false);
    let (train, validation) = freezelab_core::train::examples(&loaded.dataset, &cfg);
    let names = &loaded.dataset.labels.names;
    let model = loaded.dir.load(Some(names.len()), device)?;
    let labels = |set: &[(String, usize)]| set.iter().map(|(_, l)| *l).collect::<Vec<_>>();
    eprintln!("probe: pooling every block's output of {} + {} examples", train.len(), validation.len());
    let train_features = pooled_features(&model, &texts(&train), cfg.max_len, cfg.batch_size).await?;
    let validation_features = pooled_features(&model, &texts(&validation), cfg.max_len, cfg.batch_size).await?;
    let (train_labels, validation_labels) = (labels(&train), labels(&validation));
    let report = probe::report(&train_features, &train_labels, &validation_features, &validation_labels, names.len());
    println!("block      probe accuracy  (logistic regression, C = {}, on the pretrained model)", report.c);
    for row in &report.rows {
        println!("{:<10} {:.4}", row.block, row.accuracy);
    }
    println!("majority   {:.4}  (always the training set's most common class)", report.majority_class);
    if let Some(path) = out {
        let top = validation_features.last().context("the model has no blocks")?;
        let out = Out { report: &report, map: map::map(&top.rows, top.dim, &validation, None) };
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = features_out {
        let set = FeatureSet {
            labels: names,
            c: report.c,
            train_labels,
            train: train_features,
            validation_labels,
            validation: validation_features,
        };
        std::fs::write(path, serde_json::to_vec(&set)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The examples of A's map B's answers differ on in rightness ([`disagreements`]), printed and
/// written as JSON; both summaries need their maps (`freezelab train --out` writes them).
pub fn disagree(a: &Path, b: &Path, out: Option<&Path>) -> Result<()> {
    let read = |path: &Path| -> Result<(RunSummary, ExampleMap)> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let summary: RunSummary =
            serde_json::from_slice(&text).with_context(|| format!("{}: not a run summary", path.display()))?;
        let map = summary.examples.clone().with_context(|| {
            format!("{}: the summary has no map of the examples (`freezelab train --out` writes one)", path.display())
        })?;
        Ok((summary, map))
    };
    let ((summary, map_a), (_, map_b)) = (read(a)?, read(b)?);
    if map_a.points.len() != map_b.points.len() {
        bail!(
            "the two runs were scored on different validation examples ({} and {})",
            map_a.points.len(),
            map_b.points.len()
        );
    }
    let table = disagreements(&map_a, &map_b, DISAGREEMENTS_PER_KIND);
    let name = |k: usize| summary.labels.get(k).cloned().unwrap_or_else(|| k.to_string());
    println!("example  label       A answered          B answered          text");
    for d in &table {
        let answer = |(k, p): (usize, f32)| format!("{} ({:.0}%)", name(k), 100.0 * p);
        println!("{:>7}  {:<10}  {:<18}  {:<18}  {}", d.example, name(d.label), answer(d.a), answer(d.b), d.text);
    }
    if table.is_empty() {
        println!("(A and B are right and wrong on the same examples)");
    }
    if let Some(path) = out {
        std::fs::write(path, serde_json::to_vec_pretty(&table)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
