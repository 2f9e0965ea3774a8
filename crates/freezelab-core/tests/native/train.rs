//! Freezing has its real effects, training is reproducible, the cache changes nothing but
//! speed. Tiny random models, CPU backend.

use std::cell::Cell;

use burn::module::Module;
use burn::tensor::Device;
use freezelab_core::cache::PrefixCache;
use freezelab_core::config::BertConfig;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::fused::Dropouts;
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_core::synthetic;
use freezelab_core::tokenize::EncodedBatch;
use freezelab_core::train::{self, apply_plan, TrainConfig};

use crate::common::training::{model, run, run_keyed, run_on, small_cfg, turn, Recorder};

/// Every parameter's values, per block: embeddings, layer 0.., head.
fn block_values(m: &LoadedModel) -> Vec<Vec<f32>> {
    fn values<M: Module>(module: &M) -> Vec<f32> {
        struct Collect(Vec<f32>);
        impl burn::module::ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>) {
                self.0.extend(param.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap());
            }
        }
        let mut c = Collect(Vec::new());
        module.visit(&mut c);
        c.0
    }
    let c = &m.classifier;
    let mut out = vec![values(&c.bert.embeddings)];
    out.extend(c.bert.layers.iter().map(values));
    out.push(values(&c.head));
    out
}

/// Embeddings, layer 0 and layer 2 frozen; layer 1 and the head train: frozen weights must not
/// move by a single bit, the others must move.
pub(crate) fn check_frozen_blocks_on(device: &Device) {
    let config = synthetic::config(16, 3, 2);
    let before = block_values(&model(&config, 7, &Device::flex()));
    let plan = FreezePlan::parse("emb,0,2", 3).unwrap();
    let (trained, summary, _) = run_on(device, &config, &small_cfg(plan), &mut PrefixCache::new());
    let after = block_values(&trained);
    let frozen = [true, true, false, true, false];
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if frozen[i] {
            assert!(b.iter().zip(a).all(|(x, y)| x.to_bits() == y.to_bits()), "frozen block {i} changed");
        } else {
            assert!(b.iter().zip(a).any(|(x, y)| x != y), "trainable block {i} did not change");
        }
    }
    assert_eq!(summary.steps, 16);
}

#[test]
fn frozen_blocks_stay_bit_identical_and_trained_ones_move() {
    check_frozen_blocks_on(&Device::flex());
}

#[test]
fn optimizer_state_exists_only_for_trainable_tensors() {
    let config = synthetic::config(16, 3, 2);
    // Trainable tensors: a layer has 16 (6 linears × 2 + 2 norms × 2), the head 2, embeddings 5.
    let cases = [("none", 5 + 3 * 16 + 2), ("emb", 3 * 16 + 2), ("emb,0-1", 16 + 2), ("head-only", 2)];
    let mut per_tensor = None;
    for (spec, trainable_tensors) in cases {
        let cfg = TrainConfig { epochs: 1, max_steps: Some(2), ..small_cfg(FreezePlan::parse(spec, 3).unwrap()) };
        let (_, s, _) = run(&config, &cfg, &mut PrefixCache::new());
        let state = s.optimizer_state_tensors.expect("counted natively");
        assert!(state > 0);
        assert_eq!(state % trainable_tensors, 0, "{spec}: {state}");
        let ratio = state / trainable_tensors;
        assert_eq!(*per_tensor.get_or_insert(ratio), ratio, "{spec}: state per trainable tensor differs");
    }
}

/// Gradients of one training-style forward/backward under `plan`.
fn grads_present(config: &BertConfig, plan: &FreezePlan) -> (bool, Vec<bool>, bool) {
    let _turn = turn();
    let device = Device::flex().autodiff();
    let m = model(config, 3, &device);
    let classifier = apply_plan(m.classifier, plan, 0);
    let batch = m.tokenizer.encode_batch(&["the movie was great", "bad day"], 16).unwrap();
    let logits =
        pollster::block_on(train::logits(&classifier, plan, &batch, &Cell::new(Dropouts::new(0)), &device)).unwrap();
    let grads = logits.sum().backward();
    let b = &classifier.bert;
    (
        b.embeddings.word.weight.grad(&grads).is_some(),
        b.layers.iter().map(|l| l.query.weight.grad(&grads).is_some()).collect(),
        classifier.head.weight.grad(&grads).is_some(),
    )
}

#[test]
fn backward_stops_at_the_freeze_line() {
    let config = synthetic::config(16, 4, 2);
    let (emb, layers, head) = grads_present(&config, &FreezePlan::bottom(4, 2));
    assert!(!emb && head);
    assert_eq!(layers, vec![false, false, true, true]);
    let (emb, layers, head) = grads_present(&config, &FreezePlan::head_only(4));
    assert!(!emb && head && layers.iter().all(|g| !g));
}

#[test]
fn a_frozen_layer_above_a_trainable_one_passes_gradients_down() {
    let config = synthetic::config(16, 4, 2);
    let plan = FreezePlan::parse("2-3", 4).unwrap();
    let (emb, layers, head) = grads_present(&config, &plan);
    assert!(emb && head, "embeddings and head train");
    assert_eq!(layers, vec![true, true, false, false]);
}

#[test]
fn frozen_blocks_run_without_dropout() {
    let _turn = turn();
    let config = synthetic::config(16, 2, 2);
    let device = Device::flex().autodiff();
    let m = model(&config, 3, &device);
    let frozen = apply_plan(m.classifier, &FreezePlan::bottom(2, 1), 0);
    let batch: EncodedBatch = m.tokenizer.encode_batch(&["the movie was great and so good"], 16).unwrap();
    let input = freezelab_core::bert::BatchTensors::new(&batch, &device);
    let read = |t: burn::tensor::Tensor<3>| t.into_data().try_into_vec::<f32>().unwrap();
    let a = read(frozen.bert.embeddings.forward(input.ids.clone()));
    let b = read(frozen.bert.embeddings.forward(input.ids.clone()));
    assert_eq!(a, b, "a frozen block must be deterministic");
    let l1a = read(frozen.bert.layers[1].forward(frozen.bert.embeddings.forward(input.ids.clone()), input.key_bias()));
    let l1b = read(frozen.bert.layers[1].forward(frozen.bert.embeddings.forward(input.ids.clone()), input.key_bias()));
    assert_ne!(l1a, l1b, "a trainable layer applies dropout while training");
}

#[test]
fn same_seed_gives_the_same_loss_curve_and_training_learns() {
    let config = synthetic::config(32, 2, 2);
    let cfg = TrainConfig { epochs: 8, lr: 3e-3, ..small_cfg(FreezePlan::none(2)) };
    let (_, s1, h1) = run(&config, &cfg, &mut PrefixCache::new());
    let (_, s2, h2) = run(&config, &cfg, &mut PrefixCache::new());
    assert_eq!(h1.losses(), h2.losses());
    assert_eq!(s1.val_accuracy, s2.val_accuracy);
    let losses = h1.losses();
    let first: f64 = losses[..4].iter().sum::<f64>() / 4.0;
    let last: f64 = losses[losses.len() - 4..].iter().sum::<f64>() / 4.0;
    eprintln!("loss {first:.3} → {last:.3}, accuracy {}", s1.val_accuracy);
    assert!(last < first * 0.5, "loss did not fall: {first:.3} → {last:.3}");
    // Chance is 0.5 on these two balanced classes.
    assert!(s1.val_accuracy >= 0.75, "accuracy {}", s1.val_accuracy);
}

#[test]
fn cached_and_uncached_runs_agree() {
    let config = synthetic::config(32, 3, 2);
    let plan = FreezePlan::bottom(3, 2);
    let (_, plain, h_plain) = run(&config, &small_cfg(plan.clone()), &mut PrefixCache::new());
    let mut cache = PrefixCache::new();
    let cfg = TrainConfig { cache: true, ..small_cfg(plan) };
    let (_, cached, h_cached) = run(&config, &cfg, &mut cache);
    assert!(cached.cache_used && !plain.cache_used);
    // 96 synthetic examples, a quarter for validation: 64 of the 72 train + all 24 validation.
    assert_eq!(cache.len(), 64 + 24, "every train and validation example cached once");
    assert!(cached.memory.computed.cache > 0 && cached.memory.computed.cache == cache.bytes());
    for (a, b) in h_plain.losses().iter().zip(h_cached.losses()) {
        assert!((a - b).abs() <= 1e-5, "loss {a} vs {b}");
    }
    assert!((plain.val_accuracy - cached.val_accuracy).abs() < 1e-9);
}

#[test]
fn cache_over_its_limit_falls_back_to_computing() {
    let config = synthetic::config(32, 3, 2);
    let mut cache = PrefixCache::new();
    let cfg = TrainConfig { cache: true, cache_limit_bytes: 4096, ..small_cfg(FreezePlan::bottom(3, 2)) };
    let (_, s, _) = run(&config, &cfg, &mut cache);
    // The limit in the run's settings is the one the cache keeps.
    assert!(s.cache_over_limit && cache.bytes() <= 4096 && cache.bytes() > 0);
    assert!(s.val_accuracy.is_finite());
}

/// Two models of different widths share one cache, as two uploads named model.safetensors
/// would in the worker. Keyed by content, the second run recomputes; keyed by the same name (the
/// old bug), the shape check still refuses the first model's states. Either way each cached run
/// equals its own uncached run.
#[test]
fn a_cache_never_serves_another_models_states() {
    let wide = synthetic::config(32, 3, 2);
    let narrow = synthetic::config(16, 3, 2);
    let cfg = TrainConfig { cache: true, ..small_cfg(FreezePlan::bottom(3, 2)) };
    let uncached = TrainConfig { cache: false, ..cfg.clone() };
    let id = |c: &BertConfig| {
        let weights = freezelab_core::weights::random_checkpoint(c, 7);
        freezelab_core::cache::content_id(&[&serde_json::to_vec(c).unwrap(), &weights])
    };
    let (_, alone, _) = run(&narrow, &uncached, &mut PrefixCache::new());
    for (wide_key, narrow_key) in [(id(&wide), id(&narrow)), ("model.safetensors".into(), "model.safetensors".into())] {
        let mut cache = PrefixCache::new();
        run_keyed(&Device::flex(), &wide, &cfg, &wide_key, &mut cache);
        let (_, second, _) = run_keyed(&Device::flex(), &narrow, &cfg, &narrow_key, &mut cache);
        assert!(second.cache_used);
        assert_eq!(second.val_accuracy, alone.val_accuracy, "key {narrow_key}");
        assert!(
            (second.val_loss - alone.val_loss).abs() < 1e-5,
            "key {narrow_key}: {} vs {}",
            second.val_loss,
            alone.val_loss
        );
    }
}

/// Two checkpoints of one shape, under the same file names, whose weights differ: the cache
/// bound to the first must not serve its states to the second. Only a key naming the content
/// (`ModelFiles::content_id`, as the CLI and the worker name models) tells them apart; the
/// shape check cannot. The same for two datasets of one size whose texts differ.
#[test]
fn a_cache_keyed_by_content_tells_same_shape_models_and_datasets_apart() {
    use freezelab_core::cache::CacheKey;
    use freezelab_core::data::Dataset;
    use freezelab_core::train::RunContext;
    let config = synthetic::config(16, 3, 2);
    let cfg = TrainConfig { cache: true, ..small_cfg(FreezePlan::bottom(3, 2)) };
    let config_json = serde_json::to_vec(&config).unwrap();
    let tokenizer = synthetic::tokenizer_json();
    let weights = |seed| freezelab_core::weights::random_checkpoint(&config, seed);
    let texts = |seed| Dataset::from_single(synthetic::examples(96, seed), 0.25, 0, "data.csv").unwrap();
    // Runs the model of `seed` on the data of `data_seed`, the key naming both by content.
    let trained = |seed: u64, data_seed: u64, cfg: &TrainConfig, cache: &mut PrefixCache| {
        let _turn = turn();
        let device = Device::flex().autodiff();
        let weights = weights(seed);
        let files = ModelFiles { config: &config_json, weights: &weights, tokenizer: tokenizer.as_bytes() };
        let m = LoadedModel::load(files, Some(2), 0, &device).unwrap();
        let data = texts(data_seed);
        let dataset_id = freezelab_core::cache::content_id(
            &data.train.iter().chain(&data.validation).map(|(text, _)| text.as_bytes()).collect::<Vec<_>>(),
        );
        let key = CacheKey { model: files.content_id(), dataset: dataset_id, freeze_line: 0, max_len: cfg.max_len };
        let mut host = Recorder::default();
        let ctx = RunContext {
            config: &m.config,
            tokenizer: &m.tokenizer,
            data: &data,
            cfg,
            cache_key: key,
            cache,
            host: &mut host,
            replica: None,
        };
        pollster::block_on(train::train(m.classifier, ctx)).unwrap().1
    };
    let uncached = TrainConfig { cache: false, ..cfg.clone() };
    for (first, second) in [((7, 1), (8, 1)), ((7, 1), (7, 2))] {
        let alone = trained(second.0, second.1, &uncached, &mut PrefixCache::new());
        let mut cache = PrefixCache::new();
        trained(first.0, first.1, &cfg, &mut cache);
        let after = trained(second.0, second.1, &cfg, &mut cache);
        assert!(after.cache_used);
        assert!(
            (after.val_loss - alone.val_loss).abs() < 1e-5,
            "{second:?} after {first:?}: {} vs {} alone",
            after.val_loss,
            alone.val_loss
        );
    }
}

/// At the freeze line 0 the cache would hold embedding outputs only: it is not used there, and
/// the planned memory counts the cache only where it is.
#[test]
fn the_cache_is_used_only_above_a_frozen_layer() {
    let config = synthetic::config(16, 3, 2);
    let emb = TrainConfig { cache: true, ..small_cfg(FreezePlan::bottom(3, 0)) };
    let mut cache = PrefixCache::new();
    let (_, s, h) = run(&config, &emb, &mut cache);
    assert!(!s.cache_used && cache.is_empty() && s.memory.computed.cache == 0);
    let planned = h.events.iter().find_map(|e| match e {
        train::TrainEvent::Started { computed_memory, .. } => Some(computed_memory.cache),
        _ => None,
    });
    assert_eq!(planned, Some(0));
    let line1 = TrainConfig { cache: true, ..small_cfg(FreezePlan::bottom(3, 1)) };
    let (_, s, h) = run(&config, &line1, &mut cache);
    let planned = h.events.iter().find_map(|e| match e {
        train::TrainEvent::Started { computed_memory, .. } => Some(computed_memory.cache),
        _ => None,
    });
    // Planned before the run from the examples' token counts: what the cache then held.
    assert!(s.cache_used && planned == Some(cache.bytes()) && cache.bytes() > 0, "{planned:?} vs {}", cache.bytes());
}

/// Evaluations before the last use the interim subset; the last, and the summary, use every
/// validation example.
#[test]
fn interim_evaluations_use_the_subset_and_the_last_uses_all() {
    let config = synthetic::config(16, 2, 2);
    let cfg = TrainConfig { eval_every: Some(3), interim_eval_size: Some(8), ..small_cfg(FreezePlan::none(2)) };
    let (_, s, h) = run(&config, &cfg, &mut PrefixCache::new());
    let evals: Vec<(usize, usize, f64)> = h
        .events
        .iter()
        .filter_map(|e| match e {
            train::TrainEvent::Eval { step, examples, metrics, .. } => Some((*step, *examples, metrics.accuracy)),
            _ => None,
        })
        .collect();
    // 64 examples in batches of 8: 8 steps an epoch, 16 in all; evaluations at 3, 6, 8 (end of
    // epoch 1), 9, 12, 15 on 8 examples, and at 16 on all 24.
    let steps: Vec<usize> = evals.iter().map(|e| e.0).collect();
    assert_eq!(steps, [3, 6, 8, 9, 12, 15, 16]);
    assert!(evals[..6].iter().all(|e| e.1 == 8), "{evals:?}");
    assert_eq!(evals[6].1, 24);
    assert_eq!(s.val_accuracy, evals[6].2);
    assert_eq!(s.best_val_accuracy, evals[6].2, "only full evaluations count as the best");
}

/// A time budget (the equal-time race) ends the run when the steps have used it, however many
/// epochs are allowed, and the learning rate warms up and decays over the time. The test clock
/// ticks once per reading, so each step takes exactly one "second".
#[test]
fn a_time_budget_ends_the_run_and_schedules_the_rate_over_it() {
    let config = synthetic::config(16, 2, 2);
    let cfg = TrainConfig { epochs: 50, time_budget_seconds: Some(5.0), ..small_cfg(FreezePlan::head_only(2)) };
    let (_, s, h) = run(&config, &cfg, &mut PrefixCache::new());
    assert_eq!(s.steps, 5);
    assert_eq!(s.train_seconds, 5.0);
    let lrs: Vec<f64> = h
        .events
        .iter()
        .filter_map(|e| if let train::TrainEvent::Step { lr, .. } = e { Some(*lr) } else { None })
        .collect();
    // Fractions 0, 0.2, …, 0.8 of the budget, warm-up over its first tenth.
    let want: Vec<f64> =
        [0.0, 0.2, 0.4, 0.6, 0.8].iter().map(|f| cfg.lr * train::schedule::lr_factor_by_time(*f, 0.1)).collect();
    assert_eq!(lrs.len(), 5);
    assert!(lrs.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-15), "{lrs:?} vs {want:?}");
    assert_eq!(lrs[0], 0.0);
    assert!(lrs.windows(2).skip(1).all(|w| w[1] < w[0]));
    // The last evaluation used every validation example.
    let last = h.events.iter().rev().find_map(|e| {
        if let train::TrainEvent::Eval { examples, .. } = e {
            Some(*examples)
        } else {
            None
        }
    });
    assert_eq!(last, Some(s.validation_examples));
}

/// Drift: frozen blocks report exactly 0, trained ones more; a run whose only step is at lr 0
/// (the first step of a warm-up) moves nothing, the head included.
#[test]
fn drift_is_zero_for_frozen_blocks_and_at_lr_zero() {
    use freezelab_core::drift::weight_drift;
    let config = synthetic::config(16, 3, 2);
    let pretrained = freezelab_core::weights::random_checkpoint(&config, 7);
    let plan = FreezePlan::parse("emb,0,2", 3).unwrap();
    let (trained, _, _) = run(&config, &small_cfg(plan), &mut PrefixCache::new());
    let drift = pollster::block_on(weight_drift(&trained.classifier, &config, &pretrained, 7)).unwrap();
    let by_block: Vec<(&str, f64)> = drift.iter().map(|d| (d.block.as_str(), d.relative_change)).collect();
    assert_eq!(by_block.iter().map(|b| b.0).collect::<Vec<_>>(), ["emb", "layer-0", "layer-1", "layer-2", "head"]);
    for (block, change) in &by_block {
        match *block {
            "emb" | "layer-0" | "layer-2" => assert_eq!(*change, 0.0, "{block} is frozen"),
            _ => assert!(*change > 0.0, "{block} trained but did not move"),
        }
    }
    let parts: Vec<&str> = drift[2].parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(parts, ["attention", "feed-forward", "layer-norm"]);

    // Representation change on validation texts: below the trained layer the outputs are the
    // pretrained ones (CKA 1); from the trained layer up they changed.
    let config_json = serde_json::to_vec(&config).unwrap();
    let tokenizer = synthetic::tokenizer_json();
    let files = ModelFiles { config: &config_json, weights: &pretrained, tokenizer: tokenizer.as_bytes() };
    let texts: Vec<String> = synthetic::examples(20, 5).into_iter().map(|e| e.text).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let measured =
        pollster::block_on(freezelab_core::drift::measure(&trained.classifier, files, 7, &texts, 16)).unwrap();
    let cka: Vec<Option<f64>> = measured.iter().map(|d| d.cka).collect();
    assert!((cka[0].unwrap() - 1.0).abs() < 1e-9 && (cka[1].unwrap() - 1.0).abs() < 1e-9, "{cka:?}");
    assert!(cka[2].unwrap() < 1.0 - 1e-6 && cka[4].is_none(), "{cka:?}");
    assert_eq!(
        measured.iter().map(|d| d.relative_change).collect::<Vec<_>>(),
        by_block.iter().map(|b| b.1).collect::<Vec<_>>()
    );

    let at_zero = TrainConfig { max_steps: Some(1), warmup_fraction: 1.0, ..small_cfg(FreezePlan::none(3)) };
    let (trained, summary, _) = run(&config, &at_zero, &mut PrefixCache::new());
    assert_eq!(summary.steps, 1);
    let drift = pollster::block_on(weight_drift(&trained.classifier, &config, &pretrained, 7)).unwrap();
    assert!(drift.iter().all(|d| d.relative_change == 0.0), "{drift:?}");
}

/// Each parameter's values, and whether it is a bias term, per block: embeddings, layer 0..
fn encoder_params(m: &LoadedModel) -> Vec<Vec<(bool, Vec<f32>)>> {
    use freezelab_core::params::{walk, Kind, ParamAction};
    struct Collect(Vec<(bool, Vec<f32>)>);
    impl ParamAction for Collect {
        fn act<const D: usize>(&mut self, param: &burn::module::Param<burn::tensor::Tensor<D>>, kind: Kind) {
            self.0.push((kind.bias, param.val().into_data().convert::<f32>().try_into_vec::<f32>().unwrap()));
        }
    }
    let bert = &m.classifier.bert;
    let mut out = vec![walk(&bert.embeddings, Collect(Vec::new())).0];
    out.extend(bert.layers.iter().map(|l| walk(l, Collect(Vec::new())).0));
    out
}

/// BitFit: in every block the bias terms (linear biases, LayerNorm shifts) move and nothing else
/// does by a single bit; only they and the head get optimizer state.
#[test]
fn bitfit_moves_only_the_bias_terms() {
    let config = synthetic::config(16, 3, 2);
    let before = encoder_params(&model(&config, 7, &Device::flex()));
    let plan = FreezePlan::parse("bitfit", 3).unwrap();
    let (trained, summary, _) = run(&config, &small_cfg(plan), &mut PrefixCache::new());
    for (block, (b, a)) in before.iter().zip(&encoder_params(&trained)).enumerate() {
        let mut biases_moved = false;
        for ((bias, x), (_, y)) in b.iter().zip(a) {
            let same = x.iter().zip(y).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(*bias || same, "block {block}: a weight moved under BitFit");
            biases_moved |= *bias && !same;
        }
        assert!(biases_moved, "block {block}: no bias moved");
    }
    // Bias values: embeddings' LayerNorm shift 16; per layer q, k, v, attention output, output
    // (16 each), intermediate (4·16) and two LayerNorm shifts; the head 16·2 + 2.
    assert_eq!(summary.trainable_params, 16 + 3 * (5 * 16 + 64 + 2 * 16) + 34);
    assert_eq!(summary.freeze, "bitfit");
    // Bias tensors: 1 in the embeddings, 8 per layer; the head's 2 tensors.
    let head_only = TrainConfig { epochs: 1, max_steps: Some(2), ..small_cfg(FreezePlan::head_only(3)) };
    let per_tensor = run(&config, &head_only, &mut PrefixCache::new()).1.optimizer_state_tensors.unwrap() / 2;
    assert_eq!(summary.optimizer_state_tensors, Some(per_tensor * (1 + 3 * 8 + 2)));
}

/// BitFit and LoRA above a frozen prefix: the cache serves the prefix, and changes nothing.
#[test]
fn modes_above_a_frozen_prefix_use_the_cache_and_agree_without_it() {
    let config = synthetic::config(32, 3, 2);
    // Layers 1 and 2 train: their biases (BitFit) or rank-4 updates of query and value (LoRA).
    let cases = [("bitfit:emb,0", 2 * (5 * 32 + 128 + 2 * 32)), ("lora-4:emb,0", 2 * 2 * 4 * 64)];
    for (spec, encoder_trainable) in cases {
        let plan = FreezePlan::parse(spec, 3).unwrap();
        let (_, plain, h_plain) = run(&config, &small_cfg(plan.clone()), &mut PrefixCache::new());
        let cfg = TrainConfig { cache: true, ..small_cfg(plan) };
        let (_, cached, h_cached) = run(&config, &cfg, &mut PrefixCache::new());
        assert!(cached.cache_used && !plain.cache_used, "{spec}");
        for (a, b) in h_plain.losses().iter().zip(h_cached.losses()) {
            assert!((a - b).abs() <= 1e-5, "{spec}: loss {a} vs {b}");
        }
        assert_eq!(plain.trainable_params, encoder_trainable + 32 * 2 + 2, "{spec}");
    }
}

#[test]
fn llrd_at_decay_one_is_plain_fine_tuning() {
    let config = synthetic::config(16, 3, 2);
    let cfg = |spec| TrainConfig { epochs: 1, ..small_cfg(FreezePlan::parse(spec, 3).unwrap()) };
    let (_, _, plain) = run(&config, &cfg("none"), &mut PrefixCache::new());
    let (_, _, llrd) = run(&config, &cfg("llrd-1"), &mut PrefixCache::new());
    assert_eq!(plain.losses(), llrd.losses());
}

/// AdamW's first step moves a parameter by lr·|g|/(|g|+ε) ≈ lr, so the largest move in each
/// block is its learning rate: decay^(depth) times the top layer's.
#[test]
fn llrd_gives_each_block_its_decayed_rate() {
    let config = synthetic::config(16, 3, 2);
    let before = block_values(&model(&config, 7, &Device::flex()));
    let plan = FreezePlan::parse("llrd-0.5", 3).unwrap();
    let lr = 1e-2;
    let cfg = TrainConfig { max_steps: Some(1), warmup_fraction: 0.0, weight_decay: 0.0, lr, ..small_cfg(plan) };
    let (trained, _, _) = run(&config, &cfg, &mut PrefixCache::new());
    let after = block_values(&trained);
    for (block, scale) in [0.125, 0.25, 0.5, 1.0].into_iter().enumerate() {
        let moved = before[block].iter().zip(&after[block]).map(|(b, a)| (a - b).abs()).fold(0f32, f32::max);
        let ratio = moved as f64 / (lr * scale);
        assert!((ratio - 1.0).abs() < 0.01, "block {block}: moved {moved}, expected {}", lr * scale);
    }
}

/// Gradual unfreezing every 2 steps: the head alone for steps 0–1, layer 2 from step 2, layer 1
/// from step 4…; a block moves only once it is open, and the summary counts what trained last.
#[test]
fn gradual_unfreezing_opens_one_block_from_the_top_every_n_steps() {
    let config = synthetic::config(16, 3, 2);
    let before = block_values(&model(&config, 7, &Device::flex()));
    let plan = FreezePlan::parse("gradual-2", 3).unwrap();
    let moved = |steps: usize| {
        let cfg = TrainConfig { epochs: 1, max_steps: Some(steps), ..small_cfg(plan.clone()) };
        let (trained, summary, _) = run(&config, &cfg, &mut PrefixCache::new());
        let after = block_values(&trained);
        let moved: Vec<bool> = before.iter().zip(&after).map(|(b, a)| b != a).collect();
        (moved, summary.trainable_params)
    };
    // q, k, v, attention output; intermediate; output; two LayerNorms.
    let layer = 4 * (16 * 16 + 16) + (16 * 64 + 64) + (64 * 16 + 16) + 2 * 2 * 16;
    // Blocks: embeddings, layers 0–2, head.
    assert_eq!(moved(2), (vec![false, false, false, false, true], 34));
    assert_eq!(moved(3), (vec![false, false, false, true, true], layer + 34));
    assert_eq!(moved(7), (vec![false, true, true, true, true], 3 * layer + 34));
}

/// Every tensor of the model as its export names it (LoRA's updates merged in).
fn exported(classifier: &freezelab_core::bert::Classifier) -> std::collections::BTreeMap<String, Vec<f32>> {
    let labels = ["a".to_string(), "b".to_string()];
    let bytes = pollster::block_on(freezelab_core::weights::export_classifier(classifier, &labels)).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()))
        .collect()
}

/// LoRA: the updates train (and only they, and the head, get optimizer state); exported, they
/// are merged into the query and value weights and nothing else changed; the exported folder
/// loads as a plain BERT that predicts as the trained model does.
#[test]
fn lora_trains_low_rank_updates_merged_on_export() {
    let config = synthetic::config(16, 3, 2);
    let before = exported(&model(&config, 7, &Device::flex()).classifier);
    let plan = FreezePlan::parse("lora-2", 3).unwrap();
    let (trained, summary, _) = run(&config, &small_cfg(plan), &mut PrefixCache::new());
    let after = exported(&trained.classifier);
    for (name, values) in &before {
        let changed = values != &after[name];
        let adapted = name.ends_with("attention.self.query.weight") || name.ends_with("attention.self.value.weight");
        let head = name.starts_with("classifier.");
        assert_eq!(changed, adapted || head, "{name}: changed {changed}");
    }
    // Rank 2 on query and value of 3 layers: 2 × (16 + 16) each; the head 16 · 2 + 2.
    assert_eq!(summary.trainable_params, 3 * 2 * 2 * 32 + 34);
    let head_only = TrainConfig { epochs: 1, max_steps: Some(2), ..small_cfg(FreezePlan::head_only(3)) };
    let per_tensor = run(&config, &head_only, &mut PrefixCache::new()).1.optimizer_state_tensors.unwrap() / 2;
    assert_eq!(summary.optimizer_state_tensors, Some(per_tensor * (3 * 4 + 2)));

    let labels = ["a".to_string(), "b".to_string()];
    let weights = pollster::block_on(freezelab_core::weights::export_classifier(&trained.classifier, &labels)).unwrap();
    let config_json = serde_json::to_vec(&config).unwrap();
    let tokenizer = synthetic::tokenizer_json();
    let files = ModelFiles { config: &config_json, weights: &weights, tokenizer: tokenizer.as_bytes() };
    let plain = LoadedModel::load(files, None, 0, &Device::flex()).unwrap();
    let texts = ["the movie was great", "a bad and sad day"];
    let ours = pollster::block_on(trained.predict(&texts, 16)).unwrap();
    let theirs = pollster::block_on(plain.predict(&texts, 16)).unwrap();
    for (a, b) in ours.iter().flatten().zip(theirs.iter().flatten()) {
        assert!((a - b).abs() < 1e-5, "{ours:?} vs {theirs:?}");
    }
}

/// LoRA's A factors come from the run's seed, not from Burn's backend generator: reseeding
/// the backend between two runs of one seed changes nothing (as replicas in other workers, or
/// another device, draw the same adapters).
#[test]
fn lora_factors_follow_the_run_seed_not_the_backend() {
    let config = synthetic::config(16, 2, 2);
    let cfg = TrainConfig { max_steps: Some(3), ..small_cfg(FreezePlan::parse("lora-2", 2).unwrap()) };
    let losses = |backend_seed: u64| {
        Device::flex().seed(backend_seed);
        run(&config, &cfg, &mut PrefixCache::new()).2.losses()
    };
    let first = losses(1);
    assert_eq!(first.len(), 3);
    assert_eq!(first, losses(2));
}

/// A run whose loss leaves the numbers (here a head of infinite weights, as a
/// checkpoint holding them would give) ends with docs/bad-input.md's message, naming the
/// step and what to change, not with NaN accuracies.
#[test]
fn a_non_finite_loss_ends_the_run_with_its_message() {
    use burn::module::Param;
    use freezelab_core::train::RunContext;
    let config = synthetic::config(16, 2, 2);
    let cfg = small_cfg(FreezePlan::none(2));
    let _turn = turn();
    let device = Device::flex().autodiff();
    let mut m = model(&config, 7, &device);
    let weight = m.classifier.head.weight.val();
    let shape = weight.dims();
    let values: Vec<f32> = weight.into_data().try_to_vec::<f32>().unwrap().iter().map(|w| w * f32::INFINITY).collect();
    let huge = burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(values, shape), &device);
    m.classifier.head.weight = Param::from_tensor(huge);
    let data = crate::common::training::dataset(96);
    let (mut cache, mut host) = (PrefixCache::new(), Recorder::default());
    let ctx: RunContext =
        crate::common::training::context((&m.config, &m.tokenizer, "m"), (&data, &cfg), &mut cache, &mut host, None);
    let Err(e) = pollster::block_on(train::train(m.classifier, ctx)) else {
        panic!("the run ended with a finite loss")
    };
    let message = e.to_string();
    assert!(
        message.starts_with("loss became ") && message.ends_with("at step 0: lower the learning rate"),
        "{message}"
    );
}

/// A run on data-parallel replicas follows the run alone: each replica takes its share of every
/// batch, the shares' gradients are summed, and the loss curve is the single run's to 1e-4, with
/// dropout (each share drops what the run alone drops there) and without. Two replicas; three,
/// where the last batch of each epoch leaves two of them nothing (they draw no masks that step,
/// and still drop the run's afterwards); and two above a frozen, cached prefix. The replicas end
/// with the same model: the same validation loss to the bit, and the confusion counts of the run
/// alone (each replica evaluates a share of the validation set). Each replica reports its time in
/// the exchange; the run alone none.
#[test]
fn data_parallel_replicas_follow_the_run_alone() {
    let with_dropout = synthetic::config(32, 2, 2);
    assert!(with_dropout.hidden_dropout_prob > 0.0 && with_dropout.attention_probs_dropout_prob > 0.0);
    let mut without = with_dropout.clone();
    without.hidden_dropout_prob = 0.0;
    without.attention_probs_dropout_prob = 0.0;
    // The last element: whether the word embedding trains (its looked-up rows travel); `None`
    // for the modes whose exchange changes size as they go or holds LoRA's factors.
    let mode = |spec: &str| TrainConfig { train_size: 60, ..small_cfg(FreezePlan::parse(spec, 2).unwrap()) };
    let cases = [
        (&without, 2, TrainConfig { train_size: 60, ..small_cfg(FreezePlan::none(2)) }, Some(true)),
        (&with_dropout, 2, TrainConfig { train_size: 60, ..small_cfg(FreezePlan::none(2)) }, Some(true)),
        (&with_dropout, 3, TrainConfig { train_size: 65, ..small_cfg(FreezePlan::none(2)) }, Some(true)),
        (
            &with_dropout,
            2,
            TrainConfig { train_size: 60, cache: true, ..small_cfg(FreezePlan::bottom(2, 1)) },
            Some(false),
        ),
        (&with_dropout, 2, mode("bitfit"), Some(false)),
        (&with_dropout, 2, mode("lora-2"), None),
        (&with_dropout, 3, mode("gradual-3"), None),
    ];
    for (config, count, cfg, words_train) in cases {
        let (_, alone, host) = run(config, &cfg, &mut PrefixCache::new());
        let (replicas, largest) = crate::common::replicas::train_replicas(config, &cfg, count);
        let what = format!(
            "{count} replicas, {} ({:?}), {} examples, dropout {}",
            cfg.freeze.label(),
            cfg.freeze.mode,
            cfg.train_size,
            config.hidden_dropout_prob
        );
        // Trainable gradients, the masks drawn and the loss; never the rows no token looks up
        // ([UNK] at least: every synthetic word is in the vocabulary).
        let dense = alone.trainable_params + 2;
        let table = config.vocab_size * config.hidden_size;
        match words_train {
            Some(true) => assert!(
                largest <= dense - config.hidden_size && largest > dense - table,
                "{what}: {largest} of {dense}"
            ),
            Some(false) => assert_eq!(largest, dense, "{what}"),
            None => {}
        }
        assert!(alone.steps >= 10, "{what}: {} steps", alone.steps);
        assert_eq!(alone.exchange_seconds, None, "{what}: a run alone exchanges nothing");
        for (summary, recorder) in &replicas {
            assert!(summary.exchange_seconds.is_some_and(|s| s > 0.0), "{what}: {:?}", summary.exchange_seconds);
            let (a, b) = (host.losses(), recorder.losses());
            assert_eq!(a.len(), b.len(), "{what}");
            for (step, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!((a - b).abs() < 1e-4, "{what}: step {step}: alone {a}, replica {b}");
            }
            assert_eq!(summary.val_loss, replicas[0].0.val_loss, "{what}: the replicas hold one model");
            // Each replica evaluated a share; the counts they added are the run alone's.
            assert_eq!(summary.confusion, alone.confusion, "{what}");
            assert_eq!(summary.val_accuracy, alone.val_accuracy, "{what}");
            assert!(
                (summary.val_loss - alone.val_loss).abs() < 1e-4,
                "{what}: {} vs {}",
                summary.val_loss,
                alone.val_loss
            );
        }
    }
}

/// Without clipping the update multiplies the gradients by one: the same losses as clipping at a
/// norm no gradient reaches (a coefficient of exactly 1).
#[test]
fn no_clipping_trains_as_a_clip_that_never_bites() {
    let config = synthetic::config(16, 2, 2);
    let cfg = |clip| TrainConfig { grad_clip_norm: clip, max_steps: Some(4), ..small_cfg(FreezePlan::none(2)) };
    let (_, _, off) = run(&config, &cfg(None), &mut PrefixCache::new());
    let (_, _, huge) = run(&config, &cfg(Some(1e30)), &mut PrefixCache::new());
    assert_eq!(off.losses().len(), 4);
    assert_eq!(off.losses(), huge.losses());
}
