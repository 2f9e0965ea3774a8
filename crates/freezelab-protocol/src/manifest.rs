//! `static/manifest.json`: the default assets `cargo xtask assets` prepared (written there),
//! which the page lists and loads (read there). One schema for both ends.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub models: Vec<ModelEntry>,
    pub datasets: Vec<DatasetEntry>,
}

/// The public package an asset was prepared from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub registry: String,
    pub package: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to `static/`, with forward slashes.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub license: String,
    pub source: Source,
    pub layers: usize,
    pub hidden_size: usize,
    pub parameters: usize,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetEntry {
    pub id: String,
    pub name: String,
    pub description: String,
    pub license: String,
    pub source: Source,
    pub labels: Vec<String>,
    pub train_examples: usize,
    pub validation_examples: usize,
    /// Examples per label, in `labels` order: train then validation.
    pub train_counts: Vec<usize>,
    pub validation_counts: Vec<usize>,
    pub files: Vec<FileEntry>,
}

impl ModelEntry {
    /// The folder holding the model's files, relative to the page.
    pub fn base(&self) -> String {
        let config = self.files.iter().find(|f| f.path.ends_with("/config.json")).map_or("", |f| f.path.as_str());
        format!("static/{}", config.trim_end_matches("/config.json"))
    }

    /// The half-precision download when there is one (half the bytes; upcast in the worker).
    pub fn weights(&self) -> &FileEntry {
        let find = |suffix: &str| self.files.iter().find(|f| f.path.ends_with(suffix));
        find("model.f16.safetensors").or_else(|| find("model.safetensors")).expect("a model has weights")
    }
}

impl DatasetEntry {
    /// The page-relative path of the file whose name ends with `name`.
    pub fn file(&self, name: &str) -> String {
        let f = self.files.iter().find(|f| f.path.ends_with(name)).map_or("", |f| f.path.as_str());
        format!("static/{f}")
    }
}
