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
        let files = ModelFiles { config: &self.config, weights: &self.weights, tokenizer: &self.tokenizer };
        Ok(LoadedModel::load(files, num_labels, 0, device)?)
    }
}
