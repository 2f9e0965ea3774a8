//! `cargo xtask bench`'s browser rows: the training step compiled to wasm (SIMD128, one
//! dedicated worker, one thread) in headless Chromium, on a model of MiniLM-L6's shape with
//! random weights (the speed does not depend on the values). Built only with the `wasm-bench`
//! feature, so `wasm-pack test` does not run it; prints one `BENCH {json}` line per row.
#![cfg(target_arch = "wasm32")]

use burn::tensor::Device;
use freezelab_core::config::BertConfig;
use freezelab_core::train::{bench, Host, TrainEvent};
use freezelab_core::weights::{load_classifier, random_checkpoint};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// The rows, batch, length and timed steps the native one-thread rows use too (xtask).
const ROWS: [&str; 2] = ["none", "head-only"];
const BATCH: usize = 16;
const SEQ: usize = 64;
const STEPS: usize = 3;

struct Clock;

impl Host for Clock {
    fn now(&self) -> f64 {
        js_sys::Date::now() / 1000.0
    }
    fn emit(&mut self, _: &TrainEvent) {}
}

#[wasm_bindgen_test]
async fn training_throughput_in_the_browser() {
    let config = BertConfig { max_position_embeddings: 512, ..BertConfig::tiny(30522, 384, 6, 12) };
    let weights = random_checkpoint(&config, 1);
    let device = Device::flex().autodiff();
    let batch = bench::fixed_batch(BATCH, SEQ, config.vocab_size, 101, 102);
    for (name, plan, cache) in bench::rows(config.num_hidden_layers) {
        if !ROWS.contains(&name) {
            continue;
        }
        let model = load_classifier(&config, &weights, 2, 1, &device).unwrap();
        let result = bench::run(model, (&plan, cache), &batch, STEPS, &Clock).await.unwrap();
        assert!(result.examples_per_second.is_finite() && result.examples_per_second > 0.0);
        console_log!("BENCH {}", serde_json::to_string(&result).unwrap());
    }
}

/// The matrix products of a MiniLM step at batch 16 × 64 tokens (forward, and the backward's
/// two transposed forms) on the page's relaxed-SIMD kernel and on Burn's matmul (gemm's
/// `simd128` kernels), GFLOP/s over 10 products after one, and their largest difference; one
/// `MATMUL {json}` line per shape.
#[wasm_bindgen_test]
async fn matrix_products_in_the_browser() {
    use burn::tensor::{Distribution, Tensor};
    use freezelab_core::device::read_f32;
    use freezelab_core::fused;

    let device = Device::flex();
    assert!(fused::wasm_matmul::available(), "the relaxed-SIMD kernel did not load");
    // (products, m, k, n, form): "nn" x·W, "nt" g·Wᵀ, "tn" xᵀ·g; the linear layers' (one
    // product over all 1024 rows), then the attention's (one per sequence and head, 12 heads).
    let shapes = [
        (1, 1024, 384, 384, "nn"),
        (1, 1024, 384, 1536, "nn"),
        (1, 1024, 1536, 384, "nt"),
        (1, 384, 1024, 1536, "tn"),
        (192, 64, 32, 64, "nt"),
        (192, 64, 64, 32, "nn"),
    ];
    for (count, m, k, n, form) in shapes {
        let operand = |rows, cols, transposed| {
            let sequences = count.min(16);
            let batch = [sequences, count / sequences];
            let dims = if transposed { [batch[0], batch[1], cols, rows] } else { [batch[0], batch[1], rows, cols] };
            let t = Tensor::<4>::random(dims, Distribution::Default, &device);
            if transposed {
                t.swap_dims(2, 3)
            } else {
                t
            }
        };
        let (lhs, rhs) = (operand(m, k, form == "tn"), operand(k, n, form == "nt"));
        let flops = 2.0 * (count * m * k * n) as f64;
        let rate = |f: &dyn Fn() -> Tensor<4>| {
            f();
            let start = js_sys::Date::now();
            let reps = 10;
            for _ in 0..reps {
                f();
            }
            flops * reps as f64 / ((js_sys::Date::now() - start) / 1000.0) / 1e9
        };
        let kernel = rate(&|| fused::matmul(lhs.clone(), rhs.clone()));
        let burn = rate(&|| lhs.clone().matmul(rhs.clone()));
        let (a, b) = (fused::matmul(lhs.clone(), rhs.clone()), lhs.clone().matmul(rhs.clone()));
        let (a, b) = (read_f32(a).await.unwrap(), read_f32(b).await.unwrap());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        console_log!(
            "MATMUL {{\"shape\":\"{count}·{m}x{k}x{n}\",\"form\":\"{form}\",\"kernel_gflops\":{kernel:.1},\"burn_gflops\":{burn:.1},\"difference\":{worst:e}}}"
        );
    }
}
