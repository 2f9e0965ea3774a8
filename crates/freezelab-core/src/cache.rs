//! Frozen-prefix activation cache. When the embeddings and layers `0..k` are frozen they are
//! fixed functions (no dropout, fixed weights), so each example's output at the freeze line
//! never changes: compute it once, keep it in host memory, reuse it every epoch and for
//! validation.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// What a cached activation depends on. Any change invalidates the whole cache.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CacheKey {
    /// Identifies the weights (callers pass e.g. a checksum or manifest id).
    pub model: String,
    /// The dataset and its split/subset settings.
    pub dataset: String,
    pub freeze_line: usize,
    pub max_len: usize,
}

/// Hidden states at the freeze line, per example: `len × hidden` f32 values (no padding).
pub struct PrefixCache {
    key: Option<CacheKey>,
    entries: HashMap<usize, Vec<f32>>,
    bytes: u64,
    limit_bytes: u64,
    over_limit: bool,
}

impl PrefixCache {
    pub fn new(limit_bytes: u64) -> Self {
        PrefixCache { key: None, entries: HashMap::new(), bytes: 0, limit_bytes, over_limit: false }
    }

    /// Makes the cache serve `key`, dropping everything if the key changed.
    pub fn bind(&mut self, key: CacheKey) {
        if self.key.as_ref() != Some(&key) {
            self.entries.clear();
            self.bytes = 0;
            self.over_limit = false;
            self.key = Some(key);
        }
    }

    pub fn get(&self, example: usize) -> Option<&[f32]> {
        self.entries.get(&example).map(Vec::as_slice)
    }

    /// Stores an example's states. Returns false (and stores nothing) past the size limit:
    /// the run then goes on without caching the rest.
    pub fn insert(&mut self, example: usize, states: Vec<f32>) -> bool {
        let size = 4 * states.len() as u64;
        if self.over_limit || self.bytes + size > self.limit_bytes {
            self.over_limit = true;
            return false;
        }
        if let Some(old) = self.entries.insert(example, states) {
            self.bytes -= 4 * old.len() as u64;
        }
        self.bytes += size;
        true
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the limit was hit (some examples are computed every time).
    pub fn over_limit(&self) -> bool {
        self.over_limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(line: usize) -> CacheKey {
        CacheKey { model: "m".into(), dataset: "d".into(), freeze_line: line, max_len: 8 }
    }

    #[test]
    fn rebinding_to_another_key_invalidates() {
        let mut c = PrefixCache::new(1 << 20);
        c.bind(key(2));
        assert!(c.insert(0, vec![1.0; 4]));
        c.bind(key(2));
        assert_eq!(c.get(0), Some(&[1.0; 4][..]));
        c.bind(key(3));
        assert!(c.get(0).is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn limit_stops_caching() {
        let mut c = PrefixCache::new(40);
        c.bind(key(1));
        assert!(c.insert(0, vec![0.0; 8]));
        assert!(!c.insert(1, vec![0.0; 8]));
        assert!(c.over_limit());
        assert_eq!(c.bytes(), 32);
    }
}
