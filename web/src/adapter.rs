//! The page's own look at WebGPU, before a worker starts: the pool loads the worker bundle with
//! the WebGPU backend (more than twice the CPU bundle's size) only when the backend choice would
//! train on the adapter found. Which backend a run gets is still the worker's decision
//! (crates/freezelab-worker/src/probe.rs), by the same rule ([`BackendChoice::takes_gpu`]).
//!
//! [`BackendChoice::takes_gpu`]: freezelab_protocol::messages::BackendChoice::takes_gpu

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

fn field(of: &JsValue, name: &str) -> JsValue {
    Reflect::get(of, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// `Some(fallback)` when `navigator.gpu.requestAdapter()` gives an adapter (`fallback`: a
/// software one), `None` when this browser has no WebGPU or no adapter.
pub async fn webgpu() -> Option<bool> {
    let navigator = web_sys::window()?.navigator();
    let gpu = field(&navigator, "gpu");
    let request = field(&gpu, "requestAdapter").dyn_into::<Function>().ok()?;
    let pending = request.call0(&gpu).ok()?.dyn_into::<Promise>().ok()?;
    let found = JsFuture::from(pending).await.ok().filter(|a| a.is_object())?;
    // Newer browsers flag a software adapter on its info, older ones on the adapter.
    Some(
        field(&field(&found, "info"), "isFallbackAdapter").is_truthy()
            || field(&found, "isFallbackAdapter").is_truthy(),
    )
}
