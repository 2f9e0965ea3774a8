//! `cargo xtask dist`: the page as a folder any static file server serves as it is (GitHub
//! Pages, a university web folder, `python3 -m http.server`), from any sub-path, and that works
//! offline after the first visit through its service worker (web/sw.js).
//!
//! What `trunk serve` adds per response becomes part of the files: the Content-Security-Policy
//! is a `<meta>` in the page, with the start-up script allowed by its hash instead of a nonce;
//! `frame-ancestors`, which a `<meta>` policy cannot carry, is left to the host (README). The
//! service worker's version is a hash of every other file, so a new release is never mixed
//! with an old one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::assets;
use crate::tools;

/// GitHub Pages refuses files over 100 MB.
const LARGEST_FILE: u64 = 100 * 1000 * 1000;

/// Builds the release page under `base` (a path such as `/freezelab/`, or `./` for relative
/// URLs) into `out`, ready to copy to a host. Prints its size.
pub fn dist(out: &Path, base: &str) -> Result<()> {
    assets::prepare()?;
    tools::build_page(out, base)?;
    finish(out)?;
    let (files, bytes) = size(out)?;
    println!(
        "dist: {} ({files} files, {:.1} MB): copy it to any static host, served at {base}",
        out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}

/// Turns Trunk's output in `out` into the static folder: only what the page loads, the policy
/// in the page, the service worker with its version and file list.
pub fn finish(out: &Path) -> Result<()> {
    drop_unloaded(out)?;
    let index = out.join("index.html");
    let html = std::fs::read_to_string(&index).context("index.html")?;
    let html = with_meta_policy(&html, &content_security_policy()?)?;
    std::fs::write(&index, html)?;
    let mut files = listed(out)?;
    files.retain(|f| f != "sw.js");
    let template = std::fs::read_to_string(assets::root().join("web/sw.js"))?;
    let version = version(out, &files, &template)?;
    // The page knows it was built to work offline by this tag (the dev server's page has none).
    let html = std::fs::read_to_string(&index)?;
    let tag = format!("<meta name=\"freezelab-version\" content=\"{version}\">");
    let html = html.replacen("<head>", &format!("<head>\n  {tag}"), 1);
    std::fs::write(&index, html)?;
    // The scope's own URL is the page too (`/freezelab/` serves index.html).
    let mut urls = vec!["./".to_string()];
    urls.extend(files.iter().map(|f| format!("./{f}")));
    let worker = template
        .replace("__FREEZELAB_VERSION__", &version)
        .replace("[/* __FREEZELAB_FILES__ */]", &serde_json::to_string(&urls)?);
    std::fs::write(out.join("sw.js"), worker)?;
    for file in &files {
        let bytes = std::fs::metadata(out.join(file))?.len();
        if bytes > LARGEST_FILE {
            bail!("{file} is {bytes} bytes, over the 100 MB a file may have on GitHub Pages");
        }
    }
    Ok(())
}

/// The f32 copy of a model beside its half-precision one: the page downloads the latter.
fn drop_unloaded(out: &Path) -> Result<()> {
    let models = out.join("static/models");
    for entry in std::fs::read_dir(&models).with_context(|| format!("{}", models.display()))? {
        let dir = entry?.path();
        if dir.join("model.f16.safetensors").exists() && dir.join("model.safetensors").exists() {
            std::fs::remove_file(dir.join("model.safetensors"))?;
        }
    }
    Ok(())
}

/// Trunk.toml's policy for `trunk serve`, as a `<meta>` can carry it: without
/// `frame-ancestors` (not allowed there), the nonce to be replaced by the scripts' hashes.
fn content_security_policy() -> Result<Vec<String>> {
    let trunk: toml::Value = toml::from_str(&std::fs::read_to_string(assets::root().join("Trunk.toml"))?)?;
    let csp = trunk["serve"]["csp"].as_array().context("Trunk.toml has no [serve] csp")?;
    Ok(csp
        .iter()
        .filter_map(|d| d.as_str())
        .filter(|d| !d.starts_with("frame-ancestors"))
        .map(str::to_string)
        .collect())
}

/// `html` with each inline script's nonce removed and a `<meta>` policy that allows exactly
/// those scripts by their sha256.
fn with_meta_policy(html: &str, policy: &[String]) -> Result<String> {
    let mut out = String::new();
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<script") {
        let open_end = at + rest[at..].find('>').context("an unclosed <script")? + 1;
        let close = open_end + rest[open_end..].find("</script>").context("a <script> without its end")?;
        let open_tag = &rest[at..open_end];
        let body = &rest[open_end..close];
        if !open_tag.contains(" src=") {
            let digest = Sha256::digest(body.as_bytes());
            hashes.push(format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest)));
        }
        out.push_str(&rest[..at]);
        out.push_str(&without_nonce(open_tag));
        out.push_str(body);
        rest = &rest[close..];
    }
    out.push_str(rest);
    let directives: Vec<String> = policy
        .iter()
        .map(|d| match d.split_whitespace().next() {
            Some("script-src") => {
                let kept: Vec<&str> = d.split_whitespace().filter(|w| !w.starts_with("'nonce-")).collect();
                format!("{} {}", kept.join(" "), hashes.join(" "))
            }
            _ => d.clone(),
        })
        .collect();
    let meta = format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">", directives.join("; "));
    // First in <head>: the policy covers every element after it.
    let head = out.find("<head>").context("index.html has no <head>")? + "<head>".len();
    out.insert_str(head, &format!("\n  {meta}"));
    Ok(out)
}

fn without_nonce(tag: &str) -> String {
    match tag.find(" nonce=\"") {
        Some(at) => {
            let end = at + " nonce=\"".len() + tag[at + " nonce=\"".len()..].find('"').unwrap_or(0) + 1;
            format!("{}{}", &tag[..at], &tag[end..])
        }
        None => tag.to_string(),
    }
}

/// Every file under `dir`, as `/`-separated paths relative to it, sorted.
fn listed(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let relative = path.strip_prefix(root)?.components();
                out.push(relative.map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    Ok(files)
}

/// The first 16 hex digits of sha256 over the service worker's template and every file's name
/// and bytes.
fn version(dir: &Path, files: &[String], template: &str) -> Result<String> {
    let mut hash = Sha256::new();
    hash.update(template.as_bytes());
    for file in files {
        hash.update(file.as_bytes());
        hash.update(std::fs::read(dir.join(file))?);
    }
    Ok(hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect())
}

fn size(dir: &Path) -> Result<(usize, u64)> {
    let files = listed(dir)?;
    let bytes = files.iter().map(|f| std::fs::metadata(dir.join(f)).map(|m| m.len())).sum::<std::io::Result<u64>>()?;
    Ok((files.len(), bytes))
}

/// Two releases of the page Trunk built into `built` for the end-to-end test of updates: the second differs
/// from the first by a comment in its page, so its version (and its service worker) differ. The
/// first is dated an hour back, as an earlier release would be: file servers date files to the
/// second, and two releases written in the same second would revalidate as unchanged (a 304 for
/// the new sw.js, so no update is ever found).
pub fn two_releases(raw: &Path) -> Result<[PathBuf; 2]> {
    let root = crate::command::target_dir()?.join("e2e-static");
    let releases = [root.join("release-a"), root.join("release-b")];
    for (dir, note) in releases.iter().zip([None, Some("<!-- the next release -->\n")]) {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        for file in listed(raw)? {
            let to = dir.join(&file);
            std::fs::create_dir_all(to.parent().context("a file in a folder")?)?;
            std::fs::copy(raw.join(&file), &to)?;
        }
        if let Some(note) = note {
            let index = dir.join("index.html");
            std::fs::write(&index, std::fs::read_to_string(&index)? + note)?;
        }
        finish(dir)?;
    }
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for file in listed(&releases[0])? {
        std::fs::File::options().write(true).open(releases[0].join(file))?.set_modified(hour_ago)?;
    }
    Ok(releases)
}

/// The default folder: `dist-static` beside the checkout's `dist` (which `trunk serve` owns).
pub fn default_out() -> PathBuf {
    assets::root().join("dist-static")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_hash_and_lose_their_nonce() {
        let html = "<html><head><script type=\"module\" nonce=\"{{X}}\">start()</script><script src=\"a.js\"></script></head></html>";
        let policy = ["default-src 'self'".to_string(), "script-src 'self' 'nonce-{{NONCE}}'".to_string()];
        let out = with_meta_policy(html, &policy).unwrap();
        let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"start()"));
        assert!(out.contains(&format!("script-src 'self' 'sha256-{digest}'")), "{out}");
        assert!(!out.contains("nonce"), "{out}");
        assert!(out.contains("<script type=\"module\">start()</script><script src=\"a.js\"></script>"), "{out}");
        assert!(out.find("Content-Security-Policy").unwrap() < out.find("<script").unwrap());
    }
}
