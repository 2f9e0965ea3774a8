//! Shared by the integration tests: where the default assets are, and whether their absence
//! is a failure (under `cargo xtask test`) or a loudly reported skip (plain `cargo test`).

// Each test binary uses a subset of these helpers.
#![allow(dead_code)]

pub mod fused_cases;
pub mod recorder;
pub mod replicas;
pub mod tiny_run;
pub mod train_step;
pub mod training;

use std::path::PathBuf;

/// The checkout `cargo test` runs in (not the path compiled in: checkouts sharing one target
/// folder may run each other's test binaries).
pub fn repo_root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test")).join("../..")
}

/// The default model folder, or `None` (with a message) when assets are not prepared.
pub fn default_model_dir(test: &str) -> Option<PathBuf> {
    let dir = repo_root().join("static/models/minilm-l6");
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    if std::env::var_os("FREEZELAB_REQUIRE_ASSETS").is_some() {
        panic!("{test}: default assets missing in {}: run `cargo xtask assets`", dir.display());
    }
    skip(test, "default assets missing (run `cargo xtask assets`, or `cargo xtask test`)");
    None
}

/// Reports a test that returns without checking anything: on stderr, and as a line in the file
/// `FREEZELAB_SKIP_LOG` names, which `cargo xtask test` counts as skipped rather than passed.
pub fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
    if let Some(log) = std::env::var_os("FREEZELAB_SKIP_LOG") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("skip log");
        writeln!(file, "{test}: {why}").expect("skip log");
    }
}
