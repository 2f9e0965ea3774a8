//! The subset of a Hugging Face `BertConfig` (config.json) that the encoder needs.

use serde::{Deserialize, Serialize};

use crate::memory::EncoderShape;
use crate::{CoreError, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_pos")]
    pub position_embedding_type: String,
    #[serde(default)]
    pub pad_token_id: usize,
    /// Standard deviation of HF's initialisation of new weights (the classification head).
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_range() -> f64 {
    0.02
}
fn default_act() -> String {
    "gelu".into()
}
fn default_pos() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Parses and validates config.json. Only what this encoder implements is accepted, so a
    /// checkpoint we would compute wrongly is refused up front rather than giving silent garbage.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let config: BertConfig = serde_json::from_slice(bytes).map_err(|e| CoreError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The sizes computed memory depends on.
    pub fn shape(&self) -> EncoderShape {
        EncoderShape {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_attention_heads: self.num_attention_heads,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(CoreError::Config(m));
        if self.hidden_size == 0 || self.num_attention_heads == 0 {
            return bad("hidden_size and num_attention_heads must be positive".into());
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.hidden_act != "gelu" {
            return bad(format!("hidden_act \"{}\" is not supported (only \"gelu\")", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type \"{}\" is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if !(self.initializer_range.is_finite() && self.initializer_range >= 0.0) {
            return bad(format!("initializer_range must be a non-negative number, got {}", self.initializer_range));
        }
        if self.vocab_size == 0 || self.max_position_embeddings == 0 || self.type_vocab_size == 0 {
            return bad("vocab_size, max_position_embeddings and type_vocab_size must be positive".into());
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// A small configuration for tests and browser smoke runs.
    pub fn tiny(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> Self {
        BertConfig {
            vocab_size,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: hidden * 4,
            max_position_embeddings: 128,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            hidden_act: "gelu".into(),
            position_embedding_type: "absolute".into(),
            pad_token_id: 0,
            initializer_range: 0.02,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unsupported_activation() {
        let mut c = BertConfig::tiny(10, 8, 1, 2);
        c.hidden_act = "relu".into();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("relu"), "{err}");
    }

    #[test]
    fn rejects_indivisible_heads() {
        let c = BertConfig::tiny(10, 10, 1, 3);
        assert!(c.validate().is_err());
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(BertConfig::from_json(b"{not json").is_err());
        assert!(BertConfig::from_json(b"{}").is_err());
    }
}
