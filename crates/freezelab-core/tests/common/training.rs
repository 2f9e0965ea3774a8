//! A tiny random model on synthetic data, and a recording host, for training tests.

use burn::tensor::Device;
use freezelab_core::cache::{CacheKey, PrefixCache};
use freezelab_core::config::BertConfig;
use freezelab_core::data::Dataset;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_core::synthetic;
use freezelab_core::tokenize::Tokenizer;
use freezelab_core::train::{self, Replica, RunContext, RunSummary, TrainConfig};
use freezelab_core::weights::random_checkpoint;

pub use super::recorder::Recorder;

pub fn model(config: &BertConfig, seed: u64, device: &Device) -> LoadedModel {
    let weights = random_checkpoint(config, seed);
    let config_json = serde_json::to_vec(config).unwrap();
    let tokenizer = synthetic::tokenizer_json();
    let files = ModelFiles { config: &config_json, weights: &weights, tokenizer: tokenizer.as_bytes() };
    LoadedModel::load(files, Some(2), seed, device).unwrap()
}

pub fn dataset(n: usize) -> Dataset {
    Dataset::from_single(synthetic::examples(n, 1), 0.25, 0, "synthetic").unwrap()
}

/// Burn's random generator (dropout) is process-wide: runs that overlap in time would draw
/// from it in turns and lose reproducibility, so test runs take turns.
static ONE_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The process's wgpu device, started once: cubecl registers one runtime per device and
/// refuses a second start ("Service already initialized") from a test running beside another.
#[cfg(feature = "gpu")]
static WGPU: std::sync::OnceLock<Result<Device, String>> = std::sync::OnceLock::new();

/// Held by a test while it uses the wgpu device: one test's buffers never show in another's
/// count of the device's pool.
#[cfg(feature = "gpu")]
static ONE_GPU_USER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A wgpu device when this machine has an adapter, the test's turn on it held while the guard
/// lives; otherwise `None`, after saying so.
#[cfg(feature = "gpu")]
pub fn wgpu_device(test: &str) -> Option<(Device, std::sync::MutexGuard<'static, ()>)> {
    match WGPU.get_or_init(start_wgpu) {
        Ok(device) => {
            let turn = ONE_GPU_USER.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("{test}: running on wgpu ({device:?})");
            Some((device.clone(), turn))
        }
        Err(why) => {
            super::skip(test, why);
            None
        }
    }
}

#[cfg(feature = "gpu")]
fn start_wgpu() -> Result<Device, String> {
    match std::panic::catch_unwind(|| Device::wgpu_options().init()) {
        Ok(Ok(device)) => Ok(device),
        Ok(Err(e)) => Err(format!("on wgpu: no adapter ({e})")),
        Err(_) => Err("on wgpu: wgpu panicked while looking for an adapter".into()),
    }
}

/// Held while a test draws from Burn's random generator.
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn run(config: &BertConfig, cfg: &TrainConfig, cache: &mut PrefixCache) -> (LoadedModel, RunSummary, Recorder) {
    run_on(&Device::flex(), config, cfg, cache)
}

pub fn run_on(
    device: &Device,
    config: &BertConfig,
    cfg: &TrainConfig,
    cache: &mut PrefixCache,
) -> (LoadedModel, RunSummary, Recorder) {
    run_keyed(device, config, cfg, "random-7", cache)
}

/// [`run_on`] with the model named `model_key` in the cache key (as a caller would name it).
pub fn run_keyed(
    device: &Device,
    config: &BertConfig,
    cfg: &TrainConfig,
    model_key: &str,
    cache: &mut PrefixCache,
) -> (LoadedModel, RunSummary, Recorder) {
    let _turn = turn();
    let device = device.clone().autodiff();
    let mut m = model(config, 7, &device);
    let data = dataset(96);
    let mut host = Recorder::default();
    let ctx = context((&m.config, &m.tokenizer, model_key), (&data, cfg), cache, &mut host, None);
    let (trained, summary) = pollster::block_on(train::train(m.classifier, ctx)).unwrap();
    m.classifier = trained;
    (m, summary, host)
}

/// The run of `cfg` on a model (its config, tokenizer, and the name its cache key gives it) and
/// `data`.
pub fn context<'a>(
    (config, tokenizer, model_key): (&'a BertConfig, &'a Tokenizer, &str),
    (data, cfg): (&'a Dataset, &'a TrainConfig),
    cache: &'a mut PrefixCache,
    host: &'a mut Recorder,
    replica: Option<Replica<'a>>,
) -> RunContext<'a> {
    let key = CacheKey { model: model_key.into(), dataset: "synthetic".into(), freeze_line: 0, max_len: cfg.max_len };
    RunContext { config, tokenizer, data, cfg, cache_key: key, cache, host, replica }
}

pub fn small_cfg(plan: FreezePlan) -> TrainConfig {
    TrainConfig {
        freeze: plan,
        train_size: 64,
        eval_size: None,
        epochs: 2,
        batch_size: 8,
        max_len: 16,
        lr: 1e-3,
        head_lr: 1e-2,
        ..TrainConfig::default()
    }
}
