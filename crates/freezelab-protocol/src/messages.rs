//! What the page and the training worker say to each other. Both sides import these types: the
//! page's requests travel as JavaScript objects (`serde-wasm-bindgen`), the worker's messages as
//! bytes ([`FromWorker::encode`]); files the user picks travel as same-origin `blob:`
//! URLs that the worker fetches, so no large byte arrays cross the message boundary.

use serde::{Deserialize, Serialize};

use crate::memory::{BlockParams, DeviceLimits, EncoderShape};
use crate::readout::{ExampleMap, ProbeReport};
use crate::run::{TrainConfig, TrainEvent};

/// Uploads larger than this are refused before reading: the worker holds a file whole.
pub const MAX_UPLOAD_BYTES: u64 = 50_000_000;

/// One of the page's two comparison columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Column {
    A,
    B,
}

impl Column {
    pub const BOTH: [Column; 2] = [Column::A, Column::B];

    pub fn name(self) -> &'static str {
        match self {
            Column::A => "A",
            Column::B => "B",
        }
    }
}

/// Who asked for a run: a comparison column, or the sweep. Written as "A", "B" or "Sweep", as
/// saved runs have always stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "OriginName", into = "OriginName")]
pub enum Origin {
    Column(Column),
    Sweep,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Column(column) => column.name(),
            Origin::Sweep => "sweep",
        }
    }

    pub fn column(self) -> Option<Column> {
        match self {
            Origin::Column(column) => Some(column),
            Origin::Sweep => None,
        }
    }
}

impl From<Column> for Origin {
    fn from(column: Column) -> Self {
        Origin::Column(column)
    }
}

/// [`Origin`] as it is written.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum OriginName {
    A,
    B,
    Sweep,
}

impl From<OriginName> for Origin {
    fn from(name: OriginName) -> Self {
        match name {
            OriginName::A => Origin::Column(Column::A),
            OriginName::B => Origin::Column(Column::B),
            OriginName::Sweep => Origin::Sweep,
        }
    }
}

impl From<Origin> for OriginName {
    fn from(origin: Origin) -> Self {
        match origin {
            Origin::Column(Column::A) => OriginName::A,
            Origin::Column(Column::B) => OriginName::B,
            Origin::Sweep => OriginName::Sweep,
        }
    }
}

/// One replica of a data-parallel run: `index` of `count` workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub index: usize,
    pub count: usize,
}

/// Which backend the user asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// WebGPU on a hardware adapter, else the CPU: a software adapter (SwiftShader, a machine
    /// without GPU drivers) is far slower than the CPU backend.
    #[default]
    Auto,
    /// The CPU backend, whatever the browser offers.
    Cpu,
    /// WebGPU on whatever adapter exists, a software one included.
    AnyGpu,
}

impl BackendChoice {
    /// Whether this choice trains on WebGPU when the browser offers an adapter (`fallback`: a
    /// software one). The worker decides by it, and the page by it picks which worker bundle
    /// to start (the CPU bundle has no WebGPU backend).
    pub fn takes_gpu(self, fallback: bool) -> bool {
        match self {
            BackendChoice::Auto => !fallback,
            BackendChoice::Cpu => false,
            BackendChoice::AnyGpu => true,
        }
    }
}

/// Page → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Pick a backend.
    Start {
        choice: BackendChoice,
    },
    /// `share`: also answer with a source other workers of the pool load the same bytes from,
    /// so a model is downloaded once however many workers train.
    LoadModel {
        source: ModelSource,
        share: bool,
    },
    /// Column names, first rows and label counts of a file, before the user picks columns.
    Inspect {
        file: UserFile,
    },
    LoadDataset {
        source: DataSource,
        share: bool,
    },
    /// A run, or one replica of a data-parallel run (`replica`: which of how many workers).
    /// A replica's message carries `MessagePort`s (the event's `ports`, beside the message):
    /// the first replica one to each other replica, in replica order; every other replica one
    /// to the first. Gradients travel over them, worker to worker, never through the page.
    Train {
        run_id: u32,
        origin: Origin,
        config: TrainConfig,
        #[serde(default)]
        replica: Option<Share>,
    },
    /// A data-parallel run ended (stopped, or a replica failed): its replicas stop waiting
    /// for each other's gradients.
    RunEnded {
        run_id: u32,
    },
    Stop,
    /// Classify a text with the models of these runs, each shown in its column (a run this
    /// worker no longer holds is left out).
    Predict {
        text: String,
        runs: Vec<(Column, u32)>,
    },
    /// Package a run's fine-tuned model as a Hugging Face folder (zip). Only a worker's latest
    /// run of each column (and of the sweep) is still in memory.
    Export {
        run_id: u32,
    },
    /// A linear probe on each block of the loaded (pretrained) model, on the examples `config`
    /// picks (its seed, sizes, max length), and the map of its validation examples.
    Probe {
        probe_id: u32,
        config: TrainConfig,
    },
    /// Stop probe `probe_id` (and any earlier one): it answers nothing more.
    CancelProbe {
        probe_id: u32,
    },
}

/// Worker → page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The worker's wasm is running and takes messages.
    Alive,
    Backend {
        info: BackendInfo,
    },
    /// Bytes fetched so far of a download (`total` when the server says).
    Progress {
        what: String,
        loaded: u64,
        total: Option<u64>,
    },
    ModelLoaded {
        info: ModelInfo,
        /// Where the pool's other workers read the same bytes (when asked to share).
        shared: Option<ModelSource>,
    },
    Inspected {
        preview: FilePreview,
    },
    DatasetLoaded {
        info: DatasetInfo,
        shared: Option<DataSource>,
    },
    Run {
        run_id: u32,
        event: TrainEvent,
    },
    /// A run ended with an error; `retry_on_cpu` when the GPU was the cause.
    RunFailed {
        run_id: u32,
        message: String,
        retry_on_cpu: bool,
    },
    Predictions {
        text: String,
        results: Vec<Prediction>,
    },
    /// A run's model folder as a zip, at a `blob:` URL the worker made.
    Exported {
        run_id: u32,
        file: UserFile,
        bytes: u64,
    },
    /// Examples a probe has passed through the model so far.
    Probing {
        probe_id: u32,
        done: usize,
        total: usize,
    },
    Probed {
        probe_id: u32,
        report: ProbeReport,
        map: ExampleMap,
    },
    /// A request is done (a run: trained, failed or dropped), with the bytes of the worker's
    /// wasm linear memory (it only grows).
    Handled {
        request: Request,
        heap_bytes: u64,
    },
    /// A request failed; the worker keeps what it had before.
    Error {
        context: Request,
        message: String,
    },
}

impl FromWorker {
    /// The message as postcard bytes, which the worker posts. Decoding them takes the page one
    /// pass over a byte slice and a fraction of the code of reading a JavaScript object field by
    /// field (BENCHMARKS.md, "In the browser"). NaN and infinities travel as they are.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("protocol messages serialise")
    }

    /// The message [`FromWorker::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes).map_err(|e| e.to_string())
    }
}

/// Which kind of request failed: the page clears that request's busy state and prefixes the
/// message with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Backend,
    Model,
    Upload,
    Dataset,
    Train,
    Stop,
    TryIt,
    Download,
    Probe,
    /// A message the worker could not read.
    Message,
}

impl Request {
    pub fn of(message: &ToWorker) -> Self {
        match message {
            ToWorker::Start { .. } => Request::Backend,
            ToWorker::LoadModel { .. } => Request::Model,
            ToWorker::Inspect { .. } => Request::Upload,
            ToWorker::LoadDataset { .. } => Request::Dataset,
            ToWorker::Train { .. } | ToWorker::RunEnded { .. } => Request::Train,
            ToWorker::Stop => Request::Stop,
            ToWorker::Predict { .. } => Request::TryIt,
            ToWorker::Export { .. } => Request::Download,
            ToWorker::Probe { .. } | ToWorker::CancelProbe { .. } => Request::Probe,
        }
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(match self {
            Request::Backend => "backend",
            Request::Model => "model",
            Request::Upload => "upload",
            Request::Dataset => "dataset",
            Request::Train => "train",
            Request::Stop => "stop",
            Request::TryIt => "try it",
            Request::Download => "download",
            Request::Probe => "probe",
            Request::Message => "message",
        })
    }
}

/// The backend a worker runs on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Burn's `flex` CPU backend compiled to wasm.
    #[default]
    Cpu,
    Webgpu,
}

impl BackendKind {
    /// As runs record it (`RunView::backend`, exports).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Webgpu => "webgpu",
        }
    }
}

/// How a user's own file is named where a manifest id would be (`upload:` and the file name):
/// never matched against the manifest, and said to need loading again when a link names it.
pub fn upload_id(file_name: &str) -> String {
    format!("upload:{file_name}")
}

/// The file name inside an [`upload_id`], if `id` is one.
pub fn uploaded_file(id: &str) -> Option<&str> {
    id.strip_prefix("upload:")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    pub kind: BackendKind,
    /// The WebGPU adapter's name; on the CPU, the SIMD the matrix products use.
    pub adapter: Option<String>,
    /// A software (fallback) adapter such as SwiftShader.
    pub fallback: bool,
    /// Why the CPU was chosen, when it was.
    pub note: Option<String>,
    /// What a run may use, checked before it starts.
    #[serde(default)]
    pub limits: DeviceLimits,
}

/// On the static build's first visit, the Cache Storage cache where the worker also puts the
/// prepared files it downloads: the service worker's install takes them from there instead of
/// downloading the model and data a second time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub cache: String,
}

/// A file the user picked, readable by the worker at `url` (a `blob:` URL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserFile {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelSource {
    /// Same-origin files of a prepared model: `{base}/config.json`, `{base}/{weights}`,
    /// `{base}/tokenizer.json`.
    Prepared {
        id: String,
        base: String,
        weights: String,
        #[serde(default)]
        stage: Option<Stage>,
    },
    /// The user's own checkpoint.
    Files { config: UserFile, weights: UserFile, tokenizer: UserFile },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// A prepared dataset's train and validation files (JSONL with `text` and `label`).
    Prepared {
        id: String,
        train: String,
        validation: String,
        #[serde(default)]
        stage: Option<Stage>,
    },
    /// One user file, split into train and validation here (stratified, seeded).
    Upload { file: UserFile, text_column: String, label_column: String, validation_fraction: f64, seed: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub shape: EncoderShape,
    pub params: BlockParams,
    pub max_position_embeddings: usize,
    pub vocab_size: usize,
}

impl ModelInfo {
    pub fn num_layers(&self) -> usize {
        self.params.layers.len()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilePreview {
    pub name: String,
    pub columns: Vec<String>,
    /// The first rows, every column as text.
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    pub labels: Vec<String>,
    pub train_counts: Vec<usize>,
    pub validation_counts: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub column: Column,
    pub run_id: u32,
    pub labels: Vec<String>,
    pub probabilities: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::readout::{MapPoint, ProbeRow};
    use crate::run::{BlockDrift, RunSummary, TrainEvent};

    /// Every kind of field the worker's messages hold (options both ways, nested enums, boxed
    /// summaries, maximal integers, text beyond ASCII) comes back equal from its bytes.
    #[test]
    fn worker_messages_come_back_from_their_bytes() {
        let summary = RunSummary {
            labels: vec!["ham".into(), "spam".into()],
            confusion: vec![vec![3, 1], vec![0, 4]],
            exchange_seconds: Some(0.25),
            optimizer_state_tensors: None,
            drift: vec![BlockDrift {
                block: "layer-0".into(),
                relative_change: 0.01,
                parts: vec![("attention".into(), 0.02)],
                cka: Some(0.99),
            }],
            ..RunSummary::default()
        };
        let map = ExampleMap {
            points: vec![MapPoint {
                x: -0.5,
                y: 2.0,
                label: 1,
                predicted: Some(0),
                probability: Some(0.6),
                text: "Gewinn <b>".into(),
            }],
        };
        let messages = vec![
            FromWorker::Alive,
            FromWorker::Progress { what: "modèle".into(), loaded: u64::MAX, total: None },
            FromWorker::Progress { what: "data".into(), loaded: 1, total: Some(2) },
            FromWorker::DatasetLoaded {
                info: DatasetInfo {
                    name: "spam".into(),
                    labels: vec!["ham".into(), "spam".into()],
                    train_counts: vec![200, 56],
                    validation_counts: vec![50, 14],
                },
                shared: Some(DataSource::Upload {
                    file: UserFile { name: "a.csv".into(), url: "blob:x".into() },
                    text_column: "text".into(),
                    label_column: "label".into(),
                    validation_fraction: 0.2,
                    seed: 7,
                }),
            },
            FromWorker::Run {
                run_id: 3,
                event: TrainEvent::Eval {
                    step: 4,
                    epoch: 1,
                    val_loss: 0.5,
                    metrics: Metrics { accuracy: 0.75, macro_f1: 0.7, confusion: vec![vec![1, 0], vec![1, 2]] },
                    examples: 4,
                },
            },
            FromWorker::Run { run_id: 3, event: TrainEvent::Finished { summary: Box::new(summary) } },
            FromWorker::RunFailed { run_id: 3, message: "device lost ✗".into(), retry_on_cpu: true },
            FromWorker::Handled { request: Request::Train, heap_bytes: 1 << 33 },
            FromWorker::Error { context: Request::Message, message: String::new() },
            FromWorker::Probing { probe_id: 2, done: 16, total: 96 },
            FromWorker::Probed {
                probe_id: 2,
                report: ProbeReport {
                    c: 1.0,
                    train_examples: 48,
                    validation_examples: 48,
                    majority_class: 0.6875,
                    rows: vec![ProbeRow { block: "emb".into(), accuracy: 0.8125 }],
                },
                map: map.clone(),
            },
            FromWorker::Run { run_id: 3, event: TrainEvent::Examples { map } },
        ];
        for message in messages {
            assert_eq!(FromWorker::decode(&message.encode()), Ok(message));
        }
    }

    /// A loss that overflowed still arrives as what it is, not as an unreadable message.
    #[test]
    fn non_finite_losses_travel() {
        let step = |loss| FromWorker::Run {
            run_id: 1,
            event: TrainEvent::Step {
                step: 1,
                epoch: 0,
                loss,
                lr: 1e-4,
                examples_per_second: 0.0,
                elapsed_seconds: 0.1,
            },
        };
        for loss in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            match FromWorker::decode(&step(loss).encode()) {
                Ok(FromWorker::Run { event: TrainEvent::Step { loss: back, .. }, .. }) => {
                    assert_eq!(back.to_bits(), loss.to_bits())
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Cut-off or foreign bytes are an error the page reports, never a panic.
    #[test]
    fn truncated_bytes_are_refused() {
        let bytes = FromWorker::Handled { request: Request::Model, heap_bytes: 1 << 20 }.encode();
        assert!(FromWorker::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(FromWorker::decode(&[200]).is_err());
        assert!(FromWorker::decode(&[]).is_err());
    }
}
