//! Backend choice. wgpu panics when the browser has no WebGPU, so `navigator.gpu` and
//! `requestAdapter()` are asked first, from JavaScript's side, and Burn's wgpu is started only
//! when an adapter exists.

use burn::tensor::Device;
use freezelab_core::device::{self, Backend};
use freezelab_protocol::messages::BackendInfo;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::worker::scope;

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The adapter's description, and whether it is a software fallback, if WebGPU has one.
async fn adapter() -> Result<(String, bool), String> {
    let gpu = get(&get(&scope(), "navigator"), "gpu");
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser offers no WebGPU here".into());
    }
    let request: Function =
        get(&gpu, "requestAdapter").dyn_into().map_err(|_| "navigator.gpu.requestAdapter is missing")?;
    let promise: Promise = request.call0(&gpu).map_err(|e| format!("requestAdapter failed: {e:?}"))?.unchecked_into();
    let adapter = JsFuture::from(promise).await.map_err(|e| format!("requestAdapter failed: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("WebGPU found no adapter".into());
    }
    let info = get(&adapter, "info");
    let name: Vec<String> = ["vendor", "architecture", "device", "description"]
        .iter()
        .filter_map(|k| get(&info, k).as_string())
        .filter(|s| !s.is_empty())
        .collect();
    // Newer browsers put the flag on the info, older ones on the adapter.
    let fallback = get(&info, "isFallbackAdapter").is_truthy() || get(&adapter, "isFallbackAdapter").is_truthy();
    Ok((if name.is_empty() { "unnamed adapter".into() } else { name.join(" · ") }, fallback))
}

fn cpu(note: Option<String>) -> (Device, BackendInfo) {
    (Device::flex(), BackendInfo { kind: "cpu".into(), adapter: None, fallback: false, note })
}

/// WebGPU when an adapter exists and starts, else the CPU backend, with the reason.
pub async fn choose(force_cpu: bool) -> (Device, BackendInfo) {
    if force_cpu {
        return cpu(Some("CPU chosen by the user".into()));
    }
    let (name, fallback) = match adapter().await {
        Ok(found) => found,
        Err(why) => return cpu(Some(why)),
    };
    match device::init(Backend::Wgpu).await {
        Ok(device) => (device, BackendInfo { kind: "webgpu".into(), adapter: Some(name), fallback, note: None }),
        Err(e) => cpu(Some(format!("WebGPU adapter {name} did not start: {e}"))),
    }
}
