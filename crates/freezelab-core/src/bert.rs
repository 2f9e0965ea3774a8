//! A post-norm BERT encoder with Hugging Face semantics, built from individually addressable
//! blocks (embeddings, each encoder layer, classifier head) so that freezing and caching can
//! work block by block.

use burn::module::Module;
use burn::nn::{Dropout, Embedding, LayerNorm, Linear};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::fused;
use crate::tokenize::EncodedBatch;

/// Added to attention scores of padding keys; exp() of it underflows to exactly 0 as HF's does.
const MASKED_SCORE: f32 = -1.0e9;

#[derive(Module, Debug)]
pub struct Embeddings {
    pub word: Embedding,
    pub position: Embedding,
    pub token_type: Embedding,
    pub norm: LayerNorm,
    pub dropout: Dropout,
    /// The norms' ε (Burn's `LayerNorm` keeps its own private).
    pub eps: f64,
}

impl Embeddings {
    /// `ids` [batch, seq] → hidden states [batch, seq, hidden]. Every token has type id 0
    /// (single-sentence classification).
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = ids.dims();
        let words = self.word.forward(ids);
        let positions = self.position.weight.val().slice(0..seq).unsqueeze_dim::<3>(0);
        let token_type = self.token_type.weight.val().slice(0..1).unsqueeze_dim::<3>(0);
        fused::dropout(fused::layer_norm(words + positions + token_type, &self.norm, self.eps), &self.dropout)
    }
}

#[derive(Module, Debug)]
pub struct EncoderLayer {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    pub attention_output: Linear,
    pub attention_norm: LayerNorm,
    pub intermediate: Linear,
    pub output: Linear,
    pub output_norm: LayerNorm,
    pub attention_dropout: Dropout,
    pub dropout: Dropout,
    pub heads: usize,
    pub eps: f64,
}

impl EncoderLayer {
    /// `x` [batch, seq, hidden]; `key_bias` [batch, seq] (0 for tokens, a large negative number
    /// for padding).
    pub fn forward(&self, x: Tensor<3>, key_bias: Tensor<2>) -> Tensor<3> {
        let [batch, seq, hidden] = x.dims();
        let head_dim = hidden / self.heads;
        let split = |t: Tensor<3>| t.reshape([batch, seq, self.heads, head_dim]).swap_dims(1, 2);

        let q = split(fused::linear(x.clone(), &self.query));
        let k = split(fused::linear(x.clone(), &self.key));
        let v = split(fused::linear(x.clone(), &self.value));
        let scores = fused::matmul(q, k.swap_dims(2, 3));
        let probs = fused::masked_softmax(scores, key_bias, 1.0 / (head_dim as f64).sqrt());
        let probs = fused::dropout(probs, &self.attention_dropout);
        let context = fused::matmul(probs, v).swap_dims(1, 2).reshape([batch, seq, hidden]);

        let attended = fused::dropout(fused::linear(context, &self.attention_output), &self.dropout);
        let attended = fused::layer_norm(attended + x, &self.attention_norm, self.eps);
        let hidden_ff = fused::gelu(fused::linear(attended.clone(), &self.intermediate));
        let out = fused::dropout(fused::linear(hidden_ff, &self.output), &self.dropout);
        fused::layer_norm(out + attended, &self.output_norm, self.eps)
    }
}

/// The encoder: embeddings and N layers. HF's pooler is not part of it: classification uses the
/// mean of the last hidden states over real tokens (how all-MiniLM was trained).
#[derive(Module, Debug)]
pub struct Bert {
    pub embeddings: Embeddings,
    pub layers: Vec<EncoderLayer>,
}

/// A batch as tensors on one device.
#[derive(Debug, Clone)]
pub struct BatchTensors {
    pub ids: Tensor<2, Int>,
    /// 1.0 for real tokens, 0.0 for padding, [batch, seq].
    pub mask: Tensor<2>,
}

impl BatchTensors {
    pub fn new(batch: &EncodedBatch, device: &Device) -> Self {
        let shape = [batch.batch_size, batch.seq_len];
        let ids: Vec<i64> = batch.ids.iter().map(|&i| i as i64).collect();
        let mask: Vec<f32> = batch.mask.iter().map(|&m| m as f32).collect();
        BatchTensors {
            ids: Tensor::from_data(TensorData::new(ids, shape), device),
            mask: Tensor::from_data(TensorData::new(mask, shape), device),
        }
    }

    /// [batch, seq] additive attention bias per key.
    pub fn key_bias(&self) -> Tensor<2> {
        (self.mask.clone() - 1.0) * -MASKED_SCORE
    }
}

impl Bert {
    /// Last hidden states [batch, seq, hidden].
    pub fn forward(&self, input: &BatchTensors) -> Tensor<3> {
        self.forward_from(self.embeddings.forward(input.ids.clone()), 0, input)
    }

    /// Runs layers `start..` on hidden states produced by the blocks below `start`.
    pub fn forward_from(&self, mut x: Tensor<3>, start: usize, input: &BatchTensors) -> Tensor<3> {
        let bias = input.key_bias();
        for layer in &self.layers[start..] {
            x = layer.forward(x, bias.clone());
        }
        x
    }

    pub fn hidden_size(&self) -> usize {
        self.embeddings.word.weight.dims()[1]
    }

    /// The embeddings' output, then every layer's output, bottom to top.
    pub fn hidden_states(&self, input: &BatchTensors) -> Vec<Tensor<3>> {
        let bias = input.key_bias();
        let mut states = vec![self.embeddings.forward(input.ids.clone())];
        for layer in &self.layers {
            let next = layer.forward(states.last().expect("embeddings first").clone(), bias.clone());
            states.push(next);
        }
        states
    }
}

/// Mean of `hidden` [batch, seq, h] over positions where `mask` [batch, seq] is 1 → [batch, h].
pub fn mean_pool(hidden: Tensor<3>, mask: &Tensor<2>) -> Tensor<2> {
    let [batch, _, h] = hidden.dims();
    let mask = mask.clone().unsqueeze_dim::<3>(2);
    let summed = (hidden * mask.clone()).sum_dim(1);
    let counts = mask.sum_dim(1).clamp_min(1.0);
    (summed / counts).reshape([batch, h])
}

/// Encoder + dropout + a linear head over the mean pool.
#[derive(Module, Debug)]
pub struct Classifier {
    pub bert: Bert,
    pub dropout: Dropout,
    pub head: Linear,
}

impl Classifier {
    pub fn forward(&self, input: &BatchTensors) -> Tensor<2> {
        let hidden = self.bert.forward(input);
        self.logits(hidden, &input.mask)
    }

    /// Logits from last hidden states.
    pub fn logits(&self, hidden: Tensor<3>, mask: &Tensor<2>) -> Tensor<2> {
        self.head.forward(fused::dropout(mean_pool(hidden, mask), &self.dropout))
    }

    pub fn num_labels(&self) -> usize {
        self.head.weight.dims()[1]
    }
}
