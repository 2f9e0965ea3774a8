//! Fine-tuning with a freeze plan: one async loop for every target (the CLI drives it with a
//! small executor, the browser worker with the JS event loop). Every tensor read is async.

pub mod bench;
pub mod host;
pub mod optimizer;
mod plan;
pub mod schedule;

use crate::bert::{BatchTensors, Bert, Classifier};
use crate::cache::{CacheKey, PrefixCache};
use crate::config::BertConfig;
use crate::data::{stratified_subset, Dataset};
use crate::device::read_f32;
use crate::freeze::FreezePlan;
use crate::loaded::block_params;
use crate::memory::{self, PeakMeter};
use crate::tokenize::{EncodedBatch, Tokenizer};
use crate::{CoreError, Result};
use burn::module::Module;
use burn::tensor::{activation, Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use freezelab_protocol::metrics::{argmax, Baseline, Metrics};
pub use freezelab_protocol::run::TrainConfig;
pub use host::{Host, MemoryReport, RunSummary, TrainEvent};
pub use optimizer::{AdamW, Rates};
pub use plan::apply_plan;

/// Refuses settings the model or the loop cannot run, with a message for people.
pub fn validate(cfg: &TrainConfig, config: &BertConfig) -> Result<()> {
    let bad = |m: String| Err(CoreError::Invalid(m));
    cfg.validate().map_err(CoreError::Invalid)?;
    if cfg.freeze.num_layers() != config.num_hidden_layers {
        return bad(format!(
            "the freeze plan has {} layers, the model {}",
            cfg.freeze.num_layers(),
            config.num_hidden_layers
        ));
    }
    if cfg.max_len > config.max_position_embeddings {
        return bad(format!(
            "setting max_len: must be at most the model's {} positions (got {})",
            config.max_position_embeddings, cfg.max_len
        ));
    }
    Ok(())
}

/// Whether Burn's synchronous reads work on `device`: everywhere but a GPU in a browser, where
/// they panic unless the data happens to be ready.
fn blocking_reads_allowed(device: &Device) -> bool {
    !(cfg!(target_arch = "wasm32") && device.memory_pool_usage().is_some())
}

/// Examples prepared once per run: token ids and labels; train and validation share one index
/// space (validation after train) so the cache can hold both.
struct Prepared {
    rows: Vec<Vec<u32>>,
    labels: Vec<usize>,
    train: Vec<usize>,
    validation: Vec<usize>,
}

/// The training and validation examples a run under `cfg` uses (seeded, stratified subsets),
/// as (text, label index): what the PyTorch reference trains on too.
pub type Split = (Vec<(String, usize)>, Vec<(String, usize)>);

pub fn examples(data: &Dataset, cfg: &TrainConfig) -> Split {
    let k = data.labels.len();
    let train = stratified_subset(&data.train, cfg.train_size, k, cfg.seed);
    let validation = match cfg.eval_size {
        Some(n) => stratified_subset(&data.validation, n, k, cfg.seed),
        None => data.validation.clone(),
    };
    (train, validation)
}

fn prepare(tokenizer: &Tokenizer, data: &Dataset, cfg: &TrainConfig) -> Result<Prepared> {
    let (train, validation) = examples(data, cfg);
    if train.is_empty() || validation.is_empty() {
        return Err(CoreError::Invalid("no training or validation examples".into()));
    }
    let mut rows = Vec::with_capacity(train.len() + validation.len());
    let mut labels = Vec::with_capacity(rows.capacity());
    for (text, label) in train.iter().chain(&validation) {
        rows.push(tokenizer.encode(text, cfg.max_len)?);
        labels.push(*label);
    }
    Ok(Prepared {
        rows,
        labels,
        train: (0..train.len()).collect(),
        validation: (train.len()..train.len() + validation.len()).collect(),
    })
}

/// Output of the frozen prefix (embeddings + layers `0..line`) for a batch, detached: nothing
/// below the freeze line is differentiated. Served from the cache when every example is in it.
async fn prefix_states(
    bert: &Bert,
    line: usize,
    examples: &[usize],
    batch: &EncodedBatch,
    input: &BatchTensors,
    cache: Option<&mut PrefixCache>,
    device: &Device,
) -> Result<Tensor<3>> {
    let h = bert.hidden_size();
    let s = batch.seq_len;
    let len = |row: usize| batch.tokens(row).len() * h;
    if let Some(cache) = cache.as_deref() {
        if examples.iter().enumerate().all(|(row, e)| cache.get(*e, len(row)).is_some()) {
            let mut values = vec![0f32; examples.len() * s * h];
            for (row, e) in examples.iter().enumerate() {
                let cached = cache.get(*e, len(row)).expect("checked");
                values[row * s * h..row * s * h + cached.len()].copy_from_slice(cached);
            }
            return Ok(Tensor::from_data(TensorData::new(values, [examples.len(), s, h]), device));
        }
    }
    let mut x = bert.embeddings.forward(input.ids.clone());
    let bias = input.key_bias();
    for layer in &bert.layers[..line] {
        x = layer.forward(x, bias.clone());
    }
    let x = x.detach();
    if let Some(cache) = cache {
        let values = read_f32(x.clone()).await?;
        for (row, e) in examples.iter().enumerate() {
            if cache.get(*e, len(row)).is_none() {
                cache.insert(*e, values[row * s * h..row * s * h + len(row)].to_vec());
            }
        }
    }
    Ok(x)
}

/// Logits of `batch` under `plan`, as training computes them: the frozen prefix (cached, or
/// computed and detached), then the layers above it. `examples` index the cache.
async fn forward_batch(
    model: &Classifier,
    plan: &FreezePlan,
    batch: &EncodedBatch,
    examples: &[usize],
    cache: Option<&mut PrefixCache>,
    device: &Device,
) -> Result<Tensor<2>> {
    let input = BatchTensors::new(batch, device);
    let hidden = match plan.freeze_line() {
        Some(line) => {
            let x = prefix_states(&model.bert, line, examples, batch, &input, cache, device).await?;
            model.bert.forward_from(x, line, &input)
        }
        None => model.bert.forward(&input),
    };
    Ok(model.logits(hidden, &input.mask))
}

/// Logits of `batch` under `plan` without a cache (what a training step differentiates).
pub async fn logits(model: &Classifier, plan: &FreezePlan, batch: &EncodedBatch, device: &Device) -> Result<Tensor<2>> {
    forward_batch(model, plan, batch, &[], None, device).await
}

/// [`forward_batch`] for prepared examples; also returns the padded length.
async fn batch_logits(
    model: &Classifier,
    plan: &FreezePlan,
    prep: &Prepared,
    examples: &[usize],
    pad_id: u32,
    cache: Option<&mut PrefixCache>,
    device: &Device,
) -> Result<(Tensor<2>, usize)> {
    let rows: Vec<Vec<u32>> = examples.iter().map(|&e| prep.rows[e].clone()).collect();
    let batch = EncodedBatch::from_rows(&rows, pad_id);
    Ok((forward_batch(model, plan, &batch, examples, cache, device).await?, batch.seq_len))
}

fn one_hot(labels: &[usize], k: usize, device: &Device) -> Tensor<2> {
    let mut v = vec![0f32; labels.len() * k];
    for (i, &l) in labels.iter().enumerate() {
        v[i * k + l] = 1.0;
    }
    Tensor::from_data(TensorData::new(v, [labels.len(), k]), device)
}

/// Mean cross-entropy of `logits` against `labels`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize], device: &Device) -> Tensor<1> {
    let k = logits.dims()[1];
    let log_probs = activation::log_softmax(logits, 1);
    (log_probs * one_hot(labels, k, device)).sum().neg() / labels.len() as f64
}

/// Loss and metrics of `model` on the validation `examples`.
async fn evaluate(
    model: &Classifier,
    plan: &FreezePlan,
    prep: &Prepared,
    examples: &[usize],
    cfg: &TrainConfig,
    pad_id: u32,
    mut cache: Option<&mut PrefixCache>,
) -> Result<(f64, Metrics)> {
    let valid = model.valid();
    let device = valid.head.weight.val().device();
    let k = valid.num_labels();
    let (mut predicted, mut truth, mut loss_sum) = (Vec::new(), Vec::new(), 0.0);
    for chunk in examples.chunks(cfg.batch_size.max(1)) {
        let (logits, _) = batch_logits(&valid, plan, prep, chunk, pad_id, cache.as_deref_mut(), &device).await?;
        let labels: Vec<usize> = chunk.iter().map(|&e| prep.labels[e]).collect();
        let log_probs = read_f32(activation::log_softmax(logits, 1)).await?;
        for (row, &label) in log_probs.chunks(k).zip(&labels) {
            loss_sum -= row[label] as f64;
            predicted.push(argmax(row));
        }
        truth.extend(labels);
    }
    Ok((loss_sum / truth.len() as f64, Metrics::from_predictions(&truth, &predicted, k)))
}

/// One evaluation: at which step, its loss and metrics, and whether it saw every validation
/// example (the final one always does; earlier ones may use the interim subset).
struct Evaluation {
    step: usize,
    loss: f64,
    metrics: Metrics,
    full: bool,
}

/// Evaluates on all validation examples (`full`) or on the interim subset, tells the host, and
/// records the result.
#[allow(clippy::too_many_arguments)]
async fn evaluate_and_report(
    model: &Classifier,
    plan: &FreezePlan,
    prep: &Prepared,
    cfg: &TrainConfig,
    pad_id: u32,
    cache: Option<&mut PrefixCache>,
    host: &mut dyn Host,
    (step, epoch, full): (usize, usize, bool),
    evals: &mut Vec<Evaluation>,
) -> Result<()> {
    let all = prep.validation.len();
    let n = if full { all } else { cfg.interim_eval_size.unwrap_or(all).min(all) };
    let examples = &prep.validation[..n];
    let (val_loss, metrics) = evaluate(model, plan, prep, examples, cfg, pad_id, cache).await?;
    host.emit(&TrainEvent::Eval { step, epoch, val_loss, metrics: metrics.clone(), examples: n });
    evals.push(Evaluation { step, loss: val_loss, metrics, full: n == all });
    Ok(())
}

/// Trains `model` (on an autodiff device) under `cfg`, streaming events to `host`. The cache
/// is the caller's so it can outlive a run; `cache_key` names the model and dataset, and the run
/// completes it (freeze line, max length, subset): a changed key clears the cache. Returns the trained model and the run's summary.
#[allow(clippy::too_many_arguments)]
pub async fn train(
    model: Classifier,
    config: &BertConfig,
    tokenizer: &Tokenizer,
    data: &Dataset,
    cfg: &TrainConfig,
    cache_key: CacheKey,
    cache: &mut PrefixCache,
    host: &mut dyn Host,
) -> Result<(Classifier, RunSummary)> {
    validate(cfg, config)?;
    let device = model.head.weight.val().device();
    if !device.is_autodiff() {
        return Err(CoreError::Device("training needs an autodiff device (Device::autodiff)".into()));
    }
    if model.num_labels() != data.labels.len() {
        return Err(CoreError::Invalid(format!(
            "the head has {} outputs but the data has {} labels",
            model.num_labels(),
            data.labels.len()
        )));
    }
    device.seed(cfg.seed);
    crate::fused::seed_dropout(cfg.seed);
    let plan = &cfg.freeze;
    let params = block_params(&model);
    let prep = prepare(tokenizer, data, cfg)?;
    let steps_per_epoch = prep.train.len().div_ceil(cfg.batch_size);
    let total_steps =
        cfg.max_steps.map_or(steps_per_epoch * cfg.epochs, |m| m.min(steps_per_epoch * cfg.epochs.max(1)));
    // The blocks that train now: the plan, except under gradual unfreezing, where they grow with
    // the step; the last stage is the schedule's peak.
    let mut stage = plan.at_step(0);
    let peak_stage = plan.at_step(total_steps.saturating_sub(1));
    let mut model = apply_plan(model, &stage);
    // The key's freeze line, length and example subset come from the run itself, so a cache
    // bound to another plan or subset can never be served (a new stage rebinds it).
    let cache_key = CacheKey {
        dataset: format!("{}#train={}#eval={:?}#seed={}", cache_key.dataset, cfg.train_size, cfg.eval_size, cfg.seed),
        max_len: cfg.max_len,
        ..cache_key
    };
    let bind_cache = |cache: &mut PrefixCache, stage: &FreezePlan| {
        let line = stage.cache_line().filter(|_| cfg.cache)?;
        cache.bind(CacheKey { freeze_line: line, ..cache_key.clone() }, cfg.cache_limit_bytes);
        Some(line)
    };
    let mut use_cache = bind_cache(cache, &stage).is_some();
    // What the cache will hold once full: every example's tokens at the freeze line.
    let planned_cache = if cfg.cache && peak_stage.cache_line().is_some() {
        let tokens = prep.rows.iter().map(|r| r.len() as u64).sum();
        memory::cache_bytes(config.hidden_size, tokens, cfg.cache_limit_bytes)
    } else {
        0
    };

    let warmup = schedule::warmup_steps(total_steps, cfg.warmup_fraction);
    let mut optim = AdamW::new(cfg);

    let truth: Vec<usize> = prep.validation.iter().map(|&e| prep.labels[e]).collect();
    let baseline = Baseline::majority(&truth, &data.labels.names);
    let planned = memory::computed(
        &config.shape(),
        &params,
        &peak_stage,
        cfg.batch_size,
        cfg.max_len,
        planned_cache,
        crate::fused::kernels(&device),
    );
    host.emit(&TrainEvent::Started {
        total_steps,
        train_examples: prep.train.len(),
        validation_examples: prep.validation.len(),
        trainable_params: memory::trainable_params(&params, &peak_stage),
        total_params: params.total(),
        freeze: plan.label(),
        computed_memory: planned,
        baseline: baseline.clone(),
    });

    let start = host.now();
    let mut train_seconds = 0.0;
    let mut seen = 0usize;
    let mut step = 0usize;
    let mut peak_bytes: Option<u64> = None;
    let mut longest_seq = 0usize;
    let mut evals: Vec<Evaluation> = Vec::new();
    let mut cancelled = false;
    let measure = PeakMeter::source(&device);
    let out_of_time = |seconds: f64| cfg.time_budget_seconds.is_some_and(|budget| seconds >= budget);

    'epochs: for epoch in 0..cfg.epochs.max(1) {
        let mut order = prep.train.clone();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_add(1 + epoch as u64)));
        for chunk in order.chunks(cfg.batch_size) {
            if step >= total_steps || out_of_time(train_seconds) {
                break 'epochs;
            }
            host.breathe().await;
            if host.cancelled() {
                cancelled = true;
                break 'epochs;
            }
            let next = plan.at_step(step);
            if next != stage {
                stage = next;
                model = apply_plan(model, &stage);
                use_cache = bind_cache(cache, &stage).is_some();
            }
            let t0 = host.now();
            let mut meter = PeakMeter::start(&device);
            let labels: Vec<usize> = chunk.iter().map(|&e| prep.labels[e]).collect();
            let cache_ref = if use_cache { Some(&mut *cache) } else { None };
            let (logits, seq) =
                batch_logits(&model, &stage, &prep, chunk, tokenizer.pad_id(), cache_ref, &device).await?;
            longest_seq = longest_seq.max(seq);
            let loss = cross_entropy(logits, &labels, &device);
            meter.sample();
            let factor = match cfg.time_budget_seconds {
                Some(budget) => schedule::lr_factor_by_time(train_seconds / budget, cfg.warmup_fraction),
                None => schedule::lr_factor(step, total_steps, warmup),
            };
            let rates = Rates::new(&stage, cfg.lr, cfg.head_lr, factor);
            let (updated, loss_value) = optim.step(model, loss, &rates, &mut meter).await?;
            model = updated;
            if !loss_value.is_finite() {
                return Err(CoreError::Invalid(format!(
                    "loss became {loss_value} at step {step}: lower the learning rate"
                )));
            }
            if measure.is_some() {
                let peak = meter.peak();
                peak_bytes = Some(peak_bytes.map_or(peak, |p: u64| p.max(peak)));
            }
            let dt = host.now() - t0;
            train_seconds += dt;
            seen += chunk.len();
            step += 1;
            host.emit(&TrainEvent::Step {
                step,
                epoch: epoch + 1,
                loss: loss_value,
                lr: cfg.lr * factor,
                examples_per_second: seen as f64 / train_seconds.max(1e-9),
                elapsed_seconds: host.now() - start,
            });
            if cfg.eval_every.is_some_and(|n| step % n == 0) && step < total_steps {
                let cache_ref = if use_cache { Some(&mut *cache) } else { None };
                let at = (step, epoch + 1, false);
                evaluate_and_report(&model, &stage, &prep, cfg, tokenizer.pad_id(), cache_ref, host, at, &mut evals)
                    .await?;
            }
        }
        let cache_ref = if use_cache { Some(&mut *cache) } else { None };
        let at = (step, epoch + 1, step >= total_steps || out_of_time(train_seconds));
        evaluate_and_report(&model, &stage, &prep, cfg, tokenizer.pad_id(), cache_ref, host, at, &mut evals).await?;
    }
    // A step budget or a stop can end the loop mid-epoch: the final model is always evaluated,
    // on every validation example.
    if evals.last().is_none_or(|e| e.step != step || !e.full) {
        let cache_ref = if use_cache { Some(&mut *cache) } else { None };
        let at = (step, step.div_ceil(steps_per_epoch), true);
        evaluate_and_report(&model, &stage, &prep, cfg, tokenizer.pad_id(), cache_ref, host, at, &mut evals).await?;
    }

    // At the last stage reached: under gradual unfreezing, the schedule's peak so far.
    let cache_bytes = if use_cache { cache.bytes() } else { 0 };
    let computed = memory::computed(
        &config.shape(),
        &params,
        &stage,
        cfg.batch_size,
        longest_seq.max(1),
        cache_bytes,
        crate::fused::kernels(&device),
    );
    let last = evals.last().expect("evaluated at least once");
    let (final_loss, final_metrics) = (last.loss, last.metrics.clone());
    // Accuracies on the interim subset are not comparable with the full set's.
    let best = evals.iter().filter(|e| e.full).map(|e| e.metrics.accuracy).fold(0.0, f64::max);
    let summary = RunSummary {
        freeze: plan.label(),
        labels: data.labels.names.clone(),
        trainable_params: memory::trainable_params(&params, &stage),
        total_params: params.total(),
        train_examples: prep.train.len(),
        validation_examples: prep.validation.len(),
        steps: step,
        val_loss: final_loss,
        val_accuracy: final_metrics.accuracy,
        best_val_accuracy: best,
        macro_f1: final_metrics.macro_f1,
        confusion: final_metrics.confusion,
        baseline,
        wall_seconds: host.now() - start,
        train_seconds,
        examples_per_second: seen as f64 / train_seconds.max(1e-9),
        cache_used: use_cache,
        cache_over_limit: use_cache && cache.over_limit(),
        cancelled,
        optimizer_state_tensors: blocking_reads_allowed(&device).then(|| optim.state_tensors()),
        drift: Vec::new(),
        memory: MemoryReport {
            computed,
            computed_total: computed.total(),
            measured_peak_bytes: peak_bytes,
            measured_source: measure,
        },
        config: cfg.clone(),
    };
    host.emit(&TrainEvent::Finished { summary: Box::new(summary.clone()) });
    Ok((model, summary))
}
