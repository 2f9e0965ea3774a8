//! Logits of a tiny random model on fixed texts, pinned in tests/fixtures/tiny_logits.json so
//! the browser test (tests/wasm.rs) can check that wasm computes what native computes.
//! After a deliberate change to the model code: `FREEZELAB_WRITE_FIXTURES=1 cargo test`.
// Native only (`wasm-pack test` builds every test target; the browser's are in wasm.rs).
#![cfg(not(target_arch = "wasm32"))]

mod common;

use burn::tensor::Device;
use freezelab_core::bert::BatchTensors;
use freezelab_core::device::read_f32;
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_core::synthetic;

#[test]
fn tiny_logits_match_the_pinned_fixture() {
    let device = Device::flex();
    let (config, weights, tokenizer) = synthetic::model_files(32, 2, 2, 7);
    let files = ModelFiles { config: &config, weights: &weights, tokenizer: tokenizer.as_bytes() };
    let model = LoadedModel::load(files, Some(2), 7, &device).unwrap();
    let batch = model.encoder.encode_batch(&synthetic::PROBE_TEXTS, 16).unwrap();
    let logits = pollster::block_on(read_f32(model.classifier.forward(&BatchTensors::new(&batch, &device)))).unwrap();
    let path = common::repo_root().join("tests/fixtures/tiny_logits.json");
    if std::env::var_os("FREEZELAB_WRITE_FIXTURES").is_some() {
        // A fixture written now cannot check this run: it is counted as skipped, not passed.
        std::fs::write(&path, serde_json::to_string(&logits).unwrap() + "\n").unwrap();
        return common::skip(
            "tiny_logits_match_the_pinned_fixture",
            "fixture rewritten; it is checked on the next run",
        );
    }
    let pinned: Vec<f32> = serde_json::from_slice(&std::fs::read(&path).expect("fixture")).unwrap();
    assert_eq!(logits.len(), 8);
    let worst = logits.iter().zip(&pinned).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "logits moved by {worst} from the fixture; regenerate it if the change was deliberate");
}
