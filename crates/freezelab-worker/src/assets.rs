//! What runs are made from: the model's bytes, the dataset, and the prefix cache derived from
//! both. Each is named by a content id, and the cache's key holds both ids: the first run on
//! other content rebinds it and drops the old states, while two uploads under one file name
//! never share them. A failed load leaves what was held untouched.
//! Downloaded bytes can be shared with the pool's other workers as `blob:` URLs (same origin,
//! so any worker of the page reads them) instead of being downloaded again.

use burn::tensor::Device;
use freezelab_core::cache::{content_id, PrefixCache};
use freezelab_core::data::{self, Columns, Dataset, Format};
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_protocol::messages::{upload_id, DataSource, DatasetInfo, FilePreview, ModelInfo, ModelSource, UserFile};

use crate::{archive, fetch};

/// Rows shown in the upload preview.
const PREVIEW_ROWS: usize = 5;

pub struct Model {
    /// Names the bytes, for the prefix cache: two uploads under one file name differ here.
    pub content: String,
    pub config: Vec<u8>,
    pub weights: Vec<u8>,
    /// Each run loads its own copy from these bytes, with its own head and seed.
    pub tokenizer: Vec<u8>,
}

impl Model {
    pub fn files(&self) -> ModelFiles<'_> {
        ModelFiles { config: &self.config, weights: &self.weights, tokenizer: &self.tokenizer }
    }
}

pub struct Data {
    /// Names what made the examples: bytes, columns read, split.
    pub content: String,
    pub dataset: Dataset,
}

#[derive(Default)]
pub struct Assets {
    pub model: Option<Model>,
    pub data: Option<Data>,
    pub cache: PrefixCache,
    /// `blob:` URLs of the shared model and data bytes, released when new ones replace them.
    shared_model: Vec<String>,
    shared_data: Vec<String>,
}

/// `blob:` URLs to `files`, replacing (and releasing) those in `held`.
fn share(held: &mut Vec<String>, files: &[&[u8]]) -> Result<Vec<String>, String> {
    let urls = files
        .iter()
        .map(|bytes| archive::blob_url(bytes, "application/octet-stream"))
        .collect::<Result<Vec<_>, _>>()?;
    for old in std::mem::replace(held, urls.clone()) {
        let _ = web_sys::Url::revoke_object_url(&old);
    }
    Ok(urls)
}

impl Assets {
    /// Downloads and validates the three model files (loading once refuses a bad checkpoint
    /// now, not at Train). With `share`, also returns where other workers read the same bytes
    /// (a user's files are `blob:` URLs already).
    pub async fn load_model(
        &mut self,
        source: ModelSource,
        device: &Device,
        share: bool,
    ) -> Result<(ModelInfo, Option<ModelSource>), String> {
        let (id, urls, staged) = match &source {
            ModelSource::Prepared { id, base, weights, stage } => (
                id.clone(),
                [format!("{base}/config.json"), format!("{base}/{weights}"), format!("{base}/tokenizer.json")],
                stage.as_ref(),
            ),
            ModelSource::Files { config, weights, tokenizer } => {
                (upload_id(&weights.name), [config.url.clone(), weights.url.clone(), tokenizer.url.clone()], None)
            }
        };
        let config = fetch::bytes(&urls[0], "config.json", staged).await?;
        let weights = fetch::bytes(&urls[1], "model.safetensors", staged).await?;
        let tokenizer = fetch::bytes(&urls[2], "tokenizer.json", staged).await?;
        let files = ModelFiles { config: &config, weights: &weights, tokenizer: &tokenizer };
        let loaded = LoadedModel::load(files, None, 0, device).map_err(|e| e.to_string())?;
        let info = ModelInfo {
            name: id,
            shape: loaded.config.shape(),
            params: loaded.block_params(),
            max_position_embeddings: loaded.config.max_position_embeddings,
            vocab_size: loaded.config.vocab_size,
        };
        drop(loaded);
        let content = files.content_id();
        let shared = match source {
            _ if !share => None,
            ModelSource::Prepared { .. } => {
                let urls = self::share(&mut self.shared_model, &[&config, &weights, &tokenizer])?;
                let file = |name: &str, url: &String| UserFile { name: name.into(), url: url.clone() };
                Some(ModelSource::Files {
                    config: file("config.json", &urls[0]),
                    weights: file("model.safetensors", &urls[1]),
                    tokenizer: file("tokenizer.json", &urls[2]),
                })
            }
            files @ ModelSource::Files { .. } => Some(files),
        };
        self.model = Some(Model { content, config, weights, tokenizer });
        Ok((info, shared))
    }

    /// Downloads and reads a dataset; with `share`, also returns where other workers read it.
    pub async fn load_dataset(
        &mut self,
        source: DataSource,
        share: bool,
    ) -> Result<(DatasetInfo, Option<DataSource>), String> {
        let (name, content, dataset, shared) = match source {
            DataSource::Prepared { id, train, validation, stage } => {
                let read = |name: &str, bytes: &[u8]| data::parse(name, bytes, Format::Jsonl, &Columns::default());
                let train = fetch::bytes(&train, "train.jsonl", stage.as_ref()).await?;
                let validation = fetch::bytes(&validation, "validation.jsonl", stage.as_ref()).await?;
                let t = read("train.jsonl", &train).map_err(|e| e.to_string())?;
                let v = read("validation.jsonl", &validation).map_err(|e| e.to_string())?;
                let content = content_id(&[&train, &validation]);
                let dataset = Dataset::new(t, v, "train.jsonl", "validation.jsonl").map_err(|e| e.to_string())?;
                let shared = match share {
                    true => {
                        let urls = self::share(&mut self.shared_data, &[&train, &validation])?;
                        let [train, validation] = [urls[0].clone(), urls[1].clone()];
                        Some(DataSource::Prepared { id: id.clone(), train, validation, stage: None })
                    }
                    false => None,
                };
                (id, content, dataset, shared)
            }
            DataSource::Upload { file, text_column, label_column, validation_fraction, seed } => {
                let shared = share.then(|| DataSource::Upload {
                    file: file.clone(),
                    text_column: text_column.clone(),
                    label_column: label_column.clone(),
                    validation_fraction,
                    seed,
                });
                let format = Format::from_file_name(&file.name).map_err(|e| e.to_string())?;
                let bytes = fetch::bytes(&file.url, &file.name, None).await?;
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
                (upload_id(&file.name), content, dataset, shared)
            }
        };
        let info = DatasetInfo {
            name,
            labels: dataset.labels.names.clone(),
            train_counts: dataset.train_counts(),
            validation_counts: dataset.validation_counts(),
        };
        self.data = Some(Data { content, dataset });
        Ok((info, shared))
    }
}

/// The first rows and the columns of a user's file, before it is loaded.
pub async fn inspect(file: UserFile) -> Result<FilePreview, String> {
    let format = Format::from_file_name(&file.name).map_err(|e| e.to_string())?;
    let bytes = fetch::bytes(&file.url, &file.name, None).await?;
    let (columns, rows) = data::preview(&file.name, &bytes, format, PREVIEW_ROWS).map_err(|e| e.to_string())?;
    Ok(FilePreview { name: file.name, columns, rows })
}
