//! tokenizer.json bytes → padded id batches with attention masks.

use tokenizers::Tokenizer as HfTokenizer;

use crate::{CoreError, Result};

/// Token ids of a batch, row-major `[batch_size, seq_len]`, padded with the pad id.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    pub ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub mask: Vec<u8>,
    pub batch_size: usize,
    pub seq_len: usize,
}

impl EncodedBatch {
    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.seq_len..(i + 1) * self.seq_len]
    }

    /// Real tokens of row `i` (padding removed).
    pub fn tokens(&self, i: usize) -> Vec<u32> {
        let mask = &self.mask[i * self.seq_len..(i + 1) * self.seq_len];
        self.row(i).iter().zip(mask).filter(|(_, &m)| m == 1).map(|(&id, _)| id).collect()
    }

    /// Stitches per-example rows back into one batch, padding to the longest.
    pub fn from_rows(rows: &[Vec<u32>], pad_id: u32) -> Self {
        Self::from_rows_to(rows, pad_id, 0)
    }

    /// `rows` padded to `seq_len` tokens, or to the longest row where that is longer.
    pub fn from_rows_to(rows: &[Vec<u32>], pad_id: u32, seq_len: usize) -> Self {
        let seq_len = rows.iter().map(Vec::len).max().unwrap_or(0).max(seq_len);
        let mut ids = Vec::with_capacity(rows.len() * seq_len);
        let mut mask = Vec::with_capacity(rows.len() * seq_len);
        for row in rows {
            ids.extend_from_slice(row);
            mask.extend(std::iter::repeat_n(1u8, row.len()));
            ids.extend(std::iter::repeat_n(pad_id, seq_len - row.len()));
            mask.extend(std::iter::repeat_n(0u8, seq_len - row.len()));
        }
        EncodedBatch { ids, mask, batch_size: rows.len(), seq_len }
    }
}

/// A HF fast tokenizer with its built-in padding and truncation switched off: this type truncates
/// to `max_len` (keeping `[SEP]`) and pads each batch to its longest row.
pub struct Tokenizer {
    tokenizer: HfTokenizer,
    pad_id: u32,
}

impl Tokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        // tokenizers panics on some malformed JSON (found by tests/native/fuzz.rs): check the syntax first.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|e| CoreError::Tokenizer(format!("not valid JSON ({e})")))?;
        let mut tokenizer = HfTokenizer::from_bytes(bytes).map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| CoreError::Tokenizer(format!("cannot disable truncation: {e}")))?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        Ok(Tokenizer { tokenizer, pad_id })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Ids of one text with special tokens, cut to `max_len` (the final `[SEP]` is kept).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Vec<u32>> {
        if max_len < 2 {
            return Err(CoreError::Invalid(format!("max length must be at least 2, got {max_len}")));
        }
        let encoding = self.tokenizer.encode(text, true).map_err(|e| CoreError::Tokenizer(e.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        if ids.len() > max_len {
            let last = *ids.last().expect("longer than max_len ≥ 2");
            ids.truncate(max_len - 1);
            ids.push(last);
        }
        Ok(ids)
    }

    pub fn encode_batch(&self, texts: &[&str], max_len: usize) -> Result<EncodedBatch> {
        let rows = texts.iter().map(|t| self.encode(t, max_len)).collect::<Result<Vec<_>>>()?;
        Ok(EncodedBatch::from_rows(&rows, self.pad_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_padded_to_the_longest() {
        let b = EncodedBatch::from_rows(&[vec![101, 7, 102], vec![101, 102]], 0);
        assert_eq!(b.seq_len, 3);
        assert_eq!(b.ids, vec![101, 7, 102, 101, 102, 0]);
        assert_eq!(b.mask, vec![1, 1, 1, 1, 1, 0]);
        assert_eq!(b.tokens(1), vec![101, 102]);
    }

    /// A data-parallel share is padded as its whole batch is; a shorter length never cuts a row.
    #[test]
    fn rows_are_padded_to_a_given_length_or_their_longest() {
        let b = EncodedBatch::from_rows_to(&[vec![101, 102]], 0, 4);
        assert_eq!((b.seq_len, b.ids, b.mask), (4, vec![101, 102, 0, 0], vec![1, 1, 0, 0]));
        assert_eq!(EncodedBatch::from_rows_to(&[vec![101, 7, 102]], 0, 2).seq_len, 3);
    }

    #[test]
    fn garbage_tokenizer_is_an_error() {
        assert!(Tokenizer::from_bytes(b"{\"nope\": 1}").is_err());
    }
}
