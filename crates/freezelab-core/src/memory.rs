//! Memory of a training run, two ways: computed from the shapes (what freezing should save) and
//! measured (what the allocator or the GPU memory pool actually held).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::config::BertConfig;
use crate::freeze::FreezePlan;
use crate::loaded::BlockParams;

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
pub fn layer_activation_floats(c: &BertConfig, b: usize, s: usize) -> u64 {
    let (h, i, a) = (c.hidden_size as u64, c.intermediate_size as u64, c.num_attention_heads as u64);
    let (b, s) = (b as u64, s as u64);
    b * s * (12 * h + 3 * i) + 3 * b * a * s * s
}

/// Embedding block activations: the sum before LayerNorm, its normalised value, dropout mask.
fn embedding_activation_floats(c: &BertConfig, b: usize, s: usize) -> u64 {
    3 * (b * s * c.hidden_size) as u64
}

/// The computed breakdown for a step at batch `b`, padded length `s`.
pub fn computed(
    c: &BertConfig,
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

/// A global allocator that counts live bytes and their peak. Binaries opt in with
/// `#[global_allocator] static ALLOC: CountingAllocator = CountingAllocator;` (native and wasm).
pub struct CountingAllocator;

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size() as u64);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grow(layout.size() as u64);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            grow(new_size as u64);
        }
        new
    }
}

fn grow(bytes: u64) {
    INSTALLED.store(true, Ordering::Relaxed);
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
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

/// Measures peak memory over a span of work on one device.
pub struct PeakMeter {
    device: Device,
    baseline: u64,
    peak: u64,
}

impl PeakMeter {
    /// The source of measurements on `device`, if any is available.
    pub fn source(device: &Device) -> Option<MeasureSource> {
        if device.memory_pool_usage().is_some() {
            Some(MeasureSource::DevicePool)
        } else if INSTALLED.load(Ordering::Relaxed) {
            Some(MeasureSource::HostAllocator)
        } else {
            None
        }
    }

    fn live(device: &Device) -> u64 {
        match device.memory_pool_usage() {
            Some(usage) => usage.bytes_in_use,
            None => LIVE.load(Ordering::Relaxed),
        }
    }

    /// Starts a span: the allocator's peak is reset to what is live now.
    pub fn start(device: &Device) -> Self {
        let live = Self::live(device);
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        PeakMeter { device: device.clone(), baseline: live, peak: live }
    }

    /// Samples the GPU pool (its peak can only be seen by sampling at points of high use).
    pub fn sample(&mut self) {
        self.peak = self.peak.max(Self::live(&self.device));
    }

    /// Peak bytes live during the span (absolute, including what was live at its start).
    pub fn peak(&mut self) -> u64 {
        self.sample();
        if self.device.memory_pool_usage().is_some() {
            self.peak
        } else {
            self.peak.max(PEAK.load(Ordering::Relaxed))
        }
    }

    pub fn baseline(&self) -> u64 {
        self.baseline
    }
}
