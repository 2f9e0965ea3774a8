//! One type per subcommand: its flags (clap reads them) and what it does (`run`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use freezelab_core::cache::PrefixCache;
use freezelab_core::config::BertConfig;
use freezelab_core::device::{self, Backend};
use freezelab_core::folder::model_folder;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::map;
use freezelab_core::synthetic;
use freezelab_core::train::bench;
use freezelab_core::weights::{export_classifier, stored_label_names};

use crate::host::CliHost;
use crate::model_dir::ModelDir;
use crate::run_args::{run_once, RunArgs};
use crate::{probe, sweep};

/// `freezelab info`.
#[derive(Args)]
pub struct Info {
    #[arg(long)]
    pub model: PathBuf,
}

impl Info {
    pub async fn run(self, backend: Backend) -> Result<()> {
        let Info { model } = self;
        let dir = ModelDir::read(&model, None)?;
        let device = device::init(backend).await?;
        let loaded = dir.load(None, &device)?;
        let params = loaded.block_params();
        let c = &loaded.config;
        println!("model        {}", model.display());
        println!(
            "shape        {} layers, hidden {}, {} heads, intermediate {}, vocab {}",
            c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size, c.vocab_size
        );
        println!("embeddings   {:>12}", params.embeddings);
        for (i, p) in params.layers.iter().enumerate() {
            println!("layer {i:<6} {p:>12}");
        }
        println!("head         {:>12}  ({} labels)", params.head, loaded.classifier.num_labels());
        println!("total        {:>12}", params.total());
        println!("encoder      {:>12}", params.total() - params.head);
        Ok(())
    }
}

/// `freezelab embed`.
#[derive(Args)]
pub struct Embed {
    #[arg(long)]
    pub model: PathBuf,
    /// Text file, one text per line.
    #[arg(long)]
    pub input: PathBuf,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
}

impl Embed {
    pub async fn run(self, backend: Backend) -> Result<()> {
        let Embed { model, input, max_len, batch } = self;
        let dir = ModelDir::read(&model, None)?;
        let device = device::init(backend).await?;
        let loaded = dir.load(None, &device)?;
        let text = std::fs::read_to_string(&input).with_context(|| format!("reading {}", input.display()))?;
        let lines: Vec<&str> = text.lines().collect();
        for e in loaded.embed(&lines, max_len, batch).await? {
            println!("{}", serde_json::to_string(&e)?);
        }
        Ok(())
    }
}

/// `freezelab train`.
#[derive(Args)]
pub struct Train {
    #[command(flatten)]
    pub run: RunArgs,
    /// none | emb | head-only | bottom-K | a list such as emb,0-3 or 3; a mode before a
    /// colon trains the rest otherwise: bitfit (biases only), lora-R[-aA][-all] (rank-R
    /// updates on query and value, or every linear), llrd-D (lr × D per layer down from the
    /// top), gradual-N (a block opens every N steps), as in bitfit:emb,0-3 (a mode alone
    /// freezes nothing)
    #[arg(long, default_value = "none")]
    pub freeze: String,
    /// Write the run's summary as one JSON object.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the fine-tuned model (safetensors, HF names, labels in metadata).
    #[arg(long)]
    pub save_head: Option<PathBuf>,
    /// Write the fine-tuned model as a Hugging Face folder (config.json with the labels,
    /// model.safetensors, tokenizer.json), the same folder the page's download holds.
    #[arg(long)]
    pub save_model: Option<PathBuf>,
    /// Write the examples the run trains and validates on (JSON: labels, train, validation as
    /// [text, label index] pairs), for the PyTorch reference (`cargo xtask reference`).
    #[arg(long)]
    pub examples_out: Option<PathBuf>,
}

impl Train {
    pub async fn run(self, backend: Backend) -> Result<()> {
        let Train { run, freeze, out, save_head, save_model, examples_out } = self;
        let loaded = run.load()?;
        let layers = BertConfig::from_json(&loaded.dir.config)?.num_hidden_layers;
        let cfg = run.config(FreezePlan::parse(&freeze, layers)?, run.cache);
        if let Some(path) = examples_out {
            let (train, validation) = freezelab_core::train::examples(&loaded.dataset, &cfg);
            let split =
                serde_json::json!({ "labels": loaded.dataset.labels.names, "train": train, "validation": validation });
            std::fs::write(&path, serde_json::to_vec(&split)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let device = device::init(backend).await?;
        let mut cache = PrefixCache::new();
        let mut host = CliHost::new(&cfg.freeze.label(), true);
        let (model, mut summary) = run_once(&loaded, &cfg, &device, &mut cache, &mut host).await?;
        // The validation examples on the trained model's map, as the page shows a column's run.
        let (_, validation) = freezelab_core::train::examples(&loaded.dataset, &cfg);
        summary.examples = Some(map::trained_map(&model, &validation, cfg.max_len, cfg.batch_size).await?);
        eprintln!(
            "{}: accuracy {:.4}, macro-F1 {:.4}, {} trainable of {}, {:.1} ex/s, {:.1} s; memory computed {:.1} MiB, measured peak {}",
            summary.freeze,
            summary.val_accuracy,
            summary.macro_f1,
            summary.trainable_params,
            summary.total_params,
            summary.examples_per_second,
            summary.wall_seconds,
            summary.memory.computed_total as f64 / 1048576.0,
            summary.memory.measured_peak_bytes.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
        );
        let drift: Vec<String> =
            summary.drift.iter().map(|d| format!("{} {:.2}%", d.block, 100.0 * d.relative_change)).collect();
        eprintln!("weights moved (‖after − before‖ / ‖before‖): {}", drift.join(", "));
        let b = &summary.baseline;
        eprintln!("baseline (always ‘{}’): accuracy {:.4}, macro-F1 {:.4}", b.label, b.accuracy, b.macro_f1);
        if !b.beaten_by(summary.val_accuracy) {
            eprintln!("warning: {}", b.warning());
        }
        if let Some(path) = out {
            std::fs::write(&path, serde_json::to_vec_pretty(&summary)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(path) = save_head {
            let bytes = export_classifier(&model.classifier, &summary.labels).await?;
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(dir) = save_model {
            let files =
                model_folder(&model.classifier, &summary.labels, &loaded.dir.config, &loaded.dir.tokenizer).await?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, bytes) in files {
                std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {name}"))?;
            }
        }
        Ok(())
    }
}

/// `freezelab sweep`.
#[derive(Args)]
pub struct Sweep {
    #[command(flatten)]
    pub run: RunArgs,
    #[arg(long, default_value = "sweep")]
    pub out_dir: PathBuf,
    /// Also the modes between frozen and free: BitFit (lr ≥ 1e-3), LoRA rank 8 on query and
    /// value (lr ≥ 5e-4) and layer-wise lr decay 0.9.
    #[arg(long, conflicts_with = "plans")]
    pub modes: bool,
    /// The plans to sweep instead, separated by ';' (each as --freeze takes it, e.g.
    /// "none;bitfit;llrd-0.8;bitfit:emb,0-3;head-only").
    #[arg(long)]
    pub plans: Option<String>,
}

impl Sweep {
    pub async fn run(self, backend: Backend) -> Result<()> {
        let Sweep { run, out_dir, modes, plans } = self;
        let device = device::init(backend).await?;
        let which = match plans {
            Some(list) => sweep::Plans::List(list),
            None if modes => sweep::Plans::Modes,
            None => sweep::Plans::Depths,
        };
        sweep::run(&run, &which, &out_dir, &device).await?;
        eprintln!("sweep: wrote sweep.csv, sweep.json, sweep-{{params,memory,time}}.svg in {}", out_dir.display());
        Ok(())
    }
}

/// `freezelab probe`.
#[derive(Args)]
pub struct Probe {
    #[command(flatten)]
    pub run: RunArgs,
    /// Write the table as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write every block's features and the labels as JSON (tests/fixtures/make_probe.py
    /// fits scikit-learn on them).
    #[arg(long)]
    pub features_out: Option<PathBuf>,
}

impl Probe {
    pub async fn run(self, backend: Backend) -> Result<()> {
        let Probe { run, out, features_out } = self;
        let device = device::init(backend).await?;
        probe::run(&run, out.as_deref(), features_out.as_deref(), &device).await?;
        Ok(())
    }
}

/// `freezelab disagree`.
#[derive(Args)]
pub struct Disagree {
    /// Run A's summary.
    pub a: PathBuf,
    /// Run B's summary.
    pub b: PathBuf,
    /// Write the table as JSON.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl Disagree {
    pub async fn run(self) -> Result<()> {
        let Disagree { a, b, out } = self;
        probe::disagree(&a, &b, out.as_deref())?;
        Ok(())
    }
}

/// `freezelab bench`.
#[derive(Args)]
pub struct Bench {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Sequence lengths, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "64,128")]
    pub seq: Vec<usize>,
    /// Timed steps per configuration (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Also write the results as a JSON array.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Only these rows, comma separated: none, bottom3, bottom3-cache, head-only,
    /// head-only-cache.
    #[arg(long, value_delimiter = ',')]
    pub rows: Vec<String>,
}

impl Bench {
    pub async fn run(self, backend: Backend) -> Result<()> {
        let Bench { model, batch, seq, steps, json, rows } = self;
        let dir = ModelDir::read(&model, None)?;
        let device = device::init(backend).await?.autodiff();
        let layers = BertConfig::from_json(&dir.config)?.num_hidden_layers;
        let all = bench::rows(layers);
        if let Some(unknown) = rows.iter().find(|r| !all.iter().any(|(name, ..)| name == r)) {
            let names: Vec<&str> = all.iter().map(|(name, ..)| *name).collect();
            anyhow::bail!("unknown bench row \"{unknown}\": use {}", names.join(", "));
        }
        let chosen: Vec<_> =
            all.into_iter().filter(|(name, ..)| rows.is_empty() || rows.iter().any(|r| r == name)).collect();
        let host = CliHost::new("bench", false);
        let mut results = Vec::new();
        println!(
            "{:>10} {:>6} {:>5} {:>5} {:>10} {:>10} {:>12}",
            "freeze", "cache", "batch", "seq", "ex/s", "s/step", "peak MiB"
        );
        for &seq_len in &seq {
            for (_, plan, cache) in &chosen {
                let loaded = dir.load(Some(2), &device)?;
                let b = bench::fixed_batch(batch, seq_len, loaded.config.vocab_size, 101, 102);
                let r = bench::run(loaded.classifier, (plan, *cache), &b, steps, &host).await?;
                println!(
                    "{:>10} {:>6} {:>5} {:>5} {:>10.2} {:>10.3} {:>12}",
                    r.freeze,
                    r.cache,
                    r.batch_size,
                    r.seq_len,
                    r.examples_per_second,
                    r.seconds_per_step,
                    r.measured_peak_bytes.map_or("n/a".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
                );
                results.push(r);
            }
        }
        if let Some(path) = json {
            std::fs::write(&path, serde_json::to_vec_pretty(&results)?)?;
        }
        Ok(())
    }
}

/// `freezelab predict`.
#[derive(Args)]
pub struct Predict {
    #[arg(long)]
    pub model: PathBuf,
    /// Fine-tuned weights (safetensors with a `classifier.*` head) written by `train --save-head`.
    #[arg(long)]
    pub head: Option<PathBuf>,
    #[arg(long)]
    pub text: Vec<String>,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
}

impl Predict {
    pub async fn run(self, backend: Backend) -> Result<()> {
        let Predict { model, head, text, max_len } = self;
        anyhow::ensure!(!text.is_empty(), "give at least one --text");
        let dir = ModelDir::read(&model, head.as_deref())?;
        let labels = stored_label_names(&dir.weights)?;
        if labels.is_none() {
            eprintln!("note: these weights are not fine-tuned by FreezeLab: the classifier head is untrained, predictions are random");
        }
        let device = device::init(backend).await?;
        let loaded = dir.load(labels.as_ref().map(Vec::len), &device)?;
        let names = labels.unwrap_or_else(|| (0..loaded.classifier.num_labels()).map(|i| i.to_string()).collect());
        let texts: Vec<&str> = text.iter().map(String::as_str).collect();
        for (t, probs) in texts.iter().zip(loaded.predict(&texts, max_len).await?) {
            let best = freezelab_core::metrics::argmax(&probs);
            let probabilities: serde_json::Map<String, serde_json::Value> =
                names.iter().zip(&probs).map(|(n, p)| (n.clone(), serde_json::json!(p))).collect();
            println!("{}", serde_json::json!({"text": t, "label": names[best], "probabilities": probabilities}));
        }
        Ok(())
    }
}

/// `freezelab synthetic`.
#[derive(Args)]
pub struct Synthetic {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    #[arg(long, default_value_t = 2)]
    pub heads: usize,
    #[arg(long, default_value_t = 240)]
    pub examples: usize,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

impl Synthetic {
    pub async fn run(self) -> Result<()> {
        let Synthetic { out, hidden, layers, heads, examples, seed } = self;
        let (config, weights, tokenizer) = synthetic::model_files(hidden, layers, heads, seed);
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.write_record(["text", "label", "note"])?;
        for e in synthetic::examples(examples, 11) {
            csv.write_record([e.text.as_str(), e.label.as_str(), "ignored column"])?;
        }
        let files: [(&str, &[u8]); 4] = [
            ("config.json", &config),
            ("model.safetensors", &weights),
            ("tokenizer.json", tokenizer.as_bytes()),
            ("data.csv", &csv.into_inner()?),
        ];
        for (name, bytes) in files {
            std::fs::write(out.join(name), bytes).with_context(|| format!("writing {name}"))?;
        }
        eprintln!("wrote {} (config.json, model.safetensors, tokenizer.json, data.csv)", out.display());
        Ok(())
    }
}
