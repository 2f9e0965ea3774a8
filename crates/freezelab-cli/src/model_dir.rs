//! A Hugging Face model folder on disk: reads the three files the core takes as bytes.

use std::path::Path;

use anyhow::{bail, Context, Result};
use burn::tensor::Device;
use freezelab_core::loaded::{LoadedModel, ModelFiles};

pub struct ModelDir {
    pub config: Vec<u8>,
    pub weights: Vec<u8>,
    pub tokenizer: Vec<u8>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

impl ModelDir {
    /// `weights` overrides the folder's own weights (a fine-tuned checkpoint). The folder's
    /// `model.safetensors` is preferred over `model.f16.safetensors`.
    pub fn read(dir: &Path, weights: Option<&Path>) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a folder (expected config.json, model.safetensors, tokenizer.json)", dir.display());
        }
        let has_weights =
            weights.is_some() || dir.join("model.safetensors").exists() || dir.join("model.f16.safetensors").exists();
        let missing: Vec<&str> = [
            ("config.json", dir.join("config.json").exists()),
            ("model.safetensors", has_weights),
            ("tokenizer.json", dir.join("tokenizer.json").exists()),
        ]
        .into_iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| name)
        .collect();
        if !missing.is_empty() {
            bail!("{} is not a BERT model folder: missing {}", dir.display(), missing.join(", "));
        }
        let weights = match weights {
            Some(file) => read(file)?,
            None => {
                let f32_file = dir.join("model.safetensors");
                let f16_file = dir.join("model.f16.safetensors");
                if f32_file.exists() || !f16_file.exists() {
                    read(&f32_file)?
                } else {
                    read(&f16_file)?
                }
            }
        };
        Ok(ModelDir { config: read(&dir.join("config.json"))?, weights, tokenizer: read(&dir.join("tokenizer.json"))? })
    }

    pub fn load(&self, num_labels: Option<usize>, device: &Device) -> Result<LoadedModel> {
        self.load_with_seed(num_labels, 0, device)
    }

    pub fn files(&self) -> ModelFiles<'_> {
        ModelFiles { config: &self.config, weights: &self.weights, tokenizer: &self.tokenizer }
    }

    /// `seed` initialises a new head (when the weights carry none).
    pub fn load_with_seed(&self, num_labels: Option<usize>, seed: u64, device: &Device) -> Result<LoadedModel> {
        Ok(LoadedModel::load(self.files(), num_labels, seed, device)?)
    }

    /// Names the model by its content (all three files) for cache keys.
    pub fn fingerprint(&self) -> String {
        self.files().content_id()
    }
}
