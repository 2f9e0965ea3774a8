//! The worker between messages: the device, the assets (model, data, prefix cache), the shelf of
//! trained models; each request goes to the part that owns what it changes, and its answer is
//! posted here. A failed request leaves everything held before untouched.

use std::cell::Cell;
use std::rc::Rc;

use burn::tensor::Device;
use freezelab_core::cache::CacheKey;
use freezelab_core::drift;
use freezelab_core::loaded::LoadedModel;
use freezelab_core::map;
use freezelab_core::train::{self, Host, Replica, RunContext, TrainConfig, TrainEvent};
use freezelab_protocol::messages::{
    BackendChoice, BackendInfo, BackendKind, FromWorker, Origin, Request, Share, ToWorker,
};

use crate::assets::{self, Assets};
use crate::backend;
use crate::host::{heap_bytes, WorkerHost};
use crate::outbox::post;
use crate::probe;
use crate::replica::{self, PortReducer};
use crate::shelf::{Shelf, Trained};

pub struct Session {
    generation: Rc<Cell<u32>>,
    /// The highest probe id cancelled (the message loop sets it at once).
    cancelled_probes: Rc<Cell<u32>>,
    device: Option<(Device, BackendInfo)>,
    assets: Assets,
    shelf: Shelf,
}

impl Session {
    pub fn new(generation: Rc<Cell<u32>>) -> Self {
        Session {
            generation,
            cancelled_probes: Rc::default(),
            device: None,
            assets: Assets::default(),
            shelf: Shelf::default(),
        }
    }

    /// What a `CancelProbe` sets, for a message loop to act on while a probe runs.
    pub fn cancelled_probes(&self) -> Rc<Cell<u32>> {
        self.cancelled_probes.clone()
    }

    /// `arrived_in`: the stop generation when the message arrived.
    pub async fn handle(&mut self, message: ToWorker, arrived_in: u32) {
        let context = Request::of(&message);
        // The message loop delivers these at once; here for callers that drive a session.
        match message {
            ToWorker::RunEnded { run_id } => return replica::end(run_id),
            ToWorker::CancelProbe { probe_id } => return cancel_probe(&self.cancelled_probes, probe_id),
            _ => {}
        }
        let answer = match message {
            ToWorker::Start { choice } => Ok(Some(self.start(choice).await)),
            ToWorker::LoadModel { source, share } => match self.device() {
                Ok(device) => self.assets.load_model(source, &device, share).await.map(|(info, shared)| {
                    self.shelf.clear();
                    Some(FromWorker::ModelLoaded { info, shared })
                }),
                Err(e) => Err(e),
            },
            ToWorker::Inspect { file } => {
                assets::inspect(file).await.map(|preview| Some(FromWorker::Inspected { preview }))
            }
            ToWorker::LoadDataset { source, share } => self
                .assets
                .load_dataset(source, share)
                .await
                .map(|(info, shared)| Some(FromWorker::DatasetLoaded { info, shared })),
            // A run queued before a Stop is dropped; the page already shows it stopped.
            ToWorker::Train { run_id, replica, .. } if arrived_in != self.generation.get() => {
                if let Some(share) = replica {
                    replica::unlink(run_id, share.index);
                }
                Ok(None)
            }
            ToWorker::Train { run_id, origin, config, replica } => {
                self.train((run_id, origin), config, replica, arrived_in).await;
                Ok(None)
            }
            ToWorker::RunEnded { .. } | ToWorker::CancelProbe { .. } => Ok(None),
            ToWorker::Stop => Ok(None),
            ToWorker::Predict { text, runs } => {
                self.shelf.predict(&text, &runs).await.map(|results| Some(FromWorker::Predictions { text, results }))
            }
            ToWorker::Export { run_id } => self
                .shelf
                .export(run_id, self.assets.model.as_ref())
                .await
                .map(|(file, bytes)| Some(FromWorker::Exported { run_id, file, bytes })),
            ToWorker::Probe { probe_id, config } => match self.device() {
                Ok(device) => probe::run(probe_id, &config, &self.assets, &device, &self.cancelled_probes).await,
                Err(e) => Err(e),
            },
        };
        match answer {
            Ok(Some(reply)) => post(&reply),
            Ok(None) => {}
            Err(message) => post(&FromWorker::Error { context, message }),
        }
        post(&FromWorker::Handled { request: context, heap_bytes: heap_bytes() });
    }

    async fn start(&mut self, choice: BackendChoice) -> FromWorker {
        let (device, info) = backend::choose(choice).await;
        // Trained models live on the old device.
        self.shelf.clear();
        self.device = Some((device, info.clone()));
        FromWorker::Backend { info }
    }

    fn device(&self) -> Result<Device, String> {
        self.device.as_ref().map(|(d, _)| d.clone()).ok_or_else(|| "no backend yet".to_string())
    }

    /// Trains a fresh copy of the model (events go to the page as the run goes), then measures
    /// its drift and shelves it for whoever asked. A data-parallel replica other than the
    /// first only trains: the first holds the same model and answers for the run.
    async fn train(
        &mut self,
        (run_id, origin): (u32, Origin),
        config: TrainConfig,
        share: Option<Share>,
        requested_in: u32,
    ) {
        // Taken first, so a replica that fails before training still lets its ports go.
        let mut reducer = share.map(|s| PortReducer::new(run_id, s.index));
        let fail = |message: String, retry_on_cpu: bool| {
            post(&FromWorker::RunFailed { run_id, message, retry_on_cpu });
        };
        let Assets { model, data, cache, .. } = &mut self.assets;
        let (Some(model), Some(data), Some((device, info))) = (model, data, &self.device) else {
            return fail("load a model and a dataset first".into(), false);
        };
        let on_gpu = info.kind == BackendKind::Webgpu;
        let labels = data.dataset.labels.names.clone();
        let fresh = match LoadedModel::load(model.files(), Some(labels.len()), config.seed, &device.clone().autodiff())
        {
            Ok(fresh) => fresh,
            Err(e) => return fail(e.to_string(), false),
        };
        let key = CacheKey { model: model.content.clone(), dataset: data.content.clone(), freeze_line: 0, max_len: 0 };
        let mut host = WorkerHost { run_id, generation: self.generation.clone(), requested_in };
        let ctx = RunContext {
            config: &fresh.config,
            tokenizer: &fresh.tokenizer,
            data: &data.dataset,
            cfg: &config,
            cache_key: key,
            cache,
            host: &mut host,
            replica: share.zip(reducer.as_mut()).map(|(s, reducer)| Replica {
                index: s.index,
                count: s.count,
                reducer,
            }),
        };
        match train::train(fresh.classifier, ctx).await {
            Ok(_) if share.is_some_and(|s| s.index > 0) => {}
            Ok((classifier, _summary)) => {
                // How far each block moved, against the checkpoint bytes held here.
                let texts: Vec<&str> = data.dataset.validation.iter().map(|(t, _)| t.as_str()).collect();
                match drift::measure(&classifier, model.files(), config.seed, &texts, config.max_len).await {
                    Ok(blocks) => host.emit(&TrainEvent::Drift { blocks }),
                    Err(e) => post(&FromWorker::Error { context: Request::Train, message: format!("drift: {e}") }),
                }
                let model = LoadedModel { classifier, ..fresh };
                // A column's run shows its map of the examples it was scored on (the sweep's runs
                // are many, and drawn only as points).
                if origin.column().is_some() {
                    let (_, validation) = train::examples(&data.dataset, &config);
                    match map::trained_map(&model, &validation, config.max_len, config.batch_size).await {
                        Ok(map) => host.emit(&TrainEvent::Examples { map }),
                        Err(e) => post(&FromWorker::Error { context: Request::Train, message: format!("map: {e}") }),
                    }
                }
                self.shelf.keep(origin, Trained { run_id, model, labels, max_len: config.max_len });
            }
            Err(e) => fail(e.to_string(), on_gpu),
        }
    }
}

/// Marks every probe up to `probe_id` cancelled.
pub fn cancel_probe(cancelled: &Cell<u32>, probe_id: u32) {
    cancelled.set(cancelled.get().max(probe_id));
}
