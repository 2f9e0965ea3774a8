//! `--data`: a default dataset id from static/ (`spam`, `sotu-era`) or a file of your own.

use std::path::Path;

use anyhow::{Context, Result};
use freezelab_core::data::{parse, Columns, Dataset, Format};

pub struct DataArgs<'a> {
    pub data: &'a str,
    pub static_dir: &'a Path,
    pub columns: Columns,
    /// For a single file: the share split off for validation.
    pub validation_fraction: f64,
    pub seed: u64,
}

/// Loads the dataset and returns it with an id for cache keys and reports.
pub fn load(args: &DataArgs) -> Result<(Dataset, String)> {
    let default_dir = args.static_dir.join("data").join(args.data);
    if default_dir.join("train.jsonl").exists() {
        let read = |split: &str| -> Result<_> {
            let path = default_dir.join(format!("{split}.jsonl"));
            let name = path.display().to_string();
            let bytes = std::fs::read(&path).with_context(|| format!("reading {name}"))?;
            Ok((parse(&name, &bytes, Format::Jsonl, &Columns::default())?, name))
        };
        let ((train, tname), (validation, vname)) = (read("train")?, read("validation")?);
        return Ok((Dataset::new(train, validation, &tname, &vname)?, args.data.to_string()));
    }
    let path = Path::new(args.data);
    if !path.is_file() {
        anyhow::bail!(
            "--data {}: neither a dataset in {} (run `cargo xtask assets`) nor a file",
            args.data,
            args.static_dir.join("data").display()
        );
    }
    let name = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("reading {name}"))?;
    let examples = parse(&name, &bytes, Format::from_file_name(&name)?, &args.columns)?;
    let dataset = Dataset::from_single(examples, args.validation_fraction, args.seed, &name)?;
    Ok((dataset, format!("{name}#val={}", args.validation_fraction)))
}
