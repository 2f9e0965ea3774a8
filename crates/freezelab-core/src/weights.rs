//! Safetensors bytes with Hugging Face `BertModel` names ⇄ [`Classifier`].
//!
//! Loading goes through burn-store (name remapping, PyTorch's `[out, in]` Linear weights
//! transposed to Burn's `[in, out]`, f16/bf16 upcast to f32), after a check here that every
//! tensor the encoder needs is present with the shape the config implies and every tensor in the
//! file is known: anything else is an error naming the tensor and both shapes. Two readers stay
//! hand-written, because burn-store's do another job: [`Initial`] reads single tensors by their
//! HF name (drift compares each block with its checkpoint values without building a second
//! model), and [`export_classifier`] reads every tensor asynchronously (burn-store's save reads
//! synchronously, which panics on WebGPU in the browser) and writes label names in the metadata.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::Param;
use burn::nn::{DropoutConfig, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::store::{FloatCastAdapter, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::bert::{Bert, Classifier, Embeddings, EncoderLayer};
use crate::config::BertConfig;
use crate::seeded::{self, Draw};
use crate::{CoreError, Result};

/// Names present in many HF checkpoints that the encoder does not use (HF's pooler, a buffer).
const IGNORED: [&str; 3] = ["pooler.dense.weight", "pooler.dense.bias", "embeddings.position_ids"];

/// Where the classification head lives in checkpoints we write (as HF's
/// `BertForSequenceClassification`), so `predict` and the page can load a fine-tuned model.
pub const HEAD_WEIGHT: &str = "classifier.weight";
pub const HEAD_BIAS: &str = "classifier.bias";

/// Every encoder tensor with its HF name and PyTorch shape, in a stable order.
pub fn encoder_tensor_shapes(c: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let mut out = vec![
        ("embeddings.word_embeddings.weight".to_string(), vec![c.vocab_size, h]),
        ("embeddings.position_embeddings.weight".to_string(), vec![c.max_position_embeddings, h]),
        ("embeddings.token_type_embeddings.weight".to_string(), vec![c.type_vocab_size, h]),
        ("embeddings.LayerNorm.weight".to_string(), vec![h]),
        ("embeddings.LayerNorm.bias".to_string(), vec![h]),
    ];
    for l in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        for (name, shape) in [
            ("attention.self.query", [h, h]),
            ("attention.self.key", [h, h]),
            ("attention.self.value", [h, h]),
            ("attention.output.dense", [h, h]),
            ("intermediate.dense", [i, h]),
            ("output.dense", [h, i]),
        ] {
            out.push((format!("{p}.{name}.weight"), shape.to_vec()));
            out.push((format!("{p}.{name}.bias"), vec![shape[0]]));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            out.push((format!("{p}.{norm}.weight"), vec![h]));
            out.push((format!("{p}.{norm}.bias"), vec![h]));
        }
    }
    out
}

/// A parsed checkpoint, its tensors by canonical name.
struct Checkpoint<'a> {
    tensors: SafeTensors<'a>,
    /// Checkpoint name for each canonical name (handles a `bert.` prefix and gamma/beta norms).
    names: BTreeMap<String, String>,
}

fn canonical(name: &str) -> String {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    if name.contains("LayerNorm.") {
        name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    } else {
        name.to_string()
    }
}

impl<'a> Checkpoint<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self> {
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| CoreError::Checkpoint(format!("not a readable safetensors file ({e})")))?;
        let names = tensors.names().into_iter().map(|n| (canonical(n), n.to_string())).collect();
        Ok(Checkpoint { tensors, names })
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The stored tensor `name`, checked against `shape` and for a float dtype we read.
    fn view(&self, name: &str, shape: &[usize]) -> Result<(&str, TensorView<'_>)> {
        let stored = self
            .names
            .get(name)
            .ok_or_else(|| CoreError::Checkpoint(format!("tensor {name} (expected shape {shape:?}) is missing")))?;
        let view = self.tensors.tensor(stored).map_err(|e| CoreError::Checkpoint(format!("{stored}: {e}")))?;
        if view.shape() != shape {
            return Err(CoreError::Checkpoint(format!(
                "tensor {stored} has shape {:?} but config.json implies {shape:?}",
                view.shape()
            )));
        }
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            let dtype = view.dtype();
            return Err(CoreError::Checkpoint(format!(
                "tensor {stored} has dtype {dtype:?}; expected F32, F16 or BF16"
            )));
        }
        Ok((stored, view))
    }

    /// The tensor `name` as f32 values, checked against `shape`.
    fn take(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (_, view) = self.view(name, shape)?;
        let data = view.data();
        Ok(match view.dtype() {
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            _ => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        })
    }
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Hugging Face names (with or without the `bert.` prefix) → the [`Classifier`]'s module paths.
/// burn-store applies them in order, each anchored, so a rewritten name matches no later one.
const HF_TO_BURN: [(&str, &str); 13] = [
    (r"^(bert\.)?embeddings\.word_embeddings\.", "bert.embeddings.word."),
    (r"^(bert\.)?embeddings\.position_embeddings\.", "bert.embeddings.position."),
    (r"^(bert\.)?embeddings\.token_type_embeddings\.", "bert.embeddings.token_type."),
    (r"^(bert\.)?embeddings\.LayerNorm\.", "bert.embeddings.norm."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.attention\.self\.query\.", "bert.layers.$2.query."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.attention\.self\.key\.", "bert.layers.$2.key."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.attention\.self\.value\.", "bert.layers.$2.value."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.", "bert.layers.$2.attention_output."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", "bert.layers.$2.attention_norm."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.", "bert.layers.$2.intermediate."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.output\.dense\.", "bert.layers.$2.output."),
    (r"^(bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.", "bert.layers.$2.output_norm."),
    (r"^classifier\.", "head."),
];

/// The encoder's modules with the config's shapes, their parameters not yet initialised
/// (Burn's configs make lazy parameters): loading fills them without a first random draw.
fn skeleton(c: &BertConfig, device: &Device) -> Bert {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let linear = |inp: usize, out: usize| LinearConfig::new(inp, out).init(device);
    let norm = || LayerNormConfig::new(h).with_epsilon(c.layer_norm_eps).init(device);
    let hidden_dropout = DropoutConfig::new(c.hidden_dropout_prob);
    let embeddings = Embeddings {
        word: EmbeddingConfig::new(c.vocab_size, h).init(device),
        position: EmbeddingConfig::new(c.max_position_embeddings, h).init(device),
        token_type: EmbeddingConfig::new(c.type_vocab_size, h).init(device),
        norm: norm(),
        dropout: hidden_dropout.init(),
        eps: c.layer_norm_eps,
    };
    let layers = (0..c.num_hidden_layers)
        .map(|_| EncoderLayer {
            query: linear(h, h),
            key: linear(h, h),
            value: linear(h, h),
            attention_output: linear(h, h),
            attention_norm: norm(),
            intermediate: linear(h, i),
            output: linear(i, h),
            output_norm: norm(),
            attention_dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
            dropout: hidden_dropout.init(),
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
        })
        .collect();
    Bert { embeddings, layers }
}

/// Checks every tensor's name, shape and dtype against what `config` implies, before anything
/// is loaded, so errors name the checkpoint's tensors and PyTorch's shapes: a missing or
/// misshapen tensor, a dtype other than f32/f16/bf16, a tensor no BertModel has.
fn check(ck: &Checkpoint, config: &BertConfig, num_labels: usize) -> Result<()> {
    let mut expected = encoder_tensor_shapes(config);
    if ck.has(HEAD_WEIGHT) || ck.has(HEAD_BIAS) {
        expected.push((HEAD_WEIGHT.into(), vec![num_labels, config.hidden_size]));
        expected.push((HEAD_BIAS.into(), vec![num_labels]));
    }
    for (name, shape) in &expected {
        ck.view(name, shape)?;
    }
    let known: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).chain(IGNORED).collect();
    let unused: Vec<&String> =
        ck.names.iter().filter(|(canon, _)| !known.contains(canon.as_str())).map(|(_, s)| s).collect();
    if !unused.is_empty() {
        return Err(CoreError::Checkpoint(format!(
            "{} tensor(s) not part of a BertModel with this config: {}",
            unused.len(),
            unused.iter().take(5).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(())
}

/// A new head as Hugging Face initialises a new `Linear` in a BERT model: weights
/// N(0, initializer_range), bias 0, from a seeded generator so every backend starts alike.
fn random_head(hidden: usize, labels: usize, std: f64, seed: u64, device: &Device) -> Linear {
    let weight = tensor(head_init(hidden * labels, std, seed), [hidden, labels], device);
    let bias = tensor(vec![0.0; labels], [labels], device);
    Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) }
}

/// A new head's weights ([hidden, labels], Burn's orientation), as [`random_head`] draws them.
fn head_init(n: usize, std: f64, seed: u64) -> Vec<f32> {
    let normal = Normal::new(0.0f32, std as f32).expect("a finite, non-negative std");
    normal.sample_iter(seeded::rng(seed, Draw::Head)).take(n).collect()
}

/// Every parameter of a classifier as it started, by HF name (PyTorch orientation), as
/// [`load_classifier`] made it from `safetensors` with `seed`: the checkpoint's tensors, and
/// its head or the new one `seed` draws. Yields `(name, values)` for each name asked.
pub(crate) struct Initial<'a> {
    ck: Checkpoint<'a>,
    config: &'a BertConfig,
    seed: u64,
}

impl<'a> Initial<'a> {
    pub(crate) fn new(config: &'a BertConfig, safetensors: &'a [u8], seed: u64) -> Result<Self> {
        Ok(Initial { ck: Checkpoint::parse(safetensors)?, config, seed })
    }

    /// The starting values of `name` (PyTorch orientation), `labels` the head's outputs.
    pub(crate) fn values(&mut self, name: &str, shape: &[usize], labels: usize) -> Result<Vec<f32>> {
        let h = self.config.hidden_size;
        match name {
            HEAD_WEIGHT if !self.ck.has(HEAD_WEIGHT) => {
                // Drawn as [hidden, labels]; PyTorch keeps [labels, hidden].
                let drawn = head_init(h * labels, self.config.initializer_range, self.seed);
                Ok((0..labels * h).map(|k| drawn[(k % h) * labels + k / h]).collect())
            }
            HEAD_BIAS if !self.ck.has(HEAD_BIAS) => Ok(vec![0.0; labels]),
            _ => self.ck.take(name, shape),
        }
    }
}

/// Loads a classifier from a HF checkpoint. If the checkpoint carries a head
/// (`classifier.weight`/`classifier.bias`, as FreezeLab writes them) it must have `num_labels`
/// rows and is used; otherwise the head is new, initialised from `seed`. burn-store does the
/// loading (names remapped, PyTorch's `[out, in]` Linear weights transposed, LayerNorm
/// weight/bias as gamma/beta, f16/bf16 upcast); the names and shapes are checked first, here,
/// so an error speaks of the checkpoint's tensors.
pub fn load_classifier(
    config: &BertConfig,
    safetensors: &[u8],
    num_labels: usize,
    seed: u64,
    device: &Device,
) -> Result<Classifier> {
    if num_labels < 2 {
        return Err(CoreError::Invalid(format!("a classifier needs at least 2 labels, got {num_labels}")));
    }
    let ck = Checkpoint::parse(safetensors)?;
    check(&ck, config, num_labels)?;
    let h = config.hidden_size;
    let head = if ck.has(HEAD_WEIGHT) {
        LinearConfig::new(h, num_labels).init(device)
    } else {
        random_head(h, num_labels, config.initializer_range, seed, device)
    };
    let mut model = Classifier {
        bert: skeleton(config, device),
        dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        head,
    };
    let mut store = SafetensorsStore::from_bytes(Some(safetensors.to_vec()))
        .with_from_adapter(PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32)))
        // The pooler and buffers HF keeps are left in the file; a new head is absent from it.
        .allow_partial(true);
    for (from, to) in HF_TO_BURN {
        store = store.with_key_remapping(from, to);
    }
    let result = model.load_from(&mut store).map_err(|e| CoreError::Checkpoint(e.to_string()))?;
    let head_is_new = !ck.has(HEAD_WEIGHT);
    let missing: Vec<&str> = result
        .missing
        .iter()
        .map(|(path, _)| path.as_str())
        .filter(|p| !(head_is_new && p.starts_with("head.")))
        .collect();
    if let Some(error) = result.errors.first() {
        return Err(CoreError::Checkpoint(error.to_string()));
    }
    if !missing.is_empty() {
        return Err(CoreError::Checkpoint(format!("not loaded: {}", missing.join(", "))));
    }
    Ok(model)
}

/// Number of labels of a head stored in a checkpoint, if it has one.
pub fn stored_head_labels(safetensors: &[u8]) -> Result<Option<usize>> {
    let ck = Checkpoint::parse(safetensors)?;
    match ck.names.get(HEAD_WEIGHT) {
        None => Ok(None),
        Some(stored) => {
            let view = ck.tensors.tensor(stored).map_err(|e| CoreError::Checkpoint(e.to_string()))?;
            Ok(view.shape().first().copied())
        }
    }
}

/// A deterministic random checkpoint (f32, HF names) for tests, smoke runs and throughput
/// benchmarks: weights N(0, 0.02)-like uniform noise, LayerNorm at identity.
pub fn random_checkpoint(config: &BertConfig, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = encoder_tensor_shapes(config)
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let values = if name.ends_with("LayerNorm.weight") {
                vec![1.0; n]
            } else if name.ends_with("LayerNorm.bias") {
                vec![0.0; n]
            } else {
                (0..n).map(|_| rng.random_range(-0.035f32..0.035)).collect()
            };
            (name, shape, values)
        })
        .collect();
    write_f32(&tensors)
}

/// Every parameter of `model` under its HF name, flattened, in PyTorch orientation.
pub(crate) fn hf_tensors(model: &Classifier) -> Vec<(String, Vec<usize>, Tensor<1>)> {
    fn flat<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Tensor<1>) {
        let dims = t.dims().to_vec();
        let n: usize = dims.iter().product();
        (dims, t.reshape([n as i64]))
    }
    let mut out = Vec::new();
    let mut push = |name: String, (shape, t): (Vec<usize>, Tensor<1>)| out.push((name, shape, t));
    let linear = |push: &mut dyn FnMut(String, (Vec<usize>, Tensor<1>)), name: &str, l: &Linear| {
        push(format!("{name}.weight"), flat(l.weight.val().transpose()));
        if let Some(b) = &l.bias {
            push(format!("{name}.bias"), flat(b.val()));
        }
    };
    let norm = |push: &mut dyn FnMut(String, (Vec<usize>, Tensor<1>)), name: &str, n: &LayerNorm| {
        push(format!("{name}.weight"), flat(n.gamma.val()));
        if let Some(b) = &n.beta {
            push(format!("{name}.bias"), flat(b.val()));
        }
    };
    let e = &model.bert.embeddings;
    push("embeddings.word_embeddings.weight".into(), flat(e.word.weight.val()));
    push("embeddings.position_embeddings.weight".into(), flat(e.position.weight.val()));
    push("embeddings.token_type_embeddings.weight".into(), flat(e.token_type.weight.val()));
    norm(&mut push, "embeddings.LayerNorm", &e.norm);
    for (i, l) in model.bert.layers.iter().enumerate() {
        let p = format!("encoder.layer.{i}");
        linear(&mut push, &format!("{p}.attention.self.query"), &l.query);
        linear(&mut push, &format!("{p}.attention.self.key"), &l.key);
        linear(&mut push, &format!("{p}.attention.self.value"), &l.value);
        linear(&mut push, &format!("{p}.attention.output.dense"), &l.attention_output);
        norm(&mut push, &format!("{p}.attention.output.LayerNorm"), &l.attention_norm);
        linear(&mut push, &format!("{p}.intermediate.dense"), &l.intermediate);
        linear(&mut push, &format!("{p}.output.dense"), &l.output);
        norm(&mut push, &format!("{p}.output.LayerNorm"), &l.output_norm);
    }
    linear(&mut push, "classifier", &model.head);
    out
}

/// A fine-tuned classifier as safetensors with HF names (`BertForSequenceClassification`
/// layout without the `bert.` prefix and pooler), label names in the metadata. Reads every
/// tensor asynchronously, so it works on WebGPU.
pub async fn export_classifier(model: &Classifier, labels: &[String]) -> Result<Vec<u8>> {
    let mut tensors = Vec::new();
    for (name, shape, t) in hf_tensors(model) {
        tensors.push((name, shape, crate::device::read_f32(t).await?));
    }
    Ok(write_f32_with_labels(&tensors, Some(labels)))
}

/// Metadata key under which fine-tuned checkpoints keep their label names (a JSON array).
pub const LABELS_KEY: &str = "freezelab.labels";

/// Label names stored in a checkpoint's metadata by FreezeLab, if any.
pub fn stored_label_names(safetensors: &[u8]) -> Result<Option<Vec<String>>> {
    let (_, metadata) = SafeTensors::read_metadata(safetensors)
        .map_err(|e| CoreError::Checkpoint(format!("not a readable safetensors file ({e})")))?;
    match metadata.metadata().as_ref().and_then(|m| m.get(LABELS_KEY)) {
        None => Ok(None),
        Some(json) => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| CoreError::Checkpoint(format!("metadata {LABELS_KEY} is not a list of names: {e}"))),
    }
}

/// Serialises named f32 tensors to safetensors bytes, with label names in the metadata when
/// given. Equal inputs give equal bytes (one metadata key at most, so no map-order variation).
pub fn write_f32_with_labels(tensors: &[(String, Vec<usize>, Vec<f32>)], labels: Option<&[String]>) -> Vec<u8> {
    let metadata = labels.map(|l| {
        std::collections::HashMap::from([(LABELS_KEY.to_string(), serde_json::to_string(l).expect("strings"))])
    });
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).expect("shape matches data")))
        .collect();
    safetensors::serialize(views, metadata).expect("in-memory serialisation cannot fail")
}

/// [`write_f32_with_labels`] without labels.
pub fn write_f32(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    write_f32_with_labels(tensors, None)
}
