//! JSON text through the browser's own `JSON`, with `serde_wasm_bindgen` between its values and
//! Rust's: the page then carries one serde data format for JavaScript values (its requests to the
//! workers and the saved runs need it), not serde_json's parser and printer as well (BENCHMARKS.md, "In the browser").

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::{JsCast, JsValue};

/// How values become JS: plain objects, `null` for `None`, numbers (integers past 2^53 are
/// refused, as JSON numbers would lose them).
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, String> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| e.to_string())
}

pub fn from_value<T: DeserializeOwned>(value: JsValue) -> Result<T, String> {
    serde_wasm_bindgen::from_value(value).map_err(|e| e.to_string())
}

pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    from_value(parse_value(text)?)
}

pub fn parse_value(text: &str) -> Result<JsValue, String> {
    js_sys::JSON::parse(text).map_err(|e| describe(&e))
}

/// Indented two spaces, as people read exported files.
pub fn pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let value = to_value(value)?;
    let text = js_sys::JSON::stringify_with_replacer_and_space(&value, &JsValue::NULL, &JsValue::from(2))
        .map_err(|e| describe(&e))?;
    Ok(String::from(text))
}

pub fn compact<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    let text = js_sys::JSON::stringify(&to_value(value)?).map_err(|e| describe(&e))?;
    Ok(String::from(text))
}

/// A thrown error's message (a `SyntaxError`'s "Unexpected token …", a `DOMException`'s), or the
/// thrown value as text.
pub fn describe(error: &JsValue) -> String {
    error.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{error:?}"))
}
