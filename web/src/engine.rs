//! What the page runs on, in one line (`engine-status`): the browser engine and its version,
//! the matrix kernel the CPU backend took (relaxed SIMD or not), the WebGPU adapter or none, the
//! cores and the workers. The same facts ride on data attributes for the engine tests.

use freezelab_protocol::messages::BackendKind;
use leptos::prelude::*;

use crate::adapter;
use crate::state::{SetUp, Ui};

/// A browser engine, told from the user agent (Chromium-based browsers name Chrome, Edge adds
/// `Edg/`; WebKit browsers other than Chromium's name `AppleWebKit` and `Version/`).
#[derive(Debug, Clone, PartialEq)]
pub struct Engine {
    /// `chromium`, `firefox` or `webkit`, or `other`.
    pub family: &'static str,
    pub name: String,
}

fn version_after<'a>(agent: &'a str, key: &str) -> Option<&'a str> {
    let rest = &agent[agent.find(key)? + key.len()..];
    rest.split([' ', ';', ')']).next().filter(|v| !v.is_empty())
}

pub fn engine(agent: &str) -> Engine {
    let major = |v: &str| v.split('.').next().unwrap_or(v).to_string();
    if let Some(v) = version_after(agent, "Firefox/") {
        return Engine { family: "firefox", name: format!("Firefox {} (Gecko)", major(v)) };
    }
    if let Some(v) = version_after(agent, "Edg/") {
        return Engine { family: "chromium", name: format!("Edge {} (Blink)", major(v)) };
    }
    if let Some(v) = version_after(agent, "Chrome/").or_else(|| version_after(agent, "Chromium/")) {
        return Engine { family: "chromium", name: format!("Chrome {} (Blink)", major(v)) };
    }
    if let Some(webkit) = version_after(agent, "AppleWebKit/") {
        let safari = version_after(agent, "Version/").map(|v| format!(" Safari {v}")).unwrap_or_default();
        return Engine { family: "webkit", name: format!("WebKit {webkit}{safari}") };
    }
    Engine { family: "other", name: agent.chars().take(60).collect() }
}

/// The page's own WebGPU look, as a word.
fn webgpu_word(found: Option<bool>) -> &'static str {
    match found {
        Some(false) => "hardware",
        Some(true) => "software",
        None => "none",
    }
}

#[component]
pub fn EngineStatus() -> impl IntoView {
    let setup = expect_context::<SetUp>();
    let ui = expect_context::<Ui>();
    let window = web_sys::window();
    let agent = window.as_ref().and_then(|w| w.navigator().user_agent().ok()).unwrap_or_default();
    let cores = window.as_ref().map(|w| w.navigator().hardware_concurrency() as usize).unwrap_or(0);
    let engine = engine(&agent);
    let webgpu = RwSignal::new(None::<Option<bool>>);
    leptos::task::spawn_local(async move { webgpu.set(Some(adapter::webgpu().await)) });
    // On the CPU the worker names its matrix kernel; on WebGPU the products run there.
    let kernel = move || {
        setup.backend.get().map(|b| match b.kind {
            BackendKind::Webgpu => ("gpu", "matrix products on WebGPU".to_string()),
            BackendKind::Cpu => {
                let simd = b.adapter.unwrap_or_default();
                let relaxed = simd.starts_with("relaxed SIMD");
                (if relaxed { "yes" } else { "no" }, format!("matrix kernel: {simd}"))
            }
        })
    };
    let gpu = move || match (setup.backend.get(), webgpu.get()) {
        (Some(b), _) if b.kind == BackendKind::Webgpu => format!("WebGPU adapter: {}", b.adapter.unwrap_or_default()),
        (_, None) => "WebGPU: looking…".to_string(),
        (_, Some(found)) => format!("WebGPU adapter: {}", webgpu_word(found)),
    };
    let workers = move || ui.pool.get().up;
    let line = {
        let name = engine.name.clone();
        move || {
            let kernel = kernel().map(|(_, k)| k).unwrap_or_else(|| "matrix kernel: starting…".into());
            let up = workers();
            format!("{name} · {kernel} · {} · {cores} cores · {up} worker{}", gpu(), if up == 1 { "" } else { "s" })
        }
    };
    view! {
        <p class="muted" data-testid="engine-status" data-engine=engine.family
            data-relaxed-simd=move || kernel().map(|(r, _)| r).unwrap_or("unknown")
            data-webgpu=move || webgpu.get().map(webgpu_word).unwrap_or("unknown")
            data-cores=cores.to_string() data-workers=move || workers().to_string()>
            {line}
        </p>
    }
}
