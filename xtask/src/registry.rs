//! Fetching packages with the ordinary registry clients, into a download cache so that re-runs
//! are offline.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Where downloaded packages are kept between runs (outside the work tree).
pub fn download_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("FREEZELAB_DOWNLOADS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var("HOME").context("HOME is not set")?).join(".cache/freezelab/downloads"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn run(mut cmd: Command, what: &str, tool: &str) -> Result<()> {
    let status = cmd.status().map_err(|e| {
        anyhow::anyhow!(
            "{what}: could not start `{tool}` ({e}); install it (Debian: apt-get install python3-pip / npm)"
        )
    })?;
    if !status.success() {
        bail!("{what} failed ({status}): is the package registry reachable?");
    }
    Ok(())
}

/// `pip download --no-deps NAME==VERSION`, returning the wheel's path.
pub fn pip_wheel(name: &str, version: &str) -> Result<PathBuf> {
    let dir = download_dir()?;
    let prefix = format!("{}-{version}-", name.replace('-', "_"));
    if let Some(found) = find(&dir, &prefix, ".whl")? {
        return Ok(found);
    }
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"]).arg(&dir).arg(format!("{name}=={version}"));
    run(cmd, &format!("pip download {name}=={version}"), "python3 -m pip")?;
    find(&dir, &prefix, ".whl")?
        .with_context(|| format!("pip reported success but no {prefix}*.whl in {}", dir.display()))
}

/// `npm pack NAME@VERSION`, returning the tarball's path.
pub fn npm_tarball(name: &str, version: &str) -> Result<PathBuf> {
    let dir = download_dir()?;
    let file = dir.join(format!("{}-{version}.tgz", name.trim_start_matches('@').replace('/', "-")));
    if file.exists() {
        return Ok(file);
    }
    let mut cmd = Command::new("npm");
    cmd.args(["pack", "--silent", "--pack-destination"]).arg(&dir).arg(format!("{name}@{version}"));
    run(cmd, &format!("npm pack {name}@{version}"), "npm")?;
    anyhow::ensure!(file.exists(), "npm reported success but {} is missing", file.display());
    Ok(file)
}

fn find(dir: &Path, prefix: &str, suffix: &str) -> Result<Option<PathBuf>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(prefix) && name.ends_with(suffix) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Every file of a .tgz whose path satisfies `keep`, as (path, bytes), sorted by path.
pub fn tar_gz_files(tgz: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<(String, Vec<u8>)>> {
    let file = std::fs::File::open(tgz).with_context(|| format!("opening {}", tgz.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        if keep(&path) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes)?;
            out.push((path, bytes));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
