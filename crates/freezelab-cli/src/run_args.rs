//! Options shared by `train` and `sweep`, and running one training with them.

use std::path::PathBuf;

use anyhow::Result;
use burn::tensor::Device;
use clap::Args;
use freezelab_core::cache::{CacheKey, PrefixCache};
use freezelab_core::data::{Columns, Dataset};
use freezelab_core::drift;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::loaded::LoadedModel;
use freezelab_core::train::{self, RunContext, RunSummary, TrainConfig};

use crate::data_arg::{self, DataArgs};
use crate::host::CliHost;
use crate::model_dir::ModelDir;

#[derive(Args, Clone)]
pub struct RunArgs {
    /// Model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    pub model: PathBuf,
    /// `spam`, `sotu-era` (from --static) or a .jsonl/.csv/.tsv file.
    #[arg(long)]
    pub data: String,
    #[arg(long, default_value = "static")]
    pub r#static: PathBuf,
    #[arg(long, default_value = "text")]
    pub text_column: String,
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Validation share when --data is a single file.
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f64,
    #[arg(long, default_value_t = 512)]
    pub train_size: usize,
    /// Validation examples to evaluate on (0 = all).
    #[arg(long, default_value_t = 400)]
    pub eval_size: usize,
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Stop after this many steps.
    #[arg(long)]
    pub steps: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub max_len: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    /// Learning rate of the new head.
    #[arg(long, default_value_t = 1e-3)]
    pub head_lr: f64,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Fraction of the steps spent warming the learning rate up from 0.
    #[arg(long, default_value_t = 0.1)]
    pub warmup: f64,
    #[arg(long, default_value_t = 0.9)]
    pub beta1: f64,
    #[arg(long, default_value_t = 0.999)]
    pub beta2: f64,
    /// Clip the gradients to this global L2 norm (0 = no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub max_grad_norm: f64,
    /// Evaluate every N steps as well as after each epoch.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Evaluations before the last use only this many validation examples.
    #[arg(long)]
    pub interim_eval_size: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Cache the frozen prefix's outputs and reuse them every epoch.
    #[arg(long)]
    pub cache: bool,
    /// Cache size limit in MiB (beyond it, examples are recomputed).
    #[arg(long, default_value_t = 1024)]
    pub cache_limit_mib: u64,
    /// Train for this many seconds of training steps (within --epochs), the learning rate
    /// scheduled over the time: give a cheaper plan the time a dearer one took.
    #[arg(long)]
    pub time_budget: Option<f64>,
}

pub struct Loaded {
    pub dir: ModelDir,
    pub dataset: Dataset,
    pub dataset_id: String,
}

impl RunArgs {
    pub fn load(&self) -> Result<Loaded> {
        // Settings are checked before anything is read: a typo fails at once, not after loading.
        self.config(FreezePlan::none(0), self.cache).validate().map_err(anyhow::Error::msg)?;
        let dir = ModelDir::read(&self.model, None)?;
        let (dataset, dataset_id) = data_arg::load(&DataArgs {
            data: &self.data,
            static_dir: &self.r#static,
            columns: Columns { text: self.text_column.clone(), label: self.label_column.clone() },
            validation_fraction: self.val_fraction,
            seed: self.seed,
        })?;
        Ok(Loaded { dir, dataset, dataset_id })
    }

    pub fn config(&self, freeze: FreezePlan, cache: bool) -> TrainConfig {
        TrainConfig {
            freeze,
            train_size: self.train_size,
            eval_size: (self.eval_size > 0).then_some(self.eval_size),
            epochs: self.epochs,
            max_steps: self.steps,
            batch_size: self.batch,
            max_len: self.max_len,
            lr: self.lr,
            head_lr: self.head_lr,
            weight_decay: self.weight_decay,
            warmup_fraction: self.warmup,
            beta1: self.beta1,
            beta2: self.beta2,
            grad_clip_norm: (self.max_grad_norm != 0.0).then_some(self.max_grad_norm),
            eval_every: self.eval_every,
            interim_eval_size: self.interim_eval_size,
            seed: self.seed,
            cache,
            cache_limit_bytes: self.cache_limit_mib << 20,
            time_budget_seconds: self.time_budget,
        }
    }
}

/// Loads a fresh model on `device` (autodiff) and trains it once.
pub async fn run_once(
    loaded: &Loaded,
    cfg: &TrainConfig,
    device: &Device,
    cache: &mut PrefixCache,
    host: &mut CliHost,
) -> Result<(LoadedModel, RunSummary)> {
    let labels = loaded.dataset.labels.len();
    let mut model = loaded.dir.load_with_seed(Some(labels), cfg.seed, &device.clone().autodiff())?;
    let key = CacheKey {
        model: loaded.dir.fingerprint(),
        dataset: loaded.dataset_id.clone(),
        freeze_line: 0,
        max_len: cfg.max_len,
    };
    let ctx = RunContext {
        config: &model.config,
        tokenizer: &model.tokenizer,
        data: &loaded.dataset,
        cfg,
        cache_key: key,
        cache,
        host,
        replica: None,
    };
    let (trained, mut summary) = train::train(model.classifier, ctx).await?;
    let texts: Vec<&str> = loaded.dataset.validation.iter().map(|(t, _)| t.as_str()).collect();
    summary.drift = drift::measure(&trained, loaded.dir.files(), cfg.seed, &texts, cfg.max_len).await?;
    model.classifier = trained;
    Ok((model, summary))
}
