//! static/manifest.json: what the assets command wrote, for the page to list (the schema is
//! the protocol's, which the page reads).

use std::path::Path;

use anyhow::Result;
pub use freezelab_protocol::manifest::{DatasetEntry, FileEntry, Manifest, ModelEntry, Source};
use sha2::{Digest, Sha256};

/// Describes `path` (relative to `root`, written with forward slashes).
pub fn file_entry(root: &Path, path: &Path) -> Result<FileEntry> {
    let bytes = std::fs::read(path)?;
    let rel = path.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
    Ok(FileEntry { path: rel, bytes: bytes.len() as u64, sha256: format!("{:x}", Sha256::digest(&bytes)) })
}

/// A package of a public registry.
pub fn source(registry: &str, package: &str, version: &str) -> Source {
    Source { registry: registry.into(), package: package.into(), version: version.into() }
}
