//! Fine-tuning with a freeze plan: one async loop for every target (the CLI drives it with a
//! small executor, the browser worker with the JS event loop). Every tensor read is async.

pub mod bench;
pub mod host;
pub mod optimizer;
mod plan;
pub mod replica;
pub mod schedule;

use crate::bert::{BatchTensors, Bert, Classifier};
use crate::cache::{CacheKey, PrefixCache};
use crate::config::BertConfig;
use crate::data::{stratified_subset, Dataset};
use crate::device::read_f32;
use crate::freeze::FreezePlan;
use crate::fused::{self, Dropouts};
use crate::loaded::block_params;
use crate::measured::PeakMeter;
use crate::seeded::{self, Draw};
use crate::tokenize::{EncodedBatch, Tokenizer};
use crate::{CoreError, Result};
use burn::module::Module;
use burn::tensor::{activation, Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use std::cell::Cell;

use freezelab_protocol::memory::{self, MeasureSource};
use freezelab_protocol::metrics::{argmax, Baseline, Metrics};
pub use freezelab_protocol::run::TrainConfig;
pub use host::{Host, MemoryReport, RunSummary, TrainEvent};
pub use optimizer::{AdamW, Rates, StepWith};
pub use plan::apply_plan;
pub use replica::{Exchange, Reducer, Replica};
pub use schedule::Schedule;

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
    pad_id: u32,
    labels: Vec<usize>,
    train: Vec<usize>,
    validation: Vec<usize>,
}

impl Prepared {
    /// `examples` padded to `seq_len` tokens (at least their longest row's).
    fn batch_to(&self, examples: &[usize], seq_len: usize) -> EncodedBatch {
        let rows: Vec<Vec<u32>> = examples.iter().map(|&e| self.rows[e].clone()).collect();
        EncodedBatch::from_rows_to(&rows, self.pad_id, seq_len)
    }

    fn longest(&self, examples: &[usize]) -> usize {
        examples.iter().map(|&e| self.rows[e].len()).max().unwrap_or(0)
    }
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
        pad_id: tokenizer.pad_id(),
        labels,
        train: (0..train.len()).collect(),
        validation: (train.len()..train.len() + validation.len()).collect(),
    })
}

/// The rows of one forward pass: their tokens, the prepared examples they are (which index the
/// prefix cache) and the cache, where one serves the pass.
struct Pass<'a> {
    batch: &'a EncodedBatch,
    examples: &'a [usize],
    cache: Option<&'a mut PrefixCache>,
}

/// Output of the frozen prefix (embeddings + layers `0..line`) for a batch, detached: nothing
/// below the freeze line is differentiated. Served from the cache when every example is in it.
async fn prefix_states(
    bert: &Bert,
    line: usize,
    pass: Pass<'_>,
    input: &BatchTensors,
    device: &Device,
) -> Result<Tensor<3>> {
    let Pass { batch, examples, cache } = pass;
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

/// Logits of the pass's rows under `plan`, as training computes them: the frozen prefix (cached,
/// or computed and detached), then the layers above it. `dropouts`: the run's stream, where the
/// pass trains (its masks drawn from it).
async fn forward_batch(
    model: &Classifier,
    plan: &FreezePlan,
    pass: Pass<'_>,
    dropouts: Option<&Cell<Dropouts>>,
    device: &Device,
) -> Result<Tensor<2>> {
    let input = BatchTensors::new(pass.batch, device);
    let prefix = match plan.freeze_line() {
        Some(line) => Some((line, prefix_states(&model.bert, line, pass, &input, device).await?)),
        None => None,
    };
    let above = || {
        let hidden = match prefix {
            Some((line, x)) => model.bert.forward_from(x, line, &input),
            None => model.bert.forward(&input),
        };
        model.logits(hidden, &input.mask)
    };
    Ok(match dropouts {
        Some(stream) => fused::with_dropouts(stream, above),
        None => above(),
    })
}

/// Logits of `batch` under `plan` without a cache (what a training step differentiates), masks
/// drawn from `dropouts` where the model trains with dropout.
pub async fn logits(
    model: &Classifier,
    plan: &FreezePlan,
    batch: &EncodedBatch,
    dropouts: &Cell<Dropouts>,
    device: &Device,
) -> Result<Tensor<2>> {
    forward_batch(model, plan, Pass { batch, examples: &[], cache: None }, Some(dropouts), device).await
}

/// One training batch: the plan it trains under, its padded tokens, the prepared examples its
/// rows are (they index the prefix cache, when one serves the run), their labels, the weight of
/// its mean loss (a data-parallel replica's share of a batch weighs its share of the examples;
/// else 1), and the run's dropout stream.
pub(crate) struct Batch<'a> {
    pub plan: &'a FreezePlan,
    pub tokens: &'a EncodedBatch,
    pub examples: &'a [usize],
    pub labels: &'a [usize],
    pub weight: f64,
    pub cache: Option<&'a mut PrefixCache>,
    pub dropouts: &'a Cell<Dropouts>,
}

impl AdamW {
    /// One optimizer update of `model` on `batch`: forward (the frozen prefix from the cache
    /// where it holds it), cross-entropy, then [`AdamW::step`] (a data-parallel replica without
    /// rows passes no batch). The run loop and the bench step through here. Returns the model
    /// (updated, unless something failed) and the loss of the whole batch.
    pub(crate) async fn update(
        &mut self,
        model: Classifier,
        batch: Option<Batch<'_>>,
        with: StepWith<'_>,
    ) -> (Classifier, Result<f64>) {
        let device = model.head.weight.val().device();
        let loss = match batch {
            Some(batch) => {
                let pass = Pass { batch: batch.tokens, examples: batch.examples, cache: batch.cache };
                match forward_batch(&model, batch.plan, pass, Some(batch.dropouts), &device).await {
                    Ok(logits) => Some(cross_entropy(logits, batch.labels, &device) * batch.weight),
                    Err(e) => return (model, Err(e)),
                }
            }
            None => None,
        };
        with.meter.sample();
        self.step(model, loss, with).await
    }
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

impl Prepared {
    /// Loss and metrics of `model` under `plan` on the validation `examples`, `batch_size` at a
    /// time.
    async fn evaluate(
        &self,
        (model, plan): (&Classifier, &FreezePlan),
        examples: &[usize],
        batch_size: usize,
        mut cache: Option<&mut PrefixCache>,
    ) -> Result<EvalSums> {
        let valid = model.valid();
        let device = valid.head.weight.val().device();
        let k = valid.num_labels();
        let mut tally = EvalSums { loss_sum: 0.0, confusion: vec![vec![0; k]; k] };
        for chunk in examples.chunks(batch_size.max(1)) {
            let batch = self.batch_to(chunk, 0);
            let pass = Pass { batch: &batch, examples: chunk, cache: cache.as_deref_mut() };
            let logits = forward_batch(&valid, plan, pass, None, &device).await?;
            let log_probs = read_f32(activation::log_softmax(logits, 1)).await?;
            for (row, &e) in log_probs.chunks(k).zip(chunk) {
                let label = self.labels[e];
                tally.loss_sum -= row[label] as f64;
                tally.confusion[label][argmax(row)] += 1;
            }
        }
        Ok(tally)
    }
}

/// An evaluation's sums: the loss over its examples and the confusion counts, which replicas
/// that each evaluated a share add up.
struct EvalSums {
    loss_sum: f64,
    confusion: Vec<Vec<usize>>,
}

impl EvalSums {
    /// The sum over every replica's share, in replica order (counts add exactly; the loss as
    /// f32, within 1e-7 of the sum alone).
    async fn summed(mut self, reducer: &mut dyn Reducer, key: usize) -> Result<EvalSums> {
        let mut values: Vec<f32> = self.confusion.iter().flatten().map(|&c| c as f32).collect();
        values.push(self.loss_sum as f32);
        let summed = reducer.sum(key, values).await?;
        let (loss, counts) = summed.split_last().expect("the loss is the last value");
        self.loss_sum = *loss as f64;
        let k = self.confusion.len();
        for (row, sums) in self.confusion.iter_mut().zip(counts.chunks(k.max(1))) {
            row.iter_mut().zip(sums).for_each(|(c, &s)| *c = s as usize);
        }
        Ok(self)
    }
}

/// One evaluation: at which step, its loss and metrics, and whether it saw every validation
/// example (the final one always does; earlier ones may use the interim subset).
struct Evaluation {
    step: usize,
    loss: f64,
    metrics: Metrics,
    full: bool,
}

/// What a run works with besides its model: the model's config and tokenizer, the data, the
/// settings, the prefix cache (the caller's, so it can outlive a run) with the key that names
/// the model and the data in it, and the host that hears the run's events.
pub struct RunContext<'a> {
    pub config: &'a BertConfig,
    pub tokenizer: &'a Tokenizer,
    pub data: &'a Dataset,
    pub cfg: &'a TrainConfig,
    pub cache_key: CacheKey,
    pub cache: &'a mut PrefixCache,
    pub host: &'a mut dyn Host,
    /// Which replica of a data-parallel run this is; `None`: the run alone.
    pub replica: Option<Replica<'a>>,
}

/// A run in progress, its phases as methods: [`prepare`](Run::prepare), then
/// [`step`](Run::step) per batch with [`evaluate`](Run::evaluate) between, then
/// [`finish`](Run::finish). [`train`] calls them in that order.
pub struct Run<'a> {
    ctx: RunContext<'a>,
    /// Out only while a step or a new stage replaces it.
    model: Option<Classifier>,
    device: Device,
    params: memory::BlockParams,
    prep: Prepared,
    optim: AdamW,
    baseline: Baseline,
    schedule: Schedule,
    forward: Forward,
    progress: Progress,
    /// Where measured peaks come from on this device, if anywhere.
    measure: Option<MeasureSource>,
}

/// What the run's forward passes work with besides the model.
struct Forward {
    /// The blocks that train now: the plan, except under gradual unfreezing, where they grow
    /// with the step.
    plan: FreezePlan,
    /// Whether the prefix cache serves the passes (bound at the plan's freeze line).
    cached: bool,
    /// What the cache holds this run's states under, but for the freeze line (each stage's own).
    key: CacheKey,
    dropouts: Cell<Dropouts>,
}

/// How far a run has come.
struct Progress {
    /// When it started, by the host's clock.
    start: f64,
    step: usize,
    /// Examples through training steps.
    seen: usize,
    /// Seconds inside training steps (what a time budget counts).
    train_seconds: f64,
    /// The highest measured peak of a step, where the device measures.
    peak_bytes: Option<u64>,
    /// The longest padded batch so far (what the computed activations assume).
    longest_seq: usize,
    evals: Vec<Evaluation>,
    /// Seconds the evaluations of a data-parallel run spent adding their sums.
    eval_waited: f64,
}

impl Progress {
    fn new(start: f64) -> Self {
        Progress {
            start,
            step: 0,
            seen: 0,
            train_seconds: 0.0,
            peak_bytes: None,
            longest_seq: 0,
            evals: Vec::new(),
            eval_waited: 0.0,
        }
    }

    fn examples_per_second(&self) -> f64 {
        self.seen as f64 / self.train_seconds.max(1e-9)
    }

    fn out_of_time(&self, cfg: &TrainConfig) -> bool {
        cfg.time_budget_seconds.is_some_and(|budget| self.train_seconds >= budget)
    }
}

impl<'a> Run<'a> {
    /// Checks the settings against the model, prepares the examples, applies the plan's first
    /// stage, binds the cache and tells the host the run started (with its planned memory: under
    /// gradual unfreezing, the schedule's peak).
    pub fn prepare(model: Classifier, ctx: RunContext<'a>) -> Result<Self> {
        let (cfg, config, data) = (ctx.cfg, ctx.config, ctx.data);
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
        if let Some(replica) = &ctx.replica {
            if replica.count == 0 || replica.index >= replica.count {
                return Err(CoreError::Invalid(format!("replica {} of {}", replica.index, replica.count)));
            }
            // Replicas stop at the same step only when none counts time of its own.
            if cfg.time_budget_seconds.is_some() {
                return Err(CoreError::Invalid("a time budget needs a run on one worker".into()));
            }
        }
        device.seed(cfg.seed);
        let params = block_params(&model);
        let prep = prepare(ctx.tokenizer, data, cfg)?;
        let schedule = Schedule::new(prep.train.len(), cfg);
        let stage = cfg.freeze.at_step(0);
        let peak_stage = cfg.freeze.at_step(schedule.total.saturating_sub(1));
        // The key's freeze line, length and example subset come from the run itself, so a cache
        // bound to another plan or subset can never be served (a new stage rebinds it).
        let key = CacheKey {
            dataset: format!(
                "{}#train={}#eval={:?}#seed={}",
                ctx.cache_key.dataset, cfg.train_size, cfg.eval_size, cfg.seed
            ),
            max_len: cfg.max_len,
            ..ctx.cache_key.clone()
        };
        // What the cache will hold once full: every example's tokens at the freeze line.
        let planned_cache = if cfg.cache && peak_stage.cache_line().is_some() {
            let tokens = prep.rows.iter().map(|r| r.len() as u64).sum();
            memory::cache_bytes(config.hidden_size, tokens, cfg.cache_limit_bytes)
        } else {
            0
        };
        let truth: Vec<usize> = prep.validation.iter().map(|&e| prep.labels[e]).collect();
        let baseline = Baseline::majority(&truth, &data.labels.names);
        let planned =
            memory::computed(&config.shape(), &params, &peak_stage, (cfg.batch_size, cfg.max_len), planned_cache);
        ctx.host.emit(&TrainEvent::Started {
            total_steps: schedule.total,
            train_examples: prep.train.len(),
            validation_examples: prep.validation.len(),
            trainable_params: memory::trainable_params(&params, &peak_stage),
            total_params: params.total(),
            freeze: cfg.freeze.label(),
            computed_memory: planned,
            baseline: baseline.clone(),
        });
        let measure = PeakMeter::source(&device);
        let mut run = Run {
            model: Some(apply_plan(model, &stage, cfg.seed)),
            device,
            params,
            prep,
            optim: AdamW::new(cfg),
            baseline,
            schedule,
            forward: Forward { plan: stage, cached: false, key, dropouts: Cell::new(Dropouts::new(cfg.seed)) },
            progress: Progress::new(ctx.host.now()),
            measure,
            ctx,
        };
        run.bind_cache();
        Ok(run)
    }

    /// Binds the cache at the current stage's freeze line, where it has one and the run caches.
    fn bind_cache(&mut self) {
        let cfg = self.ctx.cfg;
        let line = self.forward.plan.cache_line().filter(|_| cfg.cache);
        if let Some(line) = line {
            self.ctx.cache.bind(CacheKey { freeze_line: line, ..self.forward.key.clone() }, cfg.cache_limit_bytes);
        }
        self.forward.cached = line.is_some();
    }

    /// The model, out of the run while a step or a new stage replaces it.
    fn take_model(&mut self) -> Classifier {
        self.model.take().expect("the model is back after every step")
    }

    /// One optimizer step on the training examples `chunk` (in epoch `epoch`, from 1): opens
    /// what the schedule opens at this step, then forward (the frozen prefix from the cache
    /// where it holds it), backward and AdamW; tells the host.
    pub async fn step(&mut self, chunk: &[usize], epoch: usize) -> Result<()> {
        let cfg = self.ctx.cfg;
        let next = cfg.freeze.at_step(self.progress.step);
        if next != self.forward.plan {
            self.forward.plan = next;
            let model = self.take_model();
            self.model = Some(apply_plan(model, &self.forward.plan, cfg.seed));
            self.bind_cache();
        }
        let t0 = self.ctx.host.now();
        let mut meter = PeakMeter::start(&self.device);
        // A replica computes its share of the batch, padded as the whole batch is and with its
        // place in the dropout masks; the shares' gradients are summed.
        let range = self.ctx.replica.as_ref().map_or(0..chunk.len(), |replica| replica.share(chunk.len()));
        self.forward.dropouts.set(Dropouts { first: range.start, count: range.len(), ..self.forward.dropouts.get() });
        let share = &chunk[range];
        let labels: Vec<usize> = share.iter().map(|&e| self.prep.labels[e]).collect();
        let seq_len = self.prep.longest(chunk);
        let tokens = (!share.is_empty()).then(|| self.prep.batch_to(share, seq_len));
        self.progress.longest_seq = self.progress.longest_seq.max(tokens.as_ref().map_or(0, |t| t.seq_len));
        let factor = self.schedule.lr_factor(self.progress.step, self.progress.train_seconds, cfg);
        let rates = Rates::new(&self.forward.plan, cfg.lr, cfg.head_lr, factor);
        let model = self.take_model();
        let cache = if self.forward.cached { Some(&mut *self.ctx.cache) } else { None };
        let weight = share.len() as f64 / chunk.len() as f64;
        let dropouts = &self.forward.dropouts;
        let plan = &self.forward.plan;
        let batch = tokens.as_ref().map(|tokens| Batch {
            plan,
            tokens,
            examples: share,
            labels: &labels,
            weight,
            cache,
            dropouts,
        });
        // Every replica lists the whole batch's tokens, so all exchange the same rows.
        let pad_id = self.ctx.tokenizer.pad_id();
        let prep = &self.prep;
        let looked_up = chunk.iter().flat_map(|&e| prep.rows[e].iter().copied()).chain([pad_id]);
        let exchange = self.ctx.replica.as_mut().map(|r| Exchange::new(r, self.progress.step, looked_up, dropouts));
        let (model, loss) =
            self.optim.update(model, batch, StepWith { rates: &rates, meter: &mut meter, exchange }).await;
        self.model = Some(model);
        let loss_value = loss?;
        if !loss_value.is_finite() {
            return Err(CoreError::Invalid(format!(
                "loss became {loss_value} at step {}: lower the learning rate",
                self.progress.step
            )));
        }
        if self.measure.is_some() {
            let peak = meter.peak();
            self.progress.peak_bytes = Some(self.progress.peak_bytes.map_or(peak, |p| p.max(peak)));
        }
        self.progress.train_seconds += self.ctx.host.now() - t0;
        self.progress.seen += chunk.len();
        self.progress.step += 1;
        self.ctx.host.emit(&TrainEvent::Step {
            step: self.progress.step,
            epoch,
            loss: loss_value,
            lr: cfg.lr * factor,
            examples_per_second: self.progress.examples_per_second(),
            elapsed_seconds: self.ctx.host.now() - self.progress.start,
        });
        Ok(())
    }

    /// Evaluates on every validation example (`full`) or on the interim subset, tells the
    /// host, and records the result.
    pub async fn evaluate(&mut self, epoch: usize, full: bool) -> Result<()> {
        let cfg = self.ctx.cfg;
        let all = self.prep.validation.len();
        let n = if full { all } else { cfg.interim_eval_size.unwrap_or(all).min(all) };
        let cache = if self.forward.cached { Some(&mut *self.ctx.cache) } else { None };
        let model = self.model.as_ref().expect("the model is back after every step");
        let examples = &self.prep.validation[..n];
        // A data-parallel run's replicas each evaluate a share and add their sums; a stopped one
        // evaluates alone (the others may be gone). Keys follow the steps' (one per evaluation).
        let key = self.schedule.total + self.progress.evals.len();
        let tally = match self.ctx.replica.as_mut().filter(|r| r.count > 1 && !self.ctx.host.cancelled()) {
            Some(replica) => {
                let share = &examples[replica.share(n)];
                let mine = self.prep.evaluate((model, &self.forward.plan), share, cfg.batch_size, cache).await?;
                let before = replica.reducer.waited();
                let summed = mine.summed(&mut *replica.reducer, key).await;
                // The exchange's time in the summary is the training's.
                self.progress.eval_waited += replica.reducer.waited() - before;
                match summed {
                    Ok(tally) => tally,
                    Err(_) if self.ctx.host.cancelled() => {
                        let cache = if self.forward.cached { Some(&mut *self.ctx.cache) } else { None };
                        self.prep.evaluate((model, &self.forward.plan), examples, cfg.batch_size, cache).await?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.prep.evaluate((model, &self.forward.plan), examples, cfg.batch_size, cache).await?,
        };
        let val_loss = tally.loss_sum / n.max(1) as f64;
        let metrics = Metrics::from_confusion(tally.confusion);
        let step = self.progress.step;
        self.ctx.host.emit(&TrainEvent::Eval { step, epoch, val_loss, metrics: metrics.clone(), examples: n });
        self.progress.evals.push(Evaluation { step, loss: val_loss, metrics, full: n == all });
        Ok(())
    }

    /// The epochs: shuffled batches, evaluations every `eval_every` steps and after each
    /// epoch, until the step or time budget is spent or the host stops the run. Returns
    /// whether it was stopped.
    pub async fn epochs(&mut self) -> Result<bool> {
        let cfg = self.ctx.cfg;
        for epoch in 1..=cfg.epochs.max(1) {
            let mut order = self.prep.train.clone();
            order.shuffle(&mut seeded::rng(cfg.seed, Draw::Epoch(epoch)));
            for chunk in order.chunks(cfg.batch_size) {
                if self.progress.step >= self.schedule.total || self.progress.out_of_time(cfg) {
                    return Ok(false);
                }
                self.ctx.host.breathe().await;
                if self.ctx.host.cancelled() {
                    return Ok(true);
                }
                match self.step(chunk, epoch).await {
                    // A stopped data-parallel run ends a replica's wait for the others' gradients.
                    Err(_) if self.ctx.host.cancelled() => return Ok(true),
                    result => result?,
                }
                if cfg.eval_every.is_some_and(|n| self.progress.step.is_multiple_of(n))
                    && self.progress.step < self.schedule.total
                {
                    self.evaluate(epoch, false).await?;
                }
            }
            let last = self.progress.step >= self.schedule.total || self.progress.out_of_time(cfg);
            self.evaluate(epoch, last).await?;
        }
        Ok(false)
    }

    /// Ends the run: the final model is always evaluated on every validation example (a step
    /// budget or a stop can end the loop mid-epoch); then the summary, which the host hears too.
    pub async fn finish(mut self, cancelled: bool) -> Result<(Classifier, RunSummary)> {
        if self.progress.evals.last().is_none_or(|e| e.step != self.progress.step || !e.full) {
            let epoch = self.progress.step.div_ceil(self.schedule.per_epoch);
            self.evaluate(epoch, true).await?;
        }
        let (cfg, config, data) = (self.ctx.cfg, self.ctx.config, self.ctx.data);
        // At the last stage reached: under gradual unfreezing, the schedule's peak so far.
        let cache_bytes = if self.forward.cached { self.ctx.cache.bytes() } else { 0 };
        let computed = memory::computed(
            &config.shape(),
            &self.params,
            &self.forward.plan,
            (cfg.batch_size, self.progress.longest_seq.max(1)),
            cache_bytes,
        );
        let last = self.progress.evals.last().expect("evaluated at least once");
        let (final_loss, final_metrics) = (last.loss, last.metrics.clone());
        // Accuracies on the interim subset are not comparable with the full set's.
        let best = self.progress.evals.iter().filter(|e| e.full).map(|e| e.metrics.accuracy).fold(0.0, f64::max);
        let summary = RunSummary {
            freeze: cfg.freeze.label(),
            labels: data.labels.names.clone(),
            trainable_params: memory::trainable_params(&self.params, &self.forward.plan),
            total_params: self.params.total(),
            train_examples: self.prep.train.len(),
            validation_examples: self.prep.validation.len(),
            steps: self.progress.step,
            val_loss: final_loss,
            val_accuracy: final_metrics.accuracy,
            best_val_accuracy: best,
            macro_f1: final_metrics.macro_f1,
            confusion: final_metrics.confusion,
            baseline: self.baseline.clone(),
            wall_seconds: self.ctx.host.now() - self.progress.start,
            train_seconds: self.progress.train_seconds,
            examples_per_second: self.progress.examples_per_second(),
            exchange_seconds: self.ctx.replica.as_ref().map(|r| r.reducer.waited() - self.progress.eval_waited),
            cache_used: self.forward.cached,
            cache_over_limit: self.forward.cached && self.ctx.cache.over_limit(),
            cancelled,
            optimizer_state_tensors: blocking_reads_allowed(&self.device).then(|| self.optim.state_tensors()),
            drift: Vec::new(),
            examples: None,
            memory: MemoryReport {
                computed,
                computed_total: computed.total(),
                measured_peak_bytes: self.progress.peak_bytes,
                measured_source: self.measure,
            },
            config: cfg.clone(),
        };
        self.ctx.host.emit(&TrainEvent::Finished { summary: Box::new(summary.clone()) });
        Ok((self.take_model(), summary))
    }
}

/// Trains `model` (on an autodiff device) under `ctx.cfg`, streaming events to `ctx.host`. A
/// changed cache key clears the cache. Returns the trained model and the run's summary.
pub async fn train(model: Classifier, ctx: RunContext<'_>) -> Result<(Classifier, RunSummary)> {
    let mut run = Run::prepare(model, ctx)?;
    let cancelled = run.epochs().await?;
    run.finish(cancelled).await
}
