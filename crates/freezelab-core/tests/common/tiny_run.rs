//! The tiny random model (hidden 32, 2 layers) and its seeded training run, dropout on: the
//! native tests pin its logits and losses in tests/fixtures/, the browser tests (tests/wasm.rs
//! includes this file) check that wasm computes the same.

use burn::tensor::Device;
use freezelab_core::cache::{CacheKey, PrefixCache};
use freezelab_core::data::Dataset;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_core::synthetic;
use freezelab_core::train::{self, RunContext, RunSummary, TrainConfig};

use super::recorder::Recorder;

/// Losses of [`train`] with `FreezePlan::none(2)`, 2 epochs, [`PINNED_STEPS`] steps.
pub const LOSSES: &str = include_str!("../../../../tests/fixtures/tiny_losses.json");
pub const PINNED_STEPS: usize = 12;

pub fn model(device: &Device) -> LoadedModel {
    let (config, weights, tokenizer) = synthetic::model_files(32, 2, 2, 7);
    let files = ModelFiles { config: &config, weights: &weights, tokenizer: tokenizer.as_bytes() };
    LoadedModel::load(files, Some(2), 7, device).unwrap()
}

/// Trains the tiny model on `device` (autodiff added) under `plan`: losses, summary, trained
/// model, cache.
pub async fn train(
    device: &Device,
    plan: FreezePlan,
    epochs: usize,
    max_steps: Option<usize>,
) -> (Vec<f64>, RunSummary, LoadedModel, PrefixCache) {
    let device = device.clone().autodiff();
    let mut model = model(&device);
    let data = Dataset::from_single(synthetic::examples(96, 1), 0.25, 0, "synthetic").unwrap();
    let cfg = TrainConfig {
        freeze: plan,
        train_size: 64,
        eval_size: None,
        epochs,
        batch_size: 8,
        max_len: 16,
        lr: 3e-3,
        head_lr: 1e-2,
        cache: true,
        max_steps,
        ..TrainConfig::default()
    };
    let key = CacheKey { model: "random-7".into(), dataset: "synthetic".into(), freeze_line: 0, max_len: 16 };
    let mut host = Recorder::default();
    let mut cache = PrefixCache::new();
    let ctx = RunContext {
        config: &model.config,
        tokenizer: &model.tokenizer,
        data: &data,
        cfg: &cfg,
        cache_key: key,
        cache: &mut cache,
        host: &mut host,
        replica: None,
    };
    let (trained, summary) = train::train(model.classifier, ctx).await.unwrap();
    model.classifier = trained;
    (host.losses(), summary, model, cache)
}
