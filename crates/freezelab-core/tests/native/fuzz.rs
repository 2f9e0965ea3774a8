//! Property tests for every parser of user files: whatever the bytes, an answer (a value or an
//! error for people), never a panic. Valid files spoiled by truncation or byte flips, and
//! text built from the characters that matter to each format, reach deeper than random noise.

use burn::tensor::Device;
use freezelab_core::config::BertConfig;
use freezelab_core::data::{parse, preview, Columns, Format};
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

proptest! {
    // The tokenizer parser is slower: fewer cases (enough to find the panic `from_bytes` guards).
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn tokenizer_parser_never_panics(bytes in spoiled(synthetic::model_files(8, 1, 2, 0).2.into_bytes())) {
        let _ = Tokenizer::from_bytes(&bytes);
    }
}
