//! The core inside a real browser (wasm-bindgen-test, headless Chromium), on the CPU backend:
//! tokenizer from bytes, a forward pass, training that learns, freezing that holds; and on
//! WebGPU where the browser has an adapter (tiny shapes: here it is SwiftShader's software one).
//! Run by `cargo xtask test` through `wasm-bindgen-test-runner`.
#![cfg(target_arch = "wasm32")]

use burn::tensor::Device;
use freezelab_core::bert::BatchTensors;
use freezelab_core::cache::PrefixCache;
use freezelab_core::device::{self, read_f32, Backend};
use freezelab_core::freeze::FreezePlan;
use freezelab_core::loaded::LoadedModel;
use freezelab_core::synthetic;
use freezelab_core::train;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

#[path = "common/fused_cases.rs"]
mod fused_cases;
#[path = "common/recorder.rs"]
mod recorder;
#[path = "common/tiny_run.rs"]
mod tiny_run;
#[path = "common/train_step.rs"]
mod train_step;

// In a dedicated worker: the runner polls the page over WebDriver, and training on the main
// thread would block those polls past their timeout on a slow machine.
wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn tiny(device: &Device) -> LoadedModel {
    tiny_run::model(device)
}

/// Logits written by the native test tests/native/tiny_logits.rs.
const NATIVE_LOGITS: &str = include_str!("../../../tests/fixtures/tiny_logits.json");

#[wasm_bindgen_test]
async fn logits_equal_the_native_ones() {
    let device = Device::flex();
    let model = tiny(&device);
    let batch = model.tokenizer.encode_batch(&synthetic::PROBE_TEXTS, 16).unwrap();
    let got = read_f32(model.classifier.forward(&BatchTensors::new(&batch, &device))).await.unwrap();
    let want: Vec<f32> = serde_json::from_str(NATIVE_LOGITS).unwrap();
    assert_eq!(got.len(), want.len());
    let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "wasm logits differ from native by {worst}");
}

#[wasm_bindgen_test]
fn tokenizer_from_bytes_adds_specials_and_pads() {
    let model = tiny(&Device::flex());
    let batch = model.tokenizer.encode_batch(&["the movie was great", "bad"], 16).unwrap();
    // [CLS]=2, [SEP]=3; "great" is the first cue word (4), "bad" the eighth (11).
    assert_eq!(batch.tokens(1), vec![2, 11, 3]);
    assert_eq!(batch.tokens(0).first(), Some(&2));
    assert_eq!(batch.tokens(0).last(), Some(&3));
    assert_eq!(batch.seq_len, 6);
}

#[wasm_bindgen_test]
async fn forward_pass_gives_finite_distinct_outputs() {
    let device = Device::flex();
    let model = tiny(&device);
    let batch = model.tokenizer.encode_batch(&["the movie was great", "a bad dark day"], 16).unwrap();
    let logits = read_f32(model.classifier.forward(&BatchTensors::new(&batch, &device))).await.unwrap();
    assert_eq!(logits.len(), 4);
    assert!(logits.iter().all(|v| v.is_finite()));
    assert_ne!(logits[0..2], logits[2..4]);
}

/// Trains the tiny model in the browser under `plan`: losses, summary, trained model, cache.
async fn train_tiny(plan: FreezePlan, epochs: usize) -> (Vec<f64>, train::RunSummary, LoadedModel, PrefixCache) {
    tiny_run::train(&Device::flex(), plan, epochs, None).await
}

#[wasm_bindgen_test]
async fn training_learns_in_the_browser() {
    let (losses, summary, _, _) = train_tiny(FreezePlan::none(2), 8).await;
    let n = losses.len();
    let first: f64 = losses[..4].iter().sum::<f64>() / 4.0;
    let last: f64 = losses[n - 4..].iter().sum::<f64>() / 4.0;
    assert!(last < first * 0.5, "loss did not fall in the browser: {first:.3} → {last:.3}");
    assert!(summary.val_accuracy >= 0.75, "accuracy {}", summary.val_accuracy);
}

#[wasm_bindgen_test]
async fn frozen_weights_hold_and_the_prefix_is_cached_in_the_browser() {
    let device = Device::flex();
    let before = read_f32(tiny(&device).classifier.bert.layers[0].query.weight.val()).await.unwrap();
    let (_, summary, model, cache) = train_tiny(FreezePlan::bottom(2, 1), 2).await;
    let after = read_f32(model.classifier.bert.layers[0].query.weight.val()).await.unwrap();
    assert_eq!(before, after, "layer 0 is frozen");
    assert!(summary.cache_used && cache.len() == 64 + 24, "every example cached once");
    let layer1_trained = read_f32(model.classifier.bert.layers[1].query.weight.val()).await.unwrap();
    let layer1_initial = read_f32(tiny(&device).classifier.bert.layers[1].query.weight.val()).await.unwrap();
    assert_ne!(layer1_trained, layer1_initial, "layer 1 trains");
}

/// Whether this browser offers WebGPU an adapter. Asked before Burn's wgpu starts: wgpu panics
/// when WebGPU is missing.
async fn webgpu_adapter() -> bool {
    let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let gpu = scope.navigator().gpu();
    if gpu.is_undefined() {
        return false;
    }
    JsFuture::from(gpu.request_adapter()).await.is_ok_and(|adapter| !adapter.is_null() && !adapter.is_undefined())
}

/// On WebGPU where the browser has an adapter (webdriver.json enables SwiftShader's): the tiny
/// model's logits match the CPU's, the AdamW kernel matches Burn's composed update, the clipping
/// norm's kernel the sum in f64, the GELU kernels the CPU's and dropout the CPU's masks, layer
/// norm's and the softmax's kernels Burn's composed ops, and two training steps keep frozen
/// weights fixed.
#[wasm_bindgen_test]
async fn webgpu_matches_the_cpu_and_freezing_holds_there() {
    if !webgpu_adapter().await {
        // `cargo xtask test` starts Chromium with WebGPU on and builds this with the variable
        // set: there a missing adapter is a failure, not a skip.
        assert!(
            option_env!("FREEZELAB_REQUIRE_WEBGPU").is_none(),
            "no WebGPU adapter, and FREEZELAB_REQUIRE_WEBGPU was set at build time"
        );
        console_log!("SKIPPED webgpu_matches_the_cpu_and_freezing_holds_there: this browser offers no WebGPU adapter");
        return;
    }
    let gpu = device::init(Backend::Wgpu).await.expect("WebGPU starts when an adapter exists");
    let texts = &synthetic::PROBE_TEXTS;
    let logits = |device: Device| async move {
        let model = tiny(&device);
        let batch = model.tokenizer.encode_batch(texts, 16).unwrap();
        read_f32(model.classifier.forward(&BatchTensors::new(&batch, &device))).await.unwrap()
    };
    let (on_gpu, on_cpu) = (logits(gpu.clone()).await, logits(Device::flex()).await);
    let worst = on_gpu.iter().zip(&on_cpu).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-4, "WebGPU logits differ from the CPU's by {worst}");

    let worst = fused_cases::adamw_difference(&gpu).await;
    console_log!("AdamW kernel on WebGPU against Burn's update: {worst:.2e}");
    assert!(worst <= 1e-6, "the WebGPU AdamW kernel differs from Burn's update by {worst}");
    let error = fused_cases::squared_norm_error(&gpu).await;
    assert!(error <= 1e-6, "the WebGPU squared norm is off by {error:.2e} (relative)");
    let (y, dx, _) = fused_cases::gelu_differences(&gpu).await;
    assert!(y <= fused_cases::TOLERANCE && dx <= fused_cases::TOLERANCE, "WebGPU GELU off by {y} / {dx}");
    let (y, dx, dropped) = fused_cases::dropout_differences(&gpu).await;
    assert!(y == 0.0 && dx == 0.0, "WebGPU dropout differs from the CPU's by {y} / {dx}");
    assert!((0.25..0.35).contains(&dropped), "dropped {dropped} at p = 0.3 on WebGPU");
    for (what, worst) in fused_cases::row_differences(&gpu).await {
        console_log!("{what} on WebGPU: {worst:.2e}");
        assert!(worst <= fused_cases::TOLERANCE, "WebGPU {what} differs from Burn's composed operations by {worst}");
    }

    let before = read_f32(tiny(&gpu).classifier.bert.layers[0].query.weight.val()).await.unwrap();
    let (losses, _, model, _) = tiny_run::train(&gpu, FreezePlan::bottom(2, 1), 1, Some(2)).await;
    assert_eq!(losses.len(), 2);
    assert!(losses.iter().all(|l| l.is_finite()));
    let after = read_f32(model.classifier.bert.layers[0].query.weight.val()).await.unwrap();
    assert_eq!(before, after, "layer 0 is frozen on WebGPU too");
    let trained = read_f32(model.classifier.bert.layers[1].query.weight.val()).await.unwrap();
    let initial = read_f32(tiny(&gpu).classifier.bert.layers[1].query.weight.val()).await.unwrap();
    assert_ne!(trained, initial, "layer 1 trains on WebGPU");
}

/// The PyTorch step parity of tests/native/train_step.rs, compiled to wasm.
#[wasm_bindgen_test]
async fn three_adamw_steps_match_pytorch_in_the_browser() {
    let fx = train_step::fixture();
    let (losses, finals) = train_step::replay(&fx, &Device::flex()).await;
    let worst = train_step::compare(&fx, &losses, &finals);
    console_log!("train step parity in the browser: largest difference {worst:.2e}");
}

/// The fused operations equal Burn's composed ones in wasm too (SIMD128 kernels).
#[wasm_bindgen_test]
async fn fused_operations_equal_the_composed_ones_in_the_browser() {
    // Chromium has relaxed SIMD: the products below run the page's kernel, not gemm's.
    assert!(freezelab_core::fused::wasm_matmul::available(), "the relaxed-SIMD matmul kernel did not load");
    for (what, worst) in fused_cases::differences().await {
        console_log!("{what}: {worst:.2e}");
        assert!(worst <= fused_cases::TOLERANCE, "{what} differs from Burn's composed operations by {worst}");
    }
}

/// A seeded run with dropout on gives the native loss curve (tests/native/tiny_logits.rs pins it).
#[wasm_bindgen_test]
async fn a_seeded_run_gives_the_native_losses() {
    let (losses, ..) = tiny_run::train(&Device::flex(), FreezePlan::none(2), 2, Some(tiny_run::PINNED_STEPS)).await;
    let pinned: Vec<f64> = serde_json::from_str(tiny_run::LOSSES).unwrap();
    assert_eq!(losses.len(), pinned.len());
    let worst = losses.iter().zip(&pinned).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    console_log!("losses in the browser vs native: largest difference {worst:.2e}");
    assert!(worst <= 1e-4, "the browser's losses differ from the native ones by {worst}");
}
