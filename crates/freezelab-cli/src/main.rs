//! `freezelab`: the native command line over freezelab-core.

mod model_dir;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use freezelab_core::device::{self, Backend};
use freezelab_core::weights::stored_label_names;

use crate::model_dir::ModelDir;

#[derive(Parser)]
#[command(name = "freezelab", version, about = "Fine-tune BERT with frozen layers: inspect, embed, predict.")]
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
}

fn main() {
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
        Command::Predict { model, head, text, max_len } => {
            anyhow::ensure!(!text.is_empty(), "give at least one --text");
            let dir = ModelDir::read(&model, head.as_deref())?;
            if head.is_none() {
                eprintln!("note: no --head given: the classifier head is untrained, predictions are random");
            }
            let labels = stored_label_names(&dir.weights)?;
            let device = device::init(cli.device).await?;
            let loaded = dir.load(labels.as_ref().map(Vec::len), &device)?;
            let names = labels.unwrap_or_else(|| (0..loaded.classifier.num_labels()).map(|i| i.to_string()).collect());
            let texts: Vec<&str> = text.iter().map(String::as_str).collect();
            for (t, probs) in texts.iter().zip(loaded.predict(&texts, max_len).await?) {
                let best = probs.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
                let probabilities: serde_json::Map<String, serde_json::Value> =
                    names.iter().zip(&probs).map(|(n, p)| (n.clone(), serde_json::json!(p))).collect();
                println!(
                    "{}",
                    serde_json::json!({"text": t, "label": names[best], "probabilities": probabilities})
                );
            }
        }
    }
    Ok(())
}
