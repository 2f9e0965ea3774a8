//! Computed memory: the bytes a training step needs under a freeze plan, from parameter counts
//! and activation shapes alone (what freezing should save). Measuring lives in the core.

use serde::{Deserialize, Serialize};

use crate::freeze::FreezePlan;

/// The encoder sizes activations depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncoderShape {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
}

/// Parameter counts per block, bottom to top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockParams {
    pub embeddings: usize,
    pub layers: Vec<usize>,
    pub head: usize,
}

impl BlockParams {
    pub fn total(&self) -> usize {
        self.embeddings + self.layers.iter().sum::<usize>() + self.head
    }
}

/// Bytes by kind, derived from parameter counts and activation shapes (f32 throughout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ComputedMemory {
    /// All parameters, frozen or not.
    pub weights: u64,
    /// One gradient per trainable parameter.
    pub gradients: u64,
    /// AdamW's two moments per trainable parameter.
    pub optimizer: u64,
    /// Tensors autodiff keeps for backward, only for layers above the freeze line.
    pub activations: u64,
    /// The frozen-prefix cache, when used.
    pub cache: u64,
}

impl ComputedMemory {
    pub fn total(&self) -> u64 {
        self.weights + self.gradients + self.optimizer + self.activations + self.cache
    }
}

/// Trainable parameters under `plan` (the head always trains).
pub fn trainable_params(params: &BlockParams, plan: &FreezePlan) -> usize {
    let layers: usize = params.layers.iter().zip(&plan.layers).filter(|(_, &f)| !f).map(|(p, _)| p).sum();
    layers + params.head + if plan.embeddings { 0 } else { params.embeddings }
}

/// f32 values autodiff keeps for one encoder layer's backward, counted from the ops in
/// `bert::EncoderLayer::forward` at batch `b`, sequence `s`:
/// - per token, hidden-sized: the layer input (read by q/k/v), q, k, v, the attention context,
///   the attention-output and output dropout masks and projections, two LayerNorms' inputs and
///   normalised values → 12 × h;
/// - per token, intermediate-sized: the intermediate projection (GELU's input), GELU's output,
///   and the erf term GELU's backward reads → 3 × i;
/// - per head and token pair: softmax output, attention-dropout mask, dropped probabilities → 3 × s.
pub fn layer_activation_floats(c: &EncoderShape, b: usize, s: usize) -> u64 {
    let (h, i, a) = (c.hidden_size as u64, c.intermediate_size as u64, c.num_attention_heads as u64);
    let (b, s) = (b as u64, s as u64);
    b * s * (12 * h + 3 * i) + 3 * b * a * s * s
}

/// Embedding block activations: the sum before LayerNorm, its normalised value, dropout mask.
fn embedding_activation_floats(c: &EncoderShape, b: usize, s: usize) -> u64 {
    3 * (b * s * c.hidden_size) as u64
}

/// The computed breakdown for a step at batch `b`, padded length `s`.
pub fn computed(
    c: &EncoderShape,
    params: &BlockParams,
    plan: &FreezePlan,
    b: usize,
    s: usize,
    cache_bytes: u64,
) -> ComputedMemory {
    let trainable = trainable_params(params, plan) as u64;
    // Layers at or above the freeze line keep activations, frozen ones too: their input needs a
    // gradient when something below trains.
    let (first_tracked, embeddings_tracked) = match plan.freeze_line() {
        Some(k) => (k, false),
        None => (0, true),
    };
    let layers = (plan.num_layers() - first_tracked.min(plan.num_layers())) as u64;
    let mut floats = layers * layer_activation_floats(c, b, s);
    if embeddings_tracked {
        floats += embedding_activation_floats(c, b, s);
    }
    ComputedMemory {
        weights: 4 * params.total() as u64,
        gradients: 4 * trainable,
        optimizer: 8 * trainable,
        activations: 4 * floats,
        cache: cache_bytes,
    }
}

/// Where measured numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureSource {
    /// Burn's GPU memory pool (bytes in use).
    DevicePool,
    /// The counting global allocator (CPU backends: tensors live in host memory).
    HostAllocator,
}
