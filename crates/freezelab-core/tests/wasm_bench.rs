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
        let result = bench::run(model, &plan, cache, &batch, STEPS, &Clock).await.unwrap();
        assert!(result.examples_per_second.is_finite() && result.examples_per_second > 0.0);
        console_log!("BENCH {}", serde_json::to_string(&result).unwrap());
    }
}
