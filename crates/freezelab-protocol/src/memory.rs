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

use crate::freeze::Mode;

/// Parameter counts per block, bottom to top, of their bias terms (linear biases and LayerNorm
/// shifts: what BitFit trains), and the shapes of a layer's linears (what LoRA adapts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockParams {
    pub embeddings: usize,
    pub layers: Vec<usize>,
    pub head: usize,
    pub embedding_biases: usize,
    pub layer_biases: Vec<usize>,
    /// (inputs, outputs) of a layer's query, key, value, attention output, intermediate and
    /// output projections.
    pub linears: [(usize, usize); 6],
}

/// Which of a layer's linears LoRA adapts: query and value (indices into
/// [`BlockParams::linears`]), or all six.
fn lora_targets(all_linear: bool) -> &'static [usize] {
    if all_linear {
        &[0, 1, 2, 3, 4, 5]
    } else {
        &[0, 2]
    }
}

impl BlockParams {
    pub fn total(&self) -> usize {
        self.embeddings + self.layers.iter().sum::<usize>() + self.head
    }

    /// Parameters of the embeddings (`None`) or layer `i` that train under `plan` (under
    /// gradual unfreezing, once every block is open: the schedule's peak).
    pub fn trainable_in(&self, plan: &FreezePlan, layer: Option<usize>) -> usize {
        let (frozen, all, biases) = match layer {
            None => (plan.embeddings_frozen(), self.embeddings, self.embedding_biases),
            Some(i) => (plan.layers[i], self.layers[i], self.layer_biases[i]),
        };
        match (frozen, plan.mode) {
            (true, _) => 0,
            (false, Mode::Bitfit) => biases,
            (false, Mode::Lora { .. }) if layer.is_none() => 0,
            (false, Mode::Lora { rank, all_linear, .. }) => {
                lora_targets(all_linear).iter().map(|&l| rank * (self.linears[l].0 + self.linears[l].1)).sum()
            }
            (false, Mode::Freeze | Mode::Llrd { .. } | Mode::Gradual { .. }) => all,
        }
    }

    /// Values of the dense weights LoRA composes (base + update) in a layer each step.
    fn lora_merged(&self, all_linear: bool) -> u64 {
        lora_targets(all_linear).iter().map(|&l| (self.linears[l].0 * self.linears[l].1) as u64).sum()
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

/// Trainable parameters under `plan` (the head always trains, fully).
pub fn trainable_params(params: &BlockParams, plan: &FreezePlan) -> usize {
    // A plan for another depth (the page's before a model loads) counts the layers both have.
    let layers: usize =
        (0..params.layers.len().min(plan.num_layers())).map(|i| params.trainable_in(plan, Some(i))).sum();
    layers + params.head + params.trainable_in(plan, None)
}

/// f32 values autodiff keeps for one encoder layer's backward, counted from the ops in
/// `bert::EncoderLayer::forward` at batch `b`, sequence `s`.
/// Every backend runs FreezeLab's fused operations (`freezelab_core::fused`: layer norm keeps
/// x̂, GELU its input, softmax its output, dropout only a seed), so the CPU and the GPU keep:
/// - per token, hidden-sized: the layer input (read by q/k/v), q, k, v, the attention context,
///   the first norm's x̂ and output (the feed-forward's input), the second norm's x̂ → 8 × h;
/// - per token, intermediate-sized: GELU's input and output → 2 × i;
/// - per head and token pair: the softmax output and the dropped probabilities → 2 × s.
///
/// Autodiff keeps a matmul's input only for its weight's gradient: when the weights do not
/// train (a frozen layer above a trainable one, BitFit) the inputs of the q/k/v projection, of
/// the attention output, of the first and of the second feed-forward projection are not kept
/// (−3 × h, −1 × i); under LoRA on query and value only the q/k/v input is (−2 × h, −1 × i).
pub fn layer_activation_floats(c: &EncoderShape, b: usize, s: usize, weights: Weights) -> u64 {
    let (h, i, a) = (c.hidden_size as u64, c.intermediate_size as u64, c.num_attention_heads as u64);
    let (b, s) = (b as u64, s as u64);
    let (per_h, per_i, per_pair) = (8, 2, 2);
    let (per_h, per_i) = match weights {
        Weights::Train => (per_h, per_i),
        Weights::QueryValue => (per_h - 2, per_i - 1),
        Weights::Fixed => (per_h - 3, per_i - 1),
    };
    b * s * (per_h * h + per_i * i) + per_pair * b * a * s * s
}

/// Which of a layer's linear weights get a gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// All (full fine-tuning, LLRD, LoRA on every linear).
    Train,
    /// Query and value only (LoRA's default targets).
    QueryValue,
    /// None (a frozen layer, BitFit).
    Fixed,
}

/// Embedding block activations: the norm's x̂.
fn embedding_activation_floats(c: &EncoderShape, b: usize, s: usize) -> u64 {
    (b * s * c.hidden_size) as u64
}

/// The computed breakdown for a step at batch `b`, padded length `s`.
pub fn computed(
    c: &EncoderShape,
    params: &BlockParams,
    plan: &FreezePlan,
    (b, s): (usize, usize),
    cache_bytes: u64,
) -> ComputedMemory {
    let trainable = trainable_params(params, plan) as u64;
    // Layers at or above the freeze line keep activations, frozen ones too (fewer: no weight
    // gradients): their input needs a gradient when something below trains.
    let (first_tracked, embeddings_tracked) = match plan.freeze_line() {
        Some(k) => (k, false),
        None => (0, true),
    };
    let first = first_tracked.min(plan.num_layers());
    let mut floats: u64 = (first..plan.num_layers())
        .map(|i| {
            let weights = match plan.mode {
                _ if plan.layers[i] => Weights::Fixed,
                Mode::Bitfit => Weights::Fixed,
                Mode::Lora { all_linear: false, .. } => Weights::QueryValue,
                _ => Weights::Train,
            };
            // LoRA composes each adapted weight densely; autodiff keeps it wherever the layer's
            // input needs a gradient, i.e. above the lowest trainable layer.
            let merged = match plan.mode {
                Mode::Lora { all_linear, .. } if !plan.layers[i] && i > first => params.lora_merged(all_linear),
                _ => 0,
            };
            layer_activation_floats(c, b, s, weights) + merged
        })
        .sum();
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

    /// A BERT's counts from its sizes (hidden `h`, intermediate `i`, 512 positions, 2 types).
    fn bert_params(h: usize, i: usize, layers: usize, vocab: usize) -> BlockParams {
        let linears = [(h, h), (h, h), (h, h), (h, h), (h, i), (i, h)];
        let biases = 7 * h + i;
        BlockParams {
            embeddings: (vocab + 512 + 2) * h + 2 * h,
            layers: vec![linears.iter().map(|(a, b)| a * b).sum::<usize>() + biases + 2 * h; layers],
            head: 2 * h + 2,
            embedding_biases: h,
            layer_biases: vec![biases; layers],
            linears,
        }
    }

    #[test]
    fn each_mode_counts_what_it_trains() {
        let p = bert_params(384, 1536, 6, 30_522);
        assert_eq!((p.embeddings, p.layers[0], p.total()), (11_918_592, 1_774_464, 22_566_146));
        let count = |spec: &str| trainable_params(&p, &FreezePlan::parse(spec, 6).unwrap());
        assert_eq!(count("bitfit"), 384 + 6 * 4_224 + 770);
        assert_eq!(count("bitfit:emb,0-3"), 2 * 4_224 + 770);
        // Rank 8 on query and value: 8 × (384 + 384) each, the embeddings frozen.
        assert_eq!(count("lora-8"), 6 * 2 * 8 * 768 + 770);
        assert_eq!(count("lora-8-all"), 6 * 8 * (4 * 768 + 2 * 1920) + 770);
        assert_eq!(count("llrd-0.8"), count("none"));
        assert_eq!(count("gradual-4:emb"), count("emb"));
        // Fewer kept activations and no weight gradients: BitFit below full fine-tuning, LoRA's
        // kept dense weights above BitFit.
        let total = |spec: &str| computed(&mini(), &p, &FreezePlan::parse(spec, 6).unwrap(), (16, 64), 0).total();
        assert!(total("bitfit") < total("lora-8") && total("lora-8") < total("none"));
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
