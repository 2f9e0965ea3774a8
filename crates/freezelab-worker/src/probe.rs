//! A probe request: every block's pooled features of the examples the page's settings pick,
//! batch by batch (progress posted, a cancel heard between batches), then a linear probe per
//! block and the map of the validation examples as the pretrained model sees them.

use std::cell::Cell;

use burn::tensor::Device;
use freezelab_core::loaded::LoadedModel;
use freezelab_core::map;
use freezelab_core::probe::{self, Features};
use freezelab_core::train::{self, TrainConfig};
use freezelab_protocol::messages::FromWorker;

use crate::assets::Assets;
use crate::host::next_task;
use crate::outbox::post;

/// The answer to probe `probe_id`, or `None` once it was cancelled (`cancelled` holds the
/// highest probe id cancelled so far).
pub async fn run(
    probe_id: u32,
    config: &TrainConfig,
    assets: &Assets,
    device: &Device,
    cancelled: &Cell<u32>,
) -> Result<Option<FromWorker>, String> {
    let (Some(model), Some(data)) = (&assets.model, &assets.data) else {
        return Err("load a model and a dataset first".into());
    };
    let classes = data.dataset.labels.names.len();
    let loaded = LoadedModel::load(model.files(), Some(classes), config.seed, device).map_err(|e| e.to_string())?;
    let (train, validation) = train::examples(&data.dataset, config);
    if train.is_empty() || validation.is_empty() {
        return Err("no training or validation examples to probe".into());
    }
    let total = train.len() + validation.len();
    let mut done = 0;
    let mut features = [probe::blocks(&loaded), probe::blocks(&loaded)];
    for (set, out) in [&train, &validation].into_iter().zip(&mut features) {
        for chunk in set.chunks(config.batch_size.max(1)) {
            if cancelled.get() >= probe_id {
                return Ok(None);
            }
            let texts: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
            probe::pool_batch(&loaded, &texts, config.max_len, out).await.map_err(|e| e.to_string())?;
            done += chunk.len();
            post(&FromWorker::Probing { probe_id, done, total });
            next_task().await;
        }
    }
    let labels = |set: &[(String, usize)]| set.iter().map(|(_, l)| *l).collect::<Vec<_>>();
    let (train_labels, validation_labels) = (labels(&train), labels(&validation));
    let [train_features, validation_features] = features;
    let mut rows = Vec::new();
    for (t, v) in train_features.iter().zip(&validation_features) {
        if cancelled.get() >= probe_id {
            return Ok(None);
        }
        rows.push(probe::probe_block(t, &train_labels, v, &validation_labels, classes));
        next_task().await;
    }
    let report = probe::with_rows(rows, &train_labels, &validation_labels, classes);
    let Features { rows: top, dim, .. } = validation_features.last().ok_or("the model has no blocks")?;
    let map = map::map(top, *dim, &validation, None);
    Ok(Some(FromWorker::Probed { probe_id, report, map }))
}
