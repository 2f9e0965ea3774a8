//! `cargo xtask assets`: the default model and datasets under static/, and the manifest.
//! Idempotent: existing outputs are kept, and every output is a pure function of the pinned
//! packages, so re-running changes no byte.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::manifest::{file_entry, source, DatasetEntry, Manifest};
use crate::split::Split;
use crate::{model_asset, sotu, spam};

/// The workspace: from the variable `cargo run` sets, not the path compiled in, because checkouts
/// sharing one CARGO_TARGET_DIR (CI's clone and a working copy) may run each other's build.
pub fn root() -> PathBuf {
    let xtask = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by `cargo xtask`"));
    xtask.parent().expect("xtask lives in the workspace").to_path_buf()
}

fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut out = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut out, row)?;
        out.push(b'\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Label and per-label counts of JSONL rows (the `label` field), labels in `order`.
fn counts(path: &Path, order: &[String]) -> Result<Vec<usize>> {
    let mut c = vec![0; order.len()];
    for line in std::fs::read_to_string(path)?.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        let label = row["label"].as_str().context("label")?;
        c[order.iter().position(|l| l == label).context("unknown label")?] += 1;
    }
    Ok(c)
}

struct DatasetSpec {
    id: &'static str,
    name: &'static str,
    description: &'static str,
    package: &'static str,
    version: &'static str,
    labels: &'static [&'static str],
}

fn dataset<T: Serialize>(
    static_dir: &Path,
    spec: DatasetSpec,
    build: impl FnOnce() -> Result<Split<T>>,
) -> Result<DatasetEntry> {
    let dir = static_dir.join("data").join(spec.id);
    let (train, validation) = (dir.join("train.jsonl"), dir.join("validation.jsonl"));
    if !(train.exists() && validation.exists()) {
        eprintln!("assets: building dataset {}", spec.id);
        let split = build()?;
        std::fs::create_dir_all(&dir)?;
        write_jsonl(&train, &split.train)?;
        write_jsonl(&validation, &split.validation)?;
    }
    let labels: Vec<String> = spec.labels.iter().map(|s| s.to_string()).collect();
    let train_counts = counts(&train, &labels)?;
    let validation_counts = counts(&validation, &labels)?;
    Ok(DatasetEntry {
        id: spec.id.into(),
        name: spec.name.into(),
        description: spec.description.into(),
        license: "CC0-1.0 contents; PDDL-1.0 database".into(),
        source: source("npm", spec.package, spec.version),
        train_examples: train_counts.iter().sum(),
        validation_examples: validation_counts.iter().sum(),
        labels,
        train_counts,
        validation_counts,
        files: vec![file_entry(static_dir, &train)?, file_entry(static_dir, &validation)?],
    })
}

pub fn prepare() -> Result<()> {
    prepare_into(&root().join("static"))
}

/// Writes every asset and the manifest under `static_dir`, keeping files already there.
pub fn prepare_into(static_dir: &Path) -> Result<()> {
    let static_dir = static_dir.to_path_buf();
    let model = model_asset::prepare(&static_dir)?;
    let spam = dataset(
        &static_dir,
        DatasetSpec {
            id: "spam",
            name: "SpamAssassin: spam or ham",
            description: "Emails (subject and plain-text body, cut at 2000 characters), spam vs ham.",
            package: spam::PACKAGE,
            version: spam::VERSION,
            labels: &["ham", "spam"],
        },
        spam::build,
    )?;
    let sotu = dataset(
        &static_dir,
        DatasetSpec {
            id: "sotu-era",
            name: "State of the Union: which era?",
            description: "Passages of State of the Union addresses from 1913 on, labelled by era.",
            package: sotu::PACKAGE,
            version: sotu::VERSION,
            labels: &sotu::ERAS,
        },
        sotu::build,
    )?;
    let manifest = Manifest { models: vec![model], datasets: vec![spam, sotu] };
    let path = static_dir.join("manifest.json");
    let mut json = serde_json::to_vec_pretty(&manifest)?;
    json.push(b'\n');
    std::fs::write(&path, json)?;
    eprintln!("assets: ready in {}", static_dir.display());
    Ok(())
}
