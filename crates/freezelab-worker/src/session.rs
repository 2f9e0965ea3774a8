//! What the worker holds between messages (device, model files, dataset, the latest trained
//! model per column, the prefix cache) and how it answers each request. A failed request
//! leaves everything it held before untouched.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use burn::tensor::Device;
use freezelab_core::cache::{content_id, CacheKey, PrefixCache};
use freezelab_core::data::{self, Columns, Dataset, Format};
use freezelab_core::drift;
use freezelab_core::folder::model_folder;
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_core::train::{self, Host, RunContext, TrainConfig, TrainEvent};
use freezelab_protocol::messages::{
    upload_id, BackendChoice, BackendInfo, BackendKind, Column, DataSource, DatasetInfo, FilePreview, FromWorker,
    ModelInfo, ModelSource, Prediction, Request, ToWorker, UserFile,
};

use crate::host::{heap_bytes, WorkerHost};
use crate::worker::post;
use crate::{archive, fetch, probe};

/// Rows shown in the upload preview.
const PREVIEW_ROWS: usize = 5;

struct Model {
    /// Names the bytes, for the prefix cache: two uploads under one file name differ here.
    content: String,
    config: Vec<u8>,
    weights: Vec<u8>,
    /// Each run loads its own copy from these bytes, with its own head and seed.
    tokenizer: Vec<u8>,
}

impl Model {
    fn files(&self) -> ModelFiles<'_> {
        ModelFiles { config: &self.config, weights: &self.weights, tokenizer: &self.tokenizer }
    }
}

struct Trained {
    run_id: u32,
    model: LoadedModel,
    labels: Vec<String>,
    max_len: usize,
}

pub struct Session {
    generation: Rc<Cell<u32>>,
    device: Option<(Device, BackendInfo)>,
    model: Option<Model>,
    /// The dataset and the content id of what made it (bytes, columns, split).
    dataset: Option<(String, Dataset)>,
    trained: HashMap<Column, Trained>,
    cache: PrefixCache,
    /// The latest model download; an older one is released when a new one is made.
    export_url: Option<String>,
}

impl Session {
    pub fn new(generation: Rc<Cell<u32>>) -> Self {
        Session {
            generation,
            device: None,
            model: None,
            dataset: None,
            trained: HashMap::new(),
            cache: PrefixCache::new(),
            export_url: None,
        }
    }

    /// `arrived_in`: the stop generation when the message arrived.
    pub async fn handle(&mut self, message: ToWorker, arrived_in: u32) {
        let context = Request::of(&message);
        let result = match message {
            ToWorker::Start { choice } => {
                self.start(choice).await;
                Ok(())
            }
            ToWorker::LoadModel { source } => self.load_model(source).await,
            ToWorker::Inspect { file } => inspect(file).await,
            ToWorker::LoadDataset { source } => self.load_dataset(source).await,
            // A run queued before a Stop is dropped; the page already shows it stopped.
            ToWorker::Train { .. } if arrived_in != self.generation.get() => Ok(()),
            ToWorker::Train { run_id, column, config } => {
                self.train(run_id, column, config, arrived_in).await;
                Ok(())
            }
            ToWorker::Stop => Ok(()),
            ToWorker::Predict { text } => self.predict(text).await,
            ToWorker::Export { run_id } => self.export(run_id).await,
        };
        if let Err(message) = result {
            post(&FromWorker::Error { context, message });
        }
        post(&FromWorker::Heap { bytes: heap_bytes() });
    }

    async fn start(&mut self, choice: BackendChoice) {
        let (device, info) = probe::choose(choice).await;
        post(&FromWorker::Backend { info: info.clone() });
        // Trained models live on the old device.
        self.trained.clear();
        self.device = Some((device, info));
    }

    fn device(&self) -> Result<Device, String> {
        self.device.as_ref().map(|(d, _)| d.clone()).ok_or_else(|| "no backend yet".to_string())
    }

    async fn load_model(&mut self, source: ModelSource) -> Result<(), String> {
        let device = self.device()?;
        let (id, urls) = match &source {
            ModelSource::Prepared { id, base, weights } => (
                id.clone(),
                [format!("{base}/config.json"), format!("{base}/{weights}"), format!("{base}/tokenizer.json")],
            ),
            ModelSource::Files { config, weights, tokenizer } => {
                (upload_id(&weights.name), [config.url.clone(), weights.url.clone(), tokenizer.url.clone()])
            }
        };
        let config = fetch::bytes(&urls[0], "config.json").await?;
        let weights = fetch::bytes(&urls[1], "model.safetensors").await?;
        let tokenizer = fetch::bytes(&urls[2], "tokenizer.json").await?;
        let files = ModelFiles { config: &config, weights: &weights, tokenizer: &tokenizer };
        // Loading once validates the files: a bad checkpoint is refused now, not at Train.
        let loaded = LoadedModel::load(files, None, 0, &device).map_err(|e| e.to_string())?;
        let info = ModelInfo {
            name: id.clone(),
            shape: loaded.config.shape(),
            params: loaded.block_params(),
            max_position_embeddings: loaded.config.max_position_embeddings,
            vocab_size: loaded.config.vocab_size,
        };
        drop(loaded);
        let content = content_id(&[&config, &weights, &tokenizer]);
        // States cached under another model are never needed again: free them now.
        self.cache.clear();
        self.model = Some(Model { content, config, weights, tokenizer });
        self.trained.clear();
        post(&FromWorker::ModelLoaded { info });
        Ok(())
    }

    async fn load_dataset(&mut self, source: DataSource) -> Result<(), String> {
        let (name, content, dataset) = match source {
            DataSource::Prepared { id, train, validation } => {
                let read = |name: &str, bytes: &[u8]| data::parse(name, bytes, Format::Jsonl, &Columns::default());
                let train = fetch::bytes(&train, "train.jsonl").await?;
                let validation = fetch::bytes(&validation, "validation.jsonl").await?;
                let t = read("train.jsonl", &train).map_err(|e| e.to_string())?;
                let v = read("validation.jsonl", &validation).map_err(|e| e.to_string())?;
                let content = content_id(&[&train, &validation]);
                (id, content, Dataset::new(t, v, "train.jsonl", "validation.jsonl").map_err(|e| e.to_string())?)
            }
            DataSource::Upload { file, text_column, label_column, validation_fraction, seed } => {
                let format = Format::from_file_name(&file.name).map_err(|e| e.to_string())?;
                let bytes = fetch::bytes(&file.url, &file.name).await?;
                // The examples depend on the bytes, the columns read and the split: all name the cache's states.
                let content = content_id(&[
                    &bytes,
                    text_column.as_bytes(),
                    label_column.as_bytes(),
                    &validation_fraction.to_le_bytes(),
                    &seed.to_le_bytes(),
                ]);
                let columns = Columns { text: text_column, label: label_column };
                let examples = data::parse(&file.name, &bytes, format, &columns).map_err(|e| e.to_string())?;
                let dataset =
                    Dataset::from_single(examples, validation_fraction, seed, &file.name).map_err(|e| e.to_string())?;
                (upload_id(&file.name), content, dataset)
            }
        };
        post(&FromWorker::DatasetLoaded {
            info: DatasetInfo {
                name: name.clone(),
                labels: dataset.labels.names.clone(),
                train_counts: dataset.train_counts(),
                validation_counts: dataset.validation_counts(),
            },
        });
        self.cache.clear();
        self.dataset = Some((content, dataset));
        Ok(())
    }

    async fn train(&mut self, run_id: u32, column: Column, config: TrainConfig, requested_in: u32) {
        let fail = |message: String, retry_on_cpu: bool| {
            post(&FromWorker::RunFailed { run_id, column, message, retry_on_cpu });
        };
        let (Some(model), Some((data_content, dataset)), Ok(device)) = (&self.model, &self.dataset, self.device())
        else {
            return fail("load a model and a dataset first".into(), false);
        };
        let on_gpu = self.device.as_ref().is_some_and(|(_, info)| info.kind == BackendKind::Webgpu);
        let labels = dataset.labels.names.clone();
        let fresh = match LoadedModel::load(model.files(), Some(labels.len()), config.seed, &device.clone().autodiff())
        {
            Ok(fresh) => fresh,
            Err(e) => return fail(e.to_string(), false),
        };
        let key = CacheKey { model: model.content.clone(), dataset: data_content.clone(), freeze_line: 0, max_len: 0 };
        let mut host = WorkerHost { run_id, column, generation: self.generation.clone(), requested_in };
        let ctx = RunContext {
            config: &fresh.config,
            tokenizer: &fresh.tokenizer,
            data: dataset,
            cfg: &config,
            cache_key: key,
            cache: &mut self.cache,
            host: &mut host,
        };
        let result = train::train(fresh.classifier, ctx).await;
        match result {
            Ok((classifier, _summary)) => {
                // How far each block moved, against the checkpoint bytes held here.
                let texts: Vec<&str> = dataset.validation.iter().map(|(t, _)| t.as_str()).collect();
                match drift::measure(&classifier, model.files(), config.seed, &texts, config.max_len).await {
                    Ok(blocks) => host.emit(&TrainEvent::Drift { blocks }),
                    Err(e) => post(&FromWorker::Error { context: Request::Train, message: format!("drift: {e}") }),
                }
                let model = LoadedModel { classifier, ..fresh };
                self.trained.insert(column, Trained { run_id, model, labels, max_len: config.max_len });
            }
            Err(e) => fail(e.to_string(), on_gpu),
        }
    }

    async fn predict(&self, text: String) -> Result<(), String> {
        let mut results = Vec::new();
        for column in Column::BOTH {
            let Some(t) = self.trained.get(&column) else { continue };
            let probabilities = t.model.predict(&[text.as_str()], t.max_len).await.map_err(|e| e.to_string())?;
            results.push(Prediction {
                column,
                run_id: t.run_id,
                labels: t.labels.clone(),
                probabilities: probabilities.into_iter().next().unwrap_or_default(),
            });
        }
        post(&FromWorker::Predictions { text, results });
        Ok(())
    }
}

impl Session {
    /// Zips the run's model folder and hands the page a `blob:` URL to it.
    async fn export(&mut self, run_id: u32) -> Result<(), String> {
        let trained = self.trained.values().find(|t| t.run_id == run_id);
        let (Some(model), Some(trained)) = (&self.model, trained) else {
            return Err(format!(
                "run #{run_id}'s weights are no longer in memory: only the latest run of each column is kept"
            ));
        };
        let files = model_folder(&trained.model.classifier, &trained.labels, &model.config, &model.tokenizer)
            .await
            .map_err(|e| e.to_string())?;
        let name = format!("freezelab-run-{run_id}");
        let zip = archive::zip_folder(&name, &files)?;
        let url = archive::blob_url(&zip, "application/zip")?;
        if let Some(old) = self.export_url.replace(url.clone()) {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        let file = UserFile { name: format!("{name}.zip"), url };
        post(&FromWorker::Exported { run_id, file, bytes: zip.len() as u64 });
        Ok(())
    }
}

async fn inspect(file: UserFile) -> Result<(), String> {
    let format = Format::from_file_name(&file.name).map_err(|e| e.to_string())?;
    let bytes = fetch::bytes(&file.url, &file.name).await?;
    let (columns, rows) = data::preview(&file.name, &bytes, format, PREVIEW_ROWS).map_err(|e| e.to_string())?;
    post(&FromWorker::Inspected { preview: FilePreview { name: file.name, columns, rows } });
    Ok(())
}
