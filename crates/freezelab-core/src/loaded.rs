//! A model loaded from the three HF files (config.json, model.safetensors, tokenizer.json) as
//! bytes, with the inference entry points the CLI and the page share.

use burn::module::Module;
use burn::tensor::{activation, Device};
use serde::{Deserialize, Serialize};

use crate::bert::{mean_pool, BatchTensors, Classifier};
use crate::config::BertConfig;
use crate::device::read_f32;
use crate::params;
use crate::tokenize::Tokenizer;
use crate::weights::{load_classifier, stored_head_labels};
use crate::{CoreError, Result};
use freezelab_protocol::memory::BlockParams;

/// The three files of a Hugging Face BERT checkpoint, as bytes.
#[derive(Clone, Copy)]
pub struct ModelFiles<'a> {
    pub config: &'a [u8],
    pub weights: &'a [u8],
    pub tokenizer: &'a [u8],
}

impl ModelFiles<'_> {
    /// The name the prefix cache knows this model by: all three files' bytes, never their
    /// names, so two checkpoints of one shape under the same file names never share states.
    pub fn content_id(&self) -> String {
        crate::cache::content_id(&[self.config, self.weights, self.tokenizer])
    }
}

pub struct LoadedModel {
    pub config: BertConfig,
    pub tokenizer: Tokenizer,
    pub classifier: Classifier,
    pub device: Device,
}

/// Parameter counts per block of a classifier, bottom to top, and of their bias terms.
pub fn block_params(model: &Classifier) -> BlockParams {
    let bert = &model.bert;
    BlockParams {
        embeddings: bert.embeddings.num_params(),
        layers: bert.layers.iter().map(Module::num_params).collect(),
        head: model.head.num_params(),
        embedding_biases: params::bias_count(&bert.embeddings),
        layer_biases: bert.layers.iter().map(params::bias_count).collect(),
        linears: bert.layers.first().map_or([(0, 0); 6], |l| {
            [&l.query, &l.key, &l.value, &l.attention_output, &l.intermediate, &l.output].map(|linear| {
                let [inputs, outputs] = linear.weight.dims();
                (inputs, outputs)
            })
        }),
    }
}

/// One text's encoder output: the contract of `freezelab embed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEmbedding {
    pub text: String,
    pub ids: Vec<u32>,
    /// Mean of the last hidden states over real tokens.
    pub mean: Vec<f32>,
    /// Last hidden state of the first token ([CLS]).
    pub cls: Vec<f32>,
}

impl LoadedModel {
    /// `num_labels`: the head's classes; `None` takes the checkpoint's head if it has one, else 2.
    pub fn load(files: ModelFiles, num_labels: Option<usize>, seed: u64, device: &Device) -> Result<Self> {
        let config = BertConfig::from_json(files.config)?;
        let tokenizer = Tokenizer::from_bytes(files.tokenizer)?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(CoreError::Tokenizer(format!(
                "vocabulary of {} tokens does not fit the model's {} embeddings: is it another model's tokenizer?",
                tokenizer.vocab_size(),
                config.vocab_size
            )));
        }
        let labels = match num_labels {
            Some(n) => n,
            None => stored_head_labels(files.weights)?.unwrap_or(2),
        };
        let classifier = load_classifier(&config, files.weights, labels, seed, device)?;
        Ok(LoadedModel { config, tokenizer, classifier, device: device.clone() })
    }

    pub fn block_params(&self) -> BlockParams {
        block_params(&self.classifier)
    }

    pub fn check_max_len(&self, max_len: usize) -> Result<()> {
        if max_len > self.config.max_position_embeddings {
            return Err(CoreError::Invalid(format!(
                "max length {max_len} exceeds the model's {} positions",
                self.config.max_position_embeddings
            )));
        }
        Ok(())
    }

    /// Encoder outputs of `texts`, computed in batches of `batch_size`.
    pub async fn embed(&self, texts: &[&str], max_len: usize, batch_size: usize) -> Result<Vec<TextEmbedding>> {
        self.check_max_len(max_len)?;
        let h = self.config.hidden_size;
        let mut out = Vec::with_capacity(texts.len());
        let model = self.classifier.valid();
        let device = model.head.weight.val().device();
        for chunk in texts.chunks(batch_size.max(1)) {
            let batch = self.tokenizer.encode_batch(chunk, max_len)?;
            let input = BatchTensors::new(&batch, &device);
            let hidden = model.bert.forward(&input);
            let [b, _, _] = hidden.dims();
            let cls = read_f32(hidden.clone().slice([0..b, 0..1]).reshape([b, h])).await?;
            let mean = read_f32(mean_pool(hidden, &input.mask)).await?;
            for (i, text) in chunk.iter().enumerate() {
                out.push(TextEmbedding {
                    text: text.to_string(),
                    ids: batch.tokens(i),
                    mean: mean[i * h..(i + 1) * h].to_vec(),
                    cls: cls[i * h..(i + 1) * h].to_vec(),
                });
            }
        }
        Ok(out)
    }

    /// Class probabilities for each text.
    pub async fn predict(&self, texts: &[&str], max_len: usize) -> Result<Vec<Vec<f32>>> {
        self.check_max_len(max_len)?;
        let batch = self.tokenizer.encode_batch(texts, max_len)?;
        // A model fresh from training sits on an autodiff device, where dropout is on: its
        // inference copy computes the deterministic function every other reader sees.
        let model = self.classifier.valid();
        let input = BatchTensors::new(&batch, &model.head.weight.val().device());
        let probs = read_f32(activation::softmax(model.forward(&input), 1)).await?;
        let k = self.classifier.num_labels();
        Ok(probs.chunks(k).map(<[f32]>::to_vec).collect())
    }
}
