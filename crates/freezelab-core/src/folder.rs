//! A fine-tuned model as a Hugging Face model folder: the user's `config.json` with the label
//! names added, `model.safetensors` with every weight and the head, and the same
//! `tokenizer.json`. `freezelab predict --model DIR` loads it; the weights carry `BertModel`'s
//! names, so `transformers` can read the encoder (not tested here: no PyTorch).

use serde_json::{json, Map, Value};

use crate::bert::Classifier;
use crate::weights::export_classifier;
use crate::{CoreError, Result};

/// The folder's files, by name. Reads the weights asynchronously, so it works on WebGPU.
pub async fn model_folder(
    classifier: &Classifier,
    labels: &[String],
    config: &[u8],
    tokenizer: &[u8],
) -> Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(vec![
        ("config.json", labelled_config(config, labels)?),
        ("model.safetensors", export_classifier(classifier, labels).await?),
        ("tokenizer.json", tokenizer.to_vec()),
    ])
}

/// `config` with `id2label`, `label2id` and `num_labels` set to `labels`, other keys kept.
pub fn labelled_config(config: &[u8], labels: &[String]) -> Result<Vec<u8>> {
    let mut value: Map<String, Value> =
        serde_json::from_slice(config).map_err(|e| CoreError::Config(format!("not a JSON object ({e})")))?;
    let id2label: Map<String, Value> = labels.iter().enumerate().map(|(i, l)| (i.to_string(), json!(l))).collect();
    let label2id: Map<String, Value> = labels.iter().enumerate().map(|(i, l)| (l.clone(), json!(i))).collect();
    value.insert("id2label".into(), Value::Object(id2label));
    value.insert("label2id".into(), Value::Object(label2id));
    value.insert("num_labels".into(), json!(labels.len()));
    Ok(serde_json::to_vec_pretty(&value).expect("JSON values serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_join_the_config_and_the_rest_stays() {
        let config = br#"{"hidden_size": 8, "architectures": ["BertModel"]}"#;
        let out: Value =
            serde_json::from_slice(&labelled_config(config, &["ham".into(), "spam".into()]).unwrap()).unwrap();
        assert_eq!(out["id2label"]["1"], "spam");
        assert_eq!(out["label2id"]["ham"], 0);
        assert_eq!(out["num_labels"], 2);
        assert_eq!(out["hidden_size"], 8);
        assert!(labelled_config(b"[1]", &[]).is_err());
    }
}
