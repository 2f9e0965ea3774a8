//! Frozen-prefix activation cache. When the embeddings and layers `0..k` are frozen they are
//! fixed functions (no dropout, fixed weights), so each example's output at the freeze line
//! never changes: compute it once, keep it in host memory, reuse it every epoch and for
//! validation.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A name for content: sha256 over the parts, each length-prefixed so no two different lists
/// of parts share a name. Cache keys name models and datasets by this, never by file name.
pub fn content_id(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

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
#[derive(Default)]
pub struct PrefixCache {
    key: Option<CacheKey>,
    entries: HashMap<usize, Vec<f32>>,
    bytes: u64,
    limit_bytes: u64,
    over_limit: bool,
}

impl PrefixCache {
    /// An empty cache; its key and limit come with the first [`PrefixCache::bind`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the cache serve `key` within `limit_bytes`, dropping everything if either changed.
    pub fn bind(&mut self, key: CacheKey, limit_bytes: u64) {
        if self.key.as_ref() != Some(&key) || self.limit_bytes != limit_bytes {
            self.clear();
            self.key = Some(key);
            self.limit_bytes = limit_bytes;
        }
    }

    /// Drops every entry and the key.
    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.over_limit = false;
        self.key = None;
    }

    /// An example's states if they are cached with exactly `len` values; an entry of another
    /// shape (which a correct key never lets in) is treated as missing, never served.
    pub fn get(&self, example: usize, len: usize) -> Option<&[f32]> {
        self.entries.get(&example).map(Vec::as_slice).filter(|v| v.len() == len)
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
    fn rebinding_to_another_key_or_limit_invalidates() {
        let mut c = PrefixCache::new();
        c.bind(key(2), 1 << 20);
        assert!(c.insert(0, vec![1.0; 4]));
        c.bind(key(2), 1 << 20);
        assert_eq!(c.get(0, 4), Some(&[1.0; 4][..]));
        c.bind(key(3), 1 << 20);
        assert!(c.get(0, 4).is_none());
        assert_eq!(c.bytes(), 0);
        assert!(c.insert(0, vec![1.0; 4]));
        c.bind(key(3), 1 << 10);
        assert!(c.is_empty());
    }

    #[test]
    fn an_entry_of_another_shape_is_never_served() {
        let mut c = PrefixCache::new();
        c.bind(key(1), 1 << 20);
        assert!(c.insert(0, vec![1.0; 6]));
        assert_eq!(c.get(0, 6).map(<[f32]>::len), Some(6));
        assert!(c.get(0, 4).is_none());
        assert!(c.get(0, 8).is_none());
    }

    #[test]
    fn limit_stops_caching() {
        let mut c = PrefixCache::new();
        c.bind(key(1), 40);
        assert!(c.insert(0, vec![0.0; 8]));
        assert!(!c.insert(1, vec![0.0; 8]));
        assert!(c.over_limit());
        assert_eq!(c.bytes(), 32);
    }

    #[test]
    fn content_ids_follow_content_not_names() {
        let a = content_id(&[b"config", b"weights-a", b"tok"]);
        assert_eq!(a, content_id(&[b"config", b"weights-a", b"tok"]));
        assert_ne!(a, content_id(&[b"config", b"weights-b", b"tok"]));
        // Moving a byte across the boundary between two parts changes the id.
        assert_ne!(content_id(&[b"ab", b"c"]), content_id(&[b"a", b"bc"]));
        assert_eq!(a.len(), 64);
    }
}
