//! Running commands: the shared target folder, each command echoed and its failure an error, the
//! lint gate every build goes through under `cargo xtask test`, and test counts read off the
//! harnesses' output.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};

use crate::assets;

/// Builds share one target folder outside the work tree, so a re-run (or CI on the same
/// machine) finds them; nothing depends on it being there.
pub fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    Ok(PathBuf::from(std::env::var("HOME").context("HOME is not set")?).join(".cache/freezelab/target"))
}

pub fn cargo(args: &[&str]) -> Result<()> {
    step(Command::new(env!("CARGO")).args(args).env("CARGO_TARGET_DIR", target_dir()?).current_dir(assets::root()))
}

/// Set by `cargo xtask test` ([`testing`]): see [`gate`].
static TESTING: AtomicBool = AtomicBool::new(false);

/// From now on, every build goes through the lint gate.
pub fn testing() {
    TESTING.store(true, Ordering::Relaxed);
}

/// Under `cargo xtask test`, every build of the workspace's crates (cargo's native one,
/// wasm-pack's, Trunk's) compiles them through clippy-driver with warnings as errors, as
/// `cargo clippy -- -D warnings` would: the lint gate costs no separate check of Burn's
/// dependency tree (natively and for wasm32), and a warning fails the build of its crate.
pub fn gate(cmd: &mut Command) -> Result<&mut Command> {
    if TESTING.load(Ordering::Relaxed) {
        let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().context("running rustc")?;
        let driver = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim()).join("bin/clippy-driver");
        if !driver.exists() {
            step(Command::new("rustup").args(["component", "add", "clippy"]))?;
        }
        // cargo-clippy hands clippy-driver its arguments so, separated by this marker.
        cmd.env("RUSTC_WORKSPACE_WRAPPER", driver).env("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__");
    }
    Ok(cmd)
}

/// Which backends a native build has.
#[derive(Clone, Copy)]
pub enum Backends {
    /// The CPU and Burn's wgpu (the default features): benches and `--device wgpu`.
    WithGpu,
    /// The CPU only: `cargo xtask test`'s native build. CI has no GPU, so wgpu, cubecl and their
    /// kernels are not compiled natively (they would more than double the cold native build:
    /// BENCHMARKS.md, "CI time"); the GPU kernels are tested on the browser suites' WebGPU, and
    /// natively where an adapter exists by `cargo test --release -p freezelab-core`.
    CpuOnly,
}

impl Backends {
    pub fn cargo_args(self) -> &'static [&'static str] {
        match self {
            Backends::WithGpu => &[],
            Backends::CpuOnly => &["--no-default-features"],
        }
    }
}

/// Builds the workspace's binaries (always the whole workspace, so features unify the same way
/// as in `cargo test --workspace` and nothing is rebuilt) and returns the `freezelab` binary.
pub fn freezelab_binary(backends: Backends) -> Result<PathBuf> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--release", "--workspace", "--bins"]).args(backends.cargo_args());
    step(gate(&mut cmd)?.env("CARGO_TARGET_DIR", target_dir()?).current_dir(assets::root()))?;
    Ok(target_dir()?.join("release").join(format!("freezelab{}", std::env::consts::EXE_SUFFIX)))
}

pub fn step(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

pub fn wasm_target() -> Result<()> {
    step(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

thread_local! {
    /// Set on a lane's thread ([`side_by_side`]): lanes run at once, so each command's output is
    /// held and printed whole when it ends, instead of two logs interleaving line by line.
    static HELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a test command, echoing its output; `count` reads (passed, failed) off each line. Fails
/// when the command does, after printing the counts so far.
pub fn counted(cmd: &mut Command, count: impl Fn(&str) -> (usize, usize)) -> Result<(usize, usize)> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let held = HELD.get();
    let mut out = format!("xtask: {cmd:?}\n");
    if held {
        cmd.stderr(Stdio::piped());
    } else {
        eprint!("{out}");
    }
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(child.stdout.take().context("stdout")?).lines() {
        let line = line?;
        if held {
            out.push_str(&line);
            out.push('\n');
        } else {
            println!("{line}");
        }
        let (p, f) = count(&line);
        passed += p;
        failed += f;
    }
    let status = child.wait()?;
    if let Some(stderr) = stderr {
        out.push_str(&stderr.join().unwrap_or_default());
        println!("{out}");
    }
    if !status.success() {
        println!("tests: {passed} passed, {failed} failed");
        bail!("{cmd:?} failed ({status})");
    }
    Ok((passed, failed))
}

/// A sequence of test commands run one after another on its own thread.
pub type Lane<'a> = Vec<Box<dyn FnOnce() -> Result<TestCounts> + Send + 'a>>;

/// Runs the lanes side by side and sums their counts; every lane runs to its end, and the
/// first failure is the error. For tests that each leave a core idle (one single-threaded page
/// on a 2-core machine) and check no timings.
pub fn side_by_side(lanes: Vec<Lane>) -> Result<TestCounts> {
    let results: Vec<Result<TestCounts>> = std::thread::scope(|scope| {
        let threads: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                scope.spawn(move || {
                    HELD.set(true);
                    lane.into_iter().try_fold(TestCounts::default(), |total, test| Ok(total + test()?))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a lane panicked")))).collect()
    });
    results.into_iter().try_fold(TestCounts::default(), |total, lane| Ok(total + lane?))
}

/// Tests counted by outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestCounts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl std::ops::Add for TestCounts {
    type Output = TestCounts;
    fn add(self, o: TestCounts) -> TestCounts {
        TestCounts { passed: self.passed + o.passed, failed: self.failed + o.failed, skipped: self.skipped + o.skipped }
    }
}

impl std::fmt::Display for TestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}

/// `cargo test ARGS`, echoing its output and summing its `test result` lines. A test that
/// returns early without checking anything writes a line to `FREEZELAB_SKIP_LOG` (the tests'
/// `skip` helper): those are counted as skipped, not passed.
pub fn cargo_test(args: &[&str], envs: &[(&str, &str)]) -> Result<TestCounts> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("test").args(args);
    run_tests(gate(&mut cmd)?, envs)
}

/// Runs a command that runs cargo's test harnesses (cargo itself, or wasm-pack), counting.
pub fn run_tests(cmd: &mut Command, envs: &[(&str, &str)]) -> Result<TestCounts> {
    // One log per run: lanes run suites at once ([`side_by_side`]).
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let skip_log = target_dir()?.join(format!("skipped-tests-{}.log", RUNS.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(target_dir()?)?;
    std::fs::write(&skip_log, "")?;
    cmd.envs(envs.iter().copied())
        .env("CARGO_TARGET_DIR", target_dir()?)
        .env("FREEZELAB_SKIP_LOG", &skip_log)
        .current_dir(assets::root());
    // A browser test cannot write the log: it prints `SKIPPED why` (shown with --nocapture).
    let browser_skips = std::cell::Cell::new(0);
    let (passed, failed) = counted(cmd, |line| {
        if line.trim_start().starts_with("SKIPPED ") {
            browser_skips.set(browser_skips.get() + 1);
        }
        let Some(rest) = line.strip_prefix("test result: ") else { return (0, 0) };
        let count = |word: &str| {
            rest.split(';')
                .find_map(|part| part.trim().strip_suffix(word)?.trim().rsplit(' ').next()?.parse::<usize>().ok())
                .unwrap_or(0)
        };
        (count("passed"), count("failed"))
    })?;
    let skips = std::fs::read_to_string(&skip_log)?;
    std::fs::remove_file(&skip_log)?;
    for line in skips.lines() {
        println!("skipped: {line}");
    }
    let skipped = skips.lines().count() + browser_skips.get();
    Ok(TestCounts { passed: passed.saturating_sub(skipped), failed, skipped })
}
