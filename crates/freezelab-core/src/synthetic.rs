//! Small, deterministic stand-ins for the real assets: a word-level tokenizer, a random BERT and
//! a learnable two-class dataset. Tests, browser smoke runs and throughput benchmarks use them
//! where the real 90 MB model would be too slow or is not needed.

use rand::seq::IndexedRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::BertConfig;
use crate::data::Example;

/// Words of the synthetic vocabulary after the specials `[PAD] [UNK] [CLS] [SEP]`.
const CUES_A: [&str; 6] = ["great", "good", "happy", "love", "fine", "bright"];
const CUES_B: [&str; 6] = ["awful", "bad", "sad", "hate", "poor", "dark"];
const FILLER: [&str; 12] = ["the", "a", "movie", "day", "was", "is", "very", "and", "it", "we", "so", "this"];

fn words() -> Vec<&'static str> {
    CUES_A.iter().chain(&CUES_B).chain(&FILLER).copied().collect()
}

/// A `tokenizer.json` (word level, lowercase, whitespace split, `[CLS] … [SEP]`) over the
/// synthetic vocabulary.
pub fn tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    for (i, w) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"].iter().chain(words().iter()).enumerate() {
        vocab.insert(w.to_string(), i.into());
    }
    let special = |name: &str, id: u32| serde_json::json!({"id": name, "ids": [id], "tokens": [name]});
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": special("[CLS]", 2), "[SEP]": special("[SEP]", 3)}
        },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    })
    .to_string()
}

/// A BERT config over the synthetic vocabulary.
pub fn config(hidden: usize, layers: usize, heads: usize) -> BertConfig {
    BertConfig::tiny(4 + words().len(), hidden, layers, heads)
}

/// `n` sentences of 4–12 words: label "a" holds a word from one cue set, "b" from the other.
pub fn examples(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let (label, cues) = if i % 2 == 0 { ("a", &CUES_A) } else { ("b", &CUES_B) };
            let len = 4 + i % 9;
            let mut words: Vec<&str> = (0..len).map(|_| *FILLER.choose(&mut rng).expect("non-empty")).collect();
            words[(i * 7) % len] = cues.choose(&mut rng).expect("non-empty");
            Example { text: words.join(" "), label: label.into() }
        })
        .collect()
}

/// Sentences whose logits under [`model_files`]`(32, 2, 2, 7)` are pinned in
/// tests/fixtures/tiny_logits.json, checked natively and in the browser.
pub const PROBE_TEXTS: [&str; 4] = ["the movie was great", "a bad dark day", "love", "it is so very poor and sad"];

/// The three files of a random model over the synthetic vocabulary: config.json, safetensors
/// weights (seeded) and tokenizer.json.
pub fn model_files(hidden: usize, layers: usize, heads: usize, seed: u64) -> (Vec<u8>, Vec<u8>, String) {
    files_of(&config(hidden, layers, heads), seed)
}

/// [`model_files`] of any config over the synthetic vocabulary (e.g. one without dropout).
pub fn files_of(config: &BertConfig, seed: u64) -> (Vec<u8>, Vec<u8>, String) {
    let weights = crate::weights::random_checkpoint(config, seed);
    (serde_json::to_vec(config).expect("config serialises"), weights, tokenizer_json())
}
