//! Everything that runs in a browser: the wasm tests in three engines, `serve`, the end-to-end
//! tests and the page's timed scripts.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::assets;
use crate::command::{
    counted, freezelab_binary, gate, run_tests, side_by_side, step, target_dir, Backends, Lane, TestCounts,
};
use crate::tools::{self, on_path, rust_web_tools, trunk};

/// The engines the page's story runs in (tests/e2e/engines.mjs).
const ENGINES: [&str; 3] = ["chromium", "firefox", "webkit"];
/// Where the end-to-end test serves the page (the README's serve command uses 8080).
const E2E_PORT: u16 = 8093;
/// The sub-path the end-to-end tests serve the page from, as a static host would (the static
/// build's releases are copies of that build).
pub const E2E_BASE: &str = "/freezelab/";

fn e2e_url() -> String {
    format!("http://127.0.0.1:{E2E_PORT}{E2E_BASE}")
}

/// The browser suites: the core (tests/wasm.rs), the worker's session (tests/session.rs) and the
/// page's components (web/tests), run as the project's users run them: `wasm-pack test
/// --headless --chrome CRATE` (README). The runner's timeout comes from .cargo/config.toml's
/// [env], as for a user typing README's commands.
const SUITES: [(&str, &str); 3] =
    [("crates/freezelab-core", "wasm"), ("crates/freezelab-worker", "session"), ("web", "components")];

/// The wasm builds and the browser suites. Trunk starts building the page first (it is served
/// for [`end_to_end`]) and the suites run beside it: cargo builds one profile at a time (its
/// build folder's lock), so the page's own profile, and the suites' runs in the browsers, fill
/// what the other builds leave of the cores.
pub fn suites_beside_page_build() -> Result<(TestCounts, Server)> {
    let server = start_server()?;
    let chromium = chromium_suites()?;
    Ok((chromium + side_by_side(other_engines_suites()?)?, server))
}

/// The browser suites in headless Chromium, which builds them.
fn chromium_suites() -> Result<TestCounts> {
    // Chromium runs with WebGPU on (webdriver.json): a missing adapter is a failure here.
    let envs = [("FREEZELAB_REQUIRE_WEBGPU", "1")];
    let mut total = TestCounts::default();
    for (crate_dir, test) in SUITES {
        total = total + run_tests(&mut wasm_pack(Engine::Chrome, crate_dir, test)?, &envs)?;
    }
    Ok(total)
}

/// The same suites in Firefox (Gecko) and WebKitGTK (Safari's engine), one lane each. They offer
/// no WebGPU adapter here: the WebGPU test prints that it is skipped (shown with --nocapture),
/// and is counted so.
fn other_engines_suites() -> Result<Vec<Lane<'static>>> {
    let mut lanes = Vec::new();
    for engine in [Engine::Firefox, Engine::WebKit] {
        let mut lane: Lane = Vec::new();
        for (crate_dir, test) in SUITES {
            let mut cmd = wasm_pack(engine, crate_dir, test)?;
            cmd.args(["--", "--nocapture"]);
            lane.push(Box::new(move || run_tests(&mut cmd, &[])));
        }
        lanes.push(lane);
    }
    Ok(lanes)
}

/// The engines wasm-pack drives here.
#[derive(Clone, Copy)]
enum Engine {
    Chrome,
    Firefox,
    /// WebKitWebDriver as wasm-pack's `safaridriver`, starting MiniBrowser (each crate's
    /// webdriver.json), which needs a display: an Xvfb.
    WebKit,
}

/// `wasm-pack test --release --headless` in `engine`. `--release`: the suites then share Burn's
/// wasm32 build with the page's (Trunk builds release), so Burn is compiled for wasm once per
/// run, not twice.
fn wasm_pack(engine: Engine, crate_dir: &str, test: &str) -> Result<Command> {
    let mut cmd = match engine {
        Engine::WebKit => {
            let mut cmd = Command::new("xvfb-run");
            cmd.args(["-a", "wasm-pack"]);
            cmd
        }
        _ => Command::new("wasm-pack"),
    };
    cmd.args(["test", "--release", "--headless"]);
    match engine {
        Engine::Chrome => cmd.args(["--chrome", "--chromedriver", "/usr/bin/chromedriver"]),
        // Named, or wasm-pack would download one.
        Engine::Firefox => cmd.args(["--firefox", "--geckodriver"]).arg(on_path("geckodriver")?),
        Engine::WebKit => cmd.args(["--safari", "--safaridriver", "/usr/bin/WebKitWebDriver"]),
    };
    cmd.args([crate_dir, "--test", test]);
    gate(&mut cmd)?;
    Ok(cmd)
}

/// What crates/freezelab-core/tests/wasm_bench.rs printed in headless Chromium (one worker).
pub struct WasmBench {
    /// The training step's rows (`BENCH {json}` lines).
    pub steps: Vec<serde_json::Value>,
    /// The matrix products, the page's kernel against Burn's (`MATMUL {json}` lines).
    pub products: Vec<serde_json::Value>,
}

/// Runs crates/freezelab-core/tests/wasm_bench.rs in headless Chromium.
pub fn wasm_bench() -> Result<WasmBench> {
    tools::all()?;
    let mut cmd = wasm_pack(Engine::Chrome, "crates/freezelab-core", "wasm_bench")?;
    cmd.args(["--features", "wasm-bench", "--", "--nocapture"])
        .env("CARGO_TARGET_DIR", target_dir()?)
        .current_dir(assets::root());
    eprintln!("xtask: {cmd:?}");
    let output = cmd.output().context("running wasm-pack")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("the browser bench failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let lines = |prefix: &str| -> Result<Vec<serde_json::Value>> {
        stdout
            .lines()
            .filter_map(|line| line.trim().strip_prefix(prefix))
            .map(|json| serde_json::from_str(json).with_context(|| format!("a {prefix}line")))
            .collect()
    };
    Ok(WasmBench { steps: lines("BENCH ")?, products: lines("MATMUL ")? })
}

/// `cargo xtask serve`: assets, tools, then Trunk serves the release page on 127.0.0.1:8080.
pub fn serve(port: u16) -> Result<()> {
    assets::prepare()?;
    rust_web_tools()?;
    let port = port.to_string();
    step(&mut trunk(&["serve", "--release", "--port", &port])?)
}

/// Serves the built page in the background until dropped.
pub struct Server {
    child: Child,
    log_path: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts building the release page, to serve it as `cargo xtask serve` does (`trunk serve`, with
/// its Content-Security-Policy) until dropped, with the Playwright scripts (tests/e2e) ready to
/// run; [`Server::ready`] waits for it.
fn start_server() -> Result<Server> {
    tools::all()?;
    step(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(e2e_dir()))?;
    // `trunk serve` builds before it answers (once: a separate `trunk build` would run wasm-opt
    // on both bundles twice); its log tells why when the build fails.
    let log_path = target_dir()?.join("trunk-serve.log");
    let log = std::fs::File::create(&log_path)?;
    let port = E2E_PORT.to_string();
    let child = trunk(&["serve", "--release", "--port", &port, "--public-url", E2E_BASE])?
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting trunk serve")?;
    Ok(Server { child, log_path })
}

impl Server {
    /// Waits until the page is built and served.
    fn ready(mut self) -> Result<Server> {
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", E2E_PORT)).is_err() {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                bail!(
                    "trunk serve stopped ({status}) before serving the page:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            if start.elapsed() > Duration::from_secs(3600) {
                bail!("trunk serve built for an hour without serving the page ({})", self.log_path.display());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(self)
    }
}

fn e2e_dir() -> PathBuf {
    assets::root().join("tests/e2e")
}

/// "Train both" at the page's CPU defaults, timed in headless Chromium (tests/e2e/demo-budget.mjs):
/// the `DEMO {json}` line it printed.
pub fn demo_budget() -> Result<serde_json::Value> {
    timing_script("demo-budget.mjs", &[], "DEMO ")
}

/// One run training everything in the page's workers, on 1 and on `workers` workers, timed in
/// `engine` (tests/e2e/page-bench.mjs): the `PAGEBENCH {json}` line it printed.
pub fn page_bench(workers: usize, engine: &str) -> Result<serde_json::Value> {
    timing_script("page-bench.mjs", &[&workers.to_string(), engine], "PAGEBENCH ")
}

/// Serves the page, runs a timing script of tests/e2e against it, and reads the JSON it printed
/// after `prefix`.
fn timing_script(script: &str, args: &[&str], prefix: &str) -> Result<serde_json::Value> {
    let _server = start_server()?.ready()?;
    let output = Command::new("node")
        .arg(script)
        .arg(e2e_url())
        .args(args)
        .current_dir(e2e_dir())
        .output()
        .context("running node")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix(prefix)).with_context(|| format!("no {prefix}line"))?;
    Ok(serde_json::from_str(line)?)
}

/// Drives the page `server` serves with Playwright (tests/e2e), once it is built. Returns the
/// checks' counts; screenshots land in the target folder's `e2e-screenshots`.
pub fn end_to_end(server: Server) -> Result<TestCounts> {
    let _server = server.ready()?;
    let e2e = e2e_dir();
    let shots: PathBuf = target_dir()?.join("e2e-screenshots");
    // WebGPU here is a software adapter: its run uses the small random model and data, loaded
    // through the page's file pickers.
    let synthetic = target_dir()?.join("e2e-synthetic");
    let freezelab = freezelab_binary(Backends::CpuOnly)?;
    step(Command::new(&freezelab).arg("synthetic").arg("--out").arg(&synthetic))?;
    let url = e2e_url();
    let synthetic = synthetic.to_str().context("non-UTF-8 path")?;
    // A script's run as a lane's job: its `ok`/`FAIL` lines counted.
    let checks = |mut cmd: Command| {
        move || -> Result<TestCounts> {
            let (passed, failed) = counted(&mut cmd, |line| {
                (usize::from(line.starts_with("ok  ")), usize::from(line.starts_with("FAIL")))
            })?;
            Ok(TestCounts { passed, failed, skipped: 0 })
        }
    };
    let script = |args: &[&str]| {
        let mut cmd = Command::new("node");
        cmd.args(args).env("SHOTS", &shots).env("FREEZELAB", &freezelab).current_dir(&e2e);
        checks(cmd)
    };
    // The playground's stories alone: they check the page's main thread and stop runs midway,
    // which another page beside them would slow.
    let mut total = script(&["playground.mjs", &url, "cpu"])()?;
    total = total + script(&["playground.mjs", &url, "webgpu", synthetic])()?;
    // The rest, in two lanes side by side: bad input and cache keys on the served page; the
    // static build from a plain file server, under a sub-path, online and offline, and an update
    // from one release to the next (copies of the page `trunk serve` built, Trunk.toml's dist,
    // under the same base); then the page's story in each engine.
    let releases = crate::dist::two_releases(&assets::root().join("dist"))?;
    let first = releases[0].to_str().context("non-UTF-8 path")?;
    let served: Lane = vec![
        Box::new(script(&["bad-input.mjs", &url, synthetic])),
        Box::new(script(&["cache-keys.mjs", &url, synthetic])),
    ];
    let mut static_build: Lane = vec![Box::new(checks(static_offline(&releases)?))];
    for engine in ENGINES {
        static_build.push(Box::new(script(&["engines.mjs", engine, first])));
    }
    total = total + side_by_side(vec![served, static_build])?;
    eprintln!("xtask: screenshots in {}", shots.display());
    Ok(total)
}

/// tests/e2e/static-offline.mjs on two releases of the static build under /freezelab/.
fn static_offline([first, next]: &[PathBuf; 2]) -> Result<Command> {
    let mut cmd = Command::new("node");
    cmd.arg("static-offline.mjs").arg(first).arg(next);
    cmd.env("SHOTS", target_dir()?.join("e2e-screenshots")).current_dir(e2e_dir());
    Ok(cmd)
}

/// The static build's first and repeat visit, timed by tests/e2e/static-offline.mjs: the
/// `STATIC {json}` line it printed.
pub fn static_visits() -> Result<serde_json::Value> {
    tools::all()?;
    step(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(e2e_dir()))?;
    let built = target_dir()?.join("e2e-static/trunk");
    tools::build_page(&built, E2E_BASE)?;
    let output = static_offline(&crate::dist::two_releases(&built)?)?.output().context("running node")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("static-offline.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let line = stdout.lines().find_map(|l| l.strip_prefix("STATIC ")).context("no STATIC line")?;
    Ok(serde_json::from_str(line)?)
}
