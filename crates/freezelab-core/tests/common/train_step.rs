//! Replays tests/fixtures/train_step.json (three AdamW steps by PyTorch + transformers, made by
//! tests/fixtures/make_train_step.py) with FreezeLab's training step, natively and in the browser.

use std::cell::Cell;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use freezelab_core::config::BertConfig;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::fused::Dropouts;
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_core::measured::PeakMeter;
use freezelab_core::synthetic;
use freezelab_core::tokenize::EncodedBatch;
use freezelab_core::train::{self, schedule, AdamW, TrainConfig};
use freezelab_core::weights::export_classifier;
use safetensors::SafeTensors;
use serde::Deserialize;

pub const FIXTURE: &str = include_str!("../../../../tests/fixtures/train_step.json");
pub const TOLERANCE: f64 = 1e-4;

#[derive(Deserialize)]
pub struct Fixture {
    pub steps: usize,
    pub warmup_steps: usize,
    pub lr: f64,
    pub head_lr: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub batches: Vec<Vec<Vec<u32>>>,
    pub labels: Vec<Vec<usize>>,
    pub initial_head: Head,
    pub losses: Vec<f64>,
    pub grad_norms: Vec<f64>,
    pub final_values: std::collections::BTreeMap<String, Vec<f32>>,
}

#[derive(Deserialize)]
pub struct Head {
    /// PyTorch orientation: [labels][hidden].
    pub weight: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

pub fn fixture() -> Fixture {
    serde_json::from_str(FIXTURE).expect("train_step.json")
}

/// The synthetic model `freezelab synthetic` writes, with dropout off, on `device`.
fn tiny_model(device: &Device, head: &Head) -> LoadedModel {
    let (config, weights, tokenizer) = synthetic::model_files(32, 2, 2, 7);
    let mut config: BertConfig = serde_json::from_slice(&config).unwrap();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    let config = serde_json::to_vec(&config).unwrap();
    let files = ModelFiles { config: &config, weights: &weights, tokenizer: tokenizer.as_bytes() };
    let mut model = LoadedModel::load(files, Some(head.bias.len()), 0, device).unwrap();
    let (labels, hidden) = (head.weight.len(), head.weight[0].len());
    let weight: Vec<f32> = head.weight.iter().flatten().copied().collect();
    // Burn keeps a Linear weight as [in, out]: the transpose of PyTorch's.
    let weight = Tensor::<2>::from_data(TensorData::new(weight, [labels, hidden]), device).transpose();
    let bias = Tensor::<1>::from_data(TensorData::new(head.bias.clone(), [labels]), device);
    model.classifier.head = Linear { weight: Param::from_tensor(weight), bias: Some(Param::from_tensor(bias)) };
    model
}

/// Trains the fixture's steps; returns the losses and the final pinned tensors (HF names).
pub async fn replay(fx: &Fixture, device: &Device) -> (Vec<f64>, std::collections::BTreeMap<String, Vec<f32>>) {
    let device = device.clone().autodiff();
    let model = tiny_model(&device, &fx.initial_head);
    let cfg = TrainConfig {
        weight_decay: fx.weight_decay,
        grad_clip_norm: Some(fx.max_grad_norm),
        warmup_fraction: 0.1,
        ..TrainConfig::default()
    };
    // The loop's warm-up count for this many steps must be the one HF used.
    assert_eq!(schedule::warmup_steps(fx.steps, cfg.warmup_fraction), fx.warmup_steps);
    let plan = FreezePlan::none(2);
    let mut optim = AdamW::new(&cfg);
    let mut classifier = train::apply_plan(model.classifier, &plan, 0);
    let mut losses = Vec::new();
    for (step, (rows, labels)) in fx.batches.iter().zip(&fx.labels).enumerate() {
        let batch = EncodedBatch::from_rows(rows, 0);
        let logits = train::logits(&classifier, &plan, &batch, &Cell::new(Dropouts::new(0)), &device).await.unwrap();
        let loss = train::cross_entropy(logits, labels, &device);
        let factor = schedule::lr_factor(step, fx.steps, fx.warmup_steps);
        let mut meter = PeakMeter::start(&device);
        let rates = train::Rates::new(&plan, fx.lr, fx.head_lr, factor);
        let with = train::StepWith { rates: &rates, meter: &mut meter, exchange: None };
        let (next, loss) = optim.step(classifier, Some(loss), with).await;
        classifier = next;
        losses.push(loss.unwrap());
    }
    let bytes = export_classifier(&classifier, &["a".into(), "b".into()]).await.unwrap();
    let tensors = SafeTensors::deserialize(&bytes).unwrap();
    let finals = fx
        .final_values
        .keys()
        .map(|name| {
            let view = tensors.tensor(name).unwrap_or_else(|_| panic!("{name} is not exported"));
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name.clone(), values)
        })
        .collect();
    (losses, finals)
}

/// Every loss and every pinned value within [`TOLERANCE`]; returns the largest difference.
pub fn compare(fx: &Fixture, losses: &[f64], finals: &std::collections::BTreeMap<String, Vec<f32>>) -> f64 {
    // Clipping must have acted in the fixture, or the test would not cover it.
    assert!(fx.grad_norms.iter().all(|&n| n > fx.max_grad_norm), "fixture norms {:?}", fx.grad_norms);
    let mut worst = 0.0f64;
    for (step, (a, b)) in losses.iter().zip(&fx.losses).enumerate() {
        assert!((a - b).abs() <= TOLERANCE, "step {step}: loss {a} vs PyTorch {b}");
        worst = worst.max((a - b).abs());
    }
    assert_eq!(losses.len(), fx.losses.len());
    for (name, want) in &fx.final_values {
        let got = &finals[name];
        assert_eq!(got.len(), want.len(), "{name}: size");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let d = (g - w).abs() as f64;
            assert!(d <= TOLERANCE, "{name}[{i}]: {g} vs PyTorch {w}");
            worst = worst.max(d);
        }
    }
    worst
}
