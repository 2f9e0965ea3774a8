//! What the dataset builders share: the train/validation split, its stable buckets, and the
//! text clean-up.

use sha2::{Digest, Sha256};

/// Rows of a dataset, already split.
pub struct Split<T> {
    pub train: Vec<T>,
    pub validation: Vec<T>,
}

impl<T> Default for Split<T> {
    fn default() -> Self {
        Split { train: Vec::new(), validation: Vec::new() }
    }
}

pub fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `max` characters (not bytes) of `text`.
pub fn cut_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Percent bucket (0..100) of a key, stable across runs and platforms.
pub fn bucket(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 100
}
