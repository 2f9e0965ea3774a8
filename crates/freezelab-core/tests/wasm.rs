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
    fused_cases::dropout_check(&gpu).await.assert("WebGPU");
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
    use freezelab_core::fused::wasm_matmul::{kernel, Kernel};
    // Where the engine has relaxed SIMD (Chromium, Firefox) the products run the page's kernel;
    // where it has not (WebKit) gemm's. A kernel that validated but did not start is a failure.
    match kernel() {
        Kernel::RelaxedSimd => console_log!("products on the relaxed-SIMD kernel"),
        Kernel::NoRelaxedSimd => console_log!("products on gemm: this engine has no relaxed SIMD"),
        Kernel::Failed(why) => panic!("{why}"),
    }
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

/// The page's matrix kernel (gemm's where the browser lacks relaxed SIMD: the log says which ran)
/// against a naive product at every edge of its blocking: m ∈ 1…9 and 63…65 (its rows of 4 and
/// packs of 64), n ∈ 1…17 (columns of 8), k ∈ {1, 2, 255, 256, 257} (depth packs of 256, padded
/// to even), with contiguous, transposed and row-strided operands, two matrices per batch.
#[wasm_bindgen_test]
async fn the_matrix_kernel_matches_a_naive_product_at_its_edge_shapes() {
    use burn::tensor::{Tensor, TensorData};
    use freezelab_core::fused::{self, wasm_matmul};
    let ran = match wasm_matmul::kernel() {
        wasm_matmul::Kernel::RelaxedSimd => "the relaxed-SIMD kernel".to_string(),
        wasm_matmul::Kernel::NoRelaxedSimd => "gemm (this browser has no relaxed SIMD)".to_string(),
        wasm_matmul::Kernel::Failed(why) => format!("gemm ({why})"),
    };
    console_log!("matrix products on {ran}");
    let device = Device::flex();
    let mut seed = 1u32;
    let mut values = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as f32 / u32::MAX as f32 * 2.0 - 1.0
            })
            .collect()
    };
    let (mut shapes, mut worst) = (0, 0.0f32);
    let rows: Vec<usize> = (1..=9).chain(63..=65).collect();
    for &m in &rows {
        for n in 1..=17 {
            for k in [1, 2, 255, 256, 257] {
                let (a, b) = (values(2 * m * k), values(2 * k * n));
                // a[h][i][p] and b[h][p][j], row-major: the naive product in f64.
                let mut want = vec![0.0f32; 2 * m * n];
                for h in 0..2 {
                    for i in 0..m {
                        for j in 0..n {
                            let dot: f64 =
                                (0..k).map(|p| a[(h * m + i) * k + p] as f64 * b[(h * k + p) * n + j] as f64).sum();
                            want[(h * m + i) * n + j] = dot as f32;
                        }
                    }
                }
                let plain = |v: &[f32], r: usize, c: usize| {
                    Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 2, r, c]), &device)
                };
                // The same matrix stored transposed, read through swapped strides.
                let transposed = |v: &[f32], r: usize, c: usize| {
                    let mut t = vec![0.0f32; v.len()];
                    for h in 0..2 {
                        for i in 0..r {
                            for j in 0..c {
                                t[(h * c + j) * r + i] = v[(h * r + i) * c + j];
                            }
                        }
                    }
                    Tensor::<4>::from_data(TensorData::new(t, [1, 2, c, r]), &device).swap_dims(2, 3)
                };
                // Each row followed by 3 unused values: a row stride of c + 3.
                let strided = |v: &[f32], r: usize, c: usize| {
                    let padded: Vec<f32> = v.chunks(c).flat_map(|row| row.iter().copied().chain([9.0; 3])).collect();
                    Tensor::<4>::from_data(TensorData::new(padded, [1, 2, r, c + 3]), &device).slice([
                        0..1,
                        0..2,
                        0..r,
                        0..c,
                    ])
                };
                let forms = [
                    ("plain", plain(&a, m, k), plain(&b, k, n)),
                    ("lhs transposed", transposed(&a, m, k), plain(&b, k, n)),
                    ("rhs transposed", plain(&a, m, k), transposed(&b, k, n)),
                    ("strided rows", strided(&a, m, k), strided(&b, k, n)),
                ];
                for (form, lhs, rhs) in forms {
                    let got = read_f32(fused::matmul(lhs, rhs)).await.unwrap();
                    let error = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0f32, f32::max);
                    assert!(error <= 1e-4, "{m}×{k}×{n}, {form}, on {ran}: off by {error}");
                    worst = worst.max(error);
                    shapes += 1;
                }
            }
        }
    }
    console_log!("{shapes} products against the naive one, largest difference {worst:.2e}");
    assert_eq!(shapes, 12 * 17 * 5 * 4);
}
