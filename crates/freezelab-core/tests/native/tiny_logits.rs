//! Logits of a tiny random model on fixed texts and the losses of its seeded training run
//! (dropout on), pinned in tests/fixtures/tiny_{logits,losses}.json so the browser tests
//! (tests/wasm.rs) can check that wasm computes what native computes.
//! After a deliberate change to the model code: `FREEZELAB_WRITE_FIXTURES=1 cargo test`.

use burn::tensor::Device;
use freezelab_core::bert::BatchTensors;
use freezelab_core::device::read_f32;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::synthetic;

use crate::common::tiny_run;

#[test]
fn tiny_logits_match_the_pinned_fixture() {
    let device = Device::flex();
    let model = tiny_run::model(&device);
    let batch = model.tokenizer.encode_batch(&synthetic::PROBE_TEXTS, 16).unwrap();
    let logits = pollster::block_on(read_f32(model.classifier.forward(&BatchTensors::new(&batch, &device)))).unwrap();
    let Some(pinned) = pinned::<f32>("tiny_logits", &logits) else { return };
    assert_eq!(logits.len(), 8);
    let worst = logits.iter().zip(&pinned).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "logits moved by {worst} from the fixture; regenerate it if the change was deliberate");
}

#[test]
fn seeded_losses_match_the_pinned_fixture() {
    let device = Device::flex();
    let (losses, ..) =
        pollster::block_on(tiny_run::train(&device, FreezePlan::none(2), 2, Some(tiny_run::PINNED_STEPS)));
    let Some(pinned) = pinned::<f64>("tiny_losses", &losses) else { return };
    assert_eq!(losses.len(), tiny_run::PINNED_STEPS);
    let worst = losses.iter().zip(&pinned).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst <= 1e-5, "losses moved by {worst} from the fixture; regenerate it if the change was deliberate");
}

/// The values pinned in tests/fixtures/`name`.json; with `FREEZELAB_WRITE_FIXTURES` set,
/// writes `values` there instead and returns `None` (the test is then counted as skipped).
fn pinned<T: serde::Serialize + serde::de::DeserializeOwned>(name: &str, values: &[T]) -> Option<Vec<T>> {
    let path = crate::common::repo_root().join(format!("tests/fixtures/{name}.json"));
    if std::env::var_os("FREEZELAB_WRITE_FIXTURES").is_some() {
        // A fixture written now cannot check this run: it is counted as skipped, not passed.
        std::fs::write(&path, serde_json::to_string(values).unwrap() + "\n").unwrap();
        crate::common::skip(name, "fixture rewritten; it is checked on the next run");
        return None;
    }
    Some(serde_json::from_slice(&std::fs::read(&path).expect("fixture")).unwrap())
}
