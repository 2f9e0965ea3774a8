//! Safetensors bytes with Hugging Face `BertModel` names ⇄ [`Classifier`].
//!
//! Linear weights are stored `[out, in]` by PyTorch and `[in, out]` by Burn; f16/bf16
//! checkpoints are upcast to f32. Every tensor the encoder needs must be present with the shape
//! the config implies, and every tensor in the file must be known: anything else is an error
//! naming the tensor and both shapes.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::Param;
use burn::nn::{DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::bert::{Bert, Classifier, Embeddings, EncoderLayer};
use crate::config::BertConfig;
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

/// A parsed checkpoint that remembers which tensors were taken, so leftovers can be reported.
struct Checkpoint<'a> {
    tensors: SafeTensors<'a>,
    /// Checkpoint name for each canonical name (handles a `bert.` prefix and gamma/beta norms).
    names: BTreeMap<String, String>,
    taken: BTreeSet<String>,
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
        Ok(Checkpoint { tensors, names, taken: BTreeSet::new() })
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The tensor `name` as f32 values, checked against `shape`.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
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
        self.taken.insert(name.to_string());
        to_f32(stored, &view)
    }

    fn unused(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|(canon, _)| !self.taken.contains(*canon) && !IGNORED.contains(&canon.as_str()))
            .map(|(_, stored)| stored.clone())
            .collect()
    }
}

fn to_f32(name: &str, view: &TensorView) -> Result<Vec<f32>> {
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => {
            return Err(CoreError::Checkpoint(format!("tensor {name} has dtype {other:?}; expected F32, F16 or BF16")))
        }
    };
    Ok(values)
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Builds a Linear from PyTorch's `[out, in]` weight.
fn linear(ck: &mut Checkpoint, name: &str, out: usize, inp: usize, device: &Device) -> Result<Linear> {
    let weight = tensor(ck.take(&format!("{name}.weight"), &[out, inp])?, [out, inp], device).transpose();
    let bias = tensor(ck.take(&format!("{name}.bias"), &[out])?, [out], device);
    Ok(Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) })
}

fn layer_norm(ck: &mut Checkpoint, name: &str, c: &BertConfig, device: &Device) -> Result<LayerNorm> {
    let h = c.hidden_size;
    let mut norm = LayerNormConfig::new(h).with_epsilon(c.layer_norm_eps).init(device);
    norm.gamma = Param::from_tensor(tensor(ck.take(&format!("{name}.weight"), &[h])?, [h], device));
    norm.beta = Some(Param::from_tensor(tensor(ck.take(&format!("{name}.bias"), &[h])?, [h], device)));
    Ok(norm)
}

fn embedding(ck: &mut Checkpoint, name: &str, rows: usize, h: usize, device: &Device) -> Result<Embedding> {
    let weight = tensor(ck.take(name, &[rows, h])?, [rows, h], device);
    Ok(Embedding { weight: Param::from_tensor(weight) })
}

fn encoder(ck: &mut Checkpoint, c: &BertConfig, device: &Device) -> Result<Bert> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let hidden_dropout = DropoutConfig::new(c.hidden_dropout_prob);
    let embeddings = Embeddings {
        word: embedding(ck, "embeddings.word_embeddings.weight", c.vocab_size, h, device)?,
        position: embedding(ck, "embeddings.position_embeddings.weight", c.max_position_embeddings, h, device)?,
        token_type: embedding(ck, "embeddings.token_type_embeddings.weight", c.type_vocab_size, h, device)?,
        norm: layer_norm(ck, "embeddings.LayerNorm", c, device)?,
        dropout: hidden_dropout.init(),
        eps: c.layer_norm_eps,
    };
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for l in 0..c.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        layers.push(EncoderLayer {
            query: linear(ck, &format!("{p}.attention.self.query"), h, h, device)?,
            key: linear(ck, &format!("{p}.attention.self.key"), h, h, device)?,
            value: linear(ck, &format!("{p}.attention.self.value"), h, h, device)?,
            attention_output: linear(ck, &format!("{p}.attention.output.dense"), h, h, device)?,
            attention_norm: layer_norm(ck, &format!("{p}.attention.output.LayerNorm"), c, device)?,
            intermediate: linear(ck, &format!("{p}.intermediate.dense"), i, h, device)?,
            output: linear(ck, &format!("{p}.output.dense"), h, i, device)?,
            output_norm: layer_norm(ck, &format!("{p}.output.LayerNorm"), c, device)?,
            attention_dropout: DropoutConfig::new(c.attention_probs_dropout_prob).init(),
            dropout: hidden_dropout.init(),
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
        });
    }
    Ok(Bert { embeddings, layers })
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
    normal.sample_iter(ChaCha8Rng::seed_from_u64(seed)).take(n).collect()
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
/// rows and is used; otherwise the head is new, initialised from `seed`.
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
    let mut ck = Checkpoint::parse(safetensors)?;
    let bert = encoder(&mut ck, config, device)?;
    let h = config.hidden_size;
    let head = if ck.has(HEAD_WEIGHT) {
        linear(&mut ck, "classifier", num_labels, h, device)?
    } else {
        random_head(h, num_labels, config.initializer_range, seed, device)
    };
    let unused = ck.unused();
    if !unused.is_empty() {
        return Err(CoreError::Checkpoint(format!(
            "{} tensor(s) not part of a BertModel with this config: {}",
            unused.len(),
            unused.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(Classifier { bert, dropout: DropoutConfig::new(config.hidden_dropout_prob).init(), head })
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
