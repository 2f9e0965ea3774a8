//! The subset of a Hugging Face `BertConfig` (config.json) that the encoder needs.

use serde::{Deserialize, Serialize};

use crate::{CoreError, Result};
use freezelab_protocol::memory::EncoderShape;

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

    /// Checks every field the encoder reads, so a bad config.json is an error naming the field,
    /// its value and the allowed range, never a panic inside Burn (`DropoutConfig::init` panics
    /// outside [0, 1)) or a silently wrong model.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(CoreError::Config(m));
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((field, value)) = sizes.iter().find(|(_, value)| *value == 0) {
            return bad(format!("{field} is {value}; it must be at least 1"));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not divisible by num_attention_heads {}; it must be a multiple",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (field, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{field} is {p}; it must be in [0, 1)"));
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return bad(format!("layer_norm_eps is {}; it must be in (0, 1)", self.layer_norm_eps));
        }
        if !(self.initializer_range.is_finite() && (0.0..=1.0).contains(&self.initializer_range)) {
            return bad(format!("initializer_range is {}; it must be in [0, 1]", self.initializer_range));
        }
        if self.pad_token_id >= self.vocab_size {
            return bad(format!(
                "pad_token_id is {}; it must be below vocab_size ({})",
                self.pad_token_id, self.vocab_size
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

    /// Each out-of-range field is refused with its name, its value and the range.
    #[test]
    fn out_of_range_fields_are_named() {
        type Spoil = fn(&mut BertConfig);
        let cases: [(&str, Spoil, &str); 9] = [
            ("hidden_dropout_prob", |c| c.hidden_dropout_prob = 1.0, "hidden_dropout_prob is 1; it must be in [0, 1)"),
            ("negative dropout", |c| c.hidden_dropout_prob = -0.1, "hidden_dropout_prob is -0.1"),
            ("attention dropout", |c| c.attention_probs_dropout_prob = f64::NAN, "attention_probs_dropout_prob is NaN"),
            ("eps", |c| c.layer_norm_eps = 0.0, "layer_norm_eps is 0; it must be in (0, 1)"),
            ("intermediate", |c| c.intermediate_size = 0, "intermediate_size is 0; it must be at least 1"),
            ("layers", |c| c.num_hidden_layers = 0, "num_hidden_layers is 0"),
            ("heads", |c| c.num_attention_heads = 3, "hidden_size 8 is not divisible by num_attention_heads 3"),
            ("init", |c| c.initializer_range = f64::INFINITY, "initializer_range is inf"),
            ("pad", |c| c.pad_token_id = 10, "pad_token_id is 10; it must be below vocab_size (10)"),
        ];
        for (name, spoil, message) in cases {
            let mut c = BertConfig::tiny(10, 8, 1, 2);
            spoil(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.starts_with("config.json: ") && err.contains(message), "{name}: {err}");
        }
        assert!(BertConfig::tiny(10, 8, 1, 2).validate().is_ok());
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(BertConfig::from_json(b"{not json").is_err());
        assert!(BertConfig::from_json(b"{}").is_err());
    }
}
