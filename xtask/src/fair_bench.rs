//! `cargo xtask bench`: Burn's training step against its PyTorch twin, fairly: the same shapes,
//! the same thread count on both sides (set, then read back), rows matched by label, several
//! rounds alternating which side runs first, and medians with their spread.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::command::{freezelab_binary, step, target_dir, Backends};

/// A row of either side: freeze label, whether the prefix is cached, tokens per example.
type Label = (String, bool, u64);

/// What one side measured for each row, over the rounds.
#[derive(Default)]
struct Side {
    examples_per_second: BTreeMap<Label, Vec<f64>>,
    threads: Option<u64>,
}

impl Side {
    /// Adds one round's rows; a round must hold the same rows as the first.
    fn add(&mut self, rows: &[serde_json::Value], who: &str) -> Result<()> {
        let labels: Vec<Label> = rows.iter().map(label).collect::<Result<_>>()?;
        let set: std::collections::BTreeSet<&Label> = labels.iter().collect();
        if !self.examples_per_second.is_empty() && !set.into_iter().eq(self.examples_per_second.keys()) {
            bail!("{who}: a round measured other rows than the first ({labels:?})");
        }
        for (label, row) in labels.into_iter().zip(rows) {
            let ex_s = row["examples_per_second"].as_f64().context("examples_per_second")?;
            self.examples_per_second.entry(label).or_default().push(ex_s);
        }
        Ok(())
    }
}

/// A row's label, as both sides and the browser write it.
pub fn label(row: &serde_json::Value) -> Result<Label> {
    Ok((
        row["freeze"].as_str().context("a row without its freeze label")?.to_string(),
        row["cache"].as_bool().context("a row without cache")?,
        row["seq_len"].as_u64().context("a row without seq_len")?,
    ))
}

/// The median and the range of `values` (not empty).
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    (median, sorted[0], sorted[n - 1])
}

/// Runs `rounds` rounds (Burn then PyTorch, then the other way round, …) of `steps` timed steps
/// per row on `threads` threads each, and prints each row's medians, ranges and ratio. Without
/// `python` (torch and transformers not importable), Burn's rows alone.
pub fn compare(model: &std::path::Path, steps: usize, rounds: usize, python: Option<&str>) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).to_string();
    let (mut burn, mut torch) = (Side::default(), Side::default());
    let model_arg = model.to_str().context("path")?;
    let steps = steps.to_string();
    // Built once: each round runs the same binary.
    let binary = freezelab_binary(Backends::WithGpu)?;
    for round in 0..rounds {
        let torch_first = round % 2 == 1;
        for side in if torch_first { ["torch", "burn"] } else { ["burn", "torch"] } {
            match (side, python) {
                ("burn", _) => {
                    let out = target_dir()?.join(format!("bench-burn-{round}.json"));
                    step(Command::new(&binary).env("RAYON_NUM_THREADS", &threads).args([
                        "bench",
                        "--model",
                        model_arg,
                        "--steps",
                        &steps,
                        "--json",
                        out.to_str().context("path")?,
                    ]))?;
                    burn.add(&serde_json::from_slice::<Vec<serde_json::Value>>(&std::fs::read(&out)?)?, "burn")?;
                    burn.threads = Some(threads.parse()?);
                }
                ("torch", Some(python)) => {
                    let rows = torch_round(python, model, &steps, &threads)?;
                    torch.threads = rows.first().and_then(|r| r["torch_threads"].as_u64());
                    torch.add(&rows, "torch")?;
                }
                _ => {}
            }
        }
    }
    if python.is_some() && !burn.examples_per_second.keys().eq(torch.examples_per_second.keys()) {
        bail!(
            "Burn and PyTorch measured different rows: {:?} against {:?}",
            burn.examples_per_second.keys().collect::<Vec<_>>(),
            torch.examples_per_second.keys().collect::<Vec<_>>()
        );
    }
    print_table(&burn, &torch, rounds);
    Ok(())
}

/// One PyTorch round on `threads` threads, its rows.
fn torch_round(python: &str, model: &std::path::Path, steps: &str, threads: &str) -> Result<Vec<serde_json::Value>> {
    let script = crate::assets::root().join("tests/reference/bench_torch.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(model)
        .args(["--steps", steps, "--threads", threads])
        .output()
        .context("running the PyTorch reference")?;
    if !output.status.success() {
        bail!("PyTorch reference failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?)
}

fn print_table(burn: &Side, torch: &Side, rounds: usize) {
    let show = |t: Option<u64>| t.map_or("-".to_string(), |t| t.to_string());
    println!(
        "\nexamples/s over {rounds} rounds (median [min–max]); threads: Burn {} (RAYON_NUM_THREADS), PyTorch {} (torch.set_num_threads, read back)",
        show(burn.threads),
        show(torch.threads)
    );
    println!(
        "the CLI keeps freed memory on glibc's heap (crates/freezelab-cli/src/malloc.rs); the PyTorch twin runs on the default allocator"
    );
    println!(
        "{:>10} {:>6} {:>5} {:>22} {:>22} {:>7} {:>8}",
        "freeze", "cache", "seq", "burn ex/s", "torch ex/s", "ratio", "faster"
    );
    for (label, values) in &burn.examples_per_second {
        let (freeze, cache, seq) = label;
        let (b, b_min, b_max) = spread(values);
        let burn_cell = format!("{b:.2} [{b_min:.2}–{b_max:.2}]");
        let (torch_cell, ratio, verdict) = match torch.examples_per_second.get(label) {
            Some(t) => {
                let (t, t_min, t_max) = spread(t);
                // Faster only when the medians say so; "always" when every round did.
                let verdict = match (b > t, b_min > t_max) {
                    (true, true) => "always",
                    (true, false) => "median",
                    (false, _) => "no",
                };
                (format!("{t:.2} [{t_min:.2}–{t_max:.2}]"), format!("{:.2}", b / t), verdict)
            }
            None => ("-".into(), "-".into(), "-"),
        };
        println!("{freeze:>10} {cache:>6} {seq:>5} {burn_cell:>22} {torch_cell:>22} {ratio:>7} {verdict:>8}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(spread(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }

    #[test]
    fn rounds_must_measure_the_same_rows() {
        let row = |freeze: &str| serde_json::json!({"freeze": freeze, "cache": false, "seq_len": 64, "examples_per_second": 1.0});
        let mut side = Side::default();
        side.add(&[row("none"), row("head-only")], "burn").unwrap();
        side.add(&[row("none"), row("head-only")], "burn").unwrap();
        assert!(side.add(&[row("none"), row("emb,0-2")], "burn").is_err());
        assert_eq!(side.examples_per_second[&("none".to_string(), false, 64)].len(), 2);
    }
}
