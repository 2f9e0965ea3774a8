//! `freezelab`: the native command line over freezelab-core.

mod data_arg;
mod host;
mod malloc;
mod model_dir;
mod probe;
mod run_args;
mod sweep;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use freezelab_core::cache::PrefixCache;
use freezelab_core::config::BertConfig;
use freezelab_core::device::{self, Backend};
use freezelab_core::folder::model_folder;
use freezelab_core::freeze::FreezePlan;
use freezelab_core::map;
use freezelab_core::memory::CountingAllocator;
use freezelab_core::synthetic;
use freezelab_core::train::bench;
use freezelab_core::weights::{export_classifier, stored_label_names};

use crate::host::CliHost;
use crate::model_dir::ModelDir;
use crate::run_args::{run_once, RunArgs};

/// Counts live heap bytes: the measured memory of CPU training runs.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

#[derive(Parser)]
#[command(
    name = "freezelab",
    version,
    about = "Fine-tune BERT with frozen layers: train, sweep, inspect, embed, predict."
)]
struct Cli {
    /// Compute device: cpu (Burn flex) or wgpu (Vulkan/Metal on GPU machines).
    #[arg(long, global = true, default_value = "cpu")]
    device: Backend,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Layers and parameter counts per block.
    Info {
        #[arg(long)]
        model: PathBuf,
    },
    /// One JSON object per input line: {"text", "ids", "mean", "cls"} of the last hidden state.
    Embed {
        #[arg(long)]
        model: PathBuf,
        /// Text file, one text per line.
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value_t = 128)]
        max_len: usize,
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// Fine-tune with a freeze plan: JSON lines of events on stdout, progress on stderr.
    Train {
        #[command(flatten)]
        run: RunArgs,
        /// none | emb | head-only | bottom-K | a list such as emb,0-3 or 3; a mode before a
        /// colon trains the rest otherwise: bitfit (biases only), lora-R[-aA][-all] (rank-R
        /// updates on query and value, or every linear), llrd-D (lr × D per layer down from the
        /// top), gradual-N (a block opens every N steps), as in bitfit:emb,0-3 (a mode alone
        /// freezes nothing)
        #[arg(long, default_value = "none")]
        freeze: String,
        /// Write the run's summary as one JSON object.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the fine-tuned model (safetensors, HF names, labels in metadata).
        #[arg(long)]
        save_head: Option<PathBuf>,
        /// Write the fine-tuned model as a Hugging Face folder (config.json with the labels,
        /// model.safetensors, tokenizer.json), the same folder the page's download holds.
        #[arg(long)]
        save_model: Option<PathBuf>,
        /// Write the examples the run trains and validates on (JSON: labels, train, validation as
        /// [text, label index] pairs), for the PyTorch reference (`cargo xtask reference`).
        #[arg(long)]
        examples_out: Option<PathBuf>,
    },
    /// Train all, freeze embeddings, bottom 2, 4, …, head only: table (CSV, JSON) and plot (SVG).
    Sweep {
        #[command(flatten)]
        run: RunArgs,
        #[arg(long, default_value = "sweep")]
        out_dir: PathBuf,
        /// Also the modes between frozen and free: BitFit (lr ≥ 1e-3), LoRA rank 8 on query and
        /// value (lr ≥ 5e-4) and layer-wise lr decay 0.9.
        #[arg(long, conflicts_with = "plans")]
        modes: bool,
        /// The plans to sweep instead, separated by ';' (each as --freeze takes it, e.g.
        /// "none;bitfit;llrd-0.8;bitfit:emb,0-3;head-only").
        #[arg(long)]
        plans: Option<String>,
    },
    /// What each layer knows before training: a logistic-regression probe (C = 1) per block on
    /// the pretrained model's mean-pooled outputs of the training examples, scored on the
    /// validation examples (the examples `train` with the same sizes and seed uses).
    Probe {
        #[command(flatten)]
        run: RunArgs,
        /// Write the table as JSON.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write every block's features and the labels as JSON (tests/fixtures/make_probe.py
        /// fits scikit-learn on them).
        #[arg(long)]
        features_out: Option<PathBuf>,
    },
    /// The validation examples two runs disagree on (one right, the other wrong), from their
    /// `train --out` summaries, as the page's table under the maps.
    Disagree {
        /// Run A's summary.
        a: PathBuf,
        /// Run B's summary.
        b: PathBuf,
        /// Write the table as JSON.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Training throughput (examples/s) and peak memory at fixed shapes: freeze none, bottom 3,
    /// head only; with and without the prefix cache. Threads: all cores (`RAYON_NUM_THREADS`
    /// sets fewer).
    Bench {
        #[arg(long)]
        model: PathBuf,
        #[arg(long, default_value_t = 16)]
        batch: usize,
        /// Sequence lengths, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "64,128")]
        seq: Vec<usize>,
        /// Timed steps per configuration (after one warm-up step).
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Also write the results as a JSON array.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Only these rows, comma separated: none, bottom3, bottom3-cache, head-only,
        /// head-only-cache.
        #[arg(long, value_delimiter = ',')]
        rows: Vec<String>,
    },
    /// Class probabilities of a text under a fine-tuned checkpoint.
    Predict {
        #[arg(long)]
        model: PathBuf,
        /// Fine-tuned weights (safetensors with a `classifier.*` head) written by `train --save-head`.
        #[arg(long)]
        head: Option<PathBuf>,
        #[arg(long)]
        text: Vec<String>,
        #[arg(long, default_value_t = 128)]
        max_len: usize,
    },
    /// Write a small random BERT (config.json, model.safetensors, tokenizer.json over a
    /// 22-word vocabulary) and a learnable two-class data.csv: smoke tests where the real model
    /// is too slow, such as WebGPU on a software adapter.
    Synthetic {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 32)]
        hidden: usize,
        #[arg(long, default_value_t = 2)]
        layers: usize,
        #[arg(long, default_value_t = 2)]
        heads: usize,
        #[arg(long, default_value_t = 240)]
        examples: usize,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

fn main() {
    malloc::keep_freed_memory();
    let cli = Cli::parse();
    if let Err(e) = pollster::block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { model } => {
            let dir = ModelDir::read(&model, None)?;
            let device = device::init(cli.device).await?;
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
        }
        Command::Embed { model, input, max_len, batch } => {
            let dir = ModelDir::read(&model, None)?;
            let device = device::init(cli.device).await?;
            let loaded = dir.load(None, &device)?;
            let text = std::fs::read_to_string(&input).with_context(|| format!("reading {}", input.display()))?;
            let lines: Vec<&str> = text.lines().collect();
            for e in loaded.embed(&lines, max_len, batch).await? {
                println!("{}", serde_json::to_string(&e)?);
            }
        }
        Command::Train { run, freeze, out, save_head, save_model, examples_out } => {
            let loaded = run.load()?;
            let layers = BertConfig::from_json(&loaded.dir.config)?.num_hidden_layers;
            let cfg = run.config(FreezePlan::parse(&freeze, layers)?, run.cache);
            if let Some(path) = examples_out {
                let (train, validation) = freezelab_core::train::examples(&loaded.dataset, &cfg);
                let split = serde_json::json!({ "labels": loaded.dataset.labels.names, "train": train, "validation": validation });
                std::fs::write(&path, serde_json::to_vec(&split)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let device = device::init(cli.device).await?;
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
        }
        Command::Probe { run, out, features_out } => {
            let device = device::init(cli.device).await?;
            probe::run(&run, out.as_deref(), features_out.as_deref(), &device).await?;
        }
        Command::Disagree { a, b, out } => probe::disagree(&a, &b, out.as_deref())?,
        Command::Sweep { run, out_dir, modes, plans } => {
            let device = device::init(cli.device).await?;
            let which = match plans {
                Some(list) => sweep::Plans::List(list),
                None if modes => sweep::Plans::Modes,
                None => sweep::Plans::Depths,
            };
            sweep::run(&run, &which, &out_dir, &device).await?;
            eprintln!("sweep: wrote sweep.csv, sweep.json, sweep-{{params,memory,time}}.svg in {}", out_dir.display());
        }
        Command::Bench { model, batch, seq, steps, json, rows } => {
            let dir = ModelDir::read(&model, None)?;
            let device = device::init(cli.device).await?.autodiff();
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
                    let r = bench::run(loaded.classifier, plan, *cache, &b, steps, &host).await?;
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
        }
        Command::Predict { model, head, text, max_len } => {
            anyhow::ensure!(!text.is_empty(), "give at least one --text");
            let dir = ModelDir::read(&model, head.as_deref())?;
            let labels = stored_label_names(&dir.weights)?;
            if labels.is_none() {
                eprintln!("note: these weights are not fine-tuned by FreezeLab: the classifier head is untrained, predictions are random");
            }
            let device = device::init(cli.device).await?;
            let loaded = dir.load(labels.as_ref().map(Vec::len), &device)?;
            let names = labels.unwrap_or_else(|| (0..loaded.classifier.num_labels()).map(|i| i.to_string()).collect());
            let texts: Vec<&str> = text.iter().map(String::as_str).collect();
            for (t, probs) in texts.iter().zip(loaded.predict(&texts, max_len).await?) {
                let best = freezelab_core::metrics::argmax(&probs);
                let probabilities: serde_json::Map<String, serde_json::Value> =
                    names.iter().zip(&probs).map(|(n, p)| (n.clone(), serde_json::json!(p))).collect();
                println!("{}", serde_json::json!({"text": t, "label": names[best], "probabilities": probabilities}));
            }
        }
        Command::Synthetic { out, hidden, layers, heads, examples, seed } => {
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
        }
    }
    Ok(())
}
