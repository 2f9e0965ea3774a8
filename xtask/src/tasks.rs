//! `cargo xtask test` and `cargo xtask demo`: what README's two commands run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::assets;

/// Builds share one target folder outside the work tree, so a re-run (or CI on the same
/// machine) finds them; nothing depends on it being there.
fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    Ok(PathBuf::from(std::env::var("HOME").context("HOME is not set")?).join(".cache/freezelab/target"))
}

fn cargo(args: &[&str]) -> Result<()> {
    step(Command::new(env!("CARGO")).args(args).env("CARGO_TARGET_DIR", target_dir()?).current_dir(assets::root()))
}

fn step(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

fn wasm_target() -> Result<()> {
    step(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

pub fn test() -> Result<()> {
    wasm_target()?;
    assets::prepare()?;
    // Tests that need the default assets fail (not skip) when they are missing.
    std::env::set_var("FREEZELAB_REQUIRE_ASSETS", "1");
    cargo(&["test", "--release", "--workspace", "--", "--include-ignored"])?;
    cargo(&["build", "-p", "freezelab-core", "--target", "wasm32-unknown-unknown"])?;
    eprintln!("xtask: all tests passed");
    Ok(())
}

pub fn demo() -> Result<()> {
    assets::prepare()?;
    let model = assets::root().join("static/models/minilm-l6");
    let model = model.to_str().context("non-UTF-8 path")?;
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--release", "--quiet", "-p", "freezelab-cli", "--"];
        all.extend_from_slice(args);
        cargo(&all)
    };
    run(&["info", "--model", model])?;
    let texts = assets::root().join("tests/fixtures/demo_texts.txt");
    run(&["embed", "--model", model, "--input", texts.to_str().context("path")?, "--max-len", "32"])
}
