//! Training throughput at fixed shapes, for `freezelab bench`: the same step the training loop
//! runs (forward, backward, AdamW), timed over a few steps after one warm-up step.

use std::cell::Cell;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{apply_plan, forward_batch, AdamW, Batch, Host, Pass, Rates, StepWith, TrainConfig};
use crate::bert::Classifier;
use crate::cache::{CacheKey, PrefixCache};
use crate::freeze::FreezePlan;
use crate::fused::Dropouts;
use crate::measured::PeakMeter;
use crate::tokenize::EncodedBatch;
use crate::{CoreError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub freeze: String,
    pub cache: bool,
    pub batch_size: usize,
    pub seq_len: usize,
    pub steps: usize,
    pub seconds_per_step: f64,
    pub examples_per_second: f64,
    pub measured_peak_bytes: Option<u64>,
    /// The device pool after the last step (GPU backends): live allocations, and the bytes of
    /// the buffers it holds (`cargo xtask bench --dispatches` compares runs of 1 and 2 steps).
    pub pool_allocations: Option<u64>,
    pub pool_reserved_bytes: Option<u64>,
}

/// The configurations `freezelab bench` times, by name: (name, plan, with the prefix cache).
pub fn rows(layers: usize) -> Vec<(&'static str, FreezePlan, bool)> {
    vec![
        ("none", FreezePlan::none(layers), false),
        ("bottom3", FreezePlan::bottom(layers, 3), false),
        ("bottom3-cache", FreezePlan::bottom(layers, 3), true),
        ("head-only", FreezePlan::head_only(layers), false),
        ("head-only-cache", FreezePlan::head_only(layers), true),
    ]
}

/// A batch of `batch_size` rows of exactly `seq_len` tokens (no padding, so every
/// configuration computes the same shapes), ids drawn deterministically from the vocabulary.
pub fn fixed_batch(batch_size: usize, seq_len: usize, vocab: usize, cls: u32, sep: u32) -> EncodedBatch {
    let rows: Vec<Vec<u32>> = (0..batch_size)
        .map(|r| {
            let mut row = vec![cls];
            row.extend((1..seq_len - 1).map(|i| (1000 + (r * 7919 + i * 104_729) % (vocab - 1000)) as u32));
            row.push(sep);
            row
        })
        .collect();
    EncodedBatch::from_rows(&rows, 0)
}

/// Times `steps` training steps of `model` (on an autodiff device) on `batch` under the row's
/// plan. With the row's `cache`, the frozen prefix is computed once beforehand, as it is after a
/// cached run's first epoch.
pub async fn run(
    model: Classifier,
    (plan, cache): (&FreezePlan, bool),
    batch: &EncodedBatch,
    steps: usize,
    host: &dyn Host,
) -> Result<BenchResult> {
    let device: Device = model.head.weight.val().device();
    if cache && plan.freeze_line().is_none() {
        return Err(CoreError::Invalid(format!("{}: nothing frozen at the bottom to cache", plan.label())));
    }
    let cfg = TrainConfig { freeze: plan.clone(), ..TrainConfig::default() };
    let mut model = apply_plan(model, plan, cfg.seed);
    let mut optim = AdamW::new(&cfg);
    let rates = Rates::new(plan, cfg.lr, cfg.head_lr, 1.0);
    let labels: Vec<usize> = (0..batch.batch_size).map(|i| i % model.num_labels()).collect();
    let examples: Vec<usize> = (0..batch.batch_size).collect();
    let mut store = PrefixCache::new();
    store.bind(
        CacheKey { model: String::new(), dataset: String::new(), freeze_line: 0, max_len: batch.seq_len },
        u64::MAX,
    );
    if cache {
        forward_batch(&model, plan, Pass { batch, examples: &examples, cache: Some(&mut store) }, None, &device)
            .await?;
    }
    let mut peak = None;
    let mut elapsed = 0.0;
    let dropouts = Cell::new(Dropouts::new(0));
    for step in 0..=steps {
        let mut meter = PeakMeter::start(&device);
        let t0 = host.now();
        let cache = if cache { Some(&mut store) } else { None };
        let this = Batch {
            plan,
            tokens: batch,
            examples: &examples,
            labels: &labels,
            weight: 1.0,
            cache,
            dropouts: &dropouts,
        };
        let with = StepWith { rates: &rates, meter: &mut meter, exchange: None };
        let (updated, loss) = optim.update(model, Some(this), with).await;
        model = updated;
        loss?;
        if step > 0 {
            elapsed += host.now() - t0;
            if PeakMeter::source(&device).is_some() {
                peak = Some(peak.unwrap_or(0).max(meter.peak()));
            }
        }
    }
    let seconds_per_step = elapsed / steps.max(1) as f64;
    let pool = device.memory_pool_usage();
    Ok(BenchResult {
        freeze: plan.label(),
        cache,
        batch_size: batch.batch_size,
        seq_len: batch.seq_len,
        steps,
        seconds_per_step,
        examples_per_second: batch.batch_size as f64 / seconds_per_step.max(1e-12),
        measured_peak_bytes: peak,
        pool_allocations: pool.as_ref().map(|p| p.number_allocs),
        pool_reserved_bytes: pool.map(|p| p.bytes_reserved),
    })
}
