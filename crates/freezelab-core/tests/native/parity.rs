//! Parity with Hugging Face transformers' BertModel on the default weights
//! (fixture made by tests/fixtures/make_parity.py).

use burn::tensor::Device;
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use serde::Deserialize;

const TOLERANCE: f32 = 1e-4;

#[derive(Deserialize)]
struct Fixture {
    max_len: usize,
    stride: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    hidden_strided: Vec<Vec<f32>>,
    mean: Vec<f32>,
    cls: Vec<f32>,
}

fn fixture() -> Fixture {
    let path = crate::common::repo_root().join("tests/fixtures/parity.json");
    serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture JSON")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn load(dir: &std::path::Path, weights_file: &str) -> LoadedModel {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let (config, weights, tokenizer) = (read("config.json"), read(weights_file), read("tokenizer.json"));
    let files = ModelFiles { config: &config, weights: &weights, tokenizer: &tokenizer };
    LoadedModel::load(files, None, 0, &Device::flex()).expect("default model loads")
}

#[test]
fn matches_hugging_face_per_token_mean_and_cls() {
    let Some(dir) = crate::common::default_model_dir("parity") else {
        return;
    };
    let fx = fixture();
    let model = load(&dir, "model.safetensors");
    let texts: Vec<&str> = fx.cases.iter().map(|c| c.text.as_str()).collect();

    // One at a time (no padding), then all in one padded batch: both must match HF.
    let alone: Vec<_> =
        texts.iter().map(|t| pollster::block_on(model.embed(&[t], fx.max_len, 1)).unwrap().remove(0)).collect();
    let batched = pollster::block_on(model.embed(&texts, fx.max_len, texts.len())).unwrap();
    let mut worst = 0.0f32;
    for (case, runs) in fx.cases.iter().zip(alone.iter().zip(&batched)) {
        for got in [runs.0, runs.1] {
            assert_eq!(got.ids, case.ids, "token ids differ for {:?}", case.text);
            let d_mean = max_abs_diff(&got.mean, &case.mean);
            let d_cls = max_abs_diff(&got.cls, &case.cls);
            assert!(d_mean <= TOLERANCE && d_cls <= TOLERANCE, "{:?}: mean Δ {d_mean}, cls Δ {d_cls}", case.text);
            worst = worst.max(d_mean).max(d_cls);
        }
    }
    // Per-token states: run each text alone and compare every token's strided dimensions.
    for case in &fx.cases {
        let batch = model.tokenizer.encode_batch(&[&case.text], fx.max_len).unwrap();
        let input = freezelab_core::bert::BatchTensors::new(&batch, &model.device);
        let hidden = model.classifier.bert.forward(&input);
        let h = model.config.hidden_size;
        let values = pollster::block_on(freezelab_core::device::read_f32(hidden)).unwrap();
        assert_eq!(values.len(), case.hidden_strided.len() * h);
        for (t, want) in case.hidden_strided.iter().enumerate() {
            let got: Vec<f32> = values[t * h..(t + 1) * h].iter().step_by(fx.stride).copied().collect();
            let d = max_abs_diff(&got, want);
            assert!(d <= TOLERANCE, "{:?} token {t}: Δ {d}", case.text);
            worst = worst.max(d);
        }
    }
    eprintln!("parity: worst |Δ| against HF = {worst:.2e} over {} texts", fx.cases.len());
}

#[test]
fn half_precision_download_upcasts_close_to_f32() {
    let Some(dir) = crate::common::default_model_dir("f16 parity") else {
        return;
    };
    let fx = fixture();
    let model = load(&dir, "model.f16.safetensors");
    for case in &fx.cases {
        let got = pollster::block_on(model.embed(&[&case.text], fx.max_len, 1)).unwrap().remove(0);
        let dot: f32 = got.mean.iter().zip(&case.mean).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / (norm(&got.mean) * norm(&case.mean));
        assert!(cosine > 0.9999, "{:?}: cosine {cosine}", case.text);
    }
}

#[test]
fn default_model_has_the_published_shape() {
    let Some(dir) = crate::common::default_model_dir("shape") else {
        return;
    };
    let model = load(&dir, "model.safetensors");
    let p = model.block_params();
    assert_eq!(p.layers.len(), 6);
    assert!(p.layers.iter().all(|&n| n == 1_774_464));
    // 22,713,216 = encoder (without HF's unused 147,840-parameter pooler) + pooler.
    assert_eq!(p.total() - p.head + 147_840, 22_713_216);
}
