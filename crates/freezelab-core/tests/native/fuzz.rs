//! Property tests for every parser of user files: whatever the bytes, an answer (a value or an
//! error for people), never a panic. Valid files spoiled by truncation or byte flips, and
//! text built from the characters that matter to each format, reach deeper than random noise.

use burn::tensor::Device;
use freezelab_core::config::BertConfig;
use freezelab_core::data::{parse, preview, Columns, Format};
use freezelab_core::loaded::{LoadedModel, ModelFiles};
use freezelab_core::synthetic;
use freezelab_core::tokenize::Tokenizer;
use freezelab_core::weights::{load_classifier, random_checkpoint, stored_label_names};
use proptest::prelude::*;

/// Bytes drawn mostly from the delimiters, quotes, braces and line ends the formats care about.
fn structured_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        &b"\""[..],
        b",",
        b"\t",
        b"\n",
        b"\r\n",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b"\\",
        b"text",
        b"label",
        b"\"text\"",
        b"\"label\"",
        b"ham",
        b"7",
        b"\xff",
        b"\xc3",
        b" ",
        b"null",
    ]);
    prop::collection::vec(pieces, 0..64).prop_map(|p| p.concat())
}

/// A valid input with a cut and a few bytes overwritten.
fn spoiled(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    (0..=len, prop::collection::vec((0..len.max(1), any::<u8>()), 0..4)).prop_map(move |(cut, flips)| {
        let mut bytes = valid.clone();
        for (at, b) in flips {
            if at < bytes.len() {
                bytes[at] = b;
            }
        }
        bytes.truncate(cut);
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn data_parsers_never_panic(bytes in prop_oneof![structured_bytes(), prop::collection::vec(any::<u8>(), 0..200)]) {
        for format in [Format::Jsonl, Format::Csv, Format::Tsv] {
            let _ = parse("fuzz", &bytes, format, &Columns::default());
            let _ = preview("fuzz", &bytes, format, 5);
        }
    }

    #[test]
    fn config_parser_never_panics(bytes in spoiled(br#"{"vocab_size": 30, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64}"#.to_vec())) {
        let _ = BertConfig::from_json(&bytes);
    }

    #[test]
    fn checkpoint_loader_never_panics(bytes in spoiled(random_checkpoint(&BertConfig::tiny(20, 8, 1, 2), 0))) {
        let config = BertConfig::tiny(20, 8, 1, 2);
        let _ = load_classifier(&config, &bytes, 2, 0, &Device::flex());
        let _ = stored_label_names(&bytes);
    }
}

/// A config.json value for a numeric field: the edges of every range the loader checks.
fn edge_value() -> impl Strategy<Value = serde_json::Value> {
    prop::sample::select(vec![
        serde_json::json!(0),
        serde_json::json!(1),
        serde_json::json!(2),
        serde_json::json!(3),
        serde_json::json!(-1),
        serde_json::json!(0.5),
        serde_json::json!(1.0),
        serde_json::json!(-0.5),
        serde_json::json!(1e30),
        serde_json::json!(4096),
        serde_json::json!("0.1"),
        serde_json::Value::Null,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Configs with fields set to edge values, loaded as a model beside a tiny checkpoint:
    /// an out-of-range field is an error naming it; none panics, and a config that differs
    /// from the checkpoint's only where the range allows loads.
    #[test]
    fn mutated_configs_load_or_are_refused(fields in prop::collection::vec((0..11usize, edge_value()), 1..3)) {
        let names = [
            "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_dropout_prob",
            "attention_probs_dropout_prob", "pad_token_id",
        ];
        let (config, weights, tokenizer) = synthetic::model_files(8, 1, 2, 0);
        let mut value: serde_json::Value = serde_json::from_slice(&config).unwrap();
        for (field, edge) in &fields {
            value[names[*field]] = edge.clone();
        }
        let bytes = serde_json::to_vec(&value).unwrap();
        let files = ModelFiles { config: &bytes, weights: &weights, tokenizer: tokenizer.as_bytes() };
        let parsed = BertConfig::from_json(&bytes);
        match LoadedModel::load(files, Some(2), 0, &Device::flex()) {
            Ok(model) => prop_assert!(parsed.is_ok() && model.config.validate().is_ok()),
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.contains("panicked"), "{message}");
                // A field out of its range is named in the message.
                if let Err(config_error) = parsed {
                    prop_assert_eq!(message, config_error.to_string());
                }
            }
        }
    }
}

proptest! {
    // The tokenizer parser is slower: fewer cases (enough to find the panic `from_bytes` guards).
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn tokenizer_parser_never_panics(bytes in spoiled(synthetic::model_files(8, 1, 2, 0).2.into_bytes())) {
        let _ = Tokenizer::from_bytes(&bytes);
    }
}
