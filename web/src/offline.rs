//! The page kept for offline use, in the static build only (`cargo xtask dist`, which writes
//! the service worker web/sw.js and tags the page with its version): registered once the model
//! and the data have loaded (its install takes what the worker just downloaded, see [`stage`]),
//! the stored size shown, a new version taken only when the user says so, and the
//! whole copy removable.

use freezelab_protocol::messages::Stage;
use js_sys::Function;
use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::state::{Results, SetUp};

#[wasm_bindgen(inline_js = r#"
export function built_version() {
  return document.querySelector('meta[name=freezelab-version]')?.content ?? null;
}
export function first_visit() {
  return 'serviceWorker' in navigator && !navigator.serviceWorker.controller;
}
export async function keep_offline(on_update) {
  if (!('serviceWorker' in navigator)) throw new Error('this browser has no service workers');
  const registration = await navigator.serviceWorker.register(new URL('sw.js', document.baseURI).href);
  const offer = () => { if (registration.waiting && navigator.serviceWorker.controller) on_update(); };
  const watch = (next) => next?.addEventListener('statechange', () => { if (next.state === 'installed') offer(); });
  registration.addEventListener('updatefound', () => watch(registration.installing));
  watch(registration.installing);
  offer();
  await navigator.serviceWorker.ready;
  const look = () => registration.update().catch(() => {});
  // register() does not look for a new sw.js once one is registered, and the browser's own look
  // after a visit waits until its worker idles (the test saw none in 5 minutes): look now, and
  // when a tab left open (a classroom's) comes back into view. Offline, the look fails quietly.
  look();
  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') look(); });
  // The copy's own size (the browser's usage estimate lags, and counts the run history too).
  const copy = await caches.open(`freezelab-${built_version()}`);
  let bytes = 0;
  for (const request of await copy.keys()) {
    const response = await copy.match(request);
    const length = response?.headers.get('content-length');
    bytes += length ? Number(length) : (await response?.blob())?.size ?? 0;
  }
  return bytes;
}
export async function take_new_version() {
  const registration = await navigator.serviceWorker.getRegistration();
  navigator.serviceWorker.addEventListener('controllerchange', () => location.reload());
  registration?.waiting?.postMessage('take-new-version');
}
export async function remove_offline_copy() {
  for (const registration of await navigator.serviceWorker.getRegistrations()) await registration.unregister();
  for (const key of await caches.keys()) if (key.startsWith('freezelab-')) await caches.delete(key);
}
"#)]
extern "C" {
    fn built_version() -> Option<String>;
    fn first_visit() -> bool;
    #[wasm_bindgen(catch)]
    async fn keep_offline(on_update: &Function) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn take_new_version() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch)]
    async fn remove_offline_copy() -> Result<JsValue, JsValue>;
}

/// Where the worker puts what it downloads on a static build's first visit: the cache that
/// web/sw.js's install (of the same version) fills itself from. Later visits read the service
/// worker's copy, so they stage nothing.
pub fn stage() -> Option<Stage> {
    let version = built_version()?;
    first_visit().then(|| Stage { cache: format!("freezelab-fetched-{version}") })
}

#[derive(Clone, PartialEq)]
enum Copy {
    /// The dev server's page: no service worker.
    NotBuilt,
    Storing,
    Stored {
        bytes: f64,
    },
    Removed,
    Failed(String),
}

/// "Available offline · N MB", the update prompt and the remove button (`offline-status`).
#[component]
pub fn Offline() -> impl IntoView {
    let results = expect_context::<Results>();
    let setup = expect_context::<SetUp>();
    let version = built_version();
    let copy = RwSignal::new(if version.is_some() { Copy::Storing } else { Copy::NotBuilt });
    let update = RwSignal::new(false);
    if version.is_some() {
        // Once, after the first model and data have loaded.
        let asked = StoredValue::new(false);
        Effect::new(move || {
            if asked.get_value() || setup.model.get().is_none() || setup.dataset.get().is_none() {
                return;
            }
            asked.set_value(true);
            leptos::task::spawn_local(async move {
                let offer = Closure::<dyn Fn()>::new(move || update.set(true)).into_js_value();
                copy.set(match keep_offline(offer.unchecked_ref()).await {
                    Ok(bytes) => Copy::Stored { bytes: bytes.as_f64().unwrap_or(0.0) },
                    Err(e) => Copy::Failed(format!("{e:?}")),
                });
            });
        });
    }
    let remove = move |_| {
        leptos::task::spawn_local(async move {
            copy.set(match remove_offline_copy().await {
                Ok(_) => Copy::Removed,
                Err(e) => Copy::Failed(format!("{e:?}")),
            });
        })
    };
    let reload = move |_| {
        leptos::task::spawn_local(async move {
            if let Err(e) = take_new_version().await {
                copy.set(Copy::Failed(format!("{e:?}")));
            }
        })
    };
    let text = move || {
        match copy.get() {
        Copy::NotBuilt => "Not kept for offline use: this copy comes from the development server (the static build, cargo xtask dist, is).".to_string(),
        Copy::Storing => "Storing the page, the model and the data for offline use…".to_string(),
        Copy::Stored { bytes } => format!(
            "Available offline{}: this site stores {:.1} MB in this browser.",
            version.as_deref().map(|v| format!(" (version {v})")).unwrap_or_default(),
            bytes / 1e6
        ),
        Copy::Removed => "The offline copy was removed: the next visit downloads the page again.".to_string(),
        Copy::Failed(why) => format!("Not available offline: {why}"),
    }
    };
    view! {
        <p class="offline muted" data-testid="offline-status" data-state=move || match copy.get() {
            Copy::NotBuilt => "dev", Copy::Storing => "storing", Copy::Stored { .. } => "stored",
            Copy::Removed => "removed", Copy::Failed(_) => "failed",
        }>
            {text}
            <Show when=move || matches!(copy.get(), Copy::Stored { .. })>
                " "<button data-testid="offline-remove" on:click=remove>"Remove the offline copy"</button>
            </Show>
            <Show when=move || update.get()>
                " "<button data-testid="update-reload" disabled=move || results.busy() on:click=reload
                    title="Runs in progress finish first">"A new version is available — reload"</button>
            </Show>
        </p>
    }
}
