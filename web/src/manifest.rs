//! The part of `static/manifest.json` (written by `cargo xtask assets`) the page reads.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Manifest {
    pub models: Vec<ModelEntry>,
    pub datasets: Vec<DatasetEntry>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub layers: usize,
    pub parameters: usize,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DatasetEntry {
    pub id: String,
    pub name: String,
    pub description: String,
    pub labels: Vec<String>,
    pub train_examples: usize,
    pub validation_examples: usize,
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
    pub fn file(&self, name: &str) -> String {
        let f = self.files.iter().find(|f| f.path.ends_with(name)).map_or("", |f| f.path.as_str());
        format!("static/{f}")
    }
}
