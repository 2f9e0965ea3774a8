//! `static/manifest.json` (written by `cargo xtask assets`): the schema is the protocol's.

pub use freezelab_protocol::manifest::{DatasetEntry, FileEntry, Manifest, ModelEntry};
