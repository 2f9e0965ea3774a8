//! Backend choice. wgpu panics when the browser has no WebGPU, so `navigator.gpu` and
//! `requestAdapter()` are asked first, from JavaScript's side, and Burn's wgpu is started only
//! when an adapter exists.

use burn::tensor::Device;
use freezelab_core::device::{self, Backend};
use freezelab_core::fused::wasm_matmul::{self, Kernel};
use freezelab_protocol::memory::DeviceLimits;
use freezelab_protocol::messages::{BackendChoice, BackendInfo, BackendKind};
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::outbox::scope;

fn get(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// A wasm32 linear memory addresses at most 4 GiB; the CPU backend's tensors live there.
const WASM_MEMORY_BYTES: u64 = 4 << 30;

struct Adapter {
    name: String,
    /// A software adapter such as SwiftShader.
    fallback: bool,
    /// `maxStorageBufferBindingSize`: the largest tensor a kernel can bind.
    buffer_bytes: Option<u64>,
}

/// The adapter WebGPU offers, if any.
async fn adapter() -> Result<Adapter, String> {
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
    let buffer_bytes = get(&get(&adapter, "limits"), "maxStorageBufferBindingSize").as_f64().map(|b| b as u64);
    let name = if name.is_empty() { "unnamed adapter".into() } else { name.join(" · ") };
    Ok(Adapter { name, fallback, buffer_bytes })
}

/// The CPU backend, named by the SIMD its matrix products use (slower without relaxed SIMD).
fn cpu(note: Option<String>) -> (Device, BackendInfo) {
    let limits = DeviceLimits { memory_bytes: Some(WASM_MEMORY_BYTES), buffer_bytes: None };
    let simd = match wasm_matmul::kernel() {
        Kernel::RelaxedSimd => "relaxed SIMD".to_string(),
        Kernel::NoRelaxedSimd => "SIMD128; this browser has no relaxed SIMD: slower matrix products".to_string(),
        Kernel::Failed(why) => format!("SIMD128; {why}"),
    };
    let info = BackendInfo { kind: BackendKind::Cpu, adapter: Some(simd), fallback: false, note, limits };
    (Device::flex(), info)
}

/// WebGPU when a usable adapter exists and starts (a software one only when asked for), else
/// the CPU backend, with the reason.
pub async fn choose(choice: BackendChoice) -> (Device, BackendInfo) {
    if choice == BackendChoice::Cpu {
        return cpu(Some("CPU chosen by the user".into()));
    }
    let found = match adapter().await {
        Ok(found) => found,
        Err(why) => return cpu(Some(why)),
    };
    if !choice.takes_gpu(found.fallback) {
        return cpu(Some(format!(
            "the only WebGPU adapter ({}) is a software fallback, slower than the CPU; tick \"use a software GPU\" to train on it anyway",
            found.name
        )));
    }
    match device::init(Backend::Wgpu).await {
        Ok(device) => {
            // WebGPU does not tell how much memory the device has; only the buffer limit is known.
            let limits = DeviceLimits { memory_bytes: None, buffer_bytes: found.buffer_bytes };
            let info = BackendInfo {
                kind: BackendKind::Webgpu,
                adapter: Some(found.name),
                fallback: found.fallback,
                note: None,
                limits,
            };
            (device, info)
        }
        Err(e) => cpu(Some(format!("WebGPU adapter {} did not start: {e}", found.name))),
    }
}
