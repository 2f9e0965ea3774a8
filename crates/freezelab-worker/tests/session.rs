//! The worker's session in a real browser worker (wasm-bindgen-test, headless Chromium), driven
//! message by message as the page drives it, the posted answers kept for the checks: runs queued
//! before a Stop are dropped, a failed request leaves the model and the data as they were, a
//! non-finite loss fails its run with its message, the prefix cache is keyed by content, not by
//! file name, and a data-parallel run follows the run on one worker in every mode.
#![cfg(target_arch = "wasm32")]

use std::cell::Cell;
use std::rc::Rc;

use freezelab_core::freeze::FreezePlan;
use freezelab_core::synthetic;
use freezelab_core::train::TrainConfig;
use freezelab_protocol::messages::{
    BackendChoice, Column, DataSource, FromWorker, ModelSource, Request, ToWorker, UserFile,
};
use freezelab_protocol::run::{RunSummary, TrainEvent};
use freezelab_worker::outbox::{divert_posts, take_posted};
use freezelab_worker::session::Session;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

/// A user's file as the page hands it over: a `blob:` URL to its bytes.
fn file(name: &str, bytes: &[u8]) -> UserFile {
    let array = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&array).unwrap();
    UserFile { name: name.into(), url: web_sys::Url::create_object_url_with_blob(&blob).unwrap() }
}

/// The synthetic model of width `hidden`, always under the same three file names.
fn model(hidden: usize) -> ToWorker {
    model_of(hidden, 7)
}

/// [`model`] with the weights `seed` draws.
fn model_of(hidden: usize, seed: u64) -> ToWorker {
    let (config, weights, tokenizer) = synthetic::model_files(hidden, 2, 2, seed);
    ToWorker::LoadModel {
        source: ModelSource::Files {
            config: file("config.json", &config),
            weights: file("model.safetensors", &weights),
            tokenizer: file("tokenizer.json", tokenizer.as_bytes()),
        },
        share: false,
    }
}

/// One CSV with the synthetic label and a second label column that ignores the text.
fn data(label_column: &str) -> ToWorker {
    data_of(label_column, 3)
}

/// [`data`] with the texts `seed` draws (the same size and columns).
fn data_of(label_column: &str, seed: u64) -> ToWorker {
    let rows: Vec<String> = synthetic::examples(96, seed)
        .into_iter()
        .enumerate()
        .map(|(i, e)| format!("{},{},{}", e.text, e.label, if i % 3 == 0 { "x" } else { "y" }))
        .collect();
    let csv = format!("text,label,other\n{}\n", rows.join("\n"));
    ToWorker::LoadDataset {
        source: DataSource::Upload {
            file: file("data.csv", csv.as_bytes()),
            text_column: "text".into(),
            label_column: label_column.into(),
            validation_fraction: 0.25,
            seed: 0,
        },
        share: false,
    }
}

fn train(run_id: u32, cache: bool) -> ToWorker {
    let config = TrainConfig {
        freeze: FreezePlan::bottom(2, 1),
        train_size: 32,
        eval_size: Some(16),
        epochs: 2,
        batch_size: 8,
        max_len: 16,
        lr: 1e-2,
        cache,
        ..TrainConfig::default()
    };
    ToWorker::Train { run_id, origin: Column::B.into(), config, replica: None }
}

/// A session on the CPU backend with the hidden-16 model and the CSV loaded.
async fn session() -> (Session, Rc<Cell<u32>>) {
    divert_posts();
    let generation = Rc::new(Cell::new(0));
    let mut session = Session::new(generation.clone());
    for message in [ToWorker::Start { choice: BackendChoice::Cpu }, model(16), data("label")] {
        session.handle(message, 0).await;
    }
    let errors: Vec<FromWorker> = take_posted().into_iter().filter(|m| matches!(m, FromWorker::Error { .. })).collect();
    assert!(errors.is_empty(), "{errors:?}");
    (session, generation)
}

/// The summaries of the runs that finished among `posted`, by run id.
fn finished(posted: &[FromWorker]) -> Vec<(u32, RunSummary)> {
    posted
        .iter()
        .filter_map(|m| match m {
            FromWorker::Run { run_id, event: TrainEvent::Finished { summary }, .. } => {
                Some((*run_id, (**summary).clone()))
            }
            _ => None,
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_run_queued_before_a_stop_is_dropped() {
    let (mut session, generation) = session().await;
    // Stop arrives (the generation moves on) while run 1 waits in the queue.
    generation.set(1);
    session.handle(train(1, false), 0).await;
    let posted = take_posted();
    assert!(
        !posted.iter().any(|m| matches!(m, FromWorker::Run { run_id: 1, .. } | FromWorker::RunFailed { .. })),
        "{posted:?}"
    );
    // The page's pool learns the worker is free again.
    assert!(matches!(posted.last(), Some(FromWorker::Handled { request: Request::Train, .. })), "{posted:?}");
    // A run requested after the Stop trains, and the worker says it is done only after it.
    session.handle(train(2, false), 1).await;
    let posted = take_posted();
    assert!(matches!(posted.last(), Some(FromWorker::Handled { request: Request::Train, .. })), "{posted:?}");
    let runs = finished(&posted);
    assert_eq!(runs.len(), 1);
    assert!(runs[0].0 == 2 && !runs[0].1.cancelled);
}

#[wasm_bindgen_test]
async fn a_failed_request_leaves_the_model_and_the_data_as_they_were() {
    let (mut session, _) = session().await;
    session.handle(train(1, false), 0).await;
    let before = finished(&take_posted()).remove(0).1;
    // A truncated checkpoint and a one-class file are refused...
    let (config, weights, tokenizer) = synthetic::model_files(32, 2, 2, 7);
    let truncated = ToWorker::LoadModel {
        source: ModelSource::Files {
            config: file("config.json", &config),
            weights: file("model.safetensors", &weights[..weights.len() / 2]),
            tokenizer: file("tokenizer.json", tokenizer.as_bytes()),
        },
        share: false,
    };
    session.handle(truncated, 0).await;
    session.handle(data("nonexistent"), 0).await;
    let errors: Vec<Request> = take_posted()
        .into_iter()
        .filter_map(|m| if let FromWorker::Error { context, .. } = m { Some(context) } else { None })
        .collect();
    assert_eq!(errors, [Request::Model, Request::Dataset]);
    // ...and the same run trains as before on what was loaded.
    session.handle(train(2, false), 0).await;
    let after = finished(&take_posted()).remove(0).1;
    assert_eq!(after.total_params, before.total_params, "the hidden-16 model is still loaded");
    assert_eq!((after.labels.clone(), after.val_loss), (before.labels.clone(), before.val_loss));
}

/// A checkpoint of infinite weights loads (its shapes are right), and its run fails with the
/// message docs/bad-input.md gives, naming the step; the session trains a good model after it.
#[wasm_bindgen_test]
async fn a_non_finite_loss_fails_the_run_with_its_message() {
    let (mut session, _) = session().await;
    let (config, mut weights, tokenizer) = synthetic::model_files(16, 2, 2, 7);
    // After the 8-byte length and the JSON header: every value infinite (NaN where f16).
    let data = 8 + u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    weights[data..].chunks_exact_mut(4).for_each(|w| w.copy_from_slice(&f32::INFINITY.to_le_bytes()));
    let infinite = ToWorker::LoadModel {
        source: ModelSource::Files {
            config: file("config.json", &config),
            weights: file("infinite.safetensors", &weights),
            tokenizer: file("tokenizer.json", tokenizer.as_bytes()),
        },
        share: false,
    };
    session.handle(infinite, 0).await;
    session.handle(train(1, false), 0).await;
    let posted = take_posted();
    let failed: Vec<&String> = posted
        .iter()
        .filter_map(|m| match m {
            FromWorker::RunFailed { run_id: 1, message, .. } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{posted:?}");
    assert!(
        failed[0].starts_with("loss became ") && failed[0].ends_with(" at step 0: lower the learning rate"),
        "{}",
        failed[0]
    );
    session.handle(model(16), 0).await;
    session.handle(train(2, false), 0).await;
    let after = finished(&take_posted());
    assert!(after.len() == 1 && after[0].1.val_loss.is_finite(), "{after:?}");
}

/// Models under the same file names (one of the same shape with other weights, one wider), a
/// file of the same size and columns with other texts, and one file read with two label columns:
/// each cached run gives what the same run gives without the cache.
#[wasm_bindgen_test]
async fn the_prefix_cache_follows_content_not_file_names() {
    let (mut session, _) = session().await;
    let steps = [None, Some(model_of(16, 8)), Some(data_of("label", 4)), Some(model(32)), Some(data("other"))];
    for (i, step) in steps.into_iter().enumerate() {
        if let Some(message) = step {
            session.handle(message, 0).await;
        }
        let id = 2 * i as u32;
        session.handle(train(id + 1, true), 0).await;
        session.handle(train(id + 2, false), 0).await;
        let mut runs = finished(&take_posted());
        assert_eq!(runs.len(), 2, "step {i}");
        let (fresh, cached) = (runs.remove(1).1, runs.remove(0).1);
        assert!(cached.cache_used && !fresh.cache_used);
        assert!((cached.val_loss - fresh.val_loss).abs() < 1e-5, "{} vs {}", cached.val_loss, fresh.val_loss);
        assert_eq!(cached.val_accuracy, fresh.val_accuracy);
    }
}

/// The pool's second worker loads what the first downloaded, from the `blob:` URLs the first
/// shares (the downloaded URLs are gone by then), and trains the same run to the same result.
#[wasm_bindgen_test]
async fn a_second_worker_trains_on_the_bytes_the_first_shares() {
    let (mut first, _) = session().await;
    // Synthetic texts are plain words: no JSON escaping needed.
    let jsonl = |examples: &[freezelab_core::data::Example]| {
        let lines: Vec<String> =
            examples.iter().map(|e| format!(r#"{{"text": "{}", "label": "{}"}}"#, e.text, e.label)).collect();
        lines.join("\n")
    };
    let examples = synthetic::examples(96, 3);
    let (train_file, validation_file) = (
        file("train.jsonl", jsonl(&examples[..72]).as_bytes()),
        file("validation.jsonl", jsonl(&examples[72..]).as_bytes()),
    );
    let prepared = DataSource::Prepared {
        id: "synthetic".into(),
        train: train_file.url.clone(),
        validation: validation_file.url.clone(),
        stage: None,
    };
    first.handle(ToWorker::LoadDataset { source: prepared, share: true }, 0).await;
    let shared = take_posted().into_iter().find_map(|m| match m {
        FromWorker::DatasetLoaded { shared, .. } => shared,
        _ => None,
    });
    let Some(DataSource::Prepared { train: train_url, validation: validation_url, .. }) = shared.clone() else {
        panic!("no shared data: {shared:?}")
    };
    assert!(train_url.starts_with("blob:") && train_url != train_file.url && validation_url != validation_file.url);
    for url in [&train_file.url, &validation_file.url] {
        web_sys::Url::revoke_object_url(url).unwrap();
    }
    first.handle(model_shared(), 0).await;
    let model = take_posted().into_iter().find_map(|m| match m {
        FromWorker::ModelLoaded { shared, .. } => shared,
        _ => None,
    });
    let mut second = Session::new(Rc::new(Cell::new(0)));
    let load_model = ToWorker::LoadModel { source: model.expect("a shared model"), share: false };
    let load_data = ToWorker::LoadDataset { source: shared.unwrap(), share: false };
    for message in [ToWorker::Start { choice: BackendChoice::Cpu }, load_model, load_data] {
        second.handle(message, 0).await;
    }
    let errors: Vec<FromWorker> = take_posted().into_iter().filter(|m| matches!(m, FromWorker::Error { .. })).collect();
    assert!(errors.is_empty(), "{errors:?}");
    first.handle(train(1, false), 0).await;
    second.handle(train(2, false), 0).await;
    let runs = finished(&take_posted());
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].1.val_loss, runs[0].1.val_accuracy), (runs[1].1.val_loss, runs[1].1.val_accuracy));
}

/// [`model`] of width 16, asked to be shared.
fn model_shared() -> ToWorker {
    match model(16) {
        ToWorker::LoadModel { source, .. } => ToWorker::LoadModel { source, share: true },
        _ => unreachable!(),
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// A `MessageChannel`, as the page's pool makes one per replica link.
    #[wasm_bindgen(js_name = MessageChannel)]
    type Channel;
    #[wasm_bindgen(constructor, js_class = "MessageChannel")]
    fn new() -> Channel;
    #[wasm_bindgen(method, getter)]
    fn port1(this: &Channel) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn port2(this: &Channel) -> JsValue;
}

/// Links replica `index` of `run_id` to a port, as the page does with its Train request.
fn link(run_id: u32, index: usize, port: JsValue) {
    freezelab_worker::replica::link(run_id, index, vec![port.unchecked_into()]);
}

/// A data-parallel run on two workers (two sessions here, linked by a channel as the page's
/// pool links them; the first adds the gradients and sends the sum back) follows the same run
/// on one worker: the loss after each of its 12 steps within 1e-4, and the same validation loss.
/// The model has dropout: each worker's share of a batch drops what the run on one worker drops
/// there. Each replica's time in the exchange is in its summary, and only there. The evaluations,
/// split between the workers, count what the one worker counts. Every weight free, then the
/// modes whose exchange differs: BitFit (biases alone), LoRA (the factors, A from the run's
/// seed), gradual unfreezing (more values as blocks open).
#[wasm_bindgen_test]
async fn a_run_on_two_workers_follows_the_run_on_one() {
    use freezelab_protocol::messages::Share;
    divert_posts();
    let config = synthetic::config(16, 2, 2);
    assert!(config.hidden_dropout_prob > 0.0 && config.attention_probs_dropout_prob > 0.0);
    let (config, weights, tokenizer) = synthetic::files_of(&config, 7);
    let load = || ToWorker::LoadModel {
        source: ModelSource::Files {
            config: file("config.json", &config),
            weights: file("model.safetensors", &weights),
            tokenizer: file("tokenizer.json", tokenizer.as_bytes()),
        },
        share: false,
    };
    let mut sessions: Vec<Session> = Vec::new();
    for _ in 0..3 {
        let mut session = Session::new(Rc::new(Cell::new(0)));
        for message in [ToWorker::Start { choice: BackendChoice::Cpu }, load(), data("label")] {
            session.handle(message, 0).await;
        }
        sessions.push(session);
    }
    let errors: Vec<FromWorker> = take_posted().into_iter().filter(|m| matches!(m, FromWorker::Error { .. })).collect();
    assert!(errors.is_empty(), "{errors:?}");
    for (case, spec) in ["", "bitfit", "lora-2", "gradual-3"].into_iter().enumerate() {
        let freeze = FreezePlan::parse(spec, 2).unwrap();
        let (alone_id, pair_id) = (10 * case as u32 + 1, 10 * case as u32 + 2);
        let train = |run_id: u32, replica: Option<Share>| match train(run_id, false) {
            ToWorker::Train { config, .. } => ToWorker::Train {
                run_id,
                origin: Column::A.into(),
                config: TrainConfig { freeze: freeze.clone(), epochs: 3, ..config },
                replica,
            },
            _ => unreachable!(),
        };
        let (alone, pair) = sessions.split_at_mut(1);
        alone[0].handle(train(alone_id, None), 0).await;
        let posted = take_posted();
        let (one, one_summary) = (run_losses(&posted, alone_id), finished(&posted).remove(0).1);
        let channel = Channel::new();
        link(pair_id, 0, channel.port1());
        link(pair_id, 1, channel.port2());
        let [a, b] = pair else { unreachable!() };
        futures_util::future::join(
            a.handle(train(pair_id, Some(Share { index: 0, count: 2 })), 0),
            b.handle(train(pair_id, Some(Share { index: 1, count: 2 })), 0),
        )
        .await;
        let kept = take_posted();
        let two = run_losses(&kept, pair_id);
        let what = format!("\"{spec}\" ({})", freeze.label());
        assert!(one.len() >= 10 && two.len() == 2 * one.len(), "{what}: {} and {} steps", one.len(), two.len());
        // Each replica reports every step: the two curves interleave.
        for (step, (a, b)) in one.iter().zip(two.iter().step_by(2)).enumerate() {
            assert!((a - b).abs() < 1e-4, "{what}: step {step}: one worker {a}, two workers {b}");
        }
        assert_eq!(one_summary.exchange_seconds, None, "{what}");
        let summaries = finished(&kept);
        assert_eq!(summaries.len(), 2, "{what}");
        for (_, summary) in &summaries {
            assert!(
                (summary.val_loss - one_summary.val_loss).abs() < 1e-4,
                "{what}: {} vs {}",
                summary.val_loss,
                one_summary.val_loss
            );
            // Each worker evaluated half the validation set; together they counted what one did.
            assert_eq!(summary.confusion, one_summary.confusion, "{what}");
            let exchange = summary.exchange_seconds.expect("a replica's time in the exchange");
            assert!(
                (0.0..=summary.train_seconds).contains(&exchange),
                "{what}: {exchange} s of {} s",
                summary.train_seconds
            );
        }
    }
}

/// The training loss after each step of run `run` among `posted`.
fn run_losses(posted: &[FromWorker], run: u32) -> Vec<f64> {
    posted
        .iter()
        .filter_map(|m| match m {
            FromWorker::Run { run_id, event: TrainEvent::Step { loss, .. } } if *run_id == run => Some(*loss),
            _ => None,
        })
        .collect()
}

/// A data-parallel run stopped mid-way: each replica is linked to a port the test holds (no
/// sum ever comes back); at the second replica's first gradients the Stop moves the generation
/// on and the page ends the run; both replicas finish as stopped, with the model they have (no
/// panic, no replica left waiting).
#[wasm_bindgen_test]
async fn a_stopped_data_parallel_run_ends_on_every_replica() {
    use freezelab_protocol::messages::Share;
    let (mut a, generation) = session().await;
    let mut b = Session::new(generation.clone());
    for message in [ToWorker::Start { choice: BackendChoice::Cpu }, model(16), data("label")] {
        b.handle(message, 0).await;
    }
    take_posted();
    let train = |index: usize| match train(5, false) {
        ToWorker::Train { config, .. } => {
            ToWorker::Train { run_id: 5, origin: Column::A.into(), config, replica: Some(Share { index, count: 2 }) }
        }
        _ => unreachable!(),
    };
    let (first, second) = (Channel::new(), Channel::new());
    link(5, 0, first.port1());
    link(5, 1, second.port1());
    // The test's end of the second replica's link: it hears the gradients.
    let heard = Rc::new(Cell::new(false));
    let on_message = {
        let heard = heard.clone();
        wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |_| heard.set(true))
    };
    js_sys::Reflect::set(&second.port2(), &"onmessage".into(), on_message.as_ref()).unwrap();
    let page = async {
        while !heard.get() {
            tick().await;
        }
        generation.set(1);
        freezelab_worker::replica::end(5);
    };
    futures_util::future::join3(a.handle(train(0), 0), b.handle(train(1), 0), page).await;
    drop(on_message);
    let kept = take_posted();
    let runs = finished(&kept);
    assert_eq!(runs.len(), 2, "{kept:?}");
    assert!(runs.iter().all(|(_, s)| s.cancelled && s.steps == 0), "{runs:?}");
}

/// A fresh macrotask, after queued work has run.
async fn tick() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let scope: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        scope.set_timeout_with_callback(&resolve).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}

/// Three replicas linked as the page links them (the first to each other one) sum their values
/// over steps whose lengths change, as a step's count of word-embedding rows does: longer than
/// the buffers sent before, then shorter. Every replica gets exactly the sum, added in replica
/// order, of exactly that step's length.
#[wasm_bindgen_test]
async fn replicas_sum_steps_of_changing_length_through_their_buffers() {
    use freezelab_core::train::Reducer;
    use freezelab_worker::replica::PortReducer;
    let (first_second, first_third) = (Channel::new(), Channel::new());
    freezelab_worker::replica::link(
        8,
        0,
        vec![first_second.port1().unchecked_into(), first_third.port1().unchecked_into()],
    );
    link(8, 1, first_second.port2());
    link(8, 2, first_third.port2());
    let mut replicas: Vec<PortReducer> = (0..3).map(|index| PortReducer::new(8, index)).collect();
    let value = |replica: usize, i: usize| (replica * 7 + i % 13) as f32 * 0.1;
    for (step, len) in [1000, 1100, 2000, 500, 2000].into_iter().enumerate() {
        let [a, b, c] = &mut replicas[..] else { unreachable!() };
        let own = |replica: usize| (0..len).map(|i| value(replica, i)).collect::<Vec<f32>>();
        let (sa, sb, sc) =
            futures_util::future::join3(a.sum(step, own(0)), b.sum(step, own(1)), c.sum(step, own(2))).await;
        let expected: Vec<f32> = (0..len).map(|i| value(0, i) + value(1, i) + value(2, i)).collect();
        for (replica, sum) in [sa, sb, sc].into_iter().enumerate() {
            assert_eq!(sum.unwrap(), expected, "step {step}, replica {replica}");
        }
    }
}
