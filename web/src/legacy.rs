//! Runs kept in this browser and result files exported by earlier versions hold a freeze mode
//! internally tagged (`{"kind": "llrd", "decay": 0.8}`, `{"kind": "freeze"}`); the protocol now
//! writes it externally tagged (`{"llrd": {"decay": 0.8}}`, `"freeze"`, see freezelab_protocol).
//! Such values are rewritten here, as JS values, before serde reads them, so a history survives.

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};

/// A kept run (`config`, `summary.config`) or an exported summary (`config`), in place.
pub fn upgrade_run(run: &JsValue) {
    upgrade_config(&get(run, "config"));
    upgrade_config(&get(&get(run, "summary"), "config"));
}

fn upgrade_config(config: &JsValue) {
    let freeze = get(config, "freeze");
    let mode = get(&freeze, "mode");
    let Some(kind) = get(&mode, "kind").as_string() else { return };
    let fields: &Object = mode.unchecked_ref();
    let _ = Reflect::delete_property(fields, &"kind".into());
    let upgraded = if Object::keys(fields).length() == 0 {
        JsValue::from(kind)
    } else {
        let tagged = Object::new();
        let _ = Reflect::set(&tagged, &kind.into(), fields);
        tagged.into()
    };
    let _ = Reflect::set(&freeze, &"mode".into(), &upgraded);
}

/// `value[key]`, or `undefined` where `value` is no object.
fn get(value: &JsValue, key: &str) -> JsValue {
    if value.is_object() {
        Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}
