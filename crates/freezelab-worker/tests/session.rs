//! The worker's session in a real browser worker (wasm-bindgen-test, headless Chromium), driven
//! message by message as the page drives it, the posted answers kept for the checks: runs queued
//! before a Stop are dropped, a failed request leaves the model and the data as they were, and
//! the prefix cache is keyed by content, not by file name.
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
    let (config, weights, tokenizer) = synthetic::model_files(hidden, 2, 2, 7);
    ToWorker::LoadModel {
        source: ModelSource::Files {
            config: file("config.json", &config),
            weights: file("model.safetensors", &weights),
            tokenizer: file("tokenizer.json", tokenizer.as_bytes()),
        },
    }
}

/// One CSV with the synthetic label and a second label column that ignores the text.
fn data(label_column: &str) -> ToWorker {
    let rows: Vec<String> = synthetic::examples(96, 3)
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
    ToWorker::Train { run_id, origin: Column::B.into(), config }
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
    // A run requested after the Stop trains.
    session.handle(train(2, false), 1).await;
    let runs = finished(&take_posted());
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

/// Two models under the same file names, and one file read with two label columns: each
/// cached run gives what the same run gives without the cache.
#[wasm_bindgen_test]
async fn the_prefix_cache_follows_content_not_file_names() {
    let (mut session, _) = session().await;
    for (i, step) in [None, Some(model(32)), Some(data("other"))].into_iter().enumerate() {
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
