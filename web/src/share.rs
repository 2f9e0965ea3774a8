//! The experiment in the URL: model, dataset, hyperparameters, both freeze plans and the
//! presentation flag live in the fragment (`#model=minilm-l6&data=spam&A=none&B=head-only…`),
//! rewritten as the user changes them, so a link restores the exact set-up.

use freezelab_protocol::decimal::parse_f64;
use freezelab_protocol::freeze::FreezePlan;
use serde::{Deserialize, Serialize};

use crate::hyper::Hyper;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shared {
    pub model: String,
    pub data: String,
    pub train: usize,
    pub eval: usize,
    pub epochs: usize,
    pub batch: usize,
    pub len: usize,
    #[serde(deserialize_with = "decimal")]
    pub lr: f64,
    pub seed: u64,
    pub cache: bool,
    #[serde(rename = "A")]
    pub plan_a: String,
    #[serde(rename = "B")]
    pub plan_b: String,
    #[serde(default)]
    pub present: bool,
}

impl Shared {
    pub fn encode(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// Reads a fragment (with or without `#`); `None` when it holds no set-up.
    pub fn decode(fragment: &str) -> Option<Result<Shared, String>> {
        let query = fragment.trim_start_matches('#');
        if query.is_empty() {
            return None;
        }
        let checked = serde_urlencoded::from_str::<Shared>(query)
            .map_err(|e| format!("this link's set-up is unreadable ({e}); defaults loaded"))
            .and_then(|shared| {
                // No setting from a link is out of the range a run accepts.
                let checked = shared.hyper().validate();
                checked
                    .map(|()| shared)
                    .map_err(|e| format!("this link's set-up is out of range ({e}); defaults loaded"))
            });
        Some(checked)
    }

    pub fn hyper(&self) -> Hyper {
        Hyper {
            train_size: self.train,
            eval_size: self.eval,
            epochs: self.epochs,
            batch_size: self.batch,
            max_len: self.len,
            lr: self.lr,
            seed: self.seed,
            cache: self.cache,
        }
    }

    /// The two plans for a model of `num_layers` layers; an unreadable plan is an error.
    pub fn plans(&self, num_layers: usize) -> Result<(FreezePlan, FreezePlan), String> {
        let parse = |spec: &str| FreezePlan::parse(spec, num_layers).map_err(|e| e.to_string());
        Ok((parse(&self.plan_a)?, parse(&self.plan_b)?))
    }
}

/// The learning rate through the page's own decimal reader (freezelab_protocol::decimal).
fn decimal<'de, D: serde::Deserializer<'de>>(from: D) -> Result<f64, D::Error> {
    let text = String::deserialize(from)?;
    parse_f64(&text).ok_or_else(|| serde::de::Error::custom(format!("lr \"{text}\" is not a decimal number")))
}

fn location() -> Option<web_sys::Location> {
    web_sys::window().map(|w| w.location())
}

/// The set-up in the page's URL when it opened.
pub fn from_url() -> Option<Result<Shared, String>> {
    Shared::decode(&location()?.hash().ok()?)
}

/// Rewrites the fragment without adding a history entry.
pub fn write_url(shared: &Shared) {
    let Some(window) = web_sys::window() else { return };
    if let Ok(history) = window.history() {
        let _ =
            history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&format!("#{}", shared.encode())));
    }
}
