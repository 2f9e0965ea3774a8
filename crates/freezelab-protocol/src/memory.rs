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

/// How a backend runs a layer's element-wise work, which decides what autodiff keeps for the
/// backward pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// FreezeLab's fused operations (`freezelab_core::fused`, the CPU backend): layer norm keeps
    /// x̂, GELU its input, softmax its output, dropout only a seed.
    #[default]
    Fused,
    /// Burn's composed operations (WebGPU, Vulkan): every intermediate and every dropout mask.
    Composed,
}

impl From<crate::messages::BackendKind> for Kernels {
    fn from(kind: crate::messages::BackendKind) -> Self {
        match kind {
            crate::messages::BackendKind::Cpu => Kernels::Fused,
            crate::messages::BackendKind::Webgpu => Kernels::Composed,
        }
    }
}

/// f32 values autodiff keeps for one encoder layer's backward, counted from the ops in
/// `bert::EncoderLayer::forward` at batch `b`, sequence `s`.
/// Fused:
/// - per token, hidden-sized: the layer input (read by q/k/v), q, k, v, the attention context,
///   the first norm's x̂ and output (the feed-forward's input), the second norm's x̂ → 8 × h;
/// - per token, intermediate-sized: GELU's input and output → 2 × i;
/// - per head and token pair: the softmax output and the dropped probabilities → 2 × s.
///
/// Composed, in addition: both dropout masks and projections of the hidden size, each norm's
/// input (12 × h in all), the erf term GELU's backward reads (3 × i), the attention-dropout mask
/// (3 × s).
pub fn layer_activation_floats(c: &EncoderShape, b: usize, s: usize, kernels: Kernels) -> u64 {
    let (h, i, a) = (c.hidden_size as u64, c.intermediate_size as u64, c.num_attention_heads as u64);
    let (b, s) = (b as u64, s as u64);
    let (per_h, per_i, per_pair) = match kernels {
        Kernels::Fused => (8, 2, 2),
        Kernels::Composed => (12, 3, 3),
    };
    b * s * (per_h * h + per_i * i) + per_pair * b * a * s * s
}

/// Embedding block activations: the norm's x̂ (fused), or also the sum before the norm and the
/// dropout mask (composed).
fn embedding_activation_floats(c: &EncoderShape, b: usize, s: usize, kernels: Kernels) -> u64 {
    let per_h = match kernels {
        Kernels::Fused => 1,
        Kernels::Composed => 3,
    };
    per_h * (b * s * c.hidden_size) as u64
}

/// The computed breakdown for a step at batch `b`, padded length `s`.
pub fn computed(
    c: &EncoderShape,
    params: &BlockParams,
    plan: &FreezePlan,
    b: usize,
    s: usize,
    cache_bytes: u64,
    kernels: Kernels,
) -> ComputedMemory {
    let trainable = trainable_params(params, plan) as u64;
    // Layers at or above the freeze line keep activations, frozen ones too: their input needs a
    // gradient when something below trains.
    let (first_tracked, embeddings_tracked) = match plan.freeze_line() {
        Some(k) => (k, false),
        None => (0, true),
    };
    let layers = (plan.num_layers() - first_tracked.min(plan.num_layers())) as u64;
    let mut floats = layers * layer_activation_floats(c, b, s, kernels);
    if embeddings_tracked {
        floats += embedding_activation_floats(c, b, s, kernels);
    }
    ComputedMemory {
        weights: 4 * params.total() as u64,
        gradients: 4 * trainable,
        optimizer: 8 * trainable,
        activations: 4 * floats,
        cache: cache_bytes,
    }
}

/// Bytes the prefix cache holds for `tokens` tokens of hidden size `hidden` (f32, no padding),
/// at most `limit`: past it the cache stops growing.
pub fn cache_bytes(hidden: usize, tokens: u64, limit: u64) -> u64 {
    (4 * hidden as u64 * tokens).min(limit)
}

/// What a device can hold, where known: all its memory, and one buffer (WebGPU binds each
/// tensor as one storage buffer, so the largest tensor must fit `buffer_bytes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLimits {
    pub memory_bytes: Option<u64>,
    pub buffer_bytes: Option<u64>,
}

/// Bytes of the largest activation tensor of a step: the attention scores or the intermediate
/// projection.
pub fn largest_tensor_bytes(c: &EncoderShape, b: usize, s: usize) -> u64 {
    let (b, s) = (b as u64, s as u64);
    4 * (b * c.num_attention_heads as u64 * s * s).max(b * s * c.intermediate_size as u64)
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1048576.0)
}

/// Refuses a run the device cannot hold, before it starts, with the estimate by kind so the
/// user sees what to shrink. Besides what a step keeps (`memory`), the forward pass needs room
/// for its largest intermediate tensor, frozen layers included.
pub fn check_fits(memory: &ComputedMemory, largest_tensor: u64, limits: &DeviceLimits) -> Result<(), String> {
    const SHRINK: &str = "lower the batch size or the max length";
    let needed = memory.total() + largest_tensor;
    if let Some(limit) = limits.memory_bytes.filter(|&l| needed > l) {
        return Err(format!(
            "this run needs about {} (weights {}, gradients {}, optimizer {}, activations {}, cache {}, largest \
             intermediate tensor {}) but the device holds at most {}: {SHRINK}, or freeze more layers",
            mib(needed),
            mib(memory.weights),
            mib(memory.gradients),
            mib(memory.optimizer),
            mib(memory.activations),
            mib(memory.cache),
            mib(largest_tensor),
            mib(limit),
        ));
    }
    if let Some(limit) = limits.buffer_bytes.filter(|&l| largest_tensor > l) {
        return Err(format!(
            "this run's largest tensor needs {} but the device's buffers hold at most {}: {SHRINK}",
            mib(largest_tensor),
            mib(limit)
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mini() -> EncoderShape {
        EncoderShape { hidden_size: 384, intermediate_size: 1536, num_attention_heads: 12 }
    }

    #[test]
    fn runs_over_a_limit_are_refused_with_the_estimate() {
        let memory = ComputedMemory { weights: 90 << 20, activations: 5 << 30, ..Default::default() };
        let cpu = DeviceLimits { memory_bytes: Some(4 << 30), buffer_bytes: None };
        let message = check_fits(&memory, 0, &cpu).unwrap_err();
        assert!(message.contains("5210 MiB") && message.contains("4096 MiB"), "{message}");
        let small = ComputedMemory { weights: 90 << 20, ..Default::default() };
        assert_eq!(check_fits(&small, 0, &cpu), Ok(()));
        assert_eq!(check_fits(&memory, 0, &DeviceLimits::default()), Ok(()));
        // A head-only run keeps no activations, but its forward pass still needs the scores.
        let scores = largest_tensor_bytes(&mini(), 4096, 512);
        assert!(check_fits(&small, scores, &cpu).unwrap_err().contains("largest intermediate tensor 49152 MiB"));
    }

    #[test]
    fn the_largest_tensor_must_fit_one_buffer() {
        // batch 64, 512 tokens: 64·12·512·512 scores = 768 MiB of f32, over a 128 MiB buffer.
        let bytes = largest_tensor_bytes(&mini(), 64, 512);
        assert_eq!(bytes, 4 * 64 * 12 * 512 * 512);
        let gpu = DeviceLimits { memory_bytes: None, buffer_bytes: Some(128 << 20) };
        assert!(check_fits(&ComputedMemory::default(), bytes, &gpu).unwrap_err().contains("768 MiB"));
        // Short sequences: the intermediate projection is the larger one.
        assert_eq!(largest_tensor_bytes(&mini(), 2, 8), 4 * 2 * 8 * 1536);
    }
}
