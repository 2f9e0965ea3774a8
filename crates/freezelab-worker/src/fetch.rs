//! Same-origin downloads (and the user's `blob:` files) with byte progress for the page.

use freezelab_protocol::messages::{FromWorker, Stage};
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response};

use crate::outbox::{post, scope};

fn js_error(e: JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}

#[wasm_bindgen]
extern "C" {
    #[derive(Clone)]
    type CacheStorage;
    #[wasm_bindgen(thread_local_v2, js_name = caches)]
    static CACHES: Option<CacheStorage>;
    #[wasm_bindgen(method)]
    fn open(this: &CacheStorage, name: &str) -> js_sys::Promise;
    type Cache;
    #[wasm_bindgen(method)]
    fn put(this: &Cache, url: &str, response: &Response) -> js_sys::Promise;
    #[wasm_bindgen(js_namespace = console)]
    fn warn(message: &str);
}

/// Puts a copy of `response` in the stage's cache; a failure (no Cache Storage, quota) only
/// costs the service worker a second download, so it is logged, not raised.
async fn stage(stage: &Stage, url: &str, response: Response) {
    let put = async {
        let caches = CACHES.with(Clone::clone).ok_or_else(|| JsValue::from("no Cache Storage"))?;
        let cache: Cache = JsFuture::from(caches.open(&stage.cache)).await?.unchecked_into();
        JsFuture::from(cache.put(url, &response)).await
    };
    if let Err(e) = put.await {
        warn(&format!("{url} was not kept for the offline copy: {}", js_error(e)));
    }
}

/// Fetches `url`, reporting progress under `what` about every 4 MiB; with `staged`, a copy
/// also goes to its cache.
pub async fn bytes(url: &str, what: &str, staged: Option<&Stage>) -> Result<Vec<u8>, String> {
    let response: Response = JsFuture::from(scope().fetch_with_str(url))
        .await
        .map_err(|e| format!("{what}: could not fetch {url}: {}", js_error(e)))?
        .unchecked_into();
    if !response.ok() {
        return Err(format!("{what}: {url} answered {} {}", response.status(), response.status_text()));
    }
    match staged {
        // The copy streams into the cache while the body is read (a clone tees it).
        Some(staged) => {
            let copy = response.clone().map_err(|e| format!("{what}: {}", js_error(e)))?;
            futures_util::future::join(read(&response, url, what), stage(staged, url, copy)).await.0
        }
        None => read(&response, url, what).await,
    }
}

async fn read(response: &Response, url: &str, what: &str) -> Result<Vec<u8>, String> {
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok());
    let body = response.body().ok_or_else(|| format!("{what}: {url} has no body"))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::with_capacity(total.unwrap_or(0) as usize);
    let mut reported = 0u64;
    loop {
        let chunk =
            JsFuture::from(reader.read()).await.map_err(|e| format!("{what}: download failed: {}", js_error(e)))?;
        if Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into()).map_err(js_error)?.unchecked_into();
        out.extend_from_slice(&value.to_vec());
        let loaded = out.len() as u64;
        if loaded - reported >= 4 << 20 {
            reported = loaded;
            post(&FromWorker::Progress { what: what.to_string(), loaded, total });
        }
    }
    post(&FromWorker::Progress { what: what.to_string(), loaded: out.len() as u64, total: Some(out.len() as u64) });
    Ok(out)
}
