//! The tools the browser suites and the page's builds need, each installed when missing at a
//! pinned version: wasm-bindgen's CLI, Trunk and its wasm-opt, wasm-pack, geckodriver and
//! Debian's three engines; Trunk run with them.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::assets;
use crate::command::{gate, step, target_dir, wasm_target};

/// Trunk 0.22 needs a newer rustc than this toolchain's.
const TRUNK_VERSION: &str = "0.21.14";
/// The wasm-opt of the release bundles (npm's binaryen; Trunk.toml pins the same version).
const BINARYEN_VERSION: &str = "132.0.0";
/// What the project's users run the browser tests with.
const WASM_PACK_VERSION: &str = "0.15.1";
/// Firefox's WebDriver server (crates.io), for wasm-pack `--firefox` and the engines e2e.
const GECKODRIVER_VERSION: &str = "0.37.1";
/// The `wasm-bindgen` version in Cargo.lock: the test runner and Trunk's bindgen must match it.
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(assets::root().join("Cargo.lock"))?;
    let at = lock.find("name = \"wasm-bindgen\"\nversion = \"").context("wasm-bindgen is not in Cargo.lock")?;
    let rest = &lock[at + "name = \"wasm-bindgen\"\nversion = \"".len()..];
    Ok(rest[..rest.find('"').context("malformed Cargo.lock")?].to_string())
}

fn reports_version(program: &str, version: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(version))
}

/// Everything the browser suites need, installed when missing: the Rust web tools, wasm-pack,
/// geckodriver and Debian's three engines.
pub fn all() -> Result<()> {
    rust_web_tools()?;
    install("wasm-pack", WASM_PACK_VERSION, Build::ORCHESTRATOR)?;
    install("geckodriver", GECKODRIVER_VERSION, Build::ORCHESTRATOR)?;
    debian_browsers()
}

/// How a tool is compiled. What the tools compute is seconds next to the builds and browsers
/// they drive, so none gets LTO (Trunk's profile asks for fat LTO in one codegen unit, the
/// longest part of its cold install). wasm-bindgen rewrites every test and bundle wasm (tens of MB):
/// opt-level 1. Trunk and wasm-pack only orchestrate: opt-level 0.
struct Build {
    opt_level: &'static str,
    /// `--locked`, except for wasm-bindgen-cli: its own lockfile pins a webpki-roots that no
    /// longer resolves.
    locked: bool,
    /// Trunk without its default features: no TLS stack (ring, rustls) and no update check;
    /// it never downloads here (xtask installs wasm-bindgen and wasm-opt itself).
    default_features: bool,
}

impl Build {
    const BINDGEN: Build = Build { opt_level: "1", locked: false, default_features: true };
    const ORCHESTRATOR: Build = Build { opt_level: "0", locked: true, default_features: true };
    const TRUNK: Build = Build { opt_level: "0", locked: true, default_features: false };
}

/// `cargo install` of `tool` at exactly `version`, unless it already reports that version. The
/// installs share one build folder in the cache, so dependencies they have in common (same
/// versions and features) are compiled once, and a re-run after a failed install goes on from
/// where it stopped.
fn install(tool: &str, version: &str, build: Build) -> Result<()> {
    let program = if tool == "wasm-bindgen-cli" { "wasm-bindgen-test-runner" } else { tool };
    if reports_version(program, version) {
        return Ok(());
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["install", tool, "--version", &format!("={version}")]);
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "false").env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16");
    cmd.env("CARGO_PROFILE_RELEASE_OPT_LEVEL", build.opt_level);
    if build.locked {
        cmd.arg("--locked");
    }
    if !build.default_features {
        cmd.arg("--no-default-features");
    }
    let start = Instant::now();
    step(cmd.env("CARGO_TARGET_DIR", target_dir()?.with_file_name("tools-target")))?;
    eprintln!("xtask: {tool} {version} installed in {:.1} min", start.elapsed().as_secs_f64() / 60.0);
    Ok(())
}

/// wasm-bindgen-cli at the locked version, Trunk and the wasm-opt Trunk runs on the release
/// bundles (web/index.html), each installed only when missing (README gives the times).
pub fn rust_web_tools() -> Result<()> {
    wasm_target()?;
    install("wasm-bindgen-cli", &locked_wasm_bindgen()?, Build::BINDGEN)?;
    install("trunk", TRUNK_VERSION, Build::TRUNK)?;
    binaryen().map(|_| ())
}

/// npm's binaryen, whose wasm-opt Trunk runs on the release bundles (web/index.html, Trunk.toml
/// pins its version); installed once into the cache. Debian's binaryen (108) writes the
/// wasm-bindgen externref table's export against the other table, and the page fails to start.
fn binaryen() -> Result<PathBuf> {
    let dir = target_dir()?.with_file_name("binaryen").join(BINARYEN_VERSION);
    let bin = dir.join("node_modules/.bin");
    if !bin.join("wasm-opt").exists() {
        let package = format!("binaryen@{BINARYEN_VERSION}");
        step(Command::new("npm").args(["install", "--no-audit", "--no-fund", "--prefix"]).arg(&dir).arg(package))?;
    }
    Ok(bin)
}

/// Debian's engines and their drivers (as root, when missing): Chromium and chromedriver,
/// Firefox ESR, WebKitGTK's WebKitWebDriver and MiniBrowser, and the Xvfb MiniBrowser needs.
/// Without their recommends (half the packages: codecs, GStreamer's plugin sets, printing),
/// none of which a test uses; xvfb-run's xauth is one of them, so it is asked for by name.
fn debian_browsers() -> Result<()> {
    let packages = [
        ("/usr/bin/chromedriver", "chromium chromium-driver"),
        ("/usr/bin/firefox-esr", "firefox-esr"),
        ("/usr/bin/WebKitWebDriver", "webkit2gtk-driver"),
        ("/usr/bin/xvfb-run", "xvfb xauth"),
    ];
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(program, _)| !std::path::Path::new(program).exists())
        .flat_map(|(_, names)| names.split(' '))
        .collect();
    if !missing.is_empty() {
        step(Command::new("apt-get").arg("update"))
            .and_then(|()| {
                step(Command::new("apt-get").args(["install", "-y", "--no-install-recommends"]).args(&missing))
            })
            .with_context(|| format!("installing {} (Debian: apt-get install, as root)", missing.join(" ")))?;
    }
    Ok(())
}

/// Where `program` is on the PATH.
pub fn on_path(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("{program} is not on the PATH"))
}

/// Trunk, finding the pinned wasm-opt first on its PATH.
pub fn trunk(args: &[&str]) -> Result<Command> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(binaryen()?).chain(std::env::split_paths(&path)))?;
    let mut cmd = Command::new("trunk");
    cmd.args(args).env("PATH", path).env("CARGO_TARGET_DIR", target_dir()?).current_dir(assets::root());
    gate(&mut cmd)?;
    Ok(cmd)
}

/// `trunk build` of the release page into `out`, its URLs under `base` (`cargo xtask dist`).
pub fn build_page(out: &std::path::Path, base: &str) -> Result<()> {
    rust_web_tools()?;
    let out = out.to_str().context("non-UTF-8 path")?;
    step(&mut trunk(&["build", "--release", "--public-url", base, "--dist", out])?)
}
