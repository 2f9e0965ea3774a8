//! static/manifest.json: what the assets command wrote, for the page and the CLI to list.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Serialize)]
pub struct Manifest {
    pub models: Vec<ModelEntry>,
    pub datasets: Vec<DatasetEntry>,
}

#[derive(Serialize)]
pub struct Source {
    pub registry: &'static str,
    pub package: &'static str,
    pub version: &'static str,
}

#[derive(Serialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

impl FileEntry {
    /// Describes `path` (relative to `root`, written with forward slashes).
    pub fn of(root: &Path, path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)?;
        let rel = path.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
        Ok(FileEntry { path: rel, bytes: bytes.len() as u64, sha256: format!("{:x}", Sha256::digest(&bytes)) })
    }
}

#[derive(Serialize)]
pub struct ModelEntry {
    pub id: &'static str,
    pub name: &'static str,
    pub license: &'static str,
    pub source: Source,
    pub layers: usize,
    pub hidden_size: usize,
    pub parameters: usize,
    pub files: Vec<FileEntry>,
}

#[derive(Serialize)]
pub struct DatasetEntry {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub license: &'static str,
    pub source: Source,
    pub labels: Vec<String>,
    pub train_examples: usize,
    pub validation_examples: usize,
    /// Examples per label, in `labels` order: train then validation.
    pub train_counts: Vec<usize>,
    pub validation_counts: Vec<usize>,
    pub files: Vec<FileEntry>,
}
