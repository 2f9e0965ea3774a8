//! `freezelab`: the native command line over freezelab-core.

mod commands;
mod data_arg;
mod host;
mod malloc;
mod model_dir;
mod probe;
mod run_args;
mod sweep;

use anyhow::Result;
use clap::{Parser, Subcommand};
use freezelab_core::device::Backend;
use freezelab_core::measured::CountingAllocator;

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
    Info(commands::Info),
    /// One JSON object per input line: {"text", "ids", "mean", "cls"} of the last hidden state.
    Embed(commands::Embed),
    /// Fine-tune with a freeze plan: JSON lines of events on stdout, progress on stderr.
    Train(commands::Train),
    /// Train all, freeze embeddings, bottom 2, 4, …, head only: table (CSV, JSON) and plot (SVG).
    Sweep(commands::Sweep),
    /// What each layer knows before training: a logistic-regression probe (C = 1) per block on
    /// the pretrained model's mean-pooled outputs of the training examples, scored on the
    /// validation examples (the examples `train` with the same sizes and seed uses).
    Probe(commands::Probe),
    /// The validation examples two runs disagree on (one right, the other wrong), from their
    /// `train --out` summaries, as the page's table under the maps.
    Disagree(commands::Disagree),
    /// Training throughput (examples/s) and peak memory at fixed shapes: freeze none, bottom 3,
    /// head only; with and without the prefix cache. Threads: all cores (`RAYON_NUM_THREADS`
    /// sets fewer).
    Bench(commands::Bench),
    /// Class probabilities of a text under a fine-tuned checkpoint.
    Predict(commands::Predict),
    /// Write a small random BERT (config.json, model.safetensors, tokenizer.json over a
    /// 22-word vocabulary) and a learnable two-class data.csv: smoke tests where the real model
    /// is too slow, such as WebGPU on a software adapter.
    Synthetic(commands::Synthetic),
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
        Command::Info(c) => c.run(cli.device).await,
        Command::Embed(c) => c.run(cli.device).await,
        Command::Train(c) => c.run(cli.device).await,
        Command::Sweep(c) => c.run(cli.device).await,
        Command::Probe(c) => c.run(cli.device).await,
        Command::Disagree(c) => c.run().await,
        Command::Bench(c) => c.run(cli.device).await,
        Command::Predict(c) => c.run(cli.device).await,
        Command::Synthetic(c) => c.run().await,
    }
}
