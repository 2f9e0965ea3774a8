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
    Ok(
        PathBuf::from(std::env::var("HOME").context("HOME is not set")?)
            .join(".cache/freezelab/target"),
    )
}

fn cargo(args: &[&str]) -> Result<()> {
    step(
        Command::new(env!("CARGO"))
            .args(args)
            .env("CARGO_TARGET_DIR", target_dir()?)
            .current_dir(assets::root()),
    )
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
    cargo(&[
        "test",
        "--release",
        "--workspace",
        "--",
        "--include-ignored",
    ])?;
    cargo(&[
        "build",
        "-p",
        "freezelab-core",
        "--target",
        "wasm32-unknown-unknown",
    ])?;
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
    run(&[
        "embed",
        "--model",
        model,
        "--input",
        texts.to_str().context("path")?,
        "--max-len",
        "32",
    ])
}

/// Runs `freezelab bench` and, when `python` can import torch and transformers, the PyTorch
/// reference on the same shapes; prints both and their ratio.
pub fn bench(steps: usize, python: &str) -> Result<()> {
    assets::prepare()?;
    let root = assets::root();
    let model = root.join("static/models/minilm-l6");
    let out = target_dir()?.join("bench-burn.json");
    let steps_arg = steps.to_string();
    cargo(&[
        "run",
        "--release",
        "--quiet",
        "-p",
        "freezelab-cli",
        "--",
        "bench",
        "--model",
        model.to_str().context("path")?,
        "--steps",
        &steps_arg,
        "--json",
        out.to_str().context("path")?,
    ])?;
    let burn: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&out)?)?;
    let has_torch = Command::new(python)
        .args(["-c", "import torch, transformers"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_torch {
        eprintln!("xtask bench: PyTorch reference skipped: `{python}` cannot import torch and transformers (set FREEZELAB_PYTHON)");
        return Ok(());
    }
    let script = root.join("tests/reference/bench_torch.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(&model)
        .args(["--steps", &steps_arg])
        .output()
        .context("running the PyTorch reference")?;
    if !output.status.success() {
        bail!(
            "PyTorch reference failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let torch: Vec<serde_json::Value> = String::from_utf8(output.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    println!(
        "\n{:>10} {:>6} {:>5} {:>12} {:>12} {:>8}",
        "freeze", "cache", "seq", "burn ex/s", "torch ex/s", "ratio"
    );
    for (b, t) in burn.iter().zip(&torch) {
        let (be, te) = (
            b["examples_per_second"].as_f64().unwrap_or(0.0),
            t["examples_per_second"].as_f64().unwrap_or(0.0),
        );
        println!(
            "{:>10} {:>6} {:>5} {:>12.2} {:>12.2} {:>8.2}",
            b["freeze"].as_str().unwrap_or("?"),
            b["cache"],
            b["seq_len"],
            be,
            te,
            be / te.max(1e-12)
        );
    }
    Ok(())
}
